/*
 * hil's built-in engine (../engine/) as a hil_ops for the C API: any
 * firmware can run .tflite models the host loads with it. Link the engine's
 * sources and ../app/builtin_ops.c (CMake: the hil::engine_builtin target
 * of hil.cmake); build them with -ffp-contract=off (bit-exactness).
 */
#ifndef HIL_BUILTIN_H
#define HIL_BUILTIN_H

#include <string.h>

#include "../app/builtin_ops.h"
#include "hil.h"

typedef builtin_engine hil_builtin_engine;

/* `arena` holds the model's tensors (static, 16-byte aligned); `counter`
 * (may be NULL) gives per-operator counts for GET_PROFILE. */
static inline void hil_builtin_ops(hil_ops *ops, hil_builtin_engine *b, uint8_t *arena,
                                   uint32_t arena_size, uint64_t (*counter)(void))
{
    memset(b, 0, sizeof *b);
    b->arena = arena;
    b->arena_size = arena_size;
    b->counter = counter;
    builtin_ops_init(ops, b);
}

#endif
