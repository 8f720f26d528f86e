/*
 * Test firmware for `hil console` (tests/test_console*.py): a program that
 * does not speak the hil protocol, only prints lines, as upstream TFLM
 * examples, Zephyr samples and ztest binaries do, then ends with Arm
 * semihosting SYS_EXIT_EXTENDED (or SYS_EXIT) like TFLM's tests linked with
 * rdimon.
 *
 * Built straight with arm-none-eabi-gcc for the MPS2 machines (see
 * tests/console_fw.py), on the shared pieces: arch/cortex-m/startup.c (reset,
 * vector table), arch/cortex-m/counter.c (SysTick) and the linker script
 * template of boards/mps2.
 *
 *   CONSOLE_SEMIHOSTING=1   print through SYS_WRITE0 instead of the CMSDK UART
 *   CONSOLE_SCENARIO        0 pass, 1 an assertion fails, 2 hang, 3 HardFault,
 *                           4 a PASS line that also reports a failure, then a
 *                           failure after the last line a test would expect
 *   CONSOLE_EXIT            the exit status passed to SYS_EXIT_EXTENDED (default 0)
 *   CONSOLE_PLAIN_EXIT=1    end with SYS_EXIT ADP_Stopped_ApplicationExit instead
 */
#include <stdint.h>

#include "../../arch/cortex-m/cortex_m.h"

#ifndef HIL_UART_BASE
#define HIL_UART_BASE 0x40004000u
#endif
#ifndef CONSOLE_SCENARIO
#define CONSOLE_SCENARIO 0
#endif
#ifndef CONSOLE_EXIT
#define CONSOLE_EXIT 0
#endif

#define UART_DATA REG32(HIL_UART_BASE + 0x00u)
#define UART_STATE REG32(HIL_UART_BASE + 0x04u)
#define UART_CTRL REG32(HIL_UART_BASE + 0x08u)
#define UART_BAUDDIV REG32(HIL_UART_BASE + 0x10u)

enum { SYS_WRITE0 = 0x04, SYS_EXIT = 0x18, SYS_EXIT_EXTENDED = 0x20 };
#define ADP_STOPPED_APPLICATION_EXIT 0x20026u

static int32_t semihost(uint32_t op, const void *arg)
{
    register uint32_t r0 __asm("r0") = op;
    register const void *r1 __asm("r1") = arg;
    __asm volatile("bkpt 0xAB" : "+r"(r0) : "r"(r1) : "memory");
    return (int32_t)r0;
}

static void put(const char *s)
{
#if CONSOLE_SEMIHOSTING
    semihost(SYS_WRITE0, s);
#else
    for (; *s; s++) {
        while (UART_STATE & 1u) {
        }
        UART_DATA = (uint32_t)(uint8_t)*s;
    }
#endif
}

static void put_u32(uint32_t v)
{
    char buf[11];
    int i = 10;
    buf[i] = 0;
    do {
        buf[--i] = (char)('0' + v % 10u);
        v /= 10u;
    } while (v);
    put(&buf[i]);
}

static void put_hex(uint32_t v)
{
    static const char hex[] = "0123456789abcdef";
    char buf[11] = "0x";
    for (int i = 0; i < 8; i++)
        buf[2 + i] = hex[(v >> (28 - 4 * i)) & 0xFu];
    buf[10] = 0;
    put(buf);
}

__attribute__((noreturn)) static void finish(uint32_t code)
{
#if CONSOLE_PLAIN_EXIT
    (void)code;
    semihost(SYS_EXIT, (const void *)(uintptr_t)ADP_STOPPED_APPLICATION_EXIT);
#else
    uint32_t args[2] = {ADP_STOPPED_APPLICATION_EXIT, code};
    semihost(SYS_EXIT_EXTENDED, args);
#endif
    for (;;) {
    }
}

static void fault(const char *kind)
{
    put("*** ");
    put(kind);
    put(": CFSR=");
    put_hex(SCB_CFSR);
    put(" ***\n");
    for (;;) {
    }
}

void HardFault_Handler(void) { fault("HardFault"); }
void MemManage_Handler(void) { fault("MemManage"); }
void BusFault_Handler(void) { fault("BusFault"); }
void UsageFault_Handler(void) { fault("UsageFault"); }

static volatile uint32_t sink;

int main(void)
{
    UART_BAUDDIV = 16;
    UART_CTRL = 3u;
    cm_counter_start();
    cm_counter_restart(); /* waits for the first reload: reads are monotonic from here */

    put("*** Booting console test firmware ***\n");
    put("test_add: PASS\n");
    uint64_t t0 = cm_counter_read();
    uint32_t acc = 0;
    for (uint32_t i = 0; i < 20000u; i++)
        acc = acc * 31u + i;
    sink = acc;
    uint64_t ticks = cm_counter_read() - t0;
    put("inference took ");
    put_u32((uint32_t)ticks);
    put(" ticks, checksum ");
    put_hex(acc);
    put("\n");
#if CONSOLE_SCENARIO == 1
    put("test_conv: ASSERT FAILED: out[3] == 12 (got 11) at test_conv.c:88\n");
    finish(1);
#elif CONSOLE_SCENARIO == 2
    put("test_conv: waiting for an interrupt that never comes\n");
    for (;;) {
    }
#elif CONSOLE_SCENARIO == 3
    put("test_conv: calling through a null pointer\n");
    __asm volatile("udf #0");
#elif CONSOLE_SCENARIO == 4
    put("test_conv: PASS (teardown: ASSERT FAILED: 16 bytes leaked)\n");
    put("PROJECT EXECUTION SUCCESSFUL\n");
    put("background task: ASSERT FAILED: stack overflow\n");
    for (;;) {
    }
#endif
    put("test_conv: PASS\n");
    put("accuracy: 0.9375 on 16 samples\n");
    put("3 tests, 0 failures\n");
    put("PROJECT EXECUTION SUCCESSFUL\n");
    finish(CONSOLE_EXIT);
}
