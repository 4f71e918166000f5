/*
 * The ops of exported shape arithmetic (PyTorch's Shape -> Gather -> Unsqueeze -> Concat ->
 * Reshape chains): Shape, Gather and Cast. With static shapes such chains fold at load time,
 * so these kernels mostly run inside the loader; Gather and Cast also work at run time.
 *
 * Shape reads only its input's description: the loader folds it even when the input is not a
 * constant, calling run() with data == NULL. All three are data movement or conversion:
 * 0 FLOPs.
 */
#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "graph_impl.h"

/* ---- Shape ------------------------------------------------------------------------------ */

typedef struct shape_params {
    int start;
} shape_params;

/* The input's dimensions [start, end) as int64; start/end (opset 15) may be negative and are
 * clamped to [0, rank]. */
static hs_status shape_prepare(hs__prep *p)
{
    hs_status st = hs__check_arity(p, 1, 1, 1);
    if (st != HS_OK)
        return st;
    const hs_tensor *x = hs__in(p, 0);
    int64_t rank = x->ndim, start = 0, end = rank;
    if (p->g->opset >= 15) {
        start = hs__attr_int(p, "start", 0, &st);
        end = hs__attr_int(p, "end", rank, &st);
        if (st != HS_OK)
            return st;
    }
    start = start < 0 ? start + rank : start;
    end = end < 0 ? end + rank : end;
    start = start < 0 ? 0 : start > rank ? rank : start;
    end = end < start ? start : end > rank ? rank : end;

    shape_params *sp = calloc(1, sizeof *sp);
    if (!sp)
        return hs__fail(p, HS_ERR_NOMEM, "out of memory");
    sp->start = (int)start;
    p->node->params = sp;
    int64_t len = end - start;
    hs__set_out(p, 0, HS_I64, 1, &len);
    return HS_OK;
}

static void shape_run(const hs__node *node, const hs_tensor *in, hs_tensor *out, void *ws)
{
    const shape_params *sp = node->params;
    memcpy(out->data, in[0].shape + sp->start, (size_t)out->shape[0] * sizeof(int64_t));
}

/* ---- Gather ----------------------------------------------------------------------------- */

typedef struct gather_params {
    int axis;
} gather_params;

/* data[..., indices[...], ...] along axis: the output's shape is data's with the axis
 * replaced by the indices' shape. Negative indices count from the end. Constant indices are
 * range-checked here; an out-of-range index met at run time yields zeros. */
static hs_status gather_prepare(hs__prep *p)
{
    hs_status st = hs__check_arity(p, 2, 2, 1);
    if (st == HS_OK)
        st = hs__need_input(p, 1, HS_I64, "indices");
    if (st != HS_OK)
        return st;
    const hs_tensor *data = hs__in(p, 0), *ind = hs__in(p, 1);
    int64_t attr = hs__attr_int(p, "axis", 0, &st);
    if (st != HS_OK)
        return st;
    int axis = hs__axis(attr, data->ndim);
    if (axis < 0)
        return hs__fail(p, HS_ERR_INVALID, "axis %lld is out of range for rank %d",
                        (long long)attr, data->ndim);
    int rank = data->ndim - 1 + ind->ndim;
    if (rank > HS_MAX_DIMS)
        return hs__fail(p, HS_ERR_UNSUPPORTED, "output rank %d exceeds %d", rank,
                        HS_MAX_DIMS);
    int64_t dim = data->shape[axis];
    if (ind->data) {
        const int64_t *v = ind->data;
        for (int64_t i = 0; i < hs_tensor_numel(ind); i++)
            if (v[i] < -dim || v[i] >= dim)
                return hs__fail(p, HS_ERR_INVALID, "index %lld is out of range for axis %d "
                                "of size %lld", (long long)v[i], axis, (long long)dim);
    }

    gather_params *gp = calloc(1, sizeof *gp);
    if (!gp)
        return hs__fail(p, HS_ERR_NOMEM, "out of memory");
    gp->axis = axis;
    p->node->params = gp;
    int64_t shape[HS_MAX_DIMS];
    int k = 0;
    for (int d = 0; d < axis; d++)
        shape[k++] = data->shape[d];
    for (int d = 0; d < ind->ndim; d++)
        shape[k++] = ind->shape[d];
    for (int d = axis + 1; d < data->ndim; d++)
        shape[k++] = data->shape[d];
    hs__set_out(p, 0, data->dtype, rank, shape);
    /* A constant float table looked up by runtime indices is an embedding: its weights. */
    if (data->data && !ind->data && data->dtype == HS_F32)
        p->node->n_params = hs_tensor_numel(data);
    return HS_OK;
}

