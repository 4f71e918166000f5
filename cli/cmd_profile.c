/* hotsplit profile MODEL.onnx -o PROFILE.yaml: measure every node, fit the per-class cost
 * regressions, save them for the cost model. */
#define _GNU_SOURCE
#include <getopt.h>
#include <string.h>
#include <unistd.h>

#include "cli.h"
#include "hotsplit/cost.h"
#include "hotsplit/runtime.h"

/* OpenBLAS's own API: the kernel family the measurements were made with. */
extern char *openblas_get_corename(void);

static void help(FILE *f)
{
    fprintf(f,
            "usage: hotsplit profile MODEL.onnx -o PROFILE.yaml [--repeat 10] [--warmup 3]\n"
            "                        [--threads 1] [--input-shape 1x3x224x224]\n\n"
            "Runs the whole model W unrecorded times, then R timed times, and keeps every\n"
            "node's median time. Per op class (conv, pointwise, depthwise, grouped, gemm, pool,\n"
            "elementwise, transcendental, norm, data, other) it fits\n"
            "    time = a * flops + b * bytes + c     (a, b, c >= 0; bytes = in + weight + out)\n"
            "and saves everything as YAML for the cost model (cluster files name it with\n"
            "'profile:'). Prints progress on stderr, then per class the samples, coefficients\n"
            "and median relative error of the fit, and the model's measured total against the\n"
            "total the regression alone predicts. It also measures what moving a tensor costs\n"
            "this machine's CPU per byte sent or received (through hotsplit's transport over\n"
            "loopback TCP): the cost model adds it to a stage's time for the cuts it sends and\n"
            "receives.\n");
}

typedef struct progress_state {
    bool tty;
    int last; /* last percentage printed */
    const char *model;
} progress_state;

static void progress(void *ctx, int done, int total)
{
    progress_state *ps = ctx;
    int pct = total > 0 ? (int)(100.0 * done / total) : 100;
    if (ps->tty) {
        if (pct != ps->last)
            fprintf(stderr, "\rprofiling %s: %3d%%", ps->model, pct);
        if (done == total)
            fputc('\n', stderr);
    } else if (ps->last < 0 || pct / 25 != ps->last / 25) {
        fprintf(stderr, "profiling %s: %d%%\n", ps->model, pct);
    }
    ps->last = pct;
}

/* Total the class regressions alone predict for the model (no measured node times). */
static double regression_total(const hs_profile *p, const hs_graph *g)
{
    int n = hs_graph_node_count(g), n_classes = hs_profile_class_count(p);
    double total = 0;
    for (int i = 0; i < n; i++) {
        const char *cls = hs_op_class(g, i);
        hs_node_info ni;
        hs_graph_node_info(g, i, &ni);
        for (int k = 0; k < n_classes; k++) {
            hs_profile_class pc;
            hs_profile_class_info(p, k, &pc);
            if (strcmp(pc.name, cls) == 0) {
                double bytes = (double)(ni.input_bytes + ni.weight_bytes + ni.output_bytes);
                total += pc.sec_per_flop * ni.flops + pc.sec_per_byte * bytes + pc.sec_fixed;
                break;
            }
        }
    }
    return total;
}

