/*
 * Model zoo: torchvision's classic image classifiers written out as ONNX (opset 13) with
 * random weights, so hotsplit has real-sized models to load, cost, run and split without
 * downloading anything.
 *
 * Each architecture follows torchvision's module tree and eval-mode forward layer for layer:
 * same shapes, same order, node names taken from the module paths ("layer1.0.conv1",
 * "features.3.conv.1.0"), and BatchNormalization kept as its own node after each bias-free
 * Conv, as torch.onnx.export emits it without folding. The trainable parameter count (conv and
 * linear weights and biases, BatchNorm scale and bias) equals torchvision's exactly; the only
 * other constants are the scalar Clip bounds of ReLU6 and the BatchNorm running statistics.
 *
 * Weights are random but not arbitrary. Conv and linear weights are He-normal. As it adds
 * each layer, the builder also runs it on a calibration image of unit normal noise (plain
 * loops in a fixed summation order, no BLAS, so thread counts cannot change a bit), and every
 * BatchNorm takes that layer's per-channel mean and variance, slightly jittered, as its running
 * statistics, as a trained model's are for its data. The last BatchNorm of every residual
 * branch has its scale shrunk so the residual stream grows slowly; VGG and AlexNet, without
 * BatchNorm, scale each layer's weights by the measured mean square of its input instead. So
 * activations stay near unit scale through the whole depth and the logits of a unit-variance
 * input neither vanish nor explode. Everything is drawn from splitmix64 streams seeded by
 * (seed, model name): the same seed writes byte-identical files.
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "onnx_build.h"

#define ZOO_NAME_MAX 128
#define ZOO_OPSET 13
#define ZOO_CLASSES 1000
#define ZOO_BN_EPS 1e-5f      /* torchvision's BatchNorm2d default, efficientnet_b0 included */
#define ZOO_RES_GAMMA 0.5     /* scale of the last BatchNorm of a residual branch */
#define ZOO_BIAS_STD 0.01     /* conv and linear biases */
#define ZOO_PI 3.14159265358979323846

/* ---- deterministic random numbers ------------------------------------------------------- */

typedef struct zoo_rng {
    uint64_t state;
    bool has_spare;
    double spare;
} zoo_rng;

static uint64_t rng_next(zoo_rng *r) /* splitmix64 */
{
    uint64_t z = (r->state += 0x9e3779b97f4a7c15ull);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
}

/* Uniform in the open interval (0, 1). */
static double rng_uniform(zoo_rng *r)
{
    return ((double)(rng_next(r) >> 11) + 0.5) * 0x1p-53;
}

/* Standard normal by Box-Muller, two values per pair of uniforms. */
static double rng_normal(zoo_rng *r)
{
    if (r->has_spare) {
        r->has_spare = false;
        return r->spare;
    }
    double radius = sqrt(-2.0 * log(rng_uniform(r)));
    double angle = 2.0 * ZOO_PI * rng_uniform(r);
    r->spare = radius * sin(angle);
    r->has_spare = true;
    return radius * cos(angle);
}

/* ---- the model under construction ------------------------------------------------------- */

typedef struct zoo {
    hs__mb *mb;
    zoo_rng rng;
    float *scratch; /* one initializer's values before the builder copies them */
    size_t scratch_cap;
    float **arena;  /* every calibration activation, freed together */
    size_t n_arena, cap_arena;
    bool have_clip_bounds;
} zoo;

/* A feature map: the tensor's name and its shape in the model (h = w = 0 once flattened),
 * and its value `data` (c x ch x cw, in the zoo's arena) for the calibration input, an image
 * of unit normal noise that the builder runs through every layer as it adds it. */
typedef struct fmap {
    char name[ZOO_NAME_MAX];
    int c, h, w;
    int ch, cw;
    float *data;
} fmap;

static float *zoo_scratch(zoo *z, size_t n)
{
    if (n > z->scratch_cap) {
        free(z->scratch);
        z->scratch = malloc(n * sizeof *z->scratch);
        assert(z->scratch && "zoo: out of memory");
        z->scratch_cap = n;
    }
    return z->scratch;
}

static float *zoo_floats(zoo *z, size_t n)
{
    if (z->n_arena == z->cap_arena) {
        z->cap_arena = z->cap_arena ? 2 * z->cap_arena : 256;
        z->arena = realloc(z->arena, z->cap_arena * sizeof *z->arena);
        assert(z->arena && "zoo: out of memory");
    }
    float *d = calloc(n ? n : 1, sizeof *d);
    assert(d && "zoo: out of memory");
    z->arena[z->n_arena++] = d;
    return d;
}

static void zoo_release(zoo *z)
{
    for (size_t i = 0; i < z->n_arena; i++)
        free(z->arena[i]);
    free(z->arena);
    free(z->scratch);
    hs__mb_free(z->mb);
}

/* Formats a tensor or node name into out[ZOO_NAME_MAX]; names are short, so truncation is a
 * bug in the zoo. */
