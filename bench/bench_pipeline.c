/*
 * The pipeline benchmark: a 2-stage pipeline over 2 devices against 1 device running the whole
 * model, loaded in short alternating rounds from one process, two ways:
 *
 *   source embedded (--one, --two, --listen), as a camera application runs it: this process
 *       hosts both coordinators, pinned with everything else here to CPU 0, and hands them
 *       its inputs in memory (hs_coordinator_client + hs_client_submit_nocopy: no copy, no
 *       socket). "one" serves a 1-device cluster, "two" a 2-device cluster whose other device
 *       is a `hotsplit worker` process the caller starts on CPU 1, registering at --listen.
 *   client over TCP (--one-at, --two-at): both set-ups are `hotsplit coordinator` processes
 *       (and the worker) the caller started; this process is their load generator, unpinned,
 *       and sends every input over loopback TCP.
 *       --pair-at adds the machine's own ceiling for two processes: a second 1-device
 *       coordinator (the caller pins it to CPU 1, the "1 worker" one being on CPU 0), and a
 *       third set-up each round, both 1-device coordinators loaded at once, each with
 *       --concurrency requests in flight. Their summed rate over the "1 worker" rate alone is
 *       what two cores give two copies of the whole model in two processes ("machine"), the
 *       most any split can reach here; the pipeline's rate over that sum is what the split
 *       and the runtime keep of it ("kept").
 *
 * Rounds alternate between the set-ups (the idle one costs nothing): each keeps --concurrency
 * requests in flight for --seconds after a short warm-up, and takes the rate of the answers
 * inside that window. Every answer is checked: one per request, bit-identical to this
 * process's own single-device run of the same input. Single-device speed on a shared machine
 * drifts by 20% within a minute, so many short rounds pair rates taken close together; the
 * median round's ratio is printed last with its bootstrap 95% confidence interval
 * ("ratio R lo LO hi HI"), after the median rates ("rates ONE TWO"). --csv writes every round.
 *
 * usage: bench_pipeline MODEL.onnx (--one CLUSTER1.yaml --two CLUSTER2.yaml --listen ENDPOINT
 *                       [--profile FILE] [--spin-us US] [--elastic F] [--verbose] |
 *                       --one-at ENDPOINT --two-at ENDPOINT [--pair-at ENDPOINT]) [--rounds N]
 *                       [--seconds S] [--concurrency N] [--csv FILE]
 * --spin-us and --elastic (default HS_DEFAULT_ELASTIC) are the embedded coordinators', as
 * for `hotsplit coordinator`.
 */
#define _GNU_SOURCE
#include <getopt.h>
#include <math.h>
#include <pthread.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "hotsplit/runtime.h"
#include "bench_util.h"

#define N_INPUTS 4       /* distinct inputs, cycled */
#define WARMUP_S 0.5     /* of each round, before answers are counted */
#define SETTLE_S 20.0    /* longest wait for the worker of the 2-device set-up */

typedef struct setup {
    const char *name;
    const char *endpoint;   /* client over TCP: the coordinator's; else NULL */
    hs_coordinator *co;     /* source embedded: hosted here; else NULL */
    pthread_t thread;
    hs_error run_err;
} setup;

static void *serve(void *arg)
{
    setup *s = arg;
    hs_coordinator_run(s->co, &s->run_err);
    return NULL;
}

static void input_kept(void *hint) { (void)hint; }

typedef struct checker {
    hs_tensor input[N_INPUTS];
    void *expected[N_INPUTS]; /* first output of each input, on one device */
    size_t expected_bytes;
} checker;

/* One round: a closed loop of `concurrency` requests for warm-up + seconds; returns the rate
 * of the answers that arrive inside the window, (n - 1) over the time from the first of them
 * to the last (a count over the window's length would move in steps of 1/seconds), or a
 * negative value (reason on stderr) when an answer is missing, repeated, failed or wrong. */
