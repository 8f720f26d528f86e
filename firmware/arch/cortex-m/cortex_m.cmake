# The Cortex-M sources every Cortex-M board layer builds: startup and vector
# table, fault reporting, the counter and the board.h functions they share
# (board_common.c). Boards whose emulator serves semihosting add
# HIL_CORTEX_M_SEMIHOST_SOURCES.
set(HIL_CORTEX_M_SOURCES
    ${HIL_FW_DIR}/arch/cortex-m/startup.c
    ${HIL_FW_DIR}/arch/cortex-m/fault.c
    ${HIL_FW_DIR}/arch/cortex-m/counter.c
    ${HIL_FW_DIR}/arch/cortex-m/board_common.c)
set(HIL_CORTEX_M_SEMIHOST_SOURCES
    ${HIL_FW_DIR}/arch/cortex-m/semihost.c
    ${HIL_FW_DIR}/arch/semihost_file.c)
