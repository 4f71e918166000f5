/*
 * Gemm and MatMul: both are cblas_sgemm calls around a little shape logic. Gemm writes
 * beta*C (broadcast to [M, N]) into the output and lets SGEMM accumulate alpha*A*B onto it.
 * MatMul follows numpy: 1-D operands gain a unit dim that is dropped again, and the leading
 * (batch) dims broadcast; each batch is one SGEMM, or a single one when B has no batch dims
 * and A's batches stack into one tall matrix.
 */
#include <cblas.h>
#include <stdlib.h>
#include <string.h>

#include "graph_impl.h"

/* Trainable parameters of a linear layer: the elements of its constant inputs. */
static int64_t const_elements(const hs__prep *p)
{
    int64_t count = 0;
    for (int i = 0; i < hs__in_count(p); i++) {
        const hs_tensor *t = hs__in(p, i);
        if (t && t->data)
            count += hs_tensor_numel(t);
    }
    return count;
}

/* ---- Gemm --------------------------------------------------------------------------------- */

typedef struct gemm_params {
    int64_t m, n, k;
    bool trans_a, trans_b;
    float alpha, beta;
    bool use_c;                 /* C present and beta != 0 */
    int64_t c_row_step, c_col_step; /* element (i, j) of broadcast C is C[i*row + j*col] */
} gemm_params;

static hs_status gemm_prepare(hs__prep *p)
{
    hs_status st;
    if ((st = hs__check_arity(p, 2, 3, 1)) != HS_OK ||
        (st = hs__need_input(p, 0, HS_F32, "A")) != HS_OK ||
        (st = hs__need_input(p, 1, HS_F32, "B")) != HS_OK)
        return st;
    const hs_tensor *a = hs__in(p, 0), *b = hs__in(p, 1), *c = hs__in(p, 2);
    if (c && (st = hs__need_input(p, 2, HS_F32, "C")) != HS_OK)
        return st;
    if (a->ndim != 2 || b->ndim != 2)
        return hs__fail(p, HS_ERR_SHAPE, "A and B must be 2-D, have rank %d and %d", a->ndim,
                        b->ndim);
    bool trans_a = hs__attr_int(p, "transA", 0, &st) != 0;
    bool trans_b = hs__attr_int(p, "transB", 0, &st) != 0;
    float alpha = hs__attr_float(p, "alpha", 1.0f, &st);
    float beta = hs__attr_float(p, "beta", 1.0f, &st);
    if (st != HS_OK)
        return st;
    int64_t m = a->shape[trans_a], k = a->shape[!trans_a];
    int64_t kb = b->shape[trans_b], n = b->shape[!trans_b];
    if (k != kb)
        return hs__fail(p, HS_ERR_SHAPE, "inner dims differ: A gives %lld, B gives %lld",
                        (long long)k, (long long)kb);

    int64_t c_rows = 1, c_cols = 1;
    if (c) {
        if (c->ndim > 2)
            return hs__fail(p, HS_ERR_SHAPE, "C has rank %d, at most 2", c->ndim);
        c_rows = c->ndim == 2 ? c->shape[0] : 1;
        c_cols = c->ndim >= 1 ? c->shape[c->ndim - 1] : 1;
        if ((c_rows != 1 && c_rows != m) || (c_cols != 1 && c_cols != n))
            return hs__fail(p, HS_ERR_SHAPE, "C does not broadcast to [%lld, %lld]",
                            (long long)m, (long long)n);
    }

    gemm_params *gp = calloc(1, sizeof *gp);
    if (!gp)
        return hs__fail(p, HS_ERR_NOMEM, "out of memory");
    *gp = (gemm_params){.m = m, .n = n, .k = k, .trans_a = trans_a, .trans_b = trans_b,
                        .alpha = alpha, .beta = beta, .use_c = c && beta != 0.0f,
                        .c_row_step = c_rows == 1 ? 0 : c_cols, .c_col_step = c_cols == 1 ? 0 : 1};
    int64_t shape[2] = {m, n};
    hs__set_out(p, 0, HS_F32, 2, shape);
    p->node->params = gp;
    p->node->flops = 2.0 * (double)m * (double)n * (double)k + (gp->use_c ? (double)(m * n) : 0);
    p->node->n_params = const_elements(p);
    return HS_OK;
}

