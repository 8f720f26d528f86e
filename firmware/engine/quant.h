/*
 * Quantized arithmetic shared by the kernels.
 *
 * Real numbers are represented as r = scale * (q - zero_point). Rescaling an
 * int32 accumulator by a real factor M is done in fixed point: M is stored as
 * a Q0.31 multiplier in [0.5, 1) times 2^shift, and applied with a rounding
 * doubling high multiply followed by a rounding right shift (two roundings,
 * as the TFLite reference kernels do by default).
 *
 * The softmax helpers evaluate exp() and 1/(1+x) in 32-bit fixed point with
 * the polynomial / Newton-Raphson schemes of gemmlowp, so results match the
 * TFLite Micro reference softmax exactly.
 */
#ifndef HIL_ENGINE_QUANT_H
#define HIL_ENGINE_QUANT_H

#include <stdint.h>

/* Fused activation functions (ActivationFunctionType in the schema). */
enum {
    ENG_ACT_NONE = 0,
    ENG_ACT_RELU = 1,
    ENG_ACT_RELU_N1_TO_1 = 2,
    ENG_ACT_RELU6 = 3
};

/* Padding (schema Padding enum). */
enum { ENG_PAD_SAME = 0, ENG_PAD_VALID = 1 };

/* m = q * 2^shift with q a Q0.31 value; q == 0 for tiny or zero m. */
void q_quantize_multiplier(double m, int32_t *multiplier, int *shift);

/* round(a * b / 2^31), saturating the single overflow case. */
int32_t q_mul_high(int32_t a, int32_t b);

/* x / 2^exponent rounded to nearest, ties away from zero; 0 <= exponent <= 31. */
int32_t q_shift_round(int32_t x, int exponent);

/* x * multiplier * 2^shift (shift < 0 is a right shift). */
int32_t q_mul_by_multiplier(int32_t x, int32_t multiplier, int shift);

/* x * 2^exponent with saturation, 0 <= exponent < 31. */
int32_t q_shl_saturate(int32_t x, int exponent);

/* Clamp range of a quantized output for a fused activation.
 * Returns 0, or -1 if a bound does not fit in int32 (invalid scale). */
int q_activation_range(int activation, float scale, int32_t zero_point,
                       int32_t qmin, int32_t qmax, int32_t *act_min,
                       int32_t *act_max);

/* Output size and leading padding of a windowed op along one axis.
 * Returns 0, or -1 for invalid arguments / an empty output. */
int q_window_padding(int padding, int in_size, int filter_size, int stride,
                     int dilation, int32_t *out_size, int32_t *pad_before);

/* Softmax support (Q5.26 differences, Q0.31 results). */
int q_softmax_input_scaling(double beta, double input_scale,
                            int32_t *multiplier, int *left_shift,
                            int32_t *diff_min);
int32_t q_exp_on_negative_q5_26(int32_t a);
int32_t q_reciprocal(int32_t x, int x_integer_bits, int *num_bits_over_unit);

/* exp(a) for a <= 0 given with `integer_bits` integer bits (Q0.31 result),
 * gemmlowp's exp_on_negative_values; 1 <= integer_bits <= 30. */
int32_t q_exp_on_negative(int32_t a, int integer_bits);

/* 1 / (1 + a) for a in [0, 1], Q0.31 in and out. */
int32_t q_one_over_one_plus_x(int32_t a);

/* logistic(a) and tanh(a) for a in Q4.27, results in Q0.31 (gemmlowp's
 * fixed-point logistic and tanh). */
int32_t q_logistic_q4(int32_t a);
int32_t q_tanh_q4(int32_t a);

/* Float clamp range of a fused activation (NONE clamps to +-FLT_MAX, as the
 * reference's numeric_limits range). Returns 0, or -1 if unknown. */
int q_float_activation_range(int activation, float *lo, float *hi);

/* min(max(v, lo), hi) with std::min/std::max semantics (a NaN v stays). */
static inline float q_clamp_f(float v, float lo, float hi)
{
    v = (v < lo) ? lo : v;
    return (hi < v) ? hi : v;
}

/* (int32_t)f as the x86-64 reference computes it: truncation, and
 * INT32_MIN for NaN or values outside the int32 range. */
int32_t q_truncate_f32(float f);

/* Wrap-around int32 arithmetic without signed-overflow UB. */
static inline int32_t q_add_wrap(int32_t a, int32_t b)
{
    return (int32_t)((uint32_t)a + (uint32_t)b);
}

static inline int32_t q_sub_wrap(int32_t a, int32_t b)
{
    return (int32_t)((uint32_t)a - (uint32_t)b);
}

static inline int32_t q_mul_wrap(int32_t a, int32_t b)
{
    return (int32_t)((uint32_t)a * (uint32_t)b);
}

#endif
