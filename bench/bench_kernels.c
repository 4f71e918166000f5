/*
 * Single-threaded time of one operator at a time, on layer shapes taken from the zoo models:
 * each case is a one-node model built in memory and run through the normal load and exec
 * path, so the numbers are what `hotsplit infer --profile` would show for that node, without
 * the noise of the neighbouring layers. Prints the median of R runs and the GFLOP/s.
 *
 * usage: bench_kernels [--repeat R] [--filter SUBSTRING]
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "hotsplit/core.h"
#include "onnx_build.h"
#include "bench_util.h"

typedef struct kcase {
    const char *name;
    const char *op;     /* "Conv", "Gemm", "Sigmoid" */
    int64_t c, h, w;    /* input [1, c, h, w]; Gemm: A is [1, c] */
    int64_t m, k, s, group; /* Conv: out channels, square kernel, stride, groups; Gemm: N */
} kcase;

static const kcase cases[] = {
    {"resnet conv1 7x7/2", "Conv", 3, 224, 224, 64, 7, 2, 1},
    {"resnet 3x3 64@56", "Conv", 64, 56, 56, 64, 3, 1, 1},
    {"resnet 3x3 128@28", "Conv", 128, 28, 28, 128, 3, 1, 1},
    {"resnet 3x3 256@14", "Conv", 256, 14, 14, 256, 3, 1, 1},
    {"resnet 3x3 512@7", "Conv", 512, 7, 7, 512, 3, 1, 1},
    {"resnet 3x3/2 128@56", "Conv", 64, 56, 56, 128, 3, 2, 1},
    {"resnet50 1x1 64->256@56", "Conv", 64, 56, 56, 256, 1, 1, 1},
    {"resnet50 1x1 256->64@56", "Conv", 256, 56, 56, 64, 1, 1, 1},
    {"resnet50 1x1 1024->256@14", "Conv", 1024, 14, 14, 256, 1, 1, 1},
    {"vgg 3x3 64@224", "Conv", 64, 224, 224, 64, 3, 1, 1},
    {"vgg 3x3 512@14", "Conv", 512, 14, 14, 512, 3, 1, 1},
    {"alexnet 11x11/4", "Conv", 3, 224, 224, 64, 11, 4, 1},
    {"dw 3x3 32@112", "Conv", 32, 112, 112, 32, 3, 1, 32},
    {"dw 3x3/2 96@112", "Conv", 96, 112, 112, 96, 3, 2, 96},
    {"dw 3x3 144@56", "Conv", 144, 56, 56, 144, 3, 1, 144},
    {"dw 5x5 240@28", "Conv", 240, 28, 28, 240, 5, 1, 240},
    {"dw 3x3 480@14", "Conv", 480, 14, 14, 480, 3, 1, 480},
    {"dw 5x5 1152@7", "Conv", 1152, 7, 7, 1152, 5, 1, 1152},
    {"sigmoid 96x112x112", "Sigmoid", 96, 112, 112, 0, 0, 0, 0},
    {"gemm 1x9216 -> 4096", "Gemm", 9216, 1, 1, 4096, 0, 0, 0},
    {"gemm 1x1280 -> 1000", "Gemm", 1280, 1, 1, 1000, 0, 0, 0},
};

static double now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec * 1e3 + (double)ts.tv_nsec * 1e-6;
}

static float *rand_floats(int64_t n, unsigned *seed)
{
    float *v = malloc((size_t)(n ? n : 1) * sizeof *v);
    for (int64_t i = 0; i < n; i++)
        v[i] = (float)rand_r(seed) / (float)RAND_MAX - 0.5f;
    return v;
}

