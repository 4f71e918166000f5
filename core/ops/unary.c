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
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "graph_impl.h"

/* Hot loops are compiled for AVX-512 and AVX2 as well as the baseline, picked at load time
 * (GCC's target_clones, through glibc's ifunc): the same auto-vectorized C, 2-4x wider. The
 * clones give identical bits: C11 mode keeps GCC from contracting a*b+c into an FMA and the
 * loops have no reductions to reassociate. */
#if defined(__GNUC__) && !defined(__clang__) && defined(__x86_64__) && defined(__linux__)
#define HS_VEC_CLONES __attribute__((target_clones("arch=x86-64-v4", "arch=x86-64-v3", "default")))
#else
#define HS_VEC_CLONES
#endif

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

static inline uint32_t f32_bits(float f)
{
    uint32_t u;
    memcpy(&u, &f, sizeof u);
    return u;
}

static inline float f32_from_bits(uint32_t u)
{
    float f;
    memcpy(&f, &u, sizeof f);
    return f;
}

/* x clamped to [lo, hi], NaN passing through. Written with bit masks rather than ?: because
 * GCC 12 turns a ?: with a constant arm into a branch (to fold the arithmetic that follows
 * for that arm), and a branch stops the loop around it from vectorizing. */
static inline float clamp_bits(float x, float lo, float hi)
{
    uint32_t below = -(uint32_t)(x < lo), above = -(uint32_t)(x > hi);
    return f32_from_bits((f32_bits(x) & ~(below | above)) | (f32_bits(lo) & below) |
                         (f32_bits(hi) & above));
}

/* e^x within 1 ulp over the whole float range (inf above 88.72, subnormals down to 0 below
 * -103.97, NaN in, NaN out), as branch-free straight-line code so that GCC vectorizes loops
 * calling it with whatever SIMD the target has; libm's expf is an opaque call (~3.5 ns per
 * element). Cephes' method: x = n ln2 + r with |r| <= ln2/2, ln2 split in two so that n ln2
 * is exact, e^r by a degree-6 polynomial, then 2^n applied in two halves so that n down to
 * -150 (subnormal results) and up to 129 (overflow) scale correctly. */
static inline float exp_vec(float x)
{
    const float round_magic = 12582912.0f; /* 1.5 * 2^23: adding it rounds to an integer */
    float v = clamp_bits(x, -104.0f, 89.0f);
    float t = v * 1.44269504088896341f + round_magic;
    float n = t - round_magic;
    float r = v - n * 0.693359375f;
    r = r - n * -2.12194440e-4f;
    float p = 1.9875691500e-4f;
    p = p * r + 1.3981999507e-3f;
    p = p * r + 8.3334519073e-3f;
    p = p * r + 4.1665795894e-2f;
    p = p * r + 1.6666665459e-1f;
    p = p * r + 5.0000001201e-1f;
    p = p * r * r + r + 1.0f;
    /* n as an integer is in t's low mantissa bits: no float-to-int conversion, so a NaN
     * (which p carries to the result) gives some harmless int rather than undefined behaviour. */
    int32_t i = (int32_t)(f32_bits(t) - f32_bits(round_magic)), half = i / 2;
    return p * f32_from_bits(((uint32_t)half + 127u) << 23) *
           f32_from_bits(((uint32_t)(i - half) + 127u) << 23);
}

/* 1 / (1 + e^-x), from e = e^-|x| <= 1 so nothing overflows and the negative tail, where
 * the sigmoid is e^x itself, keeps its relative accuracy. */
HS_VEC_CLONES static void sigmoid_f32(const float *x, float *y, int64_t n)
{
    for (int64_t i = 0; i < n; i++) {
        float e = exp_vec(-fabsf(x[i]));
        y[i] = (x[i] >= 0.0f ? 1.0f : e) / (1.0f + e);
    }
}

/* The same sigmoid, times x: a fused SiLU (see hs__act). */
HS_VEC_CLONES void hs__silu_inplace(float *x, int64_t n)
{
    for (int64_t i = 0; i < n; i++) {
        float v = x[i], e = exp_vec(-fabsf(v));
        x[i] = v * ((v >= 0.0f ? 1.0f : e) / (1.0f + e));
    }
}

static void sigmoid_run(const hs__node *node, const hs_tensor *in, hs_tensor *out, void *ws)
{
    sigmoid_f32(in[0].data, out->data, hs_tensor_numel(out));
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
