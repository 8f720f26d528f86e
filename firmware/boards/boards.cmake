# The board layer for the platform `hil build` configured (the HIL_* cache
# variables), shared by the built-in runner (../CMakeLists.txt) and
# hil_platform_firmware() (../api/hil.cmake).
include_guard(GLOBAL)

# Include boards/${HIL_BOARD}/board.cmake (HIL_BOARD_SOURCES,
# HIL_BOARD_LINKER_TEMPLATE) and default the flags that belong to the
# toolchain rather than the core (instruction set mode, C library specs). A
# toolchain file (cmake/*.cmake) may set these; the defaults are
# arm-none-eabi's: Thumb code, newlib-nano without syscalls.
macro(hil_include_board_layer fw_dir)
    set(HIL_FW_DIR ${fw_dir})
    set(hil_board_dir ${fw_dir}/boards/${HIL_BOARD})
    if(NOT EXISTS ${hil_board_dir}/board.cmake)
        message(FATAL_ERROR "hil has no board layer '${HIL_BOARD}' (expected ${hil_board_dir}/board.cmake)")
    endif()
    include(${hil_board_dir}/board.cmake)
    if(NOT DEFINED HIL_TOOLCHAIN_C_FLAGS)
        set(HIL_TOOLCHAIN_C_FLAGS -mthumb)
    endif()
    if(NOT DEFINED HIL_TOOLCHAIN_LINK_FLAGS)
        set(HIL_TOOLCHAIN_LINK_FLAGS -mthumb --specs=nano.specs --specs=nosys.specs)
    endif()
endmacro()

# The platform's core flags, definitions and link options for the image
# `target`, linked with the script `script` (configured from
# HIL_BOARD_LINKER_TEMPLATE) and writing its map to `map`.
function(hil_board_image target script map)
    target_compile_options(${target} PRIVATE ${HIL_CPU_FLAGS} ${HIL_TOOLCHAIN_C_FLAGS}
                           -ffunction-sections -fdata-sections)
    target_compile_definitions(${target} PRIVATE
        HIL_PLATFORM="${HIL_PLATFORM}"
        HIL_CLOCK_HZ=${HIL_CLOCK_HZ}u
        HIL_UART_BASE=${HIL_UART_BASE}u
        HIL_SEMIHOSTING=$<BOOL:${HIL_SEMIHOSTING}>
        HIL_ARENA_SIZE=${HIL_ARENA_SIZE}u
        HIL_MODEL_CAPACITY=${HIL_MODEL_CAPACITY}u
        ${HIL_EXTRA_DEFINES})
    target_link_options(${target} PRIVATE
        ${HIL_CPU_FLAGS} ${HIL_TOOLCHAIN_LINK_FLAGS} -T${script} -nostartfiles
        -Wl,--gc-sections -Wl,--build-id=sha1
        -Wl,-Map=${map} -Wl,--print-memory-usage)
    set_property(TARGET ${target} APPEND PROPERTY LINK_DEPENDS ${script})
    set_target_properties(${target} PROPERTIES SUFFIX ".elf")
endfunction()
