/*
 * TI (Luminary Micro) Stellaris LM3S parts, e.g. the LM3S6965 of QEMU's
 * `lm3s6965evb`: PL011 UART0 on PA0/PA1, DWT CYCCNT when the core really
 * counts (silicon) else SysTick (QEMU, where -icount makes it an
 * instruction count), semihosting for bulk data on the emulator.
 * The UART base and clock come from the platform file.
 */
#include "../board.h"

#include "../../arch/cortex-m/cortex_m.h"

#ifndef HIL_UART_BASE
#error "HIL_UART_BASE must be set by the platform file"
#endif
#ifndef HIL_UART_BAUD
#define HIL_UART_BAUD 115200u
#endif

/* System control: run-mode clock gating */
#define SYSCTL_RCGC1 REG32(0x400FE104u)
#define SYSCTL_RCGC2 REG32(0x400FE108u)
#define RCGC1_UART0 (1u << 0)
#define RCGC2_GPIOA (1u << 0)
/* GPIO port A: UART0 RX/TX on PA0/PA1 as alternate functions */
#define GPIOA_AFSEL REG32(0x40004420u)
#define GPIOA_DEN REG32(0x4000451Cu)

/* ARM PL011 UART registers */
#define UART_DR REG32(HIL_UART_BASE + 0x000u)
#define UART_FR REG32(HIL_UART_BASE + 0x018u)
#define UART_IBRD REG32(HIL_UART_BASE + 0x024u)
#define UART_FBRD REG32(HIL_UART_BASE + 0x028u)
#define UART_LCRH REG32(HIL_UART_BASE + 0x02Cu)
#define UART_CR REG32(HIL_UART_BASE + 0x030u)
#define UART_IMSC REG32(HIL_UART_BASE + 0x038u)
#define UART_ICR REG32(HIL_UART_BASE + 0x044u)
#define FR_RXFE (1u << 4)
#define INT_RX (1u << 4)
#define FR_TXFF (1u << 5)
#define LCRH_8N1 0x60u /* WLEN = 8 bits, FIFOs off (see board_init) */
#define CR_UARTEN_TXE_RXE 0x301u

/* Baud rate divisor in 1/64ths: clock / (16 * baud) */
#define BAUD_DIV64 ((HIL_CLOCK_HZ * 4u + HIL_UART_BAUD / 2u) / HIL_UART_BAUD)

void board_init(void)
{
    SYSCTL_RCGC1 |= RCGC1_UART0;
    SYSCTL_RCGC2 |= RCGC2_GPIOA;
    GPIOA_AFSEL |= 0x3u;
    GPIOA_DEN |= 0x3u;

    UART_IBRD = BAUD_DIV64 >> 6; /* ignored by QEMU */
    UART_FBRD = BAUD_DIV64 & 63u;
    /* FIFOs stay off: switching them on empties the receiver, and the host
     * may have sent its first request already (QEMU starts the guest when
     * the host connects). One holding register suffices for a polled loop. */
    UART_LCRH = LCRH_8N1;
    UART_CR = CR_UARTEN_TXE_RXE;
#ifdef HIL_UART_RX_IRQ
    UART_IMSC = INT_RX; /* board_idle() wakes on it (UART0: interrupt 5 on the LM3S6965) */
#endif

    cm_counter_select();
}

static int rx_ready(void) { return !(UART_FR & FR_RXFE); }

#ifdef HIL_UART_RX_IRQ
static void rx_clear(void) { UART_ICR = INT_RX; }

/* Sleeps in WFI until a byte arrives (arch/cortex-m/board_common.c). */
void board_idle(void) { cm_idle(HIL_UART_RX_IRQ, rx_ready, rx_clear); }
#endif

int board_getc(void)
{
    if (rx_ready())
        return (int)(UART_DR & 0xFFu);
    return -1;
}

void board_write(const uint8_t *data, size_t len)
{
    for (size_t i = 0; i < len; i++) {
        while (UART_FR & FR_TXFF) {
        }
        UART_DR = data[i];
    }
}
