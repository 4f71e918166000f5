/*
 * Conv as im2col + one SGEMM per image and group (darknet's approach): the weight
 * [M, C/group, k...] is already the row-major A matrix of each group, so unfolding the input
 * into columns turns the convolution into the one kernel BLAS does best. Two shapes skip the
 * unfolding: a pointwise conv (1x1, stride 1, no padding) is a GEMM on the input as it lies,
 * and a depthwise conv (one input channel per group) is a direct loop, where im2col would buy
 * only memory traffic. Bias is written into the output first and the GEMM accumulates onto it.
 *
 * 1-D, 2-D and 3-D convolutions all run as 3-D ones whose leading spatial dims have size 1.
 * This file also holds the sliding-window geometry (strides, pads, dilations, auto_pad,
 * ceil_mode) that the pools share.
 */
#include <cblas.h>
#include <stdlib.h>
#include <string.h>

#include "graph_impl.h"

#define SP 3                        /* spatial dims every window is normalised to */
#define IM2COL_MAX_BYTES (16u << 20) /* cap on the unfolded buffer; larger convs go in slices */

/* ---- window geometry, shared with pool.c -------------------------------------------------- */

/* The positions o in [0, n) with 0 <= o*step + off < n_in form the range [*lo, *hi) (possibly
 * empty). For a conv tap at offset off this is the run of outputs reading inside the input;
 * for a pooling window starting at off with dilation step, the run of taps inside it. */
void hs__window_range(int64_t off, int64_t step, int64_t n_in, int64_t n, int64_t *lo,
                      int64_t *hi)
{
    int64_t a = off >= 0 ? 0 : (-off + step - 1) / step;
    int64_t b = n_in - off <= 0 ? 0 : (n_in - 1 - off) / step + 1;
    *lo = a < n ? a : n;
    *hi = b < *lo ? *lo : b < n ? b : n;
}

/* Reads 'strides', 'dilations', 'pads' and 'auto_pad' for a window of kernel[] sliding over
 * the nsp spatial dims in[], and writes stride[], dilation[], pad_begin[], pad_end[] and the
 * output size out[] (each nsp long). ceil_mode rounds the output size up, dropping a last
 * window that would start in the end padding. Fails through p naming the attribute. */
