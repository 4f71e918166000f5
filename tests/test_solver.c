/*
 * The partitioner (solver/partition.c) against an independent reference written in this file
 * straight from the definitions in include/hotsplit/solver.h: ref_evaluate() computes every
 * predicted figure of a plan, and brute_force() enumerates every plan of the plan space (every
 * chain of distinct devices from the source, up to max_stages stages, every placement of the
 * cuts, stage 0 possibly empty) and keeps each objective's optimum and the exact Pareto set.
 *
 * Random instances (seeded, so a failure names a seed that reproduces it) have up to 12 nodes
 * and 2-4 devices: cut bytes from a random DAG of tensors (skip connections make cuts inside a
 * "residual block" carry more) or plain random; memory limits, rates and latency bounds that
 * sometimes bind; sparse or complete links; battery devices; excluded devices (the source and
 * the sink included); batteries below their floor. hs_solve must reach the brute-force optimum
 * and, among the optimal plans, return one of the lowest latency; hs_solve_pareto must return
 * exactly the brute-force front, and hs_plan_evaluate must agree with ref_evaluate figure by
 * figure. Larger instances (up to 80 nodes, 6 devices), beyond brute force, check the fast
 * paths of each objective against the general label-setting search. Small cases worked out by
 * hand pin the definitions themselves.
 *
 * Environment: HS_SOLVER_N (instances per random test, default 500), HS_SOLVER_SEED (run that
 * one seed only, printing the instance), HS_SOLVER_REPORT (failures printed per test, default
 * 5).
 */
#include <criterion/criterion.h>
#include <math.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "hotsplit/solver.h"

#define MAXN 16     /* nodes an instance can hold */
#define GEN_MAXN 12 /* nodes of a random instance */
#define MAXD 4      /* devices of a random instance */
#define TOL 1e-9
#define TIE_TOL 1e-12 /* scores this close are ties, broken by the lowest latency */
#define INFEASIBLE_PREFIX "no feasible plan: "

/* ---- comparisons ------------------------------------------------------------------------ */

static bool close_to(double a, double b, double tol)
{
    if (isinf(a) || isinf(b))
        return a == b;
    if (isnan(a) || isnan(b))
        return false;
    return fabs(a - b) <= tol * fmax(fabs(a), fabs(b)) + 1e-15;
}

/* ---- random numbers (splitmix64) -------------------------------------------------------- */

typedef struct rng {
    uint64_t s;
} rng;

static uint64_t rng_next(rng *r)
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

static int rng_int(rng *r, int lo, int hi) /* inclusive */
{
    return lo + (int)(rng_next(r) % (uint64_t)(hi - lo + 1));
}

static bool rng_chance(rng *r, double p)
{
    return rng_unif(r, 0, 1) < p;
}

/* ---- instances -------------------------------------------------------------------------- */

typedef struct inst {
    uint64_t seed;
    int n;
    hs_cluster cl;
    double node_time[HS_MAX_DEVICES * MAXN];
    double cut[MAXN + 1], weight[MAXN], live[MAXN];
    double io[HS_MAX_DEVICES]; /* CPU seconds per byte sent or received (0: free) */
    double outside;            /* bytes the source exchanges with outside clients */
    hs_problem p;
    hs_constraints c;
    const char *cut_kind;
} inst;

static void inst_bind(inst *in)
{
    in->p = (hs_problem){ .n_nodes = in->n, .cluster = &in->cl, .node_time = in->node_time,
                          .cut_bytes = in->cut, .weight_bytes = in->weight,
                          .live_bytes = in->live, .io_s_per_byte = in->io,
                          .outside_bytes = in->outside };
}

static double t_of(const inst *in, int d, int i)
{
    return in->node_time[d * in->n + i];
}

static void inst_print(const inst *in, FILE *f)
{
    const hs_cluster *cl = &in->cl;
    fprintf(f, "instance seed=%llu: n=%d devices=%d source=%d sink=%d cuts=%s\n",
            (unsigned long long)in->seed, in->n, cl->n_devices, cl->source, cl->sink,
            in->cut_kind);
    fprintf(f, "  constraints: rate=%.17g max_latency_s=%.17g battery_only=%d max_stages=%d\n",
            in->c.rate, in->c.max_latency_s, in->c.battery_only, in->c.max_stages);
    for (int d = 0; d < cl->n_devices; d++) {
        const hs_device *v = &cl->devices[d];
        fprintf(f, "  device %d%s: memory=%.17g idle=%.17g active=%.17g tx=%.17g rx=%.17g", d,
                v->excluded ? " (excluded)" : "", v->memory_bytes, v->power.idle_w,
                v->power.active_w, v->power.tx_nj_per_byte, v->power.rx_nj_per_byte);
        if (v->battery.present)
            fprintf(f, " battery cap=%.17g level=%.17g floor=%.17g", v->battery.capacity_wh,
                    v->battery.level, v->battery.floor);
        fprintf(f, "\n    node_time:");
        for (int i = 0; i < in->n; i++)
            fprintf(f, " %.17g", t_of(in, d, i));
        fprintf(f, "\n");
    }
    for (int a = 0; a < cl->n_devices; a++)
        for (int b = 0; b < cl->n_devices; b++)
            if (a != b && cl->links[a][b].bandwidth_bps > 0)
                fprintf(f, "  link %d->%d: bandwidth=%.17g latency=%.17g\n", a, b,
                        cl->links[a][b].bandwidth_bps, cl->links[a][b].latency_s);
    fprintf(f, "  cut_bytes:");
    for (int k = 0; k <= in->n; k++)
        fprintf(f, " %.17g", in->cut[k]);
    fprintf(f, "\n  weight_bytes:");
    for (int i = 0; i < in->n; i++)
        fprintf(f, " %.17g", in->weight[i]);
    fprintf(f, "\n  live_bytes:");
    for (int i = 0; i < in->n; i++)
        fprintf(f, " %.17g", in->live[i]);
    fprintf(f, "\n");
}

static const char *plan_str(const hs_stage *st, int S, char *buf, size_t size)
{
    size_t used = 0;
    buf[0] = '\0';
    for (int s = 0; s < S && used < size; s++)
        used += (size_t)snprintf(buf + used, size - used, "%s[%d,%d)@%d", s ? " " : "",
                                 st[s].first, st[s].last, st[s].device);
    return buf;
}

/* ---- the reference: a plan's figures, from the header's definitions -------------------- */

typedef struct ref_eval {
    bool valid;
    const char *why;
    double stage_s[HS_MAX_DEVICES], transfer_s[HS_MAX_DEVICES], transfer_bytes[HS_MAX_DEVICES];
    double delivery_s, delivery_bytes;
    double memory[HS_MAX_DEVICES];
    double latency, bottleneck, energy, lifetime, load_latency;
    bool fits, sustainable, meets_bound, feasible;
} ref_eval;

/* One M/D/1 queue's response time with service time s at rate lambda; +inf when saturated. */
static double md1(double lambda, double s)
{
    double u = lambda * s;
    if (u >= 1)
        return INFINITY;
    return s + lambda * s * s / (2 * (1 - u));
}

static ref_eval ref_evaluate(const inst *in, const hs_constraints *c, const hs_stage *st, int S)
{
    const hs_cluster *cl = &in->cl;
    const int n = in->n, D = cl->n_devices;
    ref_eval r = { .valid = false };

    /* validity: the plan space of solver.h */
    if (S < 1 || S > D)
        return r.why = "stage count", r;
    bool used[HS_MAX_DEVICES] = { false };
    for (int s = 0; s < S; s++) {
        int d = st[s].device;
        if (d < 0 || d >= D)
            return r.why = "device out of range", r;
        if (used[d])
            return r.why = "repeated device", r;
        used[d] = true;
        /* an excluded device, or one whose battery is at or below its floor, computes
         * nothing; an excluded source still forwards the input */
        const hs_device *dv = &cl->devices[d];
        bool spent = dv->battery.present && dv->battery.level <= dv->battery.floor;
        if ((dv->excluded || spent) && st[s].last > st[s].first)
            return r.why = "excluded device", r;
        if (st[s].first < 0 || st[s].last > n || st[s].last < st[s].first)
            return r.why = "bad range", r;
        if (s > 0 && st[s].last == st[s].first)
            return r.why = "empty stage after stage 0", r;
        if (s == 0 && st[s].first != 0)
            return r.why = "stage 0 does not start at node 0", r;
        if (s > 0 && st[s].first != st[s - 1].last)
            return r.why = "gap or overlap", r;
        if (s > 0 && !(cl->links[st[s - 1].device][d].bandwidth_bps > 0))
            return r.why = "missing link", r;
    }
    if (st[0].device != cl->source)
        return r.why = "stage 0 not on the source", r;
    if (st[S - 1].last != n)
        return r.why = "nodes not covered", r;
    const int last = st[S - 1].device, sink = cl->sink;
    if (last != sink && !(cl->links[last][sink].bandwidth_bps > 0))
        return r.why = "missing delivery link", r;
    r.valid = true;

    /* figures; a device's stage also pays io for every byte it sends or receives */
    double io_bytes[HS_MAX_DEVICES] = { 0 };
    for (int s = 1; s < S; s++) {
        io_bytes[st[s - 1].device] += in->cut[st[s].first];
        io_bytes[st[s].device] += in->cut[st[s].first];
    }
    if (last != sink) {
        io_bytes[last] += in->cut[n];
        io_bytes[sink] += in->cut[n];
    }
    io_bytes[st[0].device] += in->outside; /* stage 0 runs on the source */
    double busy[HS_MAX_DEVICES] = { 0 }, tx[HS_MAX_DEVICES] = { 0 }, rx[HS_MAX_DEVICES] = { 0 };
    const double lambda = c->rate;
    r.latency = r.bottleneck = r.load_latency = 0;
    r.fits = true;
    for (int s = 0; s < S; s++) {
        int d = st[s].device;
        double t = 0, w = 0, peak = 0;
        for (int i = st[s].first; i < st[s].last; i++) {
            t += t_of(in, d, i);
            w += in->weight[i];
            peak = fmax(peak, in->live[i]);
        }
        t += in->io[d] * io_bytes[d];
        r.stage_s[s] = t;
        r.memory[s] = w + peak;
        if (r.memory[s] > cl->devices[d].memory_bytes)
            r.fits = false;
        busy[d] = t;
        r.latency += t;
        r.bottleneck = fmax(r.bottleneck, t);
        if (lambda > 0)
            r.load_latency += md1(lambda, t);
        if (s > 0) {
            const hs_link *l = &cl->links[st[s - 1].device][d];
            double bytes = in->cut[st[s].first], svc = bytes * 8 / l->bandwidth_bps;
            r.transfer_bytes[s] = bytes;
            r.transfer_s[s] = l->latency_s + svc;
            r.latency += r.transfer_s[s];
            r.bottleneck = fmax(r.bottleneck, svc);
            if (lambda > 0)
                r.load_latency += md1(lambda, svc) + l->latency_s;
            tx[st[s - 1].device] += bytes;
            rx[d] += bytes;
        }
    }
    r.delivery_s = r.delivery_bytes = 0;
    if (last != sink) {
        const hs_link *l = &cl->links[last][sink];
        double bytes = in->cut[n], svc = bytes * 8 / l->bandwidth_bps;
        r.delivery_bytes = bytes;
        r.delivery_s = l->latency_s + svc;
        r.latency += r.delivery_s;
        r.bottleneck = fmax(r.bottleneck, svc);
        if (lambda > 0)
            r.load_latency += md1(lambda, svc) + l->latency_s;
        tx[last] += bytes;
        rx[sink] += bytes;
    }

    r.energy = 0;
    r.lifetime = lambda > 0 ? INFINITY : NAN;
    for (int d = 0; d < D; d++) {
        const hs_device *v = &cl->devices[d];
        if (v->excluded)
            continue;
        double radio = (tx[d] * v->power.tx_nj_per_byte + rx[d] * v->power.rx_nj_per_byte) * 1e-9;
        if (!c->battery_only || v->battery.present) {
            r.energy += v->power.active_w * busy[d] + radio;
            if (lambda > 0)
                r.energy += v->power.idle_w * (1 / lambda - busy[d]);
        }
        if (lambda > 0 && v->battery.present) {
            double power = lambda * (v->power.active_w * busy[d] + radio) +
                           v->power.idle_w * (1 - lambda * busy[d]);
            /* at or below its floor a device lives 0 s; one drawing no power lives forever */
            double joules = v->battery.capacity_wh * 3600 * (v->battery.level - v->battery.floor);
            double life = joules <= 0 ? 0 : power > 0 ? joules / power : INFINITY;
            r.lifetime = fmin(r.lifetime, life);
        }
    }

    r.sustainable = lambda == 0 || lambda * r.bottleneck < 1;
    if (c->max_latency_s > 0)
        r.meets_bound = (lambda > 0 ? r.load_latency : r.latency) <= c->max_latency_s;
    else
        r.meets_bound = true;
    r.feasible = r.fits && r.sustainable && r.meets_bound;
    return r;
}

