/*
 * libFuzzer target: the device's protocol server (protocol/proto.c) with
 * the real built-in engine behind it (app/builtin_ops.c), fed a SEQUENCE
 * of frames, so a fuzzed LOAD_MODEL reaches the loader and later SET_INPUT,
 * INVOKE and GET_* requests run against whatever state earlier ones left.
 *
 * Input format (scripts/fuzz.py writes seeds in it), a list of records:
 *   u8 control
 *     bit 7 set:  raw bytes: the next (control & 0x7f) bytes go to the
 *                 server as they are (line noise, partial frames)
 *     otherwise:  u16 n, then n bytes = type, seq, payload: sent as one
 *                 well-formed frame (CRC and COBS done here, so the fuzzer
 *                 does not have to find them); bit 6 corrupts its CRC,
 *                 bit 5 sends it twice (a host retransmission)
 * The port stub serves host-file reads from the fuzz input itself and
 * checks every reply the server writes is a well-formed frame, and that a
 * frame sent twice is answered twice with the same bytes (the recovery
 * contract: a retransmission gets the kept reply, docs/protocol.md).
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "../app/builtin_ops.h"
#include "../protocol/cobs.h"
#include "../protocol/crc32.h"
#include "../protocol/proto.h"

#define FUZZ_MODEL_BYTES (64u * 1024u)
#define FUZZ_ARENA_BYTES (32u * 1024u) /* the engine target tries big arenas */

static hil_server server;
static hil_port port;
static hil_ops ops;
static builtin_engine engine;
static uint8_t model_buffer[FUZZ_MODEL_BYTES];
static uint8_t arena[FUZZ_ARENA_BYTES];
static const uint8_t *host_file;
static size_t host_file_len;
static int reboot_requested;
static uint64_t ticks;

/* what the server wrote while one frame was fed */
static uint8_t written[2 * (HIL_MAX_ENCODED + 1)];
static size_t written_len;
static int written_overflow;

/* Every write is one encoded reply frame and its delimiter: decode it and
 * check its CRC and size, so a reply built past its buffer or cut short is
 * found even when it stays inside the server's memory. */
static void stub_write(void *ctx, const uint8_t *data, size_t len)
{
    static uint8_t decoded[HIL_MAX_ENCODED + 1];
    long n;
    (void)ctx;
    if (len < 2 || data[len - 1] != 0)
        abort();
    n = cobs_decode(data, len - 1, decoded, sizeof decoded);
    if (n < (long)HIL_FRAME_OVERHEAD || (size_t)n > HIL_MAX_FRAME)
        abort();
    if (hil_crc32(0, decoded, (size_t)n - 4) !=
        ((uint32_t)decoded[n - 4] | ((uint32_t)decoded[n - 3] << 8) |
         ((uint32_t)decoded[n - 2] << 16) | ((uint32_t)decoded[n - 1] << 24)))
        abort();
    if (len > sizeof written - written_len) {
        written_overflow = 1;
        return;
    }
    memcpy(written + written_len, data, len);
    written_len += len;
}

static long stub_read_file(void *ctx, const char *path, uint32_t offset, uint8_t *dst,
                           uint32_t len)
{
    (void)ctx;
    (void)path;
    if (offset > host_file_len)
        return -1;
    if (len > host_file_len - offset)
        len = (uint32_t)(host_file_len - offset);
    memcpy(dst, host_file + offset, len);
    return (long)len;
}

static uint64_t stub_counter(void *ctx)
{
    (void)ctx;
    return ticks += 40;
}

static uint64_t engine_counter(void) { return ticks += 3; }

static void stub_reboot(void *ctx)
{
    (void)ctx;
    reboot_requested = 1;
}

static void stub_stack(void *ctx, uint32_t *size, uint32_t *high_water)
{
    (void)ctx;
    *size = 8192;
    *high_water = 1024;
}

static void boot(void)
{
    memset(&port, 0, sizeof port);
    port.write = stub_write;
    port.read_file = stub_read_file;
    port.counter = stub_counter;
    port.counter_source = HIL_COUNTER_SYSTICK;
    port.reboot = stub_reboot;
    port.stack = stub_stack;
    port.build_id = "f0220000";
    port.platform = "fuzz";
    port.clock_hz = 25000000;
    /* not the whole struct (60 KB of tables, slow per input): the server
     * reads nothing of the engine before a LOAD_MODEL, and eng_load clears
     * the engine's own state */
    engine.eng.loaded = 0;
    engine.invokes = 0;
    engine.n_profiled = 0;
    engine.before_invoke = NULL;
    engine.arena = arena;
    engine.arena_size = sizeof arena;
    engine.counter = engine_counter;
    builtin_ops_init(&ops, &engine);
    hil_server_init(&server, &port, &ops, model_buffer, sizeof model_buffer, sizeof arena);
    reboot_requested = 0;
}

static void feed(const uint8_t *bytes, size_t len)
{
    size_t i;
    for (i = 0; i < len; ++i) {
        hil_server_feed(&server, bytes[i]);
        if (reboot_requested)
            boot();
    }
}

static void send_frame(const uint8_t *body, size_t n, int corrupt, int twice)
{
    static uint8_t frame[HIL_MAX_FRAME + 64];
    static uint8_t encoded[COBS_MAX_ENCODED(sizeof frame) + 1];
    uint32_t crc;
    size_t len;
    if (n < 2 || n + 4 > sizeof frame)
        return;
    memcpy(frame, body, n);
    crc = hil_crc32(0, frame, n) ^ (corrupt ? 0x00010000u : 0u);
    frame[n] = (uint8_t)crc;
    frame[n + 1] = (uint8_t)(crc >> 8);
    frame[n + 2] = (uint8_t)(crc >> 16);
    frame[n + 3] = (uint8_t)(crc >> 24);
    len = cobs_encode(frame, n + 4, encoded, sizeof encoded - 1);
    if (len == 0)
        return;
    encoded[len++] = 0;
    feed(encoded + len - 1, 1); /* ends any junk a raw record left unterminated */
    written_len = 0;
    written_overflow = 0;
    feed(encoded, len);
    if (twice) {
        static uint8_t first[sizeof written];
        const size_t first_len = written_len;
        const int first_overflow = written_overflow;
        memcpy(first, written, first_len);
        written_len = 0;
        written_overflow = 0;
        feed(encoded, len);
        if (!first_overflow && !written_overflow &&
            (written_len != first_len || memcmp(written, first, first_len) != 0))
            abort(); /* a retransmission must get the same reply */
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    size_t pos = 0;
    host_file = data;
    host_file_len = size;
    boot();
    while (pos < size) {
        const uint8_t control = data[pos++];
        if (control & 0x80u) {
            size_t n = control & 0x7fu;
            if (n > size - pos)
                n = size - pos;
            feed(data + pos, n);
            pos += n;
        } else {
            size_t n;
            if (size - pos < 2)
                break;
            n = (size_t)data[pos] | ((size_t)data[pos + 1] << 8);
            pos += 2;
            if (n > size - pos)
                n = size - pos;
            send_frame(data + pos, n, (control & 0x40u) != 0, (control & 0x20u) != 0);
            pos += n;
        }
    }
    return 0;
}
