/*
 * The few MVE (Helium) intrinsics the M-profile vector kernels use
 * (engine/kernels/s8_dsp.c with HIL_KERNELS_MVE), in portable C, so that the
 * host tests run their exact arithmetic. Semantics from the Armv8.1-M
 * Architecture Reference Manual: a predicate has one bit per byte lane;
 * VCTP enables the first n lanes; zeroing predicated loads (VLDRB) read only
 * the enabled lanes (here too: nothing past the last one is touched) and
 * give 0 in the others; VMLADAVA adds the sum of the lane products to a
 * 32-bit accumulator modulo 2^32; VMUL and VADD work per 32-bit lane,
 * keeping the low 32 bits.
 */
#ifndef HIL_MVE_PORTABLE_H
#define HIL_MVE_PORTABLE_H

#include <stdint.h>

typedef uint16_t mve_pred16_t;
typedef struct { int8_t v[16]; } int8x16_t;
typedef struct { int32_t v[4]; } int32x4_t;

static inline mve_pred16_t vctp8q(uint32_t n)
{
    return (mve_pred16_t)(n >= 16u ? 0xffffu : ((1u << n) - 1u));
}

static inline mve_pred16_t vctp32q(uint32_t n)
{
    return (mve_pred16_t)(n >= 4u ? 0xffffu : ((1u << (4u * n)) - 1u));
}

static inline int8x16_t vldrbq_z_s8(const int8_t *p, mve_pred16_t pred)
{
    int8x16_t r;
    int i;
    for (i = 0; i < 16; ++i)
        r.v[i] = (pred >> i) & 1u ? p[i] : 0;
    return r;
}

static inline int32x4_t vldrbq_z_s32(const int8_t *p, mve_pred16_t pred)
{
    int32x4_t r;
    int i;
    for (i = 0; i < 4; ++i)
        r.v[i] = (pred >> (4 * i)) & 1u ? (int32_t)p[i] : 0;
    return r;
}

static inline int32_t vmladavaq_s8(int32_t acc, int8x16_t a, int8x16_t b)
{
    uint32_t sum = (uint32_t)acc;
    int i;
    for (i = 0; i < 16; ++i)
        sum += (uint32_t)((int32_t)a.v[i] * (int32_t)b.v[i]);
    return (int32_t)sum;
}

static inline int32x4_t vmulq_s32(int32x4_t a, int32x4_t b)
{
    int i;
    for (i = 0; i < 4; ++i)
        a.v[i] = (int32_t)((uint32_t)a.v[i] * (uint32_t)b.v[i]);
    return a;
}

static inline int32x4_t vaddq_s32(int32x4_t a, int32x4_t b)
{
    int i;
    for (i = 0; i < 4; ++i)
        a.v[i] = (int32_t)((uint32_t)a.v[i] + (uint32_t)b.v[i]);
    return a;
}

static inline int32x4_t vdupq_n_s32(int32_t x)
{
    int32x4_t r;
    int i;
    for (i = 0; i < 4; ++i)
        r.v[i] = x;
    return r;
}

static inline void vst1q_s32(int32_t *p, int32x4_t v)
{
    int i;
    for (i = 0; i < 4; ++i)
        p[i] = v.v[i];
}

#endif
