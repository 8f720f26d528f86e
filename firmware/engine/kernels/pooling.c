/*
 * AVERAGE_POOL_2D and MAX_POOL_2D on int8 NHWC tensors. Input and output
 * share scale and zero point, so pooling works on the raw values:
 *
 *   average: sum of the window taps inside the input / their count, rounded
 *            half away from zero
 *   max:     largest tap inside the input
 *
 * then clamped to the fused activation range.
 *
 * float32: average = (sum of the taps in order) / (their count), max =
 * the largest tap (NaNs skipped, as std::max does), then clamped to the
 * activation range.
 */
#include <float.h>
#include <math.h>

#include "../engine_internal.h"
#include "../quant.h"

/* The mve set (engine.cmake lists this file in HIL_ENGINE_DSP_HOOKED) takes
 * sixteen channels per vector; every other set the portable loops below. */
#ifndef HIL_KERNELS_MVE
#define HIL_KERNELS_MVE 0
#endif
#ifndef HIL_KERNELS_DSP
#define HIL_KERNELS_DSP 0
#endif
#if HIL_KERNELS_MVE
#if defined(HIL_ACLE_PORTABLE)
#include "mve_portable.h"
#else
#include <arm_mve.h>
#endif
#elif HIL_KERNELS_DSP
/* The dsp set, four channels per word: the max pool by SSUB8 setting a GE
 * flag per byte where a >= b and SEL taking a's bytes there, b's elsewhere;
 * the average pool by SXTAB16 adding bytes 0 and 2 (1 and 3 of the word
 * rotated by 8) to two 16-bit sums. The host build (HIL_ACLE_PORTABLE) runs
 * the same byte-wise max and halfword adds in C. */
static inline uint32_t ld4(const int8_t *p)
{
    uint32_t v;
    memcpy(&v, p, sizeof v);
    return v;
}
#if defined(HIL_ACLE_PORTABLE)
#include "acle_portable.h"
static inline uint32_t add13(uint32_t sums, uint32_t v)
{
    return (uint32_t)__sxtab16((int32_t)sums, (int32_t)((v >> 8) | (v << 24)));
}
static inline uint32_t pick4(uint32_t a, uint32_t b, int larger)
{
    uint32_t r = 0;
    int i;
    for (i = 0; i < 32; i += 8) {
        const int8_t x = (int8_t)(a >> i), y = (int8_t)(b >> i);
        r |= (uint32_t)(uint8_t)((x >= y) == (larger != 0) ? x : y) << i;
    }
    return r;
}
static inline uint32_t max4(uint32_t a, uint32_t b) { return pick4(a, b, 1); }
static inline uint32_t min4(uint32_t a, uint32_t b) { return pick4(a, b, 0); }
#else
#include <arm_acle.h>
/* ACLE has no rotated SXTAB16; GCC does not fold the rotation into it */
static inline uint32_t add13(uint32_t sums, uint32_t v)
{
    uint32_t r;
    __asm__("sxtab16 %0, %1, %2, ror #8" : "=r"(r) : "r"(sums), "r"(v));
    return r;
}
static inline uint32_t max4(uint32_t a, uint32_t b)
{
    (void)__ssub8((int8x4_t)a, (int8x4_t)b);
    return (uint32_t)__sel((uint8x4_t)a, (uint8x4_t)b);
}
static inline uint32_t min4(uint32_t a, uint32_t b)
{
    (void)__ssub8((int8x4_t)a, (int8x4_t)b);
    return (uint32_t)__sel((uint8x4_t)b, (uint8x4_t)a);
}
#endif
/* bytes 0 and 2 of v added to the two 16-bit sums */
static inline uint32_t add02(uint32_t sums, uint32_t v)
{
    return (uint32_t)__sxtab16((int32_t)sums, (int32_t)v);
}
/* the low and the high 16-bit sum */
static inline int32_t lane_lo(uint32_t sums) { return (int16_t)(sums & 0xffffu); }
static inline int32_t lane_hi(uint32_t sums) { return (int16_t)(sums >> 16); }
/* Taps a 16-bit sum of int8 values holds exactly: |sum| <= 128 * 256 = 2^15 */
#define LANE_TAPS 256
#endif

