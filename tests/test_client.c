/*
 * The client C API against a real coordinator in this process (a one-device cluster, a small
 * model, loopback TCP): answers equal a local run, request ids match, and a zero-copy submit
 * gives its buffers back exactly once, after a send and after a refused one alike. A client
 * inside the coordinator's process (hs_coordinator_client) hands its inputs over without a
 * copy: the coordinator computes on the caller's buffer itself. An application that embeds
 * the coordinator can wait until its devices have joined (hs_coordinator_wait).
 */
#define _DEFAULT_SOURCE /* usleep */
#include <criterion/criterion.h>
#include <math.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "hotsplit/runtime.h"
#include "in_process.h"
#include "onnx_build.h"

#define N 64

static char model_path[64], cluster_path[64];
static hs_coordinator *coord;
static pthread_t coord_thread;
static char endpoint[64];
static hs_client *inproc_client; /* freed before the coordinator, also when a test fails */
static int n_devices = 1;         /* in the cluster file create() writes */
static hs_worker *worker;         /* device dev1's, when a test starts one */
static pthread_t worker_thread;

/* y = Relu(x) + 1 over 1x64 floats, and a cluster of n_devices devices (dev0, the source, and
 * dev1); a coordinator for them, not yet serving. */
static void create(void)
{
    snprintf(model_path, sizeof model_path, "/tmp/hs_test_client_%d.onnx", (int)getpid());
    snprintf(cluster_path, sizeof cluster_path, "/tmp/hs_test_client_%d.yaml", (int)getpid());
    hs__mb *mb = hs__mb_new(13);
    const int64_t shape[] = {1, N}, one[] = {1};
    const float bias = 1.0f;
    hs__mb_input(mb, "x", HS_F32, 2, shape);
    hs__mb_output(mb, "y", HS_F32, 2, shape);
    hs__mb_initializer(mb, "b", HS_F32, 1, one, &bias);
    hs__mb_node(mb, "Relu", "relu", (const char *[]){"x", NULL}, (const char *[]){"r", NULL});
    hs__mb_node(mb, "Add", "add", (const char *[]){"r", "b", NULL}, (const char *[]){"y", NULL});
    hs_error err;
    cr_assert_eq(hs__mb_save(mb, model_path, &err), HS_OK, "%s", err.msg);
    hs__mb_free(mb);
    FILE *f = fopen(cluster_path, "w");
    cr_assert(f);
    fputs("source: dev0\ndevices:\n  - {name: dev0, speed: 1, memory_mb: 64}\n", f);
    if (n_devices == 2)
        fputs("  - {name: dev1, speed: 1, memory_mb: 64}\nlinks:\n"
              "  - {from: dev0, to: dev1, bandwidth_mbps: 1000, latency_ms: 0.1}\n", f);
    fclose(f);

    snprintf(endpoint, sizeof endpoint, "tcp://127.0.0.1:%d", free_port());
    hs_coordinator_opts o = {.model_path = model_path, .cluster_path = cluster_path,
                             .listen = endpoint, .objective = HS_OBJ_LATENCY};
    cr_assert_eq(hs_coordinator_new(&o, &coord, &err), HS_OK, "%s", err.msg);
}

static void serve_in_background(void)
{
    cr_assert_eq(pthread_create(&coord_thread, NULL, run_coordinator, coord), 0);
}

static void start(void)
{
    create();
    serve_in_background();
}

static void start_two(void)
{
    n_devices = 2;
    start();
}

static void stop(void)
{
    hs_client_free(inproc_client);
    inproc_client = NULL;
    if (coord) {
        hs_coordinator_stop(coord);
        if (coord_thread)
            pthread_join(coord_thread, NULL);
        coord_thread = 0;
        hs_coordinator_free(coord); /* its BYE ends the worker */
        coord = NULL;
    }
    if (worker) {
        hs_worker_stop(worker);
        pthread_join(worker_thread, NULL);
        hs_worker_free(worker);
        worker = NULL;
    }
    unlink(model_path);
    unlink(cluster_path);
}

TestSuite(client, .init = start, .fini = stop, .timeout = 60);
TestSuite(in_process, .init = create, .fini = stop, .timeout = 60);
TestSuite(waiting, .init = start_two, .fini = stop, .timeout = 60);

