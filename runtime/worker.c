/*
 * A worker: one device of the cluster. It registers with the coordinator under its device
 * name, prepares the stages each plan gives it (PREPARE -> READY), and runs them on the
 * activations that arrive on its data socket, sending the outputs straight to the next stage
 * (or the results to the coordinator's sink). Each message carries the epoch of the plan its
 * request was admitted under, and is run on exactly that plan: prepared plans stay until the
 * coordinator retires them (COMMIT's retire_below).
 *
 * A worker started without the model file fetches it from the coordinator first, over the
 * control socket (MODEL_REQUEST / MODEL_CHUNK), and checks it against the coordinator's digest.
 * Every question to the coordinator (the fetch, HELLO) has HS_ANSWER_TIMEOUT_S to be answered:
 * a worker pointed at the wrong address says so instead of waiting for ever.
 *
 * Single-threaded: one zmq_poll loop. ZeroMQ's I/O threads keep the ZMTP heartbeats going
 * while a stage computes, so a long stage does not look like a dead worker.
 */
#include <errno.h>
#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <string.h>
#include <unistd.h>

#include "runtime_impl.h"

#define MAX_EPOCHS 32 /* prepared plans kept at once */
#define MAX_EXECS 256
#define MAX_STARTS 32 /* nodes other than its first that a stage's runs start at, per plan */
#define MAX_WINDOW 32 /* points an elastic sender may hand a request over at, per plan */
#define TELEMETRY_EVERY_S 0.2
#define HOLD_S 5.0       /* weights no live plan has needed for this long are let go */
#define HOLD_EVERY_S 1.0

/* A load back in a thread of its own (hold_start): a thread loads the model file again while
 * the worker's own thread goes on running the plans it has prepared; the PREPARE it is for
 * (if any) gets its READY once the weights are in (finish_load), and PREPAREs that come
 * meanwhile wait. hold_weights, which needs the weights at once, waits for it instead. */
typedef struct background_load {
    pthread_t thread;
    bool running;            /* started and not yet joined */
    atomic_bool done;        /* the thread has finished: fresh and st are set */
    const hs_graph *g;       /* the holder; the thread reads only what never changes in it */
    hs_graph *fresh;         /* the thread's result */
    hs_status st;
    hs_error err;
    uint64_t digest;         /* the file's, as the thread read it (0 if it could not) */
    bool *need;              /* the nodes whose weights to hold once it is in */
    bool for_plan;           /* a PREPARE waits for it: plan `epoch` */
    uint32_t epoch;
    double started;
    int64_t before;          /* weight bytes held before (verbose) */
    uint64_t stages_before;  /* stages run when it started */
    bool retried;            /* the file was touched: loaded a second time */
} background_load;

typedef struct shared_exec { /* one hs_exec per node range, shared by the epochs that use it */
    int first, last, refs;
    hs_exec *x;
} shared_exec;

typedef struct epoch_slot {
    bool used;
    bool loading;            /* waits for a background load, then for READY (no exec yet) */
    uint32_t epoch;
    hs_wire_plan plan;
    int stage;               /* this worker's stage in the plan, -1 if none */
    shared_exec *exec;       /* the stage's range; an elastic source's: [0, at[n_at - 1]) */
    /* Runs that arrive at another node `from` than the stage's first (an elastic hand-off):
     * from < first runs head [from, first) and then exec; from > first runs part, exec's
     * [from, last) in exec's arena. */
    int n_starts;
    struct {
        int from;
        shared_exec *head;
        hs_exec *part;
    } starts[MAX_STARTS];
    /* Elastic sending (the source's stage of a 2-stage plan, hs__elastic): part[0] runs
     * [0, at[0]) and part[i] [at[i - 1], at[i]), all in exec's arena; a request may be handed
     * over at any at[i], at[n_at - 1] at the latest. n_at 0: at the plan's cut. */
    int n_at, nominal;       /* nominal: the index of the plan's cut in at[] */
    int at[MAX_WINDOW];
    hs_exec *part[MAX_WINDOW];
    double seconds;          /* telemetry not yet sent: the stage's own range, see handle_data */
    uint32_t count;
} epoch_slot;

struct hs_worker {
    char name[HS_NAME_MAX];
    char coordinator[HS_WIRE_ENDPOINT_MAX];
    char listen[HS_WIRE_ENDPOINT_MAX];
    char advertise[HS_WIRE_ENDPOINT_MAX];
    char endpoint[HS_WIRE_ENDPOINT_MAX]; /* where others send this worker data */
    hs_net_opts net;
    bool verbose;
    int threads;
    double spin_s;           /* keep polling this long after a stage before sleeping */
    void *ctx;
    bool own_ctx;
    hs_graph *own_graph;     /* loaded by this worker (NULL when embedded) */
    const hs_graph *g;
    uint64_t digest;
    void *control, *data;
    hs__pushers pushers;
    char local_sink[HS_WIRE_ENDPOINT_MAX]; /* embedded: the sink over inproc ("": the plan's) */
    epoch_slot epochs[MAX_EPOCHS];
    uint32_t committed;      /* the coordinator's current plan, as its last COMMIT said */
    shared_exec execs[MAX_EXECS];
    hs_msg *in, *out;
    hs__badlog bad;
    uint64_t stages_run;
    hs__elastic *elastic;    /* the coordinator's, for the embedded source; NULL: off */
    double *flops_before;    /* [n + 1]: the model's FLOPs before each node (made for the
                                first elastic window) */
    volatile sig_atomic_t stop;
    double last_telemetry;
    int answer_timeout_s;    /* 0: none (embedded: the coordinator is this process) */
    bool welcomed;
    /* Weights per range (see hold_weights): the graph whose weights are held per range
     * (own_graph, or the coordinator's for the source), and when each node was last needed
     * by a live plan. NULL: every weight is held (a fetched model, or hold_all_weights). */
    hs_graph *holder;
    double *needed_at;
    double last_hold;
    bool hold_failed;        /* the last hold_weights failed (a load back, see there) */
    background_load load;
    hs_wire_plan waiting;    /* the newest PREPARE that came during a background load */
    bool has_waiting;
    uint32_t replaced;       /* PREPAREs that came during the load before the newest */
};

/* ---- prepared plans ------------------------------------------------------------------------ */

/* Where the last stage's outputs go: the plan's sink, or, in the coordinator's own process,
 * the same socket over inproc. */
static const char *sink_of(const hs_worker *w, const hs_wire_plan *plan)
{
    return w->local_sink[0] ? w->local_sink : plan->sink_endpoint;
}

/* Weights per range from now on, in g (loaded from a file: hs_graph_hold_weights). */
static hs_status start_holding(hs_worker *w, hs_graph *g, hs_error *err)
{
    int n = hs_graph_node_count(g);
    if (!(w->needed_at = malloc((size_t)(n ? n : 1) * sizeof *w->needed_at)))
        return hs_error_set(err, HS_ERR_NOMEM, "out of memory");
    w->last_hold = hs__now();
    for (int i = 0; i < n; i++)
        w->needed_at[i] = w->last_hold; /* loaded: let go HOLD_S after, if no plan needs it */
    w->holder = g;
    return HS_OK;
}

