/*
 * hotsplit load --coordinator URL --rate R --duration S [--model FILE.onnx | --input-shape S]
 *               [--poisson | --fixed] [--seed N] [--verify] [--json FILE] [--drain S]
 * hotsplit load --cluster FILE.yaml --listen ENDPOINT --model FILE.onnx ...
 * A load generator: sends requests at a fixed or Poisson rate, prints live progress each
 * second, then throughput and latency percentiles. It checks the exactly-once promise: every
 * request must be answered once (lost and duplicated answers are counted and fail the run),
 * and with --verify every answer must equal, bit for bit, what this machine computes for the
 * same input on one device.
 *
 * With --cluster instead of --coordinator it is the application that embeds the source (a
 * camera process): it runs the coordinator in a thread of its own, waits for the cluster's
 * workers to register, and submits through an in-process client without copying the inputs.
 */
#define _GNU_SOURCE
#include <getopt.h>
#include <math.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "cli.h"
#include "hotsplit/runtime.h"

#define N_INPUTS 4 /* distinct inputs, cycled; each verified against a local run */

static void help(FILE *f)
{
    fprintf(f,
            "usage: hotsplit load --coordinator URL (--rate R | --concurrency N) --duration S\n"
            "                     (--model FILE.onnx | --input-shape 1x3x224x224) [options]\n"
            "       hotsplit load --cluster FILE.yaml --listen ENDPOINT --model FILE.onnx\n"
            "                     (--rate R | --concurrency N) --duration S [options]\n\n"
            "The second form embeds the source, as a camera application does: the coordinator\n"
            "runs in this process (workers connect to --listen) and inputs are handed to it in\n"
            "memory, without a copy. It waits up to --wait S (default 30) for every device of\n"
            "the cluster to register, then starts.\n"
            "  --profile FILE, --objective O, --plan FILE.json   as for 'hotsplit coordinator'\n"
            "  --advertise HOST      host the workers reach this one by (default 127.0.0.1)\n"
            "  --spin-us US          as for 'hotsplit worker', for the embedded source\n"
            "  --elastic F           as for 'hotsplit coordinator'\n"
            "  --hold-all-weights    as for 'hotsplit coordinator'\n"
            "  --verbose             the coordinator's log (plans, stage times) on stderr\n\n"
            "  --poisson / --fixed   arrival process (default poisson)\n"
            "  --concurrency N       closed loop instead of a rate: keep N requests in flight\n"
            "  --seed N              inputs and arrival times (default 1)\n"
            "  --verify              compare every answer with a local single-device run of\n"
            "                        --model on the same input (bit-identical required)\n"
            "  --drain S             after the run, wait this long for answers (default 30)\n"
            "  --json FILE           write the summary as JSON\n"
            "  --curve-keys FILE, --curve-server FILE   CurveZMQ (see 'hotsplit worker')\n"
            "Exit status 1 if any request is lost, answered twice, failed or (with --verify)\n"
            "wrong.\n");
}

typedef struct load_opts {
    const char *coordinator, *model, *shape, *json;
    const char *cluster, *listen, *profile, *plan, *advertise; /* --cluster: the source
                                                                   embedded here */
    hs_objective objective;
    bool verbose, objective_set, wait_set, hold_all_weights;
    int spin_us;
    double elastic;      /* < 0: not given */
    double rate, duration, drain, wait;
    int concurrency;     /* > 0: closed loop, keep this many requests in flight */
    bool poisson, verify;
    uint64_t seed;
    hs_net_opts net;
} load_opts;

typedef struct load_state {
    double *sent_at;     /* per request id (1-based), 0 = never sent */
    int *answers;        /* answers received per id */
    double *latency;     /* seconds, per answered request */
    int n_latency;
    uint64_t sent, answered, duplicates, failed, wrong, unknown;
    hs_tensor ref[N_INPUTS]; /* expected first output per input (with --verify) */
    int max_requests;
} load_state;

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

static double uniform01(uint64_t *s)
{
    *s = *s * 6364136223846793005ull + 1442695040888963407ull;
    return ((double)(*s >> 11) + 0.5) / 9007199254740992.0;
}

