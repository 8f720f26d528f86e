# QEMU RISC-V `virt` board layer (NS16550A UART, minstret, semihosting).
set(HIL_BOARD_SOURCES
    ${CMAKE_CURRENT_LIST_DIR}/board.c
    ${HIL_FW_DIR}/arch/riscv/startup.S
    ${HIL_FW_DIR}/arch/riscv/startup.c
    ${HIL_FW_DIR}/arch/riscv/trap.c
    ${HIL_FW_DIR}/arch/riscv/counter.c
    ${HIL_FW_DIR}/arch/riscv/semihost.c
    ${HIL_FW_DIR}/arch/semihost_file.c)
set(HIL_BOARD_LINKER_TEMPLATE ${HIL_FW_DIR}/arch/riscv/link.ld.in)
