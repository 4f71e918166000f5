/*
 * Solve time of the partitioner (hs_solve for each objective, hs_solve_pareto) on random
 * instances of 50 to 1000 nodes over 2 to 8 devices, set against the targets a re-plan must
 * meet to run between requests: <= 1 ms for latency and throughput and <= 10 ms for energy,
 * lifetime and load latency at 300 nodes x 8 devices. The Pareto front has no target; it
 * gets a time limit and reports "timeout" beyond it.
 *
 * Instances: node times from a per-node base, a per-device speed and per-node noise; cut bytes
 * from a random DAG of tensors with skip connections; a complete link graph; half the devices
 * on battery. Two scenarios: "free" (memory, rate and latency bound do not bind; lifetime and
 * load latency get a rate every plan sustains) and "memory" (no device holds the whole model,
 * all of them together hold 1.4 times it, so every plan must split it).
 *
 * Every cell (scenario, nodes, devices, objective) runs in a child process, killed after
 * --timeout seconds, so a slow cell cannot stall the run. The figure is the median of
 * --repeats solves (fewer when one solve alone takes more than a second).
 *
 * usage: bench_solver [--out DIR] [--repeats R] [--timeout SEC] [--seed S] [--quick]
 *                     [--only NODESxDEVICES]
 * Writes DIR/bench_solver.csv, DIR/bench_solver.json and DIR/bench_solver.png (gnuplot, if
 * installed); DIR defaults to out/bench. Progress goes to stderr, the table to stdout.
 */
#include <errno.h>
#include <math.h>
#include <poll.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "hotsplit/solver.h"
#include "bench_util.h"

#define N_SIZES 4
#define N_DEVS 3
#define N_KINDS (HS_OBJ_COUNT + 1) /* the five objectives, then the Pareto front */
#define KIND_PARETO HS_OBJ_COUNT
#define N_SCEN 2
#define MAX_REPEATS 64

static const int sizes[N_SIZES] = { 50, 100, 300, 1000 };
static const int devs[N_DEVS] = { 2, 4, 8 };
static const char *const scenarios[N_SCEN] = { "free", "memory" };

typedef struct options {
    const char *out_dir;
    int repeats;
    double timeout_s;
    uint64_t seed;
    bool quick;
    int only_nodes, only_devs; /* 0: every size */
} options;

typedef enum cell_status { CELL_OK = 0, CELL_TIMEOUT, CELL_ERROR, CELL_SKIPPED } cell_status;

/* What a child reports through its pipe. */
typedef struct cell {
    cell_status status;
    int runs;
    double median_ms, min_ms;
    int stages;      /* of the plan (objectives) */
    int front;       /* plans on the front (Pareto) */
    char error[HS_ERROR_MSG_MAX + 64];
} cell;

/* ---- timing and random numbers ----------------------------------------------------------- */

static double now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec * 1e3 + (double)ts.tv_nsec * 1e-6;
}

typedef struct rng {
    uint64_t s;
} rng;

static uint64_t rng_next(rng *r) /* splitmix64 */
{
    uint64_t z = (r->s += 0x9e3779b97f4a7c15ull);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
}

static double rng_unif(rng *r, double lo, double hi)
{
    return lo + (hi - lo) * ((double)(rng_next(r) >> 11) / 9007199254740992.0);
}

static double rng_logu(rng *r, double lo, double hi)
{
    return exp(rng_unif(r, log(lo), log(hi)));
}

/* ---- instances -------------------------------------------------------------------------- */

typedef struct instance {
    hs_cluster cluster;
    double *node_time, *cut, *weight, *live;
    hs_problem p;
    double rate;  /* a rate every plan sustains */
} instance;

static void instance_free(instance *in)
{
    free(in->node_time);
    free(in->cut);
    free(in->weight);
    free(in->live);
}

