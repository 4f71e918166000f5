/*
 * BatchNormalization for inference, when it does not follow a Conv (the loader folds those
 * into the Conv). The statistics are constants, so prepare() reduces them to one scale and one
 * shift per channel and run() is a single multiply-add per element.
 */
#include <math.h>
#include <stdlib.h>

#include "graph_impl.h"

typedef struct bn_params {
    int64_t c;
    float coef[]; /* scale[c] then shift[c]: y = x * scale + shift */
} bn_params;

static hs_status bn_prepare(hs__prep *p)
{
    static const char *const names[] = {"X", "scale", "B", "mean", "var"};
    hs_status st;
    if ((st = hs__check_arity(p, 5, 5, -1)) != HS_OK)
        return st;
    for (int i = 0; i < 5; i++)
        if ((st = hs__need_input(p, i, HS_F32, names[i])) != HS_OK ||
            (i > 0 && (st = hs__need_const(p, i, names[i])) != HS_OK))
            return st;
    if (hs__out_count(p) > 1)
        return hs__fail(p, HS_ERR_UNSUPPORTED,
                        "training outputs (running mean, var, ...) are not supported");
    if (hs__attr_int(p, "training_mode", 0, &st) != 0)
        return hs__fail(p, HS_ERR_UNSUPPORTED, "training_mode=1 is not supported");
    if (hs__attr_int(p, "spatial", 1, &st) == 0)
        return hs__fail(p, HS_ERR_UNSUPPORTED, "spatial=0 (per-activation statistics) is not "
                                               "supported");
    float eps = hs__attr_float(p, "epsilon", 1e-5f, &st);
    if (st != HS_OK)
        return st;

    const hs_tensor *x = hs__in(p, 0);
    if (x->ndim < 2)
        return hs__fail(p, HS_ERR_SHAPE, "X has rank %d, needs at least 2 (N, C, ...)",
                        x->ndim);
    int64_t c = x->shape[1];
    for (int i = 1; i < 5; i++) {
        const hs_tensor *t = hs__in(p, i);
        if (t->ndim != 1 || t->shape[0] != c)
            return hs__fail(p, HS_ERR_SHAPE, "%s must have shape [%lld]", names[i],
                            (long long)c);
    }

    bn_params *bp = calloc(1, sizeof *bp + 2 * (size_t)c * sizeof(float));
    if (!bp)
        return hs__fail(p, HS_ERR_NOMEM, "out of memory");
    const float *scale = hs__in(p, 1)->data, *bias = hs__in(p, 2)->data;
    const float *mean = hs__in(p, 3)->data, *var = hs__in(p, 4)->data;
    bp->c = c;
    for (int64_t i = 0; i < c; i++) {
        bp->coef[i] = scale[i] / sqrtf(var[i] + eps);
        bp->coef[c + i] = bias[i] - mean[i] * bp->coef[i];
    }
    hs__set_out(p, 0, HS_F32, x->ndim, x->shape);
    p->node->params = bp;
    p->node->flops = 2.0 * (double)hs_tensor_numel(x);
    p->node->n_params = 2 * c;
    return HS_OK;
}

static void bn_run(const hs__node *node, const hs_tensor *in, hs_tensor *out, void *workspace)
{
    const bn_params *bp = node->params;
    const float *x = in[0].data;
    float *y = out[0].data;
    int64_t n = in[0].shape[0], plane = hs__prod(in[0].shape, 2, in[0].ndim);
    for (int64_t b = 0; b < n; b++)
        for (int64_t c = 0; c < bp->c; c++) {
            float scale = bp->coef[c], shift = bp->coef[bp->c + c];
            int64_t base = (b * bp->c + c) * plane;
            for (int64_t s = 0; s < plane; s++)
                y[base + s] = x[base + s] * scale + shift;
        }
}

const hs__op hs__op_batchnorm = {.name = "BatchNormalization", .prepare = bn_prepare,
                                 .run = bn_run};
