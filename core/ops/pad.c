/*
 * Pad in 'constant', 'reflect' and 'edge' modes, with negative pads (cropping) allowed. From
 * opset 11 the pads and the constant value are (constant) inputs; before, attributes.
 *
 * prepare() resolves the mode once into an index map per dimension: for output index o, the
 * input index it reads, or -1 for the constant. run() walks the output rows; a row whose
 * outer indices fall in the padding is filled with the constant, and otherwise the last
 * dimension's map is applied: in constant mode it is a contiguous run, copied with memcpy
 * between two fills; in reflect/edge mode a gather. Reflection follows numpy.pad, which the
 * ONNX reference uses (it repeats for pads longer than the dimension). Pure data movement:
 * 0 FLOPs.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "graph_impl.h"

typedef enum pad_mode { PAD_CONSTANT, PAD_REFLECT, PAD_EDGE } pad_mode;

typedef struct pad_params {
    pad_mode mode;
    uint64_t value;               /* the constant's bits, in the data's element type */
    int64_t in_stride[HS_MAX_DIMS];
    int64_t map_at[HS_MAX_DIMS];  /* where each dimension's map starts in map[] */
    int64_t lo, hi;               /* constant mode: last-dimension outputs [lo, hi) are read */
    int64_t map[];                /* per dimension and output index: input index or -1 */
} pad_params;

/* Input index that output index o of a dimension of n reads (o - begin for the interior). */
static int64_t map_index(pad_mode mode, int64_t i, int64_t n)
{
    if (i >= 0 && i < n)
        return i;
    if (mode == PAD_CONSTANT)
        return -1;
    if (mode == PAD_EDGE || n == 1)
        return i < 0 ? 0 : n - 1;
    int64_t period = 2 * (n - 1);
    i %= period;
    if (i < 0)
        i += period;
    return i < n ? i : period - i;
}

/* Reads pads, mode and the constant, from inputs (opset >= 11) or attributes. */
static hs_status pad_args(hs__prep *p, int64_t *pads, int *n_pads, pad_mode *mode,
                          uint64_t *value)
{
    const hs_tensor *x = hs__in(p, 0);
    char name[16];
    hs_status st;
    if (p->g->opset >= 11) {
        if ((st = hs__check_arity(p, 2, 3, 1)) != HS_OK ||
            (st = hs__const_ints(p, 1, pads, 2 * HS_MAX_DIMS, n_pads, "pads")) != HS_OK)
            return st;
        const hs_tensor *v = hs__in(p, 2);
        if (v) {
            if ((st = hs__need_input(p, 2, x->dtype, "constant_value")) != HS_OK ||
                (st = hs__need_const(p, 2, "constant_value")) != HS_OK)
                return st;
            if (hs_tensor_numel(v) != 1)
                return hs__fail(p, HS_ERR_INVALID, "input 2 (constant_value) must be a "
                                "scalar");
            memcpy(value, v->data, hs_dtype_size(v->dtype));
        }
    } else {
        if ((st = hs__check_arity(p, 1, 1, 1)) != HS_OK ||
            (st = hs__attr_ints(p, "pads", pads, 2 * HS_MAX_DIMS, n_pads)) != HS_OK)
            return st;
        if (!hs__attr_has(p, "pads"))
            return hs__fail(p, HS_ERR_INVALID, "attribute 'pads' is required");
        float f = hs__attr_float(p, "value", 0.0f, &st);
        if (st != HS_OK)
            return st;
        if (x->dtype == HS_F32) {
            memcpy(value, &f, sizeof f);
        } else {
            int64_t i = (int64_t)f;
            memcpy(value, &i, sizeof i);
        }
    }
    if ((st = hs__attr_string(p, "mode", "constant", name, sizeof name)) != HS_OK)
        return st;
    if (strcmp(name, "constant") == 0)
        *mode = PAD_CONSTANT;
    else if (strcmp(name, "reflect") == 0)
        *mode = PAD_REFLECT;
    else if (strcmp(name, "edge") == 0)
        *mode = PAD_EDGE;
    else
        return hs__fail(p, HS_ERR_UNSUPPORTED, "mode '%s' is not supported", name);
    return HS_OK;
}

