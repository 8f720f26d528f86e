/*
 * Arm MPS2/MPS3 FPGA images as QEMU models them (mps2-an385, -an386,
 * -an500, ...): CMSDK APB UART, SysTick counter, semihosting for bulk data.
 * The UART base address comes from the platform file (HIL_UART_BASE).
 */
#include "../board.h"

#include "../../arch/cortex-m/cortex_m.h"
#include "../../protocol/proto.h"

#ifndef HIL_UART_BASE
#error "HIL_UART_BASE must be set by the platform file"
#endif

/* CMSDK UART registers */
#define UART_DATA REG32(HIL_UART_BASE + 0x00u)
#define UART_STATE REG32(HIL_UART_BASE + 0x04u)
#define UART_CTRL REG32(HIL_UART_BASE + 0x08u)
#define UART_BAUDDIV REG32(HIL_UART_BASE + 0x10u)
#define STATE_TX_FULL (1u << 0)
#define STATE_RX_FULL (1u << 1)
#define CTRL_TX_RX_ENABLE 0x3u

/* DWT CYCCNT when the core really has one (the FPGA images do; QEMU does
 * not model it), else SysTick, which QEMU's -icount turns into an
 * instruction count. */
static int have_dwt;

void board_init(void)
{
    UART_BAUDDIV = 16; /* ignored by QEMU; the FPGA needs >= 16 */
    UART_CTRL = CTRL_TX_RX_ENABLE;
    have_dwt = cm_dwt_start();
    if (!have_dwt)
        cm_counter_start();
}

int board_getc(void)
{
    if (UART_STATE & STATE_RX_FULL)
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

uint64_t board_counter(void) { return have_dwt ? cm_dwt_read() : cm_counter_read(); }

uint8_t board_counter_source(void) { return have_dwt ? HIL_COUNTER_DWT : HIL_COUNTER_SYSTICK; }

void board_counter_restart(void)
{
    if (have_dwt)
        cm_dwt_restart();
    else
        cm_counter_restart();
}

void board_stack_usage(uint32_t *size, uint32_t *high_water) { cm_stack_usage(size, high_water); }

void board_reboot(void) { cm_system_reset(); }