static void gemm_run(const hs__node *node, const hs_tensor *in, hs_tensor *out, void *workspace)
{
    const gemm_params *gp = node->params;
    float *y = out[0].data;
    if (gp->use_c) {
        const float *c = in[2].data;
        for (int64_t i = 0; i < gp->m; i++)
            for (int64_t j = 0; j < gp->n; j++)
                y[i * gp->n + j] = gp->beta * c[i * gp->c_row_step + j * gp->c_col_step];
    }
    if (gp->m == 1) {
        /* A single row (a classifier at batch 1) is a matrix-vector product: SGEMV streams B
         * once at memory speed, where SGEMM would pack all of it first (~3.5x slower). A's
         * one row (or column, transposed) is contiguous either way. y is zeroed rather than
         * passing beta = 0, which some OpenBLAS versions apply as a multiply (NaN * 0). */
        if (!gp->use_c)
            memset(y, 0, (size_t)gp->n * sizeof *y);
        cblas_sgemv(CblasRowMajor, gp->trans_b ? CblasNoTrans : CblasTrans,
                    (int)in[1].shape[0], (int)in[1].shape[1], gp->alpha, in[1].data,
                    (int)in[1].shape[1], in[0].data, 1, 1.0f, y, 1);
    } else {
        cblas_sgemm(CblasRowMajor, gp->trans_a ? CblasTrans : CblasNoTrans,
                    gp->trans_b ? CblasTrans : CblasNoTrans, (int)gp->m, (int)gp->n,
                    (int)gp->k, gp->alpha, in[0].data, (int)in[0].shape[1], in[1].data,
                    (int)in[1].shape[1], gp->use_c ? 1.0f : 0.0f, y, (int)gp->n);
    }
    hs__act_apply(&node->act, y, gp->m * gp->n);
}

const hs__op hs__op_gemm = {
    .name = "Gemm", .prepare = gemm_prepare, .run = gemm_run, .fuses_act = true};

/* ---- MatMul ------------------------------------------------------------------------------- */

typedef struct matmul_params {
    int64_t m, n, k;
    int nb;                           /* batch dims of the output */
    int64_t batch[HS_MAX_DIMS];       /* their sizes */
    int64_t a_step[HS_MAX_DIMS];      /* elements of A to advance per index of batch dim d */
    int64_t b_step[HS_MAX_DIMS];      /* same for B; 0 where the operand broadcasts */
    bool stack_a;                     /* B has no batch dims: one SGEMM of A as [batch*m, k] */
} matmul_params;

/* Fills step[] (aligned to the right of the nb output batch dims) for an operand whose batch
 * dims are dims[0..nd), each matrix holding `matrix` elements. */
static void batch_steps(const int64_t *dims, int nd, int nb, int64_t matrix, int64_t *step)
{
    int64_t stride = matrix;
    for (int d = nb - 1; d >= 0; d--) {
        int od = d - (nb - nd);
        if (od < 0 || dims[od] == 1) {
            step[d] = 0;
        } else {
            step[d] = stride;
            stride *= dims[od];
        }
    }
}