static hs_status pad_prepare(hs__prep *p)
{
    int64_t pads[2 * HS_MAX_DIMS];
    int n_pads;
    pad_mode mode = PAD_CONSTANT;
    uint64_t value = 0;
    hs_status st = pad_args(p, pads, &n_pads, &mode, &value);
    if (st != HS_OK)
        return st;
    const hs_tensor *x = hs__in(p, 0);
    int rank = x->ndim;
    if (rank == 0)
        return hs__fail(p, HS_ERR_INVALID, "cannot pad a scalar");
    if (n_pads != 2 * rank)
        return hs__fail(p, HS_ERR_INVALID, "pads has %d values, rank %d needs %d", n_pads,
                        rank, 2 * rank);

    int64_t shape[HS_MAX_DIMS], total = 0;
    for (int d = 0; d < rank; d++) {
        shape[d] = x->shape[d] + pads[d] + pads[rank + d];
        if (shape[d] < 0)
            return hs__fail(p, HS_ERR_SHAPE, "pads %lld, %lld leave axis %d of size %lld "
                            "with a negative size", (long long)pads[d],
                            (long long)pads[rank + d], d, (long long)x->shape[d]);
        if (mode != PAD_CONSTANT && x->shape[d] == 0 && shape[d] > 0)
            return hs__fail(p, HS_ERR_INVALID, "cannot pad empty axis %d in mode %s", d,
                            mode == PAD_EDGE ? "edge" : "reflect");
        total += shape[d];
    }

    pad_params *pp = calloc(1, sizeof *pp + (size_t)total * sizeof pp->map[0]);
    if (!pp)
        return hs__fail(p, HS_ERR_NOMEM, "out of memory");
    pp->mode = mode;
    pp->value = value;
    int64_t at = 0, stride = 1;
    for (int d = rank - 1; d >= 0; d--) {
        pp->in_stride[d] = stride;
        stride *= x->shape[d];
    }
    for (int d = 0; d < rank; d++) {
        pp->map_at[d] = at;
        for (int64_t o = 0; o < shape[d]; o++)
            pp->map[at + o] = map_index(mode, o - pads[d], x->shape[d]);
        at += shape[d];
    }
    const int64_t *last = pp->map + pp->map_at[rank - 1];
    int64_t n = shape[rank - 1];
    while (pp->lo < n && last[pp->lo] < 0)
        pp->lo++;
    for (pp->hi = pp->lo; pp->hi < n && last[pp->hi] >= 0;)
        pp->hi++;
    p->node->params = pp;
    hs__set_out(p, 0, x->dtype, rank, shape);
    return HS_OK;
}

static void fill(char *y, int64_t n, size_t es, uint64_t value)
{
    if (es == sizeof(uint32_t)) {
        uint32_t v;
        memcpy(&v, &value, sizeof v);
        for (int64_t i = 0; i < n; i++)
            ((uint32_t *)y)[i] = v;
    } else {
        for (int64_t i = 0; i < n; i++)
            ((uint64_t *)y)[i] = value;
    }
}

static void pad_run(const hs__node *node, const hs_tensor *in, hs_tensor *out, void *ws)
{
    const pad_params *pp = node->params;
    if (hs_tensor_numel(out) == 0)
        return;
    size_t es = hs_dtype_size(out->dtype);
    int last = out->ndim - 1;
    int64_t n = out->shape[last], outer = hs__prod(out->shape, 0, last);
    const int64_t *lmap = pp->map + pp->map_at[last];
    const char *x = in[0].data;
    char *y = out->data;
    int64_t idx[HS_MAX_DIMS] = {0};
    for (int64_t o = 0; o < outer; o++, y += (size_t)n * es) {
        int64_t off = 0;
        bool padding = false;
        for (int d = 0; d < last; d++) {
            int64_t m = pp->map[pp->map_at[d] + idx[d]];
            padding |= m < 0;
            off += m * pp->in_stride[d];
        }
        if (padding) {
            fill(y, n, es, pp->value);
        } else if (pp->mode == PAD_CONSTANT) {
            fill(y, pp->lo, es, pp->value);
            if (pp->hi > pp->lo)
                memcpy(y + (size_t)pp->lo * es, x + (size_t)(off + lmap[pp->lo]) * es,
                       (size_t)(pp->hi - pp->lo) * es);
            fill(y + (size_t)pp->hi * es, n - pp->hi, es, pp->value);
        } else if (es == sizeof(uint32_t)) {
            for (int64_t i = 0; i < n; i++)
                ((uint32_t *)y)[i] = ((const uint32_t *)x)[off + lmap[i]];
        } else {
            for (int64_t i = 0; i < n; i++)
                ((uint64_t *)y)[i] = ((const uint64_t *)x)[off + lmap[i]];
        }
        for (int d = last - 1; d >= 0 && ++idx[d] == out->shape[d]; d--)
            idx[d] = 0;
    }
}

const hs__op hs__op_pad = {.name = "Pad", .prepare = pad_prepare, .run = pad_run};
