/* Helpers shared by the subcommands. */
#define _GNU_SOURCE
#include <errno.h>
#include <getopt.h>
#include <math.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "hotsplit/runtime.h"

#ifndef M_PI
#define M_PI 3.14159265358979323846
#endif

static int report(const char *cmd, int code, const char *fmt, va_list ap)
{
    fprintf(stderr, "hotsplit%s%s: ", cmd ? " " : "", cmd ? cmd : "");
    vfprintf(stderr, fmt, ap);
    fputc('\n', stderr);
    return code;
}

int cli_usage_error(const char *cmd, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    int code = report(cmd, EXIT_USAGE, fmt, ap);
    va_end(ap);
    fprintf(stderr, "Try 'hotsplit %s%s--help'.\n", cmd ? cmd : "", cmd ? " " : "");
    return code;
}

int cli_runtime_error(const char *cmd, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    int code = report(cmd, EXIT_RUNTIME, fmt, ap);
    va_end(ap);
    return code;
}

bool cli_parse_int(const char *text, long lo, long hi, long *out)
{
    char *end;
    errno = 0;
    long v = strtol(text, &end, 10);
    if (errno || end == text || *end || v < lo || v > hi)
        return false;
    *out = v;
    return true;
}

int cli_parse_objective(const char *cmd, const char *text, hs_objective *out)
{
    int obj = hs_objective_parse(text);
    if (obj < 0)
        return cli_usage_error(cmd, "--objective '%s': expected latency, throughput, energy, "
                               "lifetime or load-latency", text);
    *out = (hs_objective)obj;
    return EXIT_OK;
}

int cli_parse_spin_us(const char *cmd, const char *text, int *out)
{
    long v;
    if (!cli_parse_int(text, 0, 1000000, &v))
        return cli_usage_error(cmd, "--spin-us '%s': expected microseconds, 0 to 1000000",
                               text);
    *out = (int)v;
    return EXIT_OK;
}

int cli_parse_elastic(const char *cmd, const char *text, double *out)
{
    char *end;
    double v = strtod(text, &end);
    if (*end || end == text || !(v >= 0 && v <= 0.5))
        return cli_usage_error(cmd, "--elastic '%s': expected a share of the model's FLOPs "
                               "from 0 to 0.5", text);
    *out = v;
    return EXIT_OK;
}

void cli_default_elastic(hs_objective objective, double *elastic)
{
    if (*elastic < 0)
        *elastic = objective == HS_OBJ_THROUGHPUT ? HS_DEFAULT_ELASTIC : 0;
}

bool cli_parse_u64(const char *text, uint64_t *out)
{
    char *end;
    errno = 0;
    unsigned long long v = strtoull(text, &end, 10);
    if (errno || end == text || *end || text[0] == '-')
        return false;
    *out = v;
    return true;
}

int cli_load(const char *cmd, const char *path, const char *shape, hs_graph **g)
{
    hs_input_binding bind = {.name = NULL, .tensor = {.dtype = HS_F32}};
    hs_load_options opts = {0};
    if (shape) {
        if (hs_shape_parse(shape, &bind.tensor) != HS_OK)
            return cli_usage_error(cmd, "--input-shape '%s': expected dimensions like "
                                   "1x3x224x224", shape);
        opts.inputs = &bind;
        opts.n_inputs = 1;
    }
    hs_error err = {0};
    if (hs_graph_load_onnx(path, &opts, g, &err) != HS_OK)
        return cli_runtime_error(cmd, "%s", err.msg);
    return EXIT_OK;
}

static uint64_t splitmix64(uint64_t *s)
{
    uint64_t z = (*s += 0x9e3779b97f4a7c15ull);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
}

void cli_random_normal(float *out, int64_t n, uint64_t seed)
{
    uint64_t s = seed;
    for (int64_t i = 0; i < n; i += 2) {
        double u1 = ((double)(splitmix64(&s) >> 11) + 1.0) / 9007199254740993.0;
        double u2 = (double)(splitmix64(&s) >> 11) / 9007199254740992.0;
        double r = sqrt(-2.0 * log(u1));
        out[i] = (float)(r * cos(2.0 * M_PI * u2));
        if (i + 1 < n)
            out[i + 1] = (float)(r * sin(2.0 * M_PI * u2));
    }
}

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

double cli_quantile(double *v, int n, double q)
{
    if (n == 0)
        return 0;
    qsort(v, (size_t)n, sizeof *v, cmp_double);
    int idx = (int)ceil(q * n) - 1;
    return v[idx < 0 ? 0 : (idx >= n ? n - 1 : idx)];
}

void cli_json_string(FILE *f, const char *s)
{
    fputc('"', f);
    for (; *s; s++) {
        unsigned char c = (unsigned char)*s;
        if (c == '"' || c == '\\')
            fprintf(f, "\\%c", c);
        else if (c < 0x20)
            fprintf(f, "\\u%04x", c);
        else
            fputc(c, f);
    }
    fputc('"', f);
}

int cli_bad_option(const char *cmd, int c, char **argv)
{
    const char *arg = argv[optind - 1];
    if (c == ':')
        return cli_usage_error(cmd, "option '%s' needs a value", arg);
    return cli_usage_error(cmd, "unrecognized option '%s'", arg);
}
