/*
 * Cluster files (solver/cluster.c): every example in configs/clusters/ loads with the values it
 * states (units converted, symmetric and directional links, defaults); a corpus of bad files,
 * written here into a temporary directory, each fails with its status and a one-line message
 * starting "FILE:LINE: PATH: " with the reason; --set overrides, good and bad; device lookup.
 * Runs from the source tree (WORKING_DIRECTORY in tests/CMakeLists.txt).
 */
#include <criterion/criterion.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "hotsplit/solver.h"

#define MIB (1024.0 * 1024.0)

static hs_cluster load_ok(const char *path)
{
    hs_cluster c;
    hs_error err = { 0 };
    hs_status st = hs_cluster_load(path, &c, &err);
    cr_assert_eq(st, HS_OK, "%s: %d: %s", path, st, err.msg);
    return c;
}

static int dev(const hs_cluster *c, const char *name)
{
    int i = hs_cluster_find(c, name);
    cr_assert_geq(i, 0, "no device %s in %s", name, c->path);
    return i;
}

static const hs_link *link_of(const hs_cluster *c, const char *from, const char *to)
{
    return &c->links[dev(c, from)][dev(c, to)];
}

/* ---- the examples ------------------------------------------------------------------------ */

Test(cluster, camera_edge)
{
    hs_cluster c = load_ok("configs/clusters/camera_edge.yaml");
    cr_assert_eq(c.n_devices, 2);
    cr_assert_str_eq(c.path, "configs/clusters/camera_edge.yaml");
    int cam = dev(&c, "camera"), edge = dev(&c, "edge");
    cr_assert_eq(cam, 0);
    cr_assert_eq(edge, 1);
    cr_assert_eq(c.source, cam);
    cr_assert_eq(c.sink, cam);

    const hs_device *d = &c.devices[cam];
    cr_assert_eq(d->speed, 1.0);
    cr_assert_eq(d->memory_bytes, 512 * MIB);
    cr_assert_eq(d->memory_bytes, 536870912.0);
    cr_assert_eq(d->power.idle_w, 1.5);
    cr_assert_eq(d->power.active_w, 6.0);
    cr_assert_eq(d->power.tx_nj_per_byte, 40);
    cr_assert_eq(d->power.rx_nj_per_byte, 25);
    cr_assert(!d->battery.present);
    cr_assert(!d->excluded);
    cr_assert_str_empty(d->profile);

    d = &c.devices[edge];
    cr_assert_eq(d->speed, 3.0);
    cr_assert_eq(d->memory_bytes, 4096 * MIB);
    cr_assert_eq(d->power.idle_w, 3);
    cr_assert_eq(d->power.active_w, 15);
    cr_assert_eq(d->power.tx_nj_per_byte, 0, "tx defaults to 0");
    cr_assert_eq(d->power.rx_nj_per_byte, 0, "rx defaults to 0");

    /* Listed once: symmetric, in SI units. */
    cr_assert_eq(c.links[cam][edge].bandwidth_bps, 100e6);
    cr_assert_eq(c.links[cam][edge].latency_s, 0.002);
    cr_assert_eq(c.links[edge][cam].bandwidth_bps, 100e6);
    cr_assert_eq(c.links[edge][cam].latency_s, 0.002);
    cr_assert_eq(c.links[cam][cam].bandwidth_bps, 0);
    cr_assert_eq(c.links[edge][edge].bandwidth_bps, 0);
}

Test(cluster, camera_edge_cloud)
{
    hs_cluster c = load_ok("configs/clusters/camera_edge_cloud.yaml");
    cr_assert_eq(c.n_devices, 3);
    cr_assert_eq(c.source, dev(&c, "camera"));
    cr_assert_eq(c.sink, dev(&c, "edge"));

    const hs_device *cam = &c.devices[dev(&c, "camera")];
    cr_assert(cam->battery.present);
    cr_assert_eq(cam->battery.capacity_wh, 20);
    cr_assert_eq(cam->battery.level, 0.9);
    cr_assert_eq(cam->battery.floor, 0.05, "floor defaults to 0.05");
    cr_assert(!c.devices[dev(&c, "edge")].battery.present);
    cr_assert(!c.devices[dev(&c, "cloud")].battery.present);
    cr_assert_gt(c.devices[dev(&c, "cloud")].speed, c.devices[dev(&c, "edge")].speed);

    cr_assert_eq(link_of(&c, "camera", "edge")->bandwidth_bps, 100e6);
    cr_assert_eq(link_of(&c, "camera", "edge")->latency_s, 0.010);
    cr_assert_eq(link_of(&c, "edge", "camera")->bandwidth_bps, 100e6);
    /* Listed both ways: each its own. */
    cr_assert_eq(link_of(&c, "edge", "cloud")->bandwidth_bps, 50e6);
    cr_assert_eq(link_of(&c, "cloud", "edge")->bandwidth_bps, 200e6);
    cr_assert_eq(link_of(&c, "edge", "cloud")->latency_s, 0.020);
    cr_assert_eq(link_of(&c, "cloud", "edge")->latency_s, 0.020);
    /* Not listed: no link. */
    cr_assert_eq(link_of(&c, "camera", "cloud")->bandwidth_bps, 0);
    cr_assert_eq(link_of(&c, "cloud", "camera")->bandwidth_bps, 0);
}

