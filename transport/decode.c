/*
 * Decoding and validating a received message: everything in it is controlled by the peer, so
 * nothing is used before it is checked, and a bad message is reported in one line naming the
 * kind, the field and what is wrong with it.
 *
 * Two passes over the header. scan() walks the raw msgpack bytes first (bounded depth, every
 * length checked against the bytes left, nothing allocated), so that msgpack-c, which allocates
 * `count * sizeof(msgpack_object)` for an array before reading its elements, only ever sees a
 * well-formed object whose counts are bounded by the header's size (a 5-byte header declaring
 * a 4-billion-element array would otherwise ask for 96 GiB). Then msgpack-c unpacks it and the
 * fields are checked one by one against the kind's table (wire.c).
 */
#include <limits.h>
#include <math.h>
#include <stddef.h>
#include <msgpack.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "transport_impl.h"

static _Atomic uint64_t realigned_frames;

uint64_t hs__wire_realigned_count(void)
{
    return atomic_load(&realigned_frames);
}

/* ---- pass 1: the raw msgpack bytes ------------------------------------------------------- */

static uint64_t read_be(const uint8_t *p, size_t n)
{
    uint64_t v = 0;
    for (size_t i = 0; i < n; i++)
        v = v << 8 | p[i];
    return v;
}

/* Skips one msgpack object at p[*off], checking it lies within n bytes. NULL if fine, else a
 * static reason. Each call consumes at least one byte, so the walk is O(n). */
static const char *scan(const uint8_t *p, size_t n, size_t *off, int depth)
{
    if (depth > HS_WIRE_DEPTH_MAX)
        return "msgpack nested deeper than 8 levels";
    if (*off >= n)
        return "truncated msgpack";
    uint8_t b = p[(*off)++];
    uint64_t items = 0; /* child objects of a container */
    size_t len_bytes = 0, fixed = 0;
    bool container = false;

    if (b <= 0x7f || b >= 0xe0 || b == 0xc0 || b == 0xc2 || b == 0xc3)
        return NULL;
    if (b <= 0x8f) {
        items = 2u * (b & 0x0fu), container = true;
    } else if (b <= 0x9f) {
        items = b & 0x0fu, container = true;
    } else if (b <= 0xbf) {
        fixed = b & 0x1fu;
    } else {
        switch (b) {
        case 0xc4: case 0xd9: len_bytes = 1; break;          /* bin 8, str 8 */
        case 0xc5: case 0xda: len_bytes = 2; break;          /* bin 16, str 16 */
        case 0xc6: case 0xdb: len_bytes = 4; break;          /* bin 32, str 32 */
        case 0xc7: len_bytes = 1, fixed = 1; break;          /* ext 8 (+ type byte) */
        case 0xc8: len_bytes = 2, fixed = 1; break;          /* ext 16 */
        case 0xc9: len_bytes = 4, fixed = 1; break;          /* ext 32 */
        case 0xca: fixed = 4; break;                         /* float 32 */
        case 0xcb: fixed = 8; break;                         /* float 64 */
        case 0xcc: case 0xd0: fixed = 1; break;              /* uint 8, int 8 */
        case 0xcd: case 0xd1: fixed = 2; break;
        case 0xce: case 0xd2: fixed = 4; break;
        case 0xcf: case 0xd3: fixed = 8; break;
        case 0xd4: fixed = 2; break;                         /* fixext 1 (+ type byte) */
        case 0xd5: fixed = 3; break;
        case 0xd6: fixed = 5; break;
        case 0xd7: fixed = 9; break;
        case 0xd8: fixed = 17; break;
        case 0xdc: case 0xde: len_bytes = 2, container = true; break; /* array 16, map 16 */
        case 0xdd: case 0xdf: len_bytes = 4, container = true; break; /* array 32, map 32 */
        default: return "invalid msgpack type byte 0xc1";
        }
    }
    if (len_bytes) {
        if (n - *off < len_bytes)
            return "truncated msgpack";
        uint64_t len = read_be(p + *off, len_bytes);
        *off += len_bytes;
        if (container)
            items = (b == 0xde || b == 0xdf) ? 2 * len : len;
        else
            fixed += len;
    }
    if (container) {
        if (items > n - *off) /* every child takes at least one byte */
            return "truncated msgpack";
        for (uint64_t i = 0; i < items; i++) {
            const char *why = scan(p, n, off, depth + 1);
            if (why)
                return why;
        }
        return NULL;
    }
    if (fixed > n - *off)
        return "truncated msgpack";
    *off += fixed;
    return NULL;
}

