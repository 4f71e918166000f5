/*
 * Sending and receiving whole messages without copying tensor bytes.
 *
 * Send: each tensor (or chunk) frame is zmq_msg_init_data over the caller's buffer. ZeroMQ
 * frees a frame when it is done with it (after writing it to the kernel for tcp, when the
 * receiver closes it for inproc), calling frame_free from whichever thread drops the last
 * reference, usually an I/O thread. The frames of one message share a small malloc'd block holding an atomic count:
 * one reference per frame plus one held by hs_msg_send itself while it is still adding frames,
 * so the caller's release runs exactly once, after the last frame is gone, even when a frame is
 * released before the next one is built or a send fails half way.
 *
 * Receive: zmq_msg_recv into zmq_msg_t frames that the hs_msg then owns (decode.c points each
 * tensor at its frame's data).
 *
 * Routing ids: the identity frame of a ROUTER message is handed to the caller as text. Ids that
 * are not printable ASCII (ROUTER's own ids for anonymous peers start with a 0 byte) become '#'
 * and lowercase hex, which hs_msg_send turns back into bytes.
 */
#include <errno.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "transport_impl.h"

typedef struct release_block {
    atomic_int refs;
    hs_release_fn release;
    void *hint;
} release_block;

static void block_unref(release_block *b)
{
    if (atomic_fetch_sub_explicit(&b->refs, 1, memory_order_acq_rel) == 1) {
        b->release(b->hint);
        free(b);
    }
}

static void frame_free(void *data, void *hint)
{
    (void)data;
    block_unref(hint);
}

static hs_status zmq_fail(hs_error *err, const char *what, const hs_msg *m)
{
    int e = errno;
    hs__terr(err, HS_ERR_IO, "%s: %s: %s", hs_msg_kind_name(m->kind), what, zmq_strerror(e));
    errno = e;
    return HS_ERR_IO;
}

static int hexval(char c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    if (c >= 'A' && c <= 'F')
        return c - 'A' + 10;
    return -1;
}

/* The identity frame for peer: its bytes, or the bytes a '#hex' spelling stands for. */
static int send_peer(void *socket, const char *peer, int flags)
{
    size_t n = strlen(peer);
    if (peer[0] != HS_PEER_HEX_PREFIX)
        return zmq_send(socket, peer, n, flags);
    unsigned char id[255];
    size_t len = (n - 1) / 2;
    if ((n - 1) % 2 || len == 0 || len > sizeof id) {
        errno = EINVAL;
        return -1;
    }
    for (size_t i = 0; i < len; i++) {
        int hi = hexval(peer[1 + 2 * i]), lo = hexval(peer[2 + 2 * i]);
        if (hi < 0 || lo < 0) {
            errno = EINVAL;
            return -1;
        }
        id[i] = (unsigned char)(hi << 4 | lo);
    }
    return zmq_send(socket, id, len, flags);
}

/* The bytes of frame i after the header: tensor i, or the chunk of a MODEL_CHUNK. ZeroMQ's
 * API takes them as non-const; it only reads them. */
static void *frame_bytes(const hs_msg *m, int i, size_t *nbytes)
{
    if (i < m->n_tensors) {
        *nbytes = hs_tensor_nbytes(&m->tensors[i].t);
        return m->tensors[i].t.data;
    }
    *nbytes = m->chunk_size;
    return (void *)m->chunk;
}

hs_status hs_msg_send(void *socket, const char *peer, const hs_msg *m, hs_release_fn release,
                      void *hint, int flags, hs_error *err)
{
    void *header = NULL;
    size_t header_size = 0;
    release_block *b = NULL;
    hs_status st;
    int more, n_frames;

    flags &= ZMQ_DONTWAIT;
    if ((st = hs_msg_encode_header(m, &header, &header_size, err)))
        goto done;
    for (int i = 0; i < m->n_tensors; i++)
        if (!m->tensors[i].t.data && hs_tensor_nbytes(&m->tensors[i].t) > 0) {
            st = hs__terr(err, HS_ERR_INVALID, "%s: tensor %d '%s' has no data",
                          hs_msg_kind_name(m->kind), i, m->tensors[i].name);
            goto done;
        }
    if (release) {
        b = malloc(sizeof *b);
        if (!b) {
            st = hs__terr(err, HS_ERR_NOMEM, "%s: out of memory", hs_msg_kind_name(m->kind));
            goto done;
        }
        atomic_init(&b->refs, 1); /* ours, dropped at the end */
        b->release = release;
        b->hint = hint;
    }

    if (peer && send_peer(socket, peer, ZMQ_SNDMORE | flags) < 0) {
        st = zmq_fail(err, errno == EINVAL ? "bad peer id" : "sending the peer id", m);
        goto done;
    }
    n_frames = m->n_tensors + hs__kind_has_chunk(m->kind);
    more = n_frames > 0 ? ZMQ_SNDMORE : 0;
    if (zmq_send(socket, header, header_size, more | flags) < 0) {
        st = zmq_fail(err, "sending the header", m);
        goto done;
    }
    for (int i = 0; i < n_frames; i++) {
        size_t nbytes;
        void *data = frame_bytes(m, i, &nbytes);
        more = i + 1 < n_frames ? ZMQ_SNDMORE : 0;
        if (!b) {
            if (zmq_send(socket, data, nbytes, more | flags) < 0) {
                st = zmq_fail(err, "sending a frame", m);
                goto done;
            }
            continue;
        }
        zmq_msg_t f;
        atomic_fetch_add_explicit(&b->refs, 1, memory_order_relaxed);
        if (zmq_msg_init_data(&f, data, nbytes, frame_free, b) != 0) {
            atomic_fetch_sub_explicit(&b->refs, 1, memory_order_relaxed);
            st = zmq_fail(err, "building a frame", m);
            goto done;
        }
        if (zmq_msg_send(&f, socket, more | flags) < 0) {
            st = zmq_fail(err, "sending a frame", m);
            zmq_msg_close(&f); /* drops the frame's reference */
            goto done;
        }
    }
    st = HS_OK;
done:
    free(header);
    if (b) {
        int e = errno;
        block_unref(b);
        errno = e;
    } else if (release) {
        release(hint); /* failed before any frame existed */
    }
    return st;
}