static void input_kept(void *hint) { (void)hint; }

static void on_answer(void *ctx, const hs_result *r)
{
    load_state *ls = ctx;
    uint64_t id = r->request_id;
    if (id < 1 || id > (uint64_t)ls->max_requests || ls->sent_at[id] == 0) {
        ls->unknown++;
        return;
    }
    if (++ls->answers[id] > 1) {
        ls->duplicates++;
        return;
    }
    ls->answered++;
    if (r->status != HS_OK) {
        ls->failed++;
        fprintf(stderr, "load: request %llu failed: %s\n", (unsigned long long)id, r->reason);
        return;
    }
    ls->latency[ls->n_latency++] = now_s() - ls->sent_at[id];
    const hs_tensor *ref = &ls->ref[(id - 1) % N_INPUTS];
    if (ref->data && (r->n_outputs < 1 || hs_tensor_nbytes(&r->outputs[0]) != hs_tensor_nbytes(ref) ||
                      memcmp(r->outputs[0].data, ref->data, hs_tensor_nbytes(ref)) != 0)) {
        if (!ls->wrong)
            fprintf(stderr, "load: request %llu: the answer differs from the single-device "
                    "result\n", (unsigned long long)id);
        ls->wrong++;
    }
}

/* The model's input and, with --verify, the reference outputs of the N_INPUTS inputs. */
static int prepare_inputs(const load_opts *o, hs_tensor *inputs, load_state *ls)
{
    hs_graph *g = NULL;
    hs_tensor desc = {.dtype = HS_F32};
    if (o->model) {
        int rc = cli_load("load", o->model, o->shape, &g);
        if (rc)
            return rc;
        if (hs_graph_input_count(g) != 1) {
            hs_graph_free(g);
            return cli_runtime_error("load", "%s: the load generator feeds one input",
                                     o->model);
        }
        hs_graph_input(g, 0, &desc);
    } else if (hs_shape_parse(o->shape, &desc) != HS_OK) {
        return cli_usage_error("load", "--input-shape '%s': expected 1x3x224x224", o->shape);
    }
    hs_exec *x = NULL;
    hs_error err = {0};
    if (g && o->verify && hs_exec_new(g, 0, hs_graph_node_count(g), &x, &err) != HS_OK) {
        hs_graph_free(g);
        return cli_runtime_error("load", "%s", err.msg);
    }
    hs_set_threads(1);
    for (int i = 0; i < N_INPUTS; i++) {
        inputs[i] = desc;
        inputs[i].data = malloc(hs_tensor_nbytes(&desc));
        if (!inputs[i].data)
            return cli_runtime_error("load", "out of memory");
        cli_random_normal(inputs[i].data, hs_tensor_numel(&desc), o->seed + (uint64_t)i);
        if (!x)
            continue;
        hs_tensor out[16];
        if (hs_exec_output_count(x) > 16 ||
            hs_exec_run(x, &inputs[i], 1, out, hs_exec_output_count(x), &err) != HS_OK)
            return cli_runtime_error("load", "%s", err.msg);
        ls->ref[i] = out[0];
        ls->ref[i].data = malloc(hs_tensor_nbytes(&out[0]));
        memcpy(ls->ref[i].data, out[0].data, hs_tensor_nbytes(&out[0]));
    }
    hs_exec_free(x);
    hs_graph_free(g);
    return EXIT_OK;
}

static void progress(const load_state *ls, double elapsed, double window_answered,
                     double window_s)
{
    double *tmp = malloc(((size_t)ls->n_latency + 1) * sizeof *tmp);
    if (!tmp)
        return;
    memcpy(tmp, ls->latency, (size_t)ls->n_latency * sizeof *tmp);
    double p50 = cli_quantile(tmp, ls->n_latency, 0.5);
    double p99 = cli_quantile(tmp, ls->n_latency, 0.99);
    free(tmp);
    fprintf(stderr, "load: %5.1f s  sent %llu  answered %llu  in flight %llu  %.1f/s  "
            "p50 %.1f ms  p99 %.1f ms\n", elapsed, (unsigned long long)ls->sent,
            (unsigned long long)ls->answered,
            (unsigned long long)(ls->sent - ls->answered), window_answered / window_s,
            1e3 * p50, 1e3 * p99);
}

