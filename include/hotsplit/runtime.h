/*
 * hotsplit runtime: the processes that run a split model across hosts.
 *
 * A *coordinator* runs on the source device. It admits requests, keeps each request's input
 * until its result arrives, publishes plans (two-phase: PREPARE, every participant READY, then
 * COMMIT) and tracks membership; it is also the source device's worker (a thread in it), so a
 * one-device cluster needs nothing else. A *worker* registers under a device name of the
 * cluster file, prepares the stages of each plan it is given, runs them on the activations it
 * receives and sends its outputs straight to the next stage. A *client* submits inputs to a
 * coordinator and receives outputs, each tagged with its request id.
 *
 * Guarantees: a request keeps the plan epoch it was admitted with, so work in flight finishes
 * on its own plan while a new one is committed; when a worker stops answering, the plan is
 * recomputed without it and the requests it held are re-issued from their kept inputs; results
 * are deduplicated by request id, so every request is answered exactly once.
 *
 * Every function returns HS_OK or a negative hs_status with a one-line reason in err. The
 * run() calls block until stopped (from another thread or a signal handler) by *_stop().
 */
#ifndef HOTSPLIT_RUNTIME_H
#define HOTSPLIT_RUNTIME_H

#include "hotsplit/core.h"
#include "hotsplit/solver.h"