/* ---- pass 2: the fields ------------------------------------------------------------------ */

typedef struct dec {
    const char *kind; /* "header" until the kind is known */
    hs_error *err;
} dec;

__attribute__((format(printf, 2, 3))) static hs_status bad(dec *d, const char *fmt, ...)
{
    char detail[HS_ERROR_MSG_MAX];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(detail, sizeof detail, fmt, ap);
    va_end(ap);
    return hs__terr(d->err, HS_ERR_PARSE, "%s: %s", d->kind, detail);
}

/* Peer bytes made fit for a one-line message: at most 40 characters, controls as '?'. */
static const char *printable(const char *s, size_t n, char *out, size_t cap)
{
    size_t j = 0, lim = n < 40 ? n : 40;
    for (size_t i = 0; i < lim && j + 1 < cap; i++)
        out[j++] = (s[i] >= 0x20 && s[i] < 0x7f) ? s[i] : '?';
    if (n > lim && j + 3 < cap)
        out[j++] = '.', out[j++] = '.', out[j++] = '.';
    out[j] = '\0';
    return out;
}

static const char *type_name(const msgpack_object *o)
{
    switch (o->type) {
    case MSGPACK_OBJECT_NIL: return "nil";
    case MSGPACK_OBJECT_BOOLEAN: return "a boolean";
    case MSGPACK_OBJECT_POSITIVE_INTEGER: return "an unsigned integer";
    case MSGPACK_OBJECT_NEGATIVE_INTEGER: return "a negative integer";
    case MSGPACK_OBJECT_FLOAT32:
    case MSGPACK_OBJECT_FLOAT64: return "a float";
    case MSGPACK_OBJECT_STR: return "a string";
    case MSGPACK_OBJECT_ARRAY: return "an array";
    case MSGPACK_OBJECT_MAP: return "a map";
    case MSGPACK_OBJECT_BIN: return "binary";
    case MSGPACK_OBJECT_EXT: return "an extension";
    }
    return "an unknown type";
}

static bool str_is(const msgpack_object *o, const char *s)
{
    size_t n = strlen(s);
    return o->type == MSGPACK_OBJECT_STR && o->via.str.size == n &&
           memcmp(o->via.str.ptr, s, n) == 0;
}

static hs_status get_uint(dec *d, const msgpack_object *o, const char *what, uint64_t max,
                          uint64_t *out)
{
    if (o->type == MSGPACK_OBJECT_NEGATIVE_INTEGER)
        return bad(d, "'%s' is %lld, must not be negative", what, (long long)o->via.i64);
    if (o->type != MSGPACK_OBJECT_POSITIVE_INTEGER)
        return bad(d, "'%s' must be an unsigned integer, got %s", what, type_name(o));
    if (o->via.u64 > max)
        return bad(d, "'%s' is %llu, larger than %llu", what, (unsigned long long)o->via.u64,
                   (unsigned long long)max);
    *out = o->via.u64;
    return HS_OK;
}

static hs_status get_int(dec *d, const msgpack_object *o, const char *what, int64_t min,
                         int64_t max, int64_t *out)
{
    int64_t v;
    if (o->type == MSGPACK_OBJECT_POSITIVE_INTEGER) {
        if (o->via.u64 > (uint64_t)max)
            return bad(d, "'%s' is %llu, larger than %lld", what,
                       (unsigned long long)o->via.u64, (long long)max);
        v = (int64_t)o->via.u64;
    } else if (o->type == MSGPACK_OBJECT_NEGATIVE_INTEGER) {
        v = o->via.i64;
    } else {
        return bad(d, "'%s' must be an integer, got %s", what, type_name(o));
    }
    if (v < min || v > max)
        return bad(d, "'%s' is %lld, outside %lld..%lld", what, (long long)v, (long long)min,
                   (long long)max);
    *out = v;
    return HS_OK;
}

