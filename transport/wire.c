/*
 * The header frame: which fields each message kind carries, and encoding an hs_msg's header as
 * a msgpack map (docs/PROTOCOL.md). Decoding and validation live in decode.c; sending and
 * receiving whole messages in io.c.
 *
 * The encoder checks what the decoder would reject (string lengths, counts, ranks, dtypes) so a
 * bad message fails at the sender with HS_ERR_INVALID, naming the field, instead of being
 * dropped by the peer.
 */
#include <assert.h>
#include <errno.h>
#include <msgpack.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "transport_impl.h"

static const char *const kind_names[] = {
    [HS_MSG_HELLO] = "HELLO",         [HS_MSG_WELCOME] = "WELCOME", [HS_MSG_PREPARE] = "PREPARE",
    [HS_MSG_READY] = "READY",         [HS_MSG_COMMIT] = "COMMIT",   [HS_MSG_TELEMETRY] = "TELEMETRY",
    [HS_MSG_DATA] = "DATA",           [HS_MSG_SUBMIT] = "SUBMIT",   [HS_MSG_REPLY] = "REPLY",
    [HS_MSG_BYE] = "BYE",             [HS_MSG_MODEL_REQUEST] = "MODEL_REQUEST",
    [HS_MSG_MODEL_CHUNK] = "MODEL_CHUNK",
};
static_assert(sizeof kind_names / sizeof kind_names[0] == HS_MSG_COUNT,
              "every message kind needs a name");

const hs__kind_fields hs__kind_fields_table[HS_MSG_COUNT] = {
    [HS_MSG_HELLO] = { HS_F_NAME | HS_F_ENDPOINT | HS_F_DIGEST, 0 },
    [HS_MSG_WELCOME] = { HS_F_STATUS, HS_F_REASON },
    [HS_MSG_PREPARE] = { HS_F_PLAN, 0 },
    [HS_MSG_READY] = { HS_F_EPOCH | HS_F_STATUS, HS_F_REASON },
    [HS_MSG_COMMIT] = { HS_F_EPOCH | HS_F_RETIRE, 0 },
    [HS_MSG_TELEMETRY] = { HS_F_EPOCH | HS_F_STAGE | HS_F_COUNT | HS_F_SECONDS,
                           HS_F_FIRST | HS_F_LAST },
    [HS_MSG_DATA] = { HS_F_EPOCH | HS_F_RID | HS_F_CUT | HS_F_TENSORS, HS_F_FIRST },
    [HS_MSG_SUBMIT] = { HS_F_RID | HS_F_TENSORS, 0 },
    [HS_MSG_REPLY] = { HS_F_RID | HS_F_STATUS | HS_F_TENSORS, HS_F_REASON },
    [HS_MSG_BYE] = { 0, HS_F_REASON },
    [HS_MSG_MODEL_REQUEST] = { HS_F_OFFSET, 0 },
    [HS_MSG_MODEL_CHUNK] = { HS_F_OFFSET | HS_F_TOTAL | HS_F_DIGEST | HS_F_SIZE, 0 },
};

const char *const hs__field_keys[HS_N_FIELDS] = {
    "name", "endpoint", "digest", "status", "reason", "plan",  "epoch",
    "retire", "rid",    "cut",    "tensors", "stage", "count", "seconds", "offset",
    "total",  "size",   "first", "last",
};

const char *hs_msg_kind_name(hs_msg_kind kind)
{
    return (unsigned)kind < HS_MSG_COUNT ? kind_names[kind] : "?";
}

const char *hs__dtype_wire_name(hs_dtype dtype)
{
    switch (dtype) {
    case HS_F32: return "float32";
    case HS_I64: return "int64";
    case HS_DTYPE_COUNT: break;
    }
    return NULL;
}

hs_status hs__terr(hs_error *err, hs_status code, const char *fmt, ...)
{
    if (err) {
        int saved = errno;
        va_list ap;
        va_start(ap, fmt);
        err->code = code;
        vsnprintf(err->msg, sizeof err->msg, fmt, ap);
        va_end(ap);
        errno = saved;
    }
    return code;
}

void hs_msg_init(hs_msg *m, hs_msg_kind kind)
{
    memset(m, 0, sizeof *m);
    m->kind = kind;
}

