/*
 * What the transport costs on top of plain ZeroMQ, measured on the same socket types in the
 * same run.
 *
 * (1) Throughput of activation transfers: float32 tensors of 1 MiB and 8 MiB sent as DATA
 *     messages with hs_msg_send / hs_msg_recv over PUSH/PULL on tcp://127.0.0.1, sender and
 *     receiver in two threads, against raw zmq_send / zmq_recv of the same bytes (which copy
 *     on both ends), raw zero-copy zmq_msg_init_data / zmq_msg_recv (which do not), and raw
 *     zero-copy with an 84-byte first frame like hotsplit's header (see RAW_ZC2). Each
 *     mode runs --rounds times for --seconds, interleaved; the best round and the median are
 *     reported (the best is less sensitive to other load on a shared machine), and the target,
 *     hotsplit / raw >= 0.9, is judged on the best.
 * (2) Latency added per hop for a 100 KiB tensor: a ping-pong over PAIR on tcp between two
 *     processes, one-way time = round trip / 2, p50 and p99 over --iters round trips per mode
 *     after a warm-up, the modes interleaved in blocks of 100 round trips.
 *
 * usage: bench_transport [--out DIR] [--seconds S] [--rounds R] [--iters N] [--quick]
 * Writes DIR/transport.csv and DIR/transport.json (DIR defaults to out/bench). Progress goes to
 * stderr, the table to stdout.
 */
#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "transport.h"
#include "bench_util.h"

/* RAW_ZC2 sends what hotsplit sends, an 84-byte first frame and the zero-copy tensor frame,
 * without encoding or decoding anything: it separates ZeroMQ's cost of a two-frame message
 * from the transport's own. */
typedef enum mode { RAW, RAW_ZC, RAW_ZC2, HS, N_MODES } mode;
static const char *const mode_names[N_MODES] = { "raw", "raw_zerocopy", "raw_zerocopy_2f",
                                                 "hotsplit" };

typedef struct options {
    const char *out_dir;
    double seconds;
    int rounds;
    int iters;
} options;

static void sleep_ms(int ms)
{
    struct timespec ts = { ms / 1000, (long)(ms % 1000) * 1000000L };
    nanosleep(&ts, NULL);
}

static void die(const char *what)
{
    fprintf(stderr, "bench_transport: %s: %s\n", what, zmq_strerror(errno));
    exit(1);
}

static void noop_free(void *data, void *hint)
{
    (void)data;
    (void)hint;
}

static atomic_long released;
static void count_release(void *hint)
{
    (void)hint;
    atomic_fetch_add(&released, 1);
}

static void build_data(hs_msg *m, float *buf, size_t bytes, uint64_t rid)
{
    hs_msg_init(m, HS_MSG_DATA);
    m->epoch = 1;
    m->request_id = rid;
    m->cut = 1;
    m->n_tensors = 1;
    strcpy(m->tensors[0].name, "activation");
    m->tensors[0].t.dtype = HS_F32;
    m->tensors[0].t.ndim = 2;
    m->tensors[0].t.shape[0] = 1;
    m->tensors[0].t.shape[1] = (int64_t)(bytes / sizeof(float));
    m->tensors[0].t.data = buf;
}

/* Sends one message of `bytes` from buf in mode md; the last message of a run is a 1-byte
 * (raw) or tensor-less (hotsplit) stop marker. */
static void send_one(void *s, mode md, hs_msg *m, float *buf, size_t bytes, bool stop)
{
    hs_error err;
    if (md == HS) {
        if (stop)
            hs_msg_init(m, HS_MSG_BYE);
        else
            build_data(m, buf, bytes, 1);
        if (hs_msg_send(s, NULL, m, stop ? NULL : count_release, NULL, 0, &err) != HS_OK) {
            fprintf(stderr, "bench_transport: %s\n", err.msg);
            exit(1);
        }
        return;
    }
    if (stop) {
        if (zmq_send(s, "", 1, 0) < 0)
            die("zmq_send");
    } else if (md == RAW) {
        if (zmq_send(s, buf, bytes, 0) < 0)
            die("zmq_send");
    } else {
        static const char header[84] = "an 84-byte first frame, as long as a DATA header";
        if (md == RAW_ZC2 && zmq_send(s, header, sizeof header, ZMQ_SNDMORE) < 0)
            die("zmq_send");
        zmq_msg_t f;
        zmq_msg_init_data(&f, buf, bytes, noop_free, NULL);
        if (zmq_msg_send(&f, s, 0) < 0)
            die("zmq_msg_send");
    }
}

