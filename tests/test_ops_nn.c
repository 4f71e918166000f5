/*
 * The neural-network operators (Conv, Gemm, MatMul, BatchNormalization, the pools, LRN)
 * against naive references written out plainly here, on odd shapes: non-square inputs and
 * kernels, asymmetric pads larger than the stride, dilations, groups, batches, ceil_mode,
 * every auto_pad. Each case is a one-node ONNX model built in memory, loaded and run through
 * the public API twice (the two results must agree bit for bit). Bad attributes must fail
 * with the right status and a message naming the node.
 */
#include <criterion/criterion.h>
#include <float.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "onnx_build.h"

/* ---- data and comparison ------------------------------------------------------------------ */

static uint64_t rng = 88172645463325252ull;

static float frand(void)
{
    rng ^= rng << 13;
    rng ^= rng >> 7;
    rng ^= rng << 17;
    return (float)((double)(rng >> 40) / (double)(1 << 24) * 2.0 - 1.0);
}

/* n random values in [-1, 1) (or [lo, lo + 1) for positive data); caller frees. */
static float *rand_buf(int64_t n)
{
    float *p = malloc((size_t)(n ? n : 1) * sizeof *p);
    cr_assert(p);
    for (int64_t i = 0; i < n; i++)
        p[i] = frand();
    return p;
}

static void expect_close(const float *got, const float *want, int64_t n, const char *what)
{
    for (int64_t i = 0; i < n; i++) {
        float tol = 1e-5f + 1e-4f * fabsf(want[i]);
        if (!(fabsf(got[i] - want[i]) <= tol))
            cr_assert_fail("%s: element %lld is %.8g, expected %.8g", what, (long long)i,
                           (double)got[i], (double)want[i]);
    }
}

static void expect_shape(const hs_tensor *t, int ndim, const int64_t *shape, const char *what)
{
    cr_assert_eq(t->ndim, ndim, "%s: rank %d, expected %d", what, t->ndim, ndim);
    for (int d = 0; d < ndim; d++)
        cr_assert_eq(t->shape[d], shape[d], "%s: dim %d is %lld, expected %lld", what, d,
                     (long long)t->shape[d], (long long)shape[d]);
}

/* ---- one-node models ---------------------------------------------------------------------- */

#define MAX_RT 4

typedef struct tcase {
    hs__mb *mb;
    const char *names[MAX_RT]; /* runtime inputs, in the order they were added */
    hs_tensor rt[MAX_RT];
    int n_rt;
} tcase;

static tcase tc_new(int opset) { return (tcase){.mb = hs__mb_new(opset)}; }

/* A runtime graph input fed with `data` (not copied; must outlive tc_run). */
static void tc_input(tcase *c, const char *name, int ndim, const int64_t *shape, float *data)
{
    cr_assert(c->n_rt < MAX_RT);
    hs__mb_input(c->mb, name, HS_F32, ndim, shape);
    hs_tensor *t = &c->rt[c->n_rt];
    *t = (hs_tensor){.dtype = HS_F32, .ndim = ndim, .data = data};
    memcpy(t->shape, shape, (size_t)ndim * sizeof *shape);
    c->names[c->n_rt++] = name;
}

static void tc_const(tcase *c, const char *name, int ndim, const int64_t *shape,
                     const float *data)
{
    hs__mb_initializer(c->mb, name, HS_F32, ndim, shape, data);
}

/* The node under test; it writes graph output "Y". */
static Onnx__NodeProto *tc_node(tcase *c, const char *op, const char *name,
                                const char *const *inputs)
{
    hs__mb_output(c->mb, "Y", HS_F32, 0, NULL);
    return hs__mb_node(c->mb, op, name, inputs, (const char *[]){"Y", NULL});
}

/* Loads the model (freeing the builder) and runs it twice. Returns the load status; on success
 * *y holds the output with a malloc'd copy of its data (caller frees). */
static hs_status tc_run(tcase *c, hs_tensor *y, hs_error *err)
{
    uint8_t *buf;
    size_t size = hs__mb_pack(c->mb, &buf);
    hs__mb_free(c->mb);
    hs_load_options opts = {.keep_batchnorm = true};
    hs_graph *g = NULL;
    hs_status st = hs_graph_load_onnx_buffer(buf, size, "test.onnx", &opts, &g, err);
    free(buf);
    if (st != HS_OK)
        return st;

    hs_exec *x = NULL;
    cr_assert_eq(hs_exec_new(g, 0, hs_graph_node_count(g), &x, err), HS_OK, "%s", err->msg);
    cr_assert_eq(hs_exec_input_count(x), c->n_rt);
    cr_assert_eq(hs_exec_output_count(x), 1);
    hs_tensor in[MAX_RT];
    for (int i = 0; i < c->n_rt; i++) {
        hs_tensor desc;
        const char *name = hs_exec_input(x, i, &desc);
        int j = 0;
        while (j < c->n_rt && strcmp(c->names[j], name) != 0)
            j++;
        cr_assert(j < c->n_rt, "unexpected runtime input '%s'", name);
        in[i] = c->rt[j];
    }
    hs_tensor out;
    cr_assert_eq(hs_exec_run(x, in, c->n_rt, &out, 1, err), HS_OK, "%s", err->msg);
    size_t bytes = hs_tensor_nbytes(&out);
    *y = out;
    y->data = malloc(bytes ? bytes : 1);
    memcpy(y->data, out.data, bytes);
    cr_assert_eq(hs_exec_run(x, in, c->n_rt, &out, 1, err), HS_OK, "%s", err->msg);
    cr_assert(memcmp(y->data, out.data, bytes) == 0, "two runs differ");
    hs_exec_free(x);
    hs_graph_free(g);
    return HS_OK;
}

/* Runs a case that must fail to load with `code` and a message naming node `name`. */
static void tc_expect_error(tcase *c, hs_status code, const char *name)
{
    hs_error err = {0};
    hs_tensor y;
    hs_status st = tc_run(c, &y, &err);
    cr_assert_eq(st, code, "status %d (%s), expected %d", st, err.msg, code);
    cr_assert_eq(err.code, code);
    char quoted[64];
    snprintf(quoted, sizeof quoted, "'%s'", name);
    cr_assert(strstr(err.msg, quoted), "message does not name the node: %s", err.msg);
}

static void attr_ints_if(tcase *c, Onnx__NodeProto *n, const char *name, const int64_t *v,
                         int count)
{
    for (int i = 0; i < count; i++)
        if (v[i]) {
            hs__mb_attr_ints(c->mb, n, name, v, count);
            return;
        }
}

/* ---- sliding-window geometry, as the ONNX spec states it ---------------------------------- */

/* Spatial geometry normalised to 3 dims (leading dims of size 1). */
typedef struct geom {
    int64_t in[3], k[3], s[3], d[3], pb[3], pe[3], out[3];
} geom;

