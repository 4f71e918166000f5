/*
 * The loader, the cut accounting and the executor's range semantics, on small hand-built
 * models; and the corpus of bad models every one of which must fail with a clear message.
 */
#include <criterion/criterion.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "graph_impl.h"
#include "onnx_build.h"

static const int64_t shape_1x4x5x5[] = {1, 4, 5, 5};
#define SHAPE_ELEMS 100

static hs_graph *load_mb(hs__mb *mb, const hs_load_options *opts, hs_status want, hs_error *err)
{
    uint8_t *buf;
    size_t size = hs__mb_pack(mb, &buf);
    hs_graph *g = NULL;
    hs_status st = hs_graph_load_onnx_buffer(buf, size, "test.onnx", opts, &g, err);
    free(buf);
    cr_assert_eq(st, want, "load returned %d (%s), wanted %d", st, err->msg, want);
    return g;
}

/* x -> Relu a -> Relu b -> Add(a, b) -> Identity y: a residual-shaped chain. */
static hs__mb *residual_model(void)
{
    hs__mb *mb = hs__mb_new(13);
    hs__mb_input(mb, "x", HS_F32, 4, shape_1x4x5x5);
    hs__mb_node(mb, "Relu", "r1", (const char *[]){"x", NULL}, (const char *[]){"a", NULL});
    hs__mb_node(mb, "Relu", "r2", (const char *[]){"a", NULL}, (const char *[]){"b", NULL});
    hs__mb_node(mb, "Add", "add", (const char *[]){"a", "b", NULL},
                (const char *[]){"c", NULL});
    hs__mb_node(mb, "Identity", "id", (const char *[]){"c", NULL}, (const char *[]){"y", NULL});
    hs__mb_output(mb, "y", HS_F32, 0, NULL);
    return mb;
}

Test(loader, cut_bytes_count_every_crossing_tensor)
{
    hs_error err = {0};
    hs__mb *mb = residual_model();
    hs_graph *g = load_mb(mb, NULL, HS_OK, &err);
    hs__mb_free(mb);
    const int64_t t = SHAPE_ELEMS * 4;
    cr_assert_eq(hs_graph_node_count(g), 4);
    cr_expect_eq(hs_graph_cut_bytes(g, -1), t);     /* x */
    cr_expect_eq(hs_graph_cut_bytes(g, 0), t);      /* a */
    cr_expect_eq(hs_graph_cut_bytes(g, 1), 2 * t);  /* a and b: inside the residual block */
    cr_expect_eq(hs_graph_cut_bytes(g, 2), t);      /* c */
    cr_expect_eq(hs_graph_cut_bytes(g, 3), t);      /* y */
    hs_node_info ni;
    hs_graph_node_info(g, 1, &ni);
    cr_expect_str_eq(ni.name, "r2");
    cr_expect_eq(ni.cut_tensors, 2);
    hs_graph_free(g);
}

static void run_range(const hs_graph *g, int first, int last, const hs_tensor *in, int n_in,
                      hs_tensor *out, int n_out_expected)
{
    hs_exec *x;
    hs_error err = {0};
    cr_assert_eq(hs_exec_new(g, first, last, &x, &err), HS_OK, "%s", err.msg);
    cr_assert_eq(hs_exec_input_count(x), n_in);
    cr_assert_eq(hs_exec_output_count(x), n_out_expected);
    hs_tensor tmp[8];
    cr_assert_eq(hs_exec_run(x, in, n_in, tmp, n_out_expected, &err), HS_OK, "%s", err.msg);
    for (int i = 0; i < n_out_expected; i++) {
        out[i] = tmp[i];
        size_t bytes = hs_tensor_nbytes(&tmp[i]);
        out[i].data = malloc(bytes);
        memcpy(out[i].data, tmp[i].data, bytes);
    }
    hs_exec_free(x);
}

