/*
 * Device side of the hil wire protocol v1 (docs/protocol.md).
 *
 * The server is transport- and engine-agnostic: the board supplies a
 * `hil_port` (write bytes, read host files, read a counter, reboot) and the
 * inference engine supplies `hil_ops` (load, inputs, invoke, outputs,
 * reset). Feed it received bytes one at a time; it answers each complete
 * request through port->write. No dynamic allocation; all buffers are in
 * the `hil_server` struct or supplied by the caller.
 */
#ifndef HIL_PROTO_H
#define HIL_PROTO_H

#include <stddef.h>
#include <stdint.h>

#include "cobs.h"

#ifdef __cplusplus
extern "C" {
#endif

#define HIL_PROTOCOL_VERSION 1
#ifndef HIL_MAX_PAYLOAD
#define HIL_MAX_PAYLOAD 1024u
#endif
#define HIL_FRAME_OVERHEAD 6u /* type, seq, crc32 */
#define HIL_MAX_FRAME (HIL_MAX_PAYLOAD + HIL_FRAME_OVERHEAD)
#define HIL_MAX_ENCODED COBS_MAX_ENCODED(HIL_MAX_FRAME)
#define HIL_MAX_PATH 240u
#define HIL_MAX_TENSORS_IO 8u
/* An ERROR frame's payload: u8 code, u32 detail, i16 op_index, then the
 * message text, so a message can be as long as what is left of one frame. */
#define HIL_ERROR_HEADER 7u
#define HIL_MAX_MESSAGE (HIL_MAX_PAYLOAD - HIL_ERROR_HEADER)
/* Unprompted LOG and FAULT frames carry at most this many payload bytes. */
#define HIL_MAX_UNPROMPTED 128u

enum hil_msg {
    HIL_MSG_HELLO = 0x01,
    HIL_MSG_LOAD_MODEL = 0x02,
    HIL_MSG_SET_INPUT = 0x03,
    HIL_MSG_INVOKE = 0x04,
    HIL_MSG_GET_OUTPUT = 0x05,
    HIL_MSG_RESET = 0x06,
    HIL_MSG_TENSOR_INFO = 0x07,
    HIL_MSG_GET_PROFILE = 0x08,
    HIL_MSG_GET_MEMORY = 0x09,
    HIL_MSG_GET_TENSOR = 0x0A,
    HIL_MSG_REPLY = 0x80,
    HIL_MSG_LOG = 0xFD,
    HIL_MSG_FAULT = 0xFE,
    HIL_MSG_ERROR = 0xFF
};

enum hil_err {
    HIL_ERR_NONE = 0,
    HIL_ERR_BAD_FRAME = 1,
    HIL_ERR_UNKNOWN_TYPE = 2,
    HIL_ERR_BAD_PAYLOAD = 3,
    HIL_ERR_NO_MODEL = 4,
    HIL_ERR_MODEL_INVALID = 5,
    HIL_ERR_UNSUPPORTED_OP = 6,
    HIL_ERR_UNSUPPORTED = 7,
    HIL_ERR_ARENA_TOO_SMALL = 8,
    HIL_ERR_MODEL_TOO_LARGE = 9,
    HIL_ERR_BAD_INDEX = 10,
    HIL_ERR_BAD_SEQUENCE = 11,
    HIL_ERR_IO = 12,
    HIL_ERR_INVOKE_FAILED = 13,
    HIL_ERR_LIMIT = 14,
    HIL_ERR_NOT_SUPPORTED = 15
};

enum hil_counter_source {
    HIL_COUNTER_NONE = 0,
    HIL_COUNTER_SYSTICK = 1,
    HIL_COUNTER_DWT = 2,
    HIL_COUNTER_MINSTRET = 3
};

enum hil_source { HIL_SOURCE_INLINE = 0, HIL_SOURCE_FILE = 1, HIL_SOURCE_BAKED = 2 };

/* INVOKE flags */
#define HIL_INVOKE_EMPTY 0x01u /* measure an invoke that runs nothing: the counting overhead */
#define HIL_INVOKE_UNTIL 0x02u /* run operators 0..N only (u16 N follows): localising a divergence */
/* after the count, the reply carries the outputs and the operator profile (those that fit one frame):
 * one round trip per vector instead of three (docs/protocol.md, INVOKE) */
#define HIL_INVOKE_OUTPUTS 0x04u
#define HIL_INVOKE_PROFILE 0x08u
/* before invoking, read every input from a host file: u8 n, n x u32 offset, then the path
 * (SET_INPUT's file source, in the same request); HELLO flag bit 3 says a firmware has these flags */
#define HIL_INVOKE_INPUTS 0x10u
/* the batch cursor (HELLO flag bit 4): with INPUTS, `u32 stride` follows the offsets and the device
 * remembers path, offsets and stride; alone (no payload after the flags), every remembered offset
 * moves on by the stride and the inputs are read from there: the next vector of the batch file in a
 * request of one payload byte (docs/protocol.md, INVOKE) */
#define HIL_INVOKE_NEXT 0x20u

/* One operator's share of the last invoke. */
typedef struct {
    uint16_t op_index;
    uint16_t builtin;  /* TFLite BuiltinOperator code */
    uint32_t count;    /* raw counter delta */
} hil_op_profile;

/* Memory use measured on the device. */
typedef struct {
    uint32_t arena_size, arena_planned, arena_high_water;
    uint32_t stack_size, stack_high_water;
} hil_memory;

typedef struct {
    uint8_t code;      /* enum hil_err */
    uint32_t detail;
    int16_t op_index;  /* -1 when not about an operator */
    char message[HIL_MAX_MESSAGE + 1]; /* NUL terminated; all of it fits one frame */
} hil_error;

typedef struct {
    uint8_t dtype;     /* TFLite TensorType */
    uint8_t ndims;
    int32_t dims[6];
    uint32_t bytes;
    float scale;
    int32_t zero_point;
} hil_tensor_info;

/* What the inference engine offers the server. */
typedef struct {
    void *ctx;
    const char *engine; /* e.g. "builtin", "tflm" */
    /* Load and validate a model held in `model` (valid until the next load).
     * On success set *n_inputs, *n_outputs, *arena_used and return 0. */
    int (*load)(void *ctx, const uint8_t *model, uint32_t len, uint8_t *n_inputs,
                uint8_t *n_outputs, uint32_t *arena_used, hil_error *err);
    int (*tensor_info)(void *ctx, int is_output, uint32_t index, hil_tensor_info *info);
    uint8_t *(*input)(void *ctx, uint32_t index, uint32_t *bytes);
    int (*invoke)(void *ctx, hil_error *err);
    const uint8_t *(*output)(void *ctx, uint32_t index, uint32_t *bytes);
    void (*reset)(void *ctx);
    /* Optional: per-operator counts of the last invoke, in execution order;
     * copies up to `max` entries from `first` on and returns the total. */
    uint32_t (*profile)(void *ctx, uint32_t first, hil_op_profile *out, uint32_t max);
    /* Optional: arena plan and measured high-water mark. */
    void (*memory)(void *ctx, hil_memory *out);
    /* Optional, for localising a divergence: run operators 0..last_op of the
     * main graph, and read any tensor of it by the model's tensor index. */
    int (*invoke_until)(void *ctx, uint32_t last_op, hil_error *err);
    const uint8_t *(*tensor)(void *ctx, uint32_t index, uint32_t *bytes);
} hil_ops;

/* What the board offers the server. Optional hooks may be NULL. */
typedef struct {
    void *ctx;
    void (*write)(void *ctx, const uint8_t *data, size_t len);
    /* Read `len` bytes at `offset` of host file `path`; return bytes read or -1. */
    long (*read_file)(void *ctx, const char *path, uint32_t offset, uint8_t *dst, uint32_t len);
    uint64_t (*counter)(void *ctx);
    /* Optional: restart the counter's phase so a measurement does not depend
     * on what ran before it (with a 40-instruction SysTick granularity the
     * phase would otherwise move counts by one tick). */
    void (*counter_restart)(void *ctx);
    uint8_t counter_source; /* enum hil_counter_source */
    void (*reboot)(void *ctx);
    /* Optional: measured stack high-water mark (painted stack). */
    void (*stack)(void *ctx, uint32_t *size, uint32_t *high_water);
    const char *build_id;   /* hex string */
    const char *platform;
    uint32_t clock_hz;
} hil_port;

/* INVOKE NEXT's cursor into the host's batch file: where the last vector's
 * inputs were read, and how far the next one is. */
typedef struct {
    char path[HIL_MAX_PATH + 1];
    uint32_t offset[HIL_MAX_TENSORS_IO];
    uint32_t stride;
    uint8_t n;
    uint8_t active;            /* set by INVOKE INPUTS|NEXT; cleared by LOAD_MODEL, RESET, an overflow */
} hil_batch;

/* Progress of one chunked transfer into a buffer. */
typedef struct {
    uint32_t total;            /* latched from the first chunk */
    uint32_t received;
    uint8_t active;            /* a first chunk was accepted, more may follow */
} hil_transfer;

typedef struct {
    const hil_port *port;
    const hil_ops *ops;
    uint8_t *model;          /* model buffer, caller-owned */
    uint32_t model_capacity;
    const uint8_t *baked;    /* a model built into the image (flash), or NULL */
    uint32_t baked_len;
    const uint8_t *current;  /* the loaded model: the buffer or the baked one */
    uint32_t arena_size;     /* reported in HELLO */

    /* receive state */
    uint8_t rx[HIL_MAX_ENCODED];
    size_t rx_len;
    int rx_overflow;

    /* transfer state: `total` is latched by a transfer's first chunk
     * (offset 0) and every continuation must carry the same */
    hil_transfer model_transfer;
    uint32_t model_total;      /* bytes of the loaded model */
    int model_loaded;
    hil_transfer input_transfer[HIL_MAX_TENSORS_IO];
    uint8_t n_inputs, n_outputs;
    hil_batch batch;

    /* scratch for building replies, and for the error a handler reports
     * (kept here, not on the stack: it holds a whole frame's message) */
    uint8_t tx[HIL_MAX_FRAME];
    hil_error err;

    /* The last request answered and the encoded reply sent for it: a
     * CRC-valid request with the same type, seq and CRC is a host
     * retransmission (its reply was lost) and gets these bytes again
     * without running the request a second time (docs/protocol.md,
     * "Recovery"). Unprompted LOG/FAULT frames and BAD_FRAME errors are
     * built elsewhere, so they never overwrite it. */
    uint8_t tx_encoded[HIL_MAX_ENCODED + 1];
    size_t last_reply_len;     /* 0: nothing to replay */
    uint8_t last_type, last_seq;
    uint32_t last_crc;

    uint32_t frames_dropped;
    uint32_t requests_replayed;
} hil_server;

void hil_server_init(hil_server *s, const hil_port *port, const hil_ops *ops,
                     uint8_t *model_buf, uint32_t model_capacity, uint32_t arena_size);

/* A model built into the firmware image: LOAD_MODEL with source BAKED runs
 * it in place, without copying it to RAM. */
void hil_server_set_baked(hil_server *s, const uint8_t *model, uint32_t len);

/* Process one received byte; replies are written through the port. */
void hil_server_feed(hil_server *s, uint8_t byte);

/* Send an unprompted frame (LOG, FAULT), payload cut at HIL_MAX_UNPROMPTED
 * bytes. Safe to call from a fault handler: uses its own stack buffers, not
 * the server's (so it never disturbs the reply kept for a retransmission). */
void hil_send_frame(const hil_port *port, uint8_t type, uint8_t seq,
                    const uint8_t *payload, size_t len);

/* A fault as the FAULT frame carries it (docs/protocol.md): the kind
 * (1 HardFault, 2 MemManage, 3 BusFault, 4 UsageFault) and seven words. */
typedef struct hil_fault {
    uint8_t kind;
    uint32_t pc, lr, cfsr, hfsr, mmfar, bfar, sp;
} hil_fault;

/* Send a FAULT frame, after a delimiter that ends any frame the fault cut
 * off. Safe in a fault handler (hil_send_frame's own buffers). */
void hil_send_fault(const hil_port *port, const hil_fault *fault);

/* Hex of the image's GNU build-id note, or "" when the image has none.
 * Reads the note between the linker symbols __build_id_start__ and
 * __build_id_end__ (hil's linker scripts, and the Zephyr module, define
 * them; api/build_id.ld shows the section to add to your own script). */
const char *hil_build_id(void);

#ifdef __cplusplus
}
#endif
#endif
