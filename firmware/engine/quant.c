/*
 * Quantized arithmetic shared by the kernels. See quant.h.
 *
 * Floating-point steps use float or double exactly where the TFLite
 * reference does, so the derived integer parameters are identical on any
 * IEEE-754 target (single precision in hardware or double in software).
 */
#include "quant.h"

#include <float.h>
#include <math.h>

/* Two's complement wrap-around add, without signed-overflow UB. */
static int32_t add_wrap(int32_t a, int32_t b)
{
    return (int32_t)((uint32_t)a + (uint32_t)b);
}

static int32_t sub_wrap(int32_t a, int32_t b)
{
    return (int32_t)((uint32_t)a - (uint32_t)b);
}

void q_quantize_multiplier(double m, int32_t *multiplier, int *shift)
{
    int exponent = 0;
    double fraction;
    int64_t q;

    /* zero, NaN and absurd magnitudes give a zero multiplier */
    if (m == 0.0 || !(m > -1e300 && m < 1e300)) {
        *multiplier = 0;
        *shift = 0;
        return;
    }
    /* m = fraction * 2^exponent with 0.5 <= |fraction| < 1 */
    fraction = frexp(m, &exponent);
    q = (int64_t)round(fraction * 2147483648.0);
    if (q == ((int64_t)1 << 31)) { /* fraction rounded up to 1.0 */
        q /= 2;
        exponent += 1;
    }
    if (exponent < -31) { /* would shift everything out: flush to zero */
        exponent = 0;
        q = 0;
    }
    *multiplier = (int32_t)q;
    *shift = exponent;
}

int32_t q_mul_high(int32_t a, int32_t b)
{
    int64_t ab;
    int64_t nudge;
    if (a == INT32_MIN && b == INT32_MIN)
        return INT32_MAX;
    ab = (int64_t)a * (int64_t)b;
    nudge = (ab >= 0) ? ((int64_t)1 << 30) : (1 - ((int64_t)1 << 30));
    /* division truncates toward zero, as the reference does */
    return (int32_t)((ab + nudge) / ((int64_t)1 << 31));
}

int32_t q_shift_round(int32_t x, int exponent)
{
    const int32_t mask = (int32_t)(((int64_t)1 << exponent) - 1);
    const int32_t remainder = x & mask;
    const int32_t threshold = (mask >> 1) + ((x < 0) ? 1 : 0);
    return (x >> exponent) + ((remainder > threshold) ? 1 : 0);
}

int32_t q_mul_by_multiplier(int32_t x, int32_t multiplier, int shift)
{
    const int left = (shift > 0) ? shift : 0;
    const int right = (shift > 0) ? 0 : -shift;
    /* x * 2^left wraps in 32 bits, like the reference */
    const int32_t scaled = (int32_t)((uint32_t)x << left);
    return q_shift_round(q_mul_high(scaled, multiplier), right);
}

int32_t q_shl_saturate(int32_t x, int exponent)
{
    int32_t threshold;
    if (exponent == 0)
        return x;
    threshold = (int32_t)(((uint32_t)1 << (31 - exponent)) - 1u);
    if (x > threshold)
        return INT32_MAX;
    if (x < -threshold)
        return INT32_MIN;
    return (int32_t)((uint32_t)x << exponent);
}

/* zero_point + round(f / scale), in float as the reference does. */
static int quantize_bound(float scale, int32_t zero_point, float f,
                          int32_t *q)
{
    const float t = roundf(f / scale);
    int64_t v;
    if (!(t >= -2147483648.0f && t < 2147483648.0f))
        return -1;
    v = (int64_t)zero_point + (int64_t)(int32_t)t;
    if (v < INT32_MIN || v > INT32_MAX)
        return -1;
    *q = (int32_t)v;
    return 0;
}

static int32_t max_i32(int32_t a, int32_t b) { return a > b ? a : b; }
static int32_t min_i32(int32_t a, int32_t b) { return a < b ? a : b; }