Test(cluster, swarm4)
{
    hs_cluster c = load_ok("configs/clusters/swarm4.yaml");
    cr_assert_eq(c.n_devices, 5);
    int gw = dev(&c, "gateway"), batteries = 0;
    cr_assert_eq(c.source, dev(&c, "s0"));
    cr_assert_eq(c.sink, gw);
    for (int i = 0; i < c.n_devices; i++) {
        batteries += c.devices[i].battery.present;
        if (i != gw) {
            cr_assert_eq(c.links[i][gw].bandwidth_bps, 20e6, "%s", c.devices[i].name);
            cr_assert_eq(c.links[gw][i].bandwidth_bps, 20e6, "%s", c.devices[i].name);
        }
    }
    cr_assert_eq(batteries, 4);
    cr_assert(!c.devices[gw].battery.present);
    cr_assert_eq(c.devices[dev(&c, "s1")].battery.floor, 0.1);
    cr_assert_eq(c.devices[dev(&c, "s2")].battery.floor, 0.05);
    cr_assert_eq(link_of(&c, "s1", "s0")->latency_s, 0.003);
    cr_assert_eq(link_of(&c, "s0", "s2")->bandwidth_bps, 0);
}

static void check_loopback(const char *path, int n)
{
    hs_cluster c = load_ok(path);
    cr_assert_eq(c.n_devices, n);
    cr_assert_eq(c.source, 0);
    cr_assert_eq(c.sink, 0);
    for (int i = 0; i < n; i++) {
        char name[8];
        snprintf(name, sizeof name, "dev%d", i);
        cr_assert_str_eq(c.devices[i].name, name);
        cr_assert_eq(c.devices[i].speed, 1.0);
        for (int j = 0; j < n; j++) {
            double want_bw = i == j ? 0 : 1000e6, want_lat = i == j ? 0 : 0.1e-3;
            cr_assert_eq(c.links[i][j].bandwidth_bps, want_bw, "%s %d->%d", path, i, j);
            cr_assert_float_eq(c.links[i][j].latency_s, want_lat, 1e-15, "%s %d->%d", path, i,
                               j);
        }
    }
}

Test(cluster, loopback)
{
    check_loopback("configs/clusters/loopback2.yaml", 2);
    check_loopback("configs/clusters/loopback3.yaml", 3);
}

Test(cluster, find_round_trip)
{
    static const char *const files[] = {
        "configs/clusters/camera_edge.yaml", "configs/clusters/camera_edge_cloud.yaml",
        "configs/clusters/swarm4.yaml", "configs/clusters/loopback2.yaml",
        "configs/clusters/loopback3.yaml",
    };
    for (size_t f = 0; f < sizeof files / sizeof files[0]; f++) {
        hs_cluster c = load_ok(files[f]);
        for (int i = 0; i < c.n_devices; i++)
            cr_assert_eq(hs_cluster_find(&c, c.devices[i].name), i, "%s: %s", files[f],
                         c.devices[i].name);
        cr_assert_eq(hs_cluster_find(&c, "nosuch"), -1);
        cr_assert_eq(hs_cluster_find(&c, ""), -1);
    }
    hs_cluster c = load_ok("configs/clusters/camera_edge.yaml");
    cr_assert_eq(hs_cluster_find(&c, "cam"), -1, "a prefix is not a name");
    cr_assert_eq(hs_cluster_find(&c, "camera2"), -1);
    cr_assert_eq(hs_cluster_find(&c, "Camera"), -1, "names are case-sensitive");
}

/* ---- files written by the tests ---------------------------------------------------------- */