/* Window specification common to Conv and the pools; zero arrays mean "attribute absent". */
typedef struct window {
    int nsp;
    int64_t in[3], k[3], strides[3], dils[3], pads[6];
    const char *auto_pad; /* NULL: attribute absent */
    bool ceil;
} window;

static geom make_geom(const window *w)
{
    geom g;
    int lead = 3 - w->nsp;
    for (int d = 0; d < 3; d++) {
        int i = d - lead;
        bool real = i >= 0;
        g.in[d] = real ? w->in[i] : 1;
        g.k[d] = real ? w->k[i] : 1;
        g.s[d] = real && w->strides[i] ? w->strides[i] : 1;
        g.d[d] = real && w->dils[i] ? w->dils[i] : 1;
        g.pb[d] = real ? w->pads[i] : 0;
        g.pe[d] = real ? w->pads[w->nsp + i] : 0;
        int64_t ext = (g.k[d] - 1) * g.d[d] + 1;
        const char *ap = w->auto_pad ? w->auto_pad : "NOTSET";
        if (strncmp(ap, "SAME", 4) == 0) {
            g.out[d] = (g.in[d] + g.s[d] - 1) / g.s[d];
            int64_t total = (g.out[d] - 1) * g.s[d] + ext - g.in[d];
            if (total < 0)
                total = 0;
            g.pb[d] = strcmp(ap, "SAME_UPPER") == 0 ? total / 2 : total - total / 2;
            g.pe[d] = total - g.pb[d];
            continue;
        }
        if (strcmp(ap, "VALID") == 0)
            g.pb[d] = g.pe[d] = 0;
        int64_t span = g.in[d] + g.pb[d] + g.pe[d] - ext;
        g.out[d] = (w->ceil ? (span + g.s[d] - 1) / g.s[d] : span / g.s[d]) + 1;
        if (w->ceil && (g.out[d] - 1) * g.s[d] >= g.in[d] + g.pb[d])
            g.out[d]--;
    }
    return g;
}

static void window_attrs(tcase *c, Onnx__NodeProto *n, const window *w)
{
    attr_ints_if(c, n, "strides", w->strides, w->nsp);
    attr_ints_if(c, n, "dilations", w->dils, w->nsp);
    attr_ints_if(c, n, "pads", w->pads, 2 * w->nsp);
    if (w->auto_pad)
        hs__mb_attr_string(c->mb, n, "auto_pad", w->auto_pad);
    if (w->ceil)
        hs__mb_attr_int(c->mb, n, "ceil_mode", 1);
}

/* ---- Conv --------------------------------------------------------------------------------- */

typedef struct conv_spec {
    window w;
    int64_t n, c, m, group; /* group 0: attribute absent */
    bool bias, kernel_attr;
} conv_spec;

static void conv_ref(const conv_spec *cs, const geom *g, const float *x, const float *w,
                     const float *b, float *y)
{
    int64_t group = cs->group ? cs->group : 1, cg = cs->c / group, mg = cs->m / group;
    for (int64_t n = 0; n < cs->n; n++)
        for (int64_t m = 0; m < cs->m; m++)
            for (int64_t od = 0; od < g->out[0]; od++)
                for (int64_t oh = 0; oh < g->out[1]; oh++)
                    for (int64_t ow = 0; ow < g->out[2]; ow++) {
                        double sum = b ? b[m] : 0.0;
                        for (int64_t ci = 0; ci < cg; ci++)
                            for (int64_t kd = 0; kd < g->k[0]; kd++)
                                for (int64_t kh = 0; kh < g->k[1]; kh++)
                                    for (int64_t kw = 0; kw < g->k[2]; kw++) {
                                        int64_t id = od * g->s[0] - g->pb[0] + kd * g->d[0];
                                        int64_t ih = oh * g->s[1] - g->pb[1] + kh * g->d[1];
                                        int64_t iw = ow * g->s[2] - g->pb[2] + kw * g->d[2];
                                        if (id < 0 || id >= g->in[0] || ih < 0 ||
                                            ih >= g->in[1] || iw < 0 || iw >= g->in[2])
                                            continue;
                                        int64_t c = (m / mg) * cg + ci;
                                        sum += (double)x[(((n * cs->c + c) * g->in[0] + id) *
                                                              g->in[1] + ih) * g->in[2] + iw] *
                                               w[(((m * cg + ci) * g->k[0] + kd) * g->k[1] +
                                                  kh) * g->k[2] + kw];
                                    }
                        y[(((n * cs->m + m) * g->out[0] + od) * g->out[1] + oh) * g->out[2] +
                          ow] = (float)sum;
                    }
}

static void check_conv(conv_spec cs)
{
    const window *w = &cs.w;
    int64_t group = cs.group ? cs.group : 1;
    int rank = w->nsp + 2;
    int64_t xshape[5] = {cs.n, cs.c}, wshape[5] = {cs.m, cs.c / group}, bshape[1] = {cs.m};
    memcpy(xshape + 2, w->in, (size_t)w->nsp * sizeof(int64_t));
    memcpy(wshape + 2, w->k, (size_t)w->nsp * sizeof(int64_t));
    geom g = make_geom(w);
    int64_t nx = hs__prod(xshape, 0, rank), nw = hs__prod(wshape, 0, rank);
    float *x = rand_buf(nx), *wt = rand_buf(nw), *b = rand_buf(cs.m);

    tcase c = tc_new(13);
    tc_input(&c, "X", rank, xshape, x);
    tc_const(&c, "W", rank, wshape, wt);
    if (cs.bias)
        tc_const(&c, "B", 1, bshape, b);
    Onnx__NodeProto *n =
        tc_node(&c, "Conv", "conv", (const char *[]){"X", "W", cs.bias ? "B" : NULL, NULL});
    window_attrs(&c, n, w);
    if (cs.group)
        hs__mb_attr_int(c.mb, n, "group", cs.group);
    if (cs.kernel_attr)
        hs__mb_attr_ints(c.mb, n, "kernel_shape", w->k, w->nsp);

    hs_error err = {0};
    hs_tensor y;
    cr_assert_eq(tc_run(&c, &y, &err), HS_OK, "%s", err.msg);
    int64_t yshape[5] = {cs.n, cs.m};
    memcpy(yshape + 2, g.out + 3 - w->nsp, (size_t)w->nsp * sizeof(int64_t));
    expect_shape(&y, rank, yshape, "Conv");
    int64_t ny = hs__prod(yshape, 0, rank);
    float *want = malloc((size_t)ny * sizeof *want);
    conv_ref(&cs, &g, x, wt, cs.bias ? b : NULL, want);
    expect_close(y.data, want, ny, "Conv");
    free(want);
    free(y.data);
    free(x);
    free(wt);
    free(b);
}

