/*
 * Element-wise activations: RELU, RELU6, LOGISTIC, TANH, HARD_SWISH, on
 * int8 or float32 tensors (input and output of the same type and size).
 *
 * RELU int8:   y = clamp(y_zp + requantize(x - x_zp, x_scale / y_scale),
 *                        max(y_zp, -128), 127)
 *              (the scale ratio is taken in single precision)
 * RELU6 int8:  y = clamp(x, x_zp, q(6)) on the raw input values, with
 *              q(6) = clamp(round(6 / x_scale) + x_zp, -128, 127); the
 *              output's quantization is not used (as in the reference).
 * LOGISTIC int8: x - x_zp is rescaled to Q4.27, the fixed-point logistic
 *              (gemmlowp) gives Q0.31, y = round(that / 2^23) - 128. Inputs
 *              beyond +-radius (where the Q4.27 value would overflow)
 *              saturate to -128 / 127. Output zero point must be -128.
 * TANH int8:   same with tanh and y = round(Q0.31 / 2^24) (output scale
 *              1/128, zero point 0, assumed as the reference does).
 * HARD_SWISH int8: x * relu6(x + 3) / 6 in 16-bit fixed point, the
 *              reference's "reluish" formulation step by step.
 * float32:     relu: x < 0 ? 0 : x; relu6: clamp to [0, 6];
 *              logistic: 1 / (1 + e^-x) (e^x below -9, 1 above 16.619);
 *              tanh: tanhf; hard_swish: x * min(6, max(0, x + 3)) / 6.
 *              exp and tanh come from fmath.c (glibc-identical).
 */
#include <math.h>

#include "../engine_internal.h"
#include "../fmath.h"
#include "../quant.h"

typedef struct {
    int32_t is_float;
    int32_t count;
    /* RELU, RELU6 */
    int32_t input_offset, output_offset;
    int32_t multiplier, shift;
    int32_t act_min, act_max;
    /* LOGISTIC, TANH */
    int32_t input_zero_point, radius, input_multiplier, input_shift;
    /* HARD_SWISH */
    int32_t output_multiplier16, output_exponent;
    int32_t reluish_multiplier16, reluish_exponent;
} act_data;

/* Shared checks: one input, one output, same type (int8 or float32) and
 * element count. */
static eng_status unary_prepare(eng_t *e, int op_index, act_data *d,
                                const eng_tensor **in, const eng_tensor **out,
                                eng_error *err)
{
    const eng_op *op = &e->ops[op_index];
    eng_status st = eng_check_arity(e, op_index, 1, 1, 1, err);
    if (st != ENG_OK)
        return st;
    *in = eng_op_input(e, op, 0);
    *out = eng_op_output(e, op, 0);
    if ((*in)->dtype != (*out)->dtype ||
        ((*in)->dtype != ENG_INT8 && (*in)->dtype != ENG_FLOAT32))
        return eng_fail_variant(err, e, op_index, "with %s input and %s output",
                                eng_dtype_name((*in)->dtype),
                                eng_dtype_name((*out)->dtype));
    if (eng_elems(*in) != eng_elems(*out))
        return eng_fail_invalid(err, e, op_index,
                                "input and output sizes differ");
    memset(d, 0, sizeof *d);
    d->is_float = (*in)->dtype == ENG_FLOAT32;
    d->count = (int32_t)eng_elems(*in);
    if (!d->is_float) {
        st = eng_require_quant(e, op_index, *in, "input", err);
        if (st == ENG_OK)
            st = eng_require_quant(e, op_index, *out, "output", err);
    }
    return st;
}

static eng_status finish(const act_data *d, uint8_t *data, uint32_t *bytes)
{
    return eng_keep_op_data(data, bytes, d, sizeof *d);
}

static int32_t clamp_i32(int32_t v, int32_t lo, int32_t hi)
{
    return v < lo ? lo : (v > hi ? hi : v);
}

/* y[i] = f(x[i]) for every element: float32 tensors through `f32`, int8
 * tensors through `q8` (given the op's parameters). */
typedef float (*act_f32_fn)(float x);
typedef int8_t (*act_q8_fn)(int8_t x, const act_data *d);

