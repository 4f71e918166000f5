/*
 * The table of operators hotsplit runs. Each lives in its own file in core/ops/ and defines
 * `const hs__op hs__op_<id>`. Adding an operator: write the file, add its id to HS_OPS.
 */
#include <string.h>

#include "graph_impl.h"

#define HS_OPS(X)                                                                             \
    X(conv) X(gemm) X(matmul) X(batchnorm) X(maxpool) X(averagepool) X(globalaveragepool)     \
    X(globalmaxpool) X(lrn) X(add) X(sub) X(mul) X(div) X(relu) X(leakyrelu) X(clip)          \
    X(sigmoid) X(hardsigmoid) X(hardswish) X(tanh) X(identity) X(dropout) X(softmax)         \
    X(concat) X(split) X(slice) X(flatten) X(reshape) X(transpose) X(squeeze) X(unsqueeze)   \
    X(reducemean) X(pad) X(shape) X(gather) X(cast)

#define HS_DECLARE(id) extern const hs__op hs__op_##id;
HS_OPS(HS_DECLARE)
#undef HS_DECLARE

enum {
#define HS_ENUM(id) HS_OP_ID_##id,
    HS_OPS(HS_ENUM)
#undef HS_ENUM
    HS_OP_COUNT
};

static const hs__op *const op_table[] = {
#define HS_ENTRY(id) &hs__op_##id,
    HS_OPS(HS_ENTRY)
#undef HS_ENTRY
    NULL
};
_Static_assert(sizeof op_table / sizeof op_table[0] == HS_OP_COUNT + 1,
               "op_table must list every operator of HS_OPS");

const hs__op *const *hs__op_all(void) { return op_table; }

const hs__op *hs__op_find(const char *op_type)
{
    for (int i = 0; i < HS_OP_COUNT; i++)
        if (op_table[i] && strcmp(op_table[i]->name, op_type) == 0)
            return op_table[i];
    return NULL;
}
