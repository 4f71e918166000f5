/*
 * What an operator's prepare() sees: its inputs' descriptions, its attributes, and a way to
 * fail with a message that names the model file, the node and the reason.
 */
#include <stdio.h>
#include <string.h>

#include "graph_impl.h"

hs_status hs__fail(hs__prep *p, hs_status code, const char *fmt, ...)
{
    if (p->err) {
        char reason[HS_ERROR_MSG_MAX];
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(reason, sizeof reason, fmt, ap);
        va_end(ap);
        hs__set_error(p->err, code, "%s: node '%s' (%s): %s", p->g->name, p->node->name,
                      p->proto ? p->proto->op_type : p->node->op->name, reason);
    }
    return code;
}

int hs__in_count(const hs__prep *p) { return p->node->n_in; }
int hs__out_count(const hs__prep *p) { return p->node->n_out; }

const hs_tensor *hs__in(const hs__prep *p, int i)
{
    if (i < 0 || i >= p->node->n_in || p->node->in[i] < 0)
        return NULL;
    return &p->g->values[p->node->in[i]].t;
}

hs_status hs__check_arity(hs__prep *p, int lo, int hi, int n_out)
{
    if (p->node->n_in < lo || p->node->n_in > hi) {
        if (lo == hi)
            return hs__fail(p, HS_ERR_INVALID, "expects %d inputs, has %d", lo, p->node->n_in);
        return hs__fail(p, HS_ERR_INVALID, "expects %d to %d inputs, has %d", lo, hi,
                        p->node->n_in);
    }
    for (int i = 0; i < lo; i++)
        if (p->node->in[i] < 0)
            return hs__fail(p, HS_ERR_INVALID, "required input %d is empty", i);
    if (n_out >= 0 && p->node->n_out != n_out)
        return hs__fail(p, HS_ERR_INVALID, "expects %d outputs, has %d", n_out, p->node->n_out);
    return HS_OK;
}

static const char *dtype_name(hs_dtype d) { return d == HS_F32 ? "float32" : "int64"; }

hs_status hs__need_input(hs__prep *p, int i, hs_dtype dtype, const char *what)
{
    const hs_tensor *t = hs__in(p, i);
    if (!t)
        return hs__fail(p, HS_ERR_INVALID, "input %d (%s) is missing", i, what);
    if (t->dtype != dtype)
        return hs__fail(p, HS_ERR_UNSUPPORTED, "input %d (%s) is %s, expected %s", i, what,
                        dtype_name(t->dtype), dtype_name(dtype));
    return HS_OK;
}

hs_status hs__need_const(hs__prep *p, int i, const char *what)
{
    const hs_tensor *t = hs__in(p, i);
    if (t && !t->data)
        return hs__fail(p, HS_ERR_UNSUPPORTED,
                        "input %d (%s) must be a constant known at load time", i, what);
    return HS_OK;
}

void hs__set_out(hs__prep *p, int i, hs_dtype dtype, int ndim, const int64_t *shape)
{
    assert(i >= 0 && i < p->node->n_out && ndim >= 0 && ndim <= HS_MAX_DIMS);
    hs_tensor *t = &p->g->values[p->node->out[i]].t;
    t->dtype = dtype;
    t->ndim = ndim;
    for (int d = 0; d < ndim; d++)
        t->shape[d] = shape[d];
}

static const Onnx__AttributeProto *find_attr(const hs__prep *p, const char *name)
{
    if (!p->proto)
        return NULL;
    for (size_t i = 0; i < p->proto->n_attribute; i++)
        if (p->proto->attribute[i]->name && strcmp(p->proto->attribute[i]->name, name) == 0)
            return p->proto->attribute[i];
    return NULL;
}

bool hs__attr_has(const hs__prep *p, const char *name) { return find_attr(p, name) != NULL; }

int64_t hs__attr_int(hs__prep *p, const char *name, int64_t def, hs_status *st)
{
    const Onnx__AttributeProto *a = find_attr(p, name);
    if (!a)
        return def;
    if (a->type != ONNX__ATTRIBUTE_PROTO__ATTRIBUTE_TYPE__INT) {
        *st = hs__fail(p, HS_ERR_INVALID, "attribute '%s' must be an int", name);
        return def;
    }
    return a->i;
}

float hs__attr_float(hs__prep *p, const char *name, float def, hs_status *st)
{
    const Onnx__AttributeProto *a = find_attr(p, name);
    if (!a)
        return def;
    if (a->type != ONNX__ATTRIBUTE_PROTO__ATTRIBUTE_TYPE__FLOAT) {
        *st = hs__fail(p, HS_ERR_INVALID, "attribute '%s' must be a float", name);
        return def;
    }
    return a->f;
}

hs_status hs__attr_ints(hs__prep *p, const char *name, int64_t *out, int max, int *n)
{
    const Onnx__AttributeProto *a = find_attr(p, name);
    *n = 0;
    if (!a)
        return HS_OK;
    if (a->type != ONNX__ATTRIBUTE_PROTO__ATTRIBUTE_TYPE__INTS)
        return hs__fail(p, HS_ERR_INVALID, "attribute '%s' must be a list of ints", name);
    if (a->n_ints > (size_t)max)
        return hs__fail(p, HS_ERR_UNSUPPORTED, "attribute '%s' has %zu values, at most %d",
                        name, a->n_ints, max);
    memcpy(out, a->ints, a->n_ints * sizeof *out);
    *n = (int)a->n_ints;
    return HS_OK;
}

hs_status hs__attr_string(hs__prep *p, const char *name, const char *def, char *buf,
                          size_t size)
{
    const Onnx__AttributeProto *a = find_attr(p, name);
    if (!a) {
        snprintf(buf, size, "%s", def);
        return HS_OK;
    }
    if (a->type != ONNX__ATTRIBUTE_PROTO__ATTRIBUTE_TYPE__STRING)
        return hs__fail(p, HS_ERR_INVALID, "attribute '%s' must be a string", name);
    size_t len = a->s.len < size - 1 ? a->s.len : size - 1;
    memcpy(buf, a->s.data, len);
    buf[len] = '\0';
    return HS_OK;
}

hs_status hs__const_ints(hs__prep *p, int i, int64_t *out, int max, int *n, const char *what)
{
    hs_status st = hs__need_input(p, i, HS_I64, what);
    if (st == HS_OK)
        st = hs__need_const(p, i, what);
    if (st != HS_OK)
        return st;
    const hs_tensor *t = hs__in(p, i);
    int64_t count = hs_tensor_numel(t);
    if (t->ndim > 1)
        return hs__fail(p, HS_ERR_INVALID, "input %d (%s) must be 1-D", i, what);
    if (count > max)
        return hs__fail(p, HS_ERR_UNSUPPORTED, "input %d (%s) has %lld values, at most %d", i,
                        what, (long long)count, max);
    memcpy(out, t->data, (size_t)count * sizeof *out);
    *n = (int)count;
    return HS_OK;
}
