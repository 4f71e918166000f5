/*
 * The element-wise, activation, data-movement and shape operators (core/ops/binary.c,
 * unary.c, softmax.c, concat.c, split.c, slice.c, reshape.c, transpose.c, reducemean.c,
 * pad.c, shape.c), each run as a one-node ONNX model through the real loader and executor
 * and compared with a naive reference computed here: odd shapes, batch > 1, every kind of
 * broadcast, negative axes and every opset-dependent form. Data movement must be exact;
 * arithmetic within rel 1e-5 / abs 1e-6.
 */
#include <criterion/criterion.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "graph_impl.h"
#include "onnx_build.h"

#define L(...) ((const char *const[]){__VA_ARGS__, NULL})
#define SHAPE(...) ((const int64_t[]){__VA_ARGS__})
#define NDIM(...) ((int)(sizeof((const int64_t[]){__VA_ARGS__}) / sizeof(int64_t)))

/* ---- harness ---------------------------------------------------------------------------- */

typedef struct feed {
    const char *name;
    hs_tensor t;
} feed;

static hs_tensor tensor(hs_dtype dtype, int ndim, const int64_t *shape, void *data)
{
    hs_tensor t = {.dtype = dtype, .ndim = ndim, .data = data};
    for (int d = 0; d < ndim; d++)
        t.shape[d] = shape[d];
    return t;
}

/* Deterministic values in [-4, 4), with a few exact zeros and integers among them. */
static float *random_f32(int64_t n, uint32_t seed)
{
    float *x = malloc((size_t)(n ? n : 1) * sizeof *x);
    uint32_t s = seed * 2654435761u + 12345u;
    for (int64_t i = 0; i < n; i++) {
        s = s * 1664525u + 1013904223u;
        x[i] = (float)((s >> 8) % 8000) / 1000.0f - 4.0f;
    }
    return x;
}

static int64_t *iota_i64(int64_t n, int64_t from)
{
    int64_t *x = malloc((size_t)(n ? n : 1) * sizeof *x);
    for (int64_t i = 0; i < n; i++)
        x[i] = from + i;
    return x;
}

static hs_graph *load(hs__mb *mb, hs_status want, hs_error *err)
{
    uint8_t *buf;
    size_t size = hs__mb_pack(mb, &buf);
    hs_graph *g = NULL;
    hs_status st = hs_graph_load_onnx_buffer(buf, size, "test.onnx", NULL, &g, err);
    free(buf);
    cr_assert_eq(st, want, "load returned %d (%s), wanted %d", st, err->msg, want);
    return g;
}

/* Loads mb, runs all its nodes on `feeds` (matched to the range's inputs by name) and copies
 * the outputs named in `names` into outs[] (data malloc'd: free with free_outs). */
static void run_graph(hs_graph *g, const feed *feeds, int n_feeds, const char *const *names,
                      hs_tensor *outs)
{
    hs_error err = {0};
    hs_exec *x;
    cr_assert_eq(hs_exec_new(g, 0, hs_graph_node_count(g), &x, &err), HS_OK, "%s", err.msg);
    hs_tensor in[HS_MAX_IO], out[HS_MAX_IO];
    int n_in = hs_exec_input_count(x), n_out = hs_exec_output_count(x);
    for (int i = 0; i < n_in; i++) {
        const char *name = hs_exec_input(x, i, NULL);
        int f = 0;
        while (f < n_feeds && strcmp(feeds[f].name, name) != 0)
            f++;
        cr_assert_lt(f, n_feeds, "no data for input '%s'", name);
        in[i] = feeds[f].t;
    }
    cr_assert_eq(hs_exec_run(x, in, n_in, out, n_out, &err), HS_OK, "%s", err.msg);
    for (int k = 0; names[k]; k++) {
        int j = 0;
        while (j < n_out && strcmp(hs_exec_output(x, j, NULL), names[k]) != 0)
            j++;
        cr_assert_lt(j, n_out, "no output '%s'", names[k]);
        outs[k] = out[j];
        size_t bytes = hs_tensor_nbytes(&out[j]);
        outs[k].data = malloc(bytes ? bytes : 1);
        memcpy(outs[k].data, out[j].data, bytes);
    }
    hs_exec_free(x);
}

/* The common case: a model whose output is "y", with the given feeds. */
static hs_tensor run_y(hs__mb *mb, const feed *feeds, int n_feeds)
{
    hs_error err = {0};
    hs_graph *g = load(mb, HS_OK, &err);
    hs_tensor y;
    run_graph(g, feeds, n_feeds, L("y"), &y);
    hs_graph_free(g);
    hs__mb_free(mb);
    return y;
}

/* Expects a load failure with `code` whose message names the node and contains `what`. */
static void expect_load_error(hs__mb *mb, hs_status code, const char *node, const char *what)
{
    hs_error err = {0};
    hs_graph *g = load(mb, code, &err);
    cr_expect_null(g);
    char quoted[128];
    snprintf(quoted, sizeof quoted, "'%s'", node);
    cr_expect(strstr(err.msg, quoted), "message lacks the node name: %s", err.msg);
    cr_expect(strstr(err.msg, what), "message lacks \"%s\": %s", what, err.msg);
    hs__mb_free(mb);
}

static void expect_shape(const hs_tensor *t, int ndim, const int64_t *shape)
{
    cr_assert_eq(t->ndim, ndim, "rank %d, wanted %d", t->ndim, ndim);
    for (int d = 0; d < ndim; d++)
        cr_assert_eq(t->shape[d], shape[d], "dim %d is %lld, wanted %lld", d,
                     (long long)t->shape[d], (long long)shape[d]);
}

static void expect_close(const hs_tensor *t, const float *want, int64_t n)
{
    cr_assert_eq(t->dtype, HS_F32);
    cr_assert_eq(hs_tensor_numel(t), n);
    const float *got = t->data;
    for (int64_t i = 0; i < n; i++) {
        if (isnan(want[i])) {
            cr_assert(isnan(got[i]), "element %lld: got %g, wanted NaN", (long long)i,
                      got[i]);
            continue;
        }
        double tol = 1e-6 + 1e-5 * fabs(want[i]);
        cr_assert(fabs((double)got[i] - want[i]) <= tol, "element %lld: got %.9g, wanted %.9g",
                  (long long)i, got[i], want[i]);
    }
}

static void expect_exact(const hs_tensor *t, hs_dtype dtype, const void *want, int64_t n)
{
    cr_assert_eq(t->dtype, dtype);
    cr_assert_eq(hs_tensor_numel(t), n);
    cr_assert(memcmp(t->data, want, (size_t)n * hs_dtype_size(dtype)) == 0,
              "data differs from the reference");
}

static void unravel(int64_t i, int ndim, const int64_t *shape, int64_t *idx)
{
    for (int d = ndim - 1; d >= 0; d--) {
        idx[d] = i % shape[d];
        i /= shape[d];
    }
}

static int64_t ravel(const int64_t *idx, int ndim, const int64_t *shape)
{
    int64_t i = 0;
    for (int d = 0; d < ndim; d++)
        i = i * shape[d] + idx[d];
    return i;
}

/* ---- Add, Sub, Mul, Div ----------------------------------------------------------------- */

static double ref_binary(char op, double a, double b)
{
    switch (op) {
    case '+': return a + b;
    case '-': return a - b;
    case '*': return a * b;
    default: return a / b;
    }
}

static const char *binary_name(char op)
{
    return op == '+' ? "Add" : op == '-' ? "Sub" : op == '*' ? "Mul" : "Div";
}

/* Index into an operand of rank nd broadcast against an output index of rank out_nd. */
static int64_t bcast_index(const int64_t *out_idx, int out_nd, int nd, const int64_t *shape)
{
    int64_t i = 0;
    for (int d = 0; d < nd; d++)
        i = i * shape[d] + (shape[d] == 1 ? 0 : out_idx[out_nd - nd + d]);
    return i;
}

/* Runs `op` on A (shape a) and B (shape b), each a graph input or (if *_const) an
 * initializer, and checks every element against the reference. */
static void check_binary(char op, int na, const int64_t *a, bool a_const, int nb,
                         const int64_t *b, bool b_const)
{
    int64_t numel_a = hs__prod(a, 0, na), numel_b = hs__prod(b, 0, nb);
    float *xa = random_f32(numel_a, 1), *xb = random_f32(numel_b, 2);
    if (op == '/')
        for (int64_t i = 0; i < numel_b; i++)
            xb[i] = xb[i] >= 0 ? xb[i] + 0.5f : xb[i] - 0.5f;

    int nd = na > nb ? na : nb;
    int64_t shape[HS_MAX_DIMS];
    for (int d = 0; d < nd; d++) {
        int64_t da = d - (nd - na) >= 0 ? a[d - (nd - na)] : 1;
        int64_t db = d - (nd - nb) >= 0 ? b[d - (nd - nb)] : 1;
        shape[d] = da == 1 ? db : da;
    }
    int64_t n = hs__prod(shape, 0, nd);
    float *want = malloc((size_t)n * sizeof *want);
    for (int64_t i = 0; i < n; i++) {
        int64_t idx[HS_MAX_DIMS];
        unravel(i, nd, shape, idx);
        want[i] = (float)ref_binary(op, xa[bcast_index(idx, nd, na, a)],
                                    xb[bcast_index(idx, nd, nb, b)]);
    }

    hs__mb *mb = hs__mb_new(13);
    feed feeds[2];
    int n_feeds = 0;
    if (a_const) {
        hs__mb_initializer(mb, "a", HS_F32, na, a, xa);
    } else {
        hs__mb_input(mb, "a", HS_F32, na, a);
        feeds[n_feeds++] = (feed){"a", tensor(HS_F32, na, a, xa)};
    }
    if (b_const) {
        hs__mb_initializer(mb, "b", HS_F32, nb, b, xb);
    } else {
        hs__mb_input(mb, "b", HS_F32, nb, b);
        feeds[n_feeds++] = (feed){"b", tensor(HS_F32, nb, b, xb)};
    }
    hs__mb_node(mb, binary_name(op), "op", L("a", "b"), L("y"));
    hs__mb_output(mb, "y", HS_F32, 0, NULL);
    hs_tensor y = run_y(mb, feeds, n_feeds);
    expect_shape(&y, nd, shape);
    expect_close(&y, want, n);
    free(y.data);
    free(want);
    free(xa);
    free(xb);
}

