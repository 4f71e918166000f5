/*
 * The cost model checked against measurement: for each zoo model, a fresh profile (the
 * reference, measured in this run) predicts the time of each stage of 2-, 3- and 4-stage
 * plans as the sum of its nodes' profiled medians; each stage then runs as its own hs_exec,
 * the stages in sequence in this process (speed factor 1), in runs separate from the
 * profiling ones, and the predicted stage time is set against the measured median. The
 * figure of merit is the median absolute percentage error over stages (target <= 15%).
 *
 * Split points: near each equal-time boundary (within 10% of the model's total), the cut
 * with the fewest bytes. With --cluster (default configs/clusters/loopback2.yaml, if it
 * exists), hs_solve()'s throughput plan for that cluster is checked too.
 *
 * usage: bench_predict [--models DIR] [--models-list a,b] [--out DIR] [--repeat R]
 *                      [--warmup W] [--profile-repeat R] [--cluster FILE]
 * Missing models are written into DIR (default out/models) with hs_zoo_write(). Results go
 * to DIR/predict.csv and DIR/predict.json (default out/bench).
 */
#include <errno.h>
#include <getopt.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <cblas.h>

#include "hotsplit/cost.h"
#include "bench_util.h"

#ifndef HS_BENCH_CLUSTER
#define HS_BENCH_CLUSTER "configs/clusters/loopback2.yaml"
#endif

#define ZOO_SEED 1
#define MAX_STAGES 8
#define MAX_ROWS 512

typedef struct options {
    const char *models_dir, *models_list, *out_dir, *cluster;
    int repeat, warmup, profile_repeat;
} options;

typedef struct row {
    const char *model;
    char plan[32];     /* "2-stage", ..., "throughput:loopback2" */
    int stage, first, last;
    double predicted_ms, measured_ms, error; /* error: |pred - meas| / meas */
} row;

static row rows[MAX_ROWS];
static int n_rows;

static int mkdir_p(const char *path)
{
    char buf[1024];
    snprintf(buf, sizeof buf, "%s", path);
    for (char *s = buf + 1; *s; s++) {
        if (*s != '/')
            continue;
        *s = '\0';
        if (mkdir(buf, 0777) != 0 && errno != EEXIST)
            return -1;
        *s = '/';
    }
    return mkdir(buf, 0777) != 0 && errno != EEXIST ? -1 : 0;
}

static hs_graph *load_model(const options *o, const char *name)
{
    char path[1024];
    snprintf(path, sizeof path, "%s/%s.onnx", o->models_dir, name);
    hs_error err = {0};
    if (access(path, R_OK) != 0) {
        char tmp[1100];
        snprintf(tmp, sizeof tmp, "%s.%d.tmp", path, (int)getpid());
        if (hs_zoo_write(name, tmp, ZOO_SEED, &err) != HS_OK || rename(tmp, path) != 0) {
            fprintf(stderr, "bench_predict: %s: %s\n", path, err.msg[0] ? err.msg : "rename");
            return NULL;
        }
    }
    hs_graph *g;
    if (hs_graph_load_onnx(path, NULL, &g, &err) != HS_OK) {
        fprintf(stderr, "bench_predict: %s\n", err.msg);
        return NULL;
    }
    return g;
}

/* Split points for `stages` stages (see the top of the file). bounds[0] = 0, [stages] = n. */
static void plan_stages(const hs_graph *g, const double *t, int stages, int *bounds)
{
    int n = hs_graph_node_count(g);
    double *cum = malloc(((size_t)n + 1) * sizeof *cum);
    cum[0] = 0;
    for (int i = 0; i < n; i++)
        cum[i + 1] = cum[i] + t[i];
    double total = cum[n];
    bounds[0] = 0;
    for (int s = 1; s < stages; s++) {
        double target = total * s / stages;
        int best = -1;
        for (int k = bounds[s - 1] + 1; k <= n - (stages - s); k++) {
            if (fabs(cum[k] - target) > 0.1 * total)
                continue;
            if (best < 0 || hs_graph_cut_bytes(g, k - 1) < hs_graph_cut_bytes(g, best - 1))
                best = k;
        }
        if (best < 0) {
            best = bounds[s - 1] + 1;
            for (int k = best; k <= n - (stages - s); k++)
                if (fabs(cum[k] - target) < fabs(cum[best] - target))
                    best = k;
        }
        bounds[s] = best;
    }
    bounds[stages] = n;
    free(cum);
}

