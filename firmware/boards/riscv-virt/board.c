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
#define IER_RX_AVAILABLE (1u << 0)
#define LSR_DATA_READY (1u << 0)
#define LSR_THR_EMPTY (1u << 5)

#define FINISHER_RESET 0x7777u

#ifdef HIL_UART_RX_IRQ
#ifndef HIL_PLIC_BASE
#define HIL_PLIC_BASE 0x0C000000u /* virt's PLIC */
#endif
/* PLIC registers for context 0 (hart 0, machine mode) */
#define PLIC_PRIORITY(src) REG32(HIL_PLIC_BASE + 4u * (src))
#define PLIC_ENABLE(src) REG32(HIL_PLIC_BASE + 0x2000u + 4u * ((src) / 32u))
#define PLIC_THRESHOLD REG32(HIL_PLIC_BASE + 0x200000u)
#define PLIC_CLAIM REG32(HIL_PLIC_BASE + 0x200004u)
#endif

void board_init(void)
{
    UART_LCR = 0x03; /* 8N1, divisor latch closed (QEMU ignores the baud rate) */
    /* FIFOs stay off (FCR untouched): switching them on empties the
     * receiver, and the host may have sent its first request already
     * (QEMU starts the guest when the host connects). */
#ifdef HIL_UART_RX_IRQ
    /* The UART's receive interrupt reaches the PLIC (board_idle() wakes on
     * it); mstatus.MIE stays clear, so it is never taken as a trap. */
    UART_IER = IER_RX_AVAILABLE;
    PLIC_PRIORITY(HIL_UART_RX_IRQ) = 1;
    PLIC_THRESHOLD = 0;
    PLIC_ENABLE(HIL_UART_RX_IRQ) |= 1u << (HIL_UART_RX_IRQ % 32u);
#else
    UART_IER = 0; /* polled */
#endif
}

static int rx_ready(void) { return (UART_LSR & LSR_DATA_READY) != 0; }

#ifdef HIL_UART_RX_IRQ
#ifndef HIL_IDLE_SPIN
#define HIL_IDLE_SPIN 2000u /* polls before sleeping: as on Cortex-M (arch/cortex-m/board_common.c) */
#endif

/* Complete whatever the PLIC has pending for hart 0 (only the UART is
 * enabled): a claim ends the PLIC's pending state, which the UART's line
 * going low would not. */
static void plic_drain(void)
{
    uint32_t source;
    while ((source = PLIC_CLAIM) != 0)
        PLIC_CLAIM = source;
}

/*
 * Sleep in WFI until a byte arrives, so that QEMU waiting for the host
 * spends no host CPU. WFI ends when an interrupt is pending and enabled in
 * mie, whatever mstatus.MIE says; MIE is clear, so no trap is taken. A
 * byte that comes after the check pends the UART's interrupt at the PLIC,
 * and WFI returns at once. minstret does not count while the hart waits,
 * and no instruction of the sleep falls inside a measurement.
 */
void board_idle(void)
{
    for (uint32_t i = 0; i < HIL_IDLE_SPIN; i++) /* the next byte of a frame is usually this close */
        if (rx_ready())
            return;
    plic_drain();
    CSR_SET(mie, MIE_MEIE);
    if (!rx_ready())
        __asm volatile("wfi" ::: "memory");
    CSR_CLEAR(mie, MIE_MEIE);
    plic_drain();
}
#endif

int board_getc(void)
{
    if (rx_ready())
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