/* Returns false if out of memory. */
static bool instance_make(instance *in, int n, int D, bool bind_memory, uint64_t seed)
{
    memset(in, 0, sizeof *in);
    rng r = { seed };
    in->node_time = malloc(sizeof(double) * (size_t)(D * n));
    in->cut = calloc((size_t)n + 1, sizeof(double));
    in->weight = malloc(sizeof(double) * (size_t)n);
    in->live = malloc(sizeof(double) * (size_t)n);
    int *last_use = malloc(sizeof(int) * (size_t)(n + 1));
    double *size = malloc(sizeof(double) * (size_t)(n + 1));
    if (!in->node_time || !in->cut || !in->weight || !in->live || !last_use || !size) {
        free(last_use);
        free(size);
        instance_free(in);
        return false;
    }

    hs_cluster *c = &in->cluster;
    c->n_devices = D;
    c->source = 0;
    c->sink = 0;
    snprintf(c->path, sizeof c->path, "bench-%dx%d", n, D);
    double speed[HS_MAX_DEVICES];
    for (int d = 0; d < D; d++) {
        hs_device *v = &c->devices[d];
        snprintf(v->name, sizeof v->name, "dev%d", d);
        speed[d] = v->speed = d == 0 ? 1 : rng_logu(&r, 0.5, 8);
        v->memory_bytes = 1e15;
        double idle = rng_unif(&r, 0.5, 5);
        v->power = (hs_power){ idle, idle + rng_unif(&r, 2, 25), rng_unif(&r, 5, 100),
                               rng_unif(&r, 5, 100) };
        if (d % 2 == 0) { /* mixed: half the devices, the source among them, on battery */
            double floor = rng_unif(&r, 0.05, 0.2);
            v->battery = (hs_battery){ true, rng_logu(&r, 5, 100), rng_unif(&r, floor + 0.1, 1),
                                       floor };
        }
    }
    for (int a = 0; a < D; a++)
        for (int b = 0; b < D; b++)
            if (a != b)
                c->links[a][b] = (hs_link){ rng_logu(&r, 1e7, 1e9), rng_unif(&r, 1e-4, 3e-3) };

    /* A model of n nodes: about 50 ms on the reference machine in all. */
    double total_w = 0, max_live = 0;
    for (int i = 0; i < n; i++) {
        double base = rng_logu(&r, 0.1, 10) * 0.05 / n * 0.5;
        for (int d = 0; d < D; d++)
            in->node_time[(size_t)d * n + i] = base / speed[d] * rng_unif(&r, 0.8, 1.2);
        in->weight[i] = rng_unif(&r, 0, 1) < 0.3 ? 0 : rng_logu(&r, 1e3, 4e6);
        in->live[i] = rng_logu(&r, 1e4, 4e6);
        total_w += in->weight[i];
        max_live = fmax(max_live, in->live[i]);
    }
    /* Tensors: input (0) and the output of node i (i + 1); node i reads its predecessor's
     * output and, one time in four, a skip connection from up to 8 nodes back. */
    for (int t = 0; t <= n; t++) {
        size[t] = rng_logu(&r, 1e3, 2e6);
        last_use[t] = t - 1;
    }
    for (int i = 0; i < n; i++) {
        last_use[i] = i > last_use[i] ? i : last_use[i];
        if (i > 0 && rng_unif(&r, 0, 1) < 0.25) {
            int back = i - 1 - (int)(rng_next(&r) % 8);
            int t = back < 0 ? 0 : back;
            last_use[t] = i > last_use[t] ? i : last_use[t];
        }
    }
    last_use[n] = n;
    /* cut[k]: tensors produced before k (tensor t by node t - 1) and used at or after k, by a
     * sweep: tensor t is live over cuts [t, last_use[t]] */
    double *delta = calloc((size_t)n + 2, sizeof(double));
    if (!delta) {
        free(last_use);
        free(size);
        instance_free(in);
        return false;
    }
    for (int t = 0; t <= n; t++) {
        delta[t] += size[t];
        delta[last_use[t] + 1] -= size[t];
    }
    double run = 0;
    for (int k = 0; k <= n; k++)
        in->cut[k] = run += delta[k];
    free(delta);
    free(last_use);
    free(size);

    if (bind_memory) { /* each device 35-95% of the model, all together at least 140% */
        double lo = fmax(0.35, 1.4 / D), hi = fmin(0.95, lo + 0.3);
        for (int d = 0; d < D; d++)
            c->devices[d].memory_bytes = rng_unif(&r, lo, hi) * (total_w + max_live);
    }

    /* A rate every plan sustains: half the inverse of the slowest stage or link possible. */
    double worst = 0, max_cut = 0, min_bw = INFINITY;
    for (int d = 0; d < D; d++) {
        double t = 0;
        for (int i = 0; i < n; i++)
            t += in->node_time[(size_t)d * n + i];
        worst = fmax(worst, t);
    }
    for (int k = 0; k <= n; k++)
        max_cut = fmax(max_cut, in->cut[k]);
    for (int a = 0; a < D; a++)
        for (int b = 0; b < D; b++)
            if (a != b)
                min_bw = fmin(min_bw, c->links[a][b].bandwidth_bps);
    worst = fmax(worst, max_cut * 8 / min_bw);
    in->rate = 0.5 / worst;

    in->p = (hs_problem){ .n_nodes = n, .cluster = &in->cluster, .node_time = in->node_time,
                          .cut_bytes = in->cut, .weight_bytes = in->weight,
                          .live_bytes = in->live };
    return true;
}

