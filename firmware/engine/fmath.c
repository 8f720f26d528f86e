/*
 * Float math bit-identical to glibc (x86-64). See fmath.h.
 */
#include "fmath.h"

#include <stdint.h>
#include <string.h>

static uint32_t f32_bits(float f)
{
    uint32_t u;
    memcpy(&u, &f, sizeof u);
    return u;
}

static float f32_from_bits(uint32_t u)
{
    float f;
    memcpy(&f, &u, sizeof f);
    return f;
}

static uint64_t f64_bits(double d)
{
    uint64_t u;
    memcpy(&u, &d, sizeof u);
    return u;
}

static double f64_from_bits(uint64_t u)
{
    double d;
    memcpy(&d, &u, sizeof d);
    return d;
}

/* ------------------------------------------------------------------------ */
/* Exact fused multiply-add on 128-bit integers                              */

typedef struct {
    uint64_t hi, lo;
} u128;

static u128 u128_mul64(uint64_t a, uint64_t b)
{
    const uint64_t a0 = a & 0xffffffffu, a1 = a >> 32;
    const uint64_t b0 = b & 0xffffffffu, b1 = b >> 32;
    const uint64_t p00 = a0 * b0, p01 = a0 * b1, p10 = a1 * b0, p11 = a1 * b1;
    const uint64_t mid = (p00 >> 32) + (p01 & 0xffffffffu) + (p10 & 0xffffffffu);
    u128 r;
    r.lo = (p00 & 0xffffffffu) | (mid << 32);
    r.hi = p11 + (p01 >> 32) + (p10 >> 32) + (mid >> 32);
    return r;
}

static u128 u128_shl(u128 x, int n)
{
    u128 r;
    if (n == 0)
        return x;
    if (n >= 64) {
        r.hi = x.lo << (n - 64);
        r.lo = 0;
    } else {
        r.hi = (x.hi << n) | (x.lo >> (64 - n));
        r.lo = x.lo << n;
    }
    return r;
}

/* x >> n with every shifted-out bit OR-ed into bit 0 ("sticky"). */
static u128 u128_shr_sticky(u128 x, int n)
{
    u128 r;
    uint64_t lost;
    if (n == 0)
        return x;
    if (n >= 128) {
        r.hi = 0;
        r.lo = (x.hi | x.lo) != 0;
        return r;
    }
    if (n >= 64) {
        lost = x.lo | (n > 64 ? x.hi << (128 - n) : 0);
        r.lo = n == 64 ? x.hi : x.hi >> (n - 64);
        r.hi = 0;
    } else {
        lost = x.lo << (64 - n);
        r.lo = (x.lo >> n) | (x.hi << (64 - n));
        r.hi = x.hi >> n;
    }
    r.lo |= lost != 0;
    return r;
}

static u128 u128_add(u128 a, u128 b)
{
    u128 r;
    r.lo = a.lo + b.lo;
    r.hi = a.hi + b.hi + (r.lo < a.lo);
    return r;
}

static u128 u128_sub(u128 a, u128 b) /* a >= b */
{
    u128 r;
    r.lo = a.lo - b.lo;
    r.hi = a.hi - b.hi - (a.lo < b.lo);
    return r;
}

static int u128_less(u128 a, u128 b)
{
    return a.hi < b.hi || (a.hi == b.hi && a.lo < b.lo);
}

static int msb64(uint64_t x) /* x != 0 */
{
    int n = 63;
    while (!(x >> n))
        --n;
    return n;
}

static int u128_msb(u128 x) /* -1 for zero */
{
    if (x.hi)
        return 64 + msb64(x.hi);
    if (x.lo)
        return msb64(x.lo);
    return -1;
}

/* A finite double as (-1)^sign * mant * 2^exp; 0 when it is not a normal
 * number or zero. */