/* A string into buf[cap]: too long or holding a NUL byte is an error, never truncated. */
static hs_status get_str(dec *d, const msgpack_object *o, const char *what, char *buf,
                         size_t cap, bool nonempty)
{
    if (o->type != MSGPACK_OBJECT_STR)
        return bad(d, "'%s' must be a string, got %s", what, type_name(o));
    size_t n = o->via.str.size;
    if (n >= cap)
        return bad(d, "'%s' is %zu bytes, at most %zu", what, n, cap - 1);
    if (n && memchr(o->via.str.ptr, '\0', n))
        return bad(d, "'%s' contains a NUL byte", what);
    if (nonempty && n == 0)
        return bad(d, "'%s' is empty", what);
    if (n)
        memcpy(buf, o->via.str.ptr, n);
    buf[n] = '\0';
    return HS_OK;
}

static hs_status get_array(dec *d, const msgpack_object *o, const char *what, uint32_t min,
                           uint32_t max, const msgpack_object_array **out)
{
    if (o->type != MSGPACK_OBJECT_ARRAY)
        return bad(d, "'%s' must be an array, got %s", what, type_name(o));
    uint32_t n = o->via.array.size;
    if (n < min || n > max)
        return bad(d, "'%s' has %u elements, expected %u..%u", what, n, min, max);
    *out = &o->via.array;
    return HS_OK;
}

/* Finds the values of `keys` in map o: missing ones stay NULL; a repeated key or a key that
 * is not a string is an error; other keys are ignored (forward compatibility). */
static hs_status get_keys(dec *d, const msgpack_object *o, const char *what,
                          const char *const *keys, int n_keys, const msgpack_object **vals)
{
    if (o->type != MSGPACK_OBJECT_MAP)
        return bad(d, "%s must be a map, got %s", what, type_name(o));
    for (int k = 0; k < n_keys; k++)
        vals[k] = NULL;
    for (uint32_t i = 0; i < o->via.map.size; i++) {
        const msgpack_object_kv *kv = &o->via.map.ptr[i];
        if (kv->key.type != MSGPACK_OBJECT_STR)
            return bad(d, "%s key %u must be a string, got %s", what, i, type_name(&kv->key));
        for (int k = 0; k < n_keys; k++) {
            if (!str_is(&kv->key, keys[k]))
                continue;
            if (vals[k])
                return bad(d, "%s has key '%s' twice", what, keys[k]);
            vals[k] = &kv->val;
        }
    }
    return HS_OK;
}

