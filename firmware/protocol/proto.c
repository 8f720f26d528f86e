#include "proto.h"

#include <string.h>

#include "crc32.h"

/* Replies are built in one frame; GET_OUTPUT's 8-byte header must fit. */
typedef char hil_max_payload_too_small[(HIL_MAX_PAYLOAD >= 64u && HIL_MAX_PAYLOAD <= 0xFFFFu) ? 1 : -1];

/* ---- little-endian helpers ------------------------------------------ */

static uint32_t get_u32(const uint8_t *p)
{
    return (uint32_t)p[0] | ((uint32_t)p[1] << 8) | ((uint32_t)p[2] << 16) |
           ((uint32_t)p[3] << 24);
}

static uint16_t get_u16(const uint8_t *p) { return (uint16_t)(p[0] | (p[1] << 8)); }

static uint8_t *put_u8(uint8_t *p, uint8_t v)
{
    *p = v;
    return p + 1;
}

static uint8_t *put_u16(uint8_t *p, uint16_t v)
{
    p[0] = (uint8_t)v;
    p[1] = (uint8_t)(v >> 8);
    return p + 2;
}

static uint8_t *put_u32(uint8_t *p, uint32_t v)
{
    for (int i = 0; i < 4; i++)
        p[i] = (uint8_t)(v >> (8 * i));
    return p + 4;
}

static uint8_t *put_u64(uint8_t *p, uint64_t v)
{
    p = put_u32(p, (uint32_t)v);
    return put_u32(p, (uint32_t)(v >> 32));
}

/* str8: u8 length + bytes, truncated to 255 and to the space left. */
static uint8_t *put_str8(uint8_t *p, const uint8_t *end, const char *s)
{
    size_t n = s ? strlen(s) : 0;
    if (n > 255)
        n = 255;
    if ((size_t)(end - p) < n + 1)
        n = (size_t)(end - p) - 1;
    *p++ = (uint8_t)n;
    memcpy(p, s, n);
    return p + n;
}

/* ---- sending ----------------------------------------------------------- */

/* Frame = type | seq | payload | crc32, COBS-encoded, then 0x00. `frame`
 * must have room for the 6 bytes of overhead around `len` bytes of payload
 * already placed at frame + 2. Returns the bytes written (0: none). */
static size_t send_built(const hil_port *port, uint8_t *frame, size_t len, uint8_t *enc,
                         size_t enc_cap)
{
    uint32_t crc = hil_crc32(0, frame, len + 2);
    put_u32(frame + 2 + len, crc);
    size_t n = cobs_encode(frame, len + HIL_FRAME_OVERHEAD, enc, enc_cap - 1);
    if (n == 0)
        return 0; /* cannot happen with the sizes used here */
    enc[n++] = 0;
    port->write(port->ctx, enc, n);
    return n;
}

void hil_send_frame(const hil_port *port, uint8_t type, uint8_t seq, const uint8_t *payload,
                    size_t len)
{
    uint8_t frame[HIL_MAX_UNPROMPTED + HIL_FRAME_OVERHEAD];
    uint8_t enc[COBS_MAX_ENCODED(sizeof frame) + 1];
    if (len > HIL_MAX_UNPROMPTED)
        len = HIL_MAX_UNPROMPTED;
    frame[0] = type;
    frame[1] = seq;
    if (len)
        memcpy(frame + 2, payload, len);
    send_built(port, frame, len, enc, sizeof enc);
}

static void put_le32(uint8_t *p, uint32_t v)
{
    for (int i = 0; i < 4; i++)
        p[i] = (uint8_t)(v >> (8 * i));
}

void hil_send_fault(const hil_port *port, const hil_fault *f)
{
    static const uint8_t delimiter = 0;
    uint8_t payload[1 + 7 * 4];
    payload[0] = f->kind;
    put_le32(payload + 1, f->pc);
    put_le32(payload + 5, f->lr);
    put_le32(payload + 9, f->cfsr);
    put_le32(payload + 13, f->hfsr);
    put_le32(payload + 17, f->mmfar);
    put_le32(payload + 21, f->bfar);
    put_le32(payload + 25, f->sp);
    port->write(port->ctx, &delimiter, 1); /* end a cut-off frame */
    hil_send_frame(port, HIL_MSG_FAULT, 0, payload, sizeof payload);
}

/* Replies are built in place in s->tx: payload starts at s->tx + 2. */
static uint8_t *reply_payload(hil_server *s) { return s->tx + 2; }

/* The reply to a request: encoded into s->tx_encoded, which keeps it for
 * a retransmission of the same request. */
