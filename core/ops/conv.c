/*
 * Conv as im2col + one SGEMM per image and group (darknet's approach): the weight
 * [M, C/group, k...] is already the row-major A matrix of each group, so unfolding the input
 * into columns turns the convolution into the one kernel BLAS does best. Two shapes skip the
 * unfolding: a pointwise conv (1x1, stride 1, no padding) is a GEMM on the input as it lies,
 * and a 1-D or 2-D depthwise conv (one input channel per group) is a direct loop, where
 * im2col would buy only memory traffic. Bias is written into the output first and the GEMM
 * accumulates onto it.
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
#define DW_ACC 2048                  /* depthwise accumulator block, floats (8 KiB, in L1) */
#define DW_VEC 16                    /* depthwise blocks are whole multiples of this many floats */

/* Hot loops are compiled for AVX-512 and AVX2 as well as the baseline, picked at load time
 * (GCC's target_clones, through glibc's ifunc): the same auto-vectorized C, 2-4x wider. The
 * clones give identical bits: C11 mode keeps GCC from contracting a*b+c into an FMA and the
 * loops have no reductions to reassociate. */
#if defined(__GNUC__) && !defined(__clang__) && defined(__x86_64__) && defined(__linux__)
#define HS_VEC_CLONES __attribute__((target_clones("arch=x86-64-v4", "arch=x86-64-v3", "default")))
#else
#define HS_VEC_CLONES
#endif

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
    /* Depthwise: the padded input plane split into stride[1] * stride[2] phase planes of
     * qh rows by qw columns (see depthwise_phases), and the output rows per block. */
    int64_t qh, qw, block_rows;
    int64_t phase_floats;  /* all phase planes plus slack, a multiple of DW_VEC */
} conv_params;

