/*
 * Slice: takes every step-th element between start and end along chosen axes. From opset 10
 * starts/ends/axes/steps are (constant) inputs and steps may be negative; before that starts,
 * ends and axes are attributes and the step is 1. Starts and ends are clamped as ONNX says
 * (so INT64_MAX means "to the end" and INT64_MIN "to the front" when stepping back).
 *
 * prepare() turns the slice into a base offset and one element stride per dimension of the
 * input; run() walks the output with an odometer and copies each innermost row, with memcpy
 * when the innermost step is 1. Pure data movement: 0 FLOPs.
 */
#include <stdint.h>
#include <stdlib.h>

#include "graph_impl.h"

typedef struct slice_params {
    int64_t base;                 /* input element offset of output element 0 */
    int64_t stride[HS_MAX_DIMS];  /* input elements per step along each output dimension */
} slice_params;

/* Reads starts/ends/axes/steps from inputs (opset >= 10) or attributes. *n is the number of
 * sliced axes; axes and steps default to 0..n-1 and 1. */
static hs_status slice_args(hs__prep *p, int64_t *starts, int64_t *ends, int64_t *axes,
                            int64_t *steps, int *n)
{
    int n_ends = 0, n_axes = 0, n_steps = 0;
    hs_status st;
    if (p->g->opset >= 10) {
        if ((st = hs__check_arity(p, 3, 5, 1)) != HS_OK ||
            (st = hs__const_ints(p, 1, starts, HS_MAX_DIMS, n, "starts")) != HS_OK ||
            (st = hs__const_ints(p, 2, ends, HS_MAX_DIMS, &n_ends, "ends")) != HS_OK)
            return st;
        if (hs__in(p, 3) && (st = hs__const_ints(p, 3, axes, HS_MAX_DIMS, &n_axes,
                                                 "axes")) != HS_OK)
            return st;
        if (hs__in(p, 4) && (st = hs__const_ints(p, 4, steps, HS_MAX_DIMS, &n_steps,
                                                 "steps")) != HS_OK)
            return st;
    } else {
        if ((st = hs__check_arity(p, 1, 1, 1)) != HS_OK ||
            (st = hs__attr_ints(p, "starts", starts, HS_MAX_DIMS, n)) != HS_OK ||
            (st = hs__attr_ints(p, "ends", ends, HS_MAX_DIMS, &n_ends)) != HS_OK ||
            (st = hs__attr_ints(p, "axes", axes, HS_MAX_DIMS, &n_axes)) != HS_OK)
            return st;
        if (!hs__attr_has(p, "starts") || !hs__attr_has(p, "ends"))
            return hs__fail(p, HS_ERR_INVALID, "attributes 'starts' and 'ends' are required");
    }
    bool has_axes = hs__in(p, 3) || hs__attr_has(p, "axes");
    if (n_ends != *n || (has_axes && n_axes != *n) || (hs__in(p, 4) && n_steps != *n))
        return hs__fail(p, HS_ERR_INVALID, "starts, ends, axes and steps differ in length");
    for (int i = 0; i < *n; i++) {
        if (!has_axes)
            axes[i] = i;
        if (!hs__in(p, 4))
            steps[i] = 1;
    }
    return HS_OK;
}

static hs_status slice_prepare(hs__prep *p)
{
    int64_t starts[HS_MAX_DIMS], ends[HS_MAX_DIMS], axes[HS_MAX_DIMS], steps[HS_MAX_DIMS];
    int n;
    hs_status st = slice_args(p, starts, ends, axes, steps, &n);
    if (st != HS_OK)
        return st;
    const hs_tensor *x = hs__in(p, 0);
    int rank = x->ndim;

    int64_t start[HS_MAX_DIMS] = {0}, step[HS_MAX_DIMS], shape[HS_MAX_DIMS];
    bool seen[HS_MAX_DIMS] = {false};
    for (int d = 0; d < rank; d++) {
        step[d] = 1;
        shape[d] = x->shape[d];
    }
    for (int i = 0; i < n; i++) {
        int d = hs__axis(axes[i], rank);
        if (d < 0 || seen[d])
            return hs__fail(p, HS_ERR_INVALID, "axis %lld is out of range or repeated",
                            (long long)axes[i]);
        seen[d] = true;
        if (steps[i] == 0 || steps[i] == INT64_MIN)
            return hs__fail(p, HS_ERR_INVALID, "step %lld along axis %d is not allowed",
                            (long long)steps[i], d);
        int64_t dim = x->shape[d], s = starts[i], e = ends[i];
        if (s < 0)
            s += dim;
        if (e < 0)
            e += dim;
        int64_t len;
        if (steps[i] > 0) {
            s = s < 0 ? 0 : s > dim ? dim : s;
            e = e < 0 ? 0 : e > dim ? dim : e;
            len = e > s ? (e - s - 1) / steps[i] + 1 : 0;
        } else {
            s = s < 0 ? 0 : s > dim - 1 ? dim - 1 : s;
            e = e < -1 ? -1 : e > dim - 1 ? dim - 1 : e;
            len = s > e ? (s - e - 1) / -steps[i] + 1 : 0;
        }
        start[d] = len ? s : 0;
        step[d] = steps[i];
        shape[d] = len;
    }

    slice_params *sp = calloc(1, sizeof *sp);
    if (!sp)
        return hs__fail(p, HS_ERR_NOMEM, "out of memory");
    int64_t in_stride = 1;
    for (int d = rank - 1; d >= 0; d--) {
        sp->base += start[d] * in_stride;
        sp->stride[d] = step[d] * in_stride;
        in_stride *= x->shape[d];
    }
    p->node->params = sp;
    hs__set_out(p, 0, x->dtype, rank, shape);
    return HS_OK;
}

static void slice_run(const hs__node *node, const hs_tensor *in, hs_tensor *out, void *ws)
{
    const slice_params *sp = node->params;
    if (hs_tensor_numel(out) == 0)
        return;
    size_t es = hs_dtype_size(out->dtype);
    hs__gather_strided(out->data, (const char *)in[0].data + (size_t)sp->base * es, es,
                       out->ndim, out->shape, sp->stride);
}

const hs__op hs__op_slice = {.name = "Slice", .prepare = slice_prepare, .run = slice_run};
