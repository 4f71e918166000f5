/*
 * Single-threaded latency of every zoo model, set against baselines measured in the same run:
 * OpenBLAS's own sgemm on a large square product (how close the kernels come to the BLAS
 * peak) and, with --ort, ONNX Runtime on the same model and the same input (how hotsplit
 * compares with a production runtime, and whether it computes the same logits). The machine
 * may be shared and noisy, so the ratios within one run are the numbers to read, not the
 * absolute times.
 *
 * usage: bench_models [--models DIR] [--models-list a,b] [--repeat R] [--warmup W]
 *                     [--gemm N] [--seed S] [--json FILE] [--csv FILE]
 *                     [--ort] [--ort-script FILE] [--node PROGRAM]
 * Missing models are written into DIR (default out/models) with hs_zoo_write().
 */
#include <errno.h>
#include <math.h>
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <cblas.h>

#include "hotsplit/core.h"
#include "bench_util.h"

#ifndef HS_BENCH_ORT_SCRIPT
#define HS_BENCH_ORT_SCRIPT "bench/ort/ort_run.js"
#endif

extern char **environ;

#define MAX_MODELS 64
#define ZOO_SEED 1
#define REL_FLOOR 1e-3 /* elementwise relative diff: |a-b| / max(|b|, REL_FLOOR * max|b|) */

typedef struct options {
    const char *models_dir;
    const char *models_list;
    int repeat, warmup, gemm_n;
    uint64_t seed;
    const char *json_path, *csv_path;
    bool ort;
    const char *ort_script, *node;
} options;

typedef struct result {
    const char *name;
    bool ok;
    char error[HS_ERROR_MSG_MAX + 64];
    int nodes;
    double gflop;
    int64_t params;
    char input_shape[64];
    double median_ms, p90_ms, min_ms, gflops, vs_sgemm;
    bool ort_ok;
    char ort_error[1024];
    char ort_version[32];
    double ort_median_ms, ort_p90_ms, ratio; /* ratio: hotsplit / ORT latency */
    double max_rel_diff, max_elem_rel_diff;
} result;

/* ---- timing ------------------------------------------------------------------------------ */

static double now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec * 1e3 + (double)ts.tv_nsec * 1e-6;
}

/* Sorts v and returns the element at floor(q * (n - 1)) (the rule ort_run.js uses too). */
static double quantile(double *v, int n, double q)
{
    qsort(v, (size_t)n, sizeof *v, cmp_double);
    return v[(int)(q * (n - 1))];
}

/* ---- deterministic input ----------------------------------------------------------------- */

static uint64_t splitmix64(uint64_t *s)
{
    uint64_t z = (*s += 0x9e3779b97f4a7c15ull);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
}

/* Uniform in [-1, 1): roughly the range of a normalised image. */
static void fill_uniform(float *p, int64_t n, uint64_t seed)
{
    uint64_t s = seed;
    for (int64_t i = 0; i < n; i++)
        p[i] = (float)((double)(splitmix64(&s) >> 11) * 0x1.0p-53 * 2.0 - 1.0);
}

/* ---- the sgemm baseline ------------------------------------------------------------------ */

static double sgemm_gflops(int n, int runs, double *median_ms)
{
    size_t nn = (size_t)n * (size_t)n;
    float *a = malloc(nn * sizeof *a), *b = malloc(nn * sizeof *b), *c = malloc(nn * sizeof *c);
    double *ms = malloc((size_t)runs * sizeof *ms);
    if (!a || !b || !c || !ms) {
        fprintf(stderr, "bench_models: out of memory for the %dx%d sgemm\n", n, n);
        exit(1);
    }
    fill_uniform(a, (int64_t)nn, 11);
    fill_uniform(b, (int64_t)nn, 12);
    for (int r = -1; r < runs; r++) {
        double t0 = now_ms();
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, n, n, n, 1.0f, a, n, b, n, 0.0f,
                    c, n);
        if (r >= 0)
            ms[r] = now_ms() - t0;
    }
    *median_ms = quantile(ms, runs, 0.5);
    free(a);
    free(b);
    free(c);
    free(ms);
    return 2.0 * n * (double)n * n / (*median_ms * 1e6);
}