typedef struct tmpdir {
    char path[64];
} tmpdir;

static tmpdir tmpdir_new(void)
{
    tmpdir t;
    snprintf(t.path, sizeof t.path, "/tmp/hs_test_cluster_XXXXXX");
    cr_assert_not_null(mkdtemp(t.path));
    return t;
}

static void write_file(const char *path, const char *text)
{
    FILE *f = fopen(path, "w");
    cr_assert_not_null(f, "%s", path);
    fputs(text, f);
    cr_assert_eq(fclose(f), 0);
}

static void tmpdir_free(tmpdir *t, const char *const *names, int n)
{
    char p[256];
    for (int i = 0; i < n; i++) {
        snprintf(p, sizeof p, "%s/%s", t->path, names[i]);
        unlink(p);
    }
    rmdir(t->path);
}

Test(cluster, profile_resolved_against_the_file)
{
    tmpdir t = tmpdir_new();
    char path[256];
    snprintf(path, sizeof path, "%s/c.yaml", t.path);
    write_file(path, "source: a\n"
                     "devices:\n"
                     "  - {name: a, profile: profiles/a.csv, memory_mb: 1}\n"
                     "  - {name: b, profile: /abs/b.csv, memory_mb: 1}\n"
                     "links: [{from: a, to: b, bandwidth_mbps: 1, latency_ms: 0}]\n");
    hs_cluster c = load_ok(path);
    char want[300];
    snprintf(want, sizeof want, "%s/profiles/a.csv", t.path);
    cr_assert_str_eq(c.devices[0].profile, want);
    cr_assert_str_eq(c.devices[1].profile, "/abs/b.csv");
    cr_assert_eq(c.devices[0].speed, 1.0, "a profile implies speed 1");
    cr_assert_eq(c.links[0][1].latency_s, 0.0);
    tmpdir_free(&t, (const char *const[]){ "c.yaml" }, 1);
}

/* ---- the bad corpus ---------------------------------------------------------------------- */

typedef struct bad_case {
    const char *name;   /* file name, also shown on failure */
    const char *text;   /* NULL: generated (too many devices) */
    hs_status status;
    int line;
    const char *field;  /* NULL: no field in the message */
    const char *reason; /* must appear after the prefix */
} bad_case;

#define DEV_A "devices:\n  - {name: a, memory_mb: 1}\n"
#define DEV_AB "devices:\n  - {name: a, memory_mb: 1}\n  - {name: b, memory_mb: 1}\n"