hs_status hs__window_geometry(hs__prep *p, int nsp, const int64_t *in, const int64_t *kernel,
                              bool ceil_mode, int64_t *stride, int64_t *dilation,
                              int64_t *pad_begin, int64_t *pad_end, int64_t *out)
{
    int64_t strides[2 * HS_MAX_DIMS], dils[2 * HS_MAX_DIMS], pads[2 * HS_MAX_DIMS];
    int n_strides, n_dils, n_pads;
    char auto_pad[32];
    hs_status st;
    if ((st = hs__attr_ints(p, "strides", strides, 2 * HS_MAX_DIMS, &n_strides)) != HS_OK ||
        (st = hs__attr_ints(p, "dilations", dils, 2 * HS_MAX_DIMS, &n_dils)) != HS_OK ||
        (st = hs__attr_ints(p, "pads", pads, 2 * HS_MAX_DIMS, &n_pads)) != HS_OK ||
        (st = hs__attr_string(p, "auto_pad", "NOTSET", auto_pad, sizeof auto_pad)) != HS_OK)
        return st;
    if (n_strides && n_strides != nsp)
        return hs__fail(p, HS_ERR_INVALID, "'strides' has %d values for %d spatial dims",
                        n_strides, nsp);
    if (n_dils && n_dils != nsp)
        return hs__fail(p, HS_ERR_INVALID, "'dilations' has %d values for %d spatial dims",
                        n_dils, nsp);
    if (n_pads && n_pads != 2 * nsp)
        return hs__fail(p, HS_ERR_INVALID, "'pads' has %d values for %d spatial dims",
                        n_pads, nsp);
    bool same_upper = strcmp(auto_pad, "SAME_UPPER") == 0;
    bool same_lower = strcmp(auto_pad, "SAME_LOWER") == 0;
    bool valid = strcmp(auto_pad, "VALID") == 0;
    if (!same_upper && !same_lower && !valid && strcmp(auto_pad, "NOTSET") != 0)
        return hs__fail(p, HS_ERR_INVALID, "unknown auto_pad '%s'", auto_pad);

    for (int d = 0; d < nsp; d++) {
        stride[d] = n_strides ? strides[d] : 1;
        dilation[d] = n_dils ? dils[d] : 1;
        pad_begin[d] = n_pads && !valid ? pads[d] : 0;
        pad_end[d] = n_pads && !valid ? pads[nsp + d] : 0;
        if (kernel[d] < 1 || stride[d] < 1 || dilation[d] < 1)
            return hs__fail(p, HS_ERR_INVALID,
                            "spatial dim %d: kernel %lld, stride %lld and dilation %lld must "
                            "be positive", d, (long long)kernel[d], (long long)stride[d],
                            (long long)dilation[d]);
        if (pad_begin[d] < 0 || pad_end[d] < 0)
            return hs__fail(p, HS_ERR_INVALID, "spatial dim %d: negative pads %lld, %lld", d,
                            (long long)pad_begin[d], (long long)pad_end[d]);
        int64_t extent = (kernel[d] - 1) * dilation[d] + 1;
        if (same_upper || same_lower) {
            out[d] = (in[d] + stride[d] - 1) / stride[d];
            int64_t total = (out[d] - 1) * stride[d] + extent - in[d];
            total = total > 0 ? total : 0;
            pad_begin[d] = same_upper ? total / 2 : total - total / 2;
            pad_end[d] = total - pad_begin[d];
        } else {
            int64_t span = in[d] + pad_begin[d] + pad_end[d] - extent;
            if (span < 0)
                out[d] = 0;
            else if (ceil_mode) {
                out[d] = (span + stride[d] - 1) / stride[d] + 1;
                if ((out[d] - 1) * stride[d] >= in[d] + pad_begin[d])
                    out[d]--;
            } else {
                out[d] = span / stride[d] + 1;
            }
        }
        if (out[d] < 1)
            return hs__fail(p, HS_ERR_SHAPE,
                            "spatial dim %d: input %lld with pads %lld+%lld is smaller than "
                            "the window extent %lld", d, (long long)in[d],
                            (long long)pad_begin[d], (long long)pad_end[d], (long long)extent);
    }
    return HS_OK;
}

/* ---- Conv --------------------------------------------------------------------------------- */

typedef enum conv_path { CONV_IM2COL, CONV_POINTWISE, CONV_DEPTHWISE } conv_path;

typedef struct conv_params {
    conv_path path;
    int64_t n, c, m, group;
    int64_t in[SP], out[SP], k[SP], stride[SP], dil[SP], pad[SP];
    int64_t chunk_lines; /* output lines (out[2] outputs each) unfolded per im2col pass */
} conv_params;

/* Copies an nsp-long array into the last nsp slots of a SP-long one, filling the rest. */
static void widen(int64_t *dst, const int64_t *src, int nsp, int64_t fill)
{
    for (int d = 0; d < SP; d++)
        dst[d] = d < SP - nsp ? fill : src[d - (SP - nsp)];
}

