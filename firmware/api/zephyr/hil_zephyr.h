/*
 * The hil C API on Zephyr (CONFIG_HIL, CONFIG_HIL_ZEPHYR_UART): a transport
 * on a Zephyr UART and board hooks from the kernel.
 *
 *     #include <hil_zephyr.h>
 *
 *     const struct device *uart = DEVICE_DT_GET(DT_CHOSEN(zephyr_console));
 *     hil_transport t;
 *     hil_board b;
 *     hil_zephyr_uart_transport(&t, uart);
 *     hil_zephyr_board(&b);
 *     hil_config cfg = {.platform = hil_zephyr_platform(), .model_buffer = buf,
 *                       .model_capacity = sizeof buf, .board = &b};
 *     hil_serve(&ops, &t, &cfg);
 *
 * The UART must carry nothing else: disable the console and logging on it
 * (CONFIG_UART_CONSOLE=n, CONFIG_LOG=n, CONFIG_BOOT_BANNER=n), or give hil
 * another UART.
 */
#ifndef HIL_ZEPHYR_H
#define HIL_ZEPHYR_H

#include <zephyr/device.h>

#include "hil.h"

#ifdef __cplusplus
extern "C" {
#endif

/* Receive through the UART's interrupt into a ring buffer
 * (CONFIG_UART_INTERRUPT_DRIVEN) or by polling; send by polling. Returns 0,
 * or -ENODEV when the UART is not ready. One UART per application. */
int hil_zephyr_uart_transport(hil_transport *t, const struct device *uart);

/* Counter (DWT CYCCNT where it runs, else the kernel's hardware cycle
 * counter, or minstret on RISC-V), semihosting reads (CONFIG_SEMIHOST),
 * reboot (CONFIG_REBOOT), the calling thread's stack usage
 * (CONFIG_INIT_STACKS + CONFIG_THREAD_STACK_INFO), and an idle hook that
 * sleeps until the UART receives. */
void hil_zephyr_board(hil_board *b);

/* CONFIG_HIL_PLATFORM, else what `hil build` passed, else the board. */
const char *hil_zephyr_platform(void);

/* The hardware cycle clock in Hz (for hil_config.clock_hz). */
uint32_t hil_zephyr_clock_hz(void);

#ifdef __cplusplus
}
#endif
#endif
