/*
 * STM32 parts: one USART, polled; DWT CYCCNT when the core really counts,
 * else SysTick; optionally the CPU sleeps (WFE) while no byte is waiting.
 *
 * Everything part-specific is data from the platform file (firmware.defines):
 *
 *   HIL_UART_BASE                the USART (firmware.uart_base)
 *   HIL_STM32_USART_LAYOUT       1: F1/F2/F4 (SR, DR, BRR 0x08, CR1 0x0C)
 *                                2: F0/F3/F7/L4/H7 (CR1 0x00, BRR 0x0C,
 *                                   ISR 0x1C, RDR 0x24, TDR 0x28)
 *   HIL_UART_BAUD                default 115200 (BRR from HIL_UART_CLOCK_HZ,
 *                                default HIL_CLOCK_HZ; emulators ignore it)
 *   HIL_STM32_RCC_UART_ENR/_BIT  clock enable of the USART (optional)
 *   HIL_STM32_RCC_GPIO_ENR/_BITS clock enable of its GPIO ports (optional)
 *   HIL_STM32_TX_GPIO/_PIN, HIL_STM32_RX_GPIO/_PIN, HIL_STM32_UART_AF
 *                                pins as alternate function (optional)
 *   HIL_UART_IRQ + HIL_IDLE_WFE  sleep in WFE between bytes (see board_getc())
 *
 * Emulators (Renode's STM32_UART and STM32F7_USART models) need none of
 * the optional ones; a real board needs its clock and pins.
 */
#include "../board.h"

#include "../../arch/cortex-m/cortex_m.h"

#ifndef HIL_UART_BASE
#error "HIL_UART_BASE must be set by the platform file"
#endif
#ifndef HIL_STM32_USART_LAYOUT
#error "HIL_STM32_USART_LAYOUT (1: SR/DR, 2: ISR/RDR/TDR) must be set in the platform file's firmware.defines"
#endif
#ifndef HIL_UART_BAUD
#define HIL_UART_BAUD 115200u
#endif
#ifndef HIL_UART_CLOCK_HZ
#define HIL_UART_CLOCK_HZ HIL_CLOCK_HZ
#endif

#if HIL_STM32_USART_LAYOUT == 1
#define USART_STATUS REG32(HIL_UART_BASE + 0x00u) /* SR */
#define USART_RX REG32(HIL_UART_BASE + 0x04u)     /* DR */
#define USART_TX REG32(HIL_UART_BASE + 0x04u)     /* DR */
#define USART_BRR REG32(HIL_UART_BASE + 0x08u)
#define USART_CR1 REG32(HIL_UART_BASE + 0x0Cu)
#define CR1_UE (1u << 13)
#elif HIL_STM32_USART_LAYOUT == 2
#define USART_CR1 REG32(HIL_UART_BASE + 0x00u)
#define USART_BRR REG32(HIL_UART_BASE + 0x0Cu)
#define USART_STATUS REG32(HIL_UART_BASE + 0x1Cu) /* ISR */
#define USART_RX REG32(HIL_UART_BASE + 0x24u)     /* RDR */
#define USART_TX REG32(HIL_UART_BASE + 0x28u)     /* TDR */
#define CR1_UE (1u << 0)
#else
#error "HIL_STM32_USART_LAYOUT must be 1 or 2"
#endif
/* the same bits in both layouts */
#define STATUS_RXNE (1u << 5)
#define STATUS_TXE (1u << 7)
#define CR1_RE (1u << 2)
#define CR1_TE (1u << 3)
#define CR1_RXNEIE (1u << 5)

/* GPIO port registers (all STM32 but F1) */
#define GPIO_MODER(port) REG32((port) + 0x00u)
#define GPIO_AFR(port, pin) REG32((port) + 0x20u + 4u * ((pin) / 8u))

#define SCB_SCR REG32(0xE000ED10u)
#define SCR_SEVONPEND (1u << 4)
#define NVIC_ICER(n) REG32(0xE000E180u + 4u * ((n) / 32u))
#define NVIC_ICPR(n) REG32(0xE000E280u + 4u * ((n) / 32u))