static void name_fmt(char *out, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void name_fmt(char *out, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(out, ZOO_NAME_MAX, fmt, ap);
    va_end(ap);
    assert(n > 0 && n < ZOO_NAME_MAX && "zoo: name too long");
    (void)n;
}

static void join(char *out, const char *prefix, const char *suffix)
{
    name_fmt(out, "%s%s", prefix, suffix);
}

static size_t plane(const fmap *x) { return (size_t)x->ch * x->cw; }
static size_t fmap_size(const fmap *x) { return (size_t)x->c * plane(x); }

/* A new feature map named `name` of c channels and x's spatial size, value zeroed. */
static fmap fmap_new(zoo *z, const fmap *x, const char *name, int c)
{
    fmap y = {.c = c, .h = x->h, .w = x->w, .ch = x->ch, .cw = x->cw};
    join(y.name, name, "");
    y.data = zoo_floats(z, fmap_size(&y));
    return y;
}

/* Mean square of the calibration value. */
static double fmap_m2(const fmap *x)
{
    double s = 0;
    size_t n = fmap_size(x);
    for (size_t i = 0; i < n; i++)
        s += (double)x->data[i] * x->data[i];
    return s / (double)n;
}

/* A node of one output; the output tensor is named after the node, unless `out` is given. */
static Onnx__NodeProto *emit(zoo *z, const char *op, const char *name,
                             const char *const *inputs, const char *out)
{
    const char *outputs[] = {out ? out : name, NULL};
    return hs__mb_node(z->mb, op, name, inputs, outputs);
}

static void fill_normal(zoo *z, float *v, size_t n, double std)
{
    for (size_t i = 0; i < n; i++)
        v[i] = (float)(std * rng_normal(&z->rng));
}

/* ---- layers ------------------------------------------------------------------------------ */

typedef struct conv_spec {
    int cout, k, stride, pad, groups; /* groups 0 means 1 */
    bool bias;
    double gain; /* weight variance times fan-in; 0 means 2 (He) */
} conv_spec;

static int conv_out(int n, int k, int stride, int pad) { return (n + 2 * pad - k) / stride + 1; }

/* Direct convolution of the calibration value; every output sums in a fixed order, so the
 * result (and the statistics drawn from it) never depend on threads or a BLAS build. */
static void conv_calib(const fmap *x, fmap *y, const float *w, const float *b, conv_spec s,
                       int groups)
{
    int cin_g = x->c / groups, cout_g = y->c / groups;
    for (int o = 0; o < y->c; o++) {
        float *restrict out = y->data + o * plane(y);
        for (size_t i = 0; i < plane(y); i++)
            out[i] = b ? b[o] : 0.0f;
        for (int ci = 0; ci < cin_g; ci++) {
            const float *in = x->data + (size_t)(o / cout_g * cin_g + ci) * plane(x);
            for (int ky = 0; ky < s.k; ky++) {
                for (int kx = 0; kx < s.k; kx++) {
                    float wt = w[((size_t)o * cin_g + ci) * s.k * s.k + ky * s.k + kx];
                    /* output columns whose input column lies inside the map */
                    int ox0 = 0, ox1 = y->cw;
                    while (ox0 < ox1 && ox0 * s.stride - s.pad + kx < 0)
                        ox0++;
                    while (ox1 > ox0 && (ox1 - 1) * s.stride - s.pad + kx >= x->cw)
                        ox1--;
                    for (int oy = 0; oy < y->ch; oy++) {
                        int iy = oy * s.stride - s.pad + ky;
                        if (iy < 0 || iy >= x->ch)
                            continue;
                        const float *restrict row = in + (size_t)iy * x->cw - s.pad + kx;
                        float *restrict orow = out + (size_t)oy * y->cw;
                        if (s.stride == 1)
                            for (int ox = ox0; ox < ox1; ox++)
                                orow[ox] += wt * row[ox];
                        else
                            for (int ox = ox0; ox < ox1; ox++)
                                orow[ox] += wt * row[ox * s.stride];
                    }
                }
            }
        }
    }
}

static fmap conv(zoo *z, const fmap *x, const char *name, conv_spec s)
{
    int groups = s.groups ? s.groups : 1;
    double gain = s.gain > 0 ? s.gain : 2.0;
    assert(x->h > 0 && x->c % groups == 0 && s.cout % groups == 0);
    int cin_g = x->c / groups;
    fmap y = {.c = s.cout, .h = conv_out(x->h, s.k, s.stride, s.pad),
              .w = conv_out(x->w, s.k, s.stride, s.pad),
              .ch = conv_out(x->ch, s.k, s.stride, s.pad),
              .cw = conv_out(x->cw, s.k, s.stride, s.pad)};
    join(y.name, name, "");
    y.data = zoo_floats(z, fmap_size(&y));

    char wname[ZOO_NAME_MAX], bname[ZOO_NAME_MAX];
    join(wname, name, ".weight");
    join(bname, name, ".bias");
    size_t fan_in = (size_t)cin_g * s.k * s.k, nw = (size_t)s.cout * fan_in;
    float *w = zoo_scratch(z, nw + (size_t)s.cout), *b = w + nw;
    fill_normal(z, w, nw, sqrt(gain / (double)fan_in));
    if (s.bias)
        fill_normal(z, b, (size_t)s.cout, ZOO_BIAS_STD);
    conv_calib(x, &y, w, s.bias ? b : NULL, s, groups);
    hs__mb_initializer(z->mb, wname, HS_F32, 4, (int64_t[]){s.cout, cin_g, s.k, s.k}, w);
    if (s.bias)
        hs__mb_initializer(z->mb, bname, HS_F32, 1, (int64_t[]){s.cout}, b);

    const char *inputs[] = {x->name, wname, s.bias ? bname : NULL, NULL};
    Onnx__NodeProto *n = emit(z, "Conv", name, inputs, NULL);
    int64_t ks[2] = {s.k, s.k}, st[2] = {s.stride, s.stride}, one[2] = {1, 1};
    int64_t pads[4] = {s.pad, s.pad, s.pad, s.pad};
    hs__mb_attr_ints(z->mb, n, "dilations", one, 2);
    hs__mb_attr_int(z->mb, n, "group", groups);
    hs__mb_attr_ints(z->mb, n, "kernel_shape", ks, 2);
    hs__mb_attr_ints(z->mb, n, "pads", pads, 4);
    hs__mb_attr_ints(z->mb, n, "strides", st, 2);
    return y;
}

/* BatchNormalization whose running statistics are those of its input on the calibration
 * image, give or take a little, as a trained model's are for its data: it outputs about
 * N(beta, gamma^2) per channel, gamma near gamma_scale. */
static fmap batchnorm(zoo *z, const fmap *x, const char *name, double gamma_scale)
{
    static const char *const suffix[4] = {".weight", ".bias", ".running_mean", ".running_var"};
    int c = x->c;
    size_t hw = plane(x);
    fmap y = fmap_new(z, x, name, c);
    float *v = zoo_scratch(z, 4 * (size_t)c);
    float *gamma = v, *beta = v + c, *mean = v + 2 * c, *var = v + 3 * c;
    for (int i = 0; i < c; i++) {
        const float *in = x->data + i * hw;
        double s1 = 0, s2 = 0;
        for (size_t k = 0; k < hw; k++) {
            s1 += in[k];
            s2 += (double)in[k] * in[k];
        }
        double m = s1 / (double)hw, vr = fmax(s2 / (double)hw - m * m, 1e-6);
        gamma[i] = (float)(gamma_scale * (1.0 + 0.1 * rng_normal(&z->rng)));
        beta[i] = (float)(0.05 * gamma_scale * rng_normal(&z->rng));
        mean[i] = (float)(m + 0.05 * sqrt(vr) * rng_normal(&z->rng));
        var[i] = (float)(vr * exp(0.1 * rng_normal(&z->rng)));
        float scale = gamma[i] / sqrtf(var[i] + ZOO_BN_EPS);
        for (size_t k = 0; k < hw; k++)
            y.data[i * hw + k] = (in[k] - mean[i]) * scale + beta[i];
    }
    char names[4][ZOO_NAME_MAX];
    for (int k = 0; k < 4; k++) {
        join(names[k], name, suffix[k]);
        hs__mb_initializer(z->mb, names[k], HS_F32, 1, (int64_t[]){c}, v + (size_t)k * c);
    }
    const char *inputs[] = {x->name, names[0], names[1], names[2], names[3], NULL};
    Onnx__NodeProto *n = emit(z, "BatchNormalization", name, inputs, NULL);
    hs__mb_attr_float(z->mb, n, "epsilon", ZOO_BN_EPS);
    hs__mb_attr_float(z->mb, n, "momentum", 0.9f);
    return y;
}

typedef float (*zoo_fn)(float);
static float fn_relu(float x) { return x > 0 ? x : 0; }
static float fn_relu6(float x) { return x < 0 ? 0 : x > 6 ? 6 : x; }
static float fn_sigmoid(float x) { return 1.0f / (1.0f + expf(-x)); }
static float fn_silu(float x) { return x / (1.0f + expf(-x)); }

static fmap apply_fn(zoo *z, const fmap *x, const char *name, zoo_fn f)
{
    fmap y = fmap_new(z, x, name, x->c);
    for (size_t i = 0; i < fmap_size(x); i++)
        y.data[i] = f(x->data[i]);
    return y;
}

static fmap relu(zoo *z, const fmap *x, const char *name)
{
    emit(z, "Relu", name, (const char *const[]){x->name, NULL}, NULL);
    return apply_fn(z, x, name, fn_relu);
}

static fmap sigmoid(zoo *z, const fmap *x, const char *name)
{
    emit(z, "Sigmoid", name, (const char *const[]){x->name, NULL}, NULL);
    return apply_fn(z, x, name, fn_sigmoid);
}

/* ReLU6 as torch exports it: Clip with scalar min and max inputs, shared by the whole model. */
static fmap relu6(zoo *z, const fmap *x, const char *name)
{
    if (!z->have_clip_bounds) {
        float lo = 0.0f, hi = 6.0f;
        hs__mb_initializer(z->mb, "relu6.min", HS_F32, 0, NULL, &lo);
        hs__mb_initializer(z->mb, "relu6.max", HS_F32, 0, NULL, &hi);
        z->have_clip_bounds = true;
    }
    emit(z, "Clip", name, (const char *const[]){x->name, "relu6.min", "relu6.max", NULL}, NULL);
    return apply_fn(z, x, name, fn_relu6);
}

/* SiLU as torch exports it: x * Sigmoid(x), nodes "<name>.sigmoid" and "<name>.mul". */
static fmap silu(zoo *z, const fmap *x, const char *name)
{
    char sig[ZOO_NAME_MAX], mul[ZOO_NAME_MAX];
    join(sig, name, ".sigmoid");
    join(mul, name, ".mul");
    emit(z, "Sigmoid", sig, (const char *const[]){x->name, NULL}, NULL);
    emit(z, "Mul", mul, (const char *const[]){x->name, sig, NULL}, NULL);
    return apply_fn(z, x, mul, fn_silu);
}

static fmap add(zoo *z, const fmap *a, const fmap *b, const char *name)
{
    assert(a->c == b->c && a->h == b->h && a->w == b->w);
    emit(z, "Add", name, (const char *const[]){a->name, b->name, NULL}, NULL);
    fmap y = fmap_new(z, a, name, a->c);
    for (size_t i = 0; i < fmap_size(a); i++)
        y.data[i] = a->data[i] + b->data[i];
    return y;
}

/* a * b, where a 1x1 operand (a per-channel gate) broadcasts over the other's positions. */
static fmap mul(zoo *z, const fmap *a, const fmap *b, const char *name)
{
    assert(a->c == b->c);
    emit(z, "Mul", name, (const char *const[]){a->name, b->name, NULL}, NULL);
    const fmap *big = plane(a) >= plane(b) ? a : b, *small = big == a ? b : a;
    fmap y = fmap_new(z, big, name, a->c);
    size_t hw = plane(big), step = plane(small) == 1 ? 0 : 1;
    for (int c = 0; c < a->c; c++)
        for (size_t k = 0; k < hw; k++)
            y.data[c * hw + k] = big->data[c * hw + k] * small->data[c * plane(small) + k * step];
    return y;
}

/* Max pooling, floor mode; padding never wins. */
static fmap maxpool(zoo *z, const fmap *x, const char *name, int k, int stride, int pad)
{
    Onnx__NodeProto *n = emit(z, "MaxPool", name, (const char *const[]){x->name, NULL}, NULL);
    int64_t ks[2] = {k, k}, st[2] = {stride, stride}, pads[4] = {pad, pad, pad, pad};
    hs__mb_attr_int(z->mb, n, "ceil_mode", 0);
    hs__mb_attr_ints(z->mb, n, "kernel_shape", ks, 2);
    hs__mb_attr_ints(z->mb, n, "pads", pads, 4);
    hs__mb_attr_ints(z->mb, n, "strides", st, 2);
    fmap y = {.c = x->c, .h = conv_out(x->h, k, stride, pad), .w = conv_out(x->w, k, stride, pad),
              .ch = conv_out(x->ch, k, stride, pad), .cw = conv_out(x->cw, k, stride, pad)};
    join(y.name, name, "");
    y.data = zoo_floats(z, fmap_size(&y));
    for (int c = 0; c < x->c; c++)
        for (int oy = 0; oy < y.ch; oy++)
            for (int ox = 0; ox < y.cw; ox++) {
                float m = -INFINITY;
                for (int ky = 0; ky < k; ky++)
                    for (int kx = 0; kx < k; kx++) {
                        int iy = oy * stride - pad + ky, ix = ox * stride - pad + kx;
                        if (iy >= 0 && iy < x->ch && ix >= 0 && ix < x->cw)
                            m = fmaxf(m, x->data[c * plane(x) + (size_t)iy * x->cw + ix]);
                    }
                y.data[c * plane(&y) + (size_t)oy * y.cw + ox] = m;
            }
    return y;
}

static fmap global_avgpool(zoo *z, const fmap *x, const char *name)
{
    emit(z, "GlobalAveragePool", name, (const char *const[]){x->name, NULL}, NULL);
    fmap y = {.c = x->c, .h = 1, .w = 1, .ch = 1, .cw = 1};
    join(y.name, name, "");
    y.data = zoo_floats(z, (size_t)x->c);
    for (int c = 0; c < x->c; c++) {
        double s = 0;
        for (size_t k = 0; k < plane(x); k++)
            s += x->data[c * plane(x) + k];
        y.data[c] = (float)(s / (double)plane(x));
    }
    return y;
}

/* Flatten to c*h*w features. The calibration value is smaller than the model's map, so the
 * model-sized feature vector is filled by tiling it: features keep their channel's values. */
static fmap flatten(zoo *z, const fmap *x, const char *name)
{
    Onnx__NodeProto *n = emit(z, "Flatten", name, (const char *const[]){x->name, NULL}, NULL);
    hs__mb_attr_int(z->mb, n, "axis", 1);
    fmap y = {.c = x->c * x->h * x->w, .h = 0, .w = 0, .ch = 1, .cw = 1};
    join(y.name, name, "");
    y.data = zoo_floats(z, (size_t)y.c);
    for (int c = 0; c < x->c; c++)
        for (int i = 0; i < x->h; i++)
            for (int j = 0; j < x->w; j++)
                y.data[((size_t)c * x->h + i) * x->w + j] =
                    x->data[c * plane(x) + (size_t)(i % x->ch) * x->cw + j % x->cw];
    return y;
}

/* Dropout is the identity in eval mode; it is kept as a node like the module it stands for. */
static fmap dropout(zoo *z, const fmap *x, const char *name)
{
    emit(z, "Dropout", name, (const char *const[]){x->name, NULL}, NULL);
    fmap y = *x;
    join(y.name, name, "");
    return y;
}

/* Linear as Gemm with transB = 1; `out` renames the output tensor (NULL: the node's name).
 * Its gain is 2 over its input's mean square: He init for an input of ReLU of unit variance,
 * and outputs of unit scale whatever the input's. */
static fmap linear(zoo *z, const fmap *x, const char *name, int nout, const char *out)
{
    assert(x->h == 0 || (x->h == 1 && x->w == 1));
    double gain = 2.0 / fmap_m2(x);
    char wname[ZOO_NAME_MAX], bname[ZOO_NAME_MAX];
    join(wname, name, ".weight");
    join(bname, name, ".bias");
    size_t nin = (size_t)x->c, nw = (size_t)nout * nin;
    fmap y = {.c = nout, .ch = 1, .cw = 1};
    join(y.name, out ? out : name, "");
    y.data = zoo_floats(z, (size_t)nout);
    float *w = zoo_scratch(z, nw + (size_t)nout), *b = w + nw;
    fill_normal(z, w, nw, sqrt(gain / (double)nin));
    fill_normal(z, b, (size_t)nout, ZOO_BIAS_STD);
    for (int o = 0; o < nout; o++) {
        const float *wo = w + o * nin;
        float acc = b[o];
        for (size_t i = 0; i < nin; i++)
            acc += wo[i] * x->data[i];
        y.data[o] = acc;
    }
    hs__mb_initializer(z->mb, wname, HS_F32, 2, (int64_t[]){nout, (int64_t)nin}, w);
    hs__mb_initializer(z->mb, bname, HS_F32, 1, (int64_t[]){nout}, b);
    Onnx__NodeProto *n =
        emit(z, "Gemm", name, (const char *const[]){x->name, wname, bname, NULL}, out);
    hs__mb_attr_float(z->mb, n, "alpha", 1.0f);
    hs__mb_attr_float(z->mb, n, "beta", 1.0f);
    hs__mb_attr_int(z->mb, n, "transB", 1);
    return y;
}

/* Conv (bias-free) + BatchNorm, the pair torchvision writes conv/bn or Conv2dNormActivation. */
static fmap conv_bn(zoo *z, const fmap *x, const char *conv_name, const char *bn_name,
                    conv_spec s, double gamma_scale)
{
    fmap y = conv(z, x, conv_name, s);
    return batchnorm(z, &y, bn_name, gamma_scale);
}

/* ---- ResNet (torchvision resnet.py; Bottleneck is v1.5: stride on the 3x3) ---------------- */

static fmap resnet_block(zoo *z, const fmap *x, const char *p, int planes, int stride,
                         bool bottleneck)
{
    char a[ZOO_NAME_MAX], b[ZOO_NAME_MAX];
#define N(dst, suffix) join(dst, p, suffix)
    int expansion = bottleneck ? 4 : 1;
    fmap y;
    if (bottleneck) {
        N(a, ".conv1"), N(b, ".bn1");
        y = conv_bn(z, x, a, b, (conv_spec){.cout = planes, .k = 1, .stride = 1}, 1.0);
        N(a, ".relu");
        y = relu(z, &y, a);
        N(a, ".conv2"), N(b, ".bn2");
        y = conv_bn(z, &y, a, b, (conv_spec){.cout = planes, .k = 3, .stride = stride, .pad = 1},
                    1.0);
        N(a, ".relu_1");
        y = relu(z, &y, a);
        N(a, ".conv3"), N(b, ".bn3");
        y = conv_bn(z, &y, a, b, (conv_spec){.cout = planes * 4, .k = 1, .stride = 1},
                    ZOO_RES_GAMMA);
    } else {
        N(a, ".conv1"), N(b, ".bn1");
        y = conv_bn(z, x, a, b, (conv_spec){.cout = planes, .k = 3, .stride = stride, .pad = 1},
                    1.0);
        N(a, ".relu");
        y = relu(z, &y, a);
        N(a, ".conv2"), N(b, ".bn2");
        y = conv_bn(z, &y, a, b, (conv_spec){.cout = planes, .k = 3, .stride = 1, .pad = 1},
                    ZOO_RES_GAMMA);
    }
    fmap identity = *x;
    if (stride != 1 || x->c != planes * expansion) {
        N(a, ".downsample.0"), N(b, ".downsample.1");
        identity = conv_bn(z, x, a, b,
                           (conv_spec){.cout = planes * expansion, .k = 1, .stride = stride},
                           1.0);
    }
    N(a, ".add");
    y = add(z, &y, &identity, a);
    N(a, bottleneck ? ".relu_2" : ".relu_1");
    return relu(z, &y, a);
#undef N
}

static fmap resnet(zoo *z, const fmap *x, const int blocks[4], bool bottleneck)
{
    fmap y = conv_bn(z, x, "conv1", "bn1", (conv_spec){.cout = 64, .k = 7, .stride = 2, .pad = 3},
                     1.0);
    y = relu(z, &y, "relu");
    y = maxpool(z, &y, "maxpool", 3, 2, 1);
    for (int layer = 0; layer < 4; layer++) {
        for (int i = 0; i < blocks[layer]; i++) {
            char p[ZOO_NAME_MAX];
            name_fmt(p, "layer%d.%d", layer + 1, i);
            int stride = layer > 0 && i == 0 ? 2 : 1;
            y = resnet_block(z, &y, p, 64 << layer, stride, bottleneck);
        }
    }
    y = global_avgpool(z, &y, "avgpool");
    y = flatten(z, &y, "flatten");
    return linear(z, &y, "fc", ZOO_CLASSES, "output");
}

static fmap build_resnet18(zoo *z, const fmap *x)
{
    return resnet(z, x, (const int[4]){2, 2, 2, 2}, false);
}

static fmap build_resnet50(zoo *z, const fmap *x)
{
    return resnet(z, x, (const int[4]){3, 4, 6, 3}, true);
}

/* ---- MobileNetV2 (torchvision mobilenetv2.py, width 1.0) -------------------------------- */

/* Conv2dNormActivation with ReLU6: "<p>.0" conv, "<p>.1" bn, "<p>.2" relu6. */
static fmap conv_bn_relu6(zoo *z, const fmap *x, const char *p, conv_spec s)
{
    char a[ZOO_NAME_MAX], b[ZOO_NAME_MAX];
    join(a, p, ".0");
    join(b, p, ".1");
    fmap y = conv_bn(z, x, a, b, s, 1.0);
    join(a, p, ".2");
    return relu6(z, &y, a);
}

static fmap inverted_residual(zoo *z, const fmap *x, int index, int out, int stride, int expand)
{
    char p[ZOO_NAME_MAX], a[ZOO_NAME_MAX], b[ZOO_NAME_MAX];
    int hidden = x->c * expand, j = 0;
    bool residual = stride == 1 && x->c == out;
    fmap y = *x;
    if (expand != 1) {
        name_fmt(p, "features.%d.conv.%d", index, j++);
        y = conv_bn_relu6(z, &y, p, (conv_spec){.cout = hidden, .k = 1, .stride = 1});
    }
    name_fmt(p, "features.%d.conv.%d", index, j++);
    y = conv_bn_relu6(z, &y, p,
                      (conv_spec){.cout = hidden, .k = 3, .stride = stride, .pad = 1,
                                  .groups = hidden});
    name_fmt(a, "features.%d.conv.%d", index, j++);
    name_fmt(b, "features.%d.conv.%d", index, j++);
    y = conv_bn(z, &y, a, b, (conv_spec){.cout = out, .k = 1, .stride = 1},
                residual ? ZOO_RES_GAMMA : 1.0);
    if (!residual)
        return y;
    name_fmt(a, "features.%d.add", index);
    return add(z, &y, x, a);
}

static fmap build_mobilenet_v2(zoo *z, const fmap *x)
{
    static const int setting[7][4] = { /* expand ratio t, channels c, repeats n, stride s */
        {1, 16, 1, 1}, {6, 24, 2, 2}, {6, 32, 3, 2}, {6, 64, 4, 2},
        {6, 96, 3, 1}, {6, 160, 3, 2}, {6, 320, 1, 1},
    };
    fmap y = conv_bn_relu6(z, x, "features.0", (conv_spec){.cout = 32, .k = 3, .stride = 2, .pad = 1});
    int index = 1;
    for (int s = 0; s < 7; s++)
        for (int i = 0; i < setting[s][2]; i++)
            y = inverted_residual(z, &y, index++, setting[s][1], i == 0 ? setting[s][3] : 1,
                                  setting[s][0]);
    char p[ZOO_NAME_MAX];
    name_fmt(p, "features.%d", index);
    y = conv_bn_relu6(z, &y, p, (conv_spec){.cout = 1280, .k = 1, .stride = 1});
    y = global_avgpool(z, &y, "avgpool");
    y = flatten(z, &y, "flatten");
    y = dropout(z, &y, "classifier.0");
    return linear(z, &y, "classifier.1", ZOO_CLASSES, "output");
}

/* ---- EfficientNet-B0 (torchvision efficientnet.py) -------------------------------------- */

/* Conv2dNormActivation with SiLU (or none): "<p>.0" conv, "<p>.1" bn, "<p>.2" silu. */
static fmap conv_bn_silu(zoo *z, const fmap *x, const char *p, conv_spec s, bool activation,
                         double gamma_scale)
{
    char a[ZOO_NAME_MAX], b[ZOO_NAME_MAX];
    join(a, p, ".0");
    join(b, p, ".1");
    fmap y = conv_bn(z, x, a, b, s, gamma_scale);
    if (!activation)
        return y;
    join(a, p, ".2");
    return silu(z, &y, a);
}

/* SqueezeExcitation: x * sigmoid(fc2(silu(fc1(avgpool(x))))), fc1/fc2 1x1 convs with bias. */
static fmap squeeze_excitation(zoo *z, const fmap *x, const char *p, int squeeze)
{
    char a[ZOO_NAME_MAX];
    join(a, p, ".avgpool");
    fmap s = global_avgpool(z, x, a);
    join(a, p, ".fc1");
    s = conv(z, &s, a, (conv_spec){.cout = squeeze, .k = 1, .stride = 1, .bias = true});
    join(a, p, ".activation");
    s = silu(z, &s, a);
    join(a, p, ".fc2");
    s = conv(z, &s, a, (conv_spec){.cout = x->c, .k = 1, .stride = 1, .bias = true});
    join(a, p, ".scale_activation");
    s = sigmoid(z, &s, a);
    join(a, p, ".mul");
    return mul(z, &s, x, a);
}

static fmap mbconv(zoo *z, const fmap *x, const char *p, int expand, int k, int stride, int out)
{
    char a[ZOO_NAME_MAX];
    int expanded = x->c * expand, j = 0;
    bool residual = stride == 1 && x->c == out;
    fmap y = *x;
    if (expanded != x->c) {
        name_fmt(a, "%s.block.%d", p, j++);
        y = conv_bn_silu(z, &y, a, (conv_spec){.cout = expanded, .k = 1, .stride = 1}, true, 1.0);
    }
    name_fmt(a, "%s.block.%d", p, j++);
    y = conv_bn_silu(z, &y, a,
                     (conv_spec){.cout = expanded, .k = k, .stride = stride, .pad = (k - 1) / 2,
                                 .groups = expanded},
                     true, 1.0);
    name_fmt(a, "%s.block.%d", p, j++);
    y = squeeze_excitation(z, &y, a, x->c / 4 > 1 ? x->c / 4 : 1);
    name_fmt(a, "%s.block.%d", p, j++);
    y = conv_bn_silu(z, &y, a, (conv_spec){.cout = out, .k = 1, .stride = 1}, false,
                     residual ? ZOO_RES_GAMMA : 1.0);
    if (!residual) /* stochastic depth is the identity in eval mode */
        return y;
    name_fmt(a, "%s.add", p);
    return add(z, &y, x, a);
}

static fmap build_efficientnet_b0(zoo *z, const fmap *x)
{
    static const int setting[7][5] = { /* expand, kernel, stride, out channels, layers */
        {1, 3, 1, 16, 1}, {6, 3, 2, 24, 2}, {6, 5, 2, 40, 2}, {6, 3, 2, 80, 3},
        {6, 5, 1, 112, 3}, {6, 5, 2, 192, 4}, {6, 3, 1, 320, 1},
    };
    fmap y = conv_bn_silu(z, x, "features.0",
                          (conv_spec){.cout = 32, .k = 3, .stride = 2, .pad = 1}, true, 1.0);
    for (int s = 0; s < 7; s++) {
        for (int i = 0; i < setting[s][4]; i++) {
            char p[ZOO_NAME_MAX];
            name_fmt(p, "features.%d.%d", s + 1, i);
            y = mbconv(z, &y, p, setting[s][0], setting[s][1], i == 0 ? setting[s][2] : 1,
                       setting[s][3]);
        }
    }
    y = conv_bn_silu(z, &y, "features.8", (conv_spec){.cout = 4 * 320, .k = 1, .stride = 1},
                     true, 1.0);
    y = global_avgpool(z, &y, "avgpool");
    y = flatten(z, &y, "flatten");
    y = dropout(z, &y, "classifier.0");
    return linear(z, &y, "classifier.1", ZOO_CLASSES, "output");
}

/* ---- VGG-16 and AlexNet (torchvision vgg.py, alexnet.py) -------------------------------- */

/* Without BatchNorm, each conv layer's gain is 2 over its input's measured mean square (He
 * init when that input is ReLU of unit variance), which undoes the growth max pooling brings. */
static double plain_gain(const fmap *x)
{
    return 2.0 / fmap_m2(x);
}

static fmap build_vgg16(zoo *z, const fmap *x)
{
    static const int cfg[] = {64, 64, 0, 128, 128, 0, 256, 256, 256, 0,
                              512, 512, 512, 0, 512, 512, 512, 0}; /* 0: max pool */
    fmap y = *x;
    int index = 0;
    for (size_t i = 0; i < sizeof cfg / sizeof *cfg; i++) {
        char a[ZOO_NAME_MAX];
        name_fmt(a, "features.%d", index++);
        if (cfg[i] == 0) {
            y = maxpool(z, &y, a, 2, 2, 0);
            continue;
        }
        y = conv(z, &y, a, (conv_spec){.cout = cfg[i], .k = 3, .stride = 1, .pad = 1,
                                       .bias = true, .gain = plain_gain(&y)});
        name_fmt(a, "features.%d", index++);
        y = relu(z, &y, a);
    }
    /* avgpool, AdaptiveAvgPool2d((7, 7)), is the identity on the 7x7 map of a 224 input. */
    y = flatten(z, &y, "flatten");
    y = linear(z, &y, "classifier.0", 4096, NULL);
    y = relu(z, &y, "classifier.1");
    y = dropout(z, &y, "classifier.2");
    y = linear(z, &y, "classifier.3", 4096, NULL);
    y = relu(z, &y, "classifier.4");
    y = dropout(z, &y, "classifier.5");
    return linear(z, &y, "classifier.6", ZOO_CLASSES, "output");
}

static fmap build_alexnet(zoo *z, const fmap *x)
{
    static const struct { int cout, k, stride, pad; bool pool; } cfg[5] = {
        {64, 11, 4, 2, true}, {192, 5, 1, 2, true}, {384, 3, 1, 1, false},
        {256, 3, 1, 1, false}, {256, 3, 1, 1, true},
    };
    fmap y = *x;
    int index = 0;
    for (int i = 0; i < 5; i++) {
        char a[ZOO_NAME_MAX];
        name_fmt(a, "features.%d", index++);
        y = conv(z, &y, a, (conv_spec){.cout = cfg[i].cout, .k = cfg[i].k,
                                       .stride = cfg[i].stride, .pad = cfg[i].pad,
                                       .bias = true, .gain = plain_gain(&y)});
        name_fmt(a, "features.%d", index++);
        y = relu(z, &y, a);
        if (cfg[i].pool) {
            name_fmt(a, "features.%d", index++);
            y = maxpool(z, &y, a, 3, 2, 0);
        }
    }
    /* avgpool, AdaptiveAvgPool2d((6, 6)), is the identity on the 6x6 map of a 224 input. */
    y = flatten(z, &y, "flatten");
    y = dropout(z, &y, "classifier.0");
    y = linear(z, &y, "classifier.1", 4096, NULL);
    y = relu(z, &y, "classifier.2");
    y = dropout(z, &y, "classifier.3");
    y = linear(z, &y, "classifier.4", 4096, NULL);
    y = relu(z, &y, "classifier.5");
    return linear(z, &y, "classifier.6", ZOO_CLASSES, "output");
}

/* ---- the zoo ----------------------------------------------------------------------------- */

/* hs_zoo_names() order; models[i] writes names[i]. The calibration image is the model's
 * input size where BatchNorm statistics depend on it (small late maps are mostly border);
 * the plain VGG and AlexNet only need their layers' gains, which a smaller image gives as
 * well at a quarter of the cost. */
static const char *const names[] = {
    "resnet18", "resnet50", "mobilenet_v2", "efficientnet_b0", "vgg16", "alexnet", NULL,
};
static const struct {
    fmap (*build)(zoo *z, const fmap *input);
    int calib; /* side of the calibration image */
} models[] = {
    {build_resnet18, 224}, {build_resnet50, 224}, {build_mobilenet_v2, 224},
    {build_efficientnet_b0, 224}, {build_vgg16, 112}, {build_alexnet, 112},
};
#define ZOO_COUNT (sizeof models / sizeof *models)
_Static_assert(sizeof names / sizeof *names == ZOO_COUNT + 1, "one name per zoo model");

const char *const *hs_zoo_names(void)
{
    return names;
}

static uint64_t fnv1a(const char *s)
{
    uint64_t h = 0xcbf29ce484222325ull;
    for (; *s; s++)
        h = (h ^ (uint8_t)*s) * 0x100000001b3ull;
    return h;
}

hs_status hs_zoo_write(const char *name, const char *path, uint64_t seed, hs_error *err)
{
    assert(name && path);
    size_t m = 0;
    while (m < ZOO_COUNT && strcmp(names[m], name) != 0)
        m++;
    if (m == ZOO_COUNT) {
        char known[256] = "";
        for (size_t i = 0; i < ZOO_COUNT; i++) {
            strncat(known, i ? ", " : "", sizeof known - strlen(known) - 1);
            strncat(known, names[i], sizeof known - strlen(known) - 1);
        }
        return hs__set_error(err, HS_ERR_NOTFOUND, "unknown zoo model '%s' (known: %s)", name,
                             known);
    }

    zoo z = {.mb = hs__mb_new(ZOO_OPSET), .rng = {.state = seed ^ fnv1a(name)}};
    int64_t in_shape[4] = {1, 3, 224, 224}, out_shape[2] = {1, ZOO_CLASSES};
    hs__mb_input(z.mb, "input", HS_F32, 4, in_shape);
    hs__mb_output(z.mb, "output", HS_F32, 2, out_shape);
    fmap x = {.name = "input", .c = 3, .h = 224, .w = 224, .ch = models[m].calib,
              .cw = models[m].calib};
    x.data = zoo_floats(&z, fmap_size(&x));
    zoo_rng noise = {.state = ~seed ^ fnv1a(name)};
    for (size_t i = 0; i < fmap_size(&x); i++)
        x.data[i] = (float)rng_normal(&noise);
    fmap y = models[m].build(&z, &x);
    assert(strcmp(y.name, "output") == 0 && y.c == ZOO_CLASSES);
    (void)y;
    free(z.scratch); /* the builder holds its own copy of every weight */
    z.scratch = NULL;
    hs_status st = hs__mb_save(z.mb, path, err);
    zoo_release(&z);
    return st;
}
