/*
 * What a loaded graph costs: per node FLOPs, parameters, weight and output bytes, and the
 * bytes that cross each cut of the topological order (all tensors produced at or before the
 * cut and consumed after it, so a cut inside a residual block counts both branches).
 */
#include <stdlib.h>
#include <string.h>

#include "graph_impl.h"

hs_status hs__graph_finish_cuts(hs_graph *g)
{
    int n = g->n_nodes;
    g->cut_bytes = calloc((size_t)n + 1, sizeof *g->cut_bytes);
    g->cut_tensors = calloc((size_t)n + 1, sizeof *g->cut_tensors);
    g->live_bytes = calloc((size_t)n + 1, sizeof *g->live_bytes);
    int64_t *dbytes = calloc((size_t)n + 2, sizeof *dbytes);
    int64_t *dlive = calloc((size_t)n + 2, sizeof *dlive);
    int *dcount = calloc((size_t)n + 2, sizeof *dcount);
    if (!g->cut_bytes || !g->cut_tensors || !g->live_bytes || !dbytes || !dlive || !dcount) {
        free(dbytes);
        free(dlive);
        free(dcount);
        return HS_ERR_NOMEM;
    }
    /* A runtime tensor produced by node p (p = -1 for inputs) and last used by node u crosses
     * cuts p..u-1; index k + 1 holds the cut after node k. Difference arrays make it O(V + n). */
    for (int i = 0; i < g->n_values; i++) {
        const hs__value *v = &g->values[i];
        if (v->is_const || (v->producer < 0 && v->last_use < 0))
            continue;
        int64_t bytes = (int64_t)hs_tensor_nbytes(&v->t);
        /* Live from its producer (or node 0) through its last reader (or just its producer,
         * if nobody reads it). */
        int from = v->producer < 0 ? 0 : v->producer;
        int to = v->last_use < from ? from : (v->last_use >= n ? n - 1 : v->last_use);
        if (n > 0) {
            dlive[from] += bytes;
            dlive[to + 1] -= bytes;
        }
        if (v->last_use <= v->producer)
            continue;
        dbytes[v->producer + 1] += bytes;
        dbytes[v->last_use + 1] -= bytes;
        dcount[v->producer + 1]++;
        dcount[v->last_use + 1]--;
    }
    int64_t bytes = 0, live = 0;
    int count = 0;
    for (int k = 0; k < n; k++) {
        live += dlive[k];
        g->live_bytes[k] = live;
    }
    for (int k = 0; k <= n; k++) {
        bytes += dbytes[k];
        count += dcount[k];
        g->cut_bytes[k] = bytes;
        g->cut_tensors[k] = count;
    }
    free(dbytes);
    free(dlive);
    free(dcount);
    return HS_OK;
}

int hs_graph_node_count(const hs_graph *g) { return g->n_nodes; }
int64_t hs_graph_params(const hs_graph *g) { return g->total_params; }
double hs_graph_flops(const hs_graph *g) { return g->total_flops; }
const char *hs_graph_name(const hs_graph *g) { return g->name; }

int64_t hs_graph_cut_bytes(const hs_graph *g, int k)
{
    assert(k >= -1 && k < g->n_nodes);
    return g->cut_bytes[k + 1];
}

void hs_graph_node_info(const hs_graph *g, int i, hs_node_info *info)
{
    assert(i >= 0 && i < g->n_nodes);
    const hs__node *n = &g->nodes[i];
    memset(info, 0, sizeof *info);
    info->name = n->name;
    info->op = n->op->name;
    info->fused = n->fused;
    info->output = g->values[n->out[0]].t;
    info->output.data = NULL;
    info->n_outputs = n->n_out;
    info->flops = n->flops;
    info->params = n->n_params;
    for (int j = 0; j < n->n_in; j++) {
        if (n->in[j] < 0)
            continue;
        int64_t bytes = (int64_t)hs_tensor_nbytes(&g->values[n->in[j]].t);
        if (g->values[n->in[j]].is_const)
            info->weight_bytes += bytes;
        else
            info->input_bytes += bytes;
    }
    info->live_bytes = g->live_bytes[i];
    info->groups = 1;
    if (strcmp(n->op->name, "Conv") == 0) { /* weight [M, C/groups, ...], input [N, C, ...] */
        const hs_tensor *x = &g->values[n->in[0]].t, *w = &g->values[n->in[1]].t;
        if (x->ndim >= 2 && w->ndim >= 2 && w->shape[1] > 0)
            info->groups = (int)(x->shape[1] / w->shape[1]);
    }
    for (int j = 0; j < n->n_out; j++)
        info->output_bytes += (int64_t)hs_tensor_nbytes(&g->values[n->out[j]].t);
    info->cut_bytes = g->cut_bytes[i + 1];
    info->cut_tensors = g->cut_tensors[i + 1];
}

static const char *describe(const hs_graph *g, int id, hs_tensor *desc)
{
    if (desc) {
        *desc = g->values[id].t;
        desc->data = NULL;
    }
    return g->values[id].name;
}

int hs_graph_input_count(const hs_graph *g) { return g->n_inputs; }
int hs_graph_output_count(const hs_graph *g) { return g->n_outputs; }

const char *hs_graph_input(const hs_graph *g, int i, hs_tensor *desc)
{
    assert(i >= 0 && i < g->n_inputs);
    return describe(g, g->inputs[i], desc);
}

const char *hs_graph_output(const hs_graph *g, int i, hs_tensor *desc)
{
    assert(i >= 0 && i < g->n_outputs);
    return describe(g, g->outputs[i], desc);
}
