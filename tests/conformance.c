/*
 * ONNX backend conformance: runs hotsplit on the ONNX backend test cases (Debian's
 * libonnx-testdata: DIR/test_x/model.onnx with test_data_set_N/ holding input_N.pb and
 * output_N.pb) and compares every output with the reference.
 *
 * A case is SKIPPED when it needs something hotsplit does not claim to do (an operator not in
 * the registry, a data type other than float32/int64, or anything the loader rejects with
 * HS_ERR_UNSUPPORTED), and FAILS when hotsplit claims to do it and gets it wrong: a load error
 * of any other kind, a run error, or an output that differs from the reference. Each case runs
 * in a child process so a crash or a hang in one kernel is reported as that case's failure
 * instead of ending the run (--no-fork runs in-process, for a debugger).
 *
 * usage: conformance [--list-skips] [--require FILE] [--filter GLOB] [--no-fork] DATA...
 * DATA is a directory of test_* cases or a directory of such directories. The last line is
 * "conformance: N passed, M failed, K skipped"; the exit code is 0 iff nothing failed and
 * every case the --require file names passed.
 */
#include <dirent.h>
#include <errno.h>
#include <fnmatch.h>
#include <math.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "graph_impl.h"

#define CASE_TIMEOUT_S 30
#define ATOL 1e-5
#define RTOL 1e-4

/* ---- one case's outcome ------------------------------------------------------------------ */

enum { R_PASS, R_FAIL, R_SKIP, R_NOT_RUN };

typedef struct report {
    int kind;
    char key[256];     /* skip group: "unsupported op: Abs", "input dtype: UINT8", ... */
    char detail[1024]; /* skip reason for this case */
    bool consts_bound; /* ran with inputs 1.. bound as constants (weights given as inputs) */
    bool folded;       /* the whole graph folded at load time: no node left to run */
    char *fails;       /* failure lines, each ending in '\n' */
    size_t fails_len, fails_cap;
} report;

