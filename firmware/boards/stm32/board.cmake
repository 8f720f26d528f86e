# STM32 board layer: USART (both register layouts, chosen by the platform
# file), DWT or SysTick counter, optional WFE idle. For the parts Renode
# models (renode-stm32f4-discovery, renode-stm32f746) and boards of those
# families. No semihosting: bulk data comes inline through the USART.
# The Cortex-M linker script template is the MPS2 one: it is generic.
include(${HIL_FW_DIR}/arch/cortex-m/cortex_m.cmake)
set(HIL_BOARD_SOURCES
    ${CMAKE_CURRENT_LIST_DIR}/board.c
    ${HIL_CORTEX_M_SOURCES})
set(HIL_BOARD_LINKER_TEMPLATE ${HIL_FW_DIR}/boards/mps2/link.ld.in)
