/*
 * Profiles: what one machine measured for one model, and the per-op-class regressions that
 * price nodes it never ran.
 *
 * Measuring runs the whole graph as one hs_exec with per-node timing: `warmup` unrecorded
 * runs, then `repeats` timed ones, and keeps each node's median (robust to the odd preempted
 * run on a shared machine).
 *
 * Op classes (cost_impl.h) group nodes whose time follows the same law:
 *   conv         Conv, groups 1, overlapping or strided windows (im2col + GEMM)
 *   pointwise    Conv, groups 1, 1x1 stride 1: a plain GEMM straight over the input. hs_node_info
 *                has no kernel or stride, so the test is "kernel volume x output pixels ==
 *                input pixels" (from flops, output shape and input bytes), which also admits
 *                non-overlapping patchify convs (k x k stride k, no padding): a plain GEMM too
 *   depthwise    Conv, groups == input channels > 1 (tested as groups == output channels and
 *                one input channel per group, i.e. depth multiplier 1)
 *   grouped      other Convs with groups > 1
 *   gemm         Gemm, MatMul
 *   pool         MaxPool, AveragePool, GlobalAveragePool, GlobalMaxPool, ReduceMean
 *   elementwise  Add, Sub, Mul, Div, Relu, LeakyRelu, Clip, HardSigmoid, HardSwish (arithmetic)
 *   transcendental  Sigmoid, Tanh: an exp per element makes them 5-10x dearer per byte than
 *                the arithmetic ones (efficientnet_b0 spends half its time in Sigmoid)
 *   norm         BatchNormalization (one not folded into a Conv), LRN, Softmax
 *   data         Concat, Split, Slice, Flatten, Reshape, Transpose, Squeeze, Unsqueeze, Pad,
 *                Shape, Gather, Cast, Identity, Dropout
 *   other        anything else
 *
 * Regression, per class: time = a * flops + b * bytes + c, bytes = input + weight + output
 * bytes, a, b, c >= 0, least squares with each residual weighted by 1/sqrt(measured time).
 * Node times span four decades: an absolute fit prices the many small nodes of a class by the
 * few large ones, a relative one (weight 1/t) fits small nodes well but comes out biased low
 * on sums (-5..-26% on the zoo models' totals here); 1/sqrt(t) keeps per-class median errors
 * close to the relative fit's and totals within ~10%. Non-negativity by enumerating the
 * active sets of the 3x3 normal equations, which is exact. Classes with fewer than FIT_FULL_MIN samples fit one
 * term + c (flops for compute classes, bytes for memory-bound ones); fewer than FIT_TWO_MIN,
 * they use the global fit over all nodes, which also prices classes a profile lacks.
 *
 * The YAML is written by hand (every string double-quoted and escaped, numbers "%.9g") and
 * read back through a libcyaml schema; every load error names the file, the line and the
 * field ("p.yaml:12: classes[2].sec_per_flop: must be a finite number >= 0").
 */
#include <assert.h>
#include <errno.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <cyaml/cyaml.h>
#include <yaml.h>

#include "cost_impl.h"

/* OpenBLAS's own API (its cblas.h is not on the solver's include path). */
extern char *openblas_get_corename(void);
extern int openblas_get_num_threads(void);

#define PROFILE_VERSION 1
#define FIT_FULL_MIN 8 /* samples for the 3-term fit */
#define FIT_TWO_MIN 3  /* samples for the 2-term fit; fewer: the global fit */

const char *const hs__op_class_names[HS_CLASS_COUNT] = {
    [HS_CLASS_CONV] = "conv",
    [HS_CLASS_POINTWISE] = "pointwise",
    [HS_CLASS_DEPTHWISE] = "depthwise",
    [HS_CLASS_GROUPED] = "grouped",
    [HS_CLASS_GEMM] = "gemm",
    [HS_CLASS_POOL] = "pool",
    [HS_CLASS_ELEMENTWISE] = "elementwise",
    [HS_CLASS_TRANSCENDENTAL] = "transcendental",
    [HS_CLASS_NORM] = "norm",
    [HS_CLASS_DATA] = "data",
    [HS_CLASS_OTHER] = "other",
};
_Static_assert(sizeof hs__op_class_names / sizeof hs__op_class_names[0] == HS_CLASS_COUNT,
               "one name per op class");

/* Which term a 2-term fit keeps, per class: compute-bound classes flops, the rest bytes. */
static const bool class_compute_bound[HS_CLASS_COUNT] = {
    [HS_CLASS_CONV] = true, [HS_CLASS_POINTWISE] = true, [HS_CLASS_DEPTHWISE] = false,
    [HS_CLASS_GROUPED] = true, [HS_CLASS_GEMM] = true,
};

typedef enum fit_kind { FIT_FULL = 0, FIT_FLOPS, FIT_BYTES, FIT_GLOBAL, FIT_KIND_COUNT } fit_kind;
static const char *const fit_kind_names[FIT_KIND_COUNT] = {"full", "flops", "bytes", "global"};

/* ---- the profile, as loaded or measured ---------------------------------------------------
 * Field names follow the YAML keys, so that the libcyaml schema below maps them directly. */

typedef struct prof_fit {
    char *name;           /* class name ("global" for the global fit) */
    unsigned samples;
    char *fit;            /* fit_kind_names[] */
    double sec_per_flop, sec_per_byte, sec_fixed;
    double median_rel_error;
} prof_fit;

typedef struct prof_node {
    char *name, *op, *class_name;
    int64_t *shape;
    unsigned shape_count;
    double flops, bytes, seconds;
} prof_node;

typedef struct prof_machine {
    char *blas_core;
    int threads;
    char *cpu;
    double io_s_per_byte; /* CPU per byte sent or received; 0: not measured */
} prof_machine;

typedef struct prof_doc {
    int version;
    char *model;
    prof_machine machine;
    int warmup, repeats;
    double total_seconds;
    prof_fit global;
    prof_fit *classes;
    unsigned classes_count;
    prof_node *nodes;
    unsigned nodes_count;
} prof_doc;

struct hs_profile {
    prof_doc *doc;
    bool from_cyaml;     /* doc was allocated by libcyaml (free with cyaml_free) */
    int class_fit[HS_CLASS_COUNT]; /* index into doc->classes, -1: use the global fit */
    int *order;          /* node indices sorted by (name, op, shape) for lookups */
};

/* ---- op classes -------------------------------------------------------------------------- */

static bool op_in(const char *op, const char *const *list)
{
    for (; *list; list++)
        if (strcmp(op, *list) == 0)
            return true;
    return false;
}