static eng_status map_eval(eng_t *e, int op_index, act_f32_fn f32,
                           act_q8_fn q8)
{
    const eng_op *op = &e->ops[op_index];
    const act_data *d = (const act_data *)eng_op_data(e, op);
    const uint8_t *x = eng_data(e, eng_op_input(e, op, 0));
    uint8_t *y = eng_data(e, eng_op_output(e, op, 0));
    int32_t i;
    if (d->is_float) {
        for (i = 0; i < d->count; ++i)
            eng_st_f32(y + 4 * i, f32(eng_ld_f32(x + 4 * i)));
        return ENG_OK;
    }
    for (i = 0; i < d->count; ++i)
        y[i] = (uint8_t)q8((int8_t)x[i], d);
    return ENG_OK;
}

/* ---- RELU ---------------------------------------------------------------- */

eng_status eng_relu_prepare(eng_t *e, int op_index, uint8_t *data,
                            uint32_t *bytes, eng_error *err)
{
    const eng_tensor *in, *out;
    act_data d;
    eng_status st = unary_prepare(e, op_index, &d, &in, &out, err);
    if (st != ENG_OK)
        return st;
    if (!d.is_float) {
        st = eng_scale_multiplier(e, op_index,
                                  (double)(in->scale / out->scale),
                                  &d.multiplier, &d.shift, err);
        if (st != ENG_OK)
            return st;
        d.input_offset = in->zero_point;
        d.output_offset = out->zero_point;
        d.act_min = out->zero_point > -128 ? out->zero_point : -128;
        d.act_max = 127;
    }
    return finish(&d, data, bytes);
}

static float relu_f(float v)
{
    return v < 0.0f ? 0.0f : v;
}

static int8_t relu_q(int8_t x, const act_data *d)
{
    const int32_t v =
        d->output_offset + q_mul_by_multiplier((int32_t)x - d->input_offset,
                                               d->multiplier, d->shift);
    return (int8_t)clamp_i32(v, d->act_min, d->act_max);
}

eng_status eng_relu_eval(eng_t *e, int op_index, eng_error *err)
{
    (void)err;
    return map_eval(e, op_index, relu_f, relu_q);
}

/* ---- RELU6 --------------------------------------------------------------- */

eng_status eng_relu6_prepare(eng_t *e, int op_index, uint8_t *data,
                             uint32_t *bytes, eng_error *err)
{
    const eng_tensor *in, *out;
    act_data d;
    eng_status st = unary_prepare(e, op_index, &d, &in, &out, err);
    if (st != ENG_OK)
        return st;
    if (!d.is_float) {
        /* 6 quantized with the input's parameters, in float as the
         * reference rounds it */
        const float six = roundf(6.0f / in->scale) + (float)in->zero_point;
        d.act_min = in->zero_point;
        d.act_max = clamp_i32(q_truncate_f32(six), -128, 127);
    }
    return finish(&d, data, bytes);
}

static float relu6_f(float v)
{
    return v > 6.0f ? 6.0f : (v < 0.0f ? 0.0f : v);
}

static int8_t relu6_q(int8_t x, const act_data *d)
{
    const int32_t v = x;
    return (int8_t)(v > d->act_max ? d->act_max
                    : v < d->act_min ? d->act_min : v);
}

eng_status eng_relu6_eval(eng_t *e, int op_index, eng_error *err)
{
    (void)err;
    return map_eval(e, op_index, relu6_f, relu6_q);
}

/* ---- LOGISTIC and TANH --------------------------------------------------- */

/* Input rescaling to Q4.27: x_scale * 2^27 = multiplier * 2^shift with a
 * Q0.31 multiplier; inputs at or beyond the radius saturate. */
static eng_status q4_input_scaling(eng_t *e, int op_index,
                                   const eng_tensor *in, act_data *d,
                                   eng_error *err)
{
    int shift = 0;
    const double q = frexp((double)in->scale * (double)(1 << 27), &shift);
    const double m = round(q * 2147483648.0);
    if (!(m < 2147483648.0) || shift < 0 || shift > 30)
        return eng_fail_variant(err, e, op_index,
                                "with an input scale outside "
                                "[2^-28, 2^4)");
    d->input_multiplier = (int32_t)m;
    d->input_shift = shift;
    d->input_zero_point = in->zero_point;
    /* largest |x - zp| whose Q4.27 value stays below 15 (in magnitude) */
    d->radius = (int32_t)floor(15.0 * (double)(1 << 27) /
                               (double)((int64_t)1 << shift));
    return ENG_OK;
}