/* ---- files ------------------------------------------------------------------------------- */

static int mkdir_p(const char *path)
{
    char buf[4096];
    snprintf(buf, sizeof buf, "%s", path);
    for (char *p = buf + 1; *p; p++) {
        if (*p != '/')
            continue;
        *p = '\0';
        if (mkdir(buf, 0777) != 0 && errno != EEXIST)
            return -1;
        *p = '/';
    }
    return mkdir(buf, 0777) != 0 && errno != EEXIST ? -1 : 0;
}

static bool write_f32(const char *path, const float *p, int64_t n)
{
    FILE *f = fopen(path, "wb");
    if (!f)
        return false;
    bool ok = fwrite(p, sizeof *p, (size_t)n, f) == (size_t)n;
    return fclose(f) == 0 && ok;
}

static bool read_f32(const char *path, float *p, int64_t n)
{
    FILE *f = fopen(path, "rb");
    if (!f)
        return false;
    bool ok = fread(p, sizeof *p, (size_t)n, f) == (size_t)n && fgetc(f) == EOF;
    fclose(f);
    return ok;
}

/* ---- ONNX Runtime through node ----------------------------------------------------------- */

/* Runs `node ort_run.js MODEL IN OUT REPEAT SHAPE`, its stdout captured into buf. Returns the
 * exit status, or -1 with errno when it could not start. */
static int run_ort(const options *o, const char *model, const char *in, const char *out,
                   const char *shape, char *buf, size_t size)
{
    char repeat[16];
    snprintf(repeat, sizeof repeat, "%d", o->repeat);
    char *argv[] = {(char *)o->node, (char *)o->ort_script, (char *)model, (char *)in,
                    (char *)out, repeat, (char *)shape, NULL};
    int fds[2];
    if (pipe(fds) != 0)
        return -1;
    posix_spawn_file_actions_t fa;
    posix_spawn_file_actions_init(&fa);
    posix_spawn_file_actions_adddup2(&fa, fds[1], STDOUT_FILENO);
    posix_spawn_file_actions_addclose(&fa, fds[0]);
    posix_spawn_file_actions_addclose(&fa, fds[1]);
    pid_t pid;
    int rc = posix_spawnp(&pid, o->node, &fa, NULL, argv, environ);
    posix_spawn_file_actions_destroy(&fa);
    close(fds[1]);
    if (rc != 0) {
        close(fds[0]);
        errno = rc;
        return -1;
    }
    size_t len = 0;
    for (;;) {
        ssize_t n = read(fds[0], buf + len, size - 1 - len);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0)
            break;
        len += (size_t)n;
        if (len == size - 1)
            break;
    }
    buf[len] = '\0';
    close(fds[0]);
    int status;
    while (waitpid(pid, &status, 0) < 0)
        if (errno != EINTR)
            return -1;
    return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
}

static bool json_number(const char *json, const char *key, double *out)
{
    char pat[64];
    snprintf(pat, sizeof pat, "\"%s\":", key);
    const char *p = strstr(json, pat);
    if (!p)
        return false;
    char *end;
    *out = strtod(p + strlen(pat), &end);
    return end != p + strlen(pat);
}

static void json_text(const char *json, const char *key, char *out, size_t size)
{
    char pat[64];
    snprintf(pat, sizeof pat, "\"%s\":\"", key);
    const char *p = strstr(json, pat);
    if (!p) {
        snprintf(out, size, "unknown");
        return;
    }
    p += strlen(pat);
    snprintf(out, size, "%.*s", (int)strcspn(p, "\""), p);
}