/* Copies identity frame id into peer as text (see the top of the file). */
static bool peer_text(const zmq_msg_t *id, char *peer, size_t peer_size)
{
    const unsigned char *p = zmq_msg_data((zmq_msg_t *)id);
    size_t n = zmq_msg_size((zmq_msg_t *)id);
    bool plain = n > 0 && p[0] != HS_PEER_HEX_PREFIX;
    for (size_t i = 0; i < n && plain; i++)
        plain = p[i] > 0x20 && p[i] < 0x7f;
    if (plain) {
        if (n >= peer_size)
            return false;
        memcpy(peer, p, n);
        peer[n] = '\0';
        return true;
    }
    if (1 + 2 * n >= peer_size)
        return false;
    static const char hex[] = "0123456789abcdef";
    peer[0] = HS_PEER_HEX_PREFIX;
    for (size_t i = 0; i < n; i++) {
        peer[1 + 2 * i] = hex[p[i] >> 4];
        peer[2 + 2 * i] = hex[p[i] & 15];
    }
    peer[1 + 2 * n] = '\0';
    return true;
}

/* Reads and drops what is left of a multipart message. */
static void drain(void *socket)
{
    int more = 1;
    size_t len = sizeof more;
    while (zmq_getsockopt(socket, ZMQ_RCVMORE, &more, &len) == 0 && more) {
        zmq_msg_t f;
        zmq_msg_init(&f);
        int rc = zmq_msg_recv(&f, socket, 0);
        zmq_msg_close(&f);
        if (rc < 0)
            break;
    }
}

hs_status hs_msg_recv(void *socket, char *peer, size_t peer_size, hs_msg *m, int flags,
                      hs_error *err)
{
    zmq_msg_t frames[HS_WIRE_MAX_TENSORS + 1];
    int n = 0;
    flags &= ZMQ_DONTWAIT;
    m->n_frames = 0; /* owns nothing until decoded */
    m->n_tensors = 0;

    if (peer) {
        zmq_msg_t id;
        zmq_msg_init(&id);
        if (zmq_msg_recv(&id, socket, flags) < 0) {
            int e = errno;
            zmq_msg_close(&id);
            hs__terr(err, HS_ERR_IO, "receiving: %s", zmq_strerror(e));
            errno = e;
            return HS_ERR_IO;
        }
        bool more = zmq_msg_more(&id), fits = peer_text(&id, peer, peer_size);
        size_t id_size = zmq_msg_size(&id);
        zmq_msg_close(&id);
        if (!fits) {
            drain(socket);
            if (peer_size)
                peer[0] = '\0';
            return hs__terr(err, HS_ERR_PARSE, "header: peer id of %zu bytes does not fit in %zu",
                            id_size, peer_size);
        }
        if (!more)
            return hs__terr(err, HS_ERR_PARSE, "header: message from '%s' has no header frame",
                            peer);
        flags = 0; /* the rest of a multipart message is already there */
    }
    for (;;) {
        zmq_msg_t *f = &frames[n];
        zmq_msg_init(f);
        if (zmq_msg_recv(f, socket, flags) < 0) {
            int e = errno;
            zmq_msg_close(f);
            for (int i = 0; i < n; i++)
                zmq_msg_close(&frames[i]);
            if (n > 0 || peer)
                drain(socket);
            hs__terr(err, HS_ERR_IO, "receiving: %s", zmq_strerror(e));
            errno = e;
            return HS_ERR_IO;
        }
        flags = 0;
        n++;
        if (!zmq_msg_more(f))
            break;
        if (n == HS_WIRE_MAX_TENSORS + 1) {
            int extra = 0, more = 1;
            size_t len = sizeof more;
            while (zmq_getsockopt(socket, ZMQ_RCVMORE, &more, &len) == 0 && more) {
                zmq_msg_t x;
                zmq_msg_init(&x);
                int rc = zmq_msg_recv(&x, socket, 0);
                zmq_msg_close(&x);
                if (rc < 0)
                    break;
                extra++;
            }
            for (int i = 0; i < n; i++)
                zmq_msg_close(&frames[i]);
            hs_msg_init(m, HS_MSG_HELLO);
            return hs__terr(err, HS_ERR_PARSE,
                            "header: message has %d frames, at most %d (header + %d tensors)",
                            n + extra, HS_WIRE_MAX_TENSORS + 1, HS_WIRE_MAX_TENSORS);
        }
    }
    return hs_msg_decode(m, frames, n, err);
}
