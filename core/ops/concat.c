/*
 * Concat: joins any number of tensors along one axis. Seen as [outer, dim, inner] blocks, the
 * output is, for each outer index, every input's contiguous block in turn, so the kernel is
 * one memcpy per input and outer index. Pure data movement: 0 FLOPs.
 */
#include <stdlib.h>
#include <string.h>

#include "graph_impl.h"

typedef struct concat_params {
    int axis;
} concat_params;

static hs_status concat_prepare(hs__prep *p)
{
    hs_status st = hs__check_arity(p, 1, HS_MAX_IO, 1);
    if (st != HS_OK)
        return st;
    if (!hs__attr_has(p, "axis"))
        return hs__fail(p, HS_ERR_INVALID, "attribute 'axis' is required");
    int64_t attr = hs__attr_int(p, "axis", 0, &st);
    if (st != HS_OK)
        return st;
    const hs_tensor *first = hs__in(p, 0);
    int rank = first->ndim;
    int axis = hs__axis(attr, rank);
    if (axis < 0)
        return hs__fail(p, HS_ERR_INVALID, "axis %lld is out of range for rank %d",
                        (long long)attr, rank);

    int64_t shape[HS_MAX_DIMS];
    memcpy(shape, first->shape, sizeof shape);
    shape[axis] = 0;
    for (int i = 0; i < hs__in_count(p); i++) {
        const hs_tensor *t = hs__in(p, i);
        if (!t)
            return hs__fail(p, HS_ERR_INVALID, "input %d is empty", i);
        if (t->dtype != first->dtype)
            return hs__fail(p, HS_ERR_INVALID, "input %d has a different element type", i);
        bool same = t->ndim == rank;
        for (int d = 0; d < rank && same; d++)
            same = d == axis || t->shape[d] == first->shape[d];
        if (!same) {
            char s0[64], si[64];
            return hs__fail(p, HS_ERR_SHAPE, "input %d (%s) does not match input 0 (%s) "
                            "outside axis %d", i, hs_shape_str(t, si, sizeof si),
                            hs_shape_str(first, s0, sizeof s0), axis);
        }
        shape[axis] += t->shape[axis];
    }

    concat_params *cp = calloc(1, sizeof *cp);
    if (!cp)
        return hs__fail(p, HS_ERR_NOMEM, "out of memory");
    cp->axis = axis;
    p->node->params = cp;
    hs__set_out(p, 0, first->dtype, rank, shape);
    return HS_OK;
}

static void concat_run(const hs__node *node, const hs_tensor *in, hs_tensor *out, void *ws)
{
    const concat_params *cp = node->params;
    int64_t outer = hs__prod(out->shape, 0, cp->axis);
    size_t inner = (size_t)hs__prod(out->shape, cp->axis + 1, out->ndim) *
                   hs_dtype_size(out->dtype);
    char *y = out->data;
    for (int64_t o = 0; o < outer; o++) {
        for (int i = 0; i < node->n_in; i++) {
            size_t block = (size_t)in[i].shape[cp->axis] * inner;
            memcpy(y, (const char *)in[i].data + (size_t)o * block, block);
            y += block;
        }
    }
}

const hs__op hs__op_concat = {.name = "Concat", .prepare = concat_prepare, .run = concat_run};
