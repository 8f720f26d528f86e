/*
 * What the kernels may use: the engine's errors, tensor access, parameter
 * checks shared by several kernels, the kernel interface and the two calls
 * back into the engine (CALL_ONCE runs a subgraph, the variable operators
 * find their VAR_HANDLE). The loader, planner, resource variables and
 * invoke loop build on it; it includes nothing of theirs. Not a public API.
 */
#ifndef HIL_ENGINE_INTERNAL_H
#define HIL_ENGINE_INTERNAL_H

#include <stdarg.h>
#include <string.h>

#include "engine.h"
#include "flatbuf.h"
#include "schema.h"

/* Alignment of tensors and per-op data in the arena. */
#define ENG_ALIGN 16u
#define ENG_ALIGN_UP(x) (((x) + (ENG_ALIGN - 1u)) & ~(ENG_ALIGN - 1u))

/* ---- errors -------------------------------------------------------------- */

/* Fill `err` (may be NULL) and return `status`. The format understands
 * %s, %d (int), %u (unsigned) and %%. */
eng_status eng_fail(eng_error *err, eng_status status, uint32_t detail,
                    int32_t op_index, const char *fmt, ...);

/* "operator N: NAME <what> is not supported by the built-in engine",
 * status ENG_E_UNSUPPORTED. `what` is formatted like eng_fail. Operators of
 * a called subgraph read "subgraph S operator N" (N counted in S). */
eng_status eng_fail_variant(eng_error *err, const eng_t *e, int op_index,
                            const char *what, ...);

/* "operator N: NAME: <why>", status ENG_E_MODEL_INVALID. */
eng_status eng_fail_invalid(eng_error *err, const eng_t *e, int op_index,
                            const char *why, ...);

/* "<operator N or subgraph S operator N>: <what>" with any status. */
eng_status eng_fail_at(eng_error *err, const eng_t *e, eng_status status,
                       uint32_t detail, int op_index, const char *what, ...);

/* `err` cleared to ENG_OK, or, when NULL, a static one (a message is too
 * big for a small device's stack). For the public entry points. */
eng_error *eng_error_begin(eng_error *err);

const char *eng_dtype_name(int dtype);
uint32_t eng_dtype_size(int dtype); /* 0 for types the engine cannot hold */

/* ---- tensors ------------------------------------------------------------- */

static inline eng_tensor *eng_op_input(eng_t *e, const eng_op *op, int i)
{
    if (i >= op->n_inputs || op->inputs[i] < 0)
        return NULL;
    return &e->tensors[op->inputs[i]];
}

static inline eng_tensor *eng_op_output(eng_t *e, const eng_op *op, int i)
{
    if (i >= op->n_outputs || op->outputs[i] < 0)
        return NULL;
    return &e->tensors[op->outputs[i]];
}

/* Data of a tensor: the model for constants, the arena otherwise (the
 * pointer is resolved once at load, so an invoke does no lookup). */
static inline uint8_t *eng_data(const eng_t *e, const eng_tensor *t)
{
    (void)e;
    return t->data;
}

static inline int eng_same_shape(const eng_tensor *a, const eng_tensor *b)
{
    int i;
    if (a->ndims != b->ndims)
        return 0;
    for (i = 0; i < a->ndims; ++i)
        if (a->dims[i] != b->dims[i])
            return 0;
    return 1;
}

static inline uint32_t eng_elems(const eng_tensor *t)
{
    uint32_t n = 1;
    int i;
    for (i = 0; i < t->ndims; ++i)
        n *= (uint32_t)t->dims[i];
    return n;
}

/* Per-channel quantization values (vectors in the model, maybe unaligned). */
static inline float eng_scale_at(const eng_tensor *t, uint32_t i)
{
    float f;
    memcpy(&f, t->scales + 4u * i, sizeof f);
    return f;
}

/* Unaligned-safe loads and stores. */
static inline int32_t eng_ld_i32(const uint8_t *p)
{
    int32_t v;
    memcpy(&v, p, sizeof v);
    return v;
}

static inline float eng_ld_f32(const uint8_t *p)
{
    float v;
    memcpy(&v, p, sizeof v);
    return v;
}

static inline void eng_st_f32(uint8_t *p, float v) { memcpy(p, &v, sizeof v); }

static inline void eng_st_i32(uint8_t *p, int32_t v) { memcpy(p, &v, sizeof v); }

/* Per-op data of an operator, written by its prepare. */
static inline void *eng_op_data(const eng_t *e, const eng_op *op)
{
    return e->arena + op->persistent_offset;
}

/* Checks the operator has n_in_min..n_in_max inputs (the first ones
 * present) and exactly n_out outputs. */
eng_status eng_check_arity(const eng_t *e, int op_index, int n_in_min,
                           int n_in_max, int n_out, eng_error *err);

/* A constant int32 tensor's values (vector or scalar), at most `max`;
 * returns the count, or -1 when the tensor is not a constant int32. */
