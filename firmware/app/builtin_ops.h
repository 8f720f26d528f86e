#ifndef HIL_BUILTIN_OPS_H
#define HIL_BUILTIN_OPS_H

#include "../engine/engine.h"
#include "../protocol/proto.h"

typedef struct {
    eng_t eng;
    uint8_t *arena;
    uint32_t arena_size;
    uint32_t invokes;
    /* test hook: called before every invoke with its 1-based number */
    void (*before_invoke)(uint32_t n);
    /* the board's counter, for per-operator counts (NULL: no profile) */
    uint64_t (*counter)(void);
    uint64_t mark;
    hil_op_profile profile[ENG_MAX_OPS];
    uint32_t n_profiled;
    eng_error error;   /* the engine's last error (too big for the stack) */
} builtin_engine;

void builtin_ops_init(hil_ops *ops, builtin_engine *b);

#endif
