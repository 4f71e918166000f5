/*
 * What two cores give a 2-stage split of a model with no runtime at all: stage [0, CUT) and
 * stage [CUT, n) run flat out in one process on two threads pinned to CPUs 0 and 1, each on
 * a fixed input (the second stage on the first stage's output), and the slower stage's rate
 * is set against one thread running the whole model on CPU 0. This is the ceiling
 * bench/pipeline.sh holds the runtime's pipeline to: same kernels, same cut, no transport,
 * no coordinator, no load generator. Cores that share caches or memory bandwidth (a VM's
 * host) put it below 2; smaller per-stage working sets can put it above.
 *
 * The limit has two parts, and each round measures both: what two cores give two copies of
 * the whole model at once ("copies": the machine's own scaling, no split at all), and how
 * evenly the cut shares the work out when both stages run ("balance": the mean stage time
 * over the slower one's). A limit under the target with copies near 2 is the cut's to fix; a
 * copies ratio under it is the machine's.
 *
 * One round is SECONDS of the whole model, SECONDS of two copies of it at once, then SECONDS
 * of the two stages at once; the median round's ratios are printed last, as "copies C",
 * "balance B" and "limit R lo LO hi HI" (with the bootstrap 95% interval of the limit's
 * median). Each round line shows the progress.
 *
 * usage: bench_stages MODEL.onnx CUT [--rounds N] [--seconds S]
 */
#define _GNU_SOURCE
#include <getopt.h>
#include <pthread.h>
#include <sched.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "hotsplit/core.h"
#include "bench_util.h"

#define MAX_CUT 64

typedef struct stage_job {
    hs_exec *x;
    const hs_tensor *in;
    int n_in, cpu;
    double seconds;            /* how long to run */
    long runs;
    double elapsed;            /* from the first run's start to the last run's end */
    hs_status status;
    hs_error err;
} stage_job;

/* Runs job->x on its input for job->seconds, pinned to job->cpu; counts the runs. */
static void *run_stage(void *arg)
{
    stage_job *j = arg;
    cpu_set_t set;
    CPU_ZERO(&set);
    CPU_SET(j->cpu, &set);
    pthread_setaffinity_np(pthread_self(), sizeof set, &set);
    hs_tensor out[MAX_CUT];
    int n_out = hs_exec_output_count(j->x);
    double start = now_s(), t = start;
    j->runs = 0;
    j->status = HS_OK;
    while (t < start + j->seconds && j->status == HS_OK) {
        j->status = hs_exec_run(j->x, j->in, j->n_in, out, n_out, &j->err);
        j->runs++;
        t = now_s();
    }
    j->elapsed = t - start; /* the last run ends past the deadline: rate over what ran */
    return NULL;
}

static double rate(const stage_job *j) { return j->runs / j->elapsed; }

/* Runs a and b at once, each on its own thread; false if a thread cannot start. */
static bool run_pair(stage_job *a, stage_job *b)
{
    pthread_t ta, tb;
    if (pthread_create(&ta, NULL, run_stage, a) != 0)
        return false;
    if (pthread_create(&tb, NULL, run_stage, b) != 0) {
        pthread_join(ta, NULL);
        return false;
    }
    pthread_join(ta, NULL);
    pthread_join(tb, NULL);
    return true;
}

static int fail(const char *what, const hs_error *err)
{
    fprintf(stderr, "bench_stages: %s: %s\n", what, err->msg);
    return 1;
}