static hs_status get_plan(dec *d, const msgpack_object *o, hs_wire_plan *p)
{
    static const char *const keys[] = { "epoch", "stages", "endpoints", "sink", "window" };
    const msgpack_object *v[5] = { 0 }; /* all required but the window */
    const msgpack_object_array *a = NULL;
    char what[64];
    uint64_t u = 0;
    int64_t first = 0, last = 0;
    hs_status st;

    if ((st = get_keys(d, o, "'plan'", keys, 5, v)))
        return st;
    for (int k = 0; k < 4; k++)
        if (!v[k])
            return bad(d, "'plan' has no '%s'", keys[k]);
    if ((st = get_uint(d, v[0], "plan epoch", UINT32_MAX, &u)))
        return st;
    p->epoch = (uint32_t)u;

    if ((st = get_array(d, v[1], "plan stages", 1, HS_MAX_DEVICES, &a)))
        return st;
    p->n_stages = (int)a->size;
    for (int i = 0; i < p->n_stages; i++) {
        const msgpack_object_array *s;
        hs_wire_stage *ws = &p->stages[i];
        snprintf(what, sizeof what, "plan stage %d", i);
        if (a->ptr[i].type != MSGPACK_OBJECT_ARRAY || a->ptr[i].via.array.size < 3)
            return bad(d, "'%s' must be an array [device, first, last]", what);
        s = &a->ptr[i].via.array;
        snprintf(what, sizeof what, "plan stage %d device", i);
        if ((st = get_str(d, &s->ptr[0], what, ws->device, sizeof ws->device, true)))
            return st;
        snprintf(what, sizeof what, "plan stage %d first", i);
        if ((st = get_int(d, &s->ptr[1], what, 0, INT32_MAX, &first)))
            return st;
        snprintf(what, sizeof what, "plan stage %d last", i);
        if ((st = get_int(d, &s->ptr[2], what, 0, INT32_MAX, &last)))
            return st;
        if (first > last)
            return bad(d, "plan stage %d '%s' runs nodes %lld..%lld: first > last", i,
                       ws->device, (long long)first, (long long)last);
        ws->first = (int32_t)first;
        ws->last = (int32_t)last;
    }

    if ((st = get_array(d, v[2], "plan endpoints", 0, HS_MAX_DEVICES, &a)))
        return st;
    p->n_endpoints = (int)a->size;
    for (int i = 0; i < p->n_endpoints; i++) {
        const msgpack_object_array *e;
        hs_wire_endpoint *we = &p->endpoints[i];
        snprintf(what, sizeof what, "plan endpoint %d", i);
        if (a->ptr[i].type != MSGPACK_OBJECT_ARRAY || a->ptr[i].via.array.size < 2)
            return bad(d, "'%s' must be an array [device, endpoint]", what);
        e = &a->ptr[i].via.array;
        snprintf(what, sizeof what, "plan endpoint %d device", i);
        if ((st = get_str(d, &e->ptr[0], what, we->device, sizeof we->device, true)))
            return st;
        snprintf(what, sizeof what, "plan endpoint %d address", i);
        if ((st = get_str(d, &e->ptr[1], what, we->endpoint, sizeof we->endpoint, false)))
            return st;
    }
    p->window = HS_WIRE_WINDOW_UNSENT;
    if (v[4] && v[4]->type != MSGPACK_OBJECT_FLOAT64 && v[4]->type != MSGPACK_OBJECT_FLOAT32)
        return bad(d, "'plan window' must be a float, got %s", type_name(v[4]));
    if (v[4] && !(v[4]->via.f64 >= 0 && v[4]->via.f64 <= HS_WIRE_WINDOW_MAX))
        return bad(d, "'plan window' is %g, outside 0..%g", v[4]->via.f64, HS_WIRE_WINDOW_MAX);
    if (v[4])
        p->window = v[4]->via.f64;
    return get_str(d, v[3], "plan sink", p->sink_endpoint, sizeof p->sink_endpoint, false);
}

