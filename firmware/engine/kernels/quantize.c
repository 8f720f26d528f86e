/*
 * QUANTIZE and DEQUANTIZE.
 *
 * QUANTIZE float32 -> int8:  q = clamp(round(x / scale) + zero_point)
 *          (single-precision divide, round half away from zero; a quotient
 *          beyond int32 becomes INT32_MIN before the zero point is added
 *          with wrap-around, as on the x86-64 reference)
 * QUANTIZE int8/uint8 -> int8/uint8 (requantize):
 *          q = clamp(requantize(x - in_zero_point, in_scale / out_scale)
 *                    + out_zero_point)
 * DEQUANTIZE int8/uint8 -> float32:
 *          x = (float)((double)scale * (q - zero_point))
 */
#include <math.h>
#if defined(__ARM_FEATURE_SAT)
#include <arm_acle.h>
#endif

#include "../engine_internal.h"
#include "../quant.h"

enum { KIND_AFFINE = 0, KIND_REQUANTIZE = 1 };

typedef struct {
    int32_t kind;
    int32_t count;
    int32_t in_dtype, out_dtype;
    int32_t in_zero_point, out_zero_point;
    int32_t multiplier, shift; /* requantize */
    float out_scale;           /* affine */
    uint32_t fast_bits;        /* affine: |x| below this float's bits */
} quantize_data;

typedef struct {
    int32_t count;
    int32_t in_dtype;
    int32_t zero_point;
    int32_t pad_;
    double scale;
} dequantize_data;

static eng_status check_unary(eng_t *e, int op_index, const eng_tensor **in,
                              const eng_tensor **out, eng_error *err)
{
    const eng_op *op = &e->ops[op_index];
    if (op->n_inputs != 1 || op->n_outputs != 1 ||
        eng_op_input(e, op, 0) == NULL)
        return eng_fail_invalid(err, e, op_index,
                                "expects 1 input and 1 output");
    *in = eng_op_input(e, op, 0);
    *out = eng_op_output(e, op, 0);
    if (eng_elems(*in) != eng_elems(*out))
        return eng_fail_invalid(err, e, op_index,
                                "input and output sizes differ");
    return ENG_OK;
}

static int is_8bit(int dtype) { return dtype == ENG_INT8 || dtype == ENG_UINT8; }

eng_status eng_quantize_prepare(eng_t *e, int op_index, uint8_t *data,
                                uint32_t *bytes, eng_error *err)
{
    const eng_tensor *in = NULL, *out = NULL;
    quantize_data d;
    eng_status st = check_unary(e, op_index, &in, &out, err);
    if (st != ENG_OK)
        return st;

    if (!((in->dtype == ENG_FLOAT32 && out->dtype == ENG_INT8) ||
          (is_8bit(in->dtype) && is_8bit(out->dtype) &&
           !(in->dtype == ENG_UINT8 && out->dtype == ENG_UINT8))))
        return eng_fail_variant(err, e, op_index, "from %s to %s",
                                eng_dtype_name(in->dtype),
                                eng_dtype_name(out->dtype));
    st = eng_require_quant(e, op_index, out, "output", err);
    if (st != ENG_OK)
        return st;
    if (out->n_scales != 1)
        return eng_fail_variant(err, e, op_index,
                                "with per-channel output quantization");

    memset(&d, 0, sizeof d);
    d.count = (int32_t)eng_elems(in);
    d.in_dtype = in->dtype;
    d.out_dtype = out->dtype;
    d.out_zero_point = out->zero_point;
    d.out_scale = out->scale;
    if (in->dtype == ENG_FLOAT32) {
        /* inputs below 2^29 scale in magnitude have |x / scale| < 2^30,
         * where round_to_i32 needs no range check and adding the zero
         * point cannot wrap; as unsigned integers, the bits of non-negative
         * floats order as the floats (NaN and infinity above every bound) */
        const float bound = 536870912.0f * out->scale;
        d.kind = KIND_AFFINE;
        memcpy(&d.fast_bits, &bound, sizeof d.fast_bits);
        if (!(bound >= 1.17549435e-38f)) /* subnormal: too coarse a bound */
            d.fast_bits = 0;
    } else {
        st = eng_require_quant(e, op_index, in, "input", err);
        if (st != ENG_OK)
            return st;
        d.kind = KIND_REQUANTIZE;
        d.in_zero_point = in->zero_point;
        st = eng_scale_multiplier(e, op_index,
                                  (double)in->scale / (double)out->scale,
                                  &d.multiplier, &d.shift, err);
        if (st != ENG_OK)
            return st;
    }
    return eng_keep_op_data(data, bytes, &d, sizeof d);
}

/* roundf(q) as an int32 for |q| < 2^30, without the library call where
 * the FPU cannot round half away from zero itself: with t = trunc(q) and
 * f = q - t (same sign as q), trunc(2q) = 2t + trunc(2f) and trunc(2f) is
 * +-1 exactly when |f| >= 1/2, so trunc(2q) - trunc(q) is q rounded half
 * away from zero (2q is exact and converts below 2^30). An Armv8(-M) FPU
 * (M55) does it in one VRINTA. */
