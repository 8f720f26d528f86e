/*
 * hil C API: serve the hil test protocol (docs/protocol.md) from your own
 * firmware, so `hil run --firmware app.elf` can stream test vectors through
 * *your* inference code and check it against the TFLM reference.
 *
 * You provide three things, all plain structs of callbacks:
 *
 *   - a transport (`hil_transport`): getc/write on the UART the host talks to;
 *   - an engine (`hil_ops`, see ../protocol/proto.h): load a model, expose its
 *     input and output buffers, invoke, reset. `hil_simple_ops` builds one
 *     from fixed tensors and an invoke callback; `hil_builtin_ops`
 *     (builtin.h) is hil's own engine; `hil::TflmEngine` (../tflm/) serves a
 *     tflite::MicroInterpreter;
 *   - optionally board hooks (`hil_board`): a counter for per-invoke counts,
 *     host-file reads (semihosting, emulators only), reboot, stack usage.
 *
 * Then either call hil_serve(), which never returns, or hil_init() once and
 * hil_poll()/hil_feed() from your own loop, RTOS thread or RX interrupt.
 *
 * No dynamic allocation: the server's buffers (about 4 x HIL_MAX_PAYLOAD
 * bytes) live in the `hil_instance` you own; the model buffer is yours.
 * Portable C99; compiles for the host too (tests/test_build_capi.py).
 *
 *     static uint8_t model_buf[64 * 1024];
 *     static int my_getc(void *ctx) { return uart_rx_ready() ? uart_rx() : -1; }
 *     static void my_write(void *ctx, const uint8_t *d, size_t n) { uart_tx(d, n); }
 *
 *     int main(void)
 *     {
 *         static hil_ops ops;
 *         my_engine_ops(&ops);                       // or hil_simple_ops(...)
 *         const hil_transport uart = {NULL, my_getc, my_write};
 *         const hil_config cfg = {.platform = "my-board", .model_buffer = model_buf,
 *                                 .model_capacity = sizeof model_buf};
 *         hil_serve(&ops, &uart, &cfg);
 *     }
 */
#ifndef HIL_API_H
#define HIL_API_H

#include <stddef.h>
#include <stdint.h>

#include "../protocol/proto.h"

