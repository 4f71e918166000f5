/*
 * Fuzz harness for the message decoder (hs_msg_decode): everything a peer sends goes through
 * it, so it must reject any input cleanly (no crash, no out-of-bounds read, no leak).
 *
 * Input format, one fuzz input = one multipart message:
 *   byte 0: bits 0-6 = number of frames (values above 70 are taken modulo 71), bit 7 = place
 *           every frame at an odd address (exercises the alignment copy);
 *   then per frame: a 4-byte little-endian length (clamped to what is left; with fewer than
 *   4 bytes left the frame takes them all) and that many bytes.
 * Each frame is copied into its own malloc'd block that ends exactly where the frame ends, so
 * AddressSanitizer catches any read past a frame.
 *
 * Built with -DHS_FUZZ=ON (clang, -fsanitize=fuzzer) this is a libFuzzer target. Otherwise
 * main() runs every file of the corpus directories given on the command line, expecting files
 * named ok_* to decode and bad_* to be rejected, and prints "fuzz_wire: N passed, M failed".
 * `fuzz_wire --write-seeds DIR` regenerates the committed seed corpus (tests/data/wire_corpus).
 */
#include <ctype.h>
#include <dirent.h>
#include <errno.h>
#include <msgpack.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "transport.h"
#include "transport_impl.h"

#define FUZZ_MAX_FRAMES 70

static void free_block(void *data, void *hint)
{
    (void)data;
    free(hint);
}

/* Decodes one input; returns hs_msg_decode's status (HS_ERR_NOMEM if the harness itself could
 * not allocate). */
static hs_status run_one(const uint8_t *data, size_t size, hs_error *err)
{
    static hs_msg m; /* 25 KiB: keep it off the stack */
    zmq_msg_t frames[FUZZ_MAX_FRAMES];
    if (size == 0)
        return HS_ERR_PARSE;
    int n = (data[0] & 0x7f) % (FUZZ_MAX_FRAMES + 1);
    size_t shift = data[0] >> 7, off = 1;
    for (int i = 0; i < n; i++) {
        size_t len = size - off;
        if (len >= 4) {
            uint32_t l = (uint32_t)data[off] | (uint32_t)data[off + 1] << 8 |
                         (uint32_t)data[off + 2] << 16 | (uint32_t)data[off + 3] << 24;
            off += 4;
            len = size - off;
            if (l < len)
                len = l;
        }
        uint8_t *block = malloc(len + shift ? len + shift : 1);
        if (!block) {
            for (int j = 0; j < i; j++)
                zmq_msg_close(&frames[j]);
            return HS_ERR_NOMEM;
        }
        if (len)
            memcpy(block + shift, data + off, len);
        off += len;
        zmq_msg_init_data(&frames[i], block + shift, len, free_block, block);
    }
    hs_status st = hs_msg_decode(&m, frames, n, err);
    hs_msg_close(&m);
    return st;
}

#ifdef HS_LIBFUZZER

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    hs_error err;
    run_one(data, size, &err);
    return 0;
}

#else

/* ---- seed corpus --------------------------------------------------------------------------- */

typedef struct seed {
    uint8_t buf[1 << 20];
    size_t size;
    int n_frames;
} seed;

static void seed_start(seed *s, bool misalign)
{
    s->size = 1;
    s->n_frames = 0;
    s->buf[0] = misalign ? 0x80 : 0;
}

static void seed_frame(seed *s, const void *data, size_t len)
{
    uint32_t l = (uint32_t)len;
    for (int i = 0; i < 4; i++)
        s->buf[s->size++] = (uint8_t)(l >> (8 * i));
    if (len)
        memcpy(s->buf + s->size, data, len);
    s->size += len;
    s->n_frames++;
    s->buf[0] = (uint8_t)((s->buf[0] & 0x80) | s->n_frames);
}

static int seed_write(const char *dir, const char *name, const seed *s)
{
    char path[1024];
    snprintf(path, sizeof path, "%s/%s", dir, name);
    FILE *f = fopen(path, "wb");
    if (!f || fwrite(s->buf, 1, s->size, f) != s->size || fclose(f) != 0) {
        fprintf(stderr, "fuzz_wire: %s: %s\n", path, strerror(errno));
        return 1;
    }
    return 0;
}