static hs_status get_tensors(dec *d, const msgpack_object *o, hs_msg *m)
{
    const msgpack_object_array *a = NULL;
    char what[64], shown[64];
    hs_status st;

    if ((st = get_array(d, o, "tensors", 0, HS_WIRE_MAX_TENSORS, &a)))
        return st;
    m->n_tensors = (int)a->size;
    for (int i = 0; i < m->n_tensors; i++) {
        hs_wire_tensor *wt = &m->tensors[i];
        hs_tensor *t = &wt->t;
        const msgpack_object_array *td, *dims;
        if (a->ptr[i].type != MSGPACK_OBJECT_ARRAY || a->ptr[i].via.array.size < 4)
            return bad(d, "tensor %d must be an array [name, dtype, dims, encoding]", i);
        td = &a->ptr[i].via.array;
        snprintf(what, sizeof what, "tensor %d name", i);
        if ((st = get_str(d, &td->ptr[0], what, wt->name, sizeof wt->name, false)))
            return st;
        const char *name = printable(wt->name, strlen(wt->name), shown, sizeof shown);

        const msgpack_object *dt = &td->ptr[1];
        if (str_is(dt, "float32"))
            t->dtype = HS_F32;
        else if (str_is(dt, "int64"))
            t->dtype = HS_I64;
        else if (dt->type == MSGPACK_OBJECT_STR) {
            char tmp[64];
            return bad(d, "tensor %d '%s': unknown dtype '%s'", i, name,
                       printable(dt->via.str.ptr, dt->via.str.size, tmp, sizeof tmp));
        } else
            return bad(d, "tensor %d '%s': dtype must be a string, got %s", i, name,
                       type_name(dt));

        if (td->ptr[2].type != MSGPACK_OBJECT_ARRAY)
            return bad(d, "tensor %d '%s': dims must be an array, got %s", i, name,
                       type_name(&td->ptr[2]));
        dims = &td->ptr[2].via.array;
        if (dims->size > HS_MAX_DIMS)
            return bad(d, "tensor %d '%s': rank %u, at most %d", i, name, dims->size,
                       HS_MAX_DIMS);
        t->ndim = (int)dims->size;
        uint64_t numel = 1;
        bool overflow = false;
        for (int k = 0; k < t->ndim; k++) {
            const msgpack_object *dim = &dims->ptr[k];
            if (dim->type == MSGPACK_OBJECT_NEGATIVE_INTEGER)
                return bad(d, "tensor %d '%s': dimension %d is negative (%lld)", i, name, k,
                           (long long)dim->via.i64);
            if (dim->type != MSGPACK_OBJECT_POSITIVE_INTEGER)
                return bad(d, "tensor %d '%s': dimension %d must be an integer, got %s", i,
                           name, k, type_name(dim));
            if (dim->via.u64 > INT64_MAX)
                return bad(d, "tensor %d '%s': dimension %d is %llu, too large", i, name, k,
                           (unsigned long long)dim->via.u64);
            t->shape[k] = (int64_t)dim->via.u64;
            overflow |= __builtin_mul_overflow(numel, dim->via.u64, &numel);
        }
        uint64_t nbytes;
        overflow |= __builtin_mul_overflow(numel, (uint64_t)hs_dtype_size(t->dtype), &nbytes);
        if (overflow || nbytes > (uint64_t)INT64_MAX || nbytes > SIZE_MAX) {
            char shape[160];
            return bad(d, "tensor %d '%s': shape %s %s overflows the element count", i, name,
                       hs_shape_str(t, shape, sizeof shape), hs__dtype_wire_name(t->dtype));
        }

        const msgpack_object *enc = &td->ptr[3];
        if (enc->type != MSGPACK_OBJECT_STR)
            return bad(d, "tensor %d '%s': encoding must be a string, got %s", i, name,
                       type_name(enc));
        if (!str_is(enc, HS_WIRE_ENCODING_RAW)) {
            char tmp[64];
            return bad(d, "tensor %d '%s': unknown encoding '%s' (this build reads \"raw\")", i,
                       name, printable(enc->via.str.ptr, enc->via.str.size, tmp, sizeof tmp));
        }
    }
    return HS_OK;
}

static void free_aligned(void *data, void *hint)
{
    (void)hint;
    free(data);
}

/* Replaces frame f by an aligned copy of its nbytes (> 0) bytes. */
static hs_status realign(zmq_msg_t *f, size_t nbytes)
{
    size_t cap = (nbytes + 63) & ~(size_t)63; /* aligned_alloc wants a multiple */
    void *buf = cap >= nbytes ? aligned_alloc(64, cap) : NULL;
    if (!buf)
        return HS_ERR_NOMEM;
    memcpy(buf, zmq_msg_data(f), nbytes);
    zmq_msg_t copy;
    if (zmq_msg_init_data(&copy, buf, nbytes, free_aligned, NULL) != 0) {
        free(buf);
        return HS_ERR_NOMEM;
    }
    zmq_msg_move(f, &copy); /* closes f's old content */
    zmq_msg_close(&copy);
    atomic_fetch_add(&realigned_frames, 1);
    return HS_OK;
}

