/*
 * int8 dot-product kernels on the DSP extension's SIMD instructions. See
 * s8_dsp.h for what they compute and when they are used.
 *
 * One 32-bit load brings four int8 values; SXTB16 sign-extends bytes 0
 * and 2 into two 16-bit lanes, SXTB16 of the word rotated by 8 bytes 1 and
 * 3; SMLAD multiplies lane by lane and adds both products to an int32
 * accumulator. Four multiply-accumulates per pair of SMLADs, the pairing of
 * lanes the same on both operands, so the sum is the plain dot product.
 */
#include "../engine_internal.h"

/* Only the dsp and mve sets compile this file's code (engine.cmake defines
 * HIL_KERNELS_DSP); a build that takes every C file of kernels/ (scripts/fuzz.py)
 * gets nothing from it. */
#if HIL_KERNELS_DSP
#include "s8_dsp.h"

#ifndef HIL_KERNELS_MVE
#define HIL_KERNELS_MVE 0
#endif

#if defined(HIL_ACLE_PORTABLE)
#include "acle_portable.h"
#else
#if !defined(__ARM_FEATURE_DSP)
#error "kernels = \"dsp\" needs a core with the DSP extension (Cortex-M4/M7/M33/M55); use kernels = \"reference\""
#endif
#include <arm_acle.h>
#endif

#if HIL_KERNELS_MVE
#if defined(HIL_ACLE_PORTABLE)
#include "mve_portable.h"
#else
#if !defined(__ARM_FEATURE_MVE)
#error "kernels = \"mve\" needs a core with MVE (Helium, Cortex-M55); use kernels = \"dsp\" or \"reference\""
#endif
#include <arm_mve.h>
#endif
#endif

/* ---- requantisation (as quant.c, inlined for the per-output path) ---------- */

/* round(a * b / 2^31) as quant.c's q_mul_high: its nudge (2^30, or
 * 1 - 2^30 below zero) and division truncating toward zero equal one
 * floor((ab + 2^30) / 2^31) for every sign (below zero, truncation is the
 * floor of (n + 2^31 - 1) / 2^31 and 1 - 2^30 + 2^31 - 1 = 2^30), so no
 * branch on the sign. */
static inline int32_t mul_high(int32_t a, int32_t b)
{
    if (a == INT32_MIN && b == INT32_MIN)
        return INT32_MAX;
    return (int32_t)(((int64_t)a * (int64_t)b + ((int64_t)1 << 30)) >> 31);
}

/* clamp(q_mul_by_multiplier(acc) + output offset), the channel's shifts
 * and rounding mask precomputed (dsp_channels) */
static inline int8_t requant(uint32_t acc, const dsp_chan *c, int32_t offset,
                             int32_t lo, int32_t hi)
{
    const int32_t h = mul_high((int32_t)(acc << c->left), c->mult);
    const int32_t threshold = (c->mask >> 1) + ((h < 0) ? 1 : 0);
    int32_t v = (h >> c->right) + (((h & c->mask) > threshold) ? 1 : 0) + offset;
    if (v < lo)
        v = lo;
    if (v > hi)
        v = hi;
    return (int8_t)v;
}

/* ---- dot products ------------------------------------------------------------ */

#if !HIL_KERNELS_MVE /* the SMLAD code's helpers (clang warns of unused ones) */
static inline uint32_t ld4(const int8_t *p)
{
    uint32_t v;
    memcpy(&v, p, sizeof v);
    return v;
}

/* bytes 0 and 2, and bytes 1 and 3, as two sign-extended 16-bit lanes */
static inline int32_t lanes02(uint32_t v) { return __sxtb16((int32_t)v); }
#if defined(HIL_ACLE_PORTABLE)
static inline int32_t lanes13(uint32_t v) { return __sxtb16((int32_t)((v >> 8) | (v << 24))); }
#else
/* ACLE has no rotated SXTB16; GCC does not fold the rotation into it */
static inline int32_t lanes13(uint32_t v)
{
    int32_t r;
    __asm__("sxtb16 %0, %1, ror #8" : "=r"(r) : "r"(v));
    return r;
}
#endif
#endif

static inline uint32_t mac1(uint32_t acc, int8_t a, int8_t b)
{
    return acc + (uint32_t)((int32_t)a * (int32_t)b);
}

#if HIL_KERNELS_MVE
/* MVE: sixteen int8 products per VMLADAVA, the last partial vector
 * tail-predicated (disabled lanes load as 0 and add nothing; whole vectors
 * go unpredicated, which GCC 12 codes in far fewer instructions); four
 * output channels of one column per pass, requantised as one vector.
 * Everything a pass needs is inlined in one loop: the per-call and
 * per-group overhead, not the multiply-accumulates, was most of the count. */

/* Byte offsets of a field in channels 0..3 (step 1) or 0, 2, 4, 6 (step 2)
 * of a dsp_chan array, for the gathers below. dsp_channels() pads the
 * array to DSP_CHAN_ROWS entries, so a whole group of lanes is always
 * inside it. */
#define CHAN_AT(step) vmulq_n_u32(vidupq_n_u32(0, (step)), (uint32_t)sizeof(dsp_chan))

/* The folded terms of the channels at offsets `at` from c. */
static inline int32x4_t fold_v(const dsp_chan *c, uint32x4_t at)
{
    return vldrwq_gather_offset_s32(&c->fold, at);
}

