/*
 * The few MVE (Helium) intrinsics the M-profile vector kernels use
 * (engine/kernels/s8_dsp.c with HIL_KERNELS_MVE), in portable C, so that the
 * host tests run their exact arithmetic. Semantics from the Armv8.1-M
 * Architecture Reference Manual: a predicate has one bit per byte lane;
 * VCTP enables the first n lanes; zeroing predicated loads (VLDRB) read only
 * the enabled lanes (here too: nothing past the last one is touched) and
 * give 0 in the others; VMLADAVA adds the sum of the lane products to a
 * 32-bit accumulator modulo 2^32; VMUL and VADD work per 32-bit lane,
 * keeping the low 32 bits; VSHL by a register shifts left (positive) or
 * right (negative); VRSHL rounds a right shift by adding half the divisor
 * in wider arithmetic first; VQRDMULH is sat((2ab + 2^31) >> 32); VQADD
 * saturates; VSTRB stores the low byte of each enabled 32-bit (or 16-bit)
 * lane; VMULLB / VMULLT multiply the even / odd 16-bit lanes into 32-bit
 * products; VMOVNT writes the low halves of 32-bit lanes into the odd
 * 16-bit lanes, keeping the even ones; a reinterpretation is the same
 * bytes, little-endian as the core (and the hosts the tests run on).
 */
#ifndef HIL_MVE_PORTABLE_H
#define HIL_MVE_PORTABLE_H

#include <stdint.h>
#include <string.h>

typedef uint16_t mve_pred16_t;
typedef struct { int8_t v[16]; } int8x16_t;
typedef struct { int16_t v[8]; } int16x8_t;
typedef struct { int32_t v[4]; } int32x4_t;
typedef struct { uint32_t v[4]; } uint32x4_t;

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