static double run_round(setup *s, const checker *ck, int concurrency, double seconds)
{
    hs_client *cl;
    hs_error err = {0};
    if ((s->co ? hs_coordinator_client(s->co, &cl, &err)
               : hs_client_new(s->endpoint, NULL, &cl, &err)) != HS_OK) {
        fprintf(stderr, "bench_pipeline: %s: %s\n", s->name, err.msg);
        return -1;
    }
    uint64_t sent = 0, answered = 0, in_window = 0, bad = 0;
    double start = now_s(), from = start + WARMUP_S, to = from + seconds, first = 0, last = 0;
    size_t cap = (size_t)(5000 * (WARMUP_S + seconds)); /* requests: far above any rate */
    uint8_t *seen = calloc(cap + 1, 1); /* answers per request id */
    if (!seen) {
        hs_client_free(cl);
        fprintf(stderr, "bench_pipeline: out of memory\n");
        return -1;
    }
    for (double now = start; ((now < to && sent < cap) || answered < sent) && !bad;
         now = now_s()) {
        while (now < to && sent - answered < (uint64_t)concurrency && sent < cap) {
            uint64_t id;
            if (hs_client_submit_nocopy(cl, &ck->input[sent % N_INPUTS], 1, input_kept, NULL,
                                        &id, &err) != HS_OK) {
                fprintf(stderr, "bench_pipeline: %s: submit: %s\n", s->name, err.msg);
                bad++;
                break;
            }
            sent++;
        }
        hs_result r;
        if (bad || hs_client_receive(cl, 5000, &r, &err) != HS_OK) {
            if (!bad)
                fprintf(stderr, "bench_pipeline: %s: %llu of %llu answered: %s\n", s->name,
                        (unsigned long long)answered, (unsigned long long)sent, err.msg);
            bad++;
            break;
        }
        uint64_t id = r.request_id;
        if (id < 1 || id > sent || seen[id]++ || r.status != HS_OK ||
            r.n_outputs < 1 || hs_tensor_nbytes(&r.outputs[0]) != ck->expected_bytes ||
            memcmp(r.outputs[0].data, ck->expected[(id - 1) % N_INPUTS],
                   ck->expected_bytes) != 0) {
            fprintf(stderr, "bench_pipeline: %s: request %llu: answer repeated, failed (%s) "
                    "or not the single-device result\n", s->name, (unsigned long long)id,
                    r.reason);
            bad++;
        }
        answered++;
        double t = now_s();
        if (t >= from && t < to) {
            if (!in_window++)
                first = t;
            last = t;
        }
    }
    free(seen);
    hs_client_free(cl);
    if (!bad && in_window < 2)
        fprintf(stderr, "bench_pipeline: %s: fewer than 2 answers in %g s\n", s->name, seconds);
    return bad || in_window < 2 ? -1 : (double)(in_window - 1) / (last - first);
}

/* run_round's arguments and result, for a thread. */
typedef struct round_job {
    setup *s;
    const checker *ck;
    int concurrency;
    double seconds, rate;
} round_job;

static void *round_thread(void *arg)
{
    round_job *j = arg;
    j->rate = run_round(j->s, j->ck, j->concurrency, j->seconds);
    return NULL;
}

/* Both 1-device set-ups loaded at once, one from a second thread; their summed rate, or a
 * negative value when either round failed. */
static double run_pair(setup *a, setup *b, const checker *ck, int concurrency, double seconds)
{
    round_job jb = {.s = b, .ck = ck, .concurrency = concurrency, .seconds = seconds};
    pthread_t t;
    if (pthread_create(&t, NULL, round_thread, &jb) != 0) {
        fprintf(stderr, "bench_pipeline: cannot start a thread\n");
        return -1;
    }
    double ra = run_round(a, ck, concurrency, seconds);
    pthread_join(t, NULL);
    return ra < 0 || jb.rate < 0 ? -1 : ra + jb.rate;
}