Test(exec, split_ranges_hand_over_the_cut)
{
    hs_error err = {0};
    hs__mb *mb = residual_model();
    hs_graph *g = load_mb(mb, NULL, HS_OK, &err);
    hs__mb_free(mb);
    float xin[SHAPE_ELEMS];
    for (int i = 0; i < SHAPE_ELEMS; i++)
        xin[i] = (float)((i * 37) % 23) - 11.0f;
    hs_tensor x = {.dtype = HS_F32, .ndim = 4, .shape = {1, 4, 5, 5}, .data = xin};

    hs_tensor whole;
    run_range(g, 0, 4, &x, 1, &whole, 1);
    for (int i = 0; i < SHAPE_ELEMS; i++) {
        float a = xin[i] > 0 ? xin[i] : 0;
        cr_assert_float_eq(((float *)whole.data)[i], 2 * a, 0, "element %d", i);
    }
    /* Cut after node 1 (r2) carries two tensors: a and b. */
    hs_tensor mid[2], tail;
    run_range(g, 0, 2, &x, 1, mid, 2);
    run_range(g, 2, 4, mid, 2, &tail, 1);
    cr_expect_eq(memcmp(tail.data, whole.data, sizeof xin), 0);
    /* An empty range passes its cut straight through. */
    hs_tensor same[2];
    run_range(g, 2, 2, mid, 2, same, 2);
    cr_expect_eq(memcmp(same[0].data, mid[0].data, sizeof xin), 0);
    for (int i = 0; i < 2; i++) {
        free(mid[i].data);
        free(same[i].data);
    }
    free(tail.data);
    free(whole.data);
    hs_graph_free(g);
}

/* Add -> Clip(-1, 1): fused into the Add when the Add's output has no other reader. */
static hs__mb *add_clip_model(bool expose_sum)
{
    hs__mb *mb = hs__mb_new(13);
    hs__mb_input(mb, "x", HS_F32, 4, shape_1x4x5x5);
    float lo = -1.0f, hi = 1.0f;
    hs__mb_initializer(mb, "lo", HS_F32, 0, NULL, &lo);
    hs__mb_initializer(mb, "hi", HS_F32, 0, NULL, &hi);
    hs__mb_node(mb, "Add", "add", (const char *[]){"x", "x", NULL},
                (const char *[]){"s", NULL});
    hs__mb_node(mb, "Clip", "clip", (const char *[]){"s", "lo", "hi", NULL},
                (const char *[]){"y", NULL});
    hs__mb_output(mb, "y", HS_F32, 0, NULL);
    if (expose_sum)
        hs__mb_output(mb, "s", HS_F32, 0, NULL);
    return mb;
}

Test(loader, activation_is_fused_into_its_only_producer)
{
    hs_error err = {0};
    hs__mb *mb = add_clip_model(false);
    hs_graph *fused = load_mb(mb, NULL, HS_OK, &err);
    hs__mb_free(mb);
    mb = add_clip_model(true);
    hs_graph *apart = load_mb(mb, NULL, HS_OK, &err);
    hs__mb_free(mb);
    cr_assert_eq(hs_graph_node_count(fused), 1);
    cr_assert_eq(hs_graph_node_count(apart), 2, "a visible sum keeps the Clip apart");
    hs_node_info ni;
    hs_graph_node_info(fused, 0, &ni);
    cr_expect_str_eq(ni.op, "Add");
    cr_expect_str_eq(ni.fused, "Clip");

    float xin[SHAPE_ELEMS];
    for (int i = 0; i < SHAPE_ELEMS; i++)
        xin[i] = (float)(i % 9) * 0.25f - 1.0f;
    hs_tensor x = {.dtype = HS_F32, .ndim = 4, .shape = {1, 4, 5, 5}, .data = xin};
    hs_tensor a, b[2];
    run_range(fused, 0, 1, &x, 1, &a, 1);
    run_range(apart, 0, 2, &x, 1, b, 2);
    cr_expect_eq(memcmp(a.data, b[0].data, sizeof xin), 0, "bit-identical to unfused");
    for (int i = 0; i < SHAPE_ELEMS; i++) {
        float s = 2 * xin[i];
        cr_expect_float_eq(((float *)a.data)[i], s < -1 ? -1 : s > 1 ? 1 : s, 0);
    }
    free(a.data);
    free(b[0].data);
    free(b[1].data);
    hs_graph_free(fused);
    hs_graph_free(apart);
}