static const bad_case bad_cases[] = {
    /* Syntax, and files that are not a cluster at all. */
    { "empty.yaml", "", HS_ERR_PARSE, 1, NULL, "empty file" },
    { "comments_only.yaml", "# nothing here\n\n# at all\n", HS_ERR_PARSE, 1, NULL,
      "empty file" },
    { "syntax_flow.yaml", "source: a\ndevices:\n  - {name: a, memory_mb: 1\nlinks: []\n",
      HS_ERR_PARSE, 4, "devices[0]", "YAML syntax error: did not find expected ',' or '}' "
      "while parsing a flow mapping started on line 3" },
    { "syntax_indent.yaml", "source: a\ndevices:\n  - name: a\n    memory_mb: 1\n   speed: 2\n",
      HS_ERR_PARSE, 5, NULL, "YAML syntax error" },
    { "top_list.yaml", "- a\n- b\n", HS_ERR_PARSE, 1, NULL, "expected a mapping" },
    { "duplicate_key.yaml", "source: a\n" DEV_A "source: b\n", HS_ERR_PARSE, 4, "source",
      "duplicate key (first on line 1)" },
    { "two_documents.yaml", "source: a\n" DEV_A "---\nsource: b\n", HS_ERR_PARSE, 4, NULL,
      "more than one YAML document" },
    /* Schema: unknown keys, missing fields, wrong types. */
    { "unknown_top.yaml", "source: a\nsinks: a\n" DEV_A, HS_ERR_PARSE, 2, "sinks",
      "unknown key (expected one of: source, sink, devices, links)" },
    { "unknown_power.yaml",
      "source: a\ndevices:\n  - name: a\n    memory_mb: 1\n    power: {idle_w: 1, active_w: 2,\n"
      "            idle_mw: 3}\n",
      HS_ERR_PARSE, 6, "devices[0].power.idle_mw", "unknown key (expected one of: idle_w," },
    { "unknown_link.yaml",
      "source: a\n" DEV_AB "links:\n  - {from: a, to: b, bandwith_mbps: 1, latency_ms: 1}\n",
      HS_ERR_PARSE, 6, "links[0].bandwith_mbps", "unknown key" },
    { "missing_memory.yaml",
      "source: a\ndevices:\n  - {name: a, memory_mb: 1}\n  - name: b\n    speed: 2\n",
      HS_ERR_PARSE, 4, "devices[1].memory_mb", "required field missing" },
    { "missing_source.yaml", DEV_A, HS_ERR_PARSE, 1, "source", "required field missing" },
    { "missing_latency.yaml",
      "source: a\n" DEV_AB "links:\n  - {from: a, to: b, bandwidth_mbps: 1}\n", HS_ERR_PARSE,
      6, "links[0].latency_ms", "required field missing" },
    { "missing_active_w.yaml",
      "source: a\ndevices:\n  - name: a\n    memory_mb: 1\n    power: {idle_w: 1}\n",
      HS_ERR_PARSE, 5, "devices[0].power.active_w", "required field missing" },
    { "missing_battery_level.yaml",
      "source: a\ndevices:\n  - name: a\n    memory_mb: 1\n    battery: {capacity_wh: 1}\n",
      HS_ERR_PARSE, 5, "devices[0].battery.level", "required field missing" },
    { "string_speed.yaml",
      "source: a\ndevices:\n  - {name: a, memory_mb: 1}\n  - name: b\n    memory_mb: 1\n"
      "    speed: fast\n",
      HS_ERR_PARSE, 6, "devices[1].speed", "expected a number, got 'fast'" },
    { "unit_in_bandwidth.yaml",
      "source: a\n" DEV_AB "links:\n  - {from: a, to: b, bandwidth_mbps: 10 Mbps, "
      "latency_ms: 1}\n",
      HS_ERR_PARSE, 6, "links[0].bandwidth_mbps", "expected a number, got '10 Mbps'" },
    { "unit_in_latency.yaml",
      "source: a\n" DEV_AB "links:\n  - from: a\n    to: b\n    bandwidth_mbps: 10\n"
      "    latency_ms: 2ms\n",
      HS_ERR_PARSE, 9, "links[0].latency_ms", "expected a number, got '2ms'" },
    { "devices_scalar.yaml", "source: a\ndevices: 3\n", HS_ERR_PARSE, 2, "devices",
      "expected a list, got a single value" },
    { "power_scalar.yaml", "source: a\ndevices:\n  - {name: a, memory_mb: 1, power: 5}\n",
      HS_ERR_PARSE, 3, "devices[0].power", "expected a mapping, got a single value" },
    { "name_list.yaml", "source: a\ndevices:\n  - {name: [a], memory_mb: 1}\n", HS_ERR_PARSE,
      3, "devices[0].name", "expected a string, got a list" },
    /* Values out of range. */
    { "speed_negative.yaml", "source: a\ndevices:\n  - {name: a, memory_mb: 1}\n  - name: b\n"
      "    memory_mb: 1\n    speed: -2\n",
      HS_ERR_INVALID, 6, "devices[1].speed", "must be > 0, got -2" },
    { "speed_zero.yaml", "source: a\ndevices:\n  - {name: a, memory_mb: 1, speed: 0}\n",
      HS_ERR_INVALID, 3, "devices[0].speed", "must be > 0, got 0" },
    { "speed_nan.yaml", "source: a\ndevices:\n  - {name: a, memory_mb: 1, speed: nan}\n",
      HS_ERR_INVALID, 3, "devices[0].speed", "must be > 0, got nan" },
    { "memory_zero.yaml", "source: a\ndevices:\n  - name: a\n    memory_mb: 0\n",
      HS_ERR_INVALID, 4, "devices[0].memory_mb", "must be > 0, got 0" },
    { "memory_inf.yaml", "source: a\ndevices:\n  - name: a\n    memory_mb: 1e999\n",
      HS_ERR_INVALID, 4, "devices[0].memory_mb", "must be > 0, got inf" },
    { "bandwidth_zero.yaml",
      "source: a\n" DEV_AB "links:\n  - {from: a, to: b, bandwidth_mbps: 0, latency_ms: 1}\n",
      HS_ERR_INVALID, 6, "links[0].bandwidth_mbps", "must be > 0, got 0" },
    { "bandwidth_negative.yaml",
      "source: a\n" DEV_AB "links:\n  - from: a\n    to: b\n    bandwidth_mbps: -5\n"
      "    latency_ms: 1\n",
      HS_ERR_INVALID, 8, "links[0].bandwidth_mbps", "must be > 0, got -5" },
    { "latency_negative.yaml",
      "source: a\n" DEV_AB "links:\n  - {from: a, to: b, bandwidth_mbps: 1, latency_ms: -1}\n",
      HS_ERR_INVALID, 6, "links[0].latency_ms", "must be >= 0, got -1" },
    { "idle_negative.yaml",
      "source: a\ndevices:\n  - name: a\n    memory_mb: 1\n    power:\n      idle_w: -1\n"
      "      active_w: 2\n",
      HS_ERR_INVALID, 6, "devices[0].power.idle_w", "must be >= 0, got -1" },
    { "active_negative.yaml",
      "source: a\ndevices:\n  - name: a\n    memory_mb: 1\n    power:\n      idle_w: 1\n"
      "      active_w: -2\n",
      HS_ERR_INVALID, 7, "devices[0].power.active_w", "must be >= 0, got -2" },
    { "tx_negative.yaml",
      "source: a\ndevices:\n  - name: a\n    memory_mb: 1\n"
      "    power: {idle_w: 1, active_w: 2, tx_nj_per_byte: -3}\n",
      HS_ERR_INVALID, 5, "devices[0].power.tx_nj_per_byte", "must be >= 0, got -3" },
    { "level_above_one.yaml",
      "source: a\ndevices:\n  - name: a\n    memory_mb: 1\n    battery:\n      capacity_wh: 10\n"
      "      level: 1.5\n",
      HS_ERR_INVALID, 7, "devices[0].battery.level", "must be in [0, 1], got 1.5" },
    { "level_negative.yaml",
      "source: a\ndevices:\n  - name: a\n    memory_mb: 1\n    battery:\n      capacity_wh: 10\n"
      "      level: -0.1\n",
      HS_ERR_INVALID, 7, "devices[0].battery.level", "must be in [0, 1], got -0.1" },
    { "floor_one.yaml",
      "source: a\ndevices:\n  - name: a\n    memory_mb: 1\n    battery:\n      capacity_wh: 10\n"
      "      level: 0.5\n      floor: 1\n",
      HS_ERR_INVALID, 8, "devices[0].battery.floor", "must be in [0, 1), got 1" },
    { "capacity_zero.yaml",
      "source: a\ndevices:\n  - name: a\n    memory_mb: 1\n"
      "    battery: {capacity_wh: 0, level: 1}\n",
      HS_ERR_INVALID, 5, "devices[0].battery.capacity_wh", "must be > 0, got 0" },
    /* Names and the cluster as a whole. */
    { "duplicate_device.yaml",
      "source: a\ndevices:\n  - {name: a, memory_mb: 1}\n  - {name: b, memory_mb: 1}\n"
      "  - {name: a, memory_mb: 2}\n",
      HS_ERR_INVALID, 5, "devices[2].name", "duplicate device 'a' (also devices[0], line 3)" },
    { "name_dash.yaml", "source: cam-1\ndevices:\n  - {name: cam-1, memory_mb: 1}\n",
      HS_ERR_INVALID, 3, "devices[0].name", "invalid name 'cam-1': must not contain" },
    { "name_dot.yaml", "source: a\ndevices:\n  - {name: a.b, memory_mb: 1}\n", HS_ERR_INVALID,
      3, "devices[0].name", "must not contain" },
    { "name_empty.yaml", "source: a\ndevices:\n  - {name: '', memory_mb: 1}\n", HS_ERR_INVALID,
      3, "devices[0].name", "must be 1 to 63 characters" },
    { "name_long.yaml",
      "source: a\ndevices:\n"
      "  - {name: a123456789012345678901234567890123456789012345678901234567890123, "
      "memory_mb: 1}\n",
      HS_ERR_INVALID, 3, "devices[0].name", "must be 1 to 63 characters" },
    { "speed_and_profile.yaml",
      "source: a\ndevices:\n  - {name: a, memory_mb: 1, speed: 2, profile: p.csv}\n",
      HS_ERR_INVALID, 3, "devices[0].profile", "give speed or profile, not both" },
    { "no_devices.yaml", "source: a\ndevices: []\n", HS_ERR_INVALID, 2, "devices",
      "no devices" },
    { "too_many_devices.yaml", NULL, HS_ERR_INVALID, 19, "devices[16]",
      "too many devices: 17, at most 16" },
    { "link_to_nowhere.yaml",
      "source: a\n" DEV_AB "links:\n  - {from: a, to: b, bandwidth_mbps: 1, latency_ms: 1}\n"
      "  - {from: b, to: clod, bandwidth_mbps: 1, latency_ms: 1}\n",
      HS_ERR_NOTFOUND, 7, "links[1].to", "no device named 'clod'" },
    { "link_from_nowhere.yaml",
      "source: a\n" DEV_AB "links:\n  - {from: x, to: b, bandwidth_mbps: 1, latency_ms: 1}\n",
      HS_ERR_NOTFOUND, 6, "links[0].from", "no device named 'x'" },
    { "link_to_self.yaml",
      "source: a\n" DEV_AB "links:\n  - {from: b, to: b, bandwidth_mbps: 1, latency_ms: 1}\n",
      HS_ERR_INVALID, 6, "links[0].to", "a link from 'b' to itself" },
    { "link_twice.yaml",
      "source: a\n" DEV_AB "links:\n  - {from: a, to: b, bandwidth_mbps: 1, latency_ms: 1}\n"
      "  - {from: b, to: a, bandwidth_mbps: 2, latency_ms: 1}\n"
      "  - {from: a, to: b, bandwidth_mbps: 3, latency_ms: 1}\n",
      HS_ERR_INVALID, 8, "links[2]", "duplicate link a -> b (also links[0])" },
    { "source_unknown.yaml", "source: camera\n" DEV_A, HS_ERR_NOTFOUND, 1, "source",
      "no device named 'camera'" },
    { "sink_unknown.yaml", "source: a\n" DEV_A "sink: cloud\n", HS_ERR_NOTFOUND, 4, "sink",
      "no device named 'cloud'" },
};