static void send_reply(hil_server *s, uint8_t type, uint8_t seq, size_t len)
{
    s->tx[0] = (uint8_t)(type | HIL_MSG_REPLY);
    s->tx[1] = seq;
    s->last_reply_len = send_built(s->port, s->tx, len, s->tx_encoded, sizeof s->tx_encoded);
}

/* ERROR payload: code, detail, op_index, then as much of the message as
 * the frame holds (HIL_MAX_MESSAGE bytes: all of a hil_error's). */
static size_t put_error(uint8_t *payload, const hil_error *e)
{
    uint8_t *p = payload;
    p = put_u8(p, e->code);
    p = put_u32(p, e->detail);
    p = put_u16(p, (uint16_t)e->op_index);
    size_t n = 0;
    while (n < HIL_MAX_MESSAGE && n < sizeof e->message && e->message[n])
        n++;
    memcpy(p, e->message, n);
    return HIL_ERROR_HEADER + n;
}

static void send_error(hil_server *s, uint8_t seq, const hil_error *e)
{
    size_t len = put_error(reply_payload(s), e);
    s->tx[0] = HIL_MSG_ERROR;
    s->tx[1] = seq;
    s->last_reply_len = send_built(s->port, s->tx, len, s->tx_encoded, sizeof s->tx_encoded);
}

/* A cleared s->err for a handler or an engine call to fill. */
static hil_error *fresh_error(hil_server *s)
{
    memset(&s->err, 0, sizeof s->err);
    s->err.op_index = -1;
    return &s->err;
}

static void fail(hil_server *s, uint8_t seq, uint8_t code, uint32_t detail, const char *msg)
{
    hil_error *e = fresh_error(s);
    e->code = code;
    e->detail = detail;
    strncpy(e->message, msg, sizeof e->message - 1);
    send_error(s, seq, e);
}

/* BAD_FRAME for bytes that are no request: a small frame of its own (seq 0,
 * which the host never waits for), so the reply kept for a retransmission
 * survives the noise that made the host retransmit. */
static void drop_frame(hil_server *s, uint32_t detail, const char *msg)
{
    uint8_t payload[HIL_ERROR_HEADER + 48];
    size_t n = 0;
    s->frames_dropped++;
    payload[0] = HIL_ERR_BAD_FRAME;
    put_u32(payload + 1, detail);
    put_u16(payload + 5, 0xFFFFu);
    while (msg[n] && HIL_ERROR_HEADER + n < sizeof payload) {
        payload[HIL_ERROR_HEADER + n] = (uint8_t)msg[n];
        n++;
    }
    hil_send_frame(s->port, HIL_MSG_ERROR, 0, payload, HIL_ERROR_HEADER + n);
}

/* ---- requests ---------------------------------------------------------- */

static void on_hello(hil_server *s, uint8_t seq)
{
    const hil_port *port = s->port;
    uint8_t *start = reply_payload(s);
    uint8_t *end = start + HIL_MAX_PAYLOAD;
    uint8_t flags = 0;
    if (port->read_file)
        flags |= 1u;
    if (port->counter && port->counter_source != HIL_COUNTER_NONE)
        flags |= 2u;
    if (s->baked)
        flags |= 4u;
    flags |= 8u;  /* INVOKE takes OUTPUTS, PROFILE and INPUTS: one round trip per vector */
    flags |= 16u; /* INVOKE takes NEXT: the batch cursor */
    uint8_t *p = start;
    p = put_u8(p, HIL_PROTOCOL_VERSION);
    p = put_u8(p, flags);
    p = put_u16(p, (uint16_t)HIL_MAX_PAYLOAD);
    p = put_u32(p, s->arena_size);
    p = put_u32(p, s->model_capacity);
    p = put_u32(p, port->clock_hz);
    p = put_str8(p, end, port->build_id);
    p = put_str8(p, end, s->ops->engine);
    p = put_str8(p, end, port->platform);
    send_reply(s, HIL_MSG_HELLO, seq, (size_t)(p - start));
}

/* Common header of LOAD_MODEL and SET_INPUT after their own prefix:
 * u8 source, u32 total, u32 offset, then data or a path. */
typedef struct {
    uint8_t source;
    uint32_t total, offset;
    const uint8_t *data;
    size_t data_len;
    char path[HIL_MAX_PATH + 1];
} transfer;

