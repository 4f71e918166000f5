/*
 * A ZAP 1.0 handler (ZeroMQ RFC 27) that lets in CURVE clients whose public key is on an
 * allow-list and refuses everything else.
 *
 * libzmq asks the handler bound at inproc://zeromq.zap.01 in the socket's context about every
 * new connection to a CURVE server socket (and to NULL/PLAIN sockets that set ZMQ_ZAP_DOMAIN).
 * The handler runs on its own thread with a REP socket there and a PAIR control socket; both
 * are created and bound by hs_zap_start on the caller's thread, so a second handler in the same
 * context fails at once with EADDRINUSE and no connection can race the bind, and handed to the
 * thread (pthread_create is the full barrier ZeroMQ asks for when a socket changes threads).
 * hs_zap_stop connects to the control socket and sends one byte; a context that is being
 * terminated also ends the thread (ETERM).
 *
 * An allowed client gets status 200 and its Z85 key as the ZAP user id (readable on received
 * messages as the "User-Id" metadata property). Refusals are 400, malformed requests 500.
 */
#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "transport_impl.h"

#define ZAP_ENDPOINT "inproc://zeromq.zap.01"
#define ZAP_MAX_FRAMES 16

struct hs_zap {
    void *handler; /* REP at ZAP_ENDPOINT; the thread's */
    void *control; /* PAIR at control_addr; the thread's */
    void *ctx;
    char control_addr[64];
    pthread_t thread;
    char (*keys)[41];
    int n_keys;
    atomic_int refused, accepted;
};

static hs_status load_allowlist(hs_zap *z, const char *path, hs_error *err)
{
    char line[512];
    int lineno = 0, cap = 0;
    FILE *f = fopen(path, "r");
    if (!f)
        return hs__terr(err, HS_ERR_IO, "%s: %s", path, strerror(errno));
    while (fgets(line, sizeof line, f)) {
        lineno++;
        char *s = line + strspn(line, " \t");
        if (strncmp(s, "public:", 7) == 0) /* a public key file as hs_curve_keygen writes it */
            s += 7 + strspn(s + 7, " \t");
        /* The first token is a key if it is 40 Z85 characters ('#' is one of them), else the
         * line must be blank or a comment. */
        size_t len = strcspn(s, " \t\r\n");
        char *rest = s + len + strspn(s + len, " \t\r\n");
        uint8_t raw[32];
        char key[41] = "";
        bool is_key = len == 40;
        if (is_key) {
            memcpy(key, s, 40);
            is_key = zmq_z85_decode(raw, key) != NULL;
        }
        if (!is_key && (len == 0 || s[0] == '#'))
            continue;
        if (!is_key || (*rest != '\0' && *rest != '#')) {
            fclose(f);
            return hs__terr(err, HS_ERR_PARSE, "%s:%d: expected a 40-character Z85 public key",
                            path, lineno);
        }
        if (z->n_keys == cap) {
            int ncap = cap ? 2 * cap : 16;
            void *p = realloc(z->keys, (size_t)ncap * sizeof *z->keys);
            if (!p) {
                fclose(f);
                return hs__terr(err, HS_ERR_NOMEM, "%s: out of memory", path);
            }
            z->keys = p;
            cap = ncap;
        }
        memcpy(z->keys[z->n_keys++], key, 41);
    }
    fclose(f);
    return HS_OK;
}

static bool allowed(const hs_zap *z, const char *key)
{
    for (int i = 0; i < z->n_keys; i++)
        if (memcmp(z->keys[i], key, 40) == 0)
            return true;
    return false;
}

static int send_str(void *s, const char *text, int more)
{
    return zmq_send(s, text, strlen(text), more ? ZMQ_SNDMORE : 0);
}

/* Answers one request. Returns -1 when the context is going away. */
static int handle(hs_zap *z)
{
    zmq_msg_t f[ZAP_MAX_FRAMES];
    int n = 0, more = 1;
    while (more) {
        zmq_msg_t tmp;
        zmq_msg_init(&tmp);
        if (zmq_msg_recv(&tmp, z->handler, 0) < 0) {
            zmq_msg_close(&tmp);
            for (int i = 0; i < n; i++)
                zmq_msg_close(&f[i]);
            return errno == ETERM ? -1 : 0;
        }
        more = zmq_msg_more(&tmp);
        if (n < ZAP_MAX_FRAMES) {
            zmq_msg_init(&f[n]);
            zmq_msg_move(&f[n++], &tmp);
        }
        zmq_msg_close(&tmp);
    }

    const char *status = "500", *text = "malformed ZAP request";
    char user[41] = "";
    bool well_formed = n >= 6 && zmq_msg_size(&f[0]) == 3 && memcmp(zmq_msg_data(&f[0]), "1.0", 3) == 0;
    if (well_formed) {
        size_t mlen = zmq_msg_size(&f[5]);
        const char *mech = zmq_msg_data(&f[5]);
        if (mlen == 5 && memcmp(mech, "CURVE", 5) == 0 && n == 7 && zmq_msg_size(&f[6]) == 32) {
            char key[41];
            zmq_z85_encode(key, zmq_msg_data(&f[6]), 32);
            if (allowed(z, key)) {
                status = "200", text = "OK";
                memcpy(user, key, 41);
            } else {
                status = "400", text = "client key not on the allow-list";
            }
        } else {
            status = "400", text = "only CURVE clients with an allowed key may connect";
        }
    }
    if (status[0] == '2')
        atomic_fetch_add(&z->accepted, 1);
    else
        atomic_fetch_add(&z->refused, 1);

    /* version, request id (echoed), status code, status text, user id, metadata */
    int rc = send_str(z->handler, "1.0", 1);
    if (rc >= 0)
        rc = n >= 2 ? zmq_send(z->handler, zmq_msg_data(&f[1]), zmq_msg_size(&f[1]), ZMQ_SNDMORE)
                    : send_str(z->handler, "", 1);
    if (rc >= 0)
        rc = send_str(z->handler, status, 1);
    if (rc >= 0)
        rc = send_str(z->handler, text, 1);
    if (rc >= 0)
        rc = send_str(z->handler, user, 1);
    if (rc >= 0)
        rc = zmq_send(z->handler, "", 0, 0);
    for (int i = 0; i < n; i++)
        zmq_msg_close(&f[i]);
    return rc < 0 && errno == ETERM ? -1 : 0;
}