static const char *kind_name(int kind)
{
    return kind == KIND_PARETO ? "pareto" : hs_objective_name((hs_objective)kind);
}

/* Lifetime and load latency need a rate; the others are timed without one. */
static hs_constraints constraints_for(const instance *in, int kind)
{
    hs_constraints c = { 0 };
    if (kind == HS_OBJ_LIFETIME || kind == HS_OBJ_LOAD_LATENCY)
        c.rate = in->rate;
    return c;
}

/* ---- one cell, in a child --------------------------------------------------------------- */

static cell run_cell(const instance *in, int kind, int repeats)
{
    cell out = { .status = CELL_OK };
    hs_constraints c = constraints_for(in, kind);
    double t[MAX_REPEATS];
    int runs = 0;
    double started = now_ms();
    for (int k = 0; k < repeats; k++) {
        hs_error err = { 0 };
        hs_status st;
        double t0 = now_ms();
        if (kind == KIND_PARETO) {
            hs_plan *front = NULL;
            int n_front = 0;
            st = hs_solve_pareto(&in->p, &c, &front, &n_front, &err);
            t[runs++] = now_ms() - t0;
            out.front = n_front;
            free(front);
        } else {
            hs_plan plan;
            st = hs_solve(&in->p, (hs_objective)kind, &c, &plan, &err);
            t[runs++] = now_ms() - t0;
            out.stages = st == HS_OK ? plan.n_stages : 0;
        }
        if (st != HS_OK) {
            out.status = CELL_ERROR;
            snprintf(out.error, sizeof out.error, "%s: %s", hs_strerror(st), err.msg);
            break;
        }
        /* slow solves: stop after 3 (or 1) once more than a second (or 5) has gone */
        double spent = now_ms() - started;
        if ((spent > 1000 && runs >= 3) || spent > 5000)
            break;
    }
    qsort(t, (size_t)runs, sizeof t[0], cmp_double);
    out.runs = runs;
    out.median_ms = t[runs / 2];
    out.min_ms = t[0];
    return out;
}

