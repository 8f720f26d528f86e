/*
 * hil C API (hil.h): a thin layer over the protocol server in
 * ../protocol/proto.c that adapts a user's transport and board hooks to the
 * server's hil_port, and an engine made of fixed buffers to hil_ops.
 */
#include "hil.h"

#include <string.h>

#include "../protocol/crc32.h"

/* ---- transport and board -> hil_port ------------------------------------ */

static void port_write(void *ctx, const uint8_t *data, size_t len)
{
    hil_instance *h = ctx;
    h->transport.write(h->transport.ctx, data, len);
}

static long port_read_file(void *ctx, const char *path, uint32_t offset, uint8_t *dst, uint32_t len)
{
    hil_instance *h = ctx;
    return h->board.read_file(h->board.ctx, path, offset, dst, len);
}

static uint64_t port_counter(void *ctx)
{
    hil_instance *h = ctx;
    return h->board.counter(h->board.ctx);
}

static void port_counter_restart(void *ctx)
{
    hil_instance *h = ctx;
    h->board.counter_restart(h->board.ctx);
}

static void port_reboot(void *ctx)
{
    hil_instance *h = ctx;
    h->board.reboot(h->board.ctx);
}

static void port_stack(void *ctx, uint32_t *size, uint32_t *high_water)
{
    hil_instance *h = ctx;
    h->board.stack(h->board.ctx, size, high_water);
}

int hil_init(hil_instance *h, const hil_ops *ops, const hil_transport *t, const hil_config *cfg)
{
    if (!h || !ops || !t || !cfg)
        return HIL_API_E_ARGS;
    if (!ops->load || !ops->tensor_info || !ops->input || !ops->invoke || !ops->output || !ops->reset)
        return HIL_API_E_OPS;
    if (!t->getc || !t->write)
        return HIL_API_E_TRANSPORT;
    if (!cfg->model_buffer || cfg->model_capacity == 0)
        return HIL_API_E_MODEL_BUFFER;

    memset(h, 0, sizeof *h);
    h->transport = *t;
    if (cfg->board)
        h->board = *cfg->board;

    const char *id = cfg->build_id ? cfg->build_id : hil_build_id();
    for (size_t i = 0; i + 1 < sizeof h->build_id && id[i]; i++)
        h->build_id[i] = id[i];

    hil_port *p = &h->port;
    p->ctx = h;
    p->write = port_write;
    p->read_file = h->board.read_file ? port_read_file : NULL;
    p->counter = h->board.counter ? port_counter : NULL;
    p->counter_source = h->board.counter ? h->board.counter_source : (uint8_t)HIL_COUNTER_NONE;
    p->counter_restart = h->board.counter_restart ? port_counter_restart : NULL;
    p->reboot = h->board.reboot ? port_reboot : NULL;
    p->stack = h->board.stack ? port_stack : NULL;
    p->build_id = h->build_id;
    p->platform = cfg->platform ? cfg->platform : "";
    p->clock_hz = cfg->clock_hz;

    hil_server_init(&h->server, p, ops, cfg->model_buffer, cfg->model_capacity, cfg->arena_size);
    return HIL_API_OK;
}

size_t hil_poll(hil_instance *h)
{
    size_t n = 0;
    for (;;) {
        int c = h->transport.getc(h->transport.ctx);
        if (c < 0)
            return n;
        hil_server_feed(&h->server, (uint8_t)c);
        n++;
    }
}

void hil_feed(hil_instance *h, const uint8_t *data, size_t len)
{
    for (size_t i = 0; i < len; i++)
        hil_server_feed(&h->server, data[i]);
}

void hil_log(hil_instance *h, const char *text)
{
    hil_send_frame(&h->port, HIL_MSG_LOG, 0, (const uint8_t *)text, text ? strlen(text) : 0);
}

const hil_port *hil_port_of(const hil_instance *h) { return &h->port; }

void hil_set_baked_model(hil_instance *h, const uint8_t *model, uint32_t len)
{
    hil_server_set_baked(&h->server, model, len);
}

int hil_serve(const hil_ops *ops, const hil_transport *t, const hil_config *cfg)
{
    static hil_instance instance;
    int rc = hil_init(&instance, ops, t, cfg);
    if (rc != HIL_API_OK)
        return rc;
    for (;;) {
        if (hil_poll(&instance) == 0 && instance.board.idle)
            instance.board.idle(instance.board.ctx);
    }
}

/* ---- errors -------------------------------------------------------------- */

void hil_set_error(hil_error *err, uint8_t code, uint32_t detail, int16_t op_index, const char *message)
{
    if (!err)
        return;
    err->code = code;
    err->detail = detail;
    err->op_index = op_index;
    size_t n = 0;
    while (message && message[n] && n + 1 < sizeof err->message) {
        err->message[n] = message[n];
        n++;
    }
    err->message[n] = 0;
}

/* Small fixed-format writers: no printf on the device. */
static char *put_text(char *p, char *end, const char *s)
{
    while (*s && p < end)
        *p++ = *s++;
    return p;
}

