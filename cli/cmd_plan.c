/*
 * hotsplit plan MODEL.onnx --cluster FILE.yaml [--objective O] [--rate R] [--set K=V]...
 *               [--max-latency MS] [--battery-only] [--max-stages N] [--profile P.yaml]
 *               [--pareto] [--json] [--input-shape S]
 * The solver's plan for a model on a cluster, its predicted figures, and the two baselines
 * every split is measured against: all on the source, and the best two-device split.
 */
#define _GNU_SOURCE
#include <getopt.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "hotsplit/cost.h"
#include "hotsplit/solver.h"

#define MAX_SETS 64

static void help(FILE *f)
{
    fprintf(f,
            "usage: hotsplit plan MODEL.onnx --cluster FILE.yaml [--objective O] [--rate R]\n"
            "                     [--set DEVICE.FIELD=V | --set A-B.FIELD=V]...\n"
            "                     [--max-latency MS] [--battery-only] [--max-stages N]\n"
            "                     [--profile PROFILE.yaml] [--pareto] [--json]\n"
            "                     [--input-shape 1x3x224x224]\n\n"
            "Splits the model across the cluster's devices as a pipeline of stages and prints\n"
            "each stage (device, node range, first and last node), the bytes crossing each cut,\n"
            "the predicted stage times, latency, throughput, energy per inference, lifetime and\n"
            "memory per device, next to two baselines: everything on the source, and the best\n"
            "split between the source and one other device.\n\n"
            "objectives: latency (default), throughput, energy, lifetime (needs --rate),\n"
            "            load-latency (needs --rate; M/D/1 queueing per stage)\n"
            "--rate R          arrival rate in requests/s: plans must sustain it\n"
            "--max-latency MS  bound on the latency (the load latency when --rate is given)\n"
            "--battery-only    count energy on battery-powered devices only\n"
            "--profile FILE    node times measured by 'hotsplit profile' (default: analytic)\n"
            "--pareto          every plan on the latency/throughput/energy Pareto front\n"
            "Exit codes: 0 ok, 1 error or no feasible plan, 2 usage error.\n");
}

typedef struct plan_opts {
    const char *model, *cluster, *profile, *shape;
    const char *sets[MAX_SETS];
    int n_sets;
    hs_objective objective;
    hs_constraints k;
    bool pareto, json;
} plan_opts;

static const char *node_name(const hs_graph *g, int i)
{
    hs_node_info ni;
    hs_graph_node_info(g, i, &ni);
    return ni.name;
}

/* ---- text output ----------------------------------------------------------------------------- */

static void print_stages(const hs_graph *g, const hs_cluster *c, const hs_plan *pl)
{
    printf("  %-5s %-12s %-12s %-48s %10s %10s\n", "stage", "device", "nodes", "first .. last",
           "time ms", "memory MB");
    for (int s = 0; s < pl->n_stages; s++) {
        const hs_stage *st = &pl->stages[s];
        const char *dev = c->devices[st->device].name;
        if (s > 0)
            printf("  %5s %-12s %10.0f B over %s -> %s: %.3f ms\n", "", "  transfer",
                   pl->transfer_bytes[s], c->devices[pl->stages[s - 1].device].name, dev,
                   1e3 * pl->transfer_s[s]);
        char range[32], names[160];
        snprintf(range, sizeof range, "[%d, %d)", st->first, st->last);
        if (st->first < st->last)
            snprintf(names, sizeof names, "%.22s .. %.22s", node_name(g, st->first),
                     node_name(g, st->last - 1));
        else
            snprintf(names, sizeof names, "(forwards the input)");
        printf("  %-5d %-12s %-12s %-48s %10.3f %10.1f\n", s, dev, range, names,
               1e3 * pl->stage_s[s], pl->memory_bytes[s] / 1048576.0);
    }
    if (pl->delivery_bytes > 0 || pl->delivery_s > 0)
        printf("  %5s %-12s %10.0f B over %s -> %s (results): %.3f ms\n", "", "  delivery",
               pl->delivery_bytes, c->devices[pl->stages[pl->n_stages - 1].device].name,
               c->devices[c->sink].name, 1e3 * pl->delivery_s);
}