/* Receives one message; returns its payload bytes (1 or 0 for a stop marker). */
static size_t recv_one(void *s, mode md, hs_msg *m, void *buf, size_t cap)
{
    hs_error err;
    if (md == HS) {
        if (hs_msg_recv(s, NULL, 0, m, 0, &err) != HS_OK) {
            fprintf(stderr, "bench_transport: %s\n", err.msg);
            exit(1);
        }
        size_t n = m->n_tensors ? hs_tensor_nbytes(&m->tensors[0].t) : 0;
        hs_msg_close(m);
        return n;
    }
    if (md == RAW) {
        int n = zmq_recv(s, buf, cap, 0);
        if (n < 0)
            die("zmq_recv");
        return (size_t)n;
    }
    size_t n = 0;
    int more = 1;
    while (more) { /* the last frame is the payload */
        zmq_msg_t f;
        zmq_msg_init(&f);
        if (zmq_msg_recv(&f, s, 0) < 0)
            die("zmq_msg_recv");
        n = zmq_msg_size(&f);
        more = zmq_msg_more(&f);
        zmq_msg_close(&f);
    }
    return n;
}

/* ---- (1) throughput ----------------------------------------------------------------------- */

typedef struct receiver {
    void *sock;
    mode md;
    size_t bytes;
    double mb_s;
} receiver;

static void *receive_run(void *arg)
{
    receiver *r = arg;
    hs_msg *m = malloc(sizeof *m);
    void *buf = malloc(r->bytes);
    long count = 0;
    double t0 = 0, t1 = 0;
    for (;;) {
        size_t n = recv_one(r->sock, r->md, m, buf, r->bytes);
        if (n <= 1)
            break;
        if (n != r->bytes) {
            fprintf(stderr, "bench_transport: got %zu bytes, expected %zu\n", n, r->bytes);
            exit(1);
        }
        if (count++ == 0)
            t0 = now_s(); /* timing starts at the first arrival */
        t1 = now_s();
    }
    r->mb_s = count > 1 ? (double)(count - 1) * (double)r->bytes / (t1 - t0) / 1e6 : 0;
    free(buf);
    free(m);
    return NULL;
}

static double throughput_run(mode md, size_t bytes, float *buf, double seconds)
{
    void *ctx = zmq_ctx_new();
    hs_socket_opts o = { .max_msg_size = -1, .linger_ms = 0, .sndhwm = 4, .rcvhwm = 4 };
    hs_error err;
    void *pull = hs_socket_new(ctx, ZMQ_PULL, &o, &err);
    void *push = hs_socket_new(ctx, ZMQ_PUSH, &o, &err);
    if (!pull || !push)
        die("hs_socket_new");
    char ep[256];
    size_t len = sizeof ep;
    if (zmq_bind(pull, "tcp://127.0.0.1:*") != 0)
        die("bind");
    zmq_getsockopt(pull, ZMQ_LAST_ENDPOINT, ep, &len);
    if (zmq_connect(push, ep) != 0)
        die("connect");

    receiver r = { .sock = pull, .md = md, .bytes = bytes };
    pthread_t th;
    pthread_create(&th, NULL, receive_run, &r);
    hs_msg *m = malloc(sizeof *m);
    atomic_store(&released, 0);
    long sent = 0;
    double end = now_s() + seconds;
    while (now_s() < end) {
        send_one(push, md, m, buf, bytes, false);
        sent++;
    }
    send_one(push, md, m, buf, bytes, true);
    pthread_join(th, NULL);
    /* the buffer is shared by every in-flight frame: wait until ZeroMQ let go of all of them */
    if (md == HS)
        for (int i = 0; i < 5000 && atomic_load(&released) < sent; i++)
            sleep_ms(1);
    free(m);
    zmq_close(push);
    zmq_close(pull);
    zmq_ctx_term(ctx);
    return r.mb_s;
}

/* ---- (2) latency -------------------------------------------------------------------------- */

#define LAT_BYTES (100 * 1024)
#define LAT_WARMUP 200

#define LAT_BLOCK 100

/* Round trip t of the schedule: the warm-up of every mode first, then blocks of LAT_BLOCK round
 * trips of each mode in turn, so that load from elsewhere hits every mode alike. Returns the
 * mode; *slot is the index into that mode's samples, or -1 during the warm-up. */
static mode lat_step(int t, int *slot)
{
    if (t < N_MODES * LAT_WARMUP) {
        *slot = -1;
        return (mode)(t / LAT_WARMUP);
    }
    t -= N_MODES * LAT_WARMUP;
    int block = t / LAT_BLOCK;
    *slot = block / N_MODES * LAT_BLOCK + t % LAT_BLOCK;
    return (mode)(block % N_MODES);
}