static hs__op_class_id conv_class(const hs_node_info *ni)
{
    const hs_tensor *o = &ni->output;
    if (o->ndim < 3)
        return HS_CLASS_CONV;
    int64_t batch = o->shape[0], m = o->shape[1], opix = 1;
    for (int d = 2; d < o->ndim; d++)
        opix *= o->shape[d];
    if (batch <= 0 || m <= 0 || opix <= 0)
        return HS_CLASS_CONV;
    /* flops = 2 * batch * m * opix * (cg * kvol), + batch * m * opix with a bias, + as much
     * again with a fused activation: x = flops / (2 batch m opix) is k, k + 1/2 or k + 1. */
    double k = ceil(ni->flops / (2.0 * (double)(batch * m * opix)) - 1.0 - 1e-9);
    if (ni->groups > 1) {
        /* Input elements per group and per pixel: input_bytes / (4 batch groups ipix); with
         * one channel per group and the output's pixel count that is 1 for stride 1, 4 for
         * stride 2; the output-channel test below settles depthwise without it. */
        return ni->groups == m ? HS_CLASS_DEPTHWISE : HS_CLASS_GROUPED;
    }
    /* groups 1: cg * kvol * batch * opix * 4 == input bytes  <=>  kvol * opix == ipix. */
    double in_elems = (double)ni->input_bytes / (double)hs_dtype_size(o->dtype);
    return fabs(k * (double)(batch * opix) - in_elems) < 0.5 ? HS_CLASS_POINTWISE
                                                             : HS_CLASS_CONV;
}

hs__op_class_id hs__op_class_of(const hs_graph *g, int i)
{
    static const char *const gemm[] = {"Gemm", "MatMul", NULL};
    static const char *const pool[] = {"MaxPool", "AveragePool", "GlobalAveragePool",
                                       "GlobalMaxPool", "ReduceMean", NULL};
    static const char *const elementwise[] = {"Add",  "Sub",       "Mul",         "Div",
                                              "Relu", "LeakyRelu", "Clip",        "HardSigmoid",
                                              "HardSwish", NULL};
    static const char *const transcendental[] = {"Sigmoid", "Tanh", NULL};
    static const char *const norm[] = {"BatchNormalization", "LRN", "Softmax", NULL};
    static const char *const data[] = {"Concat", "Split", "Slice", "Flatten", "Reshape",
                                       "Transpose", "Squeeze", "Unsqueeze", "Pad", "Shape",
                                       "Gather", "Cast", "Identity", "Dropout", NULL};
    hs_node_info ni;
    hs_graph_node_info(g, i, &ni);
    if (strcmp(ni.op, "Conv") == 0)
        return conv_class(&ni);
    if (op_in(ni.op, gemm))
        return HS_CLASS_GEMM;
    if (op_in(ni.op, pool))
        return HS_CLASS_POOL;
    if (op_in(ni.op, elementwise))
        return HS_CLASS_ELEMENTWISE;
    if (op_in(ni.op, transcendental))
        return HS_CLASS_TRANSCENDENTAL;
    if (op_in(ni.op, norm))
        return HS_CLASS_NORM;
    if (op_in(ni.op, data))
        return HS_CLASS_DATA;
    return HS_CLASS_OTHER;
}

const char *hs_op_class(const hs_graph *g, int i)
{
    return hs__op_class_names[hs__op_class_of(g, i)];
}

int hs__op_class_find(const char *name)
{
    for (int c = 0; c < HS_CLASS_COUNT; c++)
        if (strcmp(name, hs__op_class_names[c]) == 0)
            return c;
    return -1;
}

double hs__node_bytes(const hs_graph *g, int i)
{
    hs_node_info ni;
    hs_graph_node_info(g, i, &ni);
    return (double)(ni.input_bytes + ni.weight_bytes + ni.output_bytes);
}

/* ---- non-negative least squares in three unknowns ---------------------------------------- */

/* Solves the k x k system a x = b (k <= 3) by Gaussian elimination with partial pivoting;
 * false if singular. */
static bool solve_small(double a[3][3], double b[3], int k, double x[3])
{
    for (int col = 0; col < k; col++) {
        int piv = col;
        for (int r = col + 1; r < k; r++)
            if (fabs(a[r][col]) > fabs(a[piv][col]))
                piv = r;
        if (fabs(a[piv][col]) < 1e-12)
            return false;
        if (piv != col) {
            for (int c = 0; c < k; c++) {
                double t = a[col][c];
                a[col][c] = a[piv][c];
                a[piv][c] = t;
            }
            double t = b[col];
            b[col] = b[piv];
            b[piv] = t;
        }
        for (int r = col + 1; r < k; r++) {
            double f = a[r][col] / a[col][col];
            for (int c = col; c < k; c++)
                a[r][c] -= f * a[col][c];
            b[r] -= f * b[col];
        }
    }
    for (int r = k - 1; r >= 0; r--) {
        double s = b[r];
        for (int c = r + 1; c < k; c++)
            s -= a[r][c] * x[c];
        x[r] = s / a[r][r];
    }
    return true;
}

bool hs__nnls_fit(const double *flops, const double *bytes, const double *t, int n,
                  const bool use[3], double coef[3])
{
    /* Rows weighted by 1 / sqrt(t); columns scaled to unit RMS so that the normal equations
     * are well conditioned whatever the units. */
    double scale[3] = {0, 0, 0};
    int rows = 0;
    for (int s = 0; s < n; s++) {
        if (!(t[s] > 0))
            continue;
        double w = 1.0 / sqrt(t[s]);
        double x[3] = {flops[s] * w, bytes[s] * w, w};
        for (int j = 0; j < 3; j++)
            scale[j] += x[j] * x[j];
        rows++;
    }
    coef[0] = coef[1] = coef[2] = 0;
    if (rows == 0)
        return false;
    double ata[3][3] = {{0}}, atb[3] = {0};
    for (int j = 0; j < 3; j++)
        scale[j] = scale[j] > 0 ? sqrt(scale[j] / rows) : 1.0;
    for (int s = 0; s < n; s++) {
        if (!(t[s] > 0))
            continue;
        double w = 1.0 / sqrt(t[s]);
        double x[3] = {flops[s] * w / scale[0], bytes[s] * w / scale[1], w / scale[2]};
        for (int j = 0; j < 3; j++) {
            atb[j] += x[j] * t[s] * w;
            for (int l = 0; l < 3; l++)
                ata[j][l] += x[j] * x[l];
        }
    }
    /* The NNLS optimum is the unconstrained optimum on its own support: try every support
     * (subset of the used terms), keep the feasible one with the least residual. */
    double yty = 0;
    for (int s = 0; s < n; s++)
        if (t[s] > 0) {
            double w = 1.0 / sqrt(t[s]);
            yty += t[s] * w * t[s] * w;
        }
    double best = INFINITY, best_x[3] = {0, 0, 0};
    for (int mask = 1; mask < 8; mask++) {
        int idx[3], k = 0;
        for (int j = 0; j < 3; j++)
            if (mask & (1 << j)) {
                if (!use[j])
                    goto next;
                idx[k++] = j;
            }
        double a[3][3], b[3], x[3];
        for (int r = 0; r < k; r++) {
            b[r] = atb[idx[r]];
            for (int c = 0; c < k; c++)
                a[r][c] = ata[idx[r]][idx[c]];
        }
        if (!solve_small(a, b, k, x))
            continue;
        double resid = yty, full[3] = {0, 0, 0};
        for (int r = 0; r < k; r++) {
            if (x[r] < 0)
                goto next;
            full[idx[r]] = x[r];
        }
        /* |y - A x|^2 = y.y - 2 x.atb + x.ata.x */
        for (int j = 0; j < 3; j++) {
            resid -= 2 * full[j] * atb[j];
            for (int l = 0; l < 3; l++)
                resid += full[j] * ata[j][l] * full[l];
        }
        if (resid < best) {
            best = resid;
            memcpy(best_x, full, sizeof best_x);
        }
    next:;
    }
    for (int j = 0; j < 3; j++)
        coef[j] = best_x[j] / scale[j];
    return true;
}

