/*
 * ONNX import: protobuf-c parses the file; this turns it into an hs_graph whose every tensor
 * has a static shape and whose nodes are only those that do work at run time.
 *
 * Steps, each failing with a message that names the file, node and reason:
 *   1. values: initializers and Constant nodes become constants, graph inputs get the shapes
 *      the caller binds (or those the model declares);
 *   2. nodes: each op is looked up, its inputs resolved by name (which also checks the order is
 *      topological: ONNX requires it);
 *   3. BatchNormalization right after a Conv is folded into the Conv's weights and bias;
 *   4. each op's prepare() infers shapes in order, and a node whose inputs are all constant
 *      (PyTorch's Shape/Gather/Unsqueeze/Concat chains feeding Reshape) is run at once and
 *      becomes a constant;
 *   5. the survivors are compacted and each tensor's producer and last consumer recorded,
 *      from which the cut sizes follow (graph.c).
 */
#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>
#ifdef __GLIBC__
#include <malloc.h>
#endif

#include "graph_impl.h"

#define HS_OPSET_MIN 1
#define HS_OPSET_MAX 17

/* ---- name -> value id, an open-addressing table used while loading --------------------- */

typedef struct name_map {
    int *slots; /* value id + 1; 0 = empty */
    size_t cap;
} name_map;

static uint64_t hash_str(const char *s)
{
    uint64_t h = 1469598103934665603ull; /* FNV-1a */
    while (*s)
        h = (h ^ (unsigned char)*s++) * 1099511628211ull;
    return h;
}

static int map_get(const name_map *m, const hs_graph *g, const char *name)
{
    if (!m->cap)
        return -1;
    for (size_t i = hash_str(name) & (m->cap - 1);; i = (i + 1) & (m->cap - 1)) {
        int slot = m->slots[i];
        if (!slot)
            return -1;
        if (strcmp(g->values[slot - 1].name, name) == 0)
            return slot - 1;
    }
}

static hs_status map_put(name_map *m, const hs_graph *g, int id)
{
    if ((size_t)(id + 1) * 2 > m->cap) {
        size_t cap = m->cap ? m->cap * 2 : 256;
        while ((size_t)(id + 1) * 2 > cap)
            cap *= 2;
        int *slots = calloc(cap, sizeof *slots);
        if (!slots)
            return HS_ERR_NOMEM;
        name_map grown = {slots, cap};
        for (size_t i = 0; i < m->cap; i++)
            if (m->slots[i])
                map_put(&grown, g, m->slots[i] - 1);
        free(m->slots);
        *m = grown;
    }
    size_t i = hash_str(g->values[id].name) & (m->cap - 1);
    while (m->slots[i])
        i = (i + 1) & (m->cap - 1);
    m->slots[i] = id + 1;
    return HS_OK;
}

/* ---- graph construction ------------------------------------------------------------------ */

int hs__value_add(hs_graph *g, const char *name)
{
    if (g->n_values == g->cap_values) {
        int cap = g->cap_values ? 2 * g->cap_values : 256;
        hs__value *grown = realloc(g->values, (size_t)cap * sizeof *grown);
        if (!grown)
            return -1;
        g->values = grown;
        g->cap_values = cap;
    }
    hs__value *v = &g->values[g->n_values];
    memset(v, 0, sizeof *v);
    v->name = strdup(name);
    if (!v->name)
        return -1;
    v->t.ndim = -1; /* unknown until the producer's prepare() runs */
    v->producer = -1;
    v->last_use = -1;
    return g->n_values++;
}

int hs__value_find(const hs_graph *g, const char *name)
{
    for (int i = 0; i < g->n_values; i++)
        if (strcmp(g->values[i].name, name) == 0)
            return i;
    return -1;
}

static hs__node *node_add(hs_graph *g)
{
    if (g->n_nodes == g->cap_nodes) {
        int cap = g->cap_nodes ? 2 * g->cap_nodes : 128;
        hs__node *grown = realloc(g->nodes, (size_t)cap * sizeof *grown);
        if (!grown)
            return NULL;
        g->nodes = grown;
        g->cap_nodes = cap;
    }
    hs__node *n = &g->nodes[g->n_nodes++];
    memset(n, 0, sizeof *n);
    return n;
}

/* Hands memory freed in bulk (a model's weights, a decoded model) back to the system: glibc
 * keeps freed blocks below its adaptive mmap threshold in the heap, which would otherwise stay
 * resident, as much again as the weights. */
static void give_back_memory(void)
{
#ifdef __GLIBC__
    malloc_trim(0);
#endif
}

void hs_graph_free(hs_graph *g)
{
    if (!g)
        return;
    for (int i = 0; i < g->n_values; i++) {
        free(g->values[i].name);
        if (g->values[i].owns_data)
            free(g->values[i].t.data);
    }
    for (int i = 0; i < g->n_nodes; i++) {
        free(g->nodes[i].name);
        free(g->nodes[i].params);
    }
    free(g->values);
    free(g->nodes);
    free(g->inputs);
    free(g->outputs);
    free(g->cut_bytes);
    free(g->cut_tensors);
    free(g->live_bytes);
    free(g->name);
    free(g->reload_path);
    free(g);
    give_back_memory();
}

/* ---- tensors from protobuf --------------------------------------------------------------- */