/* Header of m plus its tensor frames. */
static void seed_msg(seed *s, const hs_msg *m, bool misalign)
{
    void *h;
    size_t n;
    hs_error err;
    if (hs_msg_encode_header(m, &h, &n, &err) != HS_OK) {
        fprintf(stderr, "fuzz_wire: %s\n", err.msg);
        exit(2);
    }
    seed_start(s, misalign);
    seed_frame(s, h, n);
    free(h);
    for (int i = 0; i < m->n_tensors; i++)
        seed_frame(s, m->tensors[i].t.data, hs_tensor_nbytes(&m->tensors[i].t));
    if (hs__kind_has_chunk(m->kind))
        seed_frame(s, m->chunk, m->chunk_size);
}

static float g_f32[2 * 3 * 4];
static int64_t g_i64[5];

static void add_tensor(hs_msg *m, const char *name, hs_dtype dtype, int ndim,
                       const int64_t *shape, void *data)
{
    hs_wire_tensor *wt = &m->tensors[m->n_tensors++];
    snprintf(wt->name, sizeof wt->name, "%s", name);
    wt->t.dtype = dtype;
    wt->t.ndim = ndim;
    memcpy(wt->t.shape, shape, sizeof(int64_t) * (size_t)ndim);
    wt->t.data = data;
}

static void sample(hs_msg *m, hs_msg_kind k)
{
    static const int64_t s234[] = { 2, 3, 4 }, s5[] = { 5 }, s0[] = { 3, 0 };
    hs_msg_init(m, k);
    strcpy(m->name, "edge-1");
    strcpy(m->endpoint, "tcp://192.0.2.10:5701");
    m->model_digest = 0x0123456789abcdefULL;
    m->status = k == HS_MSG_READY ? -4 : 0;
    if (k == HS_MSG_READY)
        strcpy(m->reason, "out of memory for stage 1");
    m->plan.epoch = 7;
    m->plan.n_stages = 2;
    strcpy(m->plan.stages[0].device, "edge-1");
    m->plan.stages[0].first = 0, m->plan.stages[0].last = 31;
    strcpy(m->plan.stages[1].device, "edge-2");
    m->plan.stages[1].first = 31, m->plan.stages[1].last = 60;
    m->plan.n_endpoints = 2;
    strcpy(m->plan.endpoints[0].device, "edge-1");
    strcpy(m->plan.endpoints[0].endpoint, "tcp://192.0.2.10:5701");
    strcpy(m->plan.endpoints[1].device, "edge-2");
    strcpy(m->plan.endpoints[1].endpoint, "tcp://192.0.2.11:5701");
    strcpy(m->plan.sink_endpoint, "tcp://192.0.2.1:5800");
    m->epoch = 7;
    m->retire_below = 6;
    m->request_id = 42;
    m->cut = 1;
    m->first = 29; /* DATA: an elastic hand-off two nodes before stage 1's planned first */
    m->last = 60;  /* TELEMETRY: runs of [29, 60) */
    m->stage = 1;
    m->count = 16;
    m->seconds = 0.375;
    if (k == HS_MSG_DATA || k == HS_MSG_SUBMIT || k == HS_MSG_REPLY) {
        add_tensor(m, "layer2.out", HS_F32, 3, s234, g_f32);
        if (k != HS_MSG_SUBMIT)
            add_tensor(m, "ids", HS_I64, 1, s5, g_i64);
        if (k == HS_MSG_DATA) {
            add_tensor(m, "scalar", HS_F32, 0, s5, g_f32);
            add_tensor(m, "empty", HS_F32, 2, s0, NULL);
        }
    }
    if (k == HS_MSG_BYE)
        strcpy(m->reason, "leaving");
    if (k == HS_MSG_MODEL_REQUEST || k == HS_MSG_MODEL_CHUNK) {
        m->offset = 64;
        m->total = 64 + sizeof g_f32;
        m->chunk = g_f32;
        m->chunk_size = sizeof g_f32;
    }
}

typedef struct pk {
    msgpack_sbuffer sb;
    msgpack_packer p;
} pk;

