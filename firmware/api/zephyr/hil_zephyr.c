/* hil_zephyr.h: the hil C API's transport and board hooks on Zephyr. */
#include "hil_zephyr.h"

#include <errno.h>
#include <zephyr/drivers/uart.h>
#include <zephyr/kernel.h>
#include <zephyr/sys_clock.h>

#ifdef CONFIG_SEMIHOST
#include <zephyr/arch/common/semihost.h>
#endif
#ifdef CONFIG_REBOOT
#include <zephyr/sys/reboot.h>
#endif
#if defined(CONFIG_RISCV)
#include <zephyr/arch/riscv/csr.h>
#endif

#ifndef HIL_PLATFORM_NAME
#define HIL_PLATFORM_NAME CONFIG_BOARD
#endif

static const struct device *uart_dev;

/* ---- receive: a single-producer (ISR), single-consumer (thread) ring ---- */

#ifdef CONFIG_UART_INTERRUPT_DRIVEN
#define RX_SIZE CONFIG_HIL_ZEPHYR_RX_BUFFER
static uint8_t rx_ring[RX_SIZE];
static volatile uint32_t rx_head, rx_tail; /* head: ISR writes; tail: thread */
static volatile uint32_t rx_dropped;
static K_SEM_DEFINE(rx_sem, 0, 1);

static void uart_isr(const struct device *dev, void *user_data)
{
    ARG_UNUSED(user_data);
    while (uart_irq_update(dev) && uart_irq_rx_ready(dev)) {
        uint8_t buf[32];
        int n = uart_fifo_read(dev, buf, sizeof buf);
        if (n <= 0)
            break;
        for (int i = 0; i < n; i++) {
            uint32_t next = (rx_head + 1u) % RX_SIZE;
            if (next == rx_tail) {
                rx_dropped++; /* the frame's CRC fails; the host sees BAD_FRAME */
                continue;
            }
            rx_ring[rx_head] = buf[i];
            rx_head = next;
        }
        k_sem_give(&rx_sem);
    }
}

static int uart_getc(void *ctx)
{
    ARG_UNUSED(ctx);
    if (rx_tail == rx_head)
        return -1;
    uint8_t c = rx_ring[rx_tail];
    rx_tail = (rx_tail + 1u) % RX_SIZE;
    return c;
}

static void idle(void *ctx)
{
    ARG_UNUSED(ctx);
    k_sem_take(&rx_sem, K_MSEC(100));
}
#else
static int uart_getc(void *ctx)
{
    ARG_UNUSED(ctx);
    unsigned char c;
    return uart_poll_in(uart_dev, &c) == 0 ? c : -1;
}

static void idle(void *ctx)
{
    ARG_UNUSED(ctx);
    k_yield();
}
#endif

static void uart_write(void *ctx, const uint8_t *data, size_t len)
{
    ARG_UNUSED(ctx);
    for (size_t i = 0; i < len; i++)
        uart_poll_out(uart_dev, data[i]);
}

int hil_zephyr_uart_transport(hil_transport *t, const struct device *uart)
{
    if (!device_is_ready(uart))
        return -ENODEV;
    uart_dev = uart;
#ifdef CONFIG_UART_INTERRUPT_DRIVEN
    uart_irq_rx_disable(uart);
    uart_irq_tx_disable(uart);
    /* drain what arrived before we listened (boot noise) */
    unsigned char c;
    while (uart_poll_in(uart, &c) == 0) {
    }
    uart_irq_callback_user_data_set(uart, uart_isr, NULL);
    uart_irq_rx_enable(uart);
#endif
    t->ctx = NULL;
    t->getc = uart_getc;
    t->write = uart_write;
    return 0;
}

/* ---- counter ---------------------------------------------------------------- */

static uint8_t counter_source = HIL_COUNTER_NONE;
static uint32_t last, high;

#if defined(CONFIG_CPU_CORTEX_M_HAS_DWT)
/* ARMv7-M/ARMv8-M debug registers, by address (no CMSIS version dependency) */
#define DEMCR (*(volatile uint32_t *)0xE000EDFCu)
#define DWT_CTRL (*(volatile uint32_t *)0xE0001000u)
#define DWT_CYCCNT (*(volatile uint32_t *)0xE0001004u)