/* Pool2DOptions slots */
enum { POOL_PADDING = 0, POOL_STRIDE_W = 1, POOL_STRIDE_H = 2,
       POOL_FILTER_W = 3, POOL_FILTER_H = 4, POOL_ACTIVATION = 5 };

typedef struct {
    int32_t stride_w, stride_h;
    int32_t filter_w, filter_h;
    int32_t pad_w, pad_h;
    int32_t act_min, act_max;
    int32_t is_float;
    float f_min, f_max;
} pool_data;

eng_status eng_pool_prepare(eng_t *e, int op_index, uint8_t *data,
                            uint32_t *bytes, eng_error *err)
{
    const eng_op *op = &e->ops[op_index];
    const eng_tensor *in, *out;
    pool_data d;
    fb_buf b;
    fb_table t;
    uint8_t padding = 0;
    int8_t activation = 0;
    int32_t sw = 0, sh = 0, fw = 0, fh = 0;
    int32_t out_h, out_w;
    eng_status st;

    if (op->n_inputs != 1 || op->n_outputs != 1)
        return eng_fail_invalid(err, e, op_index,
                                "expects 1 input and 1 output");
    in = eng_op_input(e, op, 0);
    out = eng_op_output(e, op, 0);
    if (in == NULL)
        return eng_fail_invalid(err, e, op_index, "missing input");
    if (in->dtype != out->dtype ||
        (in->dtype != ENG_INT8 && in->dtype != ENG_FLOAT32))
        return eng_fail_variant(err, e, op_index, "with %s input and %s output",
                                eng_dtype_name(in->dtype),
                                eng_dtype_name(out->dtype));
    if (in->ndims != 4 || out->ndims != 4 || in->dims[0] != out->dims[0] ||
        in->dims[3] != out->dims[3])
        return eng_fail_invalid(err, e, op_index,
                                "input and output must be 4-D with the same "
                                "batches and channels");
    if (eng_op_options(e, op, ENG_OPT_POOL_2D, &b, &t) != FB_OK ||
        fb_get_u8(&b, &t, POOL_PADDING, 0, &padding) == FB_BAD ||
        fb_get_i32(&b, &t, POOL_STRIDE_W, 0, &sw) == FB_BAD ||
        fb_get_i32(&b, &t, POOL_STRIDE_H, 0, &sh) == FB_BAD ||
        fb_get_i32(&b, &t, POOL_FILTER_W, 0, &fw) == FB_BAD ||
        fb_get_i32(&b, &t, POOL_FILTER_H, 0, &fh) == FB_BAD ||
        fb_get_i8(&b, &t, POOL_ACTIVATION, 0, &activation) == FB_BAD)
        return eng_fail_invalid(err, e, op_index, "missing or bad options");
    if (sw <= 0 || sh <= 0 || fw <= 0 || fh <= 0 || sw > 0xffff ||
        sh > 0xffff || fw > 0xffff || fh > 0xffff)
        return eng_fail_invalid(err, e, op_index,
                                "strides and filter sizes must be positive");
    if (activation < ENG_ACT_NONE || activation > ENG_ACT_RELU6)
        return eng_fail_variant(err, e, op_index, "with fused activation %d",
                                activation);

    if (in->dtype == ENG_INT8) {
        st = eng_require_quant(e, op_index, in, "input", err);
        if (st == ENG_OK)
            st = eng_require_quant(e, op_index, out, "output", err);
        if (st != ENG_OK)
            return st;
        /* the reference requires matching quantization */
        if (!((double)fabsf(in->scale - out->scale) <= 1.0e-6) ||
            in->zero_point != out->zero_point)
            return eng_fail_variant(err, e, op_index,
                                    "with different input and output "
                                    "quantization");
    }

    memset(&d, 0, sizeof d);
    if (q_window_padding(padding, in->dims[1], fh, sh, 1, &out_h, &d.pad_h) !=
            0 ||
        q_window_padding(padding, in->dims[2], fw, sw, 1, &out_w, &d.pad_w) !=
            0)
        return eng_fail_invalid(err, e, op_index,
                                "window does not fit the input");
    d.stride_w = sw;
    d.stride_h = sh;
    d.filter_w = fw;
    d.filter_h = fh;
    d.is_float = in->dtype == ENG_FLOAT32;
    if (d.is_float) {
        q_float_activation_range(activation, &d.f_min, &d.f_max);
    } else {
        st = eng_int8_activation_range(e, op_index, activation, out,
                                       &d.act_min, &d.act_max, err);
        if (st != ENG_OK)
            return st;
    }
    return eng_keep_op_data(data, bytes, &d, sizeof d);
}