/* Conv -> Sigmoid -> Mul(conv, sigmoid): a SiLU fused into the Conv. */
static hs__mb *silu_model(bool expose_conv)
{
    hs__mb *mb = hs__mb_new(13);
    hs__mb_input(mb, "x", HS_F32, 4, shape_1x4x5x5);
    int64_t wshape[] = {4, 4, 1, 1};
    float w[16];
    for (int i = 0; i < 16; i++)
        w[i] = (float)(i % 7) * 0.5f - 1.5f;
    hs__mb_initializer(mb, "w", HS_F32, 4, wshape, w);
    hs__mb_node(mb, "Conv", "conv", (const char *[]){"x", "w", NULL},
                (const char *[]){"c", NULL});
    hs__mb_node(mb, "Sigmoid", "sig", (const char *[]){"c", NULL}, (const char *[]){"s", NULL});
    hs__mb_node(mb, "Mul", "mul", (const char *[]){"s", "c", NULL}, (const char *[]){"y", NULL});
    hs__mb_output(mb, "y", HS_F32, 0, NULL);
    if (expose_conv)
        hs__mb_output(mb, "c", HS_F32, 0, NULL);
    return mb;
}

Test(loader, silu_is_fused_and_bit_identical)
{
    hs_error err = {0};
    hs__mb *mb = silu_model(false);
    hs_graph *fused = load_mb(mb, NULL, HS_OK, &err);
    hs__mb_free(mb);
    mb = silu_model(true);
    hs_graph *apart = load_mb(mb, NULL, HS_OK, &err);
    hs__mb_free(mb);
    cr_assert_eq(hs_graph_node_count(fused), 1);
    cr_assert_eq(hs_graph_node_count(apart), 3);
    hs_node_info ni;
    hs_graph_node_info(fused, 0, &ni);
    cr_expect_str_eq(ni.fused, "SiLU");
    float xin[SHAPE_ELEMS];
    for (int i = 0; i < SHAPE_ELEMS; i++) /* wide range: both tails of the sigmoid */
        xin[i] = (float)((i * 29) % 41 - 20) * 0.9f;
    hs_tensor x = {.dtype = HS_F32, .ndim = 4, .shape = {1, 4, 5, 5}, .data = xin};
    hs_tensor a, b[2];
    run_range(fused, 0, 1, &x, 1, &a, 1);
    run_range(apart, 0, 3, &x, 1, b, 2);
    const char *first = hs_graph_output(apart, 0, NULL);
    hs_tensor *y = strcmp(first, "y") == 0 ? &b[0] : &b[1];
    cr_expect_eq(memcmp(a.data, y->data, sizeof xin), 0, "bit-identical to Sigmoid then Mul");
    free(a.data);
    free(b[0].data);
    free(b[1].data);
    hs_graph_free(fused);
    hs_graph_free(apart);
}

/* The chain of 8 Relus of arena_reuses_dead_buffers, loaded. */
static hs_graph *relu_chain(void)
{
    hs__mb *mb = hs__mb_new(13);
    hs__mb_input(mb, "t0", HS_F32, 4, shape_1x4x5x5);
    char in[8], out[8];
    for (int i = 0; i < 8; i++) {
        snprintf(in, sizeof in, "t%d", i);
        snprintf(out, sizeof out, "t%d", i + 1);
        hs__mb_node(mb, "Relu", out, (const char *[]){in, NULL}, (const char *[]){out, NULL});
    }
    hs__mb_output(mb, "t8", HS_F32, 0, NULL);
    hs_error err = {0};
    hs_graph *g = load_mb(mb, NULL, HS_OK, &err);
    hs__mb_free(mb);
    return g;
}