static int unpack(double d, int *sign, uint64_t *mant, int *exp)
{
    const uint64_t u = f64_bits(d);
    const int biased = (int)((u >> 52) & 0x7ff);
    *sign = (int)(u >> 63);
    if (biased == 0 && (u << 1) == 0) {
        *mant = 0;
        *exp = 0;
        return 1;
    }
    if (biased == 0 || biased == 0x7ff)
        return 0;
    *mant = (u & 0xfffffffffffffu) | ((uint64_t)1 << 52);
    *exp = biased - 1075;
    return 1;
}

double eng_fma(double a, double b, double c)
{
    int sa, sb, sc, ea, eb, ec, sp, ep, sr, er, top;
    uint64_t ma, mb, mc, mant;
    u128 p, q, r;
    int round_bit, sticky;

    if (!unpack(a, &sa, &ma, &ea) || !unpack(b, &sb, &mb, &eb) ||
        !unpack(c, &sc, &mc, &ec))
        return a * b + c;
    sp = sa ^ sb;
    if (ma == 0 || mb == 0) /* exact zero product: the sum is exact too */
        return (sp ? -0.0 : 0.0) + c;

    /* both operands as 128-bit significands with the top bit at 126 */
    p = u128_mul64(ma, mb);
    ep = ea + eb;
    top = u128_msb(p);
    p = u128_shl(p, 126 - top);
    ep -= 126 - top;
    q.hi = 0;
    q.lo = mc;
    q = u128_shl(q, mc ? 126 - 52 : 0);
    ec -= 126 - 52;

    /* r = p +- q, exact except for a sticky bit well below bit 53 of the
     * result: when the exponents differ by more than one, at most one
     * leading bit cancels; when they are closer nothing is shifted out */
    if (mc == 0) {
        r = p;
        er = ep;
        sr = sp;
    } else {
        u128 big = p, small = q;
        int ebig = ep, esmall = ec, sbig = sp, ssmall = sc;
        if (ec > ep || (ec == ep && u128_less(p, q))) {
            big = q;
            small = p;
            ebig = ec;
            esmall = ep;
            sbig = sc;
            ssmall = sp;
        }
        small = u128_shr_sticky(small, ebig - esmall > 200 ? 200
                                                           : ebig - esmall);
        r = sbig == ssmall ? u128_add(big, small) : u128_sub(big, small);
        er = ebig;
        sr = sbig;
    }
    top = u128_msb(r);
    if (top < 0)
        return 0.0; /* exact cancellation rounds to +0 */

    /* round to 53 bits, nearest even */
    if (top > 52) {
        const int drop = top - 52; /* 1 .. 75 */
        const u128 below = u128_shl(r, 128 - drop); /* the dropped bits */
        mant = drop >= 64 ? r.hi >> (drop - 64)
                          : (r.lo >> drop) | (r.hi << (64 - drop));
        round_bit = (int)(below.hi >> 63);
        sticky = (below.hi << 1) != 0 || below.lo != 0;
        if (round_bit && (sticky || (mant & 1)))
            ++mant;
        er += drop;
        if (mant >> 53) {
            mant >>= 1;
            ++er;
        }
    } else {
        mant = r.lo << (52 - top); /* exact, no rounding */
        er -= 52 - top;
    }
    /* value = mant * 2^er with mant in [2^52, 2^53) */
    if (er + 1075 < 1 || er + 1075 > 2046)
        return a * b + c; /* subnormal or overflow: not needed here */
    return f64_from_bits(((uint64_t)sr << 63) |
                         ((uint64_t)(er + 1075) << 52) |
                         (mant & 0xfffffffffffffu));
}

/* ------------------------------------------------------------------------ */
/* expf                                                                      */

/* 2^(i/32) rounded to double, minus i << 47 in the bit pattern so that
 * adding k << 47 for k = 32 m + i gives 2^(k/32) directly */
