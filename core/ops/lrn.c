/*
 * LRN (AlexNet, GoogLeNet v1): each element divided by a power of the sum of squares over a
 * window of neighbouring channels. The output plane doubles as the accumulator of that sum,
 * so the kernel needs no scratch memory and its inner loops run along contiguous planes.
 */
#include <math.h>
#include <stdlib.h>

#include "graph_impl.h"

typedef struct lrn_params {
    int64_t size;
    float alpha, beta, bias;
} lrn_params;

static hs_status lrn_prepare(hs__prep *p)
{
    hs_status st;
    if ((st = hs__check_arity(p, 1, 1, 1)) != HS_OK ||
        (st = hs__need_input(p, 0, HS_F32, "X")) != HS_OK)
        return st;
    const hs_tensor *x = hs__in(p, 0);
    if (x->ndim < 2)
        return hs__fail(p, HS_ERR_SHAPE, "X has rank %d, needs at least 2 (N, C, ...)",
                        x->ndim);
    if (!hs__attr_has(p, "size"))
        return hs__fail(p, HS_ERR_INVALID, "attribute 'size' is required");
    lrn_params lp = {
        .size = hs__attr_int(p, "size", 1, &st),
        .alpha = hs__attr_float(p, "alpha", 1e-4f, &st),
        .beta = hs__attr_float(p, "beta", 0.75f, &st),
        .bias = hs__attr_float(p, "bias", 1.0f, &st),
    };
    if (st != HS_OK)
        return st;
    if (lp.size < 1)
        return hs__fail(p, HS_ERR_INVALID, "size %lld must be positive", (long long)lp.size);
    lrn_params *params = malloc(sizeof *params);
    if (!params)
        return hs__fail(p, HS_ERR_NOMEM, "out of memory");
    *params = lp;
    hs__set_out(p, 0, HS_F32, x->ndim, x->shape);
    p->node->params = params;
    p->node->flops = (double)hs_tensor_numel(x) * (double)(2 * lp.size + 3);
    return HS_OK;
}

static void lrn_run(const hs__node *node, const hs_tensor *in, hs_tensor *out, void *workspace)
{
    const lrn_params *lp = node->params;
    const float *x = in[0].data;
    float *y = out[0].data;
    const int64_t n = in[0].shape[0], c = in[0].shape[1];
    const int64_t plane = hs__prod(in[0].shape, 2, in[0].ndim);
    const float scale = lp->alpha / (float)lp->size;
    for (int64_t b = 0; b < n; b++)
        for (int64_t ch = 0; ch < c; ch++) {
            int64_t lo = ch - (lp->size - 1) / 2, hi = ch + lp->size / 2;
            lo = lo < 0 ? 0 : lo;
            hi = hi >= c ? c - 1 : hi;
            const float *xc = x + (b * c + ch) * plane;
            float *yc = y + (b * c + ch) * plane;
            for (int64_t s = 0; s < plane; s++)
                yc[s] = 0.0f;
            for (int64_t k = lo; k <= hi; k++) {
                const float *xk = x + (b * c + k) * plane;
                for (int64_t s = 0; s < plane; s++)
                    yc[s] += xk[s] * xk[s];
            }
            for (int64_t s = 0; s < plane; s++)
                yc[s] = xc[s] / powf(lp->bias + scale * yc[s], lp->beta);
        }
}

const hs__op hs__op_lrn = {.name = "LRN", .prepare = lrn_prepare, .run = lrn_run};