static hs_error serve_err; /* the embedded coordinator's, when its loop fails */
static volatile sig_atomic_t interrupted; /* --cluster: SIGINT/SIGTERM end the run early */

static void on_signal(int sig)
{
    (void)sig;
    interrupted = 1;
}

static atomic_bool served_out; /* the embedded coordinator's run() has returned */

static void *serve(void *co)
{
    if (hs_coordinator_run(co, &serve_err) != HS_OK)
        fprintf(stderr, "load: the embedded coordinator stopped: %s\n", serve_err.msg);
    atomic_store(&served_out, true);
    return NULL;
}

static void stop_source(hs_coordinator *co, pthread_t thread);

/* --cluster: starts the coordinator on a thread of this process and waits up to --wait for
 * every device of the cluster to register and a plan that uses them to commit. */
static int embed_source(const load_opts *o, hs_coordinator **co, pthread_t *thread)
{
    hs_cluster cluster;
    hs_error err = {0};
    if (hs_cluster_load(o->cluster, &cluster, &err) != HS_OK)
        return cli_runtime_error("load", "%s", err.msg);
    hs_coordinator_opts co_o = {.model_path = o->model, .cluster_path = o->cluster,
                                .listen = o->listen, .profile_path = o->profile,
                                .plan_path = o->plan, .objective = o->objective,
                                .advertise_host = o->advertise,
                                .threads = 1, .spin_us = o->spin_us, .net = o->net,
                                .elastic = o->elastic, .hold_all_weights = o->hold_all_weights,
                                .verbose = o->verbose};
    if (hs_coordinator_new(&co_o, co, &err) != HS_OK)
        return cli_runtime_error("load", "%s", err.msg);
    if (pthread_create(thread, NULL, serve, *co) != 0) {
        hs_coordinator_free(*co);
        return cli_runtime_error("load", "cannot start the coordinator's thread");
    }
    /* A signal ends the run through the normal teardown: the workers get their BYE. */
    struct sigaction sa = {.sa_handler = on_signal};
    sigemptyset(&sa.sa_mask);
    sigaction(SIGINT, &sa, NULL);
    sigaction(SIGTERM, &sa, NULL);
    fprintf(stderr, "load: coordinator embedded, listening on %s; waiting for %d devices\n",
            o->listen, cluster.n_devices);
    /* In slices, so that a signal is noticed while waiting. */
    hs_coordinator_stats st = {0};
    bool ready = false;
    for (double deadline = now_s() + o->wait;
         !ready && !interrupted && !atomic_load(&served_out) && now_s() < deadline;)
        ready = hs_coordinator_wait(*co, cluster.n_devices, 100, &st);
    if (atomic_load(&served_out)) { /* serve() said why */
        stop_source(*co, *thread);
        *co = NULL;
        return EXIT_RUNTIME;
    }
    if (!ready && !interrupted)
        fprintf(stderr, "load: %d of %d devices registered after %g s; starting anyway\n",
                st.live_workers, cluster.n_devices, o->wait);
    return EXIT_OK;
}

static void stop_source(hs_coordinator *co, pthread_t thread)
{
    if (!co)
        return;
    hs_coordinator_stop(co);
    pthread_join(thread, NULL);
    hs_coordinator_free(co); /* its workers get a BYE */
}