static int imax(int a, int b) { return a > b ? a : b; }
static int imin(int a, int b) { return a < b ? a : b; }

static void pool_float(eng_t *e, const eng_op *op, const pool_data *d,
                       int average)
{
    const eng_tensor *in = eng_op_input(e, op, 0);
    const eng_tensor *out = eng_op_output(e, op, 0);
    const uint8_t *x = eng_data(e, in);
    uint8_t *y = eng_data(e, out);
    const int batches = in->dims[0], depth = in->dims[3];
    const int in_h = in->dims[1], in_w = in->dims[2];
    const int out_h = out->dims[1], out_w = out->dims[2];
    int n, oy, ox, c, fy, fx;

    for (n = 0; n < batches; ++n) {
        for (oy = 0; oy < out_h; ++oy) {
            const int y0 = oy * d->stride_h - d->pad_h;
            const int fy_begin = imax(0, -y0);
            const int fy_end = imin(d->filter_h, in_h - y0);
            for (ox = 0; ox < out_w; ++ox) {
                const int x0 = ox * d->stride_w - d->pad_w;
                const int fx_begin = imax(0, -x0);
                const int fx_end = imin(d->filter_w, in_w - x0);
                for (c = 0; c < depth; ++c) {
                    float total = 0.0f, count = 0.0f;
                    float max = -FLT_MAX;
                    for (fy = fy_begin; fy < fy_end; ++fy)
                        for (fx = fx_begin; fx < fx_end; ++fx) {
                            const float v = eng_ld_f32(
                                x + 4 * ((((size_t)n * in_h + y0 + fy) * in_w +
                                          x0 + fx) * depth + c));
                            total += v;
                            count += 1.0f;
                            max = max < v ? v : max;
                        }
                    eng_st_f32(y + 4 * ((((size_t)n * out_h + oy) * out_w +
                                         ox) * depth + c),
                               q_clamp_f(average ? total / count : max,
                                         d->f_min, d->f_max));
                }
            }
        }
    }
}

/* The int8 pools: for one output pixel each tap inside the input is a run
 * of `depth` contiguous int8 values, walked with pointer steps (no index
 * arithmetic per element): the max pool runs the channels innermost (a
 * word or a vector of them at a time on the optimised sets), the average
 * pool keeps each channel's sum in a register. Same arithmetic as the reference formula: the sum of
 * the taps inside the input divided by their count, rounded half away from
 * zero; the largest tap; then the activation clamp. */
static void max_pixel(const int8_t *x, size_t row, int depth, int nh, int nw,
                      int32_t lo, int32_t hi, int8_t *y)
{
    int fy, fx, c;
#if HIL_KERNELS_MVE
    const int8x16_t vlo = vdupq_n_s8((int8_t)lo), vhi = vdupq_n_s8((int8_t)hi);
    for (c = 0; c < depth; c += 16) {
        const mve_pred16_t p = vctp8q((uint32_t)(depth - c));
        int8x16_t m = vdupq_n_s8(-128);
        for (fy = 0; fy < nh; ++fy) {
            const int8_t *t = x + (size_t)fy * row + c;
            for (fx = 0; fx < nw; ++fx, t += depth)
                m = vmaxq_s8(m, vldrbq_z_s8(t, p));
        }
        vstrbq_p_s8(y + c, vminq_s8(vmaxq_s8(m, vlo), vhi), p);
    }
#else
    c = 0;
#if HIL_KERNELS_DSP
    {
        const uint32_t lo4 = (uint32_t)(uint8_t)lo * 0x01010101u;
        const uint32_t hi4 = (uint32_t)(uint8_t)hi * 0x01010101u;
        for (; c + 4 <= depth; c += 4) {
            uint32_t m = 0x80808080u; /* -128 in every byte */
            for (fy = 0; fy < nh; ++fy) {
                const int8_t *t = x + (size_t)fy * row + c;
                for (fx = 0; fx < nw; ++fx, t += depth)
                    m = max4(m, ld4(t));
            }
            m = min4(max4(m, lo4), hi4);
            memcpy(y + c, &m, sizeof m);
        }
        if (c == depth)
            return;
    }
#endif
    {
    const int c0 = c;
    for (c = c0; c < depth; ++c)
        y[c] = -128;
    for (fy = 0; fy < nh; ++fy) {
        const int8_t *t = x + (size_t)fy * row;
        for (fx = 0; fx < nw; ++fx, t += depth)
            for (c = c0; c < depth; ++c)
                if (t[c] > y[c])
                    y[c] = t[c];
    }
    for (c = c0; c < depth; ++c)
        y[c] = (int8_t)(y[c] < lo ? lo : y[c] > hi ? hi : y[c]);
    }
#endif
}