static shared_exec *exec_acquire(hs_worker *w, int first, int last, hs_error *err)
{
    shared_exec *free_slot = NULL;
    for (int i = 0; i < MAX_EXECS; i++) {
        shared_exec *e = &w->execs[i];
        if (e->refs > 0 && e->first == first && e->last == last) {
            e->refs++;
            return e;
        }
        if (!e->refs && !free_slot)
            free_slot = e;
    }
    if (!free_slot) {
        hs_error_set(err, HS_ERR_NOMEM, "more than %d node ranges prepared at once",
                         MAX_EXECS);
        return NULL;
    }
    if (hs_exec_new(w->g, first, last, &free_slot->x, err) != HS_OK)
        return NULL;
    free_slot->first = first;
    free_slot->last = last;
    free_slot->refs = 1;
    return free_slot;
}

static void exec_release(shared_exec *e)
{
    if (e && --e->refs == 0) {
        hs_exec_free(e->x);
        e->x = NULL;
    }
}

static void slot_clear(epoch_slot *s)
{
    for (int i = 0; i < s->n_starts; i++) {
        exec_release(s->starts[i].head);
        hs_exec_free(s->starts[i].part);
    }
    for (int i = 0; i < s->n_at; i++)
        hs_exec_free(s->part[i]);
    exec_release(s->exec); /* after its parts */
    memset(s, 0, sizeof *s);
}

/* The points of an elastic window around cut k (0 < k < n): every node b with 0 < b < n whose
 * FLOPs before it are within `window` of the model's FLOPs of those before k, and whose cut is
 * cheap (at most twice k's bytes), k included; the MAX_WINDOW nearest k if more. Returns their
 * count, in order (0 when out of memory), and sets *nominal to k's index. */
static int window_points(hs_worker *w, int k, double window, int at[MAX_WINDOW],
                         int *nominal)
{
    int n = hs_graph_node_count(w->g), count = 0, mine = 0;
    if (!w->flops_before && (w->flops_before = malloc((size_t)(n + 1) * sizeof(double)))) {
        w->flops_before[0] = 0;
        for (int i = 0; i < n; i++) {
            hs_node_info info;
            hs_graph_node_info(w->g, i, &info);
            w->flops_before[i + 1] = w->flops_before[i] + info.flops;
        }
    }
    const double *before = w->flops_before;
    int *all = malloc((size_t)n * sizeof *all);
    if (!before || !all) {
        free(all);
        return 0;
    }
    double lo = before[k] - window * before[n], hi = before[k] + window * before[n];
    int64_t cheap = 2 * hs_graph_cut_bytes(w->g, k - 1);
    for (int b = 1; b < n; b++) {
        if (b == k)
            mine = count;
        if (b == k ||
            (before[b] >= lo && before[b] <= hi && hs_graph_cut_bytes(w->g, b - 1) <= cheap))
            all[count++] = b;
    }
    int from = 0;
    if (count > MAX_WINDOW) {
        from = mine - MAX_WINDOW / 2;
        from = from < 0 ? 0 : from > count - MAX_WINDOW ? count - MAX_WINDOW : from;
    }
    int kept = count - from < MAX_WINDOW ? count - from : MAX_WINDOW;
    memcpy(at, all + from, (size_t)kept * sizeof *at);
    *nominal = mine - from;
    free(all);
    return kept;
}

/* Elastic sending for stage 0 of a 2-stage plan (the source), when the window holds more than
 * the plan's cut: makes the slot's executor [0, end of window) and its parts. False, with
 * nothing made, when it does not apply, or when out of memory (the plan's cut stays fixed: the
 * plan itself still runs). */
static bool prepare_elastic(hs_worker *w, epoch_slot *slot)
{
    const hs_wire_plan *plan = &slot->plan;
    int k = plan->stages[0].last;
    if (!w->elastic || slot->stage != 0 || plan->n_stages != 2 || k == 0 ||
        k == plan->stages[1].last)
        return false;
    int at[MAX_WINDOW], nominal, n_at = window_points(w, k, w->elastic->window, at, &nominal);
    if (n_at < 2)
        return false;
    hs_error err;
    if (!(slot->exec = exec_acquire(w, 0, at[n_at - 1], &err)))
        goto fail;
    for (int i = 0; i < n_at; i++) {
        if (hs_exec_new_part(slot->exec->x, i ? at[i - 1] : 0, at[i], &slot->part[i], &err) !=
            HS_OK)
            goto fail;
        slot->n_at = i + 1;
    }
    memcpy(slot->at, at, sizeof at);
    slot->nominal = nominal;
    return true;
fail:
    for (int i = 0; i < slot->n_at; i++)
        hs_exec_free(slot->part[i]);
    exec_release(slot->exec);
    slot->exec = NULL;
    slot->n_at = 0;
    fprintf(stderr, "worker %s: plan %u: no elastic hand-off, the plan's cut stays: %s\n",
            w->name, plan->epoch, err.msg);
    return false;
}

/* ---- weights per range ------------------------------------------------------------------- */

/* The nodes slot's plan may run here: its executors' ranges and, for stage 1 of a 2-stage
 * plan, the source's elastic window before the cut (the plan's window; the default width when
 * an older coordinator did not send it), where a request handed over early starts. */
static void slot_range(hs_worker *w, const epoch_slot *s, int *lo, int *hi)
{
    const hs_wire_stage *st = &s->plan.stages[s->stage];
    *lo = s->exec ? s->exec->first : st->first;
    *hi = s->exec ? s->exec->last : st->last;
    for (int i = 0; i < s->n_starts; i++)
        *lo = s->starts[i].from < *lo ? s->starts[i].from : *lo;
    int at[MAX_WINDOW], nominal, n_at;
    if (s->plan.n_stages != 2)
        return;
    double window = s->plan.window < 0 ? HS_DEFAULT_ELASTIC : s->plan.window;
    if (s->stage == 1 && st->first > 0 && window > 0 &&
        window_points(w, st->first, window, at, &nominal) > 0 && at[0] < *lo)
        *lo = at[0];
    if (s->stage == 0 && w->elastic && st->last > 0 && st->last < s->plan.stages[1].last &&
        (n_at = window_points(w, st->last, w->elastic->window, at, &nominal)) > 0 &&
        at[n_at - 1] > *hi) /* the source's window, before prepare_elastic makes it */
        *hi = at[n_at - 1];
}

/* The nodes whose weights to hold: those a live plan may run, or could run less than HOLD_S
 * ago, and [lo, hi) (a range about to be prepared). A plan that comes back within HOLD_S costs
 * no load, however often plans change. NULL when out of memory. */
static bool *needed_nodes(hs_worker *w, int lo, int hi, double now)
{
    int n = hs_graph_node_count(w->g);
    for (int i = lo; i < hi; i++)
        w->needed_at[i] = now;
    for (int e = 0; e < MAX_EPOCHS; e++) {
        const epoch_slot *s = &w->epochs[e];
        if (s->used && s->stage >= 0) {
            int a, b;
            slot_range(w, s, &a, &b);
            for (int i = a; i < b; i++)
                w->needed_at[i] = now;
        }
    }
    bool *need = malloc((size_t)(n ? n : 1) * sizeof *need);
    for (int i = 0; need && i < n; i++)
        need[i] = now - w->needed_at[i] < HOLD_S;
    return need;
}

/* After a hold: the change in the weights held (verbose), and whether it failed (no retry
 * every second after a failed load back: at the next plan's PREPARE). */