static int run(const load_opts *o)
{
    /* Closed loop: at most one request per millisecond of the run. */
    double most = o->concurrency > 0 ? o->duration * 1000 : o->rate * o->duration * 1.5;
    load_state ls = {.max_requests = (int)ceil(most) + 16};
    hs_tensor inputs[N_INPUTS] = {0};
    ls.sent_at = calloc((size_t)ls.max_requests + 1, sizeof *ls.sent_at);
    ls.answers = calloc((size_t)ls.max_requests + 1, sizeof *ls.answers);
    ls.latency = calloc((size_t)ls.max_requests + 1, sizeof *ls.latency);
    if (!ls.sent_at || !ls.answers || !ls.latency)
        return cli_runtime_error("load", "out of memory");
    /* The embedded source first: workers started before this process wait for its answer. */
    hs_coordinator *co = NULL;
    pthread_t co_thread;
    int rc = o->cluster ? embed_source(o, &co, &co_thread) : EXIT_OK;
    if (rc)
        return rc;
    if ((rc = prepare_inputs(o, inputs, &ls)) != EXIT_OK) {
        stop_source(co, co_thread);
        return rc;
    }
    hs_client *client;
    hs_error err = {0};
    if ((co ? hs_coordinator_client(co, &client, &err)
            : hs_client_new(o->coordinator, &o->net, &client, &err)) != HS_OK) {
        stop_source(co, co_thread);
        return cli_runtime_error("load", "%s", err.msg);
    }

    uint64_t rng = o->seed * 7919 + 1;
    double start = now_s(), next = start, end = start + o->duration;
    double last_report = start;
    uint64_t answered_at_report = 0;
    bool refused = false;
    while (now_s() < end && (int)ls.sent < ls.max_requests && !interrupted) {
        double now = now_s();
        /* A rate sends what falls due before the end: R x S requests at a fixed rate. */
        bool due = o->concurrency > 0 ? ls.sent - ls.answered < (uint64_t)o->concurrency
                                      : now >= next && next < end;
        if (due) {
            uint64_t id;
            /* The inputs outlive the client and the embedded coordinator (freed after both):
             * no copy per send. */
            if (hs_client_submit_nocopy(client, &inputs[ls.sent % N_INPUTS], 1, input_kept,
                                        NULL, &id, &err) != HS_OK) {
                fprintf(stderr, "load: cannot send: %s\n", err.msg);
                refused = true;
                break;
            }
            ls.sent_at[id] = now;
            ls.sent++;
            /* at a fixed rate the k-th is due at start + k / R, not at a sum of k steps,
             * whose rounding let a run of 3 s at 10/s send a 31st at 2.99999... s */
            next = o->poisson ? next - log(uniform01(&rng)) / o->rate
                              : start + (double)ls.sent / o->rate;
            continue;
        }
        int wait_ms = o->concurrency > 0 ? 100 : (int)((next - now) * 1e3);
        hs_client_poll(client, wait_ms < 1 ? 0 : wait_ms, on_answer, &ls, &err);
        if (now_s() - last_report >= 1.0) {
            double t = now_s();
            progress(&ls, t - start, (double)(ls.answered - answered_at_report), t - last_report);
            last_report = t;
            answered_at_report = ls.answered;
        }
    }
    double sent_done = now_s();
    while (!refused && !interrupted && ls.answered < ls.sent && now_s() - sent_done < o->drain)
        hs_client_poll(client, 100, on_answer, &ls, &err);
    double elapsed = now_s() - start;
    hs_client_free(client);
    stop_source(co, co_thread); /* after it, no request holds an input */

    uint64_t lost = ls.sent - ls.answered;
    double *lat = ls.latency;
    int n = ls.n_latency;
    double p50 = cli_quantile(lat, n, 0.5), p95 = cli_quantile(lat, n, 0.95),
           p99 = cli_quantile(lat, n, 0.99);
    double throughput = (double)ls.answered / elapsed;
    printf("sent %llu, answered %llu, lost %llu, duplicated %llu, failed %llu%s\n",
           (unsigned long long)ls.sent, (unsigned long long)ls.answered,
           (unsigned long long)lost, (unsigned long long)ls.duplicates,
           (unsigned long long)ls.failed, o->verify ? "" : " (answers not verified)");
    if (o->verify)
        printf("verified: %llu wrong\n", (unsigned long long)ls.wrong);
    if (o->concurrency > 0)
        printf("throughput: %.2f/s over %.1f s (closed loop, %d in flight)\n", throughput,
               elapsed, o->concurrency);
    else
        printf("throughput: %.2f/s over %.1f s (offered %.2f/s)\n", throughput, elapsed,
               o->rate);
    printf("latency: p50 %.2f ms, p95 %.2f ms, p99 %.2f ms\n", 1e3 * p50, 1e3 * p95,
           1e3 * p99);
    if (o->json) {
        FILE *f = fopen(o->json, "w");
        if (!f)
            return cli_runtime_error("load", "%s: cannot create", o->json);
        fprintf(f, "{\"sent\": %llu, \"answered\": %llu, \"lost\": %llu, \"duplicated\": %llu, "
                "\"failed\": %llu, \"wrong\": %llu, \"verified\": %s, \"throughput_rps\": %.4f, "
                "\"offered_rps\": %.4f, \"elapsed_s\": %.3f, \"latency_p50_s\": %.6f, "
                "\"latency_p95_s\": %.6f, \"latency_p99_s\": %.6f}\n",
                (unsigned long long)ls.sent, (unsigned long long)ls.answered,
                (unsigned long long)lost, (unsigned long long)ls.duplicates,
                (unsigned long long)ls.failed, (unsigned long long)ls.wrong,
                o->verify ? "true" : "false", throughput, o->rate, elapsed, p50, p95, p99);
        fclose(f);
    }
    for (int i = 0; i < N_INPUTS; i++) {
        free(inputs[i].data);
        free(ls.ref[i].data);
    }
    free(ls.sent_at);
    free(ls.answers);
    free(ls.latency);
    bool ok = !refused && !lost && !ls.duplicates && !ls.failed && !ls.wrong && !ls.unknown;
    return ok ? EXIT_OK : EXIT_RUNTIME;
}

