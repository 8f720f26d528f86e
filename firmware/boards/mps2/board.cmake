# MPS2/MPS3 family board layer (CMSDK UART, SysTick, semihosting).
include(${HIL_FW_DIR}/arch/cortex-m/cortex_m.cmake)
set(HIL_BOARD_SOURCES
    ${CMAKE_CURRENT_LIST_DIR}/board.c
    ${HIL_CORTEX_M_SOURCES}
    ${HIL_CORTEX_M_SEMIHOST_SOURCES})
set(HIL_BOARD_LINKER_TEMPLATE ${CMAKE_CURRENT_LIST_DIR}/link.ld.in)
