/*
 * Float math that gives the same bits on every target.
 *
 * The reference kernels call exp() and tanh() from the C library of the
 * machine they run on: glibc on x86-64 for the TFLite Micro interpreter the
 * harness compares against. newlib (the device C library) computes some of
 * these functions differently in the last bit, so the engine carries its
 * own versions that reproduce glibc's results exactly, using only IEEE-754
 * additions, multiplications, divisions and conversions (correctly rounded
 * on every conforming target, hardware or soft float).
 *
 *   eng_expf:  e^x, the algorithm of glibc >= 2.27 (a 32-entry table of
 *              2^(i/32) and a cubic polynomial, evaluated in double) with
 *              the fused multiply-adds of glibc's x86-64 FMA build, which
 *              every x86-64 CPU since 2013 selects; the fused operations are
 *              computed exactly in integer arithmetic.
 *   eng_tanhf: tanh(x), glibc's single-precision tanhf/expm1f (float only).
 *
 * Build with -ffp-contract=off (the engine always is).
 */
#ifndef HIL_ENGINE_FMATH_H
#define HIL_ENGINE_FMATH_H

float eng_expf(float x);
float eng_tanhf(float x);

/* fma(a, b, c) = a * b + c rounded once, for finite arguments whose result
 * is a normal double or zero (other cases fall back to a * b + c). Exposed
 * for tests. */
double eng_fma(double a, double b, double c);

#endif