static int usage(void)
{
    fprintf(stderr, "usage: bench_pipeline MODEL.onnx (--one CLUSTER1.yaml --two CLUSTER2.yaml "
            "--listen ENDPOINT [--profile FILE] [--spin-us US] [--elastic F] [--verbose] | "
            "--one-at ENDPOINT --two-at ENDPOINT [--pair-at ENDPOINT]) [--rounds N] [--seconds S] "
            "[--concurrency N] [--csv FILE]\n");
    return 2;
}

/* The single-device answers the pipeline's must equal, for N_INPUTS pseudo-random inputs. */
static int make_checker(const char *path, checker *ck)
{
    hs_graph *g;
    hs_exec *x;
    hs_error err;
    if (hs_graph_load_onnx(path, NULL, &g, &err) != HS_OK ||
        hs_exec_new(g, 0, hs_graph_node_count(g), &x, &err) != HS_OK) {
        fprintf(stderr, "bench_pipeline: %s\n", err.msg);
        return 1;
    }
    hs_tensor desc = {0};
    if (hs_graph_input_count(g) == 1)
        hs_graph_input(g, 0, &desc);
    if (hs_graph_input_count(g) != 1 || desc.dtype != HS_F32) {
        fprintf(stderr, "bench_pipeline: %s: the model must take one float32 input\n", path);
        return 1;
    }
    hs_tensor out[16];
    int n_out = hs_exec_output_count(x);
    for (int i = 0; i < N_INPUTS; i++) {
        hs_graph_input(g, 0, &ck->input[i]);
        int64_t n = hs_tensor_numel(&ck->input[i]);
        float *v = malloc((size_t)n * sizeof *v);
        uint32_t s = 1 + (uint32_t)i;
        for (int64_t k = 0; k < n; k++, s = s * 1664525u + 1013904223u)
            v[k] = (float)(s >> 8) / 16777216.0f - 0.5f;
        ck->input[i].data = v;
        if (n_out > 16 || hs_exec_run(x, &ck->input[i], 1, out, n_out, &err) != HS_OK) {
            fprintf(stderr, "bench_pipeline: %s: %s\n", path, n_out > 16 ? "too many outputs"
                    : err.msg);
            return 1;
        }
        ck->expected_bytes = hs_tensor_nbytes(&out[0]);
        ck->expected[i] = malloc(ck->expected_bytes);
        memcpy(ck->expected[i], out[0].data, ck->expected_bytes);
    }
    hs_exec_free(x);
    hs_graph_free(g);
    return 0;
}

static void free_checker(checker *ck)
{
    for (int i = 0; i < N_INPUTS; i++) {
        free(ck->input[i].data);
        free(ck->expected[i]);
    }
}

/* Source embedded: waits for the worker and the plan chosen with it. False, with the reason
 * on stderr, if it did not come. */
static bool wait_for_worker(setup *two, const char *listen)
{
    if (hs_coordinator_wait(two->co, 2, (int)(SETTLE_S * 1000), NULL))
        return true;
    fprintf(stderr, "bench_pipeline: no worker registered at %s within %.0f s\n", listen,
            SETTLE_S);
    return false;
}

/* Prints "NAME M lo LO hi HI": the median of v[0..n) and its bootstrap 95% interval. */
static void print_median(const char *name, double *v, int n)
{
    double lo, hi;
    median_ci(v, n, &lo, &hi);
    printf("%s %.3f lo %.3f hi %.3f\n", name, median(v, n), lo, hi);
}

/* Warms the set-ups up (sets[2], the second 1-device one, only when it has an endpoint:
 * --pair-at), then runs the alternating rounds; prints each, the median rates and the median
 * ratios with their confidence intervals; writes csv if given. Returns the exit status. */