static inline int8_t avg_round(int32_t sum, int32_t count, int32_t lo, int32_t hi)
{
    const int32_t v = sum > 0 ? (sum + count / 2) / count : (sum - count / 2) / count;
    return (int8_t)(v < lo ? lo : v > hi ? hi : v);
}

#if HIL_KERNELS_DSP && !HIL_KERNELS_MVE
/* GCC inlines a function called once; inlined into pool_eval, avg_words's
 * tap loop lost its registers to pool_eval's values (10 instructions a tap,
 * loads and stores of the stack among them, instead of 6). */
#if defined(__GNUC__)
#define NOT_INLINED __attribute__((noinline))
#else
#define NOT_INLINED
#endif

/* The average of one output pixel, four channels per word, as many words
 * as the depth holds (returns the channels done): 16-bit sums of whole rows
 * of taps (nw <= LANE_TAPS), at most LANE_TAPS taps at a time, each such
 * chunk then added into the 32-bit sums. */
static NOT_INLINED int avg_words(const int8_t *x, size_t row, int depth, int nh, int nw,
                                 int32_t count, int32_t lo, int32_t hi, int8_t *y)
{
    const int chunk_rows = LANE_TAPS / nw;
    int c, left, n, m;
    for (c = 0; c + 4 <= depth; c += 4) {
        const int8_t *r = x + c;
        int32_t s0 = 0, s1 = 0, s2 = 0, s3 = 0;
        for (left = nh; left > 0; left -= n) {
            uint32_t s02 = 0, s13 = 0;
            n = left < chunk_rows ? left : chunk_rows;
            for (m = 0; m < n; ++m, r += row) {
                const int8_t *t = r;
                int taps;
                for (taps = nw; taps > 0; --taps, t += depth) {
                    const uint32_t v = ld4(t);
                    s02 = add02(s02, v);
                    s13 = add13(s13, v);
                }
            }
            s0 += lane_lo(s02);
            s1 += lane_lo(s13);
            s2 += lane_hi(s02);
            s3 += lane_hi(s13);
        }
        y[c] = avg_round(s0, count, lo, hi);
        y[c + 1] = avg_round(s1, count, lo, hi);
        y[c + 2] = avg_round(s2, count, lo, hi);
        y[c + 3] = avg_round(s3, count, lo, hi);
    }
    return c;
}
#endif

/* The average pool: each channel's sum kept in a register over the taps
 * (MVE: four channels per vector, the last four tail-predicated; dsp: four
 * channels per word, the rest one at a time). */
