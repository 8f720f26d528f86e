/*
 * Nordic nRF52 (nRF52840): UARTE with EasyDMA, polled one byte at a time;
 * DWT CYCCNT when the core really counts, else SysTick; optionally the CPU
 * sleeps (WFE) while no byte is waiting.
 *
 * UARTE rather than the legacy UART: Renode's nrf52840.repl models UARTE0
 * with EasyDMA (`easyDMA: true`), which has no RXD/TXD registers, and the
 * silicon has both. EasyDMA reads and writes RAM only, so transmitted bytes
 * are copied to a RAM buffer first.
 *
 * From the platform file (firmware.defines), all optional:
 *   HIL_UART_BASE               UARTE0 (firmware.uart_base, 0x40002000)
 *   HIL_NRF_UART_TX_PIN/_RX_PIN PSEL values (DK: P0.06 TX, P0.08 RX)
 *   HIL_NRF_UART_BAUDRATE       BAUDRATE register value
 *   HIL_UART_IRQ + HIL_IDLE_WFE sleep in WFE between bytes (see board_getc())
 */
#include <string.h>

#include "../board.h"

#include "../../arch/cortex-m/cortex_m.h"

#ifndef HIL_UART_BASE
#error "HIL_UART_BASE must be set by the platform file"
#endif
#ifndef HIL_NRF_UART_TX_PIN
#define HIL_NRF_UART_TX_PIN 6u
#endif
#ifndef HIL_NRF_UART_RX_PIN
#define HIL_NRF_UART_RX_PIN 8u
#endif
#ifndef HIL_NRF_UART_BAUDRATE
/* 115200 baud in UARTE mode (nRF52840 Product Specification, UARTE
 * BAUDRATE; not checked here). Renode ignores it. */
#define HIL_NRF_UART_BAUDRATE 0x01D60000u
#endif

#define UARTE_TASKS_STARTRX REG32(HIL_UART_BASE + 0x000u)
#define UARTE_TASKS_STARTTX REG32(HIL_UART_BASE + 0x008u)
#define UARTE_EVENTS_ENDRX REG32(HIL_UART_BASE + 0x110u)
#define UARTE_EVENTS_ENDTX REG32(HIL_UART_BASE + 0x120u)
#define UARTE_INTENSET REG32(HIL_UART_BASE + 0x304u)
#define UARTE_ENABLE REG32(HIL_UART_BASE + 0x500u)
#define UARTE_PSEL_TXD REG32(HIL_UART_BASE + 0x50Cu)
#define UARTE_PSEL_RXD REG32(HIL_UART_BASE + 0x514u)
#define UARTE_BAUDRATE REG32(HIL_UART_BASE + 0x524u)
#define UARTE_RXD_PTR REG32(HIL_UART_BASE + 0x534u)
#define UARTE_RXD_MAXCNT REG32(HIL_UART_BASE + 0x538u)
#define UARTE_TXD_PTR REG32(HIL_UART_BASE + 0x544u)
#define UARTE_TXD_MAXCNT REG32(HIL_UART_BASE + 0x548u)
#define UARTE_CONFIG REG32(HIL_UART_BASE + 0x56Cu)
#define ENABLE_UARTE 8u
#define INT_ENDRX (1u << 4)

#define SCB_SCR REG32(0xE000ED10u)
#define SCR_SEVONPEND (1u << 4)
#define NVIC_ICER(n) REG32(0xE000E180u + 4u * ((n) / 32u))
#define NVIC_ICPR(n) REG32(0xE000E280u + 4u * ((n) / 32u))

static volatile uint8_t rx_byte; /* EasyDMA target: RAM */
static uint8_t tx_buffer[64];
static void start_rx(void)
{
    UARTE_RXD_PTR = (uint32_t)(uintptr_t)&rx_byte;
    UARTE_RXD_MAXCNT = 1;
    UARTE_TASKS_STARTRX = 1;
}

void board_init(void)
{
    UARTE_PSEL_TXD = HIL_NRF_UART_TX_PIN;
    UARTE_PSEL_RXD = HIL_NRF_UART_RX_PIN;
    UARTE_BAUDRATE = HIL_NRF_UART_BAUDRATE;
    UARTE_CONFIG = 0; /* 8N1, no flow control */
    UARTE_ENABLE = ENABLE_UARTE;
    UARTE_EVENTS_ENDRX = 0;
#if defined(HIL_IDLE_WFE) && defined(HIL_UART_IRQ)
    /* The UARTE's interrupt stays disabled in the NVIC: ENDRX only makes
     * it pending, which with SEVONPEND is an event that ends WFE. */
    NVIC_ICER(HIL_UART_IRQ) = 1u << (HIL_UART_IRQ % 32u);
    SCB_SCR |= SCR_SEVONPEND;
    UARTE_INTENSET = INT_ENDRX;
#endif
    start_rx();

    cm_counter_select();
}

/* A byte has been received when ENDRX is set (MAXCNT = 1): clear the event
 * first, take the byte, then restart reception. */
static int take_byte(void)
{
    UARTE_EVENTS_ENDRX = 0;
    int c = rx_byte;
    start_rx();
    return c;
}

/* With HIL_IDLE_WFE the core sleeps until a byte arrives, and every call
 * runs the same instructions whether it slept or not: see
 * boards/stm32/board.c for why and how. */
int board_getc(void)
{
#if defined(HIL_IDLE_WFE) && defined(HIL_UART_IRQ)
    cm_counter_idle();
    __asm volatile("sev\n wfe" ::: "memory");
    NVIC_ICPR(HIL_UART_IRQ) = 1u << (HIL_UART_IRQ % 32u);
    uint32_t ready = UARTE_EVENTS_ENDRX;
    __asm volatile("dsb\n cmp %0, #0\n it eq\n wfeeq" : : "r"(ready) : "cc", "memory");
#endif
    if (UARTE_EVENTS_ENDRX)
        return take_byte();
    return -1;
}

void board_write(const uint8_t *data, size_t len)
{
    while (len > 0) {
        size_t n = len < sizeof tx_buffer ? len : sizeof tx_buffer;
        memcpy(tx_buffer, data, n);
        UARTE_EVENTS_ENDTX = 0;
        UARTE_TXD_PTR = (uint32_t)(uintptr_t)tx_buffer;
        UARTE_TXD_MAXCNT = n;
        UARTE_TASKS_STARTTX = 1;
        while (!UARTE_EVENTS_ENDTX) {
        }
        data += n;
        len -= n;
    }
}