#ifdef __cplusplus
extern "C" {
#endif

/* Security and liveness settings shared by all three. */
typedef struct hs_net_opts {
    int heartbeat_ivl_ms;     /* ZMTP heartbeat interval (default 100) */
    int heartbeat_timeout_ms; /* a peer silent this long is gone (default 1000) */
    int max_message_mb;       /* larger incoming messages are dropped (default 1024) */
    /* CurveZMQ: key files written by `hotsplit keygen` (NULL: plain TCP). */
    const char *curve_keys;      /* this process's key pair */
    const char *curve_server;    /* clients and workers: the coordinator's public key file */
    const char *curve_allow;     /* coordinator: allow-list of client/worker public keys */
} hs_net_opts;

/* ---- coordinator --------------------------------------------------------------------------- */

/* The elastic window `hotsplit coordinator` uses for the throughput objective. */
#define HS_DEFAULT_ELASTIC 0.1

typedef struct hs_coordinator_opts {
    const char *model_path;      /* mapped while the coordinator runs (workers may fetch it):
                                    replace it by renaming a new file over it, not in place */
    const char *cluster_path;
    const char *listen;          /* e.g. "tcp://0.0.0.0:5555" (workers, clients) */
    const char *advertise_host;  /* host other processes reach this one by (default 127.0.0.1) */
    const char *plan_path;       /* pin this plan (hotsplit plan --json); NULL: the solver's */
    const char *profile_path;    /* node times for the cost model; NULL: analytic */
    hs_objective objective;
    hs_constraints constraints;
    const char *const *sets;     /* --set overrides of the cluster */
    int n_sets;
    int swap_every_ms;           /* > 0: publish a new (random, valid) plan this often: a test
                                    of hot swapping under load */
    int request_timeout_ms;      /* re-issue a request unanswered this long (default 5000) */
    int threads;                 /* BLAS threads of the embedded source worker (default 1) */
    int spin_us;                 /* the embedded source worker's, as hs_worker_opts.spin_us */
    bool no_mix;                 /* throughput: never run a share of the requests on a second
                                    plan (a neighbour of the current one) to balance stages
                                    finer than a node (hs_plan_mix) */
    double elastic;              /* 0 to 0.5 (else hs_coordinator_new fails); > 0: elastic
                                    hand-off in 2-stage plans. The source hands each request
                                    to stage 1 at a cheap cut within this share of the
                                    model's FLOPs either side of the plan's cut: before the
                                    plan's cut only to an idle stage 1, after it as soon as
                                    stage 1 has nothing waiting, at the window's end at the
                                    latest; stage 1 runs on from there. Each request balances
                                    the two devices as they run at that moment. Such plans
                                    are not mixed. 0: off (the CLI's default is
                                    HS_DEFAULT_ELASTIC for the throughput objective) */
    bool hold_all_weights;       /* the source keeps every weight; by default it holds, as a
                                    worker does, those of the ranges its plans may run */
    hs_net_opts net;
    bool verbose;                /* one line per membership change and plan on stderr, and
                                    every 5 s answered/s and measured stage times */
} hs_coordinator_opts;

typedef struct hs_coordinator hs_coordinator;
typedef struct hs_client hs_client; /* below */

/* Loads the model and cluster, binds the sockets and starts the embedded source worker.
 * Caller owns *out. */
hs_status hs_coordinator_new(const hs_coordinator_opts *o, hs_coordinator **out, hs_error *err);
/* Serves until hs_coordinator_stop(). */
hs_status hs_coordinator_run(hs_coordinator *c, hs_error *err);
/* Asks run() to return; async-signal-safe. */
void hs_coordinator_stop(hs_coordinator *c);
void hs_coordinator_free(hs_coordinator *c);

typedef struct hs_coordinator_stats {
    uint64_t admitted, answered, reissued, duplicates, failed, bad_messages;
    uint32_t epoch;              /* current committed plan */
    int live_workers;            /* registered devices, the source's own worker included (also
                                    one that failed to prepare a plan and is left out of them) */
    bool settled;                /* the committed plan was chosen knowing every live worker:
                                    none joined or left since, and no plan is being prepared
                                    (a neighbour to mix in included) */
    double last_recovery_s;      /* worker loss detected -> new plan committed */
    uint32_t mix_epoch;          /* plan mixing: the neighbouring plan mixed in now (0: none) */
    double mix_share;            /* ... and the share of new requests it takes */
    uint64_t mixed;              /* requests admitted to a mixed-in plan so far */
    uint64_t elastic_early, elastic_late; /* elastic hand-off: requests the source handed to
                                    stage 1 before, and after, the plan's cut */
    double correction[HS_MAX_DEVICES]; /* per device of the cluster file: its measured
                                    compute times over the cost model's (1: as profiled; the
                                    factor the plans are priced with, hs_cost_correction) */
    double outside_share;        /* share of recent requests that came over the network, not
                                    from a client in this process: the plan prices the source's
                                    io for their inputs and results (hs_problem.outside_bytes) */
} hs_coordinator_stats;
/* A snapshot as of the coordinator loop's last turn; safe from any thread while run() serves. */
void hs_coordinator_get_stats(hs_coordinator *c, hs_coordinator_stats *out);
/* Waits up to timeout_ms (-1: forever) until at least `workers` devices are registered and the
 * coordinator has settled on a plan chosen with them (stats.settled), or until run() returns.
 * Returns whether that state was reached; *out (if not NULL) gets the last snapshot. For an
 * application that must not start before its devices have joined. No thread may still be
 * waiting when hs_coordinator_free() is called. */
bool hs_coordinator_wait(hs_coordinator *c, int workers, int timeout_ms,
                         hs_coordinator_stats *out);

/* A client inside the coordinator's own process: for the application that embeds the source
 * (a camera process that runs the coordinator in a thread). Its requests reach the coordinator
 * over ZeroMQ inproc, so an input submitted with hs_client_submit_nocopy goes from the
 * caller's buffer to the source stage without a copy and without a socket's CPU cost, and its
 * answers come back the same way. Nothing leaves the process, so no CURVE on this path. Use it
 * as any client (from any one thread; it may be created before or while run() serves).
 * Because the coordinator computes on the caller's buffer itself, a zero-copy submit's release
 * runs only when the coordinator lets go of the request: once it is answered or has failed,
 * on a coordinator thread, possibly after hs_client_free() has returned and at the latest
 * inside hs_coordinator_free(); the buffer must stay valid and unchanged until then, and the
 * release function must be quick. Free every such client before the coordinator:
 * hs_coordinator_free() waits for them. */
hs_status hs_coordinator_client(hs_coordinator *c, hs_client **out, hs_error *err);

/* ---- worker -------------------------------------------------------------------------------- */

typedef struct hs_worker_opts {
    const char *name;            /* device name in the coordinator's cluster file */
    const char *coordinator;     /* e.g. "tcp://10.0.0.1:5555" */
    const char *listen;          /* data endpoint to bind (default: any port) */
    const char *advertise_host;  /* host others reach this one by (default 127.0.0.1) */
    const char *model_path;      /* the same model as the coordinator's (digest checked);
                                    NULL: fetched from the coordinator by hs_worker_new (needs
                                    max_message_mb >= 4; encrypted and allow-listed with CURVE) */
    const char *model_cache;     /* with no model_path: a directory where the fetched model is
                                    kept as <digest>.onnx (written whole, then renamed) and
                                    loaded from, so that the worker holds weights per range as
                                    with model_path; a file already there with the
                                    coordinator's digest is used without fetching. NULL: the
                                    fetched model stays in memory, every weight held */
    int threads;                 /* BLAS threads (default 1) */
    int spin_us;                 /* after running a stage, poll this long without sleeping
                                    before blocking (default 0): the next activation then
                                    finds the core awake, not halted (a VM's vCPU, a CPU in a
                                    deep idle state); costs CPU, and power, while it waits */
    bool hold_all_weights;       /* keep every weight; by default a worker with model_path
                                    holds those of the ranges its plans may run (loaded at
                                    PREPARE, before READY) and lets the others go once no plan
                                    has needed them for 5 s */
    hs_net_opts net;
    bool verbose;
} hs_worker_opts;

typedef struct hs_worker hs_worker;

/* Loads (or fetches) the model and connects to the coordinator. Caller owns *out. HS_ERR_IO
 * with "no answer from the coordinator at ..." when a fetch is not answered within 10 s. */
hs_status hs_worker_new(const hs_worker_opts *o, hs_worker **out, hs_error *err);
/* Registers (HELLO) and serves until hs_worker_stop(), a BYE from the coordinator, or a
 * refusal. HS_ERR_IO with "no answer from the coordinator at ..." when the HELLO is not
 * answered within 10 s. */
hs_status hs_worker_run(hs_worker *w, hs_error *err);
void hs_worker_stop(hs_worker *w);

typedef struct hs_worker_stats {
    uint64_t stages_run;    /* stage executions (one per request that passed through) */
    uint64_t bad_messages;  /* dropped: malformed, unknown epoch, wrong shapes, unsendable */
} hs_worker_stats;
void hs_worker_get_stats(const hs_worker *w, hs_worker_stats *out);
void hs_worker_free(hs_worker *w);

/* ---- client -------------------------------------------------------------------------------- */

hs_status hs_client_new(const char *coordinator, const hs_net_opts *net, hs_client **out,
                        hs_error *err);
void hs_client_free(hs_client *c);

/* Sends one request (the model's inputs in graph input order; data copied out before return).
 * *request_id identifies its answer. HS_ERR_IO if the coordinator does not take it within 3 s
 * (gone, or refusing this client's key). */
hs_status hs_client_submit(hs_client *c, const hs_tensor *inputs, int n_inputs,
                           uint64_t *request_id, hs_error *err);

/* As hs_client_submit, but the inputs' bytes go out from the caller's buffers without a copy
 * (a frame grabber's ring buffer, say): they must stay unchanged until release(hint) is called,
 * exactly once, also when the submit fails. It may run on any thread: a ZeroMQ thread, or the
 * caller's own inside this call or inside hs_client_free(), so it must not take a lock the
 * caller holds around those calls. */
typedef void (*hs_input_release_fn)(void *hint);
hs_status hs_client_submit_nocopy(hs_client *c, const hs_tensor *inputs, int n_inputs,
                                  hs_input_release_fn release, void *hint,
                                  uint64_t *request_id, hs_error *err);

/* One answer: the request's outputs (owned by the client until the next receive or free), or
 * status < 0 with a reason when the coordinator gave up on it. */
typedef struct hs_result {
    uint64_t request_id;
    hs_status status;
    char reason[256];
    int n_outputs;
    hs_tensor outputs[16];
} hs_result;

/* Waits up to timeout_ms (-1: forever) for the next answer. HS_ERR_IO with "timeout" when none
 * came. */
hs_status hs_client_receive(hs_client *c, int timeout_ms, hs_result *out, hs_error *err);

/* Callback style: calls fn for each answer that arrives within timeout_ms; returns how many
 * (or a negative status). */
typedef void (*hs_result_fn)(void *ctx, const hs_result *r);
int hs_client_poll(hs_client *c, int timeout_ms, hs_result_fn fn, void *ctx, hs_error *err);

/* CPU seconds this machine spends per byte of a tensor a worker sends on, or receives, over
 * loopback TCP (copy into a block, ZeroMQ's I/O threads, decoding), from 272 1 MiB sends
 * between two ZeroMQ contexts in this process: the profile's io cost (hs_profile_set_io_cost).
 * Takes about a second; threads and CPU time of the whole process are used, so run it alone. */
hs_status hs_transfer_cost(double *s_per_byte, hs_error *err);

/* Writes a CurveZMQ key pair to path ("public: Z85" and "secret: Z85" lines) and the public key
 * alone to path.pub, both mode 0600/0644. */
hs_status hs_keygen(const char *path, hs_error *err);

/* Model digest: what workers and coordinator compare to know they run the same file. */
hs_status hs_model_digest(const char *path, uint64_t *digest, hs_error *err);

#ifdef __cplusplus
}
#endif
#endif