#ifdef __cplusplus
extern "C" {
#endif

#define HIL_API_VERSION 1

/* The byte stream to the host: usually the UART the harness is connected to. */
typedef struct hil_transport {
    void *ctx;
    /* The next received byte (0..255), or -1 when none is waiting. Must not
     * block: hil_poll() calls it until it returns -1. */
    int (*getc)(void *ctx);
    /* Send `len` bytes; may block until they are queued. */
    void (*write)(void *ctx, const uint8_t *data, size_t len);
} hil_transport;

/* Optional board services. Any hook may be NULL. */
typedef struct hil_board {
    void *ctx;
    /* Free-running count read around each invoke and between operators, and
     * what it counts (enum hil_counter_source in proto.h). */
    uint64_t (*counter)(void *ctx);
    uint8_t counter_source;
    /* Restart the counter's phase before a measurement (see proto.h). */
    void (*counter_restart)(void *ctx);
    /* Read host file `path` at `offset` (Arm semihosting under an emulator):
     * return the bytes read, or -1. Leave NULL on real boards. */
    long (*read_file)(void *ctx, const char *path, uint32_t offset, uint8_t *dst, uint32_t len);
    /* Reset the MCU (RESET mode 1). */
    void (*reboot)(void *ctx);
    /* Stack size and measured high-water mark (GET_MEMORY). */
    void (*stack)(void *ctx, uint32_t *size, uint32_t *high_water);
    /* Called by hil_serve() when no byte is waiting (sleep until an
     * interrupt, yield to other threads). NULL: busy-poll. */
    void (*idle)(void *ctx);
} hil_board;

typedef struct hil_config {
    /* Reported in HELLO: the platform name (`hil run --platform`). */
    const char *platform;
    /* Hex of the image's GNU build-id, which the host compares with the ELF
     * it was given. NULL: read it from the linked image (hil_build_id()). */
    const char *build_id;
    uint32_t clock_hz;
    /* Where LOAD_MODEL puts the model the host sends: at least the model's
     * size. It must stay valid while the model is in use. */
    uint8_t *model_buffer;
    uint32_t model_capacity;
    /* Tensor arena size reported in HELLO (informational). */
    uint32_t arena_size;
    const hil_board *board;
} hil_config;

/* One server. Own it statically (it holds ~4 x HIL_MAX_PAYLOAD bytes: receive,
 * reply, the kept reply for retransmissions and an error message). */
typedef struct hil_instance {
    hil_server server;
    hil_port port;
    hil_transport transport;
    hil_board board;
    char build_id[41];
} hil_instance;

/* hil_init() results */
enum hil_api_status {
    HIL_API_OK = 0,
    HIL_API_E_ARGS = -1,   /* a NULL instance, ops, transport or config */
    HIL_API_E_OPS = -2,    /* a required hil_ops callback is NULL */
    HIL_API_E_TRANSPORT = -3, /* transport getc or write is NULL */
    HIL_API_E_MODEL_BUFFER = -4 /* no model buffer */
};

/* Set up a server. Required hil_ops callbacks: load, tensor_info, input,
 * invoke, output, reset (profile and memory are optional). Returns
 * HIL_API_OK or a negative enum hil_api_status. */
int hil_init(hil_instance *h, const hil_ops *ops, const hil_transport *t, const hil_config *cfg);

/* Process every byte waiting on the transport; replies go out through its
 * write. Returns the number of bytes processed. Call it from your main loop
 * or a thread. */
size_t hil_poll(hil_instance *h);

/* Process bytes received elsewhere (drained from an RX interrupt's ring
 * buffer, a DMA block). Do not call it from the interrupt itself: it runs
 * whole requests, including invokes. */
void hil_feed(hil_instance *h, const uint8_t *data, size_t len);

/* Send a LOG frame (shown by the host in its log). Truncated to 128 bytes. */
void hil_log(hil_instance *h, const char *text);

/* The server's link, for hil_send_fault() from your own fault handler
 * (hil's board layer: hil_board_report_faults()). */
const hil_port *hil_port_of(const hil_instance *h);

/* A model built into the firmware image: LOAD_MODEL with source BAKED runs
 * it in place (flash), without copying it to the model buffer. Call after
 * hil_init(). */
void hil_set_baked_model(hil_instance *h, const uint8_t *model, uint32_t len);

/* Initialise a static instance and serve forever. Returns only when
 * hil_init() refuses its arguments (with that negative status). */
int hil_serve(const hil_ops *ops, const hil_transport *t, const hil_config *cfg);

/* hil_build_id(), the hex of the image's GNU build-id note, is declared in
 * proto.h (the built-in runner uses it too). */

/* Fill `err` (for a hil_ops callback that fails). */
void hil_set_error(hil_error *err, uint8_t code, uint32_t detail, int16_t op_index, const char *message);

/* For firmware whose model is compiled in: accept the host's LOAD_MODEL
 * only when it is that same model; otherwise fill `err` (MODEL_INVALID,
 * with both sizes and CRC-32s) and return -1. */
int hil_check_model(const uint8_t *got, uint32_t got_len, const uint8_t *expected,
                    uint32_t expected_len, hil_error *err);

/* ---- hil_simple_ops: an engine from fixed buffers and an invoke -------- */

/* A tensor your code reads (input) or writes (output) in place. */
typedef struct hil_tensor {
    uint8_t *data;
    uint32_t bytes;
    uint8_t dtype;         /* TFLite TensorType: 0 FLOAT32, 2 INT32, 3 UINT8, 7 INT16, 9 INT8 */
    uint8_t ndims;
    int32_t dims[6];
    float scale;           /* quantization, 0 when none */
    int32_t zero_point;
} hil_tensor;

typedef struct hil_simple_engine {
    const char *name;      /* reported in HELLO's engine field */
    void *ctx;             /* passed to the callbacks */
    hil_tensor *inputs;
    uint8_t n_inputs;
    hil_tensor *outputs;
    uint8_t n_outputs;
    uint32_t arena_used;   /* reported after LOAD_MODEL */
    /* Optional: accept (0) or refuse (-1, filling err) the model the host
     * loads, e.g. with hil_check_model() against a compiled-in one, or
     * parse it. NULL accepts any model. */
    int (*load)(void *ctx, const uint8_t *model, uint32_t len, hil_error *err);
    /* Required: read the inputs, write the outputs; 0 or -1 (filling err). */
    int (*invoke)(void *ctx, hil_error *err);
    /* Optional: clear the model's state (RESET mode 0). */
    void (*reset)(void *ctx);
} hil_simple_engine;

/* Fill `ops` to serve `e` (which must outlive the server). */
void hil_simple_ops(hil_ops *ops, hil_simple_engine *e);

#ifdef __cplusplus
}
#endif
#endif
