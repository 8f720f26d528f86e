# Cross toolchain: Debian's gcc-riscv64-unknown-elf (multilib, including
# rv32imac/ilp32) with picolibc-riscv64-unknown-elf as the C library.
set(CMAKE_SYSTEM_NAME Generic)
set(CMAKE_SYSTEM_PROCESSOR riscv)
set(CMAKE_C_COMPILER riscv64-unknown-elf-gcc)
set(CMAKE_ASM_COMPILER riscv64-unknown-elf-gcc)
set(CMAKE_CXX_COMPILER riscv64-unknown-elf-g++)
set(CMAKE_OBJCOPY riscv64-unknown-elf-objcopy CACHE FILEPATH "")
set(CMAKE_SIZE riscv64-unknown-elf-size CACHE FILEPATH "")
# A bare-metal compiler cannot link a test program without a linker script.
set(CMAKE_TRY_COMPILE_TARGET_TYPE STATIC_LIBRARY)
set(CMAKE_FIND_ROOT_PATH_MODE_PROGRAM NEVER)
set(CMAKE_FIND_ROOT_PATH_MODE_LIBRARY ONLY)
set(CMAKE_FIND_ROOT_PATH_MODE_INCLUDE ONLY)
# Flags firmware/CMakeLists.txt adds for this toolchain (the core's flags,
# -march/-mabi, come from the platform file): picolibc's headers and libraries.
set(HIL_TOOLCHAIN_C_FLAGS --specs=picolibc.specs)
set(HIL_TOOLCHAIN_LINK_FLAGS --specs=picolibc.specs)