static double fit_predict(const prof_fit *f, double flops, double bytes)
{
    return f->sec_per_flop * flops + f->sec_per_byte * bytes + f->sec_fixed;
}

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

static double median(double *v, int n)
{
    if (n == 0)
        return 0;
    qsort(v, (size_t)n, sizeof *v, cmp_double);
    return n % 2 ? v[n / 2] : 0.5 * (v[n / 2 - 1] + v[n / 2]);
}

/* Fits f over the nodes of class cls (-1: all nodes) with the given kind; sets samples and
 * the median relative error. Scratch arrays hold n entries each. */
static void fit_class(const prof_doc *d, int cls, fit_kind kind, prof_fit *f, double *fl,
                      double *by, double *t)
{
    int n = 0;
    for (unsigned s = 0; s < d->nodes_count; s++) {
        const prof_node *pn = &d->nodes[s];
        if (cls >= 0 && hs__op_class_find(pn->class_name) != cls)
            continue;
        fl[n] = pn->flops;
        by[n] = pn->bytes;
        t[n] = pn->seconds;
        n++;
    }
    f->samples = (unsigned)n;
    f->fit = (char *)fit_kind_names[kind];
    bool use[3] = {kind != FIT_BYTES, kind != FIT_FLOPS, true};
    double coef[3];
    hs__nnls_fit(fl, by, t, n, use, coef);
    f->sec_per_flop = coef[0];
    f->sec_per_byte = coef[1];
    f->sec_fixed = coef[2];
    int m = 0;
    for (int s = 0; s < n; s++)
        if (t[s] > 0)
            fl[m++] = fabs(fit_predict(f, fl[s], by[s]) - t[s]) / t[s];
    f->median_rel_error = median(fl, m);
}

/* ---- lookups ----------------------------------------------------------------------------- */

/* FLOPs as written to a profile ("%.9g"), so that a measured and a loaded profile match a
 * graph's nodes alike. */
static double canon_flops(double v)
{
    char buf[40];
    snprintf(buf, sizeof buf, "%.9g", v);
    return strtod(buf, NULL);
}

/* Node identity: name, op, output shape and FLOPs. The header promises name, op and shape;
 * FLOPs also tell apart nodes those agree on, such as resnet50's 1x1 "layer1.0.conv1" and
 * resnet18's 3x3 one (same name, op and output shape). */
static int cmp_key(const char *name, const char *op, const int64_t *shape, unsigned ndim,
                   double flops, const prof_node *b)
{
    int c = strcmp(name, b->name);
    if (c)
        return c;
    if ((c = strcmp(op, b->op)))
        return c;
    if (ndim != b->shape_count)
        return ndim < b->shape_count ? -1 : 1;
    for (unsigned d = 0; d < ndim; d++)
        if (shape[d] != b->shape[d])
            return shape[d] < b->shape[d] ? -1 : 1;
    return (flops > b->flops) - (flops < b->flops);
}

static const prof_doc *sort_doc; /* qsort has no context argument in C11 */

static int cmp_order(const void *a, const void *b)
{
    const prof_node *x = &sort_doc->nodes[*(const int *)a];
    const prof_node *y = &sort_doc->nodes[*(const int *)b];
    int c = cmp_key(x->name, x->op, x->shape, x->shape_count, x->flops, y);
    return c ? c : (*(const int *)a > *(const int *)b) - (*(const int *)a < *(const int *)b);
}

/* Builds the lookup index and the class table of a complete doc. */
static hs_status index_profile(hs_profile *p, hs_error *err)
{
    prof_doc *d = p->doc;
    for (int c = 0; c < HS_CLASS_COUNT; c++)
        p->class_fit[c] = -1;
    for (unsigned k = 0; k < d->classes_count; k++)
        p->class_fit[hs__op_class_find(d->classes[k].name)] = (int)k;
    p->order = malloc((d->nodes_count ? d->nodes_count : 1) * sizeof *p->order);
    if (!p->order)
        return hs_error_set(err, HS_ERR_NOMEM, "profile: out of memory");
    for (unsigned s = 0; s < d->nodes_count; s++)
        p->order[s] = (int)s;
    sort_doc = d;
    qsort(p->order, d->nodes_count, sizeof *p->order, cmp_order);
    sort_doc = NULL;
    return HS_OK;
}

double hs__profile_measured(const hs_profile *p, const hs_graph *g, int i)
{
    hs_node_info ni;
    hs_graph_node_info(g, i, &ni);
    int64_t shape[HS_MAX_DIMS];
    for (int d = 0; d < ni.output.ndim; d++)
        shape[d] = ni.output.shape[d];
    double flops = canon_flops(ni.flops);
    const prof_doc *doc = p->doc;
    int lo = 0, hi = (int)doc->nodes_count;
    while (lo < hi) { /* first entry >= key */
        int mid = (lo + hi) / 2;
        if (cmp_key(ni.name, ni.op, shape, (unsigned)ni.output.ndim, flops,
                    &doc->nodes[p->order[mid]]) > 0)
            lo = mid + 1;
        else
            hi = mid;
    }
    if (lo < (int)doc->nodes_count &&
        cmp_key(ni.name, ni.op, shape, (unsigned)ni.output.ndim, flops,
                &doc->nodes[p->order[lo]]) == 0)
        return doc->nodes[p->order[lo]].seconds;
    return -1;
}

