/*
 * The property every later part of hotsplit stands on: running nodes [0,k) and then [k,n),
 * handing over the tensors of the cut, gives a result bit-identical to running [0,n) at once,
 * for every k of every zoo model. Models are written once into HS_TEST_MODEL_DIR.
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
        for (int i = 0; i < n_cut; i++)
            free(cut[i].data);
        free(tail[0].data);
    }
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