static hs_status conv_prepare(hs__prep *p)
{
    hs_status st;
    if ((st = hs__check_arity(p, 2, 3, 1)) != HS_OK ||
        (st = hs__need_input(p, 0, HS_F32, "X")) != HS_OK ||
        (st = hs__need_input(p, 1, HS_F32, "W")) != HS_OK ||
        (st = hs__need_const(p, 1, "W")) != HS_OK)
        return st;
    const hs_tensor *x = hs__in(p, 0), *w = hs__in(p, 1), *b = hs__in(p, 2);
    if (b && ((st = hs__need_input(p, 2, HS_F32, "B")) != HS_OK ||
              (st = hs__need_const(p, 2, "B")) != HS_OK))
        return st;
    int nsp = x->ndim - 2;
    if (nsp < 1 || nsp > SP)
        return hs__fail(p, HS_ERR_UNSUPPORTED,
                        "X has rank %d; only 1-D to 3-D convolutions (rank 3 to 5) are supported",
                        x->ndim);
    if (w->ndim != x->ndim)
        return hs__fail(p, HS_ERR_SHAPE, "W has rank %d but X has rank %d", w->ndim, x->ndim);
    if (hs_tensor_numel(x) == 0 || hs_tensor_numel(w) == 0)
        return hs__fail(p, HS_ERR_SHAPE, "X and W must not be empty");

    int64_t group = hs__attr_int(p, "group", 1, &st);
    if (st != HS_OK)
        return st;
    if (group < 1)
        return hs__fail(p, HS_ERR_INVALID, "group %lld must be positive", (long long)group);
    int64_t n = x->shape[0], c = x->shape[1], m = w->shape[0], cg = w->shape[1];
    if (c % group != 0)
        return hs__fail(p, HS_ERR_SHAPE, "group %lld does not divide the %lld input channels",
                        (long long)group, (long long)c);
    if (m % group != 0)
        return hs__fail(p, HS_ERR_SHAPE, "group %lld does not divide the %lld output channels",
                        (long long)group, (long long)m);
    if (cg * group != c)
        return hs__fail(p, HS_ERR_SHAPE,
                        "W has %lld input channels per group but X has %lld channels in %lld "
                        "groups", (long long)cg, (long long)c, (long long)group);
    if (b && (b->ndim != 1 || b->shape[0] != m))
        return hs__fail(p, HS_ERR_SHAPE, "B must have shape [%lld]", (long long)m);

    const int64_t *kernel = w->shape + 2;
    int64_t ks[HS_MAX_DIMS];
    int n_ks;
    if ((st = hs__attr_ints(p, "kernel_shape", ks, HS_MAX_DIMS, &n_ks)) != HS_OK)
        return st;
    if (n_ks && n_ks != nsp)
        return hs__fail(p, HS_ERR_INVALID, "'kernel_shape' has %d values for %d spatial dims",
                        n_ks, nsp);
    for (int d = 0; d < n_ks; d++)
        if (ks[d] != kernel[d])
            return hs__fail(p, HS_ERR_SHAPE,
                            "kernel_shape[%d] = %lld but W's spatial dim is %lld", d,
                            (long long)ks[d], (long long)kernel[d]);

    int64_t stride[SP], dil[SP], pad[SP], pad_end[SP], out[SP];
    if ((st = hs__window_geometry(p, nsp, x->shape + 2, kernel, false, stride, dil, pad, pad_end,
                                  out)) != HS_OK)
        return st;

    conv_params *cp = calloc(1, sizeof *cp);
    if (!cp)
        return hs__fail(p, HS_ERR_NOMEM, "out of memory");
    cp->n = n;
    cp->c = c;
    cp->m = m;
    cp->group = group;
    widen(cp->in, x->shape + 2, nsp, 1);
    widen(cp->out, out, nsp, 1);
    widen(cp->k, kernel, nsp, 1);
    widen(cp->stride, stride, nsp, 1);
    widen(cp->dil, dil, nsp, 1);
    widen(cp->pad, pad, nsp, 0);

    int64_t ksize = hs__prod(cp->k, 0, SP), osize = hs__prod(cp->out, 0, SP);
    bool pointwise = ksize == 1;
    for (int d = 0; d < nsp; d++)
        pointwise = pointwise && stride[d] == 1 && pad[d] == 0 && pad_end[d] == 0;
    if (pointwise) {
        cp->path = CONV_POINTWISE;
    } else if (cg == 1 && group == c && group > 1) {
        cp->path = CONV_DEPTHWISE;
        p->node->workspace = 2 * (size_t)cp->k[SP - 1] * sizeof(int64_t);
    } else {
        cp->path = CONV_IM2COL;
        int64_t line_bytes = cg * ksize * cp->out[SP - 1] * (int64_t)sizeof(float);
        int64_t lines = cp->out[0] * cp->out[1];
        int64_t chunk = IM2COL_MAX_BYTES / line_bytes;
        cp->chunk_lines = chunk < 1 ? 1 : chunk > lines ? lines : chunk;
        p->node->workspace = (size_t)(cp->chunk_lines * line_bytes);
    }

    int64_t out_shape[HS_MAX_DIMS] = {n, m};
    memcpy(out_shape + 2, out, (size_t)nsp * sizeof *out);
    hs__set_out(p, 0, HS_F32, x->ndim, out_shape);
    p->node->params = cp;
    p->node->flops = 2.0 * (double)(n * m * osize) * (double)(cg * ksize) +
                     (b ? (double)(n * m * osize) : 0.0);
    p->node->n_params = hs_tensor_numel(w) + (b ? hs_tensor_numel(b) : 0);
    return HS_OK;
}