double hs__profile_regress(const hs_profile *p, const hs_graph *g, int i)
{
    hs_node_info ni;
    hs_graph_node_info(g, i, &ni);
    int k = p->class_fit[hs__op_class_of(g, i)];
    const prof_fit *f = k >= 0 ? &p->doc->classes[k] : &p->doc->global;
    return fit_predict(f, ni.flops, (double)(ni.input_bytes + ni.weight_bytes + ni.output_bytes));
}

double hs_profile_node_time(const hs_profile *p, const hs_graph *g, int i)
{
    assert(p && g && i >= 0 && i < hs_graph_node_count(g));
    double t = hs__profile_measured(p, g, i);
    return t >= 0 ? t : hs__profile_regress(p, g, i);
}

int hs_profile_class_count(const hs_profile *p)
{
    assert(p);
    return (int)p->doc->classes_count;
}

static void class_out(const prof_fit *f, hs_profile_class *out)
{
    out->name = f->name;
    out->samples = (int)f->samples;
    out->sec_per_flop = f->sec_per_flop;
    out->sec_per_byte = f->sec_per_byte;
    out->sec_fixed = f->sec_fixed;
    out->median_rel_error = f->median_rel_error;
}

void hs_profile_class_info(const hs_profile *p, int i, hs_profile_class *out)
{
    assert(p && out && i >= 0 && i < (int)p->doc->classes_count);
    class_out(&p->doc->classes[i], out);
}

void hs__profile_global(const hs_profile *p, hs_profile_class *out) { class_out(&p->doc->global, out); }
const char *hs__profile_model(const hs_profile *p) { return p->doc->model; }
double hs__profile_total(const hs_profile *p) { return p->doc->total_seconds; }

double hs_profile_io_cost(const hs_profile *p) { return p->doc->machine.io_s_per_byte; }

void hs_profile_set_io_cost(hs_profile *p, double s_per_byte)
{
    assert(p && s_per_byte >= 0 && isfinite(s_per_byte));
    p->doc->machine.io_s_per_byte = s_per_byte;
}
const char *hs__profile_blas_core(const hs_profile *p) { return p->doc->machine.blas_core; }
int hs__profile_threads(const hs_profile *p) { return p->doc->machine.threads; }

/* ---- freeing ----------------------------------------------------------------------------- */

static const cyaml_schema_value_t doc_schema;
static const cyaml_config_t *cyaml_config(void);

/* A measured doc owns its strings (strdup'd), except fit kinds and class names of fits,
 * which point at static tables. */
static void free_measured(prof_doc *d)
{
    if (!d)
        return;
    for (unsigned s = 0; s < d->nodes_count; s++) {
        free(d->nodes[s].name);
        free(d->nodes[s].op);
        free(d->nodes[s].shape);
    }
    free(d->nodes);
    free(d->classes);
    free(d->model);
    free(d->machine.blas_core);
    free(d->machine.cpu);
    free(d);
}

void hs_profile_free(hs_profile *p)
{
    if (!p)
        return;
    if (p->from_cyaml)
        cyaml_free(cyaml_config(), &doc_schema, p->doc, 0);
    else
        free_measured(p->doc);
    free(p->order);
    free(p);
}

/* ---- measuring --------------------------------------------------------------------------- */

static char *cpu_model(void)
{
    FILE *f = fopen("/proc/cpuinfo", "r");
    char line[512];
    if (f) {
        while (fgets(line, sizeof line, f)) {
            if (strncmp(line, "model name", 10) == 0) {
                char *v = strchr(line, ':');
                if (v) {
                    v++;
                    while (*v == ' ' || *v == '\t')
                        v++;
                    v[strcspn(v, "\n")] = '\0';
                    fclose(f);
                    return strdup(v);
                }
            }
        }
        fclose(f);
    }
    return strdup("unknown");
}

static const char *base_name(const char *path)
{
    const char *s = strrchr(path, '/');
    return s ? s + 1 : path;
}

/* Fills in the fits of a doc whose nodes are complete. */
static hs_status fit_doc(prof_doc *d, hs_error *err)
{
    int n = (int)d->nodes_count;
    double *scratch = malloc(3 * (size_t)(n ? n : 1) * sizeof *scratch);
    d->classes = calloc(HS_CLASS_COUNT, sizeof *d->classes);
    if (!scratch || !d->classes) {
        free(scratch);
        return hs_error_set(err, HS_ERR_NOMEM, "profile: out of memory");
    }
    double *fl = scratch, *by = scratch + n, *t = scratch + 2 * n;
    fit_class(d, -1, FIT_FULL, &d->global, fl, by, t);
    d->global.name = "global";
    d->classes_count = 0;
    for (int c = 0; c < HS_CLASS_COUNT; c++) {
        unsigned count = 0;
        for (unsigned s = 0; s < d->nodes_count; s++)
            count += hs__op_class_find(d->nodes[s].class_name) == c;
        if (count == 0)
            continue;
        prof_fit *f = &d->classes[d->classes_count++];
        fit_kind kind = count >= FIT_FULL_MIN ? FIT_FULL
                        : count >= FIT_TWO_MIN ? (class_compute_bound[c] ? FIT_FLOPS : FIT_BYTES)
                                               : FIT_GLOBAL;
        if (kind == FIT_GLOBAL) {
            /* The global coefficients, with this class's own error. */
            fit_class(d, c, FIT_FULL, f, fl, by, t);
            f->sec_per_flop = d->global.sec_per_flop;
            f->sec_per_byte = d->global.sec_per_byte;
            f->sec_fixed = d->global.sec_fixed;
            f->fit = (char *)fit_kind_names[FIT_GLOBAL];
            int m = 0;
            for (unsigned s = 0; s < d->nodes_count; s++) {
                const prof_node *pn = &d->nodes[s];
                if (hs__op_class_find(pn->class_name) == c && pn->seconds > 0)
                    fl[m++] = fabs(fit_predict(f, pn->flops, pn->bytes) - pn->seconds) /
                              pn->seconds;
            }
            f->median_rel_error = median(fl, m);
        } else {
            fit_class(d, c, kind, f, fl, by, t);
        }
        f->name = (char *)hs__op_class_names[c];
    }
    free(scratch);
    return HS_OK;
}