Test(exec, parts_chain_in_the_base_arena)
{
    hs_graph *g = relu_chain();
    hs_error err = {0};
    float xin[SHAPE_ELEMS];
    for (int i = 0; i < SHAPE_ELEMS; i++)
        xin[i] = (float)(i % 7) - 3.0f;
    hs_tensor x = {.dtype = HS_F32, .ndim = 4, .shape = {1, 4, 5, 5}, .data = xin}, mid, y;
    hs_exec *base, *head, *tail, *inner;
    cr_assert_eq(hs_exec_new(g, 0, 8, &base, &err), HS_OK);
    cr_assert_eq(hs_exec_new_part(base, 0, 4, &head, &err), HS_OK, "%s", err.msg);
    cr_assert_eq(hs_exec_new_part(base, 4, 8, &tail, &err), HS_OK, "%s", err.msg);
    cr_expect_eq(hs_exec_arena_bytes(head), 0);
    cr_assert_eq(hs_exec_run(head, &x, 1, &mid, 1, &err), HS_OK, "%s", err.msg);
    cr_assert_eq(hs_exec_run(tail, &mid, 1, &y, 1, &err), HS_OK, "%s", err.msg);
    for (int i = 0; i < SHAPE_ELEMS; i++)
        cr_assert_eq(((float *)y.data)[i], xin[i] > 0 ? xin[i] : 0.0f);

    /* An input from outside is copied in; one from elsewhere in the arena is refused. */
    float outside[SHAPE_ELEMS];
    memcpy(outside, mid.data, sizeof outside);
    cr_assert_eq(hs_exec_run(tail, &(hs_tensor){.dtype = HS_F32, .ndim = 4,
                                                .shape = {1, 4, 5, 5}, .data = outside},
                             1, &y, 1, &err), HS_OK, "%s", err.msg);
    cr_expect_eq(((float *)y.data)[1], xin[1] > 0 ? xin[1] : 0.0f);
    cr_assert_eq(hs_exec_new_part(base, 5, 8, &inner, &err), HS_OK, "%s", err.msg);
    cr_assert_eq(hs_exec_run(head, &x, 1, &mid, 1, &err), HS_OK);
    cr_expect_eq(hs_exec_run(inner, &mid, 1, &y, 1, &err), HS_ERR_INVALID);
    cr_expect(strstr(err.msg, "'t5'") && strstr(err.msg, "[5, 8)"), "%s", err.msg);
    hs_exec_free(inner);
    hs_exec_free(head);
    hs_exec_free(tail);

    /* Only sub-ranges of the base are parts. */
    hs_exec *bad;
    cr_expect_eq(hs_exec_new_part(base, 6, 6, &bad, &err), HS_ERR_INVALID);
    hs_exec *mid_base;
    cr_assert_eq(hs_exec_new(g, 2, 6, &mid_base, &err), HS_OK);
    cr_expect_eq(hs_exec_new_part(mid_base, 1, 4, &bad, &err), HS_ERR_INVALID);
    cr_expect_eq(hs_exec_new_part(mid_base, 3, 7, &bad, &err), HS_ERR_INVALID);
    cr_expect(strstr(err.msg, "[3, 7)") && strstr(err.msg, "[2, 6)"), "%s", err.msg);
    hs_exec_free(mid_base);
    hs_exec_free(base);
    hs_graph_free(g);
}

Test(exec, arena_reuses_dead_buffers)
{
    /* A chain of 8 Relus needs two live buffers at a time, not eight. */
    hs_graph *g = relu_chain();
    hs_error err = {0};
    hs_exec *x;
    cr_assert_eq(hs_exec_new(g, 0, 8, &x, &err), HS_OK);
    cr_expect_eq(hs_exec_arena_bytes(x), 2 * 448); /* 400 bytes rounded up to 64 */
    hs_exec_free(x);
    hs_graph_free(g);
}

Test(exec, wrong_input_shape_is_an_error)
{
    hs_error err = {0};
    hs__mb *mb = residual_model();
    hs_graph *g = load_mb(mb, NULL, HS_OK, &err);
    hs__mb_free(mb);
    hs_exec *x;
    cr_assert_eq(hs_exec_new(g, 0, 4, &x, &err), HS_OK);
    float buf[SHAPE_ELEMS];
    hs_tensor bad = {.dtype = HS_F32, .ndim = 4, .shape = {1, 4, 5, 4}, .data = buf};
    hs_tensor out;
    cr_expect_eq(hs_exec_run(x, &bad, 1, &out, 1, &err), HS_ERR_SHAPE);
    cr_expect(strstr(err.msg, "'x'") && strstr(err.msg, "1x4x5x5"), "%s", err.msg);
    hs_exec_free(x);
    hs_graph_free(g);
}

Test(loader, binding_overrides_the_declared_shape)
{
    hs_error err = {0};
    hs__mb *mb = residual_model();
    hs_input_binding b = {.name = "x", .tensor = {.dtype = HS_F32, .ndim = 2, .shape = {3, 7}}};
    hs_load_options opts = {.inputs = &b, .n_inputs = 1};
    hs_graph *g = load_mb(mb, &opts, HS_OK, &err);
    hs_tensor desc;
    hs_graph_output(g, 0, &desc);
    cr_expect_eq(desc.ndim, 2);
    cr_expect_eq(desc.shape[1], 7);
    hs_graph_free(g);
    b.name = "nope";
    load_mb(mb, &opts, HS_ERR_NOTFOUND, &err);
    cr_expect(strstr(err.msg, "no graph input named 'nope'"), "%s", err.msg);
    hs__mb_free(mb);
}