static inline int32_t round_small(float q)
{
#if defined(__ARM_FEATURE_DIRECTED_ROUNDING) || \
    (defined(__ARM_ARCH) && __ARM_ARCH >= 8 && defined(__ARM_FP) && (__ARM_FP & 4))
    return (int32_t)roundf(q);
#else
    return (int32_t)(q + q) - (int32_t)q;
#endif
}

/* int8 saturation: one SSAT where the core has it */
static inline int32_t saturate_s8(int32_t v)
{
#if defined(__ARM_FEATURE_SAT)
    return __ssat(v, 8);
#else
    v = v < -128 ? -128 : v;
    return v > 127 ? 127 : v;
#endif
}

static inline uint8_t clamp_out(int32_t v, int32_t lo, int32_t hi)
{
    v = v < lo ? lo : v;
    v = v > hi ? hi : v;
    return (uint8_t)v; /* int8 as its two's-complement byte */
}

eng_status eng_quantize_eval(eng_t *e, int op_index, eng_error *err)
{
    eng_op *op = &e->ops[op_index];
    const quantize_data *d =
        (const quantize_data *)(const void *)(e->arena +
                                              op->persistent_offset);
    const uint8_t *x = eng_data(e, eng_op_input(e, op, 0));
    uint8_t *y = eng_data(e, eng_op_output(e, op, 0));
    const int32_t lo = d->out_dtype == ENG_INT8 ? -128 : 0;
    const int32_t hi = d->out_dtype == ENG_INT8 ? 127 : 255;
    const int32_t n = d->count;
    int32_t i;
    (void)err;

    if (d->kind == KIND_AFFINE) {
        /* converted and offset in int32 as the x86-64 reference does:
         * out-of-range and NaN quotients become INT32_MIN, and the zero
         * point is added with wrap-around */
        const float scale = d->out_scale;
        const int32_t zp = d->out_zero_point;
        const uint32_t fast = d->fast_bits;
        for (i = 0; i < n; ++i) {
            uint32_t bits;
            float v;
            memcpy(&bits, x + 4 * i, sizeof bits);
            memcpy(&v, &bits, sizeof v);
            if ((bits & 0x7fffffffu) < fast) {
                y[i] = (uint8_t)saturate_s8(round_small(v / scale) + zp);
            } else {
                y[i] = clamp_out(q_add_wrap(q_truncate_f32(roundf(v / scale)), zp), lo, hi);
            }
        }
    } else {
        const int32_t in_zp = d->in_zero_point, out_zp = d->out_zero_point;
        const int32_t m = d->multiplier, shift = d->shift;
        const int in_int8 = d->in_dtype == ENG_INT8;
        for (i = 0; i < n; ++i) {
            const int32_t raw = in_int8 ? (int32_t)(int8_t)x[i] : (int32_t)x[i];
            y[i] = clamp_out(q_mul_by_multiplier(raw - in_zp, m, shift) + out_zp, lo, hi);
        }
    }
    return ENG_OK;
}

eng_status eng_dequantize_prepare(eng_t *e, int op_index, uint8_t *data,
                                  uint32_t *bytes, eng_error *err)
{
    const eng_tensor *in = NULL, *out = NULL;
    dequantize_data d;
    eng_status st = check_unary(e, op_index, &in, &out, err);
    if (st != ENG_OK)
        return st;
    if (!is_8bit(in->dtype) || out->dtype != ENG_FLOAT32)
        return eng_fail_variant(err, e, op_index, "from %s to %s",
                                eng_dtype_name(in->dtype),
                                eng_dtype_name(out->dtype));
    st = eng_require_quant(e, op_index, in, "input", err);
    if (st != ENG_OK)
        return st;
    memset(&d, 0, sizeof d);
    d.count = (int32_t)eng_elems(in);
    d.in_dtype = in->dtype;
    d.zero_point = in->zero_point;
    d.scale = (double)in->scale;
    return eng_keep_op_data(data, bytes, &d, sizeof d);
}

eng_status eng_dequantize_eval(eng_t *e, int op_index, eng_error *err)
{
    eng_op *op = &e->ops[op_index];
    const dequantize_data *d =
        (const dequantize_data *)(const void *)(e->arena +
                                                op->persistent_offset);
    const uint8_t *x = eng_data(e, eng_op_input(e, op, 0));
    uint8_t *y = eng_data(e, eng_op_output(e, op, 0));
    /* the reference multiplies in double; the float scale times an integer
     * below 2^10 is exact there, so one float multiply rounds the same
     * exact product once, as the double product's conversion does */
    const float scale = (float)d->scale;
    const int32_t zp = d->zero_point;
    int32_t i;
    (void)err;

    if (d->in_dtype == ENG_INT8) {
        for (i = 0; i < d->count; ++i)
            eng_st_f32(y + 4 * i, scale * (float)((int32_t)(int8_t)x[i] - zp));
    } else {
        for (i = 0; i < d->count; ++i)
            eng_st_f32(y + 4 * i, scale * (float)((int32_t)x[i] - zp));
    }
    return ENG_OK;
}