static void held(hs_worker *w, int64_t before, hs_status st, double now)
{
    int64_t after = w->verbose ? hs_graph_weight_bytes_held(w->g) : 0;
    if (after - before > 50000 || before - after > 50000)
        fprintf(stderr, "worker %s: holds %.1f MB of weights (was %.1f MB)\n", w->name,
                (double)after / 1e6, (double)before / 1e6);
    w->last_hold = now;
    w->hold_failed = st != HS_OK;
}

/* After HS_ERR_CHANGED (the file's size or modification time changed since it was loaded):
 * true, with the holder vouched for, when the file still has the bytes it was loaded from (a
 * touch, a copy), by its digest (`known`, or read now if 0); else false with *err saying
 * why. */
static bool same_bytes(hs_worker *w, uint64_t known, hs_error *err)
{
    uint64_t digest = known;
    if (!digest && hs_model_digest(hs_graph_name(w->g), &digest, err) != HS_OK)
        return false;
    if (digest != w->digest) {
        hs_error_set(err, HS_ERR_CHANGED, "worker %s: %s has changed since it was loaded: "
                     "cannot load weights back", w->name, hs_graph_name(w->g));
        return false;
    }
    return hs_graph_file_unchanged(w->holder, err) == HS_OK;
}

static hs_status finish_load(hs_worker *w, bool wait, hs_error *err);

static void *load_main(void *arg)
{
    background_load *L = arg;
    L->st = hs_graph_load_again(L->g, &L->fresh, &L->err);
    hs_error ignored; /* the digest, for a file that was only touched (finish_load) */
    if (L->st == HS_OK && hs_model_digest(hs_graph_name(L->g), &L->digest, &ignored) != HS_OK)
        L->digest = 0;
    atomic_store(&L->done, true);
    return NULL;
}

static hs_status load_start(hs_worker *w, hs_error *err)
{
    background_load *L = &w->load;
    L->g = w->holder;
    L->fresh = NULL;
    atomic_store(&L->done, false);
    if (pthread_create(&L->thread, NULL, load_main, L) != 0)
        return hs_error_set(err, HS_ERR_NOMEM, "worker %s: cannot start a thread to load "
                            "weights back", w->name);
    L->running = true;
    return HS_OK;
}

/* Holds the weights of needed_nodes(lo, hi) and lets the others go. When weights must be
 * loaded back, starts loading them in a thread of its own and sets *pending: finish_load then
 * moves them in and, for the PREPARE of *epoch (NULL: none), answers it; the plans prepared
 * before go on running meanwhile. */
static hs_status hold_start(hs_worker *w, int lo, int hi, const uint32_t *epoch, bool *pending,
                            hs_error *err)
{
    *pending = false;
    if (!w->needed_at)
        return HS_OK;
    hs_error earlier; /* none runs as a rule: PREPAREs wait for it (handle_control) */
    finish_load(w, true, &earlier);
    double now = hs__now();
    bool *need = needed_nodes(w, lo, hi, now), missing = false;
    if (!need)
        return hs_error_set(err, HS_ERR_NOMEM, "worker %s: out of memory", w->name);
    int64_t before = w->verbose ? hs_graph_weight_bytes_held(w->g) : 0;
    hs_status st = hs_graph_let_go_weights(w->holder, need, &missing, err);
    if (st == HS_OK && missing && (st = load_start(w, err)) == HS_OK) {
        background_load *L = &w->load;
        L->need = need;
        L->for_plan = epoch != NULL;
        L->epoch = epoch ? *epoch : 0;
        L->started = now;
        L->before = before;
        L->stages_before = w->stages_run;
        L->retried = false;
        *pending = true;
        return HS_OK;
    }
    held(w, before, st, now);
    free(need);
    return st;
}

/* hold_start, here and now: the weights of [lo, hi) are in when it returns HS_OK. */
static hs_status hold_weights(hs_worker *w, int lo, int hi, hs_error *err)
{
    bool pending;
    hs_status st = hold_start(w, lo, hi, NULL, &pending, err);
    return pending ? finish_load(w, true, err) : st;
}

static epoch_slot *find_epoch(hs_worker *w, uint32_t epoch)
{
    for (int i = 0; i < MAX_EPOCHS; i++)
        if (w->epochs[i].used && w->epochs[i].epoch == epoch)
            return &w->epochs[i];
    return NULL;
}

/* The rest of a PREPARE once its weights are in: slot's executors, and the next hop. */
static hs_status prepare_rest(hs_worker *w, epoch_slot *slot, hs_error *err)
{
    const hs_wire_plan *plan = &slot->plan;
    int stage = slot->stage;
    if (stage >= 0 && !prepare_elastic(w, slot) &&
        !(slot->exec = exec_acquire(w, plan->stages[stage].first, plan->stages[stage].last,
                                    err))) {
        slot_clear(slot);
        return err->code;
    }
    slot->used = true;
    /* Connect to the next hop now, so the first activation does not wait for TCP. */
    if (stage >= 0) {
        const char *next = stage + 1 < plan->n_stages
                               ? hs__plan_endpoint(plan, plan->stages[stage + 1].device)
                               : sink_of(w, plan);
        if (next)
            hs__pusher(&w->pushers, next, err);
    }
    return HS_OK;
}

/* PREPARE: find this worker's stage in the plan and get its executor ready; *pending when
 * that waits for weights loaded back in the background (finish_load then answers). */
static hs_status prepare(hs_worker *w, const hs_wire_plan *plan, bool *pending, hs_error *err)
{
    int n = hs_graph_node_count(w->g);
    *pending = false;
    epoch_slot *slot = find_epoch(w, plan->epoch);
    if (slot)
        slot_clear(slot); /* a re-sent PREPARE replaces the old one */
    for (int i = 0; i < MAX_EPOCHS && !slot; i++)
        if (!w->epochs[i].used)
            slot = &w->epochs[i];
    if (!slot) { /* full: the coordinator has not retired old plans; drop the oldest, but
                  * never the committed one, on which new requests arrive */
        for (int i = 0; i < MAX_EPOCHS; i++)
            if (w->epochs[i].epoch != w->committed &&
                (!slot || w->epochs[i].epoch < slot->epoch))
                slot = &w->epochs[i];
        slot_clear(slot);
    }
    int stage = -1;
    for (int s = 0; s < plan->n_stages; s++) {
        const hs_wire_stage *st = &plan->stages[s];
        if (st->first < 0 || st->last > n || st->first > st->last ||
            (s > 0 && st->first != plan->stages[s - 1].last))
            return hs_error_set(err, HS_ERR_INVALID, "plan %u: stage %d [%d, %d) does not "
                                    "fit a model of %d nodes", plan->epoch, s, st->first,
                                    st->last, n);
        if (strcmp(st->device, w->name) == 0)
            stage = s;
    }
    slot->epoch = plan->epoch;
    slot->plan = *plan;
    slot->stage = stage;
    if (stage >= 0) { /* what epoch e needs is loaded before READY(e) */
        int lo, hi;
        slot_range(w, slot, &lo, &hi);
        hs_status held = hold_start(w, lo, hi, &plan->epoch, pending, err);
        if (held != HS_OK) {
            slot_clear(slot);
            return held;
        }
        if (*pending) { /* a live slot, so that no hold lets its range go; no exec yet */
            slot->used = slot->loading = true;
            return HS_OK;
        }
    }
    return prepare_rest(w, slot, err);
}

