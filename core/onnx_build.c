/* ONNX model builder: see onnx_build.h. Every allocation goes on one list freed at the end. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "onnx_build.h"

struct hs__mb {
    Onnx__ModelProto model;
    Onnx__GraphProto graph;
    void **allocs;
    size_t n_allocs, cap_allocs;
};

static void *mb_alloc(hs__mb *mb, size_t size)
{
    void *p = calloc(1, size ? size : 1);
    assert(p && "hs__mb: out of memory");
    if (mb->n_allocs == mb->cap_allocs) {
        mb->cap_allocs = mb->cap_allocs ? 2 * mb->cap_allocs : 64;
        mb->allocs = realloc(mb->allocs, mb->cap_allocs * sizeof *mb->allocs);
        assert(mb->allocs && "hs__mb: out of memory");
    }
    mb->allocs[mb->n_allocs++] = p;
    return p;
}

static char *mb_strdup(hs__mb *mb, const char *s)
{
    size_t n = strlen(s) + 1;
    char *d = mb_alloc(mb, n);
    memcpy(d, s, n);
    return d;
}

/* Appends item to a protobuf-c repeated pointer field, growing it by doubling. */
static void mb_push(hs__mb *mb, size_t *n, void ***items, void *item)
{
    size_t count = *n;
    if ((count & (count - 1)) == 0) { /* 0, 1, 2, 4, ...: grow */
        void **grown = mb_alloc(mb, (count ? 2 * count : 1) * sizeof *grown);
        if (count)
            memcpy(grown, *items, count * sizeof *grown);
        *items = grown;
    }
    (*items)[count] = item;
    *n = count + 1;
}
#define MB_PUSH(mb, n, items, item) mb_push(mb, &(n), (void ***)&(items), item)

hs__mb *hs__mb_new(int opset)
{
    hs__mb *mb = calloc(1, sizeof *mb);
    assert(mb);
    onnx__model_proto__init(&mb->model);
    onnx__graph_proto__init(&mb->graph);
    mb->model.has_ir_version = 1;
    mb->model.ir_version = 8;
    mb->model.producer_name = mb_strdup(mb, "hotsplit");
    mb->model.graph = &mb->graph;
    mb->graph.name = mb_strdup(mb, "hotsplit");
    Onnx__OperatorSetIdProto *op = mb_alloc(mb, sizeof *op);
    onnx__operator_set_id_proto__init(op);
    op->domain = mb_strdup(mb, "");
    op->has_version = 1;
    op->version = opset;
    MB_PUSH(mb, mb->model.n_opset_import, mb->model.opset_import, op);
    return mb;
}

void hs__mb_free(hs__mb *mb)
{
    if (!mb)
        return;
    for (size_t i = 0; i < mb->n_allocs; i++)
        free(mb->allocs[i]);
    free(mb->allocs);
    free(mb);
}

Onnx__ModelProto *hs__mb_model(hs__mb *mb) { return &mb->model; }

static int onnx_type(hs_dtype dtype)
{
    return dtype == HS_F32 ? ONNX__TENSOR_PROTO__DATA_TYPE__FLOAT
                           : ONNX__TENSOR_PROTO__DATA_TYPE__INT64;
}

static Onnx__ValueInfoProto *value_info(hs__mb *mb, const char *name, hs_dtype dtype, int ndim,
                                        const int64_t *shape)
{
    Onnx__ValueInfoProto *vi = mb_alloc(mb, sizeof *vi);
    onnx__value_info_proto__init(vi);
    vi->name = mb_strdup(mb, name);
    Onnx__TypeProto *tp = mb_alloc(mb, sizeof *tp);
    onnx__type_proto__init(tp);
    Onnx__TypeProto__Tensor *tt = mb_alloc(mb, sizeof *tt);
    onnx__type_proto__tensor__init(tt);
    tt->has_elem_type = 1;
    tt->elem_type = onnx_type(dtype);
    if (shape) {
        Onnx__TensorShapeProto *sp = mb_alloc(mb, sizeof *sp);
        onnx__tensor_shape_proto__init(sp);
        for (int d = 0; d < ndim; d++) {
            Onnx__TensorShapeProto__Dimension *dim = mb_alloc(mb, sizeof *dim);
            onnx__tensor_shape_proto__dimension__init(dim);
            dim->value_case = ONNX__TENSOR_SHAPE_PROTO__DIMENSION__VALUE_DIM_VALUE;
            dim->dim_value = shape[d];
            MB_PUSH(mb, sp->n_dim, sp->dim, dim);
        }
        tt->shape = sp;
    }
    tp->value_case = ONNX__TYPE_PROTO__VALUE_TENSOR_TYPE;
    tp->tensor_type = tt;
    vi->type = tp;
    return vi;
}

void hs__mb_input(hs__mb *mb, const char *name, hs_dtype dtype, int ndim, const int64_t *shape)
{
    MB_PUSH(mb, mb->graph.n_input, mb->graph.input, value_info(mb, name, dtype, ndim, shape));
}

void hs__mb_output(hs__mb *mb, const char *name, hs_dtype dtype, int ndim,
                   const int64_t *shape)
{
    MB_PUSH(mb, mb->graph.n_output, mb->graph.output, value_info(mb, name, dtype, ndim, shape));
}

