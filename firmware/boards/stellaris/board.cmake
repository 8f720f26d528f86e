# TI Stellaris LM3S board layer (PL011 UART, SysTick/DWT, semihosting).
# The Cortex-M linker script template is the MPS2 one: it is generic.
set(HIL_BOARD_SOURCES
    ${CMAKE_CURRENT_LIST_DIR}/board.c
    ${HIL_FW_DIR}/arch/cortex-m/startup.c
    ${HIL_FW_DIR}/arch/cortex-m/fault.c
    ${HIL_FW_DIR}/arch/cortex-m/counter.c
    ${HIL_FW_DIR}/arch/cortex-m/semihost.c)
set(HIL_BOARD_LINKER_TEMPLATE ${HIL_FW_DIR}/boards/mps2/link.ld.in)
