/*
 * Fault handling: each fault exception captures the stacked frame and the
 * fault status registers, hands them to the installed hook (the protocol
 * layer's, which sends a FAULT frame so the host can say where and why
 * instead of seeing a silent hang) and halts.
 */
#include <stdint.h>

#include "../arch.h"
#include "cortex_m.h"

static arch_fault_hook fault_hook;
static void *fault_ctx;

void arch_fault_set_hook(arch_fault_hook hook, void *ctx)
{
    fault_ctx = ctx;
    fault_hook = hook;
}

/* Called with the exception's stacked frame: r0-r3, r12, lr, pc, xpsr. */
__attribute__((used, noreturn)) void cm_fault_report(uint32_t kind, const uint32_t *frame)
{
    arch_fault f;
    f.kind = (uint8_t)kind;
    f.pc = frame[6];
    f.lr = frame[5];
    f.cfsr = SCB_CFSR;
    f.hfsr = SCB_HFSR;
    f.mmfar = SCB_MMFAR;
    f.bfar = SCB_BFAR;
    f.sp = (uint32_t)(uintptr_t)frame;
    if (fault_hook)
        fault_hook(fault_ctx, &f);
    for (;;) {
    }
}

/* Pick MSP or PSP by EXC_RETURN bit 2, then report. */
#define FAULT_HANDLER(name, kind)                                                        \
    __attribute__((naked)) void name(void)                                               \
    {                                                                                    \
        __asm volatile("movs r0, #" #kind "\n"                                           \
                       "mov r1, lr\n"                                                    \
                       "movs r2, #4\n"                                                   \
                       "tst r1, r2\n"                                                    \
                       "ite eq\n"                                                        \
                       "mrseq r1, msp\n"                                                 \
                       "mrsne r1, psp\n"                                                 \
                       "b cm_fault_report\n");                                           \
    }

FAULT_HANDLER(HardFault_Handler, 1)
FAULT_HANDLER(MemManage_Handler, 2)
FAULT_HANDLER(BusFault_Handler, 3)
FAULT_HANDLER(UsageFault_Handler, 4)

void cm_system_reset(void)
{
    __asm volatile("dsb" ::: "memory");
    SCB_AIRCR = (0x05FAu << 16) | (1u << 2); /* VECTKEY | SYSRESETREQ */
    __asm volatile("dsb" ::: "memory");
    for (;;) {
    }
}
