/*
 * The partitioner: exact horizontal plans (see hotsplit/solver.h for the plan space and the
 * meaning of every figure).
 *
 * All objectives are solved by dynamic programming over states (b, d, M): "nodes [0, b) are
 * done, the last stage ran on device d, the chain used the device set M" (M always holds the
 * source; |M| <= max_stages). A transition appends a stage [a, b) on a device d' not in M,
 * reached over the link (d, d'). With D devices and n nodes there are O(2^D * D * n) states,
 * and the device set is what keeps devices distinct — which is what makes per-stage memory,
 * per-device energy and the pipeline bottleneck well defined.
 *
 * Complexity per objective (D devices, n nodes, S = 2^(D-1) device sets holding the source):
 *   latency, energy     O(S * D^2 * n): the stage cost is linear in prefix sums of node times,
 *                       so each state takes a sliding-window minimum over its feasible starts
 *                       (memory and rate make the window's ends move monotonically);
 *   throughput          O(S * D^2 * n log n): min over starts of max(best-so-far, stage time);
 *                       each start switches once from "its best-so-far dominates" to "the stage
 *                       time dominates" as the end grows, tracked with two heaps; ties on the
 *                       bottleneck are then broken by the lowest latency (a latency pass with
 *                       the bottleneck as a cap on every stage and link);
 *   lifetime, load latency, and any objective with a latency bound that is not its own
 *                       O(S * D^2 * n^2 * L^2) with L labels per state: a label-setting DP
 *                       keeping, per state, the Pareto set of (objective, bounded quantity);
 *                       L = 1 without a bound;
 *   Pareto front        the same label-setting DP over (latency, bottleneck, energy).
 * Memory: O(S * D * n) per criterion.
 */
#include <assert.h>
#include <math.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "hotsplit/solver.h"