void hs_msg_close(hs_msg *m)
{
    for (int i = 0; i < m->n_frames; i++)
        zmq_msg_close(&m->frames[i]);
    m->n_frames = 0;
    m->n_tensors = 0;
    m->chunk = NULL; /* pointed into a frame */
    m->chunk_size = 0;
}

/* ---- encoding ---------------------------------------------------------------------------- */

typedef struct enc {
    msgpack_packer pk;
    int failed; /* a msgpack call returned non-zero (out of memory) */
    const char *kind;
    hs_error *err;
} enc;

static void put_str(enc *e, const char *s, size_t len)
{
    e->failed |= msgpack_pack_str(&e->pk, len);
    e->failed |= msgpack_pack_str_body(&e->pk, s, len);
}

static void put_key(enc *e, const char *key)
{
    put_str(e, key, strlen(key));
}

/* A fixed-size char field: NUL within the buffer, and non-empty when required. */
static hs_status check_text(enc *e, const char *field, const char *s, size_t cap, bool nonempty,
                            size_t *len)
{
    *len = strnlen(s, cap);
    if (*len == cap)
        return hs__terr(e->err, HS_ERR_INVALID, "%s: '%s' is not NUL-terminated within %zu bytes",
                        e->kind, field, cap);
    if (nonempty && *len == 0)
        return hs__terr(e->err, HS_ERR_INVALID, "%s: '%s' is empty", e->kind, field);
    return HS_OK;
}

static hs_status put_text(enc *e, const char *field, const char *s, size_t cap, bool nonempty)
{
    size_t len;
    hs_status st = check_text(e, field, s, cap, nonempty, &len);
    if (st == HS_OK)
        put_str(e, s, len);
    return st;
}

static hs_status put_plan(enc *e, const hs_wire_plan *p)
{
    hs_status st;
    if (p->n_stages < 1 || p->n_stages > HS_MAX_DEVICES)
        return hs__terr(e->err, HS_ERR_INVALID, "%s: plan has %d stages, expected 1..%d", e->kind,
                        p->n_stages, HS_MAX_DEVICES);
    if (p->n_endpoints < 0 || p->n_endpoints > HS_MAX_DEVICES)
        return hs__terr(e->err, HS_ERR_INVALID, "%s: plan has %d endpoints, expected 0..%d",
                        e->kind, p->n_endpoints, HS_MAX_DEVICES);
    bool window = !(p->window < 0); /* < 0: not sent; NaN is an error */
    if (window && !(p->window <= HS_WIRE_WINDOW_MAX))
        return hs__terr(e->err, HS_ERR_INVALID, "%s: plan window %g is outside 0..%g", e->kind,
                        p->window, HS_WIRE_WINDOW_MAX);
    e->failed |= msgpack_pack_map(&e->pk, window ? 5 : 4);
    put_key(e, "epoch");
    e->failed |= msgpack_pack_uint32(&e->pk, p->epoch);
    put_key(e, "stages");
    e->failed |= msgpack_pack_array(&e->pk, (size_t)p->n_stages);
    for (int i = 0; i < p->n_stages; i++) {
        const hs_wire_stage *s = &p->stages[i];
        if (s->first < 0 || s->first > s->last)
            return hs__terr(e->err, HS_ERR_INVALID, "%s: plan stage %d has range [%d, %d]",
                            e->kind, i, (int)s->first, (int)s->last);
        e->failed |= msgpack_pack_array(&e->pk, 3);
        if ((st = put_text(e, "stage device", s->device, sizeof s->device, true)))
            return st;
        e->failed |= msgpack_pack_int32(&e->pk, s->first);
        e->failed |= msgpack_pack_int32(&e->pk, s->last);
    }
    put_key(e, "endpoints");
    e->failed |= msgpack_pack_array(&e->pk, (size_t)p->n_endpoints);
    for (int i = 0; i < p->n_endpoints; i++) {
        const hs_wire_endpoint *ep = &p->endpoints[i];
        e->failed |= msgpack_pack_array(&e->pk, 2);
        if ((st = put_text(e, "endpoint device", ep->device, sizeof ep->device, true)) ||
            (st = put_text(e, "endpoint", ep->endpoint, sizeof ep->endpoint, false)))
            return st;
    }
    if (window) {
        put_key(e, "window");
        e->failed |= msgpack_pack_double(&e->pk, p->window);
    }
    put_key(e, "sink");
    return put_text(e, "sink", p->sink_endpoint, sizeof p->sink_endpoint, false);
}

