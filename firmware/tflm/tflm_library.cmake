# hil_add_tflm_library(NAME): a static library of a TFLM source tree
# (TFLM_DIR, made by TFLM's create_tflm_tree.py) for the platform's core,
# compiled as TFLM's own project_generation Makefile does. Shared by
# tflm.cmake (in the runner's build) and lib/CMakeLists.txt (the library
# alone, which `hil build` caches across runner builds).
#   TFLM_DIR, HIL_CPU_FLAGS, HIL_TOOLCHAIN_C_FLAGS, HIL_TFLM_CMSIS_NN
set(HIL_TFLM_CXX_FLAGS -std=c++17 -fno-rtti -fno-exceptions -fno-threadsafe-statics -fno-unwind-tables)

function(hil_add_tflm_library name)
    if(NOT EXISTS ${TFLM_DIR}/tensorflow/lite/micro/micro_interpreter.h)
        message(FATAL_ERROR "TFLM_DIR=${TFLM_DIR} is not a TFLM source tree")
    endif()
    file(GLOB_RECURSE sources CONFIGURE_DEPENDS
         ${TFLM_DIR}/tensorflow/*.cc ${TFLM_DIR}/tensorflow/*.c
         ${TFLM_DIR}/signal/*.cc ${TFLM_DIR}/signal/*.c)
    list(FILTER sources EXCLUDE REGEX "_test\\.cc$|/examples/|/benchmarks/|/python/|/integration_tests/|/tools/")
    set(includes
        ${TFLM_DIR}
        ${TFLM_DIR}/third_party/gemmlowp
        ${TFLM_DIR}/third_party/flatbuffers/include
        ${TFLM_DIR}/third_party/kissfft
        ${TFLM_DIR}/third_party/kissfft/tools
        ${TFLM_DIR}/third_party/ruy)
    set(defines TF_LITE_STATIC_MEMORY)
    if(EXISTS ${TFLM_DIR}/third_party/eyalroz_printf)
        list(APPEND includes ${TFLM_DIR}/third_party)
    endif()
    if(HIL_TFLM_CMSIS_NN)
        file(GLOB_RECURSE cmsis_nn CONFIGURE_DEPENDS ${TFLM_DIR}/third_party/cmsis_nn/Source/*.c)
        list(APPEND sources ${cmsis_nn})
        list(APPEND includes
             ${TFLM_DIR}/third_party/cmsis
             ${TFLM_DIR}/third_party/cmsis_nn
             ${TFLM_DIR}/third_party/cmsis_nn/Include
             ${TFLM_DIR}/third_party/cmsis/CMSIS/Core/Include)
        list(APPEND defines CMSIS_NN)
    endif()
    add_library(${name} STATIC ${sources})
    target_include_directories(${name} PUBLIC ${includes})
    target_compile_definitions(${name} PUBLIC ${defines})
    target_compile_options(${name} PRIVATE
        ${HIL_CPU_FLAGS} ${HIL_TOOLCHAIN_C_FLAGS} -O2 -ffunction-sections -fdata-sections -fmessage-length=0
        # no fused multiply-add: float kernels must round like the host reference's
        -ffp-contract=off
        $<$<COMPILE_LANGUAGE:CXX>:${HIL_TFLM_CXX_FLAGS}>
        $<$<COMPILE_LANGUAGE:C>:-std=c17>)
    # what an image linking this library needs to know (lib/CMakeLists.txt writes it down)
    set(HIL_TFLM_INCLUDES ${includes} PARENT_SCOPE)
    set(HIL_TFLM_DEFINES ${defines} PARENT_SCOPE)
endfunction()