static const uint64_t exp2_table[32] = {
    0x3ff0000000000000u, 0x3fefd9b0d3158574u, 0x3fefb5586cf9890fu,
    0x3fef9301d0125b51u, 0x3fef72b83c7d517bu, 0x3fef54873168b9aau,
    0x3fef387a6e756238u, 0x3fef1e9df51fdee1u, 0x3fef06fe0a31b715u,
    0x3feef1a7373aa9cbu, 0x3feedea64c123422u, 0x3feece086061892du,
    0x3feebfdad5362a27u, 0x3feeb42b569d4f82u, 0x3feeab07dd485429u,
    0x3feea47eb03a5585u, 0x3feea09e667f3bcdu, 0x3fee9f75e8ec5f74u,
    0x3feea11473eb0187u, 0x3feea589994cce13u, 0x3feeace5422aa0dbu,
    0x3feeb737b0cdc5e5u, 0x3feec49182a3f090u, 0x3feed503b23e255du,
    0x3feee89f995ad3adu, 0x3feeff76f2fb5e47u, 0x3fef199bdd85529cu,
    0x3fef3720dcef9069u, 0x3fef5818dcfba487u, 0x3fef7c97337b9b5fu,
    0x3fefa4afa2a490dau, 0x3fefd0765b6e4540u};

float eng_expf(float x)
{
    /* x / ln2 = (k + r) / 32 with k an integer and |r| <= 1/2; then
     * e^x = 2^(k/32) * 2^(r/32) and 2^(r/32) ~ 1 + c2 r + c1 r^2 + c0 r^3 */
    const double inv_ln2_32 = 0x1.71547652b82fep+0 * 32.0;
    const double round_shift = 0x1.8p+52; /* adding it rounds to integer */
    const double c0 = 0x1.c6af84b912394p-5 / 32.0 / 32.0 / 32.0;
    const double c1 = 0x1.ebfce50fac4f3p-3 / 32.0 / 32.0;
    const double c2 = 0x1.62e42ff0c52d6p-1 / 32.0;
    const uint32_t bits = f32_bits(x);
    const uint32_t abs_top = (bits >> 20) & 0x7ff;
    double xd, shifted, kd, r, s, poly_hi, r2, poly_lo, y;
    uint64_t k;

    if (abs_top >= 0x42b) { /* |x| >= 88, inf or nan */
        if (bits == 0xff800000u)
            return 0.0f;
        if (abs_top >= 0x7f8)
            return x + x;
        if (x > 0x1.62e42ep6f) /* above log(2^128) */
            return f32_from_bits(0x7f800000u);
        if (x < -0x1.9fe368p6f) /* below log(2^-150) */
            return 0.0f;
        if (x < -0x1.9d1d9ep6f) /* below log(2^-149) */
            return 0x1p-149f;
    }
    xd = (double)x;
    shifted = eng_fma(inv_ln2_32, xd, round_shift);
    k = f64_bits(shifted);
    kd = shifted - round_shift;
    r = eng_fma(inv_ln2_32, xd, -kd);
    s = f64_from_bits(exp2_table[k % 32] + (k << 47));
    poly_hi = eng_fma(c0, r, c1);
    r2 = r * r;
    poly_lo = eng_fma(r, c2, 1.0);
    y = eng_fma(poly_hi, r2, poly_lo);
    return (float)(y * s);
}

/* ------------------------------------------------------------------------ */
/* tanhf via expm1f, single precision throughout                             */