static void pk_init(pk *k)
{
    msgpack_sbuffer_init(&k->sb);
    msgpack_packer_init(&k->p, &k->sb, msgpack_sbuffer_write);
}
static void pk_str(pk *k, const char *s)
{
    msgpack_pack_str(&k->p, strlen(s));
    msgpack_pack_str_body(&k->p, s, strlen(s));
}
static void pk_head(pk *k, size_t fields, const char *kind)
{
    pk_init(k);
    msgpack_pack_map(&k->p, 2 + fields);
    pk_str(k, "v");
    msgpack_pack_uint32(&k->p, HS_PROTOCOL_VERSION);
    pk_str(k, "k");
    pk_str(k, kind);
}
/* DATA head with epoch, rid, cut, and the key "tensors": the caller writes its value. */
static void pk_data(pk *k)
{
    pk_head(k, 4, "DATA");
    pk_str(k, "epoch"), msgpack_pack_uint32(&k->p, 1);
    pk_str(k, "rid"), msgpack_pack_uint64(&k->p, 1);
    pk_str(k, "cut"), msgpack_pack_uint32(&k->p, 1);
    pk_str(k, "tensors");
}
static void pk_tensor(pk *k, const char *name, const char *dtype, int ndim, const int64_t *dims,
                      const char *enc)
{
    msgpack_pack_array(&k->p, 4);
    pk_str(k, name);
    pk_str(k, dtype);
    msgpack_pack_array(&k->p, (size_t)ndim);
    for (int i = 0; i < ndim; i++)
        msgpack_pack_int64(&k->p, dims[i]);
    pk_str(k, enc);
}
/* A seed of header k followed by frames of the given sizes (zero bytes). */
static int pk_write(const char *dir, const char *name, pk *k, int n_frames, const size_t *sizes)
{
    static seed s;
    static uint8_t zeros[4096];
    seed_start(&s, false);
    seed_frame(&s, k->sb.data, k->sb.size);
    for (int i = 0; i < n_frames; i++)
        seed_frame(&s, zeros, sizes ? sizes[i] : 4);
    msgpack_sbuffer_destroy(&k->sb);
    return seed_write(dir, name, &s);
}