/* The value an objective minimises (solver.h, hs_plan_score). */
static double ref_score(const ref_eval *r, hs_objective o)
{
    if (!r->valid || !r->feasible)
        return INFINITY;
    switch (o) {
    case HS_OBJ_LATENCY:
        return r->latency;
    case HS_OBJ_THROUGHPUT:
        return r->bottleneck;
    case HS_OBJ_ENERGY:
        return r->energy;
    case HS_OBJ_LIFETIME:
        return -r->lifetime;
    case HS_OBJ_LOAD_LATENCY:
        return r->load_latency;
    default:
        cr_assert_fail("objective %d", o);
        return NAN;
    }
}

/* ---- the reference: brute force over the plan space ------------------------------------- */

typedef void (*plan_fn)(void *ctx, const hs_stage *st, int S);

/* Places the cuts of stages [s, S): stage s starts at `from`; stage 0 may be empty, the others
 * may not, and the last one ends at node n. */
static void enum_cuts(const inst *in, hs_stage *st, int S, int s, int from, plan_fn fn,
                      void *ctx)
{
    st[s].first = from;
    if (s == S - 1) {
        st[s].last = in->n;
        fn(ctx, st, S);
        return;
    }
    for (int end = s == 0 ? from : from + 1; end <= in->n - (S - 1 - s); end++) {
        st[s].last = end;
        enum_cuts(in, st, S, s + 1, end, fn, ctx);
    }
}

/* Every chain of distinct devices that starts at the source, of every length up to max_stages,
 * with every placement of the cuts. Excluded devices and missing links are enumerated too: the
 * reference evaluator rejects them. */
static void enum_chains(const inst *in, hs_stage *st, int len, int max_len, bool *used,
                        plan_fn fn, void *ctx)
{
    enum_cuts(in, st, len, 0, 0, fn, ctx);
    if (len == max_len)
        return;
    for (int d = 0; d < in->cl.n_devices; d++) {
        if (used[d])
            continue;
        used[d] = true;
        st[len].device = d;
        enum_chains(in, st, len + 1, max_len, used, fn, ctx);
        used[d] = false;
    }
}

static void enum_plans(const inst *in, int max_stages, plan_fn fn, void *ctx)
{
    hs_stage st[HS_MAX_DEVICES];
    bool used[HS_MAX_DEVICES] = { false };
    int D = in->cl.n_devices;
    int max_len = max_stages > 0 && max_stages < D ? max_stages : D;
    st[0].device = in->cl.source;
    used[in->cl.source] = true;
    enum_chains(in, st, 1, max_len, used, fn, ctx);
}

#define MAX_PLANS 4096

typedef struct vec3 {
    double lat, bott, energy;
} vec3;

typedef struct brute {
    const inst *in;
    const hs_constraints *c;
    int n_plans, n_valid, n_feasible;
    double best[HS_OBJ_COUNT];      /* optimum score; +inf if nothing feasible */
    double best_lat[HS_OBJ_COUNT];  /* lowest latency among the optimal plans (ties) */
    hs_stage best_plan[HS_OBJ_COUNT][HS_MAX_DEVICES];
    int best_S[HS_OBJ_COUNT];
    vec3 feas[MAX_PLANS];
    int n_feas;
    vec3 front[MAX_PLANS];
    int n_front;
} brute;

static void brute_visit(void *ctx, const hs_stage *st, int S)
{
    brute *b = ctx;
    b->n_plans++;
    ref_eval r = ref_evaluate(b->in, b->c, st, S);
    if (!r.valid)
        return;
    b->n_valid++;
    if (!r.feasible)
        return;
    b->n_feasible++;
    cr_assert_lt(b->n_feas, MAX_PLANS);
    b->feas[b->n_feas++] = (vec3){ r.latency, r.bottleneck, r.energy };
    for (int o = 0; o < HS_OBJ_COUNT; o++) {
        if (b->c->rate <= 0 && (o == HS_OBJ_LIFETIME || o == HS_OBJ_LOAD_LATENCY))
            continue;
        double v = ref_score(&r, o);
        if (v < b->best[o] || (v == b->best[o] && r.latency < b->best_lat[o])) {
            b->best[o] = v;
            b->best_lat[o] = r.latency;
            memcpy(b->best_plan[o], st, sizeof *st * (size_t)S);
            b->best_S[o] = S;
        }
    }
}

static bool dominates(const vec3 *a, const vec3 *b)
{
    return a->lat <= b->lat && a->bott <= b->bott && a->energy <= b->energy &&
           (a->lat < b->lat || a->bott < b->bott || a->energy < b->energy);
}

static bool vec_close(const vec3 *a, const vec3 *b)
{
    return close_to(a->lat, b->lat, TOL) && close_to(a->bott, b->bott, TOL) &&
           close_to(a->energy, b->energy, TOL);
}

/* Fills *b with every objective's optimum and the Pareto front (distinct vectors only). */
static void brute_force(const inst *in, const hs_constraints *c, brute *b)
{
    b->in = in;
    b->c = c;
    b->n_plans = b->n_valid = b->n_feasible = b->n_feas = b->n_front = 0;
    for (int o = 0; o < HS_OBJ_COUNT; o++) {
        b->best[o] = INFINITY;
        b->best_lat[o] = INFINITY;
        b->best_S[o] = 0;
    }
    enum_plans(in, c->max_stages, brute_visit, b);
    /* the Pareto front: feasible vectors no other dominates, without duplicates */
    for (int i = 0; i < b->n_feas; i++) {
        bool dominated = false;
        for (int j = 0; j < b->n_feas && !dominated; j++)
            dominated = j != i && dominates(&b->feas[j], &b->feas[i]);
        if (dominated)
            continue;
        bool dup = false;
        for (int k = 0; k < b->n_front && !dup; k++)
            dup = vec_close(&b->front[k], &b->feas[i]);
        if (!dup)
            b->front[b->n_front++] = b->feas[i];
    }
}

/* Lowest latency among feasible plans whose score is within `tol` of the optimum. */
typedef struct tie_ctx {
    const inst *in;
    const hs_constraints *c;
    hs_objective o;
    double tol;
    double best, lat, score, load; /* lowest latency among the ties; that plan's score and
                                      load latency */
    hs_stage plan[HS_MAX_DEVICES];
    int S;
} tie_ctx;

static void tie_visit(void *ctx, const hs_stage *st, int S)
{
    tie_ctx *t = ctx;
    ref_eval r = ref_evaluate(t->in, t->c, st, S);
    double v = ref_score(&r, t->o);
    if (r.valid && r.feasible && close_to(v, t->best, t->tol) && r.latency < t->lat) {
        t->lat = r.latency;
        t->score = v;
        t->load = r.load_latency;
        memcpy(t->plan, st, sizeof *st * (size_t)S);
        t->S = S;
    }
}

static tie_ctx tie_latency(const inst *in, const hs_constraints *c, hs_objective o, double best,
                          double tol)
{
    tie_ctx t = { in, c, o, tol, best, INFINITY, INFINITY, 0, { { 0 } }, 0 };
    enum_plans(in, c->max_stages, tie_visit, &t);
    return t;
}

/* ---- random instances ------------------------------------------------------------------- */

/* Cut bytes of a random DAG of tensors: node i produces one tensor, reads its predecessor's
 * and sometimes a skip connection from further back (a residual block), graph inputs feed the
 * first nodes, and some tensors besides the last one are graph outputs. cut[k] = bytes of the
 * tensors produced before k and consumed at or after k (graph inputs are produced before node
 * 0, graph outputs are consumed at node n). */
static void gen_dag_cuts(rng *r, inst *in)
{
    const int n = in->n;
    int producer[MAXN + 2], last_use[MAXN + 2];
    int n_inputs = rng_chance(r, 0.3) ? 2 : 1;
    int T = n + n_inputs;      /* tensors 0..n_inputs-1 inputs, n_inputs+i output of node i */
    double sz[MAXN + 2];
    for (int t = 0; t < T; t++) {
        sz[t] = rng_logu(r, 1e2, 1e6);
        producer[t] = t < n_inputs ? -1 : t - n_inputs;
        last_use[t] = producer[t];
    }
    for (int i = 0; i < n; i++) {
        int prev = i == 0 ? 0 : n_inputs + i - 1;
        last_use[prev] = i > last_use[prev] ? i : last_use[prev];
        if (i > 0 && rng_chance(r, 0.35)) { /* a skip connection from further back */
            int t = rng_int(r, 0, n_inputs + i - 1);
            last_use[t] = i > last_use[t] ? i : last_use[t];
        }
        if (i < 2 && n_inputs == 2)
            last_use[1] = i > last_use[1] ? i : last_use[1];
    }
    last_use[T - 1] = n; /* the last node's output is a graph output */
    for (int t = 0; t < T; t++)
        if (rng_chance(r, 0.1))
            last_use[t] = n;
    for (int t = 0; t < T; t++) /* an input nobody reads still has to be consumed */
        if (producer[t] < 0 && last_use[t] < 0)
            last_use[t] = 0;
    for (int k = 0; k <= n; k++) {
        double bytes = 0;
        for (int t = 0; t < T; t++)
            if (producer[t] < k && last_use[t] >= k)
                bytes += sz[t];
        in->cut[k] = bytes;
    }
}

typedef struct gen_opts {
    bool need_rate;             /* lifetime and load-latency require a rate */
} gen_opts;

typedef struct min_ctx {
    const inst *in;
    const hs_constraints *c;
    double min_bott, min_lat;   /* over valid plans that fit (min_lat: also sustain the rate) */
} min_ctx;

static void enum_min_visit(void *ctx, const hs_stage *st, int S)
{
    min_ctx *m = ctx;
    ref_eval r = ref_evaluate(m->in, m->c, st, S);
    if (!r.valid || !r.fits)
        return;
    m->min_bott = fmin(m->min_bott, r.bottleneck);
    if (r.sustainable)
        m->min_lat = fmin(m->min_lat, m->c->rate > 0 ? r.load_latency : r.latency);
}

