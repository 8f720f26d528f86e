/*
 * minstret (retired instructions) as a 64-bit counter. Machine mode reads
 * it directly; under QEMU's -icount it is an exact instruction count.
 */
#include <stdint.h>

#include "riscv.h"

uint64_t rv_counter_read(void)
{
    uint32_t hi, lo, hi2;
    do {
        hi = CSR_READ(minstreth);
        lo = CSR_READ(minstret);
        hi2 = CSR_READ(minstreth);
    } while (hi != hi2); /* the low word wrapped between the reads */
    return ((uint64_t)hi << 32) | lo;
}