static eng_status sigmoid_like_prepare(eng_t *e, int op_index, int is_tanh,
                                       uint8_t *data, uint32_t *bytes,
                                       eng_error *err)
{
    const eng_tensor *in, *out;
    act_data d;
    eng_status st = unary_prepare(e, op_index, &d, &in, &out, err);
    if (st != ENG_OK)
        return st;
    if (!d.is_float) {
        if (!is_tanh && out->zero_point != -128)
            return eng_fail_variant(err, e, op_index,
                                    "with output zero point %d (needs -128)",
                                    (int)out->zero_point);
        st = q4_input_scaling(e, op_index, in, &d, err);
        if (st != ENG_OK)
            return st;
    }
    return finish(&d, data, bytes);
}

eng_status eng_logistic_prepare(eng_t *e, int op_index, uint8_t *data,
                                uint32_t *bytes, eng_error *err)
{
    return sigmoid_like_prepare(e, op_index, 0, data, bytes, err);
}

eng_status eng_tanh_prepare(eng_t *e, int op_index, uint8_t *data,
                            uint32_t *bytes, eng_error *err)
{
    return sigmoid_like_prepare(e, op_index, 1, data, bytes, err);
}

/* The float logistic of the reference: cut-offs where the result is 1 or
 * e^x to float precision. */
static float logistic_f(float x)
{
    if (x > 16.619047164916992188f)
        return 1.0f;
    if (x < -9.0f)
        return eng_expf(x);
    return 1.0f / (1.0f + eng_expf(-x));
}

static int8_t sigmoid_like_q(int8_t x, const act_data *d, int is_tanh)
{
    const int32_t v = (int32_t)x - d->input_zero_point;
    int32_t q4, q;
    if (v <= -d->radius)
        return -128;
    if (v >= d->radius)
        return 127;
    q4 = q_mul_by_multiplier(v, d->input_multiplier, d->input_shift);
    if (is_tanh) /* Q0.31 -> scale 1/128 */
        q = q_shift_round(q_tanh_q4(q4), 24);
    else /* Q0.31 -> scale 1/256, zero point -128 */
        q = q_shift_round(q_logistic_q4(q4), 23) - 128;
    return (int8_t)clamp_i32(q, -128, 127);
}

static int8_t logistic_q(int8_t x, const act_data *d)
{
    return sigmoid_like_q(x, d, 0);
}

static int8_t tanh_q(int8_t x, const act_data *d)
{
    return sigmoid_like_q(x, d, 1);
}

eng_status eng_logistic_eval(eng_t *e, int op_index, eng_error *err)
{
    (void)err;
    return map_eval(e, op_index, logistic_f, logistic_q);
}

eng_status eng_tanh_eval(eng_t *e, int op_index, eng_error *err)
{
    (void)err;
    return map_eval(e, op_index, eng_tanhf, tanh_q);
}

/* ---- HARD_SWISH ---------------------------------------------------------- */

/* int16 fixed-point helpers with the reference's exact int16 behaviour */

static int16_t rounding_doubling_high_mul16(int16_t a, int16_t b)
{
    const int32_t ab = (int32_t)a * (int32_t)b;
    const int32_t nudge = ab >= 0 ? (1 << 14) : (1 - (1 << 14));
    if (a == INT16_MIN && b == INT16_MIN)
        return INT16_MAX;
    return (int16_t)((ab + nudge) / (1 << 15));
}

static int16_t doubling_high_mul16(int16_t a, int16_t b) /* truncating */
{
    if (a == INT16_MIN && b == INT16_MIN)
        return INT16_MAX;
    return (int16_t)(((int32_t)a * (int32_t)b) / (1 << 15));
}

static int16_t saturating_shl16(int16_t v, int n)
{
    const int64_t r = (int64_t)v * ((int64_t)1 << n);
    return (int16_t)(r > INT16_MAX ? INT16_MAX : (r < INT16_MIN ? INT16_MIN : r));
}