static int write_seeds(const char *dir)
{
    static seed s;
    static hs_msg m;
    int bad = 0;
    char name[64];
    for (size_t i = 0; i < sizeof g_f32 / sizeof g_f32[0]; i++)
        g_f32[i] = (float)i - 7.5f;
    for (int i = 0; i < 5; i++)
        g_i64[i] = (int64_t)i << 33;

    for (int k = 0; k < HS_MSG_COUNT; k++) {
        char lower[32];
        const char *kn = hs_msg_kind_name((hs_msg_kind)k);
        size_t j = 0;
        for (; kn[j] && j + 1 < sizeof lower; j++)
            lower[j] = (char)tolower((unsigned char)kn[j]);
        lower[j] = '\0';
        sample(&m, (hs_msg_kind)k);
        seed_msg(&s, &m, false);
        snprintf(name, sizeof name, "ok_%s", lower);
        bad |= seed_write(dir, name, &s);
    }
    sample(&m, HS_MSG_DATA);
    seed_msg(&s, &m, true);
    bad |= seed_write(dir, "ok_data_misaligned", &s);

    pk k;
    int64_t d2[] = { 2 }, d4[] = { 1, 256, 14, 14 }, dneg[] = { 1, -3 },
            dhuge[] = { INT64_C(1) << 32, INT64_C(1) << 32, 16 };
    size_t s8[] = { 8 }, s1000[] = { 1000 };

    pk_head(&k, 1, "BYE"), pk_str(&k, "x-future"), msgpack_pack_array(&k.p, 0);
    bad |= pk_write(dir, "ok_unknown_key", &k, 0, NULL);
    pk_init(&k), msgpack_pack_map(&k.p, 2), pk_str(&k, "v"),
        msgpack_pack_uint32(&k.p, HS_PROTOCOL_VERSION + 1),
        pk_str(&k, "k"), pk_str(&k, "BYE");
    bad |= pk_write(dir, "bad_version", &k, 0, NULL);
    pk_head(&k, 0, "SHUTDOWN");
    bad |= pk_write(dir, "bad_unknown_kind", &k, 0, NULL);
    pk_init(&k), msgpack_pack_map(&k.p, 2), pk_str(&k, "v"),
        msgpack_pack_uint32(&k.p, HS_PROTOCOL_VERSION),
        pk_str(&k, "k"), msgpack_pack_uint32(&k.p, 6);
    bad |= pk_write(dir, "bad_kind_type", &k, 0, NULL);
    pk_head(&k, 2, "COMMIT"), pk_str(&k, "epoch"), pk_str(&k, "7"), pk_str(&k, "retire"),
        msgpack_pack_uint32(&k.p, 1);
    bad |= pk_write(dir, "bad_epoch_type", &k, 0, NULL);
    pk_head(&k, 2, "COMMIT"), pk_str(&k, "epoch"), msgpack_pack_uint64(&k.p, 1ull << 32),
        pk_str(&k, "retire"), msgpack_pack_uint32(&k.p, 1);
    bad |= pk_write(dir, "bad_epoch_range", &k, 0, NULL);
    char longname[HS_NAME_MAX + 1];
    memset(longname, 'n', HS_NAME_MAX);
    longname[HS_NAME_MAX] = '\0';
    pk_head(&k, 3, "HELLO"), pk_str(&k, "name"), pk_str(&k, longname), pk_str(&k, "endpoint"),
        pk_str(&k, "tcp://x:1"), pk_str(&k, "digest"), msgpack_pack_uint64(&k.p, 1);
    bad |= pk_write(dir, "bad_name_long", &k, 0, NULL);
    pk_head(&k, 3, "HELLO"), pk_str(&k, "name"), msgpack_pack_str(&k.p, 3),
        msgpack_pack_str_body(&k.p, "a\0b", 3), pk_str(&k, "endpoint"), pk_str(&k, "tcp://x:1"),
        pk_str(&k, "digest"), msgpack_pack_uint64(&k.p, 1);
    bad |= pk_write(dir, "bad_name_nul", &k, 0, NULL);
    pk_head(&k, 1, "HELLO"), pk_str(&k, "name"), pk_str(&k, "w");
    bad |= pk_write(dir, "bad_missing_field", &k, 0, NULL);
    pk_data(&k), msgpack_pack_array(&k.p, HS_WIRE_MAX_TENSORS + 1);
    for (int i = 0; i <= HS_WIRE_MAX_TENSORS; i++)
        pk_tensor(&k, "t", "float32", 1, d2, "raw");
    bad |= pk_write(dir, "bad_too_many_tensors", &k, HS_WIRE_MAX_TENSORS, NULL);
    pk_head(&k, 0, "BYE");
    bad |= pk_write(dir, "bad_too_many_frames", &k, HS_WIRE_MAX_TENSORS + 1, NULL);
    pk_head(&k, 5, "DATA"), pk_str(&k, "epoch"), msgpack_pack_uint32(&k.p, 1), pk_str(&k, "rid"),
        msgpack_pack_uint64(&k.p, 1), pk_str(&k, "cut"), msgpack_pack_uint32(&k.p, 1),
        pk_str(&k, "first"), msgpack_pack_int32(&k.p, -2), pk_str(&k, "tensors"),
        msgpack_pack_array(&k.p, 0);
    bad |= pk_write(dir, "bad_first_negative", &k, 0, NULL);
    pk_data(&k), msgpack_pack_array(&k.p, 1), pk_tensor(&k, "layer3.out", "float32", 4, d4, "raw");
    bad |= pk_write(dir, "bad_frame_size", &k, 1, s1000);
    pk_data(&k), msgpack_pack_array(&k.p, 2), pk_tensor(&k, "a", "float32", 1, d2, "raw"),
        pk_tensor(&k, "b", "float32", 1, d2, "raw");
    bad |= pk_write(dir, "bad_frame_count", &k, 1, s8);
    pk_head(&k, 1, "BYE"), pk_str(&k, "reason"), pk_str(&k, "a reason cut short");
    k.sb.size -= 6;
    bad |= pk_write(dir, "bad_truncated", &k, 0, NULL);
    pk_head(&k, 0, "BYE"), msgpack_pack_uint32(&k.p, 99);
    bad |= pk_write(dir, "bad_trailing_garbage", &k, 0, NULL);
    pk_data(&k), msgpack_pack_array(&k.p, 1), pk_tensor(&k, "x", "float32", 2, dneg, "raw");
    bad |= pk_write(dir, "bad_negative_dim", &k, 1, NULL);
    pk_data(&k), msgpack_pack_array(&k.p, 1), pk_tensor(&k, "x", "float32", 3, dhuge, "raw");
    bad |= pk_write(dir, "bad_huge_dims", &k, 1, NULL);
    pk_data(&k), msgpack_pack_array(&k.p, 1), pk_tensor(&k, "x", "bfloat16", 1, d2, "raw");
    bad |= pk_write(dir, "bad_dtype", &k, 1, NULL);
    pk_data(&k), msgpack_pack_array(&k.p, 1), pk_tensor(&k, "x", "float32", 1, d2, "lz4");
    bad |= pk_write(dir, "bad_encoding", &k, 1, s8);
    pk_head(&k, 1, "PREPARE"), pk_str(&k, "plan"), msgpack_pack_map(&k.p, 4);
    pk_str(&k, "epoch"), msgpack_pack_uint32(&k.p, 1), pk_str(&k, "stages");
    msgpack_pack_array(&k.p, 1), msgpack_pack_array(&k.p, 3), pk_str(&k, "d"),
        msgpack_pack_int32(&k.p, 9), msgpack_pack_int32(&k.p, 3);
    pk_str(&k, "endpoints"), msgpack_pack_array(&k.p, 0), pk_str(&k, "sink"), pk_str(&k, "");
    bad |= pk_write(dir, "bad_first_after_last", &k, 0, NULL);
    pk_head(&k, 1, "PREPARE"), pk_str(&k, "plan"), msgpack_pack_map(&k.p, 4);
    pk_str(&k, "epoch"), msgpack_pack_uint32(&k.p, 1), pk_str(&k, "stages"),
        msgpack_pack_array(&k.p, 0), pk_str(&k, "endpoints"), msgpack_pack_array(&k.p, 0),
        pk_str(&k, "sink"), pk_str(&k, "");
    bad |= pk_write(dir, "bad_no_stages", &k, 0, NULL);
    pk_head(&k, 1, "BYE"), pk_str(&k, "deep");
    for (int i = 0; i < 12; i++)
        msgpack_pack_array(&k.p, 1);
    msgpack_pack_nil(&k.p);
    bad |= pk_write(dir, "bad_nested", &k, 0, NULL);
    pk_init(&k), msgpack_sbuffer_write(&k.sb, "\xdd\xff\xff\xff\xff", 5);
    bad |= pk_write(dir, "bad_huge_array", &k, 0, NULL);
    pk_init(&k), msgpack_sbuffer_write(&k.sb, "\xdf\x7f\xff\xff\xff\xa1v\x01", 8);
    bad |= pk_write(dir, "bad_huge_map", &k, 0, NULL);
    pk_head(&k, 1, "BYE"), pk_str(&k, "x"), msgpack_sbuffer_write(&k.sb, "\xc1", 1);
    bad |= pk_write(dir, "bad_c1_byte", &k, 0, NULL);
    pk_head(&k, 2, "BYE"), pk_str(&k, "reason"), pk_str(&k, "a"), pk_str(&k, "reason"),
        pk_str(&k, "b");
    bad |= pk_write(dir, "bad_duplicate_key", &k, 0, NULL);
    pk_init(&k), msgpack_pack_array(&k.p, 2), pk_str(&k, "v"),
        msgpack_pack_uint32(&k.p, HS_PROTOCOL_VERSION);
    bad |= pk_write(dir, "bad_not_a_map", &k, 0, NULL);
    pk_head(&k, 1, "MODEL_REQUEST"), pk_str(&k, "offset"),
        msgpack_pack_uint64(&k.p, HS_WIRE_MODEL_MAX + 1);
    bad |= pk_write(dir, "bad_model_offset_range", &k, 0, NULL);
    pk_head(&k, 4, "MODEL_CHUNK"), pk_str(&k, "offset"), msgpack_pack_uint32(&k.p, 96),
        pk_str(&k, "total"), msgpack_pack_uint32(&k.p, 100), pk_str(&k, "digest"),
        msgpack_pack_uint32(&k.p, 1), pk_str(&k, "size"), msgpack_pack_uint32(&k.p, 8);
    bad |= pk_write(dir, "bad_chunk_past_total", &k, 1, s8);
    pk_head(&k, 4, "MODEL_CHUNK"), pk_str(&k, "offset"), msgpack_pack_uint32(&k.p, 0),
        pk_str(&k, "total"), msgpack_pack_uint64(&k.p, HS_WIRE_MODEL_MAX),
        pk_str(&k, "digest"), msgpack_pack_uint32(&k.p, 1), pk_str(&k, "size"),
        msgpack_pack_uint32(&k.p, HS_WIRE_CHUNK_MAX + 1);
    bad |= pk_write(dir, "bad_chunk_too_big", &k, 1, s8);
    pk_head(&k, 4, "MODEL_CHUNK"), pk_str(&k, "offset"), msgpack_pack_uint32(&k.p, 0),
        pk_str(&k, "total"), msgpack_pack_uint32(&k.p, 100), pk_str(&k, "digest"),
        msgpack_pack_uint32(&k.p, 1), pk_str(&k, "size"), msgpack_pack_uint32(&k.p, 8);
    bad |= pk_write(dir, "bad_chunk_two_frames", &k, 2, NULL);
    pk_init(&k);
    bad |= pk_write(dir, "bad_empty_header", &k, 0, NULL);
    seed_start(&s, false);
    bad |= seed_write(dir, "bad_no_frames", &s);
    return bad;
}