hs_status hs__tensor_from_proto(const Onnx__TensorProto *tp, const char *where, hs_tensor *out,
                                hs_error *err)
{
    memset(out, 0, sizeof *out);
    if (tp->data_location == ONNX__TENSOR_PROTO__DATA_LOCATION__EXTERNAL || tp->n_external_data)
        return hs__set_error(err, HS_ERR_UNSUPPORTED,
                             "%s: tensor data stored in an external file is not supported",
                             where);
    if (tp->n_dims > HS_MAX_DIMS)
        return hs__set_error(err, HS_ERR_UNSUPPORTED, "%s: tensor has %zu dimensions, at most %d",
                             where, tp->n_dims, HS_MAX_DIMS);
    uint64_t count = 1;
    for (size_t d = 0; d < tp->n_dims; d++) {
        if (tp->dims[d] < 0 ||
            (tp->dims[d] > 0 && count > (UINT64_MAX >> 4) / (uint64_t)tp->dims[d]))
            return hs__set_error(err, HS_ERR_PARSE, "%s: invalid dimension %lld", where,
                                 (long long)tp->dims[d]);
        out->shape[d] = tp->dims[d];
        count *= (uint64_t)tp->dims[d];
    }
    out->ndim = (int)tp->n_dims;

    size_t src_size;
    hs_dtype dtype;
    switch (tp->data_type) {
    case ONNX__TENSOR_PROTO__DATA_TYPE__FLOAT: src_size = 4; dtype = HS_F32; break;
    case ONNX__TENSOR_PROTO__DATA_TYPE__DOUBLE: src_size = 8; dtype = HS_F32; break;
    case ONNX__TENSOR_PROTO__DATA_TYPE__INT64: src_size = 8; dtype = HS_I64; break;
    case ONNX__TENSOR_PROTO__DATA_TYPE__INT32: src_size = 4; dtype = HS_I64; break;
    case ONNX__TENSOR_PROTO__DATA_TYPE__BOOL: src_size = 1; dtype = HS_I64; break;
    default:
        return hs__set_error(err, HS_ERR_UNSUPPORTED, "%s: data type %d is not supported",
                             where, (int)tp->data_type);
    }
    out->dtype = dtype;

    size_t typed;
    switch (tp->data_type) {
    case ONNX__TENSOR_PROTO__DATA_TYPE__FLOAT: typed = tp->n_float_data; break;
    case ONNX__TENSOR_PROTO__DATA_TYPE__DOUBLE: typed = tp->n_double_data; break;
    case ONNX__TENSOR_PROTO__DATA_TYPE__INT64: typed = tp->n_int64_data; break;
    default: typed = tp->n_int32_data; break; /* INT32 and BOOL */
    }
    if (tp->has_raw_data) {
        if (tp->raw_data.len != count * src_size)
            return hs__set_error(err, HS_ERR_PARSE,
                                 "%s: raw_data holds %zu bytes, shape needs %llu", where,
                                 tp->raw_data.len, (unsigned long long)(count * src_size));
    } else if (typed != count) {
        return hs__set_error(err, HS_ERR_PARSE, "%s: holds %zu values, shape needs %llu", where,
                             typed, (unsigned long long)count);
    }

    void *data = malloc(count ? count * hs_dtype_size(dtype) : 1);
    if (!data)
        return hs__set_error(err, HS_ERR_NOMEM, "%s: out of memory for %llu values", where,
                             (unsigned long long)count);
    const uint8_t *raw = tp->has_raw_data ? tp->raw_data.data : NULL;
    float *f = data;
    int64_t *l = data;
    for (uint64_t i = 0; i < count; i++) {
        switch (tp->data_type) {
        case ONNX__TENSOR_PROTO__DATA_TYPE__FLOAT:
            if (raw)
                memcpy(&f[i], raw + 4 * i, 4);
            else
                f[i] = tp->float_data[i];
            break;
        case ONNX__TENSOR_PROTO__DATA_TYPE__DOUBLE: {
            double v;
            if (raw)
                memcpy(&v, raw + 8 * i, 8);
            else
                v = tp->double_data[i];
            f[i] = (float)v;
            break;
        }
        case ONNX__TENSOR_PROTO__DATA_TYPE__INT64:
            if (raw)
                memcpy(&l[i], raw + 8 * i, 8);
            else
                l[i] = tp->int64_data[i];
            break;
        case ONNX__TENSOR_PROTO__DATA_TYPE__INT32: {
            int32_t v;
            if (raw)
                memcpy(&v, raw + 4 * i, 4);
            else
                v = tp->int32_data[i];
            l[i] = v;
            break;
        }
        default: /* BOOL */
            l[i] = raw ? raw[i] != 0 : tp->int32_data[i] != 0;
            break;
        }
    }
    out->data = data;
    return HS_OK;
}

/* ---- the loader -------------------------------------------------------------------------- */

typedef struct loader {
    hs_graph *g;
    const Onnx__GraphProto *gp;
    const hs_load_options *opts;
    hs_error *err;
    name_map names;
    const Onnx__NodeProto **protos; /* per node, while loading */
    int64_t *extra_params;          /* per node: parameters folded away (BatchNorm) */
    bool *dead;                     /* per node: folded into a constant or another node */
} loader;