/* The echo side, in the child process: the same schedule, echoing each round trip. */
static void echo_child(int fd, int iters)
{
    char ep[256] = "";
    ssize_t n = read(fd, ep, sizeof ep - 1);
    if (n <= 0)
        _exit(1);
    ep[n] = '\0';
    void *ctx = zmq_ctx_new();
    hs_socket_opts o = { .max_msg_size = -1, .linger_ms = 1000 };
    hs_error err;
    void *s = hs_socket_new(ctx, ZMQ_PAIR, &o, &err);
    if (!s || zmq_connect(s, ep) != 0)
        _exit(1);
    float *buf = calloc(LAT_BYTES / sizeof(float), sizeof(float));
    void *rbuf = malloc(LAT_BYTES);
    hs_msg *m = malloc(sizeof *m);
    for (int t = 0; t < N_MODES * (LAT_WARMUP + iters); t++) {
        int slot;
        mode md = lat_step(t, &slot);
        if (recv_one(s, md, m, rbuf, LAT_BYTES) != LAT_BYTES)
            _exit(1);
        send_one(s, md, m, buf, LAT_BYTES, false);
    }
    for (int i = 0; i < 5000 && atomic_load(&released) < (long)(iters + LAT_WARMUP); i++)
        sleep_ms(1);
    zmq_close(s);
    zmq_ctx_term(ctx);
    _exit(0);
}

typedef struct lat {
    double p50_us, p99_us, mean_us;
} lat;

static void latency(int iters, lat out[N_MODES])
{
    int fds[2];
    if (pipe(fds) != 0)
        die("pipe");
    fflush(NULL);
    pid_t pid = fork();
    if (pid < 0)
        die("fork");
    if (pid == 0) {
        close(fds[1]);
        echo_child(fds[0], iters);
    }
    close(fds[0]);
    void *ctx = zmq_ctx_new();
    hs_socket_opts o = { .max_msg_size = -1, .linger_ms = 1000 };
    hs_error err;
    void *s = hs_socket_new(ctx, ZMQ_PAIR, &o, &err);
    char ep[256];
    size_t len = sizeof ep;
    if (!s || zmq_bind(s, "tcp://127.0.0.1:*") != 0)
        die("bind");
    zmq_getsockopt(s, ZMQ_LAST_ENDPOINT, ep, &len);
    if (write(fds[1], ep, strlen(ep)) < 0)
        die("write");
    close(fds[1]);

    float *buf = calloc(LAT_BYTES / sizeof(float), sizeof(float));
    void *rbuf = malloc(LAT_BYTES);
    hs_msg *m = malloc(sizeof *m);
    double *one_way = malloc(sizeof(double) * (size_t)iters * N_MODES);
    fprintf(stderr, "  latency: %d round trips of %d KiB per mode, modes interleaved in blocks "
                    "of %d...\n", iters, LAT_BYTES / 1024, LAT_BLOCK);
    for (int t = 0; t < N_MODES * (LAT_WARMUP + iters); t++) {
        int slot;
        mode md = lat_step(t, &slot);
        double t0 = now_s();
        send_one(s, md, m, buf, LAT_BYTES, false);
        if (recv_one(s, md, m, rbuf, LAT_BYTES) != LAT_BYTES) {
            fprintf(stderr, "bench_transport: short echo\n");
            exit(1);
        }
        if (slot >= 0)
            one_way[(size_t)md * (size_t)iters + (size_t)slot] = (now_s() - t0) / 2 * 1e6;
    }
    for (int md = 0; md < N_MODES; md++) {
        double *x = one_way + (size_t)md * (size_t)iters, sum = 0;
        for (int i = 0; i < iters; i++)
            sum += x[i];
        qsort(x, (size_t)iters, sizeof *x, cmp_double);
        out[md].p50_us = x[iters / 2];
        out[md].p99_us = x[(int)((double)iters * 0.99)];
        out[md].mean_us = sum / iters;
    }
    int status = 0;
    waitpid(pid, &status, 0);
    if (!WIFEXITED(status) || WEXITSTATUS(status) != 0)
        fprintf(stderr, "bench_transport: echo process failed\n");
    for (int i = 0; i < 5000 && atomic_load(&released) < (long)(iters + LAT_WARMUP); i++)
        sleep_ms(1);
    free(one_way);
    free(m);
    free(rbuf);
    free(buf);
    zmq_close(s);
    zmq_ctx_term(ctx);
}

/* ---- main --------------------------------------------------------------------------------- */