static int measure(setup sets[3], const checker *ck, int rounds, double seconds,
                   int concurrency, const char *csv)
{
    const bool pair = sets[2].endpoint != NULL;
    printf("%d rounds of %g s per set-up, %d in flight, %s%s\n", rounds, seconds, concurrency,
           sets[0].co ? "source embedded (in-process client, no copy)"
                      : "client over TCP (this process)",
           pair ? ", with two 1-device set-ups at once" : "");
    fflush(stdout);
    /* Warm-up: lets the 2-device plan settle on measured stage times. */
    for (int i = 0; i < (pair ? 3 : 2); i++)
        if (run_round(&sets[i], ck, concurrency, 2) < 0)
            return 1;
    FILE *out = csv ? fopen(csv, "w") : NULL;
    if (csv && !out) {
        fprintf(stderr, "bench_pipeline: %s: cannot create\n", csv);
        return 1;
    }
    if (out)
        fprintf(out, "round,one_worker_rps,two_stage_rps,ratio,pair_rps,machine,kept\n");
    double *v = malloc((size_t)rounds * 6 * sizeof *v);
    if (!v) {
        if (out)
            fclose(out);
        fprintf(stderr, "bench_pipeline: out of memory\n");
        return 1;
    }
    double *ones = v, *twos = v + rounds, *pairs = v + 2 * rounds, *ratio = v + 3 * rounds,
           *machine = v + 4 * rounds, *kept = v + 5 * rounds;
    int rc = 0;
    for (int r = 0; r < rounds && rc == 0; r++) {
        ones[r] = run_round(&sets[0], ck, concurrency, seconds);
        twos[r] = ones[r] < 0 ? -1 : run_round(&sets[1], ck, concurrency, seconds);
        pairs[r] = !pair ? NAN
                   : twos[r] < 0 ? -1 : run_pair(&sets[0], &sets[2], ck, concurrency, seconds);
        if (twos[r] < 0 || pairs[r] < 0) {
            rc = 1;
            break;
        }
        ratio[r] = twos[r] / ones[r];
        machine[r] = pairs[r] / ones[r];
        kept[r] = twos[r] / pairs[r];
        printf("round %d/%d: 1 worker %.2f/s, 2 workers %.2f/s, ratio %.3f", r + 1, rounds,
               ones[r], twos[r], ratio[r]);
        if (pair)
            printf("; two 1-device at once %.2f/s, machine %.3f, kept %.3f", pairs[r],
                   machine[r], kept[r]);
        printf("\n");
        fflush(stdout);
        if (out)
            fprintf(out, "%d,%.3f,%.3f,%.4f,%.3f,%.4f,%.4f\n", r + 1, ones[r], twos[r],
                    ratio[r], pairs[r], machine[r], kept[r]);
    }
    if (out)
        fclose(out);
    if (rc == 0) {
        printf("rates %.3f %.3f\n", median(ones, rounds), median(twos, rounds));
        print_median("ratio", ratio, rounds);
        if (pair) {
            print_median("machine", machine, rounds);
            print_median("kept", kept, rounds);
        }
    }
    free(v);
    return rc;
}

