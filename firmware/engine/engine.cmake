# Sources of the built-in engine, for inclusion by device and host builds:
#   include(path/to/firmware/engine/engine.cmake)
#   target_sources(app PRIVATE ${HIL_ENGINE_SOURCES})
#   target_include_directories(app PRIVATE ${HIL_ENGINE_DIR})
# Needs the C math library (frexp, round, roundf, floor).
# Build with -ffp-contract=off so no multiply-add is fused (bit-exactness).
set(HIL_ENGINE_DIR ${CMAKE_CURRENT_LIST_DIR})
set(HIL_ENGINE_SOURCES
    ${HIL_ENGINE_DIR}/engine.c
    ${HIL_ENGINE_DIR}/op_names.c
    ${HIL_ENGINE_DIR}/flatbuf.c
    ${HIL_ENGINE_DIR}/planner.c
    ${HIL_ENGINE_DIR}/quant.c
    ${HIL_ENGINE_DIR}/kernels/conv.c
    ${HIL_ENGINE_DIR}/kernels/fully_connected.c
    ${HIL_ENGINE_DIR}/kernels/pooling.c
    ${HIL_ENGINE_DIR}/kernels/softmax.c
    ${HIL_ENGINE_DIR}/kernels/quantize.c
    ${HIL_ENGINE_DIR}/kernels/reshape.c
)