/* requant() on four lanes: acc (folded term included) of the channels at
 * offsets `at` from c, clamped to [lo, hi]. VQRDMULH is mul_high()
 * exactly (saturation included); the round-half-away division is VRSHL
 * (round half up) after subtracting 1 from negative values (saturating),
 * which gives the same result for every int32. h & neg_right has h's sign
 * exactly when there is a right shift (neg_right < 0), so shifting it by
 * 31 gives that -1 or 0. */
static inline int32x4_t requant_v(int32x4_t acc, const dsp_chan *c, uint32x4_t at,
                                  int32_t offset, int32_t lo, int32_t hi)
{
    const int32x4_t mult = vldrwq_gather_offset_s32(&c->mult, at);
    const int32x4_t left = vldrwq_gather_offset_s32(&c->left, at);
    const int32x4_t neg_right = vnegq_s32(vldrwq_gather_offset_s32(&c->right, at));
    const int32x4_t h = vqrdmulhq_s32(vshlq_s32(acc, left), mult);
    const int32x4_t v = vrshlq_s32(vqaddq_s32(h, vshrq_n_s32(vandq_s32(h, neg_right), 31)), neg_right);
    return vminq_s32(vmaxq_s32(vaddq_n_s32(v, offset), vdupq_n_s32(lo)), vdupq_n_s32(hi));
}

/* a . w_j for four weight rows w_j of k values, as the lanes of a vector */
static inline int32x4_t dot_1x4(const int8_t *a, const int8_t *w0, const int8_t *w1,
                                const int8_t *w2, const int8_t *w3, int k)
{
    int32_t s0 = 0, s1 = 0, s2 = 0, s3 = 0;
    int n;
    for (n = k >> 4; n > 0; --n) { /* whole vectors: no predication */
        const int8x16_t va = vld1q_s8(a);
        s0 = vmladavaq_s8(s0, va, vld1q_s8(w0));
        s1 = vmladavaq_s8(s1, va, vld1q_s8(w1));
        s2 = vmladavaq_s8(s2, va, vld1q_s8(w2));
        s3 = vmladavaq_s8(s3, va, vld1q_s8(w3));
        a += 16;
        w0 += 16;
        w1 += 16;
        w2 += 16;
        w3 += 16;
    }
    if (k & 15) {
        const mve_pred16_t p = vctp8q((uint32_t)(k & 15));
        const int8x16_t va = vldrbq_z_s8(a, p);
        s0 = vmladavaq_s8(s0, va, vldrbq_z_s8(w0, p));
        s1 = vmladavaq_s8(s1, va, vldrbq_z_s8(w1, p));
        s2 = vmladavaq_s8(s2, va, vldrbq_z_s8(w2, p));
        s3 = vmladavaq_s8(s3, va, vldrbq_z_s8(w3, p));
    }
    return vsetq_lane_s32(s3, vsetq_lane_s32(s2, vsetq_lane_s32(s0, vdupq_n_s32(s1), 0), 2), 3);
}

/* Every output channel of one column of k values: four weight rows per
 * pass; a last partial four repeats its first row in lanes not stored. */
static void out_column(const int8_t *col, const int8_t *w, int k, int rows,
                       const dsp_requant *q, int8_t *y)
{
    const uint32x4_t at = CHAN_AT(1);
    const dsp_chan *ch = q->ch;
    const int32_t offset = q->output_offset, lo = q->act_min, hi = q->act_max;
    const size_t step = (size_t)k;
    int r;
    for (r = 0; r + 4 <= rows; r += 4) {
        const int32x4_t acc = dot_1x4(col, w, w + step, w + 2 * step, w + 3 * step, k);
        vstrbq_s32(y + r, requant_v(vaddq_s32(acc, fold_v(ch + r, at)), ch + r, at, offset, lo, hi));
        w += 4 * step;
    }
    if (r < rows) {
        const int n = rows - r;
        const int32x4_t acc = dot_1x4(col, w, n > 1 ? w + step : w, n > 2 ? w + 2 * step : w, w, k);
        vstrbq_p_s32(y + r, requant_v(vaddq_s32(acc, fold_v(ch + r, at)), ch + r, at, offset, lo, hi),
                     vctp32q((uint32_t)n));
    }
}

static void out_columns(const int8_t *c0, const int8_t *c1, const int8_t *w,
                        int k, int rows, const dsp_requant *q, int8_t *y0,
                        int8_t *y1)
{
    out_column(c0, w, k, rows, q, y0);
    if (c1 != NULL)
        out_column(c1, w, k, rows, q, y1);
}
#else
/* s0 += a . b0, s1 += a . b1 over k values */
static void dot_1x2(const int8_t *a, const int8_t *b0, const int8_t *b1, int k,
                    uint32_t *s0, uint32_t *s1)
{
    int32_t acc0 = (int32_t)*s0, acc1 = (int32_t)*s1;
    uint32_t t0, t1;
    int n = k >> 2;
    while (n-- > 0) {
        const uint32_t va = ld4(a), v0 = ld4(b0), v1 = ld4(b1);
        const int32_t a02 = lanes02(va), a13 = lanes13(va);
        acc0 = __smlad(a02, lanes02(v0), acc0);
        acc0 = __smlad(a13, lanes13(v0), acc0);
        acc1 = __smlad(a02, lanes02(v1), acc1);
        acc1 = __smlad(a13, lanes13(v1), acc1);
        a += 4;
        b0 += 4;
        b1 += 4;
    }
    t0 = (uint32_t)acc0;
    t1 = (uint32_t)acc1;
    for (n = k & 3; n > 0; --n) {
        t0 = mac1(t0, *a, *b0++);
        t1 = mac1(t1, *a++, *b1++);
    }
    *s0 = t0;
    *s1 = t1;
}

