/*
 * The coordinator: admission, plans, membership and exactly-once answers.
 *
 * One zmq_poll loop over a ROUTER (workers' control messages and clients' requests), a PULL
 * "sink" socket (the last stage's outputs) and a monitor on the ROUTER (disconnects). The
 * source device's worker runs in a thread of this process and talks to the loop over inproc
 * sockets like any other worker.
 *
 * Requests: each SUBMIT gets a request id and is kept, input and all, in a table until its
 * result arrives. It is dispatched under the current committed plan epoch and keeps that epoch:
 * workers hold every prepared plan until COMMIT says no request needs it any more. When a
 * result arrives the request leaves the table and its client gets one REPLY; a second result
 * for the same id finds no entry and is counted as a duplicate.
 *
 * Plans: two-phase. PREPARE(e) goes to the devices of plan e; when all are READY, COMMIT(e)
 * makes it current. Only one plan is pending at a time; a newer proposal replaces a pending one.
 *
 * Membership: a worker that leaves (BYE), whose connection drops (ZMTP heartbeat timeout or a
 * dead process: the monitor reports the disconnect, and a ROUTER_MANDATORY send to it then
 * fails with EHOSTUNREACH), is removed; the plan is recomputed without it, and every request
 * that was running on a plan that used it is dispatched again from its kept input once the new
 * plan is committed. A worker that joins triggers a new plan that can use it.
 *
 * The model file is mapped for the coordinator's lifetime: its digest, the graph and the chunks
 * that workers started without the file fetch (MODEL_REQUEST -> MODEL_CHUNK) all come from the
 * same bytes, and chunks are sent straight from the mapping.
 */
#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "hotsplit/cost.h"
#include "runtime_impl.h"

#define HISTORY 256           /* recent plans kept to route and check results */
#define TICK_MS 10
#define PROBE_EVERY_S 0.25
#define PREPARE_TIMEOUT_S 3.0
#define PREPARE_RETRY_S 1.0   /* after the source could not prepare a plan */
#define MAX_ATTEMPTS 5
#define REFINE_EVERY_S 1.0   /* how often measured stage times may move the plan */
#define REFINE_GAIN 0.02     /* ... by at least this gain, confirmed (hs_replan_check) by the
                                next check finding the same plan, */
#define REFINE_BIG_GAIN 0.10 /* ... or both checks' plans gaining this much */
#define OUTSIDE_ALPHA 0.05   /* weight of each admitted request in the share from outside */
#define MIX_GAIN 0.005       /* mix in a neighbouring plan when that gains at least this */
#define MIX_BACKOFF_S 10.0   /* no mixing this long after a neighbour failed to prepare */
#define STATUS_EVERY_S 5.0   /* --verbose: answered/s and measured stage times this often */
#define OBSERVE_TAU_S 1.0    /* measured time a device's cost correction averages over */

hs_status hs__plan_file_load(const char *path, const hs_cluster *c, int n_nodes, hs_plan *out,
                             hs_error *err);

/* A request's input, kept until its answer: the SUBMIT message itself, shared by every
 * dispatch of it (ZeroMQ sends the tensor frames straight from it). */
typedef struct kept_input {
    hs_msg *msg;
    atomic_int refs;
} kept_input;

static void input_release(void *hint)
{
    kept_input *k = hint;
    if (atomic_fetch_sub(&k->refs, 1) == 1) {
        hs_msg_close(k->msg);
        free(k->msg);
        free(k);
    }
}

typedef struct request {
    uint64_t id;          /* 0: empty slot */
    char client[HS_NAME_MAX];
    uint64_t tag;         /* the client's request id */
    uint32_t epoch;       /* plan it runs under */
    double admitted, dispatched;
    int attempts;
    bool waiting;         /* to be dispatched (again) under the next committed plan */
    bool at_stage1;       /* elastic hand-off: the source handed this attempt to stage 1 */
    kept_input *input;
} request;

typedef struct member {
    bool live;
    bool unusable;        /* failed to prepare a plan; excluded until it registers again */
    char endpoint[HS_WIRE_ENDPOINT_MAX];
} member;

typedef struct epoch_rec {
    uint32_t epoch;
    hs_wire_plan wire;
    hs_plan plan;
} epoch_rec;

struct hs_coordinator {
    hs_coordinator_opts o;
    void *ctx;
    void *router, *sink, *monitor;
    char inproc[64];
    char sink_endpoint[HS_WIRE_ENDPOINT_MAX];
    char local_sink[64];       /* the sink over inproc, for the source's own results */
    hs_zap *zap;
    /* model, cluster, costs */
    const uint8_t *model;  /* the model file, mapped read-only */
    size_t model_size;
    hs_graph *g;
    uint64_t digest;
    hs_cluster cluster;
    hs_profile *profile;
    hs_cost_model *costs;
    bool pinned;
    hs_plan pinned_plan;
    /* membership and plans */
    member members[HS_MAX_DEVICES];
    epoch_rec history[HISTORY];
    uint32_t last_epoch, current, pending;
    /* Plan mixing (throughput): a share of new requests runs on a second committed plan, the
     * current one with one cut moved by a node, to balance the stages finer than whole nodes
     * (hs_plan_mix). Each neighbour of the current plan (boundary s, moved left or right:
     * index 2 (s - 1) + right) is prepared once, as its own epoch, and kept while the current
     * plan stays: measurements that swing between neighbours then only change which one is
     * mixed in and its share, never create epochs. mix_acc spreads the share evenly. */
    uint32_t mix;
    uint32_t neighbour[2 * HS_MAX_DEVICES];
    double mix_share, mix_acc, mix_backoff_until;
    bool pending_mix;        /* the pending plan is a neighbour, not to replace current */
    int pending_neighbour;
    double pending_share;
    /* Share of the requests that came over the network (recent ones weigh most): the source
     * receives their inputs and sends their results, which the plan prices as its io. */
    double outside_share;
    bool ready[HS_MAX_DEVICES];
    double pending_since, next_swap, next_probe, next_refine, loss_at;
    /* --verbose status: measured stage time per device since the last status line */
    double next_status, status_seconds[HS_MAX_DEVICES];
    uint64_t status_runs[HS_MAX_DEVICES], status_answered;
    bool replan_wanted;
    double replan_after;     /* not before: the source failed to prepare the last plan */
    hs_replan refining;        /* refine()'s rule, and its candidate plan */
    hs__elastic elastic;       /* elastic hand-off (o.elastic > 0): shared with the source */
    uint64_t ring_read;        /* hand-offs read from elastic.ring */
    uint64_t stage1;           /* requests marked at_stage1 */
    uint64_t observations, candidate_observations; /* telemetry reports taken; at candidate */
    unsigned rng;
    /* requests */
    request *table;
    size_t cap, count;
    uint64_t next_id;
    hs__pushers pushers;
    /* the embedded source worker */
    hs_worker *source_worker;
    pthread_t source_thread;
    bool source_started;
    hs_error source_err;
    /* I/O buffers and counters */
    hs_msg *in, *out;
    hs__badlog bad;
    hs_coordinator_stats stats;
    volatile sig_atomic_t stop;
    /* What other threads see of stats (hs_coordinator_get_stats, hs_coordinator_wait): a copy
     * published under the lock at each turn of the loop in which it changed. */
    pthread_mutex_t shared_lock;
    pthread_cond_t shared_changed;
    hs_coordinator_stats shared;
    bool run_over;            /* run() has returned */
};