int main(int argc, char **argv)
{
    const char *one_cluster = NULL, *two_cluster = NULL, *listen = NULL, *profile = NULL,
               *csv = NULL, *one_at = NULL, *two_at = NULL, *pair_at = NULL;
    int rounds = 5, concurrency = 4, spin_us = 0;
    double seconds = 4, elastic = HS_DEFAULT_ELASTIC;
    bool verbose = false;
    static const struct option long_opts[] = {
        {"one", required_argument, NULL, '1'},     {"two", required_argument, NULL, '2'},
        {"listen", required_argument, NULL, 'l'},  {"profile", required_argument, NULL, 'p'},
        {"one-at", required_argument, NULL, 'a'},  {"two-at", required_argument, NULL, 'b'},
        {"rounds", required_argument, NULL, 'r'},  {"seconds", required_argument, NULL, 's'},
        {"concurrency", required_argument, NULL, 'c'}, {"csv", required_argument, NULL, 'o'},
        {"verbose", no_argument, NULL, 'v'},       {"spin-us", required_argument, NULL, 'u'},
        {"pair-at", required_argument, NULL, 'P'}, {"elastic", required_argument, NULL, 'e'},
        {NULL, 0, NULL, 0}};
    for (int ch; (ch = getopt_long(argc, argv, "", long_opts, NULL)) != -1;) {
        switch (ch) {
        case '1': one_cluster = optarg; break;
        case '2': two_cluster = optarg; break;
        case 'l': listen = optarg; break;
        case 'p': profile = optarg; break;
        case 'a': one_at = optarg; break;
        case 'b': two_at = optarg; break;
        case 'P': pair_at = optarg; break;
        case 'o': csv = optarg; break;
        case 'r': rounds = atoi(optarg); break;
        case 's': seconds = atof(optarg); break;
        case 'c': concurrency = atoi(optarg); break;
        case 'u': spin_us = atoi(optarg); break;
        case 'e': elastic = atof(optarg); break;
        case 'v': verbose = true; break;
        default: return usage();
        }
    }
    bool embedded = one_cluster && two_cluster && listen && !one_at && !two_at && !pair_at;
    bool over_tcp = one_at && two_at && !one_cluster && !two_cluster && !listen && !profile &&
                    !spin_us && !verbose && elastic == HS_DEFAULT_ELASTIC;
    if (argc - optind != 1 || !(embedded || over_tcp) || rounds < 1 || !(seconds > 0) ||
        concurrency < 1 || spin_us < 0 || !(elastic >= 0 && elastic <= 0.5))
        return usage();
    const char *model = argv[optind];

    hs_set_threads(1);
    setup sets[3] = {{.name = "1 worker", .endpoint = one_at},
                     {.name = "2 workers", .endpoint = two_at},
                     {.name = "second 1 worker", .endpoint = pair_at}};
    checker ck = {0};
    int rc = 1;
    if (over_tcp) {
        if (make_checker(model, &ck) == 0)
            rc = measure(sets, &ck, rounds, seconds, concurrency, csv);
        free_checker(&ck);
        return rc;
    }

    /* Everything here is device 0: pinned before any thread starts, so all inherit it. */
    cpu_set_t cpu0;
    CPU_ZERO(&cpu0);
    CPU_SET(0, &cpu0);
    sched_setaffinity(0, sizeof cpu0, &cpu0);
    if (make_checker(model, &ck)) {
        free_checker(&ck);
        return 1;
    }
    const char *clusters[2] = {one_cluster, two_cluster};
    const char *listens[2] = {"tcp://127.0.0.1:*", listen};
    int started = 0;
    for (int i = 0; i < 2; i++) {
        hs_coordinator_opts o = {.model_path = model, .cluster_path = clusters[i],
                                 .listen = listens[i], .profile_path = profile,
                                 .objective = HS_OBJ_THROUGHPUT, .threads = 1,
                                 .spin_us = spin_us, .verbose = verbose,
                                 .elastic = elastic};
        hs_error err;
        if (hs_coordinator_new(&o, &sets[i].co, &err) != HS_OK) {
            fprintf(stderr, "bench_pipeline: %s\n", err.msg);
            break;
        }
        if (pthread_create(&sets[i].thread, NULL, serve, &sets[i]) != 0) {
            hs_coordinator_free(sets[i].co);
            fprintf(stderr, "bench_pipeline: cannot start a thread\n");
            break;
        }
        started++;
    }
    if (started == 2 && wait_for_worker(&sets[1], listen))
        rc = measure(sets, &ck, rounds, seconds, concurrency, csv);
    /* Also on failure: a coordinator that is freed sends its worker a BYE, so the worker the
     * caller started does not outlive this process. */
    for (int i = 0; i < started; i++) {
        hs_coordinator_stop(sets[i].co);
        pthread_join(sets[i].thread, NULL);
        hs_coordinator_free(sets[i].co);
    }
    free_checker(&ck);
    return rc;
}