static void print_figures(const char *label, const hs_plan *pl, const hs_constraints *k)
{
    printf("%-22s latency %9.3f ms  throughput %8.2f/s  energy %8.4f J", label,
           1e3 * pl->latency_s, pl->throughput_rps, pl->energy_j);
    if (k->rate > 0) {
        printf("  load latency %9.3f ms", 1e3 * pl->load_latency_s);
        if (isinf(pl->lifetime_s))
            printf("  lifetime inf");
        else
            printf("  lifetime %8.2f h", pl->lifetime_s / 3600.0);
        if (!pl->sustainable)
            printf("  (cannot sustain the rate)");
    }
    printf("\n");
}

/* ---- JSON output ----------------------------------------------------------------------------- */

static void json_num(const char *key, double v, bool comma)
{
    printf("\"%s\": ", key);
    if (isfinite(v))
        printf("%.9g", v);
    else
        printf("null");
    printf(comma ? ", " : "");
}

static void json_plan(const hs_graph *g, const hs_cluster *c, const hs_plan *pl,
                      const hs_problem *p, const hs_constraints *k, hs_objective o)
{
    printf("{\"stages\": [");
    for (int s = 0; s < pl->n_stages; s++) {
        const hs_stage *st = &pl->stages[s];
        printf("%s{\"device\": ", s ? ", " : "");
        cli_json_string(stdout, c->devices[st->device].name);
        printf(", \"first\": %d, \"last\": %d, ", st->first, st->last);
        if (st->first < st->last) {
            printf("\"first_node\": ");
            cli_json_string(stdout, node_name(g, st->first));
            printf(", \"last_node\": ");
            cli_json_string(stdout, node_name(g, st->last - 1));
            printf(", ");
        }
        json_num("time_s", pl->stage_s[s], true);
        json_num("memory_bytes", pl->memory_bytes[s], true);
        json_num("in_bytes", pl->transfer_bytes[s], true);
        json_num("in_s", pl->transfer_s[s], false);
        printf("}");
    }
    printf("], ");
    json_num("delivery_bytes", pl->delivery_bytes, true);
    json_num("delivery_s", pl->delivery_s, true);
    json_num("latency_s", pl->latency_s, true);
    json_num("bottleneck_s", pl->bottleneck_s, true);
    json_num("throughput_rps", pl->throughput_rps, true);
    json_num("energy_j", pl->energy_j, true);
    json_num("lifetime_s", pl->lifetime_s, true);
    json_num("load_latency_s", pl->load_latency_s, true);
    printf("\"sustainable\": %s, ", pl->sustainable ? "true" : "false");
    json_num("score", hs_plan_score(p, k, o, pl), false);
    printf("}");
}

/* ---- baselines ------------------------------------------------------------------------------- */

static bool all_on_source(const hs_problem *p, const hs_constraints *k, hs_plan *pl)
{
    memset(pl, 0, sizeof *pl);
    pl->n_stages = 1;
    pl->stages[0] = (hs_stage){.device = p->cluster->source, .first = 0, .last = p->n_nodes};
    return hs_plan_evaluate(p, k, pl, NULL) == HS_OK;
}

static bool best_two_device(const hs_problem *p, hs_objective o, const hs_constraints *k,
                            hs_plan *pl)
{
    hs_constraints two = *k;
    two.max_stages = 2;
    return hs_solve(p, o, &two, pl, NULL) == HS_OK;
}

/* ---- the command ----------------------------------------------------------------------------- */