static hs_status put_tensors(enc *e, const hs_msg *m)
{
    hs_status st;
    if (m->n_tensors < 0 || m->n_tensors > HS_WIRE_MAX_TENSORS)
        return hs__terr(e->err, HS_ERR_INVALID, "%s: %d tensors, at most %d", e->kind,
                        m->n_tensors, HS_WIRE_MAX_TENSORS);
    e->failed |= msgpack_pack_array(&e->pk, (size_t)m->n_tensors);
    for (int i = 0; i < m->n_tensors; i++) {
        const hs_wire_tensor *wt = &m->tensors[i];
        const hs_tensor *t = &wt->t;
        const char *dtype = hs__dtype_wire_name(t->dtype);
        if (!dtype)
            return hs__terr(e->err, HS_ERR_INVALID, "%s: tensor %d has dtype %d", e->kind, i,
                            (int)t->dtype);
        if (t->ndim < 0 || t->ndim > HS_MAX_DIMS)
            return hs__terr(e->err, HS_ERR_INVALID, "%s: tensor %d has rank %d, at most %d",
                            e->kind, i, t->ndim, HS_MAX_DIMS);
        for (int d = 0; d < t->ndim; d++)
            if (t->shape[d] < 0)
                return hs__terr(e->err, HS_ERR_INVALID, "%s: tensor %d dimension %d is %lld",
                                e->kind, i, d, (long long)t->shape[d]);
        e->failed |= msgpack_pack_array(&e->pk, 4);
        if ((st = put_text(e, "tensor name", wt->name, sizeof wt->name, false)))
            return st;
        put_str(e, dtype, strlen(dtype));
        e->failed |= msgpack_pack_array(&e->pk, (size_t)t->ndim);
        for (int d = 0; d < t->ndim; d++)
            e->failed |= msgpack_pack_int64(&e->pk, t->shape[d]);
        put_str(e, HS_WIRE_ENCODING_RAW, strlen(HS_WIRE_ENCODING_RAW));
    }
    return HS_OK;
}

