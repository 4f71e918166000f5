/*
 * ReduceMean over the axes of the 'axes' attribute (all axes when it is absent; in opsets
 * 6-17 the axes are an attribute), keeping reduced dimensions as 1 when keepdims = 1.
 *
 * prepare() splits the input's dimensions into kept and reduced ones, dropping dimensions of
 * size 1 and merging neighbours of the same kind, so the usual CNN case (mean over H and W)
 * becomes one contiguous row sum per output element. run() walks the kept dimensions with an
 * odometer and, for each output element, sums the reduced ones (in double, so the result does
 * not depend on how long the rows are). FLOPs: one add per input element, one divide per
 * output element.
 */
#include <stdlib.h>

#include "graph_impl.h"

/* A set of dimensions walked by an odometer: sizes and input element strides. */
typedef struct dims {
    int n;                        /* >= 1 */
    int64_t shape[HS_MAX_DIMS];
    int64_t stride[HS_MAX_DIMS];
} dims;

typedef struct reducemean_params {
    dims kept, reduced;
    double scale;                 /* 1 / number of reduced elements */
} reducemean_params;

static void dims_push(dims *ds, bool merge, int64_t size, int64_t stride)
{
    if (merge) {
        ds->shape[ds->n - 1] *= size;
        ds->stride[ds->n - 1] = stride;
    } else {
        ds->shape[ds->n] = size;
        ds->stride[ds->n++] = stride;
    }
}

static hs_status reducemean_prepare(hs__prep *p)
{
    hs_status st = hs__check_arity(p, 1, 1, 1);
    if (st == HS_OK)
        st = hs__need_input(p, 0, HS_F32, "data");
    if (st != HS_OK)
        return st;
    const hs_tensor *x = hs__in(p, 0);
    int rank = x->ndim, n;
    int64_t axes[HS_MAX_DIMS];
    if ((st = hs__attr_ints(p, "axes", axes, HS_MAX_DIMS, &n)) != HS_OK)
        return st;
    bool keepdims = hs__attr_int(p, "keepdims", 1, &st) != 0;
    if (st != HS_OK)
        return st;
    bool reduce[HS_MAX_DIMS];
    for (int d = 0; d < rank; d++)
        reduce[d] = n == 0;
    for (int i = 0; i < n; i++) {
        int d = hs__axis(axes[i], rank);
        if (d < 0 || reduce[d])
            return hs__fail(p, HS_ERR_INVALID, "axis %lld is out of range for rank %d or "
                            "repeated", (long long)axes[i], rank);
        reduce[d] = true;
    }

    reducemean_params *rp = calloc(1, sizeof *rp);
    if (!rp)
        return hs__fail(p, HS_ERR_NOMEM, "out of memory");
    int64_t shape[HS_MAX_DIMS], count = 1, stride = hs_tensor_numel(x);
    int out_rank = 0, prev = -1; /* kind of the previous non-1 dimension: 0 kept, 1 reduced */
    for (int d = 0; d < rank; d++) {
        stride /= x->shape[d] ? x->shape[d] : 1;
        if (reduce[d])
            count *= x->shape[d];
        if (!reduce[d] || keepdims)
            shape[out_rank++] = reduce[d] ? 1 : x->shape[d];
        if (x->shape[d] == 1)
            continue;
        dims_push(reduce[d] ? &rp->reduced : &rp->kept, prev == reduce[d], x->shape[d],
                  stride);
        prev = reduce[d];
    }
    if (rp->kept.n == 0)
        dims_push(&rp->kept, false, 1, 0);
    if (rp->reduced.n == 0)
        dims_push(&rp->reduced, false, 1, 0);
    rp->scale = count ? 1.0 / (double)count : 0.0;
    p->node->params = rp;
    hs__set_out(p, 0, HS_F32, out_rank, shape);
    p->node->flops = (double)hs_tensor_numel(x) + (double)hs__prod(shape, 0, out_rank);
    return HS_OK;
}

/* Advances an odometer over ds, keeping *off the matching input offset. */
static void dims_next(const dims *ds, int64_t *idx, int64_t *off, int from)
{
    for (int d = from; d >= 0; d--) {
        *off += ds->stride[d];
        if (++idx[d] < ds->shape[d])
            return;
        *off -= ds->stride[d] * ds->shape[d];
        idx[d] = 0;
    }
}

static void reducemean_run(const hs__node *node, const hs_tensor *in, hs_tensor *out,
                           void *ws)
{
    const reducemean_params *rp = node->params;
    const dims *k = &rp->kept, *r = &rp->reduced;
    const int rl = r->n - 1;
    const int64_t row = r->shape[rl], step = r->stride[rl];
    const int64_t rows = hs__prod(r->shape, 0, rl);
    const float *x = in[0].data;
    float *y = out->data;
    int64_t n_out = hs__prod(k->shape, 0, k->n);
    int64_t kidx[HS_MAX_DIMS] = {0}, base = 0;
    for (int64_t o = 0; o < n_out; o++) {
        int64_t ridx[HS_MAX_DIMS] = {0}, off = base;
        double sum = 0.0;
        for (int64_t j = 0; j < rows; j++) {
            const float *xr = x + off;
            if (step == 1)
                for (int64_t i = 0; i < row; i++)
                    sum += xr[i];
            else
                for (int64_t i = 0; i < row; i++)
                    sum += xr[i * step];
            dims_next(r, ridx, &off, rl - 1);
        }
        y[o] = (float)(sum * rp->scale);
        dims_next(k, kidx, &base, k->n - 1);
    }
}

const hs__op hs__op_reducemean = {
    .name = "ReduceMean", .prepare = reducemean_prepare, .run = reducemean_run};