/* Unfolds the cg input planes of one group into col[cg*k][lines*out_w] for output lines
 * [l0, l1), a line being the out[2] outputs at one (od, oh). */
static void im2col(const conv_params *cp, const float *x, int64_t cg, int64_t l0, int64_t l1,
                   float *col)
{
    const int64_t ID = cp->in[0], IH = cp->in[1], IW = cp->in[2];
    const int64_t OH = cp->out[1], OW = cp->out[2];
    float *dst = col;
    for (int64_t c = 0; c < cg; c++)
        for (int64_t kd = 0; kd < cp->k[0]; kd++)
            for (int64_t kh = 0; kh < cp->k[1]; kh++)
                for (int64_t kw = 0; kw < cp->k[2]; kw++) {
                    int64_t off_w = kw * cp->dil[2] - cp->pad[2], lo, hi;
                    hs__window_range(off_w, cp->stride[2], IW, OW, &lo, &hi);
                    for (int64_t l = l0; l < l1; l++, dst += OW) {
                        int64_t id = (l / OH) * cp->stride[0] - cp->pad[0] + kd * cp->dil[0];
                        int64_t ih = (l % OH) * cp->stride[1] - cp->pad[1] + kh * cp->dil[1];
                        if (id < 0 || id >= ID || ih < 0 || ih >= IH) {
                            memset(dst, 0, (size_t)OW * sizeof *dst);
                            continue;
                        }
                        const float *src = x + ((c * ID + id) * IH + ih) * IW;
                        memset(dst, 0, (size_t)lo * sizeof *dst);
                        for (int64_t ow = lo; ow < hi; ow++)
                            dst[ow] = src[ow * cp->stride[2] + off_w];
                        memset(dst + hi, 0, (size_t)(OW - hi) * sizeof *dst);
                    }
                }
}

/* y[m][s] = bias[m] (or 0) for the m output planes of one image. */
static void fill_bias(float *y, const float *bias, int64_t m, int64_t plane)
{
    for (int64_t i = 0; i < m; i++)
        for (int64_t s = 0; s < plane; s++)
            y[i * plane + s] = bias ? bias[i] : 0.0f;
}

/* Columns of the output each tap of the kernel's last axis reaches inside the input:
 * [cols[2*kw], cols[2*kw+1]). The same for every line and plane, so run() computes it once. */
static void tap_columns(const conv_params *cp, int64_t *cols)
{
    for (int64_t kw = 0; kw < cp->k[2]; kw++)
        hs__window_range(kw * cp->dil[2] - cp->pad[2], cp->stride[2], cp->in[2], cp->out[2],
                         &cols[2 * kw], &cols[2 * kw + 1]);
}

/* One output plane of a depthwise conv, line by line: every tap whose input row exists adds
 * weight * input along the line, over the columns `cols` says it reaches, so the inner loop
 * is an axpy (contiguous when the stride is 1) on a line that stays in L1. */
