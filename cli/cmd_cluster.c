/*
 * The distributed runtime's commands:
 *   hotsplit coordinator --cluster FILE.yaml --model FILE.onnx --listen ENDPOINT [...]
 *   hotsplit worker --name NAME --coordinator tcp://HOST:PORT [--listen ...] [--model FILE]
 *   hotsplit keygen -o KEYS
 * Each runs until SIGINT or SIGTERM.
 */
#define _GNU_SOURCE
#include <getopt.h>
#include <math.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "hotsplit/runtime.h"

#define MAX_SETS 64

static hs_coordinator *running_coordinator;
static hs_worker *running_worker;

static void on_signal(int sig)
{
    (void)sig;
    if (running_coordinator)
        hs_coordinator_stop(running_coordinator);
    if (running_worker)
        hs_worker_stop(running_worker);
}

static void catch_signals(void)
{
    struct sigaction sa = {.sa_handler = on_signal};
    sigemptyset(&sa.sa_mask);
    sigaction(SIGINT, &sa, NULL);
    sigaction(SIGTERM, &sa, NULL);
}

/* Options every process of the cluster shares: liveness and CurveZMQ keys. */
#define NET_OPTIONS                                                                           \
    {"heartbeat-ms", required_argument, 0, 1001}, {"heartbeat-timeout-ms", required_argument, 0, 1002}, \
    {"curve-keys", required_argument, 0, 1003}, {"curve-server", required_argument, 0, 1004},   \
    {"curve-allow", required_argument, 0, 1005}, {"max-message-mb", required_argument, 0, 1006}

static int net_option(const char *cmd, int c, hs_net_opts *net)
{
    long v;
    switch (c) {
    case 1001:
    case 1002:
        if (!cli_parse_int(optarg, 1, 3600000, &v))
            return cli_usage_error(cmd, "%s '%s': expected milliseconds >= 1",
                                   c == 1001 ? "--heartbeat-ms" : "--heartbeat-timeout-ms",
                                   optarg);
        *(c == 1001 ? &net->heartbeat_ivl_ms : &net->heartbeat_timeout_ms) = (int)v;
        return EXIT_OK;
    case 1006:
        if (!cli_parse_int(optarg, 1, 1 << 20, &v))
            return cli_usage_error(cmd, "--max-message-mb '%s': expected a positive integer",
                                   optarg);
        net->max_message_mb = (int)v;
        return EXIT_OK;
    case 1003: net->curve_keys = optarg; return EXIT_OK;
    case 1004: net->curve_server = optarg; return EXIT_OK;
    case 1005: net->curve_allow = optarg; return EXIT_OK;
    }
    return -1;
}

static const char net_help[] =
    "  --heartbeat-ms MS          ZMTP heartbeat interval (default 100)\n"
    "  --heartbeat-timeout-ms MS  a silent peer is gone after this (default 1000)\n"
    "  --curve-keys FILE          encrypt with CurveZMQ using this key pair (hotsplit keygen)\n"
    "  --curve-server FILE        (workers, clients) the coordinator's public key\n"
    "  --curve-allow FILE         (coordinator) public keys allowed in, one per line\n"
    "  --max-message-mb N         drop incoming messages larger than N MiB (default 1024)\n";

/* ---- coordinator --------------------------------------------------------------------------- */

static void coordinator_help(FILE *f)
{
    fprintf(f, "usage: hotsplit coordinator --cluster FILE.yaml --model FILE.onnx\n"
               "                            --listen tcp://*:PORT [options]\n\n"
               "Runs on the source device: admits requests, publishes plans, tracks workers,\n"
               "and runs the source device's stages itself.\n\n"
               "  --plan FILE.json           pin this plan (as 'hotsplit plan --json' prints)\n"
               "  --objective O, --rate R, --max-latency MS, --max-stages N, --battery-only,\n"
               "  --set K=V, --profile FILE  as for 'hotsplit plan' (the solver's plan)\n"
               "  --advertise HOST           host name other processes reach this one by\n"
               "                             (default 127.0.0.1)\n"
               "  --swap-every MS            publish a new random valid plan this often\n"
               "                             (hot-swap testing)\n"
               "  --request-timeout MS       re-issue an unanswered request (default 5000)\n"
               "  --threads N                BLAS threads of the source device (default 1)\n"
               "  --spin-us US               the source device's, as for 'hotsplit worker'\n"
               "  --hold-all-weights         the source device's, as for 'hotsplit worker'\n"
               "  --no-mix                   throughput: never balance stages finer than a node\n"
               "                             by running a share of requests on a neighbouring\n"
               "                             plan (one cut moved by one node)\n"
               "  --elastic F                2-stage plans: hand each request to stage 1 at\n"
               "                             a cheap cut within F of the model's FLOPs of\n"
               "                             the plan's cut, where stage 1 is idle (before\n"
               "                             the plan's cut) or has nothing waiting (after\n"
               "                             it); such plans are not mixed (0 to 0.5, 0: off;\n"
               "                             default 0.1 for --objective throughput, else 0)\n"
               "  --verbose                  log membership changes and plans, and every 5 s\n"
               "                             answered/s and measured stage times\n%s", net_help);
}

