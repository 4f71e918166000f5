/*
 * Internals shared by the cost model's files (profile.c: measuring, fitting, YAML; cost.c:
 * the per-device model). Not installed; solver/ and its tests include it.
 */
#ifndef HOTSPLIT_COST_IMPL_H
#define HOTSPLIT_COST_IMPL_H

#include "hotsplit/cost.h"

/* Op classes, in the order profiles list them. hs__op_class_names[] (profile.c) is indexed by
 * this enum; a static_assert there keeps the two in step. */
typedef enum hs__op_class_id {
    HS_CLASS_CONV = 0,    /* Conv, groups 1, a kernel that overlaps (3x3, 7x7, strided 1x1) */
    HS_CLASS_POINTWISE,   /* Conv, groups 1, 1x1 stride 1 (one plain GEMM over the input) */
    HS_CLASS_DEPTHWISE,   /* Conv, groups == channels > 1 */
    HS_CLASS_GROUPED,     /* Conv, 1 < groups < channels */
    HS_CLASS_GEMM,        /* Gemm, MatMul */
    HS_CLASS_POOL,        /* MaxPool, AveragePool, Global*Pool, ReduceMean */
    HS_CLASS_ELEMENTWISE, /* Add, Sub, Mul, Div and the arithmetic activations */
    HS_CLASS_TRANSCENDENTAL, /* Sigmoid, Tanh: an exp per element */
    HS_CLASS_NORM,        /* BatchNormalization (when not folded), LRN, Softmax */
    HS_CLASS_DATA,        /* Concat, Split, Slice, Reshape, Transpose, Pad, Gather, ... */
    HS_CLASS_OTHER,       /* any op this table does not know */
    HS_CLASS_COUNT
} hs__op_class_id;

extern const char *const hs__op_class_names[HS_CLASS_COUNT];

/* Class of node i of g. */
hs__op_class_id hs__op_class_of(const hs_graph *g, int i);
/* Class id of a class name, or -1. */
int hs__op_class_find(const char *name);
/* Bytes the regression uses for node i: input + weight + output bytes. */
double hs__node_bytes(const hs_graph *g, int i);

/* Least-squares fit of t ~ a * flops + b * bytes + c with a, b, c >= 0 over n samples,
 * weighting each residual by 1 / sqrt(t) (between an absolute and a relative fit).
 * use[3] selects the terms (false: that coefficient is fixed at 0). coef[3] = {a, b, c}.
 * Returns false if no sample has t > 0. Exact: enumerates the active sets. */
bool hs__nnls_fit(const double *flops, const double *bytes, const double *t, int n,
                  const bool use[3], double coef[3]);


/* The global regression of a profile (all nodes): what unknown classes fall back to. */
void hs__profile_global(const hs_profile *p, hs_profile_class *out);
/* Name of the model a profile was measured on (owned by p). */
const char *hs__profile_model(const hs_profile *p);
/* Sum of the measured node medians (seconds). */
double hs__profile_total(const hs_profile *p);
/* Measured median seconds of node i of g when p holds it (same name, op, output shape),
 * else a negative value. */
double hs__profile_measured(const hs_profile *p, const hs_graph *g, int i);
/* Regression-only prediction for node i of g (class fit, or the global one). */
double hs__profile_regress(const hs_profile *p, const hs_graph *g, int i);
/* The BLAS core name and thread count the profile recorded (owned by p). */
const char *hs__profile_blas_core(const hs_profile *p);
int hs__profile_threads(const hs_profile *p);

#endif
