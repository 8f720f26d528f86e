/*
 * Reset and vector table shared by every Cortex-M board: copy .data, zero
 * .bss, turn on the FPU/MVE when the build uses them, enable the separate
 * fault exceptions so a fault is reported by its kind, then run main().
 */
#include <stdint.h>

#include "cortex_m.h"

extern uint32_t __data_load__, __data_start__, __data_end__;
extern uint32_t __bss_start__, __bss_end__;
extern uint32_t __stack_top__, __stack_limit__;

#define STACK_PAINT 0x5AC35AC3u

/* Paint the unused stack below the current frame (and a 64-byte margin). */
__attribute__((always_inline)) static inline void paint_stack(void)
{
    uint32_t *sp;
    __asm volatile("mov %0, sp" : "=r"(sp));
    for (uint32_t *w = &__stack_limit__; w < sp - 16; w++)
        *w = STACK_PAINT;
}

void cm_stack_usage(uint32_t *size, uint32_t *high_water)
{
    uint32_t *w = &__stack_limit__;
    while (w < &__stack_top__ && *w == STACK_PAINT)
        w++;
    *size = (uint32_t)((uintptr_t)&__stack_top__ - (uintptr_t)&__stack_limit__);
    *high_water = (uint32_t)((uintptr_t)&__stack_top__ - (uintptr_t)w);
}

int main(void);
void Reset_Handler(void);
void Default_Handler(void);
void HardFault_Handler(void);
void MemManage_Handler(void);
void BusFault_Handler(void);
void UsageFault_Handler(void);
void SysTick_Handler(void);

void NMI_Handler(void) __attribute__((weak, alias("Default_Handler")));
void SVC_Handler(void) __attribute__((weak, alias("Default_Handler")));
void DebugMon_Handler(void) __attribute__((weak, alias("Default_Handler")));
void PendSV_Handler(void) __attribute__((weak, alias("Default_Handler")));

#define N_IRQ 32

typedef void (*vector)(void);

__attribute__((section(".vectors"), used)) const vector vector_table[16 + N_IRQ] = {
    (vector)(uintptr_t)&__stack_top__,
    Reset_Handler,
    NMI_Handler,
    HardFault_Handler,
    MemManage_Handler,
    BusFault_Handler,
    UsageFault_Handler,
    0, 0, 0, 0,
    SVC_Handler,
    DebugMon_Handler,
    0,
    PendSV_Handler,
    SysTick_Handler,
    /* external interrupts: all default (the firmware polls its UART) */
    [16 ... 16 + N_IRQ - 1] = Default_Handler,
};

void Default_Handler(void)
{
    for (;;) {
    }
}

void Reset_Handler(void)
{
    uint32_t *src = &__data_load__;
    for (uint32_t *dst = &__data_start__; dst < &__data_end__;)
        *dst++ = *src++;
    for (uint32_t *dst = &__bss_start__; dst < &__bss_end__;)
        *dst++ = 0;
    paint_stack();

#if defined(__ARM_FP) || defined(__ARM_FEATURE_MVE)
    SCB_CPACR |= (0xFu << 20); /* CP10, CP11 full access */
    __asm volatile("dsb\n isb" ::: "memory");
#endif
    /* MemManage, BusFault, UsageFault as their own exceptions; trap
     * divide by zero instead of silently returning 0. */
    SCB_SHCSR |= (1u << 16) | (1u << 17) | (1u << 18);
    SCB_CCR |= (1u << 4);

    main();
    for (;;) {
    }
}