/* 17 devices; devices[16] is on line 3 + 16. */
static void write_too_many(const char *path)
{
    char text[2048] = "source: d0\ndevices:\n";
    for (int i = 0; i <= HS_MAX_DEVICES; i++) {
        size_t n = strlen(text);
        snprintf(text + n, sizeof text - n, "  - {name: d%d, memory_mb: 1}\n", i);
    }
    write_file(path, text);
}

Test(cluster, bad_files)
{
    const int n = (int)(sizeof bad_cases / sizeof bad_cases[0]);
    const char *names[sizeof bad_cases / sizeof bad_cases[0]];
    tmpdir t = tmpdir_new();
    for (int i = 0; i < n; i++) {
        const bad_case *b = &bad_cases[i];
        char path[256], prefix[400];
        names[i] = b->name;
        snprintf(path, sizeof path, "%s/%s", t.path, b->name);
        if (b->text)
            write_file(path, b->text);
        else
            write_too_many(path);

        hs_cluster c;
        memset(&c, 0x5a, sizeof c);
        hs_error err = { 0 };
        hs_status st = hs_cluster_load(path, &c, &err);
        cr_expect_eq(st, b->status, "%s: status %d, want %d (%s)", b->name, st, b->status,
                     err.msg);
        cr_expect_eq(err.code, b->status, "%s: err.code %d", b->name, err.code);
        if (b->field)
            snprintf(prefix, sizeof prefix, "%s:%d: %s: ", path, b->line, b->field);
        else
            snprintf(prefix, sizeof prefix, "%s:%d: ", path, b->line);
        cr_expect(strncmp(err.msg, prefix, strlen(prefix)) == 0,
                  "%s: message\n  %s\ndoes not start with\n  %s", b->name, err.msg, prefix);
        const char *rest = err.msg + (strncmp(err.msg, prefix, strlen(prefix)) == 0
                                      ? strlen(prefix) : 0);
        cr_expect_not_null(strstr(rest, b->reason), "%s: message\n  %s\nlacks the reason '%s'",
                           b->name, err.msg, b->reason);
        cr_expect_null(strchr(err.msg, '\n'), "%s: more than one line: %s", b->name, err.msg);
        unsigned char *bytes = (unsigned char *)&c;
        bool untouched = true;
        for (size_t k = 0; k < sizeof c; k++)
            untouched &= bytes[k] == 0x5a;
        cr_expect(untouched, "%s: *out written on failure", b->name);
    }
    tmpdir_free(&t, names, n);
}