void hs__mb_initializer(hs__mb *mb, const char *name, hs_dtype dtype, int ndim,
                        const int64_t *shape, const void *data)
{
    Onnx__TensorProto *t = mb_alloc(mb, sizeof *t);
    onnx__tensor_proto__init(t);
    t->name = mb_strdup(mb, name);
    t->has_data_type = 1;
    t->data_type = onnx_type(dtype);
    t->n_dims = (size_t)ndim;
    t->dims = mb_alloc(mb, (size_t)ndim * sizeof *t->dims);
    size_t count = 1;
    for (int d = 0; d < ndim; d++) {
        t->dims[d] = shape[d];
        count *= (size_t)shape[d];
    }
    size_t bytes = count * hs_dtype_size(dtype);
    t->has_raw_data = 1;
    t->raw_data.len = bytes;
    t->raw_data.data = mb_alloc(mb, bytes);
    memcpy(t->raw_data.data, data, bytes);
    MB_PUSH(mb, mb->graph.n_initializer, mb->graph.initializer, t);
}

Onnx__NodeProto *hs__mb_node(hs__mb *mb, const char *op_type, const char *name,
                             const char *const *inputs, const char *const *outputs)
{
    Onnx__NodeProto *n = mb_alloc(mb, sizeof *n);
    onnx__node_proto__init(n);
    n->op_type = mb_strdup(mb, op_type);
    n->name = mb_strdup(mb, name);
    n->domain = mb_strdup(mb, "");
    for (int i = 0; inputs && inputs[i]; i++)
        MB_PUSH(mb, n->n_input, n->input, mb_strdup(mb, inputs[i]));
    for (int i = 0; outputs && outputs[i]; i++)
        MB_PUSH(mb, n->n_output, n->output, mb_strdup(mb, outputs[i]));
    MB_PUSH(mb, mb->graph.n_node, mb->graph.node, n);
    return n;
}

static Onnx__AttributeProto *attr(hs__mb *mb, Onnx__NodeProto *node, const char *name,
                                  Onnx__AttributeProto__AttributeType type)
{
    Onnx__AttributeProto *a = mb_alloc(mb, sizeof *a);
    onnx__attribute_proto__init(a);
    a->name = mb_strdup(mb, name);
    a->has_type = 1;
    a->type = type;
    MB_PUSH(mb, node->n_attribute, node->attribute, a);
    return a;
}

void hs__mb_attr_int(hs__mb *mb, Onnx__NodeProto *node, const char *name, int64_t v)
{
    Onnx__AttributeProto *a = attr(mb, node, name, ONNX__ATTRIBUTE_PROTO__ATTRIBUTE_TYPE__INT);
    a->has_i = 1;
    a->i = v;
}

void hs__mb_attr_float(hs__mb *mb, Onnx__NodeProto *node, const char *name, float v)
{
    Onnx__AttributeProto *a =
        attr(mb, node, name, ONNX__ATTRIBUTE_PROTO__ATTRIBUTE_TYPE__FLOAT);
    a->has_f = 1;
    a->f = v;
}

void hs__mb_attr_ints(hs__mb *mb, Onnx__NodeProto *node, const char *name, const int64_t *v,
                      int n)
{
    Onnx__AttributeProto *a = attr(mb, node, name, ONNX__ATTRIBUTE_PROTO__ATTRIBUTE_TYPE__INTS);
    a->n_ints = (size_t)n;
    a->ints = mb_alloc(mb, (size_t)n * sizeof *a->ints);
    memcpy(a->ints, v, (size_t)n * sizeof *a->ints);
}

void hs__mb_attr_string(hs__mb *mb, Onnx__NodeProto *node, const char *name, const char *v)
{
    Onnx__AttributeProto *a =
        attr(mb, node, name, ONNX__ATTRIBUTE_PROTO__ATTRIBUTE_TYPE__STRING);
    a->has_s = 1;
    a->s.len = strlen(v);
    a->s.data = (uint8_t *)mb_strdup(mb, v);
}

size_t hs__mb_pack(hs__mb *mb, uint8_t **out)
{
    size_t size = onnx__model_proto__get_packed_size(&mb->model);
    *out = malloc(size ? size : 1);
    assert(*out);
    onnx__model_proto__pack(&mb->model, *out);
    return size;
}

typedef struct file_buffer {
    ProtobufCBuffer base;
    FILE *f;
    bool failed;
} file_buffer;

static void file_append(ProtobufCBuffer *buffer, size_t len, const uint8_t *data)
{
    file_buffer *fb = (file_buffer *)buffer;
    if (!fb->failed && fwrite(data, 1, len, fb->f) != len)
        fb->failed = true;
}

hs_status hs__mb_save(hs__mb *mb, const char *path, hs_error *err)
{
    FILE *f = fopen(path, "wb");
    if (!f)
        return hs__set_error(err, HS_ERR_IO, "%s: cannot create: %s", path, strerror(errno));
    file_buffer fb = {.base = {.append = file_append}, .f = f};
    onnx__model_proto__pack_to_buffer(&mb->model, &fb.base);
    bool failed = fb.failed;
    if (fclose(f) != 0)
        failed = true;
    if (failed)
        return hs__set_error(err, HS_ERR_IO, "%s: write failed: %s", path, strerror(errno));
    return HS_OK;
}