Test(binary, same_shape)
{
    const char ops[] = "+-*/";
    for (int i = 0; i < 4; i++) {
        check_binary(ops[i], 4, SHAPE(2, 3, 5, 7), false, 4, SHAPE(2, 3, 5, 7), false);
        check_binary(ops[i], 1, SHAPE(13), false, 1, SHAPE(13), true);
    }
}

Test(binary, scalar_either_side)
{
    const char ops[] = "+-*/";
    for (int i = 0; i < 4; i++) {
        check_binary(ops[i], 3, SHAPE(2, 3, 5), false, 0, NULL, true);
        check_binary(ops[i], 0, NULL, true, 3, SHAPE(2, 3, 5), false);
        check_binary(ops[i], 3, SHAPE(2, 3, 5), false, 1, SHAPE(1), true);
        check_binary(ops[i], 4, SHAPE(1, 1, 1, 1), false, 2, SHAPE(3, 5), false);
    }
}

Test(binary, per_channel)
{
    const char ops[] = "+-*/";
    for (int i = 0; i < 4; i++) {
        check_binary(ops[i], 4, SHAPE(2, 3, 5, 7), false, 3, SHAPE(3, 1, 1), true);
        check_binary(ops[i], 3, SHAPE(3, 1, 1), true, 4, SHAPE(2, 3, 5, 7), false);
        /* squeeze-excitation: [N,C,1,1] gate times [N,C,H,W] features, both at run time */
        check_binary(ops[i], 4, SHAPE(2, 3, 5, 7), false, 4, SHAPE(2, 3, 1, 1), false);
        check_binary(ops[i], 4, SHAPE(2, 3, 1, 1), false, 4, SHAPE(2, 3, 5, 7), false);
    }
}

Test(binary, leading_and_trailing)
{
    const char ops[] = "+-*/";
    for (int i = 0; i < 4; i++) {
        check_binary(ops[i], 4, SHAPE(2, 3, 5, 7), false, 1, SHAPE(7), true);
        check_binary(ops[i], 2, SHAPE(5, 7), false, 4, SHAPE(2, 3, 5, 7), false);
        check_binary(ops[i], 3, SHAPE(2, 3, 5), false, 3, SHAPE(2, 3, 1), false);
    }
}

Test(binary, both_sides_broadcast)
{
    const char ops[] = "+-*/";
    for (int i = 0; i < 4; i++) {
        check_binary(ops[i], 2, SHAPE(3, 1), false, 2, SHAPE(1, 5), false);
        check_binary(ops[i], 3, SHAPE(3, 1, 5), false, 2, SHAPE(4, 5), false);
        check_binary(ops[i], 5, SHAPE(2, 1, 4, 1, 3), false, 5, SHAPE(1, 3, 1, 5, 1), true);
        check_binary(ops[i], 4, SHAPE(1, 3, 1, 7), false, 4, SHAPE(2, 3, 5, 1), false);
    }
}

Test(binary, int64_at_run_time)
{
    int64_t a[6] = {-7, 7, -8, 9, 100, 0}, b[6] = {2, 2, -3, -4, 7, 5};
    const struct {
        const char *op;
        int64_t want[6];
    } cases[] = {
        {"Add", {-5, 9, -11, 5, 107, 5}},
        {"Sub", {-9, 5, -5, 13, 93, -5}},
        {"Mul", {-14, 14, 24, -36, 700, 0}},
        {"Div", {-3, 3, 2, -2, 14, 0}}, /* truncating, as C */
    };
    for (size_t c = 0; c < sizeof cases / sizeof cases[0]; c++) {
        hs__mb *mb = hs__mb_new(13);
        hs__mb_input(mb, "a", HS_I64, 2, SHAPE(2, 3));
        hs__mb_input(mb, "b", HS_I64, 2, SHAPE(2, 3));
        hs__mb_node(mb, cases[c].op, "op", L("a", "b"), L("y"));
        hs__mb_output(mb, "y", HS_I64, 0, NULL);
        feed feeds[] = {{"a", tensor(HS_I64, 2, SHAPE(2, 3), a)},
                        {"b", tensor(HS_I64, 2, SHAPE(2, 3), b)}};
        hs_tensor y = run_y(mb, feeds, 2);
        expect_exact(&y, HS_I64, cases[c].want, 6);
        free(y.data);
    }
}

Test(binary, int64_broadcast_row)
{
    int64_t a[6] = {1, 2, 3, 4, 5, 6}, b[3] = {10, 20, 30}, want[6] = {10, 40, 90, 40, 100, 180};
    hs__mb *mb = hs__mb_new(13);
    hs__mb_input(mb, "a", HS_I64, 2, SHAPE(2, 3));
    hs__mb_initializer(mb, "b", HS_I64, 1, SHAPE(3), b);
    hs__mb_node(mb, "Mul", "op", L("a", "b"), L("y"));
    hs__mb_output(mb, "y", HS_I64, 0, NULL);
    hs_tensor y = run_y(mb, &(feed){"a", tensor(HS_I64, 2, SHAPE(2, 3), a)}, 1);
    expect_exact(&y, HS_I64, want, 6);
    free(y.data);
}

Test(binary, cost_counts_constant_operand_as_params)
{
    float w[3] = {1, 2, 3};
    hs__mb *mb = hs__mb_new(13);
    hs__mb_input(mb, "x", HS_F32, 4, SHAPE(2, 3, 5, 7));
    hs__mb_initializer(mb, "w", HS_F32, 3, SHAPE(3, 1, 1), w);
    hs__mb_initializer(mb, "s", HS_F32, 0, NULL, w);
    hs__mb_node(mb, "Mul", "scale", L("x", "w"), L("t"));
    hs__mb_node(mb, "Add", "shift", L("t", "s"), L("y"));
    hs__mb_output(mb, "y", HS_F32, 0, NULL);
    hs_error err = {0};
    hs_graph *g = load(mb, HS_OK, &err);
    hs_node_info ni;
    hs_graph_node_info(g, 0, &ni);
    cr_expect_eq(ni.params, 3);
    cr_expect_eq(ni.flops, 2 * 3 * 5 * 7);
    hs_graph_node_info(g, 1, &ni);
    cr_expect_eq(ni.params, 0, "a scalar constant is not a weight");
    hs_graph_free(g);
    hs__mb_free(mb);
}

Test(binary, mismatched_broadcast_fails)
{
    hs__mb *mb = hs__mb_new(13);
    hs__mb_input(mb, "a", HS_F32, 3, SHAPE(2, 3, 4));
    hs__mb_input(mb, "b", HS_F32, 2, SHAPE(3, 5));
    hs__mb_node(mb, "Add", "bad_add", L("a", "b"), L("y"));
    hs__mb_output(mb, "y", HS_F32, 0, NULL);
    expect_load_error(mb, HS_ERR_SHAPE, "bad_add", "2x3x4");
}

/* ---- activations ------------------------------------------------------------------------ */

typedef double (*ref_fn)(double x, const double *attr);

static double ref_relu(double x, const double *a) { return x > 0 ? x : 0; }
static double ref_leakyrelu(double x, const double *a) { return x >= 0 ? x : a[0] * x; }
static double ref_sigmoid(double x, const double *a) { return 1.0 / (1.0 + exp(-x)); }
static double ref_tanh(double x, const double *a) { return tanh(x); }
static double ref_identity(double x, const double *a) { return x; }
static double ref_hardsigmoid(double x, const double *a)
{
    return fmax(0.0, fmin(1.0, a[0] * x + a[1]));
}
static double ref_hardswish(double x, const double *a)
{
    return x * fmax(0.0, fmin(1.0, x / 6.0 + 0.5));
}
static double ref_clip(double x, const double *a) { return fmin(fmax(x, a[0]), a[1]); }

