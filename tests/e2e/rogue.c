/*
 * A rogue peer for the end-to-end tests: sends a running cluster malformed, truncated,
 * oversized, misaddressed and wrong-epoch messages, and a hand-off to a node no stage can
 * start at, on every socket it can reach.
 * Usage: rogue COORDINATOR_ENDPOINT WORKER_DATA_ENDPOINT SINK_ENDPOINT EPOCH OVERSIZE_BYTES
 * Prints how many messages it sent; the test checks that the cluster went on serving.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "transport.h"

static int sent;

static void raw(void *s, const void *data, size_t size, int more)
{
    if (zmq_send(s, data, size, more ? ZMQ_SNDMORE : 0) >= 0 && !more)
        sent++;
}

static void msg(void *s, hs_msg *m)
{
    hs_error err;
    if (hs_msg_send(s, NULL, m, NULL, NULL, 0, &err) == HS_OK)
        sent++;
}

/* A DATA message with one float tensor of the given shape. */
static void data_msg(hs_msg *m, uint32_t epoch, int cut, uint64_t rid, const int64_t *shape,
                     int ndim, float *buf)
{
    hs_msg_init(m, HS_MSG_DATA);
    m->epoch = epoch;
    m->cut = cut;
    m->request_id = rid;
    m->n_tensors = 1;
    snprintf(m->tensors[0].name, sizeof m->tensors[0].name, "input");
    m->tensors[0].t = (hs_tensor){.dtype = HS_F32, .ndim = ndim, .data = buf};
    memcpy(m->tensors[0].t.shape, shape, (size_t)ndim * sizeof *shape);
}

int main(int argc, char **argv)
{
    if (argc != 6) {
        fprintf(stderr, "usage: %s COORDINATOR WORKER_DATA SINK EPOCH OVERSIZE_BYTES\n", argv[0]);
        return 2;
    }
    uint32_t epoch = (uint32_t)strtoul(argv[4], NULL, 10);
    size_t oversize = strtoull(argv[5], NULL, 10);
    void *ctx = zmq_ctx_new();
    void *control = zmq_socket(ctx, ZMQ_DEALER);
    void *data = zmq_socket(ctx, ZMQ_PUSH);
    void *sink = zmq_socket(ctx, ZMQ_PUSH);
    int linger = 2000;
    zmq_setsockopt(control, ZMQ_ROUTING_ID, "rogue", 5);
    zmq_setsockopt(control, ZMQ_LINGER, &linger, sizeof linger);
    zmq_setsockopt(data, ZMQ_LINGER, &linger, sizeof linger);
    zmq_setsockopt(sink, ZMQ_LINGER, &linger, sizeof linger);
    if (zmq_connect(control, argv[1]) || zmq_connect(data, argv[2]) || zmq_connect(sink, argv[3])) {
        fprintf(stderr, "rogue: connect failed: %s\n", zmq_strerror(zmq_errno()));
        return 1;
    }
    zmq_sleep(1); /* let the connections come up */
    hs_msg *m = calloc(1, sizeof *m);
    float *buf = calloc(1 << 20, sizeof *buf);
    static const unsigned char truncated[] = {0x85, 0xa1, 'v', 0x01, 0xa1}; /* map cut short */

    for (int round = 0; round < 3; round++) {
        void *targets[] = {control, data, sink};
        for (int t = 0; t < 3; t++) {
            raw(targets[t], "garbage \xff\xfe", 10, 0);     /* not msgpack */
            raw(targets[t], truncated, sizeof truncated, 0); /* truncated header */
            raw(targets[t], "\x80", 1, 1);                   /* empty map + a stray frame */
            raw(targets[t], "\x01\x02\x03", 3, 0);
        }
        /* Well-formed messages that are wrong for their receiver. */
        int64_t shape[] = {1, 3, 224, 224}, wrong[] = {1, 5, 7};
        data_msg(m, 999999, 0, 42, shape, 4, buf); /* unknown epoch */
        msg(data, m);
        msg(sink, m);
        data_msg(m, epoch, 1, 43, wrong, 3, buf); /* known epoch, wrong shape */
        msg(data, m);
        msg(sink, m);
        data_msg(m, epoch, 1, 45, shape, 4, buf); /* an elastic start past the model's end */
        m->first = 1 << 30;
        msg(data, m);
        data_msg(m, epoch, 1, 44, shape, 4, buf); /* on the control socket */
        msg(control, m);
        hs_msg_init(m, HS_MSG_HELLO); /* a device that is not in the cluster */
        snprintf(m->name, sizeof m->name, "rogue");
        snprintf(m->endpoint, sizeof m->endpoint, "tcp://127.0.0.1:1");
        msg(control, m);
        hs_msg_init(m, HS_MSG_SUBMIT); /* an input of the wrong shape: answered with an error */
        m->request_id = 7;
        m->n_tensors = 1;
        snprintf(m->tensors[0].name, sizeof m->tensors[0].name, "x");
        m->tensors[0].t = (hs_tensor){.dtype = HS_F32, .ndim = 3, .shape = {1, 5, 7}, .data = buf};
        msg(control, m);
        hs_msg_init(m, HS_MSG_READY); /* from nobody the coordinator knows */
        m->epoch = epoch + 1;
        msg(control, m);
    }
    /* An oversized message: ZeroMQ drops it at the receiver (ZMQ_MAXMSGSIZE) and closes this
     * connection; the receiver carries on. */
    if (oversize) {
        char *big = calloc(1, oversize);
        raw(data, big, oversize, 0);
        free(big);
    }
    /* Is the control connection answered? The SUBMIT above gets a REPLY with an error. */
    int answered = 0;
    zmq_pollitem_t item = {control, 0, ZMQ_POLLIN, 0};
    while (zmq_poll(&item, 1, 1000) > 0) {
        hs_error err;
        if (hs_msg_recv(control, NULL, 0, m, ZMQ_DONTWAIT, &err) == HS_OK) {
            if (m->kind == HS_MSG_REPLY && m->status < 0)
                answered++;
            hs_msg_close(m);
        }
    }
    printf("rogue: sent %d bad messages; %d error replies\n", sent, answered);
    zmq_close(control);
    zmq_close(data);
    zmq_close(sink);
    zmq_ctx_term(ctx);
    free(m);
    free(buf);
    return answered > 0 ? 0 : 1;
}
