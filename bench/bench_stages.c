/*
 * What two cores give a 2-stage split of a model with no runtime at all: stage [0, CUT) and
 * stage [CUT, n) run flat out in one process on two threads pinned to CPUs 0 and 1, each on
 * a fixed input (the second stage on the first stage's output), and the slower stage's rate
 * is set against one thread running the whole model on CPU 0. This is the ceiling
 * bench/pipeline.sh holds the runtime's pipeline to: same kernels, same cut, no transport,
 * no coordinator, no load generator. Cores that share caches or memory bandwidth (a VM's
 * host) put it below 2; smaller per-stage working sets can put it above.
 *
 * One round is SECONDS of the whole model, then SECONDS of the two stages at once; the
 * median round's ratio is printed last, as "limit R". Each round line shows the progress.
 *
 * usage: bench_stages MODEL.onnx CUT [--rounds N] [--seconds S]
 */
#define _GNU_SOURCE
#include <getopt.h>
#include <pthread.h>
#include <sched.h>
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
    hs_exec *whole, *first, *second;
    if (hs_exec_new(g, 0, n, &whole, &err) != HS_OK ||
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

    printf("%s: stages [0,%d) on CPU 0 and [%d,%d) on CPU 1, %d rounds of %g s + %g s\n",
           path, cut, cut, n, rounds, seconds, seconds);
    double *ratio = malloc((size_t)rounds * sizeof *ratio);
    for (int r = 0; r < rounds; r++) {
        stage_job one = {.x = whole, .in = &in, .n_in = 1, .cpu = 0, .seconds = seconds};
        stage_job a = {.x = first, .in = &in, .n_in = 1, .cpu = 0, .seconds = seconds};
        stage_job b = {.x = second, .in = mid, .n_in = n_mid, .cpu = 1, .seconds = seconds};
        pthread_t ta, tb;
        run_stage(&one);
        if (pthread_create(&ta, NULL, run_stage, &a) != 0 ||
            pthread_create(&tb, NULL, run_stage, &b) != 0) {
            fprintf(stderr, "bench_stages: cannot start threads\n");
            return 1;
        }
        pthread_join(ta, NULL);
        pthread_join(tb, NULL);
        const stage_job *jobs[] = {&one, &a, &b};
        for (int i = 0; i < 3; i++)
            if (jobs[i]->status != HS_OK)
                return fail(path, &jobs[i]->err);
        double whole_rps = one.runs / one.elapsed, a_rps = a.runs / a.elapsed,
               b_rps = b.runs / b.elapsed;
        ratio[r] = (a_rps < b_rps ? a_rps : b_rps) / whole_rps;
        printf("round %d/%d: whole %.2f/s; stage 1 %.2f/s, stage 2 %.2f/s; ratio %.3f\n",
               r + 1, rounds, whole_rps, a_rps, b_rps, ratio[r]);
        fflush(stdout);
    }
    printf("limit %.3f\n", median(ratio, rounds));
    for (int i = 0; i < n_mid; i++)
        free(mid[i].data);
    free(x);
    free(ratio);
    hs_exec_free(whole);
    hs_exec_free(first);
    hs_exec_free(second);
    hs_graph_free(g);
    return 0;
}
