/*
 * hotsplit core: load an ONNX model, read what every node and every cut costs, and run any
 * contiguous range of nodes on tensors handed in by the caller.
 *
 * The model is a list of nodes in topological order. A *cut* after node k is the set of
 * tensors produced at or before k (graph inputs count as produced before node 0) and consumed
 * after k (graph outputs count as consumed after the last node). Running nodes [first, last)
 * takes the tensors of the cut before `first` and yields the tensors of the cut before `last`,
 * so chaining ranges [0,k) then [k,n) gives exactly what [0,n) gives: same kernels, same order,
 * bit-identical results.
 *
 * Errors: functions return HS_OK (0) or a negative hs_status. Where a function takes an
 * `hs_error *err`, a failure also writes a one-line detail naming the file, node and reason;
 * `err` may be NULL. Misuse (NULL where a value is required, an index out of range) asserts.
 *
 * Threads: an hs_graph is immutable after loading and may be shared by threads. An hs_exec
 * is used by one thread at a time.
 */
#ifndef HOTSPLIT_CORE_H
#define HOTSPLIT_CORE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/* ---- status and errors ------------------------------------------------------------------- */

typedef enum hs_status {
    HS_OK = 0,
    HS_ERR_IO = -1,          /* a file could not be opened, read or written */
    HS_ERR_PARSE = -2,       /* malformed or truncated input (protobuf, raw tensor, ...) */
    HS_ERR_UNSUPPORTED = -3, /* an operator, attribute, data type or opset hotsplit lacks */
    HS_ERR_SHAPE = -4,       /* shapes that do not agree, or a shape that cannot be inferred */
    HS_ERR_NOMEM = -5,       /* an allocation failed */
    HS_ERR_INVALID = -6,     /* a well-formed but inconsistent model or argument */
    HS_ERR_NOTFOUND = -7,    /* a named tensor, input or initializer that does not exist */
    HS_ERR_INFEASIBLE = -8,  /* no plan satisfies the constraints */
    HS_ERR_CHANGED = -9,     /* a file changed since it was loaded */
} hs_status;

#define HS_ERROR_MSG_MAX 512

/* Detail of the last failure of a call that took this struct. */
typedef struct hs_error {
    hs_status code;
    char msg[HS_ERROR_MSG_MAX];
} hs_error;

/* Static string for a status code; never NULL. */
const char *hs_strerror(hs_status code);

/* Fills err (when not NULL) with code and a printf-style one-line detail; returns code. For
 * code built on hotsplit: its own modules report errors through it too. */
