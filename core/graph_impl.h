/*
 * Internals of the core module: the graph as the loader leaves it, and the interface every
 * operator implements. Not installed; only core/ and its tests include it.
 *
 * An operator is one file in core/ops/ defining a `const hs__op hs__op_<name>`:
 *   prepare(): runs once at load time. Reads attributes and input descriptions through the
 *              hs__prep helpers below, validates them (every failure names the node and the
 *              reason through hs__fail), sets output dtypes and shapes, and fills in the
 *              node's cost (flops, workspace bytes) and an op-specific `params` block
 *              (allocated with calloc; the graph frees it with free()).
 *   run():     the kernel. Cannot fail: everything it relies on was checked by prepare().
 *              Inputs that the model omits (optional inputs) have data == NULL.
 * A node whose inputs are all constant is run at load time and its outputs become constants
 * (constant folding), unless the op sets `no_fold`.
 */
#ifndef HOTSPLIT_GRAPH_IMPL_H
#define HOTSPLIT_GRAPH_IMPL_H

#include <assert.h>
#include <stdarg.h>

#include "hotsplit/core.h"
#include "onnx/onnx.pb-c.h"

#define HS_MAX_IO 64 /* inputs or outputs of one node (Concat, Split) */

typedef struct hs__value {
    char *name;
    hs_tensor t;     /* dtype/ndim/shape; data set only for constants */
    bool is_const;
    bool owns_data;  /* t.data was allocated by the graph */
    bool let_go;     /* a constant whose data was let go (hs_graph_hold_weights); NULL now */
    bool is_input;   /* a runtime graph input */
    bool is_output;  /* a graph output */
    int producer;    /* producing node index, -1 for inputs and constants */
    int last_use;    /* last consuming node index (node count for outputs), -1 if unused */
} hs__value;

struct hs__op;

/* An activation fused into the op that produces its input (Conv, Gemm, MatMul, Add): applied to
 * each output element as the last step of that op's run(). A clamp covers Relu ([0, +inf))
 * and Clip; SiLU is x * Sigmoid(x), which PyTorch exports as a Sigmoid and a Mul. */
typedef enum hs__act_kind { HS_ACT_NONE = 0, HS_ACT_CLAMP, HS_ACT_SILU } hs__act_kind;

typedef struct hs__act {
    hs__act_kind kind;
    float lo, hi; /* HS_ACT_CLAMP */
} hs__act;

/* x * sigmoid(x) in place, bit for bit what the Sigmoid and Mul kernels compute apart
 * (core/ops/unary.c). */
void hs__silu_inplace(float *x, int64_t n);

/* Applies a fused activation to n floats in place, bit for bit as the activations it replaces
 * would. */
static inline void hs__act_apply(const hs__act *act, float *x, int64_t n)
{
    if (act->kind == HS_ACT_SILU) {
        hs__silu_inplace(x, n);
        return;
    }
    if (act->kind != HS_ACT_CLAMP)
        return;
    const float lo = act->lo, hi = act->hi;
    for (int64_t i = 0; i < n; i++) {
        float v = x[i] < lo ? lo : x[i];
        x[i] = v > hi ? hi : v;
    }
}

typedef struct hs__node {
    char *name;
    const struct hs__op *op;
    int n_in, n_out;
    int in[HS_MAX_IO];  /* value ids, -1 for an omitted optional input */
    int out[HS_MAX_IO];
    void *params;       /* op-specific, owned (free()) */
    size_t workspace;   /* scratch bytes run() needs */
    double flops;
    int64_t n_params;   /* trainable parameters counted for this node */
    bool folded_bn;     /* a BatchNormalization was folded into this Conv */
    hs__act act;        /* a Relu/Clip folded into this node (see hs__act) */
    const char *fused;  /* name of the fused activation ("Relu", "Clip", "SiLU"), or NULL */
} hs__node;

struct hs_graph {
    char *name;          /* file name given to the loader */
    int opset;           /* default-domain opset */
    hs__value *values;
    int n_values, cap_values;
    hs__node *nodes;
    int n_nodes, cap_nodes;
    int *inputs;  int n_inputs;   /* value ids of runtime inputs */
    int *outputs; int n_outputs;  /* value ids of graph outputs */
    int64_t *cut_bytes;           /* [n_nodes + 1]: cut_bytes[k + 1] = cut after node k */
    int *cut_tensors;             /* same indexing: number of tensors crossing */
    int64_t *live_bytes;          /* [n_nodes]: activation bytes live while node i runs */
    int64_t total_params;
    double total_flops;
    /* Where let-go weights are loaded back from (hs_graph_hold_weights): the file, and its
     * size and modification time when it was loaded. NULL for a model loaded from a buffer
     * or with input bindings, whose load cannot be repeated. */
    char *reload_path;
    int64_t reload_size, reload_mtime_ns;
    bool keep_batchnorm;
};

/* The context an operator's prepare() works in. */
typedef struct hs__prep {
    hs_graph *g;
    hs__node *node;
    const Onnx__NodeProto *proto;
    hs_error *err;
} hs__prep;

