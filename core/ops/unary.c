/*
 * Element-wise activations (Relu, LeakyRelu, Clip, Sigmoid, HardSigmoid, HardSwish, Tanh) on
 * float32, and the pass-throughs Identity and Dropout (inference: output = input) on any type.
 *
 * All share one prepare() that checks a single float input and gives the output its shape;
 * the ops with constants (alpha/beta, Clip's bounds) resolve them once into a params block so
 * that the kernels are plain loops. FLOPs per element: 1 for Relu, LeakyRelu and Clip, 3 for
 * HardSigmoid (multiply, add, clamp), 4 for HardSwish, Sigmoid and Tanh (an exp-like function
 * counted as a couple of operations); 0 for the pass-throughs.
 */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "graph_impl.h"

typedef struct unary_params {
    float alpha, beta; /* LeakyRelu: alpha; HardSigmoid: alpha, beta; Clip: min, max */
} unary_params;

/* Checks one float32 input and one output, gives the output the input's shape and counts
 * `flops_per_element` FLOPs per element. */
static hs_status float_prepare(hs__prep *p, int max_inputs, double flops_per_element)
{
    hs_status st = hs__check_arity(p, 1, max_inputs, 1);
    if (st == HS_OK)
        st = hs__need_input(p, 0, HS_F32, "X");
    if (st != HS_OK)
        return st;
    const hs_tensor *x = hs__in(p, 0);
    hs__set_out(p, 0, HS_F32, x->ndim, x->shape);
    p->node->flops = flops_per_element * (double)hs_tensor_numel(x);
    return HS_OK;
}

static hs_status set_params(hs__prep *p, float alpha, float beta)
{
    unary_params *up = calloc(1, sizeof *up);
    if (!up)
        return hs__fail(p, HS_ERR_NOMEM, "out of memory");
    up->alpha = alpha;
    up->beta = beta;
    p->node->params = up;
    return HS_OK;
}

/* ---- activations ------------------------------------------------------------------------ */

static hs_status relu_prepare(hs__prep *p) { return float_prepare(p, 1, 1.0); }

static void relu_run(const hs__node *node, const hs_tensor *in, hs_tensor *out, void *ws)
{
    const float *x = in[0].data;
    float *y = out->data;
    int64_t n = hs_tensor_numel(out);
    for (int64_t i = 0; i < n; i++)
        y[i] = x[i] < 0.0f ? 0.0f : x[i];
}

static hs_status leakyrelu_prepare(hs__prep *p)
{
    hs_status st = float_prepare(p, 1, 1.0);
    if (st != HS_OK)
        return st;
    float alpha = hs__attr_float(p, "alpha", 0.01f, &st);
    return st == HS_OK ? set_params(p, alpha, 0.0f) : st;
}

static void leakyrelu_run(const hs__node *node, const hs_tensor *in, hs_tensor *out,
                          void *ws)
{
    const unary_params *up = node->params;
    const float *x = in[0].data;
    float *y = out->data;
    int64_t n = hs_tensor_numel(out);
    for (int64_t i = 0; i < n; i++)
        y[i] = x[i] < 0.0f ? up->alpha * x[i] : x[i];
}

/* Clip's bound given as input i (opset >= 11): absent, or a constant float scalar. */
static hs_status clip_bound(hs__prep *p, int i, const char *what, float *bound)
{
    const hs_tensor *t = hs__in(p, i);
    if (!t)
        return HS_OK;
    hs_status st = hs__need_input(p, i, HS_F32, what);
    if (st == HS_OK)
        st = hs__need_const(p, i, what);
    if (st != HS_OK)
        return st;
    if (hs_tensor_numel(t) != 1)
        return hs__fail(p, HS_ERR_INVALID, "input %d (%s) must be a scalar", i, what);
    *bound = *(const float *)t->data;
    return HS_OK;
}

static hs_status clip_prepare(hs__prep *p)
{
    bool inputs = p->g->opset >= 11;
    hs_status st = float_prepare(p, inputs ? 3 : 1, 1.0);
    if (st != HS_OK)
        return st;
    float lo = -INFINITY, hi = INFINITY;
    if (inputs) {
        st = clip_bound(p, 1, "min", &lo);
        if (st == HS_OK)
            st = clip_bound(p, 2, "max", &hi);
    } else {
        lo = hs__attr_float(p, "min", lo, &st);
        hi = hs__attr_float(p, "max", hi, &st);
    }
    return st == HS_OK ? set_params(p, lo, hi) : st;
}

/* min(max(x, lo), hi) as numpy.clip computes it: NaN passes through, lo > hi gives hi. */
static void clip_run(const hs__node *node, const hs_tensor *in, hs_tensor *out, void *ws)
{
    const unary_params *up = node->params;
    const float lo = up->alpha, hi = up->beta;
    const float *x = in[0].data;
    float *y = out->data;
    int64_t n = hs_tensor_numel(out);
    for (int64_t i = 0; i < n; i++) {
        float v = x[i] < lo ? lo : x[i];
        y[i] = v > hi ? hi : v;
    }
}

static hs_status sigmoid_prepare(hs__prep *p) { return float_prepare(p, 1, 4.0); }

static void sigmoid_run(const hs__node *node, const hs_tensor *in, hs_tensor *out, void *ws)
{
    const float *x = in[0].data;
    float *y = out->data;
    int64_t n = hs_tensor_numel(out);
    for (int64_t i = 0; i < n; i++)
        y[i] = 1.0f / (1.0f + expf(-x[i]));
}

