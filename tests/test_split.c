/*
 * The property every later part of hotsplit stands on: running nodes [0,k) and then [k,n),
 * handing over the tensors of the cut, gives a result bit-identical to running [0,n) at once,
 * for every k of every zoo model. So do parts of one executor (hs_exec_new_part): [k,n) in
 * the arena of [k/2,n), its cut copied in, and the n one-node parts of [0,n) chained in
 * place. Models are written once into HS_TEST_MODEL_DIR.
 */
#include <criterion/criterion.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "hotsplit/core.h"
#include "zoo_cache.h"

/* Runs [first, last) and returns copies of its outputs (caller frees each data). */
static int run_copy(const hs_graph *g, int first, int last, const hs_tensor *in, int n_in,
                    hs_tensor *out)
{
    hs_exec *x;
    hs_error err = {0};
    cr_assert_eq(hs_exec_new(g, first, last, &x, &err), HS_OK, "%s", err.msg);
    int n_out = hs_exec_output_count(x);
    cr_assert_eq(hs_exec_input_count(x), n_in, "[%d,%d) inputs", first, last);
    cr_assert_leq(n_out, 64);
    cr_assert_eq(hs_exec_run(x, in, n_in, out, n_out, &err), HS_OK, "%s", err.msg);
    for (int i = 0; i < n_out; i++) {
        size_t bytes = hs_tensor_nbytes(&out[i]);
        void *copy = malloc(bytes);
        memcpy(copy, out[i].data, bytes);
        out[i].data = copy;
    }
    hs_exec_free(x);
    return n_out;
}

/* Runs part [first, last) of base on in and expects its single output to equal want. */
static void expect_part(hs_exec *base, int first, int last, const hs_tensor *in, int n_in,
                        const hs_tensor *want, const char *name)
{
    hs_exec *x;
    hs_error err = {0};
    hs_tensor out;
    cr_assert_eq(hs_exec_new_part(base, first, last, &x, &err), HS_OK, "%s", err.msg);
    cr_assert_eq(hs_exec_run(x, in, n_in, &out, 1, &err), HS_OK, "%s", err.msg);
    cr_assert_eq(memcmp(out.data, want->data, hs_tensor_nbytes(want)), 0,
                 "%s: part [%d,%d) differs from [0,%d)", name, first, last, last);
    hs_exec_free(x);
}

/* Runs the one-node parts of [0, n) one after another, each on the last one's outputs in
 * place, and expects the result to equal want. */
static void expect_chained_parts(const hs_graph *g, const hs_tensor *in, const hs_tensor *want,
                                 const char *name)
{
    int n = hs_graph_node_count(g);
    hs_exec *base;
    hs_error err = {0};
    cr_assert_eq(hs_exec_new(g, 0, n, &base, &err), HS_OK, "%s", err.msg);
    hs_tensor cut[2][64];
    int n_cut = 1;
    cut[0][0] = *in;
    for (int k = 0; k < n; k++) {
        hs_exec *x;
        cr_assert_eq(hs_exec_new_part(base, k, k + 1, &x, &err), HS_OK, "%s", err.msg);
        int n_out = hs_exec_output_count(x);
        cr_assert_leq(n_out, 64);
        cr_assert_eq(hs_exec_run(x, cut[k % 2], n_cut, cut[(k + 1) % 2], n_out, &err), HS_OK,
                     "%s: node %d: %s", name, k, err.msg);
        n_cut = n_out;
        hs_exec_free(x);
    }
    cr_assert_eq(memcmp(cut[n % 2][0].data, want->data, hs_tensor_nbytes(want)), 0,
                 "%s: the %d chained one-node parts differ from [0,%d)", name, n, n);
    hs_exec_free(base);
}

static void check_every_cut(const char *name)
{
    hs_set_threads(1);
    hs_graph *g = zoo_model(name);
    int n = hs_graph_node_count(g);
    hs_tensor in;
    hs_graph_input(g, 0, &in);
    int64_t count = hs_tensor_numel(&in);
    float *data = malloc((size_t)count * sizeof *data);
    uint32_t s = 12345;
    for (int64_t i = 0; i < count; i++) {
        s = s * 1664525u + 1013904223u;
        data[i] = (float)(s >> 8) / (float)(1u << 24) * 2.0f - 1.0f;
    }
    in.data = data;

    hs_tensor whole[64];
    cr_assert_eq(run_copy(g, 0, n, &in, 1, whole), 1);
    size_t bytes = hs_tensor_nbytes(&whole[0]);
    for (int k = 1; k < n; k++) {
        hs_tensor cut[64], tail[64];
        int n_cut = run_copy(g, 0, k, &in, 1, cut);
        int64_t cut_bytes = 0;
        for (int i = 0; i < n_cut; i++)
            cut_bytes += (int64_t)hs_tensor_nbytes(&cut[i]);
        cr_expect_eq(cut_bytes, hs_graph_cut_bytes(g, k - 1), "%s: cut %d bytes", name, k);
        cr_assert_eq(run_copy(g, k, n, cut, n_cut, tail), 1);
        cr_assert_eq(memcmp(tail[0].data, whole[0].data, bytes), 0,
                     "%s: [0,%d) + [%d,%d) differs from [0,%d)", name, k, k, n, n);
        hs_exec *base;
        hs_error err = {0};
        cr_assert_eq(hs_exec_new(g, k / 2, n, &base, &err), HS_OK, "%s", err.msg);
        expect_part(base, k, n, cut, n_cut, &whole[0], name);
        hs_exec_free(base);
        for (int i = 0; i < n_cut; i++)
            free(cut[i].data);
        free(tail[0].data);
    }
    expect_chained_parts(g, &in, &whole[0], name);
    free(whole[0].data);
    free(data);
    hs_graph_free(g);
}

TestSuite(split, .timeout = 600);

Test(split, resnet18) { check_every_cut("resnet18"); }
Test(split, resnet50) { check_every_cut("resnet50"); }
Test(split, mobilenet_v2) { check_every_cut("mobilenet_v2"); }
Test(split, efficientnet_b0) { check_every_cut("efficientnet_b0"); }
Test(split, vgg16) { check_every_cut("vgg16"); }
Test(split, alexnet) { check_every_cut("alexnet"); }