Test(conv, asymmetric_pads_strides_dilations_bias)
{
    check_conv((conv_spec){.w = {.nsp = 2, .in = {7, 9}, .k = {3, 2}, .strides = {2, 1},
                                 .pads = {1, 0, 2, 1}, .dils = {1, 2}},
                           .n = 2, .c = 3, .m = 4, .bias = true});
}

Test(conv, padding_larger_than_stride_and_kernel_shape_attribute)
{
    check_conv((conv_spec){.w = {.nsp = 2, .in = {6, 11}, .k = {5, 3}, .strides = {2, 3},
                                 .pads = {3, 2, 4, 2}},
                           .n = 1, .c = 2, .m = 3, .bias = true, .kernel_attr = true});
}

Test(conv, grouped)
{
    check_conv((conv_spec){.w = {.nsp = 2, .in = {8, 5}, .k = {3, 3}, .pads = {1, 1, 1, 1}},
                           .n = 2, .c = 6, .m = 4, .group = 2});
    check_conv((conv_spec){.w = {.nsp = 2, .in = {9, 7}, .k = {2, 3}, .strides = {2, 2},
                                 .dils = {2, 1}, .pads = {0, 1, 1, 0}},
                           .n = 1, .c = 6, .m = 9, .group = 3, .bias = true});
}

Test(conv, depthwise)
{
    check_conv((conv_spec){.w = {.nsp = 2, .in = {9, 12}, .k = {3, 3}, .strides = {2, 2},
                                 .pads = {1, 1, 1, 1}},
                           .n = 2, .c = 5, .m = 5, .group = 5, .bias = true});
    check_conv((conv_spec){.w = {.nsp = 2, .in = {10, 7}, .k = {5, 5}, .pads = {2, 2, 2, 2}},
                           .n = 1, .c = 4, .m = 4, .group = 4});
    check_conv((conv_spec){.w = {.nsp = 2, .in = {11, 9}, .k = {3, 2}, .strides = {1, 3},
                                 .dils = {2, 2}, .pads = {3, 0, 1, 2}},
                           .n = 2, .c = 3, .m = 3, .group = 3, .bias = true});
}

Test(conv, depthwise_channel_multiplier)
{
    check_conv((conv_spec){.w = {.nsp = 2, .in = {7, 8}, .k = {3, 3}, .strides = {2, 1},
                                 .pads = {1, 1, 1, 1}},
                           .n = 2, .c = 3, .m = 6, .group = 3, .bias = true});
}

/* Depthwise shapes on the phase-plane path: stride 3 (gathered generically), wide rows that
 * take several accumulator blocks, and a 3-D depthwise conv (which goes through im2col). */
Test(conv, depthwise_strides_blocks_and_3d)
{
    check_conv((conv_spec){.w = {.nsp = 2, .in = {13, 17}, .k = {3, 5}, .strides = {3, 3},
                                 .pads = {2, 1, 0, 3}},
                           .n = 1, .c = 3, .m = 3, .group = 3, .bias = true});
    check_conv((conv_spec){.w = {.nsp = 2, .in = {70, 300}, .k = {3, 3}, .strides = {1, 2},
                                 .pads = {1, 1, 1, 1}},
                           .n = 1, .c = 2, .m = 4, .group = 2, .bias = true});
    check_conv((conv_spec){.w = {.nsp = 3, .in = {4, 5, 6}, .k = {3, 3, 2},
                                 .strides = {1, 2, 1}, .pads = {1, 1, 0, 1, 1, 1}},
                           .n = 2, .c = 3, .m = 3, .group = 3, .bias = true});
}

Test(conv, pointwise)
{
    check_conv((conv_spec){.w = {.nsp = 2, .in = {5, 7}, .k = {1, 1}},
                           .n = 2, .c = 8, .m = 5, .bias = true});
    check_conv((conv_spec){.w = {.nsp = 2, .in = {4, 3}, .k = {1, 1}},
                           .n = 1, .c = 6, .m = 4, .group = 2});
    check_conv((conv_spec){.w = {.nsp = 2, .in = {7, 6}, .k = {1, 1}, .strides = {2, 2}},
                           .n = 1, .c = 3, .m = 2, .bias = true});
    check_conv((conv_spec){.w = {.nsp = 2, .in = {3, 3}, .k = {1, 1}, .pads = {1, 0, 0, 1}},
                           .n = 1, .c = 2, .m = 2});
}

Test(conv, one_and_three_dimensional)
{
    check_conv((conv_spec){.w = {.nsp = 1, .in = {11}, .k = {4}, .strides = {2}, .dils = {2},
                                 .pads = {2, 1}},
                           .n = 2, .c = 3, .m = 5, .bias = true});
    check_conv((conv_spec){.w = {.nsp = 1, .in = {9}, .k = {3}, .pads = {1, 1}},
                           .n = 1, .c = 4, .m = 4, .group = 4});
    check_conv((conv_spec){.w = {.nsp = 3, .in = {4, 5, 6}, .k = {2, 3, 2},
                                 .strides = {1, 2, 2}, .pads = {1, 1, 0, 0, 1, 1}},
                           .n = 2, .c = 2, .m = 3, .bias = true});
}

Test(conv, auto_pad)
{
    static const char *const modes[] = {"SAME_UPPER", "SAME_LOWER", "VALID", "NOTSET"};
    for (int i = 0; i < 4; i++) {
        check_conv((conv_spec){.w = {.nsp = 2, .in = {8, 7}, .k = {4, 3}, .strides = {2, 3},
                                     .auto_pad = modes[i]},
                               .n = 1, .c = 2, .m = 3, .bias = true});
        check_conv((conv_spec){.w = {.nsp = 2, .in = {6, 5}, .k = {3, 2}, .dils = {2, 1},
                                     .auto_pad = modes[i]},
                               .n = 1, .c = 3, .m = 3, .group = 3});
    }
}

Test(conv, large_input_unfolds_in_slices)
{
    check_conv((conv_spec){.w = {.nsp = 2, .in = {160, 150}, .k = {3, 3},
                                 .pads = {1, 1, 1, 1}},
                           .n = 1, .c = 32, .m = 3, .bias = true});
}

Test(conv, reports_params_and_flops)
{
    int64_t xs[4] = {1, 4, 6, 6}, ws[4] = {6, 2, 3, 3}, bs[1] = {6};
    float *wt = rand_buf(6 * 2 * 9), *b = rand_buf(6);
    hs__mb *mb = hs__mb_new(13);
    hs__mb_input(mb, "X", HS_F32, 4, xs);
    hs__mb_initializer(mb, "W", HS_F32, 4, ws, wt);
    hs__mb_initializer(mb, "B", HS_F32, 1, bs, b);
    Onnx__NodeProto *n = hs__mb_node(mb, "Conv", "conv", (const char *[]){"X", "W", "B", NULL},
                                     (const char *[]){"Y", NULL});
    hs__mb_attr_int(mb, n, "group", 2);
    hs__mb_output(mb, "Y", HS_F32, 0, NULL);
    uint8_t *buf;
    size_t size = hs__mb_pack(mb, &buf);
    hs__mb_free(mb);
    hs_graph *g = NULL;
    hs_error err = {0};
    cr_assert_eq(hs_graph_load_onnx_buffer(buf, size, "test.onnx", NULL, &g, &err), HS_OK,
                 "%s", err.msg);
    hs_node_info ni;
    hs_graph_node_info(g, 0, &ni);
    cr_expect_eq(ni.params, 6 * 2 * 9 + 6);
    cr_expect_eq(ni.flops, 2.0 * 6 * 16 * 2 * 9 + 6 * 16);
    hs_graph_free(g);
    free(buf);
    free(wt);
    free(b);
}