/* Binds tensor i to frame i+1: exact size, then alignment.
 *
 * How often a frame arrives misaligned: over inproc never (the receiver gets the sender's own
 * buffer). Over tcp, libzmq (4.3) decodes into an 8 KiB batch buffer and hands out frames that
 * fit in what is left of it as pointers into it, at whatever offset the stream put them, so
 * small tensors (under ~8 KiB) are misaligned most of the time (test_transport's
 * misalignment_over_tcp_is_counted saw 359 of 400 float32 frames of 4..388 bytes); bigger frames get their own malloc'd block whose data sits 40
 * bytes in, which is 8-aligned. Copying a small frame costs next to nothing; activations big
 * enough to matter are never copied. */
static hs_status bind_frame(dec *d, hs_msg *m, int i)
{
    hs_wire_tensor *wt = &m->tensors[i];
    hs_tensor *t = &wt->t;
    zmq_msg_t *f = &m->frames[i + 1];
    size_t have = zmq_msg_size(f), need = hs_tensor_nbytes(t);
    if (have != need) {
        char shape[160], shown[64];
        return bad(d, "tensor %d '%s': frame holds %zu bytes, shape %s %s needs %zu", i,
                   printable(wt->name, strlen(wt->name), shown, sizeof shown), have,
                   hs_shape_str(t, shape, sizeof shape), hs__dtype_wire_name(t->dtype), need);
    }
    size_t align = hs_dtype_size(t->dtype);
    if (need && (uintptr_t)zmq_msg_data(f) % align != 0 && realign(f, need) != HS_OK)
        return hs__terr(d->err, HS_ERR_NOMEM, "%s: tensor %d: out of memory aligning %zu bytes",
                        d->kind, i, need);
    t->data = need ? zmq_msg_data(f) : NULL;
    return HS_OK;
}

/* A MODEL_CHUNK's one frame: within the file the header describes, of the size it says. */
static hs_status bind_chunk(dec *d, hs_msg *m)
{
    if (m->offset > m->total || m->chunk_size > m->total - m->offset)
        return bad(d, "a chunk of %u bytes at offset %llu runs past 'total' %llu",
                   (unsigned)m->chunk_size, (unsigned long long)m->offset,
                   (unsigned long long)m->total);
    if (m->n_frames != 2)
        return bad(d, "carries one chunk frame, but %d frames follow the header",
                   m->n_frames - 1);
    size_t have = zmq_msg_size(&m->frames[1]);
    if (have != m->chunk_size)
        return bad(d, "chunk frame holds %zu bytes, 'size' says %u", have,
                   (unsigned)m->chunk_size);
    m->chunk = zmq_msg_data(&m->frames[1]);
    return HS_OK;
}

