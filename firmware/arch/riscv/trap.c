/*
 * Trap handling: every trap (the firmware enables no interrupts, so every
 * trap is an exception) goes to the installed fault hook, which sends a
 * FAULT frame, and halts, like the Cortex-M fault handlers. The Arm-shaped
 * fault carries the RISC-V state as documented in docs/protocol.md
 * ("FAULT on RISC-V"): pc = mepc,
 * lr = ra, cfsr = the Arm CFSR bits closest to mcause (so the host decodes
 * them), hfsr = mcause, mmfar = mtval, bfar = mtval for access faults,
 * sp = sp at the trap.
 */
#include <stdint.h>

#include "../arch.h"
#include "riscv.h"

static arch_fault_hook fault_hook;
static void *fault_ctx;

void arch_fault_set_hook(arch_fault_hook hook, void *ctx)
{
    fault_ctx = ctx;
    fault_hook = hook;
}

/* FAULT kinds and CFSR bits as the host decodes them (docs/protocol.md) */
enum { KIND_HARDFAULT = 1, KIND_BUSFAULT = 3, KIND_USAGEFAULT = 4 };
#define CFSR_IBUSERR (1u << 8)
#define CFSR_PRECISERR (1u << 9)
#define CFSR_BFARVALID (1u << 15)
#define CFSR_UNDEFINSTR (1u << 16)
#define CFSR_INVPC (1u << 18)
#define CFSR_UNALIGNED (1u << 24)

__attribute__((used, noreturn)) void rv_fault_report(uint32_t mcause, uint32_t mepc,
                                                     uint32_t mtval, uint32_t ra, uint32_t sp)
{
    uint8_t kind = KIND_HARDFAULT;
    uint32_t cfsr = 0, bfar = 0;
    if (!(mcause & 0x80000000u)) {
        switch (mcause) {
        case RV_CAUSE_ILLEGAL_INSN: kind = KIND_USAGEFAULT; cfsr = CFSR_UNDEFINSTR; break;
        case RV_CAUSE_INSN_MISALIGNED: kind = KIND_USAGEFAULT; cfsr = CFSR_INVPC; break;
        case RV_CAUSE_LOAD_MISALIGNED:
        case RV_CAUSE_STORE_MISALIGNED: kind = KIND_USAGEFAULT; cfsr = CFSR_UNALIGNED; break;
        case RV_CAUSE_INSN_ACCESS: kind = KIND_BUSFAULT; cfsr = CFSR_IBUSERR; break;
        case RV_CAUSE_LOAD_ACCESS:
        case RV_CAUSE_STORE_ACCESS:
            kind = KIND_BUSFAULT;
            cfsr = CFSR_PRECISERR | CFSR_BFARVALID;
            bfar = mtval;
            break;
        default: break; /* breakpoint, ecall, page faults: HardFault, no CFSR bits */
        }
    }
    arch_fault f;
    f.kind = kind;
    f.pc = mepc;
    f.lr = ra;
    f.cfsr = cfsr;
    f.hfsr = mcause;
    f.mmfar = mtval;
    f.bfar = bfar;
    f.sp = sp;
    if (fault_hook)
        fault_hook(fault_ctx, &f);
    for (;;) {
    }
}

/* mtvec target (direct mode needs 4-byte alignment). Nothing is saved: the
 * trap never returns. ra and sp are still the trapping code's. */
__attribute__((naked, aligned(4))) void rv_trap_entry(void)
{
    __asm volatile(".option push\n"
                   ".option arch, +zicsr\n"
                   "csrr a0, mcause\n"
                   "csrr a1, mepc\n"
                   "csrr a2, mtval\n"
                   "mv a3, ra\n"
                   "mv a4, sp\n"
                   "j rv_fault_report\n"
                   ".option pop\n");
}
