/*
 * Reads a plan pinned with `coordinator --plan FILE.json`: the JSON `hotsplit plan --json`
 * prints. JSON is YAML's flow style, so libcyaml reads it with a schema that keeps the stages
 * and ignores every other key.
 */
#include <cyaml/cyaml.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>

#include "runtime_impl.h"

typedef struct file_stage {
    char *device;
    int first, last;
} file_stage;

typedef struct file_plan {
    file_stage *stages;
    unsigned stages_count;
} file_plan;

typedef struct file_doc {
    file_plan *plan;
} file_doc;

static const cyaml_schema_field_t stage_fields[] = {
    CYAML_FIELD_STRING_PTR("device", CYAML_FLAG_POINTER, file_stage, device, 1, HS_NAME_MAX - 1),
    CYAML_FIELD_INT("first", CYAML_FLAG_DEFAULT, file_stage, first),
    CYAML_FIELD_INT("last", CYAML_FLAG_DEFAULT, file_stage, last),
    CYAML_FIELD_END};
static const cyaml_schema_value_t stage_schema = {
    CYAML_VALUE_MAPPING(CYAML_FLAG_DEFAULT, file_stage, stage_fields)};
static const cyaml_schema_field_t plan_fields[] = {
    CYAML_FIELD_SEQUENCE("stages", CYAML_FLAG_POINTER, file_plan, stages, &stage_schema, 1,
                         HS_MAX_DEVICES),
    CYAML_FIELD_END};
static const cyaml_schema_field_t doc_fields[] = {
    CYAML_FIELD_MAPPING_PTR("plan", CYAML_FLAG_POINTER, file_doc, plan, plan_fields),
    CYAML_FIELD_END};
static const cyaml_schema_value_t doc_schema = {
    CYAML_VALUE_MAPPING(CYAML_FLAG_POINTER, file_doc, doc_fields)};

typedef struct log_buf {
    char text[HS_ERROR_MSG_MAX];
} log_buf;

static void log_to_buf(cyaml_log_t level, void *ctx, const char *fmt, va_list args)
{
    log_buf *b = ctx;
    if (level < CYAML_LOG_ERROR || b->text[0])
        return;
    vsnprintf(b->text, sizeof b->text, fmt, args);
    size_t n = strlen(b->text);
    while (n && (b->text[n - 1] == '\n' || b->text[n - 1] == ' '))
        b->text[--n] = '\0';
}

hs_status hs__plan_file_load(const char *path, const hs_cluster *c, int n_nodes, hs_plan *out,
                             hs_error *err)
{
    log_buf log = {{0}};
    cyaml_config_t cfg = {.log_fn = log_to_buf, .log_ctx = &log, .mem_fn = cyaml_mem,
                          .log_level = CYAML_LOG_ERROR,
                          .flags = CYAML_CFG_IGNORE_UNKNOWN_KEYS};
    file_doc *doc = NULL;
    cyaml_err_t ce = cyaml_load_file(path, &cfg, &doc_schema, (cyaml_data_t **)&doc, NULL);
    if (ce != CYAML_OK || !doc)
        return hs_error_set(err, HS_ERR_PARSE, "%s: not a plan from 'hotsplit plan --json': "
                                "%s", path, log.text[0] ? log.text : cyaml_strerror(ce));
    hs_status st = HS_OK;
    memset(out, 0, sizeof *out);
    out->n_stages = (int)doc->plan->stages_count;
    for (unsigned s = 0; s < doc->plan->stages_count && st == HS_OK; s++) {
        const file_stage *fs = &doc->plan->stages[s];
        int d = hs_cluster_find(c, fs->device);
        if (d < 0)
            st = hs_error_set(err, HS_ERR_NOTFOUND, "%s: plan.stages[%u].device: no device "
                                  "'%s' in %s", path, s, fs->device, c->path);
        else if (fs->first < 0 || fs->last < fs->first || fs->last > n_nodes)
            st = hs_error_set(err, HS_ERR_INVALID, "%s: plan.stages[%u]: [%d, %d) is not a "
                                  "node range of a %d-node model", path, s, fs->first, fs->last,
                                  n_nodes);
        out->stages[s] = (hs_stage){d, fs->first, fs->last};
    }
    cyaml_free(&cfg, &doc_schema, doc, 0);
    if (st != HS_OK)
        return st;
    /* The rules of a plan (contiguous, distinct devices, source first) are checked against the
     * model's node count here; links and memory when the coordinator uses it. */
    int expect = 0;
    for (int s = 0; s < out->n_stages; s++) {
        if (out->stages[s].first != expect)
            return hs_error_set(err, HS_ERR_INVALID, "%s: plan.stages[%d] starts at %d, "
                                    "expected %d", path, s, out->stages[s].first, expect);
        expect = out->stages[s].last;
        for (int t = 0; t < s; t++)
            if (out->stages[t].device == out->stages[s].device)
                return hs_error_set(err, HS_ERR_INVALID, "%s: plan.stages[%d]: device %s "
                                        "hosts two stages", path, s,
                                        c->devices[out->stages[s].device].name);
    }
    if (expect != n_nodes || out->stages[0].device != c->source)
        return hs_error_set(err, HS_ERR_INVALID, "%s: the plan must start on the source "
                                "(%s) and cover all %d nodes", path,
                                c->devices[c->source].name, n_nodes);
    return HS_OK;
}