/* Runs node `op` (its extra inputs and attributes added by `setup`) on a [2,3,7] input. */
static void check_unary(int opset, const char *op, const char *const *inputs,
                        void (*setup)(hs__mb *, Onnx__NodeProto *), ref_fn ref,
                        const double *attr)
{
    const int64_t *shape = SHAPE(2, 3, 7);
    float *x = random_f32(42, 7);
    x[0] = 0.0f;
    x[1] = -3.0f; /* HardSwish's knees */
    x[2] = 3.0f;
    hs__mb *mb = hs__mb_new(opset);
    hs__mb_input(mb, "x", HS_F32, 3, shape);
    Onnx__NodeProto *node = hs__mb_node(mb, op, "op", inputs ? inputs : L("x"), L("y"));
    if (setup)
        setup(mb, node);
    hs__mb_output(mb, "y", HS_F32, 0, NULL);
    hs_tensor y = run_y(mb, &(feed){"x", tensor(HS_F32, 3, shape, x)}, 1);
    float want[42];
    for (int i = 0; i < 42; i++)
        want[i] = (float)ref(x[i], attr);
    expect_shape(&y, 3, shape);
    expect_close(&y, want, 42);
    free(y.data);
    free(x);
}

static void leaky_alpha(hs__mb *mb, Onnx__NodeProto *n)
{
    hs__mb_attr_float(mb, n, "alpha", 0.3f);
}
static void hardsigmoid_attrs(hs__mb *mb, Onnx__NodeProto *n)
{
    hs__mb_attr_float(mb, n, "alpha", 0.25f);
    hs__mb_attr_float(mb, n, "beta", 0.375f);
}
static void clip_attrs(hs__mb *mb, Onnx__NodeProto *n)
{
    hs__mb_attr_float(mb, n, "min", -1.5f);
    hs__mb_attr_float(mb, n, "max", 2.25f);
}
static void clip_min_attr(hs__mb *mb, Onnx__NodeProto *n)
{
    hs__mb_attr_float(mb, n, "min", 0.0f);
}
static void clip_bounds(hs__mb *mb, Onnx__NodeProto *n)
{
    float lo = -1.5f, hi = 2.25f;
    hs__mb_initializer(mb, "lo", HS_F32, 0, NULL, &lo);
    hs__mb_initializer(mb, "hi", HS_F32, 0, NULL, &hi);
}

Test(unary, activations)
{
    const double leaky[] = {0.3f};
    const double hsig_default[] = {0.2f, 0.5}, hsig[] = {0.25, 0.375};
    check_unary(13, "Relu", NULL, NULL, ref_relu, NULL);
    check_unary(6, "Relu", NULL, NULL, ref_relu, NULL);
    check_unary(13, "LeakyRelu", NULL, NULL, ref_leakyrelu, (const double[]){0.01f});
    check_unary(13, "LeakyRelu", NULL, leaky_alpha, ref_leakyrelu, leaky);
    check_unary(13, "Sigmoid", NULL, NULL, ref_sigmoid, NULL);
    check_unary(13, "HardSigmoid", NULL, NULL, ref_hardsigmoid, hsig_default);
    check_unary(13, "HardSigmoid", NULL, hardsigmoid_attrs, ref_hardsigmoid, hsig);
    check_unary(14, "HardSwish", NULL, NULL, ref_hardswish, NULL);
    check_unary(13, "Tanh", NULL, NULL, ref_tanh, NULL);
    check_unary(13, "Identity", NULL, NULL, ref_identity, NULL);
}

Test(unary, sigmoid_saturates_without_nan)
{
    float x[4] = {-100.0f, 100.0f, -88.0f, 0.0f};
    hs__mb *mb = hs__mb_new(13);
    hs__mb_input(mb, "x", HS_F32, 1, SHAPE(4));
    hs__mb_node(mb, "Sigmoid", "op", L("x"), L("y"));
    hs__mb_output(mb, "y", HS_F32, 0, NULL);
    hs_tensor y = run_y(mb, &(feed){"x", tensor(HS_F32, 1, SHAPE(4), x)}, 1);
    float want[4] = {(float)(1 / (1 + exp(100.0))), 1.0f, (float)(1 / (1 + exp(88.0))), 0.5f};
    expect_close(&y, want, 4);
    free(y.data);
}

/* Sigmoid runs on a vectorized exp: over [-110, 90] (subnormal and zero results included)
 * every output must be within a few ulp of the exact value. For x < 0 the sigmoid is
 * e^x / (1 + e^x), so the negative half checks the exp's relative error down to underflow. */
Test(unary, sigmoid_within_a_few_ulp)
{
    const int64_t n = 200001;
    float *x = malloc((size_t)n * sizeof *x);
    for (int64_t i = 0; i < n; i++)
        x[i] = -110.0f + 200.0f * (float)i / (float)(n - 1);
    x[0] = -INFINITY;
    x[1] = INFINITY;
    x[2] = NAN;
    hs__mb *mb = hs__mb_new(13);
    hs__mb_input(mb, "x", HS_F32, 1, SHAPE(n));
    hs__mb_node(mb, "Sigmoid", "op", L("x"), L("y"));
    hs__mb_output(mb, "y", HS_F32, 0, NULL);
    hs_tensor y = run_y(mb, &(feed){"x", tensor(HS_F32, 1, SHAPE(n), x)}, 1);
    const float *got = y.data;
    cr_expect(got[0] == 0.0f && got[1] == 1.0f && isnan(got[2]), "inf/NaN: %g %g %g", got[0],
              got[1], got[2]);
    double worst = 0.0;
    for (int64_t i = 3; i < n; i++) {
        double want = 1.0 / (1.0 + exp(-(double)x[i]));
        double ulp = fmax(nextafterf((float)want, INFINITY) - (float)want, 0x1p-149);
        double err = fabs(got[i] - want) / ulp;
        worst = fmax(worst, err);
        cr_expect(err <= 3.0, "sigmoid(%a) = %a, exact %a: %.2f ulp", x[i], got[i], want, err);
        if (err > 3.0)
            break;
    }
    cr_log_info("sigmoid: max error %.2f ulp", worst);
    free(y.data);
    free(x);
}

Test(unary, clip_every_opset_form)
{
    const double both[] = {-1.5, 2.25}, none[] = {-INFINITY, INFINITY};
    const double lo_only[] = {-1.5, INFINITY}, hi_only[] = {-INFINITY, 2.25};
    const double zero_lo[] = {0.0, INFINITY};
    check_unary(6, "Clip", NULL, clip_attrs, ref_clip, both);
    check_unary(6, "Clip", NULL, clip_min_attr, ref_clip, zero_lo);
    check_unary(6, "Clip", NULL, NULL, ref_clip, none);
    check_unary(11, "Clip", L("x", "lo", "hi"), clip_bounds, ref_clip, both);
    check_unary(13, "Clip", L("x", "lo"), clip_bounds, ref_clip, lo_only);
    check_unary(13, "Clip", L("x", "", "hi"), clip_bounds, ref_clip, hi_only);
    check_unary(12, "Clip", NULL, NULL, ref_clip, none);
}

Test(unary, clip_bound_must_be_constant)
{
    hs__mb *mb = hs__mb_new(13);
    hs__mb_input(mb, "x", HS_F32, 1, SHAPE(4));
    hs__mb_input(mb, "lo", HS_F32, 0, SHAPE(0));
    hs__mb_node(mb, "Clip", "clip", L("x", "lo"), L("y"));
    hs__mb_output(mb, "y", HS_F32, 0, NULL);
    expect_load_error(mb, HS_ERR_UNSUPPORTED, "clip", "min");
}

static void dropout_ratio_attr(hs__mb *mb, Onnx__NodeProto *n)
{
    hs__mb_attr_float(mb, n, "ratio", 0.3f);
}
static void dropout_inputs(hs__mb *mb, Onnx__NodeProto *n)
{
    float ratio = 0.3f;
    int64_t training = 0;
    hs__mb_initializer(mb, "ratio", HS_F32, 0, NULL, &ratio);
    hs__mb_initializer(mb, "training", HS_I64, 0, NULL, &training);
}

Test(unary, dropout_is_identity_in_inference)
{
    check_unary(7, "Dropout", NULL, dropout_ratio_attr, ref_identity, NULL);
    check_unary(13, "Dropout", L("x", "ratio", "training"), dropout_inputs, ref_identity, NULL);
    check_unary(13, "Dropout", L("x"), NULL, ref_identity, NULL);
}

Test(unary, dropout_mask_output_fails)
{
    hs__mb *mb = hs__mb_new(13);
    hs__mb_input(mb, "x", HS_F32, 1, SHAPE(4));
    hs__mb_node(mb, "Dropout", "drop", L("x"), L("y", "mask"));
    hs__mb_output(mb, "y", HS_F32, 0, NULL);
    hs__mb_output(mb, "mask", HS_F32, 0, NULL);
    expect_load_error(mb, HS_ERR_UNSUPPORTED, "drop", "mask");
}

/* ---- Softmax ---------------------------------------------------------------------------- */

/* Softmax over [outer, n, inner] in double. */
static void ref_softmax(const float *x, float *y, int64_t outer, int64_t n, int64_t inner)
{
    for (int64_t o = 0; o < outer; o++)
        for (int64_t j = 0; j < inner; j++) {
            const float *xr = x + o * n * inner + j;
            double max = -INFINITY, sum = 0;
            for (int64_t k = 0; k < n; k++)
                max = fmax(max, xr[k * inner]);
            for (int64_t k = 0; k < n; k++)
                sum += exp(xr[k * inner] - max);
            for (int64_t k = 0; k < n; k++)
                y[o * n * inner + j + k * inner] = (float)(exp(xr[k * inner] - max) / sum);
        }
}