static int parse_transfer(const uint8_t *p, size_t len, transfer *t)
{
    if (len < 9)
        return -1;
    t->source = p[0];
    t->total = get_u32(p + 1);
    t->offset = get_u32(p + 5);
    t->data = p + 9;
    t->data_len = len - 9;
    t->path[0] = 0;
    if (t->source == HIL_SOURCE_FILE) {
        if (t->data_len == 0 || t->data_len > HIL_MAX_PATH)
            return -1;
        memcpy(t->path, t->data, t->data_len);
        t->path[t->data_len] = 0;
    } else if (t->source != HIL_SOURCE_INLINE && t->source != HIL_SOURCE_BAKED) {
        return -1;
    }
    return 0;
}

/* Copy a transfer into dst[0..capacity); `state` tracks inline progress.
 * The first chunk (offset 0) latches the total; a continuation must carry
 * that same total and continue where the last chunk ended, and every bound
 * is checked in 64 bits against the latched total and the destination's
 * own capacity. Any refusal ends the transfer (it restarts at offset 0).
 * Returns 1 when complete, 0 when more chunks are expected, -1 after
 * sending an error. */
static int receive(hil_server *s, uint8_t seq, const transfer *t, uint8_t *dst,
                   uint32_t capacity, hil_transfer *state)
{
    if (t->total > capacity) { /* callers check too; the buffer's own bound is checked here */
        state->active = 0;
        fail(s, seq, HIL_ERR_BAD_SEQUENCE, capacity, "transfer larger than its destination");
        return -1;
    }
    if (t->source == HIL_SOURCE_FILE) {
        state->active = 0;
        if (!s->port->read_file) {
            fail(s, seq, HIL_ERR_NOT_SUPPORTED, 0,
                 "this firmware cannot read host files (no semihosting)");
            return -1;
        }
        long got = s->port->read_file(s->port->ctx, t->path, t->offset, dst, t->total);
        if (got < 0 || (uint64_t)got != (uint64_t)t->total) {
            fail(s, seq, HIL_ERR_IO, got < 0 ? 0u : (uint32_t)got, "host file read failed");
            return -1;
        }
        state->total = state->received = t->total;
        return 1;
    }
    if (t->offset == 0) {
        state->total = t->total;
        state->received = 0;
        state->active = 1;
    } else if (!state->active) {
        fail(s, seq, HIL_ERR_BAD_SEQUENCE, 0, "continuation chunk without a first chunk (offset 0)");
        return -1;
    } else if (t->total != state->total) {
        state->active = 0;
        fail(s, seq, HIL_ERR_BAD_SEQUENCE, state->total,
             "continuation chunk's total differs from the first chunk's");
        return -1;
    } else if (t->offset != state->received) {
        state->active = 0;
        fail(s, seq, HIL_ERR_BAD_SEQUENCE, state->received, "chunk out of order");
        return -1;
    }
    if ((uint64_t)t->offset + (uint64_t)t->data_len > (uint64_t)state->total ||
        (uint64_t)state->total > (uint64_t)capacity) {
        state->active = 0;
        fail(s, seq, HIL_ERR_BAD_SEQUENCE, state->total, "chunk runs past the total size");
        return -1;
    }
    memcpy(dst + t->offset, t->data, t->data_len);
    state->received += (uint32_t)t->data_len;
    if (state->received == state->total) {
        state->active = 0;
        return 1;
    }
    return 0;
}

/* Hand a complete model to the engine and answer LOAD_MODEL. */
static void load_in_place(hil_server *s, uint8_t seq, const uint8_t *model, uint32_t len)
{
    hil_error *e = fresh_error(s);
    uint32_t arena_used = 0;
    if (s->ops->load(s->ops->ctx, model, len, &s->n_inputs, &s->n_outputs, &arena_used, e) != 0) {
        e->message[sizeof e->message - 1] = 0;
        send_error(s, seq, e);
        return;
    }
    s->current = model;
    s->model_total = len;
    s->model_loaded = 1;
    memset(s->input_transfer, 0, sizeof s->input_transfer);
    uint8_t *out = reply_payload(s);
    uint8_t *q = out;
    q = put_u8(q, s->n_inputs);
    q = put_u8(q, s->n_outputs);
    q = put_u32(q, arena_used);
    q = put_u32(q, hil_crc32(0, model, len));
    send_reply(s, HIL_MSG_LOAD_MODEL, seq, (size_t)(q - out));
}

