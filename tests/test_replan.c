/*
 * The re-planning rule (hs_replan_check, solver/replan.c) on costs set by hand: when a plan
 * found on measured costs replaces the current one, and when it only waits for the next check.
 *
 * The instance: six nodes on up to three devices with the same node times, free links and no
 * bytes crossing, so that a plan's throughput score (its bottleneck) is its slower stage. The
 * current plan is always "device 0 runs [0, 1), device 1 the rest". Each test changes the node
 * times between checks as measurements would, and passes the plan it wants the solver to have
 * found: the rule does not assume that plan is optimal.
 */
#include <criterion/criterion.h>
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "hotsplit/solver.h"

#define N 6
#define DEVICES 3

static hs_cluster cluster;
static double node_time[DEVICES][N], cut[N + 1], weight[N], live[N];
static hs_problem problem;
static hs_constraints constraints;
static hs_replan rule;

static void setup(void)
{
    memset(&cluster, 0, sizeof cluster);
    cluster.n_devices = DEVICES;
    for (int d = 0; d < DEVICES; d++) {
        snprintf(cluster.devices[d].name, HS_NAME_MAX, "dev%d", d);
        cluster.devices[d].speed = 1;
        cluster.devices[d].memory_bytes = 1e9;
        for (int e = 0; e < DEVICES; e++)
            if (e != d)
                cluster.links[d][e] = (hs_link){1e12, 0};
    }
    memset(cut, 0, sizeof cut);
    memset(live, 0, sizeof live);
    for (int i = 0; i < N; i++)
        weight[i] = 100;
    problem = (hs_problem){.n_nodes = N, .cluster = &cluster, .node_time = &node_time[0][0],
                           .cut_bytes = cut, .weight_bytes = weight, .live_bytes = live};
    constraints = (hs_constraints){0};
    rule = (hs_replan){.gain = 0.02, .big_gain = 0.10};
}

TestSuite(replan, .init = setup);

/* Node times in ms, the same on every device. */
static void times(const double ms[N])
{
    for (int d = 0; d < DEVICES; d++)
        for (int i = 0; i < N; i++)
            node_time[d][i] = 1e-3 * ms[i];
}

/* Device 0 runs [0, k), `second` runs [k, N), evaluated on the current costs. */
static hs_plan cut_at(int k, int second)
{
    hs_plan p = {.n_stages = 2, .stages = {{0, 0, k}, {second, k, N}}};
    hs_error err;
    cr_assert_eq(hs_plan_evaluate(&problem, &constraints, &p, &err), HS_OK, "%s", err.msg);
    return p;
}

/* One check of `best` against the current plan (cut 1 onto device 1) on the current costs,
 * for the throughput objective. */
static hs_replan_verdict check(hs_plan best, const char **why)
{
    hs_plan current = cut_at(1, 1);
    *why = NULL;
    return hs_replan_check(&rule, &problem, &constraints, HS_OBJ_THROUGHPUT, &current, &best,
                           why);
}

#define assert_verdict(best, expected, expected_why)                                           \
    do {                                                                                       \
        const char *why_;                                                                      \
        hs_replan_verdict v_ = check(best, &why_);                                             \
        cr_assert_eq(v_, expected, "verdict %d, expected %d", v_, expected);                   \
        if (expected_why)                                                                      \
            cr_assert_str_eq(why_, (const char *)(expected_why));                              \
        else                                                                                   \
            cr_assert_null(why_);                                                              \
    } while (0)

/* Cuts 1..5 give bottlenecks 41, 40, 39, 38, 37 ms: every move gains 2.4-9.8%, more than
 * `gain` and less than `big_gain`. */
static const double SMALL_GAINS[N] = {10, 1, 1, 1, 1, 37};
/* Cuts 1..5 give 50, 40, 30, 40, 50: cut 3 gains 40%, cut 2 20%. */
static const double EVEN[N] = {10, 10, 10, 10, 10, 10};

/* Cuts 1..3 give 12, 11.5, 11 ms: cut 3 gains 8.3%, but elastic hand-off of 5% of the stages'
 * 22 ms evens cut 1 out to 11 ms as well. */
static const double NEARLY_EVEN[N] = {10, 0.5, 0.5, 0.5, 0.5, 10};

Test(replan, an_imbalance_elastic_hand_off_evens_out_stays)
{
    times(NEARLY_EVEN);
    rule.elastic = 0.05;
    assert_verdict(cut_at(3, 1), HS_REPLAN_KEEP, NULL);
    assert_verdict(cut_at(3, 1), HS_REPLAN_KEEP, NULL);
    rule.elastic = 0; /* without it, the same gain moves the plan */
    assert_verdict(cut_at(3, 1), HS_REPLAN_WAIT, NULL);
    assert_verdict(cut_at(3, 1), HS_REPLAN_MOVE, "found twice");
}

Test(replan, an_imbalance_beyond_elastic_hand_off_moves)
{
    /* Cut 1: 10 against 50 ms, evened out by 5% of 60 ms to 47 ms; cut 3: 30 ms. */
    times(EVEN);
    rule.elastic = 0.05;
    hs_plan current = cut_at(1, 1);
    cr_assert_float_eq(hs_plan_elastic_bottleneck(&problem, &current, 0.05), 0.047, 1e-9);
    assert_verdict(cut_at(3, 1), HS_REPLAN_WAIT, NULL);
    assert_verdict(cut_at(3, 1), HS_REPLAN_MOVE, "found twice");
}

Test(replan, the_current_plan_stays)
{
    times(EVEN);
    assert_verdict(cut_at(1, 1), HS_REPLAN_KEEP, NULL);
    cr_assert(!rule.seen);
}