static void check_softmax(int opset, bool has_axis, int64_t axis, int64_t outer, int64_t n,
                          int64_t inner)
{
    const int64_t *shape = SHAPE(2, 3, 4, 5);
    float *x = random_f32(120, 3);
    x[0] = 1000.0f; /* needs the max subtracted */
    x[1] = 999.0f;
    hs__mb *mb = hs__mb_new(opset);
    hs__mb_input(mb, "x", HS_F32, 4, shape);
    Onnx__NodeProto *node = hs__mb_node(mb, "Softmax", "sm", L("x"), L("y"));
    if (has_axis)
        hs__mb_attr_int(mb, node, "axis", axis);
    hs__mb_output(mb, "y", HS_F32, 0, NULL);
    hs_tensor y = run_y(mb, &(feed){"x", tensor(HS_F32, 4, shape, x)}, 1);
    float want[120];
    ref_softmax(x, want, outer, n, inner);
    expect_shape(&y, 4, shape);
    expect_close(&y, want, 120);
    free(y.data);
    free(x);
}

Test(softmax, opset11_coerces_to_2d)
{
    check_softmax(11, false, 0, 2, 60, 1);  /* default axis 1 */
    check_softmax(11, true, 2, 6, 20, 1);
    check_softmax(11, true, -1, 24, 5, 1);
    check_softmax(11, true, 0, 1, 120, 1);
}

Test(softmax, opset13_along_one_axis)
{
    check_softmax(13, false, 0, 24, 5, 1);  /* default axis -1 */
    check_softmax(13, true, 1, 2, 3, 20);
    check_softmax(13, true, -3, 2, 3, 20);
    check_softmax(13, true, 2, 6, 4, 5);
    check_softmax(13, true, 0, 1, 2, 60);
}

/* ---- Concat and Split ------------------------------------------------------------------- */

Test(concat, three_inputs_any_axis)
{
    for (int axis = -3; axis < 3; axis++) {
        int a = axis < 0 ? axis + 3 : axis;
        int64_t sa[3] = {2, 3, 4}, sb[3] = {2, 3, 4}, sc[3] = {2, 3, 4};
        sa[a] = 1;
        sb[a] = 2;
        sc[a] = 5;
        float *xa = random_f32(hs__prod(sa, 0, 3), 1), *xb = random_f32(hs__prod(sb, 0, 3), 2);
        float *xc = random_f32(hs__prod(sc, 0, 3), 3);
        hs__mb *mb = hs__mb_new(13);
        hs__mb_input(mb, "a", HS_F32, 3, sa);
        hs__mb_initializer(mb, "b", HS_F32, 3, sb, xb);
        hs__mb_input(mb, "c", HS_F32, 3, sc);
        Onnx__NodeProto *n = hs__mb_node(mb, "Concat", "cat", L("a", "b", "c"), L("y"));
        hs__mb_attr_int(mb, n, "axis", axis);
        hs__mb_output(mb, "y", HS_F32, 0, NULL);
        feed feeds[] = {{"a", tensor(HS_F32, 3, sa, xa)}, {"c", tensor(HS_F32, 3, sc, xc)}};
        hs_tensor y = run_y(mb, feeds, 2);

        int64_t so[3] = {2, 3, 4};
        so[a] = 8;
        float want[8 * 3 * 4];
        for (int64_t i = 0; i < hs__prod(so, 0, 3); i++) {
            int64_t idx[3];
            unravel(i, 3, so, idx);
            int64_t k = idx[a];
            const float *src = k < 1 ? xa : k < 3 ? xb : xc;
            const int64_t *ss = k < 1 ? sa : k < 3 ? sb : sc;
            idx[a] = k < 1 ? k : k < 3 ? k - 1 : k - 3;
            want[i] = src[ravel(idx, 3, ss)];
        }
        expect_shape(&y, 3, so);
        expect_exact(&y, HS_F32, want, hs__prod(so, 0, 3));
        free(y.data);
        free(xa);
        free(xb);
        free(xc);
    }
}

Test(concat, int64_and_shape_mismatch)
{
    int64_t a[2] = {1, 2}, b[3] = {3, 4, 5}, want[5] = {1, 2, 3, 4, 5};
    hs__mb *mb = hs__mb_new(11);
    hs__mb_input(mb, "a", HS_I64, 1, SHAPE(2));
    hs__mb_initializer(mb, "b", HS_I64, 1, SHAPE(3), b);
    Onnx__NodeProto *n = hs__mb_node(mb, "Concat", "cat", L("a", "b"), L("y"));
    hs__mb_attr_int(mb, n, "axis", 0);
    hs__mb_output(mb, "y", HS_I64, 0, NULL);
    hs_tensor y = run_y(mb, &(feed){"a", tensor(HS_I64, 1, SHAPE(2), a)}, 1);
    expect_exact(&y, HS_I64, want, 5);
    free(y.data);

    mb = hs__mb_new(13);
    hs__mb_input(mb, "a", HS_F32, 2, SHAPE(2, 3));
    hs__mb_input(mb, "b", HS_F32, 2, SHAPE(3, 3));
    n = hs__mb_node(mb, "Concat", "bad_cat", L("a", "b"), L("y"));
    hs__mb_attr_int(mb, n, "axis", 1);
    hs__mb_output(mb, "y", HS_F32, 0, NULL);
    expect_load_error(mb, HS_ERR_SHAPE, "bad_cat", "3x3");
}

static const char *const split_names[] = {"y0", "y1", "y2", "y3"};

/* Runs a Split of x [2,6,5] along `axis` into outputs y0.. of the given sizes and checks
 * each part. */
static void check_split(hs__mb *mb, int axis, int n_parts, const int64_t *sizes)
{
    const int64_t shape[3] = {2, 6, 5};
    const char *names[5] = {NULL};
    memcpy(names, split_names, (size_t)n_parts * sizeof *names);
    float *x = random_f32(60, 9);
    hs_error err = {0};
    hs_graph *g = load(mb, HS_OK, &err);
    hs_tensor outs[4];
    run_graph(g, &(feed){"x", tensor(HS_F32, 3, shape, x)}, 1, names, outs);
    hs_graph_free(g);
    hs__mb_free(mb);
    for (int k = 0, begin = 0; k < n_parts; begin += (int)sizes[k], k++) {
        int64_t so[3] = {2, 6, 5};
        so[axis] = sizes[k];
        float want[60];
        for (int64_t i = 0; i < hs__prod(so, 0, 3); i++) {
            int64_t idx[3];
            unravel(i, 3, so, idx);
            idx[axis] += begin;
            want[i] = x[ravel(idx, 3, shape)];
        }
        expect_shape(&outs[k], 3, so);
        expect_exact(&outs[k], HS_F32, want, hs__prod(so, 0, 3));
        free(outs[k].data);
    }
    free(x);
}

/* Split of x [2,6,5] along axis into n outputs y0.. (no 'split' given yet). */
static hs__mb *split_model(int opset, const char *const *inputs, int64_t axis, int n)
{
    const char *outs[5] = {NULL};
    memcpy(outs, split_names, (size_t)n * sizeof *outs);
    hs__mb *mb = hs__mb_new(opset);
    hs__mb_input(mb, "x", HS_F32, 3, SHAPE(2, 6, 5));
    Onnx__NodeProto *node = hs__mb_node(mb, "Split", "split", inputs, outs);
    hs__mb_attr_int(mb, node, "axis", axis);
    for (int k = 0; k < n; k++)
        hs__mb_output(mb, split_names[k], HS_F32, 0, NULL);
    return mb;
}

static Onnx__NodeProto *first_node(hs__mb *mb) { return hs__mb_model(mb)->graph->node[0]; }

Test(split, attribute_form_before_opset13)
{
    const int64_t sizes[4] = {1, 2, 0, 3};
    hs__mb *mb = split_model(11, L("x"), 1, 4);
    hs__mb_attr_ints(mb, first_node(mb), "split", sizes, 4);
    check_split(mb, 1, 4, sizes);
    mb = split_model(11, L("x"), -1, 2);
    hs__mb_attr_ints(mb, first_node(mb), "split", (const int64_t[]){4, 1}, 2);
    check_split(mb, 2, 2, (const int64_t[]){4, 1});
}

Test(split, input_form_from_opset13)
{
    const int64_t sizes[4] = {1, 2, 0, 3};
    hs__mb *mb = split_model(13, L("x", "sizes"), -2, 4);
    hs__mb_initializer(mb, "sizes", HS_I64, 1, SHAPE(4), sizes);
    check_split(mb, 1, 4, sizes);
}

Test(split, equal_parts)
{
    check_split(split_model(13, L("x"), 1, 3), 1, 3, (const int64_t[]){2, 2, 2});
    check_split(split_model(11, L("x"), 0, 2), 0, 2, (const int64_t[]){1, 1});
    check_split(split_model(13, L("x", ""), -3, 2), 0, 2, (const int64_t[]){1, 1});
}

