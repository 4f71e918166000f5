/*
 * MaxPool, AveragePool and their global forms. The windowed pools share Conv's geometry
 * (hs__window_geometry in conv.c) and, like Conv, run 1-D to 3-D inputs as 3-D ones with
 * leading spatial dims of size 1. They sweep each output line tap by tap, as the depthwise
 * conv does: every tap whose input row exists updates the run of outputs whose input column
 * exists, a bounds-free loop along a line that stays in L1. AveragePool then divides each
 * output by its count of taps inside the input (or, with count_include_pad, inside the padded
 * input).
 */
#include <float.h>
#include <stdlib.h>
#include <string.h>

#include "graph_impl.h"

#define SP 3
#define GAP_LANES 8 /* partial sums per plane in GlobalAveragePool */


typedef struct pool_params {
    int64_t planes; /* N * C */
    int64_t in[SP], out[SP], k[SP], stride[SP], dil[SP], pad[SP], pad_end[SP];
    bool count_include_pad;
} pool_params;

static hs_status window_pool_prepare(hs__prep *p, bool is_max)
{
    hs_status st;
    if ((st = hs__check_arity(p, 1, 1, -1)) != HS_OK ||
        (st = hs__need_input(p, 0, HS_F32, "X")) != HS_OK)
        return st;
    if (is_max && hs__out_count(p) == 2)
        return hs__fail(p, HS_ERR_UNSUPPORTED, "the Indices output is not supported");
    if (hs__out_count(p) != 1)
        return hs__fail(p, HS_ERR_INVALID, "expects 1 output, has %d", hs__out_count(p));
    const hs_tensor *x = hs__in(p, 0);
    int nsp = x->ndim - 2;
    if (nsp < 1 || nsp > SP)
        return hs__fail(p, HS_ERR_UNSUPPORTED,
                        "X has rank %d; only 1-D to 3-D pooling (rank 3 to 5) is supported",
                        x->ndim);
    int64_t kernel[HS_MAX_DIMS];
    int n_kernel;
    if ((st = hs__attr_ints(p, "kernel_shape", kernel, HS_MAX_DIMS, &n_kernel)) != HS_OK)
        return st;
    if (n_kernel != nsp)
        return hs__fail(p, HS_ERR_INVALID, "'kernel_shape' has %d values for %d spatial dims",
                        n_kernel, nsp);
    bool ceil_mode = hs__attr_int(p, "ceil_mode", 0, &st) != 0;
    bool include_pad = !is_max && hs__attr_int(p, "count_include_pad", 0, &st) != 0;
    if (st != HS_OK)
        return st;
    int64_t stride[SP], dil[SP], pad[SP], pad_end[SP], out[SP];
    if ((st = hs__window_geometry(p, nsp, x->shape + 2, kernel, ceil_mode, stride, dil, pad,
                                  pad_end, out)) != HS_OK)
        return st;

    pool_params *pp = calloc(1, sizeof *pp);
    if (!pp)
        return hs__fail(p, HS_ERR_NOMEM, "out of memory");
    int lead = SP - nsp;
    for (int d = 0; d < SP; d++) {
        bool real = d >= lead;
        pp->in[d] = real ? x->shape[2 + d - lead] : 1;
        pp->out[d] = real ? out[d - lead] : 1;
        pp->k[d] = real ? kernel[d - lead] : 1;
        pp->stride[d] = real ? stride[d - lead] : 1;
        pp->dil[d] = real ? dil[d - lead] : 1;
        pp->pad[d] = real ? pad[d - lead] : 0;
        pp->pad_end[d] = real ? pad_end[d - lead] : 0;
    }
    pp->planes = x->shape[0] * x->shape[1];
    pp->count_include_pad = include_pad;

    int64_t shape[HS_MAX_DIMS] = {x->shape[0], x->shape[1]};
    memcpy(shape + 2, out, (size_t)nsp * sizeof *out);
    hs__set_out(p, 0, HS_F32, x->ndim, shape);
    int64_t osize = hs__prod(pp->out, 0, SP);
    p->node->params = pp;
    p->node->workspace = (2 * (size_t)pp->k[SP - 1] + (size_t)pp->out[SP - 1]) * sizeof(int64_t);
    p->node->flops = (double)(pp->planes * osize) * (double)(hs__prod(pp->k, 0, SP) +
                                                               (is_max ? 0 : 1));
    return HS_OK;
}

