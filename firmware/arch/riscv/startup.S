/*
 * Reset entry for RV32 in machine mode (QEMU `-bios none` jumps here, the
 * ELF entry, with a0 = hart id). Hart 0 sets up gp, sp, tp and the trap
 * vector and continues in C (rv_reset); other harts park.
 */
    /* CSR instructions are the Zicsr extension (binutils >= 2.38 wants it
     * named; -march stays rv32imac so GCC picks the rv32imac multilib) */
    .option arch, +zicsr
    .section .text.start, "ax"
    .globl _start
    .type _start, @function
_start:
    .option push
    .option norelax
    la gp, __global_pointer$
    .option pop
    csrr t0, mhartid
    bnez t0, park
    la sp, __stack_top__
    la tp, __tls_base
    la t0, rv_trap_entry
    csrw mtvec, t0           /* direct mode: every trap to rv_trap_entry */
    csrw mie, zero           /* no interrupts: the firmware polls */
    call rv_reset
park:
    wfi
    j park
    .size _start, . - _start