static void gen_instance(uint64_t seed, const gen_opts *opt, inst *in)
{
    memset(in, 0, sizeof *in);
    in->seed = seed;
    rng r = { seed * 0x2545f4914f6cdd1dull + 12345 };
    const int n = in->n = rng_int(&r, 1, GEN_MAXN);
    hs_cluster *cl = &in->cl;
    const int D = cl->n_devices = rng_int(&r, 2, MAXD);
    snprintf(cl->path, sizeof cl->path, "random-%llu", (unsigned long long)seed);
    cl->source = rng_int(&r, 0, D - 1);
    cl->sink = rng_chance(&r, 0.6) ? cl->source : rng_int(&r, 0, D - 1);

    /* costs: a base time per node, a speed per device, noise per (node, device) */
    double base[MAXN], speed[HS_MAX_DEVICES];
    for (int i = 0; i < n; i++)
        base[i] = rng_logu(&r, 1e-4, 2e-2);
    for (int d = 0; d < D; d++) {
        speed[d] = rng_logu(&r, 0.3, 5);
        for (int i = 0; i < n; i++)
            in->node_time[d * n + i] = base[i] / speed[d] * rng_unif(&r, 0.7, 1.3);
    }
    if (rng_chance(&r, 0.6)) {
        gen_dag_cuts(&r, in);
        in->cut_kind = "dag";
    } else {
        for (int k = 0; k <= n; k++)
            in->cut[k] = rng_logu(&r, 1e2, 1e7);
        in->cut_kind = "random";
    }
    double total_w = 0, max_live = 0;
    for (int i = 0; i < n; i++) {
        in->weight[i] = rng_chance(&r, 0.2) ? 0 : rng_logu(&r, 1e3, 1e7);
        in->live[i] = rng_logu(&r, 1e3, 1e6);
        total_w += in->weight[i];
        max_live = fmax(max_live, in->live[i]);
    }

    /* devices */
    bool bind_memory = rng_chance(&r, 0.4);
    /* half the time a faster device draws more than it saves, so that latency and energy
     * pull apart and Pareto fronts grow */
    bool power_grows = rng_chance(&r, 0.5);
    for (int d = 0; d < D; d++) {
        hs_device *v = &cl->devices[d];
        snprintf(v->name, sizeof v->name, "dev%d", d);
        v->speed = 1;
        v->memory_bytes = bind_memory && rng_chance(&r, 0.7)
                              ? rng_unif(&r, 0.15, 1.2) * (total_w + max_live)
                              : 1e12;
        double idle = rng_chance(&r, 0.15) ? 0 : rng_unif(&r, 0.1, 5);
        double active = rng_unif(&r, 0.5, 20) * (power_grows ? pow(speed[d], 1.6) : 1);
        v->power = (hs_power){ .idle_w = idle, .active_w = idle + active,
                               .tx_nj_per_byte = rng_unif(&r, 0, 100),
                               .rx_nj_per_byte = rng_unif(&r, 0, 100) };
        if (rng_chance(&r, 0.5)) {
            double floor = rng_unif(&r, 0.05, 0.3);
            v->battery = (hs_battery){ true, rng_logu(&r, 1, 100), rng_unif(&r, floor, 1),
                                       floor };
        }
        if (d != cl->source && d != cl->sink && rng_chance(&r, 0.15)) {
            v->excluded = true;
            if (v->battery.present && rng_chance(&r, 0.5)) /* below its floor */
                v->battery.level = v->battery.floor * rng_unif(&r, 0, 1);
        }
    }

    /* From a stream of their own, so that the instances of every other seed stay as they were:
     * an excluded source or sink, a battery below its floor on a device not excluded (it may
     * then forward, as the source, but not compute). */
    rng extra = { seed ^ 0x6a09e667f3bcc909ull };
    if (rng_chance(&extra, 0.04))
        cl->devices[cl->source].excluded = true;
    if (rng_chance(&extra, 0.04))
        cl->devices[cl->sink].excluded = true;
    if (rng_chance(&extra, 0.05)) {
        hs_device *v = &cl->devices[rng_int(&extra, 0, D - 1)];
        if (v->battery.present && !v->excluded)
            v->battery.level = v->battery.floor * rng_unif(&extra, 0, 1);
    }

    /* links: complete, or a random sparse set; symmetric or not */
    bool complete = rng_chance(&r, 0.5), symmetric = rng_chance(&r, 0.5);
    for (int a = 0; a < D; a++)
        for (int b = 0; b < D; b++) {
            if (a == b || (symmetric && b < a))
                continue;
            if (!complete && !rng_chance(&r, 0.6))
                continue;
            hs_link l = { rng_logu(&r, 1e6, 1e9), rng_chance(&r, 0.2) ? 0 : rng_unif(&r, 0, 5e-3) };
            cl->links[a][b] = l;
            if (symmetric)
                cl->links[b][a] = l;
        }

    /* constraints */
    hs_constraints *c = &in->c;
    c->battery_only = rng_chance(&r, 0.3);
    c->max_stages = rng_chance(&r, 0.5) ? 0 : rng_int(&r, 1, D);
    inst_bind(in);
    if (opt->need_rate || rng_chance(&r, 0.65)) {
        hs_constraints probe = *c;
        probe.rate = 0;
        min_ctx m = { in, &probe, INFINITY, INFINITY };
        enum_plans(in, c->max_stages, enum_min_visit, &m);
        double u = rng_chance(&r, 0.08) ? rng_unif(&r, 1.0, 1.3) /* nothing sustains it */
                   : rng_chance(&r, 0.4) ? rng_unif(&r, 0.6, 0.999) /* binding */
                                         : rng_unif(&r, 0.01, 0.6);
        c->rate = isfinite(m.min_bott) && m.min_bott > 0 ? u / m.min_bott : rng_logu(&r, 1, 100);
    }
    if (rng_chance(&r, 0.45)) {
        min_ctx m = { in, c, INFINITY, INFINITY };
        enum_plans(in, c->max_stages, enum_min_visit, &m);
        double f = rng_chance(&r, 0.1) ? rng_unif(&r, 0.8, 0.999) : rng_unif(&r, 1.0, 1.6);
        c->max_latency_s = isfinite(m.min_lat) ? f * m.min_lat : rng_logu(&r, 1e-3, 1);
    }
}

static int env_int(const char *name, int dflt)
{
    const char *v = getenv(name);
    return v && *v ? atoi(v) : dflt;
}

/* The seeds a random test runs: HS_SOLVER_SEED alone if set, else base .. base + N - 1. */
typedef struct seeds {
    uint64_t first;
    int count;
    bool verbose;
} seeds;

static seeds seeds_for(uint64_t base)
{
    const char *one = getenv("HS_SOLVER_SEED");
    if (one && *one)
        return (seeds){ strtoull(one, NULL, 10), 1, true };
    return (seeds){ base, env_int("HS_SOLVER_N", 500), false };
}

/* Failures are counted and the first few printed with their seed, so one run shows how many
 * instances agree; the test then fails if any did not. */
#define MAX_REPORTED 5

typedef struct tally {
    const char *what;
    int instances, agree, infeasible, reported;
} tally;

