/* hil_board.h over the board layer in ../boards/<board>/ and ../arch/. */
#include "hil_board.h"

#include "../arch/arch.h"
#include "../boards/board.h"

#ifndef HIL_PLATFORM
#define HIL_PLATFORM "unknown"
#endif
#ifndef HIL_CLOCK_HZ
#define HIL_CLOCK_HZ 0
#endif
#ifndef HIL_SEMIHOSTING
#define HIL_SEMIHOSTING 0
#endif

static int uart_getc(void *ctx)
{
    (void)ctx;
    return board_getc();
}

static void uart_write(void *ctx, const uint8_t *data, size_t len)
{
    (void)ctx;
    board_write(data, len);
}

static uint64_t counter(void *ctx)
{
    (void)ctx;
    return board_counter();
}

static void counter_restart(void *ctx)
{
    (void)ctx;
    board_counter_restart();
}

static void reboot(void *ctx)
{
    (void)ctx;
    board_reboot();
}

static void stack(void *ctx, uint32_t *size, uint32_t *high_water)
{
    (void)ctx;
    board_stack_usage(size, high_water);
}

void hil_board_setup(hil_transport *transport, hil_board *board)
{
    board_init();
    transport->ctx = NULL;
    transport->getc = uart_getc;
    transport->write = uart_write;

    board->ctx = NULL;
    board->counter = counter;
    board->counter_source = board_counter_source();
    board->counter_restart = counter_restart;
#if HIL_SEMIHOSTING
    board->read_file = arch_semihost_read_file;
#else
    board->read_file = NULL;
#endif
    board->reboot = reboot;
    board->stack = stack;
    board->idle = NULL;
}

const char *hil_board_platform(void) { return HIL_PLATFORM; }

uint32_t hil_board_clock_hz(void) { return HIL_CLOCK_HZ; }

void hil_board_report_faults(const hil_instance *h) { arch_fault_set_port(hil_port_of(h)); }
