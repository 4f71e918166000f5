/* Small pieces the coordinator, worker and client share. */
#include <errno.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "runtime_impl.h"

double hs__now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

int64_t hs__max_message(const hs_net_opts *net)
{
    int mb = net->max_message_mb > 0 ? net->max_message_mb : HS_DEFAULT_MAX_MESSAGE_MB;
    return (int64_t)mb << 20;
}

hs_status hs__socket_opts(const hs_net_opts *net, bool server, hs_socket_opts *o,
                          char pub[41], char sec[41], char server_key[41], hs_error *err)
{
    memset(o, 0, sizeof *o);
    o->heartbeat_ivl_ms = net->heartbeat_ivl_ms > 0 ? net->heartbeat_ivl_ms
                                                    : HS_DEFAULT_HEARTBEAT_IVL_MS;
    o->heartbeat_timeout_ms = net->heartbeat_timeout_ms > 0 ? net->heartbeat_timeout_ms
                                                            : HS_DEFAULT_HEARTBEAT_TIMEOUT_MS;
    o->max_msg_size = hs__max_message(net);
    o->linger_ms = 0;
    if (!net->curve_keys)
        return HS_OK;
    hs_status st = hs_curve_load(net->curve_keys, pub, sec, err);
    if (st != HS_OK)
        return st;
    o->curve_public = pub;
    o->curve_secret = sec;
    if (server) {
        o->curve_server = true;
        return HS_OK;
    }
    if (!net->curve_server)
        return hs_error_set(err, HS_ERR_INVALID, "CURVE needs the coordinator's public key "
                                "file (--curve-server)");
    char unused[41];
    st = hs_curve_load(net->curve_server, server_key, unused, err);
    o->curve_server_key = server_key;
    return st;
}

void *hs__pusher(hs__pushers *p, const char *endpoint, hs_error *err)
{
    for (int i = 0; i < p->n; i++)
        if (strcmp(p->peers[i].endpoint, endpoint) == 0)
            return p->peers[i].socket;
    if (p->n == (int)(sizeof p->peers / sizeof p->peers[0])) {
        /* More peers than a cluster has devices: endpoints changed (workers rejoined on new
         * ports). Start over; sockets reconnect on demand. */
        hs__pushers_close(p);
    }
    hs_socket_opts o = {.max_msg_size = hs__max_message(p->net), .linger_ms = 0,
                        .sndhwm = HS_DATA_HWM};
    void *s = hs_socket_new(p->ctx, ZMQ_PUSH, &o, err);
    if (!s)
        return NULL;
    int one = 1;
    zmq_setsockopt(s, ZMQ_IMMEDIATE, &one, sizeof one);
    if (zmq_connect(s, endpoint) != 0) {
        hs_error_set(err, HS_ERR_IO, "cannot connect to %s: %s", endpoint,
                         zmq_strerror(zmq_errno()));
        zmq_close(s);
        return NULL;
    }
    snprintf(p->peers[p->n].endpoint, sizeof p->peers[p->n].endpoint, "%s", endpoint);
    p->peers[p->n++].socket = s;
    return s;
}

hs_status hs__send_data(void *socket, const hs_msg *m, hs_release_fn release, void *hint,
                        hs_error *err)
{
    zmq_pollitem_t item = {socket, 0, ZMQ_POLLOUT, 0};
    if (zmq_poll(&item, 1, HS_SEND_WAIT_MS) <= 0 || !(item.revents & ZMQ_POLLOUT)) {
        if (release)
            release(hint);
        return hs_error_set(err, HS_ERR_IO, "%s: the next hop is not reachable",
                                hs_msg_kind_name(m->kind));
    }
    return hs_msg_send(socket, NULL, m, release, hint, ZMQ_DONTWAIT, err);
}

void hs__pushers_close(hs__pushers *p)
{
    for (int i = 0; i < p->n; i++)
        zmq_close(p->peers[i].socket);
    p->n = 0;
}

void hs__bad_message(hs__badlog *log, const char *who, const char *source, const char *reason)
{
    log->count++;
    char key[96];
    snprintf(key, sizeof key, "%s|%.60s", source, reason);
    for (int i = 0; i < log->n_seen; i++)
        if (strcmp(log->seen[i], key) == 0)
            return;
    if (log->n_seen < (int)(sizeof log->seen / sizeof log->seen[0]))
        snprintf(log->seen[log->n_seen++], sizeof log->seen[0], "%s", key);
    fprintf(stderr, "%s: dropped a message from %s: %s (further ones like it are only "
            "counted)\n", who, source, reason);
}

void hs__advertise(const char *bound, const char *host, char *out, size_t size)
{
    /* ZMQ_LAST_ENDPOINT gives "tcp://0.0.0.0:PORT" (or [::]) for wildcard binds. */
    const char *port = strrchr(bound, ':');
    if (strncmp(bound, "tcp://", 6) == 0 && port &&
        (strncmp(bound + 6, "0.0.0.0:", 8) == 0 || strncmp(bound + 6, "*:", 2) == 0 ||
         strncmp(bound + 6, "[::]:", 5) == 0))
        snprintf(out, size, "tcp://%s%s", host, port);
    else
        snprintf(out, size, "%s", bound);
}

const char *hs__plan_endpoint(const hs_wire_plan *p, const char *device)
{
    for (int i = 0; i < p->n_endpoints; i++)
        if (strcmp(p->endpoints[i].device, device) == 0)
            return p->endpoints[i].endpoint;
    return NULL;
}

uint64_t hs__digest_update(uint64_t h, const void *data, size_t size)
{
    const unsigned char *p = data;
    for (size_t i = 0; i < size; i++)
        h = (h ^ p[i]) * 1099511628211ull;
    return h;
}

hs_status hs_model_digest(const char *path, uint64_t *digest, hs_error *err)
{
    FILE *f = fopen(path, "rb");
    if (!f)
        return hs_error_set(err, HS_ERR_IO, "%s: cannot open: %s", path, strerror(errno));
    uint64_t h = HS_DIGEST_SEED;
    unsigned char buf[1 << 16];
    size_t n;
    while ((n = fread(buf, 1, sizeof buf, f)) > 0)
        h = hs__digest_update(h, buf, n);
    bool failed = ferror(f);
    fclose(f);
    if (failed)
        return hs_error_set(err, HS_ERR_IO, "%s: read error", path);
    *digest = h;
    return HS_OK;
}

hs_status hs_keygen(const char *path, hs_error *err)
{
    hs_status st = hs_curve_keygen(path, err);
    char pub[41], sec[41], pub_path[4096];
    if (st == HS_OK)
        st = hs_curve_load(path, pub, sec, err);
    if (st != HS_OK)
        return st;
    snprintf(pub_path, sizeof pub_path, "%s.pub", path);
    FILE *f = fopen(pub_path, "w");
    if (!f)
        return hs_error_set(err, HS_ERR_IO, "%s: cannot create: %s", pub_path,
                                strerror(errno));
    bool ok = fprintf(f, "public: %s\n", pub) > 0;
    if (fclose(f) != 0 || !ok)
        return hs_error_set(err, HS_ERR_IO, "%s: write failed", pub_path);
    return HS_OK;
}
