/*
 * The model zoo: every architecture is written, parsed back and counted against torchvision's
 * parameter count, rewritten to check that a seed fixes the bytes, then loaded and run once on
 * random input to check that its logits are finite and well scaled.
 */
#include <criterion/criterion.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "graph_impl.h"

/* A temporary directory for one test's files, removed with them. */
typedef struct tmpdir {
    char path[64];
} tmpdir;

static void tmpdir_make(tmpdir *d)
{
    snprintf(d->path, sizeof d->path, "/tmp/hs_test_zoo_XXXXXX");
    cr_assert_not_null(mkdtemp(d->path));
}

static void tmpdir_file(const tmpdir *d, const char *name, char *out, size_t size)
{
    snprintf(out, size, "%s/%s", d->path, name);
}

static double now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

static uint8_t *read_all(const char *path, size_t *size)
{
    FILE *f = fopen(path, "rb");
    cr_assert_not_null(f, "cannot open %s", path);
    fseek(f, 0, SEEK_END);
    long n = ftell(f);
    fseek(f, 0, SEEK_SET);
    uint8_t *buf = malloc(n > 0 ? (size_t)n : 1);
    cr_assert_not_null(buf);
    cr_assert_eq(fread(buf, 1, (size_t)n, f), (size_t)n);
    fclose(f);
    *size = (size_t)n;
    return buf;
}

/* True when the two files hold the same bytes, compared a chunk at a time. */
static bool same_bytes(const char *a, const char *b)
{
    FILE *fa = fopen(a, "rb"), *fb = fopen(b, "rb");
    cr_assert(fa && fb);
    static char ba[1 << 16], bb[1 << 16];
    bool same = true;
    for (;;) {
        size_t na = fread(ba, 1, sizeof ba, fa), nb = fread(bb, 1, sizeof bb, fb);
        if (na != nb || memcmp(ba, bb, na) != 0) {
            same = false;
            break;
        }
        if (na == 0)
            break;
    }
    fclose(fa);
    fclose(fb);
    return same;
}

/* Index of input `name` in node n, or -1. */
static int input_index(const Onnx__NodeProto *n, const char *name)
{
    for (size_t j = 0; j < n->n_input; j++)
        if (strcmp(n->input[j], name) == 0)
            return (int)j;
    return -1;
}

/* Parameters by torchvision's convention, read straight from the file: Conv and Gemm weights
 * and biases, BatchNormalization scale and bias. Fails if any other initializer holds more
 * than one element unless it is a BatchNorm running statistic. */
static int64_t count_params(const char *path)
{
    size_t size;
    uint8_t *buf = read_all(path, &size);
    Onnx__ModelProto *m = onnx__model_proto__unpack(NULL, size, buf);
    cr_assert_not_null(m, "%s: not a ModelProto", path);
    cr_assert_eq(m->n_opset_import, 1);
    cr_assert_eq(m->opset_import[0]->version, 13);
    const Onnx__GraphProto *g = m->graph;
    cr_assert_eq(g->n_input, 1);
    cr_assert_str_eq(g->input[0]->name, "input");
    cr_assert_eq(g->n_output, 1);
    cr_assert_str_eq(g->output[0]->name, "output");

    int64_t params = 0;
    for (size_t i = 0; i < g->n_initializer; i++) {
        const Onnx__TensorProto *t = g->initializer[i];
        int64_t numel = 1;
        for (size_t d = 0; d < t->n_dims; d++)
            numel *= t->dims[d];
        cr_assert_eq(t->data_type, ONNX__TENSOR_PROTO__DATA_TYPE__FLOAT);
        cr_assert_eq(t->raw_data.len, (size_t)numel * 4, "%s: raw data size", t->name);
        bool param = false, running_stat = false;
        for (size_t k = 0; k < g->n_node; k++) {
            const Onnx__NodeProto *n = g->node[k];
            int j = input_index(n, t->name);
            if (j < 0)
                continue;
            if ((strcmp(n->op_type, "Conv") == 0 || strcmp(n->op_type, "Gemm") == 0) && j >= 1)
                param = true;
            if (strcmp(n->op_type, "BatchNormalization") == 0) {
                param = param || j == 1 || j == 2;
                running_stat = running_stat || j == 3 || j == 4;
            }
        }
        if (param)
            params += numel;
        else
            cr_assert(running_stat || numel <= 1,
                      "%s: constant of %lld elements that is not a parameter", t->name,
                      (long long)numel);
    }
    onnx__model_proto__free_unpacked(m, NULL);
    free(buf);
    return params;
}

static uint64_t splitmix(uint64_t *s)
{
    uint64_t z = (*s += 0x9e3779b97f4a7c15ull);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
}