/* Builds the one-node model of kc into a buffer (caller frees) and its input tensor. */
static size_t build(const kcase *kc, uint8_t **buf, hs_tensor *x, unsigned *seed)
{
    hs__mb *mb = hs__mb_new(13);
    bool gemm = strcmp(kc->op, "Gemm") == 0;
    int64_t xs[4] = {1, kc->c, kc->h, kc->w};
    int ndim = gemm ? 2 : 4;
    *x = (hs_tensor){.dtype = HS_F32, .ndim = ndim};
    memcpy(x->shape, xs, sizeof xs);
    x->data = rand_floats(hs_tensor_numel(x), seed);
    hs__mb_input(mb, "X", HS_F32, ndim, xs);
    hs__mb_output(mb, "Y", HS_F32, 0, NULL);
    float *w = NULL, *b = NULL;
    if (strcmp(kc->op, "Conv") == 0) {
        int64_t ws[4] = {kc->m, kc->c / kc->group, kc->k, kc->k}, bs[1] = {kc->m};
        w = rand_floats(ws[0] * ws[1] * ws[2] * ws[3], seed);
        b = rand_floats(kc->m, seed);
        hs__mb_initializer(mb, "W", HS_F32, 4, ws, w);
        hs__mb_initializer(mb, "B", HS_F32, 1, bs, b);
        Onnx__NodeProto *n = hs__mb_node(mb, "Conv", "op", (const char *[]){"X", "W", "B", NULL},
                                         (const char *[]){"Y", NULL});
        int64_t pad = kc->k / 2;
        hs__mb_attr_ints(mb, n, "strides", (int64_t[]){kc->s, kc->s}, 2);
        hs__mb_attr_ints(mb, n, "pads", (int64_t[]){pad, pad, pad, pad}, 4);
        hs__mb_attr_int(mb, n, "group", kc->group);
    } else if (gemm) {
        int64_t ws[2] = {kc->m, kc->c}, bs[1] = {kc->m};
        w = rand_floats(ws[0] * ws[1], seed);
        b = rand_floats(kc->m, seed);
        hs__mb_initializer(mb, "W", HS_F32, 2, ws, w);
        hs__mb_initializer(mb, "B", HS_F32, 1, bs, b);
        Onnx__NodeProto *n = hs__mb_node(mb, "Gemm", "op", (const char *[]){"X", "W", "B", NULL},
                                         (const char *[]){"Y", NULL});
        hs__mb_attr_int(mb, n, "transB", 1);
    } else {
        hs__mb_node(mb, kc->op, "op", (const char *[]){"X", NULL}, (const char *[]){"Y", NULL});
    }
    size_t size = hs__mb_pack(mb, buf);
    hs__mb_free(mb);
    free(w);
    free(b);
    return size;
}

int main(int argc, char **argv)
{
    int repeat = 20;
    const char *filter = NULL;
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--repeat") == 0 && i + 1 < argc)
            repeat = atoi(argv[++i]);
        else if (strcmp(argv[i], "--filter") == 0 && i + 1 < argc)
            filter = argv[++i];
        else {
            fprintf(stderr, "usage: bench_kernels [--repeat R] [--filter SUBSTRING]\n");
            return 2;
        }
    }
    if (repeat < 1)
        repeat = 1;
    hs_set_threads(1);
    unsigned seed = 42;
    double *times = malloc((size_t)repeat * sizeof *times);
    printf("%-28s %10s %10s\n", "case", "median ms", "GFLOP/s");
    for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
        const kcase *kc = &cases[i];
        if (filter && !strstr(kc->name, filter))
            continue;
        uint8_t *buf;
        hs_tensor x, y;
        size_t size = build(kc, &buf, &x, &seed);
        hs_graph *g = NULL;
        hs_exec *ex = NULL;
        hs_error err = {0};
        if (hs_graph_load_onnx_buffer(buf, size, kc->name, NULL, &g, &err) != HS_OK ||
            hs_exec_new(g, 0, hs_graph_node_count(g), &ex, &err) != HS_OK) {
            fprintf(stderr, "%s: %s\n", kc->name, err.msg);
            return 1;
        }
        hs_node_info ni;
        hs_graph_node_info(g, 0, &ni);
        for (int r = -2; r < repeat; r++) {
            double t0 = now_ms();
            if (hs_exec_run(ex, &x, 1, &y, 1, &err) != HS_OK) {
                fprintf(stderr, "%s: %s\n", kc->name, err.msg);
                return 1;
            }
            if (r >= 0)
                times[r] = now_ms() - t0;
        }
        qsort(times, (size_t)repeat, sizeof *times, cmp_double);
        double med = times[repeat / 2];
        printf("%-28s %10.3f %10.2f\n", kc->name, med, ni.flops / (med * 1e6));
        hs_exec_free(ex);
        hs_graph_free(g);
        free(buf);
        free(x.data);
    }
    free(times);
    return 0;
}