static hs_status decode_header(dec *d, hs_msg *m)
{
    const uint8_t *p = zmq_msg_data(&m->frames[0]);
    size_t n = zmq_msg_size(&m->frames[0]), off = 0;
    hs_status st;

    if (n == 0)
        return bad(d, "header frame is empty");
    if (n > HS_WIRE_HEADER_MAX)
        return bad(d, "header frame is %zu bytes, at most %d", n, HS_WIRE_HEADER_MAX);
    const char *why = scan(p, n, &off, 1);
    if (why)
        return bad(d, "%s (%zu-byte header)", why, n);
    if (off != n)
        return bad(d, "%zu bytes of trailing garbage after the header's %zu", n - off, off);
    if ((p[0] & 0xf0) != 0x80 && p[0] != 0xde && p[0] != 0xdf)
        return bad(d, "not a msgpack map");

    msgpack_unpacked u;
    msgpack_unpacked_init(&u);
    size_t used = 0;
    msgpack_unpack_return r = msgpack_unpack_next(&u, (const char *)p, n, &used);
    if (r != MSGPACK_UNPACK_SUCCESS) {
        msgpack_unpacked_destroy(&u);
        return r == MSGPACK_UNPACK_NOMEM_ERROR ? hs__terr(d->err, HS_ERR_NOMEM,
                                                          "header: out of memory unpacking")
                                               : bad(d, "msgpack-c rejects it (%d)", (int)r);
    }

    /* "v", "k", then the field keys in bit order. */
    const char *keys[2 + HS_N_FIELDS];
    const msgpack_object *v[2 + HS_N_FIELDS] = { 0 };
    st = HS_OK;
    keys[0] = "v";
    keys[1] = "k";
    for (int i = 0; i < HS_N_FIELDS; i++)
        keys[2 + i] = hs__field_keys[i];
    if ((st = get_keys(d, &u.data, "top-level map", keys, 2 + HS_N_FIELDS, v)))
        goto out;

    uint64_t version = 0;
    if (!v[0]) {
        st = bad(d, "no protocol version 'v'");
        goto out;
    }
    if ((st = get_uint(d, v[0], "v", UINT32_MAX, &version)))
        goto out;
    if (version != HS_PROTOCOL_VERSION) {
        st = bad(d, "protocol version %llu, this build speaks %d", (unsigned long long)version,
                 HS_PROTOCOL_VERSION);
        goto out;
    }
    if (!v[1]) {
        st = bad(d, "no message kind 'k'");
        goto out;
    }
    if (v[1]->type != MSGPACK_OBJECT_STR) {
        st = bad(d, "'k' must be a string, got %s", type_name(v[1]));
        goto out;
    }
    m->kind = HS_MSG_COUNT;
    for (int k = 0; k < HS_MSG_COUNT; k++)
        if (str_is(v[1], hs_msg_kind_name((hs_msg_kind)k)))
            m->kind = (hs_msg_kind)k;
    if (m->kind == HS_MSG_COUNT) {
        char tmp[64];
        st = bad(d, "unknown message kind '%s'",
                 printable(v[1]->via.str.ptr, v[1]->via.str.size, tmp, sizeof tmp));
        goto out;
    }
    d->kind = hs_msg_kind_name(m->kind);

    const hs__kind_fields *kf = &hs__kind_fields_table[m->kind];
    for (int i = 0; i < HS_N_FIELDS; i++) {
        unsigned bit = 1u << i;
        const msgpack_object *o = v[2 + i];
        const char *key = hs__field_keys[i];
        uint64_t uv = 0;
        int64_t iv = 0;
        if (!((kf->required | kf->optional) & bit))
            continue; /* not this kind's: ignored like an unknown key */
        if (!o) {
            if (kf->required & bit) {
                st = bad(d, "missing field '%s'", key);
                goto out;
            }
            continue;
        }
        switch (bit) {
        case HS_F_NAME: st = get_str(d, o, key, m->name, sizeof m->name, true); break;
        case HS_F_ENDPOINT: st = get_str(d, o, key, m->endpoint, sizeof m->endpoint, false); break;
        case HS_F_DIGEST: st = get_uint(d, o, key, UINT64_MAX, &m->model_digest); break;
        case HS_F_STATUS:
            if (!(st = get_int(d, o, key, INT32_MIN, 0, &iv)))
                m->status = (int32_t)iv;
            break;
        case HS_F_REASON: st = get_str(d, o, key, m->reason, sizeof m->reason, false); break;
        case HS_F_PLAN: st = get_plan(d, o, &m->plan); break;
        case HS_F_EPOCH:
        case HS_F_RETIRE:
        case HS_F_COUNT:
            if (!(st = get_uint(d, o, key, UINT32_MAX, &uv)))
                *(bit == HS_F_EPOCH    ? &m->epoch
                  : bit == HS_F_RETIRE ? &m->retire_below
                                       : &m->count) = (uint32_t)uv;
            break;
        case HS_F_RID: st = get_uint(d, o, key, UINT64_MAX, &m->request_id); break;
        case HS_F_CUT:
        case HS_F_STAGE:
        case HS_F_FIRST:
        case HS_F_LAST:
            if (!(st = get_int(d, o, key, 0, INT32_MAX, &iv)))
                *(bit == HS_F_CUT     ? &m->cut
                  : bit == HS_F_STAGE ? &m->stage
                  : bit == HS_F_FIRST ? &m->first
                                      : &m->last) = (int32_t)iv;
            break;
        case HS_F_TENSORS: st = get_tensors(d, o, m); break;
        case HS_F_SECONDS:
            if (o->type != MSGPACK_OBJECT_FLOAT64 && o->type != MSGPACK_OBJECT_FLOAT32)
                st = bad(d, "'seconds' must be a float, got %s", type_name(o));
            else if (!(o->via.f64 >= 0 && isfinite(o->via.f64)))
                st = bad(d, "'seconds' is %g, must be finite and >= 0", o->via.f64);
            else
                m->seconds = o->via.f64;
            break;
        case HS_F_OFFSET: st = get_uint(d, o, key, HS_WIRE_MODEL_MAX, &m->offset); break;
        case HS_F_TOTAL: st = get_uint(d, o, key, HS_WIRE_MODEL_MAX, &m->total); break;
        case HS_F_SIZE:
            if (!(st = get_uint(d, o, key, HS_WIRE_CHUNK_MAX, &uv)))
                m->chunk_size = (uint32_t)uv;
            break;
        }
        if (st)
            goto out;
    }
out:
    msgpack_unpacked_destroy(&u);
    return st;
}