Test(cluster, unreadable_file)
{
    hs_cluster c;
    hs_error err = { 0 };
    cr_assert_eq(hs_cluster_load("configs/clusters/no_such_file.yaml", &c, &err), HS_ERR_IO);
    cr_assert_not_null(strstr(err.msg, "configs/clusters/no_such_file.yaml: cannot open"), "%s",
                       err.msg);
    cr_assert_eq(hs_cluster_load("configs/clusters", &c, &err), HS_ERR_IO, "a directory");
    cr_assert_eq(hs_cluster_load("configs/clusters/camera_edge.yaml", &c, NULL), HS_OK,
                 "err may be NULL");
}

/* ---- overrides --------------------------------------------------------------------------- */

static void set_ok(hs_cluster *c, const char *a)
{
    hs_error err = { 0 };
    hs_status st = hs_cluster_set(c, a, &err);
    cr_assert_eq(st, HS_OK, "--set %s: %d: %s", a, st, err.msg);
}

Test(cluster, set_links)
{
    hs_cluster c = load_ok("configs/clusters/camera_edge_cloud.yaml");
    set_ok(&c, "camera-edge.bandwidth_mbps=20");
    cr_assert_eq(link_of(&c, "camera", "edge")->bandwidth_bps, 20e6);
    cr_assert_eq(link_of(&c, "edge", "camera")->bandwidth_bps, 20e6, "A-B sets both ways");
    cr_assert_eq(link_of(&c, "camera", "edge")->latency_s, 0.010, "latency untouched");

    set_ok(&c, "edge->cloud.latency_ms=35");
    cr_assert_float_eq(link_of(&c, "edge", "cloud")->latency_s, 0.035, 1e-15);
    cr_assert_eq(link_of(&c, "cloud", "edge")->latency_s, 0.020, "A->B sets one way");
    set_ok(&c, "cloud->edge.bandwidth_mbps=1.5e2");
    cr_assert_eq(link_of(&c, "cloud", "edge")->bandwidth_bps, 150e6);
    cr_assert_eq(link_of(&c, "edge", "cloud")->bandwidth_bps, 50e6);
    set_ok(&c, "camera-edge.latency_ms=0");
    cr_assert_eq(link_of(&c, "edge", "camera")->latency_s, 0);

    /* A new link: bandwidth creates it (latency 0), then latency may be set. */
    set_ok(&c, "camera->cloud.bandwidth_mbps=5");
    cr_assert_eq(link_of(&c, "camera", "cloud")->bandwidth_bps, 5e6);
    cr_assert_eq(link_of(&c, "camera", "cloud")->latency_s, 0);
    cr_assert_eq(link_of(&c, "cloud", "camera")->bandwidth_bps, 0);
    set_ok(&c, "camera->cloud.latency_ms=40");
    cr_assert_float_eq(link_of(&c, "camera", "cloud")->latency_s, 0.040, 1e-15);
}