Test(split, errors)
{
    hs__mb *mb = split_model(11, L("x"), 1, 4);
    hs__mb_attr_ints(mb, first_node(mb), "split", (const int64_t[]){1, 2, 0, 2}, 4);
    expect_load_error(mb, HS_ERR_SHAPE, "split", "sum to 5");
    expect_load_error(split_model(13, L("x"), 1, 4), HS_ERR_SHAPE, "split", "evenly");
    mb = split_model(13, L("x", "sizes"), 1, 2);
    hs__mb_input(mb, "sizes", HS_I64, 1, SHAPE(2));
    expect_load_error(mb, HS_ERR_UNSUPPORTED, "split", "constant");
}

/* ---- Slice ------------------------------------------------------------------------------ */

/* The indices ONNX's Slice picks along a dimension of size dim, written as the spec's loop. */
static int64_t ref_slice_axis(int64_t dim, int64_t start, int64_t end, int64_t step,
                              int64_t *picked)
{
    int64_t n = 0;
    if (start < 0)
        start += dim;
    if (end < 0)
        end += dim;
    if (step > 0) {
        start = start < 0 ? 0 : start > dim ? dim : start;
        end = end < 0 ? 0 : end > dim ? dim : end;
        for (int64_t i = start; i < end; i += step)
            picked[n++] = i;
    } else {
        start = start < 0 ? 0 : start > dim - 1 ? dim - 1 : start;
        end = end < -1 ? -1 : end > dim - 1 ? dim - 1 : end;
        for (int64_t i = start; i > end; i += step)
            picked[n++] = i;
    }
    return n;
}

typedef struct slice_case {
    int n;                 /* sliced axes */
    int64_t starts[3], ends[3], axes[3], steps[3];
    bool axes_given, steps_given;
} slice_case;

/* Slices a [3,7,6] input (as a graph input) and compares with ref_slice_axis. */
static void check_slice(int opset, const slice_case *c)
{
    const int64_t shape[3] = {3, 7, 6};
    float *x = random_f32(126, 4);
    hs__mb *mb = hs__mb_new(opset);
    hs__mb_input(mb, "x", HS_F32, 3, shape);
    Onnx__NodeProto *node;
    if (opset >= 10) {
        hs__mb_initializer(mb, "starts", HS_I64, 1, (int64_t[]){c->n}, c->starts);
        hs__mb_initializer(mb, "ends", HS_I64, 1, (int64_t[]){c->n}, c->ends);
        hs__mb_initializer(mb, "axes", HS_I64, 1, (int64_t[]){c->n}, c->axes);
        hs__mb_initializer(mb, "steps", HS_I64, 1, (int64_t[]){c->n}, c->steps);
        node = hs__mb_node(mb, "Slice", "slice",
                           c->steps_given ? L("x", "starts", "ends", c->axes_given ? "axes" : "",
                                              "steps")
                           : c->axes_given ? L("x", "starts", "ends", "axes")
                                           : L("x", "starts", "ends"),
                           L("y"));
    } else {
        node = hs__mb_node(mb, "Slice", "slice", L("x"), L("y"));
        hs__mb_attr_ints(mb, node, "starts", c->starts, c->n);
        hs__mb_attr_ints(mb, node, "ends", c->ends, c->n);
        if (c->axes_given)
            hs__mb_attr_ints(mb, node, "axes", c->axes, c->n);
    }
    hs__mb_output(mb, "y", HS_F32, 0, NULL);
    hs_tensor y = run_y(mb, &(feed){"x", tensor(HS_F32, 3, shape, x)}, 1);

    int64_t picked[3][8], so[3];
    for (int d = 0; d < 3; d++) {
        so[d] = shape[d];
        for (int64_t i = 0; i < shape[d]; i++)
            picked[d][i] = i;
    }
    for (int k = 0; k < c->n; k++) {
        int d = (int)(c->axes_given ? (c->axes[k] + 3) % 3 : k);
        so[d] = ref_slice_axis(shape[d], c->starts[k], c->ends[k],
                               c->steps_given ? c->steps[k] : 1, picked[d]);
    }
    int64_t n = hs__prod(so, 0, 3);
    float want[126];
    for (int64_t i = 0; i < n; i++) {
        int64_t idx[3];
        unravel(i, 3, so, idx);
        for (int d = 0; d < 3; d++)
            idx[d] = picked[d][idx[d]];
        want[i] = x[ravel(idx, 3, shape)];
    }
    expect_shape(&y, 3, so);
    expect_exact(&y, HS_F32, want, n);
    free(y.data);
    free(x);
}

Test(slice, positive_steps_and_clamping)
{
    const slice_case cases[] = {
        {1, {1}, {3}, {1}, {1}, true, false},
        {2, {0, 1}, {INT64_MAX, -1}, {2, 0}, {2, 1}, true, true},
        {3, {-100, 2, -4}, {100, 6, -1}, {0, 1, 2}, {1, 3, 1}, false, true},
        {1, {5}, {2}, {-2}, {1}, true, true},  /* empty */
        {2, {1, -3}, {2, 1000}, {-3, -1}, {1, 1}, true, false},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++)
        check_slice(13, &cases[i]);
}

Test(slice, negative_steps)
{
    const slice_case cases[] = {
        {1, {-1}, {INT64_MIN}, {1}, {-1}, true, true},     /* reverse */
        {1, {100}, {-100}, {-1}, {-2}, true, true},        /* clamped both ends */
        {2, {5, 2}, {0, 0}, {1, 0}, {-3, -1}, true, true},
        {3, {0, 6, 5}, {3, -8, -7}, {0, 1, 2}, {1, -2, -1}, true, true},
        {1, {2}, {4}, {2}, {-1}, true, true},              /* empty */
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++)
        check_slice(13, &cases[i]);
    check_slice(10, &cases[2]);
}

Test(slice, attribute_form_before_opset10)
{
    const slice_case cases[] = {
        {2, {0, 1}, {2, 5}, {0, 1}, {1, 1}, false, false},
        {2, {-2, 1}, {INT64_MAX, -1}, {2, -2}, {1, 1}, true, false},
    };
    check_slice(9, &cases[0]);
    check_slice(9, &cases[1]);
}

Test(slice, int64_runtime_and_nonconstant_starts)
{
    int64_t *x = iota_i64(10, 0), want[3] = {8, 5, 2};
    hs__mb *mb = hs__mb_new(13);
    hs__mb_input(mb, "x", HS_I64, 1, SHAPE(10));
    hs__mb_initializer(mb, "s", HS_I64, 1, SHAPE(1), (int64_t[]){-2});
    hs__mb_initializer(mb, "e", HS_I64, 1, SHAPE(1), (int64_t[]){0});
    hs__mb_initializer(mb, "st", HS_I64, 1, SHAPE(1), (int64_t[]){-3});
    hs__mb_node(mb, "Slice", "slice", L("x", "s", "e", "", "st"), L("y"));
    hs__mb_output(mb, "y", HS_I64, 0, NULL);
    hs_tensor y = run_y(mb, &(feed){"x", tensor(HS_I64, 1, SHAPE(10), x)}, 1);
    expect_exact(&y, HS_I64, want, 3);
    free(y.data);
    free(x);

    mb = hs__mb_new(13);
    hs__mb_input(mb, "x", HS_F32, 1, SHAPE(10));
    hs__mb_input(mb, "s", HS_I64, 1, SHAPE(1));
    hs__mb_initializer(mb, "e", HS_I64, 1, SHAPE(1), (int64_t[]){5});
    hs__mb_node(mb, "Slice", "slice", L("x", "s", "e"), L("y"));
    hs__mb_output(mb, "y", HS_F32, 0, NULL);
    expect_load_error(mb, HS_ERR_UNSUPPORTED, "slice", "starts");

    mb = hs__mb_new(13);
    hs__mb_input(mb, "x", HS_F32, 1, SHAPE(10));
    hs__mb_initializer(mb, "s", HS_I64, 1, SHAPE(1), (int64_t[]){0});
    hs__mb_initializer(mb, "e", HS_I64, 1, SHAPE(1), (int64_t[]){5});
    hs__mb_initializer(mb, "st", HS_I64, 1, SHAPE(1), (int64_t[]){0});
    hs__mb_node(mb, "Slice", "slice", L("x", "s", "e", "", "st"), L("y"));
    hs__mb_output(mb, "y", HS_F32, 0, NULL);
    expect_load_error(mb, HS_ERR_INVALID, "slice", "step 0");
}

/* ---- Reshape, Flatten, Squeeze, Unsqueeze ----------------------------------------------- */

/* Runs reshape-like `op` on x [2,3,1,4] and checks the output shape; the data must come
 * through as is. `list` (n values, if not NULL) goes in as the ints attribute `list_attr`, or
 * as a constant int64 input 1 when list_attr is NULL; `int_attr` (if not NULL) is set to
 * int_value. */
