/*
 * Reshape, Flatten, Squeeze and Unsqueeze: four ways to name a new shape for the same
 * row-major data. Each prepare() works out and validates the output shape; they share one
 * kernel, a memcpy (skipped if the executor hands the same buffer in and out). Pure data
 * movement: 0 FLOPs.
 */
#include <stdlib.h>
#include <string.h>

#include "graph_impl.h"

static void copy_run(const hs__node *node, const hs_tensor *in, hs_tensor *out, void *ws)
{
    if (out->data != in[0].data)
        memcpy(out->data, in[0].data, hs_tensor_nbytes(out));
}

/* ---- Reshape ---------------------------------------------------------------------------- */

/* The shape input is a constant; 0 copies the input's dimension at the same index (unless
 * allowzero = 1, opset >= 14, where it means a dimension of size 0), and one -1 takes what
 * is left of the element count. */
static hs_status reshape_prepare(hs__prep *p)
{
    int64_t shape[HS_MAX_DIMS];
    int n;
    hs_status st = hs__check_arity(p, 2, 2, 1);
    if (st == HS_OK)
        st = hs__const_ints(p, 1, shape, HS_MAX_DIMS, &n, "shape");
    if (st != HS_OK)
        return st;
    bool allowzero = p->g->opset >= 14 && hs__attr_int(p, "allowzero", 0, &st) != 0;
    if (st != HS_OK)
        return st;
    const hs_tensor *x = hs__in(p, 0);

    int infer = -1;
    int64_t known = 1;
    for (int i = 0; i < n; i++) {
        if (shape[i] == 0 && !allowzero) {
            if (i >= x->ndim)
                return hs__fail(p, HS_ERR_INVALID, "shape[%d] = 0 copies a dimension the "
                                "rank-%d input does not have", i, x->ndim);
            shape[i] = x->shape[i];
        }
        if (shape[i] == -1) {
            if (infer >= 0)
                return hs__fail(p, HS_ERR_INVALID, "shape has more than one -1");
            infer = i;
        } else if (shape[i] < 0) {
            return hs__fail(p, HS_ERR_INVALID, "shape[%d] = %lld is negative", i,
                            (long long)shape[i]);
        } else {
            known *= shape[i];
        }
    }
    int64_t numel = hs_tensor_numel(x);
    if (infer >= 0) {
        if (known == 0 || numel % known != 0) {
            char s[64];
            return hs__fail(p, HS_ERR_SHAPE, "cannot infer the -1 in shape: %s (%lld "
                            "elements) is not a multiple of %lld",
                            hs_shape_str(x, s, sizeof s), (long long)numel, (long long)known);
        }
        shape[infer] = numel / known;
    } else if (known != numel) {
        char s[64], t[64];
        hs_tensor target = {.ndim = n};
        memcpy(target.shape, shape, sizeof shape);
        return hs__fail(p, HS_ERR_SHAPE, "cannot reshape %s (%lld elements) to %s (%lld "
                        "elements)", hs_shape_str(x, s, sizeof s), (long long)numel,
                        hs_shape_str(&target, t, sizeof t), (long long)known);
    }
    hs__set_out(p, 0, x->dtype, n, shape);
    return HS_OK;
}

/* ---- Flatten ---------------------------------------------------------------------------- */

/* To 2-D: [product of dims before axis, product of the rest]. axis in [0, rank], and from
 * opset 11 in [-rank, rank]. */
static hs_status flatten_prepare(hs__prep *p)
{
    hs_status st = hs__check_arity(p, 1, 1, 1);
    if (st != HS_OK)
        return st;
    const hs_tensor *x = hs__in(p, 0);
    int64_t attr = hs__attr_int(p, "axis", 1, &st);
    if (st != HS_OK)
        return st;
    int64_t axis = attr < 0 && p->g->opset >= 11 ? attr + x->ndim : attr;
    if (axis < 0 || axis > x->ndim)
        return hs__fail(p, HS_ERR_INVALID, "axis %lld is out of range for rank %d",
                        (long long)attr, x->ndim);
    int64_t shape[2] = {hs__prod(x->shape, 0, (int)axis),
                        hs__prod(x->shape, (int)axis, x->ndim)};
    hs__set_out(p, 0, x->dtype, 2, shape);
    return HS_OK;
}