static atomic_int released;
static void count_release(void *hint)
{
    (void)hint;
    atomic_fetch_add(&released, 1);
}

static void check_answer(const hs_result *r, const float *x)
{
    cr_assert_eq(r->status, HS_OK, "%s", r->reason);
    cr_assert_eq(r->n_outputs, 1);
    cr_assert_eq(hs_tensor_numel(&r->outputs[0]), N);
    const float *y = r->outputs[0].data;
    for (int i = 0; i < N; i++)
        cr_assert_eq(y[i], (x[i] > 0 ? x[i] : 0.0f) + 1.0f, "element %d", i);
}

Test(client, copying_and_zero_copy_submits_are_answered_once_each)
{
    hs_client *c;
    hs_error err;
    cr_assert_eq(hs_client_new(endpoint, NULL, &c, &err), HS_OK, "%s", err.msg);
    float x[3][N];
    for (int k = 0; k < 3; k++)
        for (int i = 0; i < N; i++)
            x[k][i] = (float)((i * 37 + k * 11) % 19) - 9.0f;
    const int64_t shape[] = {1, N};
    hs_tensor in[3];
    uint64_t ids[3];
    atomic_store(&released, 0);
    for (int k = 0; k < 3; k++) {
        in[k] = (hs_tensor){.dtype = HS_F32, .ndim = 2, .data = x[k]};
        memcpy(in[k].shape, shape, sizeof shape);
    }
    cr_assert_eq(hs_client_submit(c, &in[0], 1, &ids[0], &err), HS_OK, "%s", err.msg);
    cr_assert_eq(hs_client_submit_nocopy(c, &in[1], 1, count_release, NULL, &ids[1], &err),
                 HS_OK, "%s", err.msg);
    cr_assert_eq(hs_client_submit_nocopy(c, &in[2], 1, count_release, NULL, &ids[2], &err),
                 HS_OK, "%s", err.msg);
    bool seen[3] = {false};
    for (int n = 0; n < 3; n++) {
        hs_result r;
        cr_assert_eq(hs_client_receive(c, 10000, &r, &err), HS_OK, "%s", err.msg);
        int k = r.request_id == ids[0] ? 0 : r.request_id == ids[1] ? 1
                : r.request_id == ids[2] ? 2 : -1;
        cr_assert(k >= 0 && !seen[k], "answer for request %llu",
                  (unsigned long long)r.request_id);
        seen[k] = true;
        check_answer(&r, x[k]);
    }
    hs_result extra;
    cr_assert_neq(hs_client_receive(c, 200, &extra, &err), HS_OK, "a fourth answer came");
    /* all three came over TCP: the source's io for them is priced */
    hs_coordinator_stats st;
    hs_coordinator_get_stats(coord, &st);
    double want = 1 - pow(1 - 0.05, 3);
    cr_expect(fabs(st.outside_share - want) < 1e-9, "outside share %g, want %g",
              st.outside_share, want);
    hs_client_free(c);
    cr_assert_eq(atomic_load(&released), 2, "release ran %d times for 2 zero-copy submits",
                 atomic_load(&released));
}

Test(client, refused_zero_copy_submits_still_release)
{
    hs_client *c;
    hs_error err;
    cr_assert_eq(hs_client_new(endpoint, NULL, &c, &err), HS_OK, "%s", err.msg);
    atomic_store(&released, 0);
    hs_tensor t = {.dtype = HS_F32, .ndim = 2, .shape = {1, N}, .data = NULL};
    uint64_t id;
    /* Too many inputs, and a tensor without data: refused before anything is sent. */
    cr_assert_eq(hs_client_submit_nocopy(c, &t, 100000, count_release, NULL, &id, &err),
                 HS_ERR_INVALID);
    cr_assert_neq(hs_client_submit_nocopy(c, &t, 1, count_release, NULL, &id, &err), HS_OK);
    cr_assert_eq(atomic_load(&released), 2);
    cr_assert_eq(hs_client_submit_nocopy(c, &t, 1, NULL, NULL, &id, &err), HS_ERR_INVALID);
    cr_assert(strstr(err.msg, "release"), "%s", err.msg);
    hs_client_free(c);
}