static void retire(hs_worker *w, uint32_t below)
{
    for (int i = 0; i < MAX_EPOCHS; i++)
        if (w->epochs[i].used && w->epochs[i].epoch < below)
            slot_clear(&w->epochs[i]);
}

/* ---- control --------------------------------------------------------------------------- */

static hs_status send_control(hs_worker *w, hs_msg *m, hs_error *err)
{
    return hs_msg_send(w->control, NULL, m, NULL, NULL, 0, err);
}

static void send_ready(hs_worker *w, uint32_t epoch, hs_status st, const hs_error *why)
{
    hs_error err;
    hs_msg_init(w->out, HS_MSG_READY);
    w->out->epoch = epoch;
    w->out->status = st;
    if (st != HS_OK)
        snprintf(w->out->reason, sizeof w->out->reason, "%.250s", why->msg);
    send_control(w, w->out, &err);
}

/* A PREPARE: prepares the plan and answers READY, unless that waits for a background load. */
static void answer_prepare(hs_worker *w, const hs_wire_plan *plan)
{
    hs_error err = {0};
    bool pending;
    hs_status st = prepare(w, plan, &pending, &err);
    if (!pending)
        send_ready(w, plan->epoch, st, &err);
}

/* Ends the load hold_start began once it is done (wait: now, blocking): moves the weights in
 * (a file that was only touched is loaded once more), and answers the PREPARE that waited, if
 * any. Returns how the load went (HS_OK when none ran), with *err saying why. */
static hs_status finish_load(hs_worker *w, bool wait, hs_error *err)
{
    background_load *L = &w->load;
    if (!L->running || (!wait && !atomic_load(&L->done)))
        return HS_OK;
    pthread_join(L->thread, NULL);
    L->running = false;
    *err = L->err;
    hs_status st = L->st;
    if (st == HS_OK)
        st = hs_graph_take_weights(w->holder, L->fresh, L->need, err); /* frees fresh */
    L->fresh = NULL;
    if (st == HS_ERR_CHANGED && !L->retried && same_bytes(w, L->digest, err)) {
        L->retried = true;
        if ((st = load_start(w, err)) == HS_OK)
            return wait ? finish_load(w, true, err) : HS_OK;
    }
    double now = hs__now();
    char plan[32] = "";
    if (L->for_plan)
        snprintf(plan, sizeof plan, "plan %u: ", L->epoch);
    if (w->verbose && st == HS_OK)
        fprintf(stderr, "worker %s: %sweights loaded back in %.0f ms, %s; %llu stages run "
                "meanwhile\n", w->name, plan, 1e3 * (now - L->started),
                wait ? "waited for at the end" : "in the background",
                (unsigned long long)(w->stages_run - L->stages_before));
    held(w, L->before, st, now);
    free(L->need);
    L->need = NULL;
    epoch_slot *slot = L->for_plan ? find_epoch(w, L->epoch) : NULL;
    if (!slot || !slot->loading)
        return st; /* none waits, or retired meanwhile: the coordinator has moved on */
    slot->loading = false;
    hs_status ready = st == HS_OK ? prepare_rest(w, slot, err) : st;
    if (st != HS_OK)
        slot_clear(slot);
    send_ready(w, L->epoch, ready, err);
    return st;
}

/* The PREPARE that waited for a background load: the newest one only. The coordinator waits
 * for one plan at a time and ignores READY for a plan it has since replaced, so preparing
 * the older ones (and loading their weights) would be wasted. */
static void answer_waiting(hs_worker *w)
{
    if (!w->has_waiting || w->load.running)
        return;
    if (w->verbose && w->replaced)
        fprintf(stderr, "worker %s: %u plans before plan %u were replaced while weights "
                "loaded\n", w->name, w->replaced, w->waiting.epoch);
    hs_wire_plan plan = w->waiting;
    w->has_waiting = false;
    w->replaced = 0;
    answer_prepare(w, &plan);
}

/* A PREPARE that came during a background load waits for it (one load at a time, and no plan
 * prepared while the weights move), in place of any that waited before it. */
static void wait_for_load(hs_worker *w, const hs_wire_plan *plan)
{
    w->replaced += w->has_waiting && w->waiting.epoch != plan->epoch;
    w->waiting = *plan;
    w->has_waiting = true;
}

static hs_status no_answer(const hs_worker *w, hs_error *err)
{
    return hs_error_set(err, HS_ERR_IO, "worker %s: no answer from the coordinator at %s "
                            "in %d s", w->name, w->coordinator, w->answer_timeout_s);
}

static hs_status refused(const hs_worker *w, const hs_msg *welcome, hs_error *err)
{
    return hs_error_set(err, (hs_status)welcome->status, "coordinator refused %s: %s",
                            w->name, welcome->reason);
}

/* Waits up to answer_timeout_s for the coordinator's next message of kind `want`, received
 * into w->in (the caller closes it). A refusing WELCOME ends the wait with its reason; anything
 * else is dropped. */
static hs_status await_answer(hs_worker *w, hs_msg_kind want, hs_error *err)
{
    double deadline = hs__now() + w->answer_timeout_s;
    for (;;) {
        double left = deadline - hs__now();
        zmq_pollitem_t item = {w->control, 0, ZMQ_POLLIN, 0};
        int rc = left > 0 ? zmq_poll(&item, 1, (long)(left * 1e3) + 1) : 0;
        if (rc == 0)
            return no_answer(w, err);
        if (rc < 0 && zmq_errno() != EINTR)
            return hs_error_set(err, HS_ERR_IO, "worker %s: poll: %s", w->name,
                                    zmq_strerror(zmq_errno()));
        hs_error merr;
        hs_status st = rc < 0 ? HS_ERR_IO
                              : hs_msg_recv(w->control, NULL, 0, w->in, ZMQ_DONTWAIT, &merr);
        if (st == HS_ERR_IO)
            continue;
        if (st != HS_OK) {
            hs__bad_message(&w->bad, w->name, "coordinator", merr.msg);
            continue;
        }
        if (w->in->kind == want)
            return HS_OK;
        if (w->in->kind == HS_MSG_WELCOME && w->in->status < 0) {
            st = refused(w, w->in, err);
            hs_msg_close(w->in);
            return st;
        }
        hs__bad_message(&w->bad, w->name, "coordinator", hs_msg_kind_name(w->in->kind));
        hs_msg_close(w->in);
    }
}

/* The model cache's file for digest (see hs_worker_opts.model_cache). */
static void cache_path(const char *dir, uint64_t digest, char *path, size_t size)
{
    snprintf(path, size, "%s/%016llx.onnx", dir, (unsigned long long)digest);
}

/* Whether the cache already holds the model of `digest`, `total` bytes long (its content
 * checked by digest). */
static bool in_cache(const char *dir, uint64_t digest, uint64_t total)
{
    char path[4096];
    struct stat sb;
    uint64_t found;
    hs_error ignored;
    cache_path(dir, digest, path, sizeof path);
    return stat(path, &sb) == 0 && (uint64_t)sb.st_size == total &&
           hs_model_digest(path, &found, &ignored) == HS_OK && found == digest;
}

/* Writes the fetched model into the cache: whole into a temporary file, then renamed, so that
 * the cache never holds part of a model under its digest's name. */
