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
    ${HIL_ENGINE_DIR}/op_names.c
    ${HIL_ENGINE_DIR}/flatbuf.c
    ${HIL_ENGINE_DIR}/planner.c
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