Test(loader, constant_subgraph_feeding_reshape_is_folded)
{
    /* PyTorch's flatten: Shape -> Gather(0) -> Unsqueeze -> Concat(-1) -> Reshape. */
    hs__mb *mb = hs__mb_new(13);
    hs__mb_input(mb, "x", HS_F32, 4, shape_1x4x5x5);
    int64_t zero = 0, axes = 0, minus1 = -1, one = 1;
    hs__mb_initializer(mb, "zero", HS_I64, 0, NULL, &zero);
    hs__mb_initializer(mb, "axes", HS_I64, 1, &one, &axes);
    hs__mb_initializer(mb, "minus1", HS_I64, 1, &one, &minus1);
    hs__mb_node(mb, "Shape", "shape", (const char *[]){"x", NULL}, (const char *[]){"s", NULL});
    Onnx__NodeProto *n = hs__mb_node(mb, "Gather", "gather", (const char *[]){"s", "zero", NULL},
                                     (const char *[]){"n", NULL});
    hs__mb_attr_int(mb, n, "axis", 0);
    hs__mb_node(mb, "Unsqueeze", "unsq", (const char *[]){"n", "axes", NULL},
                (const char *[]){"n1", NULL});
    n = hs__mb_node(mb, "Concat", "cat", (const char *[]){"n1", "minus1", NULL},
                    (const char *[]){"newshape", NULL});
    hs__mb_attr_int(mb, n, "axis", 0);
    hs__mb_node(mb, "Reshape", "reshape", (const char *[]){"x", "newshape", NULL},
                (const char *[]){"y", NULL});
    hs__mb_output(mb, "y", HS_F32, 0, NULL);
    hs_error err = {0};
    hs_graph *g = load_mb(mb, NULL, HS_OK, &err);
    hs__mb_free(mb);
    cr_assert_eq(hs_graph_node_count(g), 1, "only the Reshape runs");
    hs_node_info ni;
    hs_graph_node_info(g, 0, &ni);
    cr_expect_str_eq(ni.op, "Reshape");
    cr_expect_eq(ni.output.ndim, 2);
    cr_expect_eq(ni.output.shape[1], 100);
    hs_graph_free(g);
}

/* Conv (no bias) followed by n_bn BatchNormalizations (the same statistics), output "y". */
static hs__mb *conv_bn_model(int n_bn)
{
    hs__mb *mb = hs__mb_new(13);
    hs__mb_input(mb, "x", HS_F32, 4, shape_1x4x5x5);
    int64_t wshape[] = {3, 4, 3, 3}, cshape[] = {3};
    float w[108], scale[3] = {0.5f, 1.5f, -2.0f}, bias[3] = {0.1f, -0.2f, 0.3f};
    float mean[3] = {0.05f, -0.1f, 0.2f}, var[3] = {0.9f, 1.1f, 2.0f};
    for (int i = 0; i < 108; i++)
        w[i] = (float)((i * 7) % 11 - 5) / 10.0f;
    hs__mb_initializer(mb, "w", HS_F32, 4, wshape, w);
    hs__mb_initializer(mb, "scale", HS_F32, 1, cshape, scale);
    hs__mb_initializer(mb, "bias", HS_F32, 1, cshape, bias);
    hs__mb_initializer(mb, "mean", HS_F32, 1, cshape, mean);
    hs__mb_initializer(mb, "var", HS_F32, 1, cshape, var);
    Onnx__NodeProto *n = hs__mb_node(mb, "Conv", "conv", (const char *[]){"x", "w", NULL},
                                     (const char *[]){"c0", NULL});
    hs__mb_attr_ints(mb, n, "pads", (const int64_t[]){1, 1, 1, 1}, 4);
    char in[8], out[8], name[8];
    for (int i = 0; i < n_bn; i++) {
        snprintf(in, sizeof in, "c%d", i);
        snprintf(out, sizeof out, i + 1 == n_bn ? "y" : "c%d", i + 1);
        snprintf(name, sizeof name, "bn%d", i);
        hs__mb_node(mb, "BatchNormalization", name,
                    (const char *[]){in, "scale", "bias", "mean", "var", NULL},
                    (const char *[]){out, NULL});
    }
    hs__mb_output(mb, "y", HS_F32, 0, NULL);
    return mb;
}