static void on_load_model(hil_server *s, uint8_t seq, const uint8_t *p, size_t len)
{
    transfer t;
    s->batch.active = 0; /* a new model may have other inputs */
    if (parse_transfer(p, len, &t) != 0) {
        fail(s, seq, HIL_ERR_BAD_PAYLOAD, 0, "LOAD_MODEL payload malformed");
        return;
    }
    if (t.source == HIL_SOURCE_BAKED) {
        if (!s->baked) {
            fail(s, seq, HIL_ERR_NOT_SUPPORTED, 0, "this firmware has no baked model");
            return;
        }
        s->model_loaded = 0;
        load_in_place(s, seq, s->baked, s->baked_len);
        return;
    }
    if (t.total > s->model_capacity) {
        fail(s, seq, HIL_ERR_MODEL_TOO_LARGE, s->model_capacity,
             "model larger than the firmware's model buffer");
        return;
    }
    if (t.offset == 0 || t.source == HIL_SOURCE_FILE)
        s->model_loaded = 0;
    int done = receive(s, seq, &t, s->model, s->model_capacity, &s->model_transfer);
    if (done < 0)
        return;
    if (done == 0) {
        send_reply(s, HIL_MSG_LOAD_MODEL, seq, 0);
        return;
    }
    load_in_place(s, seq, s->model, t.total);
}

static int need_model(hil_server *s, uint8_t seq)
{
    if (!s->model_loaded) {
        fail(s, seq, HIL_ERR_NO_MODEL, 0, "no model loaded");
        return 0;
    }
    return 1;
}

static void on_set_input(hil_server *s, uint8_t seq, const uint8_t *p, size_t len)
{
    transfer t;
    if (len < 1 || parse_transfer(p + 1, len - 1, &t) != 0 || t.source == HIL_SOURCE_BAKED) {
        fail(s, seq, HIL_ERR_BAD_PAYLOAD, 0, "SET_INPUT payload malformed");
        return;
    }
    if (!need_model(s, seq))
        return;
    uint8_t index = p[0];
    uint32_t bytes = 0;
    uint8_t *dst = index < s->n_inputs && index < HIL_MAX_TENSORS_IO
                       ? s->ops->input(s->ops->ctx, index, &bytes)
                       : NULL;
    if (!dst) {
        fail(s, seq, HIL_ERR_BAD_INDEX, index, "no such input");
        return;
    }
    if (t.total != bytes) {
        s->input_transfer[index].active = 0;
        fail(s, seq, HIL_ERR_BAD_SEQUENCE, bytes, "input size differs from the tensor's");
        return;
    }
    if (receive(s, seq, &t, dst, bytes, &s->input_transfer[index]) >= 0)
        send_reply(s, HIL_MSG_SET_INPUT, seq, 0);
}

/* INVOKE OUTPUTS: u8 n, then n x (u32 bytes, data): the outputs in order, as
 * many whole ones as fit before `end`; the host asks GET_OUTPUT for the rest. */
static uint8_t *put_outputs(hil_server *s, uint8_t *q, const uint8_t *end)
{
    uint8_t *count = q++;
    *count = 0;
    for (uint8_t i = 0; i < s->n_outputs; i++) {
        uint32_t bytes = 0;
        const uint8_t *src = s->ops->output(s->ops->ctx, i, &bytes);
        if (!src || bytes > (uint32_t)(end - q) || (uint32_t)(end - q) - bytes < 4u + 4u)
            break; /* keep room for the profile's header */
        q = put_u32(q, bytes);
        memcpy(q, src, bytes);
        q += bytes;
        (*count)++;
    }
    return q;
}

/* INVOKE PROFILE: u16 total, u16 n, then n entries as GET_PROFILE's (from
 * operator 0, as many as fit); total 0xFFFF: the engine does not profile. */
static uint8_t *put_profile(hil_server *s, uint8_t *q, const uint8_t *end)
{
    enum { CHUNK = 16 };
    if (end - q < 4)
        return q;
    if (!s->ops->profile)
        return put_u16(put_u16(q, 0xFFFFu), 0);
    uint8_t *head = q;
    q += 4;
    uint32_t total = 0, n = 0;
    hil_op_profile entries[CHUNK];
    for (;;) {
        total = s->ops->profile(s->ops->ctx, (uint16_t)n, entries, CHUNK);
        uint32_t got = total > n ? total - n : 0;
        if (got > CHUNK)
            got = CHUNK;
        uint32_t i = 0;
        for (; i < got && end - q >= 8; i++) {
            q = put_u16(q, entries[i].op_index);
            q = put_u16(q, entries[i].builtin);
            q = put_u32(q, entries[i].count);
        }
        n += i;
        if (i < got || got == 0 || n >= total)
            break;
    }
    put_u16(put_u16(head, (uint16_t)total), (uint16_t)n);
    return q;
}