/* Runs the stages [bounds[s], bounds[s+1]) in sequence, each its own hs_exec, warmup + repeat
 * times; measured[s] = median wall seconds of stage s. */
static int measure_stages(const hs_graph *g, const int *bounds, int stages,
                          const options *o, const hs_tensor *input, double *measured)
{
    hs_exec *x[MAX_STAGES] = {0};
    hs_error err = {0};
    double *samples = malloc((size_t)stages * (size_t)o->repeat * sizeof *samples);
    int rc = -1;
    for (int s = 0; s < stages; s++)
        if (hs_exec_new(g, bounds[s], bounds[s + 1], &x[s], &err) != HS_OK)
            goto done;
    for (int r = 0; r < o->warmup + o->repeat; r++) {
        hs_tensor cur[64], next[64];
        int n_cur = 1;
        cur[0] = *input;
        for (int s = 0; s < stages; s++) {
            int n_next = hs_exec_output_count(x[s]);
            if (n_next > 64) {
                snprintf(err.msg, sizeof err.msg, "cut with %d tensors", n_next);
                goto done;
            }
            double t0 = now_s();
            if (hs_exec_run(x[s], cur, n_cur, next, n_next, &err) != HS_OK)
                goto done;
            if (r >= o->warmup)
                samples[(size_t)s * (size_t)o->repeat + (size_t)(r - o->warmup)] = now_s() - t0;
            memcpy(cur, next, (size_t)n_next * sizeof *next);
            n_cur = n_next;
        }
    }
    for (int s = 0; s < stages; s++)
        measured[s] = median(samples + (size_t)s * (size_t)o->repeat, o->repeat);
    rc = 0;
done:
    if (rc)
        fprintf(stderr, "bench_predict: %s\n", err.msg);
    for (int s = 0; s < stages; s++)
        hs_exec_free(x[s]);
    free(samples);
    return rc;
}

static void check_plan(const char *model, const char *plan, const hs_graph *g, const double *t,
                       const int *bounds, int stages, const options *o, const hs_tensor *in)
{
    double measured[MAX_STAGES];
    if (measure_stages(g, bounds, stages, o, in, measured) != 0)
        return;
    for (int s = 0; s < stages && n_rows < MAX_ROWS; s++) {
        row *r = &rows[n_rows++];
        r->model = model;
        snprintf(r->plan, sizeof r->plan, "%s", plan);
        r->stage = s;
        r->first = bounds[s];
        r->last = bounds[s + 1];
        double pred = 0;
        for (int i = bounds[s]; i < bounds[s + 1]; i++)
            pred += t[i];
        r->predicted_ms = pred * 1e3;
        r->measured_ms = measured[s] * 1e3;
        r->error = fabs(pred - measured[s]) / measured[s];
        printf("  %-22s stage %d [%3d,%3d)  predicted %9.3f ms  measured %9.3f ms  %+6.1f%%\n",
               plan, s, r->first, r->last, r->predicted_ms, r->measured_ms,
               100 * (pred / measured[s] - 1));
    }
}

/* The throughput plan of hs_solve() for the cluster, as node ranges (empty stages dropped). */
static int cluster_plan(const hs_graph *g, const hs_profile *p, const char *path, int *bounds)
{
    if (access(path, R_OK) != 0)
        return 0;
    static hs_cluster c;
    hs_error err = {0};
    hs_cost_model *m = NULL;
    hs_problem pr;
    hs_plan plan;
    hs_constraints cons = {0};
    int stages = 0;
    if (hs_cluster_load(path, &c, &err) != HS_OK ||
        hs_cost_model_new(g, &c, p, &m, &err) != HS_OK || hs_cost_problem(m, &pr, &err) != HS_OK ||
        hs_solve(&pr, HS_OBJ_THROUGHPUT, &cons, &plan, &err) != HS_OK) {
        fprintf(stderr, "bench_predict: %s: %s (cluster plan skipped)\n", path, err.msg);
        hs_cost_model_free(m);
        return 0;
    }
    bounds[0] = 0;
    for (int s = 0; s < plan.n_stages && stages < MAX_STAGES; s++)
        if (plan.stages[s].last > plan.stages[s].first)
            bounds[++stages] = plan.stages[s].last;
    hs_cost_model_free(m);
    return stages;
}