/* ---- Squeeze and Unsqueeze -------------------------------------------------------------- */

/* The axes list: the 'axes' attribute before opset 13, input 1 from 13 on. *present says
 * whether the model gave one at all. */
static hs_status read_axes(hs__prep *p, int64_t *axes, int *n, bool *present)
{
    *n = 0;
    if (p->g->opset < 13) {
        *present = hs__attr_has(p, "axes");
        return hs__attr_ints(p, "axes", axes, HS_MAX_DIMS, n);
    }
    *present = hs__in(p, 1) != NULL;
    return *present ? hs__const_ints(p, 1, axes, HS_MAX_DIMS, n, "axes") : HS_OK;
}

/* Normalises axes against rank into a mask, failing on out-of-range or repeated ones. */
static hs_status axes_mask(hs__prep *p, const int64_t *axes, int n, int rank, bool *mask)
{
    for (int d = 0; d < rank; d++)
        mask[d] = false;
    for (int i = 0; i < n; i++) {
        int d = hs__axis(axes[i], rank);
        if (d < 0 || mask[d])
            return hs__fail(p, HS_ERR_INVALID, "axis %lld is out of range for rank %d or "
                            "repeated", (long long)axes[i], rank);
        mask[d] = true;
    }
    return HS_OK;
}

/* Removes the listed dimensions, which must be 1; without axes (or with an empty list, as
 * onnxruntime reads it), every dimension of 1. */
static hs_status squeeze_prepare(hs__prep *p)
{
    int64_t axes[HS_MAX_DIMS];
    int n;
    bool present, mask[HS_MAX_DIMS];
    hs_status st = hs__check_arity(p, 1, p->g->opset < 13 ? 1 : 2, 1);
    if (st == HS_OK)
        st = read_axes(p, axes, &n, &present);
    if (st != HS_OK)
        return st;
    const hs_tensor *x = hs__in(p, 0);
    if ((st = axes_mask(p, axes, n, x->ndim, mask)) != HS_OK)
        return st;

    int64_t shape[HS_MAX_DIMS];
    int rank = 0;
    for (int d = 0; d < x->ndim; d++) {
        bool squeeze = present && n > 0 ? mask[d] : x->shape[d] == 1;
        if (squeeze && x->shape[d] != 1)
            return hs__fail(p, HS_ERR_SHAPE, "cannot squeeze axis %d of size %lld", d,
                            (long long)x->shape[d]);
        if (!squeeze)
            shape[rank++] = x->shape[d];
    }
    hs__set_out(p, 0, x->dtype, rank, shape);
    return HS_OK;
}

/* Inserts dimensions of 1 at the listed positions of the output. */
static hs_status unsqueeze_prepare(hs__prep *p)
{
    int64_t axes[HS_MAX_DIMS];
    int n;
    bool present, mask[HS_MAX_DIMS];
    hs_status st = hs__check_arity(p, p->g->opset < 13 ? 1 : 2, p->g->opset < 13 ? 1 : 2, 1);
    if (st == HS_OK)
        st = read_axes(p, axes, &n, &present);
    if (st != HS_OK)
        return st;
    if (!present)
        return hs__fail(p, HS_ERR_INVALID, "'axes' is required");
    const hs_tensor *x = hs__in(p, 0);
    int rank = x->ndim + n;
    if (rank > HS_MAX_DIMS)
        return hs__fail(p, HS_ERR_UNSUPPORTED, "output rank %d exceeds %d", rank,
                        HS_MAX_DIMS);
    if ((st = axes_mask(p, axes, n, rank, mask)) != HS_OK)
        return st;

    int64_t shape[HS_MAX_DIMS];
    for (int d = 0, k = 0; d < rank; d++)
        shape[d] = mask[d] ? 1 : x->shape[k++];
    hs__set_out(p, 0, x->dtype, rank, shape);
    return HS_OK;
}

const hs__op hs__op_reshape = {.name = "Reshape", .prepare = reshape_prepare, .run = copy_run};
const hs__op hs__op_flatten = {.name = "Flatten", .prepare = flatten_prepare, .run = copy_run};
const hs__op hs__op_squeeze = {.name = "Squeeze", .prepare = squeeze_prepare, .run = copy_run};
const hs__op hs__op_unsqueeze = {
    .name = "Unsqueeze", .prepare = unsqueeze_prepare, .run = copy_run};