static void depthwise_plane(const conv_params *cp, const int64_t *cols,
                            const float *restrict x, const float *w, float *restrict y)
{
    const int64_t IH = cp->in[1], IW = cp->in[2], KH = cp->k[1], KW = cp->k[2];
    const int64_t sw = cp->stride[2];
    for (int64_t od = 0; od < cp->out[0]; od++)
        for (int64_t oh = 0; oh < cp->out[1]; oh++, y += cp->out[2])
            for (int64_t kd = 0; kd < cp->k[0]; kd++) {
                int64_t id = od * cp->stride[0] - cp->pad[0] + kd * cp->dil[0];
                if (id < 0 || id >= cp->in[0])
                    continue;
                for (int64_t kh = 0; kh < KH; kh++) {
                    int64_t ih = oh * cp->stride[1] - cp->pad[1] + kh * cp->dil[1];
                    if (ih < 0 || ih >= IH)
                        continue;
                    const float *restrict src = x + (id * IH + ih) * IW;
                    const float *wr = w + (kd * KH + kh) * KW;
                    for (int64_t kw = 0; kw < KW; kw++) {
                        const float wv = wr[kw];
                        const int64_t off = kw * cp->dil[2] - cp->pad[2];
                        const int64_t lo = cols[2 * kw], hi = cols[2 * kw + 1];
                        if (sw == 1)
                            for (int64_t ow = lo; ow < hi; ow++)
                                y[ow] += wv * src[ow + off];
                        else
                            for (int64_t ow = lo; ow < hi; ow++)
                                y[ow] += wv * src[ow * sw + off];
                    }
                }
            }
}

static void conv_run(const hs__node *node, const hs_tensor *in, hs_tensor *out, void *workspace)
{
    const conv_params *cp = node->params;
    const float *x = in[0].data, *w = in[1].data;
    const float *bias = node->n_in > 2 ? in[2].data : NULL;
    float *y = out[0].data;
    const int64_t isize = hs__prod(cp->in, 0, SP), osize = hs__prod(cp->out, 0, SP);
    const int64_t cg = cp->c / cp->group, mg = cp->m / cp->group;
    const int64_t rows = cg * hs__prod(cp->k, 0, SP);
    const float beta = bias ? 1.0f : 0.0f;

    if (cp->path == CONV_DEPTHWISE)
        tap_columns(cp, workspace);
    for (int64_t n = 0; n < cp->n; n++) {
        const float *xn = x + n * cp->c * isize;
        float *yn = y + n * cp->m * osize;
        if (bias || cp->path == CONV_DEPTHWISE)
            fill_bias(yn, bias, cp->m, osize);
        if (cp->path == CONV_DEPTHWISE) {
            int64_t mult = cp->m / cp->c;
            for (int64_t m = 0; m < cp->m; m++)
                depthwise_plane(cp, workspace, xn + (m / mult) * isize, w + m * rows,
                                yn + m * osize);
            continue;
        }
        for (int64_t g = 0; g < cp->group; g++) {
            const float *xg = xn + g * cg * isize, *wg = w + g * mg * rows;
            float *yg = yn + g * mg * osize;
            if (cp->path == CONV_POINTWISE) {
                cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, (int)mg, (int)osize,
                            (int)cg, 1.0f, wg, (int)cg, xg, (int)isize, beta, yg, (int)osize);
                continue;
            }
            const int64_t lines = cp->out[0] * cp->out[1], OW = cp->out[2];
            for (int64_t l0 = 0; l0 < lines; l0 += cp->chunk_lines) {
                int64_t l1 = l0 + cp->chunk_lines < lines ? l0 + cp->chunk_lines : lines;
                int64_t cols = (l1 - l0) * OW;
                im2col(cp, xg, cg, l0, l1, workspace);
                cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, (int)mg, (int)cols,
                            (int)rows, 1.0f, wg, (int)rows, workspace, (int)cols, beta,
                            yg + l0 * OW, (int)osize);
            }
        }
    }
    hs__act_apply(&node->act, y, cp->n * cp->m * osize);
}

const hs__op hs__op_conv = {
    .name = "Conv", .prepare = conv_prepare, .run = conv_run, .fuses_act = true};
