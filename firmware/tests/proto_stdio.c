/*
 * The device side of the protocol, compiled for the host: reads request
 * bytes on stdin, writes replies on stdout. Its engine is a stand-in that
 * echoes each input byte + 1, so tests exercise framing, chunking, host-file
 * transfer and errors without an emulator (tests/test_protocol_c.py).
 */
#include <stdio.h>
#include <string.h>

#include "../protocol/proto.h"

static uint8_t model_buf[64 * 1024];
static uint8_t input[300];
static uint8_t output[300];
static uint32_t tensor_bytes;
static uint64_t fake_counter;

static void host_write(void *ctx, const uint8_t *data, size_t len)
{
    (void)ctx;
    fwrite(data, 1, len, stdout);
    fflush(stdout);
}

static long host_read_file(void *ctx, const char *path, uint32_t offset, uint8_t *dst,
                           uint32_t len)
{
    (void)ctx;
    FILE *f = fopen(path, "rb");
    if (!f)
        return -1;
    long got = -1;
    if (fseek(f, (long)offset, SEEK_SET) == 0)
        got = (long)fread(dst, 1, len, f);
    fclose(f);
    return got;
}

static uint64_t host_counter(void *ctx)
{
    (void)ctx;
    return fake_counter += 1000;
}

/* Stand-in model format: "ECHO" then one byte n: one input and one output
 * of n + 1 bytes. "LONG" then a u16 n is refused with an n-character
 * message (cut to what the error can hold), to test long error text.
 * Anything else is rejected like an invalid flatbuffer. */
static int echo_load(void *ctx, const uint8_t *model, uint32_t len, uint8_t *n_inputs,
                     uint8_t *n_outputs, uint32_t *arena_used, hil_error *err)
{
    (void)ctx;
    if (len >= 6 && memcmp(model, "LONG", 4) == 0) {
        size_t n = (size_t)model[4] | ((size_t)model[5] << 8);
        if (n > sizeof err->message - 1)
            n = sizeof err->message - 1;
        for (size_t i = 0; i < n; i++)
            err->message[i] = (char)('a' + i % 26);
        err->message[n] = 0;
        err->code = HIL_ERR_MODEL_INVALID;
        return -1;
    }
    if (len < 5 || memcmp(model, "ECHO", 4) != 0) {
        err->code = HIL_ERR_MODEL_INVALID;
        strcpy(err->message, "not an ECHO model");
        return -1;
    }
    tensor_bytes = (uint32_t)model[4] + 1u;
    *n_inputs = 1;
    *n_outputs = 1;
    *arena_used = 2 * tensor_bytes;
    return 0;
}

static int echo_info(void *ctx, int is_output, uint32_t index, hil_tensor_info *info)
{
    (void)ctx;
    (void)is_output;
    if (index != 0)
        return -1;
    info->dtype = 9;
    info->ndims = 2;
    info->dims[0] = 1;
    info->dims[1] = (int32_t)tensor_bytes;
    info->bytes = tensor_bytes;
    info->scale = 0.5f;
    info->zero_point = -3;
    return 0;
}

static uint8_t *echo_input(void *ctx, uint32_t index, uint32_t *bytes)
{
    (void)ctx;
    *bytes = tensor_bytes;
    return index == 0 ? input : NULL;
}

static uint32_t invokes; /* reported as GET_MEMORY's arena high-water */

static int echo_invoke(void *ctx, hil_error *err)
{
    (void)ctx;
    (void)err;
    invokes++;
    for (uint32_t i = 0; i < tensor_bytes; i++)
        output[i] = (uint8_t)(input[i] + 1);
    return 0;
}

static const uint8_t *echo_output(void *ctx, uint32_t index, uint32_t *bytes)
{
    (void)ctx;
    *bytes = tensor_bytes;
    return index == 0 ? output : NULL;
}

static void echo_reset(void *ctx) { (void)ctx; }

/* How many invokes ran, so tests can tell a replayed reply from a re-run. */
static void echo_memory(void *ctx, hil_memory *m)
{
    (void)ctx;
    m->arena_high_water = invokes;
}

int main(void)
{
    static hil_server server;
    hil_port port = {0};
    hil_ops ops = {0};
    port.write = host_write;
    port.read_file = host_read_file;
    port.counter = host_counter;
    port.counter_source = HIL_COUNTER_SYSTICK;
    port.build_id = "0123abcd";
    port.platform = "host";
    port.clock_hz = 1000000;
    ops.engine = "echo";
    ops.load = echo_load;
    ops.tensor_info = echo_info;
    ops.input = echo_input;
    ops.invoke = echo_invoke;
    ops.output = echo_output;
    ops.reset = echo_reset;
    ops.memory = echo_memory;
    hil_server_init(&server, &port, &ops, model_buf, sizeof model_buf, 4096);
    int c;
    while ((c = getchar()) != EOF)
        hil_server_feed(&server, (uint8_t)c);
    return 0;
}
