/*
 * Add, Sub, Mul, Div with numpy multidirectional broadcasting, on float32 or int64.
 *
 * prepare() reduces any broadcast to a few "collapsed" dimensions: dimensions of size 1 are
 * dropped and neighbours that both inputs walk contiguously (or both hold still on) are merged.
 * Same-shape operands become one long row, a scalar or per-channel operand ([C,1,1] against
 * [N,C,H,W], as in every SiLU and squeeze-excitation block) becomes rows whose other operand is
 * a single value. run() then walks the outer dimensions with an odometer and hands each
 * innermost row to a kernel specialised for those three row shapes, so the common cases run
 * as plain contiguous loops and the generic N-d case shares the same code.
 *
 * Cost: one FLOP per output element on float32, none on int64 (shape arithmetic); a constant
 * float operand of more than one element counts as that many parameters.
 */
#include <stdint.h>
#include <stdlib.h>

#include "graph_impl.h"

typedef struct binary_params {
    int ndim;                     /* collapsed dimensions, >= 1 */
    int64_t shape[HS_MAX_DIMS];   /* collapsed output shape */
    int64_t sa[HS_MAX_DIMS];      /* element strides of input A per dimension, 0 if broadcast */
    int64_t sb[HS_MAX_DIMS];      /* same for input B */
} binary_params;

/* Computes the output of the innermost row: n elements, each operand either walking (stride
 * 1) or repeating its first element (stride 0). */
typedef void (*binary_row)(void *y, const void *a, const void *b, int64_t n, int64_t sa,
                           int64_t sb);

#define BINARY_ROW(NAME, T, EXPR)                                                             \
    static void NAME(void *vy, const void *va, const void *vb, int64_t n, int64_t sa,         \
                     int64_t sb)                                                              \
    {                                                                                         \
        T *y = vy;                                                                            \
        const T *a = va, *b = vb;                                                             \
        if (sa && sb) {                                                                       \
            for (int64_t i = 0; i < n; i++) {                                                 \
                T x0 = a[i], x1 = b[i];                                                       \
                y[i] = (EXPR);                                                                \
            }                                                                                 \
        } else if (sa) {                                                                      \
            const T x1 = b[0];                                                                \
            for (int64_t i = 0; i < n; i++) {                                                 \
                T x0 = a[i];                                                                  \
                y[i] = (EXPR);                                                                \
            }                                                                                 \
        } else if (sb) {                                                                      \
            const T x0 = a[0];                                                                \
            for (int64_t i = 0; i < n; i++) {                                                 \
                T x1 = b[i];                                                                  \
                y[i] = (EXPR);                                                                \
            }                                                                                 \
        } else {                                                                              \
            const T x0 = a[0], x1 = b[0];                                                     \
            const T v = (EXPR);                                                               \
            for (int64_t i = 0; i < n; i++)                                                   \
                y[i] = v;                                                                     \
        }                                                                                     \
    }

/* C truncating division, made total: x / 0 gives 0 (ONNX leaves it undefined) and
 * INT64_MIN / -1 wraps instead of trapping. */
static inline int64_t trunc_div(int64_t x, int64_t d)
{
    if (d == 0)
        return 0;
    if (d == -1)
        return (int64_t)(0 - (uint64_t)x);
    return x / d;
}

/* int64 add/sub/mul wrap around like the unsigned arithmetic they are done in. */
BINARY_ROW(add_f32, float, x0 + x1)
BINARY_ROW(sub_f32, float, x0 - x1)
BINARY_ROW(mul_f32, float, x0 * x1)
BINARY_ROW(div_f32, float, x0 / x1)
BINARY_ROW(add_i64, int64_t, (int64_t)((uint64_t)x0 + (uint64_t)x1))
BINARY_ROW(sub_i64, int64_t, (int64_t)((uint64_t)x0 - (uint64_t)x1))
BINARY_ROW(mul_i64, int64_t, (int64_t)((uint64_t)x0 * (uint64_t)x1))
BINARY_ROW(div_i64, int64_t, trunc_div(x0, x1))

