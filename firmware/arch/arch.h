/*
 * What the application needs from the core architecture, whatever it is.
 * Each arch/<name>/ directory implements these; the board layer's
 * board.cmake adds that directory's sources to the build.
 */
#ifndef HIL_ARCH_H
#define HIL_ARCH_H

#include <stdint.h>

/* What a fault handler saw. The fields are those of a Cortex-M fault (a
 * RISC-V trap fills them as docs/protocol.md "FAULT on RISC-V" says). */
typedef struct arch_fault {
    uint8_t kind; /* 1 HardFault, 2 MemManage, 3 BusFault, 4 UsageFault */
    uint32_t pc, lr, cfsr, hfsr, mmfar, bfar, sp;
} arch_fault;

/* Called by the fault handler before the core halts; it must not return
 * to the faulting code (it may: the handler halts after it). */
typedef void (*arch_fault_hook)(void *ctx, const arch_fault *fault);

/* Install what a fault does before the core halts (NULL: just halt). The
 * protocol layer installs one that sends a FAULT frame (api/hil_board.c). */
void arch_fault_set_hook(arch_fault_hook hook, void *ctx);

/* Read `len` bytes of host file `path` from `offset` into `dst` through the
 * emulator's semihosting; returns the bytes read, or -1 on failure. Only
 * for emulators: on a board without a debugger the trap instruction faults. */
long arch_semihost_read_file(void *ctx, const char *path, uint32_t offset, uint8_t *dst,
                             uint32_t len);

/* The semihosting trap: operation `op` with argument block `args`; returns
 * the host's r0/a0. arch/semihost_file.c builds the file reads on it. */
int32_t arch_semihost_call(uint32_t op, const void *args);

#endif