static void *zap_main(void *arg)
{
    hs_zap *z = arg;
    for (;;) {
        zmq_pollitem_t items[2] = { { z->handler, 0, ZMQ_POLLIN, 0 },
                                    { z->control, 0, ZMQ_POLLIN, 0 } };
        if (zmq_poll(items, 2, -1) < 0) {
            if (errno == EINTR)
                continue;
            break; /* ETERM: the context is shutting down */
        }
        if (items[1].revents & ZMQ_POLLIN)
            break;
        if ((items[0].revents & ZMQ_POLLIN) && handle(z) < 0)
            break;
    }
    zmq_close(z->handler);
    zmq_close(z->control);
    return NULL;
}

hs_status hs_zap_start(void *ctx, const char *allowlist_path, hs_zap **out, hs_error *err)
{
    hs_status st;
    int linger = 0;
    *out = NULL;
    hs_zap *z = calloc(1, sizeof *z);
    if (!z)
        return hs__terr(err, HS_ERR_NOMEM, "ZAP: out of memory");
    z->ctx = ctx;
    if ((st = load_allowlist(z, allowlist_path, err)))
        goto fail_keys;

    z->handler = zmq_socket(ctx, ZMQ_REP);
    if (!z->handler) {
        st = hs__terr(err, HS_ERR_IO, "ZAP: zmq_socket: %s", zmq_strerror(errno));
        goto fail_keys;
    }
    zmq_setsockopt(z->handler, ZMQ_LINGER, &linger, sizeof linger);
    if (zmq_bind(z->handler, ZAP_ENDPOINT) != 0) {
        st = hs__terr(err, HS_ERR_IO, "ZAP: bind %s: %s (one handler per context)", ZAP_ENDPOINT,
                      zmq_strerror(errno));
        goto fail_handler;
    }
    z->control = zmq_socket(ctx, ZMQ_PAIR);
    if (!z->control) {
        st = hs__terr(err, HS_ERR_IO, "ZAP: zmq_socket: %s", zmq_strerror(errno));
        goto fail_handler;
    }
    zmq_setsockopt(z->control, ZMQ_LINGER, &linger, sizeof linger);
    snprintf(z->control_addr, sizeof z->control_addr, "inproc://hs-zap-control-%p", (void *)z);
    if (zmq_bind(z->control, z->control_addr) != 0) {
        st = hs__terr(err, HS_ERR_IO, "ZAP: bind %s: %s", z->control_addr, zmq_strerror(errno));
        goto fail_control;
    }
    int rc = pthread_create(&z->thread, NULL, zap_main, z);
    if (rc != 0) {
        st = hs__terr(err, HS_ERR_IO, "ZAP: pthread_create: %s", strerror(rc));
        goto fail_control;
    }
    *out = z;
    return HS_OK;

fail_control:
    zmq_close(z->control);
fail_handler:
    zmq_close(z->handler);
fail_keys:
    free(z->keys);
    free(z);
    return st;
}

void hs_zap_stop(hs_zap *z)
{
    if (!z)
        return;
    /* Fails with ETERM when the context is shutting down: the thread is ending anyway. */
    void *s = zmq_socket(z->ctx, ZMQ_PAIR);
    if (s) {
        int ms = 1000;
        zmq_setsockopt(s, ZMQ_SNDTIMEO, &ms, sizeof ms);
        zmq_setsockopt(s, ZMQ_LINGER, &ms, sizeof ms);
        if (zmq_connect(s, z->control_addr) == 0)
            zmq_send(s, "", 0, 0);
        zmq_close(s);
    }
    pthread_join(z->thread, NULL);
    free(z->keys);
    free(z);
}

int hs_zap_refused(const hs_zap *z)
{
    return atomic_load(&((hs_zap *)z)->refused);
}
