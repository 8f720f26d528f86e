# find_package(hil) entry point: `hil build` passes -Dhil_DIR=<hil>/firmware/api.
include(${CMAKE_CURRENT_LIST_DIR}/hil.cmake)
set(hil_FOUND TRUE)
