/*
 * The property every later part of hotsplit stands on: running nodes [0,k) and then [k,n),
 * handing over the tensors of the cut, gives a result bit-identical to running [0,n) at once,
 * for every k of every zoo model, and of five PyTorch exports whose graphs branch in ways the
 * zoo's do not. So do parts of one executor (hs_exec_new_part): [k,n) in
 * the arena of [k/2,n), its cut copied in, and the n one-node parts of [0,n) chained in
 * place. Models are written once into HS_TEST_MODEL_DIR.
 */
#include <criterion/criterion.h>
#include <fcntl.h>
#include <pthread.h>
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

static void check_every_cut_of(hs_graph *g, const char *name)
{
    hs_set_threads(1);
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

static void check_every_cut(const char *name) { check_every_cut_of(zoo_model(name), name); }

/* The same for PyTorch's own export of torchvision's `name`, kept by the torch_exports test
 * (tests/torch/export_check.py) in HS_TORCH_MODEL_DIR; skipped when that test did not run. */
static void check_every_cut_torch(const char *name)
{
    char path[1024];
    snprintf(path, sizeof path, "%s/%s.kept.onnx", HS_TORCH_MODEL_DIR, name);
    if (access(path, R_OK) != 0) {
        /* scripts/test.sh installs PyTorch and sets HS_REQUIRE_TORCH=1: there it must be */
        const char *required = getenv("HS_REQUIRE_TORCH");
        const char *why = "no PyTorch export (the torch_exports test writes it)";
        cr_assert(!required || strcmp(required, "1") != 0, "%s: %s", path, why);
        cr_skip_test("%s: %s", path, why);
    }
    hs_graph *g;
    hs_error err = {0};
    cr_assert_eq(hs_graph_load_onnx(path, NULL, &g, &err), HS_OK, "%s", err.msg);
    check_every_cut_of(g, name);
}

TestSuite(split, .timeout = 600);

typedef struct load_job {
    const hs_graph *g;
    hs_graph *fresh;
    hs_status st;
    hs_error err;
} load_job;

static void *load_again_main(void *arg)
{
    load_job *job = arg;
    job->st = hs_graph_load_again(job->g, &job->fresh, &job->err);
    return NULL;
}

/* Weights per node range (hs_graph_hold_weights, and the same in three steps with the load in
 * another thread): a graph that lets go of the weights of one range still runs the other bit
 * for bit, also while its file loads again in another thread, refuses the range it let go of
 * with a one-line reason, and runs the whole model bit for bit again once it holds everything
 * again. */
static void check_weights_per_range(const char *name)
{
    hs_set_threads(1);
    hs_graph *g = zoo_model(name);
    int n = hs_graph_node_count(g), k = n / 2;
    hs_tensor in;
    hs_graph_input(g, 0, &in);
    float *data = calloc((size_t)hs_tensor_numel(&in), sizeof *data);
    for (int64_t i = 0; i < hs_tensor_numel(&in); i++)
        data[i] = (float)((i * 7919) % 1000) / 500.0f - 1.0f;
    in.data = data;
    hs_tensor whole, cut[64], out;
    cr_assert_eq(run_copy(g, 0, n, &in, 1, &whole), 1);
    int n_cut = run_copy(g, 0, k, &in, 1, cut);
    int64_t all = hs_graph_weight_bytes_held(g);

    bool *need = calloc((size_t)n, sizeof *need);
    for (int i = k; i < n; i++)
        need[i] = true;
    hs_error err = {0};
    cr_assert_eq(hs_graph_hold_weights(g, need, &err), HS_OK, "%s", err.msg);
    int64_t tail_only = hs_graph_weight_bytes_held(g);
    cr_expect_lt(tail_only, all, "%s: holds %lld of %lld bytes", name, (long long)tail_only,
                 (long long)all);
    hs_exec *x;
    cr_expect_eq(hs_exec_new(g, 0, n, &x, &err), HS_ERR_INVALID);
    cr_expect(strstr(err.msg, "let go") != NULL, "%s", err.msg);
    cr_assert_eq(run_copy(g, k, n, cut, n_cut, &out), 1);
    cr_expect_eq(memcmp(out.data, whole.data, hs_tensor_nbytes(&whole)), 0,
                 "%s: [%d,%d) with only its weights differs", name, k, n);
    free(out.data);

    /* Every weight back in three steps, the file loaded again in another thread while
     * [k, n) runs here on the weights it kept. */
    for (int i = 0; i < n; i++)
        need[i] = true;
    bool missing = false;
    cr_assert_eq(hs_graph_let_go_weights(g, need, &missing, &err), HS_OK, "%s", err.msg);
    cr_expect(missing, "%s: [0,%d) reads weights that were let go", name, k);
    cr_expect_eq(hs_graph_weight_bytes_held(g), tail_only);
    load_job job = {.g = g};
    pthread_t loader;
    cr_assert_eq(pthread_create(&loader, NULL, load_again_main, &job), 0);
    cr_assert_eq(run_copy(g, k, n, cut, n_cut, &out), 1);
    cr_expect_eq(memcmp(out.data, whole.data, hs_tensor_nbytes(&whole)), 0,
                 "%s: [%d,%d) run during a load differs", name, k, n);
    free(out.data);
    pthread_join(loader, NULL);
    cr_assert_eq(job.st, HS_OK, "%s", job.err.msg);
    cr_assert_eq(hs_graph_take_weights(g, job.fresh, need, &err), HS_OK, "%s", err.msg);
    cr_expect_eq(hs_graph_weight_bytes_held(g), all);
    cr_assert_eq(run_copy(g, 0, n, &in, 1, &out), 1);
    cr_expect_eq(memcmp(out.data, whole.data, hs_tensor_nbytes(&whole)), 0,
                 "%s: the whole model with weights taken from another thread's load differs",
                 name);
    free(out.data);

    for (int i = 0; i < n; i++) /* the other way round: [0, k) kept, [k, n) let go */
        need[i] = i < k;
    cr_assert_eq(hs_graph_hold_weights(g, need, &err), HS_OK, "%s", err.msg);
    hs_tensor head[64];
    cr_assert_eq(run_copy(g, 0, k, &in, 1, head), n_cut);
    for (int i = 0; i < n_cut; i++) {
        cr_expect_eq(memcmp(head[i].data, cut[i].data, hs_tensor_nbytes(&cut[i])), 0,
                     "%s: [0,%d) with [k, n) let go differs", name, k);
        free(head[i].data);
    }
    cr_expect_lt(hs_graph_weight_bytes_held(g), all);

    for (int i = 0; i < n; i++) /* [k, n) loaded back by hs_graph_hold_weights */
        need[i] = true;
    cr_assert_eq(hs_graph_hold_weights(g, need, &err), HS_OK, "%s", err.msg);
    cr_expect_eq(hs_graph_weight_bytes_held(g), all);
    cr_assert_eq(run_copy(g, 0, n, &in, 1, &out), 1);
    cr_expect_eq(memcmp(out.data, whole.data, hs_tensor_nbytes(&whole)), 0,
                 "%s: [0,%d) with every weight loaded back differs", name, n);
    free(out.data);
    for (int i = 0; i < n_cut; i++)
        free(cut[i].data);
    free(whole.data);
    free(need);
    free(data);
    hs_graph_free(g);
}

Test(split, weights_per_range_mobilenet_v2) { check_weights_per_range("mobilenet_v2"); }
Test(split, weights_per_range_resnet18) { check_weights_per_range("resnet18"); }

/* The file changed, or no file at all: the weights cannot come back, and the graph says so
 * and keeps what it holds. */
Test(split, weights_not_loaded_back_from_a_changed_file)
{
    hs_graph *zoo = zoo_model("resnet18");
    hs_graph_free(zoo);
    char src[1024], path[] = "/tmp/hs-hold-XXXXXX";
    snprintf(src, sizeof src, "%s/resnet18.onnx", HS_TEST_MODEL_DIR);
    int fd = mkstemp(path);
    cr_assert_geq(fd, 0);
    FILE *in = fopen(src, "rb"), *out = fdopen(fd, "wb");
    char buf[65536];
    for (size_t got; (got = fread(buf, 1, sizeof buf, in)) > 0;)
        fwrite(buf, 1, got, out);
    fclose(in);
    fclose(out);

    hs_graph *g;
    hs_error err = {0};
    cr_assert_eq(hs_graph_load_onnx(path, NULL, &g, &err), HS_OK, "%s", err.msg);
    int n = hs_graph_node_count(g);
    bool *need = calloc((size_t)n, sizeof *need);
    need[n - 1] = true;
    cr_assert_eq(hs_graph_hold_weights(g, need, &err), HS_OK, "%s", err.msg);
    int64_t held = hs_graph_weight_bytes_held(g);
    struct timespec times[2] = {{.tv_nsec = UTIME_OMIT}, {.tv_sec = 1000000000}};
    cr_assert_eq(utimensat(AT_FDCWD, path, times, 0), 0);
    for (int i = 0; i < n; i++)
        need[i] = true;
    cr_expect_eq(hs_graph_hold_weights(g, need, &err), HS_ERR_CHANGED);
    cr_expect(strstr(err.msg, "has changed") != NULL, "%s", err.msg);
    cr_expect_eq(hs_graph_weight_bytes_held(g), held);
    hs_exec *x; /* what it held still runs */
    cr_expect_eq(hs_exec_new(g, n - 1, n, &x, &err), HS_OK, "%s", err.msg);
    hs_exec_free(x);
    /* the same bytes, touched: the caller vouches for them, and they load back */
    cr_assert_eq(hs_graph_file_unchanged(g, &err), HS_OK, "%s", err.msg);
    cr_expect_eq(hs_graph_hold_weights(g, need, &err), HS_OK, "%s", err.msg);
    cr_expect_gt(hs_graph_weight_bytes_held(g), held);
    hs_graph_free(g);
    unlink(path);

    FILE *f = fopen(src, "rb");
    fseek(f, 0, SEEK_END);
    long size = ftell(f);
    rewind(f);
    void *bytes = malloc((size_t)size);
    cr_assert_eq(fread(bytes, 1, (size_t)size, f), (size_t)size);
    fclose(f);
    cr_assert_eq(hs_graph_load_onnx_buffer(bytes, (size_t)size, "buffer", NULL, &g, &err), HS_OK);
    cr_expect_eq(hs_graph_hold_weights(g, need, &err), HS_ERR_INVALID);
    cr_expect(strstr(err.msg, "not loaded from a file") != NULL, "%s", err.msg);
    hs_graph_free(g);
    free(bytes);
    free(need);
}

Test(split, resnet18) { check_every_cut("resnet18"); }
Test(split, resnet50) { check_every_cut("resnet50"); }
Test(split, mobilenet_v2) { check_every_cut("mobilenet_v2"); }
Test(split, efficientnet_b0) { check_every_cut("efficientnet_b0"); }
Test(split, vgg16) { check_every_cut("vgg16"); }
Test(split, alexnet) { check_every_cut("alexnet"); }

/* Branchy graphs from PyTorch's exporter: inception branches, channel split and shuffle, fire
 * modules, squeeze-and-excitation. */
Test(split, torch_googlenet) { check_every_cut_torch("googlenet"); }
Test(split, torch_shufflenet_v2) { check_every_cut_torch("shufflenet_v2_x1_0"); }
Test(split, torch_squeezenet1_1) { check_every_cut_torch("squeezenet1_1"); }
Test(split, torch_mobilenet_v3_small) { check_every_cut_torch("mobilenet_v3_small"); }
Test(split, torch_regnet_y_400mf) { check_every_cut_torch("regnet_y_400mf"); }
