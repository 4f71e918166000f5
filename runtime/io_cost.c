/*
 * What moving a tensor costs a device's CPU: hs_transfer_cost() sends tensors from one ZeroMQ
 * context to another over loopback TCP the way a worker hands a cut on (the stage's outputs
 * copied into one block, sent without a further copy, received without a copy and decoded),
 * and divides the CPU time of the whole process, ZeroMQ's I/O threads included, by the bytes
 * moved. Each byte is sent once and received once, so each side is charged half: the figure
 * is per byte sent or per byte received, what the cost model adds to a stage's time.
 */
#define _GNU_SOURCE
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <zmq.h>

#include "runtime_impl.h"

#define TENSOR_FLOATS (256 * 1024) /* 1 MiB: well above the per-message costs */
#define WARMUP_SENDS 16
#define TIMED_SENDS 256

static double cpu_seconds(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

typedef struct receiver {
    void *socket;
    int count;
    hs_status status;
    hs_error err;
} receiver;

static void *receive_all(void *arg)
{
    receiver *r = arg;
    hs_msg *m = calloc(1, sizeof *m);
    if (!m) {
        r->status = hs_error_set(&r->err, HS_ERR_NOMEM, "transfer cost: out of memory");
        return NULL;
    }
    for (int i = 0; i < r->count && r->status == HS_OK; i++) {
        r->status = hs_msg_recv(r->socket, NULL, 0, m, 0, &r->err);
        if (r->status == HS_OK && (m->n_tensors != 1 ||
                                   hs_tensor_numel(&m->tensors[0].t) != TENSOR_FLOATS))
            r->status = hs_error_set(&r->err, HS_ERR_IO, "transfer cost: a tensor came back "
                                     "changed");
        hs_msg_close(m);
    }
    free(m);
    return NULL;
}

static void free_block(void *block) { free(block); }

/* Sends `count` copies of src as DATA messages, each copied into its own block first. */
static hs_status send_copies(void *socket, const float *src, int count, hs_msg *m,
                             hs_error *err)
{
    for (int i = 0; i < count; i++) {
        float *block = aligned_alloc(64, TENSOR_FLOATS * sizeof *block);
        if (!block)
            return hs_error_set(err, HS_ERR_NOMEM, "transfer cost: out of memory");
        memcpy(block, src, TENSOR_FLOATS * sizeof *block);
        hs_msg_init(m, HS_MSG_DATA);
        m->request_id = (uint64_t)i + 1;
        m->epoch = 1;
        m->cut = 1;
        m->n_tensors = 1;
        snprintf(m->tensors[0].name, sizeof m->tensors[0].name, "cut");
        m->tensors[0].t = (hs_tensor){.dtype = HS_F32, .ndim = 2,
                                      .shape = {1, TENSOR_FLOATS}, .data = block};
        hs_status st = hs_msg_send(socket, NULL, m, free_block, block, 0, err);
        if (st != HS_OK)
            return st;
    }
    return HS_OK;
}

hs_status hs_transfer_cost(double *s_per_byte, hs_error *err)
{
    *s_per_byte = 0;
    void *ctx[2] = {zmq_ctx_new(), zmq_ctx_new()};
    void *push = NULL, *pull = NULL;
    float *src = calloc(TENSOR_FLOATS, sizeof *src);
    hs_msg *m = calloc(1, sizeof *m);
    hs_status st = HS_OK;
    char endpoint[256];
    size_t len = sizeof endpoint;
    hs_socket_opts so = {.max_msg_size = -1, .linger_ms = 0, .rcvhwm = HS_DATA_HWM};
    if (!ctx[0] || !ctx[1] || !src || !m)
        st = hs_error_set(err, HS_ERR_NOMEM, "transfer cost: out of memory");
    else if (!(pull = hs_socket_new(ctx[1], ZMQ_PULL, &so, err)) ||
             !(push = hs_socket_new(ctx[0], ZMQ_PUSH, &so, err)))
        st = HS_ERR_IO;
    else if (zmq_bind(pull, "tcp://127.0.0.1:*") != 0 ||
             zmq_getsockopt(pull, ZMQ_LAST_ENDPOINT, endpoint, &len) != 0 ||
             zmq_connect(push, endpoint) != 0)
        st = hs_error_set(err, HS_ERR_IO, "transfer cost: loopback socket: %s",
                          zmq_strerror(zmq_errno()));
    for (int i = 0; src && i < TENSOR_FLOATS; i++)
        src[i] = (float)i;
    receiver r = {.socket = pull, .count = WARMUP_SENDS + TIMED_SENDS};
    pthread_t thread;
    bool started = st == HS_OK && pthread_create(&thread, NULL, receive_all, &r) == 0;
    if (st == HS_OK && !started)
        st = hs_error_set(err, HS_ERR_IO, "transfer cost: cannot start a thread");
    double cpu0 = 0;
    if (st == HS_OK)
        st = send_copies(push, src, WARMUP_SENDS, m, err);
    if (st == HS_OK) {
        cpu0 = cpu_seconds(); /* the warm-up's tail overlaps; 16 of 272 sends at most */
        st = send_copies(push, src, TIMED_SENDS, m, err);
    }
    if (started) {
        if (st != HS_OK) /* unblock the receiver: closing its context ends its recv */
            zmq_ctx_shutdown(ctx[1]);
        pthread_join(thread, NULL);
        if (st == HS_OK && r.status != HS_OK) {
            st = r.status;
            *err = r.err;
        }
    }
    double cpu = cpu_seconds() - cpu0;
    if (st == HS_OK)
        *s_per_byte = cpu / (2.0 * TIMED_SENDS * TENSOR_FLOATS * sizeof(float));
    if (push)
        zmq_close(push);
    if (pull)
        zmq_close(pull);
    for (int i = 0; i < 2; i++)
        if (ctx[i])
            zmq_ctx_term(ctx[i]);
    free(src);
    free(m);
    return st;
}
