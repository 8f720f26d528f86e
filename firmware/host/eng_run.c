/*
 * eng_run: run the built-in engine on the host.
 *
 *   eng_run <model.tflite> <inputs.bin> <outputs.bin>
 *       inputs.bin holds one or more input vectors back to back, each the
 *       concatenation of the raw bytes of every model input in order;
 *       outputs.bin receives the outputs the same way.
 *   eng_run --info <model.tflite>
 *       prints the arena use and the input/output tensors.
 *   eng_run --plan <model.tflite>
 *       prints the memory plan: per-op data and every tensor's placement
 *       and lifetime (for tests of the planner).
 *
 * Options, before the other arguments:
 *   --arena BYTES    use only BYTES of the static 4 MB arena
 *   --arena-offset K start the arena K bytes into the static buffer
 *                    (to exercise unaligned arenas)
 *   --reset-at N     call eng_reset() before input vector N (0-based);
 *                    may be given up to 16 times (state across invokes)
 *
 * Exit status: 0 on success, 1 for usage or file errors, 2 when the model
 * does not load, 3 when an invoke fails. Errors are reported on stderr.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "engine.h"

#define ARENA_BYTES (4u * 1024u * 1024u)

static uint8_t arena_buffer[ARENA_BYTES + 64u];
static eng_t engine;

static const char *status_name(eng_status s)
{
    switch (s) {
    case ENG_OK: return "ENG_OK";
    case ENG_E_MODEL_INVALID: return "ENG_E_MODEL_INVALID";
    case ENG_E_UNSUPPORTED_OP: return "ENG_E_UNSUPPORTED_OP";
    case ENG_E_UNSUPPORTED: return "ENG_E_UNSUPPORTED";
    case ENG_E_ARENA_TOO_SMALL: return "ENG_E_ARENA_TOO_SMALL";
    case ENG_E_LIMIT: return "ENG_E_LIMIT";
    case ENG_E_NO_MODEL: return "ENG_E_NO_MODEL";
    case ENG_E_BAD_INDEX: return "ENG_E_BAD_INDEX";
    case ENG_E_INVOKE: return "ENG_E_INVOKE";
    }
    return "?";
}

/* Reads a whole file into an exactly sized heap buffer (so that the
 * sanitizer catches any read past the end of the model). */
static uint8_t *read_file(const char *path, uint32_t *len)
{
    FILE *f = fopen(path, "rb");
    long size;
    uint8_t *buf;
    if (f == NULL) {
        fprintf(stderr, "eng_run: cannot open %s\n", path);
        return NULL;
    }
    if (fseek(f, 0, SEEK_END) != 0 || (size = ftell(f)) < 0 ||
        fseek(f, 0, SEEK_SET) != 0 || (unsigned long)size > 0xffffffffu) {
        fprintf(stderr, "eng_run: cannot read %s\n", path);
        fclose(f);
        return NULL;
    }
    buf = (uint8_t *)malloc(size > 0 ? (size_t)size : 1u);
    if (buf == NULL || (size > 0 && fread(buf, 1, (size_t)size, f) !=
                                        (size_t)size)) {
        fprintf(stderr, "eng_run: cannot read %s\n", path);
        free(buf);
        fclose(f);
        return NULL;
    }
    fclose(f);
    *len = (uint32_t)size;
    return buf;
}

static void report(const char *what, const eng_error *err)
{
    fprintf(stderr, "eng_run: %s failed: %s (%d) detail=%u op=%d: %s\n", what,
            status_name(err->status), (int)err->status, (unsigned)err->detail,
            (int)err->op_index, err->message);
}

static void print_tensor(const char *kind, uint32_t i,
                         const eng_tensor_info *t)
{
    int d;
    printf("%s %u dtype=%u shape=", kind, (unsigned)i, (unsigned)t->dtype);
    for (d = 0; d < t->ndims; ++d)
        printf("%s%d", d ? "x" : "", (int)t->dims[d]);
    printf(" bytes=%u scale=%.9g zero_point=%d\n", (unsigned)t->bytes,
           (double)t->scale, (int)t->zero_point);
}

static void print_plan(void)
{
    uint32_t i;
    const uint32_t base =
        (uint32_t)((16u - ((uintptr_t)engine.arena % 16u)) % 16u);
    printf("persistent %u %u\n", (unsigned)base,
           (unsigned)engine.persistent_size);
    printf("variables %u %u\n", (unsigned)(base + engine.persistent_size),
           (unsigned)engine.variables_size);
    for (i = 0; i < engine.n_ops; ++i)
        printf("op %u builtin=%d offset=%u bytes=%u\n", (unsigned)i,
               (int)engine.ops[i].builtin,
               (unsigned)engine.ops[i].persistent_offset,
               (unsigned)engine.ops[i].persistent_bytes);
    for (i = 0; i < engine.n_tensors; ++i) {
        const eng_tensor *t = &engine.tensors[i];
        int root = (int)i;
        while (engine.tensors[root].alias >= 0)
            root = engine.tensors[root].alias;
        printf("tensor %u offset=%d bytes=%u first=%d last=%d root=%d "
               "const=%d flags=%u\n",
               (unsigned)i, (int)t->arena_offset, (unsigned)t->bytes,
               (int)t->first_op, (int)t->last_op, root,
               t->const_data != NULL, (unsigned)t->flags);
    }
}

