/*
 * Internals shared by the coordinator, the worker and the client. Not installed.
 */
#ifndef HOTSPLIT_RUNTIME_IMPL_H
#define HOTSPLIT_RUNTIME_IMPL_H

#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>

#include "hotsplit/runtime.h"
#include "transport.h"

#define HS_DEFAULT_HEARTBEAT_IVL_MS 100
#define HS_DEFAULT_HEARTBEAT_TIMEOUT_MS 1000
#define HS_DATA_HWM 256          /* messages queued per data socket before sends fail */
#define HS_DEFAULT_MAX_MESSAGE_MB 1024 /* ZMQ_MAXMSGSIZE: no tensor of a CNN is near it */

/* The ZMQ_MAXMSGSIZE the network options ask for, in bytes. */
int64_t hs__max_message(const hs_net_opts *net);

/* Seconds on a monotonic clock. */
double hs__now(void);

/* The model digest (hs_model_digest) is FNV-1a 64 over the file's bytes: start from
 * HS_DIGEST_SEED and feed the bytes in order, in as many pieces as convenient. */
#define HS_DIGEST_SEED 1469598103934665603ull
uint64_t hs__digest_update(uint64_t h, const void *data, size_t size);

/* How long a worker waits for the coordinator to answer a HELLO or a MODEL_REQUEST before it
 * gives up: a coordinator that is not there must not leave it waiting for ever. */
#define HS_ANSWER_TIMEOUT_S 10

/* Data-plane PUSH sockets, one per peer endpoint, connected on first use. ZMQ_IMMEDIATE is on:
 * a message for a peer that is not connected fails at once instead of queueing for a peer that
 * may be gone (the coordinator re-issues what is lost). */
typedef struct hs__pushers {
    void *ctx;
    const hs_net_opts *net;
    int n;
    struct {
        char endpoint[HS_WIRE_ENDPOINT_MAX];
        void *socket;
    } peers[2 * HS_MAX_DEVICES + 2];
} hs__pushers;

void *hs__pusher(hs__pushers *p, const char *endpoint, hs_error *err);
/* Sends a data message without blocking for long: if the peer is not ready (still connecting,
 * or its queue is full) waits up to HS_SEND_WAIT_MS for it, then gives up (HS_ERR_IO). */
#define HS_SEND_WAIT_MS 500
hs_status hs__send_data(void *socket, const hs_msg *m, hs_release_fn release, void *hint,
                        hs_error *err);
void hs__pushers_close(hs__pushers *p);

/* Socket options for the runtime's sockets from its network options. */
hs_status hs__socket_opts(const hs_net_opts *net, bool server, hs_socket_opts *o,
                          char pub[41], char sec[41], char server_key[41], hs_error *err);

/* Logs a rejected message: the first time for each (source, reason kind) pair on stderr, then
 * only counts. */
typedef struct hs__badlog {
    uint64_t count;
    int n_seen;
    char seen[32][96];
} hs__badlog;
void hs__bad_message(hs__badlog *log, const char *who, const char *source, const char *reason);

/* A wildcard bind ("tcp://0.0.0.0:5555") -> "tcp://HOST:5555", the endpoint others connect to. */
void hs__advertise(const char *bound, const char *host, char *out, size_t size);

/* The endpoint a plan names for a device, or NULL. */
const char *hs__plan_endpoint(const hs_wire_plan *p, const char *device);

/* Elastic hand-off (hs_coordinator_opts.elastic). In a 2-stage plan the source device's
 * worker, which runs in the coordinator's process, need not hand each request over at the
 * plan's cut. It runs the request to the first point of a window of cheap cuts (at most twice
 * the plan's cut's bytes) around the plan's cut, by the model's FLOPs, and on from point to
 * point: before the plan's cut it hands over only to an idle stage 1, from the plan's cut on
 * when stage 1 has nothing waiting, and at the window's end at the latest. Stage 1 runs from
 * wherever the request arrives (DATA's `first`). Each request is thus split where it balances
 * the two devices at that moment: a core that is slower for a second or two (a VM's
 * neighbours) no longer idles the other one.
 *
 * Stage 1's backlog is counted by the coordinator, which sees the results: the source writes
 * each hand-off's request id into `ring` (it alone writes; `handed` counts them), and the
 * coordinator, on every turn of its loop, marks those requests as at stage 1 until they are
 * answered, re-issued or given up, and publishes how many are, with how many hand-offs it had
 * read then (`published`: read << 16 | at stage 1). The source adds the hand-offs since.
 * The requests waiting at the source are counted the same way: the coordinator counts those
 * it sent to the source (`sent`), the source those it took off its data socket (`taken`). */
#define HS_ELASTIC_RING 1024
typedef struct hs__elastic {
    double window;                      /* the share of the model's FLOPs either side */
    _Atomic uint64_t ring[HS_ELASTIC_RING];
    _Atomic uint64_t handed;
    _Atomic uint64_t published;
    _Atomic uint64_t sent, taken;       /* requests sent to the source, and taken by it */
    _Atomic uint64_t early, late;       /* hand-offs before and after the plan's cut */
} hs__elastic;

/* The source's rule, at a cut of its window: hand the request over here? Before the plan's
 * cut, to an idle stage 1, or to one holding a single request while others wait at the source;
 * from the plan's cut on, when stage 1 has nothing waiting or others wait at the source. */
bool hs__elastic_hand_over(bool before_cut, uint64_t at_stage1, uint64_t waiting_here);

/* Worker internals the coordinator uses to run the source device's worker in a thread,
 * sharing its ZeroMQ context (inproc endpoints) and its loaded graph; `elastic` (owned by
 * the coordinator, NULL: off) makes it hand off elastically. Unless o->hold_all_weights, the
 * worker holds g's weights per range (g loaded by hs_graph_load_onnx; no other thread may
 * read its constants). Results for the plans' sink go to `local_sink` instead, the
 * coordinator's sink socket as bound over inproc: no TCP hop inside one process. */
hs_status hs__worker_new_embedded(const hs_worker_opts *o, void *ctx, hs_graph *g,
                                  uint64_t digest, hs__elastic *elastic,
                                  const char *local_sink, hs_worker **out, hs_error *err);
const char *hs__worker_endpoint(const hs_worker *w);

/* A client on the coordinator's context, connected to its inproc endpoint
 * (hs_coordinator_client). */
hs_status hs__client_new_inproc(void *ctx, const char *endpoint, hs_client **out,
                                hs_error *err);

#endif
