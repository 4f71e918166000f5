/*
 * Runs a contiguous range of nodes. All activation buffers of the range live in one arena
 * planned before the first run: walking the nodes in order, each output gets the first gap
 * that fits (first-fit by offset) and its space is returned once its last consumer in the
 * range has run. The range's outputs (the cut after it) are kept to the end.
 *
 * A part runs a sub-range in its base's arena, at the base's offsets: every tensor of the cut
 * before any node of the base's range is live there at that point of the base's plan, so the
 * part needs no arena of its own. Inputs the base would have produced are copied to where the
 * base keeps them, unless they are there already (the outputs of a part that ended where this
 * one starts).
 */
#include <cblas.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "graph_impl.h"

#define HS_ALIGN 64
#define NO_OFFSET SIZE_MAX

struct hs_exec {
    const hs_graph *g;
    int first, last;
    int *in_ids, n_in;
    int *out_ids, n_out;
    size_t *offset;   /* per value id: arena offset of a tensor produced in the range */
    void **data;      /* per value id: where its data is during a run */
    uint8_t *arena;
    size_t arena_size;
    void *workspace;
    size_t workspace_size;
    bool profiling;
    double *node_seconds;
    const hs_exec *base; /* a part: offset, arena and workspace are base's; NULL: its own */
};

/* ---- arena planning ---------------------------------------------------------------------- */

typedef struct block {
    size_t offset, size;
    int id;
} block;

typedef struct planner {
    block *live; /* sorted by offset */
    int n_live;
    size_t peak;
} planner;

static size_t align_up(size_t n) { return (n + HS_ALIGN - 1) & ~(size_t)(HS_ALIGN - 1); }

static size_t plan_alloc(planner *p, int id, size_t size)
{
    size = align_up(size ? size : 1);
    size_t at = 0;
    int pos = 0;
    for (; pos < p->n_live; pos++) {
        if (p->live[pos].offset >= at + size)
            break;
        size_t end = p->live[pos].offset + p->live[pos].size;
        if (end > at)
            at = end;
    }
    memmove(&p->live[pos + 1], &p->live[pos], (size_t)(p->n_live - pos) * sizeof *p->live);
    p->live[pos] = (block){at, size, id};
    p->n_live++;
    if (at + size > p->peak)
        p->peak = at + size;
    return at;
}

static void plan_free(planner *p, int id)
{
    for (int i = 0; i < p->n_live; i++)
        if (p->live[i].id == id) {
            memmove(&p->live[i], &p->live[i + 1],
                    (size_t)(p->n_live - i - 1) * sizeof *p->live);
            p->n_live--;
            return;
        }
}

static bool in_cut(const hs__value *v, int k)
{
    return !v->is_const && v->last_use >= 0 && v->producer <= k && v->last_use > k;
}

static hs_status plan(hs_exec *x, hs_error *err)
{
    const hs_graph *g = x->g;
    planner p = {.live = malloc(((size_t)g->n_values + 1) * sizeof *p.live)};
    if (!p.live)
        return hs__set_error(err, HS_ERR_NOMEM, "%s: out of memory planning buffers", g->name);
    for (int i = x->first; i < x->last; i++) {
        const hs__node *n = &g->nodes[i];
        for (int j = 0; j < n->n_out; j++)
            x->offset[n->out[j]] =
                plan_alloc(&p, n->out[j], hs_tensor_nbytes(&g->values[n->out[j]].t));
        if (n->workspace > x->workspace_size)
            x->workspace_size = n->workspace;
        /* Buffers whose last reader was this node (or that nobody reads) are free again. */
        for (int j = 0; j < n->n_in + n->n_out; j++) {
            int id = j < n->n_in ? n->in[j] : n->out[j - n->n_in];
            if (id < 0 || x->offset[id] == NO_OFFSET)
                continue;
            const hs__value *v = &g->values[id];
            if (v->last_use == i || v->last_use < 0)
                plan_free(&p, id);
        }
    }
    x->arena_size = p.peak;
    free(p.live);
    return HS_OK;
}

/* ---- lifetime ---------------------------------------------------------------------------- */

/* Allocates x for [first, last) of g with its inputs and outputs found; offsets, arena and
 * workspace are left to the caller. */