int cmd_coordinator(int argc, char **argv)
{
    static const struct option opts[] = {
        {"cluster", required_argument, 0, 'c'}, {"model", required_argument, 0, 'm'},
        {"listen", required_argument, 0, 'l'},  {"plan", required_argument, 0, 'p'},
        {"objective", required_argument, 0, 'O'}, {"rate", required_argument, 0, 'r'},
        {"max-latency", required_argument, 0, 'L'}, {"max-stages", required_argument, 0, 'S'},
        {"battery-only", no_argument, 0, 'b'},  {"set", required_argument, 0, 's'},
        {"profile", required_argument, 0, 'P'}, {"advertise", required_argument, 0, 'a'},
        {"swap-every", required_argument, 0, 'w'}, {"request-timeout", required_argument, 0, 't'},
        {"threads", required_argument, 0, 'T'}, {"verbose", no_argument, 0, 'v'},
        {"spin-us", required_argument, 0, 'U'}, {"no-mix", no_argument, 0, 'x'},
        {"elastic", required_argument, 0, 'e'}, {"help", no_argument, 0, 'h'},
        {"hold-all-weights", no_argument, 0, 'W'}, NET_OPTIONS, {0, 0, 0, 0}};
    hs_coordinator_opts o = {.objective = HS_OBJ_THROUGHPUT, .threads = 1, .elastic = -1};
    static const char *sets[MAX_SETS];
    long v;
    int c, rc;
    char *end;
    optind = 0; /* glibc: a full re-initialisation */
    opterr = 0;
    static const char *shorts = ":c:m:l:p:O:r:L:S:bs:P:a:w:t:T:U:xe:vh";
    while ((c = getopt_long(argc, argv, shorts, opts, NULL)) != -1) {
        switch (c) {
        case 'c': o.cluster_path = optarg; break;
        case 'm': o.model_path = optarg; break;
        case 'l': o.listen = optarg; break;
        case 'p': o.plan_path = optarg; break;
        case 'P': o.profile_path = optarg; break;
        case 'a': o.advertise_host = optarg; break;
        case 'b': o.constraints.battery_only = true; break;
        case 'v': o.verbose = true; break;
        case 'x': o.no_mix = true; break;
        case 'W': o.hold_all_weights = true; break;
        case 'e':
            if ((rc = cli_parse_elastic("coordinator", optarg, &o.elastic)) != EXIT_OK)
                return rc;
            break;
        case 'O':
            if ((rc = cli_parse_objective("coordinator", optarg, &o.objective)) != EXIT_OK)
                return rc;
            break;
        case 'r':
            o.constraints.rate = strtod(optarg, &end);
            if (*end || !(o.constraints.rate > 0) || !isfinite(o.constraints.rate))
                return cli_usage_error("coordinator", "--rate '%s': expected requests/s > 0",
                                       optarg);
            break;
        case 'L':
            o.constraints.max_latency_s = strtod(optarg, &end) / 1e3;
            if (*end || !(o.constraints.max_latency_s > 0))
                return cli_usage_error("coordinator", "--max-latency '%s': expected ms > 0",
                                       optarg);
            break;
        case 'S':
        case 'w':
        case 't':
        case 'T':
            if (!cli_parse_int(optarg, 1, 100000000, &v))
                return cli_usage_error("coordinator", "option '%s' expects a positive integer, "
                                       "got '%s'", argv[optind - 1], optarg);
            if (c == 'S')
                o.constraints.max_stages = (int)v;
            else if (c == 'w')
                o.swap_every_ms = (int)v;
            else if (c == 't')
                o.request_timeout_ms = (int)v;
            else
                o.threads = (int)v;
            break;
        case 'U':
            if ((rc = cli_parse_spin_us("coordinator", optarg, &o.spin_us)) != EXIT_OK)
                return rc;
            break;
        case 's':
            if (o.n_sets == MAX_SETS)
                return cli_usage_error("coordinator", "more than %d --set options", MAX_SETS);
            sets[o.n_sets++] = optarg;
            break;
        case 'h': coordinator_help(stdout); return EXIT_OK;
        default:
            if ((rc = net_option("coordinator", c, &o.net)) >= 0) {
                if (rc)
                    return rc;
                break;
            }
            return cli_bad_option("coordinator", c, argv);
        }
    }
    o.sets = sets;
    if (optind != argc)
        return cli_usage_error("coordinator", "unexpected argument '%s'", argv[optind]);
    if (!o.cluster_path || !o.model_path || !o.listen)
        return cli_usage_error("coordinator", "--cluster, --model and --listen are required");
    if ((o.objective == HS_OBJ_LIFETIME || o.objective == HS_OBJ_LOAD_LATENCY) &&
        !o.constraints.rate)
        return cli_usage_error("coordinator", "--objective %s needs --rate",
                               hs_objective_name(o.objective));
    cli_default_elastic(o.objective, &o.elastic);
    hs_error err = {0};
    hs_coordinator *co;
    if (hs_coordinator_new(&o, &co, &err) != HS_OK)
        return cli_runtime_error("coordinator", "%s", err.msg);
    running_coordinator = co;
    catch_signals();
    fprintf(stderr, "coordinator: listening on %s\n", o.listen);
    hs_status st = hs_coordinator_run(co, &err);
    hs_coordinator_stats s;
    hs_coordinator_get_stats(co, &s);
    fprintf(stderr, "coordinator: admitted %llu, answered %llu, re-issued %llu, duplicates "
            "dropped %llu, failed %llu, bad messages %llu, last plan %u\n",
            (unsigned long long)s.admitted, (unsigned long long)s.answered,
            (unsigned long long)s.reissued, (unsigned long long)s.duplicates,
            (unsigned long long)s.failed, (unsigned long long)s.bad_messages, s.epoch);
    if (o.elastic > 0)
        fprintf(stderr, "coordinator: elastic hand-off: %llu requests handed to stage 1 before "
                "the plan's cut, %llu after it\n", (unsigned long long)s.elastic_early,
                (unsigned long long)s.elastic_late);
    running_coordinator = NULL;
    hs_coordinator_free(co);
    return st == HS_OK ? EXIT_OK : cli_runtime_error("coordinator", "%s", err.msg);
}