/* A Conv node with X [1, c, 5, 6] and W [m, wc, 3, 3]; attributes added by the caller. */
static Onnx__NodeProto *bad_conv(tcase *c, int64_t ch, int64_t m, int64_t wc, bool w_const)
{
    int64_t xs[4] = {1, ch, 5, 6}, ws[4] = {m, wc, 3, 3};
    static float zeros[256];
    tc_input(c, "X", 4, xs, NULL);
    if (w_const)
        tc_const(c, "W", 4, ws, zeros);
    else
        tc_input(c, "W", 4, ws, NULL);
    return tc_node(c, "Conv", "bad_conv", (const char *[]){"X", "W", NULL});
}

Test(conv, rejects_bad_models)
{
    tcase c = tc_new(13);
    hs__mb_attr_int(c.mb, bad_conv(&c, 6, 4, 2, true), "group", 4);
    tc_expect_error(&c, HS_ERR_SHAPE, "bad_conv"); /* 4 does not divide 6 channels */

    c = tc_new(13);
    hs__mb_attr_int(c.mb, bad_conv(&c, 6, 3, 3, true), "group", 2);
    tc_expect_error(&c, HS_ERR_SHAPE, "bad_conv"); /* 2 does not divide 3 output channels */

    c = tc_new(13);
    bad_conv(&c, 6, 4, 2, true);
    tc_expect_error(&c, HS_ERR_SHAPE, "bad_conv"); /* W expects 2 channels, X has 6 */

    c = tc_new(13);
    bad_conv(&c, 2, 4, 2, false);
    tc_expect_error(&c, HS_ERR_UNSUPPORTED, "bad_conv"); /* weight not constant */

    c = tc_new(13);
    hs__mb_attr_ints(c.mb, bad_conv(&c, 2, 4, 2, true), "strides", (int64_t[]){1, 1, 1}, 3);
    tc_expect_error(&c, HS_ERR_INVALID, "bad_conv");

    c = tc_new(13);
    hs__mb_attr_ints(c.mb, bad_conv(&c, 2, 4, 2, true), "strides", (int64_t[]){0, 1}, 2);
    tc_expect_error(&c, HS_ERR_INVALID, "bad_conv");

    c = tc_new(13);
    hs__mb_attr_ints(c.mb, bad_conv(&c, 2, 4, 2, true), "dilations", (int64_t[]){1, -1}, 2);
    tc_expect_error(&c, HS_ERR_INVALID, "bad_conv");

    c = tc_new(13);
    hs__mb_attr_ints(c.mb, bad_conv(&c, 2, 4, 2, true), "kernel_shape", (int64_t[]){3, 2}, 2);
    tc_expect_error(&c, HS_ERR_SHAPE, "bad_conv");

    c = tc_new(13);
    hs__mb_attr_string(c.mb, bad_conv(&c, 2, 4, 2, true), "auto_pad", "SAME");
    tc_expect_error(&c, HS_ERR_INVALID, "bad_conv");

    c = tc_new(13);
    hs__mb_attr_ints(c.mb, bad_conv(&c, 2, 4, 2, true), "dilations", (int64_t[]){3, 1}, 2);
    tc_expect_error(&c, HS_ERR_SHAPE, "bad_conv"); /* dilated kernel taller than the input */

    c = tc_new(13);
    int64_t xs[6] = {1, 1, 2, 2, 2, 2}, ws[6] = {1, 1, 1, 1, 1, 1};
    tc_input(&c, "X", 6, xs, NULL);
    tc_const(&c, "W", 6, ws, (float[]){1});
    tc_node(&c, "Conv", "conv4d", (const char *[]){"X", "W", NULL});
    tc_expect_error(&c, HS_ERR_UNSUPPORTED, "conv4d");
}

/* ---- Gemm and MatMul ---------------------------------------------------------------------- */

static void check_gemm(bool ta, bool tb, float alpha, float beta, int c_ndim,
                       const int64_t *c_shape, bool b_const)
{
    const int64_t M = 5, K = 7, N = 3;
    int64_t as[2] = {ta ? K : M, ta ? M : K}, bs[2] = {tb ? N : K, tb ? K : N};
    float *a = rand_buf(M * K), *b = rand_buf(K * N);
    int64_t nc = c_ndim >= 0 ? hs__prod(c_shape, 0, c_ndim) : 0;
    float *cv = rand_buf(nc);

    tcase c = tc_new(13);
    tc_input(&c, "A", 2, as, a);
    if (b_const)
        tc_const(&c, "B", 2, bs, b);
    else
        tc_input(&c, "B", 2, bs, b);
    if (c_ndim >= 0)
        tc_const(&c, "C", c_ndim, c_shape, cv);
    Onnx__NodeProto *n =
        tc_node(&c, "Gemm", "gemm", (const char *[]){"A", "B", c_ndim >= 0 ? "C" : NULL, NULL});
    if (ta)
        hs__mb_attr_int(c.mb, n, "transA", 1);
    if (tb)
        hs__mb_attr_int(c.mb, n, "transB", 1);
    if (alpha != 1.0f)
        hs__mb_attr_float(c.mb, n, "alpha", alpha);
    if (beta != 1.0f)
        hs__mb_attr_float(c.mb, n, "beta", beta);

    hs_error err = {0};
    hs_tensor y;
    cr_assert_eq(tc_run(&c, &y, &err), HS_OK, "%s", err.msg);
    expect_shape(&y, 2, (int64_t[]){M, N}, "Gemm");
    float want[5 * 3];
    int64_t c_rows = c_ndim == 2 ? c_shape[0] : 1, c_cols = c_ndim >= 1 ? c_shape[c_ndim - 1] : 1;
    for (int64_t i = 0; i < M; i++)
        for (int64_t j = 0; j < N; j++) {
            double sum = 0;
            for (int64_t k = 0; k < K; k++)
                sum += (double)(ta ? a[k * M + i] : a[i * K + k]) *
                       (tb ? b[j * K + k] : b[k * N + j]);
            double cij = c_ndim >= 0 ? cv[(c_rows > 1 ? i : 0) * c_cols + (c_cols > 1 ? j : 0)]
                                     : 0.0;
            want[i * N + j] = (float)(alpha * sum + beta * cij);
        }
    expect_close(y.data, want, M * N, "Gemm");
    free(y.data);
    free(a);
    free(b);
    free(cv);
}