/* ---- corpus runner --------------------------------------------------------------------------- */

static int cmp_str(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

static bool run_file(const char *path, const char *base, int *passed, int *failed)
{
    FILE *f = fopen(path, "rb");
    if (!f) {
        fprintf(stderr, "fuzz_wire: %s: %s\n", path, strerror(errno));
        (*failed)++;
        return false;
    }
    static uint8_t buf[4 << 20];
    size_t n = fread(buf, 1, sizeof buf, f);
    fclose(f);
    hs_error err = { 0 };
    hs_status st = run_one(buf, n, &err);
    bool ok = true;
    if (strncmp(base, "ok_", 3) == 0 && st != HS_OK)
        ok = false;
    if (strncmp(base, "bad_", 4) == 0 && st != HS_ERR_PARSE)
        ok = false;
    if (ok)
        (*passed)++;
    else
        (*failed)++;
    printf("%-4s %-28s %s\n", ok ? "ok" : "FAIL", base, st == HS_OK ? "decoded" : err.msg);
    return ok;
}

static void run_dir(const char *dir, int *passed, int *failed)
{
    DIR *d = opendir(dir);
    if (!d) { /* a single file */
        const char *base = strrchr(dir, '/');
        run_file(dir, base ? base + 1 : dir, passed, failed);
        return;
    }
    char **names = NULL;
    size_t count = 0, cap = 0;
    struct dirent *e;
    while ((e = readdir(d))) {
        if (e->d_name[0] == '.')
            continue;
        if (count == cap) {
            cap = cap ? 2 * cap : 64;
            names = realloc(names, cap * sizeof *names);
        }
        names[count++] = strdup(e->d_name);
    }
    closedir(d);
    qsort(names, count, sizeof *names, cmp_str);
    for (size_t i = 0; i < count; i++) {
        char path[4096];
        snprintf(path, sizeof path, "%s/%s", dir, names[i]);
        run_file(path, names[i], passed, failed);
        free(names[i]);
    }
    free(names);
}

int main(int argc, char **argv)
{
    if (argc == 3 && strcmp(argv[1], "--write-seeds") == 0)
        return write_seeds(argv[2]);
    if (argc < 2) {
        fprintf(stderr, "usage: fuzz_wire CORPUS_DIR_OR_FILE... | --write-seeds DIR\n");
        return 2;
    }
    int passed = 0, failed = 0;
    for (int i = 1; i < argc; i++)
        run_dir(argv[i], &passed, &failed);
    printf("fuzz_wire: %d passed, %d failed\n", passed, failed);
    return failed || passed == 0 ? 1 : 0;
}
#endif
