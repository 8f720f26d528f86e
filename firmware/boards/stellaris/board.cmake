# TI Stellaris LM3S board layer (PL011 UART, SysTick/DWT, semihosting).
# The Cortex-M linker script template is the MPS2 one: it is generic.
include(${HIL_FW_DIR}/arch/cortex-m/cortex_m.cmake)
set(HIL_BOARD_SOURCES
    ${CMAKE_CURRENT_LIST_DIR}/board.c
    ${HIL_CORTEX_M_SOURCES}
    ${HIL_CORTEX_M_SEMIHOST_SOURCES})
set(HIL_BOARD_LINKER_TEMPLATE ${HIL_FW_DIR}/boards/mps2/link.ld.in)