Test(replan, a_gain_under_the_margin_stays)
{
    /* Cut 1: max(10, 10.5) = 10.5 ms; cut 2: max(10.1, 10.4) = 10.4 ms, 0.95% better. */
    times((double[N]){10, 0.1, 0.1, 0.1, 0.1, 10.1});
    assert_verdict(cut_at(2, 1), HS_REPLAN_KEEP, NULL);
    assert_verdict(cut_at(2, 1), HS_REPLAN_KEEP, NULL);
}

Test(replan, a_small_gain_moves_when_found_twice)
{
    times(SMALL_GAINS);
    assert_verdict(cut_at(3, 1), HS_REPLAN_WAIT, NULL);
    cr_assert(rule.seen && hs_plan_same_stages(&rule.candidate, &(hs_plan){
                                                   .n_stages = 2,
                                                   .stages = {{0, 0, 3}, {1, 3, N}}}));
    assert_verdict(cut_at(3, 1), HS_REPLAN_MOVE, "found twice");
    cr_assert(!rule.seen, "a move forgets the candidate");
}

Test(replan, a_small_gain_that_moves_between_checks_waits)
{
    times(SMALL_GAINS);
    assert_verdict(cut_at(3, 1), HS_REPLAN_WAIT, NULL);
    assert_verdict(cut_at(4, 1), HS_REPLAN_WAIT, NULL); /* cut 4 is the candidate now */
    assert_verdict(cut_at(4, 1), HS_REPLAN_MOVE, "found twice");
}

Test(replan, a_check_without_gain_forgets_the_candidate)
{
    times(SMALL_GAINS);
    assert_verdict(cut_at(3, 1), HS_REPLAN_WAIT, NULL);
    assert_verdict(cut_at(1, 1), HS_REPLAN_KEEP, NULL);
    cr_assert(!rule.seen);
    assert_verdict(cut_at(3, 1), HS_REPLAN_WAIT, NULL);
}

Test(replan, the_same_stages_on_another_device_are_another_plan)
{
    times(SMALL_GAINS);
    assert_verdict(cut_at(3, 1), HS_REPLAN_WAIT, NULL);
    assert_verdict(cut_at(3, 2), HS_REPLAN_WAIT, NULL);
}

Test(replan, a_big_gain_moves_when_the_best_cut_jitters)
{
    times(EVEN);
    assert_verdict(cut_at(3, 1), HS_REPLAN_WAIT, NULL); /* 40% */
    /* Cut 2 gains 20%, and cut 3, the earlier plan, still 40%. */
    assert_verdict(cut_at(2, 1), HS_REPLAN_MOVE, "a big gain at both checks");
}

Test(replan, a_big_gain_needs_the_earlier_plan_to_still_gain)
{
    times(EVEN);
    assert_verdict(cut_at(3, 1), HS_REPLAN_WAIT, NULL);
    /* Device 0 measured slower on node 2: cut 3 now gives max(50, 30) = 50 ms, no gain over the
     * current plan's max(10, 50); cut 2 still gives max(20, 40) = 40 ms, 20%. */
    node_time[0][2] = 30e-3;
    assert_verdict(cut_at(2, 1), HS_REPLAN_WAIT, NULL);
    assert_verdict(cut_at(2, 1), HS_REPLAN_MOVE, "found twice");
}

Test(replan, a_big_gain_needs_both_plans_to_gain_big)
{
    times(EVEN);
    assert_verdict(cut_at(3, 1), HS_REPLAN_WAIT, NULL);   /* 40% */
    times(SMALL_GAINS);                                  /* cut 3 now 4.9%, cut 4 7.3% */
    assert_verdict(cut_at(4, 1), HS_REPLAN_WAIT, NULL);
}

Test(replan, a_candidate_on_a_device_that_left_is_not_confirmed)
{
    times(EVEN);
    assert_verdict(cut_at(3, 2), HS_REPLAN_WAIT, NULL);
    cluster.devices[2].excluded = true;
    assert_verdict(cut_at(2, 1), HS_REPLAN_WAIT, NULL);
    cr_assert_eq(rule.candidate.stages[1].device, 1);
}

Test(replan, any_feasible_plan_beats_an_infeasible_one)
{
    times(EVEN);
    cluster.devices[1].memory_bytes = cluster.devices[2].memory_bytes = 450;
    hs_plan current = cut_at(1, 1); /* 500 B of weights on device 1 */
    cr_assert(isinf(hs_plan_score(&problem, &constraints, HS_OBJ_THROUGHPUT, &current)));
    assert_verdict(cut_at(1, 2), HS_REPLAN_KEEP, NULL); /* as infeasible */
    /* Cut 5 is no faster than the current plan (max(50, 10) against max(10, 50)) but fits. */
    assert_verdict(cut_at(5, 1), HS_REPLAN_WAIT, NULL);
    assert_verdict(cut_at(5, 1), HS_REPLAN_MOVE, "found twice");
}

Test(replan, nothing_beats_a_lifetime_that_never_ends)
{
    times(EVEN);
    constraints.rate = 1; /* no battery anywhere: every plan lives for ever */
    hs_plan current = cut_at(1, 1), best = cut_at(3, 1);
    cr_assert(isinf(hs_plan_score(&problem, &constraints, HS_OBJ_LIFETIME, &current)));
    hs_replan_verdict v = hs_replan_check(&rule, &problem, &constraints, HS_OBJ_LIFETIME,
                                          &current, &best, NULL);
    cr_assert_eq(v, HS_REPLAN_KEEP);
}