static hs_status fail(loader *L, hs_status code, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static hs_status fail(loader *L, hs_status code, const char *fmt, ...)
{
    char msg[HS_ERROR_MSG_MAX];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    return hs__set_error(L->err, code, "%s: %s", L->g->name, msg);
}

static int add_named(loader *L, const char *name, hs_status *st)
{
    if (map_get(&L->names, L->g, name) >= 0) {
        *st = fail(L, HS_ERR_INVALID, "tensor '%s' is defined twice", name);
        return -1;
    }
    int id = hs__value_add(L->g, name);
    if (id < 0 || map_put(&L->names, L->g, id) != HS_OK) {
        *st = fail(L, HS_ERR_NOMEM, "out of memory");
        return -1;
    }
    return id;
}

static hs_status add_constant(loader *L, const char *name, const Onnx__TensorProto *tp,
                              const char *what)
{
    char where[HS_ERROR_MSG_MAX];
    snprintf(where, sizeof where, "%s: %s '%s'", L->g->name, what, name);
    hs_tensor t;
    hs_status st = hs__tensor_from_proto(tp, where, &t, L->err);
    if (st != HS_OK)
        return st;
    int id = add_named(L, name, &st);
    if (id < 0) {
        free(t.data);
        return st;
    }
    hs__value *v = &L->g->values[id];
    v->t = t;
    v->is_const = true;
    v->owns_data = true;
    return HS_OK;
}

static const hs_input_binding *find_binding(const loader *L, const char *name, bool first)
{
    if (!L->opts)
        return NULL;
    for (int i = 0; i < L->opts->n_inputs; i++) {
        const char *b = L->opts->inputs[i].name;
        if ((b && strcmp(b, name) == 0) || (!b && first))
            return &L->opts->inputs[i];
    }
    return NULL;
}

static hs_status add_input(loader *L, const Onnx__ValueInfoProto *vi, bool first)
{
    hs_status st = HS_OK;
    const hs_input_binding *b = find_binding(L, vi->name, first);
    const Onnx__TypeProto *tp = vi->type;
    if (!tp || tp->value_case != ONNX__TYPE_PROTO__VALUE_TENSOR_TYPE || !tp->tensor_type)
        return fail(L, HS_ERR_UNSUPPORTED, "graph input '%s' is not a tensor", vi->name);
    const Onnx__TypeProto__Tensor *tt = tp->tensor_type;
    hs_tensor t = {0};
    if (tt->elem_type == ONNX__TENSOR_PROTO__DATA_TYPE__FLOAT)
        t.dtype = HS_F32;
    else if (tt->elem_type == ONNX__TENSOR_PROTO__DATA_TYPE__INT64)
        t.dtype = HS_I64;
    else
        return fail(L, HS_ERR_UNSUPPORTED, "graph input '%s' has data type %d (float32 and "
                    "int64 are supported)", vi->name, (int)tt->elem_type);
    if (b) {
        if (b->tensor.dtype != t.dtype)
            return fail(L, HS_ERR_INVALID, "input '%s' is bound with another data type than "
                        "the model declares", vi->name);
        t.ndim = b->tensor.ndim;
        memcpy(t.shape, b->tensor.shape, sizeof t.shape);
    } else {
        if (!tt->shape)
            return fail(L, HS_ERR_SHAPE, "graph input '%s' has no shape; give one "
                        "(--input-shape)", vi->name);
        if (tt->shape->n_dim > HS_MAX_DIMS)
            return fail(L, HS_ERR_UNSUPPORTED, "graph input '%s' has %zu dimensions",
                        vi->name, tt->shape->n_dim);
        t.ndim = (int)tt->shape->n_dim;
        for (int d = 0; d < t.ndim; d++) {
            const Onnx__TensorShapeProto__Dimension *dim = tt->shape->dim[d];
            if (dim->value_case != ONNX__TENSOR_SHAPE_PROTO__DIMENSION__VALUE_DIM_VALUE ||
                dim->dim_value <= 0)
                return fail(L, HS_ERR_SHAPE, "graph input '%s' dimension %d is symbolic%s%s; "
                            "give a static shape (--input-shape)", vi->name, d,
                            dim->value_case ? " " : "",
                            dim->value_case == ONNX__TENSOR_SHAPE_PROTO__DIMENSION__VALUE_DIM_PARAM
                                ? dim->dim_param : "");
            t.shape[d] = dim->dim_value;
        }
    }
    int id = add_named(L, vi->name, &st);
    if (id < 0)
        return st;
    hs__value *v = &L->g->values[id];
    v->t = t;
    if (b && b->tensor.data) {
        size_t bytes = hs_tensor_nbytes(&t);
        v->t.data = malloc(bytes ? bytes : 1);
        if (!v->t.data)
            return fail(L, HS_ERR_NOMEM, "out of memory");
        memcpy(v->t.data, b->tensor.data, bytes);
        v->is_const = v->owns_data = true;
    } else {
        v->is_input = true;
    }
    return HS_OK;
}

/* A Constant node's value attribute, as a TensorProto we can decode. */
static hs_status add_constant_node(loader *L, const Onnx__NodeProto *np)
{
    if (np->n_output != 1)
        return fail(L, HS_ERR_INVALID, "node '%s' (Constant): expects 1 output", np->name);
    for (size_t i = 0; i < np->n_attribute; i++) {
        const Onnx__AttributeProto *a = np->attribute[i];
        Onnx__TensorProto tp;
        onnx__tensor_proto__init(&tp);
        int64_t dim;
        if (strcmp(a->name, "value") == 0 && a->t)
            return add_constant(L, np->output[0], a->t, "Constant");
        if (strcmp(a->name, "value_float") == 0) {
            tp.data_type = ONNX__TENSOR_PROTO__DATA_TYPE__FLOAT;
            tp.n_float_data = 1;
            tp.float_data = (float *)&a->f;
        } else if (strcmp(a->name, "value_floats") == 0) {
            tp.data_type = ONNX__TENSOR_PROTO__DATA_TYPE__FLOAT;
            tp.n_float_data = a->n_floats;
            tp.float_data = a->floats;
            dim = (int64_t)a->n_floats;
            tp.n_dims = 1;
            tp.dims = &dim;
        } else if (strcmp(a->name, "value_int") == 0) {
            tp.data_type = ONNX__TENSOR_PROTO__DATA_TYPE__INT64;
            tp.n_int64_data = 1;
            tp.int64_data = (int64_t *)&a->i;
        } else if (strcmp(a->name, "value_ints") == 0) {
            tp.data_type = ONNX__TENSOR_PROTO__DATA_TYPE__INT64;
            tp.n_int64_data = a->n_ints;
            tp.int64_data = a->ints;
            dim = (int64_t)a->n_ints;
            tp.n_dims = 1;
            tp.dims = &dim;
        } else {
            continue;
        }
        return add_constant(L, np->output[0], &tp, "Constant");
    }
    return fail(L, HS_ERR_UNSUPPORTED, "node '%s' (Constant): no supported value attribute",
                np->name);
}

static hs_status add_node(loader *L, const Onnx__NodeProto *np, int index)
{
    hs_status st = HS_OK;
    hs_graph *g = L->g;
    char fallback[64];
    const char *name = np->name && *np->name ? np->name : NULL;
    if (!name) {
        snprintf(fallback, sizeof fallback, "%s_%d", np->op_type ? np->op_type : "node", index);
        name = fallback;
    }
    if (!np->op_type || !*np->op_type)
        return fail(L, HS_ERR_PARSE, "node %d has no op_type", index);
    if (np->domain && *np->domain && strcmp(np->domain, "ai.onnx") != 0)
        return fail(L, HS_ERR_UNSUPPORTED, "node '%s' (%s): operator domain '%s' is not "
                    "supported", name, np->op_type, np->domain);
    if (strcmp(np->op_type, "Constant") == 0)
        return add_constant_node(L, np);
    /* Before opset 7, Add/Sub/Mul/Div could broadcast B from a given axis instead of from the
     * trailing dimensions as numpy (and hotsplit) do. */
    if (L->g->opset < 7 && (strcmp(np->op_type, "Add") == 0 || strcmp(np->op_type, "Sub") == 0 ||
                            strcmp(np->op_type, "Mul") == 0 || strcmp(np->op_type, "Div") == 0))
        for (size_t i = 0; i < np->n_attribute; i++)
            if (strcmp(np->attribute[i]->name, "axis") == 0)
                return fail(L, HS_ERR_UNSUPPORTED, "node '%s' (%s): broadcasting from an "
                            "'axis' (opsets before 7) is not supported", name, np->op_type);
    const hs__op *op = hs__op_find(np->op_type);
    if (!op)
        return fail(L, HS_ERR_UNSUPPORTED, "node '%s' (%s): unsupported operator", name,
                    np->op_type);
    /* Trailing empty output names are optional outputs the model does not want. */
    size_t n_out = np->n_output;
    while (n_out > 0 && !*np->output[n_out - 1])
        n_out--;
    if (np->n_input > HS_MAX_IO || n_out > HS_MAX_IO)
        return fail(L, HS_ERR_UNSUPPORTED, "node '%s' (%s): more than %d inputs or outputs",
                    name, np->op_type, HS_MAX_IO);
    if (n_out == 0)
        return fail(L, HS_ERR_INVALID, "node '%s' (%s): has no outputs", name, np->op_type);

    hs__node *n = node_add(g);
    if (!n)
        return fail(L, HS_ERR_NOMEM, "out of memory");
    n->op = op;
    n->name = strdup(name);
    if (!n->name)
        return fail(L, HS_ERR_NOMEM, "out of memory");
    n->n_in = (int)np->n_input;
    for (int i = 0; i < n->n_in; i++) {
        if (!*np->input[i]) {
            n->in[i] = -1;
            continue;
        }
        n->in[i] = map_get(&L->names, g, np->input[i]);
        if (n->in[i] < 0)
            return fail(L, HS_ERR_NOTFOUND, "node '%s' (%s): input '%s' is not an initializer, "
                        "a graph input or the output of an earlier node", name, np->op_type,
                        np->input[i]);
    }
    n->n_out = (int)n_out;
    for (int i = 0; i < n->n_out; i++) {
        char anon[96];
        const char *out_name = np->output[i];
        if (!*out_name) {
            snprintf(anon, sizeof anon, "%s:unused%d", name, i);
            out_name = anon;
        }
        n->out[i] = add_named(L, out_name, &st);
        if (n->out[i] < 0)
            return st;
        g->values[n->out[i]].producer = g->n_nodes - 1;
    }
    return HS_OK;
}

/* ---- BatchNormalization folding ---------------------------------------------------------- */

static float bn_epsilon(const Onnx__NodeProto *np)
{
    for (size_t i = 0; i < np->n_attribute; i++)
        if (strcmp(np->attribute[i]->name, "epsilon") == 0 &&
            np->attribute[i]->type == ONNX__ATTRIBUTE_PROTO__ATTRIBUTE_TYPE__FLOAT)
            return np->attribute[i]->f;
    return 1e-5f;
}

static bool is_f32_const(const hs_graph *g, int id, int ndim, int64_t dim0)
{
    if (id < 0)
        return false;
    const hs__value *v = &g->values[id];
    return v->is_const && v->t.dtype == HS_F32 && v->t.ndim == ndim && v->t.shape[0] == dim0;
}

/* One reader fewer for constant `id`; with none left (and not a graph output), its data is
 * freed now rather than at the end of loading, so that a model's weights are not held twice
 * while their folded copies are made. */
static void release_if_unread(hs_graph *g, int *uses, int id)
{
    hs__value *v = &g->values[id];
    if (--uses[id] == 0 && v->owns_data) {
        free(v->t.data);
        v->t.data = NULL;
        v->owns_data = false;
    }
}

static hs_status fold_batchnorms(loader *L)
{
    hs_graph *g = L->g;
    int *uses = calloc((size_t)g->n_values, sizeof *uses);
    if (!uses)
        return fail(L, HS_ERR_NOMEM, "out of memory");
    for (int i = 0; i < g->n_nodes; i++)
        for (int j = 0; j < g->nodes[i].n_in; j++)
            if (g->nodes[i].in[j] >= 0)
                uses[g->nodes[i].in[j]]++;
    for (size_t i = 0; i < L->gp->n_output; i++) {
        int id = map_get(&L->names, g, L->gp->output[i]->name);
        if (id >= 0)
            uses[id] += 2; /* a graph output must stay visible */
    }

    hs_status st = HS_OK;
    for (int b = 0; b < g->n_nodes && st == HS_OK; b++) {
        hs__node *bn = &g->nodes[b];
        if (strcmp(bn->op->name, "BatchNormalization") != 0 || bn->n_in != 5 || bn->n_out != 1)
            continue;
        int x = bn->in[0];
        if (x < 0 || g->values[x].producer < 0 || uses[x] != 1)
            continue;
        int c = g->values[x].producer;
        hs__node *conv = &g->nodes[c];
        /* A second BatchNormalization after a folded one stays a node: the conv's weight is
         * then the first fold's, and one fold per conv keeps its names unique. */
        if (strcmp(conv->op->name, "Conv") != 0 || conv->n_out != 1 || conv->n_in < 2 ||
            conv->folded_bn)
            continue;
        const hs__value *w = &g->values[conv->in[1]];
        if (!w->is_const || w->t.dtype != HS_F32 || w->t.ndim < 3)
            continue;
        int64_t m = w->t.shape[0];
        int bias = conv->n_in > 2 ? conv->in[2] : -1;
        if ((bias >= 0 && !is_f32_const(g, bias, 1, m)) || !is_f32_const(g, bn->in[1], 1, m) ||
            !is_f32_const(g, bn->in[2], 1, m) || !is_f32_const(g, bn->in[3], 1, m) ||
            !is_f32_const(g, bn->in[4], 1, m))
            continue;

        char name[512];
        snprintf(name, sizeof name, "%s:folded_weight", conv->name);
        int nw = add_named(L, name, &st);
        snprintf(name, sizeof name, "%s:folded_bias", conv->name);
        int nb = nw >= 0 ? add_named(L, name, &st) : -1;
        if (nb < 0)
            break;
        /* add_named may have moved g->values: look everything up again. */
        w = &g->values[conv->in[1]];
        const float *wd = w->t.data, *bd = bias >= 0 ? g->values[bias].t.data : NULL;
        const float *scale = g->values[bn->in[1]].t.data, *shift = g->values[bn->in[2]].t.data;
        const float *mean = g->values[bn->in[3]].t.data, *var = g->values[bn->in[4]].t.data;
        int64_t per = hs_tensor_numel(&w->t) / m;
        float *fw = malloc((size_t)(per * m) * sizeof *fw), *fb = malloc((size_t)m * sizeof *fb);
        if (!fw || !fb) {
            free(fw);
            free(fb);
            st = fail(L, HS_ERR_NOMEM, "out of memory");
            break;
        }
        float eps = bn_epsilon(L->protos[b]);
        for (int64_t o = 0; o < m; o++) {
            float s = scale[o] / sqrtf(var[o] + eps);
            for (int64_t k = 0; k < per; k++)
                fw[o * per + k] = wd[o * per + k] * s;
            fb[o] = ((bd ? bd[o] : 0.0f) - mean[o]) * s + shift[o];
        }
        hs__value *vw = &g->values[nw], *vb = &g->values[nb];
        vw->t = w->t;
        vw->t.data = fw;
        vb->t = (hs_tensor){.dtype = HS_F32, .ndim = 1, .shape = {m}, .data = fb};
        vw->is_const = vw->owns_data = vb->is_const = vb->owns_data = true;

        /* Trainable parameters the fold removes: the BN's scale and shift, plus a conv bias
         * absorbed into the new one; the new bias itself is counted by the Conv. */
        L->extra_params[c] += 2 * m + (bias >= 0 ? m : 0) - m;
        release_if_unread(g, uses, conv->in[1]);
        if (bias >= 0)
            release_if_unread(g, uses, bias);
        conv->in[1] = nw;
        conv->in[2] = nb;
        conv->n_in = 3;
        conv->out[0] = bn->out[0];
        g->values[bn->out[0]].producer = c;
        conv->folded_bn = true;
        L->dead[b] = true;
    }
    free(uses);
    return st;
}

/* ---- shape inference and constant folding ------------------------------------------------ */

static hs_status prepare_all(loader *L)
{
    hs_graph *g = L->g;
    for (int i = 0; i < g->n_nodes; i++) {
        if (L->dead[i])
            continue;
        hs__node *n = &g->nodes[i];
        hs__prep p = {.g = g, .node = n, .proto = L->protos[i], .err = L->err};
        for (int j = 0; j < n->n_in; j++)
            if (n->in[j] >= 0 && g->values[n->in[j]].t.ndim < 0)
                return hs__fail(&p, HS_ERR_SHAPE, "input '%s' has no known shape",
                                g->values[n->in[j]].name);
        hs_status st = n->op->prepare(&p);
        if (st != HS_OK) {
            if (L->err && L->err->code != st) /* prepare() returned without saying why */
                hs__fail(&p, st, "%s", hs_strerror(st));
            return st;
        }
        for (int j = 0; j < n->n_out; j++)
            if (g->values[n->out[j]].t.ndim < 0)
                return hs__fail(&p, HS_ERR_SHAPE, "output %d has no inferred shape", j);
        n->n_params += L->extra_params[i];

        bool foldable = !n->op->no_fold;
        bool is_shape = strcmp(n->op->name, "Shape") == 0;
        for (int j = 0; j < n->n_in && foldable && !is_shape; j++)
            if (n->in[j] >= 0 && !g->values[n->in[j]].is_const)
                foldable = false;
        if (!foldable)
            continue;

        hs_tensor in[HS_MAX_IO], out[HS_MAX_IO];
        for (int j = 0; j < n->n_in; j++)
            in[j] = n->in[j] >= 0 ? g->values[n->in[j]].t : (hs_tensor){.ndim = -1};
        for (int j = 0; j < n->n_out; j++) {
            hs__value *v = &g->values[n->out[j]];
            size_t bytes = hs_tensor_nbytes(&v->t);
            v->t.data = malloc(bytes ? bytes : 1);
            if (!v->t.data)
                return hs__fail(&p, HS_ERR_NOMEM, "out of memory folding a constant");
            v->is_const = v->owns_data = true;
            out[j] = v->t;
        }
        void *ws = n->workspace ? malloc(n->workspace) : NULL;
        if (n->workspace && !ws)
            return hs__fail(&p, HS_ERR_NOMEM, "out of memory folding a constant");
        n->op->run(n, in, out, ws);
        free(ws);
        for (int j = 0; j < n->n_out; j++)
            g->values[n->out[j]].producer = -1;
        L->dead[i] = true;
    }
    return HS_OK;
}

/* Fuses a Relu or Clip into the Conv/Gemm/MatMul/Add before it when it is that node's only
 * reader, and likewise a SiLU (Sigmoid + Mul): one pass over memory instead of two or three,
 * and fewer nodes to schedule. Bit-identical to running them apart (hs__act_apply computes
 * exactly what the activations compute). */
static hs_status fuse_activations(loader *L)
{
    hs_graph *g = L->g;
    int *readers = calloc((size_t)g->n_values + 1, sizeof *readers);
    if (!readers)
        return fail(L, HS_ERR_NOMEM, "out of memory");
    for (int i = 0; i < g->n_nodes; i++)
        for (int j = 0; j < g->nodes[i].n_in && !L->dead[i]; j++)
            if (g->nodes[i].in[j] >= 0)
                readers[g->nodes[i].in[j]]++;
    for (size_t i = 0; i < L->gp->n_output; i++) {
        int id = map_get(&L->names, g, L->gp->output[i]->name);
        if (id >= 0)
            readers[id] += 2; /* a graph output must stay visible */
    }
    for (int i = 0; i < g->n_nodes; i++) {
        hs__node *act = &g->nodes[i];
        float lo, hi;
        if (L->dead[i] || !act->op->clamp || act->n_out != 1)
            continue;
        int x = act->in[0];
        int p = g->values[x].producer;
        if (p < 0 || L->dead[p] || readers[x] != 1)
            continue;
        hs__node *prod = &g->nodes[p];
        if (!prod->op->fuses_act || prod->act.kind != HS_ACT_NONE || prod->n_out != 1 ||
            g->values[x].t.dtype != HS_F32 || !act->op->clamp(act, &lo, &hi))
            continue;
        prod->act = (hs__act){.kind = HS_ACT_CLAMP, .lo = lo, .hi = hi};
        prod->fused = act->op->name;
        prod->flops += act->flops;
        prod->out[0] = act->out[0];
        g->values[act->out[0]].producer = p;
        L->dead[i] = true;
    }
    /* SiLU: Mul(x, Sigmoid(x)) where x is read only by the two. */
    for (int i = 0; i < g->n_nodes; i++) {
        hs__node *mul = &g->nodes[i];
        if (L->dead[i] || strcmp(mul->op->name, "Mul") != 0 || mul->n_in != 2)
            continue;
        for (int side = 0; side < 2; side++) {
            int x = mul->in[side], sv = mul->in[1 - side];
            int sp = sv >= 0 ? g->values[sv].producer : -1;
            int p = x >= 0 ? g->values[x].producer : -1;
            if (sp < 0 || p < 0 || L->dead[sp] || L->dead[p] || readers[x] != 2 ||
                readers[sv] != 1 || strcmp(g->nodes[sp].op->name, "Sigmoid") != 0 ||
                g->nodes[sp].in[0] != x)
                continue;
            hs__node *prod = &g->nodes[p];
            if (!prod->op->fuses_act || prod->act.kind != HS_ACT_NONE || prod->n_out != 1 ||
                g->values[x].t.dtype != HS_F32)
                continue;
            prod->act = (hs__act){.kind = HS_ACT_SILU};
            prod->fused = "SiLU";
            prod->flops += g->nodes[sp].flops + mul->flops;
            prod->out[0] = mul->out[0];
            g->values[mul->out[0]].producer = p;
            L->dead[sp] = L->dead[i] = true;
            break;
        }
    }
    free(readers);
    return HS_OK;
}

/* Drops dead nodes, then records producers, last uses, runtime inputs and outputs. */
static hs_status finish(loader *L)
{
    hs_graph *g = L->g;
    int live = 0;
    for (int i = 0; i < g->n_nodes; i++) {
        if (L->dead[i]) {
            free(g->nodes[i].name);
            free(g->nodes[i].params);
            continue;
        }
        g->nodes[live++] = g->nodes[i];
    }
    g->n_nodes = live;
    for (int i = 0; i < g->n_values; i++) {
        g->values[i].producer = -1;
        g->values[i].last_use = -1;
    }
    for (int i = 0; i < g->n_nodes; i++) {
        hs__node *n = &g->nodes[i];
        for (int j = 0; j < n->n_in; j++)
            if (n->in[j] >= 0)
                g->values[n->in[j]].last_use = i;
        for (int j = 0; j < n->n_out; j++)
            g->values[n->out[j]].producer = i;
        g->total_flops += n->flops;
        g->total_params += n->n_params;
    }

    g->outputs = malloc((L->gp->n_output ? L->gp->n_output : 1) * sizeof *g->outputs);
    g->inputs = malloc(((size_t)g->n_values + 1) * sizeof *g->inputs);
    if (!g->outputs || !g->inputs)
        return fail(L, HS_ERR_NOMEM, "out of memory");
    if (L->gp->n_output == 0)
        return fail(L, HS_ERR_INVALID, "graph has no outputs");
    for (size_t i = 0; i < L->gp->n_output; i++) {
        int id = map_get(&L->names, g, L->gp->output[i]->name);
        if (id < 0)
            return fail(L, HS_ERR_NOTFOUND, "graph output '%s' is not produced by any node",
                        L->gp->output[i]->name);
        g->values[id].is_output = true;
        g->values[id].last_use = g->n_nodes;
        g->outputs[g->n_outputs++] = id;
    }
    for (int i = 0; i < g->n_values; i++) {
        hs__value *v = &g->values[i];
        if (v->is_input)
            g->inputs[g->n_inputs++] = i;
        if (v->owns_data && v->last_use < 0) { /* folded away, e.g. a BatchNorm's statistics */
            free(v->t.data);
            v->t.data = NULL;
            v->owns_data = false;
        }
    }
    return HS_OK;
}

static int opset_of(const Onnx__ModelProto *m)
{
    for (size_t i = 0; i < m->n_opset_import; i++) {
        const char *d = m->opset_import[i]->domain;
        if (!d || !*d || strcmp(d, "ai.onnx") == 0)
            return (int)m->opset_import[i]->version;
    }
    return -1;
}

hs_status hs__graph_finish_cuts(hs_graph *g);

/* Frees a tensor's values in the unpacked model once the graph holds its own copy: the model's
 * weights are then held once, not twice, while the rest is loaded. protobuf-c frees what is
 * left with the model. */
static void release_payload(Onnx__TensorProto *tp)
{
#define RELEASE(data, n) (free(data), (data) = NULL, (n) = 0)
    RELEASE(tp->raw_data.data, tp->raw_data.len);
    RELEASE(tp->float_data, tp->n_float_data);
    RELEASE(tp->double_data, tp->n_double_data);
    RELEASE(tp->int64_data, tp->n_int64_data);
    RELEASE(tp->int32_data, tp->n_int32_data);
#undef RELEASE
}

/* Loads the graph of m, releasing initializer payloads from m as it goes. */
static hs_status load_model(loader *L, Onnx__ModelProto *m)
{
    hs_status st;
    hs_graph *g = L->g;
    if (!m->graph)
        return fail(L, HS_ERR_PARSE, "model has no graph");
    L->gp = m->graph;
    g->opset = opset_of(m);
    if (g->opset < 0)
        return fail(L, HS_ERR_INVALID, "model imports no default-domain opset");
    if (g->opset < HS_OPSET_MIN || g->opset > HS_OPSET_MAX)
        return fail(L, HS_ERR_UNSUPPORTED, "opset %d is not supported (%d to %d are)",
                    g->opset, HS_OPSET_MIN, HS_OPSET_MAX);
    if (m->graph->n_sparse_initializer)
        return fail(L, HS_ERR_UNSUPPORTED, "sparse initializers are not supported");

    for (size_t i = 0; i < L->gp->n_initializer; i++) {
        Onnx__TensorProto *tp = L->gp->initializer[i];
        if (!tp->name || !*tp->name)
            return fail(L, HS_ERR_PARSE, "initializer %zu has no name", i);
        if ((st = add_constant(L, tp->name, tp, "initializer")) != HS_OK)
            return st;
        release_payload(tp);
    }
    bool first = true;
    for (size_t i = 0; i < L->gp->n_input; i++) {
        const Onnx__ValueInfoProto *vi = L->gp->input[i];
        if (!vi->name || !*vi->name)
            return fail(L, HS_ERR_PARSE, "graph input %zu has no name", i);
        if (map_get(&L->names, g, vi->name) >= 0)
            continue; /* an initializer also listed as input (IR < 4) */
        if ((st = add_input(L, vi, first)) != HS_OK)
            return st;
        first = false;
    }
    if (L->opts)
        for (int i = 0; i < L->opts->n_inputs; i++) {
            const char *b = L->opts->inputs[i].name;
            if (b && map_get(&L->names, g, b) < 0)
                return fail(L, HS_ERR_NOTFOUND, "no graph input named '%s'", b);
        }

    size_t n = L->gp->n_node;
    L->protos = calloc(n ? n : 1, sizeof *L->protos);
    L->extra_params = calloc(n ? n : 1, sizeof *L->extra_params);
    L->dead = calloc(n ? n : 1, sizeof *L->dead);
    if (!L->protos || !L->extra_params || !L->dead)
        return fail(L, HS_ERR_NOMEM, "out of memory");
    for (size_t i = 0; i < n; i++) {
        int before = g->n_nodes;
        if ((st = add_node(L, L->gp->node[i], (int)i)) != HS_OK)
            return st;
        if (g->n_nodes > before)
            L->protos[before] = L->gp->node[i];
    }
    if (!(L->opts && L->opts->keep_batchnorm) && (st = fold_batchnorms(L)) != HS_OK)
        return st;
    if ((st = prepare_all(L)) != HS_OK)
        return st;
    if ((st = fuse_activations(L)) != HS_OK)
        return st;
    if ((st = finish(L)) != HS_OK)
        return st;
    if ((st = hs__graph_finish_cuts(g)) != HS_OK)
        return fail(L, st, "out of memory");
    return HS_OK;
}

/* Loads the graph of m (NULL: size bytes that did not decode) and frees m. */
static hs_status load_unpacked(Onnx__ModelProto *m, size_t size, const char *name,
                               const hs_load_options *opts, hs_graph **out, hs_error *err)
{
    hs_graph *g = calloc(1, sizeof *g);
    if (!g || !(g->name = strdup(name))) {
        free(g);
        if (m)
            onnx__model_proto__free_unpacked(m, NULL);
        return hs__set_error(err, HS_ERR_NOMEM, "%s: out of memory", name);
    }
    loader L = {.g = g, .opts = opts, .err = err};
    hs_status st;
    if (!m)
        st = fail(&L, HS_ERR_PARSE, "not a valid ONNX model (%s)",
                  size ? "protobuf decoding failed: corrupt or truncated file" : "empty file");
    else
        st = load_model(&L, m);
    if (m)
        onnx__model_proto__free_unpacked(m, NULL);
    free(L.names.slots);
    free(L.protos);
    free(L.extra_params);
    free(L.dead);
    if (st != HS_OK) {
        hs_graph_free(g); /* which gives the memory back */
        return st;
    }
    give_back_memory(); /* loading freed as much as the weights take */
    *out = g;
    return HS_OK;
}

hs_status hs_graph_load_onnx_buffer(const void *data, size_t size, const char *name,
                                    const hs_load_options *opts, hs_graph **out, hs_error *err)
{
    assert(out && (data || !size));
    *out = NULL;
    Onnx__ModelProto *m = size ? onnx__model_proto__unpack(NULL, size, data) : NULL;
    return load_unpacked(m, size, name ? name : "<buffer>", opts, out, err);
}

/* The file's size and modification time, as the graph's weights were loaded from it. */
static void record_file(hs_graph *g, const struct stat *sb)
{
    g->reload_size = (int64_t)sb->st_size;
    g->reload_mtime_ns = (int64_t)sb->st_mtim.tv_sec * 1000000000 + sb->st_mtim.tv_nsec;
}

hs_status hs_graph_load_onnx(const char *path, const hs_load_options *opts, hs_graph **out,
                             hs_error *err)
{
    assert(path && out);
    *out = NULL;
    int fd = open(path, O_RDONLY | O_CLOEXEC | O_NONBLOCK); /* a FIFO: no wait for a writer */
    if (fd < 0)
        return hs__set_error(err, HS_ERR_IO, "%s: cannot open: %s", path, strerror(errno));
    /* Mapped, not read: the file's pages are the page cache's, and are let go as soon as the
     * model is decoded. (A file truncated by someone else while it is decoded is a SIGBUS, as
     * for any mapped file; reading it whole cost the model's size again in memory.) */
    struct stat sb;
    const char *why = NULL;
    void *map = NULL;
    size_t size = 0;
    if (fstat(fd, &sb) != 0)
        why = strerror(errno);
    else if (!S_ISREG(sb.st_mode))
        why = S_ISDIR(sb.st_mode) ? strerror(EISDIR) : "not a regular file";
    else if ((size = (size_t)sb.st_size) > 0 &&
             (map = mmap(NULL, size, PROT_READ, MAP_PRIVATE, fd, 0)) == MAP_FAILED)
        why = strerror(errno);
    close(fd);
    if (why)
        return hs__set_error(err, HS_ERR_IO, "%s: cannot read: %s", path, why);
    Onnx__ModelProto *m = size ? onnx__model_proto__unpack(NULL, size, map) : NULL;
    if (map)
        munmap(map, size);
    hs_status st = load_unpacked(m, size, path, opts, out, err);
    if (st == HS_OK && !(opts && opts->n_inputs > 0)) { /* a load that can be repeated */
        hs_graph *g = *out;
        record_file(g, &sb);
        g->keep_batchnorm = opts && opts->keep_batchnorm;
        g->reload_path = strdup(path); /* NULL when out of memory: weights then all stay */
    }
    return st;
}

/* ---- weights per node range ------------------------------------------------------------ */

int64_t hs_graph_weight_bytes_held(const hs_graph *g)
{
    int64_t bytes = 0;
    for (int i = 0; i < g->n_values; i++)
        if (g->values[i].is_const && g->values[i].t.data)
            bytes += (int64_t)hs_tensor_nbytes(&g->values[i].t);
    return bytes;
}

/* Which constants the nodes marked in `need` read: read[0..n_values). NULL when out of memory. */
static bool *values_read(const hs_graph *g, const bool *need)
{
    bool *read = calloc((size_t)g->n_values + 1, sizeof *read);
    for (int i = 0; read && i < g->n_nodes; i++)
        for (int j = 0; need[i] && j < g->nodes[i].n_in; j++)
            if (g->nodes[i].in[j] >= 0)
                read[g->nodes[i].in[j]] = true;
    return read;
}

static hs_status not_reloadable(const hs_graph *g, hs_error *err)
{
    return hs__set_error(err, HS_ERR_INVALID, "%s: weights cannot be let go: the model was "
                         "not loaded from a file, or was loaded with input bindings", g->name);
}

hs_status hs_graph_let_go_weights(hs_graph *g, const bool *need, bool *missing, hs_error *err)
{
    assert(g && need && missing);
    *missing = false;
    if (!g->reload_path)
        return not_reloadable(g, err);
    bool *read = values_read(g, need);
    if (!read)
        return hs__set_error(err, HS_ERR_NOMEM, "%s: out of memory", g->name);
    bool freed = false; /* first, so that loading back does not peak above the file */
    for (int i = 0; i < g->n_values; i++) {
        hs__value *v = &g->values[i];
        *missing = *missing || (read[i] && v->let_go);
        if (!read[i] && v->is_const && v->owns_data && !v->is_output && v->last_use >= 0 &&
            hs_tensor_nbytes(&v->t) >= HS_HOLD_MIN_BYTES) {
            free(v->t.data);
            v->t.data = NULL;
            v->owns_data = false;
            v->let_go = freed = true;
        }
    }
    free(read);
    if (freed)
        give_back_memory();
    return HS_OK;
}

hs_status hs_graph_load_again(const hs_graph *g, hs_graph **fresh, hs_error *err)
{
    assert(g && fresh);
    *fresh = NULL;
    if (!g->reload_path)
        return not_reloadable(g, err);
    hs_load_options opts = {.keep_batchnorm = g->keep_batchnorm};
    return hs_graph_load_onnx(g->reload_path, &opts, fresh, err);
}

/* Moves into g the data of the let-go constants that the marked nodes read, after checking
 * that fresh came from the file as g was loaded from it and is the same graph, value by
 * value. */
hs_status hs_graph_take_weights(hs_graph *g, hs_graph *fresh, const bool *need, hs_error *err)
{
    assert(g && fresh && need);
    if (fresh->reload_size != g->reload_size || fresh->reload_mtime_ns != g->reload_mtime_ns) {
        hs_graph_free(fresh); /* checked on the file as read, not before opening it */
        return hs__set_error(err, HS_ERR_CHANGED, "%s: cannot load weights back: the file has "
                             "changed since the model was loaded", g->reload_path);
    }
    bool *load = values_read(g, need);
    if (!load) {
        hs_graph_free(fresh);
        return hs__set_error(err, HS_ERR_NOMEM, "%s: out of memory", g->name);
    }
    for (int i = 0; i < g->n_values; i++)
        load[i] = load[i] && g->values[i].let_go;
    bool same = fresh->n_values == g->n_values && fresh->n_nodes == g->n_nodes;
    for (int i = 0; i < g->n_values && same; i++) {
        const hs__value *v = &g->values[i], *f = &fresh->values[i];
        same = strcmp(v->name, f->name) == 0 && v->is_const == f->is_const &&
               v->t.dtype == f->t.dtype && v->t.ndim == f->t.ndim &&
               memcmp(v->t.shape, f->t.shape, sizeof v->t.shape) == 0 &&
               (!load[i] || (f->owns_data && f->t.data));
    }
    if (same)
        for (int i = 0; i < g->n_values; i++) {
            if (!load[i])
                continue;
            hs__value *v = &g->values[i], *f = &fresh->values[i];
            v->t.data = f->t.data;
            v->owns_data = true;
            v->let_go = false;
            f->t.data = NULL;
            f->owns_data = false;
        }
    free(load);
    hs_graph_free(fresh);
    return same ? HS_OK
                : hs__set_error(err, HS_ERR_INVALID, "%s: cannot load weights back: the file "
                                "no longer gives the same graph", g->reload_path);
}

hs_status hs_graph_hold_weights(hs_graph *g, const bool *need, hs_error *err)
{
    assert(g && need);
    bool missing;
    hs_graph *fresh;
    hs_status st = hs_graph_let_go_weights(g, need, &missing, err);
    if (st != HS_OK || !missing)
        return st;
    if ((st = hs_graph_load_again(g, &fresh, err)) != HS_OK)
        return st;
    return hs_graph_take_weights(g, fresh, need, err);
}

hs_status hs_graph_file_unchanged(hs_graph *g, hs_error *err)
{
    struct stat sb;
    if (!g->reload_path)
        return hs__set_error(err, HS_ERR_INVALID, "%s: not loaded from a file", g->name);
    if (stat(g->reload_path, &sb) != 0)
        return hs__set_error(err, HS_ERR_IO, "%s: %s", g->reload_path, strerror(errno));
    record_file(g, &sb);
    return HS_OK;
}