int cmd_load(int argc, char **argv)
{
    static const struct option opts[] = {
        {"coordinator", required_argument, 0, 'c'}, {"rate", required_argument, 0, 'r'},
        {"duration", required_argument, 0, 'd'},    {"model", required_argument, 0, 'm'},
        {"input-shape", required_argument, 0, 's'}, {"poisson", no_argument, 0, 'P'},
        {"fixed", no_argument, 0, 'F'},             {"seed", required_argument, 0, 'S'},
        {"verify", no_argument, 0, 'V'},            {"json", required_argument, 0, 'j'},
        {"drain", required_argument, 0, 'D'},       {"curve-keys", required_argument, 0, 'k'},
        {"curve-server", required_argument, 0, 'K'}, {"concurrency", required_argument, 0, 'C'},
        {"cluster", required_argument, 0, 'u'},     {"listen", required_argument, 0, 'l'},
        {"profile", required_argument, 0, 'p'},     {"plan", required_argument, 0, 'n'},
        {"objective", required_argument, 0, 'O'},   {"verbose", no_argument, 0, 'v'},
        {"wait", required_argument, 0, 'W'},        {"help", no_argument, 0, 'h'},
        {"spin-us", required_argument, 0, 'U'},     {"advertise", required_argument, 0, 'a'},
        {"elastic", required_argument, 0, 'e'},     {"hold-all-weights", no_argument, 0, 'H'},
        {0, 0, 0, 0}};
    load_opts o = {.poisson = true, .seed = 1, .drain = 30, .wait = 30,
                   .objective = HS_OBJ_THROUGHPUT, .elastic = -1};
    int c, rc;
    char *end;
    optind = 0;
    opterr = 0;
    long v;
    while ((c = getopt_long(argc, argv, ":c:r:d:m:s:PFS:Vj:D:k:K:C:h", opts, NULL)) != -1) {
        switch (c) {
        case 'c': o.coordinator = optarg; break;
        case 'm': o.model = optarg; break;
        case 's': o.shape = optarg; break;
        case 'P': o.poisson = true; break;
        case 'F': o.poisson = false; break;
        case 'V': o.verify = true; break;
        case 'j': o.json = optarg; break;
        case 'k': o.net.curve_keys = optarg; break;
        case 'K': o.net.curve_server = optarg; break;
        case 'u': o.cluster = optarg; break;
        case 'l': o.listen = optarg; break;
        case 'p': o.profile = optarg; break;
        case 'n': o.plan = optarg; break;
        case 'a': o.advertise = optarg; break;
        case 'v': o.verbose = true; break;
        case 'O':
            if ((rc = cli_parse_objective("load", optarg, &o.objective)) != EXIT_OK)
                return rc;
            o.objective_set = true;
            break;
        case 'r':
        case 'd':
        case 'W':
        case 'D': {
            double x = strtod(optarg, &end);
            const char *name = c == 'r' ? "--rate" : c == 'd' ? "--duration"
                               : c == 'W' ? "--wait" : "--drain";
            if (*end || end == optarg || !(x > 0 || (c == 'W' && x == 0)) || !isfinite(x))
                return cli_usage_error("load", "%s expects a number > 0, got '%s'", name,
                                       optarg);
            *(c == 'r' ? &o.rate : c == 'd' ? &o.duration : c == 'W' ? &o.wait : &o.drain) = x;
            o.wait_set |= c == 'W';
            break;
        }
        case 'S':
            if (!cli_parse_u64(optarg, &o.seed))
                return cli_usage_error("load", "--seed '%s': expected an integer", optarg);
            break;
        case 'U':
            if ((rc = cli_parse_spin_us("load", optarg, &o.spin_us)) != EXIT_OK)
                return rc;
            break;
        case 'H': o.hold_all_weights = true; break;
        case 'e':
            if ((rc = cli_parse_elastic("load", optarg, &o.elastic)) != EXIT_OK)
                return rc;
            break;
        case 'C':
            if (!cli_parse_int(optarg, 1, 100000, &v))
                return cli_usage_error("load", "--concurrency '%s': expected 1 to 100000", optarg);
            o.concurrency = (int)v;
            break;
        case 'h': help(stdout); return EXIT_OK;
        default: return cli_bad_option("load", c, argv);
        }
    }
    if (optind != argc)
        return cli_usage_error("load", "unexpected argument '%s'", argv[optind]);
    if (!o.coordinator == !o.cluster)
        return cli_usage_error("load", "give --coordinator URL, or --cluster FILE.yaml to embed "
                               "the source (not both)");
    if (o.cluster && (!o.listen || !o.model))
        return cli_usage_error("load", "--cluster needs --listen and --model");
    if (!o.cluster && (o.listen || o.profile || o.plan || o.advertise || o.verbose ||
                       o.spin_us || o.objective_set || o.wait_set || o.elastic >= 0 ||
                       o.hold_all_weights))
        return cli_usage_error("load", "--listen, --profile, --plan, --objective, --advertise, "
                               "--spin-us, --elastic, --hold-all-weights, --wait and --verbose "
                               "go with --cluster");
    cli_default_elastic(o.objective, &o.elastic);
    if (o.cluster && (o.shape || o.net.curve_keys || o.net.curve_server))
        return cli_usage_error("load", "--cluster takes the input shape from --model and runs "
                               "without CurveZMQ (use 'hotsplit coordinator' for that)");
    if (o.cluster && (o.objective == HS_OBJ_LIFETIME || o.objective == HS_OBJ_LOAD_LATENCY))
        return cli_usage_error("load", "--objective %s needs a rate constraint: use 'hotsplit "
                               "coordinator --rate'", hs_objective_name(o.objective));
    if ((!o.rate && !o.concurrency) || !o.duration)
        return cli_usage_error("load", "--rate (or --concurrency) and --duration are required");
    if (!o.rate)
        o.rate = 1000; /* only sizes the bookkeeping in closed loop */
    if (!o.model && !o.shape)
        return cli_usage_error("load", "give --model (or --input-shape) for the input shape");
    if (o.verify && !o.model)
        return cli_usage_error("load", "--verify needs --model");
    if (o.rate * o.duration > 10000000)
        return cli_usage_error("load", "--rate x --duration is over 10 million requests");
    return run(&o);
}