Test(gemm, every_transpose_scale_and_broadcast)
{
    static const int64_t shapes[][2] = {{5, 3}, {1, 3}, {5, 1}, {1, 1}, {3, 0}, {1, 0}};
    static const int ndims[] = {2, 2, 2, 2, 1, 1};
    static const float scales[][2] = {{1.0f, 1.0f}, {0.5f, -2.0f}, {2.0f, 0.0f}};
    for (int t = 0; t < 4; t++)
        for (int s = 0; s < 3; s++) {
            check_gemm(t & 1, t & 2, scales[s][0], scales[s][1], -1, NULL, true);
            check_gemm(t & 1, t & 2, scales[s][0], scales[s][1], 0, NULL, true);
            for (int i = 0; i < 6; i++)
                check_gemm(t & 1, t & 2, scales[s][0], scales[s][1], ndims[i], shapes[i],
                           true);
        }
    check_gemm(true, false, 1.5f, 0.5f, 2, shapes[0], false);
}

/* A single row (batch-1 classifier) takes the matrix-vector path; check it against a
 * double reference with and without transposed B and with and without C. */
static void check_gemm_row(bool tb, bool with_c, float alpha, float beta)
{
    const int64_t K = 37, N = 23;
    int64_t as[2] = {1, K}, bs[2] = {tb ? N : K, tb ? K : N}, cs[1] = {N};
    float *a = rand_buf(K), *b = rand_buf(K * N), *cv = rand_buf(N);
    tcase c = tc_new(13);
    tc_input(&c, "A", 2, as, a);
    tc_const(&c, "B", 2, bs, b);
    if (with_c)
        tc_const(&c, "C", 1, cs, cv);
    Onnx__NodeProto *n =
        tc_node(&c, "Gemm", "gemm", (const char *[]){"A", "B", with_c ? "C" : NULL, NULL});
    if (tb)
        hs__mb_attr_int(c.mb, n, "transB", 1);
    hs__mb_attr_float(c.mb, n, "alpha", alpha);
    hs__mb_attr_float(c.mb, n, "beta", beta);
    hs_error err = {0};
    hs_tensor y;
    cr_assert_eq(tc_run(&c, &y, &err), HS_OK, "%s", err.msg);
    expect_shape(&y, 2, (int64_t[]){1, N}, "Gemm");
    float want[23];
    for (int64_t j = 0; j < N; j++) {
        double sum = 0;
        for (int64_t k = 0; k < K; k++)
            sum += (double)a[k] * (tb ? b[j * K + k] : b[k * N + j]);
        want[j] = (float)(alpha * sum + (with_c ? beta * cv[j] : 0.0));
    }
    expect_close(y.data, want, N, "Gemm");
    free(y.data);
    free(a);
    free(b);
    free(cv);
}

Test(gemm, single_row)
{
    for (int t = 0; t < 4; t++) {
        check_gemm_row(t & 1, t & 2, 1.0f, 1.0f);
        check_gemm_row(t & 1, t & 2, -0.5f, 2.0f);
    }
}

Test(gemm, rejects_bad_models)
{
    tcase c = tc_new(13);
    tc_input(&c, "A", 2, (int64_t[]){5, 7}, NULL);
    tc_input(&c, "B", 2, (int64_t[]){6, 3}, NULL);
    tc_node(&c, "Gemm", "bad_gemm", (const char *[]){"A", "B", NULL});
    tc_expect_error(&c, HS_ERR_SHAPE, "bad_gemm");

    c = tc_new(13);
    tc_input(&c, "A", 2, (int64_t[]){5, 7}, NULL);
    tc_input(&c, "B", 2, (int64_t[]){7, 3}, NULL);
    tc_input(&c, "C", 1, (int64_t[]){5}, NULL);
    tc_node(&c, "Gemm", "bad_gemm", (const char *[]){"A", "B", "C", NULL});
    tc_expect_error(&c, HS_ERR_SHAPE, "bad_gemm");
}

static void check_matmul(int ra, const int64_t *as, int rb, const int64_t *bs, int ry,
                         const int64_t *ys)
{
    int64_t na = hs__prod(as, 0, ra), nb = hs__prod(bs, 0, rb), ny = hs__prod(ys, 0, ry);
    float *a = rand_buf(na), *b = rand_buf(nb);
    tcase c = tc_new(13);
    tc_input(&c, "A", ra, as, a);
    tc_input(&c, "B", rb, bs, b);
    tc_node(&c, "MatMul", "matmul", (const char *[]){"A", "B", NULL});
    hs_error err = {0};
    hs_tensor y;
    cr_assert_eq(tc_run(&c, &y, &err), HS_OK, "%s", err.msg);
    expect_shape(&y, ry, ys, "MatMul");

    /* numpy: promote 1-D operands, broadcast the batch dims, then one product per batch. */
    int64_t M = ra >= 2 ? as[ra - 2] : 1, K = as[ra - 1], N = rb >= 2 ? bs[rb - 1] : 1;
    int nba = ra > 2 ? ra - 2 : 0, nbb = rb > 2 ? rb - 2 : 0, nbt = nba > nbb ? nba : nbb;
    int64_t batches = ny / (M * N);
    float *want = malloc((size_t)ny * sizeof *want);
    for (int64_t bi = 0; bi < batches; bi++) {
        int64_t rest = bi, a_off = 0, b_off = 0, a_mul = M * K, b_mul = K * N;
        for (int d = nbt - 1; d >= 0; d--) {
            int da = d - (nbt - nba), db = d - (nbt - nbb);
            int64_t sa = da >= 0 ? as[da] : 1, sb = db >= 0 ? bs[db] : 1;
            int64_t size = sa > sb ? sa : sb, idx = rest % size;
            rest /= size;
            a_off += (sa == 1 ? 0 : idx) * a_mul;
            b_off += (sb == 1 ? 0 : idx) * b_mul;
            a_mul *= sa;
            b_mul *= sb;
        }
        for (int64_t i = 0; i < M; i++)
            for (int64_t j = 0; j < N; j++) {
                double sum = 0;
                for (int64_t k = 0; k < K; k++)
                    sum += (double)a[a_off + i * K + k] * b[b_off + k * N + j];
                want[bi * M * N + i * N + j] = (float)sum;
            }
    }
    expect_close(y.data, want, ny, "MatMul");
    free(want);
    free(y.data);
    free(a);
    free(b);
}

