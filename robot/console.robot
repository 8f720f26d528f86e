*** Settings ***
Documentation     Console mode on QEMU: firmware that does not speak the hil protocol
...               (the console test firmware, firmware/tests/console/), checked by
...               the lines it prints on its UART or through semihosting, and by its
...               exit status.
Library           harness.robot_library.HilLibrary
Library           resources/hil_test_support.py
Suite Setup       Build The Console Firmware
Force Tags        console

*** Test Cases ***
UART Console Prints Its Results
    Start Target    mps2-an386    firmware=${UART_ELF}    console=uart    fail=ASSERT|HardFault|UsageFault
    Wait For Line    Booting console test firmware
    ${m}=    Wait For Line    inference took (?P<ticks>\\d+) ticks, checksum (?P<checksum>0x[0-9a-f]+)
    Should Be True    ${m.ticks} > 0
    ${m}=    Wait For Line    ^accuracy: (?P<accuracy>[0-9.]+) on (?P<samples>\\d+) samples$
    Should Be Equal As Numbers    ${m.accuracy}    0.9375
    Should Be Equal As Integers    ${m.samples}    16
    ${line}=    Wait For Line    PROJECT EXECUTION SUCCESSFUL
    Should Be Equal    ${line}    PROJECT EXECUTION SUCCESSFUL
    Firmware Should Exit With    0

Semihosting Console And Exit Status
    Start Target    mps2-an386    firmware=${SEMIHOSTING_ELF}    console=semihosting
    Wait For Line    Booting
    Wait For Line    3 tests, 0 failures
    Firmware Should Exit With    3

*** Keywords ***
Build The Console Firmware
    ${elf}=    Build Console Firmware    uart
    Set Suite Variable    ${UART_ELF}    ${elf}
    ${elf}=    Build Console Firmware    semihosting    CONSOLE_SEMIHOSTING=1    CONSOLE_EXIT=3
    Set Suite Variable    ${SEMIHOSTING_ELF}    ${elf}