int main(int argc, char **argv)
{
    eng_error err;
    eng_status st;
    uint8_t *model, *inputs = NULL, *arena;
    uint32_t model_len = 0, inputs_len = 0, in_bytes = 0, out_bytes = 0;
    uint32_t i, n_vectors, v, arena_bytes = ARENA_BYTES, arena_offset = 0;
    uint32_t reset_at[16];
    int info = 0, plan = 0, n_resets = 0, r;
    FILE *out;

    while (argc > 1 && strncmp(argv[1], "--", 2) == 0) {
        if (strcmp(argv[1], "--info") == 0) {
            info = 1;
        } else if (strcmp(argv[1], "--plan") == 0) {
            info = plan = 1;
        } else if (strcmp(argv[1], "--arena") == 0 && argc > 2) {
            arena_bytes = (uint32_t)strtoul(argv[2], NULL, 0);
            ++argv;
            --argc;
        } else if (strcmp(argv[1], "--reset-at") == 0 && argc > 2 &&
                   n_resets < 16) {
            reset_at[n_resets++] = (uint32_t)strtoul(argv[2], NULL, 0);
            ++argv;
            --argc;
        } else if (strcmp(argv[1], "--arena-offset") == 0 && argc > 2) {
            arena_offset = (uint32_t)strtoul(argv[2], NULL, 0) % 64u;
            ++argv;
            --argc;
        } else {
            break;
        }
        ++argv;
        --argc;
    }
    if (arena_bytes > ARENA_BYTES)
        arena_bytes = ARENA_BYTES;
    arena = arena_buffer + arena_offset;
    if ((info && argc != 2) || (!info && argc != 4)) {
        fprintf(stderr,
                "usage: eng_run [--arena BYTES] [--arena-offset K] "
                "[--reset-at N]... <model.tflite> <inputs.bin> <outputs.bin>\n"
                "       eng_run [--arena BYTES] --info|--plan <model.tflite>\n");
        return 1;
    }
    model = read_file(argv[1], &model_len);
    if (model == NULL)
        return 1;
    st = eng_load(&engine, model, model_len, arena, arena_bytes, &err);
    if (st != ENG_OK) {
        report("eng_load", &err);
        free(model);
        return 2;
    }

    if (info) {
        eng_tensor_info t;
        printf("arena_used %u\n", (unsigned)engine.arena_used);
        for (i = 0; eng_input_info(&engine, i, &t) == ENG_OK; ++i)
            print_tensor("input", i, &t);
        for (i = 0; eng_output_info(&engine, i, &t) == ENG_OK; ++i)
            print_tensor("output", i, &t);
        if (plan)
            print_plan();
        free(model);
        return 0;
    }

    for (i = 0; i < engine.n_inputs; ++i) {
        uint32_t n = 0;
        if (eng_input_data(&engine, i, &n) == NULL) {
            fprintf(stderr, "eng_run: input %u is not writable\n",
                    (unsigned)i);
            free(model);
            return 1;
        }
        in_bytes += n;
    }
    for (i = 0; i < engine.n_outputs; ++i) {
        uint32_t n = 0;
        eng_output_data(&engine, i, &n);
        out_bytes += n;
    }

    inputs = read_file(argv[2], &inputs_len);
    if (inputs == NULL) {
        free(model);
        return 1;
    }
    if (in_bytes == 0 ? inputs_len != 0 : (inputs_len % in_bytes) != 0) {
        fprintf(stderr,
                "eng_run: %s has %u bytes, not a multiple of the %u input "
                "bytes per vector\n",
                argv[2], (unsigned)inputs_len, (unsigned)in_bytes);
        free(inputs);
        free(model);
        return 1;
    }
    n_vectors = in_bytes ? inputs_len / in_bytes : 1;

    out = fopen(argv[3], "wb");
    if (out == NULL) {
        fprintf(stderr, "eng_run: cannot create %s\n", argv[3]);
        free(inputs);
        free(model);
        return 1;
    }
    for (v = 0; v < n_vectors; ++v) {
        const uint8_t *src = inputs + (size_t)v * in_bytes;
        for (r = 0; r < n_resets; ++r)
            if (reset_at[r] == v) {
                eng_reset(&engine);
                break;
            }
        for (i = 0; i < engine.n_inputs; ++i) {
            uint32_t n = 0;
            uint8_t *dst = eng_input_data(&engine, i, &n);
            memcpy(dst, src, n);
            src += n;
        }
        st = eng_invoke(&engine, NULL, NULL, &err);
        if (st != ENG_OK) {
            report("eng_invoke", &err);
            fclose(out);
            free(inputs);
            free(model);
            return 3;
        }
        for (i = 0; i < engine.n_outputs; ++i) {
            uint32_t n = 0;
            const uint8_t *o = eng_output_data(&engine, i, &n);
            if (n > 0 && fwrite(o, 1, n, out) != n) {
                fprintf(stderr, "eng_run: cannot write %s\n", argv[3]);
                fclose(out);
                free(inputs);
                free(model);
                return 1;
            }
        }
    }
    fclose(out);
    free(inputs);
    free(model);
    return 0;
}
