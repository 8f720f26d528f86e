/*
 * RISC-V semihosting file reads (QEMU with -semihosting-config
 * enable=on,target=native): the Arm semihosting operations and argument
 * blocks, trapped by the magic sequence slli x0,x0,0x1f; ebreak;
 * srai x0,x0,7 (uncompressed, not crossing a page) with a0 = operation and
 * a1 = argument block. Never call this on a board without a debugger: the
 * ebreak would trap.
 */
#include <stdint.h>
#include <string.h>

#include "../arch.h"
#include "riscv.h"

enum { SYS_OPEN = 0x01, SYS_CLOSE = 0x02, SYS_READ = 0x06, SYS_SEEK = 0x0A };

__attribute__((noinline)) static int32_t semihost_call(uint32_t op, const void *args)
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

long arch_semihost_read_file(void *ctx, const char *path, uint32_t offset, uint8_t *dst,
                             uint32_t len)
{
    (void)ctx;
    uint32_t open_args[3] = {(uint32_t)(uintptr_t)path, 1 /* "rb" */, (uint32_t)strlen(path)};
    int32_t fd = semihost_call(SYS_OPEN, open_args);
    if (fd < 0)
        return -1;
    long result = -1;
    uint32_t seek_args[2] = {(uint32_t)fd, offset};
    if (semihost_call(SYS_SEEK, seek_args) == 0) {
        uint32_t read_args[3] = {(uint32_t)fd, (uint32_t)(uintptr_t)dst, len};
        int32_t not_read = semihost_call(SYS_READ, read_args);
        if (not_read >= 0 && (uint32_t)not_read <= len)
            result = (long)(len - (uint32_t)not_read);
    }
    uint32_t close_args[1] = {(uint32_t)fd};
    semihost_call(SYS_CLOSE, close_args);
    return result;
}