int main(int argc, char **argv)
{
    int rounds = 5;
    double seconds = 3;
    static const struct option long_opts[] = {
        {"rounds", required_argument, NULL, 'r'}, {"seconds", required_argument, NULL, 's'},
        {NULL, 0, NULL, 0}};
    for (int ch; (ch = getopt_long(argc, argv, "", long_opts, NULL)) != -1;) {
        if (ch == 'r')
            rounds = atoi(optarg);
        else if (ch == 's')
            seconds = atof(optarg);
        else
            return 2;
    }
    if (argc - optind != 2 || rounds < 1 || seconds <= 0) {
        fprintf(stderr, "usage: bench_stages MODEL.onnx CUT [--rounds N] [--seconds S]\n");
        return 2;
    }
    const char *path = argv[optind];
    int cut = atoi(argv[optind + 1]);
    hs_error err;
    hs_graph *g;
    hs_set_threads(1);
    if (hs_graph_load_onnx(path, NULL, &g, &err) != HS_OK)
        return fail(path, &err);
    int n = hs_graph_node_count(g);
    if (cut < 1 || cut >= n || hs_graph_input_count(g) != 1) {
        fprintf(stderr, "bench_stages: %s: CUT must be in [1, %d) and the model take one "
                "input\n", path, n);
        return 2;
    }
    hs_exec *whole, *twin, *first, *second;
    if (hs_exec_new(g, 0, n, &whole, &err) != HS_OK ||
        hs_exec_new(g, 0, n, &twin, &err) != HS_OK ||
        hs_exec_new(g, 0, cut, &first, &err) != HS_OK ||
        hs_exec_new(g, cut, n, &second, &err) != HS_OK)
        return fail(path, &err);
    int n_mid = hs_exec_output_count(first);
    if (n_mid > MAX_CUT) {
        fprintf(stderr, "bench_stages: %d tensors cross cut %d\n", n_mid, cut);
        return 1;
    }

    /* A fixed pseudo-random input, and the first stage's output on it, kept apart from the
     * first stage's arena (which its own runs keep overwriting). */
    hs_tensor in, mid[MAX_CUT];
    hs_graph_input(g, 0, &in);
    float *x = malloc((size_t)hs_tensor_numel(&in) * sizeof *x);
    uint32_t s = 1;
    for (int64_t i = 0; i < hs_tensor_numel(&in); i++, s = s * 1664525u + 1013904223u)
        x[i] = (float)(s >> 8) / 16777216.0f - 0.5f;
    in.data = x;
    if (hs_exec_run(first, &in, 1, mid, n_mid, &err) != HS_OK)
        return fail(path, &err);
    for (int i = 0; i < n_mid; i++) {
        void *copy = malloc(hs_tensor_nbytes(&mid[i]));
        memcpy(copy, mid[i].data, hs_tensor_nbytes(&mid[i]));
        mid[i].data = copy;
    }

    printf("%s: stages [0,%d) on CPU 0 and [%d,%d) on CPU 1, %d rounds of 3 x %g s\n",
           path, cut, cut, n, rounds, seconds);
    double *ratio = malloc((size_t)rounds * 3 * sizeof *ratio);
    double *copies = ratio + rounds, *balance = ratio + 2 * rounds;
    for (int r = 0; r < rounds; r++) {
        stage_job one = {.x = whole, .in = &in, .n_in = 1, .cpu = 0, .seconds = seconds};
        stage_job c0 = {.x = whole, .in = &in, .n_in = 1, .cpu = 0, .seconds = seconds};
        stage_job c1 = {.x = twin, .in = &in, .n_in = 1, .cpu = 1, .seconds = seconds};
        stage_job a = {.x = first, .in = &in, .n_in = 1, .cpu = 0, .seconds = seconds};
        stage_job b = {.x = second, .in = mid, .n_in = n_mid, .cpu = 1, .seconds = seconds};
        run_stage(&one);
        if (!run_pair(&c0, &c1) || !run_pair(&a, &b)) {
            fprintf(stderr, "bench_stages: cannot start threads\n");
            return 1;
        }
        const stage_job *jobs[] = {&one, &c0, &c1, &a, &b};
        for (int i = 0; i < 5; i++)
            if (jobs[i]->status != HS_OK)
                return fail(path, &jobs[i]->err);
        double whole_rps = rate(&one), a_rps = rate(&a), b_rps = rate(&b);
        double slower = a_rps < b_rps ? a_rps : b_rps;
        ratio[r] = slower / whole_rps;
        copies[r] = (rate(&c0) + rate(&c1)) / whole_rps;
        /* mean stage time over the slower stage's: (1/a + 1/b) / 2 / (1/slower) */
        balance[r] = (1 / a_rps + 1 / b_rps) / 2 * slower;
        printf("round %d/%d: whole %.2f/s; two copies %.2f/s + %.2f/s (%.3f); stage 1 "
               "%.2f/s, stage 2 %.2f/s (balance %.3f); ratio %.3f\n", r + 1, rounds,
               whole_rps, rate(&c0), rate(&c1), copies[r], a_rps, b_rps, balance[r],
               ratio[r]);
        fflush(stdout);
    }
    double lo, hi;
    median_ci(ratio, rounds, &lo, &hi);
    printf("copies %.3f\nbalance %.3f\nlimit %.3f lo %.3f hi %.3f\n", median(copies, rounds),
           median(balance, rounds), median(ratio, rounds), lo, hi);
    for (int i = 0; i < n_mid; i++)
        free(mid[i].data);
    free(x);
    free(ratio);
    hs_exec_free(whole);
    hs_exec_free(twin);
    hs_exec_free(first);
    hs_exec_free(second);
    hs_graph_free(g);
    return 0;
}
