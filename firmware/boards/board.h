/*
 * The board layer: everything the firmware needs from one board family.
 * One directory per family under boards/; the platform file chooses it.
 */
#ifndef HIL_BOARD_H
#define HIL_BOARD_H

#include <stddef.h>
#include <stdint.h>

void board_init(void);

/* Next received byte, or -1 when none is waiting (polled, never blocks). */
int board_getc(void);
void board_write(const uint8_t *data, size_t len);

/* Sleep until a byte may have arrived (called when board_getc() had none).
 * Defined by the boards that can, when the platform gives the UART's
 * receive interrupt (HIL_UART_RX_IRQ: mps2); elsewhere the link is polled. */
void board_idle(void);

/* Where board_counter() comes from (api/hil_board.c names it to the host). */
enum board_counter_kind {
    BOARD_COUNTER_NONE = 0,
    BOARD_COUNTER_SYSTICK = 1,  /* SysTick: instructions under QEMU -icount */
    BOARD_COUNTER_DWT = 2,      /* DWT CYCCNT: core cycles */
    BOARD_COUNTER_MINSTRET = 3  /* RISC-V minstret: instructions retired */
};

/* Free-running count for measuring an invoke, and where it comes from
 * (enum board_counter_kind). */
uint64_t board_counter(void);
uint8_t board_counter_source(void);
void board_counter_restart(void);

/* Stack size and measured high-water mark, in bytes. */
void board_stack_usage(uint32_t *size, uint32_t *high_water);

void board_reboot(void);

#endif
