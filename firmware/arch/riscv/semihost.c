/*
 * The RISC-V semihosting trap (QEMU with -semihosting-config
 * enable=on,target=native): the Arm semihosting operations and argument
 * blocks, trapped by the magic sequence slli x0,x0,0x1f; ebreak;
 * srai x0,x0,7 (uncompressed, not crossing a page) with a0 = operation and
 * a1 = argument block (the file reads over it are arch/semihost_file.c).
 * Never call this on a board without a debugger: the ebreak would trap.
 */
#include <stdint.h>

#include "../arch.h"

__attribute__((noinline)) int32_t arch_semihost_call(uint32_t op, const void *args)
{
    register uint32_t a0 __asm("a0") = op;
    register const void *a1 __asm("a1") = args;
    __asm volatile(".option push\n"
                   ".option norvc\n"
                   ".balign 16\n" /* the 12 bytes stay within one page */
                   "slli x0, x0, 0x1f\n"
                   "ebreak\n"
                   "srai x0, x0, 7\n"
                   ".option pop\n"
                   : "+r"(a0)
                   : "r"(a1)
                   : "memory");
    return (int32_t)a0;
}
