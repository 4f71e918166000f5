/*
 * hotsplit solver: devices and links (a cluster), what each node costs on each device (a cost
 * model), and the partitioner that turns them into a plan.
 *
 * A *horizontal plan* is a chain of stages: stage s runs nodes [first, last) on device d_s.
 * The devices of a plan are distinct; stage 0 runs on the source device, where requests enter,
 * and may be empty (the source then only sends the input on); every other stage is non-empty;
 * the stages cover all nodes in order. Stage s hands the tensors of the cut before its `first`
 * to stage s+1 over the link (d_s, d_{s+1}); the last stage sends the outputs to the sink unless
 * it runs there. Every link a plan uses must exist in the cluster. An excluded device runs no
 * non-empty stage, but an excluded source still forwards the input (an empty stage 0) and an
 * excluded sink still receives the results: requests enter and leave there. The stage count
 * includes an empty stage 0 (so it counts against max_stages).
 *
 * Predicted figures of a plan (SI units: seconds, bytes, joules, watts). Transfers: into each
 * stage s >= 1 (the cut before its first node, from d_{s-1}), and the *delivery* of the outputs
 * (cut_bytes[n]) from the last device to the sink when they differ.
 *   stage time     sum of its nodes' times on its device (0 for an empty stage 0), plus the
 *                  CPU its device spends moving bytes (io_s_per_byte): the cut it receives,
 *                  the cut or the delivery it sends, and the delivery when it is the sink (so
 *                  an empty stage 0 pays for forwarding the input; a sink that runs no stage
 *                  is charged no io, as it holds no stage of the pipeline); stage 0, on the
 *                  source, also pays io for outside_bytes;
 *   transfer time  link latency + bytes * 8 / bandwidth; its *service* time is bytes * 8 /
 *                  bandwidth alone (propagation does not occupy the link);
 *   latency        sum of stage and transfer times (one request through an empty pipeline);
 *   bottleneck     max over stage times and transfer service times; throughput = 1/bottleneck
 *                  (stages and directed links work concurrently as a pipeline);
 *   busy_d, radio_d  device d's stage time, and its radio energy per inference: bytes it sends
 *                  * tx_nj_per_byte + bytes it receives * rx_nj_per_byte (* 1e-9 J/nJ); the
 *                  sink receives the delivery, the source receives nothing;
 *   energy         per inference: sum over counted devices of active_w * busy_d + radio_d and,
 *                  with a rate lambda, + idle_w * (1/lambda - busy_d). Counted devices: all that
 *                  are not excluded, or only the battery-powered ones with battery_only;
 *   lifetime       with a rate lambda: min over battery-powered, non-excluded devices of
 *                  capacity_wh * 3600 * (level - floor) / power_d, where power_d = lambda *
 *                  (active_w * busy_d + radio_d) + idle_w * (1 - lambda * busy_d); a device at
 *                  or below its floor lives 0 s (never less); one that draws no power
 *                  (power_d <= 0) lives forever (+inf); no battery device: +inf. Excluded
 *                  devices count for neither energy nor lifetime;
 *   load latency   with a rate lambda, each stage and each transfer is an M/D/1 queue with
 *                  utilisation u = lambda * service: response = service + lambda * service^2 /
 *                  (2 (1 - u)) (+ the link latency for transfers); summed over the chain;
 *   sustainable    a rate lambda is sustained iff lambda * bottleneck < 1; for a plan that
 *                  does not sustain it, load latency is +inf and lifetime is the formula above
 *                  taken as is (lambda * busy_d may exceed 1), neither being meaningful;
 *   memory         per stage: weight bytes of its nodes + the largest live_bytes among them;
 *                  it must not exceed its device's memory_bytes.
 * A plan is *feasible* when it is valid, fits in memory, sustains the rate (if given) and meets
 * the latency bound (if given).
 */
#ifndef HOTSPLIT_SOLVER_H
#define HOTSPLIT_SOLVER_H

#include "hotsplit/core.h"

