# Sources of the built-in engine, for inclusion by device and host builds:
#   include(path/to/firmware/engine/engine.cmake)
#   target_sources(app PRIVATE ${HIL_ENGINE_SOURCES})
#   target_include_directories(app PRIVATE ${HIL_ENGINE_DIR})
# Needs the C math library (frexp, round, roundf, floor, ceilf) for
# functions that are exact on every C library; exp/tanh are in fmath.c.
# Build with -ffp-contract=off so no multiply-add is fused (bit-exactness).
set(HIL_ENGINE_DIR ${CMAKE_CURRENT_LIST_DIR})
set(HIL_ENGINE_SOURCES
    ${HIL_ENGINE_DIR}/engine.c
    ${HIL_ENGINE_DIR}/loader.c
    ${HIL_ENGINE_DIR}/graph.c
    ${HIL_ENGINE_DIR}/resource_vars.c
    ${HIL_ENGINE_DIR}/planner.c
    ${HIL_ENGINE_DIR}/invoke.c
    ${HIL_ENGINE_DIR}/kernel_table.c
    ${HIL_ENGINE_DIR}/params.c
    ${HIL_ENGINE_DIR}/errors.c
    ${HIL_ENGINE_DIR}/op_names.c
    ${HIL_ENGINE_DIR}/flatbuf.c
    ${HIL_ENGINE_DIR}/quant.c
    ${HIL_ENGINE_DIR}/fmath.c
    ${HIL_ENGINE_DIR}/kernels/activations.c
    ${HIL_ENGINE_DIR}/kernels/binary.c
    ${HIL_ENGINE_DIR}/kernels/concat_split.c
    ${HIL_ENGINE_DIR}/kernels/conv.c
    ${HIL_ENGINE_DIR}/kernels/fully_connected.c
    ${HIL_ENGINE_DIR}/kernels/pad.c
    ${HIL_ENGINE_DIR}/kernels/pooling.c
    ${HIL_ENGINE_DIR}/kernels/quantize.c
    ${HIL_ENGINE_DIR}/kernels/reduce.c
    ${HIL_ENGINE_DIR}/kernels/reshape.c
    ${HIL_ENGINE_DIR}/kernels/softmax.c
    ${HIL_ENGINE_DIR}/kernels/strided_slice.c
    ${HIL_ENGINE_DIR}/kernels/transpose.c
    ${HIL_ENGINE_DIR}/kernels/variables.c
)

# int8 kernel set, chosen per platform ([firmware] kernels in platforms/*.toml,
# HIL_KERNELS=reference in the environment of `hil` forces the portable C):
#   reference  portable C (every core; the default)
#   dsp        kernels/s8_dsp.c for the Armv7E-M / Armv8-M DSP extension
#              (Cortex-M4, M7, M33): SMLAD dot products, im2col convolution
#   mve        the same file with its Helium (MVE) dot products and depthwise
#              loop (Cortex-M55)
# The reference kernels stay in the image and run whatever the optimised
# ones do not take. The definition is a source property, so every target of
# the including directory gets the same set (the host build compiles both
# sets itself: firmware/host/CMakeLists.txt).
set(HIL_KERNELS reference CACHE STRING "int8 kernels: reference, dsp or mve")
set_property(CACHE HIL_KERNELS PROPERTY STRINGS reference dsp mve)
set(HIL_ENGINE_DSP_SOURCES ${HIL_ENGINE_DIR}/kernels/s8_dsp.c)
set(HIL_ENGINE_DSP_HOOKED
    ${HIL_ENGINE_DIR}/kernels/binary.c
    ${HIL_ENGINE_DIR}/kernels/conv.c
    ${HIL_ENGINE_DIR}/kernels/fully_connected.c
    ${HIL_ENGINE_DIR}/kernels/pooling.c)
set(HIL_ENGINE_DEFINES "") # for targets in other directories (firmware/api/hil.cmake)
if(HIL_KERNELS STREQUAL "dsp" OR HIL_KERNELS STREQUAL "mve")
    list(APPEND HIL_ENGINE_SOURCES ${HIL_ENGINE_DSP_SOURCES})
    set(HIL_ENGINE_DEFINES HIL_KERNELS_DSP=1)
    if(HIL_KERNELS STREQUAL "mve")
        list(APPEND HIL_ENGINE_DEFINES HIL_KERNELS_MVE=1)
    endif()
    set_property(SOURCE ${HIL_ENGINE_DSP_HOOKED} ${HIL_ENGINE_DSP_SOURCES}
                 APPEND PROPERTY COMPILE_DEFINITIONS ${HIL_ENGINE_DEFINES})
elseif(NOT HIL_KERNELS STREQUAL "reference")
    message(FATAL_ERROR "HIL_KERNELS=${HIL_KERNELS}: use reference, dsp or mve "
                        "([firmware] kernels in the platform file)")
endif()