static void compare_outputs(const float *a, const float *b, int64_t n, result *r)
{
    double max_b = 0, max_diff = 0, max_elem = 0;
    for (int64_t i = 0; i < n; i++)
        max_b = fmax(max_b, fabs((double)b[i]));
    double floor_b = REL_FLOOR * max_b;
    for (int64_t i = 0; i < n; i++) {
        double d = fabs((double)a[i] - b[i]);
        if (isnan(d))
            d = INFINITY;
        max_diff = fmax(max_diff, d);
        max_elem = fmax(max_elem, d / fmax(fmax(fabs((double)b[i]), floor_b), 1e-30));
    }
    r->max_rel_diff = max_b > 0 ? max_diff / max_b : max_diff;
    r->max_elem_rel_diff = max_elem;
}

static void bench_ort(const options *o, const char *model, const char *name, const float *input,
                      int64_t in_n, const char *shape, const float *hs_out, int64_t out_n,
                      result *r)
{
    char in_path[4096], out_path[4096], buf[4096];
    snprintf(in_path, sizeof in_path, "%s/%s.input.f32", o->models_dir, name);
    snprintf(out_path, sizeof out_path, "%s/%s.ort-output.f32", o->models_dir, name);
    if (!write_f32(in_path, input, in_n)) {
        snprintf(r->ort_error, sizeof r->ort_error, "cannot write %.900s", in_path);
        return;
    }
    remove(out_path);
    int st = run_ort(o, model, in_path, out_path, shape, buf, sizeof buf);
    if (st != 0) {
        snprintf(r->ort_error, sizeof r->ort_error, st < 0 ? "cannot start %s: %s" :
                 "%s %s exited with status %d", o->node,
                 st < 0 ? strerror(errno) : o->ort_script, st);
        return;
    }
    if (!json_number(buf, "median_ms", &r->ort_median_ms) ||
        !json_number(buf, "p90_ms", &r->ort_p90_ms)) {
        snprintf(r->ort_error, sizeof r->ort_error, "unexpected output from ort_run.js: %.100s",
                 buf);
        return;
    }
    json_text(buf, "ort_version", r->ort_version, sizeof r->ort_version);
    float *ort_out = malloc((size_t)out_n * sizeof *ort_out);
    if (!ort_out || !read_f32(out_path, ort_out, out_n)) {
        snprintf(r->ort_error, sizeof r->ort_error, "%.900s does not hold %lld floats", out_path,
                 (long long)out_n);
        free(ort_out);
        return;
    }
    compare_outputs(hs_out, ort_out, out_n, r);
    free(ort_out);
    r->ratio = r->median_ms / r->ort_median_ms;
    r->ort_ok = true;
}

/* ---- one model --------------------------------------------------------------------------- */