Test(cluster, set_devices)
{
    hs_cluster c = load_ok("configs/clusters/camera_edge_cloud.yaml");
    hs_device *cam = &c.devices[dev(&c, "camera")], *edge = &c.devices[dev(&c, "edge")];
    set_ok(&c, "edge.speed=2");
    cr_assert_eq(edge->speed, 2);
    set_ok(&c, "camera.memory_mb=256");
    cr_assert_eq(cam->memory_bytes, 256 * MIB);
    set_ok(&c, "camera.power.idle_w=0.5");
    set_ok(&c, "camera.power.active_w=7");
    set_ok(&c, "camera.power.tx_nj_per_byte=12");
    set_ok(&c, "camera.power.rx_nj_per_byte=0");
    cr_assert_eq(cam->power.idle_w, 0.5);
    cr_assert_eq(cam->power.active_w, 7);
    cr_assert_eq(cam->power.tx_nj_per_byte, 12);
    cr_assert_eq(cam->power.rx_nj_per_byte, 0);
    set_ok(&c, "camera.battery.level=0.3");
    set_ok(&c, "camera.battery.capacity_wh=12.5");
    set_ok(&c, "camera.battery.floor=0");
    cr_assert_eq(cam->battery.level, 0.3);
    cr_assert_eq(cam->battery.capacity_wh, 12.5);
    cr_assert_eq(cam->battery.floor, 0);
    set_ok(&c, "cloud.excluded=true");
    cr_assert(c.devices[dev(&c, "cloud")].excluded);
    set_ok(&c, "cloud.excluded=false");
    cr_assert(!c.devices[dev(&c, "cloud")].excluded);
}

typedef struct bad_set {
    const char *assignment;
    hs_status status;
    const char *reason; /* the message is "--set ASSIGNMENT: REASON..." */
} bad_set;