static void report_skip(report *r, const char *key, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static void report_fail(report *r, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

static void report_skip(report *r, const char *key, const char *fmt, ...)
{
    va_list ap;
    r->kind = R_SKIP;
    snprintf(r->key, sizeof r->key, "%s", key);
    va_start(ap, fmt);
    vsnprintf(r->detail, sizeof r->detail, fmt, ap);
    va_end(ap);
}

static void report_fail(report *r, const char *fmt, ...)
{
    char line[2048];
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(line, sizeof line, fmt, ap);
    va_end(ap);
    if (n < 0)
        return;
    size_t len = strlen(line);
    if (r->fails_len + len + 2 > r->fails_cap) {
        size_t cap = (r->fails_cap ? r->fails_cap * 2 : 1024) + len + 2;
        char *p = realloc(r->fails, cap);
        if (!p)
            abort();
        r->fails = p;
        r->fails_cap = cap;
    }
    memcpy(r->fails + r->fails_len, line, len);
    r->fails_len += len;
    r->fails[r->fails_len++] = '\n';
    r->fails[r->fails_len] = '\0';
    r->kind = R_FAIL;
}

/* ---- small helpers ----------------------------------------------------------------------- */

static char *path_join(const char *a, const char *b)
{
    size_t n = strlen(a) + strlen(b) + 2;
    char *p = malloc(n);
    if (!p)
        abort();
    snprintf(p, n, "%s/%s", a, b);
    return p;
}

static bool is_dir(const char *path)
{
    struct stat st;
    return stat(path, &st) == 0 && S_ISDIR(st.st_mode);
}

static bool is_file(const char *path)
{
    struct stat st;
    return stat(path, &st) == 0 && S_ISREG(st.st_mode);
}

/* Whole file into a malloc'd buffer; NULL (errno set) on failure. */
static uint8_t *read_all(const char *path, size_t *size)
{
    FILE *f = fopen(path, "rb");
    if (!f)
        return NULL;
    uint8_t *buf = NULL;
    size_t len = 0, cap = 0;
    for (;;) {
        if (len == cap) {
            cap = cap ? cap * 2 : 65536;
            uint8_t *p = realloc(buf, cap);
            if (!p)
                abort();
            buf = p;
        }
        size_t got = fread(buf + len, 1, cap - len, f);
        len += got;
        if (got == 0)
            break;
    }
    bool bad = ferror(f);
    fclose(f);
    if (bad) {
        free(buf);
        errno = EIO;
        return NULL;
    }
    *size = len;
    return buf;
}

static int starts_with(const char *s, const char *prefix)
{
    return strncmp(s, prefix, strlen(prefix)) == 0;
}

static int filter_test_dirs(const struct dirent *d) { return starts_with(d->d_name, "test_"); }
static int filter_data_sets(const struct dirent *d)
{
    return starts_with(d->d_name, "test_data_set_");
}

static const char *dtype_name(int32_t t)
{
    static const char *const names[] = {
        "UNDEFINED", "FLOAT",  "UINT8",   "INT8",   "UINT16",    "INT16",
        "INT32",     "INT64",  "STRING",  "BOOL",   "FLOAT16",   "DOUBLE",
        "UINT32",    "UINT64", "COMPLEX64", "COMPLEX128", "BFLOAT16"};
    return t >= 0 && t < (int32_t)(sizeof names / sizeof names[0]) ? names[t] : "UNKNOWN";
}

static const char *value_kind(const Onnx__TypeProto *tp)
{
    if (!tp)
        return "untyped";
    switch (tp->value_case) {
    case ONNX__TYPE_PROTO__VALUE_TENSOR_TYPE: return "tensor";
    case ONNX__TYPE_PROTO__VALUE_SEQUENCE_TYPE: return "sequence";
    case ONNX__TYPE_PROTO__VALUE_MAP_TYPE: return "map";
    case ONNX__TYPE_PROTO__VALUE_OPTIONAL_TYPE: return "optional";
    case ONNX__TYPE_PROTO__VALUE_SPARSE_TENSOR_TYPE: return "sparse tensor";
    default: return "untyped";
    }
}

/* The loader's message without the file and node names, so that cases failing for the same
 * reason group together: "FILE: node 'n' (Conv): auto_pad ..." -> "(Conv): auto_pad ...". */
static void normalise_reason(const char *msg, char *out, size_t size)
{
    const char *s = msg;
    const char *m = strstr(s, "model.onnx: ");
    if (m)
        s = m + strlen("model.onnx: ");
    const char *node = strstr(s, "node '");
    if (node) {
        const char *end = strstr(node + 6, "' ");
        if (end) {
            snprintf(out, size, "%.*s%s", (int)(node - s), s, end + 2);
            return;
        }
    }
    snprintf(out, size, "%s", s);
}

/* ---- running one case -------------------------------------------------------------------- */

typedef struct model_info {
    Onnx__ModelProto *mp;
    const Onnx__ValueInfoProto **inputs; /* graph inputs that are not initializers, in order */
    int n_inputs;
    char unsupported_op[128];            /* first op missing from the registry, "" if none
                                          * (Constant is the loader's, not an operator) */
} model_info;

static bool is_initializer(const Onnx__GraphProto *gp, const char *name)
{
    for (size_t i = 0; i < gp->n_initializer; i++)
        if (gp->initializer[i]->name && strcmp(gp->initializer[i]->name, name) == 0)
            return true;
    for (size_t i = 0; i < gp->n_sparse_initializer; i++) {
        const Onnx__SparseTensorProto *sp = gp->sparse_initializer[i];
        if (sp->values && sp->values->name && strcmp(sp->values->name, name) == 0)
            return true;
    }
    return false;
}

static void model_info_free(model_info *mi)
{
    free(mi->inputs);
    if (mi->mp)
        onnx__model_proto__free_unpacked(mi->mp, NULL);
}

/* Parses model.onnx; false with r filled in if the case cannot go further. */
static bool model_info_read(const char *path, model_info *mi, report *r)
{
    size_t size;
    uint8_t *buf = read_all(path, &size);
    if (!buf) {
        report_fail(r, "cannot read %s: %s", path, strerror(errno));
        return false;
    }
    mi->mp = onnx__model_proto__unpack(NULL, size, buf);
    free(buf);
    if (!mi->mp || !mi->mp->graph) {
        report_fail(r, "%s is not a ModelProto with a graph", path);
        return false;
    }
    const Onnx__GraphProto *gp = mi->mp->graph;
    mi->inputs = calloc(gp->n_input + 1, sizeof *mi->inputs);
    if (!mi->inputs)
        abort();
    for (size_t i = 0; i < gp->n_input; i++)
        if (!is_initializer(gp, gp->input[i]->name))
            mi->inputs[mi->n_inputs++] = gp->input[i];
    for (size_t i = 0; i < gp->n_node && !mi->unsupported_op[0]; i++) {
        const Onnx__NodeProto *np = gp->node[i];
        const char *domain = np->domain ? np->domain : "";
        if (domain[0] && strcmp(domain, "ai.onnx") != 0)
            snprintf(mi->unsupported_op, sizeof mi->unsupported_op, "%s.%s", domain,
                     np->op_type);
        else if (strcmp(np->op_type, "Constant") != 0 && !hs__op_find(np->op_type))
            snprintf(mi->unsupported_op, sizeof mi->unsupported_op, "%s", np->op_type);
    }
    return true;
}

/* Reads DIR/PREFIX_N.pb into t (data malloc'd). Returns 1 on success, 0 if the file does not
 * exist, -1 with r filled in on failure. `want` is the graph's declaration of the value. */
static int read_tensor_pb(const char *set_dir, const char *prefix, int n,
                          const Onnx__ValueInfoProto *want, hs_tensor *t, char *name,
                          size_t name_size, report *r)
{
    char file[64];
    snprintf(file, sizeof file, "%s_%d.pb", prefix, n);
    char *path = path_join(set_dir, file);
    int ret = -1;
    size_t size;
    uint8_t *buf = NULL;
    Onnx__TensorProto *tp = NULL;
    if (!is_file(path)) {
        ret = 0;
        goto done;
    }
    const char *what = strcmp(prefix, "input") == 0 ? "input" : "output";
    if (want && (!want->type || want->type->value_case != ONNX__TYPE_PROTO__VALUE_TENSOR_TYPE)) {
        char key[128];
        snprintf(key, sizeof key, "%s kind: %s", what, value_kind(want->type));
        report_skip(r, key, "%s '%s' is a %s, not a tensor", what, want->name,
                    value_kind(want->type));
        goto done;
    }
    if (want && want->type->tensor_type->elem_type != ONNX__TENSOR_PROTO__DATA_TYPE__FLOAT &&
        want->type->tensor_type->elem_type != ONNX__TENSOR_PROTO__DATA_TYPE__INT64) {
        const char *dt = dtype_name(want->type->tensor_type->elem_type);
        char key[128];
        snprintf(key, sizeof key, "%s dtype: %s", what, dt);
        report_skip(r, key, "%s '%s' is %s (hotsplit tensors are float32 or int64)", what,
                    want->name, dt);
        goto done;
    }
    buf = read_all(path, &size);
    if (!buf) {
        report_fail(r, "cannot read %s: %s", path, strerror(errno));
        goto done;
    }
    tp = onnx__tensor_proto__unpack(NULL, size, buf);
    if (!tp) {
        char key[128];
        snprintf(key, sizeof key, "%s is not a TensorProto", what);
        report_skip(r, key, "%s does not parse as a TensorProto (sequence or optional value)",
                    file);
        goto done;
    }
    hs_error err = {0};
    hs_status st = hs__tensor_from_proto(tp, path, t, &err);
    if (st == HS_ERR_UNSUPPORTED) {
        char key[128];
        snprintf(key, sizeof key, "%s dtype: %s", what,
                 tp->has_data_type ? dtype_name(tp->data_type) : "UNDEFINED");
        report_skip(r, key, "%s: %s", file, err.msg);
        goto done;
    }
    if (st != HS_OK) {
        report_fail(r, "%s: cannot decode (%s): %s", file, hs_strerror(st), err.msg);
        goto done;
    }
    snprintf(name, name_size, "%s", tp->name ? tp->name : "");
    ret = 1;
done:
    if (tp)
        onnx__tensor_proto__free_unpacked(tp, NULL);
    free(buf);
    free(path);
    return ret;
}

static void index_str(const hs_tensor *t, int64_t flat, char *buf, size_t size)
{
    int64_t idx[HS_MAX_DIMS];
    for (int d = t->ndim - 1; d >= 0; d--) {
        idx[d] = t->shape[d] ? flat % t->shape[d] : 0;
        flat = t->shape[d] ? flat / t->shape[d] : 0;
    }
    size_t used = (size_t)snprintf(buf, size, "[");
    for (int d = 0; d < t->ndim && used < size; d++)
        used += (size_t)snprintf(buf + used, size - used, "%s%lld", d ? "," : "",
                                 (long long)idx[d]);
    if (used < size)
        snprintf(buf + used, size - used, "]");
}

/* Compares got with want; appends a failure line to r on a mismatch. */
static void compare(const char *label, const hs_tensor *got, const hs_tensor *want, report *r)
{
    char gs[128], ws[128];
    if (got->dtype != want->dtype) {
        report_fail(r, "%s: dtype %s, expected %s", label, got->dtype == HS_F32 ? "f32" : "i64",
                    want->dtype == HS_F32 ? "f32" : "i64");
        return;
    }
    bool same_shape = got->ndim == want->ndim;
    for (int d = 0; same_shape && d < got->ndim; d++)
        same_shape = got->shape[d] == want->shape[d];
    if (!same_shape) {
        report_fail(r, "%s: shape %s, expected %s", label, hs_shape_str(got, gs, sizeof gs),
                    hs_shape_str(want, ws, sizeof ws));
        return;
    }
    int64_t n = hs_tensor_numel(want);
    if (n > 0 && !got->data) {
        report_fail(r, "%s: no data", label);
        return;
    }
    int64_t bad = 0, first = -1;
    double max_err = 0;
    for (int64_t i = 0; i < n; i++) {
        bool ok;
        if (want->dtype == HS_F32) {
            float a = ((const float *)got->data)[i], b = ((const float *)want->data)[i];
            ok = (isnan(a) && isnan(b)) || a == b ||
                 fabs((double)a - b) <= ATOL + RTOL * fabs((double)b);
            if (!isnan(a) && !isnan(b) && fabs((double)a - b) > max_err)
                max_err = fabs((double)a - b);
        } else {
            ok = ((const int64_t *)got->data)[i] == ((const int64_t *)want->data)[i];
        }
        if (!ok && bad++ == 0)
            first = i;
    }
    if (!bad)
        return;
    char where[160];
    index_str(want, first, where, sizeof where);
    if (want->dtype == HS_F32)
        report_fail(r, "%s: %lld of %lld differ (max abs err %.3g); first at index %lld %s: "
                    "got %.9g expected %.9g",
                    label, (long long)bad, (long long)n, max_err, (long long)first, where,
                    ((const float *)got->data)[first], ((const float *)want->data)[first]);
    else
        report_fail(r, "%s: %lld of %lld differ; first at index %lld %s: got %lld expected %lld",
                    label, (long long)bad, (long long)n, (long long)first, where,
                    (long long)((const int64_t *)got->data)[first],
                    (long long)((const int64_t *)want->data)[first]);
}

/* The value a graph output holds when no node range produces it: a folded constant or a
 * graph input passed straight through. Read from the internals: the public API describes
 * outputs without data. */
static bool graph_value_data(const hs_graph *g, const char *name, const hs_input_binding *bind,
                             int n_bind, hs_tensor *out)
{
    for (int i = 0; i < g->n_outputs; i++) {
        const hs__value *v = &g->values[g->outputs[i]];
        if (strcmp(v->name, name) != 0)
            continue;
        if (v->is_const) {
            *out = v->t;
            return true;
        }
        for (int b = 0; b < n_bind; b++)
            if (strcmp(bind[b].name, name) == 0) {
                *out = bind[b].tensor;
                return true;
            }
    }
    return false;
}

/* One test_data_set_*: load with its inputs bound, run, compare. */
static void run_data_set(const char *model_path, const model_info *mi, const char *set_dir,
                         const char *tag, report *r)
{
    const Onnx__GraphProto *gp = mi->mp->graph;
    int n_in = 0, n_out = 0, n_run_in = 0;
    hs_tensor in[HS_MAX_IO], want[HS_MAX_IO], got[HS_MAX_IO], run_in[HS_MAX_IO];
    hs_input_binding bind[HS_MAX_IO];
    char in_names[HS_MAX_IO][256];
    hs_graph *g = NULL;
    hs_exec *x = NULL;
    hs_error err = {0};
    char name[256];

    for (;;) {
        if (n_in == HS_MAX_IO) {
            report_skip(r, "too many inputs", "more than %d inputs", HS_MAX_IO);
            goto done;
        }
        const Onnx__ValueInfoProto *decl = n_in < mi->n_inputs ? mi->inputs[n_in] : NULL;
        int st = read_tensor_pb(set_dir, "input", n_in, decl, &in[n_in], name, sizeof name, r);
        if (st < 0)
            goto done;
        if (st == 0)
            break;
        /* Bind by the tensor's own name when it names a graph input, else by position. */
        const char *bname = decl ? decl->name : NULL;
        for (int i = 0; name[0] && i < mi->n_inputs; i++)
            if (strcmp(mi->inputs[i]->name, name) == 0)
                bname = mi->inputs[i]->name;
        if (!bname) {
            report_fail(r, "%sinput_%d.pb has no matching graph input (%d declared)", tag, n_in,
                        mi->n_inputs);
            n_in++;
            goto done;
        }
        snprintf(in_names[n_in], sizeof in_names[n_in], "%s", bname);
        bind[n_in] = (hs_input_binding){.name = in_names[n_in], .tensor = in[n_in]};
        if (in[n_in].dtype != HS_I64)
            bind[n_in].tensor.data = NULL; /* float inputs: shape only */
        n_in++;
    }
    for (;;) {
        if (n_out == HS_MAX_IO || n_out == (int)gp->n_output)
            break;
        int st = read_tensor_pb(set_dir, "output", n_out, gp->output[n_out], &want[n_out], name,
                                sizeof name, r);
        if (st < 0)
            goto done;
        if (st == 0)
            break;
        n_out++;
    }
    if (n_out == 0) {
        report_skip(r, "no reference outputs", "no output_N.pb in %s", set_dir);
        goto done;
    }

    hs_load_options opts = {.inputs = bind, .n_inputs = n_in};
    hs_status st = hs_graph_load_onnx(model_path, &opts, &g, &err);
    if (st == HS_ERR_UNSUPPORTED && !mi->unsupported_op[0] && n_in > 1) {
        /* The node cases pass weights (Conv W, BatchNormalization scale, Clip min) as graph
         * inputs, where a deployed model has initializers. hotsplit needs them constant, so
         * bind every input but the first with its value, as a model would hold it. */
        hs_error err2 = {0};
        for (int i = 1; i < n_in; i++)
            bind[i].tensor.data = in[i].data;
        st = hs_graph_load_onnx(model_path, &opts, &g, &err2);
        if (st == HS_OK) {
            r->consts_bound = true;
        } else if (st != HS_ERR_UNSUPPORTED) {
            report_fail(r, "%sload with inputs 1..%d bound as constants failed (%s): %s", tag,
                        n_in - 1, hs_strerror(st), err2.msg);
            goto done;
        } else if (!strstr(err2.msg, "must be a constant")) {
            err = err2; /* constants got past the first reason: this one is more precise */
        }
    }
    if (mi->unsupported_op[0]) {
        char key[192];
        snprintf(key, sizeof key, "unsupported op: %s", mi->unsupported_op);
        if (st == HS_OK)
            report_fail(r, "%sloader accepted a model with op %s, which is not in the registry",
                        tag, mi->unsupported_op);
        else
            report_skip(r, key, "op %s is not supported", mi->unsupported_op);
        goto done;
    }
    if (st == HS_ERR_UNSUPPORTED) {
        char reason[HS_ERROR_MSG_MAX], key[256];
        normalise_reason(err.msg, reason, sizeof reason);
        snprintf(key, sizeof key, "loader: %.200s", reason);
        report_skip(r, key, "%s", err.msg);
        goto done;
    }
    if (st != HS_OK) {
        report_fail(r, "%sload failed (%s): %s", tag, hs_strerror(st), err.msg);
        goto done;
    }

    int nodes = hs_graph_node_count(g);
    int n_got = 0;
    r->folded = nodes == 0;
    const char *got_names[HS_MAX_IO];
    if (nodes > 0) {
        st = hs_exec_new(g, 0, nodes, &x, &err);
        if (st != HS_OK) {
            report_fail(r, "%shs_exec_new failed (%s): %s", tag, hs_strerror(st), err.msg);
            goto done;
        }
        n_run_in = hs_exec_input_count(x);
        n_got = hs_exec_output_count(x);
        if (n_run_in > HS_MAX_IO || n_got > HS_MAX_IO) {
            report_fail(r, "%sexec has %d inputs and %d outputs", tag, n_run_in, n_got);
            goto done;
        }
        for (int i = 0; i < n_run_in; i++) {
            hs_tensor desc;
            const char *nm = hs_exec_input(x, i, &desc);
            int b = 0;
            while (b < n_in && strcmp(bind[b].name, nm) != 0)
                b++;
            if (b == n_in) {
                report_fail(r, "%sexec input '%s' is not a bound graph input", tag, nm);
                goto done;
            }
            run_in[i] = in[b];
        }
        st = hs_exec_run(x, run_in, n_run_in, got, n_got, &err);
        if (st != HS_OK) {
            report_fail(r, "%srun failed (%s): %s", tag, hs_strerror(st), err.msg);
            goto done;
        }
        for (int i = 0; i < n_got; i++) {
            hs_tensor desc;
            got_names[i] = hs_exec_output(x, i, &desc);
        }
    }

    for (int j = 0; j < n_out; j++) {
        const char *oname = gp->output[j]->name;
        char label[400];
        snprintf(label, sizeof label, "%soutput %d '%s'", tag, j, oname);
        hs_tensor t;
        int k = 0;
        while (k < n_got && strcmp(got_names[k], oname) != 0)
            k++;
        if (k < n_got)
            t = got[k];
        else if (!graph_value_data(g, oname, bind, n_in, &t)) {
            report_fail(r, "%s: not produced by the run (graph has %d nodes)", label, nodes);
            continue;
        }
        if (t.data == NULL && hs_tensor_numel(&t) > 0)
            for (int b = 0; b < n_in; b++) /* a float input passed through unchanged */
                if (strcmp(bind[b].name, oname) == 0)
                    t = in[b];
        compare(label, &t, &want[j], r);
    }

done:
    hs_exec_free(x);
    hs_graph_free(g);
    for (int i = 0; i < n_in; i++)
        free(in[i].data);
    for (int i = 0; i < n_out; i++)
        free(want[i].data);
}

static void run_case(const char *case_dir, report *r)
{
    char *model_path = path_join(case_dir, "model.onnx");
    model_info mi = {0};
    struct dirent **sets = NULL;
    int n_sets = 0;
    if (!is_file(model_path)) {
        report_skip(r, "no model.onnx", "no model.onnx (the case names a model to download)");
        goto done;
    }
    if (!model_info_read(model_path, &mi, r))
        goto done;
    n_sets = scandir(case_dir, &sets, filter_data_sets, alphasort);
    if (n_sets <= 0) {
        report_skip(r, "no test data", "no test_data_set_* directory");
        goto done;
    }
    for (int s = 0; s < n_sets && r->kind == R_PASS; s++) {
        char *set_dir = path_join(case_dir, sets[s]->d_name);
        char tag[300] = "";
        if (n_sets > 1)
            snprintf(tag, sizeof tag, "[%s] ", sets[s]->d_name);
        run_data_set(model_path, &mi, set_dir, tag, r);
        free(set_dir);
    }
    if (r->kind == R_SKIP && mi.unsupported_op[0]) { /* the op is the reason that matters */
        char key[192];
        snprintf(key, sizeof key, "unsupported op: %s", mi.unsupported_op);
        report_skip(r, key, "op %s is not supported", mi.unsupported_op);
    }
done:
    for (int s = 0; s < n_sets; s++)
        free(sets[s]);
    free(sets);
    model_info_free(&mi);
    free(model_path);
}

/* ---- isolation: each case in a child process --------------------------------------------- */

typedef struct wire {
    int kind;
    bool consts_bound, folded;
    char key[256];
    char detail[1024];
    size_t fails_len;
} wire;

static bool write_full(int fd, const void *p, size_t n)
{
    const char *c = p;
    while (n) {
        ssize_t w = write(fd, c, n);
        if (w < 0 && errno == EINTR)
            continue;
        if (w <= 0)
            return false;
        c += w;
        n -= (size_t)w;
    }
    return true;
}

static size_t read_full(int fd, void *p, size_t n)
{
    char *c = p;
    size_t got = 0;
    while (got < n) {
        ssize_t rd = read(fd, c + got, n - got);
        if (rd < 0 && errno == EINTR)
            continue;
        if (rd <= 0)
            break;
        got += (size_t)rd;
    }
    return got;
}

static void run_case_isolated(const char *case_dir, report *r)
{
    int fds[2];
    if (pipe(fds) != 0) {
        report_fail(r, "pipe: %s", strerror(errno));
        return;
    }
    fflush(stdout);
    fflush(stderr);
    pid_t pid = fork();
    if (pid < 0) {
        close(fds[0]);
        close(fds[1]);
        report_fail(r, "fork: %s", strerror(errno));
        return;
    }
    if (pid == 0) {
        close(fds[0]);
        alarm(CASE_TIMEOUT_S);
        report cr = {0};
        run_case(case_dir, &cr);
        wire w = {.kind = cr.kind, .consts_bound = cr.consts_bound, .folded = cr.folded,
                  .fails_len = cr.fails_len};
        memcpy(w.key, cr.key, sizeof w.key);
        memcpy(w.detail, cr.detail, sizeof w.detail);
        bool ok = write_full(fds[1], &w, sizeof w) &&
                  (!cr.fails_len || write_full(fds[1], cr.fails, cr.fails_len));
        _exit(ok ? 0 : 3);
    }
    close(fds[1]);
    wire w;
    size_t got = read_full(fds[0], &w, sizeof w);
    char *fails = NULL;
    if (got == sizeof w && w.fails_len) {
        fails = malloc(w.fails_len + 1);
        if (!fails)
            abort();
        got = read_full(fds[0], fails, w.fails_len) == w.fails_len ? sizeof w : 0;
        fails[w.fails_len] = '\0';
    }
    close(fds[0]);
    int status = 0;
    while (waitpid(pid, &status, 0) < 0 && errno == EINTR)
        ;
    if (got != sizeof w) {
        if (WIFSIGNALED(status) && WTERMSIG(status) == SIGALRM)
            report_fail(r, "timed out after %d s", CASE_TIMEOUT_S);
        else if (WIFSIGNALED(status))
            report_fail(r, "crashed: %s", strsignal(WTERMSIG(status)));
        else
            report_fail(r, "child exited with status %d without a result",
                        WIFEXITED(status) ? WEXITSTATUS(status) : -1);
        free(fails);
        return;
    }
    r->kind = w.kind;
    r->consts_bound = w.consts_bound;
    r->folded = w.folded;
    memcpy(r->key, w.key, sizeof r->key);
    memcpy(r->detail, w.detail, sizeof r->detail);
    r->key[sizeof r->key - 1] = r->detail[sizeof r->detail - 1] = '\0';
    r->fails = fails;
    r->fails_len = r->fails_cap = w.fails_len;
}

/* ---- the run ----------------------------------------------------------------------------- */

typedef struct test_case {
    char *group; /* "node", "pytorch-converted", ... */
    char *name;  /* "test_conv_with_strides_padding" */
    char *dir;
    report r;
} test_case;

typedef struct case_list {
    test_case *v;
    int n, cap;
    char **groups;
    int n_groups;
} case_list;

static void add_group_cases(case_list *cl, const char *dir, const char *group)
{
    struct dirent **ents;
    int n = scandir(dir, &ents, filter_test_dirs, alphasort);
    if (n < 0)
        return;
    bool any = false;
    for (int i = 0; i < n; i++) {
        char *sub = path_join(dir, ents[i]->d_name);
        if (is_dir(sub)) {
            if (cl->n == cl->cap) {
                cl->cap = cl->cap ? cl->cap * 2 : 256;
                test_case *p = realloc(cl->v, (size_t)cl->cap * sizeof *p);
                if (!p)
                    abort();
                cl->v = p;
            }
            cl->v[cl->n++] = (test_case){.group = strdup(group),
                                         .name = strdup(ents[i]->d_name),
                                         .dir = sub};
            any = true;
        } else {
            free(sub);
        }
        free(ents[i]);
    }
    free(ents);
    if (any) {
        char **p = realloc(cl->groups, (size_t)(cl->n_groups + 1) * sizeof *p);
        if (!p)
            abort();
        cl->groups = p;
        cl->groups[cl->n_groups++] = strdup(group);
    }
}

/* DATA is a directory of test_* cases, or a directory of such directories. */
static void collect(case_list *cl, const char *root)
{
    const char *base = strrchr(root, '/');
    base = base && base[1] ? base + 1 : root;
    int before = cl->n;
    add_group_cases(cl, root, base);
    if (cl->n > before)
        return;
    struct dirent **ents;
    int n = scandir(root, &ents, NULL, alphasort);
    for (int i = 0; i < n; i++) {
        if (ents[i]->d_name[0] != '.') {
            char *sub = path_join(root, ents[i]->d_name);
            if (is_dir(sub))
                add_group_cases(cl, sub, ents[i]->d_name);
            free(sub);
        }
        free(ents[i]);
    }
    if (n >= 0)
        free(ents);
}

static bool case_matches(const test_case *c, const char *pattern)
{
    if (strchr(pattern, '/')) {
        char full[512];
        snprintf(full, sizeof full, "%s/%s", c->group, c->name);
        return fnmatch(pattern, full, 0) == 0;
    }
    return fnmatch(pattern, c->name, 0) == 0;
}

static char *trim(char *s)
{
    while (*s == ' ' || *s == '\t')
        s++;
    char *e = s + strlen(s);
    while (e > s && (e[-1] == ' ' || e[-1] == '\t' || e[-1] == '\n' || e[-1] == '\r'))
        *--e = '\0';
    return s;
}

/* Checks the --require file: every case matching a pattern (and no "!pattern" exclusion) must
 * have passed. Returns the number of problems, each printed. */
static int check_required(const case_list *cl, const char *path)
{
    FILE *f = fopen(path, "r");
    if (!f) {
        printf("REQUIRE: cannot open %s: %s\n", path, strerror(errno));
        return 1;
    }
    char **inc = NULL, **exc = NULL;
    int n_inc = 0, n_exc = 0, problems = 0;
    char line[1024];
    while (fgets(line, sizeof line, f)) {
        char *hash = strchr(line, '#');
        if (hash)
            *hash = '\0';
        char *s = trim(line);
        if (!*s)
            continue;
        bool neg = *s == '!';
        if (neg)
            s = trim(s + 1);
        char ***list = neg ? &exc : &inc;
        int *n = neg ? &n_exc : &n_inc;
        char **p = realloc(*list, (size_t)(*n + 1) * sizeof *p);
        if (!p)
            abort();
        *list = p;
        p[(*n)++] = strdup(s);
    }
    fclose(f);

    int n_required = 0;
    for (int i = 0; i < n_inc; i++) {
        int matched = 0;
        for (int c = 0; c < cl->n; c++) {
            const test_case *tc = &cl->v[c];
            if (!case_matches(tc, inc[i]))
                continue;
            matched++;
            bool excluded = false;
            for (int e = 0; e < n_exc && !excluded; e++)
                excluded = case_matches(tc, exc[e]);
            if (excluded)
                continue;
            n_required++;
            if (tc->r.kind == R_SKIP) {
                printf("REQUIRED %s/%s (pattern %s) was skipped: %s\n", tc->group, tc->name,
                       inc[i], tc->r.detail);
                problems++;
            } else if (tc->r.kind == R_FAIL) {
                printf("REQUIRED %s/%s (pattern %s) failed\n", tc->group, tc->name, inc[i]);
                problems++;
            }
        }
        if (!matched) {
            printf("REQUIRED pattern %s matches no test case\n", inc[i]);
            problems++;
        }
    }
    for (int e = 0; e < n_exc; e++) {
        bool used = false;
        for (int c = 0; c < cl->n && !used; c++)
            used = case_matches(&cl->v[c], exc[e]);
        if (!used)
            printf("require: note: exclusion !%s matches no test case\n", exc[e]);
    }
    printf("require: %d required cases from %d patterns (%d exclusions), %d problem%s\n",
           n_required, n_inc, n_exc, problems, problems == 1 ? "" : "s");
    for (int i = 0; i < n_inc; i++)
        free(inc[i]);
    for (int i = 0; i < n_exc; i++)
        free(exc[i]);
    free(inc);
    free(exc);
    return problems;
}

typedef struct reason_count {
    const char *key;
    int count;
} reason_count;

static int by_count(const void *a, const void *b)
{
    const reason_count *x = a, *y = b;
    if (x->count != y->count)
        return y->count - x->count;
    return strcmp(x->key, y->key);
}

/* Skip reasons grouped by key (full) or by the key's category, the part before ':'. */
static void print_skip_groups(const case_list *cl, bool full)
{
    reason_count *rc = calloc((size_t)cl->n + 1, sizeof *rc);
    char (*cat)[64] = calloc((size_t)cl->n + 1, sizeof *cat);
    if (!rc || !cat)
        abort();
    int n = 0;
    for (int c = 0; c < cl->n; c++) {
        if (cl->v[c].r.kind != R_SKIP)
            continue;
        const char *key = cl->v[c].r.key;
        if (!full) {
            snprintf(cat[c], sizeof cat[c], "%.*s", (int)strcspn(key, ":"), key);
            key = cat[c];
        }
        int i = 0;
        while (i < n && strcmp(rc[i].key, key) != 0)
            i++;
        if (i == n)
            rc[n++] = (reason_count){key, 0};
        rc[i].count++;
    }
    qsort(rc, (size_t)n, sizeof *rc, by_count);
    if (n)
        printf("skips by %s:\n", full ? "reason" : "category");
    for (int i = 0; i < n; i++)
        printf("  %5d  %s\n", rc[i].count, rc[i].key);
    free(rc);
    free(cat);
}

static void usage(FILE *f)
{
    fprintf(f, "usage: conformance [--list-skips] [--require FILE] [--filter GLOB] [--no-fork] "
               "DATA...\n"
               "  DATA          a directory of test_* cases, or of such directories\n"
               "  --list-skips  print each skipped case with its reason\n"
               "  --require F   glob patterns (one a line, '!' excludes, '#' comments) of cases\n"
               "                that must pass; exit non-zero naming any that did not\n"
               "  --filter G    run only cases whose name (or group/name) matches G\n"
               "  --no-fork     run every case in this process (for a debugger)\n");
}

int main(int argc, char **argv)
{
    bool list_skips = false, fork_cases = true;
    const char *require = NULL, *filter = NULL;
    case_list cl = {0};
    const char *roots[64];
    int n_roots = 0;
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--list-skips") == 0)
            list_skips = true;
        else if (strcmp(argv[i], "--no-fork") == 0)
            fork_cases = false;
        else if (strcmp(argv[i], "--require") == 0 && i + 1 < argc)
            require = argv[++i];
        else if (strcmp(argv[i], "--filter") == 0 && i + 1 < argc)
            filter = argv[++i];
        else if (strcmp(argv[i], "-h") == 0 || strcmp(argv[i], "--help") == 0) {
            usage(stdout);
            return 0;
        } else if (argv[i][0] == '-' || n_roots == 64) {
            usage(stderr);
            return 2;
        } else
            roots[n_roots++] = argv[i];
    }
    if (n_roots == 0) {
        usage(stderr);
        return 2;
    }

    struct timespec t0, t1;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    hs_set_threads(1);
    for (int i = 0; i < n_roots; i++) {
        int before = cl.n;
        collect(&cl, roots[i]);
        if (cl.n == before) {
            fprintf(stderr, "conformance: no test_* cases under %s\n", roots[i]);
            return 2;
        }
    }

    int passed = 0, failed = 0, skipped = 0;
    for (int c = 0; c < cl.n; c++) {
        test_case *tc = &cl.v[c];
        if (filter && !case_matches(tc, filter)) {
            tc->r.kind = R_NOT_RUN;
            continue;
        }
        if (fork_cases)
            run_case_isolated(tc->dir, &tc->r);
        else
            run_case(tc->dir, &tc->r);
        if (tc->r.kind == R_FAIL) {
            const char *s = tc->r.fails ? tc->r.fails : "failed\n";
            while (*s) {
                size_t len = strcspn(s, "\n");
                printf("FAIL %s/%s: %.*s\n", tc->group, tc->name, (int)len, s);
                s += len + (s[len] == '\n');
            }
            fflush(stdout);
        }
    }

    for (int gi = 0; gi < cl.n_groups; gi++) {
        int p = 0, f = 0, s = 0;
        for (int c = 0; c < cl.n; c++) {
            if (strcmp(cl.v[c].group, cl.groups[gi]) != 0)
                continue;
            int k = cl.v[c].r.kind;
            p += k == R_PASS;
            f += k == R_FAIL;
            s += k == R_SKIP;
        }
        printf("%-20s %4d passed, %4d failed, %4d skipped\n", cl.groups[gi], p, f, s);
        passed += p;
        failed += f;
        skipped += s;
    }
    printf("%-20s %4d passed, %4d failed, %4d skipped\n", "total", passed, failed, skipped);
    int consts = 0, folded = 0;
    for (int c = 0; c < cl.n; c++) {
        consts += cl.v[c].r.kind != R_SKIP && cl.v[c].r.consts_bound;
        folded += cl.v[c].r.kind != R_SKIP && cl.v[c].r.folded;
    }
    printf("%d case%s ran with inputs after the first bound as constants (weights given as "
           "graph inputs)\n", consts, consts == 1 ? "" : "s");
    printf("%d case%s folded entirely at load time (outputs read from the graph's constants)\n",
           folded, folded == 1 ? "" : "s");

    if (list_skips) {
        for (int c = 0; c < cl.n; c++)
            if (cl.v[c].r.kind == R_SKIP)
                printf("SKIP %s/%s: %s\n", cl.v[c].group, cl.v[c].name, cl.v[c].r.detail);
    }
    print_skip_groups(&cl, list_skips);

    int problems = require ? check_required(&cl, require) : 0;

    clock_gettime(CLOCK_MONOTONIC, &t1);
    printf("elapsed: %.2f s\n", (double)(t1.tv_sec - t0.tv_sec) + (t1.tv_nsec - t0.tv_nsec) / 1e9);
    printf("conformance: %d passed, %d failed, %d skipped\n", passed, failed, skipped);

    for (int c = 0; c < cl.n; c++) {
        free(cl.v[c].group);
        free(cl.v[c].name);
        free(cl.v[c].dir);
        free(cl.v[c].r.fails);
    }
    free(cl.v);
    for (int gi = 0; gi < cl.n_groups; gi++)
        free(cl.groups[gi]);
    free(cl.groups);
    return failed == 0 && problems == 0 ? 0 : 1;
}