Test(matmul, numpy_semantics)
{
    check_matmul(2, (int64_t[]){3, 4}, 2, (int64_t[]){4, 5}, 2, (int64_t[]){3, 5});
    check_matmul(1, (int64_t[]){4}, 2, (int64_t[]){4, 5}, 1, (int64_t[]){5});
    check_matmul(2, (int64_t[]){3, 4}, 1, (int64_t[]){4}, 1, (int64_t[]){3});
    check_matmul(1, (int64_t[]){4}, 1, (int64_t[]){4}, 0, NULL);
    check_matmul(3, (int64_t[]){2, 3, 4}, 2, (int64_t[]){4, 5}, 3, (int64_t[]){2, 3, 5});
    check_matmul(4, (int64_t[]){2, 1, 3, 4}, 3, (int64_t[]){3, 4, 5}, 4,
                 (int64_t[]){2, 3, 3, 5});
    check_matmul(2, (int64_t[]){3, 4}, 3, (int64_t[]){2, 4, 5}, 3, (int64_t[]){2, 3, 5});
    check_matmul(1, (int64_t[]){4}, 3, (int64_t[]){2, 4, 5}, 2, (int64_t[]){2, 5});
    check_matmul(3, (int64_t[]){2, 3, 4}, 1, (int64_t[]){4}, 2, (int64_t[]){2, 3});
    check_matmul(3, (int64_t[]){1, 3, 4}, 3, (int64_t[]){2, 4, 5}, 3, (int64_t[]){2, 3, 5});
    check_matmul(3, (int64_t[]){3, 1, 4}, 4, (int64_t[]){2, 1, 4, 6}, 4,
                 (int64_t[]){2, 3, 1, 6});
}

Test(matmul, constant_weight_counts_as_parameters)
{
    int64_t as[2] = {2, 6}, bs[2] = {6, 4};
    float *b = rand_buf(24);
    tcase c = tc_new(13);
    tc_input(&c, "A", 2, as, NULL);
    tc_const(&c, "B", 2, bs, b);
    tc_node(&c, "MatMul", "mm", (const char *[]){"A", "B", NULL});
    uint8_t *buf;
    size_t size = hs__mb_pack(c.mb, &buf);
    hs__mb_free(c.mb);
    hs_graph *g = NULL;
    hs_error err = {0};
    cr_assert_eq(hs_graph_load_onnx_buffer(buf, size, "test.onnx", NULL, &g, &err), HS_OK,
                 "%s", err.msg);
    hs_node_info ni;
    hs_graph_node_info(g, 0, &ni);
    cr_expect_eq(ni.params, 24);
    cr_expect_eq(ni.flops, 2.0 * 2 * 6 * 4);
    hs_graph_free(g);
    free(buf);
    free(b);
}

Test(matmul, rejects_bad_models)
{
    tcase c = tc_new(13);
    tc_input(&c, "A", 3, (int64_t[]){2, 3, 4}, NULL);
    tc_input(&c, "B", 3, (int64_t[]){3, 4, 5}, NULL);
    tc_node(&c, "MatMul", "bad_mm", (const char *[]){"A", "B", NULL});
    tc_expect_error(&c, HS_ERR_SHAPE, "bad_mm");

    c = tc_new(13);
    tc_input(&c, "A", 2, (int64_t[]){3, 4}, NULL);
    tc_input(&c, "B", 1, (int64_t[]){5}, NULL);
    tc_node(&c, "MatMul", "bad_mm", (const char *[]){"A", "B", NULL});
    tc_expect_error(&c, HS_ERR_SHAPE, "bad_mm");
}

/* ---- BatchNormalization ------------------------------------------------------------------- */

static const char *const bn_inputs[] = {"X", "scale", "B", "mean", "var", NULL};

static void check_batchnorm(int opset, int rank, const int64_t *shape, float eps)
{
    int64_t ch = shape[1], nx = hs__prod(shape, 0, rank), plane = nx / (shape[0] * ch);
    float *x = rand_buf(nx), *scale = rand_buf(ch), *bias = rand_buf(ch), *mean = rand_buf(ch);
    float *var = rand_buf(ch);
    for (int64_t i = 0; i < ch; i++)
        var[i] = var[i] + 1.5f;
    tcase c = tc_new(opset);
    tc_input(&c, "X", rank, shape, x);
    tc_const(&c, "scale", 1, &ch, scale);
    tc_const(&c, "B", 1, &ch, bias);
    tc_const(&c, "mean", 1, &ch, mean);
    tc_const(&c, "var", 1, &ch, var);
    Onnx__NodeProto *n =
        tc_node(&c, "BatchNormalization", "bn", bn_inputs);
    if (eps != 1e-5f)
        hs__mb_attr_float(c.mb, n, "epsilon", eps);
    hs_error err = {0};
    hs_tensor y;
    cr_assert_eq(tc_run(&c, &y, &err), HS_OK, "%s", err.msg);
    expect_shape(&y, rank, shape, "BatchNormalization");
    float *want = malloc((size_t)nx * sizeof *want);
    for (int64_t i = 0; i < nx; i++) {
        int64_t k = (i / plane) % ch;
        want[i] = (float)((x[i] - mean[k]) / sqrt((double)var[k] + eps) * scale[k] + bias[k]);
    }
    expect_close(y.data, want, nx, "BatchNormalization");
    free(want);
    free(y.data);
    free(x);
    free(scale);
    free(bias);
    free(mean);
    free(var);
}

Test(batchnorm, inference)
{
    check_batchnorm(15, 4, (int64_t[]){2, 3, 4, 5}, 1e-3f);
    check_batchnorm(9, 3, (int64_t[]){2, 4, 7}, 1e-5f);
    check_batchnorm(13, 2, (int64_t[]){6, 3}, 1e-2f);
    check_batchnorm(13, 5, (int64_t[]){1, 2, 3, 2, 4}, 1e-5f);
}

Test(batchnorm, rejects_bad_models)
{
    int64_t ch = 3;
    float ones[3] = {1, 1, 1};
    tcase c = tc_new(13);
    tc_input(&c, "X", 4, (int64_t[]){1, 3, 2, 2}, NULL);
    tc_input(&c, "mean", 1, &ch, NULL);
    tc_const(&c, "scale", 1, &ch, ones);
    tc_const(&c, "B", 1, &ch, ones);
    tc_const(&c, "var", 1, &ch, ones);
    tc_node(&c, "BatchNormalization", "bad_bn", bn_inputs);
    tc_expect_error(&c, HS_ERR_UNSUPPORTED, "bad_bn");

    c = tc_new(13);
    tc_input(&c, "X", 4, (int64_t[]){1, 4, 2, 2}, NULL);
    tc_const(&c, "scale", 1, &ch, ones);
    tc_const(&c, "B", 1, &ch, ones);
    tc_const(&c, "mean", 1, &ch, ones);
    tc_const(&c, "var", 1, &ch, ones);
    tc_node(&c, "BatchNormalization", "bad_bn", bn_inputs);
    tc_expect_error(&c, HS_ERR_SHAPE, "bad_bn");
}

/* ---- pools -------------------------------------------------------------------------------- */