hs_status hs_profile_measure(const hs_graph *g, int warmup, int repeats, hs_progress_fn progress,
                             void *ctx, hs_profile **out, hs_error *err)
{
    assert(g && out && warmup >= 0 && repeats >= 1);
    *out = NULL;
    int n = hs_graph_node_count(g);
    int n_in = hs_graph_input_count(g);
    hs_status st;
    hs_exec *x = NULL;
    hs_tensor *in = calloc((size_t)n_in + 1, sizeof *in);
    hs_tensor *outs = NULL;
    double *samples = malloc((size_t)n * (size_t)repeats * sizeof *samples);
    hs_profile *p = calloc(1, sizeof *p);
    prof_doc *d = calloc(1, sizeof *d);
    if (!in || !samples || !p || !d) {
        st = hs_error_set(err, HS_ERR_NOMEM, "%s: profile: out of memory", hs_graph_name(g));
        goto fail;
    }
    p->doc = d;
    if ((st = hs_exec_new(g, 0, n, &x, err)) != HS_OK)
        goto fail;
    int n_out = hs_exec_output_count(x);
    outs = calloc((size_t)n_out + 1, sizeof *outs);
    if (!outs) {
        st = hs_error_set(err, HS_ERR_NOMEM, "%s: profile: out of memory", hs_graph_name(g));
        goto fail;
    }
    /* Inputs: a fixed pseudo-random pattern in [-1, 1) (zeros for integer inputs). */
    uint32_t seed = 12345;
    for (int k = 0; k < n_in; k++) {
        hs_graph_input(g, k, &in[k]);
        size_t bytes = hs_tensor_nbytes(&in[k]);
        in[k].data = calloc(1, bytes ? bytes : 1);
        if (!in[k].data) {
            st = hs_error_set(err, HS_ERR_NOMEM, "%s: profile: out of memory", hs_graph_name(g));
            goto fail;
        }
        if (in[k].dtype == HS_F32) {
            float *v = in[k].data;
            for (int64_t e = 0; e < hs_tensor_numel(&in[k]); e++) {
                seed = seed * 1664525u + 1013904223u;
                v[e] = (float)(seed >> 8) / (float)(1u << 24) * 2.0f - 1.0f;
            }
        }
    }
    hs_exec_set_profiling(x, true);
    int runs = warmup + repeats;
    for (int r = 0; r < runs; r++) {
        if ((st = hs_exec_run(x, in, n_in, outs, n_out, err)) != HS_OK)
            goto fail;
        if (r >= warmup) {
            const double *sec = hs_exec_node_seconds(x);
            for (int i = 0; i < n; i++)
                samples[(size_t)i * (size_t)repeats + (size_t)(r - warmup)] = sec[i];
        }
        if (progress)
            progress(ctx, (r + 1) * n, runs * n);
    }

    d->version = PROFILE_VERSION;
    d->model = strdup(base_name(hs_graph_name(g)));
    d->machine.blas_core = strdup(openblas_get_corename());
    d->machine.threads = openblas_get_num_threads();
    d->machine.cpu = cpu_model();
    d->warmup = warmup;
    d->repeats = repeats;
    d->nodes = calloc((size_t)n + 1, sizeof *d->nodes);
    if (!d->model || !d->machine.blas_core || !d->machine.cpu || !d->nodes) {
        st = hs_error_set(err, HS_ERR_NOMEM, "%s: profile: out of memory", hs_graph_name(g));
        goto fail;
    }
    for (int i = 0; i < n; i++) {
        hs_node_info ni;
        hs_graph_node_info(g, i, &ni);
        prof_node *pn = &d->nodes[i];
        d->nodes_count = (unsigned)i + 1;
        pn->name = strdup(ni.name);
        pn->op = strdup(ni.op);
        pn->class_name = (char *)hs_op_class(g, i);
        pn->shape = malloc(((size_t)ni.output.ndim + 1) * sizeof *pn->shape);
        if (!pn->name || !pn->op || !pn->shape) {
            st = hs_error_set(err, HS_ERR_NOMEM, "%s: profile: out of memory",
                               hs_graph_name(g));
            goto fail;
        }
        pn->shape_count = (unsigned)ni.output.ndim;
        memcpy(pn->shape, ni.output.shape, (size_t)ni.output.ndim * sizeof *pn->shape);
        pn->flops = canon_flops(ni.flops);
        pn->bytes = (double)(ni.input_bytes + ni.weight_bytes + ni.output_bytes);
        pn->seconds = median(samples + (size_t)i * (size_t)repeats, repeats);
        d->total_seconds += pn->seconds;
    }
    if ((st = fit_doc(d, err)) != HS_OK || (st = index_profile(p, err)) != HS_OK)
        goto fail;
    if (progress)
        progress(ctx, runs * n, runs * n);
    for (int k = 0; k < n_in; k++)
        free(in[k].data);
    free(in);
    free(outs);
    free(samples);
    hs_exec_free(x);
    *out = p;
    return HS_OK;

fail:
    if (in)
        for (int k = 0; k < n_in; k++)
            free(in[k].data);
    free(in);
    free(outs);
    free(samples);
    hs_exec_free(x);
    if (p) {
        p->doc = NULL;
        hs_profile_free(p);
    }
    free_measured(d);
    return st;
}

/* ---- saving ------------------------------------------------------------------------------ */

/* A YAML double-quoted scalar: escapes quotes, backslashes and control characters; other
 * bytes (UTF-8) pass through. */
static void put_string(FILE *f, const char *s)
{
    fputc('"', f);
    for (const unsigned char *c = (const unsigned char *)s; *c; c++) {
        if (*c == '"' || *c == '\\')
            fprintf(f, "\\%c", *c);
        else if (*c < 0x20 || *c == 0x7f)
            fprintf(f, "\\x%02x", *c);
        else
            fputc(*c, f);
    }
    fputc('"', f);
}

static void put_fit(FILE *f, const prof_fit *c)
{
    fprintf(f, "{name: ");
    put_string(f, c->name);
    fprintf(f, ", samples: %u, fit: %s, sec_per_flop: %.9g, sec_per_byte: %.9g, "
               "sec_fixed: %.9g, median_rel_error: %.9g}",
            c->samples, c->fit, c->sec_per_flop, c->sec_per_byte, c->sec_fixed,
            c->median_rel_error);
}

