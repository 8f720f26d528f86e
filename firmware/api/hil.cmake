# hil for your own CMake firmware project.
#
#   find_package(hil REQUIRED)        # `hil build` passes -Dhil_DIR=<hil>/firmware/api
#   # or: include(<hil>/firmware/api/hil.cmake)
#
#   add_executable(app main.c)
#   target_link_libraries(app PRIVATE hil::api)             # protocol server + C API (hil.h)
#   target_link_libraries(app PRIVATE hil::engine_builtin)  # optional: hil's own engine (hil_builtin.h)
#   hil_platform_firmware(app)   # optional: hil's startup, board layer and linker
#                                # script for the platform `hil build` configured
#
# The libraries are INTERFACE libraries: their sources compile as part of
# your target, with your target's flags (CPU, float ABI, optimisation).
include_guard(GLOBAL)
cmake_minimum_required(VERSION 3.20)

get_filename_component(HIL_FIRMWARE_DIR "${CMAKE_CURRENT_LIST_DIR}/.." ABSOLUTE)
set(HIL_FIRMWARE_DIR ${HIL_FIRMWARE_DIR} CACHE INTERNAL "hil's firmware/ directory")

# --- hil::api: the protocol server and the C API ---------------------------
add_library(hil_api INTERFACE)
target_sources(hil_api INTERFACE
    ${HIL_FIRMWARE_DIR}/api/hil_serve.c
    ${HIL_FIRMWARE_DIR}/protocol/proto.c
    ${HIL_FIRMWARE_DIR}/protocol/cobs.c
    ${HIL_FIRMWARE_DIR}/protocol/crc32.c)
target_include_directories(hil_api INTERFACE ${HIL_FIRMWARE_DIR}/api ${HIL_FIRMWARE_DIR}/protocol)
add_library(hil::api ALIAS hil_api)

# --- hil::engine_builtin: hil's int8/float engine as a hil_ops -------------
include(${HIL_FIRMWARE_DIR}/engine/engine.cmake)
add_library(hil_engine_builtin INTERFACE)
target_sources(hil_engine_builtin INTERFACE ${HIL_ENGINE_SOURCES} ${HIL_FIRMWARE_DIR}/app/builtin_ops.c)
target_include_directories(hil_engine_builtin INTERFACE ${HIL_ENGINE_DIR})
target_compile_definitions(hil_engine_builtin INTERFACE ${HIL_ENGINE_DEFINES}) # the kernel set
# float results must round like the reference's: no fused multiply-add
target_compile_options(hil_engine_builtin INTERFACE $<$<COMPILE_LANGUAGE:C>:-ffp-contract=off>)
target_link_libraries(hil_engine_builtin INTERFACE hil_api m)
add_library(hil::engine_builtin ALIAS hil_engine_builtin)

include(${HIL_FIRMWARE_DIR}/boards/boards.cmake)

# --- hil_platform_firmware(target): hil's board layer for the platform ------
# Uses the HIL_* cache variables `hil build` sets from the platform file
# (HIL_BOARD, HIL_CPU_FLAGS, HIL_UART_BASE, memory regions, ...): startup
# code, vector table, fault reporting, the UART, the counter, semihosting,
# and the linker script. Adds hil_board.h (hil_board_setup()).
function(hil_platform_firmware target)
    foreach(required HIL_BOARD HIL_PLATFORM HIL_CPU_FLAGS HIL_UART_BASE HIL_CODE_ORIGIN
                     HIL_CODE_LENGTH HIL_RAM_ORIGIN HIL_RAM_LENGTH HIL_BULK_ORIGIN HIL_BULK_LENGTH)
        if("${${required}}" STREQUAL "")
            message(FATAL_ERROR "hil_platform_firmware(${target}): ${required} is not set; "
                                "configure with `hil build --platform NAME <this project>` "
                                "(or pass -D${required}=... yourself)")
        endif()
    endforeach()
    if("${HIL_STACK_SIZE}" STREQUAL "")
        set(HIL_STACK_SIZE 0x4000)
    endif()
    hil_include_board_layer(${HIL_FIRMWARE_DIR})
    set(script ${CMAKE_CURRENT_BINARY_DIR}/${target}.ld)
    configure_file(${HIL_BOARD_LINKER_TEMPLATE} ${script} @ONLY)

    target_sources(${target} PRIVATE ${HIL_BOARD_SOURCES} ${HIL_FIRMWARE_DIR}/api/hil_board.c)
    target_include_directories(${target} PRIVATE ${HIL_FIRMWARE_DIR}/api)
    hil_board_image(${target} ${script} $<TARGET_FILE:${target}>.map)
    # C++ statics' destructors through atexit: hil's startup links without
    # crtbegin (no __dso_handle)
    target_compile_options(${target} PRIVATE $<$<COMPILE_LANGUAGE:CXX>:-fno-use-cxa-atexit>)
endfunction()
