/*
 * The C API over one of hil's own board layers (../boards/<board>/, chosen
 * by the platform file): the board's UART as the transport, its counter,
 * semihosting (emulators), reboot and painted stack as the board hooks.
 * For firmware that uses hil's startup code and linker script (CMake:
 * hil_platform_firmware() in hil.cmake); firmware with its own BSP fills
 * hil_transport and hil_board itself.
 */
#ifndef HIL_BOARD_API_H
#define HIL_BOARD_API_H

#include "hil.h"

#ifdef __cplusplus
extern "C" {
#endif

/* Initialise the board (UART, counter) and fill the transport and hooks. */
void hil_board_setup(hil_transport *transport, hil_board *board);

/* The platform name and clock the firmware was configured for
 * (HIL_PLATFORM, HIL_CLOCK_HZ), for hil_config. */
const char *hil_board_platform(void);
uint32_t hil_board_clock_hz(void);

/* Report faults (FAULT frames: PC, LR, CFSR) through this server's link. */
void hil_board_report_faults(const hil_instance *h);

#ifdef __cplusplus
}
#endif
#endif