/* Loads the model, checks its parameter count and runs it on unit normal noise. */
static void load_and_run(const char *name, const char *path, int64_t expected_params)
{
    hs_error err = {0};
    hs_graph *g = NULL;
    double t0 = now();
    hs_status st = hs_graph_load_onnx(path, NULL, &g, &err);
    cr_assert_eq(st, HS_OK, "%s: load: %s", name, err.msg);
    cr_expect_eq(hs_graph_params(g), expected_params, "%s: hs_graph_params %lld, want %lld",
                 name, (long long)hs_graph_params(g), (long long)expected_params);

    hs_exec *x = NULL;
    st = hs_exec_new(g, 0, hs_graph_node_count(g), &x, &err);
    cr_assert_eq(st, HS_OK, "%s: exec: %s", name, err.msg);
    cr_assert_eq(hs_exec_input_count(x), 1);
    cr_assert_eq(hs_exec_output_count(x), 1);
    hs_tensor in, out;
    hs_exec_input(x, 0, &in);
    cr_assert_eq(hs_tensor_numel(&in), 3 * 224 * 224);
    float *data = malloc(hs_tensor_nbytes(&in));
    cr_assert_not_null(data);
    uint64_t s = 12345;
    for (int64_t i = 0; i < hs_tensor_numel(&in); i += 2) { /* Box-Muller */
        double u = ((double)(splitmix(&s) >> 11) + 0.5) * 0x1p-53;
        double v = ((double)(splitmix(&s) >> 11) + 0.5) * 0x1p-53;
        double r = sqrt(-2.0 * log(u));
        data[i] = (float)(r * cos(2 * 3.14159265358979 * v));
        data[i + 1] = (float)(r * sin(2 * 3.14159265358979 * v));
    }
    in.data = data;
    double t1 = now();
    st = hs_exec_run(x, &in, 1, &out, 1, &err);
    double t2 = now();
    cr_assert_eq(st, HS_OK, "%s: run: %s", name, err.msg);
    cr_assert_eq(hs_tensor_numel(&out), 1000);

    const float *y = out.data;
    double sum = 0, sum2 = 0;
    bool all_equal = true;
    for (int i = 0; i < 1000; i++) {
        cr_assert(isfinite(y[i]), "%s: logit %d is %f", name, i, y[i]);
        sum += y[i];
        sum2 += (double)y[i] * y[i];
        all_equal = all_equal && y[i] == y[0];
    }
    double mean = sum / 1000, sd = sqrt(fmax(sum2 / 1000 - mean * mean, 0));
    cr_expect(!all_equal, "%s: all logits equal", name);
    cr_expect(sd > 0.1 && sd < 100, "%s: logits' standard deviation %g", name, sd);
    cr_log_info("%s: load %.2fs, run %.2fs, logits mean %.4f sd %.4f", name, t1 - t0, t2 - t1,
                mean, sd);
    free(data);
    hs_exec_free(x);
    hs_graph_free(g);
}

/* Writes `name` with seed 1 twice and seed 2 once: parameter count, determinism, then a run. */
static void check_model(const char *name, int64_t expected_params)
{
    tmpdir d;
    tmpdir_make(&d);
    char a[128], b[128], c[128];
    tmpdir_file(&d, "a.onnx", a, sizeof a);
    tmpdir_file(&d, "b.onnx", b, sizeof b);
    tmpdir_file(&d, "c.onnx", c, sizeof c);
    hs_error err = {0};
    double t0 = now();
    cr_assert_eq(hs_zoo_write(name, a, 1, &err), HS_OK, "%s: %s", name, err.msg);
    cr_log_info("%s: written in %.2fs", name, now() - t0);
    cr_assert_eq(count_params(a), expected_params, "%s: %lld parameters, want %lld", name,
                 (long long)count_params(a), (long long)expected_params);
    cr_assert_eq(hs_zoo_write(name, b, 1, &err), HS_OK, "%s: %s", name, err.msg);
    cr_assert(same_bytes(a, b), "%s: seed 1 twice gave different files", name);
    unlink(b);
    cr_assert_eq(hs_zoo_write(name, c, 2, &err), HS_OK, "%s: %s", name, err.msg);
    cr_assert(!same_bytes(a, c), "%s: seeds 1 and 2 gave the same file", name);
    unlink(c);
    load_and_run(name, a, expected_params);
    unlink(a);
    rmdir(d.path);
}

Test(zoo, names)
{
    static const char *const want[] = {"resnet18", "resnet50", "mobilenet_v2",
                                       "efficientnet_b0", "vgg16", "alexnet"};
    const char *const *names = hs_zoo_names();
    for (int i = 0; i < 6; i++)
        cr_assert_str_eq(names[i], want[i]);
    cr_assert_null(names[6]);
}

Test(zoo, unknown_name)
{
    hs_error err = {0};
    cr_assert_eq(hs_zoo_write("resnet19", "/tmp/never_written.onnx", 1, &err), HS_ERR_NOTFOUND);
    cr_assert_eq(err.code, HS_ERR_NOTFOUND);
    cr_assert(strstr(err.msg, "unknown zoo model 'resnet19'"), "%s", err.msg);
    cr_assert(strstr(err.msg, "known: resnet18, resnet50, mobilenet_v2, efficientnet_b0, "
                              "vgg16, alexnet"),
              "%s", err.msg);
    cr_assert_eq(access("/tmp/never_written.onnx", F_OK), -1);
}

Test(zoo, unwritable_path)
{
    hs_error err = {0};
    const char *path = "/nonexistent_dir/model.onnx";
    cr_assert_eq(hs_zoo_write("mobilenet_v2", path, 1, &err), HS_ERR_IO);
    cr_assert(strstr(err.msg, path), "%s", err.msg);
}

/* torchvision's counts: sum(p.numel() for p in model.parameters()). */
Test(zoo, resnet18, .timeout = 600) { check_model("resnet18", 11689512); }
Test(zoo, resnet50, .timeout = 600) { check_model("resnet50", 25557032); }
Test(zoo, mobilenet_v2, .timeout = 600) { check_model("mobilenet_v2", 3504872); }
Test(zoo, efficientnet_b0, .timeout = 600) { check_model("efficientnet_b0", 5288548); }
Test(zoo, vgg16, .timeout = 600) { check_model("vgg16", 138357544); }
Test(zoo, alexnet, .timeout = 600) { check_model("alexnet", 61100840); }
