/* hil_board.h over the board layer in ../boards/<board>/ and ../arch/: the
 * one set of adapters from the board layer to the C API (hil's own runner,
 * app/main.c, uses them too), and the FAULT frame for the arch's fault hook. */
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

#ifdef HIL_UART_RX_IRQ
static void idle(void *ctx)
{
    (void)ctx;
    board_idle();
}
#endif

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

/* The board layer's counter kinds as the protocol names them. */
static uint8_t counter_source(void)
{
    switch (board_counter_source()) {
    case BOARD_COUNTER_SYSTICK: return HIL_COUNTER_SYSTICK;
    case BOARD_COUNTER_DWT: return HIL_COUNTER_DWT;
    case BOARD_COUNTER_MINSTRET: return HIL_COUNTER_MINSTRET;
    default: return HIL_COUNTER_NONE;
    }
}

void hil_board_setup(hil_transport *transport, hil_board *board)
{
    board_init();
    transport->ctx = NULL;
    transport->getc = uart_getc;
    transport->write = uart_write;

    board->ctx = NULL;
    board->counter = counter;
    board->counter_source = counter_source();
    board->counter_restart = counter_restart;
#if HIL_SEMIHOSTING
    board->read_file = arch_semihost_read_file;
#else
    board->read_file = NULL;
#endif
    board->reboot = reboot;
    board->stack = stack;
#ifdef HIL_UART_RX_IRQ
    board->idle = idle; /* the board sleeps until the next byte (board.h) */
#else
    board->idle = NULL;
#endif
}

const char *hil_board_platform(void) { return HIL_PLATFORM; }

uint32_t hil_board_clock_hz(void) { return HIL_CLOCK_HZ; }

/* The arch's fault hook: the fault as a FAULT frame on the server's link. */
static void send_fault(void *ctx, const arch_fault *f)
{
    hil_fault frame;
    frame.kind = f->kind;
    frame.pc = f->pc;
    frame.lr = f->lr;
    frame.cfsr = f->cfsr;
    frame.hfsr = f->hfsr;
    frame.mmfar = f->mmfar;
    frame.bfar = f->bfar;
    frame.sp = f->sp;
    hil_send_fault((const hil_port *)ctx, &frame);
}

void hil_board_report_faults(const hil_instance *h)
{
    arch_fault_set_hook(send_fault, (void *)(uintptr_t)hil_port_of(h));
}