static hs_status maxpool_prepare(hs__prep *p) { return window_pool_prepare(p, true); }
static hs_status averagepool_prepare(hs__prep *p) { return window_pool_prepare(p, false); }

/* Taps of a window starting at `start` along axis d that land inside the input, or with
 * `padded`, inside the padded input. */
static int64_t taps_inside(const pool_params *pp, int d, int64_t start, bool padded)
{
    int64_t lo, hi, n = pp->in[d];
    if (padded) {
        start += pp->pad[d];
        n += pp->pad[d] + pp->pad_end[d];
    }
    hs__window_range(start, pp->dil[d], n, pp->k[d], &lo, &hi);
    return hi - lo;
}

/* The workspace tables, the same for every line and plane: for tap kw, the output columns
 * [cols[2*kw], cols[2*kw+1]) it reaches inside the input; for output column ow, the taps of
 * its window that AveragePool counts along that axis. */
static void column_tables(const pool_params *pp, int64_t *cols, int64_t *count)
{
    const int64_t OW = pp->out[2], IW = pp->in[2];
    for (int64_t kw = 0; kw < pp->k[2]; kw++)
        hs__window_range(kw * pp->dil[2] - pp->pad[2], pp->stride[2], IW, OW, &cols[2 * kw],
                         &cols[2 * kw + 1]);
    for (int64_t ow = 0; ow < OW; ow++)
        count[ow] = taps_inside(pp, 2, ow * pp->stride[2] - pp->pad[2], pp->count_include_pad);
}

static void window_pool_run(const pool_params *pp, const float *restrict x, float *restrict y,
                            int64_t *ws, bool is_max)
{
    const int64_t IH = pp->in[1], IW = pp->in[2], OW = pp->out[2], sw = pp->stride[2];
    int64_t *cols = ws, *count = ws + 2 * pp->k[2];
    column_tables(pp, cols, count);
    for (int64_t plane = 0; plane < pp->planes; plane++, x += pp->in[0] * IH * IW)
        for (int64_t od = 0; od < pp->out[0]; od++)
            for (int64_t oh = 0; oh < pp->out[1]; oh++, y += OW) {
                int64_t d0 = od * pp->stride[0] - pp->pad[0];
                int64_t h0 = oh * pp->stride[1] - pp->pad[1];
                for (int64_t ow = 0; ow < OW; ow++)
                    y[ow] = is_max ? -FLT_MAX : 0.0f;
                for (int64_t kd = 0; kd < pp->k[0]; kd++) {
                    int64_t id = d0 + kd * pp->dil[0];
                    if (id < 0 || id >= pp->in[0])
                        continue;
                    for (int64_t kh = 0; kh < pp->k[1]; kh++) {
                        int64_t ih = h0 + kh * pp->dil[1];
                        if (ih < 0 || ih >= IH)
                            continue;
                        const float *restrict src = x + (id * IH + ih) * IW;
                        for (int64_t kw = 0; kw < pp->k[2]; kw++) {
                            const int64_t off = kw * pp->dil[2] - pp->pad[2];
                            const int64_t lo = cols[2 * kw], hi = cols[2 * kw + 1];
                            if (is_max)
                                for (int64_t ow = lo; ow < hi; ow++) {
                                    float v = src[ow * sw + off];
                                    y[ow] = v > y[ow] ? v : y[ow];
                                }
                            else
                                for (int64_t ow = lo; ow < hi; ow++)
                                    y[ow] += src[ow * sw + off];
                        }
                    }
                }
                if (is_max)
                    continue;
                int64_t count_dh = taps_inside(pp, 0, d0, pp->count_include_pad) *
                                   taps_inside(pp, 1, h0, pp->count_include_pad);
                for (int64_t ow = 0; ow < OW; ow++) {
                    int64_t n = count_dh * count[ow];
                    y[ow] = n > 0 ? y[ow] / (float)n : 0.0f;
                }
            }
}