/* s[2i + j] += a_i . b_j for two columns a_i = a + i * k and two weight
 * rows b_j = b + j * k (one offset register for both second operands) */
static void dot_2x2(const int8_t *a0, const int8_t *b0, int k, uint32_t s[4])
{
    const int8_t *a1 = a0 + k, *b1 = b0 + k;
    int32_t s00 = (int32_t)s[0], s01 = (int32_t)s[1];
    int32_t s10 = (int32_t)s[2], s11 = (int32_t)s[3];
    uint32_t t00, t01, t10, t11;
    int n = k >> 2;
    while (n-- > 0) {
        const uint32_t va0 = ld4(a0), va1 = ld4(a0 + k);
        const int32_t a0_02 = lanes02(va0), a0_13 = lanes13(va0);
        const int32_t a1_02 = lanes02(va1), a1_13 = lanes13(va1);
        uint32_t vb = ld4(b0);
        int32_t b02 = lanes02(vb), b13 = lanes13(vb);
        s00 = __smlad(a0_02, b02, s00);
        s00 = __smlad(a0_13, b13, s00);
        s10 = __smlad(a1_02, b02, s10);
        s10 = __smlad(a1_13, b13, s10);
        vb = ld4(b0 + k);
        b02 = lanes02(vb);
        b13 = lanes13(vb);
        s01 = __smlad(a0_02, b02, s01);
        s01 = __smlad(a0_13, b13, s01);
        s11 = __smlad(a1_02, b02, s11);
        s11 = __smlad(a1_13, b13, s11);
        a0 += 4;
        b0 += 4;
    }
    a1 = a0 + k;
    b1 = b0 + k;
    t00 = (uint32_t)s00;
    t01 = (uint32_t)s01;
    t10 = (uint32_t)s10;
    t11 = (uint32_t)s11;
    for (n = k & 3; n > 0; --n) {
        t00 = mac1(t00, *a0, *b0);
        t01 = mac1(t01, *a0++, *b1);
        t10 = mac1(t10, *a1, *b0++);
        t11 = mac1(t11, *a1++, *b1++);
    }
    s[0] = t00;
    s[1] = t01;
    s[2] = t10;
    s[3] = t11;
}

/* Every output channel of one or two columns (c1 is c0 + k, or NULL):
 * y0[r] and y1[r] for the `rows` weight rows of k values. */
static void out_columns(const int8_t *c0, const int8_t *c1, const int8_t *w,
                        int k, int rows, const dsp_requant *q, int8_t *y0,
                        int8_t *y1)
{
    const dsp_chan *ch = q->ch;
    const int32_t off = q->output_offset, lo = q->act_min, hi = q->act_max;
    int r = 0;
    for (; r + 2 <= rows; r += 2) {
        const int8_t *w0 = w + (size_t)r * (size_t)k;
        const int8_t *w1 = w0 + k;
        if (c1 != NULL) {
            uint32_t s[4];
            s[0] = s[2] = (uint32_t)ch[r].fold;
            s[1] = s[3] = (uint32_t)ch[r + 1].fold;
            dot_2x2(c0, w0, k, s);
            y0[r] = requant(s[0], &ch[r], off, lo, hi);
            y0[r + 1] = requant(s[1], &ch[r + 1], off, lo, hi);
            y1[r] = requant(s[2], &ch[r], off, lo, hi);
            y1[r + 1] = requant(s[3], &ch[r + 1], off, lo, hi);
        } else {
            uint32_t s0 = (uint32_t)ch[r].fold, s1 = (uint32_t)ch[r + 1].fold;
            dot_1x2(c0, w0, w1, k, &s0, &s1);
            y0[r] = requant(s0, &ch[r], off, lo, hi);
            y0[r + 1] = requant(s1, &ch[r + 1], off, lo, hi);
        }
    }
    if (r < rows) { /* odd channel count: one row against both columns */
        const int8_t *w0 = w + (size_t)r * (size_t)k;
        uint32_t s0 = (uint32_t)ch[r].fold, s1 = (uint32_t)ch[r].fold;
        dot_1x2(w0, c0, c1 != NULL ? c1 : c0, k, &s0, &s1);
        y0[r] = requant(s0, &ch[r], off, lo, hi);
        if (c1 != NULL)
            y1[r] = requant(s1, &ch[r], off, lo, hi);
    }
}
#endif

void dsp_chan_requant(dsp_chan *c, int32_t mult, int32_t shift)
{
    c->mult = mult;
    c->left = shift > 0 ? shift : 0;
    c->right = shift > 0 ? 0 : -shift;
    c->mask = (int32_t)(((uint32_t)1 << c->right) - 1u);
}

void dsp_channels(const int8_t *w, int rows, int k, int row_step, int step,
                  int32_t input_offset, const uint8_t *bias,
                  const int32_t *mult, const int32_t *shift, int mult_step,
                  dsp_chan *ch)
{
    int r, i;
    for (r = 0; r < rows; ++r) {
        uint32_t sum = 0;
        const int8_t *wr = w + (size_t)r * (size_t)row_step;
        for (i = 0; i < k; ++i)
            sum += (uint32_t)(int32_t)wr[(size_t)i * (size_t)step];
        sum *= (uint32_t)input_offset;
        if (bias != NULL)
            sum += (uint32_t)eng_ld_i32(bias + 4u * (uint32_t)r);
        memset(&ch[r], 0, sizeof ch[r]);
        ch[r].fold = (int32_t)sum;
        if (mult != NULL)
            dsp_chan_requant(&ch[r], mult[r * mult_step], shift[r * mult_step]);
    }
    /* the padding vector code may read (never stored): a neutral channel */
    for (; r < DSP_CHAN_ROWS(rows); ++r)
        memset(&ch[r], 0, sizeof ch[r]);
}

