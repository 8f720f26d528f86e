/*
 * C part of the RISC-V reset: copy .data and the thread-local template,
 * zero .tbss and .bss, paint the stack for the high-water mark, run main().
 */
#include <stdint.h>

#include "riscv.h"

extern uint32_t __data_load__, __data_start__, __data_end__;
extern uint32_t __tdata_load__, __tdata_start__, __tdata_end__;
extern uint32_t __bss_start__, __bss_end__; /* includes .tbss */
extern uint32_t __stack_limit__, __stack_top__;

int main(void);
void rv_reset(void);

#define STACK_PAINT 0x5AC35AC3u

static void copy(uint32_t *dst, uint32_t *end, const uint32_t *src)
{
    while (dst < end)
        *dst++ = *src++;
}

void rv_reset(void)
{
    copy(&__data_start__, &__data_end__, &__data_load__);
    copy(&__tdata_start__, &__tdata_end__, &__tdata_load__);
    for (uint32_t *dst = &__bss_start__; dst < &__bss_end__;)
        *dst++ = 0;
    /* paint the unused stack below this frame (and a 64-byte margin) */
    uint32_t *sp;
    __asm volatile("mv %0, sp" : "=r"(sp));
    for (uint32_t *w = &__stack_limit__; w < sp - 16; w++)
        *w = STACK_PAINT;
    main();
    for (;;) {
    }
}

void rv_stack_usage(uint32_t *size, uint32_t *high_water)
{
    uint32_t *w = &__stack_limit__;
    while (w < &__stack_top__ && *w == STACK_PAINT)
        w++;
    *size = (uint32_t)((uintptr_t)&__stack_top__ - (uintptr_t)&__stack_limit__);
    *high_water = (uint32_t)((uintptr_t)&__stack_top__ - (uintptr_t)w);
}