/* Loads conv_bn_model(n_bn) folded and not, and expects `nodes` nodes folded, the same
 * parameter count (torchvision's convention: 108 + 6 for one BatchNormalization) and the same
 * output (to rounding) as the unfolded graph. */
static void check_conv_bn(int n_bn, int nodes)
{
    hs__mb *mb = conv_bn_model(n_bn);
    hs_error err = {0};
    hs_graph *folded = load_mb(mb, NULL, HS_OK, &err);
    hs_load_options keep = {.keep_batchnorm = true};
    hs_graph *plain = load_mb(mb, &keep, HS_OK, &err);
    hs__mb_free(mb);
    cr_assert_eq(hs_graph_node_count(folded), nodes);
    cr_assert_eq(hs_graph_node_count(plain), 1 + n_bn);
    cr_expect_eq(hs_graph_params(folded), hs_graph_params(plain));
    if (n_bn == 1)
        cr_expect_eq(hs_graph_params(plain), 108 + 6);

    float xin[SHAPE_ELEMS];
    for (int i = 0; i < SHAPE_ELEMS; i++)
        xin[i] = (float)((i * 13) % 17) / 8.0f - 1.0f;
    hs_tensor x = {.dtype = HS_F32, .ndim = 4, .shape = {1, 4, 5, 5}, .data = xin};
    hs_tensor a, b;
    run_range(folded, 0, nodes, &x, 1, &a, 1);
    run_range(plain, 0, 1 + n_bn, &x, 1, &b, 1);
    for (int i = 0; i < 75; i++)
        cr_expect_float_eq(((float *)a.data)[i], ((float *)b.data)[i], 1e-5f, "element %d", i);
    free(a.data);
    free(b.data);
    hs_graph_free(folded);
    hs_graph_free(plain);
}

/* Conv + BatchNormalization: folded into one Conv. */
Test(loader, batchnorm_after_conv_is_folded) { check_conv_bn(1, 1); }

/* A second BatchNormalization after the folded one stays a node (it once failed the load:
 * both folds named their weight after the conv). */
Test(loader, second_batchnorm_after_conv_stays) { check_conv_bn(2, 2); }

/* ---- the bad-model corpus ---------------------------------------------------------------- */

typedef struct bad_case {
    const char *name;
    hs_status code;
    const char *message; /* a part the one-line error must contain */
} bad_case;