/* ---- fully connected ------------------------------------------------------------ */

void dsp_fc_s8(const int8_t *x, const int8_t *w, int8_t *y, int batches, int units, int depth,
               const dsp_requant *q)
{
    int b = 0;
    for (; b + 2 <= batches; b += 2)
        out_columns(x + (size_t)b * depth, x + (size_t)(b + 1) * depth, w,
                    depth, units, q, y + (size_t)b * units,
                    y + (size_t)(b + 1) * units);
    if (b < batches)
        out_columns(x + (size_t)b * depth, NULL, w, depth, units, q,
                    y + (size_t)b * units, NULL);
}

/* ---- convolution ---------------------------------------------------------------- */

static int8_t im2col_buf[HIL_IM2COL_BYTES];

static int is_pointwise(const dsp_conv_shape *s)
{
    return s->f_h == 1 && s->f_w == 1 && s->pad_h == 0 && s->pad_w == 0;
}

int dsp_conv_fits(const dsp_conv_shape *s)
{
    return (is_pointwise(s) && s->stride_h == 1 && s->stride_w == 1) ||
           (int64_t)s->f_h * s->f_w * s->in_c <= DSP_IM2COL_MAX_K;
}

#if HIL_KERNELS_MVE
/* im2col's copies are a few dozen bytes: sixteen per predicated vector
 * beat a call to the C library's memcpy / memset. */
static inline void copy_bytes(int8_t *dst, const int8_t *src, size_t n)
{
    for (; n >= 16; n -= 16, src += 16, dst += 16)
        vst1q_s8(dst, vld1q_s8(src));
    if (n > 0) {
        const mve_pred16_t p = vctp8q((uint32_t)n);
        vstrbq_p_s8(dst, vldrbq_z_s8(src, p), p);
    }
}

static inline void fill_bytes(int8_t *dst, int8_t value, size_t n)
{
    const int8x16_t v = vdupq_n_s8(value);
    for (; n >= 16; n -= 16, dst += 16)
        vst1q_s8(dst, v);
    if (n > 0)
        vstrbq_p_s8(dst, v, vctp8q((uint32_t)n));
}
#else
#define copy_bytes(dst, src, n) memcpy((dst), (src), (n))
#define fill_bytes(dst, value, n) memset((dst), (value), (n))
#endif

/* The window of output (oy, ox) as one column in weight order
 * (ky, kx, channel); taps in the padding hold the input zero point. */
static void im2col(const dsp_conv_shape *s, const int8_t *img, int oy, int ox,
                   int8_t *col)
{
    const int y0 = oy * s->stride_h - s->pad_h;
    const int x0 = ox * s->stride_w - s->pad_w;
    const size_t tap = (size_t)s->in_c;
    const size_t span = (size_t)s->f_w * tap;
    int ky, kx;
    for (ky = 0; ky < s->f_h; ++ky) {
        const int iy = y0 + ky * s->dil_h;
        const int8_t *row;
        if (iy < 0 || iy >= s->in_h) {
            fill_bytes(col, s->input_zero_point, span);
            col += span;
            continue;
        }
        row = img + (size_t)iy * (size_t)s->in_w * tap;
        if (s->dil_w == 1 && x0 >= 0 && x0 + s->f_w <= s->in_w) {
            copy_bytes(col, row + (size_t)x0 * tap, span);
            col += span;
            continue;
        }
        for (kx = 0; kx < s->f_w; ++kx) {
            const int ix = x0 + kx * s->dil_w;
            if (ix < 0 || ix >= s->in_w)
                fill_bytes(col, s->input_zero_point, tap);
            else
                copy_bytes(col, row + (size_t)ix * tap, tap);
            col += tap;
        }
    }
}

#if HIL_KERNELS_MVE
/* a_j . w for four columns a_j = a + j * step of k values, as the lanes of
 * a vector (one weight load serves four VMLADAVAs); `tail` says whether k
 * has a last partial vector (a constant where this is inlined, so the
 * common whole-vector case carries no tail code). */
static inline int32x4_t dot_4x1(const int8_t *a, size_t step, const int8_t *w, int k, int tail)
{
    const int8_t *a1 = a + step, *a2 = a1 + step, *a3 = a2 + step;
    int32_t s0 = 0, s1 = 0, s2 = 0, s3 = 0;
    int n;
    for (n = k >> 4; n > 0; --n) {
        const int8x16_t vw = vld1q_s8(w);
        s0 = vmladavaq_s8(s0, vld1q_s8(a), vw);
        s1 = vmladavaq_s8(s1, vld1q_s8(a1), vw);
        s2 = vmladavaq_s8(s2, vld1q_s8(a2), vw);
        s3 = vmladavaq_s8(s3, vld1q_s8(a3), vw);
        a += 16;
        a1 += 16;
        a2 += 16;
        a3 += 16;
        w += 16;
    }
    if (tail) {
        const mve_pred16_t p = vctp8q((uint32_t)(k & 15));
        const int8x16_t vw = vldrbq_z_s8(w, p);
        s0 = vmladavaq_s8(s0, vldrbq_z_s8(a, p), vw);
        s1 = vmladavaq_s8(s1, vldrbq_z_s8(a1, p), vw);
        s2 = vmladavaq_s8(s2, vldrbq_z_s8(a2, p), vw);
        s3 = vmladavaq_s8(s3, vldrbq_z_s8(a3, p), vw);
    }
    return vsetq_lane_s32(s3, vsetq_lane_s32(s2, vsetq_lane_s32(s0, vdupq_n_s32(s1), 0), 2), 3);
}