static int dwt_start(void)
{
    DEMCR |= 1u << 24; /* TRCENA */
    DWT_CYCCNT = 0;
    DWT_CTRL |= 1u;    /* CYCCNTENA */
    uint32_t before = DWT_CYCCNT;
    for (volatile int i = 0; i < 100; i++) {
    }
    return DWT_CYCCNT != before; /* QEMU does not model it: never report a dead counter */
}
#endif

static uint32_t raw_count(void)
{
#if defined(CONFIG_CPU_CORTEX_M_HAS_DWT)
    if (counter_source == HIL_COUNTER_DWT)
        return DWT_CYCCNT;
#endif
#if defined(CONFIG_RISCV)
    if (counter_source == HIL_COUNTER_MINSTRET)
        return (uint32_t)csr_read(minstret);
#endif
    return k_cycle_get_32();
}

/* 32-bit counters extended to 64 bits; read at least once per wrap (an
 * invoke longer than 2^32 counts is not supported). */
static uint64_t counter(void *ctx)
{
    ARG_UNUSED(ctx);
    uint32_t now = raw_count();
    if (now < last)
        high++;
    last = now;
    return ((uint64_t)high << 32) | now;
}

static void counter_restart(void *ctx)
{
    ARG_UNUSED(ctx);
    last = raw_count();
    high = 0;
}

/* ---- semihosting, reboot, stack --------------------------------------------- */

#ifdef CONFIG_SEMIHOST
static long read_file(void *ctx, const char *path, uint32_t offset, uint8_t *dst, uint32_t len)
{
    ARG_UNUSED(ctx);
    long fd = semihost_open(path, SEMIHOST_OPEN_RB);
    if (fd < 0)
        return -1;
    long got = -1;
    if (semihost_seek(fd, (long)offset) == 0)
        got = semihost_read(fd, dst, (long)len);
    semihost_close(fd);
    return got < 0 ? -1 : got;
}
#endif

#ifdef CONFIG_REBOOT
static void reboot(void *ctx)
{
    ARG_UNUSED(ctx);
    sys_reboot(SYS_REBOOT_COLD);
}
#endif

#if defined(CONFIG_INIT_STACKS) && defined(CONFIG_THREAD_STACK_INFO)
static void stack(void *ctx, uint32_t *size, uint32_t *high_water)
{
    ARG_UNUSED(ctx);
    size_t unused = 0;
    struct k_thread *self = k_current_get();
    *size = (uint32_t)self->stack_info.size;
    *high_water = k_thread_stack_space_get(self, &unused) == 0 ? (uint32_t)(*size - unused) : 0u;
}
#endif

void hil_zephyr_board(hil_board *b)
{
    *b = (hil_board){0};
#if defined(CONFIG_CPU_CORTEX_M_HAS_DWT)
    if (dwt_start())
        counter_source = HIL_COUNTER_DWT;
#endif
#if defined(CONFIG_RISCV)
    if (counter_source == HIL_COUNTER_NONE)
        counter_source = HIL_COUNTER_MINSTRET;
#endif
#if defined(CONFIG_CORTEX_M_SYSTICK)
    if (counter_source == HIL_COUNTER_NONE)
        counter_source = HIL_COUNTER_SYSTICK; /* k_cycle_get_32 counts SysTick decrements */
#endif
    if (counter_source != HIL_COUNTER_NONE) {
        b->counter = counter;
        b->counter_restart = counter_restart;
        b->counter_source = counter_source;
    }
#ifdef CONFIG_SEMIHOST
    b->read_file = read_file;
#endif
#ifdef CONFIG_REBOOT
    b->reboot = reboot;
#endif
#if defined(CONFIG_INIT_STACKS) && defined(CONFIG_THREAD_STACK_INFO)
    b->stack = stack;
#endif
    b->idle = idle;
}

const char *hil_zephyr_platform(void) { return HIL_PLATFORM_NAME; }

uint32_t hil_zephyr_clock_hz(void) { return (uint32_t)sys_clock_hw_cycles_per_sec(); }