static int run(const plan_opts *o)
{
    hs_error err = {0};
    hs_cluster cluster;
    if (hs_cluster_load(o->cluster, &cluster, &err) != HS_OK)
        return cli_runtime_error("plan", "%s", err.msg);
    for (int i = 0; i < o->n_sets; i++)
        if (hs_cluster_set(&cluster, o->sets[i], &err) != HS_OK)
            return cli_usage_error("plan", "%s", err.msg);
    hs_graph *g;
    int rc = cli_load("plan", o->model, o->shape, &g);
    if (rc)
        return rc;
    hs_profile *prof = NULL;
    hs_cost_model *m = NULL;
    hs_plan *front = NULL;
    hs_problem p;
    int n_front = 0;
    if (o->profile && hs_profile_load(o->profile, &prof, &err) != HS_OK) {
        rc = cli_runtime_error("plan", "%s", err.msg);
        goto done;
    }
    if (hs_cost_model_new(g, &cluster, prof, &m, &err) != HS_OK ||
        hs_cost_problem(m, &p, &err) != HS_OK) {
        rc = cli_runtime_error("plan", "%s", err.msg);
        goto done;
    }

    if (o->pareto) {
        if (hs_solve_pareto(&p, &o->k, &front, &n_front, &err) != HS_OK) {
            rc = cli_runtime_error("plan", "%s", err.msg);
            goto done;
        }
        if (o->json) {
            printf("{\"pareto\": [");
            for (int i = 0; i < n_front; i++) {
                printf(i ? ",\n  " : "\n  ");
                json_plan(g, &cluster, &front[i], &p, &o->k, HS_OBJ_LATENCY);
            }
            printf("\n]}\n");
        } else {
            printf("model: %s (%d nodes)  cluster: %s (%d devices)\n", o->model,
                   hs_graph_node_count(g), o->cluster, cluster.n_devices);
            printf("Pareto front over latency, throughput and energy: %d plans\n", n_front);
            for (int i = 0; i < n_front; i++) {
                printf("\nplan %d:\n", i + 1);
                print_stages(g, &cluster, &front[i]);
                print_figures("  predicted:", &front[i], &o->k);
            }
        }
        goto done;
    }

    hs_plan best, source, two;
    if (hs_solve(&p, o->objective, &o->k, &best, &err) != HS_OK) {
        rc = cli_runtime_error("plan", "%s", err.msg);
        goto done;
    }
    bool has_source = all_on_source(&p, &o->k, &source);
    bool has_two = best_two_device(&p, o->objective, &o->k, &two);
    if (o->json) {
        printf("{\"model\": ");
        cli_json_string(stdout, o->model);
        printf(", \"cluster\": ");
        cli_json_string(stdout, o->cluster);
        printf(", \"objective\": \"%s\", ", hs_objective_name(o->objective));
        json_num("rate", o->k.rate, true);
        printf("\"nodes\": %d, \"plan\": ", hs_graph_node_count(g));
        json_plan(g, &cluster, &best, &p, &o->k, o->objective);
        printf(", \"baselines\": {\"all_on_source\": ");
        if (has_source)
            json_plan(g, &cluster, &source, &p, &o->k, o->objective);
        else
            printf("null");
        printf(", \"best_two_device\": ");
        if (has_two)
            json_plan(g, &cluster, &two, &p, &o->k, o->objective);
        else
            printf("null");
        printf("}}\n");
        goto done;
    }
    printf("model: %s (%d nodes, %.2f GFLOP)\ncluster: %s (%d devices, source %s, sink %s)\n",
           o->model, hs_graph_node_count(g), hs_graph_flops(g) / 1e9, o->cluster,
           cluster.n_devices, cluster.devices[cluster.source].name,
           cluster.devices[cluster.sink].name);
    printf("objective: %s", hs_objective_name(o->objective));
    if (o->k.rate > 0)
        printf(", rate %.3g/s", o->k.rate);
    if (o->k.max_latency_s > 0)
        printf(", latency bound %.3f ms", 1e3 * o->k.max_latency_s);
    printf(", costs: %s\n\nplan:\n", o->profile ? o->profile : "analytic model");
    print_stages(g, &cluster, &best);
    printf("\n");
    print_figures("predicted:", &best, &o->k);
    if (has_source) {
        double score = hs_plan_score(&p, &o->k, o->objective, &source);
        print_figures(isinf(score) && score > 0 ? "all on source (infeas.):" : "all on source:",
                      &source, &o->k);
    } else {
        printf("all on source:         not possible\n");
    }
    if (has_two)
        print_figures("best two-device split:", &two, &o->k);
    else
        printf("best two-device split: no feasible plan\n");
done:
    free(front);
    hs_cost_model_free(m);
    hs_profile_free(prof);
    hs_graph_free(g);
    return rc;
}