/* Read input i (the tensor's whole size) at offset[i] of host file `path`,
 * for i < n. 0 when done, else the error is sent. */
static int read_inputs_at(hil_server *s, uint8_t seq, const char *path, const uint32_t *offset, uint8_t n)
{
    if (!s->port->read_file) {
        fail(s, seq, HIL_ERR_NOT_SUPPORTED, 0, "this firmware cannot read host files (no semihosting)");
        return -1;
    }
    for (uint8_t i = 0; i < n; i++) {
        uint32_t bytes = 0;
        uint8_t *dst = i < HIL_MAX_TENSORS_IO && i < s->n_inputs ? s->ops->input(s->ops->ctx, i, &bytes) : NULL;
        if (!dst) {
            fail(s, seq, HIL_ERR_BAD_INDEX, i, "no such input");
            return -1;
        }
        s->input_transfer[i].active = 0; /* replaced whole, as by SET_INPUT's file source */
        long got = s->port->read_file(s->port->ctx, path, offset[i], dst, bytes);
        if (got < 0 || (uint64_t)got != (uint64_t)bytes) {
            fail(s, seq, HIL_ERR_IO, got < 0 ? 0u : (uint32_t)got, "host file read failed");
            return -1;
        }
    }
    return 0;
}

/* INVOKE INPUTS: p[0..len) is u8 n, n x u32 offset, [u32 stride when
 * `next`], path. With `next` the device keeps path, offsets and stride as
 * the batch cursor (before reading: a failed read still moves the cursor,
 * so the host's next NEXT names the vector after). 0 when done, else the
 * error is sent. */
static int read_inputs(hil_server *s, uint8_t seq, const uint8_t *p, size_t len, int next)
{
    uint8_t n = len > 0 ? p[0] : 0;
    size_t head = 1u + 4u * n + (next ? 4u : 0u);
    s->batch.active = 0;
    if (len < head + 1u || len - head > HIL_MAX_PATH || n > s->n_inputs || n > HIL_MAX_TENSORS_IO) {
        fail(s, seq, HIL_ERR_BAD_PAYLOAD, 0, "INVOKE INPUTS payload malformed");
        return -1;
    }
    hil_batch *b = &s->batch;
    size_t path_len = len - head;
    memcpy(b->path, p + head, path_len);
    b->path[path_len] = 0;
    for (uint8_t i = 0; i < n; i++)
        b->offset[i] = get_u32(p + 1 + 4u * i);
    b->n = n;
    b->stride = next ? get_u32(p + 1 + 4u * n) : 0;
    b->active = (uint8_t)(next != 0);
    return read_inputs_at(s, seq, b->path, b->offset, n);
}

/* INVOKE NEXT alone: the batch cursor moves on by its stride, and the
 * inputs are read from there. 0 when done, else the error is sent. */
static int read_next_inputs(hil_server *s, uint8_t seq)
{
    hil_batch *b = &s->batch;
    if (!b->active) {
        fail(s, seq, HIL_ERR_BAD_SEQUENCE, 0, "INVOKE NEXT without a batch: send INVOKE INPUTS|NEXT first");
        return -1;
    }
    if (b->n > s->n_inputs) {
        b->active = 0;
        fail(s, seq, HIL_ERR_BAD_PAYLOAD, b->n, "INVOKE NEXT: the batch names more inputs than the model has");
        return -1;
    }
    for (uint8_t i = 0; i < b->n; i++) {
        if (b->offset[i] > UINT32_MAX - b->stride) {
            b->active = 0;
            fail(s, seq, HIL_ERR_LIMIT, i, "INVOKE NEXT: the batch offset would pass 4 GiB");
            return -1;
        }
    }
    for (uint8_t i = 0; i < b->n; i++)
        b->offset[i] += b->stride;
    return read_inputs_at(s, seq, b->path, b->offset, b->n);
}

