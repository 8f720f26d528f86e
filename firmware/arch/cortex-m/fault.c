/*
 * Fault reporting: each fault exception captures the stacked frame and the
 * fault status registers, sends a FAULT frame over the link (docs/
 * protocol.md) and halts, so the host can say where and why instead of
 * seeing a silent hang.
 */
#include <stdint.h>

#include "../../protocol/proto.h"
#include "../arch.h"
#include "cortex_m.h"

static const hil_port *fault_port;

void cm_fault_set_port(const void *port) { fault_port = (const hil_port *)port; }
void arch_fault_set_port(const void *port) __attribute__((alias("cm_fault_set_port")));

static void put32(uint8_t *p, uint32_t v)
{
    for (int i = 0; i < 4; i++)
        p[i] = (uint8_t)(v >> (8 * i));
}

/* Called with the exception's stacked frame: r0-r3, r12, lr, pc, xpsr. */
__attribute__((used, noreturn)) void cm_fault_report(uint32_t kind, const uint32_t *frame)
{
    uint8_t payload[1 + 7 * 4];
    payload[0] = (uint8_t)kind;
    put32(payload + 1, frame[6]);  /* pc */
    put32(payload + 5, frame[5]);  /* lr */
    put32(payload + 9, SCB_CFSR);
    put32(payload + 13, SCB_HFSR);
    put32(payload + 17, SCB_MMFAR);
    put32(payload + 21, SCB_BFAR);
    put32(payload + 25, (uint32_t)(uintptr_t)frame);
    if (fault_port) {
        static const uint8_t delimiter = 0;
        fault_port->write(fault_port->ctx, &delimiter, 1); /* end a cut-off frame */
        hil_send_frame(fault_port, HIL_MSG_FAULT, 0, payload, sizeof payload);
    }
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