#if defined(HIL_STM32_TX_GPIO) && defined(HIL_STM32_RX_GPIO)
static void pin_af(uint32_t port, uint32_t pin)
{
    GPIO_MODER(port) = (GPIO_MODER(port) & ~(3u << (2u * pin))) | (2u << (2u * pin));
    uint32_t shift = 4u * (pin % 8u);
    GPIO_AFR(port, pin) = (GPIO_AFR(port, pin) & ~(0xFu << shift)) | ((uint32_t)HIL_STM32_UART_AF << shift);
}
#endif

void board_init(void)
{
#ifdef HIL_STM32_RCC_GPIO_ENR
    REG32(HIL_STM32_RCC_GPIO_ENR) |= HIL_STM32_RCC_GPIO_BITS;
#endif
#ifdef HIL_STM32_RCC_UART_ENR
    REG32(HIL_STM32_RCC_UART_ENR) |= (1u << HIL_STM32_RCC_UART_BIT);
    (void)REG32(HIL_STM32_RCC_UART_ENR); /* the clock is on before the USART is touched */
#endif
#if defined(HIL_STM32_TX_GPIO) && defined(HIL_STM32_RX_GPIO)
    pin_af(HIL_STM32_TX_GPIO, HIL_STM32_TX_PIN);
    pin_af(HIL_STM32_RX_GPIO, HIL_STM32_RX_PIN);
#endif
    USART_CR1 = 0;
    USART_BRR = (HIL_UART_CLOCK_HZ + HIL_UART_BAUD / 2u) / HIL_UART_BAUD; /* oversampling by 16 */
#if defined(HIL_IDLE_WFE) && defined(HIL_UART_IRQ)
    /* The USART's receive interrupt stays disabled in the NVIC: it only
     * becomes pending, which with SEVONPEND is an event that ends WFE. */
    NVIC_ICER(HIL_UART_IRQ) = 1u << (HIL_UART_IRQ % 32u);
    SCB_SCR |= SCR_SEVONPEND;
    USART_CR1 = CR1_UE | CR1_TE | CR1_RE | CR1_RXNEIE;
#else
    USART_CR1 = CR1_UE | CR1_TE | CR1_RE;
#endif

    cm_counter_select();
}

/*
 * With HIL_IDLE_WFE the core sleeps until a byte arrives, so an idle device
 * executes no instructions; under Renode `cpu ExecutedInstructions` read
 * around an INVOKE then counts the request, the invoke and the reply, not
 * how long the host took to ask. Every call runs the same instructions
 * whether the byte was already there or the core slept for it (the sleep is
 * a conditional WFE), so that count does not depend on when the bytes
 * arrived either:
 *
 *   - SysTick stops while idle (a tick is an event too);
 *     board_counter_restart() starts it again before every measurement;
 *   - SEV + WFE empties the event register, so the WFE below waits for a
 *     new event rather than returning for an old one;
 *   - the USART's interrupt is cleared from pending, so the next byte makes
 *     it pending again: with SEVONPEND that is the event that ends WFE (the
 *     interrupt itself stays disabled in the NVIC and never runs).
 */
int board_getc(void)
{
#if defined(HIL_IDLE_WFE) && defined(HIL_UART_IRQ)
    cm_counter_idle();
    __asm volatile("sev\n wfe" ::: "memory");
    NVIC_ICPR(HIL_UART_IRQ) = 1u << (HIL_UART_IRQ % 32u);
    uint32_t ready = USART_STATUS & STATUS_RXNE;
    __asm volatile("dsb\n cmp %0, #0\n it eq\n wfeeq" : : "r"(ready) : "cc", "memory");
#endif
    if (USART_STATUS & STATUS_RXNE)
        return (int)(USART_RX & 0xFFu);
    return -1;
}

void board_write(const uint8_t *data, size_t len)
{
    for (size_t i = 0; i < len; i++) {
        while (!(USART_STATUS & STATUS_TXE)) {
        }
        USART_TX = data[i];
    }
}