/* ---- worker -------------------------------------------------------------------------------- */

static void worker_help(FILE *f)
{
    fprintf(f, "usage: hotsplit worker --name NAME --coordinator tcp://HOST:PORT\n"
               "                       [--listen tcp://*:PORT] [--model FILE.onnx] [options]\n\n"
               "Registers as device NAME of the coordinator's cluster and runs the stages of\n"
               "the plans it is given, sending activations straight to the next stage.\n"
               "Exits with an error if the coordinator does not answer within 10 s.\n\n"
               "  --model FILE      the coordinator's model file (checked by digest); without\n"
               "                    it the model is fetched from the coordinator\n"
               "  --model-cache DIR without --model: keep the fetched model in DIR (as\n"
               "                    DIGEST.onnx) and load it from there, so that weights are\n"
               "                    held per range as with --model; a model already in DIR\n"
               "                    with the coordinator's digest is not fetched again\n"
               "  --listen EP       data endpoint to bind (default tcp://*:0, any port)\n"
               "  --advertise HOST  host name others reach this one by (default 127.0.0.1)\n"
               "  --threads N       BLAS threads (default 1)\n"
               "  --spin-us US      after a stage, keep polling US microseconds before sleeping\n"
               "                    (default 0): the next activation finds the core awake\n"
               "                    rather than halted, at the cost of CPU and power\n"
               "  --hold-all-weights  keep every weight of the model; by default, with\n"
               "                    --model, the worker holds the weights of the node ranges\n"
               "                    its plans may run (loaded from FILE when a plan is\n"
               "                    prepared) and lets the others go 5 s after no plan needs\n"
               "                    them\n"
               "  --verbose         log registration and the weights held\n%s", net_help);
}

