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

#endif
