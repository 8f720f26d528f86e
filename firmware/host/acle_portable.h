/*
 * The ACLE SIMD intrinsics the DSP kernels use (engine/kernels/s8_dsp.c),
 * in portable C, so that the host tests run the optimised kernels' exact
 * arithmetic next to the reference ones. Semantics from the Arm
 * Architecture Reference Manual (Armv7-M: SXTB16, SXTAB16, SMLAD, SMLABB,
 * SMLATT):
 * both lanes are sign-extended bytes; the multiply-accumulates add their
 * 16 x 16 products to the accumulator modulo 2^32 (the Q flag they may set
 * is not used).
 */
#ifndef HIL_ACLE_PORTABLE_H
#define HIL_ACLE_PORTABLE_H

#include <stdint.h>

/* bytes 0 and 2 of v, sign-extended into the low and high halfwords */
static inline int32_t __sxtb16(int32_t v)
{
    const uint32_t u = (uint32_t)v;
    const uint32_t lo = (uint32_t)(int32_t)(int8_t)(u & 0xffu) & 0xffffu;
    const uint32_t hi = (uint32_t)(int32_t)(int8_t)((u >> 16) & 0xffu) & 0xffffu;
    return (int32_t)(lo | (hi << 16));
}

/* a's halfwords plus bytes 0 and 2 of v sign-extended, each wrapping to
 * 16 bits */
static inline int32_t __sxtab16(int32_t a, int32_t v)
{
    const uint32_t ua = (uint32_t)a, ub = (uint32_t)__sxtb16(v);
    const uint32_t lo = (ua + ub) & 0xffffu;
    const uint32_t hi = ((ua >> 16) + (ub >> 16)) & 0xffffu;
    return (int32_t)(lo | (hi << 16));
}

/* acc + a.lo * b.lo + a.hi * b.hi, halfwords signed, wrapping */
static inline int32_t __smlad(int32_t a, int32_t b, int32_t acc)
{
    const uint32_t ua = (uint32_t)a, ub = (uint32_t)b;
    const int32_t lo = (int32_t)(int16_t)(ua & 0xffffu) * (int32_t)(int16_t)(ub & 0xffffu);
    const int32_t hi = (int32_t)(int16_t)(ua >> 16) * (int32_t)(int16_t)(ub >> 16);
    return (int32_t)((uint32_t)acc + (uint32_t)lo + (uint32_t)hi);
}

/* acc + a.lo * b.lo and acc + a.hi * b.hi, halfwords signed, wrapping */
static inline int32_t __smlabb(int32_t a, int32_t b, int32_t acc)
{
    const int32_t p = (int32_t)(int16_t)((uint32_t)a & 0xffffu) * (int32_t)(int16_t)((uint32_t)b & 0xffffu);
    return (int32_t)((uint32_t)acc + (uint32_t)p);
}

static inline int32_t __smlatt(int32_t a, int32_t b, int32_t acc)
{
    const int32_t p = (int32_t)(int16_t)((uint32_t)a >> 16) * (int32_t)(int16_t)((uint32_t)b >> 16);
    return (int32_t)((uint32_t)acc + (uint32_t)p);
}

#endif
