/*
 * Arm MPS2/MPS3 FPGA images as QEMU models them (mps2-an385, -an386,
 * -an500, ...): CMSDK APB UART, SysTick counter, semihosting for bulk data.
 * The UART base address comes from the platform file (HIL_UART_BASE).
 */
#include "../board.h"

#include "../../arch/cortex-m/cortex_m.h"

#ifndef HIL_UART_BASE
#error "HIL_UART_BASE must be set by the platform file"
#endif

/* CMSDK UART registers */
#define UART_DATA REG32(HIL_UART_BASE + 0x00u)
#define UART_STATE REG32(HIL_UART_BASE + 0x04u)
#define UART_CTRL REG32(HIL_UART_BASE + 0x08u)
#define UART_INTCLEAR REG32(HIL_UART_BASE + 0x0Cu)
#define UART_BAUDDIV REG32(HIL_UART_BASE + 0x10u)
#define STATE_TX_FULL (1u << 0)
#define STATE_RX_FULL (1u << 1)
#define CTRL_TX_RX_ENABLE 0x3u
#define CTRL_RX_INT_ENABLE (1u << 3)
#define INT_RX (1u << 1)

/* The counter, stack usage and reset are the Cortex-M ones
 * (arch/cortex-m/board_common.c): DWT CYCCNT when the core really has one
 * (the FPGA images do; QEMU does not model it), else SysTick, which QEMU's
 * -icount turns into an instruction count. */
void board_init(void)
{
    UART_BAUDDIV = 16; /* ignored by QEMU; the FPGA needs >= 16 */
#ifdef HIL_UART_RX_IRQ
    UART_CTRL = CTRL_TX_RX_ENABLE | CTRL_RX_INT_ENABLE; /* board_idle() wakes on it */
#else
    UART_CTRL = CTRL_TX_RX_ENABLE;
#endif
    cm_counter_select();
}

static int rx_ready(void) { return (UART_STATE & STATE_RX_FULL) != 0; }

#ifdef HIL_UART_RX_IRQ
static void rx_clear(void) { UART_INTCLEAR = INT_RX; }

void board_idle(void) { cm_idle(HIL_UART_RX_IRQ, rx_ready, rx_clear); }
#endif

int board_getc(void)
{
    if (rx_ready())
        return (int)(UART_DATA & 0xFFu);
    return -1;
}

void board_write(const uint8_t *data, size_t len)
{
    for (size_t i = 0; i < len; i++) {
        while (UART_STATE & STATE_TX_FULL) {
        }
        UART_DATA = data[i];
    }
}
