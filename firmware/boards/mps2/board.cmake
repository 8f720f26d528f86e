# MPS2/MPS3 family board layer (CMSDK UART, SysTick, semihosting).
set(HIL_BOARD_SOURCES
    ${CMAKE_CURRENT_LIST_DIR}/board.c
    ${HIL_FW_DIR}/arch/cortex-m/startup.c
    ${HIL_FW_DIR}/arch/cortex-m/fault.c
    ${HIL_FW_DIR}/arch/cortex-m/counter.c
    ${HIL_FW_DIR}/arch/cortex-m/semihost.c)
set(HIL_BOARD_LINKER_TEMPLATE ${CMAKE_CURRENT_LIST_DIR}/link.ld.in)
