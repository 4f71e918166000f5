/* Small helpers on tensor descriptions shared by the loader, the kernels and the CLI. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "graph_impl.h"

size_t hs_dtype_size(hs_dtype dtype)
{
    static const size_t sizes[] = {[HS_F32] = 4, [HS_I64] = 8};
    _Static_assert(sizeof sizes / sizeof sizes[0] == HS_DTYPE_COUNT, "one size per dtype");
    assert(dtype >= 0 && dtype < HS_DTYPE_COUNT);
    return sizes[dtype];
}

int64_t hs_tensor_numel(const hs_tensor *t)
{
    return hs__prod(t->shape, 0, t->ndim);
}

size_t hs_tensor_nbytes(const hs_tensor *t)
{
    return (size_t)hs_tensor_numel(t) * hs_dtype_size(t->dtype);
}

bool hs_tensor_same_desc(const hs_tensor *a, const hs_tensor *b)
{
    if (a->dtype != b->dtype || a->ndim != b->ndim)
        return false;
    for (int d = 0; d < a->ndim; d++)
        if (a->shape[d] != b->shape[d])
            return false;
    return true;
}

void hs__gather_strided(void *dst, const void *src, size_t es, int ndim, const int64_t *shape,
                        const int64_t *stride)
{
    int last = ndim - 1;
    int64_t n = last >= 0 ? shape[last] : 1, step = last >= 0 ? stride[last] : 1;
    int64_t outer = hs__prod(shape, 0, last > 0 ? last : 0);
    const char *x = src;
    char *y = dst;
    int64_t idx[HS_MAX_DIMS] = {0}, off = 0;
    for (int64_t o = 0; o < outer; o++, y += (size_t)n * es) {
        if (step == 1)
            memcpy(y, x + (size_t)off * es, (size_t)n * es);
        else if (es == sizeof(uint32_t))
            for (int64_t i = 0; i < n; i++)
                ((uint32_t *)y)[i] = ((const uint32_t *)x)[off + i * step];
        else
            for (int64_t i = 0; i < n; i++)
                ((uint64_t *)y)[i] = ((const uint64_t *)x)[off + i * step];
        for (int d = last - 1; d >= 0; d--) {
            off += stride[d];
            if (++idx[d] < shape[d])
                break;
            off -= stride[d] * shape[d];
            idx[d] = 0;
        }
    }
}

int64_t hs__prod(const int64_t *shape, int from, int to)
{
    int64_t n = 1;
    for (int i = from; i < to; i++)
        n *= shape[i];
    return n;
}

int hs__axis(int64_t axis, int rank)
{
    if (axis < 0)
        axis += rank;
    return axis >= 0 && axis < rank ? (int)axis : -1;
}

char *hs_shape_str(const hs_tensor *t, char *buf, size_t size)
{
    size_t used = 0;
    buf[0] = '\0';
    if (t->ndim == 0)
        snprintf(buf, size, "scalar");
    for (int i = 0; i < t->ndim && used < size; i++)
        used += (size_t)snprintf(buf + used, size - used, "%s%lld", i ? "x" : "",
                                 (long long)t->shape[i]);
    return buf;
}

hs_status hs_shape_parse(const char *text, hs_tensor *t)
{
    const char *s = text;
    int ndim = 0;
    if (!*s)
        return HS_ERR_INVALID;
    while (*s) {
        if (ndim == HS_MAX_DIMS || *s < '0' || *s > '9')
            return HS_ERR_INVALID;
        char *end;
        errno = 0;
        long long v = strtoll(s, &end, 10);
        if (errno || v <= 0)
            return HS_ERR_INVALID;
        t->shape[ndim++] = v;
        s = end;
        if (*s == 'x' || *s == 'X' || *s == ',')
            s++;
        else if (*s)
            return HS_ERR_INVALID;
        if (!*s && (s[-1] == 'x' || s[-1] == 'X' || s[-1] == ','))
            return HS_ERR_INVALID;
    }
    t->ndim = ndim;
    return HS_OK;
}
