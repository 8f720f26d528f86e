/*
 * SysTick as a 64-bit counter: the 24-bit down-counter wraps into a
 * software high word. Under QEMU with -icount shift=0 virtual time advances
 * 1 ns per instruction, so SysTick ticks are a deterministic instruction
 * count (the platform file gives instructions per tick).
 */
#include <stdint.h>

#include "cortex_m.h"

#define RELOAD 0x00FFFFFFu

static volatile uint32_t wraps;

void SysTick_Handler(void) { wraps++; }

void cm_counter_start(void)
{
    SYST_CSR = 0;
    SYST_RVR = RELOAD;
    SYST_CVR = 0;
    SYST_CSR = 0x7u; /* processor clock, interrupt on wrap, enable */
}

void cm_counter_restart(void)
{
    SYST_CSR = 0;
    SYST_CVR = 0; /* any write clears the count to 0 ... */
    SYST_CSR = 0x7u;
    while (SYST_CVR == 0) {
        /* ... and it reloads on the next tick: from here the phase is the
         * same on every restart, and reads are monotonic */
    }
    wraps = 0;
}

static volatile uint32_t dwt_high, dwt_last;

int cm_dwt_start(void)
{
    DEMCR |= (1u << 24); /* TRCENA */
    DWT_CYCCNT = 0;
    DWT_CTRL |= 1u;      /* CYCCNTENA */
    uint32_t before = DWT_CYCCNT;
    for (volatile int i = 0; i < 100; i++) {
    }
    return DWT_CYCCNT != before;
}

/* CYCCNT is 32 bits; callers read it at least once per wrap (an invoke
 * measured in one piece longer than 2^32 cycles is not supported). */
void cm_dwt_restart(void)
{
    DWT_CYCCNT = 0;
    dwt_high = 0;
    dwt_last = 0;
}

uint64_t cm_dwt_read(void)
{
    uint32_t now = DWT_CYCCNT;
    if (now < dwt_last)
        dwt_high++;
    dwt_last = now;
    return ((uint64_t)dwt_high << 32) | now;
}

uint64_t cm_counter_read(void)
{
    uint32_t hi, lo;
    do {
        hi = wraps;
        lo = SYST_CVR;
    } while (hi != wraps); /* a wrap between the two reads: read again */
    return ((uint64_t)hi << 24) + (RELOAD - lo);
}