static hs_status cache_write(hs_worker *w, const char *dir, uint64_t digest,
                             const uint8_t *file, uint64_t total, hs_error *err)
{
    char path[4096], tmp[4200];
    cache_path(dir, digest, path, sizeof path);
    snprintf(tmp, sizeof tmp, "%s.%d.tmp", path, (int)getpid());
    FILE *f = fopen(tmp, "wb");
    bool ok = f && fwrite(file, 1, (size_t)total, f) == (size_t)total;
    ok = f && fclose(f) == 0 && ok;
    if (ok && rename(tmp, path) == 0)
        return HS_OK;
    int e = errno;
    unlink(tmp);
    return hs_error_set(err, HS_ERR_IO, "worker %s: --model-cache: cannot write %s: %s",
                        w->name, path, strerror(e));
}

/* Fetches the coordinator's model file: one chunk per request and one request at a time, so
 * nothing queues up beyond a chunk. Every chunk carries the digest of the whole file, checked
 * over what arrived before the model is loaded. With a model cache (`cache`), the model is
 * kept there and loaded from there, and a model already there ends the fetch at its first
 * chunk. */
static hs_status fetch_model(hs_worker *w, const char *cache, hs_error *err)
{
    uint8_t *file = NULL;
    uint64_t offset = 0, total = 0, digest = 0;
    bool cached = false;
    hs_status st;
    do {
        hs_msg_init(w->out, HS_MSG_MODEL_REQUEST);
        w->out->offset = offset;
        if ((st = send_control(w, w->out, err)) ||
            (st = await_answer(w, HS_MSG_MODEL_CHUNK, err)))
            break;
        const hs_msg *m = w->in;
        if (!file) {
            total = m->total;
            digest = m->model_digest;
            if (cache && (cached = in_cache(cache, digest, total))) {
                hs_msg_close(w->in);
                break;
            }
            if (!(file = malloc(total ? (size_t)total : 1)))
                st = hs_error_set(err, HS_ERR_NOMEM, "worker %s: out of memory for a "
                                      "model of %llu bytes", w->name, (unsigned long long)total);
        }
        if (st == HS_OK && (m->offset != offset || m->total != total ||
                            m->model_digest != digest || (!m->chunk_size && offset < total)))
            st = hs_error_set(err, HS_ERR_PARSE, "worker %s: the coordinator's chunk at "
                                  "offset %llu does not continue the model at %llu of %llu "
                                  "bytes", w->name, (unsigned long long)m->offset,
                                  (unsigned long long)offset, (unsigned long long)total);
        if (st == HS_OK) {
            memcpy(file + offset, m->chunk, m->chunk_size);
            offset += m->chunk_size;
        }
        hs_msg_close(w->in);
    } while (st == HS_OK && offset < total);

    if (st == HS_OK && !cached &&
        hs__digest_update(HS_DIGEST_SEED, file, (size_t)total) != digest)
        st = hs_error_set(err, HS_ERR_PARSE, "worker %s: the model fetched from %s does "
                              "not match its digest %016llx", w->name, w->coordinator,
                              (unsigned long long)digest);
    if (st == HS_OK && cache && !cached)
        st = cache_write(w, cache, digest, file, total, err);
    if (st == HS_OK && cache) {
        char path[4096];
        cache_path(cache, digest, path, sizeof path);
        free(file); /* the weights come from the file: no second copy while loading */
        file = NULL;
        st = hs_graph_load_onnx(path, NULL, &w->own_graph, err);
    } else if (st == HS_OK) {
        char name[HS_WIRE_ENDPOINT_MAX + 16];
        snprintf(name, sizeof name, "the model of %s", w->coordinator);
        st = hs_graph_load_onnx_buffer(file, (size_t)total, name, NULL, &w->own_graph, err);
    }
    if (st == HS_OK) {
        w->digest = digest;
        if (w->verbose && cached)
            fprintf(stderr, "worker %s: the model of %s is in %s (%llu bytes): not fetched\n",
                    w->name, w->coordinator, cache, (unsigned long long)total);
        else if (w->verbose)
            fprintf(stderr, "worker %s: fetched the model from %s (%llu bytes)%s%s\n",
                    w->name, w->coordinator, (unsigned long long)total,
                    cache ? ", kept in " : "", cache ? cache : "");
    }
    free(file);
    return st;
}

static hs_status say_hello(hs_worker *w, hs_error *err)
{
    hs_msg_init(w->out, HS_MSG_HELLO);
    snprintf(w->out->name, sizeof w->out->name, "%s", w->name);
    snprintf(w->out->endpoint, sizeof w->out->endpoint, "%s", w->endpoint);
    w->out->model_digest = w->digest;
    return send_control(w, w->out, err);
}

static void flush_telemetry(hs_worker *w, double now)
{
    w->last_telemetry = now;
    for (int i = 0; i < MAX_EPOCHS; i++) {
        epoch_slot *s = &w->epochs[i];
        if (!s->used || !s->count)
            continue;
        hs_msg_init(w->out, HS_MSG_TELEMETRY);
        w->out->epoch = s->epoch;
        w->out->stage = s->stage;
        w->out->count = s->count;
        w->out->seconds = s->seconds;
        hs_error err;
        if (hs_msg_send(w->control, NULL, w->out, NULL, NULL, ZMQ_DONTWAIT, &err) == HS_OK) {
            s->count = 0;
            s->seconds = 0;
        }
    }
}

/* Returns false when the worker must stop (refused, or the coordinator said BYE). */
static bool handle_control(hs_worker *w, hs_msg *m, hs_error *err)
{
    switch (m->kind) {
    case HS_MSG_WELCOME:
        if (m->status < 0) {
            refused(w, m, err);
            return false;
        }
        w->welcomed = true;
        if (w->verbose)
            fprintf(stderr, "worker %s: registered with %s\n", w->name, w->coordinator);
        return true;
    case HS_MSG_PREPARE:
        if (w->load.running || w->has_waiting)
            wait_for_load(w, &m->plan);
        else
            answer_prepare(w, &m->plan);
        return true;
    case HS_MSG_COMMIT:
        w->committed = m->epoch;
        retire(w, m->retire_below);
        return true;
    case HS_MSG_BYE:
        if (w->verbose)
            fprintf(stderr, "worker %s: the coordinator left\n", w->name);
        return false;
    default:
        hs__bad_message(&w->bad, w->name, "coordinator", hs_msg_kind_name(m->kind));
        return true;
    }
}

/* ---- data -------------------------------------------------------------------------------- */

static void free_block(void *block) { free(block); }

/* The executors for a run of slot's stage that starts at node `from` rather than at the
 * stage's first (an elastic hand-off), made on first use: before the first, *head runs
 * [from, first) and then the stage's own; after it, *x becomes exec's part [from, last).
 * False with *why if `from` is not a node the previous stage could have handed over at (both
 * stages keep a node). */
