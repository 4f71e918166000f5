/*
 * Transpose: permutes dimensions (default: reverses them).
 *
 * prepare() describes the output as a walk over the input: for each output dimension, the
 * input stride it advances by. Dimensions of size 1 are dropped and output neighbours that
 * stay neighbours in the input are merged, so a channel shuffle ([N,g,C/g,H,W] with perm
 * 0,2,1,3,4) copies whole H*W rows with memcpy and only a true 2-D transpose of the innermost
 * dimension falls back to a strided element loop. Pure data movement: 0 FLOPs.
 */
#include <stdint.h>
#include <stdlib.h>

#include "graph_impl.h"

typedef struct transpose_params {
    int ndim;                     /* collapsed dimensions, >= 1 */
    int64_t shape[HS_MAX_DIMS];   /* collapsed output shape */
    int64_t stride[HS_MAX_DIMS];  /* input element stride of each collapsed dimension */
} transpose_params;

static hs_status transpose_prepare(hs__prep *p)
{
    hs_status st = hs__check_arity(p, 1, 1, 1);
    if (st != HS_OK)
        return st;
    const hs_tensor *x = hs__in(p, 0);
    int rank = x->ndim, n;
    int64_t perm[HS_MAX_DIMS];
    if ((st = hs__attr_ints(p, "perm", perm, HS_MAX_DIMS, &n)) != HS_OK)
        return st;
    if (!hs__attr_has(p, "perm"))
        for (n = 0; n < rank; n++)
            perm[n] = rank - 1 - n;
    bool used[HS_MAX_DIMS] = {false};
    if (n != rank)
        return hs__fail(p, HS_ERR_INVALID, "perm has %d entries for rank %d", n, rank);
    for (int d = 0; d < rank; d++) {
        if (perm[d] < 0 || perm[d] >= rank || used[perm[d]])
            return hs__fail(p, HS_ERR_INVALID, "perm is not a permutation of 0..%d",
                            rank - 1);
        used[perm[d]] = true;
    }

    int64_t in_stride[HS_MAX_DIMS], shape[HS_MAX_DIMS], s = 1;
    for (int d = rank - 1; d >= 0; d--) {
        in_stride[d] = s;
        s *= x->shape[d];
    }
    transpose_params *tp = calloc(1, sizeof *tp);
    if (!tp)
        return hs__fail(p, HS_ERR_NOMEM, "out of memory");
    for (int d = 0; d < rank; d++) {
        shape[d] = x->shape[perm[d]];
        if (shape[d] == 1)
            continue;
        int64_t stride = in_stride[perm[d]];
        int k = tp->ndim - 1;
        if (k >= 0 && tp->stride[k] == stride * shape[d]) {
            tp->shape[k] *= shape[d];
            tp->stride[k] = stride;
        } else {
            tp->shape[tp->ndim] = shape[d];
            tp->stride[tp->ndim++] = stride;
        }
    }
    if (tp->ndim == 0) {
        tp->shape[0] = 1;
        tp->stride[tp->ndim++] = 1;
    }
    p->node->params = tp;
    hs__set_out(p, 0, x->dtype, rank, shape);
    return HS_OK;
}

static void transpose_run(const hs__node *node, const hs_tensor *in, hs_tensor *out, void *ws)
{
    const transpose_params *tp = node->params;
    if (hs_tensor_numel(out) == 0)
        return;
    hs__gather_strided(out->data, in[0].data, hs_dtype_size(out->dtype), tp->ndim, tp->shape,
                       tp->stride);
}

const hs__op hs__op_transpose = {
    .name = "Transpose", .prepare = transpose_prepare, .run = transpose_run};