typedef struct pool_spec {
    window w;
    const char *op; /* "MaxPool" or "AveragePool" */
    int64_t n, c;
    bool include_pad;
} pool_spec;

static void pool_ref(const pool_spec *ps, const geom *g, const float *x, float *y)
{
    bool is_max = strcmp(ps->op, "MaxPool") == 0;
    int64_t isize = g->in[0] * g->in[1] * g->in[2];
    for (int64_t p = 0; p < ps->n * ps->c; p++)
        for (int64_t od = 0; od < g->out[0]; od++)
            for (int64_t oh = 0; oh < g->out[1]; oh++)
                for (int64_t ow = 0; ow < g->out[2]; ow++) {
                    double acc = is_max ? -INFINITY : 0.0;
                    int64_t inside = 0, padded = 0;
                    for (int64_t kd = 0; kd < g->k[0]; kd++)
                        for (int64_t kh = 0; kh < g->k[1]; kh++)
                            for (int64_t kw = 0; kw < g->k[2]; kw++) {
                                int64_t pos[3] = {od * g->s[0] - g->pb[0] + kd * g->d[0],
                                                  oh * g->s[1] - g->pb[1] + kh * g->d[1],
                                                  ow * g->s[2] - g->pb[2] + kw * g->d[2]};
                                bool in_input = true, in_padded = true;
                                for (int d = 0; d < 3; d++) {
                                    in_input = in_input && pos[d] >= 0 && pos[d] < g->in[d];
                                    in_padded = in_padded && pos[d] >= -g->pb[d] &&
                                                pos[d] < g->in[d] + g->pe[d];
                                }
                                padded += in_padded;
                                if (!in_input)
                                    continue;
                                inside++;
                                double v = x[p * isize + (pos[0] * g->in[1] + pos[1]) * g->in[2] +
                                             pos[2]];
                                acc = is_max ? fmax(acc, v) : acc + v;
                            }
                    if (!is_max)
                        acc /= (double)(ps->include_pad ? padded : inside);
                    *y++ = (float)acc;
                }
}

static void check_pool(pool_spec ps)
{
    const window *w = &ps.w;
    int rank = w->nsp + 2;
    int64_t xshape[5] = {ps.n, ps.c}, yshape[5] = {ps.n, ps.c};
    memcpy(xshape + 2, w->in, (size_t)w->nsp * sizeof(int64_t));
    geom g = make_geom(w);
    memcpy(yshape + 2, g.out + 3 - w->nsp, (size_t)w->nsp * sizeof(int64_t));
    int64_t nx = hs__prod(xshape, 0, rank), ny = hs__prod(yshape, 0, rank);
    float *x = rand_buf(nx);

    tcase c = tc_new(13);
    tc_input(&c, "X", rank, xshape, x);
    Onnx__NodeProto *n = tc_node(&c, ps.op, "pool", (const char *[]){"X", NULL});
    hs__mb_attr_ints(c.mb, n, "kernel_shape", w->k, w->nsp);
    window_attrs(&c, n, w);
    if (ps.include_pad)
        hs__mb_attr_int(c.mb, n, "count_include_pad", 1);

    hs_error err = {0};
    hs_tensor y;
    cr_assert_eq(tc_run(&c, &y, &err), HS_OK, "%s", err.msg);
    expect_shape(&y, rank, yshape, ps.op);
    float *want = malloc((size_t)ny * sizeof *want);
    pool_ref(&ps, &g, x, want);
    expect_close(y.data, want, ny, ps.op);
    free(want);
    free(y.data);
    free(x);
}

Test(pool, maxpool)
{
    for (int cm = 0; cm < 2; cm++) {
        check_pool((pool_spec){.op = "MaxPool", .n = 2, .c = 3,
                               .w = {.nsp = 2, .in = {9, 8}, .k = {3, 2}, .strides = {2, 3},
                                     .pads = {1, 0, 2, 1}, .ceil = cm}});
        check_pool((pool_spec){.op = "MaxPool", .n = 1, .c = 2,
                               .w = {.nsp = 2, .in = {10, 7}, .k = {2, 3}, .strides = {3, 2},
                                     .dils = {2, 1}, .pads = {1, 1, 0, 1}, .ceil = cm}});
        check_pool((pool_spec){.op = "MaxPool", .n = 1, .c = 3,
                               .w = {.nsp = 2, .in = {12, 12}, .k = {3, 3}, .strides = {2, 2},
                                     .ceil = cm}});
    }
    check_pool((pool_spec){.op = "MaxPool", .n = 1, .c = 3, .w = {.nsp = 1, .in = {32}, .k = {2}}});
    check_pool((pool_spec){.op = "MaxPool", .n = 2, .c = 2,
                           .w = {.nsp = 1, .in = {13}, .k = {4}, .strides = {3},
                                 .pads = {2, 1}, .ceil = true}});
    check_pool((pool_spec){.op = "MaxPool", .n = 1, .c = 2,
                           .w = {.nsp = 3, .in = {5, 6, 7}, .k = {2, 3, 2},
                                 .strides = {2, 2, 1}, .pads = {0, 1, 1, 1, 1, 0}}});
}

Test(pool, averagepool_count_include_pad_and_ceil_mode)
{
    for (int cm = 0; cm < 2; cm++)
        for (int inc = 0; inc < 2; inc++) {
            check_pool((pool_spec){.op = "AveragePool", .n = 2, .c = 3, .include_pad = inc,
                                   .w = {.nsp = 2, .in = {9, 8}, .k = {3, 2},
                                         .strides = {2, 3}, .pads = {1, 0, 2, 1},
                                         .ceil = cm}});
            check_pool((pool_spec){.op = "AveragePool", .n = 1, .c = 2, .include_pad = inc,
                                   .w = {.nsp = 2, .in = {7, 7}, .k = {3, 3},
                                         .strides = {2, 2}, .pads = {1, 1, 1, 1},
                                         .ceil = cm}});
            check_pool((pool_spec){.op = "AveragePool", .n = 1, .c = 2, .include_pad = inc,
                                   .w = {.nsp = 1, .in = {10}, .k = {3}, .strides = {2},
                                         .pads = {2, 0}, .ceil = cm}});
        }
    check_pool((pool_spec){.op = "AveragePool", .n = 1, .c = 3,
                           .w = {.nsp = 1, .in = {32}, .k = {2}}});
    check_pool((pool_spec){.op = "AveragePool", .n = 1, .c = 2,
                           .w = {.nsp = 3, .in = {4, 5, 6}, .k = {2, 2, 3},
                                 .pads = {1, 0, 1, 0, 1, 1}}});
}

