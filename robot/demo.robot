*** Settings ***
Documentation     The bundled demo model (an int8 gesture classifier) on a target:
...               bit-exact with the TensorFlow Lite Micro reference on its labelled
...               test set and on random vectors, accurate, and within its count,
...               energy and memory budgets.
...
...               The same suite runs on any target: ``--variable PLATFORM:NAME``
...               (a platform name or .toml path), plus ``PORT``, ``PROBE`` and
...               ``FIRMWARE`` (a runner ELF built for the board) for a board.
...               Platforms without a power table: ``--exclude energy``.
Library           harness.robot_library.HilLibrary
Suite Setup       Start Target And Load The Demo Model
Force Tags        demo

*** Variables ***
${PLATFORM}       mps2-an386
${PORT}           ${NONE}
${PROBE}          ${NONE}
${FIRMWARE}       ${NONE}
${MODEL}          ${CURDIR}/../models/demo/gesture.tflite
${TEST_SET}       ${CURDIR}/../models/demo/gesture_test.npz

*** Test Cases ***
Labelled Test Set Is Bit Exact And Accurate
    ${run}=    Stream Vectors    file=${TEST_SET}    limit=40
    Outputs Should Match Reference
    Accuracy Should Be At Least    0.9
    Should Be Equal As Integers    ${run.passed}    40

Random Vectors Are Bit Exact
    Stream Vectors    count=10    seed=1
    Outputs Should Match Reference

Count Per Inference Is Within Budget
    ${run}=    Stream Vectors    count=3    seed=2
    Count Should Be Below    3000000
    Should Be True    ${run.max_count} > 0

Energy Per Inference Is Within Budget
    [Tags]    energy
    Stream Vectors    count=3    seed=3
    Energy Should Be Below    1000

Memory Is Within Budget
    ${memory}=    Memory Should Be Below    arena=8192    ram=1048576
    Should Be True    ${memory.device.arena_high_water} > 0

*** Keywords ***
Start Target And Load The Demo Model
    Start Target    ${PLATFORM}    firmware=${FIRMWARE}    port=${PORT}    probe=${PROBE}
    Load Model    ${MODEL}