hs_status hs_profile_save(const hs_profile *p, const char *path, hs_error *err)
{
    assert(p && path);
    const prof_doc *d = p->doc;
    FILE *f = fopen(path, "w");
    if (!f)
        return hs_error_set(err, HS_ERR_IO, "%s: cannot write: %s", path, strerror(errno));
    fprintf(f, "# hotsplit profile: median seconds of every node of a model measured on one\n"
               "# machine, and per op class the fit time = sec_per_flop * flops +\n"
               "# sec_per_byte * bytes + sec_fixed (bytes = input + weight + output bytes).\n");
    fprintf(f, "version: %d\nmodel: ", d->version);
    put_string(f, d->model);
    fprintf(f, "\nmachine:\n  blas_core: ");
    put_string(f, d->machine.blas_core);
    fprintf(f, "\n  threads: %d\n  cpu: ", d->machine.threads);
    put_string(f, d->machine.cpu);
    if (d->machine.io_s_per_byte > 0)
        fprintf(f, "\n  io_s_per_byte: %.9g", d->machine.io_s_per_byte);
    fprintf(f, "\nwarmup: %d\nrepeats: %d\ntotal_seconds: %.9g\nglobal: ", d->warmup,
            d->repeats, d->total_seconds);
    put_fit(f, &d->global);
    fprintf(f, "\nclasses:%s\n", d->classes_count ? "" : " []");
    for (unsigned k = 0; k < d->classes_count; k++) {
        fprintf(f, "  - ");
        put_fit(f, &d->classes[k]);
        fputc('\n', f);
    }
    fprintf(f, "nodes:%s\n", d->nodes_count ? "" : " []");
    for (unsigned s = 0; s < d->nodes_count; s++) {
        const prof_node *pn = &d->nodes[s];
        fprintf(f, "  - {name: ");
        put_string(f, pn->name);
        fprintf(f, ", op: ");
        put_string(f, pn->op);
        fprintf(f, ", class: %s, shape: [", pn->class_name);
        for (unsigned k = 0; k < pn->shape_count; k++)
            fprintf(f, "%s%lld", k ? ", " : "", (long long)pn->shape[k]);
        fprintf(f, "], flops: %.9g, bytes: %.9g, seconds: %.9g}\n", pn->flops, pn->bytes,
                pn->seconds);
    }
    if (ferror(f) | (fclose(f) != 0))
        return hs_error_set(err, HS_ERR_IO, "%s: write failed: %s", path, strerror(errno));
    return HS_OK;
}

/* ---- loading ----------------------------------------------------------------------------- */

static const cyaml_schema_value_t int64_entry = {
    CYAML_VALUE_INT(CYAML_FLAG_DEFAULT, int64_t),
};

static const cyaml_schema_field_t fit_fields[] = {
    CYAML_FIELD_STRING_PTR("name", CYAML_FLAG_POINTER, prof_fit, name, 0, CYAML_UNLIMITED),
    CYAML_FIELD_UINT("samples", CYAML_FLAG_DEFAULT, prof_fit, samples),
    CYAML_FIELD_STRING_PTR("fit", CYAML_FLAG_POINTER, prof_fit, fit, 0, CYAML_UNLIMITED),
    CYAML_FIELD_FLOAT("sec_per_flop", CYAML_FLAG_DEFAULT, prof_fit, sec_per_flop),
    CYAML_FIELD_FLOAT("sec_per_byte", CYAML_FLAG_DEFAULT, prof_fit, sec_per_byte),
    CYAML_FIELD_FLOAT("sec_fixed", CYAML_FLAG_DEFAULT, prof_fit, sec_fixed),
    CYAML_FIELD_FLOAT("median_rel_error", CYAML_FLAG_DEFAULT, prof_fit, median_rel_error),
    CYAML_FIELD_END,
};
static const cyaml_schema_value_t fit_entry = {
    CYAML_VALUE_MAPPING(CYAML_FLAG_DEFAULT, prof_fit, fit_fields),
};

static const cyaml_schema_field_t node_fields[] = {
    CYAML_FIELD_STRING_PTR("name", CYAML_FLAG_POINTER, prof_node, name, 0, CYAML_UNLIMITED),
    CYAML_FIELD_STRING_PTR("op", CYAML_FLAG_POINTER, prof_node, op, 0, CYAML_UNLIMITED),
    CYAML_FIELD_STRING_PTR("class", CYAML_FLAG_POINTER, prof_node, class_name, 0,
                           CYAML_UNLIMITED),
    CYAML_FIELD_SEQUENCE("shape", CYAML_FLAG_POINTER, prof_node, shape, &int64_entry, 0,
                         HS_MAX_DIMS),
    CYAML_FIELD_FLOAT("flops", CYAML_FLAG_DEFAULT, prof_node, flops),
    CYAML_FIELD_FLOAT("bytes", CYAML_FLAG_DEFAULT, prof_node, bytes),
    CYAML_FIELD_FLOAT("seconds", CYAML_FLAG_DEFAULT, prof_node, seconds),
    CYAML_FIELD_END,
};
static const cyaml_schema_value_t node_entry = {
    CYAML_VALUE_MAPPING(CYAML_FLAG_DEFAULT, prof_node, node_fields),
};

static const cyaml_schema_field_t machine_fields[] = {
    CYAML_FIELD_STRING_PTR("blas_core", CYAML_FLAG_POINTER, prof_machine, blas_core, 0,
                           CYAML_UNLIMITED),
    CYAML_FIELD_INT("threads", CYAML_FLAG_DEFAULT, prof_machine, threads),
    CYAML_FIELD_STRING_PTR("cpu", CYAML_FLAG_POINTER | CYAML_FLAG_OPTIONAL, prof_machine, cpu,
                           0, CYAML_UNLIMITED),
    CYAML_FIELD_FLOAT("io_s_per_byte", CYAML_FLAG_OPTIONAL, prof_machine, io_s_per_byte),
    CYAML_FIELD_END,
};

static const cyaml_schema_field_t doc_fields[] = {
    CYAML_FIELD_INT("version", CYAML_FLAG_DEFAULT, prof_doc, version),
    CYAML_FIELD_STRING_PTR("model", CYAML_FLAG_POINTER, prof_doc, model, 0, CYAML_UNLIMITED),
    CYAML_FIELD_MAPPING("machine", CYAML_FLAG_DEFAULT, prof_doc, machine, machine_fields),
    CYAML_FIELD_INT("warmup", CYAML_FLAG_DEFAULT, prof_doc, warmup),
    CYAML_FIELD_INT("repeats", CYAML_FLAG_DEFAULT, prof_doc, repeats),
    CYAML_FIELD_FLOAT("total_seconds", CYAML_FLAG_DEFAULT, prof_doc, total_seconds),
    CYAML_FIELD_MAPPING("global", CYAML_FLAG_DEFAULT, prof_doc, global, fit_fields),
    CYAML_FIELD_SEQUENCE("classes", CYAML_FLAG_POINTER, prof_doc, classes, &fit_entry, 0,
                         CYAML_UNLIMITED),
    CYAML_FIELD_SEQUENCE("nodes", CYAML_FLAG_POINTER, prof_doc, nodes, &node_entry, 0,
                         CYAML_UNLIMITED),
    CYAML_FIELD_END,
};
static const cyaml_schema_value_t doc_schema = {
    CYAML_VALUE_MAPPING(CYAML_FLAG_POINTER, prof_doc, doc_fields),
};

