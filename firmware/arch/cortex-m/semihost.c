/*
 * The Arm semihosting trap: BKPT 0xAB with r0 = operation and r1 = argument
 * block (the file reads over it are arch/semihost_file.c). Never call this
 * on a board without a debugger attached: BKPT 0xAB would fault.
 */
#include <stdint.h>

#include "../arch.h"

int32_t arch_semihost_call(uint32_t op, const void *args)
{
    register uint32_t r0 __asm("r0") = op;
    register const void *r1 __asm("r1") = args;
    __asm volatile("bkpt 0xAB" : "+r"(r0) : "r"(r1) : "memory");
    return (int32_t)r0;
}
