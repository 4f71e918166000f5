/*
 * hotsplit's wire protocol over ZeroMQ (docs/PROTOCOL.md describes it byte by byte).
 *
 * Every message is one ZeroMQ multipart message: frame 0 is a msgpack header, frames 1..n are
 * the raw bytes of its tensors (little-endian, row-major), one frame per tensor, or, for
 * MODEL_CHUNK, one frame of model file bytes. These frames are sent without copying
 * (zmq_msg_init_data with a release callback) and received without copying (a decoded tensor's
 * data points into its frame, which the message owns until hs_msg_close). On ROUTER sockets an
 * identity frame precedes frame 0.
 *
 * Decoding validates everything a peer controls before anything is used: the protocol version,
 * the message kind, every field's msgpack type and range, string lengths, tensor counts, ranks,
 * dimensions, dtypes, and that each tensor frame holds exactly the bytes its shape says. A
 * message that fails is reported with a one-line reason (HS_ERR_PARSE) and its frames are
 * released; the caller counts it and goes on. Model-level checks (shapes against the model,
 * known epochs) belong to the runtime.
 *
 * Thread safety: ZeroMQ sockets are used by one thread at a time; hs_msg values are plain data.
 */
#ifndef HOTSPLIT_TRANSPORT_H
#define HOTSPLIT_TRANSPORT_H

#include <stdint.h>
#include <zmq.h>

#include "hotsplit/core.h"
#include "hotsplit/solver.h"

#define HS_PROTOCOL_VERSION 2
#define HS_WIRE_MAX_TENSORS 64
#define HS_WIRE_NAME_MAX 128
#define HS_WIRE_ENDPOINT_MAX 256
#define HS_WIRE_REASON_MAX 256
#define HS_WIRE_CHUNK_MAX (4u << 20)     /* bytes of model file in one MODEL_CHUNK */
#define HS_WIRE_MODEL_MAX (1ull << 32)   /* largest model file a worker can fetch (4 GiB) */

typedef enum hs_msg_kind {
    HS_MSG_HELLO = 0,  /* worker -> coordinator: I am `name`, my data endpoint, my model digest */
    HS_MSG_WELCOME,    /* coordinator -> worker: accepted (status 0) or refused (status, reason) */
    HS_MSG_PREPARE,    /* coordinator -> worker: get ready to run plan `plan` (its epoch) */
    HS_MSG_READY,      /* worker -> coordinator: epoch prepared (status 0) or not (reason) */
    HS_MSG_COMMIT,     /* coordinator -> worker: epoch is live; epochs below retire_below are
                          finished and may be freed */
    HS_MSG_TELEMETRY,  /* worker -> coordinator: measured stage times (epoch, stage, count,
                          seconds), of nodes [first, last) when last > 0 (an elastic
                          hand-off ran another range than the stage's) */
    HS_MSG_DATA,       /* data plane: the cut tensors of request_id under epoch, for stage `cut`
                          (the last stage's outputs go to the sink with cut = n_stages),
                          which starts at node `first` (0: at the plan's first node) */
    HS_MSG_SUBMIT,     /* client -> coordinator: run the model on these inputs (request_id is
                          the client's tag, echoed in the reply) */
    HS_MSG_REPLY,      /* coordinator -> client: the outputs for request_id, or status/reason */
    HS_MSG_BYE,        /* either way: the sender is leaving */
    HS_MSG_MODEL_REQUEST, /* worker -> coordinator, before HELLO: send me the model file's
                             bytes from `offset` */
    HS_MSG_MODEL_CHUNK,   /* coordinator -> worker: `size` bytes of the `total`-byte model file
                             from `offset` in one raw frame, and the whole file's digest */
    HS_MSG_COUNT
} hs_msg_kind;

/* Static name of a message kind ("DATA"); "?" if out of range. */
const char *hs_msg_kind_name(hs_msg_kind kind);

typedef struct hs_wire_tensor {
    char name[HS_WIRE_NAME_MAX];
    hs_tensor t; /* received: data points into the message's frame */
} hs_wire_tensor;