static void print_report(const hs_profile *p, const hs_graph *g, const char *model,
                         const char *out, long threads, long warmup, long repeat)
{
    printf("profile: %s -> %s\n", model, out);
    printf("machine: OpenBLAS %s, %ld thread%s; %ld warm-up + %ld timed runs, node medians\n",
           openblas_get_corename(), threads, threads == 1 ? "" : "s", warmup, repeat);
    printf("fit per class: time = a * flops + b * bytes + c\n");
    printf("%-15s %7s %12s %12s %12s %9s %8s %10s\n", "class", "samples", "a (s/FLOP)",
           "b (s/byte)", "c (s)", "GFLOP/s", "GB/s", "median err");
    for (int k = 0; k < hs_profile_class_count(p); k++) {
        hs_profile_class pc;
        hs_profile_class_info(p, k, &pc);
        printf("%-15s %7d %12.4g %12.4g %12.4g %9.2f %8.2f %9.1f%%\n", pc.name, pc.samples,
               pc.sec_per_flop, pc.sec_per_byte, pc.sec_fixed,
               pc.sec_per_flop > 0 ? 1e-9 / pc.sec_per_flop : 0.0,
               pc.sec_per_byte > 0 ? 1e-9 / pc.sec_per_byte : 0.0, 100 * pc.median_rel_error);
    }
    int n = hs_graph_node_count(g);
    double measured = 0;
    for (int i = 0; i < n; i++)
        measured += hs_profile_node_time(p, g, i);
    double predicted = regression_total(p, g);
    double io = hs_profile_io_cost(p);
    printf("transfer: %.3f ns of CPU per byte sent or received (%.2f GB/s), over loopback TCP\n",
           io * 1e9, io > 0 ? 1e-9 / io : 0.0);
    printf("nodes: %d\n", n);
    printf("total measured: %.3f ms\n", measured * 1e3);
    printf("total regression: %.3f ms (%+.1f%%)\n", predicted * 1e3,
           measured > 0 ? 100 * (predicted / measured - 1) : 0.0);
}

int cmd_profile(int argc, char **argv)
{
    static const struct option opts[] = {{"output", required_argument, 0, 'o'},
                                         {"repeat", required_argument, 0, 'r'},
                                         {"warmup", required_argument, 0, 'w'},
                                         {"threads", required_argument, 0, 't'},
                                         {"input-shape", required_argument, 0, 's'},
                                         {"help", no_argument, 0, 'h'},
                                         {0, 0, 0, 0}};
    const char *out = NULL, *shape = NULL;
    long repeat = 10, warmup = 3, threads = 1;
    int c;
    optind = 0; /* glibc: a full re-initialisation, as demo runs several commands */
    opterr = 0;
    while ((c = getopt_long(argc, argv, ":o:r:w:t:s:h", opts, NULL)) != -1) {
        switch (c) {
        case 'o': out = optarg; break;
        case 'r':
            if (!cli_parse_int(optarg, 1, 100000, &repeat))
                return cli_usage_error("profile", "--repeat '%s': expected an integer >= 1",
                                       optarg);
            break;
        case 'w':
            if (!cli_parse_int(optarg, 0, 100000, &warmup))
                return cli_usage_error("profile", "--warmup '%s': expected an integer >= 0",
                                       optarg);
            break;
        case 't':
            if (!cli_parse_int(optarg, 1, 1024, &threads))
                return cli_usage_error("profile", "--threads '%s': expected an integer >= 1",
                                       optarg);
            break;
        case 's': shape = optarg; break;
        case 'h': help(stdout); return EXIT_OK;
        default: return cli_bad_option("profile", c, argv);
        }
    }
    if (optind != argc - 1)
        return cli_usage_error("profile", "expected one MODEL.onnx");
    if (!out)
        return cli_usage_error("profile", "missing -o PROFILE.yaml");
    const char *path = argv[optind];
    hs_graph *g;
    int rc = cli_load("profile", path, shape, &g);
    if (rc)
        return rc;
    hs_set_threads((int)threads);
    const char *slash = strrchr(path, '/');
    progress_state ps = {.tty = isatty(fileno(stderr)), .last = -1,
                         .model = slash ? slash + 1 : path};
    hs_profile *p;
    hs_error err = {0};
    /* First: it counts the CPU of every thread, and BLAS threads spin on after their work. */
    double io = 0;
    if (hs_transfer_cost(&io, &err) != HS_OK) {
        hs_graph_free(g);
        return cli_runtime_error("profile", "measuring the transfer cost: %s", err.msg);
    }
    if (hs_profile_measure(g, (int)warmup, (int)repeat, progress, &ps, &p, &err) != HS_OK) {
        hs_graph_free(g);
        return cli_runtime_error("profile", "%s", err.msg);
    }
    hs_profile_set_io_cost(p, io);
    if (hs_profile_save(p, out, &err) != HS_OK) {
        hs_profile_free(p);
        hs_graph_free(g);
        return cli_runtime_error("profile", "%s", err.msg);
    }
    print_report(p, g, path, out, threads, warmup, repeat);
    hs_profile_free(p);
    hs_graph_free(g);
    return EXIT_OK;
}