int q_activation_range(int activation, float scale, int32_t zero_point,
                       int32_t qmin, int32_t qmax, int32_t *act_min,
                       int32_t *act_max)
{
    int32_t lo = 0, hi = 0;
    switch (activation) {
    case ENG_ACT_NONE:
        *act_min = qmin;
        *act_max = qmax;
        return 0;
    case ENG_ACT_RELU:
        if (quantize_bound(scale, zero_point, 0.0f, &lo) != 0)
            return -1;
        *act_min = max_i32(qmin, lo);
        *act_max = qmax;
        return 0;
    case ENG_ACT_RELU6:
        if (quantize_bound(scale, zero_point, 0.0f, &lo) != 0 ||
            quantize_bound(scale, zero_point, 6.0f, &hi) != 0)
            return -1;
        *act_min = max_i32(qmin, lo);
        *act_max = min_i32(qmax, hi);
        return 0;
    case ENG_ACT_RELU_N1_TO_1:
        if (quantize_bound(scale, zero_point, -1.0f, &lo) != 0 ||
            quantize_bound(scale, zero_point, 1.0f, &hi) != 0)
            return -1;
        *act_min = max_i32(qmin, lo);
        *act_max = min_i32(qmax, hi);
        return 0;
    default:
        return -1;
    }
}

int q_window_padding(int padding, int in_size, int filter_size, int stride,
                     int dilation, int32_t *out_size, int32_t *pad_before)
{
    int64_t effective, out, total;

    if (stride <= 0 || dilation <= 0 || filter_size <= 0 || in_size <= 0)
        return -1;
    effective = (int64_t)(filter_size - 1) * dilation + 1;
    if (padding == ENG_PAD_SAME)
        out = ((int64_t)in_size + stride - 1) / stride;
    else if (padding == ENG_PAD_VALID)
        out = ((int64_t)in_size + stride - effective) / stride;
    else
        return -1;
    if (out <= 0 || out > INT32_MAX)
        return -1;
    /* padding needed so that the last window ends inside the padded input */
    total = (out - 1) * stride + effective - in_size;
    if (total < 0)
        total = 0;
    if (total / 2 > INT32_MAX)
        return -1;
    *out_size = (int32_t)out;
    *pad_before = (int32_t)(total / 2);
    return 0;
}

/* ------------------------------------------------------------------------ */
/* Softmax                                                                   */

/* Input differences are Q5.26: 5 integer bits cover exp() arguments down to
 * -32, below which the contribution is negligible. */
#define SOFTMAX_DIFF_INT_BITS 5

int q_softmax_input_scaling(double beta, double input_scale,
                            int32_t *multiplier, int *left_shift,
                            int32_t *diff_min)
{
    const double limit = 2147483647.0; /* 2^31 - 1 */
    double real = beta * input_scale *
                  (double)(1 << (31 - SOFTMAX_DIFF_INT_BITS));
    double radius;
    int shift = 0;

    if (limit < real)
        real = limit;
    /* the multiplier is applied as a left shift: it must exceed one */
    if (!(real > 1.0))
        return -1;
    q_quantize_multiplier(real, multiplier, &shift);
    if (shift < 0 || shift > 31)
        return -1;
    *left_shift = shift;

    /* Largest |difference| whose rescaled value still fits in Q5.26. */
    radius = 1.0 * ((1 << SOFTMAX_DIFF_INT_BITS) - 1) *
             (double)((int64_t)1 << (31 - SOFTMAX_DIFF_INT_BITS)) /
             (double)((int64_t)1 << shift);
    *diff_min = (int32_t)(-1.0 * (double)(int32_t)floor(radius));
    return 0;
}

/* exp(a) for a in [-1/4, 0), Q0.31 in and out: Taylor series around -1/8,
 * exp(-1/8) * (1 + x + x^2/2 + x^3/6 + x^4/24) with x = a + 1/8. */