static void avg_pixel(const int8_t *x, size_t row, int depth, int nh, int nw,
                      int32_t count, int32_t lo, int32_t hi, int8_t *y)
{
    int fy, fx, c = 0;
#if HIL_KERNELS_MVE
    for (c = 0; c < depth; c += 4) {
        const mve_pred16_t p = vctp32q((uint32_t)(depth - c));
        int32x4_t acc = vdupq_n_s32(0);
        int32_t sum[4];
        int j;
        for (fy = 0; fy < nh; ++fy) {
            const int8_t *t = x + (size_t)fy * row + c;
            for (fx = 0; fx < nw; ++fx, t += depth)
                acc = vaddq_s32(acc, vldrbq_z_s32(t, p));
        }
        vst1q_s32(sum, acc);
        for (j = 0; j < 4 && c + j < depth; ++j)
            y[c + j] = avg_round(sum[j], count, lo, hi);
    }
#else
#if HIL_KERNELS_DSP
    /* a window as wide as the input is one run of taps, not nh rows of them */
    if (row == (size_t)nw * (size_t)depth && count <= LANE_TAPS)
        c = avg_words(x, row, depth, 1, (int)count, count, lo, hi, y);
    else if (nw <= LANE_TAPS)
        c = avg_words(x, row, depth, nh, nw, count, lo, hi, y);
#endif
    for (; c < depth; ++c) {
        int32_t sum = 0;
        for (fy = 0; fy < nh; ++fy) {
            const int8_t *t = x + (size_t)fy * row + c;
            for (fx = 0; fx < nw; ++fx, t += depth)
                sum += *t;
        }
        y[c] = avg_round(sum, count, lo, hi);
    }
#endif
}

static eng_status pool_eval(eng_t *e, int op_index, int average,
                            eng_error *err)
{
    eng_op *op = &e->ops[op_index];
    const eng_tensor *in = eng_op_input(e, op, 0);
    const eng_tensor *out = eng_op_output(e, op, 0);
    const pool_data *d =
        (const pool_data *)(const void *)(e->arena + op->persistent_offset);
    const int8_t *x = (const int8_t *)eng_data(e, in);
    int8_t *y = (int8_t *)eng_data(e, out);
    const int batches = in->dims[0], depth = in->dims[3];
    const int in_h = in->dims[1], in_w = in->dims[2];
    const int out_h = out->dims[1], out_w = out->dims[2];
    const size_t row = (size_t)in_w * (size_t)depth;
    int n, oy, ox;

    if (d->is_float) {
        pool_float(e, op, d, average);
        return ENG_OK;
    }
    for (n = 0; n < batches; ++n) {
        const int8_t *img = x + (size_t)n * (size_t)in_h * row;
        for (oy = 0; oy < out_h; ++oy) {
            const int y0 = oy * d->stride_h - d->pad_h;
            const int fy_begin = imax(0, -y0);
            const int fy_end = imin(d->filter_h, in_h - y0);
            for (ox = 0; ox < out_w; ++ox) {
                const int x0 = ox * d->stride_w - d->pad_w;
                const int fx_begin = imax(0, -x0);
                const int fx_end = imin(d->filter_w, in_w - x0);
                /* the window's taps inside the input: nh rows of nw
                 * (none when it lies wholly in the padding) */
                const int nh = fy_end - fy_begin, nw = fx_end - fx_begin;
                const int8_t *win =
                    nh > 0 && nw > 0
                        ? img + (size_t)(y0 + fy_begin) * row +
                              (size_t)(x0 + fx_begin) * (size_t)depth
                        : img;
                int8_t *yp = y + (((size_t)n * out_h + oy) * out_w + ox) * (size_t)depth;
                if (average) {
                    const int32_t count =
                        nh > 0 && nw > 0 ? (int32_t)nh * (int32_t)nw : 0;
                    if (count == 0)
                        return eng_fail(err, ENG_E_INVOKE,
                                        (uint32_t)op_index, op_index,
                                        "operator %d: AVERAGE_POOL_2D "
                                        "window outside the input",
                                        op_index);
                    avg_pixel(win, row, depth, nh, nw, count, d->act_min,
                              d->act_max, yp);
                } else {
                    max_pixel(win, row, depth, nh, nw, d->act_min,
                              d->act_max, yp);
                }
            }
        }
    }
    return ENG_OK;
}

eng_status eng_avgpool_eval(eng_t *e, int op_index, eng_error *err)
{
    return pool_eval(e, op_index, 1, err);
}

eng_status eng_maxpool_eval(eng_t *e, int op_index, eng_error *err)
{
    return pool_eval(e, op_index, 0, err);
}