/* Forks a child that builds the instance and times the cell; kills it after timeout_s. */
static cell run_cell_isolated(int n, int D, int scen, int kind, const options *o)
{
    cell out = { .status = CELL_ERROR };
    int fd[2];
    if (pipe(fd) != 0) {
        snprintf(out.error, sizeof out.error, "pipe: %s", strerror(errno));
        return out;
    }
    fflush(NULL);
    pid_t pid = fork();
    if (pid < 0) {
        snprintf(out.error, sizeof out.error, "fork: %s", strerror(errno));
        close(fd[0]);
        close(fd[1]);
        return out;
    }
    if (pid == 0) {
        close(fd[0]);
        instance in;
        cell res = { .status = CELL_ERROR, .error = "out of memory building the instance" };
        uint64_t seed = o->seed * 1000003u + (uint64_t)n * 131 + (uint64_t)D * 7 + (uint64_t)scen;
        if (instance_make(&in, n, D, scen == 1, seed)) {
            res = run_cell(&in, kind, o->repeats);
            instance_free(&in);
        }
        ssize_t w = write(fd[1], &res, sizeof res);
        _exit(w == (ssize_t)sizeof res ? 0 : 1);
    }
    close(fd[1]);
    struct pollfd pfd = { .fd = fd[0], .events = POLLIN };
    int ready = poll(&pfd, 1, (int)(o->timeout_s * 1000));
    if (ready == 1) {
        ssize_t got = read(fd[0], &out, sizeof out);
        if (got != (ssize_t)sizeof out) {
            out = (cell){ .status = CELL_ERROR };
            snprintf(out.error, sizeof out.error, "the child died without a result");
        }
    } else {
        kill(pid, SIGKILL);
        out = (cell){ .status = CELL_TIMEOUT };
    }
    close(fd[0]);
    int wstatus;
    waitpid(pid, &wstatus, 0);
    return out;
}

/* ---- output ----------------------------------------------------------------------------- */

static int mkdir_p(const char *path)
{
    char buf[1024];
    snprintf(buf, sizeof buf, "%s", path);
    for (char *q = buf + 1; *q; q++)
        if (*q == '/') {
            *q = '\0';
            if (mkdir(buf, 0777) != 0 && errno != EEXIST)
                return -1;
            *q = '/';
        }
    return mkdir(buf, 0777) != 0 && errno != EEXIST ? -1 : 0;
}

/* Target in ms at 300 nodes x 8 devices, or 0 for none. */
static double target_ms(int kind)
{
    if (kind == HS_OBJ_LATENCY || kind == HS_OBJ_THROUGHPUT)
        return 1;
    return kind == KIND_PARETO ? 0 : 10;
}

static const char *status_name(cell_status s)
{
    static const char *const names[] = { "ok", "timeout", "error", "skipped" };
    return names[s];
}

static void format_cell(const cell *c, char *buf, size_t size)
{
    if (c->status == CELL_OK)
        snprintf(buf, size, "%.3f", c->median_ms);
    else
        snprintf(buf, size, "%s", status_name(c->status));
}

typedef cell results[N_SCEN][N_SIZES][N_DEVS][N_KINDS];

static void print_table(FILE *f, results *res, const options *o)
{
    fprintf(f, "\nhs_solve / hs_solve_pareto: median solve time in ms (repeats %d, time limit "
            "%.0f s per cell)\n", o->repeats, o->timeout_s);
    for (int sc = 0; sc < N_SCEN; sc++) {
        fprintf(f, "\nscenario %s%s\n", scenarios[sc],
                sc == 1 ? " (no device holds the model; all hold 1.4x it)" : " (nothing binds)");
        fprintf(f, "%6s %4s", "nodes", "devs");
        for (int k = 0; k < N_KINDS; k++)
            fprintf(f, " %13s", kind_name(k));
        fprintf(f, "\n");
        for (int si = 0; si < N_SIZES; si++)
            for (int di = 0; di < N_DEVS; di++) {
                fprintf(f, "%6d %4d", sizes[si], devs[di]);
                for (int k = 0; k < N_KINDS; k++) {
                    char buf[32];
                    format_cell(&(*res)[sc][si][di][k], buf, sizeof buf);
                    fprintf(f, " %13s", buf);
                }
                fprintf(f, "\n");
            }
    }
    fprintf(f, "\ntargets at 300 nodes x 8 devices:\n");
    for (int sc = 0; sc < N_SCEN; sc++)
        for (int k = 0; k < N_KINDS; k++) {
            if (!target_ms(k))
                continue;
            const cell *c = &(*res)[sc][2][2][k];
            char buf[32];
            format_cell(c, buf, sizeof buf);
            const char *verdict = c->status == CELL_SKIPPED ? "not run"
                                  : c->status == CELL_OK && c->median_ms <= target_ms(k)
                                      ? "meets"
                                      : "MISSES";
            fprintf(f, "  %-7s %-13s %10s ms   target <= %2.0f ms   %s\n", scenarios[sc],
                    kind_name(k), buf, target_ms(k), verdict);
        }
    for (int sc = 0; sc < N_SCEN; sc++)
        for (int si = 0; si < N_SIZES; si++)
            for (int di = 0; di < N_DEVS; di++)
                for (int k = 0; k < N_KINDS; k++) {
                    const cell *c = &(*res)[sc][si][di][k];
                    if (c->status == CELL_ERROR)
                        fprintf(f, "error: %s %dx%d %s: %s\n", scenarios[sc], sizes[si],
                                devs[di], kind_name(k), c->error);
                }
}