static hs__mb *bad_model(const char *name)
{
    hs__mb *mb = hs__mb_new(13);
    hs__mb_input(mb, "x", HS_F32, 4, shape_1x4x5x5);
    hs__mb_output(mb, "y", HS_F32, 0, NULL);
    if (strcmp(name, "unknown_op") == 0) {
        hs__mb_node(mb, "FancyOp", "fancy", (const char *[]){"x", NULL},
                    (const char *[]){"y", NULL});
    } else if (strcmp(name, "missing_initializer") == 0) {
        hs__mb_node(mb, "Conv", "conv1", (const char *[]){"x", "conv1.weight", NULL},
                    (const char *[]){"y", NULL});
    } else if (strcmp(name, "not_topological") == 0) {
        hs__mb_node(mb, "Relu", "second", (const char *[]){"t", NULL},
                    (const char *[]){"y", NULL});
        hs__mb_node(mb, "Relu", "first", (const char *[]){"x", NULL},
                    (const char *[]){"t", NULL});
    } else if (strcmp(name, "shape_mismatch") == 0) {
        int64_t other[] = {1, 3, 5, 5};
        float zeros[75] = {0};
        hs__mb_initializer(mb, "k", HS_F32, 4, other, zeros);
        hs__mb_node(mb, "Add", "add1", (const char *[]){"x", "k", NULL},
                    (const char *[]){"y", NULL});
    } else if (strcmp(name, "conv_channels") == 0) {
        int64_t wshape[] = {2, 3, 3, 3};
        float w[54] = {0};
        hs__mb_initializer(mb, "w", HS_F32, 4, wshape, w);
        hs__mb_node(mb, "Conv", "conv1", (const char *[]){"x", "w", NULL},
                    (const char *[]){"y", NULL});
    } else if (strcmp(name, "output_not_produced") == 0) {
        hs__mb_node(mb, "Relu", "r", (const char *[]){"x", NULL}, (const char *[]){"z", NULL});
    } else if (strcmp(name, "duplicate_tensor") == 0) {
        hs__mb_node(mb, "Relu", "r1", (const char *[]){"x", NULL}, (const char *[]){"y", NULL});
        hs__mb_node(mb, "Relu", "r2", (const char *[]){"x", NULL}, (const char *[]){"y", NULL});
    } else if (strcmp(name, "foreign_domain") == 0) {
        Onnx__NodeProto *n = hs__mb_node(mb, "Relu", "r", (const char *[]){"x", NULL},
                                         (const char *[]){"y", NULL});
        n->domain = "com.example";
    } else if (strcmp(name, "opset_too_new") == 0) {
        hs__mb_node(mb, "Relu", "r", (const char *[]){"x", NULL}, (const char *[]){"y", NULL});
        hs__mb_model(mb)->opset_import[0]->version = 99;
    } else if (strcmp(name, "bad_raw_data") == 0) {
        int64_t wshape[] = {4};
        float w[4] = {0};
        hs__mb_initializer(mb, "k", HS_F32, 1, wshape, w);
        Onnx__GraphProto *gp = hs__mb_model(mb)->graph;
        gp->initializer[0]->raw_data.len = 12; /* one float short */
        hs__mb_node(mb, "Add", "add1", (const char *[]){"x", "k", NULL},
                    (const char *[]){"y", NULL});
    } else if (strcmp(name, "symbolic_input") == 0) {
        Onnx__GraphProto *gp = hs__mb_model(mb)->graph;
        Onnx__TensorShapeProto__Dimension *d = gp->input[0]->type->tensor_type->shape->dim[0];
        d->value_case = ONNX__TENSOR_SHAPE_PROTO__DIMENSION__VALUE_DIM_PARAM;
        d->dim_param = "batch";
        hs__mb_node(mb, "Relu", "r", (const char *[]){"x", NULL}, (const char *[]){"y", NULL});
    } else if (strcmp(name, "string_input") == 0) {
        Onnx__GraphProto *gp = hs__mb_model(mb)->graph;
        gp->input[0]->type->tensor_type->elem_type = ONNX__TENSOR_PROTO__DATA_TYPE__STRING;
        hs__mb_node(mb, "Relu", "r", (const char *[]){"x", NULL}, (const char *[]){"y", NULL});
    }
    return mb;
}

static const bad_case bad_cases[] = {
    {"unknown_op", HS_ERR_UNSUPPORTED, "node 'fancy' (FancyOp): unsupported operator"},
    {"missing_initializer", HS_ERR_NOTFOUND, "input 'conv1.weight' is not an initializer"},
    {"not_topological", HS_ERR_NOTFOUND, "node 'second' (Relu): input 't'"},
    {"shape_mismatch", HS_ERR_SHAPE, "node 'add1' (Add)"},
    {"conv_channels", HS_ERR_SHAPE, "node 'conv1' (Conv)"},
    {"output_not_produced", HS_ERR_NOTFOUND, "graph output 'y' is not produced"},
    {"duplicate_tensor", HS_ERR_INVALID, "tensor 'y' is defined twice"},
    {"foreign_domain", HS_ERR_UNSUPPORTED, "domain 'com.example'"},
    {"opset_too_new", HS_ERR_UNSUPPORTED, "opset 99"},
    {"bad_raw_data", HS_ERR_PARSE, "initializer 'k': raw_data holds 12 bytes"},
    {"symbolic_input", HS_ERR_SHAPE, "dimension 0 is symbolic batch"},
    {"string_input", HS_ERR_UNSUPPORTED, "graph input 'x' has data type 8"},
};