hs_status hs_error_set(hs_error *err, hs_status code, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* ---- tensors ----------------------------------------------------------------------------- */

#define HS_MAX_DIMS 8

typedef enum hs_dtype {
    HS_F32 = 0,
    HS_I64 = 1,
    HS_DTYPE_COUNT
} hs_dtype;

/* A dense row-major tensor view. hs_tensor never owns `data`: whoever filled it in says how
 * long the memory stays valid. ndim 0 is a scalar with one element. */
typedef struct hs_tensor {
    hs_dtype dtype;
    int ndim;
    int64_t shape[HS_MAX_DIMS];
    void *data;
} hs_tensor;

/* Elements of a tensor of this shape (1 for a scalar). */
int64_t hs_tensor_numel(const hs_tensor *t);
/* Bytes of one element of a dtype. */
size_t hs_dtype_size(hs_dtype dtype);
/* Bytes of the tensor's data. */
size_t hs_tensor_nbytes(const hs_tensor *t);
/* True when a and b have the same dtype and shape (data is not compared). */
bool hs_tensor_same_desc(const hs_tensor *a, const hs_tensor *b);
/* "1x3x224x224" into buf (always NUL-terminated); returns buf. */
char *hs_shape_str(const hs_tensor *t, char *buf, size_t size);
/* Parses "1x3x224x224" into t->ndim/t->shape. Returns HS_ERR_INVALID on a malformed string. */
hs_status hs_shape_parse(const char *text, hs_tensor *t);

/* ---- loading a model --------------------------------------------------------------------- */

typedef struct hs_graph hs_graph;

/* Binds one graph input at load time: its shape (overriding the model's declared one, which is
 * needed where the model leaves a dimension symbolic), and optionally its value, which makes it
 * a constant the loader can fold (for example a Reshape shape passed as a graph input). */
typedef struct hs_input_binding {
    const char *name;  /* graph input name; NULL binds the first non-constant input */
    hs_tensor tensor;  /* dtype, ndim, shape; data NULL unless the value is fixed */
} hs_input_binding;

typedef struct hs_load_options {
    const hs_input_binding *inputs;
    int n_inputs;
    bool keep_batchnorm; /* false (default): BatchNormalization after Conv folds into the Conv */
} hs_load_options;

/* Loads an ONNX file: parses it, infers static shapes, folds constant subgraphs and
 * BatchNormalization-after-Conv, and checks every operator. `opts` may be NULL.
 * On success *out owns the model; free it with hs_graph_free(). On failure *out is NULL and
 * err names the file, node and reason. */
hs_status hs_graph_load_onnx(const char *path, const hs_load_options *opts, hs_graph **out,
                             hs_error *err);
/* Same, from a buffer holding a serialized ModelProto. `name` is used in error messages. */
hs_status hs_graph_load_onnx_buffer(const void *data, size_t size, const char *name,
                                    const hs_load_options *opts, hs_graph **out, hs_error *err);
/* Frees a graph; NULL is fine. No hs_exec made from it may be used afterwards. */
void hs_graph_free(hs_graph *g);

/* Weights per node range: a process that runs some of a model's nodes need not hold the
 * weights of the others. Keeps the constants that the nodes marked in need[0..count) read,
 * lets the others go (those of HS_HOLD_MIN_BYTES or more: small ones always stay), and loads
 * back, from the file the graph was loaded from, those that marked nodes read and were let
 * go (after letting go, so that it peaks at about twice the file). They are loaded and
 * folded by the same code as the first time, so outputs stay bit-identical. Fails, without
 * loading anything back, if the graph did not come from hs_graph_load_onnx without input
 * bindings (HS_ERR_INVALID, and nothing is let go), if the file has changed since, by size or
 * modification time (HS_ERR_CHANGED), or if it cannot be loaded or no longer gives the same
 * graph. While a constant is let go, hs_exec_new and hs_exec_new_part refuse the ranges that
 * read it, and an executor made before must not run them. Not thread-safe against runs of
 * the graph's executors. */
#define HS_HOLD_MIN_BYTES 4096
hs_status hs_graph_hold_weights(hs_graph *g, const bool *need, hs_error *err);
/* The same in three steps, for a caller that loads in another thread while it runs the
 * graph's executors on the weights it keeps:
 * - hs_graph_let_go_weights lets go as hs_graph_hold_weights does, and sets *missing when a
 *   marked node reads a weight that was let go (then hs_graph_load_again and take are needed);
 * - hs_graph_load_again loads g's file into a fresh graph. It reads only what never changes in
 *   g (its file's path and load options), so it may run in any thread while g is used (not
 *   freed);
 * - hs_graph_take_weights moves into g, from fresh, the let-go weights that the marked nodes
 *   read, with the checks of hs_graph_hold_weights (HS_ERR_CHANGED when the file was not the
 *   one g was loaded from). It frees fresh. Not thread-safe against runs of g's executors. */
hs_status hs_graph_let_go_weights(hs_graph *g, const bool *need, bool *missing, hs_error *err);
hs_status hs_graph_load_again(const hs_graph *g, hs_graph **fresh, hs_error *err);
hs_status hs_graph_take_weights(hs_graph *g, hs_graph *fresh, const bool *need, hs_error *err);
/* A caller that has checked the file's content (hs_model_digest, say) after hold_weights
 * failed with HS_ERR_CHANGED vouches for it: its present size and modification time become
 * the graph's, and weights are loaded back from it again. */
hs_status hs_graph_file_unchanged(hs_graph *g, hs_error *err);
/* Bytes of constant data the graph holds now. */
int64_t hs_graph_weight_bytes_held(const hs_graph *g);

/* ---- what the model costs ---------------------------------------------------------------- */

typedef struct hs_node_info {
    const char *name;       /* owned by the graph */
    const char *op;         /* ONNX op type, owned by the graph; "Conv" also for folded BN */
    const char *fused;      /* activation fused into it ("Relu", "Clip"), or NULL */
    hs_tensor output;       /* dtype and shape of the first output; data NULL */
    int n_outputs;
    double flops;           /* floating-point operations (a multiply-add counts as 2) */
    int64_t params;         /* trainable parameters (BatchNorm mean/var are not) */
    int64_t weight_bytes;   /* bytes of constant inputs as stored for execution */
    int64_t input_bytes;    /* bytes of the non-constant inputs it reads */
    int64_t output_bytes;   /* bytes of all outputs */
    int64_t live_bytes;     /* activation bytes live while it runs in a whole-graph run */
    int groups;             /* Conv: groups (= input channels for depthwise); else 1 */
    int64_t cut_bytes;      /* bytes of the cut after this node */
    int cut_tensors;        /* tensors crossing the cut after this node */
} hs_node_info;

int hs_graph_node_count(const hs_graph *g);
/* Fills *info for node i (0 <= i < count). Pointers stay valid while g lives. */
void hs_graph_node_info(const hs_graph *g, int i, hs_node_info *info);
/* Totals over the graph: parameters (torchvision's convention) and FLOPs. */
int64_t hs_graph_params(const hs_graph *g);
double hs_graph_flops(const hs_graph *g);
/* Bytes of the cut after node k, -1 <= k < count (k = -1: the graph inputs, k = count-1: the
 * graph outputs). */
int64_t hs_graph_cut_bytes(const hs_graph *g, int k);
/* The model's file name as given to the loader; owned by the graph. */
const char *hs_graph_name(const hs_graph *g);

/* The graph's runtime inputs and outputs (constants bound at load time are not inputs). */
int hs_graph_input_count(const hs_graph *g);
int hs_graph_output_count(const hs_graph *g);
/* Name, dtype and shape of input/output i; data NULL. Strings owned by the graph. */
const char *hs_graph_input(const hs_graph *g, int i, hs_tensor *desc);
const char *hs_graph_output(const hs_graph *g, int i, hs_tensor *desc);

/* ---- running a node range ---------------------------------------------------------------- */

typedef struct hs_exec hs_exec;

/* Prepares to run nodes [first, last) of g (0 <= first < last <= count): plans buffers so that
 * each is reused once its last consumer in the range has run. *out owns the arena; free it with
 * hs_exec_free(). g must outlive it. */
hs_status hs_exec_new(const hs_graph *g, int first, int last, hs_exec **out, hs_error *err);
void hs_exec_free(hs_exec *x);

/* A part of base: an executor for nodes [first, last) within base's range that runs in base's
 * arena and workspace, so that it costs no activation memory (a pipeline stage handed a
 * request at a node inside its range, or a sender that may stop at any of several nodes).
 * Inputs that base itself would have produced are copied to where base keeps them, unless
 * they are there already: the outputs of a part of base that ended at `first` chain on
 * without a copy. Results are bit-identical to an executor of its own. base must outlive the
 * part, and a run of base or of any of its parts overwrites the others' outputs. */
hs_status hs_exec_new_part(const hs_exec *base, int first, int last, hs_exec **out,
                           hs_error *err);

/* The range's inputs: the cut before `first`. Output i: the cut before `last`. Descriptions
 * as for hs_graph_input(). Order is canonical (by tensor id) and the same for the producing
 * and the consuming range of a cut. */
int hs_exec_input_count(const hs_exec *x);
int hs_exec_output_count(const hs_exec *x);
const char *hs_exec_input(const hs_exec *x, int i, hs_tensor *desc);
const char *hs_exec_output(const hs_exec *x, int i, hs_tensor *desc);
/* Peak bytes of the activation arena this range needs (known before running); 0 for a part,
 * which uses its base's. */
size_t hs_exec_arena_bytes(const hs_exec *x);

/* Runs the range. inputs[i] must match hs_exec_input(i) in dtype and shape (checked: a
 * mismatch is HS_ERR_SHAPE). On success outputs[i] describe the cut after the range; their
 * data points into the arena, or at an input for a tensor that passes through the range, and
 * stays valid until the next hs_exec_run() or hs_exec_free() on x. */
hs_status hs_exec_run(hs_exec *x, const hs_tensor *inputs, int n_inputs, hs_tensor *outputs,
                      int n_outputs, hs_error *err);

/* Per-node timing of the last run, enabled with hs_exec_set_profiling(x, true): seconds spent
 * in node first+i. Returns NULL when profiling is off. Owned by x. */
void hs_exec_set_profiling(hs_exec *x, bool on);
const double *hs_exec_node_seconds(const hs_exec *x);

/* Number of BLAS threads used by kernels (process-wide). */
void hs_set_threads(int n);

/* ---- model zoo --------------------------------------------------------------------------- */

/* Names of the zoo architectures, NULL-terminated; static. */
const char *const *hs_zoo_names(void);
/* Writes architecture `name` as an ONNX file (opset 13, input "input" 1x3x224x224, output
 * "output" 1x1000) with weights drawn deterministically from `seed`. */
hs_status hs_zoo_write(const char *name, const char *path, uint64_t seed, hs_error *err);

#ifdef __cplusplus
}
#endif
#endif
