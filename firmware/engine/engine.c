/*
 * eng_load: the steps of loading a model, in order. Each step is its own
 * file: the loader reads the flatbuffer into tables and binds kernels
 * (loader.c), the graph puts the operators in execution order (graph.c),
 * resource variables are named and sized (resource_vars.c), every kernel
 * prepares its operator once, writing its per-op data straight into the
 * arena, the planner places the tensors (planner.c), and every tensor's
 * data pointer is resolved so an invoke looks nothing up.
 *
 * Arena: [align pad][per-op data][resource variables][tensor plan].
 */
#include "graph.h"
#include "loader.h"
#include "planner.h"
#include "resource_vars.h"

/* Room left for per-op data once `used` bytes of it are taken: what the
 * arena holds after its pad and the variables (which follow the per-op
 * data), capped at what a uint32_t and a tensor offset can address. */
static uint32_t op_data_room(uint64_t arena_room, uint64_t used)
{
    const uint64_t room = arena_room > used ? arena_room - used : 0;
    return room > 0x7fffffffu ? 0x7fffffffu : (uint32_t)room;
}

/* Every operator's prepare, once, in operator order (the order of their
 * errors); per-op data is laid out from the arena's start as it comes. */
static eng_status prepare_ops(eng_t *e, uint8_t *arena, uint32_t base_pad,
                              uint64_t arena_room, uint64_t *persistent,
                              eng_error *err)
{
    int i;
    *persistent = 0;
    for (i = 0; i < e->n_ops; ++i) {
        eng_op *op = &e->ops[i];
        uint32_t bytes = op_data_room(arena_room, *persistent);
        uint8_t *data = NULL;
        eng_status st;
        if (arena != NULL && bytes > 0)
            data = arena + base_pad + *persistent;
        else
            bytes = 0;
        st = op->kernel->prepare(e, i, data, &bytes, err);
        if (st != ENG_OK)
            return st;
        if (bytes > 0x7fffffffu)
            return eng_fail(err, ENG_E_ARENA_TOO_SMALL, 0xffffffffu, i,
                            "arena too small: operator %d needs more than "
                            "2 GB of parameters", i);
        op->persistent_offset = (uint32_t)(base_pad + *persistent);
        op->persistent_bytes = ENG_ALIGN_UP(bytes);
        *persistent += op->persistent_bytes;
    }
    return ENG_OK;
}

/* Every tensor's data: the model for constants, its planned place in the
 * arena, or NULL (a tensor no operator touches). */
static void resolve_data(eng_t *e)
{
    int i;
    for (i = 0; i < e->n_tensors; ++i) {
        eng_tensor *t = &e->tensors[i];
        if (t->const_data != NULL)
            continue; /* set by the loader */
        if (t->arena_offset >= 0)
            t->data = e->arena + t->arena_offset;
        else
            t->data = NULL;
    }
}

static eng_status load(eng_t *e, uint8_t *arena, uint32_t arena_size,
                       eng_error *err)
{
    uint32_t base_pad, i, off;
    uint64_t persistent, variables, total, arena_room; /* sums of <= 2 GB sizes */
    eng_status st;

    st = eng_read_model(e, err);
    if (st != ENG_OK)
        return st;
    eng_order_ops(e);
    st = eng_resolve_variables(e, err);
    if (st != ENG_OK)
        return st;
    variables = 0;
    for (i = 0; i < e->n_variables; ++i) {
        if (variables > 0x7fffffffu)
            break; /* too large for any arena: refused below */
        e->variables[i].offset = (uint32_t)variables; /* relative for now */
        variables += ENG_ALIGN_UP((uint64_t)e->variables[i].bytes);
    }

    base_pad = (uint32_t)((ENG_ALIGN - ((uintptr_t)arena % ENG_ALIGN)) %
                          ENG_ALIGN);
    arena_room = 0;
    if (arena != NULL && (uint64_t)arena_size > base_pad + variables)
        arena_room = (uint64_t)arena_size - base_pad - variables;
    st = prepare_ops(e, arena, base_pad, arena_room, &persistent, err);
    if (st != ENG_OK)
        return st;

    st = eng_plan(e, err);
    if (st != ENG_OK)
        return st;

    total = base_pad + persistent + variables + e->plan_size;
    if (total > 0xffffffffu)
        return eng_fail(err, ENG_E_ARENA_TOO_SMALL, 0xffffffffu, -1,
                        "arena too small: the model needs more than 4 GB");
    if (arena == NULL || total > arena_size)
        return eng_fail(err, ENG_E_ARENA_TOO_SMALL, (uint32_t)total, -1,
                        "arena too small: the model needs %u bytes, the "
                        "arena has %u", (unsigned)total, (unsigned)arena_size);
    e->arena = arena;
    e->arena_size = arena_size;
    e->persistent_size = (uint32_t)persistent;
    e->variables_size = (uint32_t)variables;
    e->arena_used = (uint32_t)total;
    off = base_pad + (uint32_t)persistent;
    for (i = 0; i < e->n_variables; ++i)
        e->variables[i].offset += off;
    off += (uint32_t)variables;
    for (i = 0; i < e->n_tensors; ++i) {
        if (e->tensors[i].arena_offset >= 0)
            e->tensors[i].arena_offset += (int32_t)off;
    }
    resolve_data(e);
    eng_clear_variables(e);
    return ENG_OK;
}

eng_status eng_load(eng_t *e, const uint8_t *model, uint32_t model_len,
                    uint8_t *arena, uint32_t arena_size, eng_error *err)
{
    eng_status st;
    err = eng_error_begin(err);
    if (e == NULL)
        return eng_fail(err, ENG_E_NO_MODEL, 0, -1, "no engine state");
    memset(e, 0, sizeof *e);
    e->model = model;
    e->model_len = model_len;
    st = load(e, arena, arena_size, err);
    if (st != ENG_OK) {
        uint32_t needed = e->arena_used;
        memset(e, 0, sizeof *e);
        e->arena_used = (st == ENG_E_ARENA_TOO_SMALL) ? err->detail : needed;
        return st;
    }
    e->loaded = 1;
    return ENG_OK;
}