static hs_status hardsigmoid_prepare(hs__prep *p)
{
    hs_status st = float_prepare(p, 1, 3.0);
    if (st != HS_OK)
        return st;
    float alpha = hs__attr_float(p, "alpha", 0.2f, &st);
    float beta = hs__attr_float(p, "beta", 0.5f, &st);
    return st == HS_OK ? set_params(p, alpha, beta) : st;
}

static inline float clamp01(float v) { return v < 0.0f ? 0.0f : v > 1.0f ? 1.0f : v; }

static void hardsigmoid_run(const hs__node *node, const hs_tensor *in, hs_tensor *out,
                            void *ws)
{
    const unary_params *up = node->params;
    const float *x = in[0].data;
    float *y = out->data;
    int64_t n = hs_tensor_numel(out);
    for (int64_t i = 0; i < n; i++)
        y[i] = clamp01(up->alpha * x[i] + up->beta);
}

static hs_status hardswish_prepare(hs__prep *p) { return float_prepare(p, 1, 4.0); }

/* x * HardSigmoid(x) with alpha = 1/6, beta = 0.5. */
static void hardswish_run(const hs__node *node, const hs_tensor *in, hs_tensor *out, void *ws)
{
    const float *x = in[0].data;
    float *y = out->data;
    int64_t n = hs_tensor_numel(out);
    for (int64_t i = 0; i < n; i++)
        y[i] = x[i] * clamp01(x[i] * (1.0f / 6.0f) + 0.5f);
}

static hs_status tanh_prepare(hs__prep *p) { return float_prepare(p, 1, 4.0); }

static void tanh_run(const hs__node *node, const hs_tensor *in, hs_tensor *out, void *ws)
{
    const float *x = in[0].data;
    float *y = out->data;
    int64_t n = hs_tensor_numel(out);
    for (int64_t i = 0; i < n; i++)
        y[i] = tanhf(x[i]);
}

/* ---- pass-throughs ---------------------------------------------------------------------- */

static void copy_run(const hs__node *node, const hs_tensor *in, hs_tensor *out, void *ws)
{
    if (out->data != in[0].data)
        memcpy(out->data, in[0].data, hs_tensor_nbytes(out));
}

static hs_status identity_prepare(hs__prep *p)
{
    hs_status st = hs__check_arity(p, 1, 1, 1);
    if (st != HS_OK)
        return st;
    const hs_tensor *x = hs__in(p, 0);
    hs__set_out(p, 0, x->dtype, x->ndim, x->shape);
    return HS_OK;
}

/* Opsets < 12 carry the ratio as an attribute; from 12 on, ratio and training_mode are
 * optional inputs. Inference ignores the ratio; training mode and the mask output (a bool
 * tensor, a type hotsplit lacks) are refused. */
static hs_status dropout_prepare(hs__prep *p)
{
    bool inputs = p->g->opset >= 12;
    hs_status st = hs__check_arity(p, 1, inputs ? 3 : 1, -1);
    if (st != HS_OK)
        return st;
    if (hs__out_count(p) > 1)
        return hs__fail(p, HS_ERR_UNSUPPORTED,
                        "the mask output is not supported (hotsplit has no bool type)");
    const hs_tensor *mode = hs__in(p, 2);
    if (mode) {
        if ((st = hs__need_const(p, 2, "training_mode")) != HS_OK)
            return st;
        if (hs_tensor_numel(mode) != 1)
            return hs__fail(p, HS_ERR_INVALID, "input 2 (training_mode) must be a scalar");
        bool training = mode->dtype == HS_F32 ? *(const float *)mode->data != 0.0f
                                              : *(const int64_t *)mode->data != 0;
        if (training)
            return hs__fail(p, HS_ERR_UNSUPPORTED, "training mode is not supported");
    }
    const hs_tensor *x = hs__in(p, 0);
    hs__set_out(p, 0, x->dtype, x->ndim, x->shape);
    return HS_OK;
}

static bool relu_clamp(const hs__node *node, float *lo, float *hi)
{
    *lo = 0.0f; /* x < 0 ? 0 : x, exactly relu_run */
    *hi = INFINITY;
    return true;
}

static bool clip_clamp(const hs__node *node, float *lo, float *hi)
{
    const unary_params *up = node->params;
    *lo = up->alpha;
    *hi = up->beta;
    return true;
}

const hs__op hs__op_relu = {
    .name = "Relu", .prepare = relu_prepare, .run = relu_run, .clamp = relu_clamp};
const hs__op hs__op_leakyrelu = {
    .name = "LeakyRelu", .prepare = leakyrelu_prepare, .run = leakyrelu_run};
const hs__op hs__op_clip = {
    .name = "Clip", .prepare = clip_prepare, .run = clip_run, .clamp = clip_clamp};
const hs__op hs__op_sigmoid = {
    .name = "Sigmoid", .prepare = sigmoid_prepare, .run = sigmoid_run};
const hs__op hs__op_hardsigmoid = {
    .name = "HardSigmoid", .prepare = hardsigmoid_prepare, .run = hardsigmoid_run};
const hs__op hs__op_hardswish = {
    .name = "HardSwish", .prepare = hardswish_prepare, .run = hardswish_run};
const hs__op hs__op_tanh = {.name = "Tanh", .prepare = tanh_prepare, .run = tanh_run};
const hs__op hs__op_identity = {
    .name = "Identity", .prepare = identity_prepare, .run = copy_run};
const hs__op hs__op_dropout = {.name = "Dropout", .prepare = dropout_prepare, .run = copy_run};
