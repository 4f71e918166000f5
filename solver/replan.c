/*
 * When a plan found on measured costs replaces the current one (see hs_replan_check in
 * hotsplit/solver.h). A rule of its own, apart from the runtime that applies it, so that it can
 * be tested on costs set by hand rather than on a live cluster's noise.
 */
#include <math.h>

#include "hotsplit/solver.h"

bool hs_plan_same_stages(const hs_plan *a, const hs_plan *b)
{
    if (a->n_stages != b->n_stages)
        return false;
    for (int s = 0; s < a->n_stages; s++)
        if (a->stages[s].device != b->stages[s].device ||
            a->stages[s].first != b->stages[s].first || a->stages[s].last != b->stages[s].last)
            return false;
    return true;
}

/* Whether a plan scoring `score` beats the current plan's `was` by the fraction `gain`. */
static bool beats(double score, double was, double gain)
{
    return was == INFINITY ? isfinite(score) : score < was - gain * fabs(was);
}

/* What the rule compares: hs_plan_score, and for a 2-stage throughput plan whose source stage
 * runs nodes, under elastic hand-off, its elastic bottleneck (see hs_replan). */
static double score(const hs_replan *r, const hs_problem *p, const hs_constraints *c,
                    hs_objective o, const hs_plan *plan)
{
    double s = hs_plan_score(p, c, o, plan);
    if (o == HS_OBJ_THROUGHPUT && r->elastic > 0 && plan->n_stages == 2 &&
        plan->stages[0].last > 0 && isfinite(s))
        s = hs_plan_elastic_bottleneck(p, plan, r->elastic);
    return s;
}

/* Whether `plan`, found at an earlier check, still beats `was` by `gain` on the costs of p (the
 * live cluster: a plan using a device that left fails to evaluate). A copy: evaluating it
 * rewrites its predicted figures. */
static bool still_beats(const hs_replan *r, const hs_problem *p, const hs_constraints *c,
                        hs_objective o, hs_plan plan, double was, double gain)
{
    return hs_plan_evaluate(p, c, &plan, NULL) == HS_OK &&
           beats(score(r, p, c, o, &plan), was, gain);
}

hs_replan_verdict hs_replan_check(hs_replan *r, const hs_problem *p, const hs_constraints *c,
                                  hs_objective o, const hs_plan *current, const hs_plan *best,
                                  const char **why)
{
    double was = score(r, p, c, o, current), will = score(r, p, c, o, best);
    if (!beats(will, was, r->gain)) {
        r->seen = false;
        return HS_REPLAN_KEEP;
    }
    const char *rule = NULL;
    if (r->seen) {
        if (hs_plan_same_stages(&r->candidate, best))
            rule = "found twice";
        else if (beats(will, was, r->big_gain) &&
                 still_beats(r, p, c, o, r->candidate, was, r->big_gain))
            rule = "a big gain at both checks";
    }
    if (!rule) {
        r->candidate = *best;
        r->seen = true;
        return HS_REPLAN_WAIT;
    }
    r->seen = false;
    if (why)
        *why = rule;
    return HS_REPLAN_MOVE;
}