/* x / 2^n rounded half away from zero, with the reference's 16-bit mask
 * (which for n >= 16 has every bit set) */
static int16_t rounding_shr16(int16_t x, int n)
{
    const int32_t mask = n >= 16 ? -1 : (int32_t)((1u << n) - 1u);
    const int32_t remainder = x & mask;
    const int32_t threshold = (mask >> 1) + (x < 0 ? 1 : 0);
    return (int16_t)((x >> (n > 31 ? 31 : n)) + (remainder > threshold));
}

static int16_t to_int16_multiplier(int32_t m)
{
    if (m >= INT32_MAX - (1 << 15))
        return INT16_MAX;
    return (int16_t)((m + (1 << 15)) >> 16);
}

eng_status eng_hard_swish_prepare(eng_t *e, int op_index, uint8_t *data,
                                  uint32_t *bytes, eng_error *err)
{
    const eng_tensor *in, *out;
    act_data d;
    eng_status st = unary_prepare(e, op_index, &d, &in, &out, err);
    if (st != ENG_OK)
        return st;
    if (!d.is_float) {
        /* the input on a finer "hires" scale (x 2^7), the "reluish" value
         * relu6(x + 3) / 6 on scale 3 / 2^15 */
        const float hires_input_scale = (1.0f / 128.0f) * in->scale;
        const float reluish_scale = 3.0f / 32768.0f;
        int32_t m = 0;
        int s = 0;
        q_quantize_multiplier((double)(hires_input_scale / out->scale), &m,
                              &s);
        if (s > 0)
            return eng_fail_variant(err, e, op_index,
                                    "with output scale below input scale / "
                                    "128");
        d.output_multiplier16 = to_int16_multiplier(m);
        d.output_exponent = s;
        q_quantize_multiplier((double)(hires_input_scale / reluish_scale), &m,
                              &s);
        if (s > 31)
            return eng_fail_variant(err, e, op_index,
                                    "with input scale above 2^24");
        d.reluish_multiplier16 = to_int16_multiplier(m);
        d.reluish_exponent = s;
        d.input_zero_point = in->zero_point;
        d.output_offset = out->zero_point;
    }
    return finish(&d, data, bytes);
}

static int8_t hard_swish_q(int8_t x, const act_data *d)
{
    const int16_t input = (int16_t)(x - d->input_zero_point);
    const int16_t hires = (int16_t)(input * (1 << 7));
    const int16_t scaled_for_output = rounding_doubling_high_mul16(
        hires, (int16_t)d->output_multiplier16);
    int16_t reluish = hires;
    int16_t product, y16;
    int32_t y;

    /* relu6(x + 3) / 6 mapped to [-1, 1] in Q0.15 ... */
    if (d->reluish_exponent > 0)
        reluish = saturating_shl16(reluish, d->reluish_exponent - 1);
    reluish = rounding_doubling_high_mul16(reluish,
                                           (int16_t)d->reluish_multiplier16);
    if (d->reluish_exponent > 0)
        reluish = saturating_shl16(reluish, 1);
    if (d->reluish_exponent < 0)
        reluish = rounding_shr16(reluish, -d->reluish_exponent);
    /* ... then to [0, 1] */
    reluish = (int16_t)((reluish + (1 << 15)) >> 1);
    product = doubling_high_mul16(reluish, scaled_for_output);
    y16 = rounding_shr16(product, -d->output_exponent);
    y16 = (int16_t)(uint16_t)((uint32_t)(uint16_t)y16 +
                              (uint32_t)d->output_offset);
    y = clamp_i32(y16, -128, 127);
    return (int8_t)y;
}

static float hard_swish_f(float v)
{
    const float shifted = v + 3.0f;
    const float relu = 0.0f < shifted ? shifted : 0.0f; /* max */
    const float relu6 = relu < 6.0f ? relu : 6.0f;      /* min */
    return v * relu6 / 6.0f;
}

eng_status eng_hard_swish_eval(eng_t *e, int op_index, eng_error *err)
{
    (void)err;
    return map_eval(e, op_index, hard_swish_f, hard_swish_q);
}