static hs_exec *exec_alloc(const hs_graph *g, int first, int last)
{
    hs_exec *x = calloc(1, sizeof *x);
    if (!x)
        return NULL;
    x->g = g;
    x->first = first;
    x->last = last;
    size_t nv = (size_t)g->n_values + 1;
    x->in_ids = malloc(nv * sizeof *x->in_ids);
    x->out_ids = malloc(nv * sizeof *x->out_ids);
    x->data = calloc(nv, sizeof *x->data);
    x->node_seconds = calloc((size_t)(last - first) + 1, sizeof *x->node_seconds);
    if (!x->in_ids || !x->out_ids || !x->data || !x->node_seconds) {
        hs_exec_free(x);
        return NULL;
    }
    for (int i = 0; i < g->n_values; i++) {
        const hs__value *v = &g->values[i];
        if (in_cut(v, first - 1))
            x->in_ids[x->n_in++] = i;
        if (last < g->n_nodes && in_cut(v, last - 1))
            x->out_ids[x->n_out++] = i;
    }
    if (last == g->n_nodes) /* the final range yields the graph outputs, in their order */
        for (int i = 0; i < g->n_outputs; i++)
            x->out_ids[x->n_out++] = g->outputs[i];
    return x;
}

static hs_status out_of_memory(const hs_graph *g, int first, int last, hs_error *err)
{
    return hs__set_error(err, HS_ERR_NOMEM, "%s: out of memory for nodes [%d, %d)", g->name,
                         first, last);
}

/* Refuses a range that reads a constant the graph has let go (hs_graph_hold_weights). */
static hs_status check_weights_held(const hs_graph *g, int first, int last, hs_error *err)
{
    for (int i = first; i < last; i++)
        for (int j = 0; j < g->nodes[i].n_in; j++) {
            int id = g->nodes[i].in[j];
            if (id >= 0 && g->values[id].let_go)
                return hs__set_error(err, HS_ERR_INVALID, "%s: nodes [%d, %d): node '%s' "
                                     "reads '%s', a weight this process has let go",
                                     g->name, first, last, g->nodes[i].name,
                                     g->values[id].name);
        }
    return HS_OK;
}

hs_status hs_exec_new(const hs_graph *g, int first, int last, hs_exec **out, hs_error *err)
{
    assert(g && out && first >= 0 && first <= last && last <= g->n_nodes);
    *out = NULL;
    hs_status held = check_weights_held(g, first, last, err);
    if (held != HS_OK)
        return held;
    hs_exec *x = exec_alloc(g, first, last);
    if (!x || !(x->offset = malloc(((size_t)g->n_values + 1) * sizeof *x->offset))) {
        hs_exec_free(x);
        return out_of_memory(g, first, last, err);
    }
    for (int i = 0; i < g->n_values; i++)
        x->offset[i] = NO_OFFSET;
    hs_status st = plan(x, err);
    if (st == HS_OK) {
        x->arena = aligned_alloc(HS_ALIGN, align_up(x->arena_size ? x->arena_size : 1));
        x->workspace =
            aligned_alloc(HS_ALIGN, align_up(x->workspace_size ? x->workspace_size : 1));
        if (!x->arena || !x->workspace)
            st = out_of_memory(g, first, last, err);
    }
    if (st != HS_OK) {
        hs_exec_free(x);
        return st;
    }
    *out = x;
    return HS_OK;
}

hs_status hs_exec_new_part(const hs_exec *base, int first, int last, hs_exec **out,
                           hs_error *err)
{
    assert(base && !base->base && out);
    *out = NULL;
    const hs_graph *g = base->g;
    if (first < base->first || first >= last || last > base->last)
        return hs__set_error(err, HS_ERR_INVALID, "%s: nodes [%d, %d) are not a part of [%d, %d)",
                             g->name, first, last, base->first, base->last);
    hs_status held = check_weights_held(g, first, last, err);
    if (held != HS_OK)
        return held;
    hs_exec *x = exec_alloc(g, first, last);
    if (!x)
        return out_of_memory(g, first, last, err);
    x->base = base;
    x->offset = base->offset;
    x->arena = base->arena;
    x->workspace = base->workspace;
    *out = x;
    return HS_OK;
}

void hs_exec_free(hs_exec *x)
{
    if (!x)
        return;
    if (!x->base) {
        free(x->offset);
        free(x->arena);
        free(x->workspace);
    }
    free(x->in_ids);
    free(x->out_ids);
    free(x->data);
    free(x->node_seconds);
    free(x);
}

/* ---- introspection ----------------------------------------------------------------------- */