static int write_files(results *res, const options *o)
{
    char path[1200];
    snprintf(path, sizeof path, "%s/bench_solver.csv", o->out_dir);
    FILE *csv = fopen(path, "w");
    snprintf(path, sizeof path, "%s/bench_solver.json", o->out_dir);
    FILE *json = fopen(path, "w");
    snprintf(path, sizeof path, "%s/bench_solver.dat", o->out_dir);
    FILE *dat = fopen(path, "w");
    if (!csv || !json || !dat) {
        fprintf(stderr, "bench_solver: cannot write into %s: %s\n", o->out_dir, strerror(errno));
        if (csv)
            fclose(csv);
        if (json)
            fclose(json);
        if (dat)
            fclose(dat);
        return -1;
    }
    fprintf(csv, "scenario,nodes,devices,objective,status,median_ms,min_ms,runs,stages,front,"
            "target_ms\n");
    fprintf(json, "{\n  \"repeats\": %d,\n  \"timeout_s\": %g,\n  \"seed\": %llu,\n"
            "  \"results\": [\n", o->repeats, o->timeout_s, (unsigned long long)o->seed);
    bool first = true;
    for (int sc = 0; sc < N_SCEN; sc++)
        for (int si = 0; si < N_SIZES; si++)
            for (int di = 0; di < N_DEVS; di++)
                for (int k = 0; k < N_KINDS; k++) {
                    const cell *c = &(*res)[sc][si][di][k];
                    bool ok = c->status == CELL_OK;
                    double tgt = si == 2 && di == 2 ? target_ms(k) : 0;
                    fprintf(csv, "%s,%d,%d,%s,%s,", scenarios[sc], sizes[si], devs[di],
                            kind_name(k), status_name(c->status));
                    if (ok)
                        fprintf(csv, "%.6f,%.6f,%d,%d,%d,", c->median_ms, c->min_ms, c->runs,
                                c->stages, c->front);
                    else
                        fprintf(csv, ",,,,,");
                    if (tgt)
                        fprintf(csv, "%g", tgt);
                    fprintf(csv, "\n");

                    fprintf(json, "%s    {\"scenario\": \"%s\", \"nodes\": %d, \"devices\": %d, "
                            "\"objective\": \"%s\", \"status\": \"%s\"", first ? "" : ",\n",
                            scenarios[sc], sizes[si], devs[di], kind_name(k),
                            status_name(c->status));
                    first = false;
                    if (ok)
                        fprintf(json, ", \"median_ms\": %.6f, \"min_ms\": %.6f, \"runs\": %d, "
                                "\"stages\": %d, \"front\": %d", c->median_ms, c->min_ms,
                                c->runs, c->stages, c->front);
                    if (tgt)
                        fprintf(json, ", \"target_ms\": %g", tgt);
                    fprintf(json, "}");
                }
    fprintf(json, "\n  ]\n}\n");
    /* gnuplot data: one block per (scenario, objective, devices), in that order */
    for (int sc = 0; sc < N_SCEN; sc++)
        for (int k = 0; k < N_KINDS; k++)
            for (int di = 0; di < N_DEVS; di++) {
                fprintf(dat, "# %s %s %d devices\n", scenarios[sc], kind_name(k), devs[di]);
                int points = 0;
                for (int si = 0; si < N_SIZES; si++) {
                    const cell *c = &(*res)[sc][si][di][k];
                    if (c->status == CELL_OK) {
                        fprintf(dat, "%d %.6f\n", sizes[si], fmax(c->median_ms, 1e-4));
                        points++;
                    }
                }
                if (!points) /* keep the block index; gnuplot skips the point */
                    fprintf(dat, "%d NaN\n", sizes[0]);
                fprintf(dat, "\n\n");
            }
    fclose(csv);
    fclose(json);
    fclose(dat);
    return 0;
}