Test(pool, auto_pad)
{
    static const char *const modes[] = {"SAME_UPPER", "SAME_LOWER", "VALID"};
    for (int i = 0; i < 3; i++)
        for (int inc = 0; inc < 2; inc++) {
            check_pool((pool_spec){.op = "MaxPool", .n = 1, .c = 2,
                                   .w = {.nsp = 2, .in = {9, 7}, .k = {4, 2},
                                         .strides = {2, 3}, .auto_pad = modes[i]}});
            check_pool((pool_spec){.op = "AveragePool", .n = 1, .c = 2, .include_pad = inc,
                                   .w = {.nsp = 2, .in = {9, 7}, .k = {4, 2},
                                         .strides = {2, 3}, .auto_pad = modes[i]}});
        }
}

static void check_global(const char *op, int rank, const int64_t *shape)
{
    int64_t nx = hs__prod(shape, 0, rank), planes = shape[0] * shape[1], size = nx / planes;
    int64_t yshape[5];
    for (int d = 0; d < rank; d++)
        yshape[d] = d < 2 ? shape[d] : 1;
    float *x = rand_buf(nx);
    tcase c = tc_new(13);
    tc_input(&c, "X", rank, shape, x);
    tc_node(&c, op, "global", (const char *[]){"X", NULL});
    hs_error err = {0};
    hs_tensor y;
    cr_assert_eq(tc_run(&c, &y, &err), HS_OK, "%s", err.msg);
    expect_shape(&y, rank, yshape, op);
    float *want = malloc((size_t)planes * sizeof *want);
    bool is_max = strcmp(op, "GlobalMaxPool") == 0;
    for (int64_t p = 0; p < planes; p++) {
        double acc = is_max ? -INFINITY : 0.0;
        for (int64_t s = 0; s < size; s++)
            acc = is_max ? fmax(acc, x[p * size + s]) : acc + x[p * size + s];
        want[p] = (float)(is_max ? acc : acc / (double)size);
    }
    expect_close(y.data, want, planes, op);
    free(want);
    free(y.data);
    free(x);
}

Test(pool, global)
{
    static const char *const ops[] = {"GlobalAveragePool", "GlobalMaxPool"};
    for (int i = 0; i < 2; i++) {
        check_global(ops[i], 4, (int64_t[]){2, 3, 5, 7});
        check_global(ops[i], 3, (int64_t[]){2, 3, 11});
        check_global(ops[i], 5, (int64_t[]){1, 2, 3, 4, 5});
    }
}

Test(pool, rejects_bad_models)
{
    tcase c = tc_new(13);
    tc_input(&c, "X", 4, (int64_t[]){1, 1, 4, 4}, NULL);
    hs__mb_output(c.mb, "Y", HS_F32, 0, NULL);
    Onnx__NodeProto *n = hs__mb_node(c.mb, "MaxPool", "bad_pool", (const char *[]){"X", NULL},
                                     (const char *[]){"Y", "I", NULL});
    hs__mb_attr_ints(c.mb, n, "kernel_shape", (int64_t[]){2, 2}, 2);
    tc_expect_error(&c, HS_ERR_UNSUPPORTED, "bad_pool");

    c = tc_new(13);
    tc_input(&c, "X", 4, (int64_t[]){1, 1, 4, 4}, NULL);
    n = tc_node(&c, "MaxPool", "bad_pool", (const char *[]){"X", NULL});
    hs__mb_attr_ints(c.mb, n, "kernel_shape", (int64_t[]){2}, 1);
    tc_expect_error(&c, HS_ERR_INVALID, "bad_pool");

    c = tc_new(13);
    tc_input(&c, "X", 4, (int64_t[]){1, 1, 4, 4}, NULL);
    n = tc_node(&c, "AveragePool", "bad_pool", (const char *[]){"X", NULL});
    hs__mb_attr_ints(c.mb, n, "kernel_shape", (int64_t[]){5, 2}, 2);
    tc_expect_error(&c, HS_ERR_SHAPE, "bad_pool");

    c = tc_new(13);
    tc_input(&c, "X", 4, (int64_t[]){1, 1, 4, 4}, NULL);
    n = tc_node(&c, "AveragePool", "bad_pool", (const char *[]){"X", NULL});
    hs__mb_attr_ints(c.mb, n, "kernel_shape", (int64_t[]){2, 2}, 2);
    hs__mb_attr_ints(c.mb, n, "pads", (int64_t[]){1, 1}, 2);
    tc_expect_error(&c, HS_ERR_INVALID, "bad_pool");
}

/* ---- LRN ---------------------------------------------------------------------------------- */

static void check_lrn(int rank, const int64_t *shape, int64_t size, float alpha, float beta,
                      float bias, bool defaults)
{
    int64_t nx = hs__prod(shape, 0, rank), ch = shape[1], plane = nx / (shape[0] * ch);
    float *x = rand_buf(nx);
    tcase c = tc_new(13);
    tc_input(&c, "X", rank, shape, x);
    Onnx__NodeProto *n = tc_node(&c, "LRN", "lrn", (const char *[]){"X", NULL});
    hs__mb_attr_int(c.mb, n, "size", size);
    if (!defaults) {
        hs__mb_attr_float(c.mb, n, "alpha", alpha);
        hs__mb_attr_float(c.mb, n, "beta", beta);
        hs__mb_attr_float(c.mb, n, "bias", bias);
    }
    hs_error err = {0};
    hs_tensor y;
    cr_assert_eq(tc_run(&c, &y, &err), HS_OK, "%s", err.msg);
    expect_shape(&y, rank, shape, "LRN");
    float *want = malloc((size_t)nx * sizeof *want);
    for (int64_t i = 0; i < nx; i++) {
        int64_t k = (i / plane) % ch, base = i - k * plane;
        double sq = 0;
        for (int64_t j = k - (size - 1) / 2; j <= k + size / 2; j++)
            if (j >= 0 && j < ch)
                sq += (double)x[base + j * plane] * x[base + j * plane];
        want[i] = (float)(x[i] / pow(bias + alpha / (double)size * sq, beta));
    }
    expect_close(y.data, want, nx, "LRN");
    free(want);
    free(y.data);
    free(x);
}

Test(lrn, across_channels)
{
    check_lrn(4, (int64_t[]){2, 7, 3, 4}, 3, 0.5f, 0.75f, 2.0f, false);
    check_lrn(4, (int64_t[]){1, 6, 5, 2}, 4, 1.0f, 0.5f, 1.0f, false);
    check_lrn(4, (int64_t[]){2, 9, 2, 3}, 5, 1e-4f, 0.75f, 1.0f, true);
    check_lrn(3, (int64_t[]){2, 5, 6}, 7, 2.0f, 1.5f, 0.5f, false);
}

Test(lrn, rejects_bad_models)
{
    tcase c = tc_new(13);
    tc_input(&c, "X", 4, (int64_t[]){1, 3, 2, 2}, NULL);
    tc_node(&c, "LRN", "bad_lrn", (const char *[]){"X", NULL});
    tc_expect_error(&c, HS_ERR_INVALID, "bad_lrn");
}
