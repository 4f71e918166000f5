/*
 * The partitioner: exact horizontal plans (see hotsplit/solver.h for the plan space and the
 * meaning of every figure).
 *
 * All objectives are solved by dynamic programming over states (b, d, M): "nodes [0, b) are
 * done, the last stage ran on device d, the chain used the device set M" (M always holds the
 * source; |M| <= max_stages). A transition appends a stage [a, b) on a device d' not in M,
 * reached over the link (d, d'). With D devices and n nodes there are O(2^D * D * n) states,
 * and the device set is what keeps devices distinct — which is what makes per-stage memory,
 * per-device energy and the pipeline bottleneck well defined.
 *
 * Complexity per objective (D devices, n nodes, S <= 2^(D-1) device sets holding the source
 * and within max_stages). Every pass first tabulates what depends only on (u, d, a) (the link
 * into a stage) or on (d, b) (what leaves it), in O(D^2 n), so that the loops over device sets
 * only load, add and compare; gathering the best predecessor of each start costs O(S D^2 n) in
 * all. On top of that, per (device set, last device):
 *   latency, energy     O(n): the stage cost is linear in prefix sums of node times, so each
 *                       end takes a sliding-window minimum over its starts (memory, rate and
 *                       caps move both ends of the window monotonically). Energy carries the
 *                       pair (energy, latency) compared lexicographically: exact ties fall to
 *                       the faster plan. Total O(S D^2 n).
 *   throughput          by thresholds (least_bottleneck): the optimum is a stage time or a
 *                       link service, and whether some plan keeps all of them within T is a
 *                       boolean DP over bitsets of positions, O(S D (D n / 64 + r)) for r runs
 *                       of reachable ends. Checks close in on the optimum between the best plan
 *                       known (its chain split at best, a min-max DP in O(D n)) and the largest
 *                       infeasible T: 1 to 12 on random 300 x 8 instances; after 16, the DP (a
 *                       monotone deque, see relax_bottleneck) finishes, O(S D^2 n). Then a
 *                       latency pass with the optimum as a cap on every stage and link breaks
 *                       ties, on the states that can still finish under it (the same boolean DP
 *                       run backwards). Total O(S D^2 n) once, plus the checks.
 *   load latency        O(n log n): the M/D/1 stage cost is convex in the stage time, so the
 *                       costs are Monge and divide and conquer finds every best start; ties on
 *                       (load, latency) lexicographically. Total O(S D (D n + n log n)).
 *   lifetime            O(n) for devices whose lifetime does not depend on the stage (mains, or
 *                       no charge left), O(n log n) on battery devices (a tournament tree over
 *                       starts ranked by their share of the power); then a latency pass with
 *                       the optimal lifetime as a floor on every device, O(n log n) per state
 *                       row on battery devices. Total O(S D (D n + n log n)), twice.
 *   any objective with a latency bound on another quantity: a label-setting DP keeping, per
 *                       state, the Pareto set of (objective, bounded quantity[, latency]):
 *                       O(S D^2 n^2 L^2) with L labels per state;
 *   Pareto front        the same label-setting DP over (latency, bottleneck, energy).
 * The fast paths also prune, exactly: a state whose value plus a lower bound on the rest of the
 * chain (its nodes at their cheapest, one more link, and for the bottleneck the rest shared
 * among the devices still free) is worse than a finished chain is dropped, and so are states
 * that can no longer reach a free device or fit the rest under a bottleneck cap; later device
 * sets skip the dropped spans. A first chain through the devices, fastest first, supplies a
 * finished chain from the start (for throughput's latency pass, the plan of the optimal
 * bottleneck). This changes no bound above but often most of the work: on the 300 nodes x 8
 * devices benchmark, latency relaxes about a tenth of the states, throughput's latency pass
 * 32 of the 448 (device set, last device) rows.
 * Memory: O(S D n) per criterion, plus O(D^2 n) of tables and O(S D n / 64) words of bitsets.
 */
#include <assert.h>
#include <float.h>
#include <math.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "hotsplit/solver.h"

static const char *const objective_names[] = {
    [HS_OBJ_LATENCY] = "latency",   [HS_OBJ_THROUGHPUT] = "throughput",
    [HS_OBJ_ENERGY] = "energy",     [HS_OBJ_LIFETIME] = "lifetime",
    [HS_OBJ_LOAD_LATENCY] = "load-latency",
};
_Static_assert(sizeof objective_names / sizeof objective_names[0] == HS_OBJ_COUNT,
               "one name per objective");

const char *hs_objective_name(hs_objective o)
{
    return o >= 0 && o < HS_OBJ_COUNT ? objective_names[o] : "?";
}

int hs_objective_parse(const char *name)
{
    for (int i = 0; i < HS_OBJ_COUNT; i++)
        if (strcmp(objective_names[i], name) == 0)
            return i;
    return -1;
}

/* ---- device and link arithmetic shared by evaluation and search --------------------------- */

static const double NJ = 1e-9; /* joules per nanojoule */

/* fmax and fmin without the NaN rules, which keep them library calls in hot loops */
static double max2(double x, double y) { return x > y ? x : y; }
static double min2(double x, double y) { return x < y ? x : y; }

static bool has_link(const hs_cluster *c, int u, int v) { return c->links[u][v].bandwidth_bps > 0; }

static double service(const hs_cluster *c, int u, int v, double bytes)
{
    return bytes * 8.0 / c->links[u][v].bandwidth_bps;
}

/* M/D/1 response time of a server with the given service time at rate lambda. */
static double md1(double s, double lambda)
{
    if (lambda <= 0)
        return s;
    double u = lambda * s;
    return u >= 1 ? INFINITY : s + lambda * s * s / (2.0 * (1.0 - u));
}

/* May d run a non-empty stage? Not when excluded, nor when its battery is at or below its
 * floor (it stops taking work there). */
static bool can_host(const hs_device *d)
{
    return !d->excluded && !(d->battery.present && d->battery.level <= d->battery.floor);
}

static bool counted(const hs_device *d, const hs_constraints *k)
{
    return !d->excluded && (!k->battery_only || d->battery.present);
}

/* Lifetime of a battery device given its busy time and radio energy per inference. */
static double device_lifetime(const hs_device *d, double lambda, double busy, double radio_j)
{
    if (!d->battery.present || d->excluded)
        return INFINITY;
    double power = lambda * (d->power.active_w * busy + radio_j) +
                   d->power.idle_w * (1.0 - lambda * busy);
    double joules = d->battery.capacity_wh * 3600.0 * (d->battery.level - d->battery.floor);
    if (joules <= 0)
        return 0;
    return power > 0 ? joules / power : INFINITY;
}

/* ---- evaluation ---------------------------------------------------------------------------- */