static void bench_model(const options *o, const char *name, double gemm_gflops, result *r)
{
    char path[4096];
    hs_error err = {0};
    hs_graph *g = NULL;
    hs_exec *x = NULL;
    float *input = NULL, *hs_out = NULL;
    double *ms = NULL;
    hs_status st;
    r->name = name;

    snprintf(path, sizeof path, "%s/%s.onnx", o->models_dir, name);
    if (access(path, R_OK) != 0) {
        fprintf(stderr, "  writing %s\n", path);
        if ((st = hs_zoo_write(name, path, ZOO_SEED, &err)) != HS_OK)
            goto fail;
    }
    if ((st = hs_graph_load_onnx(path, NULL, &g, &err)) != HS_OK)
        goto fail;
    r->nodes = hs_graph_node_count(g);
    r->gflop = hs_graph_flops(g) / 1e9;
    r->params = hs_graph_params(g);
    if ((st = hs_exec_new(g, 0, r->nodes, &x, &err)) != HS_OK)
        goto fail;
    if (hs_exec_input_count(x) != 1 || hs_exec_output_count(x) < 1) {
        snprintf(r->error, sizeof r->error, "expects 1 input, has %d (and %d outputs)",
                 hs_exec_input_count(x), hs_exec_output_count(x));
        goto done;
    }
    hs_tensor in, out, desc;
    hs_exec_input(x, 0, &in);
    hs_exec_output(x, 0, &desc);
    hs_shape_str(&in, r->input_shape, sizeof r->input_shape);
    int64_t in_n = hs_tensor_numel(&in), out_n = hs_tensor_numel(&desc);
    input = malloc((size_t)in_n * sizeof *input);
    hs_out = malloc((size_t)out_n * sizeof *hs_out);
    ms = malloc((size_t)o->repeat * sizeof *ms);
    if (!input || !hs_out || !ms) {
        snprintf(r->error, sizeof r->error, "out of memory");
        goto done;
    }
    fill_uniform(input, in_n, o->seed);
    in.data = input;

    for (int i = -o->warmup; i < o->repeat; i++) {
        double t0 = now_ms();
        if ((st = hs_exec_run(x, &in, 1, &out, 1, &err)) != HS_OK)
            goto fail;
        if (i >= 0)
            ms[i] = now_ms() - t0;
    }
    memcpy(hs_out, out.data, (size_t)out_n * sizeof *hs_out);
    r->min_ms = quantile(ms, o->repeat, 0.0);
    r->median_ms = quantile(ms, o->repeat, 0.5);
    r->p90_ms = quantile(ms, o->repeat, 0.9);
    r->gflops = r->gflop / (r->median_ms * 1e-3);
    r->vs_sgemm = r->gflops / gemm_gflops;
    r->ok = true;
    fprintf(stderr, "  hotsplit: median %.2f ms\n", r->median_ms);

    if (o->ort) {
        /* Free hotsplit's arena first so both runtimes start from similar memory. */
        hs_exec_free(x);
        x = NULL;
        bench_ort(o, path, name, input, in_n, r->input_shape, hs_out, out_n, r);
        if (r->ort_ok)
            fprintf(stderr, "  ORT: median %.2f ms, hotsplit/ORT %.2f\n", r->ort_median_ms,
                    r->ratio);
        else
            fprintf(stderr, "  ORT: %s\n", r->ort_error);
    }
    goto done;
fail:
    snprintf(r->error, sizeof r->error, "%s: %s", hs_strerror(st), err.msg);
done:
    if (!r->ok)
        fprintf(stderr, "  failed: %s\n", r->error);
    hs_exec_free(x);
    hs_graph_free(g);
    free(input);
    free(hs_out);
    free(ms);
}

/* ---- reports ----------------------------------------------------------------------------- */

static void json_string(FILE *f, const char *s)
{
    fputc('"', f);
    for (; *s; s++) {
        if (*s == '"' || *s == '\\')
            fprintf(f, "\\%c", *s);
        else if ((unsigned char)*s < 0x20)
            fprintf(f, "\\u%04x", *s);
        else
            fputc(*s, f);
    }
    fputc('"', f);
}

static const char *env_or(const char *name, const char *def)
{
    const char *v = getenv(name);
    return v ? v : def;
}