typedef struct hs_wire_stage {
    char device[HS_NAME_MAX];
    int32_t first, last;
} hs_wire_stage;

typedef struct hs_wire_endpoint {
    char device[HS_NAME_MAX];
    char endpoint[HS_WIRE_ENDPOINT_MAX];
} hs_wire_endpoint;

/* A plan as the coordinator publishes it: stages, and where each device listens for data. */
typedef struct hs_wire_plan {
    uint32_t epoch;
    int n_stages;
    hs_wire_stage stages[HS_MAX_DEVICES];
    int n_endpoints;
    hs_wire_endpoint endpoints[HS_MAX_DEVICES];
    char sink_endpoint[HS_WIRE_ENDPOINT_MAX]; /* where the last stage sends the outputs */
    /* The source's elastic window (--elastic: a share of the model's FLOPs, 0 to 0.5; 0: no
     * elastic hand-off), so that stage 1 knows where a request may be handed to it. Optional
     * on the wire: < 0 (HS_WIRE_WINDOW_UNSENT) when a plan did not carry it. */
    double window;
} hs_wire_plan;

#define HS_WIRE_WINDOW_UNSENT (-1.0)
#define HS_WIRE_WINDOW_MAX 0.5

typedef struct hs_msg {
    hs_msg_kind kind;
    /* HELLO */
    char name[HS_NAME_MAX];
    char endpoint[HS_WIRE_ENDPOINT_MAX];
    uint64_t model_digest;
    /* WELCOME, READY, REPLY: 0 = ok, else a negative hs_status with a reason */
    int32_t status;
    char reason[HS_WIRE_REASON_MAX];
    /* PREPARE */
    hs_wire_plan plan;
    /* READY, COMMIT, TELEMETRY, DATA */
    uint32_t epoch;
    uint32_t retire_below; /* COMMIT */
    /* DATA, SUBMIT, REPLY */
    uint64_t request_id;
    int32_t cut;
    int32_t first;  /* DATA, optional: the node stage `cut` starts at when the sender handed
                       off elsewhere than the plan's cut (elastic hand-off); 0: the plan's */
    int n_tensors;
    hs_wire_tensor tensors[HS_WIRE_MAX_TENSORS];
    /* TELEMETRY (and `first`) */
    int32_t last;   /* > 0: the runs measured covered nodes [first, last); 0: the stage's */
    int32_t stage;
    uint32_t count;
    double seconds; /* sum of `count` measured stage times */
    /* MODEL_REQUEST, MODEL_CHUNK (which also carries model_digest) */
    uint64_t offset;        /* where the chunk starts in the model file */
    uint64_t total;         /* MODEL_CHUNK: the model file's size */
    const void *chunk;      /* MODEL_CHUNK: chunk_size bytes; received: they point into frame 1 */
    uint32_t chunk_size;    /* 0..HS_WIRE_CHUNK_MAX */
    /* Received frames, owned by the message (released by hs_msg_close). */
    zmq_msg_t frames[HS_WIRE_MAX_TENSORS + 1];
    int n_frames;
} hs_msg;

/* Zeroes a message and sets its kind (for building one to send). */
void hs_msg_init(hs_msg *m, hs_msg_kind kind);
/* Releases the frames a received message owns; the message may be reused. */
void hs_msg_close(hs_msg *m);

/* Called once, from a ZeroMQ I/O thread, when every tensor frame of a sent message has been
 * released by ZeroMQ: the sender's buffers may then be freed or reused. */
typedef void (*hs_release_fn)(void *hint);

/* Sends m on socket: [peer identity frame, when peer is non-NULL (ROUTER)], the header, then
 * one frame per tensor pointing at tensors[i].t.data (MODEL_CHUNK: one frame pointing at chunk)
 * without copying. `release(hint)` is called once all those frames are released (at once if
 * there are none); with release NULL, the bytes are copied instead. flags: 0 or ZMQ_DONTWAIT.
 * HS_ERR_IO with errno's reason when ZeroMQ refuses (e.g. EAGAIN with ZMQ_DONTWAIT); release
 * is then still called. */