Test(bad_models, each_fails_with_a_clear_message)
{
    for (size_t i = 0; i < sizeof bad_cases / sizeof bad_cases[0]; i++) {
        const bad_case *c = &bad_cases[i];
        hs__mb *mb = bad_model(c->name);
        uint8_t *buf;
        size_t size = hs__mb_pack(mb, &buf);
        hs__mb_free(mb);
        hs_graph *g = (hs_graph *)1;
        hs_error err = {0};
        hs_status st = hs_graph_load_onnx_buffer(buf, size, "bad.onnx", NULL, &g, &err);
        free(buf);
        cr_expect_eq(st, c->code, "%s: status %d, wanted %d (%s)", c->name, st, c->code,
                     err.msg);
        cr_expect_null(g, "%s: no graph on failure", c->name);
        cr_expect(strncmp(err.msg, "bad.onnx: ", 10) == 0, "%s: names the file: %s", c->name,
                  err.msg);
        cr_expect(strstr(err.msg, c->message), "%s: '%s' lacks '%s'", c->name, err.msg,
                  c->message);
        cr_expect_null(strchr(err.msg, '\n'), "%s: one line", c->name);
    }
}

/* Every prefix of a valid model is either rejected cleanly or (rarely, at a field boundary)
 * parses into a model the loader still rejects or accepts, never a crash. */
Test(bad_models, truncations_never_crash)
{
    hs__mb *mb = residual_model();
    uint8_t *buf;
    size_t size = hs__mb_pack(mb, &buf);
    hs__mb_free(mb);
    int rejected = 0;
    for (size_t cut = 0; cut < size; cut++) {
        hs_graph *g = NULL;
        hs_error err = {0};
        hs_status st = hs_graph_load_onnx_buffer(buf, cut, "cut.onnx", NULL, &g, &err);
        if (st != HS_OK) {
            rejected++;
            cr_expect(strncmp(err.msg, "cut.onnx: ", 10) == 0, "%s", err.msg);
        }
        hs_graph_free(g);
    }
    cr_expect_gt(rejected, (int)size * 9 / 10);
    free(buf);
}

Test(bad_models, missing_file_and_garbage)
{
    hs_graph *g;
    hs_error err = {0};
    cr_expect_eq(hs_graph_load_onnx("/nonexistent/model.onnx", NULL, &g, &err), HS_ERR_IO);
    cr_expect(strstr(err.msg, "/nonexistent/model.onnx: cannot open"), "%s", err.msg);
    cr_expect_eq(hs_graph_load_onnx("/tmp", NULL, &g, &err), HS_ERR_IO);
    cr_expect(strstr(err.msg, "/tmp: cannot read: Is a directory"), "%s", err.msg);
    char fifo[] = "/tmp/hs_test_fifo_XXXXXX";
    cr_assert_not_null(mkdtemp(fifo));
    char path[64];
    snprintf(path, sizeof path, "%s/model.onnx", fifo);
    cr_assert_eq(mkfifo(path, 0600), 0);
    cr_expect_eq(hs_graph_load_onnx(path, NULL, &g, &err), HS_ERR_IO); /* and does not block */
    cr_expect(strstr(err.msg, "model.onnx: cannot read: not a regular file"), "%s", err.msg);
    unlink(path);
    rmdir(fifo);
    const char garbage[] = "this is not a protobuf \xff\xff\xff\xff";
    cr_expect_eq(hs_graph_load_onnx_buffer(garbage, sizeof garbage, "junk.onnx", NULL, &g,
                                           &err), HS_ERR_PARSE);
    cr_expect(strstr(err.msg, "junk.onnx: not a valid ONNX model"), "%s", err.msg);
    cr_expect_eq(hs_graph_load_onnx_buffer("", 0, "empty.onnx", NULL, &g, &err), HS_ERR_PARSE);
    cr_expect(strstr(err.msg, "empty file"), "%s", err.msg);
}

Test(tensor, shape_parse)
{
    hs_tensor t;
    cr_expect_eq(hs_shape_parse("1x3x224x224", &t), HS_OK);
    cr_expect_eq(t.ndim, 4);
    cr_expect_eq(t.shape[3], 224);
    cr_expect_eq(hs_shape_parse("7", &t), HS_OK);
    cr_expect_eq(t.ndim, 1);
    const char *bad[] = {"", "x", "1x", "1xx2", "0x3", "-1x3", "1x3y", "1x2x3x4x5x6x7x8x9"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
        cr_expect_eq(hs_shape_parse(bad[i], &t), HS_ERR_INVALID, "'%s'", bad[i]);
}
