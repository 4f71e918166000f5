/*
 * hotsplit infer MODEL.onnx [--input FILE.f32] [--output FILE.f32] [--seed S] [--threads N]
 *                [--repeat R] [--profile] [--input-shape SHAPE]
 * Runs the whole model on this machine: the single-device baseline every split is held to.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <getopt.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "cli.h"

static void help(FILE *f)
{
    fprintf(f,
            "usage: hotsplit infer MODEL.onnx [--input FILE.f32] [--output FILE.f32] [--seed S]\n"
            "                      [--threads N] [--repeat R] [--profile]\n"
            "                      [--input-shape 1x3x224x224]\n\n"
            "Runs the model on this machine. FILE.f32 is raw little-endian float32 in NCHW\n"
            "order; without --input a standard-normal input drawn from --seed (default 1) is\n"
            "used. Prints the top-5 classes and latency p50/p99 over R timed runs (default\n"
            "10, after one warm-up run). --threads sets BLAS threads (default 1). --profile\n"
            "adds the time per node and per op type (mean over the timed runs).\n");
}

typedef struct infer_opts {
    const char *model, *input, *output, *shape;
    uint64_t seed;
    long threads, repeat;
    bool profile;
} infer_opts;

static double now_seconds(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

static int read_input(const char *path, const hs_tensor *desc, float *data)
{
    FILE *f = fopen(path, "rb");
    if (!f)
        return cli_runtime_error("infer", "%s: cannot open: %s", path, strerror(errno));
    size_t want = hs_tensor_nbytes(desc);
    size_t got = fread(data, 1, want, f);
    bool extra = got == want && fgetc(f) != EOF;
    fclose(f);
    if (got != want || extra) {
        char shape[64];
        return cli_runtime_error("infer", "%s: holds %s bytes, the input %s needs exactly %zu",
                                 path, extra ? "more than" : "fewer", hs_shape_str(desc, shape,
                                 sizeof shape), want);
    }
    return EXIT_OK;
}

static int write_output(const char *path, const hs_tensor *t)
{
    FILE *f = fopen(path, "wb");
    if (!f)
        return cli_runtime_error("infer", "%s: cannot create: %s", path, strerror(errno));
    size_t n = hs_tensor_nbytes(t);
    bool ok = fwrite(t->data, 1, n, f) == n;
    if (fclose(f) != 0 || !ok)
        return cli_runtime_error("infer", "%s: write failed: %s", path, strerror(errno));
    return EXIT_OK;
}

static void print_top5(const hs_tensor *t)
{
    if (t->dtype != HS_F32)
        return;
    int64_t k = t->ndim ? t->shape[t->ndim - 1] : 1;
    const float *v = t->data; /* the first row: batch element 0 */
    int best[5];
    int nb = 0;
    for (int64_t i = 0; i < k; i++) {
        int pos = nb < 5 ? nb++ : 5;
        while (pos > 0 && v[best[pos - 1]] < v[i]) {
            if (pos < 5)
                best[pos] = best[pos - 1];
            pos--;
        }
        if (pos < 5)
            best[pos] = (int)i;
    }
    printf("top-5:");
    for (int i = 0; i < nb; i++)
        printf(" %d (%.4f)%s", best[i], v[best[i]], i + 1 < nb ? "," : "");
    printf("\n");
}

typedef struct op_time {
    const char *op;
    double seconds;
    int nodes;
} op_time;

static int cmp_op_time(const void *a, const void *b)
{
    double x = ((const op_time *)a)->seconds, y = ((const op_time *)b)->seconds;
    return (x < y) - (x > y);
}

static void print_profile(const hs_graph *g, const double *sum, long runs)
{
    int n = hs_graph_node_count(g);
    double total = 0;
    for (int i = 0; i < n; i++)
        total += sum[i] / (double)runs;
    printf("\nper node (mean ms over %ld runs):\n%5s  %-40s %-18s %9s %7s %9s\n", runs, "#",
           "name", "op", "ms", "%", "GFLOP/s");
    op_time *ops = calloc((size_t)n + 1, sizeof *ops);
    int n_ops = 0;
    for (int i = 0; i < n; i++) {
        hs_node_info ni;
        hs_graph_node_info(g, i, &ni);
        double s = sum[i] / (double)runs;
        printf("%5d  %-40.40s %-18s %9.3f %6.1f%% %9.2f\n", i, ni.name, ni.op, 1e3 * s,
               total > 0 ? 100 * s / total : 0, s > 0 ? ni.flops / s / 1e9 : 0);
        int j = 0;
        while (j < n_ops && strcmp(ops[j].op, ni.op) != 0)
            j++;
        if (ops && j == n_ops)
            ops[n_ops++] = (op_time){ni.op, 0, 0};
        if (ops) {
            ops[j].seconds += s;
            ops[j].nodes++;
        }
    }
    if (ops) {
        qsort(ops, (size_t)n_ops, sizeof *ops, cmp_op_time);
        printf("\nper op type:\n%-18s %6s %9s %7s\n", "op", "nodes", "ms", "%");
        for (int j = 0; j < n_ops; j++)
            printf("%-18s %6d %9.3f %6.1f%%\n", ops[j].op, ops[j].nodes, 1e3 * ops[j].seconds,
                   total > 0 ? 100 * ops[j].seconds / total : 0);
        free(ops);
    }
    printf("sum of nodes: %.3f ms\n", 1e3 * total);
}

