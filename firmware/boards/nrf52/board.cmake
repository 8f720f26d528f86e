# Nordic nRF52 board layer: UARTE (EasyDMA, polled), DWT or SysTick
# counter, optional WFE idle. For Renode's nrf52840 (renode-nrf52840) and
# the nRF52840 DK. No semihosting: bulk data comes inline through the UART.
# The Cortex-M linker script template is the MPS2 one: it is generic.
include(${HIL_FW_DIR}/arch/cortex-m/cortex_m.cmake)
set(HIL_BOARD_SOURCES
    ${CMAKE_CURRENT_LIST_DIR}/board.c
    ${HIL_CORTEX_M_SOURCES})
set(HIL_BOARD_LINKER_TEMPLATE ${HIL_FW_DIR}/boards/mps2/link.ld.in)
