/*
 * The board.h functions that are the same on every Cortex-M board layer:
 * the counter (DWT CYCCNT when the core really counts, else SysTick), the
 * stack high-water mark and the reset. A board's board_init() calls
 * cm_counter_select(); a board that sleeps in WFE while idle calls
 * cm_counter_idle() before it sleeps.
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
