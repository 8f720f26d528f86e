/*
 * libFuzzer target: the built-in engine's loader, prepare and invoke on
 * fuzzed model bytes (scripts/fuzz.py builds and runs it; tests/test_fuzz.py
 * replays firmware/fuzz/corpus/engine/).
 *
 * The model is copied into an exactly sized heap buffer so ASan sees any
 * read past its end, as it would be past the device's model buffer. When
 * the model loads, every input is filled with bytes derived from the model
 * (deterministic) and the graph is invoked twice, with a reset between, as
 * the device does.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "engine.h"

/* The largest arena a platform file gives the built-in engine is in this
 * order; bigger plans are refused by the loader (ARENA_TOO_SMALL). */
#define FUZZ_ARENA_BYTES (256u * 1024u)

static uint8_t arena[FUZZ_ARENA_BYTES];
static eng_t engine;

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    eng_error err;
    uint8_t *model;
    uint32_t i;
    int round;
    if (size > 1024u * 1024u)
        return 0;
    model = (uint8_t *)malloc(size ? size : 1u);
    if (model == NULL)
        return 0;
    if (size)
        memcpy(model, data, size);
    if (eng_load(&engine, model, (uint32_t)size, arena, sizeof arena, &err) == ENG_OK) {
        if (memchr(err.message, 0, sizeof err.message) == NULL)
            abort(); /* a message must stay NUL terminated */
        for (round = 0; round < 2; ++round) {
            for (i = 0; i < engine.n_inputs; ++i) {
                uint32_t bytes = 0, k;
                uint8_t *in = eng_input_data(&engine, i, &bytes);
                for (k = 0; in != NULL && k < bytes; ++k)
                    in[k] = size ? data[(k * 7u + i) % size] : 0;
            }
            (void)eng_invoke(&engine, NULL, NULL, &err);
            for (i = 0; i < engine.n_outputs; ++i) {
                uint32_t bytes = 0;
                const uint8_t *out = eng_output_data(&engine, i, &bytes);
                if (out != NULL && bytes > 0)
                    (void)((volatile const uint8_t *)out)[bytes - 1];
            }
            eng_reset(&engine);
        }
        /* what localisation does: run a prefix, read every tensor of it */
        if (engine.subgraphs[0].n_ops > 0) {
            uint32_t last = size ? data[size - 1] % engine.subgraphs[0].n_ops : 0;
            if (eng_invoke_until(&engine, last, NULL, NULL, &err) == ENG_OK) {
                for (i = 0; i < engine.subgraphs[0].n_tensors; ++i) {
                    uint32_t bytes = 0;
                    const uint8_t *t = eng_tensor_data(&engine, i, &bytes);
                    if (t != NULL && bytes > 0)
                        (void)((volatile const uint8_t *)t)[bytes - 1];
                }
            }
        }
        for (i = 0; i < engine.n_inputs; ++i) {
            eng_tensor_info info;
            if (eng_input_info(&engine, i, &info) != ENG_OK || info.ndims > ENG_MAX_DIMS)
                abort();
        }
    }
    if (memchr(err.message, 0, sizeof err.message) == NULL)
        abort();
    free(model);
    return 0;
}
