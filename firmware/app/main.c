/*
 * The built-in runner: serves the hil protocol on the board's UART with the
 * built-in engine (or TFLM), through the public C API (api/hil.h) and the
 * board adapters every user of hil's board layer gets (api/hil_board.c).
 * Model buffer and arena are static, sized by the platform file
 * (HIL_MODEL_CAPACITY, HIL_ARENA_SIZE) and placed in the BULK region.
 */
#include <stdint.h>

#include "../api/hil.h"
#include "../api/hil_board.h"
#include "../boards/board.h"
#if HIL_ENGINE_TFLM
#include "../tflm/hil_tflm.h" /* HIL_ENGINE=tflm: TFLM behind the same hil_ops */
#else
#include "../api/hil_builtin.h"
#endif

static uint8_t model_buffer[HIL_MODEL_CAPACITY] __attribute__((section(".bulk.model"), aligned(16)));
static uint8_t arena[HIL_ARENA_SIZE] __attribute__((section(".bulk.arena"), aligned(16)));

#if !HIL_ENGINE_TFLM
static hil_builtin_engine engine;
#endif
#if HIL_BAKED
extern const uint8_t hil_baked_model[], hil_baked_model_end[];
#endif
static hil_ops ops;
static hil_instance server;

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
static void boot_noise(const hil_transport *uart)
{
    static const uint8_t noise[] = "\r\n*** Booting ACME bootloader v1.2 ***\r\n"
                                   "flash: ok\x00 crc \x03\x81\x7f\xfe\x11 app @ 0x08004000\r\n"
                                   "\x05\x01\x02\x03 starting application...\r\n";
    for (int i = 0; i < 3; i++)
        uart->write(uart->ctx, noise, sizeof noise - 1);
}
#endif

int main(void)
{
    hil_transport uart;
    static hil_board board;
    hil_board_setup(&uart, &board);
#ifdef HIL_BOOT_NOISE
    boot_noise(&uart);
#endif

#if HIL_ENGINE_TFLM
    hil_tflm_runner_ops(&ops, arena, sizeof arena, board_counter);
#else
    hil_builtin_ops(&ops, &engine, arena, sizeof arena, board_counter);
#ifdef HIL_MISBEHAVE
    engine.before_invoke = misbehave;
#endif
#endif
#ifdef HIL_FAULT_ON_LOAD
    ops.load = fault_on_load;
#endif
    const hil_config cfg = {
        .platform = hil_board_platform(),
        .build_id = NULL, /* the image's own */
        .clock_hz = hil_board_clock_hz(),
        .model_buffer = model_buffer,
        .model_capacity = sizeof model_buffer,
        .arena_size = sizeof arena,
        .board = &board,
    };
    if (hil_init(&server, &ops, &uart, &cfg) != HIL_API_OK)
        for (;;) { /* a runner without every hil_ops callback: nothing to serve */
        }
    hil_board_report_faults(&server);
#if HIL_BAKED
    hil_set_baked_model(&server, hil_baked_model, (uint32_t)(hil_baked_model_end - hil_baked_model));
#endif
    for (;;) {
        if (hil_poll(&server) == 0 && board.idle) /* nothing to read: sleep if the board can */
            board.idle(board.ctx);
    }
}