static bool write_json(const char *path, const options *o, const char *core, int threads,
                       int gemm_n, double gemm_ms, double gemm_gflops, const result *res, int n)
{
    FILE *f = fopen(path, "w");
    if (!f)
        return false;
    fprintf(f, "{\n  \"openblas\": {\"corename\": ");
    json_string(f, core);
    fprintf(f, ", \"threads\": %d, \"config\": ", threads);
    json_string(f, openblas_get_config());
    fprintf(f, ", \"OPENBLAS_CORETYPE\": ");
    json_string(f, env_or("OPENBLAS_CORETYPE", ""));
    fprintf(f, ", \"OPENBLAS_L2_SIZE\": ");
    json_string(f, env_or("OPENBLAS_L2_SIZE", ""));
    fprintf(f, "},\n  \"sgemm\": {\"n\": %d, \"median_ms\": %.4f, \"gflops\": %.3f},\n", gemm_n,
            gemm_ms, gemm_gflops);
    fprintf(f, "  \"repeat\": %d, \"warmup\": %d, \"seed\": %llu, \"threads\": 1,\n", o->repeat,
            o->warmup, (unsigned long long)o->seed);
    for (int i = 0; o->ort && i < n; i++)
        if (res[i].ort_ok) {
            fprintf(f, "  \"onnxruntime_node\": ");
            json_string(f, res[i].ort_version);
            fprintf(f, ",\n");
            break;
        }
    fprintf(f, "  \"models\": [");
    for (int i = 0; i < n; i++) {
        const result *r = &res[i];
        fprintf(f, "%s\n    {\"name\": ", i ? "," : "");
        json_string(f, r->name);
        if (!r->ok) {
            fprintf(f, ", \"error\": ");
            json_string(f, r->error);
            fprintf(f, "}");
            continue;
        }
        fprintf(f, ", \"input\": \"%s\", \"nodes\": %d, \"gflop\": %.4f, \"params\": %lld, "
                   "\"median_ms\": %.4f, \"p90_ms\": %.4f, \"min_ms\": %.4f, "
                   "\"gflops\": %.3f, \"vs_sgemm\": %.4f",
                r->input_shape, r->nodes, r->gflop, (long long)r->params, r->median_ms,
                r->p90_ms, r->min_ms, r->gflops, r->vs_sgemm);
        if (o->ort && r->ort_ok)
            fprintf(f, ", \"ort\": {\"median_ms\": %.4f, \"p90_ms\": %.4f, "
                       "\"hotsplit_over_ort\": %.4f, \"max_rel_diff\": %.3e, "
                       "\"max_elem_rel_diff\": %.3e}",
                    r->ort_median_ms, r->ort_p90_ms, r->ratio, r->max_rel_diff,
                    r->max_elem_rel_diff);
        else if (o->ort) {
            fprintf(f, ", \"ort\": {\"error\": ");
            json_string(f, r->ort_error);
            fprintf(f, "}");
        }
        fprintf(f, "}");
    }
    fprintf(f, "\n  ]\n}\n");
    return fclose(f) == 0;
}

static bool write_csv(const char *path, const options *o, const char *core, const result *res,
                      int n)
{
    FILE *f = fopen(path, "w");
    if (!f)
        return false;
    fprintf(f, "model,corename,gflop,params,median_ms,p90_ms,gflops,vs_sgemm,ort_median_ms,"
               "ort_p90_ms,hotsplit_over_ort,max_rel_diff,max_elem_rel_diff\n");
    for (int i = 0; i < n; i++) {
        const result *r = &res[i];
        if (!r->ok)
            continue;
        fprintf(f, "%s,%s,%.4f,%lld,%.4f,%.4f,%.3f,%.4f", r->name, core, r->gflop,
                (long long)r->params, r->median_ms, r->p90_ms, r->gflops, r->vs_sgemm);
        if (o->ort && r->ort_ok)
            fprintf(f, ",%.4f,%.4f,%.4f,%.3e,%.3e\n", r->ort_median_ms, r->ort_p90_ms,
                    r->ratio, r->max_rel_diff, r->max_elem_rel_diff);
        else
            fprintf(f, ",,,,,\n");
    }
    return fclose(f) == 0;
}

static void print_table(const options *o, const result *res, int n)
{
    printf("\n%-16s %7s %9s %10s %9s %8s %8s", "model", "GFLOP", "params", "median ms",
           "p90 ms", "GFLOP/s", "/sgemm");
    if (o->ort)
        printf(" %10s %9s %8s %11s %11s", "ORT ms", "ORT p90", "hs/ORT", "maxdiff/max",
               "elem rel");
    printf("\n");
    for (int i = 0; i < n; i++) {
        const result *r = &res[i];
        if (!r->ok) {
            printf("%-16s failed: %s\n", r->name, r->error);
            continue;
        }
        printf("%-16s %7.3f %8.2fM %10.2f %9.2f %8.2f %8.3f", r->name, r->gflop,
               (double)r->params / 1e6, r->median_ms, r->p90_ms, r->gflops, r->vs_sgemm);
        if (o->ort && r->ort_ok)
            printf(" %10.2f %9.2f %8.3f %11.2e %11.2e", r->ort_median_ms, r->ort_p90_ms,
                   r->ratio, r->max_rel_diff, r->max_elem_rel_diff);
        else if (o->ort)
            printf("  ORT failed: %s", r->ort_error);
        printf("\n");
    }
}