#ifdef __cplusplus
extern "C" {
#endif

#define HS_MAX_DEVICES 16
#define HS_NAME_MAX 64

/* ---- cluster ------------------------------------------------------------------------------ */

typedef struct hs_power {
    double idle_w, active_w;
    double tx_nj_per_byte, rx_nj_per_byte;
} hs_power;

typedef struct hs_battery {
    bool present;         /* false: mains powered */
    double capacity_wh;
    double level;         /* 0..1 */
    double floor;         /* 0..1: the device stops taking work below this level */
} hs_battery;

typedef struct hs_device {
    char name[HS_NAME_MAX];
    double speed;         /* relative to the profiled reference machine; > 0 */
    char profile[256];    /* optional per-device profile file ("" = none) */
    double memory_bytes;  /* weights of its stages + peak activations must fit */
    hs_power power;
    hs_battery battery;
    bool excluded;        /* gone (set by the runtime, or --set); a battery at or below its
                             floor is treated the same: no non-empty stage may run
                             here (an excluded source or sink still forwards or receives) */
} hs_device;

typedef struct hs_link {
    double bandwidth_bps; /* bits per second; 0 = no link */
    double latency_s;
} hs_link;

/* Plain data, so that monitors can update bandwidths, battery levels and membership in place
 * between solves. */
typedef struct hs_cluster {
    char path[256];       /* file it was loaded from, for messages */
    int source, sink;     /* device indices */
    int n_devices;
    hs_device devices[HS_MAX_DEVICES];
    hs_link links[HS_MAX_DEVICES][HS_MAX_DEVICES]; /* [from][to] */
} hs_cluster;

/* Loads and validates a cluster YAML file (see configs/clusters/). Every error names the file,
 * line and field ("c.yaml:12: links[0].bandwidth_mbps: must be > 0"). */
hs_status hs_cluster_load(const char *path, hs_cluster *out, hs_error *err);
/* Applies an override "DEVICE.FIELD=VALUE" or "FROM-TO.FIELD=VALUE" (e.g.
 * "camera-edge.bandwidth_mbps=20", "edge.speed=2", "camera.battery.level=0.3"); a link
 * override sets both directions unless written "FROM->TO". */
hs_status hs_cluster_set(hs_cluster *c, const char *assignment, hs_error *err);
/* Index of the device called name, or -1. */
int hs_cluster_find(const hs_cluster *c, const char *name);

/* ---- problem: what the partitioner sees ----------------------------------------------------- */

/* A partitioning instance in plain arrays, built from a graph + cost model + cluster by
 * hs_problem_build(), or by hand (tests build random ones). Arrays are owned by whoever built
 * the struct. */
typedef struct hs_problem {
    int n_nodes;
    const hs_cluster *cluster;
    const double *node_time;    /* [n_devices][n_nodes]: seconds of node i on device d */
    const double *cut_bytes;    /* [n_nodes + 1]: bytes crossing before node k (0: inputs,
                                   n_nodes: outputs) */
    const double *weight_bytes; /* [n_nodes] */
    const double *live_bytes;   /* [n_nodes]: activation bytes live while node i runs */
    const double *io_s_per_byte; /* [n_devices]: CPU seconds device d spends per byte it
                                    sends or receives (copies, the network stack); NULL: none */
    double outside_bytes;       /* per request, bytes the source exchanges with clients
                                   outside the cluster (inputs in, results out: a coordinator
                                   sets the share of its requests that come over the network);
                                   0: requests start on the source itself */
} hs_problem;

typedef enum hs_objective {
    HS_OBJ_LATENCY = 0,
    HS_OBJ_THROUGHPUT,
    HS_OBJ_ENERGY,
    HS_OBJ_LIFETIME,
    HS_OBJ_LOAD_LATENCY,
    HS_OBJ_COUNT
} hs_objective;

/* Name as used on the command line ("load-latency"), and back (-1 if unknown). */
const char *hs_objective_name(hs_objective o);
int hs_objective_parse(const char *name);

typedef struct hs_constraints {
    double rate;            /* arrival rate lambda (requests/s); 0 = not given. When given,
                               every plan must sustain it (bottleneck < 1/lambda). */
    double max_latency_s;   /* 0 = no bound; bounds the load latency when a rate is given,
                               else the single-request latency */
    bool battery_only;      /* energy counts battery-powered devices only */
    int max_stages;         /* longest chain considered, an empty stage 0 included; 0 = as
                               many as devices */
} hs_constraints;

typedef struct hs_stage {
    int device;
    int first, last;        /* nodes [first, last) */
} hs_stage;

typedef struct hs_plan {
    int n_stages;
    hs_stage stages[HS_MAX_DEVICES];
    /* Predicted figures (filled by hs_plan_evaluate and by the solver). */
    double stage_s[HS_MAX_DEVICES];     /* time per stage: compute, and io if priced */
    double transfer_s[HS_MAX_DEVICES + 1]; /* transfer into stage s (s >= 1); [n_stages] is
                                              the delivery to the sink (0 if none) */
    double transfer_bytes[HS_MAX_DEVICES + 1];
    double delivery_s, delivery_bytes;
    double memory_bytes[HS_MAX_DEVICES]; /* per stage (= per device) */
    double latency_s, bottleneck_s, throughput_rps, energy_j, lifetime_s, load_latency_s;
    bool sustainable;                   /* can sustain the given rate (true if rate is 0) */
} hs_plan;

/* Computes every predicted figure of `plan` (its stages must be set). Returns HS_ERR_INVALID
 * with a reason if the plan breaks the rules above (gap, repeated device, missing link,
 * excluded device). Does not allocate. Constraints (memory, latency bound, rate) are not errors
 * here: hs_plan_score() applies them. */
hs_status hs_plan_evaluate(const hs_problem *p, const hs_constraints *c, hs_plan *plan,
                           hs_error *err);

/* The value the objective minimises: latency_s, bottleneck_s (for throughput), energy_j,
 * -lifetime_s, load_latency_s; +INFINITY if the plan is not feasible. `plan` must have been
 * evaluated (hs_plan_evaluate) with the same problem and constraints. */
double hs_plan_score(const hs_problem *p, const hs_constraints *c, hs_objective o,
                     const hs_plan *plan);

/* Plan mixing, for throughput: a cut can only move a whole node at a time, so the best plan
 * may still leave its stages a node's time apart. Running a share of the requests on a second
 * plan `b` (the rest on `a`) balances them finer: each serial resource (a stage's device, a
 * link's transfer) is then busy for the mean of its two plans' times per request. Both plans
 * must be evaluated (hs_plan_evaluate) and run the same chain of devices. Returns the mixed
 * bottleneck (seconds per request) at the share of `b` in [0, 1] that minimises it (*share;
 * 0 when mixing does not help), or INFINITY when the plans' chains differ. */
double hs_plan_mix(const hs_problem *p, const hs_plan *a, const hs_plan *b, double *share);

/* Elastic hand-off, for throughput: in a 2-stage plan the runtime may hand each request over
 * at another cut than the plan's, moving up to `share` of the two stages' time from the busier
 * stage to the other. Returns the bottleneck of the evaluated `plan` (seconds per request) with
 * its stages evened out as far as that allows; links keep their times. Plans of another number
 * of stages, or share <= 0: plan->bottleneck_s. */
double hs_plan_elastic_bottleneck(const hs_problem *p, const hs_plan *plan, double share);

/* Finds a plan minimising hs_plan_score(). Ties, for every objective: among the plans of optimal
 * score, one with the lowest latency_s (the single-request latency, also for load-latency) is
 * returned; scores that differ only by rounding (about 1e-12 relative) may count as ties or
 * not. Exact over the plan space above when no device has an io cost (io_s_per_byte NULL or
 * all 0); the complexity of each objective is stated in solver/partition.c. With io costs the
 * search prices stages without them (a stage's cost must be a difference of prefix sums), then
 * moves each cut of its plan to its best place under the full model, one cut at a time, until
 * none moves, and compares it with every plan of one or two stages (the source alone, or with
 * one more device at its best cut): exact over the plans of at most two stages, so exact on
 * two devices; with more stages a local optimum of the chain the search found (no single cut
 * can move to improve it); never worse than the plan found
 * without io, priced with it (when that plan is infeasible with io and no cut it moves
 * helps: HS_ERR_INFEASIBLE). When no plan satisfies the constraints, returns HS_ERR_INFEASIBLE with
 * "no feasible plan: <the binding constraint>". Requires c->rate > 0 for lifetime and
 * load-latency (HS_ERR_INVALID otherwise). */
hs_status hs_solve(const hs_problem *p, hs_objective o, const hs_constraints *c, hs_plan *out,
                   hs_error *err);

/* The exact Pareto front over (latency, throughput, energy): every feasible plan not dominated
 * by another (with io costs: the front found without them, evaluated with them, less the plans
 * that then become dominated). *out is malloc'd (caller frees), sorted by latency. When no plan is feasible,
 * returns HS_ERR_INFEASIBLE with "no feasible plan: <the binding constraint>" as hs_solve does,
 * and *out = NULL, *n_out = 0. Its cost grows with the front (see solver/partition.c). */
hs_status hs_solve_pareto(const hs_problem *p, const hs_constraints *c, hs_plan **out,
                          int *n_out, hs_error *err);

/* ---- re-planning on measured costs -------------------------------------------------------- */

/* Whether two plans run the same devices on the same node ranges (predicted figures aside). */
bool hs_plan_same_stages(const hs_plan *a, const hs_plan *b);

/* A runtime re-solves as its online cost model learns from measured stage times, and those
 * measurements are noisy: moving to every plan the solver finds would make the plan flap.
 * hs_replan_check() decides, one check at a time, when the solver's plan replaces the current
 * one. The plan must beat the current plan's score by `gain` (a fraction of it), and the next
 * check, on newer costs, must confirm it: either the solver finds the same stages again, or
 * both checks' plans (the earlier one re-priced on the newer costs) beat the current one by
 * `big_gain`. The second rule is for a busy machine: there the measured times move enough
 * between checks for the best cut to move a node or two, which is worth far less than a big
 * gain. A current plan that no longer meets the constraints scores +infinity, and any feasible
 * plan beats it; a battery lifetime that never ends scores -infinity, and nothing beats that. */
typedef struct hs_replan {
    double gain, big_gain;  /* e.g. 0.02 and 0.10 */
    /* The runtime's elastic hand-off share (hs_plan_elastic_bottleneck), 0: none. With it, a
     * 2-stage throughput plan whose source stage runs nodes (where the runtime hands off
     * elastically) scores its elastic bottleneck: an imbalance the runtime evens out per
     * request is no reason to re-plan. */
    double elastic;
    bool seen;              /* `candidate` waits for the next check to confirm it */
    hs_plan candidate;
} hs_replan;

typedef enum hs_replan_verdict {
    HS_REPLAN_KEEP,  /* the current plan stays; no candidate waits */
    HS_REPLAN_WAIT,  /* `best` is the candidate now: check again on newer costs */
    HS_REPLAN_MOVE   /* confirmed: replace the current plan with `best` */
} hs_replan_verdict;

/* One check of `best`, the plan the solver found on the costs of p (pass `current` itself if
 * it found none), against `current`; both evaluated with p and c. Updates r. With
 * HS_REPLAN_MOVE, *why (if why is not NULL) says which rule confirmed the move: "found twice"
 * or "a big gain at both checks". The caller forgets the candidate (r->seen = false) when the
 * current plan changes for another reason, and should not check again before the costs have
 * changed: the same costs would find the same plan and "confirm" it. */
hs_replan_verdict hs_replan_check(hs_replan *r, const hs_problem *p, const hs_constraints *c,
                                  hs_objective o, const hs_plan *current, const hs_plan *best,
                                  const char **why);

#ifdef __cplusplus
}
#endif
#endif