static bool start_exec(hs_worker *w, epoch_slot *slot, int from, hs_exec **head, hs_exec **x,
                       char *why, size_t size)
{
    const hs_wire_plan *plan = &slot->plan;
    const hs_wire_stage *st = &plan->stages[slot->stage];
    if (slot->stage == 0 || from <= plan->stages[slot->stage - 1].first || from >= st->last) {
        snprintf(why, size, "epoch %u: stage %d cannot start at node %d", plan->epoch,
                 slot->stage, from);
        return false;
    }
    int i = 0;
    while (i < slot->n_starts && slot->starts[i].from != from)
        i++;
    if (i == slot->n_starts) {
        hs_error err;
        shared_exec *h = NULL;
        hs_exec *part = NULL;
        if (i == MAX_STARTS) {
            snprintf(why, size, "epoch %u: more than %d start nodes", plan->epoch, MAX_STARTS);
            return false;
        }
        /* [from, first) is held as a rule (the plan's window, slot_range): its weights are
         * loaded on the spot, waiting for any load in the background, only when they are
         * not (a `first` outside the window). */
        if (from < st->first ? !(h = exec_acquire(w, from, st->first, &err)) &&
                                   (hold_weights(w, from, st->first, &err) != HS_OK ||
                                    !(h = exec_acquire(w, from, st->first, &err)))
                             : hs_exec_new_part(slot->exec->x, from, st->last, &part, &err) !=
                                   HS_OK) {
            snprintf(why, size, "%s", err.msg);
            return false;
        }
        slot->starts[i].from = from;
        slot->starts[i].head = h;
        slot->starts[i].part = part;
        slot->n_starts++;
    }
    if (slot->starts[i].head)
        *head = slot->starts[i].head->x;
    else
        *x = slot->starts[i].part;
    return true;
}

/* Runs x on n_in inputs into outputs (room for HS_WIRE_MAX_TENSORS, which a message carries at
 * most). */
static hs_status run_exec(hs_exec *x, const hs_tensor *inputs, int n_in, hs_tensor *outputs,
                          hs_error *err)
{
    int n_out = hs_exec_output_count(x);
    if (n_out > HS_WIRE_MAX_TENSORS)
        return hs_error_set(err, HS_ERR_INVALID, "too many cut tensors");
    return hs_exec_run(x, inputs, n_in, outputs, n_out, err);
}

/* Requests at stage 1, as far as the source knows (see hs__elastic). */
static uint64_t stage1_backlog(hs__elastic *el)
{
    uint64_t published = atomic_load(&el->published), handed = atomic_load(&el->handed);
    uint64_t read = published >> 16, at = published & 0xffff;
    return at + (handed > read ? handed - read : 0);
}

/* Requests waiting at the source behind the one it runs (see hs__elastic). The coordinator
 * counts a send just after the source may have taken it: a moment's deficit reads as 0. */
static uint64_t source_waiting(hs__elastic *el)
{
    uint64_t taken = atomic_load_explicit(&el->taken, memory_order_relaxed);
    uint64_t sent = atomic_load_explicit(&el->sent, memory_order_relaxed);
    return sent > taken ? sent - taken : 0;
}

bool hs__elastic_hand_over(bool before_cut, uint64_t at_stage1, uint64_t waiting_here)
{
    /* Measured: a stage 1 that got work early only when idle idled 6-8% of its core while the
     * source's was full (it also receives every input). */
    return before_cut ? at_stage1 == 0 || (at_stage1 == 1 && waiting_here > 0)
                      : at_stage1 <= 1 || waiting_here > 0;
}

/* Runs slot's (elastic) stage 0 on inputs: one part after another, handing over where
 * hs__elastic_hand_over says, at the window's end at the latest. Sets *x to the executor that
 * produced outputs, *to to the node they are for, and *own_s to the time to the plan's cut
 * (-1: handed over before it). */
static hs_status run_elastic(hs_worker *w, epoch_slot *slot, const hs_tensor *inputs, int n_in,
                             hs_tensor *outputs, hs_exec **x, int *to, double *own_s,
                             hs_error *err)
{
    hs_tensor cut[HS_WIRE_MAX_TENSORS];
    double t0 = hs__now();
    *own_s = -1;
    *x = slot->part[0];
    int i = 0;
    for (;; i++) {
        hs_status st = run_exec(*x, i ? cut : inputs, i ? hs_exec_input_count(*x) : n_in,
                                outputs, err);
        if (st != HS_OK)
            return st;
        if (i == slot->nominal)
            *own_s = hs__now() - t0;
        if (i + 1 == slot->n_at)
            break;
        if (hs__elastic_hand_over(i < slot->nominal, stage1_backlog(w->elastic),
                                  source_waiting(w->elastic)))
            break;
        memcpy(cut, outputs, (size_t)hs_exec_output_count(*x) * sizeof *cut);
        *x = slot->part[i + 1];
    }
    *to = slot->at[i];
    return HS_OK;
}