static int64_t round_up(int64_t n, int64_t to) { return (n + to - 1) / to * to; }

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
    } else if (cg == 1 && group == c && group > 1 && nsp <= 2) {
        cp->path = CONV_DEPTHWISE;
        /* Padded extent the outputs reach, split by stride; one spare row absorbs the reads
         * past the last row that the block loop makes for the discarded columns. */
        int64_t ph = (cp->out[1] - 1) * cp->stride[1] + (cp->k[1] - 1) * cp->dil[1] + 1;
        int64_t pw = (cp->out[2] - 1) * cp->stride[2] + (cp->k[2] - 1) * cp->dil[2] + 1;
        cp->qh = (ph + cp->stride[1] - 1) / cp->stride[1] + 1;
        cp->qw = (pw + cp->stride[2] - 1) / cp->stride[2];
        cp->block_rows = DW_ACC / cp->qw > 0 ? DW_ACC / cp->qw : 1;
        if (cp->block_rows > cp->out[1])
            cp->block_rows = cp->out[1];
        cp->phase_floats = round_up(cp->stride[1] * cp->stride[2] * cp->qh * cp->qw, DW_VEC) +
                           DW_VEC;
        p->node->workspace = (size_t)(cp->phase_floats +
                                      round_up(cp->block_rows * cp->qw, DW_VEC)) * sizeof(float);
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

/* y[m][s] = bias[m] for the m output planes of one image. */
static void fill_bias(float *y, const float *bias, int64_t m, int64_t plane)
{
    for (int64_t i = 0; i < m; i++)
        for (int64_t s = 0; s < plane; s++)
            y[i * plane + s] = bias[i];
}

/* Depthwise convs, 1-D or 2-D (out[0] == in[0] == 1). Output (oh, ow) reads padded input
 * (oh*sh + kh*dh, ow*sw + kw*dw). Splitting the padded plane into sh*sw phase planes,
 * phase (a, b) holding rows a, a+sh, ... and columns b, b+sw, ..., turns every tap into a
 * shift: it reads phase ((kh*dh) % sh, (kw*dw) % sw) at (oh + kh*dh/sh, ow + kw*dw/sw). So
 * with the output laid out qw wide, each tap is one contiguous multiply-add over a block of
 * whole rows, with no bounds and no strided loads, and short rows (7 or 14 wide) cost no loop
 * overhead; the qw - OW extra columns per row are computed and dropped. */

/* Fills the phase planes of one input plane (zeros where the padding is). */
static inline void depthwise_phases(const conv_params *cp, const float *x, float *ph)
{
    const int64_t IH = cp->in[1], IW = cp->in[2], sh = cp->stride[1], sw = cp->stride[2];
    const int64_t qh = cp->qh, qw = cp->qw;
    for (int64_t a = 0; a < sh; a++)
        for (int64_t b = 0; b < sw; b++, ph += qh * qw) {
            int64_t lo, hi;
            hs__window_range(b - cp->pad[2], sw, IW, qw, &lo, &hi);
            for (int64_t i = 0; i < qh; i++) {
                float *dst = ph + i * qw;
                int64_t ih = i * sh + a - cp->pad[1];
                if (ih < 0 || ih >= IH) {
                    memset(dst, 0, (size_t)qw * sizeof *dst);
                    continue;
                }
                const float *src = x + ih * IW;
                const int64_t off = b - cp->pad[2];
                memset(dst, 0, (size_t)lo * sizeof *dst);
                if (sw == 1) /* constant strides let GCC vectorize the gather */
                    memcpy(dst + lo, src + lo + off, (size_t)(hi - lo) * sizeof *dst);
                else if (sw == 2)
                    for (int64_t j = lo; j < hi; j++)
                        dst[j] = src[j * 2 + off];
                else
                    for (int64_t j = lo; j < hi; j++)
                        dst[j] = src[j * sw + off];
                memset(dst + hi, 0, (size_t)(qw - hi) * sizeof *dst);
            }
        }
}

/* acc[t] += w * src[t]: one tap over one block. */
static inline void tap_axpy(float *restrict acc, const float *restrict src, float w, int64_t n)
{
    for (int64_t t = 0; t < n; t++)
        acc[t] += w * src[t];
}

/* One output plane from the phase planes of its input channel, block of rows by block of
 * rows: bias, then every tap in (kh, kw) order, then the fused activation on the way out. */
static inline void depthwise_plane(const conv_params *cp, const hs__act *act, const float *ph,
                                   const float *w, float bias, float *acc, float *y)
{
    const int64_t OH = cp->out[1], OW = cp->out[2], KH = cp->k[1], KW = cp->k[2];
    const int64_t sh = cp->stride[1], sw = cp->stride[2], qh = cp->qh, qw = cp->qw;
    for (int64_t oh0 = 0; oh0 < OH; oh0 += cp->block_rows) {
        int64_t rows = OH - oh0 < cp->block_rows ? OH - oh0 : cp->block_rows;
        /* Whole vectors only: a tap over 77 floats (7x7 with qw = 11) would otherwise spend
         * more time in its scalar remainder than in its vector body. The extra floats read
         * past the block land in the next phase plane or the zeroed slack. */
        int64_t n = round_up(rows * qw, DW_VEC);
        for (int64_t t = 0; t < n; t++)
            acc[t] = bias;
        for (int64_t kh = 0; kh < KH; kh++)
            for (int64_t kw = 0; kw < KW; kw++) {
                int64_t r = kh * cp->dil[1], c = kw * cp->dil[2];
                const float *phase = ph + ((r % sh) * sw + c % sw) * qh * qw;
                tap_axpy(acc, phase + (oh0 + r / sh) * qw + c / sw, w[kh * KW + kw], n);
            }
        for (int64_t i = 0; i < rows; i++)
            memcpy(y + (oh0 + i) * OW, acc + i * qw, (size_t)OW * sizeof *y);
        hs__act_apply(act, y + oh0 * OW, rows * OW);
    }
}

/* The depthwise conv of one image x into y; ws holds the phase planes and the block. */
HS_VEC_CLONES static void depthwise_image(const conv_params *cp, const hs__act *act,
                                          const float *x, const float *w, const float *bias,
                                          float *ws, float *y)
{
    const int64_t mult = cp->m / cp->c, isize = cp->in[1] * cp->in[2];
    const int64_t osize = cp->out[1] * cp->out[2], ksize = cp->k[1] * cp->k[2];
    const int64_t phases = cp->stride[1] * cp->stride[2] * cp->qh * cp->qw;
    float *acc = ws + cp->phase_floats;
    memset(ws + phases, 0, (size_t)(cp->phase_floats - phases) * sizeof *ws);
    for (int64_t c = 0; c < cp->c; c++) {
        depthwise_phases(cp, x + c * isize, ws);
        for (int64_t m = c * mult; m < (c + 1) * mult; m++)
            depthwise_plane(cp, act, ws, w + m * ksize, bias ? bias[m] : 0.0f, acc,
                            y + m * osize);
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

    if (cp->path == CONV_DEPTHWISE) {
        for (int64_t n = 0; n < cp->n; n++)
            depthwise_image(cp, &node->act, x + n * cp->c * isize, w, bias, workspace,
                            y + n * cp->m * osize);
        return;
    }
    const float beta = bias ? 1.0f : 0.0f;
    for (int64_t n = 0; n < cp->n; n++) {
        const float *xn = x + n * cp->c * isize;
        float *yn = y + n * cp->m * osize;
        if (bias)
            fill_bias(yn, bias, cp->m, osize);
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