/* Every output channel of four columns a + j * step (four output pixels):
 * one weight row per pass, its four results requantised with the
 * channel's own scalars and stored y_step bytes apart. */
static inline void rows_4columns(const int8_t *a, size_t step, const int8_t *w, int k, int rows,
                                 const dsp_requant *q, int8_t *y, int y_step, int tail)
{
    const uint32x4_t at = vmulq_n_u32(vidupq_n_u32(0, 1), (uint32_t)y_step);
    const int32_t offset = q->output_offset, lo = q->act_min, hi = q->act_max;
    const dsp_chan *c = q->ch;
    int r;
    for (r = 0; r < rows; ++r, ++c, w += k) {
        const int32x4_t h = vqrdmulhq_n_s32(vshlq_r_s32(vaddq_n_s32(dot_4x1(a, step, w, k, tail), c->fold), c->left),
                                            c->mult);
        /* as requant_v, one channel's shifts */
        const int32_t neg_right = -c->right;
        int32x4_t v = vrshlq_n_s32(vqaddq_s32(h, vshrq_n_s32(vandq_s32(h, vdupq_n_s32(neg_right)), 31)),
                                   neg_right);
        v = vminq_s32(vmaxq_s32(vaddq_n_s32(v, offset), vdupq_n_s32(lo)), vdupq_n_s32(hi));
        vstrbq_scatter_offset_s32(y + r, at, v);
    }
}

static void out_4columns(const int8_t *a, size_t step, const int8_t *w, int k, int rows,
                         const dsp_requant *q, int8_t *y, int y_step)
{
    if (k & 15)
        rows_4columns(a, step, w, k, rows, q, y, y_step, 1);
    else
        rows_4columns(a, step, w, k, rows, q, y, y_step, 0);
}

/* Four output pixels at a time (CMSIS-NN's blocking): in place for a 1x1
 * filter with unit strides, else four im2col columns when they fit the
 * scratch; the last pixels (or every pixel of a filter too large for four
 * columns) one column at a time against four weight rows. */
int dsp_conv_s8(const dsp_conv_shape *s, const int8_t *x, const int8_t *w,
                int8_t *y, const dsp_requant *q)
{
    const int k = s->f_h * s->f_w * s->in_c;
    const int pixels = s->out_h * s->out_w;
    const int in_place = is_pointwise(s) && s->stride_h == 1 && s->stride_w == 1;
    const int group = in_place || 4 * k <= HIL_IM2COL_BYTES ? 4 : 1;
    int n, p, j;

    if (!dsp_conv_fits(s))
        return -1;
    for (n = 0; n < s->batches; ++n) {
        const int8_t *img = x + (size_t)n * s->in_h * s->in_w * s->in_c;
        int8_t *out = y + (size_t)n * pixels * s->out_c;
        int oy = 0, ox = 0;
        for (p = 0; p < pixels;) {
            const int m = pixels - p >= group ? group : 1;
            const int8_t *col = im2col_buf;
            if (in_place) {
                col = img + (size_t)p * s->in_c;
            } else {
                for (j = 0; j < m; ++j) {
                    im2col(s, img, oy, ox, im2col_buf + (size_t)j * (size_t)k);
                    if (++ox == s->out_w) {
                        ox = 0;
                        ++oy;
                    }
                }
            }
            if (m == 4)
                out_4columns(col, (size_t)k, w, k, s->out_c, q, out + (size_t)p * s->out_c, s->out_c);
            else
                out_column(col, w, k, s->out_c, q, out + (size_t)p * s->out_c);
            p += m;
        }
    }
    return 0;
}
#else
int dsp_conv_s8(const dsp_conv_shape *s, const int8_t *x, const int8_t *w,
                int8_t *y, const dsp_requant *q)
{
    const int k = s->f_h * s->f_w * s->in_c;
    const int pixels = s->out_h * s->out_w;
    /* a 1x1 filter with unit strides reads its columns in place: pixel
     * p + 1 follows pixel p, rows included */
    const int in_place = is_pointwise(s) && s->stride_h == 1 && s->stride_w == 1;
    /* adjacent; in place, k may exceed the scratch: no pointer past it is formed */
    int8_t *col0 = im2col_buf, *col1 = in_place ? im2col_buf : im2col_buf + k;
    int n, p;

    if (!dsp_conv_fits(s))
        return -1;
    for (n = 0; n < s->batches; ++n) {
        const int8_t *img = x + (size_t)n * s->in_h * s->in_w * s->in_c;
        int8_t *out = y + (size_t)n * pixels * s->out_c;
        int oy = 0, ox = 0;
        for (p = 0; p < pixels; p += 2) {
            const int two = p + 1 < pixels;
            const int8_t *c0, *c1 = NULL;
            int oy1 = oy, ox1 = ox + 1;
            if (ox1 == s->out_w) {
                ox1 = 0;
                ++oy1;
            }
            if (in_place) {
                c0 = img + (size_t)p * s->in_c;
                if (two)
                    c1 = c0 + k;
            } else {
                im2col(s, img, oy, ox, col0);
                c0 = col0;
                if (two) {
                    im2col(s, img, oy1, ox1, col1);
                    c1 = col1;
                }
            }
            out_columns(c0, c1, w, k, s->out_c, q,
                        out + (size_t)p * s->out_c,
                        out + (size_t)(p + 1) * s->out_c);
            ox = ox1 + 1;
            oy = oy1;
            if (ox == s->out_w) {
                ox = 0;
                ++oy;
            }
        }
    }
    return 0;
}