/* ---- main -------------------------------------------------------------------------------- */

static void usage(FILE *f)
{
    fprintf(f,
            "usage: bench_models [options]\n"
            "  --models DIR        model cache, written with hs_zoo_write (default out/models)\n"
            "  --models-list a,b   only these zoo models (default: all)\n"
            "  --repeat R          timed runs per model (default 10)\n"
            "  --warmup W          untimed runs first (default 2)\n"
            "  --gemm N            size of the square sgemm baseline (default 1024)\n"
            "  --seed S            input seed (default 42)\n"
            "  --json FILE         write results as JSON\n"
            "  --csv FILE          write results as CSV\n"
            "  --ort               also run ONNX Runtime (node + onnxruntime-node)\n"
            "  --ort-script FILE   default %s\n"
            "  --node PROGRAM      default node\n",
            HS_BENCH_ORT_SCRIPT);
}

/* Whether the comma-separated list holds name. */
static bool list_has(const char *list, const char *name)
{
    size_t len = strlen(name);
    for (const char *p = list; *p;) {
        size_t n = strcspn(p, ",");
        if (n == len && strncmp(p, name, len) == 0)
            return true;
        p += n + (p[n] == ',');
    }
    return false;
}

static bool parse_int(const char *s, int lo, int *out)
{
    char *end;
    errno = 0;
    long v = strtol(s, &end, 10);
    if (errno || *end || end == s || v < lo || v > 1000000)
        return false;
    *out = (int)v;
    return true;
}