/* libcyaml reports through a log callback: the reason, then a backtrace from the innermost
 * node outwards ("  in mapping field 'x' (line: 3, column: 5)"). The loader captures it. */
typedef struct load_log {
    char reason[256];
    char path[256];   /* field path rebuilt from the backtrace, outermost first */
    int line;
    int frames;
    char frame[16][96]; /* backtrace frames as logged, innermost first */
    int frame_line[16];
} load_log;

static void cyaml_log_fn(cyaml_log_t level, void *ctx, const char *fmt, va_list args)
{
    load_log *lg = ctx;
    if (!lg || level < CYAML_LOG_ERROR)
        return;
    char msg[256];
    vsnprintf(msg, sizeof msg, fmt, args);
    msg[strcspn(msg, "\n")] = '\0';
    const char *in = strstr(msg, "in ");
    if (strncmp(msg, "  in ", 5) == 0 && in) {
        if (lg->frames < 16) {
            snprintf(lg->frame[lg->frames], sizeof lg->frame[0], "%s", in + 3);
            const char *l = strstr(msg, "(line: ");
            lg->frame_line[lg->frames] = l ? atoi(l + 7) : 0;
            lg->frames++;
        }
    } else if (strncmp(msg, "Load: ", 6) == 0 && strncmp(msg, "Load: Backtrace", 15) != 0 &&
               !lg->reason[0]) {
        snprintf(lg->reason, sizeof lg->reason, "%s", msg + 6);
    }
}

static const cyaml_config_t *cyaml_config(void)
{
    static const cyaml_config_t cfg = {
        .log_fn = cyaml_log_fn,
        .mem_fn = cyaml_mem,
        .log_level = CYAML_LOG_ERROR,
        .flags = CYAML_CFG_DEFAULT,
    };
    return &cfg;
}

/* Turns the captured backtrace into "a.b[2].c": mapping fields by name, sequence entries
 * (libcyaml counts them from 1) by index. */
static void backtrace_path(load_log *lg)
{
    size_t len = 0;
    lg->path[0] = '\0';
    for (int k = lg->frames - 1; k >= 0; k--) {
        const char *fr = lg->frame[k];
        const char *q = strchr(fr, '\'');
        const char *q2 = q ? strchr(q + 1, '\'') : NULL;
        if (!q || !q2)
            continue;
        int n = (int)(q2 - q - 1);
        if (strncmp(fr, "mapping field", 13) == 0)
            len += (size_t)snprintf(lg->path + len, sizeof lg->path - len, "%s%.*s",
                                    len ? "." : "", n, q + 1);
        else if (strncmp(fr, "sequence entry", 14) == 0)
            len += (size_t)snprintf(lg->path + len, sizeof lg->path - len, "[%d]",
                                    atoi(q + 1) - 1);
        if (len >= sizeof lg->path)
            len = sizeof lg->path - 1;
    }
    lg->line = lg->frames ? lg->frame_line[0] : 0;
}

/* Line (1-based) of `path` ("classes[2].sec_fixed") in the YAML file, found with libyaml: the
 * line of the last component's key (or sequence entry), where a reader looks; 0 if the file
 * does not parse or the path is absent. */
static int yaml_line_of(const char *file, const char *path)
{
    FILE *f = fopen(file, "rb");
    if (!f)
        return 0;
    yaml_parser_t parser;
    yaml_document_t doc;
    int line = 0;
    if (!yaml_parser_initialize(&parser)) {
        fclose(f);
        return 0;
    }
    yaml_parser_set_input_file(&parser, f);
    if (!yaml_parser_load(&parser, &doc)) {
        yaml_parser_delete(&parser);
        fclose(f);
        return 0;
    }
    yaml_node_t *node = yaml_document_get_root_node(&doc);
    const char *s = path;
    while (node && *s) {
        if (*s == '.')
            s++;
        if (*s == '[') {
            long idx = strtol(s + 1, (char **)&s, 10);
            if (*s == ']')
                s++;
            if (node->type != YAML_SEQUENCE_NODE ||
                idx >= node->data.sequence.items.top - node->data.sequence.items.start) {
                node = NULL;
                break;
            }
            node = yaml_document_get_node(&doc, node->data.sequence.items.start[idx]);
            continue;
        }
        size_t n = strcspn(s, ".[");
        yaml_node_t *next = NULL;
        if (node->type == YAML_MAPPING_NODE) {
            for (yaml_node_pair_t *pr = node->data.mapping.pairs.start;
                 pr < node->data.mapping.pairs.top; pr++) {
                yaml_node_t *k = yaml_document_get_node(&doc, pr->key);
                if (k && k->type == YAML_SCALAR_NODE && k->data.scalar.length == n &&
                    memcmp(k->data.scalar.value, s, n) == 0) {
                    next = s[n] ? yaml_document_get_node(&doc, pr->value) : k;
                    break;
                }
            }
        }
        node = next;
        s += n;
    }
    if (node)
        line = (int)node->start_mark.line + 1;
    yaml_document_delete(&doc);
    yaml_parser_delete(&parser);
    fclose(f);
    return line;
}

static hs_status bad_field(hs_error *err, const char *file, const char *field, const char *fmt,
                           ...) __attribute__((format(printf, 4, 5)));
static hs_status bad_field(hs_error *err, const char *file, const char *field, const char *fmt,
                           ...)
{
    char reason[256];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(reason, sizeof reason, fmt, ap);
    va_end(ap);
    int line = yaml_line_of(file, field);
    if (line > 0)
        return hs_error_set(err, HS_ERR_PARSE, "%s:%d: %s: %s", file, line, field, reason);
    return hs_error_set(err, HS_ERR_PARSE, "%s: %s: %s", file, field, reason);
}

static bool finite_nonneg(double v) { return isfinite(v) && v >= 0; }