static char *put_dec(char *p, char *end, uint32_t v)
{
    char tmp[10];
    int n = 0;
    do {
        tmp[n++] = (char)('0' + v % 10u);
        v /= 10u;
    } while (v);
    while (n && p < end)
        *p++ = tmp[--n];
    return p;
}

static char *put_hex32(char *p, char *end, uint32_t v)
{
    static const char hex[] = "0123456789abcdef";
    for (int i = 7; i >= 0 && p < end; i--)
        *p++ = hex[(v >> (4 * i)) & 0xFu];
    return p;
}

int hil_check_model(const uint8_t *got, uint32_t got_len, const uint8_t *expected,
                    uint32_t expected_len, hil_error *err)
{
    if (got_len == expected_len && memcmp(got, expected, got_len) == 0)
        return 0;
    if (!err)
        return -1;
    memset(err, 0, sizeof *err);
    char *p = err->message, *end = err->message + sizeof err->message - 1;
    p = put_text(p, end, "this firmware runs its compiled-in model (");
    p = put_dec(p, end, expected_len);
    p = put_text(p, end, " B, crc ");
    p = put_hex32(p, end, hil_crc32(0, expected, expected_len));
    p = put_text(p, end, "), not the one sent (");
    p = put_dec(p, end, got_len);
    p = put_text(p, end, " B, crc ");
    p = put_hex32(p, end, hil_crc32(0, got, got_len));
    p = put_text(p, end, ")");
    *p = 0;
    err->code = HIL_ERR_MODEL_INVALID;
    err->detail = expected_len;
    err->op_index = -1;
    return -1;
}

/* ---- hil_simple_ops -------------------------------------------------------- */

static int simple_load(void *ctx, const uint8_t *model, uint32_t len, uint8_t *n_inputs,
                       uint8_t *n_outputs, uint32_t *arena_used, hil_error *err)
{
    hil_simple_engine *e = ctx;
    if (e->load && e->load(e->ctx, model, len, err) != 0) {
        if (err->code == HIL_ERR_NONE)
            hil_set_error(err, HIL_ERR_MODEL_INVALID, 0, -1, "the firmware refused the model");
        return -1;
    }
    if (e->n_inputs > HIL_MAX_TENSORS_IO || e->n_outputs > HIL_MAX_TENSORS_IO) {
        hil_set_error(err, HIL_ERR_LIMIT, HIL_MAX_TENSORS_IO, -1, "more tensors than HIL_MAX_TENSORS_IO");
        return -1;
    }
    *n_inputs = e->n_inputs;
    *n_outputs = e->n_outputs;
    *arena_used = e->arena_used;
    return 0;
}

static const hil_tensor *simple_tensor(const hil_simple_engine *e, int is_output, uint32_t index)
{
    if (is_output)
        return index < e->n_outputs ? &e->outputs[index] : NULL;
    return index < e->n_inputs ? &e->inputs[index] : NULL;
}

static int simple_tensor_info(void *ctx, int is_output, uint32_t index, hil_tensor_info *info)
{
    const hil_tensor *t = simple_tensor(ctx, is_output, index);
    if (!t)
        return -1;
    info->dtype = t->dtype;
    info->ndims = t->ndims > 6 ? 6 : t->ndims;
    memcpy(info->dims, t->dims, sizeof info->dims);
    info->bytes = t->bytes;
    info->scale = t->scale;
    info->zero_point = t->zero_point;
    return 0;
}

static uint8_t *simple_input(void *ctx, uint32_t index, uint32_t *bytes)
{
    const hil_tensor *t = simple_tensor(ctx, 0, index);
    if (!t)
        return NULL;
    *bytes = t->bytes;
    return t->data;
}

static int simple_invoke(void *ctx, hil_error *err)
{
    hil_simple_engine *e = ctx;
    if (e->invoke(e->ctx, err) != 0) {
        if (err->code == HIL_ERR_NONE)
            hil_set_error(err, HIL_ERR_INVOKE_FAILED, 0, -1, "invoke failed");
        return -1;
    }
    return 0;
}

static const uint8_t *simple_output(void *ctx, uint32_t index, uint32_t *bytes)
{
    const hil_tensor *t = simple_tensor(ctx, 1, index);
    if (!t)
        return NULL;
    *bytes = t->bytes;
    return t->data;
}

static void simple_reset(void *ctx)
{
    hil_simple_engine *e = ctx;
    if (e->reset)
        e->reset(e->ctx);
}

void hil_simple_ops(hil_ops *ops, hil_simple_engine *e)
{
    memset(ops, 0, sizeof *ops);
    ops->ctx = e;
    ops->engine = e->name ? e->name : "user";
    ops->load = simple_load;
    ops->tensor_info = simple_tensor_info;
    ops->input = simple_input;
    ops->invoke = simple_invoke;
    ops->output = simple_output;
    ops->reset = simple_reset;
}