#endif

/* ---- depthwise -------------------------------------------------------------------- */

/* Every output pixel reads its taps through tap[t], a pointer to the input
 * pixel under filter tap t, or to a row of zero points where the tap falls
 * in the padding: with the folded term that adds exactly nothing, so border
 * windows take the same loops as the rest. */

/* Output channels [c0, channels) one at a time; output channel c reads
 * input channel c / dm (depth multiplier dm; c0 is a multiple of dm). */
static void dw_taps(const int8_t *const *tap, const int8_t *w, int c0,
                    int channels, int dm, int taps, int8_t *y,
                    const dsp_requant *q)
{
    const dsp_chan *ch = q->ch;
    const int32_t off = q->output_offset, lo = q->act_min, hi = q->act_max;
    int c = c0, xc = c0 / dm, m, t;
    for (; c < channels; ++xc) {
        for (m = 0; m < dm; ++m, ++c) {
            uint32_t acc = (uint32_t)ch[c].fold;
            const int8_t *wc = w + c;
            for (t = 0; t < taps; ++t, wc += channels)
                acc = mac1(acc, *wc, tap[t][xc]);
            y[c] = requant(acc, &ch[c], off, lo, hi);
        }
    }
}

#if HIL_KERNELS_MVE
/* Depth multiplier 1, eight channels per vector: VLDRB widens eight int8
 * of a tap to 16-bit lanes, VMULLB / VMULLT multiply the even and the odd
 * lanes into two vectors of 32-bit products, added per lane (sixteen
 * channels per pass measured slower: GCC 12 spills an accumulator). The
 * last vector is tail-predicated, so every channel is done here. */
/* Eight channels' results: even and odd lanes requantised apart; the even
 * results sit in the low half of each 32-bit lane, i.e. in the even 16-bit
 * lanes, and VMOVNT puts the odd ones between. */
static inline int16x8_t requant_pairs(int32x4_t ae, int32x4_t ao, const dsp_chan *ch, uint32x4_t even,
                                      int32_t offset, int32_t lo, int32_t hi)
{
    return vmovntq_s32(vreinterpretq_s16_s32(requant_v(ae, ch, even, offset, lo, hi)),
                       requant_v(ao, ch + 1, even, offset, lo, hi));
}

static int dw_block4(const int8_t *const *tap, const int8_t *w, int channels,
                     int taps, int8_t *y, const dsp_requant *q)
{
    const uint32x4_t even = CHAN_AT(2);
    const int32_t offset = q->output_offset, lo = q->act_min, hi = q->act_max;
    const size_t step = (size_t)channels;
    int c, t;
    for (c = 0; c < channels; c += 8) {
        const int8_t *wc = w + c;
        const dsp_chan *ch = &q->ch[c];
        int32x4_t ae = fold_v(ch, even), ao = fold_v(ch + 1, even);
        if (channels - c >= 8) { /* unpredicated: fewer instructions */
            for (t = 0; t < taps; ++t, wc += step) {
                const int16x8_t xv = vldrbq_s16(tap[t] + c), wv = vldrbq_s16(wc);
                ae = vaddq_s32(ae, vmullbq_int_s16(xv, wv));
                ao = vaddq_s32(ao, vmulltq_int_s16(xv, wv));
            }
            vstrbq_s16(y + c, requant_pairs(ae, ao, ch, even, offset, lo, hi));
        } else {
            const mve_pred16_t p = vctp16q((uint32_t)(channels - c));
            for (t = 0; t < taps; ++t, wc += step) {
                const int16x8_t xv = vldrbq_z_s16(tap[t] + c, p), wv = vldrbq_z_s16(wc, p);
                ae = vaddq_s32(ae, vmullbq_int_s16(xv, wv));
                ao = vaddq_s32(ao, vmulltq_int_s16(xv, wv));
            }
            vstrbq_p_s16(y + c, requant_pairs(ae, ao, ch, even, offset, lo, hi), p);
        }
    }
    return channels;
}
#else
/* Four output channels ch[0..3] at a time: acc[j] starts at channel j's
 * folded term, gains x_j * w_j per tap, x and w as halfword pairs (channels
 * 0 and 2 in x02 and w02, 1 and 3 in x13 and w13: SMLABB takes the low
 * halves, SMLATT the high ones), and is requantised into y[j]. */
static inline void start4(int32_t acc[4], const dsp_chan *ch)
{
    acc[0] = ch[0].fold;
    acc[1] = ch[1].fold;
    acc[2] = ch[2].fold;
    acc[3] = ch[3].fold;
}

static inline void mac4(int32_t acc[4], int32_t x02, int32_t x13, int32_t w02, int32_t w13)
{
    acc[0] = __smlabb(x02, w02, acc[0]);
    acc[2] = __smlatt(x02, w02, acc[2]);
    acc[1] = __smlabb(x13, w13, acc[1]);
    acc[3] = __smlatt(x13, w13, acc[3]);
}

static inline void requant4(const int32_t acc[4], const dsp_chan *ch, int32_t off, int32_t lo, int32_t hi,
                            int8_t *y)
{
    y[0] = requant((uint32_t)acc[0], &ch[0], off, lo, hi);
    y[1] = requant((uint32_t)acc[1], &ch[1], off, lo, hi);
    y[2] = requant((uint32_t)acc[2], &ch[2], off, lo, hi);
    y[3] = requant((uint32_t)acc[3], &ch[3], off, lo, hi);
}