static void check_reshape_like(int opset, const char *op, const int64_t *list, int n,
                               const char *list_attr, const char *int_attr, int64_t int_value,
                               int ndim, const int64_t *want_shape)
{
    const int64_t shape[4] = {2, 3, 1, 4};
    float *x = random_f32(24, 5);
    hs__mb *mb = hs__mb_new(opset);
    hs__mb_input(mb, "x", HS_F32, 4, shape);
    bool input = list && !list_attr;
    if (input)
        hs__mb_initializer(mb, "arg", HS_I64, 1, (int64_t[]){n}, list);
    Onnx__NodeProto *node = hs__mb_node(mb, op, "op", input ? L("x", "arg") : L("x"), L("y"));
    if (list_attr)
        hs__mb_attr_ints(mb, node, list_attr, list, n);
    if (int_attr)
        hs__mb_attr_int(mb, node, int_attr, int_value);
    hs__mb_output(mb, "y", HS_F32, 0, NULL);
    hs_tensor y = run_y(mb, &(feed){"x", tensor(HS_F32, 4, shape, x)}, 1);
    expect_shape(&y, ndim, want_shape);
    expect_exact(&y, HS_F32, x, 24);
    free(y.data);
    free(x);
}

Test(reshape, zero_copies_and_minus_one_infers)
{
    check_reshape_like(13, "Reshape", SHAPE(6, 4), 2, NULL, NULL, 0, 2, SHAPE(6, 4));
    check_reshape_like(13, "Reshape", SHAPE(0, -1), 2, NULL, NULL, 0, 2, SHAPE(2, 12));
    check_reshape_like(13, "Reshape", SHAPE(0, 0, -1, 2), 4, NULL, NULL, 0, 4,
                       SHAPE(2, 3, 2, 2));
    check_reshape_like(6, "Reshape", SHAPE(-1), 1, NULL, NULL, 0, 1, SHAPE(24));
    check_reshape_like(14, "Reshape", SHAPE(4, 3, 2), 3, NULL, "allowzero", 1, 3,
                       SHAPE(4, 3, 2));
}

static hs__mb *reshape_model(const int64_t *target, int n, bool allowzero)
{
    hs__mb *mb = hs__mb_new(14);
    hs__mb_input(mb, "x", HS_F32, 4, SHAPE(2, 3, 1, 4));
    hs__mb_initializer(mb, "shape", HS_I64, 1, (int64_t[]){n}, target);
    Onnx__NodeProto *node = hs__mb_node(mb, "Reshape", "reshape", L("x", "shape"), L("y"));
    if (allowzero)
        hs__mb_attr_int(mb, node, "allowzero", 1);
    hs__mb_output(mb, "y", HS_F32, 0, NULL);
    return mb;
}

Test(reshape, errors)
{
    expect_load_error(reshape_model(SHAPE(5, 5), 2, false), HS_ERR_SHAPE, "reshape",
                      "24 elements");
    expect_load_error(reshape_model(SHAPE(5, -1), 2, false), HS_ERR_SHAPE, "reshape", "-1");
    expect_load_error(reshape_model(SHAPE(-1, -1), 2, false), HS_ERR_INVALID, "reshape",
                      "more than one -1");
    /* with allowzero, 0 is a real size: 0 elements cannot hold 24 */
    expect_load_error(reshape_model(SHAPE(0, 24), 2, true), HS_ERR_SHAPE, "reshape",
                      "elements");

    hs__mb *mb = hs__mb_new(13);
    hs__mb_input(mb, "x", HS_F32, 2, SHAPE(2, 3));
    hs__mb_input(mb, "shape", HS_I64, 1, SHAPE(1));
    hs__mb_node(mb, "Reshape", "reshape", L("x", "shape"), L("y"));
    hs__mb_output(mb, "y", HS_F32, 0, NULL);
    expect_load_error(mb, HS_ERR_UNSUPPORTED, "reshape", "constant");
}

Test(reshape, flatten_any_axis)
{
    check_reshape_like(13, "Flatten", NULL, 0, NULL, NULL, 0, 2, SHAPE(2, 12));
    check_reshape_like(13, "Flatten", NULL, 0, NULL, "axis", 0, 2, SHAPE(1, 24));
    check_reshape_like(13, "Flatten", NULL, 0, NULL, "axis", 4, 2, SHAPE(24, 1));
    check_reshape_like(13, "Flatten", NULL, 0, NULL, "axis", -1, 2, SHAPE(6, 4));
    check_reshape_like(11, "Flatten", NULL, 0, NULL, "axis", -4, 2, SHAPE(1, 24));
    check_reshape_like(9, "Flatten", NULL, 0, NULL, "axis", 2, 2, SHAPE(6, 4));
}

Test(reshape, squeeze_and_unsqueeze_both_forms)
{
    check_reshape_like(13, "Squeeze", NULL, 0, NULL, NULL, 0, 3, SHAPE(2, 3, 4));
    check_reshape_like(11, "Squeeze", NULL, 0, NULL, NULL, 0, 3, SHAPE(2, 3, 4));
    check_reshape_like(11, "Squeeze", SHAPE(-2), 1, "axes", NULL, 0, 3, SHAPE(2, 3, 4));
    check_reshape_like(13, "Squeeze", SHAPE(2), 1, NULL, NULL, 0, 3, SHAPE(2, 3, 4));
    check_reshape_like(11, "Unsqueeze", SHAPE(0, -1), 2, "axes", NULL, 0, 6,
                       SHAPE(1, 2, 3, 1, 4, 1));
    check_reshape_like(13, "Unsqueeze", SHAPE(1, 3), 2, NULL, NULL, 0, 6,
                       SHAPE(2, 1, 3, 1, 1, 4));
    check_reshape_like(13, "Unsqueeze", SHAPE(-1), 1, NULL, NULL, 0, 5, SHAPE(2, 3, 1, 4, 1));
}

Test(reshape, squeeze_of_a_real_dimension_fails)
{
    hs__mb *mb = hs__mb_new(13);
    hs__mb_input(mb, "x", HS_F32, 3, SHAPE(2, 1, 4));
    hs__mb_initializer(mb, "axes", HS_I64, 1, SHAPE(1), (int64_t[]){0});
    hs__mb_node(mb, "Squeeze", "sq", L("x", "axes"), L("y"));
    hs__mb_output(mb, "y", HS_F32, 0, NULL);
    expect_load_error(mb, HS_ERR_SHAPE, "sq", "axis 0");
}

/* ---- Transpose -------------------------------------------------------------------------- */

static void check_transpose(int ndim, const int64_t *shape, const int64_t *perm, hs_dtype dtype)
{
    int64_t n = hs__prod(shape, 0, ndim);
    void *x = dtype == HS_F32 ? (void *)random_f32(n, 6) : (void *)iota_i64(n, -50);
    hs__mb *mb = hs__mb_new(13);
    hs__mb_input(mb, "x", dtype, ndim, shape);
    Onnx__NodeProto *node = hs__mb_node(mb, "Transpose", "tr", L("x"), L("y"));
    int64_t p[HS_MAX_DIMS];
    for (int d = 0; d < ndim; d++)
        p[d] = perm ? perm[d] : ndim - 1 - d;
    if (perm)
        hs__mb_attr_ints(mb, node, "perm", perm, ndim);
    hs__mb_output(mb, "y", dtype, 0, NULL);
    hs_tensor y = run_y(mb, &(feed){"x", tensor(dtype, ndim, shape, x)}, 1);

    int64_t so[HS_MAX_DIMS];
    for (int d = 0; d < ndim; d++)
        so[d] = shape[p[d]];
    size_t es = hs_dtype_size(dtype);
    char *want = malloc((size_t)n * es);
    for (int64_t i = 0; i < n; i++) {
        int64_t oi[HS_MAX_DIMS], ii[HS_MAX_DIMS];
        unravel(i, ndim, so, oi);
        for (int d = 0; d < ndim; d++)
            ii[p[d]] = oi[d];
        memcpy(want + (size_t)i * es, (char *)x + (size_t)ravel(ii, ndim, shape) * es, es);
    }
    expect_shape(&y, ndim, so);
    expect_exact(&y, dtype, want, n);
    free(want);
    free(y.data);
    free(x);
}

Test(transpose, perms)
{
    check_transpose(3, SHAPE(2, 3, 5), NULL, HS_F32);
    check_transpose(4, SHAPE(2, 3, 4, 5), SHAPE(0, 2, 3, 1), HS_F32);
    check_transpose(4, SHAPE(2, 3, 4, 5), SHAPE(0, 3, 1, 2), HS_F32);
    check_transpose(5, SHAPE(2, 2, 3, 4, 5), SHAPE(0, 2, 1, 3, 4), HS_F32); /* shuffle */
    check_transpose(4, SHAPE(1, 3, 1, 5), SHAPE(2, 3, 0, 1), HS_F32);
    check_transpose(2, SHAPE(7, 3), NULL, HS_I64);
    check_transpose(4, SHAPE(2, 3, 4, 5), SHAPE(0, 1, 2, 3), HS_I64);
}

Test(transpose, bad_perm_fails)
{
    hs__mb *mb = hs__mb_new(13);
    hs__mb_input(mb, "x", HS_F32, 3, SHAPE(2, 3, 4));
    Onnx__NodeProto *node = hs__mb_node(mb, "Transpose", "tr", L("x"), L("y"));
    hs__mb_attr_ints(mb, node, "perm", SHAPE(0, 2, 2), 3);
    hs__mb_output(mb, "y", HS_F32, 0, NULL);
    expect_load_error(mb, HS_ERR_INVALID, "tr", "permutation");
}

/* ---- ReduceMean ------------------------------------------------------------------------- */

/* ReduceMean of x [2,3,4,5] over `axes` (NULL: attribute absent); keepdims -1 leaves the
 * attribute out (default 1). */