static void gather_run(const hs__node *node, const hs_tensor *in, hs_tensor *out, void *ws)
{
    const gather_params *gp = node->params;
    const hs_tensor *data = &in[0];
    int64_t dim = data->shape[gp->axis];
    int64_t outer = hs__prod(data->shape, 0, gp->axis);
    size_t block = (size_t)hs__prod(data->shape, gp->axis + 1, data->ndim) *
                   hs_dtype_size(data->dtype);
    int64_t n_ind = hs_tensor_numel(&in[1]);
    const int64_t *ind = in[1].data;
    const char *x = data->data;
    char *y = out->data;
    for (int64_t o = 0; o < outer; o++) {
        for (int64_t k = 0; k < n_ind; k++, y += block) {
            int64_t i = ind[k] < 0 ? ind[k] + dim : ind[k];
            if (i >= 0 && i < dim)
                memcpy(y, x + (size_t)(o * dim + i) * block, block);
            else
                memset(y, 0, block);
        }
    }
}

/* ---- Cast ------------------------------------------------------------------------------- */

/* float32 <-> int64 (and either to itself). Float to int truncates toward zero as C does,
 * with NaN giving 0 and out-of-range values saturating instead of being undefined. */
static hs_status cast_prepare(hs__prep *p)
{
    hs_status st = hs__check_arity(p, 1, 1, 1);
    if (st != HS_OK)
        return st;
    if (!hs__attr_has(p, "to"))
        return hs__fail(p, HS_ERR_INVALID, "attribute 'to' is required");
    int64_t to = hs__attr_int(p, "to", 0, &st);
    if (st != HS_OK)
        return st;
    hs_dtype dtype;
    if (to == ONNX__TENSOR_PROTO__DATA_TYPE__FLOAT)
        dtype = HS_F32;
    else if (to == ONNX__TENSOR_PROTO__DATA_TYPE__INT64)
        dtype = HS_I64;
    else
        return hs__fail(p, HS_ERR_UNSUPPORTED, "cast to ONNX element type %lld is not "
                        "supported (only FLOAT and INT64)", (long long)to);
    const hs_tensor *x = hs__in(p, 0);
    hs__set_out(p, 0, dtype, x->ndim, x->shape);
    return HS_OK;
}

static int64_t f32_to_i64(float v)
{
    if (isnan(v))
        return 0;
    if (v >= 0x1p63f)
        return INT64_MAX;
    if (v < -0x1p63f)
        return INT64_MIN;
    return (int64_t)v;
}

static void cast_run(const hs__node *node, const hs_tensor *in, hs_tensor *out, void *ws)
{
    int64_t n = hs_tensor_numel(out);
    if (in[0].dtype == out->dtype) {
        if (out->data != in[0].data)
            memcpy(out->data, in[0].data, hs_tensor_nbytes(out));
    } else if (out->dtype == HS_F32) {
        const int64_t *x = in[0].data;
        float *y = out->data;
        for (int64_t i = 0; i < n; i++)
            y[i] = (float)x[i];
    } else {
        const float *x = in[0].data;
        int64_t *y = out->data;
        for (int64_t i = 0; i < n; i++)
            y[i] = f32_to_i64(x[i]);
    }
}

const hs__op hs__op_shape = {.name = "Shape", .prepare = shape_prepare, .run = shape_run};
const hs__op hs__op_gather = {.name = "Gather", .prepare = gather_prepare, .run = gather_run};
const hs__op hs__op_cast = {.name = "Cast", .prepare = cast_prepare, .run = cast_run};