static void handle_data(hs_worker *w, hs_msg *m)
{
    char why[HS_ERROR_MSG_MAX];
    epoch_slot *slot = m->kind == HS_MSG_DATA ? find_epoch(w, m->epoch) : NULL;
    if (m->kind != HS_MSG_DATA) {
        hs__bad_message(&w->bad, w->name, "data socket", "not a DATA message");
        return;
    }
    if (!slot) {
        snprintf(why, sizeof why, "unknown plan epoch %u", m->epoch);
        hs__bad_message(&w->bad, w->name, "data socket", why);
        return;
    }
    if (m->cut != slot->stage || !slot->exec) {
        snprintf(why, sizeof why, "epoch %u: stage %d is not this worker's", m->epoch, m->cut);
        hs__bad_message(&w->bad, w->name, "data socket", why);
        return;
    }
    /* The executors to run: `head` (if any) then x; head takes the inputs. */
    const hs_wire_stage *stage = &slot->plan.stages[slot->stage];
    int from = m->first ? m->first : stage->first;
    hs_exec *head = NULL, *x = slot->exec->x;
    if (from != stage->first && !start_exec(w, slot, from, &head, &x, why, sizeof why)) {
        hs__bad_message(&w->bad, w->name, "data socket", why);
        return;
    }
    bool elastic = slot->n_at > 0;
    hs_exec *first_x = elastic ? slot->part[0] : head ? head : x;
    int n_in = hs_exec_input_count(first_x);
    if (m->n_tensors != n_in) {
        snprintf(why, sizeof why, "stage %d takes %d tensors at node %d, got %d", m->cut, n_in,
                 from, m->n_tensors);
        hs__bad_message(&w->bad, w->name, "data socket", why);
        return;
    }
    hs_tensor inputs[HS_WIRE_MAX_TENSORS], mid[HS_WIRE_MAX_TENSORS],
        outputs[HS_WIRE_MAX_TENSORS];
    for (int i = 0; i < n_in; i++) {
        hs_tensor want;
        const char *name = hs_exec_input(first_x, i, &want);
        if (strcmp(name, m->tensors[i].name) != 0 ||
            !hs_tensor_same_desc(&want, &m->tensors[i].t)) {
            snprintf(why, sizeof why, "stage %d input %d: expected '%s', got '%s' of another "
                     "shape or type", m->cut, i, name, m->tensors[i].name);
            hs__bad_message(&w->bad, w->name, "data socket", why);
            return;
        }
        inputs[i] = m->tensors[i].t;
    }
    hs_error err;
    hs_status st = HS_OK;
    int to = slot->stage + 1 < slot->plan.n_stages ? slot->plan.stages[slot->stage + 1].first
                                                   : 0;
    /* Telemetry times the stage's own range only, inside a run that covered it: partial
     * ranges are run when a device is fast or slow at that moment, and in benchmark runs
     * reporting them (scaled by FLOPs, or as ranges of their own) moved the plan 4-12 times
     * more and kept less of the machine. */
    double own_s = -1;
    if (elastic) {
        st = run_elastic(w, slot, inputs, n_in, outputs, &x, &to, &own_s, &err);
    } else {
        if (head)
            st = run_exec(head, inputs, n_in, mid, &err);
        double t0 = hs__now();
        if (st == HS_OK)
            st = run_exec(x, head ? mid : inputs, hs_exec_input_count(x), outputs, &err);
        if (from <= stage->first) /* x is the stage's own executor */
            own_s = hs__now() - t0;
    }
    if (st != HS_OK) {
        hs__bad_message(&w->bad, w->name, "executor", err.msg);
        return;
    }
    w->stages_run++;
    if (own_s >= 0) {
        slot->seconds += own_s;
        slot->count++;
    }
    int n_out = hs_exec_output_count(x);

    /* The arena is reused by the next run: copy the cut into one block that ZeroMQ sends
     * without a further copy and frees when done. */
    size_t total = 0;
    for (int i = 0; i < n_out; i++)
        total += (hs_tensor_nbytes(&outputs[i]) + 63) & ~(size_t)63;
    uint8_t *block = aligned_alloc(64, total ? total : 64);
    if (!block) {
        hs__bad_message(&w->bad, w->name, "executor", "out of memory for outputs");
        return;
    }
    hs_msg *o = w->out;
    hs_msg_init(o, HS_MSG_DATA);
    o->request_id = m->request_id;
    o->epoch = m->epoch;
    o->cut = m->cut + 1;
    o->first = to;
    o->n_tensors = n_out;
    size_t at = 0;
    for (int i = 0; i < n_out; i++) {
        size_t bytes = hs_tensor_nbytes(&outputs[i]);
        snprintf(o->tensors[i].name, sizeof o->tensors[i].name, "%s",
                 hs_exec_output(x, i, NULL));
        o->tensors[i].t = outputs[i];
        o->tensors[i].t.data = block + at;
        memcpy(block + at, outputs[i].data, bytes);
        at += (bytes + 63) & ~(size_t)63;
    }
    const hs_wire_plan *plan = &slot->plan;
    const char *dest = o->cut < plan->n_stages
                           ? hs__plan_endpoint(plan, plan->stages[o->cut].device)
                           : sink_of(w, plan);
    void *sock = dest ? hs__pusher(&w->pushers, dest, &err) : NULL;
    if (!sock) {
        free(block);
        hs__bad_message(&w->bad, w->name, "plan", dest ? err.msg : "no endpoint for next stage");
        return;
    }
    /* A peer that is still connecting gets a moment; a vanished one does not hold the worker
     * up for long: the coordinator re-issues what is dropped. */
    if (hs__send_data(sock, o, free_block, block, &err) != HS_OK)
        hs__bad_message(&w->bad, w->name, "send", err.msg);
    else if (w->elastic && slot->stage == 0 && plan->n_stages == 2 && plan->stages[0].last > 0) {
        hs__elastic *el = w->elastic; /* the ring's only writer: see hs__elastic */
        uint64_t h = atomic_load_explicit(&el->handed, memory_order_relaxed);
        atomic_store_explicit(&el->ring[h % HS_ELASTIC_RING], m->request_id,
                              memory_order_relaxed);
        atomic_store_explicit(&el->handed, h + 1, memory_order_release);
        if (to != plan->stages[1].first)
            atomic_fetch_add(to < plan->stages[1].first ? &w->elastic->early
                                                        : &w->elastic->late, 1);
    }
}

/* ---- lifetime ---------------------------------------------------------------------------- */

static hs_status open_sockets(hs_worker *w, hs_error *err)
{
    hs_socket_opts so;
    char pub[41], sec[41], server[41];
    hs_status st = hs__socket_opts(&w->net, false, &so, pub, sec, server, err);
    if (st != HS_OK)
        return st;
    so.identity = w->name;
    w->control = hs_socket_new(w->ctx, ZMQ_DEALER, &so, err);
    if (!w->control)
        return HS_ERR_IO;
    if (zmq_connect(w->control, w->coordinator) != 0)
        return hs_error_set(err, HS_ERR_IO, "worker %s: cannot connect to %s: %s", w->name,
                                w->coordinator, zmq_strerror(zmq_errno()));
    /* Data comes from peers that are the coordinator's clients too: no CURVE server role
     * here keeps key management to one allow-list at the coordinator. */
    hs_socket_opts dso = {.heartbeat_ivl_ms = so.heartbeat_ivl_ms,
                          .heartbeat_timeout_ms = so.heartbeat_timeout_ms,
                          .max_msg_size = hs__max_message(&w->net), .linger_ms = 0,
                          .rcvhwm = HS_DATA_HWM};
    w->data = hs_socket_new(w->ctx, ZMQ_PULL, &dso, err);
    if (!w->data)
        return HS_ERR_IO;
    if (zmq_bind(w->data, w->listen) != 0)
        return hs_error_set(err, HS_ERR_IO, "worker %s: cannot listen on %s: %s", w->name,
                                w->listen, zmq_strerror(zmq_errno()));
    char bound[HS_WIRE_ENDPOINT_MAX];
    size_t len = sizeof bound;
    zmq_getsockopt(w->data, ZMQ_LAST_ENDPOINT, bound, &len);
    hs__advertise(bound, w->advertise, w->endpoint, sizeof w->endpoint);
    w->pushers.ctx = w->ctx;
    w->pushers.net = &w->net;
    return HS_OK;
}

static hs_status worker_init(hs_worker *w, const hs_worker_opts *o, hs_error *err)
{
    if (!o->name || !*o->name || !o->coordinator)
        return hs_error_set(err, HS_ERR_INVALID, "a worker needs --name and --coordinator");
    snprintf(w->name, sizeof w->name, "%s", o->name);
    snprintf(w->coordinator, sizeof w->coordinator, "%s", o->coordinator);
    snprintf(w->listen, sizeof w->listen, "%s", o->listen ? o->listen : "tcp://*:0");
    snprintf(w->advertise, sizeof w->advertise, "%s",
             o->advertise_host ? o->advertise_host : "127.0.0.1");
    w->net = o->net;
    w->verbose = o->verbose;
    w->threads = o->threads > 0 ? o->threads : 1;
    w->spin_s = o->spin_us > 0 ? o->spin_us / 1e6 : 0;
    w->in = calloc(1, sizeof *w->in);
    w->out = calloc(1, sizeof *w->out);
    if (!w->in || !w->out)
        return hs_error_set(err, HS_ERR_NOMEM, "out of memory");
    return HS_OK;
}