hs_status hs_msg_send(void *socket, const char *peer, const hs_msg *m, hs_release_fn release,
                      void *hint, int flags, hs_error *err);

/* Receives one whole multipart message into m (which must not own frames: hs_msg_close it
 * first). With peer non-NULL (ROUTER), the first frame is the sender's identity, copied into
 * peer (NUL-terminated, at most peer_size - 1 bytes). Decodes and validates it. HS_ERR_IO on
 * a ZeroMQ error (errno EAGAIN with ZMQ_DONTWAIT, ETERM, EINTR), HS_ERR_PARSE with a reason on
 * a bad message (all of whose frames are already consumed and released). */
hs_status hs_msg_recv(void *socket, char *peer, size_t peer_size, hs_msg *m, int flags,
                      hs_error *err);

/* Decodes a message from raw frames: frames[0] is the header, the rest tensor frames. Takes
 * ownership of the frames (moves them into m, or closes them on failure). Exposed for the fuzz
 * harness and tests. */
hs_status hs_msg_decode(hs_msg *m, zmq_msg_t *frames, int n_frames, hs_error *err);
/* Encodes m's header (frame 0) into a malloc'd buffer; caller frees *out. */
hs_status hs_msg_encode_header(const hs_msg *m, void **out, size_t *size, hs_error *err);

/* ---- sockets ------------------------------------------------------------------------------- */

typedef struct hs_socket_opts {
    int heartbeat_ivl_ms;     /* ZMQ_HEARTBEAT_IVL (0: off) */
    int heartbeat_timeout_ms; /* ZMQ_HEARTBEAT_TIMEOUT */
    int64_t max_msg_size;     /* ZMQ_MAXMSGSIZE (-1: unlimited) */
    int linger_ms;            /* ZMQ_LINGER */
    int sndhwm, rcvhwm;       /* 0: ZeroMQ's default */
    const char *identity;     /* ZMQ_ROUTING_ID for DEALER sockets, or NULL */
    /* CurveZMQ: a server socket sets curve_server and its secret key; a client sets its own
     * key pair and the server's public key. Keys are Z85 text (40 chars). NULL: no CURVE. */
    bool curve_server;
    const char *curve_public, *curve_secret, *curve_server_key;
} hs_socket_opts;

/* Creates a socket of `type` with the options applied. NULL on failure (err says why). */
void *hs_socket_new(void *ctx, int type, const hs_socket_opts *o, hs_error *err);

/* Reads a CurveZMQ key pair file written by hs_curve_keygen ("public: Z85\nsecret: Z85\n"),
 * or a public-key-only file ("public: Z85\n"; secret then ""). */
hs_status hs_curve_load(const char *path, char public_key[41], char secret_key[41],
                        hs_error *err);
hs_status hs_curve_keygen(const char *path, hs_error *err);

/* A ZAP handler thread that accepts CURVE clients whose public key is in the allow-list file
 * (one Z85 key per line, # comments) and refuses the rest. One per context; stopped and freed
 * by hs_zap_stop (NULL-safe). */
typedef struct hs_zap hs_zap;
hs_status hs_zap_start(void *ctx, const char *allowlist_path, hs_zap **out, hs_error *err);
void hs_zap_stop(hs_zap *z);
/* Clients refused so far (for tests and logs). */
int hs_zap_refused(const hs_zap *z);

/* Socket monitor: returns a PAIR socket that receives `events` (ZMQ_EVENT_* mask) of `socket`;
 * read them with hs_monitor_read. */
void *hs_monitor_open(void *ctx, void *socket, int events, hs_error *err);
/* Reads one event: its ZMQ_EVENT_* code and the peer address (NUL-terminated). flags: 0 or
 * ZMQ_DONTWAIT. Returns HS_ERR_IO when nothing is there (EAGAIN) or on error. */
hs_status hs_monitor_read(void *monitor, int *event, char *address, size_t size, int flags);

#endif
