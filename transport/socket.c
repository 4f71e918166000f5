/*
 * Creating sockets with hotsplit's options: ZMTP heartbeats (so a dead peer is noticed without
 * traffic), a message size limit (so a peer cannot make us allocate what it likes), linger,
 * high-water marks, the routing id, and CurveZMQ keys.
 */
#include <errno.h>
#include <string.h>

#include "transport_impl.h"

/* A Z85 key as ZeroMQ takes it: 40 characters that decode to 32 bytes. */
static bool z85_key_ok(const char *key)
{
    uint8_t raw[32];
    return key && strlen(key) == 40 && zmq_z85_decode(raw, key) != NULL;
}

static hs_status set(void *s, int opt, const void *val, size_t len, const char *name,
                     hs_error *err)
{
    if (zmq_setsockopt(s, opt, val, len) == 0)
        return HS_OK;
    return hs__terr(err, HS_ERR_INVALID, "socket option %s: %s", name, zmq_strerror(errno));
}

static hs_status set_int(void *s, int opt, int val, const char *name, hs_error *err)
{
    return set(s, opt, &val, sizeof val, name, err);
}

static hs_status apply(void *s, const hs_socket_opts *o, hs_error *err)
{
    hs_status st;
    if (o->heartbeat_ivl_ms > 0) {
        int timeout = o->heartbeat_timeout_ms > 0 ? o->heartbeat_timeout_ms
                                                  : 3 * o->heartbeat_ivl_ms;
        /* TTL tells the peer to drop us after this long without traffic: deciseconds on the
         * wire, at most 6553.5 s. */
        int ttl = timeout < 6553500 ? (timeout + 99) / 100 * 100 : 6553500;
        if ((st = set_int(s, ZMQ_HEARTBEAT_IVL, o->heartbeat_ivl_ms, "HEARTBEAT_IVL", err)) ||
            (st = set_int(s, ZMQ_HEARTBEAT_TIMEOUT, timeout, "HEARTBEAT_TIMEOUT", err)) ||
            (st = set_int(s, ZMQ_HEARTBEAT_TTL, ttl, "HEARTBEAT_TTL", err)))
            return st;
    }
    int64_t max = o->max_msg_size > 0 ? o->max_msg_size : -1;
    if ((st = set(s, ZMQ_MAXMSGSIZE, &max, sizeof max, "MAXMSGSIZE", err)) ||
        (st = set_int(s, ZMQ_LINGER, o->linger_ms, "LINGER", err)))
        return st;
    if (o->sndhwm > 0 && (st = set_int(s, ZMQ_SNDHWM, o->sndhwm, "SNDHWM", err)))
        return st;
    if (o->rcvhwm > 0 && (st = set_int(s, ZMQ_RCVHWM, o->rcvhwm, "RCVHWM", err)))
        return st;
    if (o->identity) {
        size_t n = strlen(o->identity);
        if (n == 0 || n > 255 || o->identity[0] == HS_PEER_HEX_PREFIX)
            return hs__terr(err, HS_ERR_INVALID,
                            "routing id '%s': must be 1..255 bytes and not start with '%c'",
                            o->identity, HS_PEER_HEX_PREFIX);
        if ((st = set(s, ZMQ_ROUTING_ID, o->identity, n, "ROUTING_ID", err)))
            return st;
    }
    if (o->curve_server || o->curve_server_key) {
        if (!zmq_has("curve"))
            return hs__terr(err, HS_ERR_UNSUPPORTED, "CURVE: this libzmq was built without it");
        if (o->curve_server) {
            if (!z85_key_ok(o->curve_secret))
                return hs__terr(err, HS_ERR_INVALID, "CURVE server: secret key is not 40 Z85 "
                                                     "characters");
            if ((st = set_int(s, ZMQ_CURVE_SERVER, 1, "CURVE_SERVER", err)) ||
                (st = set(s, ZMQ_CURVE_SECRETKEY, o->curve_secret, 41, "CURVE_SECRETKEY", err)))
                return st;
        } else {
            if (!z85_key_ok(o->curve_public) || !z85_key_ok(o->curve_secret) ||
                !z85_key_ok(o->curve_server_key))
                return hs__terr(err, HS_ERR_INVALID, "CURVE client: the public, secret and "
                                                     "server keys must be 40 Z85 characters");
            if ((st = set(s, ZMQ_CURVE_SERVERKEY, o->curve_server_key, 41, "CURVE_SERVERKEY",
                          err)) ||
                (st = set(s, ZMQ_CURVE_PUBLICKEY, o->curve_public, 41, "CURVE_PUBLICKEY", err)) ||
                (st = set(s, ZMQ_CURVE_SECRETKEY, o->curve_secret, 41, "CURVE_SECRETKEY", err)))
                return st;
        }
    }
    return HS_OK;
}

void *hs_socket_new(void *ctx, int type, const hs_socket_opts *o, hs_error *err)
{
    static const hs_socket_opts defaults = { .max_msg_size = -1 };
    void *s = zmq_socket(ctx, type);
    if (!s) {
        hs__terr(err, HS_ERR_IO, "zmq_socket: %s", zmq_strerror(errno));
        return NULL;
    }
    if (apply(s, o ? o : &defaults, err) != HS_OK) {
        int linger = 0;
        zmq_setsockopt(s, ZMQ_LINGER, &linger, sizeof linger);
        zmq_close(s);
        return NULL;
    }
    return s;
}