hs_status hs__set_error(hs_error *err, hs_status code, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static const char *const objective_names[] = {
    [HS_OBJ_LATENCY] = "latency",   [HS_OBJ_THROUGHPUT] = "throughput",
    [HS_OBJ_ENERGY] = "energy",     [HS_OBJ_LIFETIME] = "lifetime",
    [HS_OBJ_LOAD_LATENCY] = "load-latency",
};
_Static_assert(sizeof objective_names / sizeof objective_names[0] == HS_OBJ_COUNT,
               "one name per objective");

const char *hs_objective_name(hs_objective o)
{
    return o >= 0 && o < HS_OBJ_COUNT ? objective_names[o] : "?";
}

int hs_objective_parse(const char *name)
{
    for (int i = 0; i < HS_OBJ_COUNT; i++)
        if (strcmp(objective_names[i], name) == 0)
            return i;
    return -1;
}

/* ---- device and link arithmetic shared by evaluation and search --------------------------- */

static const double NJ = 1e-9; /* joules per nanojoule */

static bool has_link(const hs_cluster *c, int u, int v) { return c->links[u][v].bandwidth_bps > 0; }

static double service(const hs_cluster *c, int u, int v, double bytes)
{
    return bytes * 8.0 / c->links[u][v].bandwidth_bps;
}

/* M/D/1 response time of a server with the given service time at rate lambda. */
static double md1(double s, double lambda)
{
    if (lambda <= 0)
        return s;
    double u = lambda * s;
    return u >= 1 ? INFINITY : s + lambda * s * s / (2.0 * (1.0 - u));
}

static bool counted(const hs_device *d, const hs_constraints *k)
{
    return !d->excluded && (!k->battery_only || d->battery.present);
}

/* Lifetime of a battery device given its busy time and radio energy per inference. */
static double device_lifetime(const hs_device *d, double lambda, double busy, double radio_j)
{
    if (!d->battery.present || d->excluded)
        return INFINITY;
    double power = lambda * (d->power.active_w * busy + radio_j) +
                   d->power.idle_w * (1.0 - lambda * busy);
    double joules = d->battery.capacity_wh * 3600.0 * (d->battery.level - d->battery.floor);
    if (joules <= 0)
        return 0;
    return power > 0 ? joules / power : INFINITY;
}

/* ---- evaluation ---------------------------------------------------------------------------- */

static hs_status invalid(hs_error *err, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

static hs_status invalid(hs_error *err, const char *fmt, ...)
{
    char msg[HS_ERROR_MSG_MAX];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    return hs__set_error(err, HS_ERR_INVALID, "invalid plan: %s", msg);
}

hs_status hs_plan_evaluate(const hs_problem *p, const hs_constraints *k, hs_plan *plan,
                           hs_error *err)
{
    const hs_cluster *c = p->cluster;
    const int n = p->n_nodes, S = plan->n_stages, D = c->n_devices;
    const double lambda = k->rate;
    if (S < 1 || S > D)
        return invalid(err, "%d stages for %d devices", S, D);
    bool used[HS_MAX_DEVICES] = {false};
    for (int s = 0; s < S; s++) {
        const hs_stage *st = &plan->stages[s];
        int d = st->device;
        if (d < 0 || d >= D)
            return invalid(err, "stage %d: no device %d", s, d);
        if (used[d])
            return invalid(err, "device %s hosts two stages", c->devices[d].name);
        used[d] = true;
        int want_first = s ? plan->stages[s - 1].last : 0;
        if (st->first != want_first || st->last < st->first || st->last > n)
            return invalid(err, "stage %d covers [%d, %d), expected to start at %d", s,
                           st->first, st->last, want_first);
        if (s == 0 && d != c->source)
            return invalid(err, "stage 0 runs on %s, not on the source %s", c->devices[d].name,
                           c->devices[c->source].name);
        if (st->first == st->last && (s > 0 || S == 1))
            return invalid(err, "stage %d on %s is empty", s, c->devices[d].name);
        if (st->first < st->last && c->devices[d].excluded)
            return invalid(err, "stage %d runs on excluded device %s", s, c->devices[d].name);
        if (s > 0 && !has_link(c, plan->stages[s - 1].device, d))
            return invalid(err, "no link %s -> %s", c->devices[plan->stages[s - 1].device].name,
                           c->devices[d].name);
    }
    if (plan->stages[S - 1].last != n)
        return invalid(err, "stages end at node %d of %d", plan->stages[S - 1].last, n);
    int last = plan->stages[S - 1].device;
    if (last != c->sink && !has_link(c, last, c->sink))
        return invalid(err, "no link %s -> sink %s", c->devices[last].name,
                       c->devices[c->sink].name);

    double busy[HS_MAX_DEVICES] = {0}, radio[HS_MAX_DEVICES] = {0};
    double latency = 0, bottleneck = 0, load = 0;
    for (int s = 0; s < S; s++) {
        const hs_stage *st = &plan->stages[s];
        int d = st->device;
        double t = 0, live = 0, weights = 0;
        for (int i = st->first; i < st->last; i++) {
            t += p->node_time[(size_t)d * n + i];
            weights += p->weight_bytes[i];
            if (p->live_bytes[i] > live)
                live = p->live_bytes[i];
        }
        plan->stage_s[s] = t;
        plan->memory_bytes[s] = st->first < st->last ? weights + live : 0;
        busy[d] = t;
        latency += t;
        load += md1(t, lambda);
        if (t > bottleneck)
            bottleneck = t;
        plan->transfer_s[s] = plan->transfer_bytes[s] = 0;
        if (s > 0) {
            int u = plan->stages[s - 1].device;
            double bytes = p->cut_bytes[st->first], sv = service(c, u, d, bytes);
            plan->transfer_bytes[s] = bytes;
            plan->transfer_s[s] = c->links[u][d].latency_s + sv;
            latency += plan->transfer_s[s];
            load += c->links[u][d].latency_s + md1(sv, lambda);
            if (sv > bottleneck)
                bottleneck = sv;
            radio[u] += bytes * c->devices[u].power.tx_nj_per_byte * NJ;
            radio[d] += bytes * c->devices[d].power.rx_nj_per_byte * NJ;
        }
    }
    plan->delivery_s = plan->delivery_bytes = 0;
    if (last != c->sink) {
        double bytes = p->cut_bytes[n], sv = service(c, last, c->sink, bytes);
        plan->delivery_bytes = bytes;
        plan->delivery_s = c->links[last][c->sink].latency_s + sv;
        latency += plan->delivery_s;
        load += c->links[last][c->sink].latency_s + md1(sv, lambda);
        if (sv > bottleneck)
            bottleneck = sv;
        radio[last] += bytes * c->devices[last].power.tx_nj_per_byte * NJ;
        radio[c->sink] += bytes * c->devices[c->sink].power.rx_nj_per_byte * NJ;
    }
    plan->transfer_s[S] = plan->delivery_s;

    double energy = 0, lifetime = INFINITY;
    for (int d = 0; d < D; d++) {
        const hs_device *dv = &c->devices[d];
        if (counted(dv, k)) {
            energy += dv->power.active_w * busy[d] + radio[d];
            if (lambda > 0)
                energy += dv->power.idle_w * (1.0 / lambda - busy[d]);
        }
        double life = device_lifetime(dv, lambda, busy[d], radio[d]);
        if (life < lifetime)
            lifetime = life;
    }
    plan->latency_s = latency;
    plan->bottleneck_s = bottleneck;
    plan->throughput_rps = bottleneck > 0 ? 1.0 / bottleneck : INFINITY;
    plan->energy_j = energy;
    plan->lifetime_s = lifetime;
    plan->load_latency_s = load;
    plan->sustainable = lambda <= 0 || lambda * bottleneck < 1.0;
    return HS_OK;
}

/* The quantity a latency bound applies to. */
static double bounded(const hs_constraints *k, const hs_plan *plan)
{
    return k->rate > 0 ? plan->load_latency_s : plan->latency_s;
}

static double objective_value(hs_objective o, const hs_plan *plan)
{
    switch (o) {
    case HS_OBJ_LATENCY: return plan->latency_s;
    case HS_OBJ_THROUGHPUT: return plan->bottleneck_s;
    case HS_OBJ_ENERGY: return plan->energy_j;
    case HS_OBJ_LIFETIME: return -plan->lifetime_s;
    case HS_OBJ_LOAD_LATENCY: return plan->load_latency_s;
    case HS_OBJ_COUNT: break;
    }
    return INFINITY;
}

double hs_plan_score(const hs_problem *p, const hs_constraints *k, hs_objective o,
                     const hs_plan *plan)
{
    for (int s = 0; s < plan->n_stages; s++)
        if (plan->memory_bytes[s] > p->cluster->devices[plan->stages[s].device].memory_bytes)
            return INFINITY;
    if (!plan->sustainable)
        return INFINITY;
    if (k->max_latency_s > 0 && bounded(k, plan) > k->max_latency_s)
        return INFINITY;
    return objective_value(o, plan);
}

/* ---- the search ---------------------------------------------------------------------------- */

/* Criteria a label can carry. */
enum { C_LATENCY, C_BOTTLENECK, C_ENERGY, C_LIFE, C_LOAD, C_COUNT };

typedef struct label {
    double v[4];
    int a;      /* start of the last stage */
    int8_t u;   /* previous device, -1 for the first stage */
    int32_t from; /* label index in the predecessor state, -1 for the first stage */
} label;

typedef struct state_labels {
    int32_t first, count; /* into search.pool */
} state_labels;

typedef struct search {
    const hs_problem *p;
    const hs_cluster *c;
    const hs_constraints *k;
    int n, D, max_stages;
    double lambda;
    /* what the DP minimises: criteria ids, and how they combine (max for bottleneck/life) */
    int n_crit;
    int crit[4];
    /* local caps, for tie-break passes: every stage/link service <= cap_bottleneck; every
     * device lifetime >= floor_life */
    double cap_bottleneck, floor_life;
    double bound;       /* on the bounded quantity, 0 = none */
    double max_idle_life; /* chains whose idle devices' -lifetime exceeds this are dropped */
    bool ignore_memory, ignore_rate;
    double *prefix;     /* [D][n+1] */
    double *wprefix;    /* [n+1] */
    int *emax;          /* [D][n+1]: last end b such that stage [a, b) fits on d */
    /* states: per device set (index = mask), per device, per position */
    state_labels **states;
    label *pool;
    size_t n_pool, cap_pool;
} search;

static double pfx(const search *s, int d, int i) { return s->prefix[(size_t)d * (s->n + 1) + i]; }

static hs_status search_init(search *s, const hs_problem *p, const hs_constraints *k,
                             bool ignore_memory, bool ignore_rate)
{
    memset(s, 0, sizeof *s);
    s->ignore_memory = ignore_memory;
    s->ignore_rate = ignore_rate;
    s->p = p;
    s->c = p->cluster;
    s->k = k;
    s->n = p->n_nodes;
    s->D = p->cluster->n_devices;
    s->lambda = k->rate > 0 ? k->rate : 0;
    s->max_stages = k->max_stages > 0 && k->max_stages < s->D ? k->max_stages : s->D;
    s->cap_bottleneck = INFINITY;
    s->floor_life = -INFINITY;
    s->max_idle_life = INFINITY;
    int n = s->n, D = s->D;
    s->prefix = malloc((size_t)D * (n + 1) * sizeof *s->prefix);
    s->wprefix = malloc((size_t)(n + 1) * sizeof *s->wprefix);
    s->emax = malloc((size_t)D * (n + 1) * sizeof *s->emax);
    s->states = calloc((size_t)1 << D, sizeof *s->states);
    if (!s->prefix || !s->wprefix || !s->emax || !s->states)
        return HS_ERR_NOMEM;
    s->wprefix[0] = 0;
    for (int i = 0; i < n; i++)
        s->wprefix[i + 1] = s->wprefix[i] + p->weight_bytes[i];
    int *window = malloc((size_t)(n + 1) * sizeof *window); /* monotone deque of live maxima */
    if (!window)
        return HS_ERR_NOMEM;
    for (int d = 0; d < D; d++) {
        double *P = &s->prefix[(size_t)d * (n + 1)];
        P[0] = 0;
        for (int i = 0; i < n; i++)
            P[i + 1] = P[i] + p->node_time[(size_t)d * n + i];
        /* Two pointers: stage [a, b) fits while weights + max live <= memory; the largest b
         * never decreases as a grows. */
        double cap = s->c->devices[d].memory_bytes;
        int b = 0, head = 0, tail = 0;
        for (int a = 0; a <= n; a++) {
            if (b < a) {
                b = a;
                head = tail = 0;
            }
            while (head < tail && window[head] < a)
                head++;
            while (b < n) {
                double live = p->live_bytes[b];
                double top = head < tail ? p->live_bytes[window[head]] : 0;
                double need = s->wprefix[b + 1] - s->wprefix[a] + (live > top ? live : top);
                if (need > cap && !s->ignore_memory)
                    break;
                while (head < tail && p->live_bytes[window[tail - 1]] <= live)
                    tail--;
                window[tail++] = b++;
            }
            s->emax[(size_t)d * (n + 1) + a] = b;
        }
    }
    free(window);
    return HS_OK;
}

static void search_free(search *s)
{
    free(s->prefix);
    free(s->wprefix);
    free(s->emax);
    if (s->states)
        for (size_t m = 0; m < (size_t)1 << s->D; m++)
            free(s->states[m]);
    free(s->states);
    free(s->pool);
}

static int emax(const search *s, int d, int a)
{
    return s->ignore_memory ? s->n : s->emax[(size_t)d * (s->n + 1) + a];
}

static state_labels *state_at(const search *s, unsigned mask, int d, int b)
{
    return s->states[mask] ? &s->states[mask][(size_t)d * (s->n + 1) + b] : NULL;
}

/* What a transition "stage [a, b) on d after device u (-1: none), device set mask" adds, in
 * three parts: the link into d, the stage itself, and what leaves d (its tx at b, or the
 * delivery to the sink). Each device's radio energy (its rx at a, its tx at b or of the
 * delivery, and the results coming back to it when it is the sink) is charged at its own
 * transition, so that its lifetime is known there; an idle sink's rx of the delivery is charged
 * to the last stage. A part is not ok when its link is missing or breaks the rate or a cap. */
typedef struct part {
    double latency, load, bott, energy, radio;
    bool ok;
} part;

static bool link_fits(const search *s, double sv)
{
    return (s->ignore_rate || s->lambda * sv < 1.0) && sv <= s->cap_bottleneck;
}

static part part_in(const search *s, int u, int d, int a)
{
    part in = {.ok = true};
    if (u < 0)
        return in;
    const hs_cluster *c = s->c;
    double bytes = s->p->cut_bytes[a], sv = service(c, u, d, bytes);
    in.ok = has_link(c, u, d) && link_fits(s, sv);
    in.latency = c->links[u][d].latency_s + sv;
    in.load = c->links[u][d].latency_s + md1(sv, s->lambda);
    in.bott = sv;
    in.radio = bytes * c->devices[d].power.rx_nj_per_byte * NJ;
    return in;
}

static part part_out(const search *s, int d, int b, unsigned mask)
{
    const hs_cluster *c = s->c;
    const hs_device *dv = &c->devices[d];
    const double *cut = s->p->cut_bytes;
    const int n = s->n;
    part out = {.ok = true};
    if (b < n) {
        out.radio = cut[b] * dv->power.tx_nj_per_byte * NJ;
        if (d == c->sink) /* the sink is not last: the results come back to it */
            out.radio += cut[n] * dv->power.rx_nj_per_byte * NJ;
        return out;
    }
    if (d == c->sink)
        return out;
    double sv = service(c, d, c->sink, cut[n]);
    out.ok = has_link(c, d, c->sink) && link_fits(s, sv);
    out.latency = c->links[d][c->sink].latency_s + sv;
    out.load = c->links[d][c->sink].latency_s + md1(sv, s->lambda);
    out.bott = sv;
    out.radio = cut[n] * dv->power.tx_nj_per_byte * NJ;
    const hs_device *sink = &c->devices[c->sink];
    if (!(mask & (1u << c->sink)) && counted(sink, s->k)) /* an idle sink receives them */
        out.energy = cut[n] * sink->power.rx_nj_per_byte * NJ;
    return out;
}

/* Energy per second of stage time on d, net of the idle power it replaces. */
static double stage_power(const search *s, int d)
{
    const hs_device *dv = &s->c->devices[d];
    if (!counted(dv, s->k))
        return 0;
    return dv->power.active_w - (s->lambda > 0 ? dv->power.idle_w : 0);
}

static bool stage_fits(const search *s, double stage)
{
    return (s->ignore_rate || s->lambda * stage < 1.0) && stage <= s->cap_bottleneck;
}

typedef struct step {
    double v[C_COUNT];
    bool ok;
} step;

static step transition(const search *s, int u, int d, int a, int b, unsigned mask)
{
    step t = {.ok = false};
    part in = part_in(s, u, d, a), out = part_out(s, d, b, mask);
    double stage = pfx(s, d, b) - pfx(s, d, a);
    if (!in.ok || !out.ok || !stage_fits(s, stage))
        return t;
    double radio = in.radio + out.radio;
    double life = device_lifetime(&s->c->devices[d], s->lambda, stage, radio);
    if (life < s->floor_life)
        return t;
    t.v[C_LATENCY] = in.latency + stage + out.latency;
    t.v[C_LOAD] = in.load + md1(stage, s->lambda) + out.load;
    t.v[C_BOTTLENECK] = fmax(stage, fmax(in.bott, out.bott));
    t.v[C_ENERGY] = stage_power(s, d) * stage + out.energy +
                    (counted(&s->c->devices[d], s->k) ? radio : 0);
    t.v[C_LIFE] = -life;
    t.ok = true;
    return t;
}

static bool is_max_criterion(int crit) { return crit == C_BOTTLENECK || crit == C_LIFE; }

/* ---- label pool and states ----------------------------------------------------------------- */

static hs_status pool_reserve(search *s, size_t more)
{
    if (s->n_pool + more <= s->cap_pool)
        return HS_OK;
    size_t cap = s->cap_pool ? s->cap_pool : 4096;
    while (cap < s->n_pool + more)
        cap *= 2;
    label *grown = realloc(s->pool, cap * sizeof *grown);
    if (!grown)
        return HS_ERR_NOMEM;
    s->pool = grown;
    s->cap_pool = cap;
    return HS_OK;
}

/* Adds a label to the open state (the labels at pool[first..n_pool)), keeping only the
 * non-dominated ones. */
static hs_status state_offer(search *s, size_t first, const label *l)
{
    int k = s->n_crit;
    for (size_t i = first; i < s->n_pool; i++) {
        const label *o = &s->pool[i];
        bool o_le = true, l_le = true;
        for (int j = 0; j < k; j++) {
            if (o->v[j] > l->v[j])
                o_le = false;
            if (l->v[j] > o->v[j])
                l_le = false;
        }
        if (o_le)
            return HS_OK; /* dominated (or equal) */
        if (l_le) {       /* l dominates o: drop o */
            s->pool[i] = s->pool[--s->n_pool];
            i--;
        }
    }
    hs_status st = pool_reserve(s, 1);
    if (st == HS_OK)
        s->pool[s->n_pool++] = *l;
    return st;
}

static unsigned source_bit(const search *s) { return 1u << s->c->source; }

static bool mask_usable(const search *s, unsigned mask)
{
    return (mask & source_bit(s)) && __builtin_popcount(mask) <= s->max_stages;
}

static hs_status alloc_states(search *s, unsigned mask)
{
    s->states[mask] = calloc((size_t)s->D * (s->n + 1), sizeof **s->states);
    return s->states[mask] ? HS_OK : HS_ERR_NOMEM;
}

/* Stage 0: [0, b) on the source (empty when b = 0, which only a later stage can complete). */
static hs_status seed_source(search *s)
{
    int src = s->c->source;
    unsigned mask = source_bit(s);
    hs_status st = alloc_states(s, mask);
    int last = s->c->devices[src].excluded ? 0 : emax(s, src, 0);
    for (int b = 0; b <= last && st == HS_OK; b++) {
        step t = transition(s, -1, src, 0, b, mask);
        if (!t.ok || (b == s->n && b == 0))
            continue;
        label l = {.a = 0, .u = -1, .from = -1};
        for (int j = 0; j < s->n_crit; j++)
            l.v[j] = t.v[s->crit[j]];
        state_labels *sl = state_at(s, mask, src, b);
        sl->first = (int32_t)s->n_pool;
        if ((st = state_offer(s, s->n_pool, &l)) == HS_OK)
            sl->count = (int32_t)(s->n_pool - (size_t)sl->first);
    }
    return st;
}

/* ---- the general label-setting DP ---------------------------------------------------------- */

static bool within_bound(const search *s, const double *v)
{
    if (s->bound <= 0)
        return true;
    for (int j = 0; j < s->n_crit; j++)
        if ((s->crit[j] == C_LATENCY || s->crit[j] == C_LOAD) &&
            s->crit[j] == (s->lambda > 0 ? C_LOAD : C_LATENCY))
            return v[j] <= s->bound;
    return true;
}

/* All states of device set `mask` with last device d, every start a and predecessor u. */
static hs_status relax_general(search *s, unsigned mask, int d)
{
    unsigned pm = mask & ~(1u << d);
    for (int b = 1; b <= s->n; b++) {
        state_labels *sl = state_at(s, mask, d, b);
        sl->first = (int32_t)s->n_pool;
        for (int a = 0; a < b; a++) {
            if (emax(s, d, a) < b)
                continue;
            for (int u = 0; u < s->D; u++) {
                if (!(pm & (1u << u)))
                    continue;
                const state_labels *prev = state_at(s, pm, u, a);
                if (!prev->count)
                    continue;
                step t = transition(s, u, d, a, b, mask);
                if (!t.ok)
                    continue;
                for (int32_t i = 0; i < prev->count; i++) {
                    const label *pl = &s->pool[prev->first + i];
                    label l = {.a = a, .u = (int8_t)u, .from = prev->first + i};
                    for (int j = 0; j < s->n_crit; j++) {
                        int c = s->crit[j];
                        l.v[j] = is_max_criterion(c) ? fmax(pl->v[j], t.v[c]) : pl->v[j] + t.v[c];
                    }
                    if (!within_bound(s, l.v))
                        continue;
                    hs_status st = state_offer(s, (size_t)sl->first, &l);
                    if (st != HS_OK)
                        return st;
                }
            }
        }
        sl->count = (int32_t)(s->n_pool - (size_t)sl->first);
    }
    return HS_OK;
}

/* ---- fast paths for one criterion ---------------------------------------------------------- */

/* Latency or energy: the stage adds coef * (P[b] - P[a]) with P the prefix of node times, so
 *   f(b) = coef * P[b] + out(b) + min over a in [lo(b), b) of A(a),
 *   A(a) = min over u of f(a, u) + in(u, a) - coef * P[a],
 * with lo(b) non-decreasing (memory, rate and cap bounds on the stage), a sliding-window
 * minimum kept in a monotone deque. */
static hs_status relax_linear(search *s, unsigned mask, int d, int *deque, double *A, int *best_u)
{
    const int n = s->n, crit = s->crit[0];
    unsigned pm = mask & ~(1u << d);
    const double coef = crit == C_LATENCY ? 1.0 : stage_power(s, d);
    const bool counts = counted(&s->c->devices[d], s->k);
    hs_status st = pool_reserve(s, (size_t)n + 1);
    if (st != HS_OK)
        return st;
    for (int a = 0; a < n; a++) {
        A[a] = INFINITY;
        best_u[a] = -1;
        for (int u = 0; u < s->D; u++) {
            if (!(pm & (1u << u)))
                continue;
            const state_labels *prev = state_at(s, pm, u, a);
            if (!prev->count)
                continue;
            part in = part_in(s, u, d, a);
            if (!in.ok)
                continue;
            double v = s->pool[prev->first].v[0] +
                       (crit == C_LATENCY ? in.latency : (counts ? in.radio : 0));
            if (v < A[a]) {
                A[a] = v;
                best_u[a] = u;
            }
        }
        A[a] -= coef * pfx(s, d, a);
    }
    int head = 0, tail = 0, lo = 0;
    for (int b = 1; b <= n; b++) {
        state_labels *sl = state_at(s, mask, d, b);
        sl->first = (int32_t)s->n_pool;
        if (best_u[b - 1] >= 0) {
            while (head < tail && A[deque[tail - 1]] >= A[b - 1])
                tail--;
            deque[tail++] = b - 1;
        }
        double pb = pfx(s, d, b);
        while (lo < b && (emax(s, d, lo) < b || !stage_fits(s, pb - pfx(s, d, lo))))
            lo++;
        while (head < tail && deque[head] < lo)
            head++;
        if (head == tail)
            continue;
        part out = part_out(s, d, b, mask);
        if (!out.ok)
            continue;
        int a = deque[head];
        double v = A[a] + coef * pb +
                   (crit == C_LATENCY ? out.latency : out.energy + (counts ? out.radio : 0));
        int u = best_u[a];
        s->pool[s->n_pool++] = (label){.v = {v}, .a = a, .u = (int8_t)u,
                                       .from = state_at(s, pm, u, a)->first};
        sl->count = 1;
    }
    return HS_OK;
}

/* A binary min-heap of (key, index) pairs. */
typedef struct heap {
    double *key;
    int *idx;
    int n;
} heap;

static void heap_push(heap *h, double key, int idx)
{
    int i = h->n++;
    while (i > 0 && h->key[(i - 1) / 2] > key) {
        h->key[i] = h->key[(i - 1) / 2];
        h->idx[i] = h->idx[(i - 1) / 2];
        i = (i - 1) / 2;
    }
    h->key[i] = key;
    h->idx[i] = idx;
}

static void heap_pop(heap *h)
{
    double key = h->key[--h->n];
    int idx = h->idx[h->n], i = 0;
    for (;;) {
        int c = 2 * i + 1;
        if (c >= h->n)
            break;
        if (c + 1 < h->n && h->key[c + 1] < h->key[c])
            c++;
        if (h->key[c] >= key)
            break;
        h->key[i] = h->key[c];
        h->idx[i] = h->idx[c];
        i = c;
    }
    h->key[i] = key;
    h->idx[i] = idx;
}

/* Throughput: f(b) = min over a in [lo(b), b) of max(B(a), P[b] - P[a]), B(a) = min over u
 * of max(f(a, u), link service). As b grows, a start a turns from "B(a) dominates" to "the
 * stage dominates" exactly once (when P[b] > P[a] + B(a)) and stays so. Among those the stage
 * is shortest for the largest a; among the others the smallest B(a) wins: one heap orders
 * starts by the time they turn, the other by B(a), with lazy removal. */
static hs_status relax_bottleneck(search *s, unsigned mask, int d, double *B, int *best_u,
                                  heap *turn, heap *byb, bool *turned)
{
    const int n = s->n;
    unsigned pm = mask & ~(1u << d);
    hs_status st = pool_reserve(s, (size_t)n + 1);
    if (st != HS_OK)
        return st;
    for (int a = 0; a < n; a++) {
        B[a] = INFINITY;
        best_u[a] = -1;
        turned[a] = false;
        for (int u = 0; u < s->D; u++) {
            if (!(pm & (1u << u)))
                continue;
            const state_labels *prev = state_at(s, pm, u, a);
            if (!prev->count)
                continue;
            part in = part_in(s, u, d, a);
            if (!in.ok)
                continue;
            double v = fmax(s->pool[prev->first].v[0], in.bott);
            if (v < B[a]) {
                B[a] = v;
                best_u[a] = u;
            }
        }
    }
    turn->n = byb->n = 0;
    int lo = 0, last_turned = -1;
    for (int b = 1; b <= n; b++) {
        state_labels *sl = state_at(s, mask, d, b);
        sl->first = (int32_t)s->n_pool;
        if (best_u[b - 1] >= 0) {
            heap_push(turn, pfx(s, d, b - 1) + B[b - 1], b - 1);
            heap_push(byb, B[b - 1], b - 1);
        }
        double pb = pfx(s, d, b);
        while (turn->n && turn->key[0] < pb) {
            int a = turn->idx[0];
            turned[a] = true;
            if (a > last_turned)
                last_turned = a;
            heap_pop(turn);
        }
        while (lo < b && (emax(s, d, lo) < b || !stage_fits(s, pb - pfx(s, d, lo))))
            lo++;
        while (byb->n && (byb->idx[0] < lo || turned[byb->idx[0]]))
            heap_pop(byb);
        double v = INFINITY;
        int a = -1;
        if (last_turned >= lo) {
            v = pb - pfx(s, d, last_turned);
            a = last_turned;
        }
        if (byb->n && byb->key[0] < v) {
            v = byb->key[0];
            a = byb->idx[0];
        }
        if (a < 0)
            continue;
        part out = part_out(s, d, b, mask);
        if (!out.ok)
            continue;
        int u = best_u[a];
        s->pool[s->n_pool++] = (label){.v = {fmax(v, out.bott)}, .a = a, .u = (int8_t)u,
                                       .from = state_at(s, pm, u, a)->first};
        sl->count = 1;
    }
    return HS_OK;
}

/* ---- running a search ---------------------------------------------------------------------- */

typedef enum { RELAX_GENERAL, RELAX_LINEAR, RELAX_BOTTLENECK } relax_kind;

static hs_status run_search(search *s, relax_kind kind)
{
    const int n = s->n;
    double *A = malloc((size_t)(n + 1) * sizeof *A);
    int *best_u = malloc((size_t)(n + 1) * sizeof *best_u);
    int *deque = malloc((size_t)(n + 1) * sizeof *deque);
    bool *turned = malloc((size_t)(n + 1) * sizeof *turned);
    heap turn = {malloc((size_t)(n + 1) * sizeof(double)), malloc((size_t)(n + 1) * sizeof(int)), 0};
    heap byb = {malloc((size_t)(n + 1) * sizeof(double)), malloc((size_t)(n + 1) * sizeof(int)), 0};
    hs_status st = HS_ERR_NOMEM;
    if (!A || !best_u || !deque || !turned || !turn.key || !turn.idx || !byb.key || !byb.idx)
        goto done;
    if ((st = seed_source(s)) != HS_OK)
        goto done;
    for (unsigned mask = 1; mask < (1u << s->D) && st == HS_OK; mask++) {
        if (!mask_usable(s, mask) || mask == source_bit(s))
            continue;
        if ((st = alloc_states(s, mask)) != HS_OK)
            break;
        for (int d = 0; d < s->D && st == HS_OK; d++) {
            if (!(mask & (1u << d)) || d == s->c->source || s->c->devices[d].excluded ||
                !s->states[mask & ~(1u << d)])
                continue;
            if (kind == RELAX_LINEAR)
                st = relax_linear(s, mask, d, deque, A, best_u);
            else if (kind == RELAX_BOTTLENECK)
                st = relax_bottleneck(s, mask, d, A, best_u, &turn, &byb, turned);
            else
                st = relax_general(s, mask, d);
        }
    }
done:
    free(A);
    free(best_u);
    free(deque);
    free(turned);
    free(turn.key);
    free(turn.idx);
    free(byb.key);
    free(byb.idx);
    return st;
}

/* The lifetime of the battery devices a chain over `mask` leaves idle (the sink receiving the
 * delivery if it is one of them). */
static double idle_lifetime(const search *s, unsigned mask)
{
    double life = INFINITY;
    for (int d = 0; d < s->D; d++) {
        if (mask & (1u << d))
            continue;
        const hs_device *dv = &s->c->devices[d];
        double radio = d == s->c->sink ? s->p->cut_bytes[s->n] * dv->power.rx_nj_per_byte * NJ : 0;
        life = fmin(life, device_lifetime(dv, s->lambda, 0, radio));
    }
    return life;
}

/* Energy every plan pays: idle power over the whole period of every counted device. */
static double energy_constant(const search *s)
{
    double e = 0;
    if (s->lambda > 0)
        for (int d = 0; d < s->D; d++)
            if (counted(&s->c->devices[d], s->k))
                e += s->c->devices[d].power.idle_w / s->lambda;
    return e;
}

/* A finished chain: a label at some state (n, d, mask), with its final criteria. */
typedef struct ending {
    unsigned mask;
    int d;
    int32_t label;
    double v[4];
} ending;

static void finish_label(const search *s, unsigned mask, const label *l, double *v)
{
    for (int j = 0; j < s->n_crit; j++) {
        v[j] = l->v[j];
        if (s->crit[j] == C_LIFE)
            v[j] = fmax(v[j], -idle_lifetime(s, mask));
        else if (s->crit[j] == C_ENERGY)
            v[j] += energy_constant(s);
    }
}

/* Calls fn for every finished chain within the bound; returns how many. */
static int for_each_ending(const search *s, void (*fn)(void *ctx, const ending *e), void *ctx)
{
    int count = 0;
    for (unsigned mask = 1; mask < (1u << s->D); mask++) {
        if (!s->states[mask])
            continue;
        for (int d = 0; d < s->D; d++) {
            if (!(mask & (1u << d)))
                continue;
            const state_labels *sl = state_at(s, mask, d, s->n);
            for (int32_t i = 0; i < sl->count; i++) {
                ending e = {.mask = mask, .d = d, .label = sl->first + i};
                finish_label(s, mask, &s->pool[e.label], e.v);
                if (!within_bound(s, e.v) || e.v[0] == INFINITY ||
                    -idle_lifetime(s, mask) > s->max_idle_life)
                    continue;
                fn(ctx, &e);
                count++;
            }
        }
    }
    return count;
}

static void keep_best(void *ctx, const ending *e)
{
    ending *best = ctx;
    if (best->label < 0 || e->v[0] < best->v[0])
        *best = *e;
}

/* Rebuilds the stages of a finished chain by following its labels back. */
static void backtrack(const search *s, const ending *e, hs_plan *plan)
{
    hs_stage rev[HS_MAX_DEVICES];
    int count = 0, d = e->d, b = s->n;
    unsigned mask = e->mask;
    const label *l = &s->pool[e->label];
    for (;;) {
        rev[count++] = (hs_stage){.device = d, .first = l->a, .last = b};
        if (l->u < 0)
            break;
        mask &= ~(1u << d);
        b = l->a;
        d = l->u;
        l = &s->pool[l->from];
    }
    memset(plan, 0, sizeof *plan);
    plan->n_stages = count;
    for (int i = 0; i < count; i++)
        plan->stages[i] = rev[count - 1 - i];
}

/* ---- solving ------------------------------------------------------------------------------- */

static const int objective_criterion[] = {
    [HS_OBJ_LATENCY] = C_LATENCY,   [HS_OBJ_THROUGHPUT] = C_BOTTLENECK,
    [HS_OBJ_ENERGY] = C_ENERGY,     [HS_OBJ_LIFETIME] = C_LIFE,
    [HS_OBJ_LOAD_LATENCY] = C_LOAD,
};
_Static_assert(sizeof objective_criterion / sizeof objective_criterion[0] == HS_OBJ_COUNT,
               "one criterion per objective");

typedef struct relax {
    bool memory, rate, bound; /* constraints to ignore, when diagnosing infeasibility */
} relax;

/* Minimises criterion `crit` (with the latency bound as a second criterion when it bounds
 * something else) and stores the best ending in *best (label -1: none). */
static hs_status search_best(search *s, int crit, const hs_constraints *k, const relax *r,
                             ending *best)
{
    int bounded_crit = s->lambda > 0 ? C_LOAD : C_LATENCY;
    s->crit[0] = crit;
    s->n_crit = 1;
    s->bound = r->bound ? 0 : k->max_latency_s;
    if (s->bound > 0 && crit != bounded_crit)
        s->crit[s->n_crit++] = bounded_crit;
    relax_kind kind = RELAX_GENERAL;
    if (s->n_crit == 1 && (crit == C_LATENCY || crit == C_ENERGY) && s->floor_life == -INFINITY)
        kind = RELAX_LINEAR;
    else if (s->n_crit == 1 && crit == C_BOTTLENECK && s->floor_life == -INFINITY)
        kind = RELAX_BOTTLENECK;
    hs_status st = run_search(s, kind);
    best->label = -1;
    if (st == HS_OK)
        for_each_ending(s, keep_best, best);
    return st;
}

static void reset_states(search *s)
{
    for (size_t m = 0; m < (size_t)1 << s->D; m++) {
        free(s->states[m]);
        s->states[m] = NULL;
    }
    s->n_pool = 0;
}

/* The best plan for objective o, or plan->n_stages = 0 when none is feasible. */
static hs_status best_plan(const hs_problem *p, hs_objective o, const hs_constraints *k,
                           const relax *r, hs_plan *plan, hs_error *err)
{
    search s;
    memset(plan, 0, sizeof *plan);
    hs_status st = search_init(&s, p, k, r->memory, r->rate);
    ending best;
    if (st == HS_OK)
        st = search_best(&s, objective_criterion[o], k, r, &best);
    /* Many plans share the best bottleneck or lifetime: among them, take the fastest. */
    if (st == HS_OK && best.label >= 0 && (o == HS_OBJ_THROUGHPUT || o == HS_OBJ_LIFETIME)) {
        double optimum = best.v[0];
        reset_states(&s);
        if (o == HS_OBJ_THROUGHPUT) {
            s.cap_bottleneck = optimum;
        } else { /* optimum is -lifetime */
            s.floor_life = -optimum;
            s.max_idle_life = optimum;
        }
        ending fastest;
        st = search_best(&s, s.lambda > 0 ? C_LOAD : C_LATENCY, k, r, &fastest);
        if (st == HS_OK && fastest.label >= 0)
            best = fastest;
    }
    if (st == HS_OK && best.label >= 0) {
        backtrack(&s, &best, plan);
        st = hs_plan_evaluate(p, k, plan, err);
    }
    search_free(&s);
    if (st == HS_ERR_NOMEM)
        hs__set_error(err, st, "out of memory searching plans");
    return st;
}

static double total_weights(const hs_problem *p)
{
    double w = 0;
    for (int i = 0; i < p->n_nodes; i++)
        w += p->weight_bytes[i];
    return w;
}

/* No plan: finds which constraint binds by relaxing them one after another. */
static hs_status explain_infeasible(const hs_problem *p, hs_objective o, const hs_constraints *k,
                                    hs_error *err)
{
    const hs_cluster *c = p->cluster;
    hs_plan plan;
    hs_status st;
    relax r = {.bound = true};
    if (k->max_latency_s > 0) {
        hs_objective by = k->rate > 0 ? HS_OBJ_LOAD_LATENCY : HS_OBJ_LATENCY;
        if ((st = best_plan(p, by, k, &r, &plan, err)) != HS_OK)
            return st;
        if (plan.n_stages)
            return hs__set_error(err, HS_ERR_INFEASIBLE,
                                 "no feasible plan: the latency bound of %.3f ms; the fastest "
                                 "plan takes %.3f ms", 1e3 * k->max_latency_s,
                                 1e3 * (k->rate > 0 ? plan.load_latency_s : plan.latency_s));
    }
    r.rate = true;
    if (k->rate > 0) {
        if ((st = best_plan(p, HS_OBJ_THROUGHPUT, k, &r, &plan, err)) != HS_OK)
            return st;
        if (plan.n_stages)
            return hs__set_error(err, HS_ERR_INFEASIBLE,
                                 "no feasible plan: the arrival rate of %.3g/s; the best plan "
                                 "sustains less than %.3g/s", k->rate, plan.throughput_rps);
    }
    r.memory = true;
    if ((st = best_plan(p, HS_OBJ_LATENCY, k, &r, &plan, err)) != HS_OK)
        return st;
    if (plan.n_stages) {
        double most = 0;
        int who = 0;
        for (int d = 0; d < c->n_devices; d++)
            if (!c->devices[d].excluded && c->devices[d].memory_bytes > most)
                most = c->devices[d].memory_bytes, who = d;
        return hs__set_error(err, HS_ERR_INFEASIBLE,
                             "no feasible plan: memory; no chain of devices holds the model "
                             "(%.1f MiB of weights; the largest device, %s, has %.1f MiB)",
                             total_weights(p) / 1048576.0, c->devices[who].name,
                             most / 1048576.0);
    }
    (void)o;
    return hs__set_error(err, HS_ERR_INFEASIBLE,
                         "no feasible plan: no chain of usable devices and links runs from "
                         "the source %s to the sink %s%s", c->devices[c->source].name,
                         c->devices[c->sink].name,
                         k->max_stages > 0 ? " within max_stages" : "");
}

static hs_status check_problem(const hs_problem *p, const hs_constraints *k, hs_error *err)
{
    const hs_cluster *c = p->cluster;
    if (p->n_nodes < 1)
        return hs__set_error(err, HS_ERR_INVALID, "the model has no nodes to place");
    if (c->n_devices < 1 || c->n_devices > HS_MAX_DEVICES || c->source < 0 ||
        c->source >= c->n_devices || c->sink < 0 || c->sink >= c->n_devices)
        return hs__set_error(err, HS_ERR_INVALID, "invalid cluster");
    if (k->rate < 0 || k->max_latency_s < 0 || k->max_stages < 0)
        return hs__set_error(err, HS_ERR_INVALID, "rate, latency bound and max_stages must "
                             "not be negative");
    /* States: per device set holding the source (up to max_stages devices), D * (n + 1). */
    int D = c->n_devices, S = k->max_stages > 0 && k->max_stages < D ? k->max_stages : D;
    double sets = 0, choose = 1;
    for (int i = 0; i < S; i++) { /* sum of C(D-1, i) */
        sets += choose;
        choose = choose * (D - 1 - i) / (i + 1);
    }
    double bytes = sets * D * (p->n_nodes + 1.0) * sizeof(state_labels);
    if (bytes > 1024.0 * 1048576.0)
        return hs__set_error(err, HS_ERR_INVALID, "%d devices and %d nodes need %.0f MiB for an "
                             "exact search; lower max_stages", D, p->n_nodes, bytes / 1048576.0);
    return HS_OK;
}

hs_status hs_solve(const hs_problem *p, hs_objective o, const hs_constraints *k, hs_plan *out,
                   hs_error *err)
{
    assert(p && k && out);
    hs_status st = check_problem(p, k, err);
    if (st != HS_OK)
        return st;
    if (o < 0 || o >= HS_OBJ_COUNT)
        return hs__set_error(err, HS_ERR_INVALID, "unknown objective %d", (int)o);
    if ((o == HS_OBJ_LIFETIME || o == HS_OBJ_LOAD_LATENCY) && k->rate <= 0)
        return hs__set_error(err, HS_ERR_INVALID, "the %s objective needs an arrival rate",
                             hs_objective_name(o));
    relax none = {0};
    if ((st = best_plan(p, o, k, &none, out, err)) != HS_OK)
        return st;
    return out->n_stages ? HS_OK : explain_infeasible(p, o, k, err);
}

/* ---- Pareto front -------------------------------------------------------------------------- */

typedef struct front {
    ending *items;
    int n, cap;
    bool failed;
} front;

static void collect(void *ctx, const ending *e)
{
    front *f = ctx;
    if (f->failed)
        return;
    if (f->n == f->cap) {
        int cap = f->cap ? 2 * f->cap : 64;
        ending *grown = realloc(f->items, (size_t)cap * sizeof *grown);
        if (!grown) {
            f->failed = true;
            return;
        }
        f->items = grown;
        f->cap = cap;
    }
    f->items[f->n++] = *e;
}

static bool dominates(const double *a, const double *b)
{
    bool strict = false;
    for (int j = 0; j < 3; j++) {
        if (a[j] > b[j])
            return false;
        if (a[j] < b[j])
            strict = true;
    }
    return strict;
}

static int by_latency(const void *x, const void *y)
{
    double a = ((const hs_plan *)x)->latency_s, b = ((const hs_plan *)y)->latency_s;
    return (a > b) - (a < b);
}

hs_status hs_solve_pareto(const hs_problem *p, const hs_constraints *k, hs_plan **out,
                          int *n_out, hs_error *err)
{
    assert(p && k && out && n_out);
    *out = NULL;
    *n_out = 0;
    hs_status st = check_problem(p, k, err);
    if (st != HS_OK)
        return st;
    search s;
    front f = {0};
    if ((st = search_init(&s, p, k, false, false)) == HS_OK) {
        s.n_crit = 3;
        s.crit[0] = C_LATENCY;
        s.crit[1] = C_BOTTLENECK;
        s.crit[2] = C_ENERGY;
        s.bound = k->max_latency_s;
        if (s.bound > 0 && s.lambda > 0) /* the bound is on the load latency: track it too */
            s.crit[s.n_crit++] = C_LOAD;
        st = run_search(&s, RELAX_GENERAL);
    }
    if (st == HS_OK) {
        for_each_ending(&s, collect, &f);
        if (f.failed)
            st = HS_ERR_NOMEM;
    }
    hs_plan *plans = st == HS_OK ? malloc(((size_t)f.n + 1) * sizeof *plans) : NULL;
    if (st == HS_OK && !plans)
        st = HS_ERR_NOMEM;
    int kept = 0;
    for (int i = 0; st == HS_OK && i < f.n; i++) {
        bool dominated = false;
        for (int j = 0; j < f.n && !dominated; j++)
            dominated = dominates(f.items[j].v, f.items[i].v) ||
                        (j < i && memcmp(f.items[j].v, f.items[i].v, 3 * sizeof(double)) == 0);
        if (dominated)
            continue;
        backtrack(&s, &f.items[i], &plans[kept]);
        st = hs_plan_evaluate(p, k, &plans[kept], err);
        if (st == HS_OK && hs_plan_score(p, k, HS_OBJ_LATENCY, &plans[kept]) < INFINITY)
            kept++;
    }
    free(f.items);
    search_free(&s);
    if (st != HS_OK) {
        free(plans);
        return st == HS_ERR_NOMEM ? hs__set_error(err, st, "out of memory searching plans") : st;
    }
    if (!kept) {
        free(plans);
        return explain_infeasible(p, HS_OBJ_LATENCY, k, err);
    }
    qsort(plans, (size_t)kept, sizeof *plans, by_latency);
    *out = plans;
    *n_out = kept;
    return HS_OK;
}
