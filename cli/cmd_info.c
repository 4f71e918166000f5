/* hotsplit info MODEL.onnx [--input-shape SHAPE] [--json]: what each node and each cut costs. */
#define _GNU_SOURCE
#include <getopt.h>
#include <string.h>

#include "cli.h"

static void help(FILE *f)
{
    fprintf(f, "usage: hotsplit info MODEL.onnx [--input-shape 1x3x224x224] [--json]\n\n"
               "One row per node (after constant and BatchNorm folding): index, name, op,\n"
               "output shape, MFLOPs, parameters, output bytes, and the bytes that cross a\n"
               "cut placed after the node, with the number of tensors crossing it; '*' marks\n"
               "split points (one tensor crosses, smaller than the input). Then totals,\n"
               "including 'params: N' and 'flops: N'.\n");
}

static void print_table(const hs_graph *g, const char *path, size_t peak)
{
    int n = hs_graph_node_count(g);
    printf("model: %s\n", path);
    printf("%5s  %-32s %-18s %-16s %10s %10s %11s %11s %4s\n", "#", "name", "op", "output",
           "MFLOPs", "params", "out bytes", "cut bytes", "cut");
    int64_t weights = 0, input = hs_graph_cut_bytes(g, -1);
    int split_points = 0;
    for (int i = 0; i < n; i++) {
        hs_node_info ni;
        hs_graph_node_info(g, i, &ni);
        char shape[64], name[33], op[40];
        hs_shape_str(&ni.output, shape, sizeof shape);
        snprintf(op, sizeof op, "%s%s%s", ni.op, ni.fused ? "+" : "", ni.fused ? ni.fused : "");
        size_t len = strlen(ni.name);
        if (len > 32) /* keep the end of long names: it is the distinctive part */
            snprintf(name, sizeof name, "~%s", ni.name + len - 31);
        else
            snprintf(name, sizeof name, "%s", ni.name);
        /* A split point: one tensor crosses (every path from input to output runs through it)
         * and it is smaller than the input, so shipping it beats shipping the input. */
        bool split = ni.cut_tensors == 1 && ni.cut_bytes < input && i + 1 < n;
        split_points += split;
        printf("%5d  %-32s %-18s %-16s %10.2f %10lld %11lld %11lld %3d%s\n", i, name, op, shape,
               ni.flops / 1e6, (long long)ni.params, (long long)ni.output_bytes,
               (long long)ni.cut_bytes, ni.cut_tensors, split ? "*" : "");
        weights += ni.weight_bytes;
    }
    printf("nodes: %d\n", n);
    printf("params: %lld\n", (long long)hs_graph_params(g));
    printf("flops: %.0f\n", hs_graph_flops(g));
    printf("weight bytes: %lld\n", (long long)weights);
    printf("input bytes: %lld\n", (long long)input);
    printf("split points: %d (marked *: one tensor crosses the cut and it is smaller than the "
           "input)\n", split_points);
    printf("peak activation bytes: %zu\n", peak);
}

static void print_json(const hs_graph *g, const char *path, size_t peak)
{
    int n = hs_graph_node_count(g);
    printf("{\"model\": ");
    cli_json_string(stdout, path);
    printf(", \"params\": %lld, \"flops\": %.0f, \"input_bytes\": %lld, "
           "\"peak_activation_bytes\": %zu, \"nodes\": [",
           (long long)hs_graph_params(g), hs_graph_flops(g),
           (long long)hs_graph_cut_bytes(g, -1), peak);
    for (int i = 0; i < n; i++) {
        hs_node_info ni;
        hs_graph_node_info(g, i, &ni);
        printf("%s\n  {\"index\": %d, \"name\": ", i ? "," : "", i);
        cli_json_string(stdout, ni.name);
        printf(", \"op\": ");
        cli_json_string(stdout, ni.op);
        if (ni.fused) {
            printf(", \"fused\": ");
            cli_json_string(stdout, ni.fused);
        }
        printf(", \"shape\": [");
        for (int d = 0; d < ni.output.ndim; d++)
            printf("%s%lld", d ? ", " : "", (long long)ni.output.shape[d]);
        printf("], \"flops\": %.0f, \"params\": %lld, \"weight_bytes\": %lld, "
               "\"output_bytes\": %lld, \"cut_bytes\": %lld, \"cut_tensors\": %d, "
               "\"split_point\": %s}",
               ni.flops, (long long)ni.params, (long long)ni.weight_bytes,
               (long long)ni.output_bytes, (long long)ni.cut_bytes, ni.cut_tensors,
               ni.cut_tensors == 1 && ni.cut_bytes < hs_graph_cut_bytes(g, -1) && i + 1 < n
                   ? "true" : "false");
    }
    printf("\n]}\n");
}

int cmd_info(int argc, char **argv)
{
    static const struct option opts[] = {{"input-shape", required_argument, 0, 's'},
                                         {"json", no_argument, 0, 'j'},
                                         {"help", no_argument, 0, 'h'},
                                         {0, 0, 0, 0}};
    const char *shape = NULL;
    bool json = false;
    int c;
    optind = 0; /* glibc: a full re-initialisation, as demo runs several commands */
    opterr = 0;
    while ((c = getopt_long(argc, argv, ":s:jh", opts, NULL)) != -1) {
        switch (c) {
        case 's': shape = optarg; break;
        case 'j': json = true; break;
        case 'h': help(stdout); return EXIT_OK;
        default: return cli_bad_option("info", c, argv);
        }
    }
    if (optind != argc - 1)
        return cli_usage_error("info", "expected one MODEL.onnx");
    const char *path = argv[optind];
    hs_graph *g;
    int rc = cli_load("info", path, shape, &g);
    if (rc)
        return rc;
    hs_exec *x;
    hs_error err = {0};
    if (hs_exec_new(g, 0, hs_graph_node_count(g), &x, &err) != HS_OK) {
        hs_graph_free(g);
        return cli_runtime_error("info", "%s", err.msg);
    }
    size_t peak = hs_exec_arena_bytes(x);
    hs_exec_free(x);
    if (json)
        print_json(g, path, peak);
    else
        print_table(g, path, peak);
    hs_graph_free(g);
    return EXIT_OK;
}