static hs_status invalid(hs_error *err, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

static hs_status invalid(hs_error *err, const char *fmt, ...)
{
    char msg[HS_ERROR_MSG_MAX];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    return hs_error_set(err, HS_ERR_INVALID, "invalid plan: %s", msg);
}

/* Bytes the device of stage s of a valid plan sends and receives per request: the cut into
 * the stage, the cut or the delivery out of it, and the delivery when it is the sink. */
static double stage_io_bytes(const hs_problem *p, const hs_plan *plan, int s)
{
    const int S = plan->n_stages, n = p->n_nodes, d = plan->stages[s].device;
    const int last = plan->stages[S - 1].device, sink = p->cluster->sink;
    double bytes = s > 0 ? p->cut_bytes[plan->stages[s].first] : 0;
    if (s < S - 1)
        bytes += p->cut_bytes[plan->stages[s].last];
    else if (d != sink)
        bytes += p->cut_bytes[n];
    if (d == sink && last != sink)
        bytes += p->cut_bytes[n];
    if (s == 0)
        bytes += p->outside_bytes;
    return bytes;
}

static bool has_io_cost(const hs_problem *p)
{
    for (int d = 0; p->io_s_per_byte && d < p->cluster->n_devices; d++)
        if (p->io_s_per_byte[d] > 0)
            return true;
    return false;
}

hs_status hs_plan_evaluate(const hs_problem *p, const hs_constraints *k, hs_plan *plan,
                           hs_error *err)
{
    const hs_cluster *c = p->cluster;
    const int n = p->n_nodes, S = plan->n_stages, D = c->n_devices;
    const double lambda = k->rate;
    if (S < 1 || S > D)
        return invalid(err, "%d stages for %d devices", S, D);
    bool used[HS_MAX_DEVICES] = {false};
    for (int s = 0; s < S; s++) {
        const hs_stage *st = &plan->stages[s];
        int d = st->device;
        if (d < 0 || d >= D)
            return invalid(err, "stage %d: no device %d", s, d);
        if (used[d])
            return invalid(err, "device %s hosts two stages", c->devices[d].name);
        used[d] = true;
        int want_first = s ? plan->stages[s - 1].last : 0;
        if (st->first != want_first || st->last < st->first || st->last > n)
            return invalid(err, "stage %d covers [%d, %d), expected to start at %d", s,
                           st->first, st->last, want_first);
        if (s == 0 && d != c->source)
            return invalid(err, "stage 0 runs on %s, not on the source %s", c->devices[d].name,
                           c->devices[c->source].name);
        if (st->first == st->last && (s > 0 || S == 1))
            return invalid(err, "stage %d on %s is empty", s, c->devices[d].name);
        if (st->first < st->last && !can_host(&c->devices[d]))
            return invalid(err, "stage %d runs on %s, which is excluded or below its battery "
                           "floor", s, c->devices[d].name);
        if (s > 0 && !has_link(c, plan->stages[s - 1].device, d))
            return invalid(err, "no link %s -> %s", c->devices[plan->stages[s - 1].device].name,
                           c->devices[d].name);
    }
    if (plan->stages[S - 1].last != n)
        return invalid(err, "stages end at node %d of %d", plan->stages[S - 1].last, n);
    int last = plan->stages[S - 1].device;
    if (last != c->sink && !has_link(c, last, c->sink))
        return invalid(err, "no link %s -> sink %s", c->devices[last].name,
                       c->devices[c->sink].name);

    double busy[HS_MAX_DEVICES] = {0}, radio[HS_MAX_DEVICES] = {0};
    double latency = 0, bottleneck = 0, load = 0;
    for (int s = 0; s < S; s++) {
        const hs_stage *st = &plan->stages[s];
        int d = st->device;
        double t = 0, live = 0, weights = 0;
        for (int i = st->first; i < st->last; i++) {
            t += p->node_time[(size_t)d * n + i];
            weights += p->weight_bytes[i];
            if (p->live_bytes[i] > live)
                live = p->live_bytes[i];
        }
        if (p->io_s_per_byte)
            t += p->io_s_per_byte[d] * stage_io_bytes(p, plan, s);
        plan->stage_s[s] = t;
        plan->memory_bytes[s] = st->first < st->last ? weights + live : 0;
        busy[d] = t;
        latency += t;
        load += md1(t, lambda);
        if (t > bottleneck)
            bottleneck = t;
        plan->transfer_s[s] = plan->transfer_bytes[s] = 0;
        if (s > 0) {
            int u = plan->stages[s - 1].device;
            double bytes = p->cut_bytes[st->first], sv = service(c, u, d, bytes);
            plan->transfer_bytes[s] = bytes;
            plan->transfer_s[s] = c->links[u][d].latency_s + sv;
            latency += plan->transfer_s[s];
            load += c->links[u][d].latency_s + md1(sv, lambda);
            if (sv > bottleneck)
                bottleneck = sv;
            radio[u] += bytes * c->devices[u].power.tx_nj_per_byte * NJ;
            radio[d] += bytes * c->devices[d].power.rx_nj_per_byte * NJ;
        }
    }
    plan->delivery_s = plan->delivery_bytes = 0;
    if (last != c->sink) {
        double bytes = p->cut_bytes[n], sv = service(c, last, c->sink, bytes);
        plan->delivery_bytes = bytes;
        plan->delivery_s = c->links[last][c->sink].latency_s + sv;
        latency += plan->delivery_s;
        load += c->links[last][c->sink].latency_s + md1(sv, lambda);
        if (sv > bottleneck)
            bottleneck = sv;
        radio[last] += bytes * c->devices[last].power.tx_nj_per_byte * NJ;
        radio[c->sink] += bytes * c->devices[c->sink].power.rx_nj_per_byte * NJ;
    }
    plan->transfer_s[S] = plan->delivery_s;

    double energy = 0, lifetime = INFINITY;
    for (int d = 0; d < D; d++) {
        const hs_device *dv = &c->devices[d];
        if (counted(dv, k)) {
            energy += dv->power.active_w * busy[d] + radio[d];
            if (lambda > 0)
                energy += dv->power.idle_w * (1.0 / lambda - busy[d]);
        }
        double life = device_lifetime(dv, lambda, busy[d], radio[d]);
        if (life < lifetime)
            lifetime = life;
    }
    plan->latency_s = latency;
    plan->bottleneck_s = bottleneck;
    plan->throughput_rps = bottleneck > 0 ? 1.0 / bottleneck : INFINITY;
    plan->energy_j = energy;
    plan->lifetime_s = lifetime;
    plan->load_latency_s = load;
    plan->sustainable = lambda <= 0 || lambda * bottleneck < 1.0;
    return HS_OK;
}

/* The quantity a latency bound applies to. */
static double bounded(const hs_constraints *k, const hs_plan *plan)
{
    return k->rate > 0 ? plan->load_latency_s : plan->latency_s;
}

static double objective_value(hs_objective o, const hs_plan *plan)
{
    switch (o) {
    case HS_OBJ_LATENCY: return plan->latency_s;
    case HS_OBJ_THROUGHPUT: return plan->bottleneck_s;
    case HS_OBJ_ENERGY: return plan->energy_j;
    case HS_OBJ_LIFETIME: return -plan->lifetime_s;
    case HS_OBJ_LOAD_LATENCY: return plan->load_latency_s;
    case HS_OBJ_COUNT: break;
    }
    return INFINITY;
}

/* The serial resources of an evaluated plan and their time per request: each stage's compute,
 * each transfer's service on its link (without the link's latency, which does not occupy it),
 * the delivery's. Returns how many. */
static int resource_times(const hs_problem *p, const hs_plan *plan, double *t)
{
    const hs_cluster *c = p->cluster;
    int n = 0;
    for (int s = 0; s < plan->n_stages; s++) {
        t[n++] = plan->stage_s[s];
        if (s > 0) {
            int u = plan->stages[s - 1].device, d = plan->stages[s].device;
            t[n++] = service(c, u, d, plan->transfer_bytes[s]);
        }
    }
    int last = plan->stages[plan->n_stages - 1].device;
    t[n++] = last != c->sink ? service(c, last, c->sink, plan->delivery_bytes) : 0;
    return n;
}

double hs_plan_elastic_bottleneck(const hs_problem *p, const hs_plan *plan, double share)
{
    if (plan->n_stages != 2 || !(share > 0))
        return plan->bottleneck_s;
    double t[2 * HS_MAX_DEVICES + 1];
    int n = resource_times(p, plan, t); /* stage 0, stage 1, then the links */
    double a = t[0], b = t[1];
    double worst = fmax((a + b) / 2, fmax(a, b) - share * (a + b));
    for (int r = 2; r < n; r++)
        worst = fmax(worst, t[r]);
    return worst;
}

double hs_plan_mix(const hs_problem *p, const hs_plan *a, const hs_plan *b, double *share)
{
    *share = 0;
    if (a->n_stages != b->n_stages || a->n_stages < 1)
        return INFINITY;
    for (int s = 0; s < a->n_stages; s++)
        if (a->stages[s].device != b->stages[s].device)
            return INFINITY;
    double ta[2 * HS_MAX_DEVICES + 1], tb[2 * HS_MAX_DEVICES + 1];
    int n = resource_times(p, a, ta);
    resource_times(p, b, tb);
    /* The mixed bottleneck max_r (1 - f) ta[r] + f tb[r] is convex and piecewise linear in f:
     * its minimum is at f = 0, f = 1 or where two of the lines cross. */
    double cand[1 + (2 * HS_MAX_DEVICES + 1) * HS_MAX_DEVICES * 2];
    int n_cand = 0;
    cand[n_cand++] = 1;
    for (int i = 0; i < n; i++)
        for (int j = i + 1; j < n; j++) {
            double denom = (tb[i] - ta[i]) - (tb[j] - ta[j]);
            double f = denom != 0 ? (ta[j] - ta[i]) / denom : 0;
            if (f > 0 && f < 1)
                cand[n_cand++] = f;
        }
    double best = 0, best_f = 0;
    for (int r = 0; r < n; r++)
        best = fmax(best, ta[r]);
    for (int k = 0; k < n_cand; k++) {
        double m = 0;
        for (int r = 0; r < n; r++)
            m = fmax(m, (1 - cand[k]) * ta[r] + cand[k] * tb[r]);
        if (m < best)
            best = m, best_f = cand[k];
    }
    *share = best_f;
    return best;
}

double hs_plan_score(const hs_problem *p, const hs_constraints *k, hs_objective o,
                     const hs_plan *plan)
{
    for (int s = 0; s < plan->n_stages; s++)
        if (plan->memory_bytes[s] > p->cluster->devices[plan->stages[s].device].memory_bytes)
            return INFINITY;
    if (!plan->sustainable)
        return INFINITY;
    if (k->max_latency_s > 0 && bounded(k, plan) > k->max_latency_s)
        return INFINITY;
    return objective_value(o, plan);
}

/* ---- the search ---------------------------------------------------------------------------- */

/* Criteria a label can carry. */
enum { C_LATENCY, C_BOTTLENECK, C_ENERGY, C_LIFE, C_LOAD, C_COUNT };

/* How the states of one (device set, last device) are computed from the smaller sets: the
 * general label-setting DP, or a fast path for one criterion (see the top of the file). */
typedef enum {
    RELAX_GENERAL,
    RELAX_LATENCY,
    RELAX_ENERGY,
    RELAX_LOAD,
    RELAX_BOTTLENECK,
    RELAX_LIFE,
} relax_kind;

/* General DP: each state holds a Pareto set of labels in search.pool. */
typedef struct label {
    double v[4];
    int a;      /* start of the last stage */
    int8_t u;   /* previous device, -1 for the first stage */
    int32_t from; /* label index in the predecessor state, -1 for the first stage */
} label;

typedef struct state_labels {
    int32_t first, count; /* into search.pool */
} state_labels;

/* Fast paths: one value per state. A device set has one row per device in it (row_of); a row
 * gets its place in the arenas when first written, in the order of the search, so that the
 * memory touched stays dense. Entries are indexed at_row(mask, d, b). */
typedef struct layer {
    double *v0;     /* the criterion; +inf: unreachable */
    double *v1;     /* the latency that breaks ties of energy and load (NULL for the others) */
    int32_t *from;  /* start of the last stage, -1 for the first stage (the previous device
                       is found again when backtracking: see best_pred) */
    int32_t *slot;  /* [row]: its place in the arenas, -1: none yet */
    int32_t *span;  /* [row][2]: first and last b whose state is reachable (first > last: none,
                       and the row may never have been written), so that later device sets
                       skip the rest */
} layer;

typedef struct search {
    const hs_problem *p;
    const hs_cluster *c;
    const hs_constraints *k;
    int n, D, max_stages;
    double lambda;
    /* what the DP minimises: criteria ids, and how they combine (max for bottleneck/life) */
    relax_kind kind;
    int n_crit;
    int crit[4];
    int tie;            /* index in label.v of the latency breaking ties, -1: none */
    /* local caps, for tie-break passes: every stage/link service <= cap_bottleneck; every
     * device lifetime >= floor_life */
    double cap_bottleneck, floor_life;
    double bound;       /* on the bounded quantity, 0 = none */
    double max_idle_life; /* chains whose idle devices' -lifetime exceeds this are dropped */
    bool ignore_memory, ignore_rate;
    double *prefix;     /* [D][n+1] */
    double *wprefix;    /* [n+1] */
    int *emax;          /* [D][n+1]: last end b such that stage [a, b) fits on d */
    /* Per pass (they depend on the caps), everything that depends only on (u, d, a) or on
     * (d, b), so that the loops over device sets only load and add. A link that is missing or
     * breaks the rate or the cap has +inf in every in_* entry; a delivery likewise in out_sv.
     * in_load, in_energy, in_sv and next_sv are filled only for the searches that use them. */
    double *in_lat, *in_load, *in_sv, *in_energy; /* [u][d][a], a < n: the link into d */
    double *link_sv;    /* [u][d][a]: the service of cut a on link (u, d), +inf: no link; the
                           same in every pass, so filled once */
    double *rx;         /* [d][a]: radio energy of d receiving cut a */
    double *out_lat, *out_load, *out_sv, *out_radio; /* [d][b]: what leaves d at b */
    double *next_lat, *next_sv; /* [d][b], b < n: the least a link out of d at cut b takes */
    int *lo;            /* [d][b]: first start a of a stage [a, b) on d within memory, rate, cap */
    /* Battery devices (lifetime): the power of a stage [a, b) is Q(b) - R(a). */
    double *Q;          /* [d][b] */
    double *R_sorted;   /* [d][k]: R(a) in decreasing order */
    int *order;         /* [d][k]: the a of R_sorted[d][k] */
    int *rank;          /* [d][a]: k such that order[d][k] = a */
    /* general DP states: per device set (index = mask), per device, per position */
    state_labels **states;
    label *pool;
    size_t n_pool, cap_pool;
    layer *layers;
    void *arena;        /* the layers' storage, one block kept from one pass to the next */
    double *arena_v0, *arena_v1; /* parts of it (v1 only if the first pass needs it) */
    int32_t *arena_from, *arena_span, *arena_slot;
    int32_t rows_used;  /* rows placed in the arenas */
    /* Pruning (fast paths): a state whose value, with a lower bound on what the rest of the
     * chain adds, is already worse than a finished chain cannot lead to an optimum. */
    double *rest;       /* [b]: lower bound on what nodes [b, n) add to an additive criterion
                           (radio energies are not negative, so each node adds at least its
                           cheapest compute) */
    double *rest_sum;   /* [b]: the least compute time nodes [b, n) need */
    double *rest_max;   /* [b]: the least time of the slowest of nodes [b, n) */
    double share[HS_MAX_DEVICES]; /* max over nodes of their least time / their time on d */
    double best_end;    /* the best finished chain so far */
    double known_end;   /* the value of a plan known before the search, +inf: none */
    /* Thresholds (see "thresholds" below): bitsets over positions 0..n, `words` words each,
     * allocated on first use. A device set is indexed without the source (set_index). */
    int words;
    int *reach;         /* [d][a]: the last end b of a stage [a, b) on d within T; one of: */
    int *reach_of[2];   /* for the checks and for co, kept apart so that each moves little */
    double reach_T[2];  /* their T, NAN: not filled yet */
    int *reach_lo;      /* [d][b]: the first start a of a stage [a, b) on d within T */
    int *cut_order;     /* [k]: the cuts a < n by increasing bytes (so by service on any link) */
    uint64_t *cut_prefix; /* [k][words]: the first k cuts of cut_order */
    const uint64_t *link_ok[HS_MAX_DEVICES][HS_MAX_DEVICES]; /* cuts (u, d) carries within T */
    bool out_ok[HS_MAX_DEVICES]; /* d is the sink or delivers to it within T */
    uint64_t *fwd;      /* [set][d]: the ends a chain over set reaches on d within T */
    uint64_t *co;       /* [set][d], set without the source: d in set, the starts on d, d not
                           in set, the ends on d (n: it delivers), from which a chain over
                           devices of set finishes within T */
    unsigned *fwd_any, *co_any; /* [set]: the devices whose bitset in fwd, co is not empty */
    uint64_t *starts;   /* [words]: scratch */
    int *lo_any;        /* [d][b]: reach_lo without a threshold (memory and rate only) */
    double *chain_f;    /* [3][n+1]: scratch of chain_bottleneck */
    int *chain_arg;     /* [D][n+1]: the start of each stage's best end, by stage */
    int *chain_dq;      /* [n+1] */
    bool use_co;        /* co holds this pass's cap: finish_row drops the states it lacks */
} search;

static double pfx(const search *s, int d, int i) { return s->prefix[(size_t)d * (s->n + 1) + i]; }
static size_t at_db(const search *s, int d, int b) { return (size_t)d * (s->n + 1) + b; }
static int row_of(unsigned mask, int d) { return __builtin_popcount(mask & ((1u << d) - 1)); }
static size_t at_row(const search *s, unsigned mask, int d, int b)
{
    return (size_t)s->layers[mask].slot[row_of(mask, d)] * (s->n + 1) + b;
}
static int32_t *span_of(const search *s, unsigned mask, int d)
{
    return s->layers[mask].span + 2 * row_of(mask, d);
}
static size_t at_in(const search *s, int u, int d, int a)
{
    return ((size_t)u * s->D + d) * s->n + a;
}

static hs_status search_init(search *s, const hs_problem *p, const hs_constraints *k,
                             bool ignore_memory, bool ignore_rate)
{
    memset(s, 0, sizeof *s);
    s->ignore_memory = ignore_memory;
    s->ignore_rate = ignore_rate;
    s->p = p;
    s->c = p->cluster;
    s->k = k;
    s->n = p->n_nodes;
    s->D = p->cluster->n_devices;
    s->lambda = k->rate > 0 ? k->rate : 0;
    s->max_stages = k->max_stages > 0 && k->max_stages < s->D ? k->max_stages : s->D;
    s->cap_bottleneck = INFINITY;
    s->floor_life = -INFINITY;
    s->max_idle_life = INFINITY;
    s->known_end = INFINITY;
    s->tie = -1;
    const int n = s->n, D = s->D;
    const size_t db = (size_t)D * (n + 1), udn = (size_t)D * D * n;
    s->prefix = malloc(db * sizeof *s->prefix);
    s->wprefix = malloc((size_t)(n + 1) * sizeof *s->wprefix);
    s->emax = malloc(db * sizeof *s->emax);
    s->states = calloc((size_t)1 << D, sizeof *s->states);
    s->layers = calloc((size_t)1 << D, sizeof *s->layers);
    s->in_lat = malloc(udn * sizeof(double));
    s->rx = malloc(db * sizeof(double));
    s->out_lat = malloc(db * sizeof(double));
    s->out_load = malloc(db * sizeof(double));
    s->out_sv = malloc(db * sizeof(double));
    s->out_radio = malloc(db * sizeof(double));
    s->next_lat = malloc(db * sizeof(double));
    s->next_sv = malloc(db * sizeof(double));
    s->lo = malloc(db * sizeof(int));
    s->Q = malloc(db * sizeof(double));
    s->R_sorted = malloc(db * sizeof(double));
    s->order = malloc(db * sizeof(int));
    s->rank = malloc(db * sizeof(int));
    s->rest = malloc((size_t)(n + 1) * sizeof(double));
    s->rest_sum = malloc((size_t)(n + 1) * sizeof(double));
    s->rest_max = malloc((size_t)(n + 1) * sizeof(double));
    int *window = malloc((size_t)(n + 1) * sizeof *window); /* monotone deque of live maxima */
    if (!s->prefix || !s->wprefix || !s->emax || !s->states || !s->layers || !s->in_lat ||
        !s->rx || !s->out_lat || !s->out_load ||
        !s->out_sv || !s->out_radio || !s->next_lat || !s->next_sv || !s->lo || !s->Q || !s->R_sorted || !s->order ||
        !s->rank || !s->rest || !s->rest_sum || !s->rest_max ||
        !window) {
        free(window);
        return HS_ERR_NOMEM;
    }
    s->wprefix[0] = 0;
    for (int i = 0; i < n; i++)
        s->wprefix[i + 1] = s->wprefix[i] + p->weight_bytes[i];
    for (int d = 0; d < D; d++) {
        double *P = &s->prefix[(size_t)d * (n + 1)];
        P[0] = 0;
        for (int i = 0; i < n; i++)
            P[i + 1] = P[i] + p->node_time[(size_t)d * n + i];
        /* Two pointers: stage [a, b) fits while weights + max live <= memory; the largest b
         * never decreases as a grows. */
        double cap = s->c->devices[d].memory_bytes;
        int b = 0, head = 0, tail = 0;
        for (int a = 0; a <= n; a++) {
            if (b < a) {
                b = a;
                head = tail = 0;
            }
            while (head < tail && window[head] < a)
                head++;
            while (b < n) {
                double live = p->live_bytes[b];
                double top = head < tail ? p->live_bytes[window[head]] : 0;
                double need = s->wprefix[b + 1] - s->wprefix[a] + (live > top ? live : top);
                if (need > cap && !s->ignore_memory)
                    break;
                while (head < tail && p->live_bytes[window[tail - 1]] <= live)
                    tail--;
                window[tail++] = b++;
            }
            s->emax[(size_t)d * (n + 1) + a] = b;
        }
    }
    free(window);
    return HS_OK;
}

static void free_states(search *s)
{
    for (size_t m = 0; m < (size_t)1 << s->D; m++) {
        if (s->states)
            free(s->states[m]);
    }
}

static void search_free(search *s)
{
    free_states(s);
    free(s->states);
    free(s->layers);
    void *arrays[] = {s->pool,     s->arena,
                      s->prefix,   s->wprefix,  s->emax,     s->in_lat,     s->in_load,
                      s->in_sv,    s->in_energy, s->rx,      s->out_lat,    s->out_load,
                      s->out_sv,   s->out_radio, s->next_lat, s->next_sv, s->lo,      s->Q,          s->R_sorted,
                      s->order,    s->rank,     s->rest,     s->rest_sum,
                      s->rest_max, s->reach_of[0], s->reach_lo, s->cut_order, s->cut_prefix,
                      s->fwd,      s->co,       s->starts,   s->link_sv, s->lo_any,
                      s->chain_f,  s->chain_arg, s->chain_dq, s->fwd_any, s->co_any};
    for (size_t i = 0; i < sizeof arrays / sizeof arrays[0]; i++)
        free(arrays[i]);
}

static int emax(const search *s, int d, int a)
{
    return s->ignore_memory ? s->n : s->emax[(size_t)d * (s->n + 1) + a];
}

static state_labels *state_at(const search *s, unsigned mask, int d, int b)
{
    return s->states[mask] ? &s->states[mask][at_db(s, d, b)] : NULL;
}

/* A stage time or link service within the rate and a threshold. */
static bool fits_within(const search *s, double x, double threshold)
{
    return (s->ignore_rate || s->lambda * x < 1.0) && x <= threshold;
}

static bool link_fits(const search *s, double sv) { return fits_within(s, sv, s->cap_bottleneck); }

static bool stage_fits(const search *s, double stage)
{
    return fits_within(s, stage, s->cap_bottleneck);
}

/* Energy per second of stage time on d, net of the idle power it replaces. */
static double stage_power(const search *s, int d)
{
    const hs_device *dv = &s->c->devices[d];
    if (!counted(dv, s->k))
        return 0;
    return dv->power.active_w - (s->lambda > 0 ? dv->power.idle_w : 0);
}

/* The delivery's rx energy at an idle sink, charged to the last stage when counted. */
static double idle_sink_energy(const search *s, int d, int b, unsigned mask)
{
    const hs_cluster *c = s->c;
    const hs_device *sink = &c->devices[c->sink];
    if (b < s->n || d == c->sink || (mask & (1u << c->sink)) || !counted(sink, s->k))
        return 0;
    return s->p->cut_bytes[s->n] * sink->power.rx_nj_per_byte * NJ;
}

/* Joules a battery device can spend above its floor (<= 0: none, it lives 0 s). */
static double usable_joules(const hs_device *d)
{
    return d->battery.capacity_wh * 3600.0 * (d->battery.level - d->battery.floor);
}

/* Devices whose lifetime depends on the stage they run: battery-powered with charge left. */
static bool life_varies(const hs_device *d)
{
    return d->battery.present && !d->excluded && usable_joules(d) > 0;
}

/* Allocates *table for D * D * n entries if it is needed and not there yet. */
static bool ensure_table(const search *s, bool needed, double **table)
{
    if (needed && !*table)
        *table = malloc((size_t)s->D * s->D * s->n * sizeof(double));
    return !needed || *table;
}

/* Fills link_sv, once. Returns false if out of memory. */
static bool link_services(search *s)
{
    if (s->link_sv)
        return true;
    if (!ensure_table(s, true, &s->link_sv))
        return false;
    const hs_cluster *c = s->c;
    const double *restrict cut = s->p->cut_bytes;
    for (int u = 0; u < s->D; u++)
        for (int d = 0; d < s->D; d++) {
            double *restrict sv = s->link_sv + at_in(s, u, d, 0);
            const double bandwidth = c->links[u][d].bandwidth_bps;
            if (u == d || !has_link(c, u, d)) {
                for (int a = 0; a < s->n; a++)
                    sv[a] = INFINITY;
                continue;
            }
            for (int a = 0; a < s->n; a++) /* service(), in a loop that vectorises */
                sv[a] = cut[a] * 8.0 / bandwidth;
        }
    return true;
}

/* Fills the per-pass tables. The radio energy of each device (its rx at a, its tx at b or of
 * the delivery, and the results coming back to it when it is the sink) is charged at its own
 * transition, so that its lifetime is known there; an idle sink's rx of the delivery is
 * charged to the last stage (idle_sink_energy). */
static hs_status prepare_tables(search *s)
{
    const hs_cluster *c = s->c;
    const double *cut = s->p->cut_bytes;
    const int n = s->n, D = s->D;
    const bool load = s->kind == RELAX_LOAD || s->kind == RELAX_GENERAL;
    const bool energy = s->kind == RELAX_ENERGY;
    /* the services bound the bottleneck of the rest (finish_row), which co does better */
    const bool bottleneck = s->kind == RELAX_BOTTLENECK || s->kind == RELAX_LIFE ||
                            s->kind == RELAX_GENERAL || (isfinite(s->cap_bottleneck) && !s->use_co);
    if (!ensure_table(s, load, &s->in_load) || !ensure_table(s, energy, &s->in_energy) ||
        !ensure_table(s, bottleneck, &s->in_sv) || !link_services(s))
        return HS_ERR_NOMEM;
    /* link_fits, written so that the loops below vectorise */
    const double cap = s->cap_bottleneck, lambda = s->lambda;
    const bool no_rate = s->ignore_rate;
    for (int u = 0; u < D; u++)
        for (int d = 0; d < D; d++) {
            const hs_device *dv = &c->devices[d];
            const hs_link *l = &c->links[u][d];
            const bool linked = u != d && has_link(c, u, d);
            const size_t i0 = at_in(s, u, d, 0);
            const double *restrict raw = s->link_sv + i0;
            double *restrict lat = s->in_lat + i0;
            for (int a = 0; a < n; a++) {
                bool fits = linked & (raw[a] <= cap) & (no_rate | (lambda * raw[a] < 1.0));
                lat[a] = fits ? l->latency_s + raw[a] : INFINITY;
            }
            if (bottleneck) {
                double *restrict sv = s->in_sv + i0;
                for (int a = 0; a < n; a++)
                    sv[a] = lat[a] < INFINITY ? raw[a] : INFINITY;
            }
            for (int a = 0; a < n && (load || energy); a++) {
                size_t i = i0 + a;
                double sv = raw[a];
                bool fits = linked && link_fits(s, sv);
                if (load)
                    s->in_load[i] = fits ? l->latency_s + md1(sv, s->lambda) : INFINITY;
                if (energy)
                    s->in_energy[i] = !fits              ? INFINITY
                                      : counted(dv, s->k) ? cut[a] * dv->power.rx_nj_per_byte * NJ
                                                          : 0;
            }
        }
    for (int d = 0; d < D; d++) {
        const hs_device *dv = &c->devices[d];
        for (int b = 0; b <= n; b++) {
            size_t i = at_db(s, d, b);
            s->rx[i] = cut[b] * dv->power.rx_nj_per_byte * NJ;
            s->out_lat[i] = s->out_load[i] = s->out_sv[i] = 0;
            if (b < n) {
                s->out_radio[i] = cut[b] * dv->power.tx_nj_per_byte * NJ;
                if (d == c->sink) /* the sink is not last: the results come back to it */
                    s->out_radio[i] += cut[n] * dv->power.rx_nj_per_byte * NJ;
            } else if (d == c->sink) {
                s->out_radio[i] = 0;
            } else {
                double sv = has_link(c, d, c->sink) ? service(c, d, c->sink, cut[n]) : INFINITY;
                s->out_sv[i] = link_fits(s, sv) ? sv : INFINITY;
                s->out_lat[i] = c->links[d][c->sink].latency_s + sv;
                s->out_load[i] = c->links[d][c->sink].latency_s + md1(sv, s->lambda);
                s->out_radio[i] = cut[n] * dv->power.tx_nj_per_byte * NJ;
            }
        }
        double *restrict next_lat = s->next_lat + at_db(s, d, 0);
        double *restrict next_sv = s->next_sv + at_db(s, d, 0);
        for (int b = 0; b < n; b++)
            next_lat[b] = next_sv[b] = INFINITY;
        for (int u = 0; u < D; u++) {
            const double *restrict lat = s->in_lat + at_in(s, d, u, 0);
            for (int b = 0; b < n; b++)
                next_lat[b] = min2(next_lat[b], lat[b]);
            if (bottleneck) {
                const double *restrict sv = s->in_sv + at_in(s, d, u, 0);
                for (int b = 0; b < n; b++)
                    next_sv[b] = min2(next_sv[b], sv[b]);
            }
        }
        /* lo(b) never decreases: a start too early for b (memory, or a stage too long) is
         * too early for b + 1 too. With co, the threshold tables have it already. */
        if (s->use_co) {
            memcpy(s->lo + at_db(s, d, 0), s->reach_lo + at_db(s, d, 0),
                   (size_t)(n + 1) * sizeof(int));
            continue;
        }
        int a = 0;
        for (int b = 0; b <= n; b++) {
            while (a < b && (emax(s, d, a) < b || !stage_fits(s, pfx(s, d, b) - pfx(s, d, a))))
                a++;
            s->lo[at_db(s, d, b)] = a;
        }
    }
    return HS_OK;
}

typedef struct ranked {
    double r;
    int a;
} ranked;

static int by_r_desc(const void *x, const void *y)
{
    const ranked *p = x, *q = y;
    return (p->r < q->r) - (p->r > q->r);
}

/* Battery devices: power = idle + lambda (active - idle) busy + lambda radio with busy =
 * P[b] - P[a] and radio = rx(a) + out_radio(b), i.e. Q(b) - R(a); starts sorted by R. */
static hs_status prepare_power(search *s)
{
    const int n = s->n;
    ranked *tmp = malloc((size_t)n * sizeof *tmp);
    if (!tmp)
        return HS_ERR_NOMEM;
    for (int d = 0; d < s->D; d++) {
        const hs_device *dv = &s->c->devices[d];
        if (!life_varies(dv))
            continue;
        double slope = s->lambda * (dv->power.active_w - dv->power.idle_w);
        for (int b = 0; b <= n; b++)
            s->Q[at_db(s, d, b)] = dv->power.idle_w + slope * pfx(s, d, b) +
                                   s->lambda * s->out_radio[at_db(s, d, b)];
        for (int a = 0; a < n; a++)
            tmp[a] = (ranked){slope * pfx(s, d, a) - s->lambda * s->rx[at_db(s, d, a)], a};
        qsort(tmp, (size_t)n, sizeof *tmp, by_r_desc);
        for (int k = 0; k < n; k++) {
            s->R_sorted[at_db(s, d, k)] = tmp[k].r;
            s->order[at_db(s, d, k)] = tmp[k].a;
            s->rank[at_db(s, d, tmp[k].a)] = k;
        }
    }
    free(tmp);
    return HS_OK;
}

static double life_of(const search *s, int d, double stage, double radio)
{
    return device_lifetime(&s->c->devices[d], s->lambda, stage, radio);
}

typedef struct step {
    double v[C_COUNT];
    bool ok;
} step;

/* Every criterion of the transition "stage [a, b) on d after device u (-1: none), device set
 * mask"; not ok when a link is missing or breaks the rate or a cap or floor. */
static step transition(const search *s, int u, int d, int a, int b, unsigned mask)
{
    step t = {.ok = false};
    double stage = pfx(s, d, b) - pfx(s, d, a);
    size_t o = at_db(s, d, b);
    if (!stage_fits(s, stage) || s->out_sv[o] == INFINITY)
        return t;
    double in_lat = 0, in_load = 0, in_sv = 0, rx = 0;
    if (u >= 0) {
        size_t i = at_in(s, u, d, a);
        if (s->in_sv[i] == INFINITY)
            return t;
        in_lat = s->in_lat[i];
        in_load = s->in_load[i];
        in_sv = s->in_sv[i];
        rx = s->rx[at_db(s, d, a)];
    }
    double radio = rx + s->out_radio[o];
    double life = life_of(s, d, stage, radio);
    if (life < s->floor_life)
        return t;
    t.v[C_LATENCY] = in_lat + stage + s->out_lat[o];
    t.v[C_LOAD] = in_load + md1(stage, s->lambda) + s->out_load[o];
    t.v[C_BOTTLENECK] = fmax(stage, fmax(in_sv, s->out_sv[o]));
    t.v[C_ENERGY] = stage_power(s, d) * stage + idle_sink_energy(s, d, b, mask) +
                    (counted(&s->c->devices[d], s->k) ? radio : 0);
    t.v[C_LIFE] = -life;
    t.ok = true;
    return t;
}

static bool is_max_criterion(int crit) { return crit == C_BOTTLENECK || crit == C_LIFE; }

/* ---- label pool and states ----------------------------------------------------------------- */

static hs_status pool_reserve(search *s, size_t more)
{
    if (s->n_pool + more <= s->cap_pool)
        return HS_OK;
    size_t cap = s->cap_pool ? s->cap_pool : 4096;
    while (cap < s->n_pool + more)
        cap *= 2;
    label *grown = realloc(s->pool, cap * sizeof *grown);
    if (!grown)
        return HS_ERR_NOMEM;
    s->pool = grown;
    s->cap_pool = cap;
    return HS_OK;
}

/* Adds a label to the open state (the labels at pool[first..n_pool)), keeping only the
 * non-dominated ones. */
static hs_status state_offer(search *s, size_t first, const label *l)
{
    int k = s->n_crit;
    for (size_t i = first; i < s->n_pool; i++) {
        const label *o = &s->pool[i];
        bool o_le = true, l_le = true;
        for (int j = 0; j < k; j++) {
            if (o->v[j] > l->v[j])
                o_le = false;
            if (l->v[j] > o->v[j])
                l_le = false;
        }
        if (o_le)
            return HS_OK; /* dominated (or equal) */
        if (l_le) {       /* l dominates o: drop o */
            s->pool[i] = s->pool[--s->n_pool];
            i--;
        }
    }
    hs_status st = pool_reserve(s, 1);
    if (st == HS_OK)
        s->pool[s->n_pool++] = *l;
    return st;
}

static unsigned source_bit(const search *s) { return 1u << s->c->source; }

static bool mask_usable(const search *s, unsigned mask)
{
    return (mask & source_bit(s)) && __builtin_popcount(mask) <= s->max_stages;
}

static hs_status alloc_states(search *s, unsigned mask)
{
    s->states[mask] = calloc((size_t)s->D * (s->n + 1), sizeof **s->states);
    return s->states[mask] ? HS_OK : HS_ERR_NOMEM;
}

/* Points every usable device set's layer into the arenas, all rows empty. */
static hs_status alloc_layers(search *s)
{
    const size_t width = (size_t)s->n + 1;
    const bool lex = s->kind == RELAX_ENERGY || s->kind == RELAX_LOAD;
    size_t rows = 0;
    for (unsigned mask = 1; mask < (1u << s->D); mask++)
        if (mask_usable(s, mask))
            rows += (size_t)__builtin_popcount(mask);
    if (!s->arena) {
        size_t cells = rows * width, doubles = lex ? 2 * cells : cells;
        s->arena = malloc(doubles * sizeof(double) + (cells + 3 * rows) * sizeof(int32_t));
        if (!s->arena)
            return HS_ERR_NOMEM;
        s->arena_v0 = s->arena;
        s->arena_v1 = lex ? s->arena_v0 + cells : NULL;
        s->arena_from = (int32_t *)(s->arena_v0 + doubles);
        s->arena_span = s->arena_from + cells;
        s->arena_slot = s->arena_span + 2 * rows;
    }
    assert(!lex || s->arena_v1); /* only a first pass is lexicographic */
    size_t row = 0;
    for (unsigned mask = 1; mask < (1u << s->D); mask++) {
        if (!mask_usable(s, mask))
            continue;
        s->layers[mask] = (layer){s->arena_v0, lex ? s->arena_v1 : NULL, s->arena_from,
                                  s->arena_slot + row, s->arena_span + 2 * row};
        row += (size_t)__builtin_popcount(mask);
    }
    for (size_t i = 0; i < row; i++) {
        s->arena_slot[i] = -1;
        s->arena_span[2 * i] = 0;
        s->arena_span[2 * i + 1] = -1;
    }
    s->rows_used = 0;
    return HS_OK;
}

/* Places the row of (mask, d) if needed and marks its states unreachable, before a relaxation
 * or the seeding fills them. */
static void clear_row(search *s, unsigned mask, int d)
{
    layer *l = &s->layers[mask];
    if (l->slot[row_of(mask, d)] < 0)
        l->slot[row_of(mask, d)] = s->rows_used++;
    size_t row = at_row(s, mask, d, 0);
    for (int b = 0; b <= s->n; b++)
        l->v0[row + b] = INFINITY;
    if (l->v1)
        for (int b = 0; b <= s->n; b++)
            l->v1[row + b] = INFINITY;
}

static bool has_states(const search *s, unsigned mask)
{
    return s->kind == RELAX_GENERAL ? s->states[mask] != NULL : s->layers[mask].slot != NULL;
}

/* Stage 0: [0, b) on the source (empty when b = 0, which only a later stage can complete). */
static hs_status seed_source(search *s)
{
    int src = s->c->source;
    unsigned mask = source_bit(s);
    hs_status st = s->kind == RELAX_GENERAL ? alloc_states(s, mask) : HS_OK;
    int last = can_host(&s->c->devices[src]) ? emax(s, src, 0) : 0;
    if (s->kind != RELAX_GENERAL)
        clear_row(s, mask, src);
    for (int b = 0; b <= last && st == HS_OK; b++) {
        step t = transition(s, -1, src, 0, b, mask);
        if (!t.ok)
            continue;
        if (s->kind != RELAX_GENERAL) {
            layer *l = &s->layers[mask];
            l->v0[at_row(s, mask, src, b)] = t.v[s->crit[0]];
            if (l->v1)
                l->v1[at_row(s, mask, src, b)] = t.v[C_LATENCY];
            l->from[at_row(s, mask, src, b)] = -1;
            continue;
        }
        label l = {.a = 0, .u = -1, .from = -1};
        for (int j = 0; j < s->n_crit; j++)
            l.v[j] = t.v[s->crit[j]];
        state_labels *sl = state_at(s, mask, src, b);
        sl->first = (int32_t)s->n_pool;
        if ((st = state_offer(s, s->n_pool, &l)) == HS_OK)
            sl->count = (int32_t)(s->n_pool - (size_t)sl->first);
    }
    return st;
}

/* ---- the general label-setting DP ---------------------------------------------------------- */

static bool within_bound(const search *s, const double *v)
{
    if (s->bound <= 0)
        return true;
    for (int j = 0; j < s->n_crit; j++)
        if ((s->crit[j] == C_LATENCY || s->crit[j] == C_LOAD) &&
            s->crit[j] == (s->lambda > 0 ? C_LOAD : C_LATENCY))
            return v[j] <= s->bound;
    return true;
}

/* All states of device set `mask` with last device d, every start a and predecessor u. */
static hs_status relax_general(search *s, unsigned mask, int d)
{
    unsigned pm = mask & ~(1u << d);
    for (int b = 1; b <= s->n; b++) {
        state_labels *sl = state_at(s, mask, d, b);
        sl->first = (int32_t)s->n_pool;
        for (int a = s->lo[at_db(s, d, b)]; a < b; a++) {
            for (int u = 0; u < s->D; u++) {
                if (!(pm & (1u << u)))
                    continue;
                const state_labels *prev = state_at(s, pm, u, a);
                if (!prev->count)
                    continue;
                step t = transition(s, u, d, a, b, mask);
                if (!t.ok)
                    continue;
                for (int32_t i = 0; i < prev->count; i++) {
                    const label *pl = &s->pool[prev->first + i];
                    label l = {.a = a, .u = (int8_t)u, .from = prev->first + i};
                    for (int j = 0; j < s->n_crit; j++) {
                        int c = s->crit[j];
                        l.v[j] = is_max_criterion(c) ? fmax(pl->v[j], t.v[c]) : pl->v[j] + t.v[c];
                    }
                    if (!within_bound(s, l.v))
                        continue;
                    hs_status st = state_offer(s, (size_t)sl->first, &l);
                    if (st != HS_OK)
                        return st;
                }
            }
        }
        sl->count = (int32_t)(s->n_pool - (size_t)sl->first);
    }
    return HS_OK;
}

/* ---- fast paths for one criterion ---------------------------------------------------------- */

/* Scratch arrays of one (device set, device) relaxation, indexed by the start a. */
typedef struct scratch {
    double *g0, *g1;  /* best predecessor value + the link into d (g1: its latency); g0 =
                         +inf: none */
    double *key0, *key1;
    int *dq;          /* deque of starts, or the candidate list */
    int *lo_i, *hi_i; /* [b]: candidate index range of a stage ending at b */
    double *tkey;     /* [N]: leaf keys of the tournament tree, by rank */
    int *tree;        /* [2N]: rank of the smallest key below each node */
    int N;            /* leaves: a power of two >= n */
    int first, last;  /* the starts with a predecessor lie in [first, last] */
    size_t row;       /* of (mask, d) in its layer */
} scratch;

/* The tournament tree: leaf k holds tkey[k] (+inf: empty), each node the rank of the
 * smallest key below it. */
static void tree_clear(scratch *w)
{
    for (int k = 0; k < w->N; k++) {
        w->tkey[k] = INFINITY;
        w->tree[w->N + k] = k;
    }
    for (int i = w->N - 1; i >= 1; i--)
        w->tree[i] = w->tree[2 * i];
}

static void tree_set(scratch *w, int k, double key)
{
    w->tkey[k] = key;
    for (int i = (w->N + k) >> 1; i; i >>= 1) {
        int l = w->tree[2 * i], r = w->tree[2 * i + 1];
        int win = w->tkey[l] <= w->tkey[r] ? l : r;
        if (win == w->tree[i] && win != k) /* nothing changes above */
            break;
        w->tree[i] = win;
    }
}

/* The rank of the smallest key among ranks [0, count), or -1 if they are all empty. */
static int tree_prefix_min(const scratch *w, int count)
{
    int best = -1;
    for (int l = w->N, r = w->N + count; l < r; l >>= 1, r >>= 1) {
        if (l & 1) {
            int c = w->tree[l++];
            if (best < 0 || w->tkey[c] < w->tkey[best])
                best = c;
        }
        if (r & 1) {
            int c = w->tree[--r];
            if (best < 0 || w->tkey[c] < w->tkey[best])
                best = c;
        }
    }
    return best >= 0 && w->tkey[best] < INFINITY ? best : -1;
}

/* Keeps the tree holding the starts of the window [lo(b), b) that have a predecessor:
 * start b - 1 enters, the starts below lo(b) leave (*left: the first that has not left). */
static void tree_slide(const search *s, scratch *w, int d, int b, const double *key, int *left)
{
    const int *rank = s->rank + at_db(s, d, 0);
    int lo = s->lo[at_db(s, d, b)];
    if (w->g0[b - 1] < INFINITY && b - 1 >= lo)
        tree_set(w, rank[b - 1], key[b - 1]);
    for (; *left < lo && *left < b; (*left)++)
        if (w->tkey[rank[*left]] < INFINITY)
            tree_set(w, rank[*left], INFINITY);
}

/* The value a predecessor state (pm, u, a) brings to a stage on d: its own plus the link. */
static double pred_value(const search *s, double v0, size_t in)
{
    switch (s->kind) {
    case RELAX_LATENCY: return v0 + s->in_lat[in];
    case RELAX_ENERGY: return v0 + s->in_energy[in];
    case RELAX_LOAD: return v0 + s->in_load[in];
    case RELAX_BOTTLENECK: return max2(v0, s->in_sv[in]);
    case RELAX_LIFE: return s->in_sv[in] < INFINITY ? v0 : INFINITY;
    case RELAX_GENERAL: break;
    }
    return INFINITY;
}

/* g over the starts a < n: the best predecessor state (pm, u, a) plus the link (u, d). The
 * loops are kept branch-free so that they vectorise; which u won is found again only along
 * the plan returned (best_pred). */
static void gather(const search *s, unsigned pm, int d, scratch *w)
{
    const int n = s->n;
    const layer *L = &s->layers[pm];
    double *restrict g0 = w->g0, *restrict g1 = w->g1;
    w->first = n;
    w->last = -1;
    for (int u = 0; u < s->D; u++) {
        if (!(pm & (1u << u)))
            continue;
        const int32_t *span = span_of(s, pm, u);
        const int lo = span[0], hi = (span[1] < n ? span[1] : n - 1) + 1;
        if (lo < hi) {
            w->first = lo < w->first ? lo : w->first;
            w->last = hi - 1 > w->last ? hi - 1 : w->last;
        }
    }
    /* the relaxations read g from first on only */
    for (int a = w->first; a < n; a++)
        g0[a] = g1[a] = INFINITY;
    for (int u = 0; u < s->D && w->first <= w->last; u++) {
        if (!(pm & (1u << u)))
            continue;
        const int32_t *span = span_of(s, pm, u);
        const int lo = span[0], hi = (span[1] < n ? span[1] : n - 1) + 1;
        if (lo >= hi)
            continue;
        const double *restrict v0 = L->v0 + at_row(s, pm, u, 0);
        const double *restrict sv = s->in_sv + at_in(s, u, d, 0);
        const double *restrict lat = s->in_lat + at_in(s, u, d, 0);
        switch (s->kind) {
        case RELAX_LATENCY:
            for (int a = lo; a < hi; a++) {
                double x = v0[a] + lat[a];
                g0[a] = x < g0[a] ? x : g0[a];
            }
            break;
        case RELAX_ENERGY:
        case RELAX_LOAD: { /* lexicographic (criterion, latency) */
            const double *restrict v1 = L->v1 + at_row(s, pm, u, 0);
            const double *restrict in = (s->kind == RELAX_ENERGY ? s->in_energy : s->in_load) +
                                        at_in(s, u, d, 0);
            for (int a = lo; a < hi; a++) {
                double x0 = v0[a] + in[a], x1 = v1[a] + lat[a];
                bool better = x0 < g0[a] || (x0 == g0[a] && x1 < g1[a]);
                g0[a] = better ? x0 : g0[a];
                g1[a] = better ? x1 : g1[a];
            }
            break;
        }
        case RELAX_BOTTLENECK:
            for (int a = lo; a < hi; a++) {
                double x = v0[a] > sv[a] ? v0[a] : sv[a];
                g0[a] = x < g0[a] ? x : g0[a];
            }
            break;
        case RELAX_LIFE:
            for (int a = lo; a < hi; a++) {
                double x = sv[a] < INFINITY ? v0[a] : INFINITY;
                g0[a] = x < g0[a] ? x : g0[a];
            }
            break;
        case RELAX_GENERAL:
            break;
        }
    }
}

/* The predecessor device gather() picked for a stage [a, ...) on d after device set pm. */
static int best_pred(const search *s, unsigned pm, int d, int a)
{
    const layer *L = &s->layers[pm];
    int best = -1;
    double b0 = INFINITY, b1 = INFINITY;
    for (int u = 0; u < s->D; u++) {
        if (!(pm & (1u << u)))
            continue;
        const int32_t *span = span_of(s, pm, u);
        if (a < span[0] || a > span[1])
            continue;
        size_t i = at_row(s, pm, u, a), in = at_in(s, u, d, a);
        double x0 = pred_value(s, L->v0[i], in);
        double x1 = L->v1 ? L->v1[i] + s->in_lat[in] : 0;
        if (best < 0 || x0 < b0 || (x0 == b0 && x1 < b1))
            best = u, b0 = x0, b1 = x1;
    }
    return best;
}

static void set_state(search *s, unsigned mask, size_t i, double v0, double v1, int a)
{
    layer *l = &s->layers[mask];
    l->v0[i] = v0;
    if (l->v1)
        l->v1[i] = v1;
    l->from[i] = a;
}

/* Keys compared lexicographically: key1 breaks ties where the kind has one (NULL: none). */
static inline bool key_le(const double *key0, const double *key1, int x, int y)
{
    if (key0[x] != key0[y])
        return key0[x] < key0[y];
    return !key1 || key1[x] <= key1[y];
}

/* The monotone deque of the sliding-window minima below (relax_linear, min_max_window,
 * relax_life). Starts enter in increasing order and the window's left end lo never
 * decreases, so a start whose key is no smaller than that of a later one can never be the
 * minimum again: at[head, tail) holds increasing starts with strictly increasing keys, the
 * front the least. On an exact tie the later start is kept, which the tie-breaking of the
 * plans depends on. The storage, one slot per start, is the caller's scratch. */
typedef struct deque {
    int *at;
    int head, tail;
} deque;

static inline deque deque_on(int *storage)
{
    return (deque){storage, 0, 0};
}

/* Start a enters; the starts it dominates (key no smaller) leave from the back. */
static inline void deque_push(deque *q, const double *key0, const double *key1, int a)
{
    while (q->head < q->tail && key_le(key0, key1, a, q->at[q->tail - 1]))
        q->tail--;
    q->at[q->tail++] = a;
}

/* The starts before lo leave the window from the front. */
static inline void deque_expire(deque *q, int lo)
{
    while (q->head < q->tail && q->at[q->head] < lo)
        q->head++;
}

/* The start of least key in the window; -1: empty. */
static inline int deque_front(const deque *q)
{
    return q->head < q->tail ? q->at[q->head] : -1;
}

/* Latency and energy: the stage adds coef * (P[b] - P[a]), so f(b) = min over a in
 * [lo(b), b) of key(a) + coef * P[b] + out(b) with key(a) = g(a) - coef * P[a]: a sliding-
 * window minimum (lo never decreases) in a monotone deque. Energy carries the pair (energy,
 * latency), ordered lexicographically, so that exact ties fall to the faster plan. */
static void relax_linear(search *s, unsigned mask, int d, scratch *w)
{
    const int n = s->n;
    const bool lex = s->kind == RELAX_ENERGY;
    const double coef = lex ? stage_power(s, d) : 1.0;
    const bool counts = counted(&s->c->devices[d], s->k);
    const double *P = s->prefix + at_db(s, d, 0);
    const double *g1 = lex ? w->g1 : w->g0; /* latency */
    for (int a = w->first; a < n; a++)
        w->key0[a] = w->g0[a] - coef * P[a];
    if (lex)
        for (int a = w->first; a < n; a++)
            w->key1[a] = g1[a] - P[a];
    deque q = deque_on(w->dq);
    for (int b = w->first + 1; b <= n; b++) {
        if (w->g0[b - 1] < INFINITY)
            deque_push(&q, w->key0, lex ? w->key1 : NULL, b - 1);
        size_t o = at_db(s, d, b);
        deque_expire(&q, s->lo[o]);
        int a = deque_front(&q);
        if (a < 0 || s->out_sv[o] == INFINITY)
            continue;
        double stage = P[b] - P[a];
        double lat = g1[a] + stage + s->out_lat[o];
        double v0 = lex ? w->g0[a] + coef * stage + (counts ? s->out_radio[o] : 0) +
                              idle_sink_energy(s, d, b, mask)
                        : lat;
        set_state(s, mask, w->row + b, v0, lat, a);
    }
}

/* Latency under a lifetime floor on a battery device d: a stage [a, b) keeps d alive long
 * enough iff its power Q(b) - R(a) <= J / floor, i.e. iff R(a) is among the largest: a
 * prefix of the starts ranked by R. A tournament tree over ranks holds key(a) for the starts
 * inside the window; each end b asks for the minimum over its prefix. The power test has a
 * relative slack of 1e-12 so that rounding cannot exclude the stage that set the floor. */
static void relax_latency_floor(search *s, unsigned mask, int d, scratch *w)
{
    const int n = s->n;
    const double *P = s->prefix + at_db(s, d, 0);
    const double *Rs = s->R_sorted + at_db(s, d, 0), *Q = s->Q + at_db(s, d, 0);
    const int *order = s->order + at_db(s, d, 0);
    const double pmax = usable_joules(&s->c->devices[d]) / s->floor_life;
    for (int a = w->first; a < n; a++)
        w->key0[a] = w->g0[a] - P[a];
    tree_clear(w);
    int left = 0;
    for (int b = w->first + 1; b <= n; b++) {
        tree_slide(s, w, d, b, w->key0, &left);
        size_t o = at_db(s, d, b);
        if (s->out_sv[o] == INFINITY)
            continue;
        /* allowed: R >= need (no slack when the floor is +inf: the power must be <= 0) */
        double need = Q[b] - pmax;
        if (isfinite(s->floor_life))
            need -= 1e-12 * (fabs(Q[b]) + pmax);
        int count = 0, hi = n; /* ranks [0, count) are allowed */
        while (count < hi) {
            int mid = (count + hi) / 2;
            if (Rs[mid] >= need)
                count = mid + 1;
            else
                hi = mid;
        }
        int k = tree_prefix_min(w, count);
        if (k < 0)
            continue;
        int a = order[k];
        double lat = w->g0[a] + (P[b] - P[a]) + s->out_lat[o];
        set_state(s, mask, w->row + b, lat, lat, a);
    }
}

/* Load latency: the stage adds (h(P[b] - P[a]), P[b] - P[a]) with h the M/D/1 response,
 * convex and increasing, so the cost is Monge (lexicographic pairs included) and the best
 * start is monotone in b; the window [lo(b), b) has both ends monotone too. Divide and
 * conquer over b then finds every best start in O(n log n). */
typedef struct dnc {
    search *s;
    scratch *w;
    unsigned mask;
    int d;
    const double *P;
} dnc;

static void dnc_solve(const dnc *x, int bl, int br, int il, int ir)
{
    if (bl > br)
        return;
    const scratch *w = x->w;
    int b = (bl + br) / 2;
    int from = il > w->lo_i[b] ? il : w->lo_i[b], to = ir < w->hi_i[b] ? ir : w->hi_i[b];
    int best = -1;
    double best0 = INFINITY, best1 = INFINITY;
    for (int i = from; i <= to; i++) {
        int a = w->dq[i];
        double stage = x->P[b] - x->P[a];
        double v0 = w->g0[a] + md1(stage, x->s->lambda), v1 = w->g1[a] + stage;
        if (best < 0 || v0 < best0 || (v0 == best0 && v1 < best1))
            best = i, best0 = v0, best1 = v1;
    }
    const search *s = x->s;
    size_t o = at_db(s, x->d, b);
    if (best >= 0 && s->out_sv[o] < INFINITY)
        set_state(x->s, x->mask, w->row + b, best0 + s->out_load[o], best1 + s->out_lat[o],
                  w->dq[best]);
    dnc_solve(x, bl, b - 1, il, best >= 0 ? best : to);
    dnc_solve(x, b + 1, br, best >= 0 ? best : from, ir);
}

static void relax_load(search *s, unsigned mask, int d, scratch *w)
{
    const int n = s->n;
    int m = 0; /* candidates: the starts with a predecessor, increasing */
    for (int a = w->first; a < n; a++)
        if (w->g0[a] < INFINITY)
            w->dq[m++] = a;
    int lo_i = 0, hi_i = -1;
    for (int b = 1; b <= n; b++) {
        int lo = s->lo[at_db(s, d, b)];
        while (lo_i < m && w->dq[lo_i] < lo)
            lo_i++;
        while (hi_i + 1 < m && w->dq[hi_i + 1] < b)
            hi_i++;
        w->lo_i[b] = lo_i;
        w->hi_i[b] = hi_i;
    }
    dnc x = {s, w, mask, d, s->prefix + at_db(s, d, 0)};
    dnc_solve(&x, w->first + 1, n, 0, m - 1);
}

/* The min-max window of the throughput DP: for each end b in (first, n], the start a in
 * [lo(b), b) minimising max(B(a), P[b] - P[a]) (B(a) = +inf: not a start), into arg[b] and
 * the value into v[b] (-1 and +inf: none). A start a is useless once a later start has B no
 * larger (its stage is shorter and it stays in the window longer), so the deque holds starts
 * with B increasing and stages decreasing. As b grows, starts turn from "B dominates" to "the
 * stage dominates" and stay so, from the front: the best is the last turned start (the
 * shortest stage among them) or the first unturned one (the smallest B among them). */
static void min_max_window(const double *B, const double *P, const int *lo, int first, int n,
                           int *dq, double *v, int *arg)
{
    deque q = deque_on(dq);
    int turned = 0; /* dq[q.head, turned) have turned */
    for (int b = first + 1; b <= n; b++) {
        int a = b - 1;
        if (B[a] < INFINITY) {
            deque_push(&q, B, NULL, a);
            /* turned may count starts that a evicted; a itself is not tested yet */
            if (turned > q.tail - 1)
                turned = q.tail - 1;
        }
        deque_expire(&q, lo[b]);
        if (turned < q.head)
            turned = q.head;
        while (turned < q.tail && B[dq[turned]] < P[b] - P[dq[turned]])
            turned++;
        double best = INFINITY;
        a = -1;
        if (turned > q.head)
            a = dq[turned - 1], best = P[b] - P[a];
        if (turned < q.tail && B[dq[turned]] < best)
            a = dq[turned], best = B[a];
        v[b] = best;
        arg[b] = a;
    }
}

/* Throughput: f(b) = min over a in [lo(b), b) of max(B(a), P[b] - P[a]), B = g, then the
 * delivery. */
static void relax_bottleneck(search *s, unsigned mask, int d, scratch *w)
{
    const int n = s->n;
    min_max_window(w->g0, s->prefix + at_db(s, d, 0), s->lo + at_db(s, d, 0), w->first, n,
                   w->dq, w->key0, w->lo_i);
    for (int b = w->first + 1; b <= n; b++) {
        double out = s->out_sv[at_db(s, d, b)];
        if (w->lo_i[b] >= 0 && out < INFINITY) {
            double v = max2(w->key0[b], out);
            set_state(s, mask, w->row + b, v, v, w->lo_i[b]);
        }
    }
}

/* Lifetime, criterion -lifetime: f(b) = min over a of max(G(a), -life_d(a, b)). A device
 * without a battery (or without charge) adds a constant: a sliding-window minimum of G. On a
 * battery device -life is increasing in the power Q(b) - R(a); in power units G becomes
 * G'(a) (the power at which d would live exactly -G(a)), and over starts ranked by R
 * (decreasing; so the power increases with the rank) the best is where the prefix minimum of
 * G' crosses the power: one descent of a tournament tree. The value itself is recomputed
 * from the chosen start, exactly as the evaluation does. */
static void relax_life(search *s, unsigned mask, int d, scratch *w)
{
    const int n = s->n, N = w->N;
    const hs_device *dv = &s->c->devices[d];
    const double *P = s->prefix + at_db(s, d, 0);
    if (!life_varies(dv)) {
        deque q = deque_on(w->dq);
        for (int b = w->first + 1; b <= n; b++) {
            if (w->g0[b - 1] < INFINITY)
                deque_push(&q, w->g0, NULL, b - 1);
            size_t o = at_db(s, d, b);
            deque_expire(&q, s->lo[o]);
            int a = deque_front(&q);
            if (a < 0 || s->out_sv[o] == INFINITY)
                continue;
            double life = life_of(s, d, P[b] - P[a], s->rx[at_db(s, d, a)] + s->out_radio[o]);
            double v = max2(w->g0[a], -life);
            set_state(s, mask, w->row + b, v, v, a);
        }
        return;
    }
    /* -J / p = g: p = -J / g; g = -inf (lives forever) is any power <= 0; g = 0 (a device
     * already dead) is beyond every power but must stay a candidate */
    const double J = usable_joules(dv);
    const double *Rs = s->R_sorted + at_db(s, d, 0), *Q = s->Q + at_db(s, d, 0);
    const int *order = s->order + at_db(s, d, 0);
    for (int a = w->first; a < n; a++) {
        double g = w->g0[a];
        w->key0[a] = g == -INFINITY ? -INFINITY : g < 0 ? -J / g : DBL_MAX;
    }
    tree_clear(w);
    int left = 0;
    for (int b = w->first + 1; b <= n; b++) {
        tree_slide(s, w, d, b, w->key0, &left);
        size_t o = at_db(s, d, b);
        if (w->tkey[w->tree[1]] == INFINITY || s->out_sv[o] == INFINITY)
            continue;
        /* Descend to the first rank where the prefix minimum of G' is <= the power; `run` is
         * the smallest key before it. Ranks >= n have power +inf. */
        int node = 1, span = N, first = 0, run = -1;
        while (node < N) {
            span /= 2;
            int l = 2 * node, end = first + span - 1;
            double power = end < n ? Q[b] - Rs[end] : INFINITY;
            int m = w->tree[l];
            if (run >= 0 && w->tkey[run] < w->tkey[m])
                m = run;
            if (w->tkey[m] <= power) {
                node = l;
            } else {
                run = m;
                node = l + 1;
                first += span;
            }
        }
        /* candidates: `run` (its key dominates its power) and the rank reached */
        int k = run;
        if (w->tkey[first] < INFINITY &&
            (run < 0 || max2(w->tkey[first], Q[b] - Rs[first]) < w->tkey[run]))
            k = first;
        int a = order[k];
        double life = life_of(s, d, P[b] - P[a], s->rx[at_db(s, d, a)] + s->out_radio[o]);
        double v = max2(w->g0[a], -life);
        set_state(s, mask, w->row + b, v, v, a);
    }
}

/* The sum of the shares of the devices a chain over mask can still add (the largest, up to
 * max_stages; *count of them). The bottleneck of nodes [b, n) on them is at least rest_sum[b]
 * / that sum: a device d running nodes S takes at least rest_sum(S) / share[d], as every node
 * takes at least its least time / share[d] there. */
static double free_capacity(const search *s, unsigned mask, int *count)
{
    double shares[HS_MAX_DEVICES];
    int left = s->max_stages - __builtin_popcount(mask), free_devices = 0;
    for (int u = 0; u < s->D; u++) {
        if ((mask & (1u << u)) || !can_host(&s->c->devices[u]))
            continue;
        int i = free_devices++;
        for (; i > 0 && shares[i - 1] < s->share[u]; i--)
            shares[i] = shares[i - 1];
        shares[i] = s->share[u];
    }
    *count = left < free_devices ? left : free_devices;
    double capacity = 0;
    for (int i = 0; i < *count; i++)
        capacity += shares[i];
    return capacity;
}

/* ---- thresholds: which states a bottleneck cap leaves -------------------------------------- */

/*
 * For a threshold T, whether a state can be reached, or can still finish, with every stage time
 * and link service <= T is a question of booleans, answered over bitsets of positions. A stage
 * on d may run [a, b) for any b in (a, reach(a)], the last end within memory, rate and T, which
 * never decreases in a; a link (u, d) carries the cuts whose service fits. The ends a device set
 * reaches are then the union of the intervals (a, reach(a)] over the starts it reaches, and
 * since reach is monotone, each run of overlapping intervals costs a few word operations (jump
 * to the last start inside the run) instead of one per position. Forward from the source this
 * decides whether T is feasible; backward from the sink it tells which states can finish,
 * which lets a DP run under the cap T skip every other state.
 */

/* A device set without the source bit, packed. */
static size_t set_index(const search *s, unsigned set)
{
    unsigned low = (1u << s->c->source) - 1;
    return (set & low) | ((set >> 1) & ~low);
}

static uint64_t *bits_at(const search *s, uint64_t *base, unsigned set, int d)
{
    return base + (set_index(s, set) * (size_t)s->D + (size_t)d) * (size_t)s->words;
}

static bool bit_get(const uint64_t *x, int i) { return x[i >> 6] >> (i & 63) & 1; }

/* The first set bit >= from, or -1. */
static int bit_next(const uint64_t *x, int words, int from)
{
    int w = from >> 6;
    if (w >= words)
        return -1;
    uint64_t v = x[w] & (~0ull << (from & 63));
    while (!v) {
        if (++w == words)
            return -1;
        v = x[w];
    }
    return w * 64 + __builtin_ctzll(v);
}

/* The last set bit <= upto, or -1. */
static int bit_prev(const uint64_t *x, int upto)
{
    if (upto < 0)
        return -1;
    int w = upto >> 6;
    uint64_t v = x[w] & (~0ull >> (63 - (upto & 63)));
    while (!v) {
        if (--w < 0)
            return -1;
        v = x[w];
    }
    return w * 64 + 63 - __builtin_clzll(v);
}

/* Sets bits [lo, hi]. */
static void bit_fill(uint64_t *x, int lo, int hi)
{
    if (lo > hi)
        return;
    int wl = lo >> 6, wh = hi >> 6;
    uint64_t ml = ~0ull << (lo & 63), mh = ~0ull >> (63 - (hi & 63));
    if (wl == wh) {
        x[wl] |= ml & mh;
        return;
    }
    x[wl] |= ml;
    for (int w = wl + 1; w < wh; w++)
        x[w] = ~0ull;
    x[wh] |= mh;
}

static hs_status thresholds_alloc(search *s)
{
    if (s->fwd)
        return HS_OK;
    const int n = s->n, D = s->D;
    s->words = (n + 1 + 63) / 64;
    const size_t bits = ((size_t)1 << (D - 1)) * (size_t)D * (size_t)s->words;
    s->reach = malloc(2 * (size_t)D * (n + 1) * sizeof(int));
    s->reach_of[0] = s->reach;
    s->reach_of[1] = s->reach + (size_t)D * (n + 1);
    s->reach_T[0] = s->reach_T[1] = NAN;
    s->reach_lo = malloc((size_t)D * (n + 1) * sizeof(int));
    s->cut_order = malloc((size_t)n * sizeof(int));
    s->cut_prefix = calloc((size_t)(n + 1) * s->words, sizeof(uint64_t));
    s->fwd = calloc(bits, sizeof(uint64_t));
    s->co = calloc(bits, sizeof(uint64_t));
    s->starts = malloc((size_t)s->words * sizeof(uint64_t));
    s->fwd_any = calloc((size_t)1 << (D - 1), sizeof(unsigned));
    s->co_any = calloc((size_t)1 << (D - 1), sizeof(unsigned));
    s->lo_any = malloc((size_t)D * (n + 1) * sizeof(int));
    s->chain_f = malloc(3 * (size_t)(n + 1) * sizeof(double));
    s->chain_arg = malloc((size_t)D * (n + 1) * sizeof(int));
    s->chain_dq = malloc((size_t)(n + 1) * sizeof(int));
    if (!s->reach || !s->reach_lo || !s->cut_order || !s->cut_prefix || !s->fwd || !s->co ||
        !s->starts || !s->fwd_any || !s->co_any || !s->lo_any || !s->chain_f ||
        !s->chain_arg || !s->chain_dq || !link_services(s))
        return HS_ERR_NOMEM;
    ranked *tmp = malloc((size_t)n * sizeof *tmp); /* by -bytes, decreasing */
    if (!tmp)
        return HS_ERR_NOMEM;
    for (int a = 0; a < n; a++)
        tmp[a] = (ranked){-s->p->cut_bytes[a], a};
    qsort(tmp, (size_t)n, sizeof *tmp, by_r_desc);
    for (int k = 0; k < n; k++)
        s->cut_order[k] = tmp[k].a;
    free(tmp);
    for (int k = 0; k < n; k++) {
        uint64_t *x = s->cut_prefix + (size_t)(k + 1) * s->words;
        memcpy(x, x - s->words, (size_t)s->words * sizeof(uint64_t));
        x[s->cut_order[k] >> 6] |= 1ull << (s->cut_order[k] & 63);
    }
    return HS_OK;
}

/* Fills reach, link_ok and out_ok for the threshold T, and reach_lo if with_lo (for co). */
static void threshold_tables(search *s, double T, bool with_lo)
{
    const int slot = with_lo;
    int *const reach_all = s->reach_of[slot];
    if (fabs(T - s->reach_T[!slot]) < fabs(T - s->reach_T[slot])) { /* start from the nearer */
        memcpy(reach_all, s->reach_of[!slot], (size_t)s->D * (s->n + 1) * sizeof(int));
        s->reach_T[slot] = s->reach_T[!slot];
    }
    const hs_cluster *c = s->c;
    const double *cut = s->p->cut_bytes;
    const int n = s->n, D = s->D;
    /* fits_within(stage, T), unrolled to keep the loops below tight */
    const double lambda = s->ignore_rate ? 0 : s->lambda;
#define FITS(stage) ((stage) <= T && lambda * (stage) < 1.0)
    for (int d = 0; d < D; d++) {
        int *restrict reach = reach_all + at_db(s, d, 0);
        const double *restrict P = s->prefix + at_db(s, d, 0);
        const int *restrict fit = s->emax + at_db(s, d, 0);
        const bool host = can_host(&c->devices[d]), memory = !s->ignore_memory;
        /* near the last threshold, ends move little: update them; else two pointers (a
         * stage that fits from a fits from a + 1) */
        const bool near = isfinite(T) && fabs(T - s->reach_T[slot]) <= 0.05 * T; /* not NAN */
        if (!near) {
            for (int a = 0, b = 0; a <= n; a++) {
                const int last = !host ? a : memory ? fit[a] : n;
                b = b > a ? b : a;
                while (b < last && FITS(P[b + 1] - P[a]))
                    b++;
                reach[a] = b;
            }
        } else if (T >= s->reach_T[slot]) {
            for (int a = 0; a <= n; a++) {
                const int last = !host ? a : memory ? fit[a] : n;
                int b = reach[a];
                while (b < last && FITS(P[b + 1] - P[a]))
                    b++;
                reach[a] = b;
            }
        } else {
            for (int a = 0; a <= n; a++) {
                int b = reach[a];
                while (b > a && !FITS(P[b] - P[a]))
                    b--;
                reach[a] = b;
            }
        }
#undef FITS
        int *restrict lo = s->reach_lo + at_db(s, d, 0);
        for (int b = 0, a = 0; b <= n && with_lo; b++) {
            while (reach[a] < b)
                a++;
            lo[b] = a;
        }
        for (int e = 0; e < D; e++) {
            /* the cuts that fit are a prefix of cut_order: binary search its length */
            const double *sv = s->link_sv + at_in(s, d, e, 0);
            int count = 0, hi = e != d && has_link(c, d, e) ? n : 0;
            while (count < hi) {
                int mid = (count + hi) / 2;
                if (fits_within(s, sv[s->cut_order[mid]], T))
                    count = mid + 1;
                else
                    hi = mid;
            }
            s->link_ok[d][e] = s->cut_prefix + (size_t)count * s->words;
        }
        s->out_ok[d] = d == c->sink || (has_link(c, d, c->sink) &&
                                        fits_within(s, service(c, d, c->sink, cut[n]), T));
    }
    s->reach_T[slot] = T;
    s->reach = reach_all;
}

/* ends |= the union over starts a of (a, reach[a]]. */
static void spread_forward(const search *s, const uint64_t *starts, const int *reach,
                           uint64_t *ends)
{
    for (int a = bit_next(starts, s->words, 0); a >= 0;) {
        int top = reach[a], last = a;
        for (int b; (b = bit_prev(starts, top)) > last;) /* the last start inside the run */
            last = b, top = reach[b];
        bit_fill(ends, a + 1, top);
        a = top < s->n ? bit_next(starts, s->words, top + 1) : -1;
    }
}

/* starts |= the union over ends b of [lo[b], b). */
static void spread_backward(const search *s, const uint64_t *ends, const int *lo,
                            uint64_t *starts)
{
    for (int b = bit_prev(ends, s->n); b >= 0;) {
        int bottom = lo[b], first = b;
        for (int a; (a = bit_next(ends, s->words, bottom)) >= 0 && a < first;)
            first = a, bottom = lo[a]; /* the first end inside the run */
        bit_fill(starts, bottom, b - 1);
        b = bit_prev(ends, bottom - 1);
    }
}

/* The first end from which a chain over mask may still finish within T, by the bound of
 * finish_row (with its slack): the states before it are dead ends. */
static int first_hopeful(const search *s, unsigned mask, double T)
{
    int left;
    const double per_capacity = 1 / free_capacity(s, mask, &left), limit = T * (1 + 1e-9);
    if (left <= 0)
        return s->n;
    int lo = 0, hi = s->n; /* the need never grows with b */
    while (lo < hi) {
        int mid = (lo + hi) / 2;
        if (!(max2(s->rest_max[mid], s->rest_sum[mid] * per_capacity) > limit)) /* NaN: 0/0 */
            hi = mid;
        else
            lo = mid + 1;
    }
    return lo;
}

/* Whether a plan keeps every stage and link service within T (the tables must hold T). Fills
 * fwd for the device sets up to the first that finishes such a plan, whose set is *done. */
static bool reach_forward(search *s, double T, unsigned *done)
{
    const int n = s->n, D = s->D, W = s->words, src = s->c->source;
    const unsigned first = source_bit(s);
    uint64_t *seed = bits_at(s, s->fwd, first, src);
    memset(seed, 0, (size_t)W * sizeof *seed);
    bit_fill(seed, 0, s->reach[at_db(s, src, 0)]);
    s->fwd_any[0] = 1u << src;
    if (s->out_ok[src] && bit_get(seed, n)) {
        *done = first;
        return true;
    }
    uint64_t *starts = s->starts;
    for (unsigned mask = first + 1; mask < (1u << D); mask++) {
        if (!mask_usable(s, mask))
            continue;
        bool finished = false;
        int hopeful = -1;
        unsigned *any_row = &s->fwd_any[set_index(s, mask)];
        *any_row = 0;
        for (int d = 0; d < D; d++) {
            if (!(mask & (1u << d)) || d == src)
                continue;
            uint64_t *ends = bits_at(s, s->fwd, mask, d);
            memset(ends, 0, (size_t)W * sizeof *ends);
            if (!can_host(&s->c->devices[d]))
                continue;
            const unsigned pm = mask & ~(1u << d), from_any = s->fwd_any[set_index(s, pm)];
            uint64_t any = 0;
            if (!from_any)
                continue;
            memset(starts, 0, (size_t)W * sizeof *starts);
            for (int u = 0; u < D; u++) {
                if (!(from_any & (1u << u)))
                    continue;
                const uint64_t *from = bits_at(s, s->fwd, pm, u), *ok = s->link_ok[u][d];
                for (int w = 0; w < W; w++) {
                    starts[w] |= from[w] & ok[w];
                    any |= starts[w];
                }
            }
            if (!any)
                continue;
            spread_forward(s, starts, s->reach + at_db(s, d, 0), ends);
            if (hopeful < 0)
                hopeful = first_hopeful(s, mask, T);
            for (int w = 0; w < hopeful >> 6; w++)
                ends[w] = 0;
            ends[hopeful >> 6] &= ~0ull << (hopeful & 63);
            for (int w = 0; w < W; w++)
                *any_row |= ends[w] ? 1u << d : 0;
            finished = finished || (s->out_ok[d] && bit_get(ends, n));
        }
        if (finished) {
            *done = mask;
            return true;
        }
    }
    return false;
}

/* The chain of devices of a plan reach_forward found in device set mask, ending on d (which
 * must reach n and deliver), built back taking at each stage the latest start (the shortest
 * stage); returns its length. */
static int forward_chain(search *s, unsigned mask, int d, int *chain)
{
    const int W = s->words, D = s->D;
    int rev[HS_MAX_DEVICES], count = 0, b = s->n;
    while (mask != source_bit(s)) {
        const unsigned pm = mask & ~(1u << d);
        memset(s->starts, 0, (size_t)W * sizeof *s->starts);
        for (int u = 0; u < D; u++)
            if (pm & (1u << u))
                for (int w = 0; w < W; w++)
                    s->starts[w] |= bits_at(s, s->fwd, pm, u)[w] & s->link_ok[u][d][w];
        const int a = bit_prev(s->starts, b - 1);
        int from = 0;
        while (!(pm & (1u << from)) || !bit_get(bits_at(s, s->fwd, pm, from), a) ||
               !bit_get(s->link_ok[from][d], a))
            from++;
        rev[count++] = d;
        mask = pm;
        d = from;
        b = a;
    }
    rev[count++] = d;
    for (int i = 0; i < count; i++)
        chain[i] = rev[count - 1 - i];
    return count;
}

/* The least bottleneck of the plans over a prefix of a chain of devices (chain[0] the source),
 * exactly, and such a plan in *plan (+inf: none, *plan untouched): the min-max DP along the
 * chain, in O(k n) for k devices. */
static double chain_bottleneck(search *s, const int *chain, int k, hs_plan *plan)
{
    const hs_cluster *c = s->c;
    const int n = s->n, src = chain[0];
    double *f = s->chain_f, *g = f + (n + 1), *v = g + (n + 1);
    double best = INFINITY;
    int stages = 0;
    for (int i = 0; i < k; i++) {
        const int d = chain[i];
        if (i == 0) { /* [0, b) on the source, possibly empty */
            for (int b = 0; b <= n; b++)
                f[b] = s->lo_any[at_db(s, src, b)] == 0 ? pfx(s, src, b) - pfx(s, src, 0)
                                                        : INFINITY;
        } else {
            if (!can_host(&c->devices[d]))
                break;
            const double *sv = s->link_sv + at_in(s, chain[i - 1], d, 0);
            int first = n;
            for (int a = 0; a < n; a++) {
                g[a] = f[a] < INFINITY && fits_within(s, sv[a], INFINITY) ? max2(f[a], sv[a])
                                                                           : INFINITY;
                first = g[a] < INFINITY && a < first ? a : first;
            }
            for (int b = 0; b <= first; b++)
                v[b] = INFINITY;
            min_max_window(g, s->prefix + at_db(s, d, 0), s->lo_any + at_db(s, d, 0), first, n,
                           s->chain_dq, v, s->chain_arg + (size_t)i * (n + 1));
            double *t = f;
            f = v;
            v = t;
        }
        const double out = d == c->sink ? 0
                           : has_link(c, d, c->sink) ? service(c, d, c->sink, s->p->cut_bytes[n])
                                                     : INFINITY;
        if (f[n] < INFINITY && fits_within(s, out, INFINITY) && max2(f[n], out) < best) {
            best = max2(f[n], out);
            stages = i + 1;
        }
    }
    if (!stages)
        return INFINITY;
    plan->n_stages = stages;
    for (int i = stages - 1, b = n; i >= 0; i--) {
        int a = i ? s->chain_arg[(size_t)i * (n + 1) + b] : 0;
        plan->stages[i] = (hs_stage){.device = chain[i], .first = a, .last = b};
        b = a;
    }
    return best;
}

/* co for the threshold the tables hold. Sets of free devices in increasing order: the starts
 * on d in set come from the ends on d with set - d free, and those from the starts of set. */
static void reach_backward(search *s)
{
    const int n = s->n, D = s->D, W = s->words;
    const unsigned all = ((1u << D) - 1) & ~source_bit(s);
    for (unsigned set = 0;; set = (set - all) & all) {
        unsigned *any = &s->co_any[set_index(s, set)];
        *any = 0;
        for (int d = 0; d < D; d++) {
            if (!(set & (1u << d)))
                continue;
            uint64_t *starts = bits_at(s, s->co, set, d);
            memset(starts, 0, (size_t)W * sizeof *starts);
            const unsigned rest = set & ~(1u << d);
            if (!can_host(&s->c->devices[d]) || !(s->co_any[set_index(s, rest)] & (1u << d)))
                continue;
            spread_backward(s, bits_at(s, s->co, rest, d), s->reach_lo + at_db(s, d, 0), starts);
            for (int w = 0; w < W; w++)
                *any |= starts[w] ? 1u << d : 0;
        }
        for (int d = 0; d < D; d++) {
            if (set & (1u << d))
                continue;
            uint64_t *ends = bits_at(s, s->co, set, d);
            memset(ends, 0, (size_t)W * sizeof *ends);
            uint64_t some = 0;
            if (s->out_ok[d])
                some = ends[n >> 6] |= 1ull << (n & 63);
            for (int e = 0; e < D; e++) {
                if (!(*any & (1u << e)))
                    continue;
                const uint64_t *from = bits_at(s, s->co, set, e), *ok = s->link_ok[d][e];
                for (int w = 0; w < W; w++)
                    some |= ends[w] |= from[w] & ok[w];
            }
            *any |= some ? 1u << d : 0;
        }
        if (set == all)
            break;
    }
}

/* Can state (b, d, mask) still finish within the threshold co was built for? */
static bool can_finish(const search *s, unsigned mask, int d, int b)
{
    unsigned free_set = ((1u << s->D) - 1) & ~mask;
    return bit_get(bits_at(s, s->co, free_set, d), b);
}

/* ---- running a search ---------------------------------------------------------------------- */

/* The lifetime of the battery devices a chain over `mask` leaves idle (the sink receiving the
 * delivery if it is one of them). */
static double idle_lifetime(const search *s, unsigned mask)
{
    double life = INFINITY;
    for (int d = 0; d < s->D; d++) {
        if (mask & (1u << d))
            continue;
        const hs_device *dv = &s->c->devices[d];
        double radio = d == s->c->sink ? s->p->cut_bytes[s->n] * dv->power.rx_nj_per_byte * NJ : 0;
        life = fmin(life, device_lifetime(dv, s->lambda, 0, radio));
    }
    return life;
}

/* Energy every plan pays: idle power over the whole period of every counted device. */
static double energy_constant(const search *s)
{
    double e = 0;
    if (s->lambda > 0)
        for (int d = 0; d < s->D; d++)
            if (counted(&s->c->devices[d], s->k))
                e += s->c->devices[d].power.idle_w / s->lambda;
    return e;
}

/* A finished chain: a state (n, d, mask) and one of its labels (general DP), with its final
 * criteria (fast paths: v[0] the criterion, v[1] the latency). */
typedef struct ending {
    unsigned mask;
    int d;
    int32_t label;
    double v[4];
} ending;

static void finish(const search *s, unsigned mask, double *v)
{
    for (int j = 0; j < s->n_crit; j++) {
        if (s->crit[j] == C_LIFE)
            v[j] = fmax(v[j], -idle_lifetime(s, mask));
        else if (s->crit[j] == C_ENERGY)
            v[j] += energy_constant(s);
    }
}

/* The finished chain at (n, d, mask) of a fast path, if any and within the bound and the
 * idle-lifetime floor. */
static bool fast_ending(const search *s, unsigned mask, int d, ending *e)
{
    const layer *l = &s->layers[mask];
    *e = (ending){.mask = mask, .d = d, .label = -1};
    if (span_of(s, mask, d)[1] != s->n)
        return false;
    e->v[0] = l->v0[at_row(s, mask, d, s->n)];
    e->v[1] = l->v1 ? l->v1[at_row(s, mask, d, s->n)] : e->v[0];
    finish(s, mask, e->v);
    return e->v[0] < INFINITY && within_bound(s, e->v) &&
           -idle_lifetime(s, mask) <= s->max_idle_life;
}

/* Lower bounds on what nodes [b, n) add to the criterion: each node runs somewhere. */
static void prepare_rest(search *s)
{
    const int n = s->n;
    s->rest[n] = s->rest_sum[n] = s->rest_max[n] = 0;
    for (int d = 0; d < s->D; d++)
        s->share[d] = 0;
    for (int i = n - 1; i >= 0; i--) {
        double m = INFINITY, least = INFINITY;
        for (int d = 0; d < s->D; d++) {
            if (!can_host(&s->c->devices[d]))
                continue;
            double time = s->p->node_time[(size_t)d * n + i];
            m = min2(m, time * (s->kind == RELAX_ENERGY ? stage_power(s, d) : 1.0));
            least = min2(least, time);
        }
        if (m == INFINITY)
            m = least = 0;
        s->rest[i] = s->rest[i + 1] + m;
        s->rest_sum[i] = s->rest_sum[i + 1] + least;
        s->rest_max[i] = max2(s->rest_max[i + 1], least);
        for (int d = 0; d < s->D; d++) {
            double time = s->p->node_time[(size_t)d * n + i];
            if (time > 0 && least > s->share[d] * time)
                s->share[d] = least / time;
        }
    }
}

/* Prunes the states of (mask, d) that cannot beat the best finished chain, or whose remaining
 * nodes cannot fit under the bottleneck cap (with a relative slack of 1e-9, so that rounding
 * never prunes an optimum or a tie), and records the span of the others. */
static void finish_row(search *s, unsigned mask, int d)
{
    const int n = s->n;
    layer *l = &s->layers[mask];
    size_t row = at_row(s, mask, d, 0);
    double *v = l->v0 + row;
    const double limit = s->best_end + (isfinite(s->best_end) ? 1e-9 * fabs(s->best_end) : 0);
    const double cap = s->cap_bottleneck * (1 + 1e-9);
    /* Devices left for nodes [b, n): none means a dead end. */
    int left;
    const double per_capacity = 1 / free_capacity(s, mask, &left);
    const size_t row_db = at_db(s, d, 0);
    const bool bottleneck = s->kind == RELAX_BOTTLENECK ||
                            (isfinite(s->cap_bottleneck) && !s->use_co);
    int first = n + 1, last = -1;
    for (int b = 0; b <= n; b++) {
        if (v[b] == INFINITY)
            continue;
        if (b == n) { /* a finished chain */
            last = b;
            first = first < b ? first : b;
            break;
        }
        /* the rest: its nodes, and at least one more link out of d */
        double need = bottleneck ? max2(max2(s->rest_max[b], s->rest_sum[b] * per_capacity),
                                        s->next_sv[row_db + b])
                                 : 0;
        double lower = s->kind == RELAX_BOTTLENECK ? max2(v[b], need)
                       : s->kind == RELAX_LIFE     ? v[b]
                       : s->kind == RELAX_ENERGY   ? v[b] + s->rest[b]
                                                   : v[b] + s->rest[b] + s->next_lat[row_db + b];
        if (left <= 0 || lower > limit || need > cap ||
            (s->use_co && !can_finish(s, mask, d, b))) {
            v[b] = INFINITY;
            if (l->v1)
                l->v1[row + b] = INFINITY;
            continue;
        }
        first = first < b ? first : b;
        last = b;
    }
    span_of(s, mask, d)[0] = first;
    span_of(s, mask, d)[1] = last;
}

/* Finishes the chains of device set mask into best_end. */
static void update_best_end(search *s, unsigned mask)
{
    for (int d = 0; d < s->D; d++) {
        ending e;
        if ((mask & (1u << d)) && fast_ending(s, mask, d, &e)) {
            double v = s->layers[mask].v0[at_row(s, mask, d, s->n)];
            if (s->kind == RELAX_LIFE) /* the idle devices count */
                v = e.v[0];
            s->best_end = fmin(s->best_end, v);
        }
    }
}

/* Returns false when no predecessor reaches (mask, d), whose row is then left empty. */
static bool relax_fast(search *s, unsigned mask, int d, scratch *w)
{
    gather(s, mask & ~(1u << d), d, w);
    if (w->first > w->last) {
        int32_t *span = span_of(s, mask, d);
        span[0] = 0;
        span[1] = -1;
        return false;
    }
    clear_row(s, mask, d);
    w->row = at_row(s, mask, d, 0);
    switch (s->kind) {
    case RELAX_LATENCY:
        if (s->floor_life > -INFINITY) {
            if (life_varies(&s->c->devices[d])) {
                relax_latency_floor(s, mask, d, w);
                break;
            }
            if (life_of(s, d, 0, 0) < s->floor_life) /* a battery device without charge */
                break;
        }
        relax_linear(s, mask, d, w);
        break;
    case RELAX_ENERGY:
        relax_linear(s, mask, d, w);
        break;
    case RELAX_LOAD:
        relax_load(s, mask, d, w);
        break;
    case RELAX_BOTTLENECK:
        relax_bottleneck(s, mask, d, w);
        break;
    case RELAX_LIFE:
        relax_life(s, mask, d, w);
        break;
    case RELAX_GENERAL:
        break;
    }
    return true;
}

/* One chain through the devices, the fastest first, ahead of the search: its finished chains
 * give the pruning a bound from the start. */
static void probe(search *s, scratch *w)
{
    int order[HS_MAX_DEVICES], m = 0;
    for (int d = 0; d < s->D; d++) {
        if (d == s->c->source || !can_host(&s->c->devices[d]))
            continue;
        int i = m++;
        for (; i > 0 && pfx(s, order[i - 1], s->n) > pfx(s, d, s->n); i--)
            order[i] = order[i - 1];
        order[i] = d;
    }
    unsigned mask = source_bit(s);
    for (int i = 0; i < m; i++) {
        mask |= 1u << order[i];
        if (!mask_usable(s, mask) || !relax_fast(s, mask, order[i], w))
            break;
        finish_row(s, mask, order[i]);
        update_best_end(s, mask);
    }
}

static hs_status run_search(search *s)
{
    const int n = s->n;
    scratch w = {0};
    w.N = 1;
    while (w.N < n)
        w.N *= 2;
    size_t nd = (size_t)n + 1;
    w.g0 = malloc(nd * sizeof(double));
    w.g1 = malloc(nd * sizeof(double));
    w.key0 = malloc(nd * sizeof(double));
    w.key1 = malloc(nd * sizeof(double));
    w.dq = malloc(nd * sizeof(int));
    w.lo_i = malloc(nd * sizeof(int));
    w.hi_i = malloc(nd * sizeof(int));
    w.tkey = malloc((size_t)w.N * sizeof(double));
    w.tree = malloc(2 * (size_t)w.N * sizeof(int));
    hs_status st = HS_ERR_NOMEM;
    if (!w.g0 || !w.g1 || !w.key0 || !w.key1 || !w.dq || !w.lo_i || !w.hi_i ||
        !w.tkey || !w.tree)
        goto done;
    /* Under a cap, only the states that can still finish within it matter (finish_row). */
    s->use_co = s->kind != RELAX_GENERAL && isfinite(s->cap_bottleneck);
    if (s->use_co) {
        if ((st = thresholds_alloc(s)) != HS_OK)
            goto done;
        threshold_tables(s, s->cap_bottleneck, true);
        reach_backward(s);
    }
    if ((st = prepare_tables(s)) != HS_OK)
        goto done;
    s->best_end = s->known_end;
    if (s->kind != RELAX_GENERAL)
        prepare_rest(s);
    if ((s->kind == RELAX_LIFE || s->floor_life > -INFINITY) && (st = prepare_power(s)) != HS_OK)
        goto done;
    if (s->kind != RELAX_GENERAL && (st = alloc_layers(s)) != HS_OK)
        goto done;
    if ((st = seed_source(s)) != HS_OK)
        goto done;
    if (s->kind != RELAX_GENERAL) {
        finish_row(s, source_bit(s), s->c->source);
        update_best_end(s, source_bit(s));
        probe(s, &w);
    }
    for (unsigned mask = 1; mask < (1u << s->D) && st == HS_OK; mask++) {
        if (!mask_usable(s, mask) || mask == source_bit(s))
            continue;
        if (s->kind == RELAX_GENERAL && (st = alloc_states(s, mask)) != HS_OK)
            break;
        for (int d = 0; d < s->D && st == HS_OK; d++) {
            if (!(mask & (1u << d)) || d == s->c->source || !can_host(&s->c->devices[d]) ||
                !has_states(s, mask & ~(1u << d)))
                continue;
            if (s->kind == RELAX_GENERAL) {
                st = relax_general(s, mask, d);
            } else {
                if (relax_fast(s, mask, d, &w))
                    finish_row(s, mask, d);
            }
        }
        if (s->kind != RELAX_GENERAL)
            update_best_end(s, mask);
    }
done:
    free(w.g0);
    free(w.g1);
    free(w.key0);
    free(w.key1);
    free(w.dq);
    free(w.lo_i);
    free(w.hi_i);
    free(w.tkey);
    free(w.tree);
    return st;
}

/* Calls fn for every finished chain within the bound and the idle-lifetime floor. */
static void for_each_ending(const search *s, void (*fn)(void *ctx, const ending *e), void *ctx)
{
    for (unsigned mask = 1; mask < (1u << s->D); mask++) {
        if (!has_states(s, mask) || -idle_lifetime(s, mask) > s->max_idle_life)
            continue;
        for (int d = 0; d < s->D; d++) {
            if (!(mask & (1u << d)))
                continue;
            ending e = {.mask = mask, .d = d, .label = -1};
            if (s->kind != RELAX_GENERAL) {
                if (fast_ending(s, mask, d, &e))
                    fn(ctx, &e);
                continue;
            }
            const state_labels *sl = state_at(s, mask, d, s->n);
            for (int32_t i = 0; i < sl->count; i++) {
                e.label = sl->first + i;
                memcpy(e.v, s->pool[e.label].v, sizeof e.v);
                finish(s, mask, e.v);
                if (e.v[0] < INFINITY && within_bound(s, e.v))
                    fn(ctx, &e);
            }
        }
    }
}

typedef struct best_ctx {
    const search *s;
    ending best;
    bool found;
} best_ctx;

/* The lowest criterion; on an exact tie, the lowest latency. */
static void keep_best(void *ctx, const ending *e)
{
    best_ctx *b = ctx;
    int t = b->s->tie;
    if (!b->found || e->v[0] < b->best.v[0] ||
        (e->v[0] == b->best.v[0] && t >= 0 && e->v[t] < b->best.v[t])) {
        b->best = *e;
        b->found = true;
    }
}

/* Rebuilds the stages of a finished chain by following its states back. */
static void backtrack(const search *s, const ending *e, hs_plan *plan)
{
    hs_stage rev[HS_MAX_DEVICES];
    int count = 0, d = e->d, b = s->n;
    unsigned mask = e->mask;
    if (s->kind == RELAX_GENERAL) {
        const label *l = &s->pool[e->label];
        for (;;) {
            rev[count++] = (hs_stage){.device = d, .first = l->a, .last = b};
            if (l->u < 0)
                break;
            b = l->a;
            d = l->u;
            l = &s->pool[l->from];
        }
    } else {
        for (;;) {
            int32_t from = s->layers[mask].from[at_row(s, mask, d, b)];
            int a = from < 0 ? 0 : from;
            rev[count++] = (hs_stage){.device = d, .first = a, .last = b};
            if (from < 0)
                break;
            mask &= ~(1u << d);
            b = a;
            d = best_pred(s, mask, d, a);
        }
    }
    memset(plan, 0, sizeof *plan);
    plan->n_stages = count;
    for (int i = 0; i < count; i++)
        plan->stages[i] = rev[count - 1 - i];
}

/* ---- solving ------------------------------------------------------------------------------- */

static const int objective_criterion[] = {
    [HS_OBJ_LATENCY] = C_LATENCY,   [HS_OBJ_THROUGHPUT] = C_BOTTLENECK,
    [HS_OBJ_ENERGY] = C_ENERGY,     [HS_OBJ_LIFETIME] = C_LIFE,
    [HS_OBJ_LOAD_LATENCY] = C_LOAD,
};
_Static_assert(sizeof objective_criterion / sizeof objective_criterion[0] == HS_OBJ_COUNT,
               "one criterion per objective");

typedef struct relax {
    bool memory, rate, bound; /* constraints to ignore, when diagnosing infeasibility */
} relax;

static void reset_states(search *s)
{
    free_states(s);
    memset(s->states, 0, ((size_t)1 << s->D) * sizeof *s->states);
    memset(s->layers, 0, ((size_t)1 << s->D) * sizeof *s->layers);
    s->n_pool = 0;
}

/* Minimises criterion `crit`, an additive one with ties broken by latency, and stores the
 * best ending in *best (returns whether there is one). A latency bound on another quantity
 * makes that quantity a second criterion of the general DP. */
static hs_status search_best(search *s, int crit, const hs_constraints *k, const relax *r,
                             ending *best, bool *found)
{
    static const relax_kind fast[C_COUNT] = {
        [C_LATENCY] = RELAX_LATENCY, [C_BOTTLENECK] = RELAX_BOTTLENECK,
        [C_ENERGY] = RELAX_ENERGY,   [C_LIFE] = RELAX_LIFE,
        [C_LOAD] = RELAX_LOAD,
    };
    int bounded_crit = s->lambda > 0 ? C_LOAD : C_LATENCY;
    reset_states(s);
    s->crit[0] = crit;
    s->n_crit = 1;
    s->bound = r->bound ? 0 : k->max_latency_s;
    s->kind = fast[crit];
    s->tie = crit == C_ENERGY || crit == C_LOAD ? 1 : -1;
    if (s->bound > 0 && crit != bounded_crit) {
        s->kind = RELAX_GENERAL;
        s->crit[s->n_crit++] = bounded_crit;
        s->tie = -1;
        if (crit == C_ENERGY || crit == C_LOAD) {
            if (bounded_crit != C_LATENCY)
                s->crit[s->n_crit++] = C_LATENCY;
            s->tie = bounded_crit == C_LATENCY ? 1 : 2;
        }
    }
    hs_status st = run_search(s);
    best_ctx b = {.s = s};
    if (st == HS_OK)
        for_each_ending(s, keep_best, &b);
    *best = b.best;
    *found = b.found;
    return st;
}

/* Offers the plans over the prefixes of chain: keeps the best in *plan, *hi. */
static void offer_chain(search *s, const int *chain, int k, hs_plan *plan, double *hi)
{
    hs_plan some;
    double b = chain_bottleneck(s, chain, k < s->max_stages ? k : s->max_stages, &some);
    if (b < *hi) {
        *hi = b;
        *plan = some;
    }
}

/* The least bottleneck over all plans, exactly, and a plan reaching it (*found: there is one).
 * The optimum is the smallest threshold some plan meets, and one of the stage times and link
 * services, so checks of thresholds (reach_forward) close in on it between
 *   - an upper end: the best plan known, its chain of devices split at best (chain_bottleneck):
 *     chains of the devices by speed to start with, then the chain of the plan each feasible
 *     check finds, which is usually close to the optimum and often on it;
 *   - a lower end: the largest threshold found infeasible.
 * The upper end is the optimum once the double just below it is infeasible. That double is
 * checked first, then again after a new plan when the gap is within 10% (at most three times
 * in a row: chains may descend slowly), or after a failed check when it is within 5%; else the
 * gap is bisected (from the share bound of finish_row while no check has failed). Whatever the
 * order, the ends stay valid, so the answer is exact; should it take BOTTLENECK_CHECKS checks,
 * the min-max DP under the cap of the upper end finishes the job, on the few states left
 * (tests can define BOTTLENECK_CHECKS 0 to exercise it). */
#ifndef BOTTLENECK_CHECKS
#define BOTTLENECK_CHECKS 16
#endif
static hs_status least_bottleneck(search *s, const hs_constraints *k, const relax *r,
                                  hs_plan *plan, double *bottleneck, bool *found)
{
    hs_status st = thresholds_alloc(s);
    if (st != HS_OK)
        return st;
    threshold_tables(s, INFINITY, true);
    memcpy(s->lo_any, s->reach_lo, (size_t)s->D * (s->n + 1) * sizeof(int));
    double lo = -INFINITY, hi = INFINITY; /* lo infeasible; hi the bottleneck of *plan */
    int order[HS_MAX_DEVICES], m = 1; /* the source, then the devices fastest first */
    order[0] = s->c->source;
    for (int d = 0; d < s->D; d++) {
        if (d == s->c->source || !can_host(&s->c->devices[d]))
            continue;
        int i = m++;
        for (; i > 1 && pfx(s, order[i - 1], s->n) > pfx(s, d, s->n); i--)
            order[i] = order[i - 1];
        order[i] = d;
    }
    offer_chain(s, order, m, plan, &hi);
    for (int i = 1; i < m - i; i++) { /* slowest first */
        int t = order[i];
        order[i] = order[m - i];
        order[m - i] = t;
    }
    offer_chain(s, order, m, plan, &hi);
    /* a lower end to start from: what the nodes need if the devices shared them perfectly */
    s->kind = RELAX_BOTTLENECK;
    prepare_rest(s);
    int count;
    const double capacity = free_capacity(s, 0, &count);
    const double least = max2(s->rest_max[0], capacity > 0 ? s->rest_sum[0] / capacity : 0);
    double t = hi < INFINITY ? nextafter(hi, -INFINITY) : least;
    int checks = 0, tries = 0; /* tries: checks of hi itself in a row that found a plan */
    double below_before = NAN;
    for (; checks < BOTTLENECK_CHECKS; checks++) {
        unsigned done;
        threshold_tables(s, t, false);
        const bool feasible = reach_forward(s, t, &done);
        if (feasible) { /* the chain of a plan that finishes */
            int d = 0, chain[HS_MAX_DEVICES];
            while (!(done & (1u << d)) || !s->out_ok[d] ||
                   !bit_get(bits_at(s, s->fwd, done, d), s->n))
                d++;
            offer_chain(s, chain, forward_chain(s, done, d, chain), plan, &hi);
        } else if (t == INFINITY) {
            break; /* no plan at all */
        } else {
            lo = t;
        }
        const double below = nextafter(hi, -INFINITY);
        if (hi <= 0 || below <= lo)
            break; /* hi is the optimum */
        tries = feasible && t == below_before ? tries + 1 : 0;
        below_before = below;
        const double floor = lo > -INFINITY ? lo : least; /* least: not proven infeasible */
        if (hi == INFINITY) /* grow the guess until some plan meets it */
            t = t > 0 && checks < 3 ? 2 * t : INFINITY;
        else if (floor >= below)
            t = below;
        else if (feasible && tries < 3)
            t = hi - floor <= 0.1 * hi ? below : floor + (hi - floor) / 2;
        else
            t = hi - floor <= 0.05 * hi ? below : floor + (hi - floor) / 2;
    }
    *found = hi < INFINITY;
    *bottleneck = hi;
    if (checks < BOTTLENECK_CHECKS)
        return HS_OK;
    /* The DP under the cap hi, if any (run_search then prunes what cannot finish within it). */
    ending best;
    s->cap_bottleneck = hi;
    if ((st = search_best(s, C_BOTTLENECK, k, r, &best, found)) == HS_OK && *found) {
        backtrack(s, &best, plan);
        *bottleneck = best.v[0];
    }
    s->cap_bottleneck = INFINITY;
    return st;
}

/* The best plan for objective o, or plan->n_stages = 0 when none is feasible. Ties are broken
 * by the lowest latency: additive criteria carry it lexicographically; for the bottleneck and
 * the lifetime, a second search minimises latency with the optimum as a cap on every stage and
 * link, or a floor on every device's lifetime. */
static hs_status best_plan(const hs_problem *p, hs_objective o, const hs_constraints *k,
                           const relax *r, hs_plan *plan, hs_error *err)
{
    search s;
    memset(plan, 0, sizeof *plan);
    hs_status st = search_init(&s, p, k, r->memory, r->rate);
    ending best;
    bool found = false;
    /* throughput without a latency bound: by thresholds (the bound needs the general DP) */
    const bool by_threshold = o == HS_OBJ_THROUGHPUT && (r->bound || k->max_latency_s <= 0);
    double least = INFINITY;
    if (st == HS_OK && by_threshold)
        st = least_bottleneck(&s, k, r, plan, &least, &found);
    else if (st == HS_OK)
        st = search_best(&s, objective_criterion[o], k, r, &best, &found);
    if (st == HS_OK && found && !by_threshold)
        backtrack(&s, &best, plan);
    if (st == HS_OK && found && (o == HS_OBJ_THROUGHPUT || o == HS_OBJ_LIFETIME)) {
        if (o == HS_OBJ_THROUGHPUT) {
            s.cap_bottleneck = by_threshold ? least : best.v[0];
            /* the plan found meets the cap: its latency bounds the search from the start */
            hs_plan known = *plan;
            hs_error ignored;
            if (hs_plan_evaluate(p, k, &known, &ignored) == HS_OK)
                s.known_end = known.latency_s;
        } else { /* v[0] is -lifetime */
            s.floor_life = -best.v[0];
            s.max_idle_life = best.v[0];
        }
        ending fastest;
        bool any = false;
        st = search_best(&s, C_LATENCY, k, r, &fastest, &any);
        if (st == HS_OK && any) /* else keep the plan found: rounding made the cap too tight */
            backtrack(&s, &fastest, plan);
    }
    if (st == HS_OK && found)
        st = hs_plan_evaluate(p, k, plan, err);
    search_free(&s);
    if (st == HS_ERR_NOMEM)
        hs_error_set(err, st, "out of memory searching plans");
    return st;
}

static double total_weights(const hs_problem *p)
{
    double w = 0;
    for (int i = 0; i < p->n_nodes; i++)
        w += p->weight_bytes[i];
    return w;
}

/* No plan: finds which constraint binds by relaxing them one after another. */
static hs_status explain_infeasible(const hs_problem *p, hs_objective o, const hs_constraints *k,
                                    hs_error *err)
{
    const hs_cluster *c = p->cluster;
    hs_plan plan;
    hs_status st;
    relax r = {.bound = true};
    if (k->max_latency_s > 0) {
        hs_objective by = k->rate > 0 ? HS_OBJ_LOAD_LATENCY : HS_OBJ_LATENCY;
        if ((st = best_plan(p, by, k, &r, &plan, err)) != HS_OK)
            return st;
        if (plan.n_stages)
            return hs_error_set(err, HS_ERR_INFEASIBLE,
                                 "no feasible plan: the latency bound of %.3f ms; the fastest "
                                 "plan takes %.3f ms", 1e3 * k->max_latency_s,
                                 1e3 * (k->rate > 0 ? plan.load_latency_s : plan.latency_s));
    }
    r.rate = true;
    if (k->rate > 0) {
        if ((st = best_plan(p, HS_OBJ_THROUGHPUT, k, &r, &plan, err)) != HS_OK)
            return st;
        if (plan.n_stages)
            return hs_error_set(err, HS_ERR_INFEASIBLE,
                                 "no feasible plan: the arrival rate of %.3g/s; the best plan "
                                 "sustains less than %.3g/s", k->rate, plan.throughput_rps);
    }
    r.memory = true;
    if ((st = best_plan(p, HS_OBJ_LATENCY, k, &r, &plan, err)) != HS_OK)
        return st;
    if (plan.n_stages) {
        double most = 0;
        int who = 0;
        for (int d = 0; d < c->n_devices; d++)
            if (!c->devices[d].excluded && c->devices[d].memory_bytes > most)
                most = c->devices[d].memory_bytes, who = d;
        return hs_error_set(err, HS_ERR_INFEASIBLE,
                             "no feasible plan: memory; no chain of devices holds the model "
                             "(%.1f MiB of weights; the largest device, %s, has %.1f MiB)",
                             total_weights(p) / 1048576.0, c->devices[who].name,
                             most / 1048576.0);
    }
    (void)o;
    return hs_error_set(err, HS_ERR_INFEASIBLE,
                         "no feasible plan: no chain of usable devices and links runs from "
                         "the source %s to the sink %s%s", c->devices[c->source].name,
                         c->devices[c->sink].name,
                         k->max_stages > 0 ? " within max_stages" : "");
}

static hs_status check_problem(const hs_problem *p, const hs_constraints *k, hs_error *err)
{
    const hs_cluster *c = p->cluster;
    if (p->n_nodes < 1)
        return hs_error_set(err, HS_ERR_INVALID, "the model has no nodes to place");
    if (c->n_devices < 1 || c->n_devices > HS_MAX_DEVICES || c->source < 0 ||
        c->source >= c->n_devices || c->sink < 0 || c->sink >= c->n_devices)
        return hs_error_set(err, HS_ERR_INVALID, "invalid cluster");
    if (k->rate < 0 || k->max_latency_s < 0 || k->max_stages < 0)
        return hs_error_set(err, HS_ERR_INVALID, "rate, latency bound and max_stages must "
                             "not be negative");
    /* States: per device set holding the source (up to max_stages devices), D * (n + 1). */
    int D = c->n_devices, S = k->max_stages > 0 && k->max_stages < D ? k->max_stages : D;
    double sets = 0, choose = 1;
    for (int i = 0; i < S; i++) { /* sum of C(D-1, i) */
        sets += choose;
        choose = choose * (D - 1 - i) / (i + 1);
    }
    if (!(p->outside_bytes >= 0) || !isfinite(p->outside_bytes))
        return hs_error_set(err, HS_ERR_INVALID, "bytes exchanged with outside clients must be "
                             "finite and not negative");
    for (int d = 0; p->io_s_per_byte && d < D; d++)
        if (!(p->io_s_per_byte[d] >= 0) || !isfinite(p->io_s_per_byte[d]))
            return hs_error_set(err, HS_ERR_INVALID, "device %s: io cost per byte must be "
                                 "finite and not negative", c->devices[d].name);
    double bytes = sets * D * (p->n_nodes + 1.0) * sizeof(state_labels);
    if (bytes > 1024.0 * 1048576.0)
        return hs_error_set(err, HS_ERR_INVALID, "%d devices and %d nodes need %.0f MiB for an "
                             "exact search; lower max_stages", D, p->n_nodes, bytes / 1048576.0);
    return HS_OK;
}

/* Whether evaluated plan a is better than b for objective o: a lower score, or the same
 * score (within rounding) and a lower latency. */
static bool better(const hs_problem *p, const hs_constraints *k, hs_objective o,
                   const hs_plan *a, const hs_plan *b)
{
    double sa = hs_plan_score(p, k, o, a), sb = hs_plan_score(p, k, o, b);
    if (sa == INFINITY)
        return false;
    if (sb == INFINITY)
        return true;
    if (!isfinite(sa) || !isfinite(sb)) /* -inf: lifetime without batteries; equal or not */
        return sa < sb || (sa == sb && a->latency_s < b->latency_s);
    double tol = 1e-12 * fmax(fabs(sa), fabs(sb));
    return sa < sb - tol || (sa <= sb + tol && a->latency_s < b->latency_s);
}

/* With io costs, the search priced stages without them: moves each cut of the evaluated plan
 * to its best place under the full model (the stages on both sides of it keep their devices,
 * and every stage but an empty stage 0 keeps a node), one cut at a time, until none moves.
 * Each pass improves the plan, so this ends; n passes bound it all the same, each trying
 * O(S n) plans of O(n) to evaluate. Exact for one cut (2 stages); with more, a local optimum
 * (no single cut can move to improve it). */
static void place_cuts(const hs_problem *p, hs_objective o, const hs_constraints *k,
                       hs_plan *plan)
{
    for (int pass = 0, moved = 1; moved && pass < p->n_nodes; pass++) {
        moved = 0;
        for (int s = 1; s < plan->n_stages; s++) {
            hs_plan best = *plan, trial = *plan;
            int lo = plan->stages[s - 1].first + (s > 1), hi = plan->stages[s].last - 1;
            for (int x = lo; x <= hi; x++) {
                if (x == plan->stages[s].first)
                    continue;
                trial.stages[s - 1].last = trial.stages[s].first = x;
                hs_error ignored;
                if (hs_plan_evaluate(p, k, &trial, &ignored) == HS_OK &&
                    better(p, k, o, &trial, &best))
                    best = trial;
            }
            if (best.stages[s].first != plan->stages[s].first) {
                *plan = best;
                moved = 1;
            }
        }
    }
}

/* With io costs, hs_solve's search found *out pricing compute only: moves its cuts to their
 * best places under the full model, and compares it with every plan of one or two stages (the
 * source alone, or with one more device at its best cut), since io changes which chains are
 * best. HS_ERR_INFEASIBLE (out->n_stages = 0) when none of them scores. */
static hs_status price_io(const hs_problem *p, hs_objective o, const hs_constraints *k,
                          hs_plan *out, hs_error *err)
{
    place_cuts(p, o, k, out);
    const int src = p->cluster->source;
    for (int e = -1; e < (k->max_stages == 1 ? 0 : p->cluster->n_devices); e++) {
        if (e == src)
            continue;
        hs_plan short_plan = {.n_stages = 1, .stages = {{src, 0, p->n_nodes}}};
        if (e >= 0) { /* from an empty stage 0: valid even when the source may not compute */
            short_plan.n_stages = 2;
            short_plan.stages[0].last = 0;
            short_plan.stages[1] = (hs_stage){e, 0, p->n_nodes};
        }
        hs_error ignored;
        if (hs_plan_evaluate(p, k, &short_plan, &ignored) != HS_OK)
            continue;
        if (e >= 0)
            place_cuts(p, o, k, &short_plan);
        if (better(p, k, o, &short_plan, out))
            *out = short_plan;
    }
    if (hs_plan_score(p, k, o, out) < INFINITY)
        return HS_OK;
    out->n_stages = 0;
    return hs_error_set(err, HS_ERR_INFEASIBLE, "no feasible plan: once moving bytes costs CPU "
                         "(io), the best plan found %s", !out->sustainable
                         ? "does not sustain the arrival rate"
                         : "does not meet the latency bound");
}

hs_status hs_solve(const hs_problem *p, hs_objective o, const hs_constraints *k, hs_plan *out,
                   hs_error *err)
{
    assert(p && k && out);
    hs_status st = check_problem(p, k, err);
    if (st != HS_OK)
        return st;
    if (o < 0 || o >= HS_OBJ_COUNT)
        return hs_error_set(err, HS_ERR_INVALID, "unknown objective %d", (int)o);
    if ((o == HS_OBJ_LIFETIME || o == HS_OBJ_LOAD_LATENCY) && k->rate <= 0)
        return hs_error_set(err, HS_ERR_INVALID, "the %s objective needs an arrival rate",
                             hs_objective_name(o));
    relax none = {0};
    if ((st = best_plan(p, o, k, &none, out, err)) != HS_OK)
        return st;
    if (out->n_stages && has_io_cost(p) && (st = price_io(p, o, k, out, err)) != HS_OK)
        return st;
    return out->n_stages ? HS_OK : explain_infeasible(p, o, k, err);
}

/* ---- Pareto front -------------------------------------------------------------------------- */

typedef struct front {
    ending *items;
    int n, cap;
    bool failed;
} front;

static void collect(void *ctx, const ending *e)
{
    front *f = ctx;
    if (f->failed)
        return;
    if (f->n == f->cap) {
        int cap = f->cap ? 2 * f->cap : 64;
        ending *grown = realloc(f->items, (size_t)cap * sizeof *grown);
        if (!grown) {
            f->failed = true;
            return;
        }
        f->items = grown;
        f->cap = cap;
    }
    f->items[f->n++] = *e;
}

static bool dominates(const double *a, const double *b)
{
    bool strict = false;
    for (int j = 0; j < 3; j++) {
        if (a[j] > b[j])
            return false;
        if (a[j] < b[j])
            strict = true;
    }
    return strict;
}

static int by_latency(const void *x, const void *y)
{
    double a = ((const hs_plan *)x)->latency_s, b = ((const hs_plan *)y)->latency_s;
    return (a > b) - (a < b);
}

static void front_values(const hs_plan *plan, double v[3])
{
    v[0] = plan->latency_s;
    v[1] = plan->bottleneck_s;
    v[2] = plan->energy_j;
}

/* Keeps the evaluated plans no other dominates over (latency, bottleneck, energy), and the
 * first of any that are equal; returns how many, packed at the front in their order, or -1
 * when out of memory. */
static int drop_dominated(hs_plan *plans, int n)
{
    bool *out = calloc((size_t)n + 1, sizeof *out);
    if (!out)
        return -1;
    for (int i = 0; i < n; i++) {
        double vi[3], vj[3];
        front_values(&plans[i], vi);
        for (int j = 0; j < n && !out[i]; j++) {
            front_values(&plans[j], vj);
            out[i] = dominates(vj, vi) || (j < i && memcmp(vj, vi, sizeof vi) == 0);
        }
    }
    int kept = 0;
    for (int i = 0; i < n; i++)
        if (!out[i])
            plans[kept++] = plans[i];
    free(out);
    return kept;
}

hs_status hs_solve_pareto(const hs_problem *p, const hs_constraints *k, hs_plan **out,
                          int *n_out, hs_error *err)
{
    assert(p && k && out && n_out);
    *out = NULL;
    *n_out = 0;
    hs_status st = check_problem(p, k, err);
    if (st != HS_OK)
        return st;
    search s;
    front f = {0};
    if ((st = search_init(&s, p, k, false, false)) == HS_OK) {
        s.n_crit = 3;
        s.crit[0] = C_LATENCY;
        s.crit[1] = C_BOTTLENECK;
        s.crit[2] = C_ENERGY;
        s.bound = k->max_latency_s;
        if (s.bound > 0 && s.lambda > 0) /* the bound is on the load latency: track it too */
            s.crit[s.n_crit++] = C_LOAD;
        st = run_search(&s);
    }
    if (st == HS_OK) {
        for_each_ending(&s, collect, &f);
        if (f.failed)
            st = HS_ERR_NOMEM;
    }
    hs_plan *plans = st == HS_OK ? malloc(((size_t)f.n + 1) * sizeof *plans) : NULL;
    if (st == HS_OK && !plans)
        st = HS_ERR_NOMEM;
    int kept = 0;
    for (int i = 0; st == HS_OK && i < f.n; i++) {
        bool dominated = false;
        for (int j = 0; j < f.n && !dominated; j++)
            dominated = dominates(f.items[j].v, f.items[i].v) ||
                        (j < i && memcmp(f.items[j].v, f.items[i].v, 3 * sizeof(double)) == 0);
        if (dominated)
            continue;
        backtrack(&s, &f.items[i], &plans[kept]);
        st = hs_plan_evaluate(p, k, &plans[kept], err);
        if (st == HS_OK && hs_plan_score(p, k, HS_OBJ_LATENCY, &plans[kept]) < INFINITY)
            kept++;
    }
    free(f.items);
    search_free(&s);
    if (st == HS_OK && has_io_cost(p) && (kept = drop_dominated(plans, kept)) < 0)
        st = HS_ERR_NOMEM;
    if (st != HS_OK) {
        free(plans);
        return st == HS_ERR_NOMEM ? hs_error_set(err, st, "out of memory searching plans") : st;
    }
    if (!kept) {
        free(plans);
        return explain_infeasible(p, HS_OBJ_LATENCY, k, err);
    }
    qsort(plans, (size_t)kept, sizeof *plans, by_latency);
    *out = plans;
    *n_out = kept;
    return HS_OK;
}