/* e^x - 1 for |x| < 88.7 (fdlibm's single-precision scheme) */
static float expm1_f(float x)
{
    const float ln2_hi = 6.9313812256e-01f;  /* 0x3f317180 */
    const float ln2_lo = 9.0580006145e-06f;  /* 0x3717f7d1 */
    const float inv_ln2 = 1.4426950216e+00f; /* 0x3fb8aa3b */
    /* scaled coefficients of the rational approximation */
    const float q1 = -3.3333335072e-02f, q2 = 1.5873016091e-03f,
                q3 = -7.9365076090e-05f, q4 = 4.0082177293e-06f,
                q5 = -2.0109921195e-07f;
    const uint32_t bits = f32_bits(x);
    const int negative = (bits >> 31) != 0;
    const uint32_t abs_bits = bits & 0x7fffffffu;
    float hi, lo, c = 0.0f, t, e, half_x, hxs, r1, y;
    int32_t k;

    if (abs_bits >= 0x4195b844u) { /* |x| >= 27 ln2 */
        if (abs_bits >= 0x42b17218u) { /* |x| >= 88.72 */
            if (abs_bits > 0x7f800000u)
                return x + x;
            if (abs_bits == 0x7f800000u)
                return negative ? -1.0f : x;
            if (x > 8.8721679688e+01f)
                return f32_from_bits(0x7f800000u);
        }
        if (negative)
            return -1.0f; /* e^x is below half an ulp of 1 */
    }

    /* argument reduction: x = k ln2 + (hi - lo), |hi - lo| <= ln2 / 2 */
    if (abs_bits > 0x3eb17218u) { /* |x| > ln2 / 2 */
        if (abs_bits < 0x3f851592u) { /* and |x| < 3 ln2 / 2 */
            if (!negative) {
                hi = x - ln2_hi;
                lo = ln2_lo;
                k = 1;
            } else {
                hi = x + ln2_hi;
                lo = -ln2_lo;
                k = -1;
            }
        } else {
            k = (int32_t)(inv_ln2 * x + (negative ? -0.5f : 0.5f));
            t = (float)k;
            hi = x - t * ln2_hi; /* exact */
            lo = t * ln2_lo;
        }
        x = hi - lo;
        c = (hi - x) - lo;
    } else if (abs_bits < 0x33000000u) { /* |x| < 2^-25 */
        return x;
    } else {
        k = 0;
    }

    /* x is now in [-ln2/2, ln2/2] */
    half_x = 0.5f * x;
    hxs = x * half_x;
    r1 = 1.0f + hxs * (q1 + hxs * (q2 + hxs * (q3 + hxs * (q4 + hxs * q5))));
    t = 3.0f - r1 * half_x;
    e = hxs * ((r1 - t) / (6.0f - x * t));
    if (k == 0)
        return x - (x * e - hxs);
    e = x * (e - c) - c;
    e -= hxs;
    if (k == -1)
        return 0.5f * (x - e) - 0.5f;
    if (k == 1) {
        if (x < -0.25f)
            return -2.0f * (e - (x + 0.5f));
        return 1.0f + 2.0f * (x - e);
    }
    /* scale by 2^k through the exponent field */
    if (k <= -2 || k > 56) {
        y = 1.0f - (e - x);
        y = f32_from_bits(f32_bits(y) + ((uint32_t)k << 23));
        return y - 1.0f;
    }
    if (k < 23) {
        t = f32_from_bits(0x3f800000u - (0x1000000u >> k)); /* 1 - 2^-k */
        y = t - (e - x);
    } else {
        t = f32_from_bits((uint32_t)(0x7f - k) << 23); /* 2^-k */
        y = x - (e + t);
        y += 1.0f;
    }
    return f32_from_bits(f32_bits(y) + ((uint32_t)k << 23));
}

float eng_tanhf(float x)
{
    const uint32_t bits = f32_bits(x);
    const uint32_t abs_bits = bits & 0x7fffffffu;
    const int negative = (bits >> 31) != 0;
    float t, z;

    if (abs_bits >= 0x7f800000u) /* tanh(+-inf) = +-1, tanh(nan) = nan */
        return negative ? 1.0f / x - 1.0f : 1.0f / x + 1.0f;
    if (abs_bits < 0x41b00000u) { /* |x| < 22 */
        if (abs_bits == 0)
            return x;
        if (abs_bits < 0x24000000u) /* |x| < 2^-55 */
            return x * (1.0f + x);
        if (abs_bits >= 0x3f800000u) { /* |x| >= 1 */
            t = expm1_f(2.0f * f32_from_bits(abs_bits));
            z = 1.0f - 2.0f / (t + 2.0f);
        } else {
            t = expm1_f(-2.0f * f32_from_bits(abs_bits));
            z = -t / (t + 2.0f);
        }
    } else {
        z = 1.0f - 1.0e-30f; /* rounds to 1 */
    }
    return negative ? -z : z;
}