/* Depth multiplier 1, four channels at a time: one load brings a tap of
 * four channels, split into lanes 0 and 2 and (the rotated SXTB16) 1 and 3.
 * Returns the channels done. */
static int dw_block4(const int8_t *const *tap, const int8_t *w, int channels,
                     int taps, int8_t *y, const dsp_requant *q)
{
    const dsp_chan *ch = q->ch;
    const int32_t off = q->output_offset, lo = q->act_min, hi = q->act_max;
    int c, t;
    for (c = 0; c + 4 <= channels; c += 4) {
        const int8_t *wc = w + c;
        int32_t acc[4];
        start4(acc, ch + c);
        for (t = 0; t < taps; ++t, wc += channels) {
            const uint32_t vx = ld4(tap[t] + c), vw = ld4(wc);
            mac4(acc, lanes02(vx), lanes13(vx), lanes02(vw), lanes13(vw));
        }
        requant4(acc, ch + c, off, lo, hi, y + c);
    }
    return c;
}
#endif

#if HIL_KERNELS_MVE
/* Depth multiplier dm > 1: the dm output channels of one input channel are
 * adjacent, and so are their weights in every tap: four of them per
 * vector, multiplied by the input value as a scalar (VMLA by a scalar);
 * a last partial four is predicated (its loads, gathers and store). */
static void dw_multiplier(const int8_t *const *tap, const int8_t *w, int in_c, int dm,
                          int taps, int8_t *y, const dsp_requant *q)
{
    const uint32x4_t at = CHAN_AT(1);
    const int32_t offset = q->output_offset, lo = q->act_min, hi = q->act_max;
    const size_t step = (size_t)in_c * (size_t)dm;
    int xc, m, t;
    for (xc = 0; xc < in_c; ++xc) {
        for (m = 0; m < dm; m += 4) {
            const int c = xc * dm + m;
            const dsp_chan *ch = &q->ch[c];
            const int8_t *wc = w + c;
            int32x4_t acc;
            if (dm - m >= 4) {
                acc = fold_v(ch, at);
                for (t = 0; t < taps; ++t, wc += step)
                    acc = vmlaq_n_s32(acc, vldrbq_s32(wc), tap[t][xc]);
                vstrbq_s32(y + c, requant_v(acc, ch, at, offset, lo, hi));
            } else {
                const mve_pred16_t p = vctp32q((uint32_t)(dm - m));
                acc = vldrwq_gather_offset_z_s32(&ch->fold, at, p);
                for (t = 0; t < taps; ++t, wc += step)
                    acc = vmlaq_n_s32(acc, vldrbq_z_s32(wc, p), tap[t][xc]);
                vstrbq_p_s32(y + c, requant_v(acc, ch, at, offset, lo, hi), p);
            }
        }
    }
}
#else
/* Depth multiplier dm > 1: with dm a multiple of 4, four adjacent output
 * channels of one input channel per pass: one load brings their weights
 * in a tap, the input value sits in both halfwords, SMLABB / SMLATT
 * multiply it by each; other multipliers take one channel at a time. */
static void dw_multiplier(const int8_t *const *tap, const int8_t *w, int in_c, int dm,
                          int taps, int8_t *y, const dsp_requant *q)
{
    const dsp_chan *ch = q->ch;
    const int32_t off = q->output_offset, lo = q->act_min, hi = q->act_max;
    const size_t step = (size_t)in_c * (size_t)dm;
    int xc, m, t;
    if (dm % 4 != 0) {
        dw_taps(tap, w, 0, in_c * dm, dm, taps, y, q);
        return;
    }
    for (xc = 0; xc < in_c; ++xc) {
        for (m = 0; m < dm; m += 4) {
            const int c = xc * dm + m;
            const int8_t *wc = w + c;
            int32_t acc[4];
            start4(acc, ch + c);
            for (t = 0; t < taps; ++t, wc += step) {
                const int32_t xx = (int32_t)((uint32_t)(uint16_t)tap[t][xc] * 0x10001u);
                const uint32_t vw = ld4(wc);
                mac4(acc, xx, xx, lanes02(vw), lanes13(vw));
            }
            requant4(acc, ch + c, off, lo, hi, y + c);
        }
    }
}
#endif

/* tap[] of a window that overlaps the padding at (y0, x0) */
static void border_taps(const dsp_conv_shape *s, const int8_t *img, int y0,
                        int x0, const int8_t *zero_points, const int8_t **tap)
{
    int ky, kx, t = 0;
    for (ky = 0; ky < s->f_h; ++ky) {
        const int iy = y0 + ky * s->dil_h;
        const int row_inside = iy >= 0 && iy < s->in_h;
        for (kx = 0; kx < s->f_w; ++kx) {
            const int ix = x0 + kx * s->dil_w;
            tap[t++] = row_inside && ix >= 0 && ix < s->in_w
                           ? img + ((size_t)iy * s->in_w + (size_t)ix) * s->in_c
                           : zero_points;
        }
    }
}

int dsp_dwconv_fits(const dsp_conv_shape *s)
{
    return (int64_t)s->f_h * s->f_w <= DSP_DW_MAX_TAPS &&
           s->in_c <= HIL_IM2COL_BYTES;
}

