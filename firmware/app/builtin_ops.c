/*
 * The built-in engine served through the protocol's hil_ops interface.
 * Another engine (TFLM) plugs into the server the same way.
 */
#include "builtin_ops.h"

#include <string.h>

#include "../protocol/proto.h"

static uint8_t to_protocol_error(eng_status st)
{
    switch (st) {
    case ENG_OK: return HIL_ERR_NONE;
    case ENG_E_MODEL_INVALID: return HIL_ERR_MODEL_INVALID;
    case ENG_E_UNSUPPORTED_OP: return HIL_ERR_UNSUPPORTED_OP;
    case ENG_E_UNSUPPORTED: return HIL_ERR_UNSUPPORTED;
    case ENG_E_ARENA_TOO_SMALL: return HIL_ERR_ARENA_TOO_SMALL;
    case ENG_E_LIMIT: return HIL_ERR_LIMIT;
    case ENG_E_NO_MODEL: return HIL_ERR_NO_MODEL;
    case ENG_E_BAD_INDEX: return HIL_ERR_BAD_INDEX;
    case ENG_E_INVOKE: return HIL_ERR_INVOKE_FAILED;
    }
    return HIL_ERR_INVOKE_FAILED;
}

static void copy_error(const eng_error *from, hil_error *to)
{
    to->code = to_protocol_error(from->status);
    to->detail = from->detail;
    to->op_index = (int16_t)from->op_index;
    strncpy(to->message, from->message, sizeof to->message - 1);
    to->message[sizeof to->message - 1] = 0;
}

/* Painted into the arena before each load: the highest byte that no longer
 * holds it after invokes is the measured high-water mark. */
#define ARENA_PAINT 0xA5u

static int builtin_load(void *ctx, const uint8_t *model, uint32_t len, uint8_t *n_inputs,
                        uint8_t *n_outputs, uint32_t *arena_used, hil_error *err)
{
    builtin_engine *b = ctx;
    memset(b->arena, ARENA_PAINT, b->arena_size);
    b->n_profiled = 0;
    if (eng_load(&b->eng, model, len, b->arena, b->arena_size, &b->error) != ENG_OK) {
        copy_error(&b->error, err);
        return -1;
    }
    *n_inputs = b->eng.n_inputs;
    *n_outputs = b->eng.n_outputs;
    *arena_used = b->eng.arena_used;
    return 0;
}

static int builtin_tensor_info(void *ctx, int is_output, uint32_t index, hil_tensor_info *info)
{
    builtin_engine *b = ctx;
    eng_tensor_info t;
    eng_status st = is_output ? eng_output_info(&b->eng, index, &t)
                              : eng_input_info(&b->eng, index, &t);
    if (st != ENG_OK)
        return -1;
    info->dtype = t.dtype;
    info->ndims = t.ndims;
    memcpy(info->dims, t.dims, sizeof info->dims);
    info->bytes = t.bytes;
    info->scale = t.scale;
    info->zero_point = t.zero_point;
    return 0;
}

static uint8_t *builtin_input(void *ctx, uint32_t index, uint32_t *bytes)
{
    builtin_engine *b = ctx;
    return eng_input_data(&b->eng, index, bytes);
}

/* Called after each operator: one counter read; its count is the delta
 * since the previous read, so the per-operator counts partition the invoke
 * (each includes the loop's dispatch and this hook's own bookkeeping). */
#ifdef HIL_CORRUPT_OP
/* Firmware built to compute one operator wrongly on purpose, to test that
 * localisation names it (tests/test_localize.py). */
static void corrupt(builtin_engine *b, uint32_t op_index)
{
    if (op_index != HIL_CORRUPT_OP)
        return;
    uint32_t bytes = 0;
    uint8_t *out = (uint8_t *)(uintptr_t)eng_tensor_data(&b->eng, (uint32_t)b->eng.ops[op_index].outputs[0], &bytes);
    if (out && bytes)
        out[0] ^= 0x01u;
}
#else
#define corrupt(b, op_index) ((void)0)
#endif

static void after_op(void *ctx, uint32_t op_index, int32_t builtin)
{
    builtin_engine *b = ctx;
    corrupt(b, op_index);
    if (!b->counter)
        return;
    const uint64_t now = b->counter();
    if (b->n_profiled < ENG_MAX_OPS) {
        hil_op_profile *p = &b->profile[b->n_profiled++];
        p->op_index = (uint16_t)op_index;
        p->builtin = (uint16_t)builtin;
        p->count = (uint32_t)(now - b->mark);
    }
    b->mark = now;
}

static int builtin_invoke(void *ctx, hil_error *err)
{
    builtin_engine *b = ctx;
    b->invokes++;
    if (b->before_invoke)
        b->before_invoke(b->invokes);
    b->n_profiled = 0;
    if (b->counter)
        b->mark = b->counter();
    if (eng_invoke(&b->eng, after_op, b, &b->error) != ENG_OK) {
        copy_error(&b->error, err);
        return -1;
    }
    return 0;
}

static const uint8_t *builtin_output(void *ctx, uint32_t index, uint32_t *bytes)
{
    builtin_engine *b = ctx;
    return eng_output_data(&b->eng, index, bytes);
}

static void builtin_reset(void *ctx)
{
    builtin_engine *b = ctx;
    eng_reset(&b->eng);
}

static uint32_t builtin_profile(void *ctx, uint32_t first, hil_op_profile *out, uint32_t max)
{
    builtin_engine *b = ctx;
    for (uint32_t i = 0; i < max && first + i < b->n_profiled; i++)
        out[i] = b->profile[first + i];
    return b->n_profiled;
}

static void builtin_memory(void *ctx, hil_memory *m)
{
    builtin_engine *b = ctx;
    uint32_t top = b->arena_size;
    while (top > 0 && b->arena[top - 1] == ARENA_PAINT)
        top--;
    m->arena_size = b->arena_size;
    m->arena_planned = b->eng.arena_used;
    m->arena_high_water = top;
}

static int builtin_invoke_until(void *ctx, uint32_t last_op, hil_error *err)
{
    builtin_engine *b = ctx;
    b->n_profiled = 0;
    if (b->counter)
        b->mark = b->counter();
    if (eng_invoke_until(&b->eng, last_op, after_op, b, &b->error) != ENG_OK) {
        copy_error(&b->error, err);
        return -1;
    }
    return 0;
}

static const uint8_t *builtin_tensor(void *ctx, uint32_t index, uint32_t *bytes)
{
    builtin_engine *b = ctx;
    return eng_tensor_data(&b->eng, index, bytes);
}

void builtin_ops_init(hil_ops *ops, builtin_engine *b)
{
    memset(ops, 0, sizeof *ops);
    ops->ctx = b;
    ops->engine = "builtin";
    ops->load = builtin_load;
    ops->tensor_info = builtin_tensor_info;
    ops->input = builtin_input;
    ops->invoke = builtin_invoke;
    ops->output = builtin_output;
    ops->reset = builtin_reset;
    ops->profile = builtin_profile;
    ops->memory = builtin_memory;
    ops->invoke_until = builtin_invoke_until;
    ops->tensor = builtin_tensor;
}
