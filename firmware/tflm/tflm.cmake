# TFLM for hil's runner (HIL_ENGINE=tflm), included by ../CMakeLists.txt:
#
#   TFLM_DIR            a TFLM source tree made by TFLM's create_tflm_tree.py
#                       (tensorflow/, signal/, third_party/; docs/build.md)
#   HIL_TFLM_RESOLVER   the op resolver source `hil build --engine tflm` generates
#   HIL_TFLM_CMSIS_NN   ON: the tree's CMSIS-NN kernels (a tree generated with
#                       OPTIMIZED_KERNEL_DIR=cmsis_nn)
#   HIL_TFLM_LIBRARY    optional: TFLM already built by lib/CMakeLists.txt
#                       (its libtflm.a; tflm-usage.cmake beside it)
foreach(required TFLM_DIR HIL_TFLM_RESOLVER)
    if("${${required}}" STREQUAL "")
        message(FATAL_ERROR "HIL_ENGINE=tflm needs ${required}: configure with "
                            "`hil build --engine tflm --tflm-dir DIR [--model m.tflite]`")
    endif()
endforeach()
option(HIL_TFLM_CMSIS_NN "TFLM's CMSIS-NN kernels" OFF)
set(HIL_TFLM_LIBRARY "" CACHE FILEPATH "a prebuilt libtflm.a (lib/CMakeLists.txt)")

enable_language(CXX)
include(${CMAKE_CURRENT_LIST_DIR}/tflm_library.cmake)
if(HIL_TFLM_LIBRARY)
    get_filename_component(lib_dir ${HIL_TFLM_LIBRARY} DIRECTORY)
    include(${lib_dir}/tflm-usage.cmake)
    add_library(tflm STATIC IMPORTED)
    set_target_properties(tflm PROPERTIES IMPORTED_LOCATION ${HIL_TFLM_LIBRARY})
    target_include_directories(tflm INTERFACE ${HIL_TFLM_INCLUDES})
    target_compile_definitions(tflm INTERFACE ${HIL_TFLM_DEFINES})
else()
    hil_add_tflm_library(tflm)
endif()

set(HIL_ENGINE_SOURCES
    ${HIL_FW_DIR}/tflm/hil_tflm.cc ${HIL_TFLM_RESOLVER} ${HIL_FW_DIR}/tflm/runner_glue.c
    ${HIL_FW_DIR}/api/hil_serve.c)

function(hil_tflm_link target)
    target_link_libraries(${target} PRIVATE tflm)
    target_include_directories(${target} PRIVATE ${HIL_FW_DIR}/tflm)
    target_compile_options(${target} PRIVATE $<$<COMPILE_LANGUAGE:CXX>:${HIL_TFLM_CXX_FLAGS} -fno-use-cxa-atexit>)
    set_target_properties(${target} PROPERTIES LINKER_LANGUAGE CXX)
endfunction()