static int run(const infer_opts *o, hs_graph *g)
{
    if (hs_graph_input_count(g) != 1)
        return cli_runtime_error("infer", "%s: has %d runtime inputs; infer feeds exactly one",
                                 o->model, hs_graph_input_count(g));
    hs_tensor in;
    const char *in_name = hs_graph_input(g, 0, &in);
    if (in.dtype != HS_F32)
        return cli_runtime_error("infer", "%s: input '%s' is not float32", o->model, in_name);
    int rc = EXIT_OK;
    hs_error err = {0};
    hs_exec *x = NULL;
    int n = hs_graph_node_count(g);
    int n_out = hs_graph_output_count(g);
    in.data = malloc(hs_tensor_nbytes(&in) + 1);
    hs_tensor *out = calloc((size_t)n_out, sizeof *out);
    double *lat = calloc((size_t)o->repeat, sizeof *lat);
    double *node_sum = calloc((size_t)n + 1, sizeof *node_sum);
    if (!in.data || !out || !lat || !node_sum) {
        rc = cli_runtime_error("infer", "out of memory");
        goto done;
    }
    if (o->input)
        rc = read_input(o->input, &in, in.data);
    else
        cli_random_normal(in.data, hs_tensor_numel(&in), o->seed);
    if (rc)
        goto done;
    if (hs_exec_new(g, 0, n, &x, &err) != HS_OK) {
        rc = cli_runtime_error("infer", "%s", err.msg);
        goto done;
    }
    hs_exec_set_profiling(x, o->profile);
    for (long r = -1; r < o->repeat; r++) { /* r = -1: warm-up */
        double t0 = now_seconds();
        if (hs_exec_run(x, &in, 1, out, n_out, &err) != HS_OK) {
            rc = cli_runtime_error("infer", "%s", err.msg);
            goto done;
        }
        if (r < 0)
            continue;
        lat[r] = now_seconds() - t0;
        const double *ns = hs_exec_node_seconds(x);
        for (int i = 0; ns && i < n; i++)
            node_sum[i] += ns[i];
    }
    char shape[64];
    printf("model: %s\ninput: %s %s (%s)\n", o->model, in_name, hs_shape_str(&in, shape,
           sizeof shape), o->input ? o->input : "random");
    printf("output: %s %s\n", hs_graph_output(g, 0, NULL), hs_shape_str(&out[0], shape,
           sizeof shape));
    print_top5(&out[0]);
    double p50 = cli_quantile(lat, (int)o->repeat, 0.50);
    double p99 = cli_quantile(lat, (int)o->repeat, 0.99);
    printf("latency: p50 %.3f ms, p99 %.3f ms over %ld runs, %ld thread%s, %.2f GFLOP/s\n",
           1e3 * p50, 1e3 * p99, o->repeat, o->threads, o->threads > 1 ? "s" : "",
           hs_graph_flops(g) / p50 / 1e9);
    printf("peak activation bytes: %zu\n", hs_exec_arena_bytes(x));
    if (o->profile)
        print_profile(g, node_sum, o->repeat);
    if (o->output)
        rc = write_output(o->output, &out[0]);
done:
    hs_exec_free(x);
    free(in.data);
    free(out);
    free(lat);
    free(node_sum);
    return rc;
}

int cmd_infer(int argc, char **argv)
{
    static const struct option opts[] = {
        {"input", required_argument, 0, 'i'},   {"output", required_argument, 0, 'o'},
        {"seed", required_argument, 0, 's'},    {"threads", required_argument, 0, 't'},
        {"repeat", required_argument, 0, 'r'},  {"profile", no_argument, 0, 'p'},
        {"input-shape", required_argument, 0, 'S'}, {"help", no_argument, 0, 'h'},
        {0, 0, 0, 0}};
    infer_opts o = {.seed = 1, .threads = 1, .repeat = 10};
    int c;
    optind = 0; /* glibc: a full re-initialisation, as demo runs several commands */
    opterr = 0;
    while ((c = getopt_long(argc, argv, ":i:o:s:t:r:pS:h", opts, NULL)) != -1) {
        switch (c) {
        case 'i': o.input = optarg; break;
        case 'o': o.output = optarg; break;
        case 'S': o.shape = optarg; break;
        case 'p': o.profile = true; break;
        case 's':
            if (!cli_parse_u64(optarg, &o.seed))
                return cli_usage_error("infer", "--seed '%s': expected a non-negative integer",
                                       optarg);
            break;
        case 't':
            if (!cli_parse_int(optarg, 1, 256, &o.threads))
                return cli_usage_error("infer", "--threads '%s': expected 1 to 256", optarg);
            break;
        case 'r':
            if (!cli_parse_int(optarg, 1, 1000000, &o.repeat))
                return cli_usage_error("infer", "--repeat '%s': expected 1 to 1000000", optarg);
            break;
        case 'h': help(stdout); return EXIT_OK;
        default: return cli_bad_option("infer", c, argv);
        }
    }
    if (optind != argc - 1)
        return cli_usage_error("infer", "expected one MODEL.onnx");
    o.model = argv[optind];
    hs_set_threads((int)o.threads);
    hs_graph *g;
    int rc = cli_load("infer", o.model, o.shape, &g);
    if (rc)
        return rc;
    rc = run(&o, g);
    hs_graph_free(g);
    return rc;
}