int cmd_worker(int argc, char **argv)
{
    static const struct option opts[] = {
        {"name", required_argument, 0, 'n'},   {"coordinator", required_argument, 0, 'c'},
        {"listen", required_argument, 0, 'l'}, {"model", required_argument, 0, 'm'},
        {"advertise", required_argument, 0, 'a'}, {"threads", required_argument, 0, 'T'},
        {"verbose", no_argument, 0, 'v'},      {"help", no_argument, 0, 'h'},
        {"spin-us", required_argument, 0, 'U'}, {"hold-all-weights", no_argument, 0, 'W'},
        {"model-cache", required_argument, 0, 'C'}, NET_OPTIONS, {0, 0, 0, 0}};
    hs_worker_opts o = {.threads = 1};
    long v;
    int c, rc;
    optind = 0;
    opterr = 0;
    while ((c = getopt_long(argc, argv, ":n:c:l:m:a:T:U:vh", opts, NULL)) != -1) {
        switch (c) {
        case 'n': o.name = optarg; break;
        case 'c': o.coordinator = optarg; break;
        case 'l': o.listen = optarg; break;
        case 'm': o.model_path = optarg; break;
        case 'C': o.model_cache = optarg; break;
        case 'a': o.advertise_host = optarg; break;
        case 'v': o.verbose = true; break;
        case 'W': o.hold_all_weights = true; break;
        case 'T':
            if (!cli_parse_int(optarg, 1, 256, &v))
                return cli_usage_error("worker", "--threads '%s': expected 1 to 256", optarg);
            o.threads = (int)v;
            break;
        case 'U':
            if ((rc = cli_parse_spin_us("worker", optarg, &o.spin_us)) != EXIT_OK)
                return rc;
            break;
        case 'h': worker_help(stdout); return EXIT_OK;
        default:
            if ((rc = net_option("worker", c, &o.net)) >= 0) {
                if (rc)
                    return rc;
                break;
            }
            return cli_bad_option("worker", c, argv);
        }
    }
    if (optind != argc)
        return cli_usage_error("worker", "unexpected argument '%s'", argv[optind]);
    if (!o.name || !o.coordinator)
        return cli_usage_error("worker", "--name and --coordinator are required");
    if (o.model_path && o.model_cache)
        return cli_usage_error("worker", "--model-cache keeps a fetched model: not with --model");
    hs_error err = {0};
    hs_worker *w;
    if (hs_worker_new(&o, &w, &err) != HS_OK)
        return cli_runtime_error("worker", "%s", err.msg);
    running_worker = w;
    catch_signals();
    hs_status st = hs_worker_run(w, &err);
    if (st == HS_OK) { /* a failure (refused, no answer) is told in its one line alone */
        hs_worker_stats ws;
        hs_worker_get_stats(w, &ws);
        fprintf(stderr, "worker %s: ran %llu stages, dropped %llu messages\n", o.name,
                (unsigned long long)ws.stages_run, (unsigned long long)ws.bad_messages);
    }
    running_worker = NULL;
    hs_worker_free(w);
    return st == HS_OK ? EXIT_OK : cli_runtime_error("worker", "%s", err.msg);
}

/* ---- keygen -------------------------------------------------------------------------------- */

int cmd_keygen(int argc, char **argv)
{
    if (argc == 2 && strcmp(argv[1], "--help") == 0) {
        printf("usage: hotsplit keygen -o FILE\n\nWrites a CurveZMQ key pair to FILE and its "
               "public key to FILE.pub (for\nthe coordinator's --curve-allow list, or "
               "--curve-server).\n");
        return EXIT_OK;
    }
    if (argc != 3 || strcmp(argv[1], "-o") != 0)
        return cli_usage_error("keygen", "expected -o FILE");
    hs_error err = {0};
    if (hs_keygen(argv[2], &err) != HS_OK)
        return cli_runtime_error("keygen", "%s", err.msg);
    printf("wrote %s and %s.pub\n", argv[2], argv[2]);
    return EXIT_OK;
}
