/*
 * hotsplit cost model: what a node costs on a device.
 *
 * A *profile* holds what one machine measured: the time of every node of a model (median of
 * repeats after warm-up) and, per op class (conv, depthwise conv, gemm, pooling, element-wise,
 * data movement, ...), a least-squares regression of time on FLOPs and bytes moved, with its
 * fit error. The regression prices nodes of models that were never profiled.
 *
 * The cost model turns a profile, a graph and a cluster into per (node, device) times:
 *     time(node, device) = reference time(node) / device speed * correction(device)
 * where the reference time is the profiled time if the profile holds that node (same name, op,
 * output shape and FLOPs), else the regression's prediction; a device with its own `profile:` file
 * uses that profile with speed 1. The correction factor starts at 1 and follows measured stage
 * times online (hs_cost_observe), so the solver learns a device's real speed. Moving bytes
 * costs a device CPU too (hs_problem.io_s_per_byte): the profile's io cost / speed, or its own
 * profile's (the reference's when its own has none); compute corrections do not apply to it.
 */
#ifndef HOTSPLIT_COST_H
#define HOTSPLIT_COST_H

#include "hotsplit/core.h"
#include "hotsplit/solver.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct hs_profile hs_profile;

typedef struct hs_profile_class {
    const char *name;     /* "conv", "depthwise", "gemm", "pool", "elementwise", "data", ... */
    int samples;          /* nodes measured in this class */
    double sec_per_flop;  /* fitted coefficients: time = a * flops + b * bytes + c */
    double sec_per_byte;
    double sec_fixed;
    double median_rel_error; /* median |predicted - measured| / measured over its samples */
} hs_profile_class;

/* Progress callback for long measurements: done of total nodes. */
typedef void (*hs_progress_fn)(void *ctx, int done, int total);

/* Measures every node of g on this machine with the BLAS threads hs_set_threads() set (the
 * profile records the count): `warmup` unrecorded whole-model runs, then `repeats` timed ones;
 * per-node medians; then fits the per-class regressions. Caller owns *out (hs_profile_free). */
hs_status hs_profile_measure(const hs_graph *g, int warmup, int repeats, hs_progress_fn progress,
                             void *ctx, hs_profile **out, hs_error *err);
/* Saves / loads a profile as YAML (libcyaml). Load errors name the file, line and field. */
hs_status hs_profile_save(const hs_profile *p, const char *path, hs_error *err);
hs_status hs_profile_load(const char *path, hs_profile **out, hs_error *err);
void hs_profile_free(hs_profile *p);

/* CPU seconds this machine spends per byte of a tensor it sends or receives through hotsplit's
 * transport (measured by `hotsplit profile` with hs_transfer_cost(); 0: not measured, and the
 * cost model then prices transfers as free for the CPU). Saved in the profile. */
double hs_profile_io_cost(const hs_profile *p);
void hs_profile_set_io_cost(hs_profile *p, double s_per_byte);

int hs_profile_class_count(const hs_profile *p);
void hs_profile_class_info(const hs_profile *p, int i, hs_profile_class *out);
/* Reference seconds of node i of g: measured when the profile holds the node (same name, op,
 * output shape and FLOPs), else regressed. */
double hs_profile_node_time(const hs_profile *p, const hs_graph *g, int i);
/* Name of the op class node i of g belongs to (static string). */
const char *hs_op_class(const hs_graph *g, int i);

typedef struct hs_cost_model hs_cost_model;

/* A cost model for g on cluster c. `ref` is the reference profile (NULL: built-in analytic
 * constants, stated in solver/cost.c); devices naming a `profile:` file get it loaded here.
 * g, c and ref must outlive the model; c may change between calls (bandwidth, battery,
 * membership): hs_cost_problem() reads it afresh. Caller owns *out. */
hs_status hs_cost_model_new(const hs_graph *g, const hs_cluster *c, const hs_profile *ref,
                            hs_cost_model **out, hs_error *err);
void hs_cost_model_free(hs_cost_model *m);

/* Seconds of node i on device d, correction included. */
double hs_cost_node_time(const hs_cost_model *m, int d, int i);
double hs_cost_correction(const hs_cost_model *m, int d);
void hs_cost_set_correction(hs_cost_model *m, int d, double factor);
/* Online update: stage [first, last) ran on device d in measured_s seconds. The correction
 * moves toward measured / predicted-without-correction by an exponentially weighted average
 * with weight alpha in (0, 1]. Ignores non-positive measurements. */
void hs_cost_observe(hs_cost_model *m, int d, int first, int last, double measured_s,
                     double alpha);

/* Fills *out with the partitioner's view (node times per device, cut, weight and live bytes).
 * The arrays belong to m and stay valid until the next call or hs_cost_model_free(). */
hs_status hs_cost_problem(hs_cost_model *m, hs_problem *out, hs_error *err);

#ifdef __cplusplus
}
#endif
#endif