static void mkdirs(const char *dir)
{
    char tmp[1024];
    snprintf(tmp, sizeof tmp, "%s", dir);
    for (char *p = tmp + 1; *p; p++)
        if (*p == '/') {
            *p = '\0';
            mkdir(tmp, 0755);
            *p = '/';
        }
    mkdir(tmp, 0755);
}

int main(int argc, char **argv)
{
    options opt = { .out_dir = "out/bench", .seconds = 1.0, .rounds = 5, .iters = 5000 };
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--out") && i + 1 < argc)
            opt.out_dir = argv[++i];
        else if (!strcmp(argv[i], "--seconds") && i + 1 < argc)
            opt.seconds = atof(argv[++i]);
        else if (!strcmp(argv[i], "--rounds") && i + 1 < argc)
            opt.rounds = atoi(argv[++i]);
        else if (!strcmp(argv[i], "--iters") && i + 1 < argc)
            opt.iters = atoi(argv[++i]);
        else if (!strcmp(argv[i], "--quick"))
            opt.seconds = 0.5, opt.rounds = 1, opt.iters = 1000;
        else {
            fprintf(stderr, "usage: bench_transport [--out DIR] [--seconds S] [--rounds R] "
                            "[--iters N] [--quick]\n");
            return 2;
        }
    }
    if (opt.seconds <= 0 || opt.rounds < 1 || opt.iters < 10) {
        fprintf(stderr, "bench_transport: bad --seconds, --rounds or --iters\n");
        return 2;
    }
    opt.iters = (opt.iters + LAT_BLOCK - 1) / LAT_BLOCK * LAT_BLOCK;

    static const size_t sizes[] = { 1 << 20, 8 << 20 };
    enum { N_SIZES = 2 };
    double mb_s[N_SIZES][N_MODES] = { { 0 } }, med[N_SIZES][N_MODES];
    double *runs = malloc(sizeof(double) * (size_t)opt.rounds * N_SIZES * N_MODES);
    float *buf = malloc(8 << 20);
    for (size_t i = 0; i < (8u << 20) / sizeof(float); i++)
        buf[i] = (float)(i % 1000) * 0.25f;

    fprintf(stderr, "throughput: PUSH/PULL over tcp://127.0.0.1, %d round(s) of %.1f s per "
                    "mode\n", opt.rounds, opt.seconds);
    for (int si = 0; si < N_SIZES; si++)
        for (int r = 0; r < opt.rounds; r++)
            for (int md = 0; md < N_MODES; md++) {
                double v = throughput_run((mode)md, sizes[si], buf, opt.seconds);
                fprintf(stderr, "  %zu MiB %-15s round %d: %8.1f MB/s\n", sizes[si] >> 20,
                        mode_names[md], r + 1, v);
                if (v > mb_s[si][md])
                    mb_s[si][md] = v;
                runs[((size_t)si * N_MODES + (size_t)md) * (size_t)opt.rounds + (size_t)r] = v;
            }
    for (int si = 0; si < N_SIZES; si++)
        for (int md = 0; md < N_MODES; md++) {
            double *x = runs + ((size_t)si * N_MODES + (size_t)md) * (size_t)opt.rounds;
            qsort(x, (size_t)opt.rounds, sizeof *x, cmp_double);
            med[si][md] = x[opt.rounds / 2];
        }
    free(runs);
    fprintf(stderr, "latency: PAIR over tcp://127.0.0.1 between two processes\n");
    lat l[N_MODES];
    latency(opt.iters, l);
    free(buf);

    printf("\nthroughput MB/s, %d rounds x %.1f s  raw  zero-copy  zero-copy-2f  hotsplit  "
           "hs/raw  hs/zc  hs/zc-2f\n", opt.rounds, opt.seconds);
    for (int si = 0; si < N_SIZES; si++)
        for (int k = 0; k < 2; k++) {
            const double *v = k ? med[si] : mb_s[si];
            printf("  %zu MiB float32 DATA, %-6s  %8.1f %10.1f %13.1f %9.1f  %6.2f %6.2f %9.2f\n",
                   sizes[si] >> 20, k ? "median" : "best", v[RAW], v[RAW_ZC], v[RAW_ZC2], v[HS],
                   v[HS] / v[RAW], v[HS] / v[RAW_ZC], v[HS] / v[RAW_ZC2]);
        }
    printf("\nlatency per hop, 100 KiB tensor (%d round trips)\n", opt.iters);
    printf("  %-15s %9s %9s %9s\n", "mode", "p50 us", "p99 us", "mean us");
    for (int md = 0; md < N_MODES; md++)
        printf("  %-15s %9.1f %9.1f %9.1f\n", mode_names[md], l[md].p50_us, l[md].p99_us,
               l[md].mean_us);
    printf("  added by hotsplit vs raw:       p50 %+.1f us, p99 %+.1f us\n",
           l[HS].p50_us - l[RAW].p50_us, l[HS].p99_us - l[RAW].p99_us);
    printf("  added by hotsplit vs zero-copy: p50 %+.1f us, p99 %+.1f us\n",
           l[HS].p50_us - l[RAW_ZC].p50_us, l[HS].p99_us - l[RAW_ZC].p99_us);
    printf("  added by hotsplit vs zero-copy-2f: p50 %+.1f us, p99 %+.1f us\n",
           l[HS].p50_us - l[RAW_ZC2].p50_us, l[HS].p99_us - l[RAW_ZC2].p99_us);
    bool target = mb_s[0][HS] >= 0.9 * mb_s[0][RAW] && mb_s[1][HS] >= 0.9 * mb_s[1][RAW];
    printf("\ntarget hotsplit/raw >= 0.9: %s\n", target ? "met" : "NOT met");

    mkdirs(opt.out_dir);
    char path[1200];
    snprintf(path, sizeof path, "%s/transport.csv", opt.out_dir);
    FILE *f = fopen(path, "w");
    if (!f) {
        fprintf(stderr, "bench_transport: %s: %s\n", path, strerror(errno));
        return 1;
    }
    fprintf(f, "test,bytes,mode,value,unit\n");
    for (int si = 0; si < N_SIZES; si++)
        for (int md = 0; md < N_MODES; md++)
            fprintf(f, "throughput_best,%zu,%s,%.2f,MB/s\nthroughput_median,%zu,%s,%.2f,MB/s\n",
                    sizes[si], mode_names[md], mb_s[si][md], sizes[si], mode_names[md],
                    med[si][md]);
    for (int md = 0; md < N_MODES; md++) {
        fprintf(f, "latency_p50,%d,%s,%.2f,us\n", LAT_BYTES, mode_names[md], l[md].p50_us);
        fprintf(f, "latency_p99,%d,%s,%.2f,us\n", LAT_BYTES, mode_names[md], l[md].p99_us);
    }
    fclose(f);
    fprintf(stderr, "wrote %s\n", path);

    snprintf(path, sizeof path, "%s/transport.json", opt.out_dir);
    f = fopen(path, "w");
    if (!f) {
        fprintf(stderr, "bench_transport: %s: %s\n", path, strerror(errno));
        return 1;
    }
    fprintf(f, "{\n  \"seconds\": %.2f, \"rounds\": %d, \"iters\": %d,\n  \"throughput\": [\n",
            opt.seconds, opt.rounds, opt.iters);
    for (int si = 0; si < N_SIZES; si++)
        fprintf(f,
                "    {\"bytes\": %zu, \"raw_mb_s\": %.2f, \"raw_zerocopy_mb_s\": %.2f, "
                "\"hotsplit_mb_s\": %.2f, \"ratio_vs_raw\": %.4f, \"ratio_vs_zerocopy\": %.4f, "
                "\"median_raw_mb_s\": %.2f, \"median_raw_zerocopy_mb_s\": %.2f, "
                "\"median_hotsplit_mb_s\": %.2f, \"raw_zerocopy_2f_mb_s\": %.2f, "
                "\"median_raw_zerocopy_2f_mb_s\": %.2f}%s\n",
                sizes[si], mb_s[si][RAW], mb_s[si][RAW_ZC], mb_s[si][HS],
                mb_s[si][HS] / mb_s[si][RAW], mb_s[si][HS] / mb_s[si][RAW_ZC], med[si][RAW],
                med[si][RAW_ZC], med[si][HS], mb_s[si][RAW_ZC2], med[si][RAW_ZC2],
                si + 1 < N_SIZES ? "," : "");
    fprintf(f, "  ],\n  \"latency\": {\"bytes\": %d", LAT_BYTES);
    for (int md = 0; md < N_MODES; md++)
        fprintf(f, ", \"%s\": {\"p50_us\": %.2f, \"p99_us\": %.2f, \"mean_us\": %.2f}",
                mode_names[md], l[md].p50_us, l[md].p99_us, l[md].mean_us);
    fprintf(f, ",\n    \"added_p50_us\": %.2f, \"added_p99_us\": %.2f},\n",
            l[HS].p50_us - l[RAW].p50_us, l[HS].p99_us - l[RAW].p99_us);
    fprintf(f, "  \"target_met\": %s\n}\n", target ? "true" : "false");
    fclose(f);
    fprintf(stderr, "wrote %s\n", path);
    return 0;
}
