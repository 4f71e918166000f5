/*
 * The cost model: seconds of every node on every device of a cluster, from a reference profile
 * (or built-in constants), each device's speed or own profile, and a correction factor per
 * device learnt online from measured stage times.
 *
 *     time(i, d) = ref(i) / speed(d) * correction(d)      device without a profile
 *     time(i, d) = own_profile(i) * correction(d)         device with `profile:` (speed 1)
 *
 * Without a reference profile, ref(i) comes from the analytic model below: per op class,
 * flops / FLOP rate + bytes / memory bandwidth + a fixed cost per node, bytes = input + weight
 * + output bytes. The constants were calibrated on this project's development machine (2-core
 * x86-64 VM, OpenBLAS Haswell kernels, 1 BLAS thread) against measured profiles of the six
 * zoo models: each model's analytic total came within 5% of its measured total (30% was the
 * goal; figures at analytic_classes[]). Per class the error is larger (the 3-channel stem
 * conv runs at half the conv rate, tiny element-wise nodes cost 2-3x the fixed term). On any
 * other machine they are a starting point that the correction factor, or better a measured
 * profile, replaces.
 */
#include <assert.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cost_impl.h"

typedef struct analytic_class {
    double flop_rate; /* FLOP/s */
    double byte_rate; /* bytes/s */
    double fixed_s;
} analytic_class;

/* Per class: time = flops / flop_rate + bytes / byte_rate + fixed_s (0 rate: no term).
 * Calibrated on the development machine with the machine quiet (contention from other
 * processes made the same nodes 1.5-4x slower, big-weight Gemms most): analytic / measured
 * total was resnet18 0.96, mobilenet_v2 0.96, resnet50 0.98, efficientnet_b0 0.95, alexnet
 * 0.99, vgg16 1.04. Gemm's byte term is the stream of its weights from memory (batch-1 Gemm
 * is a matrix-vector product: alexnet's and vgg16's classifiers run at ~18 GB/s). Sigmoid and
 * Tanh cost ~8 ns per element (an expf each). */
static const analytic_class analytic_classes[HS_CLASS_COUNT] = {
    [HS_CLASS_CONV] = {80e9, 0, 1e-6},
    [HS_CLASS_POINTWISE] = {90e9, 0, 1e-6},
    [HS_CLASS_DEPTHWISE] = {6e9, 0, 1e-6},
    [HS_CLASS_GROUPED] = {40e9, 0, 1e-6},
    [HS_CLASS_GEMM] = {80e9, 18e9, 1e-6},
    [HS_CLASS_POOL] = {0, 8e9, 1e-6},
    [HS_CLASS_ELEMENTWISE] = {0, 30e9, 1e-6},
    [HS_CLASS_TRANSCENDENTAL] = {0, 1e9, 1e-6},
    [HS_CLASS_NORM] = {0, 10e9, 1e-6},
    [HS_CLASS_DATA] = {0, 20e9, 1e-6},
    [HS_CLASS_OTHER] = {0, 10e9, 1e-6},
};

static double analytic_time(const hs_graph *g, int i)
{
    hs_node_info ni;
    hs_graph_node_info(g, i, &ni);
    const analytic_class *a = &analytic_classes[hs__op_class_of(g, i)];
    assert(a->fixed_s > 0 && "analytic_classes[] lacks an op class");
    double bytes = (double)(ni.input_bytes + ni.weight_bytes + ni.output_bytes);
    return (a->flop_rate > 0 ? ni.flops / a->flop_rate : 0) +
           (a->byte_rate > 0 ? bytes / a->byte_rate : 0) + a->fixed_s;
}

typedef struct device_profile {
    char file[256];      /* the device's `profile:` field it was loaded for ("" = none) */
    hs_profile *profile; /* owned */
    double *time;        /* [n_nodes] reference seconds from that profile */
} device_profile;