static void fail_at(tally *t, const inst *in, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static void fail_at(tally *t, const inst *in, const char *fmt, ...)
{
    if (t->reported++ >= env_int("HS_SOLVER_REPORT", MAX_REPORTED))
        return;
    va_list ap;
    va_start(ap, fmt);
    fprintf(stderr, "%s: seed %llu: ", t->what, (unsigned long long)in->seed);
    vfprintf(stderr, fmt, ap);
    fprintf(stderr, "\n");
    va_end(ap);
    if (t->reported == 1)
        inst_print(in, stderr);
}

static void tally_end(const tally *t)
{
    fprintf(stderr, "%s: %d/%d instances agree (%d infeasible)\n", t->what, t->agree,
            t->instances, t->infeasible);
    cr_assert_eq(t->agree, t->instances, "%s: %d of %d instances disagree (seeds above)",
                 t->what, t->instances - t->agree, t->instances);
}

/* ---- the reference checked by hand (2 devices, 3 nodes) --------------------------------- */

/*
 * cam (device 0): source and sink; node times 10, 20, 30 ms; idle 1 W, active 5 W, tx 100 nJ/B,
 *   rx 50 nJ/B; battery 1 Wh at level 0.8, floor 0.2 (2160 J usable).
 * edge (device 1): node times 2, 4, 6 ms; idle 2 W, active 10 W, tx 20 nJ/B, rx 10 nJ/B; mains.
 * link both ways: 1 Mbit/s, 1 ms.  cut_bytes 1000, 500, 250, 100.  weights 100, 200, 300 B;
 * live 50, 80, 40 B; memory 1 MB each.
 */
static void hand_instance(inst *in)
{
    memset(in, 0, sizeof *in);
    in->n = 3;
    in->cut_kind = "hand";
    hs_cluster *cl = &in->cl;
    cl->n_devices = 2;
    cl->source = cl->sink = 0;
    cl->devices[0] = (hs_device){ .name = "cam", .speed = 1, .memory_bytes = 1e6,
                                  .power = { 1, 5, 100, 50 }, .battery = { true, 1, 0.8, 0.2 } };
    cl->devices[1] = (hs_device){ .name = "edge", .speed = 5, .memory_bytes = 1e6,
                                  .power = { 2, 10, 20, 10 } };
    cl->links[0][1] = cl->links[1][0] = (hs_link){ 1e6, 1e-3 };
    const double t[2][3] = { { 0.010, 0.020, 0.030 }, { 0.002, 0.004, 0.006 } };
    memcpy(in->node_time, t, sizeof t);
    const double cut[] = { 1000, 500, 250, 100 }, w[] = { 100, 200, 300 }, live[] = { 50, 80, 40 };
    memcpy(in->cut, cut, sizeof cut);
    memcpy(in->weight, w, sizeof w);
    memcpy(in->live, live, sizeof live);
    inst_bind(in);
}

/* Plan A: cam runs [0,1), edge runs [1,3) and sends the outputs back to cam. */
static const hs_stage plan_a[] = { { 0, 0, 1 }, { 1, 1, 3 } };

#define assert_close(a, b, ...) cr_assert(close_to((a), (b), 1e-12), __VA_ARGS__)

/*
 * Plan A without a rate:
 *   stages 10 ms (cam, 10) and 10 ms (edge, 4 + 6);
 *   transfer cam->edge of cut[1] = 500 B: service 500 * 8 / 1e6 = 4 ms, + 1 ms latency = 5 ms;
 *   delivery edge->cam of cut[3] = 100 B: service 0.8 ms, time 1.8 ms;
 *   latency 10 + 5 + 10 + 1.8 = 26.8 ms; bottleneck max(10, 4, 10, 0.8) = 10 ms, 100 /s;
 *   energy: cam 5 W * 10 ms + 500 B * 100 nJ (tx) + 100 B * 50 nJ (rx of the delivery)
 *           = 0.05 + 5e-5 + 5e-6 = 0.050055 J;
 *           edge 10 W * 10 ms + 500 B * 10 nJ (rx) + 100 B * 20 nJ (tx) = 0.100007 J;
 *           total 0.150062 J; battery_only: cam alone, 0.050055 J;
 *   memory: cam 100 + 50 = 150 B; edge 200 + 300 + max(80, 40) = 580 B.
 * With rate 20 /s (1/lambda = 50 ms):
 *   energy + idle: cam 1 W * (50 - 10) ms = 0.04, edge 2 W * 40 ms = 0.08: 0.270062 J
 *           (battery_only: 0.090055 J);
 *   lifetime: cam power = 20 * (5 * 0.01 + 5.5e-5) + 1 * (1 - 20 * 0.01) = 1.0011 + 0.8
 *           = 1.8011 W; 2160 J / 1.8011 W = 1199.26... s (edge is mains powered);
 *   load latency: stage 10 ms, u 0.2: 0.01 + 20 * 1e-4 / 1.6 = 0.01125;
 *                 transfer 4 ms, u 0.08: 0.004 + 20 * 1.6e-5 / 1.84 + 0.001 = 0.005173913...;
 *                 stage 0.01125 again;
 *                 delivery 0.8 ms, u 0.016: 0.0008 + 20 * 6.4e-7 / 1.968 + 0.001 = 0.00180650...;
 *                 sum 0.029480417...
 */
static void check_plan_a(const hs_constraints *c, double stage0, double stage1, double tr1,
                         double tr1_bytes, double del, double del_bytes, double mem0,
                         double mem1, double lat, double bott, double energy, double life,
                         double load, const ref_eval *r, const hs_plan *p)
{
    if (r) {
        cr_assert(r->valid, "%s", r->why);
        assert_close(r->stage_s[0], stage0);
        assert_close(r->stage_s[1], stage1);
        assert_close(r->transfer_s[1], tr1);
        assert_close(r->transfer_bytes[1], tr1_bytes);
        assert_close(r->delivery_s, del);
        assert_close(r->delivery_bytes, del_bytes);
        assert_close(r->memory[0], mem0);
        assert_close(r->memory[1], mem1);
        assert_close(r->latency, lat, "latency %.17g", r->latency);
        assert_close(r->bottleneck, bott);
        assert_close(r->energy, energy, "energy %.17g != %.17g", r->energy, energy);
        if (c->rate > 0) {
            assert_close(r->lifetime, life, "lifetime %.17g", r->lifetime);
            assert_close(r->load_latency, load, "load %.17g", r->load_latency);
        }
    }
    if (p) {
        assert_close(p->stage_s[0], stage0);
        assert_close(p->stage_s[1], stage1);
        assert_close(p->transfer_s[1], tr1, "transfer_s[1] %.17g", p->transfer_s[1]);
        assert_close(p->transfer_bytes[1], tr1_bytes);
        assert_close(p->transfer_s[2], del, "transfer_s[n_stages] is the delivery");
        assert_close(p->delivery_s, del, "delivery_s %.17g", p->delivery_s);
        assert_close(p->delivery_bytes, del_bytes);
        assert_close(p->memory_bytes[0], mem0);
        assert_close(p->memory_bytes[1], mem1);
        assert_close(p->latency_s, lat, "latency %.17g", p->latency_s);
        assert_close(p->bottleneck_s, bott);
        assert_close(p->throughput_rps, 1 / bott);
        assert_close(p->energy_j, energy, "energy %.17g != %.17g", p->energy_j, energy);
        cr_assert(p->sustainable);
        if (c->rate > 0) {
            assert_close(p->lifetime_s, life, "lifetime %.17g", p->lifetime_s);
            assert_close(p->load_latency_s, load, "load %.17g", p->load_latency_s);
        }
    }
}

static const double A_LIFE = 2160 / 1.8011;
static const double A_LOAD = (0.01 + 20 * 1e-4 / 1.6) * 2 + (0.004 + 20 * 1.6e-5 / 1.84 + 0.001) +
                             (0.0008 + 20 * 6.4e-7 / 1.968 + 0.001);

static void check_hand_cases(bool use_lead)
{
    inst in;
    hand_instance(&in);
    struct {
        hs_constraints c;
        double energy;
    } cases[] = {
        { { 0 }, 0.150062 },
        { { .battery_only = true }, 0.050055 },
        { { .rate = 20 }, 0.270062 },
        { { .rate = 20, .battery_only = true }, 0.090055 },
    };
    for (size_t k = 0; k < sizeof cases / sizeof cases[0]; k++) {
        const hs_constraints *c = &cases[k].c;
        ref_eval r = ref_evaluate(&in, c, plan_a, 2);
        hs_plan p = { .n_stages = 2 };
        memcpy(p.stages, plan_a, sizeof plan_a);
        if (use_lead) {
            hs_error err = { 0 };
            cr_assert_eq(hs_plan_evaluate(&in.p, c, &p, &err), HS_OK, "%s", err.msg);
        }
        check_plan_a(c, 0.010, 0.010, 0.005, 500, 0.0018, 100, 150, 580, 0.0268, 0.010,
                     cases[k].energy, A_LIFE, A_LOAD, use_lead ? NULL : &r,
                     use_lead ? &p : NULL);
    }
}

Test(hand, reference_figures)
{
    check_hand_cases(false);
    /* the hand-computed A_LOAD is 0.029480417... */
    cr_assert(fabs(A_LOAD - 0.0294804171) < 1e-9, "%.12g", A_LOAD);
    cr_assert(fabs(A_LIFE - 1199.2671) < 1e-3, "%.12g", A_LIFE);
}

Test(hand, evaluate)
{
    check_hand_cases(true);
}

/*
 * The four plans of the hand instance with at most 2 stages:
 *   all on cam:  latency 60 ms, bottleneck 60 ms, energy 5 * 0.06 = 0.3 J;
 *   k = 0 (cam sends the 1000 B input): transfer 8 + 1 ms, edge 12 ms, delivery 1.8 ms:
 *     latency 22.8 ms, bottleneck 12 ms, energy cam 1000 * 100e-9 + 100 * 50e-9 = 1.05e-4,
 *     edge 10 * 0.012 + 1000 * 10e-9 + 100 * 20e-9 = 0.120012: 0.120117 J;
 *   k = 1 (plan A): 26.8 ms, 10 ms, 0.150062 J;
 *   k = 2: cam 30 ms, transfer 250 B 2 + 1 ms, edge 6 ms, delivery 1.8 ms: 40.8 ms, 30 ms,
 *     cam 0.15 + 2.5e-5 + 5e-6, edge 0.06 + 2.5e-6 + 2e-6: 0.2100345 J.
 * Latency and energy pick k = 0, throughput picks k = 1.
 */
Test(hand, solve)
{
    inst in;
    hand_instance(&in);
    hs_constraints c = { 0 };
    brute b;
    brute_force(&in, &c, &b);
    assert_close(b.best[HS_OBJ_LATENCY], 0.0228);
    assert_close(b.best[HS_OBJ_THROUGHPUT], 0.010);
    assert_close(b.best[HS_OBJ_ENERGY], 0.120117);
    cr_assert_eq(b.n_plans, 4);
    /* Pareto: k = 0 (22.8, 12, 0.120117) and k = 1 (26.8, 10, 0.150062); the others are
     * dominated by k = 0 */
    cr_assert_eq(b.n_front, 2);

    struct {
        hs_objective o;
        int cut;
        double value;
    } want[] = { { HS_OBJ_LATENCY, 0, 0.0228 }, { HS_OBJ_THROUGHPUT, 1, 0.010 },
                 { HS_OBJ_ENERGY, 0, 0.120117 } };
    for (size_t k = 0; k < sizeof want / sizeof want[0]; k++) {
        hs_plan p;
        hs_error err = { 0 };
        cr_assert_eq(hs_solve(&in.p, want[k].o, &c, &p, &err), HS_OK, "%s", err.msg);
        cr_assert_eq(p.n_stages, 2, "%s", hs_objective_name(want[k].o));
        cr_assert_eq(p.stages[0].last, want[k].cut, "%s", hs_objective_name(want[k].o));
    }

    /* A 20 /s rate rules out all on cam (bottleneck 60 ms > 1/20 s). Lifetime: cam's power
     * lambda * (active * busy + radio) + idle * (1 - lambda * busy) at 20 /s:
     *   all on cam: unsustainable;
     *   k = 0: busy 0, radio 1.05e-4 J: 20 * 1.05e-4 + 1 = 1.0021 W -> 2155.47 s;
     *   k = 1: 1.8011 W -> 1199.27 s;  k = 2: busy 0.03: 20 * 0.15003 + 0.4 = 3.4006 W.
     * so lifetime picks k = 0.  Load latency: k = 0 has stages 0 and 12 ms, transfer 8 ms,
     * delivery 0.8 ms: 0 + (0.008 + 20 * 6.4e-5 / (2 * 0.84) + 0.001) + (0.012 + 20 * 1.44e-4 /
     * (2 * 0.76)) + 0.00180650... = 0.0097619 + 0.0138947 + 0.0018065 = 0.0254631 s, below
     * plan A's 0.0294804. */
    c.rate = 20;
    hs_plan p;
    hs_error err = { 0 };
    cr_assert_eq(hs_solve(&in.p, HS_OBJ_LIFETIME, &c, &p, &err), HS_OK, "%s", err.msg);
    cr_assert_eq(p.stages[0].last, 0);
    assert_close(p.lifetime_s, 2160 / 1.0021);
    cr_assert_eq(hs_solve(&in.p, HS_OBJ_LOAD_LATENCY, &c, &p, &err), HS_OK, "%s", err.msg);
    cr_assert_eq(p.stages[0].last, 0);
    double load0 = (0.008 + 20 * 6.4e-5 / 1.68 + 0.001) + (0.012 + 20 * 1.44e-4 / 1.52) +
                   (0.0008 + 20 * 6.4e-7 / 1.968 + 0.001);
    assert_close(p.load_latency_s, load0, "%.17g vs %.17g", p.load_latency_s, load0);
    brute_force(&in, &c, &b);
    assert_close(b.best[HS_OBJ_LOAD_LATENCY], load0);
    assert_close(b.best[HS_OBJ_LIFETIME], -2160 / 1.0021);
}

Test(hand, infeasible)
{
    inst in;
    hand_instance(&in);
    hs_plan p;
    hs_error err = { 0 };
    /* 1000 /s: the best bottleneck is 10 ms, so nothing sustains it */
    hs_constraints c = { .rate = 1000 };
    cr_assert_eq(hs_solve(&in.p, HS_OBJ_LATENCY, &c, &p, &err), HS_ERR_INFEASIBLE);
    cr_assert_eq(strncmp(err.msg, INFEASIBLE_PREFIX, strlen(INFEASIBLE_PREFIX)), 0, "%s",
                 err.msg);
    /* a 20 ms latency bound: the best is 22.8 ms */
    c = (hs_constraints){ .max_latency_s = 0.020 };
    err = (hs_error){ 0 };
    cr_assert_eq(hs_solve(&in.p, HS_OBJ_LATENCY, &c, &p, &err), HS_ERR_INFEASIBLE);
    cr_assert_eq(strncmp(err.msg, INFEASIBLE_PREFIX, strlen(INFEASIBLE_PREFIX)), 0, "%s",
                 err.msg);
    /* memory 400 B on cam, 100 B on edge: all on cam needs 600 + 80 B, and every split puts
     * at least node 2 (300 + 40 B) on edge */
    in.cl.devices[0].memory_bytes = 400;
    in.cl.devices[1].memory_bytes = 100;
    c = (hs_constraints){ 0 };
    err = (hs_error){ 0 };
    cr_assert_eq(hs_solve(&in.p, HS_OBJ_ENERGY, &c, &p, &err), HS_ERR_INFEASIBLE);
    cr_assert_eq(strncmp(err.msg, INFEASIBLE_PREFIX, strlen(INFEASIBLE_PREFIX)), 0, "%s",
                 err.msg);
}

static void expect_invalid(const inst *in, const hs_stage *st, int S, const char *what)
{
    hs_constraints c = { 0 };
    hs_plan p = { .n_stages = S };
    memcpy(p.stages, st, sizeof *st * (size_t)S);
    hs_error err = { 0 };
    ref_eval r = ref_evaluate(in, &c, st, S);
    cr_assert_not(r.valid, "reference accepts the %s plan", what);
    cr_assert_eq(hs_plan_evaluate(&in->p, &c, &p, &err), HS_ERR_INVALID, "%s", what);
    cr_assert_neq(err.msg[0], '\0', "%s: no reason given", what);
    fprintf(stderr, "hand/errors: %s: \"%s\"\n", what, err.msg);
}

Test(hand, errors)
{
    inst in;
    hand_instance(&in);
    const hs_stage gap[] = { { 0, 0, 1 }, { 1, 2, 3 } };
    expect_invalid(&in, gap, 2, "gap");
    const hs_stage overlap[] = { { 0, 0, 2 }, { 1, 1, 3 } };
    expect_invalid(&in, overlap, 2, "overlap");
    /* a third device, so that 3 stages could be valid but for the repeat */
    inst in3;
    hand_instance(&in3);
    in3.cl.n_devices = 3;
    in3.cl.devices[2] = in3.cl.devices[1];
    snprintf(in3.cl.devices[2].name, sizeof in3.cl.devices[2].name, "cloud");
    for (int a = 0; a < 3; a++)
        for (int b = 0; b < 3; b++)
            in3.cl.links[a][b] = a == b ? (hs_link){ 0, 0 } : (hs_link){ 1e6, 1e-3 };
    double t3[3][3] = { { 0.010, 0.020, 0.030 }, { 0.002, 0.004, 0.006 }, { 1, 1, 1 } };
    memcpy(in3.node_time, t3, sizeof t3);
    const hs_stage repeated[] = { { 0, 0, 1 }, { 1, 1, 2 }, { 0, 2, 3 } };
    expect_invalid(&in3, repeated, 3, "repeated device");
    const hs_stage three[] = { { 0, 0, 1 }, { 1, 1, 2 }, { 2, 2, 3 } };
    hs_plan p3 = { .n_stages = 3 };
    memcpy(p3.stages, three, sizeof three);
    hs_error err3 = { 0 };
    cr_assert_eq(hs_plan_evaluate(&in3.p, &(hs_constraints){ 0 }, &p3, &err3), HS_OK, "%s",
                 err3.msg);
    /* 10 + (4 + 1) + 4 + (2 + 1) + 1000 + (0.8 + 1) ms */
    assert_close(p3.latency_s, 1.0238, "%.17g", p3.latency_s);
    const hs_stage not_source[] = { { 1, 0, 3 } };
    expect_invalid(&in, not_source, 1, "stage 0 not on the source");
    const hs_stage empty1[] = { { 0, 0, 3 }, { 1, 3, 3 } };
    expect_invalid(&in, empty1, 2, "empty stage 1");
    const hs_stage short_[] = { { 0, 0, 1 }, { 1, 1, 2 } };
    expect_invalid(&in, short_, 2, "nodes not covered");

    in.cl.links[1][0] = (hs_link){ 0, 0 }; /* edge can no longer deliver to cam */
    expect_invalid(&in, plan_a, 2, "missing delivery link");
    in.cl.links[1][0] = in.cl.links[0][1];
    in.cl.links[0][1] = (hs_link){ 0, 0 };
    expect_invalid(&in, plan_a, 2, "missing link");
    in.cl.links[0][1] = in.cl.links[1][0];
    in.cl.devices[1].excluded = true;
    expect_invalid(&in, plan_a, 2, "excluded device");

    /* lifetime and load latency need a rate */
    hand_instance(&in);
    hs_constraints c = { 0 };
    hs_plan p;
    hs_error err = { 0 };
    cr_assert_eq(hs_solve(&in.p, HS_OBJ_LIFETIME, &c, &p, &err), HS_ERR_INVALID);
    cr_assert_neq(err.msg[0], '\0');
    err = (hs_error){ 0 };
    cr_assert_eq(hs_solve(&in.p, HS_OBJ_LOAD_LATENCY, &c, &p, &err), HS_ERR_INVALID);
    cr_assert_neq(err.msg[0], '\0');
}

/* The rules solver.h states for the corners: an excluded source still forwards the input (an
 * empty stage 0) and an excluded sink still receives the results; an empty stage 0 counts
 * against max_stages; a battery below its floor lives 0 s and computes nothing; a plan that
 * does not sustain the
 * rate has an infinite load latency and the lifetime the formula gives; an empty Pareto front
 * is HS_ERR_INFEASIBLE. */
Test(hand, header_rules)
{
    inst in;
    hand_instance(&in);
    in.cl.devices[0].excluded = true; /* cam: the source and the sink */
    const hs_stage forward[] = { { 0, 0, 0 }, { 1, 0, 3 } };
    hs_plan p = { .n_stages = 2 };
    memcpy(p.stages, forward, sizeof forward);
    hs_constraints c = { .rate = 20 };
    hs_error err = { 0 };
    cr_assert_eq(hs_plan_evaluate(&in.p, &c, &p, &err), HS_OK, "%s", err.msg);
    ref_eval r = ref_evaluate(&in, &c, forward, 2);
    cr_assert(r.valid, "%s", r.why);
    /* edge only: 10 W * 12 ms + 1000 B * 10 nJ + 100 B * 20 nJ, + idle 2 W * 38 ms */
    assert_close(p.energy_j, 0.120012 + 2 * 0.038, "energy %.17g", p.energy_j);
    cr_assert(isinf(p.lifetime_s), "cam is excluded, edge is mains powered");
    expect_invalid(&in, plan_a, 2, "stage on an excluded source");
    hs_plan best;
    cr_assert_eq(hs_solve(&in.p, HS_OBJ_LATENCY, &c, &best, &err), HS_OK, "%s", err.msg);
    cr_assert_eq(best.n_stages, 2);
    cr_assert_eq(best.stages[0].last, 0, "the excluded source computes nothing");
    c.max_stages = 1; /* the empty stage 0 counts: nothing is left for edge */
    err = (hs_error){ 0 };
    cr_assert_eq(hs_solve(&in.p, HS_OBJ_LATENCY, &c, &best, &err), HS_ERR_INFEASIBLE, "%s",
                 err.msg);

    hand_instance(&in);
    in.cl.devices[0].battery.level = 0.1; /* below its floor of 0.2: it may only forward */
    c = (hs_constraints){ .rate = 20 };
    expect_invalid(&in, plan_a, 2, "stage on a source below its battery floor");
    p = (hs_plan){ .n_stages = 2 };
    memcpy(p.stages, forward, sizeof forward);
    cr_assert_eq(hs_plan_evaluate(&in.p, &c, &p, &err), HS_OK, "%s", err.msg);
    cr_assert_eq(p.lifetime_s, 0, "lifetime %.17g", p.lifetime_s);
    cr_assert_eq(ref_evaluate(&in, &c, forward, 2).lifetime, 0);
    cr_assert_eq(hs_solve(&in.p, HS_OBJ_LATENCY, &c, &best, &err), HS_OK, "%s", err.msg);
    cr_assert_eq(best.stages[0].last, 0, "a spent source computes nothing");
    p = (hs_plan){ .n_stages = 2 };
    memcpy(p.stages, plan_a, sizeof plan_a);

    /* 1000 /s on plan A (10 ms stages): cam's power 1000 * (5 * 0.01 + 5.5e-5) + 1 * (1 - 10) */
    hand_instance(&in);
    c = (hs_constraints){ .rate = 1000 };
    cr_assert_eq(hs_plan_evaluate(&in.p, &c, &p, &err), HS_OK, "%s", err.msg);
    cr_assert_not(p.sustainable);
    cr_assert(isinf(p.load_latency_s) && p.load_latency_s > 0);
    assert_close(p.lifetime_s, 2160 / 41.055, "lifetime %.17g", p.lifetime_s);

    hs_plan *front = NULL;
    int n_front = -1;
    err = (hs_error){ 0 };
    cr_assert_eq(hs_solve_pareto(&in.p, &c, &front, &n_front, &err), HS_ERR_INFEASIBLE);
    cr_assert(front == NULL && n_front == 0);
    cr_assert_eq(strncmp(err.msg, INFEASIBLE_PREFIX, strlen(INFEASIBLE_PREFIX)), 0, "%s",
                 err.msg);
}

/* ---- random: hs_plan_evaluate and hs_plan_score ----------------------------------------- */

/* A random plan: usually a valid chain from the source with random cuts, sometimes broken. */
static int random_plan(rng *r, const inst *in, hs_stage *st)
{
    const int n = in->n, D = in->cl.n_devices;
    int S = rng_int(r, 1, D < n + 1 ? D : n + 1);
    bool used[HS_MAX_DEVICES] = { false };
    st[0].device = in->cl.source;
    used[in->cl.source] = true;
    for (int s = 1; s < S; s++) {
        int d;
        do
            d = rng_int(r, 0, D - 1);
        while (used[d]);
        used[d] = true;
        st[s].device = d;
    }
    /* S - 1 distinct cuts in [0, n - 1], sorted */
    int cuts[HS_MAX_DEVICES], k = 0;
    while (k < S - 1) {
        int v = rng_int(r, 0, n - 1);
        bool dup = false;
        for (int j = 0; j < k; j++)
            dup = dup || cuts[j] == v;
        if (!dup)
            cuts[k++] = v;
    }
    for (int i = 1; i < k; i++)
        for (int j = i; j > 0 && cuts[j - 1] > cuts[j]; j--) {
            int t = cuts[j];
            cuts[j] = cuts[j - 1];
            cuts[j - 1] = t;
        }
    for (int s = 0; s < S; s++) {
        st[s].first = s == 0 ? 0 : cuts[s - 1];
        st[s].last = s == S - 1 ? n : cuts[s];
    }
    if (rng_chance(r, 0.15)) { /* break it */
        int s = rng_int(r, 0, S - 1);
        switch (rng_int(r, 0, 3)) {
        case 0:
            st[s].first += rng_chance(r, 0.5) ? 1 : -1;
            break;
        case 1:
            st[s].last += rng_chance(r, 0.5) ? 1 : -1;
            break;
        case 2:
            st[s].device = rng_int(r, 0, D - 1);
            break;
        default:
            st[s].device = st[rng_int(r, 0, S - 1)].device;
            break;
        }
        if (st[s].first < 0 || st[s].last > n || st[s].first > st[s].last) /* keep in range */
            st[s] = (hs_stage){ st[s].device, 0, 0 };
    }
    return S;
}

#define CHECK(cond, ...)                                                                       \
    do {                                                                                       \
        if (!(cond)) {                                                                         \
            fail_at(t, in, __VA_ARGS__);                                                       \
            ok = false;                                                                        \
        }                                                                                      \
    } while (0)

/* Compares every figure of an evaluated plan with the reference; returns false (after
 * reporting) on the first few differences. */
static bool compare_figures(tally *t, const inst *in, const hs_constraints *c, const hs_plan *p,
                            const ref_eval *r)
{
    bool ok = true;
    char buf[256];
    const char *ps = plan_str(p->stages, p->n_stages, buf, sizeof buf);
    const int S = p->n_stages;
    for (int s = 0; s < S; s++) {
        CHECK(close_to(p->stage_s[s], r->stage_s[s], TOL), "plan %s: stage_s[%d] %.17g, want %.17g",
              ps, s, p->stage_s[s], r->stage_s[s]);
        CHECK(close_to(p->memory_bytes[s], r->memory[s], TOL),
              "plan %s: memory_bytes[%d] %.17g, want %.17g", ps, s, p->memory_bytes[s],
              r->memory[s]);
        if (s > 0) {
            CHECK(close_to(p->transfer_s[s], r->transfer_s[s], TOL),
                  "plan %s: transfer_s[%d] %.17g, want %.17g", ps, s, p->transfer_s[s],
                  r->transfer_s[s]);
            CHECK(close_to(p->transfer_bytes[s], r->transfer_bytes[s], TOL),
                  "plan %s: transfer_bytes[%d] %.17g, want %.17g", ps, s, p->transfer_bytes[s],
                  r->transfer_bytes[s]);
        }
    }
    if (S < HS_MAX_DEVICES)
        CHECK(close_to(p->transfer_s[S], r->delivery_s, TOL),
              "plan %s: transfer_s[n_stages] %.17g, want the delivery %.17g", ps, p->transfer_s[S],
              r->delivery_s);
    CHECK(close_to(p->delivery_s, r->delivery_s, TOL), "plan %s: delivery_s %.17g, want %.17g",
          ps, p->delivery_s, r->delivery_s);
    CHECK(close_to(p->delivery_bytes, r->delivery_bytes, TOL),
          "plan %s: delivery_bytes %.17g, want %.17g", ps, p->delivery_bytes, r->delivery_bytes);
    CHECK(close_to(p->latency_s, r->latency, TOL), "plan %s: latency_s %.17g, want %.17g", ps,
          p->latency_s, r->latency);
    CHECK(close_to(p->bottleneck_s, r->bottleneck, TOL), "plan %s: bottleneck_s %.17g, want %.17g",
          ps, p->bottleneck_s, r->bottleneck);
    CHECK(close_to(p->throughput_rps, 1 / r->bottleneck, TOL),
          "plan %s: throughput_rps %.17g, want %.17g", ps, p->throughput_rps, 1 / r->bottleneck);
    CHECK(close_to(p->energy_j, r->energy, TOL), "plan %s: energy_j %.17g, want %.17g", ps,
          p->energy_j, r->energy);
    CHECK(p->sustainable == r->sustainable, "plan %s: sustainable %d, want %d", ps,
          p->sustainable, r->sustainable);
    if (c->rate > 0) {
        /* also for a rate the plan does not sustain: load latency +inf, lifetime by the formula
         * (solver.h) */
        CHECK(close_to(p->lifetime_s, r->lifetime, TOL), "plan %s: lifetime_s %.17g, want %.17g",
              ps, p->lifetime_s, r->lifetime);
        CHECK(close_to(p->load_latency_s, r->load_latency, TOL),
              "plan %s: load_latency_s %.17g, want %.17g", ps, p->load_latency_s,
              r->load_latency);
    }
    return ok;
}

/* HS_MAX_DEVICES stages, one node each, the last one delivering to the sink: transfer_s[]
 * has HS_MAX_DEVICES entries, yet transfer_s[n_stages] is documented as the delivery. */
Test(hand, max_stages_delivery)
{
    inst in;
    memset(&in, 0, sizeof in);
    in.n = HS_MAX_DEVICES;
    in.cut_kind = "hand";
    in.cl.n_devices = HS_MAX_DEVICES;
    for (int d = 0; d < HS_MAX_DEVICES; d++) {
        in.cl.devices[d] = (hs_device){ .speed = 1, .memory_bytes = 1e9,
                                        .power = { 1, 2, 3, 4 } };
        snprintf(in.cl.devices[d].name, sizeof in.cl.devices[d].name, "d%d", d);
        for (int e = 0; e < HS_MAX_DEVICES; e++)
            if (e != d)
                in.cl.links[d][e] = (hs_link){ 1e6, 1e-3 };
        for (int i = 0; i < in.n; i++)
            in.node_time[d * in.n + i] = 1e-3 * (1 + i + d);
    }
    for (int k = 0; k <= in.n; k++)
        in.cut[k] = 100 + k;
    inst_bind(&in);
    hs_plan p = { .n_stages = HS_MAX_DEVICES };
    for (int s = 0; s < HS_MAX_DEVICES; s++)
        p.stages[s] = (hs_stage){ s, s, s + 1 };
    hs_constraints c = { .rate = 1 };
    hs_error err = { 0 };
    cr_assert_eq(hs_plan_evaluate(&in.p, &c, &p, &err), HS_OK, "%s", err.msg);
    ref_eval r = ref_evaluate(&in, &c, p.stages, p.n_stages);
    tally t = { "max_stages_delivery", 0, 0, 0, 0 };
    cr_assert(compare_figures(&t, &in, &c, &p, &r));
    /* delivery: 116 B over 1 Mbit/s + 1 ms */
    assert_close(p.delivery_s, 116 * 8 / 1e6 + 1e-3);
    cr_assert_eq(p.transfer_bytes[0], 0, "transfer_bytes[0] = %g: transfer_s[n_stages] was "
                 "written past the end of transfer_s[HS_MAX_DEVICES]", p.transfer_bytes[0]);
}

static void add_io_costs(inst *in, rng *r);

/* hs_plan_evaluate and hs_plan_score against the reference on random plans of random
 * instances, each instance with random io costs if with_io. */
static void evaluate_random(uint64_t base, bool with_io)
{
    seeds sd = seeds_for(base);
    tally t = { with_io ? "evaluate with io" : "evaluate", 0, 0, 0, 0 };
    tally ts = { with_io ? "score with io" : "score", 0, 0, 0, 0 };
    int n_plans = 0, n_invalid = 0;
    for (int k = 0; k < sd.count; k++) {
        inst in;
        gen_instance(sd.first + (uint64_t)k, &(gen_opts){ false }, &in);
        if (sd.verbose)
            inst_print(&in, stderr);
        rng r = { in.seed ^ (with_io ? 0x10c0575 : 0xabcdef) };
        if (with_io)
            add_io_costs(&in, &r);
        bool ok = true, ok_score = true;
        for (int j = 0; j < 20; j++) {
            hs_plan p = { 0 };
            p.n_stages = random_plan(&r, &in, p.stages);
            ref_eval e = ref_evaluate(&in, &in.c, p.stages, p.n_stages);
            hs_error err = { 0 };
            hs_status st = hs_plan_evaluate(&in.p, &in.c, &p, &err);
            char buf[256];
            const char *ps = plan_str(p.stages, p.n_stages, buf, sizeof buf);
            n_plans++;
            if (!e.valid) {
                n_invalid++;
                if (st != HS_ERR_INVALID || !err.msg[0]) {
                    fail_at(&t, &in, "plan %s (%s): status %d \"%s\", want HS_ERR_INVALID", ps,
                            e.why, st, err.msg);
                    ok = false;
                }
                continue;
            }
            if (st != HS_OK) {
                fail_at(&t, &in, "plan %s: status %d \"%s\", want HS_OK", ps, st, err.msg);
                ok = false;
                continue;
            }
            ok = compare_figures(&t, &in, &in.c, &p, &e) && ok;
            for (int o = 0; o < HS_OBJ_COUNT; o++) {
                if (in.c.rate <= 0 && (o == HS_OBJ_LIFETIME || o == HS_OBJ_LOAD_LATENCY))
                    continue;
                double want = ref_score(&e, o), got = hs_plan_score(&in.p, &in.c, o, &p);
                if (!close_to(got, want, TOL)) {
                    fail_at(&ts, &in, "plan %s: %s score %.17g, want %.17g (fits %d sustains %d "
                            "bound %d)", ps, hs_objective_name(o), got, want, e.fits,
                            e.sustainable, e.meets_bound);
                    ok_score = false;
                }
            }
        }
        t.instances++, ts.instances++;
        t.agree += ok, ts.agree += ok_score;
    }
    fprintf(stderr, "%s: %d plans, %d of them invalid\n", t.what, n_plans, n_invalid);
    tally_end(&ts);
    tally_end(&t);
}

Test(random, evaluate_and_score)
{
    evaluate_random(1000000, false);
}

/* ---- random: hs_solve ------------------------------------------------------------------- */

static void solve_random(hs_objective o, uint64_t base)
{
    seeds sd = seeds_for(base);
    char what[64];
    snprintf(what, sizeof what, "solve %s", hs_objective_name(o));
    tally tl = { what, 0, 0, 0, 0 }, *t = &tl;
    gen_opts opt = { o == HS_OBJ_LIFETIME || o == HS_OBJ_LOAD_LATENCY };
    int binding_rate = 0, binding_bound = 0, binding_memory = 0, multi = 0, ties = 0;
    int value_ok = 0, infeasible_ok = 0; /* optimum value reached; HS_ERR_INFEASIBLE given */
    long plans = 0;
    for (int k = 0; k < sd.count; k++) {
        inst inst_, *in = &inst_;
        gen_instance(sd.first + (uint64_t)k, &opt, in);
        if (sd.verbose)
            inst_print(in, stderr);
        brute b;
        brute_force(in, &in->c, &b);
        plans += b.n_plans;
        hs_plan p;
        memset(&p, 0xff, sizeof p); /* garbage, so unset figures show */
        hs_error err = { 0 };
        hs_status st = hs_solve(&in->p, o, &in->c, &p, &err);
        bool ok = true;
        t->instances++;
        if (isinf(b.best[o]) && b.best[o] > 0) {
            t->infeasible++;
            CHECK(st == HS_ERR_INFEASIBLE, "brute force finds no feasible plan; hs_solve says %d "
                  "\"%s\"", st, err.msg);
            if (st == HS_ERR_INFEASIBLE)
                CHECK(strncmp(err.msg, INFEASIBLE_PREFIX, strlen(INFEASIBLE_PREFIX)) == 0,
                      "message \"%s\" does not start with \"" INFEASIBLE_PREFIX "\"", err.msg);
            infeasible_ok += ok;
            if (st == HS_OK) {
                ref_eval r = ref_evaluate(in, &in->c, p.stages, p.n_stages);
                char buf[256];
                fail_at(t, in, "  hs_solve returned %s: valid %d (%s) fits %d sustains %d "
                        "bound %d", plan_str(p.stages, p.n_stages, buf, sizeof buf), r.valid,
                        r.valid ? "" : r.why, r.fits, r.sustainable, r.meets_bound);
            }
            t->agree += ok;
            continue;
        }
        char want_buf[256];
        const char *want_ps = plan_str(b.best_plan[o], b.best_S[o], want_buf, sizeof want_buf);
        if (st != HS_OK) {
            fail_at(t, in, "status %d \"%s\"; brute force finds %s with %.17g", st, err.msg,
                    want_ps, b.best[o]);
            continue;
        }
        char buf[256];
        const char *ps = plan_str(p.stages, p.n_stages, buf, sizeof buf);
        ref_eval r = ref_evaluate(in, &in->c, p.stages, p.n_stages);
        CHECK(p.n_stages >= 1 && p.n_stages <= in->cl.n_devices, "n_stages %d", p.n_stages);
        if (!ok)
            continue;
        CHECK(r.valid, "plan %s is invalid: %s", ps, r.why);
        CHECK(in->c.max_stages == 0 || p.n_stages <= in->c.max_stages,
              "plan %s has more than max_stages %d", ps, in->c.max_stages);
        if (r.valid) {
            CHECK(r.feasible, "plan %s is infeasible: fits %d sustains %d meets bound %d", ps,
                  r.fits, r.sustainable, r.meets_bound);
            double v = ref_score(&r, o);
            CHECK(close_to(v, b.best[o], TOL), "plan %s scores %.17g; brute force: %s "
                  "scores %.17g", ps, v, want_ps, b.best[o]);
            value_ok += r.feasible && close_to(v, b.best[o], TOL);
            if (close_to(v, b.best[o], TOL)) {
                /* among the optimal plans (scores within TIE_TOL), the lowest latency */
                tie_ctx tie = tie_latency(in, &in->c, o, b.best[o], TIE_TOL);
                char tie_buf[256];
                ties += tie_latency(in, &in->c, o, b.best[o], TOL).lat < tie.lat;
                CHECK(r.latency <= tie.lat * (1 + TIE_TOL), "tie not broken by latency: plan %s "
                      "has score %.17g and latency %.17g (load %.17g); %s has score %.17g (%s) "
                      "and latency %.17g (load %.17g)", ps, v, r.latency, r.load_latency,
                      plan_str(tie.plan, tie.S, tie_buf, sizeof tie_buf), tie.score,
                      tie.score == v ? "identical" : "within 1e-12", tie.lat, tie.load);
            }
            ok = compare_figures(t, in, &in->c, &p, &r) && ok;
        }
        t->agree += ok;

        /* coverage of the generator: which constraints rule plans out */
        brute lb, rb;
        brute_force(in, &(hs_constraints){ .max_stages = in->c.max_stages }, &lb);
        brute_force(in, &(hs_constraints){ .max_stages = in->c.max_stages,
                                            .rate = in->c.rate }, &rb);
        binding_rate += rb.n_feasible < lb.n_feasible;
        binding_bound += b.n_feasible < rb.n_feasible;
        binding_memory += lb.n_feasible < lb.n_valid;
        multi += b.best_S[o] > 1;
    }
    fprintf(stderr, "%s: coverage of the feasible instances: %ld plans enumerated; the rate "
            "rules plans out in %d, the latency bound in %d, memory in %d; the optimum splits "
            "in %d; %d near-ties (a plan within 1e-9 of the optimum, not 1e-12, is faster)\n",
            what, plans, binding_rate, binding_bound, binding_memory, multi, ties);
    fprintf(stderr, "%s: optimum value reached in %d of %d feasible instances; "
            "HS_ERR_INFEASIBLE \"" INFEASIBLE_PREFIX "...\" in %d of %d infeasible ones\n", what,
            value_ok, t->instances - t->infeasible, infeasible_ok, t->infeasible);
    tally_end(t);
}

Test(random, solve_latency)
{
    solve_random(HS_OBJ_LATENCY, 2000000);
}

Test(random, solve_throughput)
{
    solve_random(HS_OBJ_THROUGHPUT, 3000000);
}

Test(random, solve_energy)
{
    solve_random(HS_OBJ_ENERGY, 4000000);
}

Test(random, solve_lifetime)
{
    solve_random(HS_OBJ_LIFETIME, 5000000);
}

Test(random, solve_load_latency)
{
    solve_random(HS_OBJ_LOAD_LATENCY, 6000000);
}

/* ---- random: larger instances, fast paths against the general search -------------------- */

/*
 * Beyond brute force (20-80 nodes, 2-6 devices), each objective's fast path is checked against
 * the general label-setting search, which hs_solve uses when a latency bound applies to another
 * quantity than the objective: a bound no plan reaches (1e300 s) changes no answer but the path.
 * With a rate the bound is on the load latency, so latency, throughput, energy and lifetime all
 * switch paths. Load latency cannot: its optimum is checked through the latency objective with a
 * load-latency bound just below it (infeasible) and just above it (feasible).
 */
typedef struct big_inst {
    hs_cluster cl;
    double *node_time, *cut, *weight, *live;
    hs_problem p;
    hs_constraints c;
} big_inst;

static void big_free(big_inst *in)
{
    free(in->node_time);
    free(in->cut);
    free(in->weight);
    free(in->live);
}

static void big_make(uint64_t seed, big_inst *in)
{
    memset(in, 0, sizeof *in);
    rng r = { seed * 0x9e3779b97f4a7c15ull + 7 };
    const int n = rng_int(&r, 20, 80), D = rng_int(&r, 2, 6);
    in->node_time = malloc(sizeof(double) * (size_t)(n * D));
    in->cut = malloc(sizeof(double) * (size_t)(n + 1));
    in->weight = malloc(sizeof(double) * (size_t)n);
    in->live = malloc(sizeof(double) * (size_t)n);
    cr_assert(in->node_time && in->cut && in->weight && in->live);
    hs_cluster *cl = &in->cl;
    cl->n_devices = D;
    cl->source = rng_int(&r, 0, D - 1);
    cl->sink = rng_chance(&r, 0.6) ? cl->source : rng_int(&r, 0, D - 1);
    double total_w = 0;
    for (int i = 0; i < n; i++) {
        in->weight[i] = rng_chance(&r, 0.2) ? 0 : rng_logu(&r, 1e3, 1e7);
        in->live[i] = rng_logu(&r, 1e3, 1e6);
        total_w += in->weight[i] + 1e6 / n;
    }
    for (int k = 0; k <= n; k++)
        in->cut[k] = rng_logu(&r, 1e2, 1e7);
    bool bind_memory = rng_chance(&r, 0.4);
    for (int d = 0; d < D; d++) {
        hs_device *v = &cl->devices[d];
        snprintf(v->name, sizeof v->name, "dev%d", d);
        v->speed = rng_logu(&r, 0.3, 5);
        for (int i = 0; i < n; i++)
            in->node_time[d * n + i] = rng_logu(&r, 1e-4, 1e-2) / v->speed;
        v->memory_bytes = bind_memory ? rng_unif(&r, 0.3, 1.2) * total_w : 1e12;
        double idle = rng_unif(&r, 0.1, 5);
        v->power = (hs_power){ idle, idle + rng_unif(&r, 0.5, 20), rng_unif(&r, 0, 100),
                               rng_unif(&r, 0, 100) };
        if (rng_chance(&r, 0.5)) {
            double floor = rng_unif(&r, 0.05, 0.3);
            v->battery = (hs_battery){ true, rng_logu(&r, 1, 100), rng_unif(&r, floor, 1), floor };
        }
        v->excluded = d != cl->source && d != cl->sink && rng_chance(&r, 0.1);
    }
    bool complete = rng_chance(&r, 0.6);
    for (int a = 0; a < D; a++)
        for (int b = 0; b < D; b++)
            if (a != b && (complete || rng_chance(&r, 0.6)))
                cl->links[a][b] = (hs_link){ rng_logu(&r, 1e7, 1e10), rng_unif(&r, 0, 2e-3) };
    in->p = (hs_problem){ .n_nodes = n, .cluster = cl, .node_time = in->node_time,
                          .cut_bytes = in->cut, .weight_bytes = in->weight,
                          .live_bytes = in->live };
    in->c = (hs_constraints){ .battery_only = rng_chance(&r, 0.3),
                              .max_stages = rng_chance(&r, 0.5) ? 0 : rng_int(&r, 1, D) };
    hs_plan best;
    hs_error err = { 0 };
    double u = rng_unif(&r, 0.05, 0.95);
    if (hs_solve(&in->p, HS_OBJ_THROUGHPUT, &in->c, &best, &err) == HS_OK)
        in->c.rate = u / best.bottleneck_s;
    else
        in->c.rate = 1;
}

/* Solves o and returns the status; *score and *latency describe the plan. */
static hs_status big_solve(const big_inst *in, hs_objective o, const hs_constraints *c,
                           double *score, double *latency)
{
    hs_plan p;
    hs_error err = { 0 };
    hs_status st = hs_solve(&in->p, o, c, &p, &err);
    *score = st == HS_OK ? hs_plan_score(&in->p, c, o, &p) : INFINITY;
    *latency = st == HS_OK ? p.latency_s : INFINITY;
    return st;
}

Test(random, fast_paths_against_general)
{
    int count = env_int("HS_SOLVER_N", 500) / 5;
    count = count < 20 ? 20 : count;
    tally tl = { "fast paths", 0, 0, 0, 0 };
    static const hs_objective objs[] = { HS_OBJ_LATENCY, HS_OBJ_THROUGHPUT, HS_OBJ_ENERGY,
                                         HS_OBJ_LIFETIME };
    for (int k = 0; k < count; k++) {
        big_inst in;
        big_make(8000000 + (uint64_t)k, &in);
        hs_constraints general = in.c;
        general.max_latency_s = 1e300;
        bool ok = true;
        for (size_t j = 0; j < sizeof objs / sizeof objs[0]; j++) {
            double fs, fl, gs, gl;
            hs_status fst = big_solve(&in, objs[j], &in.c, &fs, &fl);
            hs_status gst = big_solve(&in, objs[j], &general, &gs, &gl);
            bool same = fst == gst && close_to(fs, gs, TOL) &&
                        (!close_to(fs, gs, TIE_TOL) || close_to(fl, gl, TOL));
            if (!same && tl.reported++ < env_int("HS_SOLVER_REPORT", MAX_REPORTED))
                fprintf(stderr, "fast paths: seed %d, %s: fast %d (score %.17g, latency %.17g), "
                        "general %d (score %.17g, latency %.17g)\n", 8000000 + k,
                        hs_objective_name(objs[j]), fst, fs, fl, gst, gs, gl);
            ok = ok && same;
        }
        double load, lat;
        if (big_solve(&in, HS_OBJ_LOAD_LATENCY, &in.c, &load, &lat) == HS_OK) {
            hs_constraints below = in.c, above = in.c;
            below.max_latency_s = load * (1 - 1e-9);
            above.max_latency_s = load * (1 + 1e-9);
            double s1, l1, s2, l2;
            bool same = big_solve(&in, HS_OBJ_LATENCY, &below, &s1, &l1) == HS_ERR_INFEASIBLE &&
                        big_solve(&in, HS_OBJ_LATENCY, &above, &s2, &l2) == HS_OK;
            if (!same && tl.reported++ < env_int("HS_SOLVER_REPORT", MAX_REPORTED))
                fprintf(stderr, "fast paths: seed %d, load-latency %.17g is not the least load "
                        "latency of the general search\n", 8000000 + k, load);
            ok = ok && same;
        }
        tl.instances++;
        tl.agree += ok;
        big_free(&in);
    }
    tally_end(&tl);
}

/* ---- random: hs_solve_pareto ------------------------------------------------------------ */

Test(random, pareto)
{
    seeds sd = seeds_for(7000000);
    tally tl = { "pareto", 0, 0, 0, 0 }, *t = &tl;
    long front_total = 0;
    int front_max = 0;
    for (int k = 0; k < sd.count; k++) {
        inst inst_, *in = &inst_;
        gen_instance(sd.first + (uint64_t)k, &(gen_opts){ false }, in);
        if (sd.verbose)
            inst_print(in, stderr);
        brute b;
        brute_force(in, &in->c, &b);
        hs_plan *front = NULL;
        int n_front = -1;
        hs_error err = { 0 };
        hs_status st = hs_solve_pareto(&in->p, &in->c, &front, &n_front, &err);
        bool ok = true;
        t->instances++;
        if (b.n_front == 0) {
            t->infeasible++;
            CHECK(st == HS_ERR_INFEASIBLE && n_front == 0 && !front,
                  "brute force finds no feasible plan; status %d, %d plans", st, n_front);
            if (st == HS_ERR_INFEASIBLE)
                CHECK(strncmp(err.msg, INFEASIBLE_PREFIX, strlen(INFEASIBLE_PREFIX)) == 0,
                      "message \"%s\"", err.msg);
            free(front);
            t->agree += ok;
            continue;
        }
        if (st != HS_OK) {
            fail_at(t, in, "status %d \"%s\"; brute force front has %d points", st, err.msg,
                    b.n_front);
            free(front);
            continue;
        }
        front_total += b.n_front;
        front_max = b.n_front > front_max ? b.n_front : front_max;
        vec3 got[MAX_PLANS];
        int n_got = 0;
        for (int i = 0; i < n_front && ok; i++) {
            const hs_plan *p = &front[i];
            char buf[256];
            const char *ps = plan_str(p->stages, p->n_stages, buf, sizeof buf);
            ref_eval r = ref_evaluate(in, &in->c, p->stages, p->n_stages);
            CHECK(r.valid && r.feasible, "front plan %s: valid %d (%s) feasible %d", ps,
                  r.valid, r.valid ? "" : r.why, r.feasible);
            CHECK(in->c.max_stages == 0 || p->n_stages <= in->c.max_stages,
                  "front plan %s exceeds max_stages", ps);
            if (!ok)
                break;
            ok = compare_figures(t, in, &in->c, p, &r) && ok;
            CHECK(i == 0 || front[i - 1].latency_s <= p->latency_s, "front not sorted by "
                  "latency at %d", i);
            vec3 v = { r.latency, r.bottleneck, r.energy };
            bool dup = false;
            for (int j = 0; j < n_got && !dup; j++)
                dup = vec_close(&got[j], &v);
            if (!dup && n_got < MAX_PLANS)
                got[n_got++] = v;
        }
        if (ok) {
            for (int i = 0; i < n_got; i++) {
                bool found = false;
                for (int j = 0; j < b.n_front && !found; j++)
                    found = vec_close(&got[i], &b.front[j]);
                CHECK(found, "front point (%.17g, %.17g, %.17g) is not Pareto-optimal",
                      got[i].lat, got[i].bott, got[i].energy);
            }
            for (int j = 0; j < b.n_front; j++) {
                bool found = false;
                for (int i = 0; i < n_got && !found; i++)
                    found = vec_close(&got[i], &b.front[j]);
                CHECK(found, "missing Pareto point (%.17g, %.17g, %.17g)", b.front[j].lat,
                      b.front[j].bott, b.front[j].energy);
            }
            if (!ok)
                fprintf(stderr, "pareto: seed %llu: got %d distinct points (%d plans), want %d\n",
                        (unsigned long long)in->seed, n_got, n_front, b.n_front);
        }
        free(front);
        t->agree += ok;
    }
    fprintf(stderr, "pareto: fronts of %.1f points on average, %d at most\n",
            t->instances > t->infeasible ? (double)front_total / (t->instances - t->infeasible)
                                        : 0.0,
            front_max);
    tally_end(t);
}

/* ---- plan mixing (hs_plan_mix) ------------------------------------------------------------ */

static hs_plan evaluated(const inst *in, const hs_stage *stages, int n_stages)
{
    hs_plan p = { .n_stages = n_stages };
    memcpy(p.stages, stages, (size_t)n_stages * sizeof *stages);
    hs_constraints none = { 0 };
    hs_error err = { 0 };
    cr_assert_eq(hs_plan_evaluate(&in->p, &none, &p, &err), HS_OK, "%s", err.msg);
    return p;
}

/*
 * The hand instance with cam's first two nodes at 8 and 4 ms:
 *   plan A (cam [0,1), edge [1,3)): cam 8 ms, link 4 ms (500 B), edge 10 ms, delivery 0.8 ms;
 *   plan B (cam [0,2), edge [2,3)): cam 12 ms, link 2 ms (250 B), edge 6 ms, delivery 0.8 ms.
 * A share f of B: cam 8 + 4f, edge 10 - 4f, equal at f = 1/4: 9 ms per request instead of
 * A's 10 ms (the link, 4 - 2f, stays below).
 */
Test(mix, balances_two_neighbouring_plans)
{
    inst in;
    hand_instance(&in);
    in.node_time[0] = 0.008; /* cam, node 0 (flat: device * n + node) */
    in.node_time[1] = 0.004; /* cam, node 1 */
    inst_bind(&in);
    static const hs_stage plan_b[] = { { 0, 0, 2 }, { 1, 2, 3 } };
    hs_plan a = evaluated(&in, plan_a, 2), b = evaluated(&in, plan_b, 2);
    assert_close(a.bottleneck_s, 0.010);
    double share;
    assert_close(hs_plan_mix(&in.p, &a, &b, &share), 0.009);
    assert_close(share, 0.25);
    /* The other way round: the same mix, from B's side. */
    assert_close(hs_plan_mix(&in.p, &b, &a, &share), 0.009);
    assert_close(share, 0.75);
}

/*
 * The hand instance as it is: plan A is balanced (cam 10 ms, edge 10 ms), and mixing in the plan
 * with an empty cam stage (edge 12 ms, link 8 ms for 1000 B) only loads edge more: share 0 and
 * A's own bottleneck. A plan over another chain of devices cannot be mixed with A at all.
 */
Test(mix, refuses_what_does_not_help_or_differs)
{
    inst in;
    hand_instance(&in);
    static const hs_stage empty_cam[] = { { 0, 0, 0 }, { 1, 0, 3 } }, cam_only[] = { { 0, 0, 3 } };
    hs_plan a = evaluated(&in, plan_a, 2), e = evaluated(&in, empty_cam, 2),
            one = evaluated(&in, cam_only, 1);
    double share = -1;
    assert_close(hs_plan_mix(&in.p, &a, &e, &share), 0.010);
    cr_assert_eq(share, 0);
    share = -1;
    cr_assert(isinf(hs_plan_mix(&in.p, &a, &one, &share)));
    cr_assert_eq(share, 0);
}

/* ---- io costs: what moving bytes costs a device's CPU ------------------------------------ */

/* An empty instance of n nodes on two devices a (the source and sink) and b, equal, with
 * ample memory and a link of the given bandwidth both ways, without latency. */
static void two_equal_devices(inst *in, int n, double bandwidth_bps)
{
    memset(in, 0, sizeof *in);
    in->n = n;
    in->cl.n_devices = 2;
    in->cl.devices[0] = (hs_device){ .name = "a", .speed = 1, .memory_bytes = 1e9 };
    in->cl.devices[1] = (hs_device){ .name = "b", .speed = 1, .memory_bytes = 1e9 };
    in->cl.links[0][1] = in->cl.links[1][0] = (hs_link){ bandwidth_bps, 0 };
}

/* Gives every device an io cost of about one node's time per average cut, times a factor in
 * [0.1, 3]: enough to move cuts, not so much that nothing splits. */
static void add_io_costs(inst *in, rng *r)
{
    double t = 0, bytes = 0;
    for (int i = 0; i < in->n; i++)
        t += t_of(in, 0, i);
    for (int k = 0; k <= in->n; k++)
        bytes += in->cut[k];
    for (int d = 0; d < in->cl.n_devices; d++)
        in->io[d] = bytes > 0 ? t / bytes * rng_logu(r, 0.1, 3) : 0;
    /* half the time, requests come from outside: the inputs and results pass the source */
    in->outside = rng_chance(r, 0.5) ? in->cut[0] + in->cut[in->n] : 0;
    inst_bind(in);
}

/* Four equal nodes on two equal devices; the cut in the middle carries 10 kB, the others 100 B.
 * Without io the middle cut balances the stages (2 ms each); at 0.2 us per byte it costs each
 * side 2 ms, so a cut a node off the middle wins: its longer stage takes 3 ms plus 40 us of io
 * (100 B of cut and 100 B of outputs back to the sink, a). */
Test(io, moves_the_cut_off_a_big_tensor)
{
    inst in;
    two_equal_devices(&in, 4, 1e12);
    for (int i = 0; i < 8; i++)
        in.node_time[i] = 0.001;
    const double cut[] = { 100, 100, 10000, 100, 100 };
    memcpy(in.cut, cut, sizeof cut);
    inst_bind(&in);
    hs_plan p;
    hs_error err;
    cr_assert_eq(hs_solve(&in.p, HS_OBJ_THROUGHPUT, &in.c, &p, &err), HS_OK, "%s", err.msg);
    cr_assert_eq(p.n_stages, 2);
    cr_assert_eq(p.stages[1].first, 2);
    assert_close(p.bottleneck_s, 0.002);

    in.io[0] = in.io[1] = 2e-7;
    cr_assert_eq(hs_solve(&in.p, HS_OBJ_THROUGHPUT, &in.c, &p, &err), HS_OK, "%s", err.msg);
    cr_assert_eq(p.n_stages, 2);
    cr_assert(p.stages[1].first == 1 || p.stages[1].first == 3, "cut at %d", p.stages[1].first);
    assert_close(p.bottleneck_s, 0.003 + 100 * 2e-7 * 2, "bottleneck %.17g", p.bottleneck_s);
    /* at the middle cut each side pays for the 10 kB cut and the 100 B of outputs: b sends
     * them, a (the sink) receives them */
    hs_plan mid = { .n_stages = 2, .stages = { { 0, 0, 2 }, { 1, 2, 4 } } };
    cr_assert_eq(hs_plan_evaluate(&in.p, &in.c, &mid, &err), HS_OK);
    assert_close(mid.stage_s[0], 0.002 + (10000 + 100) * 2e-7);
    assert_close(mid.stage_s[1], 0.002 + (10000 + 100) * 2e-7);

    /* so dear that no split pays: the whole model stays on the source */
    in.io[0] = in.io[1] = 1e-4;
    cr_assert_eq(hs_solve(&in.p, HS_OBJ_THROUGHPUT, &in.c, &p, &err), HS_OK, "%s", err.msg);
    cr_assert_eq(p.n_stages, 1);
    assert_close(p.bottleneck_s, 0.004);

    in.io[1] = -1;
    cr_assert_eq(hs_solve(&in.p, HS_OBJ_THROUGHPUT, &in.c, &p, &err), HS_ERR_INVALID);
    cr_assert(strstr(err.msg, "io cost") != NULL, "%s", err.msg);
}

/* A rate of 1/s, and the plan the search finds without io (cut at 1: bottleneck 0.7 s) does
 * not sustain it once b pays 0.45 s for the 1.125 MB cut; the cut at 2 (bottleneck 0.7 s + 0.15
 * s) does, though its latency is higher than the infeasible plan's. Cut placement must still
 * take it: an infeasible plan is never the better one, whatever its latency. */
Test(io, a_feasible_cut_beats_a_faster_infeasible_one)
{
    inst in;
    two_equal_devices(&in, 3, 1e15);
    const double t[2][3] = { { 0.05, 0.65, 5 }, { 5, 0.3, 0.3 } };
    memcpy(in.node_time, t, sizeof t);
    const double cut[] = { 10, 1.125e6, 0.375e6, 10 };
    memcpy(in.cut, cut, sizeof cut);
    in.io[1] = 4e-7;
    in.c.rate = 1;
    inst_bind(&in);
    for (int o = HS_OBJ_LATENCY; o <= HS_OBJ_THROUGHPUT; o++) {
        hs_plan p;
        hs_error err = { 0 };
        cr_assert_eq(hs_solve(&in.p, (hs_objective)o, &in.c, &p, &err), HS_OK, "%s: %s",
                     hs_objective_name((hs_objective)o), err.msg);
        cr_assert_eq(p.n_stages, 2);
        cr_expect_eq(p.stages[1].first, 2, "%s: cut at %d", hs_objective_name((hs_objective)o),
                     p.stages[1].first);
        cr_expect(p.sustainable);
    }
}

/* Requests from outside the cluster: the source also receives each input and sends each
 * result, so its stage should take less compute. Four equal 1 ms nodes, every cut 100 B:
 * at 1 us per byte, 2000 outside bytes cost the source 2 ms, and the cut moves to leave the
 * source one node instead of two (3.2 ms against 4.2 ms for the slower stage). */
Test(io, outside_clients_load_the_source)
{
    inst in;
    two_equal_devices(&in, 4, 1e12);
    for (int i = 0; i < 8; i++)
        in.node_time[i] = 0.001;
    for (int k = 0; k <= 4; k++)
        in.cut[k] = 100;
    in.io[0] = in.io[1] = 1e-6;
    inst_bind(&in);
    hs_plan p;
    hs_error err;
    cr_assert_eq(hs_solve(&in.p, HS_OBJ_THROUGHPUT, &in.c, &p, &err), HS_OK, "%s", err.msg);
    cr_assert_eq(p.stages[1].first, 2);
    in.outside = 2000;
    inst_bind(&in);
    cr_assert_eq(hs_solve(&in.p, HS_OBJ_THROUGHPUT, &in.c, &p, &err), HS_OK, "%s", err.msg);
    cr_expect_eq(p.stages[1].first, 1, "cut at %d", p.stages[1].first);
    /* a: 1 ms + (2000 outside + 100 cut + 100 results) us; b: 3 ms + 200 us */
    assert_close(p.stage_s[0], 0.001 + 2200e-6);
    assert_close(p.stage_s[1], 0.003 + 200e-6);
    in.outside = -1;
    inst_bind(&in);
    cr_assert_eq(hs_solve(&in.p, HS_OBJ_THROUGHPUT, &in.c, &p, &err), HS_ERR_INVALID);
    cr_expect(strstr(err.msg, "outside") != NULL, "%s", err.msg);
}

/* hs_plan_evaluate and hs_plan_score price io as the reference does. */
Test(io, evaluate)
{
    evaluate_random(7000000, true);
}

/* hs_solve with io costs, for throughput and latency: on two devices, the brute-force
 * optimum; on any instance, a valid plan whose figures are the reference's, never better than
 * the optimum and never worse than the plan the search finds without io, priced with it. */
static void solve_with_io(hs_objective o, uint64_t base)
{
    seeds sd = seeds_for(base);
    char what[64];
    snprintf(what, sizeof what, "solve %s with io", hs_objective_name(o));
    tally tl = { what, 0, 0, 0, 0 }, *t = &tl;
    int exact = 0, moved = 0;
    for (int k = 0; k < sd.count; k++) {
        inst inst_, *in = &inst_;
        gen_instance(sd.first + (uint64_t)k, &(gen_opts){ false }, in);
        in->c.max_latency_s = 0; /* the bound is checked by the plain tests */
        rng r = { in->seed ^ 0x10c0575 };
        hs_plan plain, p;
        hs_error err = { 0 };
        if (hs_solve(&in->p, o, &in->c, &plain, &err) != HS_OK)
            continue;
        add_io_costs(in, &r);
        brute b;
        brute_force(in, &in->c, &b);
        bool ok = true;
        t->instances++;
        hs_status st = hs_solve(&in->p, o, &in->c, &p, &err);
        hs_plan priced = plain;
        double was = hs_plan_evaluate(&in->p, &in->c, &priced, &err) == HS_OK
                         ? hs_plan_score(&in->p, &in->c, o, &priced) : INFINITY;
        if (st == HS_ERR_INFEASIBLE) {
            /* allowed only when the plan without io is infeasible with it (two devices: only
             * when no plan is feasible) */
            bool two = in->cl.n_devices == 2;
            CHECK(two ? isinf(b.best[o]) : isinf(was), "infeasible (\"%s\"), yet %s", err.msg,
                  two ? "brute force finds a feasible plan"
                      : "the plan without io is feasible with it");
            CHECK(strncmp(err.msg, INFEASIBLE_PREFIX, strlen(INFEASIBLE_PREFIX)) == 0,
                  "message \"%s\"", err.msg);
            t->agree += ok;
            continue;
        }
        CHECK(st == HS_OK, "status %d \"%s\"", st, err.msg);
        if (!ok)
            continue;
        char buf[256];
        const char *ps = plan_str(p.stages, p.n_stages, buf, sizeof buf);
        ref_eval e = ref_evaluate(in, &in->c, p.stages, p.n_stages);
        CHECK(e.valid && e.feasible, "plan %s: valid %d feasible %d", ps, e.valid, e.feasible);
        if (!ok)
            continue;
        ok = compare_figures(t, in, &in->c, &p, &e) && ok;
        double v = ref_score(&e, o);
        CHECK(v >= b.best[o] * (1 - TOL) - TOL, "plan %s scores %.17g, below the optimum %.17g",
              ps, v, b.best[o]);
        CHECK(v <= was * (1 + TOL) + TOL, "plan %s scores %.17g, worse than the plan without "
              "io priced with it, %.17g", ps, v, was);
        moved += v < was * (1 - TOL);
        if (in->cl.n_devices == 2) {
            CHECK(close_to(v, b.best[o], TOL), "two devices: plan %s scores %.17g, the "
                  "optimum %.17g", ps, v, b.best[o]);
            exact += close_to(v, b.best[o], TOL);
        }
        t->agree += ok;
    }
    fprintf(stderr, "%s: the optimum on two devices in %d instances; io moved the plan in %d\n",
            what, exact, moved);
    cr_expect_gt(exact, 0, "%s: no two-device instance checked", what);
    cr_expect_gt(moved, 0, "%s: io never moved a plan", what);
    tally_end(t);
}

Test(io, solve_throughput)
{
    solve_with_io(HS_OBJ_THROUGHPUT, 7100000);
}

Test(io, solve_latency)
{
    solve_with_io(HS_OBJ_LATENCY, 7200000);
}

/* An excluded source (a) forwards the input and receives the results. Without io the best plan
 * pipelines the two nodes over b and c (1 ms each); the 1 MB cut between them costs 10 ms of io
 * on each side, so one device running both nodes (2 ms plus 2 us) is far better. That 2-stage
 * plan starts with an empty stage 0 on a, and the search must reach it from there. */
Test(io, two_stage_plans_from_an_excluded_source)
{
    inst in;
    memset(&in, 0, sizeof in);
    in.n = 2;
    in.cl.n_devices = 3;
    const char *names[] = { "a", "b", "c" };
    for (int d = 0; d < 3; d++) {
        in.cl.devices[d] = (hs_device){ .speed = 1, .memory_bytes = 1e9 };
        snprintf(in.cl.devices[d].name, sizeof in.cl.devices[d].name, "%s", names[d]);
        for (int e = 0; e < 3; e++)
            if (e != d)
                in.cl.links[d][e] = (hs_link){ 1e12, 0 };
        in.io[d] = 1e-8;
    }
    in.cl.devices[0].excluded = true;
    for (int i = 0; i < 6; i++)
        in.node_time[i] = 0.001;
    const double cut[] = { 100, 1e6, 100 };
    memcpy(in.cut, cut, sizeof cut);
    inst_bind(&in);
    hs_plan p;
    hs_error err;
    cr_assert_eq(hs_solve(&in.p, HS_OBJ_THROUGHPUT, &in.c, &p, &err), HS_OK, "%s", err.msg);
    cr_assert_eq(p.n_stages, 2, "%d stages, bottleneck %g s", p.n_stages, p.bottleneck_s);
    cr_expect(p.stages[0].first == 0 && p.stages[0].last == 0);
    assert_close(p.bottleneck_s, 0.002 + 200 * 1e-8);
}