int cmd_plan(int argc, char **argv)
{
    static const struct option opts[] = {
        {"cluster", required_argument, 0, 'c'},   {"objective", required_argument, 0, 'O'},
        {"rate", required_argument, 0, 'r'},      {"set", required_argument, 0, 'S'},
        {"max-latency", required_argument, 0, 'L'}, {"battery-only", no_argument, 0, 'b'},
        {"max-stages", required_argument, 0, 'm'}, {"profile", required_argument, 0, 'p'},
        {"pareto", no_argument, 0, 'P'},          {"json", no_argument, 0, 'j'},
        {"input-shape", required_argument, 0, 's'}, {"help", no_argument, 0, 'h'},
        {0, 0, 0, 0}};
    plan_opts o = {.objective = HS_OBJ_LATENCY};
    int c, rc;
    long stages;
    char *end;
    optind = 0; /* glibc: a full re-initialisation, as demo runs several commands */
    opterr = 0;
    while ((c = getopt_long(argc, argv, ":c:O:r:S:L:bm:p:Pjs:h", opts, NULL)) != -1) {
        switch (c) {
        case 'c': o.cluster = optarg; break;
        case 'p': o.profile = optarg; break;
        case 's': o.shape = optarg; break;
        case 'b': o.k.battery_only = true; break;
        case 'P': o.pareto = true; break;
        case 'j': o.json = true; break;
        case 'O':
            if ((rc = cli_parse_objective("plan", optarg, &o.objective)) != EXIT_OK)
                return rc;
            break;
        case 'r':
            o.k.rate = strtod(optarg, &end);
            if (*end || end == optarg || !(o.k.rate > 0) || !isfinite(o.k.rate))
                return cli_usage_error("plan", "--rate '%s': expected requests/s > 0", optarg);
            break;
        case 'L':
            o.k.max_latency_s = strtod(optarg, &end) / 1e3;
            if (*end || end == optarg || !(o.k.max_latency_s > 0))
                return cli_usage_error("plan", "--max-latency '%s': expected milliseconds > 0",
                                       optarg);
            break;
        case 'm':
            if (!cli_parse_int(optarg, 1, HS_MAX_DEVICES, &stages))
                return cli_usage_error("plan", "--max-stages '%s': expected 1 to %d", optarg,
                                       HS_MAX_DEVICES);
            o.k.max_stages = (int)stages;
            break;
        case 'S':
            if (o.n_sets == MAX_SETS)
                return cli_usage_error("plan", "more than %d --set options", MAX_SETS);
            o.sets[o.n_sets++] = optarg;
            break;
        case 'h': help(stdout); return EXIT_OK;
        default: return cli_bad_option("plan", c, argv);
        }
    }
    if (optind != argc - 1)
        return cli_usage_error("plan", "expected one MODEL.onnx");
    if (!o.cluster)
        return cli_usage_error("plan", "missing --cluster FILE.yaml");
    if ((o.objective == HS_OBJ_LIFETIME || o.objective == HS_OBJ_LOAD_LATENCY) && !o.k.rate)
        return cli_usage_error("plan", "--objective %s needs --rate",
                               hs_objective_name(o.objective));
    o.model = argv[optind];
    return run(&o);
}