static void maxpool_run(const hs__node *node, const hs_tensor *in, hs_tensor *out,
                        void *workspace)
{
    window_pool_run(node->params, in[0].data, out[0].data, workspace, true);
}

static void averagepool_run(const hs__node *node, const hs_tensor *in, hs_tensor *out,
                            void *workspace)
{
    window_pool_run(node->params, in[0].data, out[0].data, workspace, false);
}

const hs__op hs__op_maxpool = {.name = "MaxPool", .prepare = maxpool_prepare,
                               .run = maxpool_run};
const hs__op hs__op_averagepool = {.name = "AveragePool", .prepare = averagepool_prepare,
                                   .run = averagepool_run};

/* ---- global pools ------------------------------------------------------------------------- */

static hs_status global_prepare(hs__prep *p)
{
    hs_status st;
    if ((st = hs__check_arity(p, 1, 1, 1)) != HS_OK ||
        (st = hs__need_input(p, 0, HS_F32, "X")) != HS_OK)
        return st;
    const hs_tensor *x = hs__in(p, 0);
    if (x->ndim < 3)
        return hs__fail(p, HS_ERR_SHAPE, "X has rank %d, needs at least 3 (N, C, spatial)",
                        x->ndim);
    int64_t shape[HS_MAX_DIMS];
    for (int d = 0; d < x->ndim; d++)
        shape[d] = d < 2 ? x->shape[d] : 1;
    hs__set_out(p, 0, HS_F32, x->ndim, shape);
    p->node->flops = (double)hs_tensor_numel(x);
    return HS_OK;
}

static void globalaveragepool_run(const hs__node *node, const hs_tensor *in, hs_tensor *out,
                                  void *workspace)
{
    const float *x = in[0].data;
    float *y = out[0].data;
    int64_t planes = in[0].shape[0] * in[0].shape[1], size = hs__prod(in[0].shape, 2, in[0].ndim);
    for (int64_t i = 0; i < planes; i++, x += size) {
        /* GAP_LANES independent partial sums: one serial chain of double adds runs at one
         * add per ~4 cycles, while lanes vectorize; the fixed lane order keeps it exact
         * to the bit from run to run. */
        double lane[GAP_LANES] = {0};
        int64_t s = 0;
        for (; s + GAP_LANES <= size; s += GAP_LANES)
            for (int j = 0; j < GAP_LANES; j++)
                lane[j] += x[s + j];
        for (; s < size; s++)
            lane[s % GAP_LANES] += x[s];
        double sum = 0.0;
        for (int j = 0; j < GAP_LANES; j++)
            sum += lane[j];
        y[i] = (float)(sum / (double)size);
    }
}

static void globalmaxpool_run(const hs__node *node, const hs_tensor *in, hs_tensor *out,
                              void *workspace)
{
    const float *x = in[0].data;
    float *y = out[0].data;
    int64_t planes = in[0].shape[0] * in[0].shape[1], size = hs__prod(in[0].shape, 2, in[0].ndim);
    for (int64_t i = 0; i < planes; i++, x += size) {
        float m = -FLT_MAX;
        for (int64_t s = 0; s < size; s++)
            m = x[s] > m ? x[s] : m;
        y[i] = m;
    }
}

const hs__op hs__op_globalaveragepool = {.name = "GlobalAveragePool", .prepare = global_prepare,
                                         .run = globalaveragepool_run};
const hs__op hs__op_globalmaxpool = {.name = "GlobalMaxPool", .prepare = global_prepare,
                                     .run = globalmaxpool_run};