struct hs_cost_model {
    const hs_graph *g;
    const hs_cluster *c;
    const hs_profile *ref;
    int n;
    double *ref_time;                      /* [n] */
    double correction[HS_MAX_DEVICES];
    device_profile dev[HS_MAX_DEVICES];
    /* hs_cost_problem's arrays */
    double *node_time;                     /* [HS_MAX_DEVICES][n] */
    double *cut_bytes;                     /* [n + 1] */
    double *weight_bytes, *live_bytes;     /* [n] */
    double io_s_per_byte[HS_MAX_DEVICES];
};

/* Opens a device profile: the path as written, else relative to the cluster file's folder. */
static hs_status load_device_profile(hs_cost_model *m, int d, hs_error *err)
{
    const hs_device *dv = &m->c->devices[d];
    device_profile *dp = &m->dev[d];
    hs_profile_free(dp->profile);
    dp->profile = NULL;
    snprintf(dp->file, sizeof dp->file, "%s", dv->profile);
    if (!dv->profile[0])
        return HS_OK;
    char path[600];
    snprintf(path, sizeof path, "%s", dv->profile);
    const char *slash = strrchr(m->c->path, '/');
    if (dv->profile[0] != '/' && access(path, R_OK) != 0 && slash)
        snprintf(path, sizeof path, "%.*s/%s", (int)(slash - m->c->path), m->c->path,
                 dv->profile);
    hs_error perr = {0};
    hs_status st = hs_profile_load(path, &dp->profile, &perr);
    if (st != HS_OK) {
        dp->file[0] = '\0';
        return hs_error_set(err, st, "%s: devices.%s.profile: %s", m->c->path, dv->name,
                             perr.msg);
    }
    for (int i = 0; i < m->n; i++)
        dp->time[i] = hs_profile_node_time(dp->profile, m->g, i);
    return HS_OK;
}

hs_status hs_cost_model_new(const hs_graph *g, const hs_cluster *c, const hs_profile *ref,
                            hs_cost_model **out, hs_error *err)
{
    assert(g && c && out);
    assert(c->n_devices >= 0 && c->n_devices <= HS_MAX_DEVICES);
    *out = NULL;
    int n = hs_graph_node_count(g);
    hs_cost_model *m = calloc(1, sizeof *m);
    if (!m)
        return hs_error_set(err, HS_ERR_NOMEM, "cost model: out of memory");
    m->g = g;
    m->c = c;
    m->ref = ref;
    m->n = n;
    size_t nn = (size_t)n + 1;
    m->ref_time = calloc(nn, sizeof *m->ref_time);
    m->node_time = calloc(HS_MAX_DEVICES * nn, sizeof *m->node_time);
    m->cut_bytes = calloc(nn, sizeof *m->cut_bytes);
    m->weight_bytes = calloc(nn, sizeof *m->weight_bytes);
    m->live_bytes = calloc(nn, sizeof *m->live_bytes);
    bool ok = m->ref_time && m->node_time && m->cut_bytes && m->weight_bytes && m->live_bytes;
    for (int d = 0; d < HS_MAX_DEVICES; d++) {
        m->correction[d] = 1.0;
        ok = ok && (m->dev[d].time = calloc(nn, sizeof *m->dev[d].time)) != NULL;
    }
    if (!ok) {
        hs_cost_model_free(m);
        return hs_error_set(err, HS_ERR_NOMEM, "cost model: out of memory");
    }
    for (int i = 0; i < n; i++)
        m->ref_time[i] = ref ? hs_profile_node_time(ref, g, i) : analytic_time(g, i);
    for (int d = 0; d < c->n_devices; d++) {
        hs_status st = load_device_profile(m, d, err);
        if (st != HS_OK) {
            hs_cost_model_free(m);
            return st;
        }
    }
    *out = m;
    return HS_OK;
}

