/*
 * The board.h functions that are the same on every Cortex-M board layer:
 * the counter (DWT CYCCNT when the core really counts, else SysTick), the
 * stack high-water mark, the reset, and sleeping until the UART receives
 * (cm_idle). A board's board_init() calls cm_counter_select().
 */
#include "../../boards/board.h"
#include "cortex_m.h"

/* DWT CYCCNT when the core really has one (silicon, the FPGA images; QEMU
 * does not model it), else SysTick, which QEMU's -icount turns into an
 * instruction count. */
static int have_dwt;

void cm_counter_select(void)
{
    have_dwt = cm_dwt_start();
    if (!have_dwt)
        cm_counter_start();
}

void cm_counter_idle(void)
{
    if (!have_dwt)
        SYST_CSR = 0;
}

uint64_t board_counter(void) { return have_dwt ? cm_dwt_read() : cm_counter_read(); }

uint8_t board_counter_source(void) { return have_dwt ? BOARD_COUNTER_DWT : BOARD_COUNTER_SYSTICK; }

void board_counter_restart(void)
{
    if (have_dwt)
        cm_dwt_restart();
    else
        cm_counter_restart();
}

void board_stack_usage(uint32_t *size, uint32_t *high_water) { cm_stack_usage(size, high_water); }

void board_reboot(void) { cm_system_reset(); }

#define NVIC_ISER(n) REG32(0xE000E100u + 4u * ((n) / 32u))
#define NVIC_ICER(n) REG32(0xE000E180u + 4u * ((n) / 32u))
#define NVIC_ICPR(n) REG32(0xE000E280u + 4u * ((n) / 32u))

/* Polls of the UART before sleeping. QEMU's UARTs hold one received byte,
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
 * while a byte waits, so the UART's own flag is cleared first (clear) and
 * the data checked after (ready): a byte that came before the clear is seen
 * there, one that comes after pends the interrupt and WFI returns at once.
 *
 * SysTick stops while idle (under QEMU's -icount with sleep=off a running
 * timer would warp virtual time to each of its deadlines, busily);
 * board_counter_restart() starts it again before every measurement, and no
 * instruction of the sleep falls inside one.
 */
void cm_idle(uint32_t irq, int (*ready)(void), void (*clear)(void))
{
    for (uint32_t i = 0; i < HIL_IDLE_SPIN; i++) /* the next byte of a frame is usually this close */
        if (ready())
            return;
    const uint32_t bit = 1u << (irq % 32u);
    uint32_t primask;
    __asm volatile("mrs %0, primask\n cpsid i" : "=r"(primask) : : "memory");
    clear();
    NVIC_ICPR(irq) = bit;
    NVIC_ISER(irq) = bit;
    if (!ready()) {
        cm_counter_idle();
        __asm volatile("dsb\n wfi" ::: "memory");
    }
    NVIC_ICER(irq) = bit;
    NVIC_ICPR(irq) = bit;
    __asm volatile("dsb\n isb\n msr primask, %0" : : "r"(primask) : "memory");
}
