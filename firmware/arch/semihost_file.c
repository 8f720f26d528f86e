/*
 * Semihosting file reads, the same on every architecture: the emulator
 * (QEMU with -semihosting-config enable=on,target=native) serves them from
 * the host file system. This is how bulk data (models, input batches)
 * reaches the firmware at host speed instead of through the emulated UART.
 * The trap itself is arch_semihost_call() in arch/<name>/semihost.c.
 */
#include <stdint.h>
#include <string.h>

#include "arch.h"

enum { SYS_OPEN = 0x01, SYS_CLOSE = 0x02, SYS_READ = 0x06, SYS_SEEK = 0x0A };

long arch_semihost_read_file(void *ctx, const char *path, uint32_t offset, uint8_t *dst,
                             uint32_t len)
{
    (void)ctx;
    uint32_t open_args[3] = {(uint32_t)(uintptr_t)path, 1 /* "rb" */, (uint32_t)strlen(path)};
    int32_t fd = arch_semihost_call(SYS_OPEN, open_args);
    if (fd < 0)
        return -1;
    long result = -1;
    uint32_t seek_args[2] = {(uint32_t)fd, offset};
    if (arch_semihost_call(SYS_SEEK, seek_args) == 0) {
        uint32_t read_args[3] = {(uint32_t)fd, (uint32_t)(uintptr_t)dst, len};
        int32_t not_read = arch_semihost_call(SYS_READ, read_args);
        if (not_read >= 0 && (uint32_t)not_read <= len)
            result = (long)(len - (uint32_t)not_read);
    }
    uint32_t close_args[1] = {(uint32_t)fd};
    arch_semihost_call(SYS_CLOSE, close_args);
    return result;
}