static double model_median(const char *model)
{
    double e[MAX_ROWS];
    int n = 0;
    for (int k = 0; k < n_rows; k++)
        if (rows[k].model == model)
            e[n++] = rows[k].error;
    return median(e, n);
}

static void write_results(const options *o, const char *const *models, int n_models,
                          double overall, const char *core, int threads)
{
    char path[1100];
    snprintf(path, sizeof path, "%s/predict.csv", o->out_dir);
    FILE *f = fopen(path, "w");
    if (f) {
        fprintf(f, "model,plan,stage,first,last,predicted_ms,measured_ms,abs_error\n");
        for (int k = 0; k < n_rows; k++)
            fprintf(f, "%s,%s,%d,%d,%d,%.6f,%.6f,%.6f\n", rows[k].model, rows[k].plan,
                    rows[k].stage, rows[k].first, rows[k].last, rows[k].predicted_ms,
                    rows[k].measured_ms, rows[k].error);
        fclose(f);
    } else {
        fprintf(stderr, "bench_predict: %s: %s\n", path, strerror(errno));
    }
    snprintf(path, sizeof path, "%s/predict.json", o->out_dir);
    f = fopen(path, "w");
    if (!f) {
        fprintf(stderr, "bench_predict: %s: %s\n", path, strerror(errno));
        return;
    }
    fprintf(f, "{\"blas_core\": \"%s\", \"threads\": %d, \"repeat\": %d, \"warmup\": %d, "
               "\"profile_repeat\": %d,\n \"median_abs_error\": %.6f,\n \"models\": [",
            core, threads, o->repeat, o->warmup, o->profile_repeat, overall);
    for (int m = 0; m < n_models; m++)
        fprintf(f, "%s\n  {\"model\": \"%s\", \"median_abs_error\": %.6f}", m ? "," : "",
                models[m], model_median(models[m]));
    fprintf(f, "],\n \"stages\": [");
    for (int k = 0; k < n_rows; k++)
        fprintf(f, "%s\n  {\"model\": \"%s\", \"plan\": \"%s\", \"stage\": %d, \"first\": %d, "
                   "\"last\": %d, \"predicted_ms\": %.6f, \"measured_ms\": %.6f, "
                   "\"abs_error\": %.6f}",
                k ? "," : "", rows[k].model, rows[k].plan, rows[k].stage, rows[k].first,
                rows[k].last, rows[k].predicted_ms, rows[k].measured_ms, rows[k].error);
    fprintf(f, "\n]}\n");
    fclose(f);
}

static void usage(FILE *f)
{
    fprintf(f, "usage: bench_predict [--models DIR] [--models-list a,b] [--out DIR] "
               "[--repeat R] [--warmup W] [--profile-repeat R] [--cluster FILE]\n");
}