static void logf_(const hs_coordinator *c, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

static void logf_(const hs_coordinator *c, const char *fmt, ...)
{
    if (!c->o.verbose)
        return;
    va_list ap;
    va_start(ap, fmt);
    fprintf(stderr, "coordinator: ");
    vfprintf(stderr, fmt, ap);
    fputc('\n', stderr);
    va_end(ap);
}

/* ---- the request table: open addressing keyed by request id --------------------------------- */

static size_t slot_of(const hs_coordinator *c, uint64_t id)
{
    return (size_t)(id * 0x9e3779b97f4a7c15ull >> 20) & (c->cap - 1);
}

static request *req_find(hs_coordinator *c, uint64_t id)
{
    for (size_t i = slot_of(c, id);; i = (i + 1) & (c->cap - 1)) {
        if (c->table[i].id == id)
            return &c->table[i];
        if (!c->table[i].id)
            return NULL;
    }
}

static hs_status req_grow(hs_coordinator *c)
{
    size_t old_cap = c->cap;
    request *old = c->table;
    c->cap = old_cap ? 2 * old_cap : 1024;
    c->table = calloc(c->cap, sizeof *c->table);
    if (!c->table) {
        c->table = old;
        c->cap = old_cap;
        return HS_ERR_NOMEM;
    }
    for (size_t i = 0; i < old_cap; i++)
        if (old[i].id) {
            size_t j = slot_of(c, old[i].id);
            while (c->table[j].id)
                j = (j + 1) & (c->cap - 1);
            c->table[j] = old[i];
        }
    free(old);
    return HS_OK;
}

static request *req_insert(hs_coordinator *c, uint64_t id)
{
    if ((c->count + 1) * 2 > c->cap && req_grow(c) != HS_OK)
        return NULL;
    size_t i = slot_of(c, id);
    while (c->table[i].id)
        i = (i + 1) & (c->cap - 1);
    memset(&c->table[i], 0, sizeof c->table[i]);
    c->table[i].id = id;
    c->count++;
    return &c->table[i];
}

/* r's attempt is over (answered, given up, or to be re-issued): not at stage 1 any more. */
static void stage1_leave(hs_coordinator *c, request *r)
{
    if (r->at_stage1) {
        r->at_stage1 = false;
        c->stage1--;
    }
}

/* Removes r, shifting later entries of its probe run back (no tombstones). */
static void req_remove(hs_coordinator *c, request *r)
{
    stage1_leave(c, r);
    input_release(r->input);
    size_t i = (size_t)(r - c->table);
    c->table[i].id = 0;
    c->count--;
    for (size_t j = (i + 1) & (c->cap - 1); c->table[j].id; j = (j + 1) & (c->cap - 1)) {
        size_t home = slot_of(c, c->table[j].id);
        /* Move j back to the hole i if its home is not in (i, j]. */
        bool in_range = i <= j ? (home > i && home <= j) : (home > i || home <= j);
        if (!in_range) {
            c->table[i] = c->table[j];
            c->table[j].id = 0;
            i = j;
        }
    }
}

/* ---- plans ------------------------------------------------------------------------------- */

static epoch_rec *epoch_find(hs_coordinator *c, uint32_t e)
{
    epoch_rec *r = &c->history[e % HISTORY];
    return e && r->epoch == e ? r : NULL;
}

static bool plan_uses(const hs_plan *p, int d)
{
    for (int s = 0; s < p->n_stages; s++)
        if (p->stages[s].device == d)
            return true;
    return false;
}

/* The cluster as it is now: devices that are not live are excluded. */
static void live_cluster(const hs_coordinator *c, hs_cluster *out)
{
    *out = c->cluster;
    for (int d = 0; d < out->n_devices; d++)
        if (d != out->source && (!c->members[d].live || c->members[d].unusable))
            out->devices[d].excluded = true;
}

/* A random valid plan over the live devices: swap testing. */
static bool random_plan(hs_coordinator *c, const hs_problem *p, hs_plan *out)
{
    const hs_cluster *cl = p->cluster;
    int n = p->n_nodes, live[HS_MAX_DEVICES], n_live = 0;
    for (int d = 0; d < cl->n_devices; d++)
        if (d != cl->source && !cl->devices[d].excluded)
            live[n_live++] = d;
    for (int attempt = 0; attempt < 50; attempt++) {
        int stages = 1 + (int)(rand_r(&c->rng) % (unsigned)(n_live < 2 ? n_live + 1 : 3));
        if (stages > n)
            stages = n;
        memset(out, 0, sizeof *out);
        out->n_stages = stages;
        int cuts[HS_MAX_DEVICES] = {0};
        for (int s = 1; s < stages; s++) {
            int cut;
            bool taken;
            do { /* distinct cut points in [1, n - 1] */
                cut = 1 + (int)(rand_r(&c->rng) % (unsigned)(n - 1));
                taken = false;
                for (int j = 1; j < s; j++)
                    taken |= cuts[j] == cut;
            } while (taken);
            cuts[s] = cut;
        }
        for (int s = 1; s < stages; s++) /* insertion sort of the cuts */
            for (int j = s; j > 1 && cuts[j - 1] > cuts[j]; j--) {
                int t = cuts[j];
                cuts[j] = cuts[j - 1];
                cuts[j - 1] = t;
            }
        int pick[HS_MAX_DEVICES];
        memcpy(pick, live, sizeof pick);
        for (int s = 0; s < stages; s++) {
            int dev = cl->source;
            if (s > 0) {
                int j = s - 1 + (int)(rand_r(&c->rng) % (unsigned)(n_live - (s - 1)));
                dev = pick[j];
                pick[j] = pick[s - 1];
                pick[s - 1] = dev;
            }
            out->stages[s] = (hs_stage){dev, cuts[s], s + 1 < stages ? cuts[s + 1] : n};
        }
        hs_constraints none = {0};
        if (hs_plan_evaluate(p, &none, out, NULL) == HS_OK &&
            hs_plan_score(p, &none, HS_OBJ_LATENCY, out) < INFINITY)
            return true;
    }
    return false;
}

/* The cost model's problem as of now: its arrays, with the bytes the source exchanges with
 * clients outside this process (inputs in, results out) for the share of requests that came
 * over the network. */
static hs_status cost_problem(hs_coordinator *c, hs_problem *p, hs_error *err)
{
    hs_status st = hs_cost_problem(c->costs, p, err);
    if (st == HS_OK)
        p->outside_bytes = c->outside_share * (p->cut_bytes[0] + p->cut_bytes[p->n_nodes]);
    return st;
}

/* Decides the next plan; false if no plan is possible now (err says why). */
static bool choose_plan(hs_coordinator *c, bool random, hs_plan *out, hs_error *err)
{
    hs_cluster live;
    live_cluster(c, &live);
    hs_problem p;
    if (cost_problem(c, &p, err) != HS_OK)
        return false;
    p.cluster = &live; /* same arrays, today's membership */
    if (c->pinned) {
        *out = c->pinned_plan;
        hs_constraints none = {0};
        if (hs_plan_evaluate(&p, &none, out, NULL) == HS_OK)
            return true;
        logf_(c, "the pinned plan needs a device that is not live; using the solver's");
    }
    if (random && random_plan(c, &p, out))
        return true;
    return hs_solve(&p, c->o.objective, &c->o.constraints, out, err) == HS_OK;
}

static int participants(const hs_plan *p, int *devices)
{
    for (int s = 0; s < p->n_stages; s++)
        devices[s] = p->stages[s].device;
    return p->n_stages;
}

static hs_status send_to(hs_coordinator *c, int device, hs_msg *m)
{
    hs_error err;
    return hs_msg_send(c->router, c->cluster.devices[device].name, m, NULL, NULL, ZMQ_DONTWAIT,
                       &err);
}

static void copy_str(char *dst, size_t size, const char *src)
{
    size_t n = strlen(src);
    if (n >= size)
        n = size - 1;
    memcpy(dst, src, n);
    dst[n] = '\0';
}

static void prepare(hs_coordinator *c, const hs_plan *plan);

static void propose(hs_coordinator *c, bool random)
{
    hs_plan plan;
    hs_error err = {0};
    c->replan_wanted = false;
    if (!choose_plan(c, random, &plan, &err)) {
        logf_(c, "no plan now: %s", err.msg);
        return;
    }
    /* The current plan stays when it is the same on the same live processes. */
    epoch_rec *cur = epoch_find(c, c->current);
    bool unchanged = cur && !c->pending && hs_plan_same_stages(&cur->plan, &plan);
    for (int s = 0; unchanged && s < cur->plan.n_stages; s++) {
        int d = cur->plan.stages[s].device;
        const char *was = hs__plan_endpoint(&cur->wire, c->cluster.devices[d].name);
        unchanged = c->members[d].live && was && strcmp(was, c->members[d].endpoint) == 0;
    }
    if (!random && unchanged)
        return;
    c->pending_mix = false;
    prepare(c, &plan);
}

/* Sends PREPARE for a new epoch of `plan` to its devices; it becomes pending. */
static void prepare(hs_coordinator *c, const hs_plan *plan_in)
{
    hs_plan plan = *plan_in;
    hs_error err = {0};
    uint32_t e = ++c->last_epoch;
    epoch_rec *rec = &c->history[e % HISTORY];
    memset(rec, 0, sizeof *rec);
    rec->epoch = e;
    rec->plan = plan;
    hs_wire_plan *w = &rec->wire;
    w->epoch = e;
    w->n_stages = plan.n_stages;
    for (int s = 0; s < plan.n_stages; s++) {
        int d = plan.stages[s].device;
        copy_str(w->stages[s].device, sizeof w->stages[s].device, c->cluster.devices[d].name);
        w->stages[s].first = plan.stages[s].first;
        w->stages[s].last = plan.stages[s].last;
        copy_str(w->endpoints[w->n_endpoints].device, HS_NAME_MAX, c->cluster.devices[d].name);
        copy_str(w->endpoints[w->n_endpoints++].endpoint, HS_WIRE_ENDPOINT_MAX,
                 c->members[d].endpoint);
    }
    copy_str(w->sink_endpoint, sizeof w->sink_endpoint, c->sink_endpoint);
    w->window = c->o.elastic; /* stage 1 holds the weights of the source's window before it */

    /* Connect to where requests enter this plan now, not on the first request. */
    const char *entry = plan.stages[0].first < plan.stages[0].last || plan.n_stages < 2
                            ? c->members[c->cluster.source].endpoint
                            : w->endpoints[1].endpoint;
    hs__pusher(&c->pushers, entry, &err);

    c->pending = e;
    c->pending_since = hs__now();
    memset(c->ready, 0, sizeof c->ready);
    hs_msg_init(c->out, HS_MSG_PREPARE);
    c->out->plan = *w;
    int devs[HS_MAX_DEVICES], n = participants(&plan, devs);
    for (int i = 0; i < n; i++)
        send_to(c, devs[i], c->out);
    if (c->o.verbose) {
        char desc[512];
        int at = 0;
        for (int s = 0; s < plan.n_stages; s++)
            at += snprintf(desc + at, sizeof desc - (size_t)at, "%s%s[%d,%d)", s ? " -> " : "",
                           c->cluster.devices[plan.stages[s].device].name,
                           plan.stages[s].first, plan.stages[s].last);
        logf_(c, "prepare plan %u: %s", e, desc);
    }
}

/* ---- dispatching requests ---------------------------------------------------------------- */

/* Sends r into the current plan, or (a share of new requests) into the mixed-in one. */
static void dispatch(hs_coordinator *c, request *r, bool fresh, double now)
{
    epoch_rec *rec = epoch_find(c, c->current), *mixed = epoch_find(c, c->mix);
    if (rec && mixed && fresh) {
        c->mix_acc += c->mix_share;
        if (c->mix_acc >= 1) {
            c->mix_acc -= 1;
            rec = mixed;
            c->stats.mixed++;
        }
    }
    if (!rec) {
        r->waiting = true;
        return;
    }
    const hs_plan *p = &rec->plan;
    int cut = p->stages[0].first < p->stages[0].last ? 0 : 1;
    const char *to = cut == 0 ? c->members[c->cluster.source].endpoint
                              : hs__plan_endpoint(&rec->wire, rec->wire.stages[1].device);
    hs_error err;
    void *sock = to ? hs__pusher(&c->pushers, to, &err) : NULL;
    hs_msg *m = c->out;
    hs_msg_init(m, HS_MSG_DATA);
    m->request_id = r->id;
    m->epoch = rec->epoch;
    m->cut = cut;
    m->n_tensors = r->input->msg->n_tensors;
    for (int i = 0; i < m->n_tensors; i++) {
        m->tensors[i] = r->input->msg->tensors[i];
        snprintf(m->tensors[i].name, sizeof m->tensors[i].name, "%s",
                 hs_graph_input(c->g, i, NULL));
    }
    stage1_leave(c, r);
    r->epoch = rec->epoch;
    r->dispatched = now;
    r->attempts++;
    r->waiting = true; /* until the send is accepted */
    if (!sock)
        return;
    atomic_fetch_add(&r->input->refs, 1);
    if (hs_msg_send(sock, NULL, m, input_release, r->input, ZMQ_DONTWAIT, &err) != HS_OK)
        return;
    r->waiting = false;
    if (cut == 0 && c->o.elastic > 0)
        atomic_fetch_add_explicit(&c->elastic.sent, 1, memory_order_relaxed);
}

static void reply(hs_coordinator *c, const char *client, uint64_t tag, hs_status status,
                  const char *reason, const hs_msg *result)
{
    hs_msg *m = c->out;
    hs_msg_init(m, HS_MSG_REPLY);
    m->request_id = tag;
    m->status = status;
    if (reason)
        snprintf(m->reason, sizeof m->reason, "%s", reason);
    if (result) {
        m->n_tensors = result->n_tensors;
        memcpy(m->tensors, result->tensors, (size_t)result->n_tensors * sizeof m->tensors[0]);
    }
    hs_error err;
    /* Results are small (a CNN's logits): copying them keeps the result message's lifetime
     * simple. A client that has gone makes the send fail at once (ROUTER_MANDATORY). */
    hs_msg_send(c->router, client, m, NULL, NULL, ZMQ_DONTWAIT, &err);
}

static void dispatch_waiting(hs_coordinator *c, double now)
{
    for (size_t i = 0; i < c->cap; i++)
        if (c->table[i].id && c->table[i].waiting)
            dispatch(c, &c->table[i], false, now);
}

/* The oldest epoch a request still in flight runs under: workers may free older plans. */
static uint32_t oldest_needed(const hs_coordinator *c)
{
    uint32_t oldest = c->current;
    for (size_t i = 0; i < c->cap; i++)
        if (c->table[i].id && !c->table[i].waiting && c->table[i].epoch < oldest)
            oldest = c->table[i].epoch;
    if (c->pending && c->pending < oldest)
        oldest = c->pending;
    if (c->mix && c->mix < oldest)
        oldest = c->mix;
    return oldest;
}

/* COMMIT to every live worker: makes a new plan current, or (re-sent) tells workers what they
 * may retire; a send that fails with EHOSTUNREACH finds a worker that is gone. */
static void broadcast_commit(hs_coordinator *c, int *gone, int *n_gone)
{
    hs_msg_init(c->out, HS_MSG_COMMIT);
    c->out->epoch = c->current;
    c->out->retire_below = oldest_needed(c);
    *n_gone = 0;
    for (int d = 0; d < c->cluster.n_devices; d++) {
        if (!c->members[d].live)
            continue;
        if (send_to(c, d, c->out) != HS_OK && zmq_errno() == EHOSTUNREACH)
            gone[(*n_gone)++] = d;
    }
}

static void lose_worker(hs_coordinator *c, int d, const char *why, double now);

static void probe(hs_coordinator *c, double now)
{
    int gone[HS_MAX_DEVICES], n_gone;
    c->next_probe = now + PROBE_EVERY_S;
    broadcast_commit(c, gone, &n_gone);
    for (int i = 0; i < n_gone; i++)
        lose_worker(c, gone[i], "its connection is gone", now);
}

/* Starts a new --verbose status window of stage times (see log_status). */
static void status_clear(hs_coordinator *c)
{
    memset(c->status_seconds, 0, sizeof c->status_seconds);
    memset(c->status_runs, 0, sizeof c->status_runs);
}

static void commit(hs_coordinator *c, double now)
{
    if (c->pending_mix) {
        c->mix = c->neighbour[c->pending_neighbour] = c->pending;
        c->mix_share = c->pending_share;
        c->pending = 0;
        c->pending_mix = false;
        logf_(c, "commit plan %u, mixed in for %.0f%% of new requests", c->mix,
              100 * c->mix_share);
        probe(c, now);
        return;
    }
    c->current = c->pending;
    c->pending = 0;
    c->mix = 0; /* the neighbours were the old plan's */
    memset(c->neighbour, 0, sizeof c->neighbour);
    c->stats.epoch = c->current;
    if (c->loss_at > 0) {
        c->stats.last_recovery_s = now - c->loss_at;
        logf_(c, "recovered in %.1f ms: plan %u committed", 1e3 * c->stats.last_recovery_s,
              c->current);
        c->loss_at = 0;
    } else {
        logf_(c, "commit plan %u", c->current);
    }
    c->refining.seen = false; /* a candidate found against the old plan is not confirmed */
    status_clear(c);          /* stage times of the old plan */
    dispatch_waiting(c, now);
    probe(c, now);
}

static void lose_worker(hs_coordinator *c, int d, const char *why, double now)
{
    if (!c->members[d].live || d == c->cluster.source)
        return;
    c->members[d].live = false;
    c->stats.live_workers--;
    c->loss_at = now;
    logf_(c, "worker %s left (%s)", c->cluster.devices[d].name, why);
    epoch_rec *pend = epoch_find(c, c->pending);
    if (pend && plan_uses(&pend->plan, d))
        c->pending = 0, c->pending_mix = false;
    /* Every request on a plan that used d may be stuck there: run it again. */
    for (size_t i = 0; i < c->cap; i++) {
        request *r = &c->table[i];
        epoch_rec *rec = r->id ? epoch_find(c, r->epoch) : NULL;
        if (r->id && !r->waiting && (!rec || plan_uses(&rec->plan, d))) {
            stage1_leave(c, r);
            r->waiting = true;
            c->stats.reissued++;
        }
    }
    epoch_rec *cur = epoch_find(c, c->current);
    if (cur && plan_uses(&cur->plan, d)) {
        c->current = c->mix = 0; /* nothing may be dispatched on them any more */
        memset(c->neighbour, 0, sizeof c->neighbour);
    }
    propose(c, false);
}

/* ---- messages ---------------------------------------------------------------------------- */

static void bad(hs_coordinator *c, const char *source, const char *reason)
{
    c->stats.bad_messages++;
    hs__bad_message(&c->bad, "coordinator", source, reason);
}

/* A WELCOME refusing peer, with the reason (what a worker waiting for an answer reports). */
static void refuse_peer(hs_coordinator *c, const char *peer, const char *reason)
{
    hs_msg_init(c->out, HS_MSG_WELCOME);
    c->out->status = HS_ERR_INVALID;
    snprintf(c->out->reason, sizeof c->out->reason, "%s", reason);
    hs_error err;
    hs_msg_send(c->router, peer, c->out, NULL, NULL, ZMQ_DONTWAIT, &err);
    bad(c, peer, reason);
}

static void on_hello(hs_coordinator *c, const char *peer, const hs_msg *m, double now)
{
    int d = hs_cluster_find(&c->cluster, m->name);
    const char *refuse = NULL;
    char why[HS_WIRE_REASON_MAX];
    if (strcmp(peer, m->name) != 0)
        refuse = "its routing id differs from its name";
    else if (d < 0)
        snprintf(why, sizeof why, "no device '%s' in %s", m->name, c->o.cluster_path),
            refuse = why;
    else if (m->model_digest != c->digest)
        snprintf(why, sizeof why, "'%s' runs another model file than %s", m->name,
                 c->o.model_path), refuse = why;
    else if (d == c->cluster.source &&
             strcmp(m->endpoint, hs__worker_endpoint(c->source_worker)) != 0)
        refuse = "the source device's worker runs inside the coordinator";
    if (refuse) {
        refuse_peer(c, peer, refuse);
        return;
    }
    member *mb = &c->members[d];
    if (mb->live) /* a new process under the same name: what the old one held is lost */
        lose_worker(c, d, "it registered again", now);
    mb->live = true;
    mb->unusable = false;
    snprintf(mb->endpoint, sizeof mb->endpoint, "%s", m->endpoint);
    c->stats.live_workers++;
    hs_msg_init(c->out, HS_MSG_WELCOME);
    send_to(c, d, c->out);
    logf_(c, "worker %s joined (data at %s)", m->name, m->endpoint);
    c->replan_wanted = true;
}

/* Chunks point into the model mapping, which is unmapped only after the ZeroMQ context has
 * ended: there is nothing to release when a send is done. */
static void chunk_sent(void *hint) { (void)hint; }

/* A worker started without the model file fetches it, one chunk per request. Any device of the
 * cluster may (with CURVE on, only peers whose keys are on the allow-list get this far). */
static void on_model_request(hs_coordinator *c, const char *peer, const hs_msg *m)
{
    char why[HS_WIRE_REASON_MAX] = "";
    if (hs_cluster_find(&c->cluster, peer) < 0)
        snprintf(why, sizeof why, "no device '%s' in %s", peer, c->o.cluster_path);
    else if (c->model_size > HS_WIRE_MODEL_MAX)
        snprintf(why, sizeof why, "%s is larger than the %llu GiB a worker can fetch",
                 c->o.model_path, HS_WIRE_MODEL_MAX >> 30);
    else if (m->offset > c->model_size)
        snprintf(why, sizeof why, "model request at offset %llu, past the end of %s",
                 (unsigned long long)m->offset, c->o.model_path);
    if (why[0]) {
        refuse_peer(c, peer, why);
        return;
    }
    size_t left = c->model_size - (size_t)m->offset;
    hs_msg_init(c->out, HS_MSG_MODEL_CHUNK);
    c->out->offset = m->offset;
    c->out->total = c->model_size;
    c->out->model_digest = c->digest;
    c->out->chunk = c->model + m->offset;
    c->out->chunk_size = (uint32_t)(left < HS_WIRE_CHUNK_MAX ? left : HS_WIRE_CHUNK_MAX);
    hs_error err;
    if (hs_msg_send(c->router, peer, c->out, chunk_sent, NULL, ZMQ_DONTWAIT, &err) != HS_OK)
        logf_(c, "cannot send the model to %s: %s", peer, err.msg);
}

/* A neighbour to mix in failed to prepare: drop it, and mix nothing for MIX_BACKOFF_S. */
static void give_up_mix(hs_coordinator *c, const char *why, double now)
{
    logf_(c, "plan %u (to mix in) %s; no mixing for %.0f s", c->pending, why, MIX_BACKOFF_S);
    c->pending = 0;
    c->pending_mix = false;
    c->mix_backoff_until = now + MIX_BACKOFF_S;
}

static void on_ready(hs_coordinator *c, int d, const hs_msg *m, double now)
{
    if (m->epoch != c->pending)
        return; /* a plan that was since replaced */
    epoch_rec *rec = epoch_find(c, c->pending);
    if (m->status < 0 && c->pending_mix) {
        /* The device serves the current plan; it only cannot hold a neighbour next to it. */
        char why[HS_WIRE_REASON_MAX + 64];
        snprintf(why, sizeof why, "cannot be prepared by %s: %s", c->cluster.devices[d].name,
                 m->reason);
        give_up_mix(c, why, now);
        return;
    }
    if (m->status < 0) {
        logf_(c, "worker %s cannot prepare plan %u: %s", c->cluster.devices[d].name, m->epoch,
              m->reason);
        c->members[d].unusable = true; /* out of plans; not the source, in every plan: */
        c->pending = 0;
        c->replan_wanted = true;
        if (d == c->cluster.source) /* the same plan again, but not at once */
            c->replan_after = now + PREPARE_RETRY_S;
        return;
    }
    c->ready[d] = true;
    for (int s = 0; s < rec->plan.n_stages; s++)
        if (!c->ready[rec->plan.stages[s].device])
            return;
    commit(c, now);
}

static void on_telemetry(hs_coordinator *c, int d, const hs_msg *m)
{
    epoch_rec *rec = epoch_find(c, m->epoch);
    if (!rec || m->stage < 0 || m->stage >= rec->plan.n_stages || !m->count ||
        rec->plan.stages[m->stage].device != d)
        return;
    const hs_stage *st = &rec->plan.stages[m->stage];
    bool own = !m->last || (m->first == st->first && m->last == st->last);
    if (!own && !(m->first < m->last && m->last <= hs_graph_node_count(c->g)))
        return;
    /* Weighted by the time measured: a peer may report several ranges of one stage, each in
     * its own message, and which ones ran can depend on how fast the device was then; equal
     * weights per message would favour the rarely run ranges. */
    hs_cost_observe(c->costs, d, own ? st->first : m->first, own ? st->last : m->last,
                    m->seconds / m->count, fmax(1 - exp(-m->seconds / OBSERVE_TAU_S), 1e-6));
    c->observations++;
    if (own && m->epoch == c->current) {
        c->status_seconds[d] += m->seconds;
        c->status_runs[d] += m->count;
    }
}

/* --verbose: one line of what the last STATUS_EVERY_S measured, so a long run shows its
 * progress and a re-split shows why: answered/s and each device's mean stage time since the
 * current plan was committed (or the last line). */
static void log_status(hs_coordinator *c, double now)
{
    epoch_rec *rec = epoch_find(c, c->current);
    double window = now - (c->next_status - STATUS_EVERY_S);
    c->next_status = now + STATUS_EVERY_S;
    uint64_t answered = c->stats.answered - c->status_answered;
    c->status_answered = c->stats.answered;
    char line[512];
    int at = snprintf(line, sizeof line, "%.1f answered/s", (double)answered / window);
    bool any = false;
    for (int s = 0; rec && s < rec->plan.n_stages && at < (int)sizeof line; s++) {
        const hs_stage *st = &rec->plan.stages[s];
        int d = st->device;
        if (!c->status_runs[d])
            continue; /* no telemetry yet (or an empty stage, never run) */
        at += snprintf(line + at, sizeof line - (size_t)at, "%s %s[%d,%d) %.2f ms",
                       any ? "," : "; stage times:", c->cluster.devices[d].name, st->first,
                       st->last, 1e3 * c->status_seconds[d] / (double)c->status_runs[d]);
        any = true;
    }
    if (c->o.elastic > 0 && at < (int)sizeof line)
        snprintf(line + at, sizeof line - (size_t)at, "; handed over early %llu, late %llu",
                 (unsigned long long)atomic_load(&c->elastic.early),
                 (unsigned long long)atomic_load(&c->elastic.late));
    status_clear(c);
    if (answered)
        logf_(c, "%s", line);
}

/* Admits a request. Returns true when it kept m (the caller then needs a new receive buffer). */
static bool on_submit(hs_coordinator *c, const char *peer, hs_msg *m, double now)
{
    int n = hs_graph_input_count(c->g);
    char why[HS_WIRE_REASON_MAX] = "";
    if (m->n_tensors != n)
        snprintf(why, sizeof why, "the model takes %d inputs, the request has %d", n,
                 m->n_tensors);
    for (int i = 0; i < m->n_tensors && !why[0]; i++) {
        hs_tensor want;
        const char *name = hs_graph_input(c->g, i, &want);
        char shape[64];
        if (!hs_tensor_same_desc(&want, &m->tensors[i].t))
            snprintf(why, sizeof why, "input %d ('%s') must be %s %s", i, name,
                     want.dtype == HS_F32 ? "float32" : "int64",
                     hs_shape_str(&want, shape, sizeof shape));
    }
    if (why[0]) {
        bad(c, peer, why);
        reply(c, peer, m->request_id, HS_ERR_SHAPE, why, NULL);
        return false;
    }
    kept_input *k = malloc(sizeof *k);
    hs_msg *fresh = calloc(1, sizeof *fresh);
    request *r = k && fresh ? req_insert(c, ++c->next_id) : NULL;
    if (!r) {
        free(k);
        free(fresh);
        reply(c, peer, m->request_id, HS_ERR_NOMEM, "coordinator out of memory", NULL);
        return false;
    }
    /* inproc (a client in this process) carries no peer address; TCP and IPC do */
    bool outside = m->n_frames > 0 && zmq_msg_gets(&m->frames[0], "Peer-Address") != NULL;
    c->outside_share += OUTSIDE_ALPHA * ((outside ? 1.0 : 0.0) - c->outside_share);
    k->msg = m; /* the received message itself, frames and all: no copy */
    atomic_init(&k->refs, 1);
    c->in = fresh;
    snprintf(r->client, sizeof r->client, "%s", peer);
    r->tag = m->request_id;
    r->admitted = now;
    r->input = k;
    c->stats.admitted++;
    dispatch(c, r, true, now);
    return true;
}

static void on_router(hs_coordinator *c, double now)
{
    char peer[HS_NAME_MAX];
    hs_error err;
    hs_status st = hs_msg_recv(c->router, peer, sizeof peer, c->in, ZMQ_DONTWAIT, &err);
    if (st == HS_ERR_IO)
        return;
    if (st != HS_OK) {
        bad(c, "a peer of the control socket", err.msg);
        return;
    }
    hs_msg *m = c->in;
    int d = hs_cluster_find(&c->cluster, peer);
    bool worker = d >= 0 && c->members[d].live;
    switch (m->kind) {
    case HS_MSG_HELLO: on_hello(c, peer, m, now); break;
    case HS_MSG_MODEL_REQUEST: on_model_request(c, peer, m); break;
    case HS_MSG_SUBMIT:
        if (on_submit(c, peer, m, now))
            return; /* m now belongs to the request */
        break;
    case HS_MSG_READY:
        if (worker)
            on_ready(c, d, m, now);
        break;
    case HS_MSG_TELEMETRY:
        if (worker)
            on_telemetry(c, d, m);
        break;
    case HS_MSG_BYE:
        if (worker)
            lose_worker(c, d, "it said goodbye", now);
        break;
    default: bad(c, peer, "unexpected message kind on the control socket"); break;
    }
    hs_msg_close(m);
}

static void on_result(hs_coordinator *c, double now)
{
    hs_error err;
    hs_msg *m = c->in;
    hs_status st = hs_msg_recv(c->sink, NULL, 0, m, ZMQ_DONTWAIT, &err);
    if (st == HS_ERR_IO)
        return;
    if (st != HS_OK) {
        bad(c, "the sink socket", err.msg);
        return;
    }
    char why[HS_WIRE_REASON_MAX] = "";
    epoch_rec *rec = m->kind == HS_MSG_DATA ? epoch_find(c, m->epoch) : NULL;
    int n_out = hs_graph_output_count(c->g);
    if (m->kind != HS_MSG_DATA)
        snprintf(why, sizeof why, "%s on the sink socket", hs_msg_kind_name(m->kind));
    else if (!rec)
        snprintf(why, sizeof why, "result under unknown plan epoch %u", m->epoch);
    else if (m->cut != rec->plan.n_stages)
        snprintf(why, sizeof why, "epoch %u: data for stage %d on the sink socket", m->epoch,
                 m->cut);
    else if (m->n_tensors != n_out)
        snprintf(why, sizeof why, "a result with %d tensors, the model has %d outputs",
                 m->n_tensors, n_out);
    for (int i = 0; i < n_out && !why[0]; i++) {
        hs_tensor want;
        const char *name = hs_graph_output(c->g, i, &want);
        if (strcmp(name, m->tensors[i].name) != 0 ||
            !hs_tensor_same_desc(&want, &m->tensors[i].t))
            snprintf(why, sizeof why, "result tensor %d is not output '%s'", i, name);
    }
    if (why[0]) {
        bad(c, "the sink socket", why);
        hs_msg_close(m);
        return;
    }
    request *r = req_find(c, m->request_id);
    if (!r) {
        c->stats.duplicates++; /* answered already (a re-issued copy finished too) */
    } else {
        reply(c, r->client, r->tag, HS_OK, NULL, m);
        c->stats.answered++;
        req_remove(c, r);
    }
    hs_msg_close(m);
    (void)now;
}

static void on_monitor(hs_coordinator *c, double now)
{
    int event;
    char address[256];
    bool disconnected = false;
    while (hs_monitor_read(c->monitor, &event, address, sizeof address, ZMQ_DONTWAIT) == HS_OK)
        disconnected |= event == ZMQ_EVENT_DISCONNECTED;
    /* The monitor names the address, not the device: find out who left by probing, now and
     * once more shortly after (the ROUTER drops the peer's pipe asynchronously). */
    if (disconnected) {
        probe(c, now);
        c->next_probe = now + 0.02;
    }
}

/* The plan stays: for throughput, look at its neighbours (one cut moved by one node) and mix
 * in the one whose mix lowers the predicted bottleneck most, by MIX_GAIN at least, with the
 * share hs_plan_mix finds under the corrected costs. A neighbour is prepared (a new epoch) the
 * first time it is chosen; after that, choosing it only sets the mix. */
static void refine_mix(hs_coordinator *c, const hs_problem *p, const hs_plan *cur, double now)
{
    bool elastic = c->o.elastic > 0 && cur->n_stages == 2 && cur->stages[0].last > 0;
    if (c->o.objective != HS_OBJ_THROUGHPUT || c->o.no_mix || elastic ||
        !isfinite(cur->bottleneck_s) ||
        now < c->mix_backoff_until)
        return;
    hs_plan q, best_q;
    double best = cur->bottleneck_s * (1 - MIX_GAIN), best_share = 0;
    int best_i = -1;
    for (int s = 1; s < cur->n_stages; s++)
        for (int right = 0; right < 2; right++) {
            int k = cur->stages[s].first + (right ? 1 : -1);
            if (k <= cur->stages[s - 1].first || k >= cur->stages[s].last)
                continue; /* both stages keep a node */
            q = *cur;
            q.stages[s - 1].last = q.stages[s].first = k;
            double share;
            if (hs_plan_evaluate(p, &c->o.constraints, &q, NULL) != HS_OK ||
                !isfinite(hs_plan_score(p, &c->o.constraints, c->o.objective, &q)))
                continue;
            double mixed = hs_plan_mix(p, cur, &q, &share);
            if (share > 0 && mixed < best)
                best = mixed, best_q = q, best_share = share, best_i = 2 * (s - 1) + right;
        }
    if (best_i < 0) {
        if (c->mix)
            logf_(c, "mixing in plan %u no longer helps", c->mix);
        c->mix = 0;
        return;
    }
    epoch_rec *rec = epoch_find(c, c->neighbour[best_i]);
    if (rec && hs_plan_same_stages(&rec->plan, &best_q)) {
        if (c->mix != rec->epoch)
            logf_(c, "predicted throughput %.4g/s -> %.4g/s with plan %u mixed in for %.0f%% "
                  "of new requests", 1 / cur->bottleneck_s, 1 / best, rec->epoch,
                  100 * best_share);
        c->mix = rec->epoch;
        c->mix_share = best_share;
        return;
    }
    c->pending_mix = true;
    c->pending_neighbour = best_i;
    c->pending_share = best_share;
    prepare(c, &best_q);
    logf_(c, "predicted throughput %.4g/s -> %.4g/s with plan %u mixed in", 1 / cur->bottleneck_s,
          1 / best, c->pending);
}

/* Stage times measured by the workers have been moving the cost model's correction factors
 * (on_telemetry). If the plan the solver now finds beats the current one by REFINE_GAIN under
 * the corrected costs, and the next check, on newer measurements, confirms it
 * (hs_replan_check), switch: a device slower than its profile said (a source that also runs
 * this coordinator, say) gets a shorter stage. The margin, the confirmation and the period
 * keep noise from making the plan flap, while a steady imbalance of a few percent (a
 * pipeline's throughput lost outright) is still corrected. Otherwise the plan stays, and may
 * be mixed with a neighbour (refine_mix). */
static void refine(hs_coordinator *c, double now)
{
    epoch_rec *cur = epoch_find(c, c->current);
    hs_cluster live;
    hs_problem p;
    hs_error err;
    hs_plan now_plan, best;
    if (c->refining.seen && c->observations == c->candidate_observations)
        return; /* nothing measured since the candidate: the same costs would find it again */
    if (!cur || cost_problem(c, &p, &err) != HS_OK)
        return;
    live_cluster(c, &live);
    p.cluster = &live;
    now_plan = cur->plan;
    if (hs_plan_evaluate(&p, &c->o.constraints, &now_plan, NULL) != HS_OK)
        return;
    double was = hs_plan_score(&p, &c->o.constraints, c->o.objective, &now_plan);
    /* With io costs the solver searches near one chain of devices: its failing does not make
     * a current plan that still scores infeasible, so that plan stays (and may be mixed). */
    if (hs_solve(&p, c->o.objective, &c->o.constraints, &best, NULL) != HS_OK) {
        if (!isfinite(was))
            return;
        best = now_plan;
    }
    const char *why = NULL;
    switch (hs_replan_check(&c->refining, &p, &c->o.constraints, c->o.objective, &now_plan,
                            &best, &why)) {
    case HS_REPLAN_KEEP:
        refine_mix(c, &p, &now_plan, now);
        return;
    case HS_REPLAN_WAIT:
        c->candidate_observations = c->observations;
        return;
    case HS_REPLAN_MOVE:
        logf_(c, "measured stage times move the plan: predicted %s %.4g -> %.4g (%s)",
              hs_objective_name(c->o.objective), was,
              hs_plan_score(&p, &c->o.constraints, c->o.objective, &best), why);
        propose(c, false);
        return;
    }
}

/* Elastic hand-off: marks the requests the source handed to stage 1 since the last turn,
 * and publishes how many are there now (see hs__elastic). */
static void elastic_sync(hs_coordinator *c)
{
    hs__elastic *el = &c->elastic;
    uint64_t handed = atomic_load_explicit(&el->handed, memory_order_acquire);
    if (handed - c->ring_read > HS_ELASTIC_RING)
        c->ring_read = handed - HS_ELASTIC_RING; /* overwritten before this turn: not marked */
    for (; c->ring_read < handed; c->ring_read++) {
        uint64_t id = atomic_load_explicit(&el->ring[c->ring_read % HS_ELASTIC_RING],
                                           memory_order_relaxed);
        request *r = req_find(c, id);
        if (r && !r->waiting && !r->at_stage1) { /* not answered or re-issued since */
            r->at_stage1 = true;
            c->stage1++;
        }
    }
    atomic_store(&el->published, handed << 16 | (c->stage1 < 0xffff ? c->stage1 : 0xffff));
}

static void on_timers(hs_coordinator *c, double now)
{
    if (now >= c->next_probe)
        probe(c, now);
    if (c->o.verbose && now >= c->next_status)
        log_status(c, now);
    if (c->pending && now - c->pending_since > PREPARE_TIMEOUT_S) {
        if (c->pending_mix) {
            give_up_mix(c, "was not ready in time", now);
        } else {
            logf_(c, "plan %u was not ready in %.0f s; choosing again", c->pending,
                  PREPARE_TIMEOUT_S);
            c->pending = 0;
            c->replan_wanted = true;
        }
    }
    if (c->o.swap_every_ms > 0 && !c->pending && now >= c->next_swap && c->current) {
        c->next_swap = now + c->o.swap_every_ms / 1e3;
        propose(c, true);
    } else if (c->replan_wanted && !c->pending && now >= c->replan_after) {
        propose(c, false);
    } else if (!c->o.swap_every_ms && !c->pinned && c->current && !c->pending &&
               now >= c->next_refine) {
        c->next_refine = now + REFINE_EVERY_S;
        refine(c, now);
    }
    double timeout = (c->o.request_timeout_ms > 0 ? c->o.request_timeout_ms : 5000) / 1e3;
    bool any_waiting = false;
    for (size_t i = 0; i < c->cap; i++) {
        request *r = &c->table[i];
        if (!r->id)
            continue;
        if (!r->waiting && now - r->dispatched > timeout) {
            if (r->attempts >= MAX_ATTEMPTS) {
                reply(c, r->client, r->tag, HS_ERR_IO, "no answer after 5 attempts", NULL);
                c->stats.failed++;
                req_remove(c, r);
                i--; /* the removal may have shifted another entry into slot i */
                continue;
            }
            stage1_leave(c, r);
            r->waiting = true;
            c->stats.reissued++;
        }
        any_waiting |= r->waiting;
    }
    /* (A neighbour being prepared changes nothing for the current plan.) */
    if (any_waiting && c->current && (!c->pending || c->pending_mix))
        dispatch_waiting(c, now);
}

/* ---- lifetime ---------------------------------------------------------------------------- */

static void *source_main(void *arg)
{
    hs_coordinator *c = arg;
    hs_worker_run(c->source_worker, &c->source_err);
    return NULL;
}

static hs_status open_sockets(hs_coordinator *c, hs_error *err)
{
    hs_socket_opts so;
    char pub[41], sec[41], server[41];
    hs_status st = hs__socket_opts(&c->o.net, true, &so, pub, sec, server, err);
    if (st != HS_OK)
        return st;
    if (c->o.net.curve_allow &&
        (st = hs_zap_start(c->ctx, c->o.net.curve_allow, &c->zap, err)) != HS_OK)
        return st;
    c->router = hs_socket_new(c->ctx, ZMQ_ROUTER, &so, err);
    if (!c->router)
        return HS_ERR_IO;
    int one = 1;
    zmq_setsockopt(c->router, ZMQ_ROUTER_MANDATORY, &one, sizeof one);
    zmq_setsockopt(c->router, ZMQ_ROUTER_HANDOVER, &one, sizeof one);
    if (zmq_bind(c->router, c->o.listen) != 0)
        return hs_error_set(err, HS_ERR_IO, "coordinator: cannot listen on %s: %s",
                                c->o.listen, zmq_strerror(zmq_errno()));
    snprintf(c->inproc, sizeof c->inproc, "inproc://hs-coordinator-%p", (void *)c);
    /* The embedded worker needs no keys: inproc never leaves the process. ZAP does not apply
     * to inproc. */
    if (zmq_bind(c->router, c->inproc) != 0)
        return hs_error_set(err, HS_ERR_IO, "coordinator: inproc bind: %s",
                                zmq_strerror(zmq_errno()));
    c->monitor = hs_monitor_open(c->ctx, c->router, ZMQ_EVENT_DISCONNECTED, err);
    if (!c->monitor)
        return HS_ERR_IO;
    hs_socket_opts dso = {.max_msg_size = hs__max_message(&c->o.net), .rcvhwm = HS_DATA_HWM};
    c->sink = hs_socket_new(c->ctx, ZMQ_PULL, &dso, err);
    if (!c->sink)
        return HS_ERR_IO;
    char bind_at[HS_WIRE_ENDPOINT_MAX], bound[HS_WIRE_ENDPOINT_MAX];
    snprintf(bind_at, sizeof bind_at, "tcp://%s:0",
             strncmp(c->o.listen, "tcp://127.", 10) == 0 ? "127.0.0.1" : "*");
    if (zmq_bind(c->sink, bind_at) != 0)
        return hs_error_set(err, HS_ERR_IO, "coordinator: cannot bind the sink: %s",
                                zmq_strerror(zmq_errno()));
    size_t len = sizeof bound;
    zmq_getsockopt(c->sink, ZMQ_LAST_ENDPOINT, bound, &len);
    /* The source's own results (its stage the last one) come over inproc: over TCP, each
     * would cross the loopback stack inside this one process. */
    snprintf(c->local_sink, sizeof c->local_sink, "inproc://hs-sink-%p", (void *)c);
    if (zmq_bind(c->sink, c->local_sink) != 0)
        return hs_error_set(err, HS_ERR_IO, "coordinator: inproc bind of the sink: %s",
                            zmq_strerror(zmq_errno()));
    hs__advertise(bound, c->o.advertise_host ? c->o.advertise_host : "127.0.0.1",
                  c->sink_endpoint, sizeof c->sink_endpoint);
    c->pushers.ctx = c->ctx;
    c->pushers.net = &c->o.net;
    logf_(c, "results come back to %s", c->sink_endpoint);
    return HS_OK;
}

static hs_status map_model(hs_coordinator *c, hs_error *err)
{
    const char *path = c->o.model_path;
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return hs_error_set(err, HS_ERR_IO, "%s: cannot open: %s", path, strerror(errno));
    struct stat sb;
    hs_status st = HS_OK;
    if (fstat(fd, &sb) != 0 || !S_ISREG(sb.st_mode)) {
        st = hs_error_set(err, HS_ERR_IO, "%s: not a regular file", path);
    } else if (sb.st_size > 0) { /* an empty file is left to the loader to reject */
        void *p = mmap(NULL, (size_t)sb.st_size, PROT_READ, MAP_PRIVATE, fd, 0);
        if (p == MAP_FAILED)
            st = hs_error_set(err, HS_ERR_IO, "%s: cannot map: %s", path, strerror(errno));
        else
            c->model = p, c->model_size = (size_t)sb.st_size;
    }
    close(fd);
    return st;
}

static hs_status load_inputs(hs_coordinator *c, hs_error *err)
{
    hs_status st = hs_cluster_load(c->o.cluster_path, &c->cluster, err);
    for (int i = 0; st == HS_OK && i < c->o.n_sets; i++)
        st = hs_cluster_set(&c->cluster, c->o.sets[i], err);
    if (st == HS_OK)
        st = map_model(c, err);
    if (st == HS_OK) {
        c->digest = hs__digest_update(HS_DIGEST_SEED, c->model, c->model_size);
        st = hs_graph_load_onnx(c->o.model_path, NULL, &c->g, err); /* one it can load again */
    }
    if (st == HS_OK && c->o.profile_path)
        st = hs_profile_load(c->o.profile_path, &c->profile, err);
    if (st == HS_OK)
        st = hs_cost_model_new(c->g, &c->cluster, c->profile, &c->costs, err);
    if (st == HS_OK && c->o.plan_path) {
        st = hs__plan_file_load(c->o.plan_path, &c->cluster, hs_graph_node_count(c->g),
                                &c->pinned_plan, err);
        c->pinned = st == HS_OK;
    }
    return st;
}

hs_status hs_coordinator_new(const hs_coordinator_opts *o, hs_coordinator **out, hs_error *err)
{
    *out = NULL;
    if (!o->model_path || !o->cluster_path || !o->listen)
        return hs_error_set(err, HS_ERR_INVALID, "a coordinator needs --model, --cluster "
                                "and --listen");
    if (!(o->elastic >= 0 && o->elastic <= 0.5))
        return hs_error_set(err, HS_ERR_INVALID, "elastic: %g is not a share of the model's "
                                "FLOPs from 0 to 0.5", o->elastic);
    hs_coordinator *c = calloc(1, sizeof *c);
    if (!c)
        return hs_error_set(err, HS_ERR_NOMEM, "out of memory");
    c->o = *o;
    c->rng = 12345;
    /* Elastic hand-off moves up to the window's FLOPs either way, as far as its cheap cuts
     * reach: the rule counts on half of it. */
    c->refining = (hs_replan){.gain = REFINE_GAIN, .big_gain = REFINE_BIG_GAIN,
                              .elastic = o->elastic / 2};
    c->elastic.window = o->elastic;
    pthread_mutex_init(&c->shared_lock, NULL);
    pthread_condattr_t attr; /* hs_coordinator_wait's timeout on the monotonic clock */
    pthread_condattr_init(&attr);
    pthread_condattr_setclock(&attr, CLOCK_MONOTONIC);
    pthread_cond_init(&c->shared_changed, &attr);
    pthread_condattr_destroy(&attr);
    c->in = calloc(1, sizeof *c->in);
    c->out = calloc(1, sizeof *c->out);
    hs_status st = c->in && c->out && req_grow(c) == HS_OK
                       ? HS_OK : hs_error_set(err, HS_ERR_NOMEM, "out of memory");
    if (st == HS_OK)
        st = load_inputs(c, err);
    if (st == HS_OK && !(c->ctx = zmq_ctx_new()))
        st = hs_error_set(err, HS_ERR_IO, "cannot create a ZeroMQ context");
    if (st == HS_OK)
        st = open_sockets(c, err);
    if (st == HS_OK) {
        char data_at[96];
        snprintf(data_at, sizeof data_at, "inproc://hs-source-data-%p", (void *)c);
        hs_worker_opts wo = {.name = c->cluster.devices[c->cluster.source].name,
                             .coordinator = c->inproc, .listen = data_at,
                             .threads = o->threads, .spin_us = o->spin_us,
                             .hold_all_weights = o->hold_all_weights, .verbose = o->verbose};
        st = hs__worker_new_embedded(&wo, c->ctx, c->g, c->digest,
                                     o->elastic > 0 ? &c->elastic : NULL, c->local_sink,
                                     &c->source_worker, err);
    }
    if (st == HS_OK) {
        if (pthread_create(&c->source_thread, NULL, source_main, c) != 0)
            st = hs_error_set(err, HS_ERR_NOMEM, "cannot start the source worker thread");
        c->source_started = st == HS_OK;
    }
    if (st != HS_OK) {
        hs_coordinator_free(c);
        return st;
    }
    *out = c;
    return HS_OK;
}

/* Publishes stats to other threads if they changed since the last turn (or run() ends). */
static void publish(hs_coordinator *c, bool run_over)
{
    c->stats.settled = c->current && !c->pending && !c->replan_wanted;
    c->stats.mix_epoch = c->mix;
    c->stats.mix_share = c->mix ? c->mix_share : 0;
    c->stats.outside_share = c->outside_share;
    for (int d = 0; d < c->cluster.n_devices && d < HS_MAX_DEVICES; d++)
        c->stats.correction[d] = hs_cost_correction(c->costs, d);
    c->stats.elastic_early = atomic_load(&c->elastic.early);
    c->stats.elastic_late = atomic_load(&c->elastic.late);
    /* Only this thread writes shared, so reading it here needs no lock. Both copies start
     * zeroed (calloc) and are only ever assigned, so their padding compares equal. */
    if (!run_over && memcmp(&c->stats, &c->shared, sizeof c->stats) == 0)
        return;
    pthread_mutex_lock(&c->shared_lock);
    c->shared = c->stats;
    c->run_over = run_over;
    pthread_cond_broadcast(&c->shared_changed);
    pthread_mutex_unlock(&c->shared_lock);
}

static bool readable(void *socket)
{
    int events;
    size_t len = sizeof events;
    return zmq_getsockopt(socket, ZMQ_EVENTS, &events, &len) == 0 && (events & ZMQ_POLLIN);
}

hs_status hs_coordinator_run(hs_coordinator *c, hs_error *err)
{
    zmq_pollitem_t items[] = {{c->router, 0, ZMQ_POLLIN, 0},
                              {c->sink, 0, ZMQ_POLLIN, 0},
                              {c->monitor, 0, ZMQ_POLLIN, 0}};
    double now = hs__now();
    pthread_mutex_lock(&c->shared_lock);
    c->run_over = false;
    pthread_mutex_unlock(&c->shared_lock);
    c->next_probe = now + PROBE_EVERY_S;
    c->next_swap = now;
    c->next_refine = now + REFINE_EVERY_S;
    c->next_status = now + STATUS_EVERY_S;
    while (!c->stop) {
        if (zmq_poll(items, 3, TICK_MS) < 0) {
            if (zmq_errno() == EINTR)
                continue;
            publish(c, true);
            return hs_error_set(err, HS_ERR_IO, "coordinator: poll: %s",
                                    zmq_strerror(zmq_errno()));
        }
        now = hs__now();
        /* Results first: they free requests; then a bounded batch of control messages. */
        for (int i = 0; i < 64 && readable(c->sink); i++)
            on_result(c, now);
        for (int i = 0; i < 64 && readable(c->router); i++)
            on_router(c, now);
        if (items[2].revents & ZMQ_POLLIN)
            on_monitor(c, now);
        on_timers(c, now);
        if (c->o.elastic > 0)
            elastic_sync(c);
        publish(c, false);
    }
    publish(c, true);
    return HS_OK;
}

hs_status hs_coordinator_client(hs_coordinator *c, hs_client **out, hs_error *err)
{
    return hs__client_new_inproc(c->ctx, c->inproc, out, err);
}

void hs_coordinator_stop(hs_coordinator *c) { c->stop = 1; }

void hs_coordinator_get_stats(hs_coordinator *c, hs_coordinator_stats *out)
{
    pthread_mutex_lock(&c->shared_lock);
    *out = c->shared;
    pthread_mutex_unlock(&c->shared_lock);
}

bool hs_coordinator_wait(hs_coordinator *c, int workers, int timeout_ms,
                         hs_coordinator_stats *out)
{
    struct timespec deadline;
    clock_gettime(CLOCK_MONOTONIC, &deadline); /* shared_changed's clock */
    deadline.tv_sec += timeout_ms / 1000;
    deadline.tv_nsec += (long)(timeout_ms % 1000) * 1000000L;
    if (deadline.tv_nsec >= 1000000000L)
        deadline.tv_sec++, deadline.tv_nsec -= 1000000000L;
    pthread_mutex_lock(&c->shared_lock);
    bool reached;
    while (!(reached = c->shared.live_workers >= workers && c->shared.settled) &&
           !c->run_over) {
        if (timeout_ms < 0)
            pthread_cond_wait(&c->shared_changed, &c->shared_lock);
        else if (pthread_cond_timedwait(&c->shared_changed, &c->shared_lock, &deadline) ==
                 ETIMEDOUT)
            break;
    }
    reached = c->shared.live_workers >= workers && c->shared.settled;
    if (out)
        *out = c->shared;
    pthread_mutex_unlock(&c->shared_lock);
    return reached;
}

void hs_coordinator_free(hs_coordinator *c)
{
    if (!c)
        return;
    if (c->router) { /* workers stop when the coordinator leaves */
        hs_msg_init(c->out, HS_MSG_BYE);
        for (int d = 0; d < c->cluster.n_devices; d++)
            if (c->members[d].live && d != c->cluster.source)
                send_to(c, d, c->out);
    }
    if (c->source_started) {
        hs_worker_stop(c->source_worker);
        pthread_join(c->source_thread, NULL);
    }
    hs_worker_free(c->source_worker);
    for (size_t i = 0; c->table && i < c->cap; i++)
        if (c->table[i].id)
            input_release(c->table[i].input);
    free(c->table);
    hs__pushers_close(&c->pushers);
    if (c->monitor)
        zmq_close(c->monitor);
    if (c->router)
        zmq_close(c->router);
    if (c->sink)
        zmq_close(c->sink);
    hs_zap_stop(c->zap);
    if (c->ctx)
        zmq_ctx_term(c->ctx); /* after this no frame points into the mapping */
    if (c->model)
        munmap((void *)c->model, c->model_size);
    hs_cost_model_free(c->costs);
    hs_profile_free(c->profile);
    hs_graph_free(c->g);
    if (c->in)
        hs_msg_close(c->in);
    free(c->in);
    free(c->out);
    pthread_mutex_destroy(&c->shared_lock);
    pthread_cond_destroy(&c->shared_changed);
    free(c);
}
