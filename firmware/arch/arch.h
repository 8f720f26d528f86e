/*
 * What the application needs from the core architecture, whatever it is.
 * Each arch/<name>/ directory implements these; the board layer's
 * board.cmake adds that directory's sources to the build.
 */
#ifndef HIL_ARCH_H
#define HIL_ARCH_H

#include <stdint.h>

/* Register the link (a `const hil_port *`) the fault handler reports
 * through: a fault sends a FAULT frame (docs/protocol.md) and halts. */
void arch_fault_set_port(const void *port);

/* Read `len` bytes of host file `path` from `offset` into `dst` through the
 * emulator's semihosting; returns the bytes read, or -1 on failure. Only
 * for emulators: on a board without a debugger the trap instruction faults. */
long arch_semihost_read_file(void *ctx, const char *path, uint32_t offset, uint8_t *dst,
                             uint32_t len);

/* The semihosting trap: operation `op` with argument block `args`; returns
 * the host's r0/a0. arch/semihost_file.c builds the file reads on it. */
int32_t arch_semihost_call(uint32_t op, const void *args);

#endif