static void on_invoke(hil_server *s, uint8_t seq, const uint8_t *p, size_t len)
{
    uint8_t flags = len > 0 ? p[0] : 0;
    int empty = (flags & HIL_INVOKE_EMPTY) != 0;
    int until = (flags & HIL_INVOKE_UNTIL) != 0;
    if (!empty && !need_model(s, seq))
        return;
    if (until && (len < 3 || !s->ops->invoke_until)) {
        fail(s, seq, len < 3 ? HIL_ERR_BAD_PAYLOAD : HIL_ERR_NOT_SUPPORTED, 0,
             len < 3 ? "INVOKE UNTIL needs the operator index" : "this engine cannot stop mid-graph");
        return;
    }
    if (!empty && !until && (flags & HIL_INVOKE_INPUTS) &&
        read_inputs(s, seq, p + 1, len - 1, (flags & HIL_INVOKE_NEXT) != 0) != 0)
        return;
    if (!empty && !until && (flags & (HIL_INVOKE_INPUTS | HIL_INVOKE_NEXT)) == HIL_INVOKE_NEXT &&
        read_next_inputs(s, seq) != 0)
        return;
    const hil_port *port = s->port;
    hil_error *e = fresh_error(s);
    if (port->counter_restart)
        port->counter_restart(port->ctx);
    uint64_t start = port->counter ? port->counter(port->ctx) : 0;
    int rc = empty ? 0
             : until ? s->ops->invoke_until(s->ops->ctx, get_u16(p + 1), e)
                     : s->ops->invoke(s->ops->ctx, e);
    uint64_t end = port->counter ? port->counter(port->ctx) : 0;
    if (rc != 0) {
        e->message[sizeof e->message - 1] = 0;
        send_error(s, seq, e);
        return;
    }
    uint8_t *out = reply_payload(s);
    uint8_t *q = put_u8(out, port->counter ? port->counter_source : HIL_COUNTER_NONE);
    q = put_u64(q, end - start);
    if (!empty && !until && (flags & HIL_INVOKE_OUTPUTS))
        q = put_outputs(s, q, out + HIL_MAX_PAYLOAD);
    if (!empty && !until && (flags & HIL_INVOKE_PROFILE))
        q = put_profile(s, q, out + HIL_MAX_PAYLOAD);
    send_reply(s, HIL_MSG_INVOKE, seq, (size_t)(q - out));
}

/* GET_OUTPUT and GET_TENSOR reply: total size, offset, then up to max_len
 * bytes of `src` (`bytes` long) from `offset`, as many as fit one frame. */
static void reply_chunk(hil_server *s, uint8_t seq, uint8_t type, const uint8_t *src, uint32_t bytes,
                        uint32_t offset, uint32_t max_len, const char *past_end)
{
    if (!src || offset > bytes) {
        fail(s, seq, HIL_ERR_BAD_PAYLOAD, bytes, past_end);
        return;
    }
    uint32_t n = bytes - offset;
    if (n > max_len)
        n = max_len;
    if (n > HIL_MAX_PAYLOAD - 8)
        n = HIL_MAX_PAYLOAD - 8;
    uint8_t *out = reply_payload(s);
    uint8_t *q = put_u32(out, bytes);
    q = put_u32(q, offset);
    memcpy(q, src + offset, n);
    send_reply(s, type, seq, 8 + n);
}

static void on_get_output(hil_server *s, uint8_t seq, const uint8_t *p, size_t len)
{
    if (len < 7) {
        fail(s, seq, HIL_ERR_BAD_PAYLOAD, 0, "GET_OUTPUT payload malformed");
        return;
    }
    if (!need_model(s, seq))
        return;
    uint8_t index = p[0];
    uint32_t offset = get_u32(p + 1);
    uint32_t max_len = get_u16(p + 5);
    uint32_t bytes = 0;
    const uint8_t *src = index < s->n_outputs ? s->ops->output(s->ops->ctx, index, &bytes) : NULL;
    if (!src) {
        fail(s, seq, HIL_ERR_BAD_INDEX, index, "no such output");
        return;
    }
    reply_chunk(s, seq, HIL_MSG_GET_OUTPUT, src, bytes, offset, max_len, "offset past the end of the output");
}

static void on_reset(hil_server *s, uint8_t seq, const uint8_t *p, size_t len)
{
    uint8_t mode = len > 0 ? p[0] : 0;
    if (mode == 1) {
        send_reply(s, HIL_MSG_RESET, seq, 0);
        if (s->port->reboot)
            s->port->reboot(s->port->ctx);
        return;
    }
    if (s->model_loaded)
        s->ops->reset(s->ops->ctx);
    s->batch.active = 0;
    send_reply(s, HIL_MSG_RESET, seq, 0);
}