int hs_exec_input_count(const hs_exec *x) { return x->n_in; }
int hs_exec_output_count(const hs_exec *x) { return x->n_out; }
size_t hs_exec_arena_bytes(const hs_exec *x) { return x->arena_size; }

static const char *describe(const hs_exec *x, int id, hs_tensor *desc)
{
    if (desc) {
        *desc = x->g->values[id].t;
        desc->data = NULL;
    }
    return x->g->values[id].name;
}

const char *hs_exec_input(const hs_exec *x, int i, hs_tensor *desc)
{
    assert(i >= 0 && i < x->n_in);
    return describe(x, x->in_ids[i], desc);
}

const char *hs_exec_output(const hs_exec *x, int i, hs_tensor *desc)
{
    assert(i >= 0 && i < x->n_out);
    return describe(x, x->out_ids[i], desc);
}

void hs_exec_set_profiling(hs_exec *x, bool on) { x->profiling = on; }

const double *hs_exec_node_seconds(const hs_exec *x)
{
    return x->profiling ? x->node_seconds : NULL;
}

void hs_set_threads(int n)
{
    assert(n >= 1);
    openblas_set_num_threads(n);
}

/* ---- running ----------------------------------------------------------------------------- */

static double now_seconds(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

hs_status hs_exec_run(hs_exec *x, const hs_tensor *inputs, int n_inputs, hs_tensor *outputs,
                      int n_outputs, hs_error *err)
{
    const hs_graph *g = x->g;
    if (n_inputs != x->n_in || n_outputs != x->n_out)
        return hs__set_error(err, HS_ERR_INVALID,
                             "%s: nodes [%d, %d) take %d inputs and give %d outputs, "
                             "called with %d and %d", g->name, x->first, x->last, x->n_in,
                             x->n_out, n_inputs, n_outputs);
    for (int i = 0; i < x->n_in; i++) {
        const hs__value *v = &g->values[x->in_ids[i]];
        if (!hs_tensor_same_desc(&inputs[i], &v->t) || !inputs[i].data) {
            char want[96], got[96];
            return hs__set_error(err, HS_ERR_SHAPE, "%s: input '%s' must be %s %s, got %s %s%s",
                                 g->name, v->name, v->t.dtype == HS_F32 ? "float32" : "int64",
                                 hs_shape_str(&v->t, want, sizeof want),
                                 inputs[i].dtype == HS_F32 ? "float32" : "int64",
                                 hs_shape_str(&inputs[i], got, sizeof got),
                                 inputs[i].data ? "" : " without data");
        }
        int id = x->in_ids[i];
        if (x->offset[id] == NO_OFFSET) { /* produced before the base's range */
            x->data[id] = inputs[i].data;
            continue;
        }
        uint8_t *at = x->arena + x->offset[id], *from = inputs[i].data;
        if (from != at) {
            uintptr_t lo = (uintptr_t)x->arena, hi = lo + x->base->arena_size;
            if ((uintptr_t)from >= lo && (uintptr_t)from < hi)
                return hs__set_error(err, HS_ERR_INVALID, "%s: input '%s' of nodes [%d, %d) "
                                     "lies elsewhere in the arena it is to be copied to",
                                     g->name, v->name, x->first, x->last);
            memcpy(at, from, hs_tensor_nbytes(&v->t));
        }
        x->data[id] = at;
    }

    hs_tensor in[HS_MAX_IO], out[HS_MAX_IO];
    for (int i = x->first; i < x->last; i++) {
        const hs__node *n = &g->nodes[i];
        for (int j = 0; j < n->n_in; j++) {
            if (n->in[j] < 0) {
                in[j] = (hs_tensor){.ndim = -1};
                continue;
            }
            const hs__value *v = &g->values[n->in[j]];
            in[j] = v->t;
            if (!v->is_const)
                in[j].data = x->data[n->in[j]];
        }
        for (int j = 0; j < n->n_out; j++) {
            out[j] = g->values[n->out[j]].t;
            out[j].data = x->arena + x->offset[n->out[j]];
            x->data[n->out[j]] = out[j].data;
        }
        double t0 = x->profiling ? now_seconds() : 0;
        n->op->run(n, in, out, x->workspace);
        if (x->profiling)
            x->node_seconds[i - x->first] = now_seconds() - t0;
    }

    for (int i = 0; i < x->n_out; i++) {
        const hs__value *v = &g->values[x->out_ids[i]];
        outputs[i] = v->t;
        if (!v->is_const)
            outputs[i].data = x->data[x->out_ids[i]];
    }
    return HS_OK;
}