int eng_const_i32(const eng_tensor *t, int32_t *values, int max);

/* A real rescaling factor m as a Q0.31 multiplier and a shift, which the
 * reference limits to 30 (larger ratios are not supported). */
eng_status eng_scale_multiplier(const eng_t *e, int op_index, double m,
                                int32_t *multiplier, int32_t *shift,
                                eng_error *err);

/* Clamp range of a fused activation on an int8 output (its quantization
 * applied to the activation's real bounds, within [-128, 127]). */
eng_status eng_int8_activation_range(const eng_t *e, int op_index,
                                     int activation, const eng_tensor *out,
                                     int32_t *act_min, int32_t *act_max,
                                     eng_error *err);

/* Tensor types of a weighted op (CONV_2D, DEPTHWISE_CONV_2D,
 * FULLY_CONNECTED; bias may be NULL): all float32, or int8 activations with
 * constant int8 weights and a constant int32 bias. */
eng_status eng_check_weighted_types(const eng_t *e, int op_index,
                                    const eng_tensor *in,
                                    const eng_tensor *filter,
                                    const eng_tensor *bias,
                                    const eng_tensor *out, eng_error *err);

/* Per-channel requantization of a weighted op: for c < channels,
 * M[c] = input_scale * weight_scale[c] / output_scale in double (the one
 * weight scale for every channel of a per-tensor filter), stored as
 * int32 multiplier[channels] followed by int32 shift[channels]. */
eng_status eng_channel_multipliers(const eng_t *e, int op_index,
                                   const eng_tensor *in,
                                   const eng_tensor *filter,
                                   const eng_tensor *out, int channels,
                                   int32_t *params, eng_error *err);
/* The same for one channel. */
eng_status eng_channel_multiplier(const eng_t *e, int op_index,
                                  const eng_tensor *in,
                                  const eng_tensor *filter,
                                  const eng_tensor *out, int channel,
                                  int32_t *mult, int32_t *shift,
                                  eng_error *err);

/* Checks that an int8/uint8 activation tensor carries a usable scale. */
eng_status eng_require_quant(const eng_t *e, int op_index,
                             const eng_tensor *t, const char *role,
                             eng_error *err);

/* The op's builtin_options table when it has the expected union type.
 * FB_OK, FB_ABSENT (no options of that type) or FB_BAD. */
int eng_op_options(const eng_t *e, const eng_op *op, uint8_t type, fb_buf *b,
                   fb_table *t);

/* ---- kernels ------------------------------------------------------------- */

/* prepare: validate the operator and precompute its per-op data. Called
 * once per load, with `data` pointing at room for *bytes bytes in the arena
 * (NULL and 0 when the arena has no room left). It sets *bytes to the bytes
 * it needs and writes them only when they fit (eng_keep_op_data does both
 * for a fixed struct); the engine then reports the arena as too small.
 * eval: run it; per-op data at e->arena + op->persistent_offset. */
typedef eng_status (*eng_prepare_fn)(eng_t *e, int op_index, uint8_t *data,
                                     uint32_t *bytes, eng_error *err);
typedef eng_status (*eng_eval_fn)(eng_t *e, int op_index, eng_error *err);

typedef struct eng_kernel {
    int32_t builtin;
    eng_prepare_fn prepare;
    eng_eval_fn eval;
} eng_kernel;

/* The end of a prepare with fixed-size per-op data `d` of `n` bytes: sets
 * *bytes to n and copies d into `data` when it has room. */
static inline eng_status eng_keep_op_data(uint8_t *data, uint32_t *bytes,
                                          const void *d, uint32_t n)
{
    if (data != NULL && n <= *bytes)
        memcpy(data, d, n);
    *bytes = n;
    return ENG_OK;
}

/* Whether per-op data of `need` bytes fits the room a prepare was given;
 * sets *bytes to need either way. */
static inline int eng_op_data_fits(const uint8_t *data, uint32_t *bytes,
                                   uint32_t need)
{
    const int fits = data != NULL && need <= *bytes;
    *bytes = need;
    return fits;
}

/* NULL when the builtin is not implemented. */
const eng_kernel *eng_find_kernel(int32_t builtin);