static hs_status check_fit(const char *file, const char *where, const prof_fit *f, bool is_class,
                           hs_error *err)
{
    char field[128];
#define FIT_FIELD(name) (snprintf(field, sizeof field, "%s.%s", where, name), field)
    if (is_class && hs__op_class_find(f->name) < 0)
        return bad_field(err, file, FIT_FIELD("name"), "unknown op class '%s'", f->name);
    int kind = -1;
    for (int k = 0; k < FIT_KIND_COUNT; k++)
        if (strcmp(f->fit, fit_kind_names[k]) == 0)
            kind = k;
    if (kind < 0)
        return bad_field(err, file, FIT_FIELD("fit"),
                         "'%s' is not one of full, flops, bytes, global", f->fit);
    const struct {
        const char *name;
        double v;
    } nums[] = {{"sec_per_flop", f->sec_per_flop},
                {"sec_per_byte", f->sec_per_byte},
                {"sec_fixed", f->sec_fixed},
                {"median_rel_error", f->median_rel_error}};
    for (size_t k = 0; k < sizeof nums / sizeof nums[0]; k++)
        if (!finite_nonneg(nums[k].v))
            return bad_field(err, file, FIT_FIELD(nums[k].name),
                             "must be a finite number >= 0, got %g", nums[k].v);
#undef FIT_FIELD
    return HS_OK;
}

static hs_status check_doc(const char *file, const prof_doc *d, hs_error *err)
{
    char field[128];
    if (d->version != PROFILE_VERSION)
        return bad_field(err, file, "version", "unsupported version %d (this build reads %d)",
                         d->version, PROFILE_VERSION);
    if (d->machine.threads < 1)
        return bad_field(err, file, "machine.threads", "must be >= 1, got %d",
                         d->machine.threads);
    if (d->warmup < 0)
        return bad_field(err, file, "warmup", "must be >= 0, got %d", d->warmup);
    if (d->repeats < 1)
        return bad_field(err, file, "repeats", "must be >= 1, got %d", d->repeats);
    if (!finite_nonneg(d->machine.io_s_per_byte))
        return bad_field(err, file, "machine.io_s_per_byte", "must be a finite number >= 0, "
                         "got %g", d->machine.io_s_per_byte);
    if (!finite_nonneg(d->total_seconds))
        return bad_field(err, file, "total_seconds", "must be a finite number >= 0, got %g",
                         d->total_seconds);
    hs_status st = check_fit(file, "global", &d->global, false, err);
    if (st)
        return st;
    bool seen[HS_CLASS_COUNT] = {false};
    for (unsigned k = 0; k < d->classes_count; k++) {
        snprintf(field, sizeof field, "classes[%u]", k);
        if ((st = check_fit(file, field, &d->classes[k], true, err)) != HS_OK)
            return st;
        int c = hs__op_class_find(d->classes[k].name);
        if (seen[c]) {
            snprintf(field, sizeof field, "classes[%u].name", k);
            return bad_field(err, file, field, "class '%s' appears twice", d->classes[k].name);
        }
        seen[c] = true;
    }
    for (unsigned s = 0; s < d->nodes_count; s++) {
        const prof_node *pn = &d->nodes[s];
        if (hs__op_class_find(pn->class_name) < 0) {
            snprintf(field, sizeof field, "nodes[%u].class", s);
            return bad_field(err, file, field, "unknown op class '%s'", pn->class_name);
        }
        for (unsigned k = 0; k < pn->shape_count; k++)
            if (pn->shape[k] < 0) {
                snprintf(field, sizeof field, "nodes[%u].shape[%u]", s, k);
                return bad_field(err, file, field, "must be >= 0, got %lld",
                                 (long long)pn->shape[k]);
            }
        const struct {
            const char *name;
            double v;
        } nums[] = {{"flops", pn->flops}, {"bytes", pn->bytes}, {"seconds", pn->seconds}};
        for (size_t k = 0; k < sizeof nums / sizeof nums[0]; k++)
            if (!finite_nonneg(nums[k].v)) {
                snprintf(field, sizeof field, "nodes[%u].%s", s, nums[k].name);
                return bad_field(err, file, field, "must be a finite number >= 0, got %g",
                                 nums[k].v);
            }
    }
    return HS_OK;
}

hs_status hs_profile_load(const char *path, hs_profile **out, hs_error *err)
{
    assert(path && out);
    *out = NULL;
    FILE *probe = fopen(path, "rb");
    if (!probe)
        return hs_error_set(err, HS_ERR_IO, "%s: cannot open: %s", path, strerror(errno));
    fclose(probe);

    load_log lg;
    memset(&lg, 0, sizeof lg);
    cyaml_config_t cfg = *cyaml_config();
    cfg.log_ctx = &lg;
    prof_doc *d = NULL;
    cyaml_err_t ce = cyaml_load_file(path, &cfg, &doc_schema, (cyaml_data_t **)&d, NULL);
    if (ce != CYAML_OK) {
        backtrace_path(&lg);
        const char *reason = lg.reason[0] ? lg.reason : cyaml_strerror(ce);
        /* "Unexpected key: foo" / "Missing required mapping field: foo": the key belongs to
         * the mapping, not to the field the backtrace last entered. */
        const char *key = NULL;
        if (strncmp(reason, "Unexpected key: ", 16) == 0)
            key = reason + 16;
        char field[300];
        if (key) {
            snprintf(field, sizeof field, "%s%s%s", lg.path, lg.path[0] ? "." : "", key);
            int line = yaml_line_of(path, field);
            if (line > 0)
                lg.line = line;
        } else if (strncmp(reason, "Missing required mapping field: ", 32) == 0) {
            /* The backtrace ends in the last field read; the missing one is its sibling. */
            char *dot = strrchr(lg.path, '.');
            const char *name = reason + 32;
            if (lg.frames && strncmp(lg.frame[0], "mapping field", 13) == 0) {
                if (dot)
                    *dot = '\0';
                else
                    lg.path[0] = '\0';
            }
            snprintf(field, sizeof field, "%s%s%s", lg.path, lg.path[0] ? "." : "", name);
            reason = "missing required field";
        } else {
            snprintf(field, sizeof field, "%s", lg.path[0] ? lg.path : "(document)");
        }
        char line_part[32] = "";
        if (lg.line > 0)
            snprintf(line_part, sizeof line_part, ":%d", lg.line);
        if (key)
            return hs_error_set(err, HS_ERR_PARSE, "%s%s: %s: unknown field", path, line_part,
                                 field);
        return hs_error_set(err, HS_ERR_PARSE, "%s%s: %s: %s", path, line_part, field, reason);
    }
    if (!d)
        return hs_error_set(err, HS_ERR_PARSE, "%s: empty file: not a hotsplit profile", path);
    hs_profile *p = calloc(1, sizeof *p);
    if (!p) {
        cyaml_free(&cfg, &doc_schema, d, 0);
        return hs_error_set(err, HS_ERR_NOMEM, "%s: out of memory", path);
    }
    p->doc = d;
    p->from_cyaml = true;
    hs_status st = check_doc(path, d, err);
    if (st == HS_OK)
        st = index_profile(p, err);
    if (st != HS_OK) {
        hs_profile_free(p);
        return st;
    }
    *out = p;
    return HS_OK;
}