int main(int argc, char **argv)
{
    options o = {.models_dir = "out/models", .repeat = 10, .warmup = 2, .gemm_n = 1024,
                 .seed = 42, .ort_script = HS_BENCH_ORT_SCRIPT, .node = "node"};
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
        bool ok = true;
        if (strcmp(a, "--ort") == 0)
            o.ort = true;
        else if (strcmp(a, "-h") == 0 || strcmp(a, "--help") == 0) {
            usage(stdout);
            return 0;
        } else if (!v)
            ok = false;
        else if (strcmp(a, "--models") == 0)
            o.models_dir = v, i++;
        else if (strcmp(a, "--models-list") == 0)
            o.models_list = v, i++;
        else if (strcmp(a, "--repeat") == 0)
            ok = parse_int(v, 1, &o.repeat), i++;
        else if (strcmp(a, "--warmup") == 0)
            ok = parse_int(v, 0, &o.warmup), i++;
        else if (strcmp(a, "--gemm") == 0)
            ok = parse_int(v, 16, &o.gemm_n), i++;
        else if (strcmp(a, "--seed") == 0) {
            int s;
            ok = parse_int(v, 0, &s), i++;
            o.seed = (uint64_t)s;
        } else if (strcmp(a, "--json") == 0)
            o.json_path = v, i++;
        else if (strcmp(a, "--csv") == 0)
            o.csv_path = v, i++;
        else if (strcmp(a, "--ort-script") == 0)
            o.ort_script = v, i++;
        else if (strcmp(a, "--node") == 0)
            o.node = v, i++;
        else
            ok = false;
        if (!ok) {
            fprintf(stderr, "bench_models: bad argument '%s%s%s'\n", a, v ? " " : "",
                    v ? v : "");
            usage(stderr);
            return 2;
        }
    }

    const char *const *zoo = hs_zoo_names();
    const char *names[MAX_MODELS];
    int n = 0;
    for (int i = 0; zoo[i] && n < MAX_MODELS; i++)
        if (!o.models_list || list_has(o.models_list, zoo[i]))
            names[n++] = zoo[i];
    for (const char *p = o.models_list; p && *p;) { /* every name asked for must exist */
        size_t len = strcspn(p, ",");
        bool found = false;
        for (int i = 0; zoo[i] && !found; i++)
            found = strlen(zoo[i]) == len && strncmp(p, zoo[i], len) == 0;
        if (!found && len) {
            fprintf(stderr, "bench_models: no zoo model '%.*s'\n", (int)len, p);
            return 2;
        }
        p += len + (p[len] == ',');
    }
    if (mkdir_p(o.models_dir) != 0) {
        fprintf(stderr, "bench_models: cannot create %s: %s\n", o.models_dir, strerror(errno));
        return 1;
    }
    if (o.ort && access(o.ort_script, R_OK) != 0) {
        fprintf(stderr, "bench_models: %s: %s (run scripts/setup_ort.sh, or --ort-script)\n",
                o.ort_script, strerror(errno));
        return 1;
    }

    hs_set_threads(1);
    const char *core = openblas_get_corename();
    int threads = openblas_get_num_threads();
    printf("bench_models: %d model%s, %d runs each after %d warm-up, 1 thread\n", n,
           n == 1 ? "" : "s", o.repeat, o.warmup);
    printf("OpenBLAS: core %s, %d thread%s, config '%s'\n", core, threads,
           threads == 1 ? "" : "s", openblas_get_config());
    printf("env: OPENBLAS_CORETYPE=%s OPENBLAS_L2_SIZE=%s\n",
           env_or("OPENBLAS_CORETYPE", "(unset)"), env_or("OPENBLAS_L2_SIZE", "(unset)"));
    fflush(stdout);

    fprintf(stderr, "sgemm %dx%dx%d baseline...\n", o.gemm_n, o.gemm_n, o.gemm_n);
    double gemm_ms;
    double gemm_gflops = sgemm_gflops(o.gemm_n, 7, &gemm_ms);
    printf("sgemm %dx%dx%d: median %.2f ms, %.2f GFLOP/s\n", o.gemm_n, o.gemm_n, o.gemm_n,
           gemm_ms, gemm_gflops);
    fflush(stdout);

    result res[MAX_MODELS];
    memset(res, 0, sizeof res);
    int failed = 0;
    for (int i = 0; i < n; i++) {
        fprintf(stderr, "[%d/%d] %s\n", i + 1, n, names[i]);
        bench_model(&o, names[i], gemm_gflops, &res[i]);
        failed += !res[i].ok || (o.ort && !res[i].ort_ok);
    }
    print_table(&o, res, n);
    for (int i = 0; o.ort && i < n; i++)
        if (res[i].ort_ok) {
            printf("ORT: onnxruntime-node %s, 1 intra-op and 1 inter-op thread, sequential, "
                   "graph optimization 'all'\n", res[i].ort_version);
            break;
        }
    if (o.ort)
        printf("hs/ORT: hotsplit latency over ORT's (below 1: hotsplit faster). maxdiff/max: "
               "max|hs-ort| / max|ort| over the output; elem rel: max |hs-ort| / "
               "max(|ort|, %.0e*max|ort|)\n", REL_FLOOR);

    if (o.json_path && !write_json(o.json_path, &o, core, threads, o.gemm_n, gemm_ms,
                                   gemm_gflops, res, n)) {
        fprintf(stderr, "bench_models: cannot write %s\n", o.json_path);
        return 1;
    }
    if (o.csv_path && !write_csv(o.csv_path, &o, core, res, n)) {
        fprintf(stderr, "bench_models: cannot write %s\n", o.csv_path);
        return 1;
    }
    return failed ? 1 : 0;
}