/* hs_msg_init without touching the big arrays (plan stages and endpoints, tensors, frames:
 * 25 KiB that would be written for every message, much of L1), which only their counts make
 * meaningful. Everything else is zeroed, as hs_msg_init does. */
static void reset(hs_msg *m)
{
    memset(m, 0, offsetof(hs_msg, plan));
    m->plan.epoch = 0;
    m->plan.n_stages = 0;
    m->plan.n_endpoints = 0;
    m->plan.sink_endpoint[0] = '\0';
    m->plan.window = HS_WIRE_WINDOW_UNSENT;
    memset(&m->epoch, 0, offsetof(hs_msg, tensors) - offsetof(hs_msg, epoch));
    memset(&m->stage, 0, offsetof(hs_msg, frames) - offsetof(hs_msg, stage));
    m->n_frames = 0;
}

hs_status hs_msg_decode(hs_msg *m, zmq_msg_t *frames, int n_frames, hs_error *err)
{
    dec d = { .kind = "header", .err = err };
    hs_status st;

    reset(m);
    if (n_frames < 1 || n_frames > HS_WIRE_MAX_TENSORS + 1) {
        for (int i = 0; i < n_frames; i++)
            zmq_msg_close(&frames[i]);
        return n_frames < 1 ? bad(&d, "message has no frames")
                            : bad(&d, "message has %d frames, at most %d (header + %d tensors)",
                                  n_frames, HS_WIRE_MAX_TENSORS + 1, HS_WIRE_MAX_TENSORS);
    }
    for (int i = 0; i < n_frames; i++) {
        zmq_msg_init(&m->frames[i]);
        zmq_msg_move(&m->frames[i], &frames[i]);
        zmq_msg_close(&frames[i]);
    }
    m->n_frames = n_frames;

    if ((st = decode_header(&d, m)))
        goto fail;
    if (hs__kind_has_chunk(m->kind)) {
        if ((st = bind_chunk(&d, m)))
            goto fail;
        return HS_OK;
    }
    if (n_frames - 1 != m->n_tensors) {
        if (m->n_tensors == 0 && !(hs__kind_fields_table[m->kind].required & HS_F_TENSORS))
            st = bad(&d, "carries no tensors, but %d frames follow the header", n_frames - 1);
        else
            st = bad(&d, "%d tensors described, %d tensor frames", m->n_tensors, n_frames - 1);
        goto fail;
    }
    for (int i = 0; i < m->n_tensors; i++)
        if ((st = bind_frame(&d, m, i)))
            goto fail;
    return HS_OK;
fail:
    hs_msg_close(m);
    return st;
}