int main(int argc, char **argv)
{
    options o = {.models_dir = "out/models", .out_dir = "out/bench", .cluster = HS_BENCH_CLUSTER,
                 .repeat = 15, .warmup = 3, .profile_repeat = 15};
    static const struct option opts[] = {{"models", required_argument, 0, 'm'},
                                         {"models-list", required_argument, 0, 'l'},
                                         {"out", required_argument, 0, 'o'},
                                         {"repeat", required_argument, 0, 'r'},
                                         {"warmup", required_argument, 0, 'w'},
                                         {"profile-repeat", required_argument, 0, 'p'},
                                         {"cluster", required_argument, 0, 'c'},
                                         {"help", no_argument, 0, 'h'},
                                         {0, 0, 0, 0}};
    int c;
    opterr = 0;
    while ((c = getopt_long(argc, argv, ":m:l:o:r:w:p:c:h", opts, NULL)) != -1) {
        switch (c) {
        case 'm': o.models_dir = optarg; break;
        case 'l': o.models_list = optarg; break;
        case 'o': o.out_dir = optarg; break;
        case 'r': o.repeat = atoi(optarg); break;
        case 'w': o.warmup = atoi(optarg); break;
        case 'p': o.profile_repeat = atoi(optarg); break;
        case 'c': o.cluster = optarg; break;
        case 'h': usage(stdout); return 0;
        default: usage(stderr); return 2;
        }
    }
    if (optind != argc || o.repeat < 1 || o.warmup < 0 || o.profile_repeat < 1) {
        usage(stderr);
        return 2;
    }
    if (mkdir_p(o.models_dir) != 0 || mkdir_p(o.out_dir) != 0) {
        fprintf(stderr, "bench_predict: cannot create %s or %s\n", o.models_dir, o.out_dir);
        return 1;
    }
    hs_set_threads(1);
    const char *core = openblas_get_corename();
    int threads = openblas_get_num_threads();
    printf("OpenBLAS core: %s, threads: %d\n", core, threads);
    printf("stage runs: %d warm-up + %d timed; profiles: 3 warm-up + %d timed (separate runs)\n",
           o.warmup, o.repeat, o.profile_repeat);

    const char *models[64];
    int n_models = 0;
    char *list = NULL;
    if (o.models_list) {
        list = strdup(o.models_list);
        for (char *tok = strtok(list, ","); tok && n_models < 64; tok = strtok(NULL, ","))
            models[n_models++] = tok;
    } else {
        for (const char *const *z = hs_zoo_names(); *z && n_models < 64; z++)
            models[n_models++] = *z;
    }

    for (int m = 0; m < n_models; m++) {
        hs_graph *g = load_model(&o, models[m]);
        if (!g)
            continue;
        printf("%s\n", models[m]);
        hs_profile *p;
        hs_error err = {0};
        if (hs_profile_measure(g, 3, o.profile_repeat, NULL, NULL, &p, &err) != HS_OK) {
            fprintf(stderr, "bench_predict: %s\n", err.msg);
            hs_graph_free(g);
            continue;
        }
        int n = hs_graph_node_count(g);
        double *t = malloc((size_t)n * sizeof *t), total = 0;
        for (int i = 0; i < n; i++)
            total += t[i] = hs_profile_node_time(p, g, i);
        printf("  profile: %d nodes, %.3f ms in total\n", n, total * 1e3);
        fflush(stdout);
        hs_tensor in;
        hs_graph_input(g, 0, &in);
        float *data = malloc((size_t)hs_tensor_numel(&in) * sizeof *data);
        for (int64_t e = 0; e < hs_tensor_numel(&in); e++)
            data[e] = (float)((e * 7919) % 1000) / 500.0f - 1.0f;
        in.data = data;
        for (int stages = 2; stages <= 4; stages++) {
            int bounds[MAX_STAGES + 1];
            char name[32];
            plan_stages(g, t, stages, bounds);
            snprintf(name, sizeof name, "%d-stage", stages);
            check_plan(models[m], name, g, t, bounds, stages, &o, &in);
        }
        int bounds[MAX_STAGES + 1];
        int stages = cluster_plan(g, p, o.cluster, bounds);
        if (stages > 0) {
            const char *base = strrchr(o.cluster, '/');
            char name[32];
            snprintf(name, sizeof name, "throughput:%.18s", base ? base + 1 : o.cluster);
            check_plan(models[m], name, g, t, bounds, stages, &o, &in);
        }
        printf("  %s: median |error| %.1f%%\n", models[m], 100 * model_median(models[m]));
        free(data);
        free(t);
        hs_profile_free(p);
        hs_graph_free(g);
    }

    double all[MAX_ROWS];
    for (int k = 0; k < n_rows; k++)
        all[k] = rows[k].error;
    double overall = median(all, n_rows);
    printf("\nmedian |predicted - measured| / measured over stages\n");
    for (int m = 0; m < n_models; m++)
        printf("  %-16s %6.1f%%\n", models[m], 100 * model_median(models[m]));
    printf("  %-16s %6.1f%%  (%d stages; target <= 15%%)\n", "overall", 100 * overall, n_rows);
    write_results(&o, models, n_models, overall, core, threads);
    printf("results: %s/predict.csv, %s/predict.json\n", o.out_dir, o.out_dir);
    free(list);
    return 0;
}
