/*
 * Softmax, numerically stable (the row maximum is subtracted before exp).
 *
 * The two ONNX definitions reduce to one kernel over a [outer, n, inner] view: before opset
 * 13 the input is coerced to 2-D at `axis` (default 1) and normalised over the whole trailing
 * block (n = product of dims from axis on, inner = 1); from opset 13 it is normalised along
 * `axis` alone (default -1; inner = product of the dims after it). Sums are accumulated in
 * double. FLOPs: 5 per element (max, subtract, exp, add, scale).
 */
#include <math.h>
#include <stdlib.h>

#include "graph_impl.h"

typedef struct softmax_params {
    int64_t outer, n, inner;
} softmax_params;

static hs_status softmax_prepare(hs__prep *p)
{
    hs_status st = hs__check_arity(p, 1, 1, 1);
    if (st == HS_OK)
        st = hs__need_input(p, 0, HS_F32, "input");
    if (st != HS_OK)
        return st;
    const hs_tensor *x = hs__in(p, 0);
    bool coerce = p->g->opset < 13;
    int64_t attr = hs__attr_int(p, "axis", coerce ? 1 : -1, &st);
    if (st != HS_OK)
        return st;
    int axis = hs__axis(attr, x->ndim);
    if (axis < 0)
        return hs__fail(p, HS_ERR_INVALID, "axis %lld is out of range for rank %d",
                        (long long)attr, x->ndim);

    softmax_params *sp = calloc(1, sizeof *sp);
    if (!sp)
        return hs__fail(p, HS_ERR_NOMEM, "out of memory");
    sp->outer = hs__prod(x->shape, 0, axis);
    sp->n = coerce ? hs__prod(x->shape, axis, x->ndim) : x->shape[axis];
    sp->inner = coerce ? 1 : hs__prod(x->shape, axis + 1, x->ndim);
    p->node->params = sp;
    hs__set_out(p, 0, HS_F32, x->ndim, x->shape);
    p->node->flops = 5.0 * (double)hs_tensor_numel(x);
    return HS_OK;
}

static void softmax_run(const hs__node *node, const hs_tensor *in, hs_tensor *out, void *ws)
{
    const softmax_params *sp = node->params;
    const int64_t n = sp->n, inner = sp->inner;
    if (n == 0)
        return;
    for (int64_t o = 0; o < sp->outer; o++) {
        for (int64_t j = 0; j < inner; j++) {
            const float *x = (const float *)in[0].data + o * n * inner + j;
            float *y = (float *)out->data + o * n * inner + j;
            float max = x[0];
            for (int64_t k = 1; k < n; k++)
                max = x[k * inner] > max ? x[k * inner] : max;
            double sum = 0.0;
            for (int64_t k = 0; k < n; k++) {
                float e = expf(x[k * inner] - max);
                y[k * inner] = e;
                sum += e;
            }
            const float scale = (float)(1.0 / sum);
            for (int64_t k = 0; k < n; k++)
                y[k * inner] *= scale;
        }
    }
}

const hs__op hs__op_softmax = {.name = "Softmax", .prepare = softmax_prepare, .run = softmax_run};