static void check_reducemean(int opset, const int64_t *axes, int n_axes, int keepdims)
{
    const int64_t shape[4] = {2, 3, 4, 5};
    float *x = random_f32(120, 8);
    hs__mb *mb = hs__mb_new(opset);
    hs__mb_input(mb, "x", HS_F32, 4, shape);
    Onnx__NodeProto *node = hs__mb_node(mb, "ReduceMean", "mean", L("x"), L("y"));
    if (axes)
        hs__mb_attr_ints(mb, node, "axes", axes, n_axes);
    if (keepdims >= 0)
        hs__mb_attr_int(mb, node, "keepdims", keepdims);
    hs__mb_output(mb, "y", HS_F32, 0, NULL);
    hs_tensor y = run_y(mb, &(feed){"x", tensor(HS_F32, 4, shape, x)}, 1);

    bool reduce[4] = {!axes, !axes, !axes, !axes};
    for (int i = 0; i < n_axes; i++)
        reduce[(axes[i] + 4) % 4] = true;
    int64_t kept[4], so[4];
    int ndim = 0;
    for (int d = 0; d < 4; d++) {
        kept[d] = reduce[d] ? 1 : shape[d];
        if (!reduce[d] || keepdims != 0)
            so[ndim++] = kept[d];
    }
    double sum[120] = {0};
    int64_t n_out = hs__prod(kept, 0, 4), count = 120 / n_out;
    for (int64_t i = 0; i < 120; i++) {
        int64_t idx[4];
        unravel(i, 4, shape, idx);
        for (int d = 0; d < 4; d++)
            idx[d] = reduce[d] ? 0 : idx[d];
        sum[ravel(idx, 4, kept)] += x[i];
    }
    float want[120];
    for (int64_t i = 0; i < n_out; i++)
        want[i] = (float)(sum[i] / (double)count);
    expect_shape(&y, ndim, so);
    expect_close(&y, want, n_out);
    free(y.data);
    free(x);
}

Test(reducemean, axes_and_keepdims)
{
    check_reducemean(13, SHAPE(2, 3), 2, -1); /* the CNN case, keepdims by default */
    check_reducemean(13, SHAPE(-1, -2), 2, 0);
    check_reducemean(11, SHAPE(1), 1, 0);
    check_reducemean(13, SHAPE(0, 2), 2, 1); /* scattered */
    check_reducemean(13, SHAPE(3, 0, 1), 3, 0);
    check_reducemean(13, NULL, 0, 0); /* all axes */
    check_reducemean(13, NULL, 0, 1);
    check_reducemean(17, SHAPE(-3), 1, 1);
}

/* ---- Pad -------------------------------------------------------------------------------- */

/* Pads x [2,3,4] with pads (begins, ends) in `mode` (NULL: attribute absent) through the
 * opset's form and compares with a naive reference (reflection here assumes pads < dim). */
static void check_pad(int opset, const char *mode, const int64_t *pads, float value,
                      bool value_given)
{
    const int64_t shape[3] = {2, 3, 4};
    float *x = random_f32(24, 10);
    hs__mb *mb = hs__mb_new(opset);
    hs__mb_input(mb, "x", HS_F32, 3, shape);
    Onnx__NodeProto *node;
    if (opset >= 11) {
        hs__mb_initializer(mb, "pads", HS_I64, 1, SHAPE(6), pads);
        hs__mb_initializer(mb, "value", HS_F32, 0, NULL, &value);
        node = hs__mb_node(mb, "Pad", "pad",
                           value_given ? L("x", "pads", "value") : L("x", "pads"), L("y"));
    } else {
        node = hs__mb_node(mb, "Pad", "pad", L("x"), L("y"));
        hs__mb_attr_ints(mb, node, "pads", pads, 6);
        if (value_given)
            hs__mb_attr_float(mb, node, "value", value);
    }
    if (mode)
        hs__mb_attr_string(mb, node, "mode", mode);
    hs__mb_output(mb, "y", HS_F32, 0, NULL);
    hs_tensor y = run_y(mb, &(feed){"x", tensor(HS_F32, 3, shape, x)}, 1);

    int64_t so[3];
    for (int d = 0; d < 3; d++)
        so[d] = shape[d] + pads[d] + pads[3 + d];
    int64_t n = hs__prod(so, 0, 3);
    float *want = malloc((size_t)(n ? n : 1) * sizeof *want);
    for (int64_t i = 0; i < n; i++) {
        int64_t idx[3];
        bool outside = false;
        unravel(i, 3, so, idx);
        for (int d = 0; d < 3; d++) {
            int64_t k = idx[d] - pads[d], last = shape[d] - 1;
            if (mode && strcmp(mode, "edge") == 0)
                k = k < 0 ? 0 : k > last ? last : k;
            else if (mode && strcmp(mode, "reflect") == 0)
                k = k < 0 ? -k : k > last ? 2 * last - k : k;
            outside |= k < 0 || k > last;
            idx[d] = k;
        }
        want[i] = outside ? (value_given ? value : 0.0f) : x[ravel(idx, 3, shape)];
    }
    expect_shape(&y, 3, so);
    expect_exact(&y, HS_F32, want, n);
    free(want);
    free(y.data);
    free(x);
}

Test(pad, constant_both_forms)
{
    check_pad(13, NULL, SHAPE(0, 1, 2, 1, 0, 3), 0.0f, false);
    check_pad(13, "constant", SHAPE(1, 0, 0, 0, 2, 1), -1.5f, true);
    check_pad(11, "constant", SHAPE(0, 0, 0, 0, 0, 0), 7.0f, true);
    check_pad(6, NULL, SHAPE(0, 1, 2, 1, 0, 3), 2.5f, true);
    check_pad(9, "constant", SHAPE(0, 0, 1, 0, 0, 1), 0.0f, false);
}

Test(pad, negative_pads_crop)
{
    check_pad(13, NULL, SHAPE(0, -1, 2, -1, 1, -3), 3.0f, true);
    check_pad(6, "constant", SHAPE(0, -1, -1, 0, 0, -1), 1.0f, true);
}

Test(pad, reflect_and_edge)
{
    check_pad(13, "reflect", SHAPE(1, 2, 3, 1, 2, 3), 0.0f, false);
    check_pad(13, "edge", SHAPE(1, 2, 5, 1, 0, 3), 0.0f, false);
    check_pad(9, "reflect", SHAPE(0, 1, 2, 0, 1, 1), 0.0f, false);
    check_pad(9, "edge", SHAPE(1, 0, 2, 1, 3, 0), 0.0f, false);
}

Test(pad, int64_and_unsupported_mode)
{
    int64_t *x = iota_i64(3, 1), v = -9, want[6] = {-9, 1, 2, 3, -9, -9};
    hs__mb *mb = hs__mb_new(13);
    hs__mb_input(mb, "x", HS_I64, 1, SHAPE(3));
    hs__mb_initializer(mb, "pads", HS_I64, 1, SHAPE(2), SHAPE(1, 2));
    hs__mb_initializer(mb, "v", HS_I64, 0, NULL, &v);
    hs__mb_node(mb, "Pad", "pad", L("x", "pads", "v"), L("y"));
    hs__mb_output(mb, "y", HS_I64, 0, NULL);
    hs_tensor y = run_y(mb, &(feed){"x", tensor(HS_I64, 1, SHAPE(3), x)}, 1);
    expect_exact(&y, HS_I64, want, 6);
    free(y.data);
    free(x);

    mb = hs__mb_new(13);
    hs__mb_input(mb, "x", HS_F32, 1, SHAPE(3));
    hs__mb_initializer(mb, "pads", HS_I64, 1, SHAPE(2), SHAPE(1, 2));
    Onnx__NodeProto *node = hs__mb_node(mb, "Pad", "pad", L("x", "pads"), L("y"));
    hs__mb_attr_string(mb, node, "mode", "wrap");
    hs__mb_output(mb, "y", HS_F32, 0, NULL);
    expect_load_error(mb, HS_ERR_UNSUPPORTED, "pad", "wrap");
}

/* ---- Shape, Gather, Cast ---------------------------------------------------------------- */

/* Shape(x) (folded at load time although x is a runtime input) -> Cast to float -> Mul by a
 * runtime vector of ones: the output holds x's dimensions [start, end). */
static void check_shape(int opset, bool with_range, int64_t start, int64_t end, int n_want,
                        const float *want)
{
    const int64_t shape[4] = {2, 3, 5, 7}, ones_shape[1] = {n_want};
    float *x = random_f32(210, 11), ones[4] = {1, 1, 1, 1};
    hs__mb *mb = hs__mb_new(opset);
    hs__mb_input(mb, "x", HS_F32, 4, shape);
    hs__mb_input(mb, "ones", HS_F32, 1, ones_shape);
    Onnx__NodeProto *node = hs__mb_node(mb, "Shape", "shape", L("x"), L("s"));
    if (with_range) {
        hs__mb_attr_int(mb, node, "start", start);
        hs__mb_attr_int(mb, node, "end", end);
    }
    node = hs__mb_node(mb, "Cast", "cast", L("s"), L("f"));
    hs__mb_attr_int(mb, node, "to", ONNX__TENSOR_PROTO__DATA_TYPE__FLOAT);
    hs__mb_node(mb, "Mul", "mul", L("f", "ones"), L("y"));
    hs__mb_output(mb, "y", HS_F32, 0, NULL);
    hs_error err = {0};
    hs_graph *g = load(mb, HS_OK, &err);
    cr_expect_eq(hs_graph_node_count(g), 1, "Shape and Cast fold away");
    hs_tensor y;
    feed feeds[] = {{"x", tensor(HS_F32, 4, shape, x)},
                    {"ones", tensor(HS_F32, 1, ones_shape, ones)}};
    run_graph(g, feeds, 2, L("y"), &y);
    expect_shape(&y, 1, ones_shape);
    expect_exact(&y, HS_F32, want, n_want);
    free(y.data);
    hs_graph_free(g);
    hs__mb_free(mb);
    free(x);
}