static inline int8x16_t vld1q_s8(const int8_t *p)
{
    return vldrbq_z_s8(p, 0xffffu);
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

static inline int32x4_t vldrbq_s32(const int8_t *p)
{
    return vldrbq_z_s32(p, 0xffffu);
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

static inline int32x4_t vsubq_s32(int32x4_t a, int32x4_t b)
{
    int i;
    for (i = 0; i < 4; ++i)
        a.v[i] = (int32_t)((uint32_t)a.v[i] - (uint32_t)b.v[i]);
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

static inline uint32x4_t vidupq_n_u32(uint32_t start, int step)
{
    uint32x4_t r;
    int i;
    for (i = 0; i < 4; ++i)
        r.v[i] = start + (uint32_t)(i * step);
    return r;
}

static inline uint32x4_t vmulq_n_u32(uint32x4_t a, uint32_t b)
{
    int i;
    for (i = 0; i < 4; ++i)
        a.v[i] *= b;
    return a;
}

/* lane i from the byte address base + offset[i], enabled lanes only */
static inline int32x4_t vldrwq_gather_offset_z_s32(const int32_t *base, uint32x4_t offset, mve_pred16_t pred)
{
    int32x4_t r;
    int i;
    for (i = 0; i < 4; ++i) {
        r.v[i] = 0;
        if ((pred >> (4 * i)) & 1u)
            memcpy(&r.v[i], (const uint8_t *)base + offset.v[i], sizeof r.v[i]);
    }
    return r;
}

static inline int32x4_t vshlq_s32(int32x4_t a, int32x4_t shift)
{
    int i;
    for (i = 0; i < 4; ++i) {
        const int32_t n = shift.v[i];
        if (n >= 0)
            a.v[i] = n >= 32 ? 0 : (int32_t)((uint32_t)a.v[i] << n);
        else
            a.v[i] = n <= -32 ? (a.v[i] < 0 ? -1 : 0) : a.v[i] >> -n;
    }
    return a;
}

static inline int32x4_t vrshlq_s32(int32x4_t a, int32x4_t shift)
{
    int i;
    for (i = 0; i < 4; ++i) {
        const int32_t n = shift.v[i];
        if (n >= 0)
            a.v[i] = n >= 32 ? 0 : (int32_t)((uint32_t)a.v[i] << n);
        else if (n > -32)
            a.v[i] = (int32_t)(((int64_t)a.v[i] + ((int64_t)1 << (-n - 1))) >> -n);
        else
            a.v[i] = 0;
    }
    return a;
}

static inline int32x4_t vqrdmulhq_s32(int32x4_t a, int32x4_t b)
{
    int i;
    for (i = 0; i < 4; ++i) {
        /* (2ab + 2^31) >> 32 written without the 2^63 overflow */
        const int64_t r = ((int64_t)a.v[i] * (int64_t)b.v[i] + ((int64_t)1 << 30)) >> 31;
        a.v[i] = r > INT32_MAX ? INT32_MAX : (int32_t)r;
    }
    return a;
}

static inline int32x4_t vshrq_n_s32(int32x4_t a, int n)
{
    int i;
    for (i = 0; i < 4; ++i)
        a.v[i] >>= n;
    return a;
}

static inline mve_pred16_t vcmpgtq_n_s32(int32x4_t a, int32_t b)
{
    mve_pred16_t p = 0;
    int i;
    for (i = 0; i < 4; ++i)
        if (a.v[i] > b)
            p |= (mve_pred16_t)(0xfu << (4 * i));
    return p;
}

static inline int32x4_t vpselq_s32(int32x4_t a, int32x4_t b, mve_pred16_t p)
{
    int i;
    for (i = 0; i < 4; ++i)
        if (!((p >> (4 * i)) & 1u))
            a.v[i] = b.v[i];
    return a;
}

static inline int32x4_t vqaddq_s32(int32x4_t a, int32x4_t b)
{
    int i;
    for (i = 0; i < 4; ++i) {
        const int64_t r = (int64_t)a.v[i] + b.v[i];
        a.v[i] = r > INT32_MAX ? INT32_MAX : r < INT32_MIN ? INT32_MIN : (int32_t)r;
    }
    return a;
}

static inline int32x4_t vnegq_s32(int32x4_t a)
{
    int i;
    for (i = 0; i < 4; ++i)
        a.v[i] = (int32_t)(0u - (uint32_t)a.v[i]);
    return a;
}

static inline int32x4_t vaddq_n_s32(int32x4_t a, int32_t b)
{
    int i;
    for (i = 0; i < 4; ++i)
        a.v[i] = (int32_t)((uint32_t)a.v[i] + (uint32_t)b);
    return a;
}

static inline int32x4_t vmaxq_s32(int32x4_t a, int32x4_t b)
{
    int i;
    for (i = 0; i < 4; ++i)
        a.v[i] = a.v[i] > b.v[i] ? a.v[i] : b.v[i];
    return a;
}

static inline int8x16_t vmaxq_s8(int8x16_t a, int8x16_t b)
{
    int i;
    for (i = 0; i < 16; ++i)
        a.v[i] = a.v[i] > b.v[i] ? a.v[i] : b.v[i];
    return a;
}

static inline int8x16_t vminq_s8(int8x16_t a, int8x16_t b)
{
    int i;
    for (i = 0; i < 16; ++i)
        a.v[i] = a.v[i] < b.v[i] ? a.v[i] : b.v[i];
    return a;
}

static inline int32x4_t vminq_s32(int32x4_t a, int32x4_t b)
{
    int i;
    for (i = 0; i < 4; ++i)
        a.v[i] = a.v[i] < b.v[i] ? a.v[i] : b.v[i];
    return a;
}

static inline int32x4_t vldrwq_s32(const int32_t *p)
{
    int32x4_t r;
    int i;
    for (i = 0; i < 4; ++i)
        r.v[i] = p[i];
    return r;
}

static inline void vstrbq_p_s32(int8_t *p, int32x4_t v, mve_pred16_t pred)
{
    int i;
    for (i = 0; i < 4; ++i)
        if ((pred >> (4 * i)) & 1u)
            p[i] = (int8_t)v.v[i];
}

static inline mve_pred16_t vctp16q(uint32_t n)
{
    return (mve_pred16_t)(n >= 8u ? 0xffffu : ((1u << (2u * n)) - 1u));
}
static inline int16x8_t vldrbq_z_s16(const int8_t *p, mve_pred16_t pred)
{
    int16x8_t r;
    int i;
    for (i = 0; i < 8; ++i)
        r.v[i] = (pred >> (2 * i)) & 1u ? (int16_t)p[i] : 0;
    return r;
}
static inline int16x8_t vldrbq_s16(const int8_t *p)
{
    return vldrbq_z_s16(p, 0xffffu);
}
static inline int32x4_t vmullbq_int_s16(int16x8_t a, int16x8_t b)
{
    int32x4_t r;
    int i;
    for (i = 0; i < 4; ++i)
        r.v[i] = (int32_t)a.v[2 * i] * (int32_t)b.v[2 * i];
    return r;
}
static inline int32x4_t vmulltq_int_s16(int16x8_t a, int16x8_t b)
{
    int32x4_t r;
    int i;
    for (i = 0; i < 4; ++i)
        r.v[i] = (int32_t)a.v[2 * i + 1] * (int32_t)b.v[2 * i + 1];
    return r;
}
static inline int16x8_t vreinterpretq_s16_s32(int32x4_t a)
{
    int16x8_t r;
    memcpy(&r, &a, sizeof r);
    return r;
}
static inline int16x8_t vmovntq_s32(int16x8_t a, int32x4_t b)
{
    int i;
    for (i = 0; i < 4; ++i)
        a.v[2 * i + 1] = (int16_t)b.v[i];
    return a;
}
static inline void vstrbq_p_s16(int8_t *p, int16x8_t v, mve_pred16_t pred)
{
    int i;
    for (i = 0; i < 8; ++i)
        if ((pred >> (2 * i)) & 1u)
            p[i] = (int8_t)v.v[i];
}
static inline void vstrbq_s16(int8_t *p, int16x8_t v)
{
    vstrbq_p_s16(p, v, 0xffffu);
}
static inline int32x4_t vldrwq_gather_offset_s32(const int32_t *base, uint32x4_t offset)
{
    return vldrwq_gather_offset_z_s32(base, offset, 0xffffu);
}
static inline int32x4_t vandq_s32(int32x4_t a, int32x4_t b)
{
    int i;
    for (i = 0; i < 4; ++i)
        a.v[i] &= b.v[i];
    return a;
}
static inline int32x4_t vsetq_lane_s32(int32_t x, int32x4_t a, int lane)
{
    a.v[lane] = x;
    return a;
}
static inline void vstrbq_s32(int8_t *p, int32x4_t v)
{
    vstrbq_p_s32(p, v, 0xffffu);
}
static inline void vstrbq_p_s8(int8_t *p, int8x16_t v, mve_pred16_t pred)
{
    int i;
    for (i = 0; i < 16; ++i)
        if ((pred >> i) & 1u)
            p[i] = v.v[i];
}
static inline void vst1q_s8(int8_t *p, int8x16_t v)
{
    vstrbq_p_s8(p, v, 0xffffu);
}
static inline int8x16_t vdupq_n_s8(int8_t x)
{
    int8x16_t r;
    memset(r.v, x, sizeof r.v);
    return r;
}
static inline int32x4_t vshlq_r_s32(int32x4_t a, int32_t shift)
{
    return vshlq_s32(a, vdupq_n_s32(shift));
}
static inline int32x4_t vrshlq_n_s32(int32x4_t a, int32_t shift)
{
    return vrshlq_s32(a, vdupq_n_s32(shift));
}
static inline int32x4_t vqrdmulhq_n_s32(int32x4_t a, int32_t b)
{
    return vqrdmulhq_s32(a, vdupq_n_s32(b));
}
/* the low byte of lane i to base + offset[i] */
static inline void vstrbq_scatter_offset_s32(int8_t *base, uint32x4_t offset, int32x4_t v)
{
    int i;
    for (i = 0; i < 4; ++i)
        base[offset.v[i]] = (int8_t)v.v[i];
}
static inline int32x4_t vmlaq_n_s32(int32x4_t acc, int32x4_t a, int32_t b)
{
    int i;
    for (i = 0; i < 4; ++i)
        acc.v[i] = (int32_t)((uint32_t)acc.v[i] + (uint32_t)a.v[i] * (uint32_t)b);
    return acc;
}
#endif