static hs_status matmul_prepare(hs__prep *p)
{
    hs_status st;
    if ((st = hs__check_arity(p, 2, 2, 1)) != HS_OK ||
        (st = hs__need_input(p, 0, HS_F32, "A")) != HS_OK ||
        (st = hs__need_input(p, 1, HS_F32, "B")) != HS_OK)
        return st;
    const hs_tensor *a = hs__in(p, 0), *b = hs__in(p, 1);
    if (a->ndim < 1 || b->ndim < 1)
        return hs__fail(p, HS_ERR_SHAPE, "operands must have rank 1 or more, have %d and %d",
                        a->ndim, b->ndim);
    int64_t m = a->ndim >= 2 ? a->shape[a->ndim - 2] : 1, k = a->shape[a->ndim - 1];
    int64_t kb = b->ndim >= 2 ? b->shape[b->ndim - 2] : b->shape[0];
    int64_t n = b->ndim >= 2 ? b->shape[b->ndim - 1] : 1;
    if (k != kb)
        return hs__fail(p, HS_ERR_SHAPE, "inner dims differ: A has %lld, B has %lld",
                        (long long)k, (long long)kb);

    int na = a->ndim > 2 ? a->ndim - 2 : 0, nbb = b->ndim > 2 ? b->ndim - 2 : 0;
    int nb = na > nbb ? na : nbb;
    int64_t shape[HS_MAX_DIMS];
    for (int d = 0; d < nb; d++) {
        int da = d - (nb - na), db = d - (nb - nbb);
        int64_t sa = da >= 0 ? a->shape[da] : 1, sb = db >= 0 ? b->shape[db] : 1;
        if (sa != sb && sa != 1 && sb != 1)
            return hs__fail(p, HS_ERR_SHAPE, "batch dims %lld and %lld do not broadcast",
                            (long long)sa, (long long)sb);
        shape[d] = sa > sb ? sa : sb;
    }
    int ndim = nb;
    if (a->ndim >= 2)
        shape[ndim++] = m;
    if (b->ndim >= 2)
        shape[ndim++] = n;
    if (ndim > HS_MAX_DIMS)
        return hs__fail(p, HS_ERR_UNSUPPORTED, "output rank %d exceeds %d", ndim, HS_MAX_DIMS);

    matmul_params *mp = calloc(1, sizeof *mp);
    if (!mp)
        return hs__fail(p, HS_ERR_NOMEM, "out of memory");
    mp->m = m;
    mp->n = n;
    mp->k = k;
    mp->nb = nb;
    memcpy(mp->batch, shape, (size_t)nb * sizeof *shape);
    batch_steps(a->shape, na, nb, m * k, mp->a_step);
    batch_steps(b->shape, nbb, nb, k * n, mp->b_step);
    mp->stack_a = nbb == 0;
    hs__set_out(p, 0, HS_F32, ndim, shape);
    p->node->params = mp;
    p->node->flops = 2.0 * (double)hs__prod(shape, 0, nb) * (double)m * (double)n * (double)k;
    p->node->n_params = const_elements(p);
    return HS_OK;
}

static void matmul_run(const hs__node *node, const hs_tensor *in, hs_tensor *out,
                       void *workspace)
{
    const matmul_params *mp = node->params;
    const float *a = in[0].data, *b = in[1].data;
    float *y = out[0].data;
    int64_t batches = hs__prod(mp->batch, 0, mp->nb);
    if (mp->stack_a) {
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, (int)(batches * mp->m),
                    (int)mp->n, (int)mp->k, 1.0f, a, (int)mp->k, b, (int)mp->n, 0.0f, y,
                    (int)mp->n);
        hs__act_apply(&node->act, y, batches * mp->m * mp->n);
        return;
    }
    int64_t idx[HS_MAX_DIMS] = {0}, a_off = 0, b_off = 0;
    for (int64_t i = 0; i < batches; i++) {
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, (int)mp->m, (int)mp->n,
                    (int)mp->k, 1.0f, a + a_off, (int)mp->k, b + b_off, (int)mp->n, 0.0f,
                    y + i * mp->m * mp->n, (int)mp->n);
        for (int d = mp->nb - 1; d >= 0; d--) {
            a_off += mp->a_step[d];
            b_off += mp->b_step[d];
            if (++idx[d] < mp->batch[d])
                break;
            a_off -= mp->a_step[d] * mp->batch[d];
            b_off -= mp->b_step[d] * mp->batch[d];
            idx[d] = 0;
        }
    }
    hs__act_apply(&node->act, y, batches * mp->m * mp->n);
}

const hs__op hs__op_matmul = {
    .name = "MatMul", .prepare = matmul_prepare, .run = matmul_run, .fuses_act = true};