eng_status eng_conv2d_prepare(eng_t *, int, uint8_t *, uint32_t *, eng_error *);
eng_status eng_conv2d_eval(eng_t *, int, eng_error *);
eng_status eng_dwconv2d_prepare(eng_t *, int, uint8_t *, uint32_t *, eng_error *);
eng_status eng_dwconv2d_eval(eng_t *, int, eng_error *);
eng_status eng_fc_prepare(eng_t *, int, uint8_t *, uint32_t *, eng_error *);
eng_status eng_fc_eval(eng_t *, int, eng_error *);
eng_status eng_pool_prepare(eng_t *, int, uint8_t *, uint32_t *, eng_error *);
eng_status eng_avgpool_eval(eng_t *, int, eng_error *);
eng_status eng_maxpool_eval(eng_t *, int, eng_error *);
eng_status eng_softmax_prepare(eng_t *, int, uint8_t *, uint32_t *, eng_error *);
eng_status eng_softmax_eval(eng_t *, int, eng_error *);
eng_status eng_quantize_prepare(eng_t *, int, uint8_t *, uint32_t *, eng_error *);
eng_status eng_quantize_eval(eng_t *, int, eng_error *);
eng_status eng_dequantize_prepare(eng_t *, int, uint8_t *, uint32_t *, eng_error *);
eng_status eng_dequantize_eval(eng_t *, int, eng_error *);
eng_status eng_reshape_prepare(eng_t *, int, uint8_t *, uint32_t *, eng_error *);
eng_status eng_reshape_eval(eng_t *, int, eng_error *);
eng_status eng_shape_prepare(eng_t *, int, uint8_t *, uint32_t *, eng_error *);
eng_status eng_shape_eval(eng_t *, int, eng_error *);
eng_status eng_relu_prepare(eng_t *, int, uint8_t *, uint32_t *, eng_error *);
eng_status eng_relu_eval(eng_t *, int, eng_error *);
eng_status eng_relu6_prepare(eng_t *, int, uint8_t *, uint32_t *, eng_error *);
eng_status eng_relu6_eval(eng_t *, int, eng_error *);
eng_status eng_logistic_prepare(eng_t *, int, uint8_t *, uint32_t *, eng_error *);
eng_status eng_logistic_eval(eng_t *, int, eng_error *);
eng_status eng_tanh_prepare(eng_t *, int, uint8_t *, uint32_t *, eng_error *);
eng_status eng_tanh_eval(eng_t *, int, eng_error *);
eng_status eng_hard_swish_prepare(eng_t *, int, uint8_t *, uint32_t *, eng_error *);
eng_status eng_hard_swish_eval(eng_t *, int, eng_error *);
eng_status eng_binary_prepare(eng_t *, int, uint8_t *, uint32_t *, eng_error *);
eng_status eng_binary_eval(eng_t *, int, eng_error *);
eng_status eng_mean_prepare(eng_t *, int, uint8_t *, uint32_t *, eng_error *);
eng_status eng_mean_eval(eng_t *, int, eng_error *);
eng_status eng_pad_prepare(eng_t *, int, uint8_t *, uint32_t *, eng_error *);
eng_status eng_pad_eval(eng_t *, int, eng_error *);
eng_status eng_concat_prepare(eng_t *, int, uint8_t *, uint32_t *, eng_error *);
eng_status eng_concat_eval(eng_t *, int, eng_error *);
eng_status eng_split_prepare(eng_t *, int, uint8_t *, uint32_t *, eng_error *);
eng_status eng_split_eval(eng_t *, int, eng_error *);
eng_status eng_pack_prepare(eng_t *, int, uint8_t *, uint32_t *, eng_error *);
eng_status eng_pack_eval(eng_t *, int, eng_error *);
eng_status eng_unpack_prepare(eng_t *, int, uint8_t *, uint32_t *, eng_error *);
eng_status eng_unpack_eval(eng_t *, int, eng_error *);
eng_status eng_strided_slice_prepare(eng_t *, int, uint8_t *, uint32_t *, eng_error *);
eng_status eng_strided_slice_eval(eng_t *, int, eng_error *);
eng_status eng_transpose_prepare(eng_t *, int, uint8_t *, uint32_t *, eng_error *);
eng_status eng_transpose_eval(eng_t *, int, eng_error *);
eng_status eng_call_once_prepare(eng_t *, int, uint8_t *, uint32_t *, eng_error *);
eng_status eng_call_once_eval(eng_t *, int, eng_error *);
eng_status eng_var_handle_prepare(eng_t *, int, uint8_t *, uint32_t *, eng_error *);
eng_status eng_var_handle_eval(eng_t *, int, eng_error *);
eng_status eng_read_variable_prepare(eng_t *, int, uint8_t *, uint32_t *, eng_error *);
eng_status eng_read_variable_eval(eng_t *, int, eng_error *);
eng_status eng_assign_variable_prepare(eng_t *, int, uint8_t *, uint32_t *, eng_error *);
eng_status eng_assign_variable_eval(eng_t *, int, eng_error *);

/* ---- calls back into the engine ------------------------------------------ */

/* Runs every operator of loaded subgraph `s` (index into e->subgraphs) in
 * order; used by CALL_ONCE (invoke.c). */
eng_status eng_run_subgraph(eng_t *e, int s, eng_error *err);

/* The VAR_HANDLE operator that produces tensor `t` in the subgraph of
 * operator `op_index`, or -1 (resource_vars.c). */
int eng_var_handle_of(const eng_t *e, int op_index, int t);


#endif