int dsp_dwconv_s8(const dsp_conv_shape *s, const int8_t *x, const int8_t *w,
                  int8_t *y, const dsp_requant *q)
{
    const int taps = s->f_h * s->f_w;
    const int in_c = s->in_c, ch = s->out_c;
    const int dm = in_c > 0 ? ch / in_c : 0;
    const int last_y = (s->f_h - 1) * s->dil_h, last_x = (s->f_w - 1) * s->dil_w;
    const int8_t *tap[DSP_DW_MAX_TAPS];
    const int8_t *zero_points = im2col_buf; /* the padding, one pixel of it */
    size_t xoff[DSP_DW_MAX_TAPS];
    int n, oy, ox, ky, kx, t;

    if (!dsp_dwconv_fits(s) || dm <= 0 || ch != in_c * dm)
        return -1;
    memset(im2col_buf, s->input_zero_point, (size_t)in_c);
    for (ky = 0, t = 0; ky < s->f_h; ++ky)
        for (kx = 0; kx < s->f_w; ++kx)
            xoff[t++] = ((size_t)ky * s->dil_h * s->in_w + (size_t)kx * s->dil_w) * in_c;
    for (n = 0; n < s->batches; ++n) {
        const int8_t *img = x + (size_t)n * s->in_h * s->in_w * in_c;
        for (oy = 0; oy < s->out_h; ++oy) {
            const int y0 = oy * s->stride_h - s->pad_h;
            for (ox = 0; ox < s->out_w; ++ox) {
                const int x0 = ox * s->stride_w - s->pad_w;
                int8_t *out = y + (((size_t)n * s->out_h + oy) * s->out_w + ox) * ch;
                if (y0 >= 0 && x0 >= 0 && y0 + last_y < s->in_h && x0 + last_x < s->in_w) {
                    const int8_t *base = img + ((size_t)y0 * s->in_w + (size_t)x0) * in_c;
                    for (t = 0; t < taps; ++t)
                        tap[t] = base + xoff[t];
                } else {
                    border_taps(s, img, y0, x0, zero_points, tap);
                }
                if (dm != 1)
                    dw_multiplier(tap, w, in_c, dm, taps, out, q);
                else
                    dw_taps(tap, w, dw_block4(tap, w, ch, taps, out, q), ch, 1,
                            taps, out, q);
            }
        }
    }
    return 0;
}

/* ---- elementwise ADD / SUB ------------------------------------------------------- */


#if HIL_KERNELS_MVE
/* shift_round on four lanes: VRSHL (round half up) after a saturating -1
 * on negative lanes, as in requant_v */
static inline int32x4_t shift_round4(int32x4_t x, int32_t right)
{
    if (right > 0)
        x = vqaddq_s32(x, vshrq_n_s32(x, 31));
    return vrshlq_s32(x, vdupq_n_s32(-right));
}

void dsp_add_s8(const int8_t *a, const int8_t *b, int8_t *y, int32_t count,
                const dsp_add_params *p)
{
    const int32x4_t m1 = vdupq_n_s32(p->mult1), m2 = vdupq_n_s32(p->mult2);
    const int32x4_t mo = vdupq_n_s32(p->mult_out), headroom = vdupq_n_s32(20);
    const int32x4_t lo = vdupq_n_s32(p->act_min), hi = vdupq_n_s32(p->act_max);
    int32_t i;
    for (i = 0; i < count; i += 4) {
        const mve_pred16_t pr = vctp32q((uint32_t)(count - i));
        const int32x4_t va = vshlq_s32(vaddq_n_s32(vldrbq_z_s32(a + i, pr), p->offset1), headroom);
        const int32x4_t vb = vshlq_s32(vaddq_n_s32(vldrbq_z_s32(b + i, pr), p->offset2), headroom);
        const int32x4_t sa = shift_round4(vqrdmulhq_s32(va, m1), p->right1);
        const int32x4_t sb = shift_round4(vqrdmulhq_s32(vb, m2), p->right2);
        const int32x4_t raw = p->subtract ? vsubq_s32(sa, sb) : vaddq_s32(sa, sb);
        int32x4_t v = vaddq_n_s32(shift_round4(vqrdmulhq_s32(raw, mo), p->right_out), p->output_offset);
        v = vminq_s32(vmaxq_s32(v, lo), hi);
        vstrbq_p_s32(y + i, v, pr);
    }
}
#else
/* x / 2^right rounded half away from zero (quant.c's q_shift_round) */
static inline int32_t shift_round(int32_t x, int32_t right)
{
    const int32_t mask = (int32_t)(((uint32_t)1 << right) - 1u);
    const int32_t threshold = (mask >> 1) + ((x < 0) ? 1 : 0);
    return (x >> right) + (((x & mask) > threshold) ? 1 : 0);
}

void dsp_add_s8(const int8_t *a, const int8_t *b, int8_t *y, int32_t count,
                const dsp_add_params *p)
{
    int32_t i;
    for (i = 0; i < count; ++i) {
        const int32_t sa = shift_round(mul_high((a[i] + p->offset1) * (1 << 20), p->mult1), p->right1);
        const int32_t sb = shift_round(mul_high((b[i] + p->offset2) * (1 << 20), p->mult2), p->right2);
        const int32_t raw = p->subtract ? sa - sb : sa + sb;
        int32_t v = shift_round(mul_high(raw, p->mult_out), p->right_out) + p->output_offset;
        v = v < p->act_min ? p->act_min : v;
        v = v > p->act_max ? p->act_max : v;
        y[i] = (int8_t)v;
    }
}
#endif

#endif /* HIL_KERNELS_DSP */
