/*
 * Arm semihosting file reads: the emulator (QEMU with -semihosting-config
 * enable=on,target=native) serves them from the host file system. This is
 * how bulk data (models, input batches) reaches the firmware at host speed
 * instead of through the emulated UART. Never call this on a board without
 * a debugger attached: BKPT 0xAB would fault.
 */
#include <stdint.h>
#include <string.h>

#include "../arch.h"
#include "cortex_m.h"

enum { SYS_OPEN = 0x01, SYS_CLOSE = 0x02, SYS_READ = 0x06, SYS_SEEK = 0x0A };

static int32_t semihost_call(uint32_t op, const void *args)
{
    register uint32_t r0 __asm("r0") = op;
    register const void *r1 __asm("r1") = args;
    __asm volatile("bkpt 0xAB" : "+r"(r0) : "r"(r1) : "memory");
    return (int32_t)r0;
}

long cm_semihost_read_file(void *ctx, const char *path, uint32_t offset, uint8_t *dst,
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

long arch_semihost_read_file(void *ctx, const char *path, uint32_t offset, uint8_t *dst,
                             uint32_t len) __attribute__((alias("cm_semihost_read_file")));