static hs_status put_field(enc *e, const hs_msg *m, unsigned field)
{
    size_t len;
    hs_status st;
    switch (field) {
    case HS_F_NAME: return put_text(e, "name", m->name, sizeof m->name, true);
    case HS_F_ENDPOINT: return put_text(e, "endpoint", m->endpoint, sizeof m->endpoint, false);
    case HS_F_DIGEST: e->failed |= msgpack_pack_uint64(&e->pk, m->model_digest); return HS_OK;
    case HS_F_STATUS:
        if (m->status > 0)
            return hs__terr(e->err, HS_ERR_INVALID, "%s: status %d is positive", e->kind,
                            (int)m->status);
        e->failed |= msgpack_pack_int32(&e->pk, m->status);
        return HS_OK;
    case HS_F_REASON:
        if ((st = check_text(e, "reason", m->reason, sizeof m->reason, false, &len)))
            return st;
        put_str(e, m->reason, len);
        return HS_OK;
    case HS_F_PLAN: return put_plan(e, &m->plan);
    case HS_F_EPOCH: e->failed |= msgpack_pack_uint32(&e->pk, m->epoch); return HS_OK;
    case HS_F_RETIRE: e->failed |= msgpack_pack_uint32(&e->pk, m->retire_below); return HS_OK;
    case HS_F_RID: e->failed |= msgpack_pack_uint64(&e->pk, m->request_id); return HS_OK;
    case HS_F_CUT:
    case HS_F_STAGE:
    case HS_F_FIRST:
    case HS_F_LAST: {
        int32_t v = field == HS_F_CUT     ? m->cut
                    : field == HS_F_STAGE ? m->stage
                    : field == HS_F_FIRST ? m->first
                                          : m->last;
        if (v < 0)
            return hs__terr(e->err, HS_ERR_INVALID, "%s: '%s' is %d", e->kind,
                            hs__field_keys[__builtin_ctz(field)], (int)v);
        e->failed |= msgpack_pack_int32(&e->pk, v);
        return HS_OK;
    }
    case HS_F_TENSORS: return put_tensors(e, m);
    case HS_F_COUNT: e->failed |= msgpack_pack_uint32(&e->pk, m->count); return HS_OK;
    case HS_F_SECONDS:
        if (!(m->seconds >= 0 && m->seconds <= 1e300))
            return hs__terr(e->err, HS_ERR_INVALID, "%s: 'seconds' is %g", e->kind, m->seconds);
        e->failed |= msgpack_pack_double(&e->pk, m->seconds);
        return HS_OK;
    case HS_F_OFFSET:
    case HS_F_TOTAL: {
        uint64_t v = field == HS_F_OFFSET ? m->offset : m->total;
        if (v > HS_WIRE_MODEL_MAX)
            return hs__terr(e->err, HS_ERR_INVALID, "%s: '%s' is %llu, larger than %llu",
                            e->kind, field == HS_F_OFFSET ? "offset" : "total",
                            (unsigned long long)v, HS_WIRE_MODEL_MAX);
        e->failed |= msgpack_pack_uint64(&e->pk, v);
        return HS_OK;
    }
    case HS_F_SIZE:
        if (m->chunk_size > HS_WIRE_CHUNK_MAX || m->offset > m->total ||
            m->chunk_size > m->total - m->offset || (m->chunk_size && !m->chunk))
            return hs__terr(e->err, HS_ERR_INVALID, "%s: a chunk of %u bytes at offset %llu of "
                            "%llu (at most %u bytes, within the total, with data)", e->kind,
                            (unsigned)m->chunk_size, (unsigned long long)m->offset,
                            (unsigned long long)m->total, HS_WIRE_CHUNK_MAX);
        e->failed |= msgpack_pack_uint32(&e->pk, m->chunk_size);
        return HS_OK;
    }
    assert(!"unknown field bit");
    return HS_ERR_INVALID;
}

hs_status hs_msg_encode_header(const hs_msg *m, void **out, size_t *size, hs_error *err)
{
    *out = NULL;
    *size = 0;
    if ((unsigned)m->kind >= HS_MSG_COUNT)
        return hs__terr(err, HS_ERR_INVALID, "header: message kind %d is out of range",
                        (int)m->kind);
    const hs__kind_fields *kf = &hs__kind_fields_table[m->kind];
    unsigned fields = kf->required | kf->optional;
    if (!(fields & HS_F_TENSORS) && m->n_tensors != 0)
        return hs__terr(err, HS_ERR_INVALID, "%s: carries no tensors, but n_tensors is %d",
                        kind_names[m->kind], m->n_tensors);

    msgpack_sbuffer sb;
    msgpack_sbuffer_init(&sb);
    enc e = { .kind = kind_names[m->kind], .err = err };
    msgpack_packer_init(&e.pk, &sb, msgpack_sbuffer_write);

    e.failed |= msgpack_pack_map(&e.pk, 2 + (size_t)__builtin_popcount(fields));
    put_key(&e, "v");
    e.failed |= msgpack_pack_uint32(&e.pk, HS_PROTOCOL_VERSION);
    put_key(&e, "k");
    put_str(&e, e.kind, strlen(e.kind));
    for (int i = 0; i < HS_N_FIELDS; i++) {
        if (!(fields & (1u << i)))
            continue;
        put_key(&e, hs__field_keys[i]);
        hs_status st = put_field(&e, m, 1u << i);
        if (st) {
            msgpack_sbuffer_destroy(&sb);
            return st;
        }
    }
    if (e.failed) {
        msgpack_sbuffer_destroy(&sb);
        return hs__terr(err, HS_ERR_NOMEM, "%s: out of memory encoding the header", e.kind);
    }
    if (sb.size > HS_WIRE_HEADER_MAX) {
        size_t n = sb.size;
        msgpack_sbuffer_destroy(&sb);
        return hs__terr(err, HS_ERR_INVALID, "%s: header is %zu bytes, at most %d", e.kind, n,
                        HS_WIRE_HEADER_MAX);
    }
    *out = sb.data; /* malloc'd by msgpack_sbuffer: the caller free()s it */
    *size = sb.size;
    return HS_OK;
}
