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

#define NVIC_ISER(n) REG32(0xE000E100u + 4u * ((n) / 32u))
#define NVIC_ICER(n) REG32(0xE000E180u + 4u * ((n) / 32u))
#define NVIC_ICPR(n) REG32(0xE000E280u + 4u * ((n) / 32u))

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

#ifdef HIL_UART_RX_IRQ
/* Polls of the UART before sleeping. QEMU's UART holds one received byte,
 * so a request arrives a byte at a time, each soon after the last was read;
 * sleeping between them cost a wake-up per byte, and on a busy host each
 * waited for a core: with references computed beside the runs, hil test of
 * 4 x 300 keyword-spotting vectors took 24.4 s at -j 1 sleeping at once,
 * 19.9 s polling 2,000 times first. */
#ifndef HIL_IDLE_SPIN
#define HIL_IDLE_SPIN 2000u
#endif
/*
 * Sleep in WFI until a byte arrives, so that an emulator waiting for the
 * host spends no host CPU (polling kept QEMU at 100% of a core for the whole
 * run; two runs side by side then fought for the cores even while both
 * waited on hil). The receive interrupt is never taken: it is enabled in the
 * NVIC only while PRIMASK masks it, which still ends WFI, and is cleared and
 * disabled again before PRIMASK is restored. The UART holds its interrupt
 * while INTSTATUS.RX is set, so that is cleared first and the data register
 * checked after: a byte that came before the clear is seen there, one that
 * comes after pends the interrupt and WFI returns at once.
 *
 * SysTick stops while idle (under QEMU's -icount with sleep=off a running
 * timer would warp virtual time to each of its deadlines, busily);
 * board_counter_restart() starts it again before every measurement, and no
 * instruction of the sleep falls inside one.
 */
void board_idle(void)
{
    for (uint32_t i = 0; i < HIL_IDLE_SPIN; i++) /* the next byte of a frame is usually this close */
        if (UART_STATE & STATE_RX_FULL)
            return;
    const uint32_t bit = 1u << (HIL_UART_RX_IRQ % 32u);
    uint32_t primask;
    __asm volatile("mrs %0, primask\n cpsid i" : "=r"(primask) : : "memory");
    UART_INTCLEAR = INT_RX;
    NVIC_ICPR(HIL_UART_RX_IRQ) = bit;
    NVIC_ISER(HIL_UART_RX_IRQ) = bit;
    if (!(UART_STATE & STATE_RX_FULL)) {
        cm_counter_idle();
        __asm volatile("dsb\n wfi" ::: "memory");
    }
    NVIC_ICER(HIL_UART_RX_IRQ) = bit;
    NVIC_ICPR(HIL_UART_RX_IRQ) = bit;
    __asm volatile("dsb\n isb\n msr primask, %0" : : "r"(primask) : "memory");
}
#endif

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