/* One panel per objective (2 x 3), log-log solve time against nodes, one line per device
 * count: solid for the free scenario, dashed for the memory one; the targets as grey lines. */
static void plot(const options *o)
{
    char path[1200];
    snprintf(path, sizeof path, "%s/bench_solver.gp", o->out_dir);
    FILE *gp = fopen(path, "w");
    if (!gp)
        return;
    fprintf(gp, "set terminal pngcairo size 1500,900 font ',10'\n"
                "set output '%s/bench_solver.png'\n"
                "set multiplot layout 2,3 title 'hotsplit solver: median solve time (solid: "
                "free, dashed: binding memory)'\n"
                "set logscale xy\nset xlabel 'nodes'\nset ylabel 'ms'\nset grid\n"
                "set xtics (50, 100, 300, 1000)\nset xrange [40:1250]\nset key top left\n",
            o->out_dir);
    for (int k = 0; k < N_KINDS; k++) {
        fprintf(gp, "set title '%s'\nunset arrow\n", kind_name(k));
        if (target_ms(k))
            fprintf(gp, "set arrow from 40,%g to 1250,%g nohead lc 'red' dt 2 lw 1.5\n"
                        "set arrow from 300,%g to 300,%g nohead lc 'red' dt 2 lw 1.5\n",
                    target_ms(k), target_ms(k), target_ms(k) / 3, target_ms(k) * 3);
        fprintf(gp, "plot ");
        if (target_ms(k))
            fprintf(gp, "NaN with lines lc 'red' dt 2 title 'target %g ms at 300 x 8', ",
                    target_ms(k));
        for (int sc = 0; sc < N_SCEN; sc++)
            for (int di = 0; di < N_DEVS; di++) {
                int index = (sc * N_KINDS + k) * N_DEVS + di;
                fprintf(gp, "%s'%s/bench_solver.dat' index %d using 1:2 with linespoints lc %d "
                        "dt %d pt 7 title '%s'", sc || di ? ", " : "", o->out_dir, index, di + 1,
                        sc ? 2 : 1, sc ? "" : (di == 0 ? "2 devices" : di == 1 ? "4 devices"
                                                                                : "8 devices"));
            }
        fprintf(gp, "\n");
    }
    fprintf(gp, "unset multiplot\n");
    fclose(gp);
    char cmd[1400];
    snprintf(cmd, sizeof cmd, "gnuplot '%s/bench_solver.gp' 2>&1", o->out_dir);
    int rc = system(cmd);
    if (rc != 0)
        fprintf(stderr, "bench_solver: gnuplot failed (%d); the data is in %s/bench_solver.dat\n",
                rc, o->out_dir);
    else
        fprintf(stderr, "bench_solver: wrote %s/bench_solver.png\n", o->out_dir);
}

/* ---- main ------------------------------------------------------------------------------- */

static void usage(FILE *f)
{
    fprintf(f, "usage: bench_solver [--out DIR] [--repeats R] [--timeout SEC] [--seed S] "
            "[--quick]\n"
            "  --out DIR      where the CSV, JSON and PNG go (default out/bench)\n"
            "  --repeats R    solves per cell, the median is reported (default 7, at most %d)\n"
            "  --timeout SEC  time limit of one cell (default 20)\n"
            "  --seed S       instance seed (default 1)\n"
            "  --quick        3 repeats, 5 s limit\n"
            "  --only NxD     time only N nodes x D devices (others are reported as skipped)\n",
            MAX_REPEATS);
}

