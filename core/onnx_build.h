/*
 * A small builder for ONNX models, used by the model zoo and by tests that need a model of
 * one node. Everything the builder allocates is freed by hs__mb_free(); strings and tensor
 * data passed in are copied.
 */
#ifndef HOTSPLIT_ONNX_BUILD_H
#define HOTSPLIT_ONNX_BUILD_H

#include "graph_impl.h"

typedef struct hs__mb hs__mb;

/* A model with one graph, default-domain opset `opset`. Caller owns the result. Asserts on
 * out-of-memory (a builder is a tool for tests and the zoo, not for untrusted input). */
hs__mb *hs__mb_new(int opset);
void hs__mb_free(hs__mb *mb);

/* A graph input or output with a float32/int64 tensor type; shape NULL leaves it unknown. */
void hs__mb_input(hs__mb *mb, const char *name, hs_dtype dtype, int ndim, const int64_t *shape);
void hs__mb_output(hs__mb *mb, const char *name, hs_dtype dtype, int ndim,
                   const int64_t *shape);
/* An initializer, its bytes copied into raw_data. */
void hs__mb_initializer(hs__mb *mb, const char *name, hs_dtype dtype, int ndim,
                        const int64_t *shape, const void *data);
/* A node; inputs/outputs are NULL-terminated lists ("" marks an omitted optional input).
 * The returned node is owned by the builder; add attributes to it with the calls below. */
Onnx__NodeProto *hs__mb_node(hs__mb *mb, const char *op_type, const char *name,
                             const char *const *inputs, const char *const *outputs);
void hs__mb_attr_int(hs__mb *mb, Onnx__NodeProto *node, const char *name, int64_t v);
void hs__mb_attr_float(hs__mb *mb, Onnx__NodeProto *node, const char *name, float v);
void hs__mb_attr_ints(hs__mb *mb, Onnx__NodeProto *node, const char *name, const int64_t *v,
                      int n);
void hs__mb_attr_string(hs__mb *mb, Onnx__NodeProto *node, const char *name, const char *v);

/* The model itself, for callers that need to adjust a field the builder does not cover. */
Onnx__ModelProto *hs__mb_model(hs__mb *mb);
/* Serializes into a malloc'd buffer (caller frees) and returns its size. */
size_t hs__mb_pack(hs__mb *mb, uint8_t **out);
/* Writes the serialized model to path, streaming (no second copy of the weights). */
hs_status hs__mb_save(hs__mb *mb, const char *path, hs_error *err);

#endif
