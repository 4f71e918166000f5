/*
 * Split: cuts a tensor along one axis into consecutive parts, the inverse of Concat and the
 * same [outer, dim, inner] memcpy walk. The sizes come from the 'split' attribute before
 * opset 13 and from the optional constant 'split' input from 13 on; without them the axis is
 * divided equally, which must come out even (uneven last chunks arrive only in opset 18).
 * Pure data movement: 0 FLOPs.
 */
#include <stdlib.h>
#include <string.h>

#include "graph_impl.h"

typedef struct split_params {
    int axis;
} split_params;

static hs_status split_prepare(hs__prep *p)
{
    bool input = p->g->opset >= 13;
    hs_status st = hs__check_arity(p, 1, input ? 2 : 1, -1);
    if (st != HS_OK)
        return st;
    const hs_tensor *x = hs__in(p, 0);
    int64_t attr = hs__attr_int(p, "axis", 0, &st);
    if (st != HS_OK)
        return st;
    int axis = hs__axis(attr, x->ndim);
    if (axis < 0)
        return hs__fail(p, HS_ERR_INVALID, "axis %lld is out of range for rank %d",
                        (long long)attr, x->ndim);

    int n_out = hs__out_count(p), n_sizes = 0;
    int64_t sizes[HS_MAX_IO];
    if (input && hs__in(p, 1))
        st = hs__const_ints(p, 1, sizes, HS_MAX_IO, &n_sizes, "split");
    else if (!input)
        st = hs__attr_ints(p, "split", sizes, HS_MAX_IO, &n_sizes);
    if (st != HS_OK)
        return st;

    int64_t dim = x->shape[axis];
    if (n_sizes == 0) {
        if (dim % n_out != 0)
            return hs__fail(p, HS_ERR_SHAPE, "axis %d of size %lld does not split evenly "
                            "into %d outputs", axis, (long long)dim, n_out);
        for (int i = 0; i < n_out; i++)
            sizes[i] = dim / n_out;
    } else {
        if (n_sizes != n_out)
            return hs__fail(p, HS_ERR_INVALID, "'split' has %d sizes for %d outputs", n_sizes,
                            n_out);
        int64_t total = 0;
        for (int i = 0; i < n_out; i++) {
            if (sizes[i] < 0)
                return hs__fail(p, HS_ERR_INVALID, "'split' size %lld is negative",
                                (long long)sizes[i]);
            total += sizes[i];
        }
        if (total != dim)
            return hs__fail(p, HS_ERR_SHAPE, "'split' sizes sum to %lld, axis %d has %lld",
                            (long long)total, axis, (long long)dim);
    }

    split_params *sp = calloc(1, sizeof *sp);
    if (!sp)
        return hs__fail(p, HS_ERR_NOMEM, "out of memory");
    sp->axis = axis;
    p->node->params = sp;
    int64_t shape[HS_MAX_DIMS];
    memcpy(shape, x->shape, sizeof shape);
    for (int i = 0; i < n_out; i++) {
        shape[axis] = sizes[i];
        hs__set_out(p, i, x->dtype, x->ndim, shape);
    }
    return HS_OK;
}

static void split_run(const hs__node *node, const hs_tensor *in, hs_tensor *out, void *ws)
{
    const split_params *sp = node->params;
    int64_t outer = hs__prod(in[0].shape, 0, sp->axis);
    size_t inner = (size_t)hs__prod(in[0].shape, sp->axis + 1, in[0].ndim) *
                   hs_dtype_size(in[0].dtype);
    const char *x = in[0].data;
    for (int64_t o = 0; o < outer; o++) {
        for (int i = 0; i < node->n_out; i++) {
            size_t block = (size_t)out[i].shape[sp->axis] * inner;
            memcpy((char *)out[i].data + (size_t)o * block, x, block);
            x += block;
        }
    }
}

const hs__op hs__op_split = {.name = "Split", .prepare = split_prepare, .run = split_run};