static int32_t exp_quarter_interval(int32_t a)
{
    const int32_t exp_minus_one_eighth = 1895147668; /* exp(-1/8) in Q0.31 */
    const int32_t one_third = 715827883;             /* 1/3 in Q0.31 */
    const int32_t x = add_wrap(a, 1 << 28);          /* a + 1/8 */
    const int32_t x2 = q_mul_high(x, x);
    const int32_t x3 = q_mul_high(x2, x);
    const int32_t x4 = q_mul_high(x2, x2);
    const int32_t x4_over_4 = q_shift_round(x4, 2);
    /* (x^4/4 + x^3) / 3 + x^2, halved: x^4/24 + x^3/6 + x^2/2 */
    const int32_t poly = q_shift_round(
        add_wrap(q_mul_high(add_wrap(x4_over_4, x3), one_third), x2), 1);
    return add_wrap(exp_minus_one_eighth,
                    q_mul_high(exp_minus_one_eighth, add_wrap(x, poly)));
}

int32_t q_exp_on_negative(int32_t a, int integer_bits)
{
    /* exp(-2^k) in Q0.31 for k = -2 .. 4 */
    static const int32_t exp_of_minus_pow2[7] = {
        1672461947, /* exp(-1/4) */
        1302514674, /* exp(-1/2) */
        790015084,  /* exp(-1)   */
        290630308,  /* exp(-2)   */
        39332535,   /* exp(-4)   */
        720401,     /* exp(-8)   */
        242         /* exp(-16)  */
    };
    const int frac_bits = 31 - integer_bits;
    const int32_t one_quarter = (int32_t)1 << (frac_bits - 2);
    const int32_t mask = one_quarter - 1;
    /* a = r + m with r in [-1/4, 0) and m a non-positive multiple of 1/4 */
    const int32_t r = sub_wrap(a & mask, one_quarter);
    const int32_t m_neg = sub_wrap(r, a); /* -m, a sum of powers of two */
    int32_t result = exp_quarter_interval(
        q_shl_saturate(r, integer_bits)); /* to Q0.31 */
    int k;

    /* exp(a) = exp(r) * prod over set bits 2^k of -m of exp(-2^k), for the
     * powers of two the format can hold */
    for (k = -2; k <= 4 && k < integer_bits; ++k) {
        if (m_neg & ((int32_t)1 << (frac_bits + k)))
            result = q_mul_high(result, exp_of_minus_pow2[k + 2]);
    }
    /* below -32 the result is zero (only formats that reach that far) */
    if (integer_bits > 5 && a < -((int32_t)1 << (36 - integer_bits)))
        result = 0;
    if (a == 0)
        result = INT32_MAX; /* exp(0) = 1 */
    return result;
}

int32_t q_exp_on_negative_q5_26(int32_t a)
{
    return q_exp_on_negative(a, SOFTMAX_DIFF_INT_BITS);
}

/* 2 / (1 + a) for a in [0, 1], a in Q0.31, result in Q2.29: three
 * Newton-Raphson steps on the half denominator d = (1 + a) / 2 in [1/2, 1),
 * from the initial guess 48/17 - 32/17 * d (gemmlowp's division). */
static int32_t two_over_one_plus_x_q2_29(int32_t a)
{
    const int32_t c48_17 = 1515870810;      /* 48/17 in Q2.29 */
    const int32_t c_neg32_17 = -1010580540; /* -32/17 in Q2.29 */
    const int32_t one_q2_29 = (int32_t)1 << 29;
    const int64_t sum = (int64_t)a + INT32_MAX;
    const int32_t half_denominator =
        (int32_t)((sum + (sum >= 0 ? 1 : -1)) / 2);
    int32_t x = add_wrap(c48_17, q_mul_high(half_denominator, c_neg32_17));
    int i;

    for (i = 0; i < 3; ++i) {
        const int32_t dx = q_mul_high(half_denominator, x);
        const int32_t one_minus_dx = sub_wrap(one_q2_29, dx);
        /* x += x * (1 - d*x), the product is Q4.27: rescale to Q2.29 */
        x = add_wrap(x, q_shl_saturate(q_mul_high(x, one_minus_dx), 2));
    }
    return x;
}