Test(cluster, set_errors)
{
    static const bad_set cases[] = {
        { "camera-edge.bandwidth_mbps=-1", HS_ERR_INVALID, "must be > 0, got -1" },
        { "camera-edge.bandwidth_mbps=0", HS_ERR_INVALID, "must be > 0, got 0" },
        { "camera-edge.latency_ms=-3", HS_ERR_INVALID, "must be >= 0, got -3" },
        { "camera-edge.bandwidth_mbps=fast", HS_ERR_PARSE, "expected a number, got 'fast'" },
        { "camera-edge.bandwidth_mbps=", HS_ERR_PARSE, "expected a number, got ''" },
        { "camera-edge.bandwidth_mbps=10Mbps", HS_ERR_PARSE, "expected a number" },
        { "camera-edge.jitter_ms=1", HS_ERR_INVALID, "unknown link field 'jitter_ms'" },
        { "camera-cloud.latency_ms=3", HS_ERR_NOTFOUND, "no link camera->cloud" },
        { "cloud->camera.latency_ms=3", HS_ERR_NOTFOUND, "no link cloud->camera" },
        { "camera-nowhere.bandwidth_mbps=1", HS_ERR_NOTFOUND, "no device named 'nowhere'" },
        { "camera-camera.bandwidth_mbps=1", HS_ERR_INVALID, "a link from 'camera' to itself" },
        { "camera-edge-cloud.bandwidth_mbps=1", HS_ERR_PARSE, "expected FROM-TO or FROM->TO" },
        { "edge.speed=0", HS_ERR_INVALID, "must be > 0, got 0" },
        { "edge.speed=-2", HS_ERR_INVALID, "must be > 0, got -2" },
        { "edge.speed=nan", HS_ERR_INVALID, "must be > 0, got nan" },
        { "edge.speed=inf", HS_ERR_INVALID, "must be > 0, got inf" },
        { "edge.memory_mb=0", HS_ERR_INVALID, "must be > 0, got 0" },
        { "edge.power.idle_w=-1", HS_ERR_INVALID, "must be >= 0, got -1" },
        { "edge.power.rx_nj_per_byte=-1", HS_ERR_INVALID, "must be >= 0, got -1" },
        { "edge.battery.level=0.5", HS_ERR_INVALID, "'edge' is mains powered (no battery)" },
        { "camera.battery.level=1.5", HS_ERR_INVALID, "must be in [0, 1], got 1.5" },
        { "camera.battery.floor=1", HS_ERR_INVALID, "must be in [0, 1), got 1" },
        { "camera.battery.capacity_wh=0", HS_ERR_INVALID, "must be > 0, got 0" },
        { "camera.battery.voltage=3", HS_ERR_INVALID, "unknown device field 'battery.voltage'" },
        { "camera.colour=red", HS_ERR_INVALID, "unknown device field 'colour'" },
        { "camera.excluded=maybe", HS_ERR_PARSE, "expected true or false, got 'maybe'" },
        { "nosuch.speed=1", HS_ERR_NOTFOUND, "no device named 'nosuch'" },
        { "edge.speed", HS_ERR_PARSE, "expected DEVICE.FIELD=VALUE" },
        { "edge=2", HS_ERR_PARSE, "expected DEVICE.FIELD=VALUE" },
        { ".speed=2", HS_ERR_PARSE, "expected DEVICE.FIELD=VALUE" },
        { "", HS_ERR_PARSE, "expected DEVICE.FIELD=VALUE" },
    };
    const hs_cluster before = load_ok("configs/clusters/camera_edge_cloud.yaml");
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        hs_cluster c = before;
        hs_error err = { 0 };
        hs_status st = hs_cluster_set(&c, cases[i].assignment, &err);
        char prefix[200];
        snprintf(prefix, sizeof prefix, "--set %s: ", cases[i].assignment);
        cr_expect_eq(st, cases[i].status, "%s: status %d, want %d (%s)", cases[i].assignment,
                     st, cases[i].status, err.msg);
        cr_expect(strncmp(err.msg, prefix, strlen(prefix)) == 0, "%s: message '%s'",
                  cases[i].assignment, err.msg);
        cr_expect_not_null(strstr(err.msg, cases[i].reason), "%s: message '%s' lacks '%s'",
                           cases[i].assignment, err.msg, cases[i].reason);
        cr_expect(memcmp(&c, &before, sizeof c) == 0, "%s: a failed --set changed the cluster",
                  cases[i].assignment);
    }
}