static void on_tensor_info(hil_server *s, uint8_t seq, const uint8_t *p, size_t len)
{
    if (len < 2) {
        fail(s, seq, HIL_ERR_BAD_PAYLOAD, 0, "TENSOR_INFO payload malformed");
        return;
    }
    if (!need_model(s, seq))
        return;
    hil_tensor_info info;
    memset(&info, 0, sizeof info);
    if (s->ops->tensor_info(s->ops->ctx, p[0] != 0, p[1], &info) != 0) {
        fail(s, seq, HIL_ERR_BAD_INDEX, p[1], "no such tensor");
        return;
    }
    uint8_t *out = reply_payload(s);
    uint8_t *q = put_u8(out, info.dtype);
    uint8_t nd = info.ndims > 6 ? 6 : info.ndims;
    q = put_u8(q, nd);
    for (uint8_t i = 0; i < nd; i++)
        q = put_u32(q, (uint32_t)info.dims[i]);
    q = put_u32(q, info.bytes);
    uint32_t scale_bits;
    memcpy(&scale_bits, &info.scale, 4);
    q = put_u32(q, scale_bits);
    q = put_u32(q, (uint32_t)info.zero_point);
    send_reply(s, HIL_MSG_TENSOR_INFO, seq, (size_t)(q - out));
}

static void on_get_profile(hil_server *s, uint8_t seq, const uint8_t *p, size_t len)
{
    if (len < 2) {
        fail(s, seq, HIL_ERR_BAD_PAYLOAD, 0, "GET_PROFILE payload malformed");
        return;
    }
    if (!need_model(s, seq))
        return;
    if (!s->ops->profile) {
        fail(s, seq, HIL_ERR_NOT_SUPPORTED, 0, "this engine does not profile operators");
        return;
    }
    enum { PER_FRAME = (HIL_MAX_PAYLOAD - 4) / 8 };
    hil_op_profile entries[PER_FRAME];
    uint16_t first = get_u16(p);
    uint32_t total = s->ops->profile(s->ops->ctx, first, entries, PER_FRAME);
    uint32_t n = total > first ? total - first : 0;
    if (n > PER_FRAME)
        n = PER_FRAME;
    uint8_t *out = reply_payload(s);
    uint8_t *q = put_u16(out, (uint16_t)total);
    q = put_u16(q, first);
    for (uint32_t i = 0; i < n; i++) {
        q = put_u16(q, entries[i].op_index);
        q = put_u16(q, entries[i].builtin);
        q = put_u32(q, entries[i].count);
    }
    send_reply(s, HIL_MSG_GET_PROFILE, seq, (size_t)(q - out));
}

static void on_get_tensor(hil_server *s, uint8_t seq, const uint8_t *p, size_t len)
{
    if (len < 8) {
        fail(s, seq, HIL_ERR_BAD_PAYLOAD, 0, "GET_TENSOR payload malformed");
        return;
    }
    if (!need_model(s, seq))
        return;
    if (!s->ops->tensor) {
        fail(s, seq, HIL_ERR_NOT_SUPPORTED, 0, "this engine cannot read intermediate tensors");
        return;
    }
    uint16_t index = get_u16(p);
    uint32_t offset = get_u32(p + 2);
    uint32_t max_len = get_u16(p + 6);
    uint32_t bytes = 0;
    const uint8_t *src = s->ops->tensor(s->ops->ctx, index, &bytes);
    if (!src) {
        fail(s, seq, HIL_ERR_BAD_INDEX, index, "no such tensor, or it has no storage");
        return;
    }
    reply_chunk(s, seq, HIL_MSG_GET_TENSOR, src, bytes, offset, max_len, "offset past the end of the tensor");
}

static void on_get_memory(hil_server *s, uint8_t seq)
{
    hil_memory m;
    memset(&m, 0, sizeof m);
    m.arena_size = s->arena_size;
    if (s->model_loaded && s->ops->memory)
        s->ops->memory(s->ops->ctx, &m);
    if (s->port->stack)
        s->port->stack(s->port->ctx, &m.stack_size, &m.stack_high_water);
    uint8_t *out = reply_payload(s);
    uint8_t *q = put_u32(out, m.arena_size);
    q = put_u32(q, m.arena_planned);
    q = put_u32(q, m.arena_high_water);
    q = put_u32(q, m.stack_size);
    q = put_u32(q, m.stack_high_water);
    q = put_u32(q, s->model_capacity);
    q = put_u32(q, s->model_loaded ? s->model_total : 0);
    send_reply(s, HIL_MSG_GET_MEMORY, seq, (size_t)(q - out));
}

