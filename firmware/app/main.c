/*
 * The built-in runner: serves the hil protocol on the board's UART with the
 * built-in engine. Model buffer and arena are static, sized by the platform
 * file (HIL_MODEL_CAPACITY, HIL_ARENA_SIZE) and placed in the BULK region.
 */
#include <stdint.h>

#include "../arch/arch.h"
#include "../boards/board.h"
#include "../protocol/proto.h"
#if HIL_ENGINE_TFLM
#include "../tflm/hil_tflm.h" /* HIL_ENGINE=tflm: TFLM behind the same hil_ops */
#else
#include "builtin_ops.h"
#endif

#ifndef HIL_PLATFORM
#define HIL_PLATFORM "unknown"
#endif
#ifndef HIL_CLOCK_HZ
#define HIL_CLOCK_HZ 0
#endif

static uint8_t model_buffer[HIL_MODEL_CAPACITY] __attribute__((section(".bulk.model"), aligned(16)));
static uint8_t arena[HIL_ARENA_SIZE] __attribute__((section(".bulk.arena"), aligned(16)));

#if !HIL_ENGINE_TFLM
static builtin_engine engine;
#endif
#if HIL_BAKED
extern const uint8_t hil_baked_model[], hil_baked_model_end[];
#endif
static hil_ops ops;
static hil_port port;
static hil_server server;

static void port_write(void *ctx, const uint8_t *data, size_t len)
{
    (void)ctx;
    board_write(data, len);
}

static uint64_t port_counter(void *ctx)
{
    (void)ctx;
    return board_counter();
}

static void port_counter_restart(void *ctx)
{
    (void)ctx;
    board_counter_restart();
}

static void port_stack(void *ctx, uint32_t *size, uint32_t *high_water)
{
    (void)ctx;
    board_stack_usage(size, high_water);
}

static void port_reboot(void *ctx)
{
    (void)ctx;
    board_reboot();
}

#if defined(HIL_FAULT_ON_INVOKE) || defined(HIL_HANG_ON_INVOKE) || defined(HIL_REBOOT_ON_INVOKE)
#define HIL_MISBEHAVE 1
/* Firmware built to misbehave on purpose, to test that the host reports
 * faults, hangs and reboots (tests/test_qemu_run.py, tests/test_board_*.py). */
static void misbehave(uint32_t n)
{
#ifdef HIL_FAULT_ON_INVOKE
    if (n == HIL_FAULT_ON_INVOKE)
#if defined(__riscv)
        __asm volatile(".4byte 0"); /* illegal instruction trap (mcause 2) */
#else
        __asm volatile("udf #0"); /* UsageFault: undefined instruction */
#endif
#endif
#ifdef HIL_HANG_ON_INVOKE
    if (n == HIL_HANG_ON_INVOKE)
        for (volatile int spin = 1; spin;) {
        }
#endif
#ifdef HIL_REBOOT_ON_INVOKE
    if (n == HIL_REBOOT_ON_INVOKE)
        board_reboot(); /* as a watchdog or brown-out would: the reply never comes */
#endif
}
#endif

#ifdef HIL_FAULT_ON_LOAD
/* LOAD_MODEL faults, as a bug in an operator's prepare step would: a fault
 * outside the vectors, which the host must still report as the firmware's
 * (tests/test_verdict.py). */
static int fault_on_load(void *ctx, const uint8_t *model, uint32_t len, uint8_t *n_inputs,
                         uint8_t *n_outputs, uint32_t *arena_used, hil_error *err)
{
    (void)ctx, (void)model, (void)len, (void)n_inputs, (void)n_outputs, (void)arena_used, (void)err;
#if defined(__riscv)
    __asm volatile(".4byte 0");
#else
    __asm volatile("udf #0");
#endif
    return -1;
}
#endif

#ifdef HIL_BOOT_NOISE
/* What a bootloader or an RTOS banner prints before the application speaks
 * the protocol: text, a stray zero byte and binary junk that looks like half
 * a frame (tests/test_board_qemu.py checks the host drains it). */
static void boot_noise(void)
{
    static const uint8_t noise[] = "\r\n*** Booting ACME bootloader v1.2 ***\r\n"
                                   "flash: ok\x00 crc \x03\x81\x7f\xfe\x11 app @ 0x08004000\r\n"
                                   "\x05\x01\x02\x03 starting application...\r\n";
    for (int i = 0; i < 3; i++)
        board_write(noise, sizeof noise - 1);
}
#endif

int main(void)
{
    board_init();
#ifdef HIL_BOOT_NOISE
    boot_noise();
#endif

    port.write = port_write;
    port.counter = port_counter;
    port.counter_source = board_counter_source();
    port.counter_restart = port_counter_restart;
    port.stack = port_stack;
    port.reboot = port_reboot;
#if HIL_SEMIHOSTING
    port.read_file = arch_semihost_read_file;
#endif
    port.build_id = hil_build_id();
    port.platform = HIL_PLATFORM;
    port.clock_hz = HIL_CLOCK_HZ;
    arch_fault_set_port(&port);

#if HIL_ENGINE_TFLM
    hil_tflm_runner_ops(&ops, arena, sizeof arena, board_counter);
#else
    engine.counter = board_counter;
    engine.arena = arena;
    engine.arena_size = sizeof arena;
#ifdef HIL_MISBEHAVE
    engine.before_invoke = misbehave;
#endif
    builtin_ops_init(&ops, &engine);
#endif
#ifdef HIL_FAULT_ON_LOAD
    ops.load = fault_on_load;
#endif
    hil_server_init(&server, &port, &ops, model_buffer, sizeof model_buffer, sizeof arena);
#if HIL_BAKED
    hil_server_set_baked(&server, hil_baked_model, (uint32_t)(hil_baked_model_end - hil_baked_model));
#endif

    for (;;) {
        int c = board_getc();
        if (c >= 0)
            hil_server_feed(&server, (uint8_t)c);
    }
}