Test(shape, folds_from_a_runtime_input)
{
    check_shape(13, false, 0, 0, 4, (const float[]){2, 3, 5, 7});
    check_shape(15, false, 0, 0, 4, (const float[]){2, 3, 5, 7});
    check_shape(15, true, 1, 3, 2, (const float[]){3, 5});
    check_shape(15, true, -2, 100, 2, (const float[]){5, 7});
    check_shape(15, true, -100, -3, 1, (const float[]){2});
}

/* PyTorch's flatten: Reshape(x, Concat(Unsqueeze(Gather(Shape(x), 0)), [-1])). */
Test(shape, pytorch_flatten_chain_folds)
{
    const int64_t shape[4] = {2, 3, 4, 5};
    float *x = random_f32(120, 12);
    int64_t zero = 0;
    hs__mb *mb = hs__mb_new(11);
    hs__mb_input(mb, "x", HS_F32, 4, shape);
    hs__mb_initializer(mb, "zero", HS_I64, 0, NULL, &zero);
    hs__mb_initializer(mb, "minus_one", HS_I64, 1, SHAPE(1), SHAPE(-1));
    hs__mb_node(mb, "Shape", "shape", L("x"), L("s"));
    hs__mb_node(mb, "Gather", "gather", L("s", "zero"), L("n"));
    Onnx__NodeProto *node = hs__mb_node(mb, "Unsqueeze", "unsq", L("n"), L("n1"));
    hs__mb_attr_ints(mb, node, "axes", SHAPE(0), 1);
    node = hs__mb_node(mb, "Concat", "cat", L("n1", "minus_one"), L("target"));
    hs__mb_attr_int(mb, node, "axis", 0);
    hs__mb_node(mb, "Reshape", "reshape", L("x", "target"), L("y"));
    hs__mb_output(mb, "y", HS_F32, 0, NULL);
    hs_error err = {0};
    hs_graph *g = load(mb, HS_OK, &err);
    cr_expect_eq(hs_graph_node_count(g), 1);
    hs_tensor y;
    run_graph(g, &(feed){"x", tensor(HS_F32, 4, shape, x)}, 1, L("y"), &y);
    expect_shape(&y, 2, SHAPE(2, 60));
    expect_exact(&y, HS_F32, x, 120);
    free(y.data);
    hs_graph_free(g);
    hs__mb_free(mb);
    free(x);
}

/* Gathers from x [3,4,5] (a runtime input) along `axis` with `indices` of shape ishape
 * (rank q), given as a constant or at run time. */
static void check_gather(int64_t axis, int q, const int64_t *ishape, const int64_t *indices,
                         bool runtime_indices, hs_dtype dtype)
{
    const int64_t shape[3] = {3, 4, 5};
    void *x = dtype == HS_F32 ? (void *)random_f32(60, 13) : (void *)iota_i64(60, 100);
    hs__mb *mb = hs__mb_new(13);
    hs__mb_input(mb, "x", dtype, 3, shape);
    if (runtime_indices)
        hs__mb_input(mb, "i", HS_I64, q, ishape);
    else
        hs__mb_initializer(mb, "i", HS_I64, q, ishape, indices);
    Onnx__NodeProto *node = hs__mb_node(mb, "Gather", "gather", L("x", "i"), L("y"));
    hs__mb_attr_int(mb, node, "axis", axis);
    hs__mb_output(mb, "y", dtype, 0, NULL);
    feed feeds[] = {{"x", tensor(dtype, 3, shape, x)},
                    {"i", tensor(HS_I64, q, ishape, (void *)indices)}};
    hs_tensor y = run_y(mb, feeds, 2);

    int a = (int)(axis < 0 ? axis + 3 : axis), ndim = 0;
    int64_t so[HS_MAX_DIMS];
    for (int d = 0; d < a; d++)
        so[ndim++] = shape[d];
    for (int d = 0; d < q; d++)
        so[ndim++] = ishape[d];
    for (int d = a + 1; d < 3; d++)
        so[ndim++] = shape[d];
    int64_t n = hs__prod(so, 0, ndim);
    size_t es = hs_dtype_size(dtype);
    char *want = malloc((size_t)n * es);
    for (int64_t i = 0; i < n; i++) {
        int64_t oi[HS_MAX_DIMS], xi[3];
        unravel(i, ndim, so, oi);
        for (int d = 0; d < a; d++)
            xi[d] = oi[d];
        int64_t k = indices[ravel(oi + a, q, ishape)];
        xi[a] = k < 0 ? k + shape[a] : k;
        for (int d = a + 1; d < 3; d++)
            xi[d] = oi[d - 1 + q];
        memcpy(want + (size_t)i * es, (char *)x + (size_t)ravel(xi, 3, shape) * es, es);
    }
    expect_shape(&y, ndim, so);
    expect_exact(&y, dtype, want, n);
    free(want);
    free(y.data);
    free(x);
}

Test(gather, axes_ranks_and_negative_indices)
{
    const int64_t idx4[4] = {0, -1, 2, 1}, scalar[1] = {-2};
    check_gather(0, 1, SHAPE(4), SHAPE(2, 0, -1, 2), false, HS_F32);
    check_gather(1, 2, SHAPE(2, 2), idx4, false, HS_F32);
    check_gather(-1, 2, SHAPE(2, 2), idx4, true, HS_F32);
    check_gather(2, 0, SHAPE(0), scalar, false, HS_F32);
    check_gather(-2, 0, SHAPE(0), scalar, true, HS_I64); /* rank 0 */
    check_gather(1, 1, SHAPE(4), idx4, true, HS_I64);
}

Test(gather, constant_index_out_of_range_fails)
{
    hs__mb *mb = hs__mb_new(13);
    hs__mb_input(mb, "x", HS_F32, 2, SHAPE(3, 4));
    hs__mb_initializer(mb, "i", HS_I64, 1, SHAPE(1), SHAPE(4));
    Onnx__NodeProto *node = hs__mb_node(mb, "Gather", "gather", L("x", "i"), L("y"));
    hs__mb_attr_int(mb, node, "axis", 1);
    hs__mb_output(mb, "y", HS_F32, 0, NULL);
    expect_load_error(mb, HS_ERR_INVALID, "gather", "out of range");
}

static hs_tensor run_cast(hs_dtype from, int64_t to, void *data, int64_t n)
{
    const int64_t shape[1] = {n};
    hs__mb *mb = hs__mb_new(13);
    hs__mb_input(mb, "x", from, 1, shape);
    Onnx__NodeProto *node = hs__mb_node(mb, "Cast", "cast", L("x"), L("y"));
    hs__mb_attr_int(mb, node, "to", to);
    hs__mb_output(mb, "y", HS_F32, 0, NULL);
    return run_y(mb, &(feed){"x", tensor(from, 1, shape, data)}, 1);
}

Test(cast, float_and_int64)
{
    float f[7] = {-2.7f, -0.5f, 0.0f, 0.9f, 3.5f, 1e10f, NAN};
    int64_t want_i[7] = {-2, 0, 0, 0, 3, 10000000000, 0};
    hs_tensor y = run_cast(HS_F32, ONNX__TENSOR_PROTO__DATA_TYPE__INT64, f, 7);
    expect_exact(&y, HS_I64, want_i, 7);
    free(y.data);

    int64_t i[4] = {-3, 0, 7, 1 << 24};
    float want_f[4] = {-3.0f, 0.0f, 7.0f, 16777216.0f};
    y = run_cast(HS_I64, ONNX__TENSOR_PROTO__DATA_TYPE__FLOAT, i, 4);
    expect_exact(&y, HS_F32, want_f, 4);
    free(y.data);

    y = run_cast(HS_F32, ONNX__TENSOR_PROTO__DATA_TYPE__FLOAT, f, 6);
    expect_exact(&y, HS_F32, f, 6);
    free(y.data);
}

Test(cast, other_targets_unsupported)
{
    hs__mb *mb = hs__mb_new(13);
    hs__mb_input(mb, "x", HS_F32, 1, SHAPE(3));
    Onnx__NodeProto *node = hs__mb_node(mb, "Cast", "cast", L("x"), L("y"));
    hs__mb_attr_int(mb, node, "to", ONNX__TENSOR_PROTO__DATA_TYPE__DOUBLE);
    hs__mb_output(mb, "y", HS_F32, 0, NULL);
    expect_load_error(mb, HS_ERR_UNSUPPORTED, "cast", "type 11");
}