hs_status hs_worker_new(const hs_worker_opts *o, hs_worker **out, hs_error *err)
{
    *out = NULL;
    hs_worker *w = calloc(1, sizeof *w);
    if (!w)
        return hs_error_set(err, HS_ERR_NOMEM, "out of memory");
    hs_status st = worker_init(w, o, err);
    struct stat cache_sb;
    w->answer_timeout_s = HS_ANSWER_TIMEOUT_S;
    if (st == HS_OK && o->model_path) {
        st = hs_model_digest(o->model_path, &w->digest, err);
        if (st == HS_OK)
            st = hs_graph_load_onnx(o->model_path, NULL, &w->own_graph, err);
    } else if (st == HS_OK && o->model_cache &&
               (stat(o->model_cache, &cache_sb) != 0 || !S_ISDIR(cache_sb.st_mode))) {
        st = hs_error_set(err, HS_ERR_INVALID, "worker %s: --model-cache %s: not a directory",
                          w->name, o->model_cache);
    } else if (st == HS_OK && hs__max_message(&w->net) < HS_WIRE_CHUNK_MAX) {
        st = hs_error_set(err, HS_ERR_INVALID, "worker %s: fetching the model takes "
                              "--max-message-mb %u or more", w->name, HS_WIRE_CHUNK_MAX >> 20);
    }
    if (st == HS_OK) {
        w->ctx = zmq_ctx_new();
        w->own_ctx = true;
        st = w->ctx ? open_sockets(w, err)
                    : hs_error_set(err, HS_ERR_IO, "cannot create a ZeroMQ context");
    }
    if (st == HS_OK && !o->model_path)
        st = fetch_model(w, o->model_cache, err);
    w->g = w->own_graph;
    if (st == HS_OK && (o->model_path || o->model_cache) && !o->hold_all_weights)
        st = start_holding(w, w->own_graph, err);
    if (st != HS_OK) {
        hs_worker_free(w);
        return st;
    }
    *out = w;
    return HS_OK;
}

hs_status hs__worker_new_embedded(const hs_worker_opts *o, void *ctx, hs_graph *g,
                                  uint64_t digest, hs__elastic *elastic,
                                  const char *local_sink, hs_worker **out, hs_error *err)
{
    *out = NULL;
    hs_worker *w = calloc(1, sizeof *w);
    if (!w)
        return hs_error_set(err, HS_ERR_NOMEM, "out of memory");
    hs_status st = worker_init(w, o, err);
    w->g = g;
    w->digest = digest;
    w->ctx = ctx;
    w->elastic = elastic;
    snprintf(w->local_sink, sizeof w->local_sink, "%s", local_sink);
    if (st == HS_OK && !o->hold_all_weights)
        st = start_holding(w, g, err);
    if (st == HS_OK)
        st = open_sockets(w, err);
    if (st != HS_OK) {
        hs_worker_free(w);
        return st;
    }
    *out = w;
    return HS_OK;
}

const char *hs__worker_endpoint(const hs_worker *w) { return w->endpoint; }

static bool readable(void *socket)
{
    int events;
    size_t len = sizeof events;
    return zmq_getsockopt(socket, ZMQ_EVENTS, &events, &len) == 0 && (events & ZMQ_POLLIN);
}

/* Handles every control message waiting; false when the worker must stop. */
static bool poll_control(hs_worker *w, hs_error *err)
{
    while (readable(w->control)) {
        hs_error merr;
        hs_status st = hs_msg_recv(w->control, NULL, 0, w->in, ZMQ_DONTWAIT, &merr);
        if (st == HS_ERR_IO)
            return true;
        if (st != HS_OK) {
            hs__bad_message(&w->bad, w->name, "coordinator", merr.msg);
            continue;
        }
        bool go_on = handle_control(w, w->in, err);
        hs_msg_close(w->in);
        if (!go_on)
            return false;
    }
    return true;
}

/* Receives and runs one data message; false if there was none. */
static bool handle_one_data(hs_worker *w)
{
    hs_error merr;
    hs_status st = hs_msg_recv(w->data, NULL, 0, w->in, ZMQ_DONTWAIT, &merr);
    if (st == HS_ERR_IO)
        return false;
    if (w->elastic)
        atomic_fetch_add_explicit(&w->elastic->taken, 1, memory_order_relaxed);
    if (st == HS_OK) {
        handle_data(w, w->in);
        hs_msg_close(w->in);
    } else {
        hs__bad_message(&w->bad, w->name, "data socket", merr.msg);
    }
    return true;
}

hs_status hs_worker_run(hs_worker *w, hs_error *err)
{
    hs_set_threads(w->threads);
    hs_status st = say_hello(w, err);
    if (st != HS_OK)
        return st;
    double hello_at = hs__now();
    zmq_pollitem_t items[] = {{w->control, 0, ZMQ_POLLIN, 0}, {w->data, 0, ZMQ_POLLIN, 0}};
    bool running = true;
    double last_stage = 0;
    while (running && !w->stop) {
        /* Within spin_s of the last stage, poll without sleeping: the next activation finds
         * the core awake. An empty poll yields, so that the threads that deliver it (ZeroMQ's
         * I/O thread, on the source device the coordinator's) run first if they share it. */
        uint64_t stages_before = w->stages_run;
        bool spin = w->spin_s > 0 && hs__now() - last_stage < w->spin_s;
        int ready = zmq_poll(items, 2, spin ? 0 : w->load.running ? 5 : 100);
        if (ready < 0) {
            if (zmq_errno() == EINTR)
                continue;
            if (zmq_errno() == ETERM)
                break;
            return hs_error_set(err, HS_ERR_IO, "worker %s: poll: %s", w->name,
                                    zmq_strerror(zmq_errno()));
        }
        if (spin && ready == 0)
            sched_yield();
        /* Control first, and again between data messages: a PREPARE must not wait behind a
         * queue of activations (recovery time is the time to the next commit). */
        for (int i = 0; running && i < 8; i++) {
            running = poll_control(w, err);
            if (!running || !readable(w->data) || !handle_one_data(w))
                break;
        }
        double now = hs__now();
        if (w->stages_run != stages_before)
            last_stage = now;
        if (running && !w->welcomed && w->answer_timeout_s &&
            now - hello_at > w->answer_timeout_s)
            return no_answer(w, err);
        if (now - w->last_telemetry >= TELEMETRY_EVERY_S)
            flush_telemetry(w, now);
        hs_error load_err; /* a failed load is told in its READY */
        finish_load(w, false, &load_err);
        answer_waiting(w);
        hs_error hold_err;
        if (w->needed_at && !w->hold_failed && !w->load.running &&
            now - w->last_hold >= HOLD_EVERY_S && hold_weights(w, 0, 0, &hold_err) != HS_OK)
            fprintf(stderr, "worker %s: %s\n", w->name, hold_err.msg);
    }
    if (!running && err && err->code < 0 && err->msg[0])
        return err->code;
    return HS_OK;
}

void hs_worker_stop(hs_worker *w) { w->stop = 1; }

void hs_worker_get_stats(const hs_worker *w, hs_worker_stats *out)
{
    out->stages_run = w->stages_run;
    out->bad_messages = w->bad.count;
}

void hs_worker_free(hs_worker *w)
{
    if (!w)
        return;
    if (w->control && w->out) { /* tell the coordinator at once rather than by timeout */
        hs_msg_init(w->out, HS_MSG_BYE);
        hs_error err;
        hs_msg_send(w->control, NULL, w->out, NULL, NULL, ZMQ_DONTWAIT, &err);
    }
    if (w->load.running) { /* its weights are not needed any more */
        pthread_join(w->load.thread, NULL);
        hs_graph_free(w->load.fresh);
    }
    free(w->load.need);
    for (int i = 0; i < MAX_EPOCHS; i++)
        if (w->epochs[i].used)
            slot_clear(&w->epochs[i]);
    hs__pushers_close(&w->pushers);
    if (w->control)
        zmq_close(w->control);
    if (w->data)
        zmq_close(w->data);
    if (w->own_ctx && w->ctx)
        zmq_ctx_term(w->ctx);
    hs_graph_free(w->own_graph);
    free(w->flops_before);
    free(w->needed_at);
    if (w->in)
        hs_msg_close(w->in);
    free(w->in);
    free(w->out);
    free(w);
}