void hs_cost_model_free(hs_cost_model *m)
{
    if (!m)
        return;
    for (int d = 0; d < HS_MAX_DEVICES; d++) {
        hs_profile_free(m->dev[d].profile);
        free(m->dev[d].time);
    }
    free(m->ref_time);
    free(m->node_time);
    free(m->cut_bytes);
    free(m->weight_bytes);
    free(m->live_bytes);
    free(m);
}

/* Node time on device d before the correction. */
static double base_time(const hs_cost_model *m, int d, int i)
{
    if (m->dev[d].profile)
        return m->dev[d].time[i];
    double speed = m->c->devices[d].speed;
    return m->ref_time[i] / (speed > 0 ? speed : 1.0);
}

double hs_cost_node_time(const hs_cost_model *m, int d, int i)
{
    assert(m && d >= 0 && d < m->c->n_devices && i >= 0 && i < m->n);
    return base_time(m, d, i) * m->correction[d];
}

double hs_cost_correction(const hs_cost_model *m, int d)
{
    assert(m && d >= 0 && d < HS_MAX_DEVICES);
    return m->correction[d];
}

void hs_cost_set_correction(hs_cost_model *m, int d, double factor)
{
    assert(m && d >= 0 && d < HS_MAX_DEVICES && factor > 0 && isfinite(factor));
    m->correction[d] = factor;
}

void hs_cost_observe(hs_cost_model *m, int d, int first, int last, double measured_s,
                     double alpha)
{
    assert(m && d >= 0 && d < m->c->n_devices);
    assert(first >= 0 && first <= last && last <= m->n);
    assert(alpha > 0 && alpha <= 1);
    if (!(measured_s > 0) || !isfinite(measured_s))
        return;
    double predicted = 0;
    for (int i = first; i < last; i++)
        predicted += base_time(m, d, i);
    if (!(predicted > 0))
        return;
    m->correction[d] = (1 - alpha) * m->correction[d] + alpha * (measured_s / predicted);
}

hs_status hs_cost_problem(hs_cost_model *m, hs_problem *out, hs_error *err)
{
    assert(m && out);
    const hs_cluster *c = m->c;
    assert(c->n_devices >= 0 && c->n_devices <= HS_MAX_DEVICES);
    int n = m->n;
    /* The cluster may have changed since the last call: a device's profile file too. */
    for (int d = 0; d < c->n_devices; d++) {
        if (strcmp(m->dev[d].file, c->devices[d].profile) != 0) {
            hs_status st = load_device_profile(m, d, err);
            if (st != HS_OK)
                return st;
        }
    }
    for (int d = 0; d < c->n_devices; d++)
        for (int i = 0; i < n; i++)
            m->node_time[(size_t)d * (size_t)n + (size_t)i] = hs_cost_node_time(m, d, i);
    for (int k = 0; k <= n; k++)
        m->cut_bytes[k] = (double)hs_graph_cut_bytes(m->g, k - 1);
    for (int i = 0; i < n; i++) {
        hs_node_info ni;
        hs_graph_node_info(m->g, i, &ni);
        m->weight_bytes[i] = (double)ni.weight_bytes;
        m->live_bytes[i] = (double)ni.live_bytes;
    }
    for (int d = 0; d < c->n_devices; d++) {
        double speed = c->devices[d].speed > 0 ? c->devices[d].speed : 1.0;
        /* a device profile without io measured falls back on the reference's, so that it
         * does not look free to send to */
        double own = m->dev[d].profile ? hs_profile_io_cost(m->dev[d].profile) : 0;
        double ref = m->ref ? hs_profile_io_cost(m->ref) : 0;
        m->io_s_per_byte[d] = own > 0 ? own : m->dev[d].profile ? ref : ref / speed;
    }
    *out = (hs_problem){
        .n_nodes = n,
        .io_s_per_byte = m->io_s_per_byte,
        .cluster = c,
        .node_time = m->node_time,
        .cut_bytes = m->cut_bytes,
        .weight_bytes = m->weight_bytes,
        .live_bytes = m->live_bytes,
    };
    return HS_OK;
}
