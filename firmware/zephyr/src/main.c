/*
 * hil's runner on Zephyr: serves the hil protocol with the built-in engine
 * on the UART chosen as `hil,uart` in the devicetree (else the console's),
 * through the same C API a user's Zephyr application uses (hil_zephyr.h).
 * The model buffer and arena sizes are Kconfig-free on purpose: change them
 * here or with -DHIL_MODEL_CAPACITY=... -DHIL_ARENA_SIZE=... (hil build -D).
 */
#include <zephyr/device.h>
#include <zephyr/devicetree.h>
#include <zephyr/kernel.h>

#include "hil.h"
#include "hil_builtin.h"
#include "hil_zephyr.h"

#ifndef HIL_MODEL_CAPACITY
#define HIL_MODEL_CAPACITY (256u * 1024u)
#endif
#ifndef HIL_ARENA_SIZE
#define HIL_ARENA_SIZE (128u * 1024u)
#endif

#if DT_HAS_CHOSEN(hil_uart)
#define HIL_UART_NODE DT_CHOSEN(hil_uart)
#else
#define HIL_UART_NODE DT_CHOSEN(zephyr_console)
#endif

static uint8_t model_buffer[HIL_MODEL_CAPACITY] __aligned(16);
static uint8_t arena[HIL_ARENA_SIZE] __aligned(16);

static hil_builtin_engine engine;
static hil_ops ops;
static hil_transport uart;
static hil_board board;
static hil_instance hil;

static uint64_t counter(void) { return board.counter ? board.counter(board.ctx) : 0; }

int main(void)
{
    if (hil_zephyr_uart_transport(&uart, DEVICE_DT_GET(HIL_UART_NODE)) != 0)
        return -1;
    hil_zephyr_board(&board);
    hil_builtin_ops(&ops, &engine, arena, sizeof arena, board.counter ? counter : NULL);
    ops.engine = "builtin-zephyr";

    const hil_config cfg = {
        .platform = hil_zephyr_platform(),
        .clock_hz = hil_zephyr_clock_hz(),
        .model_buffer = model_buffer,
        .model_capacity = sizeof model_buffer,
        .arena_size = sizeof arena,
        .board = &board,
    };
    if (hil_init(&hil, &ops, &uart, &cfg) != HIL_API_OK)
        return -1;
    for (;;) {
        if (hil_poll(&hil) == 0)
            board.idle(board.ctx);
    }
    return 0;
}