Test(in_process, inputs_reach_the_coordinator_without_a_copy)
{
    hs_error err;
    cr_assert_eq(hs_coordinator_client(coord, &inproc_client, &err), HS_OK, "%s", err.msg);
    hs_client *c = inproc_client;
    static float x[N];
    for (int i = 0; i < N; i++)
        x[i] = (float)(i % 7) - 3.0f;
    hs_tensor in = {.dtype = HS_F32, .ndim = 2, .shape = {1, N}, .data = x};
    uint64_t id;
    atomic_store(&released, 0);
    cr_assert_eq(hs_client_submit_nocopy(c, &in, 1, count_release, NULL, &id, &err), HS_OK,
                 "%s", err.msg);
    /* The coordinator is not serving yet: the request waits in memory, still pointing at x.
     * A copying path would have taken the bytes by now and given the buffer back. */
    usleep(200 * 1000);
    cr_assert_eq(atomic_load(&released), 0, "the input was given back before it was used");
    for (int i = 0; i < N; i++) /* what the coordinator must see if it reads x itself */
        x[i] = 2.0f * x[i];
    serve_in_background();
    hs_result r;
    cr_assert_eq(hs_client_receive(c, 10000, &r, &err), HS_OK, "%s", err.msg);
    cr_assert_eq(r.request_id, id);
    check_answer(&r, x);
    hs_coordinator_stats st; /* handed over in memory: nothing to receive over a network */
    hs_coordinator_get_stats(coord, &st);
    cr_expect_eq(st.outside_share, 0.0);
    for (int t = 0; t < 500 && atomic_load(&released) == 0; t++)
        usleep(10 * 1000); /* the coordinator lets go of the input as it answers */
    cr_assert_eq(atomic_load(&released), 1);
    hs_client_free(c);
    inproc_client = NULL;
    cr_assert_eq(atomic_load(&released), 1, "release ran twice");
}

Test(waiting, until_every_device_has_joined_and_a_plan_is_chosen_with_it)
{
    hs_coordinator_stats st;
    cr_assert(hs_coordinator_wait(coord, 1, 10000, &st), "the source never settled");
    cr_assert_eq(st.live_workers, 1);
    cr_assert_geq(st.epoch, 1);
    /* dev1 has not started: the wait for two devices times out, and says so. */
    cr_assert_not(hs_coordinator_wait(coord, 2, 300, &st));
    cr_assert_eq(st.live_workers, 1);

    hs_worker_opts wo = {.name = "dev1", .coordinator = endpoint, .model_path = model_path};
    hs_error err;
    cr_assert_eq(hs_worker_new(&wo, &worker, &err), HS_OK, "%s", err.msg);
    cr_assert_eq(pthread_create(&worker_thread, NULL, run_worker, worker), 0);
    cr_assert(hs_coordinator_wait(coord, 2, 20000, &st), "dev1 never joined");
    cr_assert_eq(st.live_workers, 2);
    cr_assert(st.settled);
    hs_coordinator_stats again;
    hs_coordinator_get_stats(coord, &again);
    cr_assert_eq(again.live_workers, 2);

    /* Once run() has returned, a wait that can never be met returns at once, even without a
     * timeout (otherwise this test times out). */
    hs_coordinator_stop(coord);
    pthread_join(coord_thread, NULL);
    coord_thread = 0;
    cr_assert_not(hs_coordinator_wait(coord, 3, -1, &st));
    cr_assert_eq(st.live_workers, 2);
}

/* The transfer cost the profile records: CPU per byte of a real send and receive, so more than
 * nothing (the copy into a block alone is a memcpy) and far less than a slow link's 80 ns/byte
 * (100 Mbit/s): loopback moves gigabytes a second. */
Test(transfer_cost, is_measured_per_byte_moved, .timeout = 60)
{
    double s_per_byte = -1;
    hs_error err = {0};
    cr_assert_eq(hs_transfer_cost(&s_per_byte, &err), HS_OK, "%s", err.msg);
    cr_expect(s_per_byte > 1e-12 && s_per_byte < 8e-8, "%g s per byte", s_per_byte);
}
