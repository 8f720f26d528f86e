/*
 * fmath_check: compare the engine's float math (firmware/engine/fmath.c)
 * with the host C library, bit for bit.
 *
 *   fmath_check exp|tanh FIRST LAST STEP
 *       every float whose bit pattern is FIRST, FIRST+STEP, ... <= LAST
 *       (unsigned 32-bit, hex or decimal) through eng_expf vs expf or
 *       eng_tanhf vs tanhf
 *   fmath_check fma N SEED
 *       N random (a, b, c) triples of the kinds eng_expf uses, eng_fma vs
 *       the C library's fma
 *
 * Prints the number of inputs checked and of mismatches (and the first
 * few); exit status 0 when there are none.
 */
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "fmath.h"

static uint32_t bits_of(float f)
{
    uint32_t u;
    memcpy(&u, &f, sizeof u);
    return u;
}

static float float_of(uint32_t u)
{
    float f;
    memcpy(&f, &u, sizeof f);
    return f;
}

static uint64_t dbits(double d)
{
    uint64_t u;
    memcpy(&u, &d, sizeof u);
    return u;
}

static uint64_t rng_state;

static uint64_t rng(void)
{
    /* splitmix64 */
    uint64_t z = (rng_state += 0x9e3779b97f4a7c15u);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9u;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebu;
    return z ^ (z >> 31);
}

static double random_double(int min_exp, int max_exp)
{
    const uint64_t mant = rng() & 0xfffffffffffffu;
    const int e = min_exp + (int)(rng() % (uint64_t)(max_exp - min_exp + 1));
    const uint64_t sign = (rng() & 1) << 63;
    const uint64_t u = sign | ((uint64_t)(e + 1023) << 52) | mant;
    double d;
    memcpy(&d, &u, sizeof d);
    return d;
}

static int check_fma(unsigned long n, unsigned long seed)
{
    unsigned long i, bad = 0;
    rng_state = seed;
    for (i = 0; i < n; ++i) {
        double a, b, c, want, got;
        switch (i % 4) {
        case 0: /* k + shift: product of a double and a float */
            a = random_double(-2, 8);
            b = (double)(float)random_double(-30, 8);
            c = (rng() & 1) ? 0x1.8p+52 : -(double)(int64_t)(rng() % 9000);
            break;
        case 1: /* polynomial terms */
            a = random_double(-30, 0);
            b = random_double(-8, 0);
            c = random_double(-10, 1);
            break;
        case 2: /* near cancellation */
            a = random_double(-4, 4);
            b = random_double(-4, 4);
            c = -(a * b) * (1.0 + random_double(-60, -20));
            break;
        default: /* anything moderate */
            a = random_double(-100, 100);
            b = random_double(-100, 100);
            c = random_double(-200, 200);
            break;
        }
        want = fma(a, b, c);
        got = eng_fma(a, b, c);
        if (dbits(want) != dbits(got)) {
            if (bad < 10)
                printf("fma(%a, %a, %a): libm %a, engine %a\n", a, b, c,
                       want, got);
            ++bad;
        }
    }
    printf("fma: %lu checked, %lu mismatches\n", n, bad);
    return bad != 0;
}

int main(int argc, char **argv)
{
    uint64_t first, last, step, u;
    unsigned long checked = 0, bad = 0;
    int is_exp;

    if (argc == 4 && strcmp(argv[1], "fma") == 0)
        return check_fma(strtoul(argv[2], NULL, 0), strtoul(argv[3], NULL, 0));
    if (argc != 5 || (strcmp(argv[1], "exp") != 0 &&
                      strcmp(argv[1], "tanh") != 0)) {
        fprintf(stderr, "usage: fmath_check exp|tanh FIRST LAST STEP\n"
                        "       fmath_check fma N SEED\n");
        return 2;
    }
    is_exp = strcmp(argv[1], "exp") == 0;
    first = strtoull(argv[2], NULL, 0);
    last = strtoull(argv[3], NULL, 0);
    step = strtoull(argv[4], NULL, 0);
    if (step == 0 || last > 0xffffffffu)
        return 2;
    for (u = first; u <= last; u += step) {
        const float x = float_of((uint32_t)u);
        const float want = is_exp ? expf(x) : tanhf(x);
        const float got = is_exp ? eng_expf(x) : eng_tanhf(x);
        ++checked;
        if (bits_of(want) != bits_of(got) && !(want != want && got != got)) {
            if (bad < 10)
                printf("%s(%a) [0x%08x]: libm %a, engine %a\n", argv[1],
                       (double)x, (unsigned)u, (double)want, (double)got);
            ++bad;
        }
    }
    printf("%s: %lu checked, %lu mismatches\n", argv[1], checked, bad);
    return bad != 0;
}