int main(int argc, char **argv)
{
    options o = { .out_dir = "out/bench", .repeats = 7, .timeout_s = 20, .seed = 1 };
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        bool has = i + 1 < argc;
        if (strcmp(a, "--out") == 0 && has)
            o.out_dir = argv[++i];
        else if (strcmp(a, "--repeats") == 0 && has)
            o.repeats = atoi(argv[++i]);
        else if (strcmp(a, "--timeout") == 0 && has)
            o.timeout_s = atof(argv[++i]);
        else if (strcmp(a, "--seed") == 0 && has)
            o.seed = strtoull(argv[++i], NULL, 10);
        else if (strcmp(a, "--quick") == 0)
            o.quick = true;
        else if (strcmp(a, "--only") == 0 && has &&
                 sscanf(argv[++i], "%dx%d", &o.only_nodes, &o.only_devs) == 2)
            continue;
        else if (strcmp(a, "--help") == 0 || strcmp(a, "-h") == 0) {
            usage(stdout);
            return 0;
        } else {
            fprintf(stderr, "bench_solver: unknown or incomplete option '%s'\n", a);
            usage(stderr);
            return 2;
        }
    }
    if (o.quick) {
        o.repeats = 3;
        o.timeout_s = 5;
    }
    if (o.repeats < 1 || o.repeats > MAX_REPEATS || !(o.timeout_s > 0)) {
        fprintf(stderr, "bench_solver: --repeats must be 1..%d and --timeout > 0\n",
                MAX_REPEATS);
        return 2;
    }
    if (mkdir_p(o.out_dir) != 0) {
        fprintf(stderr, "bench_solver: cannot create %s: %s\n", o.out_dir, strerror(errno));
        return 1;
    }

    static results res;
    const int total = N_SCEN * N_SIZES * N_DEVS * N_KINDS;
    int done = 0;
    for (int sc = 0; sc < N_SCEN; sc++)
        for (int k = 0; k < N_KINDS; k++)
            for (int di = 0; di < N_DEVS; di++)
                for (int si = 0; si < N_SIZES; si++) {
                    cell *c = &res[sc][si][di][k];
                    done++;
                    /* a cell that timed out with fewer nodes or devices will time out here */
                    bool skip = (si > 0 && res[sc][si - 1][di][k].status == CELL_TIMEOUT) ||
                                (di > 0 && res[sc][si][di - 1][k].status == CELL_TIMEOUT);
                    if (o.only_nodes && (sizes[si] != o.only_nodes || devs[di] != o.only_devs)) {
                        *c = (cell){ .status = CELL_SKIPPED };
                        continue;
                    }
                    if (skip) {
                        *c = (cell){ .status = CELL_TIMEOUT };
                        fprintf(stderr, "[%3d/%d] %-6s %4d x %d %-13s timeout (a smaller size "
                                "timed out)\n", done, total, scenarios[sc], sizes[si], devs[di],
                                kind_name(k));
                        continue;
                    }
                    double t0 = now_ms();
                    *c = run_cell_isolated(sizes[si], devs[di], sc, k, &o);
                    char buf[32];
                    format_cell(c, buf, sizeof buf);
                    fprintf(stderr, "[%3d/%d] %-6s %4d x %d %-13s %10s ms  (%d runs, %.1f s)%s%s\n",
                            done, total, scenarios[sc], sizes[si], devs[di], kind_name(k), buf,
                            c->runs, (now_ms() - t0) / 1e3, c->status == CELL_ERROR ? " " : "",
                            c->status == CELL_ERROR ? c->error : "");
                }
    print_table(stdout, &res, &o);
    if (write_files(&res, &o) != 0)
        return 1;
    fflush(stdout);
    plot(&o);
    printf("\nwrote %s/bench_solver.csv, %s/bench_solver.json, %s/bench_solver.png\n", o.out_dir,
           o.out_dir, o.out_dir);
    return 0;
}
