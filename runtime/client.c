/*
 * A client of a coordinator: what a camera process in a vehicle stack links to submit frames
 * and receive answers. A DEALER socket with a unique routing id; requests are tagged with a
 * client-side id the coordinator echoes in its REPLY.
 */
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "runtime_impl.h"

struct hs_client {
    void *ctx, *socket;
    bool owns_ctx;       /* false: the coordinator's context (hs_coordinator_client) */
    uint64_t next_id;
    hs_msg *in, *out;
};

/* A client on ctx (created here when NULL) connected to endpoint. */
static hs_status client_open(void *ctx, const char *endpoint, const hs_net_opts *net,
                             hs_client **out, hs_error *err)
{
    *out = NULL;
    hs_client *c = calloc(1, sizeof *c);
    hs_net_opts none = {0};
    if (!c)
        return hs_error_set(err, HS_ERR_NOMEM, "out of memory");
    c->in = calloc(1, sizeof *c->in);
    c->out = calloc(1, sizeof *c->out);
    c->owns_ctx = !ctx;
    c->ctx = ctx ? ctx : zmq_ctx_new();
    hs_status st = c->in && c->out && c->ctx
                       ? HS_OK : hs_error_set(err, HS_ERR_NOMEM, "out of memory");
    hs_socket_opts so;
    char pub[41], sec[41], server[41], id[64];
    if (st == HS_OK)
        st = hs__socket_opts(net ? net : &none, false, &so, pub, sec, server, err);
    if (st == HS_OK) {
        static unsigned counter;
        snprintf(id, sizeof id, "client-%d-%u-%p", (int)getpid(),
                 __atomic_fetch_add(&counter, 1, __ATOMIC_RELAXED), (void *)c);
        so.identity = id;
        c->socket = hs_socket_new(c->ctx, ZMQ_DEALER, &so, err);
        if (!c->socket)
            st = HS_ERR_IO;
    }
    if (st == HS_OK) {
        /* A coordinator that is gone, or refuses this client's CURVE key, must not block a
         * submit forever: it fails after this long. */
        int timeout_ms = 3000;
        zmq_setsockopt(c->socket, ZMQ_SNDTIMEO, &timeout_ms, sizeof timeout_ms);
    }
    if (st == HS_OK && zmq_connect(c->socket, endpoint) != 0)
        st = hs_error_set(err, HS_ERR_IO, "cannot connect to %s: %s", endpoint,
                              zmq_strerror(zmq_errno()));
    if (st != HS_OK) {
        hs_client_free(c);
        return st;
    }
    *out = c;
    return HS_OK;
}

hs_status hs_client_new(const char *coordinator, const hs_net_opts *net, hs_client **out,
                        hs_error *err)
{
    return client_open(NULL, coordinator, net, out, err);
}

hs_status hs__client_new_inproc(void *ctx, const char *endpoint, hs_client **out,
                                hs_error *err)
{
    return client_open(ctx, endpoint, NULL, out, err);
}

void hs_client_free(hs_client *c)
{
    if (!c)
        return;
    if (c->in)
        hs_msg_close(c->in);
    if (c->socket)
        zmq_close(c->socket);
    if (c->ctx && c->owns_ctx)
        zmq_ctx_term(c->ctx);
    free(c->in);
    free(c->out);
    free(c);
}

/* release NULL: the transport copies the inputs, so the caller may reuse them at once. */
static hs_status submit(hs_client *c, const hs_tensor *inputs, int n_inputs,
                        hs_input_release_fn release, void *hint, uint64_t *request_id,
                        hs_error *err)
{
    if (n_inputs < 0 || n_inputs > HS_WIRE_MAX_TENSORS) {
        if (release)
            release(hint);
        return hs_error_set(err, HS_ERR_INVALID, "%d inputs (at most %d)", n_inputs,
                            HS_WIRE_MAX_TENSORS);
    }
    hs_msg *m = c->out;
    hs_msg_init(m, HS_MSG_SUBMIT);
    m->request_id = ++c->next_id;
    m->n_tensors = n_inputs;
    for (int i = 0; i < n_inputs; i++) {
        snprintf(m->tensors[i].name, sizeof m->tensors[i].name, "input%d", i);
        m->tensors[i].t = inputs[i];
    }
    hs_status st = hs_msg_send(c->socket, NULL, m, release, hint, 0, err);
    if (st == HS_OK && request_id)
        *request_id = m->request_id;
    return st;
}

hs_status hs_client_submit(hs_client *c, const hs_tensor *inputs, int n_inputs,
                           uint64_t *request_id, hs_error *err)
{
    return submit(c, inputs, n_inputs, NULL, NULL, request_id, err);
}

hs_status hs_client_submit_nocopy(hs_client *c, const hs_tensor *inputs, int n_inputs,
                                  hs_input_release_fn release, void *hint,
                                  uint64_t *request_id, hs_error *err)
{
    if (!release)
        return hs_error_set(err, HS_ERR_INVALID, "hs_client_submit_nocopy needs a release "
                            "function");
    return submit(c, inputs, n_inputs, release, hint, request_id, err);
}

hs_status hs_client_receive(hs_client *c, int timeout_ms, hs_result *out, hs_error *err)
{
    hs_msg_close(c->in); /* the previous answer's outputs are released here */
    zmq_pollitem_t item = {c->socket, 0, ZMQ_POLLIN, 0};
    for (;;) {
        int rc = zmq_poll(&item, 1, timeout_ms);
        if (rc < 0)
            return hs_error_set(err, HS_ERR_IO, "poll: %s", zmq_strerror(zmq_errno()));
        if (rc == 0)
            return hs_error_set(err, HS_ERR_IO, "timeout");
        hs_status st = hs_msg_recv(c->socket, NULL, 0, c->in, ZMQ_DONTWAIT, err);
        if (st == HS_ERR_IO && zmq_errno() == EAGAIN)
            continue;
        if (st != HS_OK)
            return st;
        if (c->in->kind != HS_MSG_REPLY) {
            hs_msg_close(c->in);
            continue; /* nothing else is addressed to a client */
        }
        memset(out, 0, sizeof *out);
        out->request_id = c->in->request_id;
        out->status = (hs_status)c->in->status;
        snprintf(out->reason, sizeof out->reason, "%s", c->in->reason);
        int n = c->in->n_tensors;
        out->n_outputs = n < 16 ? n : 16;
        for (int i = 0; i < out->n_outputs; i++)
            out->outputs[i] = c->in->tensors[i].t;
        return HS_OK;
    }
}

int hs_client_poll(hs_client *c, int timeout_ms, hs_result_fn fn, void *ctx, hs_error *err)
{
    int count = 0;
    double deadline = hs__now() + timeout_ms / 1e3;
    for (;;) {
        int left = timeout_ms < 0 ? -1 : (int)((deadline - hs__now()) * 1e3);
        if (timeout_ms >= 0 && left < 0)
            left = 0;
        hs_result r;
        hs_error local = {0};
        hs_status st = hs_client_receive(c, count ? 0 : left, &r, &local);
        if (st == HS_ERR_IO && strcmp(local.msg, "timeout") == 0)
            return count;
        if (st != HS_OK) {
            if (err)
                *err = local;
            return st;
        }
        fn(ctx, &r);
        count++;
    }
}