typedef struct hs__op {
    const char *name; /* ONNX op_type */
    hs_status (*prepare)(hs__prep *p);
    void (*run)(const hs__node *node, const hs_tensor *in, hs_tensor *out, void *workspace);
    bool no_fold;     /* never evaluate at load time even with constant inputs */
    /* Producers: run() applies node->act to its float output, so a Relu or Clip reading
     * only this node's output can be fused into it. */
    bool fuses_act;
    /* Activations: if the node is a clamp of its one input to [lo, hi], says so. */
    bool (*clamp)(const hs__node *node, float *lo, float *hi);
} hs__op;

/* ---- for prepare() ---------------------------------------------------------------------- */

/* Records "FILE: node 'NAME' (OP): <message>" in p->err and returns code. */
hs_status hs__fail(hs__prep *p, hs_status code, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* Number of inputs the node was given (including omitted optional ones at the end? no:
 * exactly as the model lists them). Input i, or NULL if omitted or i >= count. The returned
 * tensor's data is non-NULL exactly when the input is a constant. */
int hs__in_count(const hs__prep *p);
const hs_tensor *hs__in(const hs__prep *p, int i);
/* Checks the node has between lo and hi inputs (omitted ones counting) and exactly n_out
 * outputs, failing with a clear message otherwise. */
hs_status hs__check_arity(hs__prep *p, int lo, int hi, int n_out);
/* Fails unless input i is present with the given dtype; `what` names it in the message. */
hs_status hs__need_input(hs__prep *p, int i, hs_dtype dtype, const char *what);
/* Fails unless input i (if present) is a constant; NULL-safe for absent inputs. */
hs_status hs__need_const(hs__prep *p, int i, const char *what);
/* Sets output i's dtype and shape. */
void hs__set_out(hs__prep *p, int i, hs_dtype dtype, int ndim, const int64_t *shape);
int hs__out_count(const hs__prep *p);

/* Attributes. The *_or getters return `def` when the attribute is absent and fail (returning
 * HS_ERR_INVALID through p->err, status in *st) when it has the wrong type. */
bool hs__attr_has(const hs__prep *p, const char *name);
int64_t hs__attr_int(hs__prep *p, const char *name, int64_t def, hs_status *st);
float hs__attr_float(hs__prep *p, const char *name, float def, hs_status *st);
/* Copies an INTS attribute into out[0..max); *n gets its length (0 if absent). A list
 * longer than max fails. */
hs_status hs__attr_ints(hs__prep *p, const char *name, int64_t *out, int max, int *n);
/* A STRING attribute, NUL-terminated copy into buf; def if absent. */
hs_status hs__attr_string(hs__prep *p, const char *name, const char *def, char *buf,
                          size_t size);
/* Reads a constant integer tensor (int64) input into out[0..max); *n gets its length. */
hs_status hs__const_ints(hs__prep *p, int i, int64_t *out, int max, int *n, const char *what);

/* ---- tensor helpers --------------------------------------------------------------------- */

/* Normalises a possibly negative axis against rank; returns -1 if out of range. */
int hs__axis(int64_t axis, int rank);
/* Copies the elements of a strided view of src (element size es, 4 or 8 bytes; ndim dims of
 * the given shape, stride in elements per dim, ndim 0 = one element) into dst, contiguous.
 * The inner dimension is a memcpy when its stride is 1. Slice and Transpose are this. */
void hs__gather_strided(void *dst, const void *src, size_t es, int ndim, const int64_t *shape,
                        const int64_t *stride);

/* Product of shape[from..to). */
int64_t hs__prod(const int64_t *shape, int from, int to);

/* ---- sliding windows shared by Conv and the pools (core/ops/conv.c) ----------------------- */

/* Output positions [*lo, *hi) of a window sweep whose tap at offset `off` (in input units,
 * may be negative) with stride `step` lands inside an input of n_in, for n outputs. */
void hs__window_range(int64_t off, int64_t step, int64_t n_in, int64_t n, int64_t *lo,
                      int64_t *hi);
/* Reads strides, dilations, pads and auto_pad for nsp spatial dims and computes the output
 * extent of each; fails through hs__fail on bad values. */
hs_status hs__window_geometry(hs__prep *p, int nsp, const int64_t *in, const int64_t *kernel,
                              bool ceil_mode, int64_t *stride, int64_t *dilation,
                              int64_t *pad_begin, int64_t *pad_end, int64_t *out);

/* ---- graph construction (loader, folding) ----------------------------------------------- */

int hs__value_add(hs_graph *g, const char *name);   /* returns id, -1 on OOM */
int hs__value_find(const hs_graph *g, const char *name);
const hs__op *hs__op_find(const char *op_type);
/* All registered ops, NULL-terminated. */
const hs__op *const *hs__op_all(void);

/* Decodes an ONNX TensorProto (raw_data or typed fields; FLOAT, INT64, and INT32/BOOL widened
 * to INT64, DOUBLE narrowed to FLOAT) into *out, with out->data freshly malloc'd (caller frees).
 * `where` names the file and tensor in error messages. */
hs_status hs__tensor_from_proto(const Onnx__TensorProto *tp, const char *where, hs_tensor *out,
                                hs_error *err);

/* ---- error formatting shared by the module ---------------------------------------------- */

#define hs__set_error hs_error_set

#endif
