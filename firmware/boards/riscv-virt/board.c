/*
 * QEMU's RISC-V `virt` machine (-bios none, machine mode): NS16550A UART,
 * minstret counter, semihosting for bulk data, the SiFive test device to
 * reboot. Base addresses come from the platform file (HIL_UART_BASE) or
 * are the machine's fixed ones.
 */
#include "../board.h"

#include "../../arch/riscv/riscv.h"

#ifndef HIL_UART_BASE
#error "HIL_UART_BASE must be set by the platform file"
#endif
#ifndef HIL_SIFIVE_TEST_BASE
#define HIL_SIFIVE_TEST_BASE 0x00100000u /* virt's sifive_test (finisher) */
#endif

/* NS16550A registers, one byte apart (virt: reg-shift 0) */
#define UART_RBR REG8(HIL_UART_BASE + 0u) /* read */
#define UART_THR REG8(HIL_UART_BASE + 0u) /* write */
#define UART_IER REG8(HIL_UART_BASE + 1u)
#define UART_LCR REG8(HIL_UART_BASE + 3u)
#define UART_LSR REG8(HIL_UART_BASE + 5u)
#define LSR_DATA_READY (1u << 0)
#define LSR_THR_EMPTY (1u << 5)

#define FINISHER_RESET 0x7777u

void board_init(void)
{
    UART_IER = 0;    /* polled */
    UART_LCR = 0x03; /* 8N1, divisor latch closed (QEMU ignores the baud rate) */
    /* FIFOs stay off (FCR untouched): switching them on empties the
     * receiver, and the host may have sent its first request already
     * (QEMU starts the guest when the host connects). */
}

int board_getc(void)
{
    if (UART_LSR & LSR_DATA_READY)
        return (int)UART_RBR;
    return -1;
}

void board_write(const uint8_t *data, size_t len)
{
    for (size_t i = 0; i < len; i++) {
        while (!(UART_LSR & LSR_THR_EMPTY)) {
        }
        UART_THR = data[i];
    }
}

uint64_t board_counter(void) { return rv_counter_read(); }

uint8_t board_counter_source(void) { return BOARD_COUNTER_MINSTRET; }

/* minstret free-runs; a measurement is a difference of two reads. */
void board_counter_restart(void) {}

void board_stack_usage(uint32_t *size, uint32_t *high_water) { rv_stack_usage(size, high_water); }

void board_reboot(void)
{
    REG32(HIL_SIFIVE_TEST_BASE) = FINISHER_RESET;
    for (;;) {
    }
}