static void dispatch(hil_server *s, const uint8_t *frame, size_t len)
{
    uint8_t type = frame[0], seq = frame[1];
    const uint8_t *p = frame + 2;
    size_t n = len - HIL_FRAME_OVERHEAD;
    switch (type) {
    case HIL_MSG_HELLO: on_hello(s, seq); break;
    case HIL_MSG_LOAD_MODEL: on_load_model(s, seq, p, n); break;
    case HIL_MSG_SET_INPUT: on_set_input(s, seq, p, n); break;
    case HIL_MSG_INVOKE: on_invoke(s, seq, p, n); break;
    case HIL_MSG_GET_OUTPUT: on_get_output(s, seq, p, n); break;
    case HIL_MSG_RESET: on_reset(s, seq, p, n); break;
    case HIL_MSG_TENSOR_INFO: on_tensor_info(s, seq, p, n); break;
    case HIL_MSG_GET_PROFILE: on_get_profile(s, seq, p, n); break;
    case HIL_MSG_GET_MEMORY: on_get_memory(s, seq); break;
    case HIL_MSG_GET_TENSOR: on_get_tensor(s, seq, p, n); break;
    default: fail(s, seq, HIL_ERR_UNKNOWN_TYPE, type, "unknown request type"); break;
    }
}

/* ---- receiving --------------------------------------------------------- */

void hil_server_init(hil_server *s, const hil_port *port, const hil_ops *ops,
                     uint8_t *model_buf, uint32_t model_capacity, uint32_t arena_size)
{
    memset(s, 0, sizeof *s);
    s->port = port;
    s->ops = ops;
    s->model = model_buf;
    s->model_capacity = model_capacity;
    s->arena_size = arena_size;
}

static void frame_complete(hil_server *s)
{
    /* decode in place: COBS output is never longer than its input */
    long n = cobs_decode(s->rx, s->rx_len, s->rx, sizeof s->rx);
    if (n < (long)HIL_FRAME_OVERHEAD || (size_t)n > HIL_MAX_FRAME) {
        drop_frame(s, (uint32_t)(n < 0 ? 0 : n), "malformed frame dropped");
        return;
    }
    uint32_t crc = get_u32(s->rx + n - 4);
    if (hil_crc32(0, s->rx, (size_t)n - 4) != crc) {
        drop_frame(s, 0, "frame CRC mismatch, frame dropped");
        return;
    }
    uint8_t type = s->rx[0], seq = s->rx[1];
    if (s->last_reply_len > 0 && type == s->last_type && seq == s->last_seq &&
        crc == s->last_crc) {
        /* a retransmission: its reply was lost, the request already ran */
        s->requests_replayed++;
        s->port->write(s->port->ctx, s->tx_encoded, s->last_reply_len);
        return;
    }
    s->last_reply_len = 0;
    dispatch(s, s->rx, (size_t)n);
    s->last_type = type;
    s->last_seq = seq;
    s->last_crc = crc;
}

void hil_server_set_baked(hil_server *s, const uint8_t *model, uint32_t len)
{
    s->baked = model;
    s->baked_len = len;
}

void hil_server_feed(hil_server *s, uint8_t byte)
{
    if (byte == 0) {
        if (s->rx_overflow) {
            drop_frame(s, HIL_MAX_PAYLOAD, "frame longer than max_payload dropped");
        } else if (s->rx_len > 0) {
            frame_complete(s);
        }
        s->rx_len = 0;
        s->rx_overflow = 0;
        return;
    }
    if (s->rx_len >= sizeof s->rx) {
        s->rx_overflow = 1;
        return;
    }
    s->rx[s->rx_len++] = byte;
}

/* ---- build id ------------------------------------------------------------ */

/* Weak, so an image whose linker script does not define them links anyway
 * (and reports no build id). */
extern const uint8_t __build_id_start__[] __attribute__((weak));
extern const uint8_t __build_id_end__[] __attribute__((weak));

const char *hil_build_id(void)
{
    static char hex_id[41];
    static const char hex[] = "0123456789abcdef";
    const uint8_t *note = __build_id_start__;
    const uint8_t *end = __build_id_end__;
    if (hex_id[0] || !note || !end || end - note < 16)
        return hex_id;
    /* ELF note: namesz, descsz, type, name ("GNU\0", padded to 4), desc */
    uint32_t namesz, descsz;
    memcpy(&namesz, note, 4);
    memcpy(&descsz, note + 4, 4);
    const uint8_t *desc = note + 12 + ((namesz + 3u) & ~3u);
    if (descsz > 20 || desc + descsz > end)
        return hex_id;
    for (uint32_t i = 0; i < descsz; i++) {
        hex_id[2 * i] = hex[desc[i] >> 4];
        hex_id[2 * i + 1] = hex[desc[i] & 0xF];
    }
    hex_id[2 * descsz] = 0;
    return hex_id;
}
