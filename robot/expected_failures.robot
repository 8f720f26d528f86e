*** Settings ***
Documentation     Checks that must fail, each for its own reason: a fault in the
...               firmware, a count budget that is too small, and a console line that
...               never comes. The tests tagged ``must-fail`` fail on purpose
...               (tests/test_robot.py expects exactly these failures and their
...               messages); ``robot --exclude must-fail robot/`` leaves them out.
...               Between them, a test checks that the faulted test's emulator did
...               not outlive it.
Library           harness.robot_library.HilLibrary
Library           resources/hil_test_support.py

*** Variables ***
${MODEL}          ${CURDIR}/../models/demo/gesture.tflite

*** Test Cases ***
Fault During An Invoke Fails The Outputs Check
    [Documentation]    Runner firmware built to take a UsageFault on its third invoke.
    [Tags]    must-fail
    Start Target    mps2-an386    defines=HIL_FAULT_ON_INVOKE=3
    Load Model    ${MODEL}
    Stream Vectors    count=6    seed=1
    Outputs Should Match Reference

No Emulator Outlives A Failed Test
    No Emulator Should Be Running

Count Budget Too Small Fails
    [Tags]    must-fail
    Start Target    mps2-an386
    Load Model    ${MODEL}
    Stream Vectors    count=2    seed=1
    Count Should Be Below    1000

Console Line That Never Comes Times Out
    [Tags]    must-fail
    ${elf}=    Build Console Firmware    hang    CONSOLE_SCENARIO=2
    Start Target    mps2-an386    firmware=${elf}    console=uart
    Wait For Line    Booting
    Wait For Line    PROJECT EXECUTION SUCCESSFUL    timeout=2s