static hs_status binary_prepare(hs__prep *p)
{
    hs_status st = hs__check_arity(p, 2, 2, 1);
    if (st != HS_OK)
        return st;
    const hs_tensor *a = hs__in(p, 0), *b = hs__in(p, 1);
    if (a->dtype != b->dtype)
        return hs__fail(p, HS_ERR_INVALID, "inputs have different element types");

    /* Align ranks on the right; a missing leading dimension is a 1. */
    int rank = a->ndim > b->ndim ? a->ndim : b->ndim;
    int64_t shape[HS_MAX_DIMS], sa[HS_MAX_DIMS], sb[HS_MAX_DIMS];
    int64_t stride_a = 1, stride_b = 1;
    for (int d = rank - 1; d >= 0; d--) {
        int da = d - (rank - a->ndim), db = d - (rank - b->ndim);
        int64_t na = da >= 0 ? a->shape[da] : 1, nb = db >= 0 ? b->shape[db] : 1;
        if (na != nb && na != 1 && nb != 1) {
            char sha[64], shb[64];
            return hs__fail(p, HS_ERR_SHAPE, "cannot broadcast %s with %s",
                            hs_shape_str(a, sha, sizeof sha), hs_shape_str(b, shb, sizeof shb));
        }
        shape[d] = na == 1 ? nb : na;
        sa[d] = na == 1 ? 0 : stride_a;
        sb[d] = nb == 1 ? 0 : stride_b;
        stride_a *= na;
        stride_b *= nb;
    }
    hs__set_out(p, 0, a->dtype, rank, shape);

    binary_params *bp = calloc(1, sizeof *bp);
    if (!bp)
        return hs__fail(p, HS_ERR_NOMEM, "out of memory");
    for (int d = 0; d < rank; d++) {
        if (shape[d] == 1)
            continue;
        int k = bp->ndim - 1;
        if (k >= 0 && bp->sa[k] == sa[d] * shape[d] && bp->sb[k] == sb[d] * shape[d]) {
            bp->shape[k] *= shape[d];
            bp->sa[k] = sa[d];
            bp->sb[k] = sb[d];
        } else {
            bp->shape[bp->ndim] = shape[d];
            bp->sa[bp->ndim] = sa[d];
            bp->sb[bp->ndim] = sb[d];
            bp->ndim++;
        }
    }
    if (bp->ndim == 0)
        bp->shape[bp->ndim++] = 1; /* a single element: strides stay 0 */
    p->node->params = bp;

    int64_t numel = hs__prod(shape, 0, rank);
    p->node->flops = a->dtype == HS_F32 ? (double)numel : 0.0;
    for (int i = 0; i < 2; i++) {
        const hs_tensor *w = hs__in(p, i), *x = hs__in(p, 1 - i);
        if (w->data && !x->data && w->dtype == HS_F32 && hs_tensor_numel(w) > 1)
            p->node->n_params = hs_tensor_numel(w);
    }
    return HS_OK;
}

static void binary_run(const hs__node *node, const hs_tensor *in, hs_tensor *out,
                       binary_row row)
{
    const binary_params *bp = node->params;
    size_t es = hs_dtype_size(out->dtype);
    int last = bp->ndim - 1;
    int64_t n = bp->shape[last];
    int64_t outer = hs__prod(bp->shape, 0, last);
    const char *a = in[0].data, *b = in[1].data;
    char *y = out->data;
    int64_t idx[HS_MAX_DIMS] = {0}, oa = 0, ob = 0;
    for (int64_t o = 0; o < outer; o++) {
        row(y + (size_t)(o * n) * es, a + (size_t)oa * es, b + (size_t)ob * es, n,
            bp->sa[last], bp->sb[last]);
        for (int d = last - 1; d >= 0; d--) {
            oa += bp->sa[d];
            ob += bp->sb[d];
            if (++idx[d] < bp->shape[d])
                break;
            oa -= bp->sa[d] * bp->shape[d];
            ob -= bp->sb[d] * bp->shape[d];
            idx[d] = 0;
        }
    }
    if (out->dtype == HS_F32)
        hs__act_apply(&node->act, out->data, outer * n);
}

#define BINARY_OP(ID, NAME)                                                                   \
    static void ID##_run(const hs__node *node, const hs_tensor *in, hs_tensor *out, void *ws) \
    {                                                                                         \
        binary_run(node, in, out, out->dtype == HS_F32 ? ID##_f32 : ID##_i64);                \
    }                                                                                         \
    const hs__op hs__op_##ID = {                                                              \
        .name = NAME, .prepare = binary_prepare, .run = ID##_run, .fuses_act = true};

BINARY_OP(add, "Add")
BINARY_OP(sub, "Sub")
BINARY_OP(mul, "Mul")
BINARY_OP(div, "Div")