/* 1 / (1 + a) for a in [0, 1), Q0.31 in and out. */
int32_t q_one_over_one_plus_x(int32_t a)
{
    /* 1/d = 2/(1+a); halving it, Q1.30 -> Q0.31 */
    return q_shl_saturate(two_over_one_plus_x_q2_29(a), 1);
}

static int count_leading_zeros(uint32_t x)
{
    int n = 0;
    if (x == 0)
        return 32;
    while (!(x & 0x80000000u)) {
        x <<= 1;
        ++n;
    }
    return n;
}

int32_t q_reciprocal(int32_t x, int x_integer_bits, int *num_bits_over_unit)
{
    const int headroom_plus_one = count_leading_zeros((uint32_t)x);
    int32_t shifted_minus_one;
    if (x <= 0) {
        *num_bits_over_unit = 0;
        return INT32_MAX;
    }
    /* x = 2^n * (1 + f) with f in [0, 1): 1/x = 2^-n / (1 + f) */
    *num_bits_over_unit = x_integer_bits - headroom_plus_one;
    shifted_minus_one =
        (int32_t)(((uint32_t)x << headroom_plus_one) - ((uint32_t)1 << 31));
    return q_one_over_one_plus_x(shifted_minus_one);
}

/* ------------------------------------------------------------------------ */
/* Logistic and tanh on Q4.27 inputs (Q0.31 results)                         */

/* (1 - a) / (1 + a) for a in [0, 1], Q0.31 */
static int32_t one_minus_x_over_one_plus_x(int32_t a)
{
    const int32_t one_q2_29 = (int32_t)1 << 29;
    /* 2 / (1 + a) - 1 = (1 - a) / (1 + a), Q2.29 -> Q0.31 */
    return q_shl_saturate(
        sub_wrap(two_over_one_plus_x_q2_29(a), one_q2_29), 2);
}

int32_t q_logistic_q4(int32_t a)
{
    int32_t positive;
    if (a == 0)
        return (int32_t)1 << 30; /* 1/2 */
    /* logistic(|a|) = 1 / (1 + exp(-|a|)) */
    positive = q_one_over_one_plus_x(q_exp_on_negative(a > 0 ? -a : a, 4));
    /* logistic(-x) = 1 - logistic(x), with 1 as INT32_MAX */
    return a > 0 ? positive : sub_wrap(INT32_MAX, positive);
}

int32_t q_tanh_q4(int32_t a)
{
    int32_t t;
    if (a == 0)
        return 0;
    /* tanh(|a|) = (1 - exp(-2|a|)) / (1 + exp(-2|a|)); -2|a| in Q4.27 is
     * -|a| read as Q5.26 */
    t = one_minus_x_over_one_plus_x(q_exp_on_negative(a < 0 ? a : -a, 5));
    return a < 0 ? -t : t;
}

/* ------------------------------------------------------------------------ */
/* Float helpers                                                             */

int q_float_activation_range(int activation, float *lo, float *hi)
{
    switch (activation) {
    case ENG_ACT_NONE:
        *lo = -FLT_MAX;
        *hi = FLT_MAX;
        return 0;
    case ENG_ACT_RELU:
        *lo = 0.0f;
        *hi = FLT_MAX;
        return 0;
    case ENG_ACT_RELU_N1_TO_1:
        *lo = -1.0f;
        *hi = 1.0f;
        return 0;
    case ENG_ACT_RELU6:
        *lo = 0.0f;
        *hi = 6.0f;
        return 0;
    default:
        return -1;
    }
}

int32_t q_truncate_f32(float f)
{
    /* x86-64's conversion answers INT32_MIN for NaN and out-of-range
     * values, and the reference runs there */
    if (!(f > -2147483904.0f && f < 2147483648.0f))
        return INT32_MIN;
    return (int32_t)f;
}
