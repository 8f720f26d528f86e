/*
 * Model loader and interpreter loop of the built-in engine.
 *
 * eng_load walks the .tflite flatbuffer in place (schema.fbs field slots are
 * noted next to each read), validates every offset, size and index, checks
 * that each operator has a kernel that accepts its variant, plans the arena
 * and lets the kernels precompute their parameters into it.
 */
#include <stdarg.h>
#include <string.h>

#include "engine_internal.h"
#include "flatbuf.h"
#include "quant.h"

#define TFLITE_SCHEMA_VERSION 3u

/* schema.fbs field slots (index in the vtable) */
enum { MODEL_VERSION = 0, MODEL_OPERATOR_CODES = 1, MODEL_SUBGRAPHS = 2,
       MODEL_BUFFERS = 4 };
/* (CallOnceOptions.init_subgraph_index and VarHandleOptions.container /
 * shared_name are slots 0, 0 and 1 of their tables) */
enum { OPCODE_DEPRECATED_BUILTIN = 0, OPCODE_CUSTOM_CODE = 1,
       OPCODE_BUILTIN = 3 };
enum { SUBGRAPH_TENSORS = 0, SUBGRAPH_INPUTS = 1, SUBGRAPH_OUTPUTS = 2,
       SUBGRAPH_OPERATORS = 3 };
enum { TENSOR_SHAPE = 0, TENSOR_TYPE = 1, TENSOR_BUFFER = 2,
       TENSOR_QUANTIZATION = 4, TENSOR_IS_VARIABLE = 5, TENSOR_SPARSITY = 6 };
enum { QUANT_SCALE = 2, QUANT_ZERO_POINT = 3, QUANT_DETAILS_TYPE = 4,
       QUANT_QUANTIZED_DIMENSION = 6 };
enum { BUFFER_DATA = 0, BUFFER_OFFSET = 1, BUFFER_SIZE = 2 };
enum { OPERATOR_OPCODE_INDEX = 0, OPERATOR_INPUTS = 1, OPERATOR_OUTPUTS = 2,
       OPERATOR_OPTIONS_TYPE = 3, OPERATOR_OPTIONS = 4 };

/* ------------------------------------------------------------------------ */
/* Messages: a tiny formatter (%s %d %u %%), no stdio needed on the device. */

typedef struct {
    char *buf;
    size_t cap;
    size_t len;
} strbuf;

static void sb_putc(strbuf *sb, char c)
{
    if (sb->len + 1 < sb->cap)
        sb->buf[sb->len++] = c;
    sb->buf[sb->len] = '\0';
}

static void sb_puts(strbuf *sb, const char *s)
{
    if (s == NULL)
        s = "(null)";
    while (*s)
        sb_putc(sb, *s++);
}

static void sb_putu(strbuf *sb, unsigned long v)
{
    char tmp[24];
    int n = 0;
    do {
        tmp[n++] = (char)('0' + (v % 10u));
        v /= 10u;
    } while (v != 0 && n < (int)sizeof tmp);
    while (n > 0)
        sb_putc(sb, tmp[--n]);
}

static void sb_vformat(strbuf *sb, const char *fmt, va_list ap)
{
    for (; *fmt; ++fmt) {
        if (*fmt != '%') {
            sb_putc(sb, *fmt);
            continue;
        }
        ++fmt;
        if (*fmt == 's') {
            sb_puts(sb, va_arg(ap, const char *));
        } else if (*fmt == 'd') {
            int v = va_arg(ap, int);
            if (v < 0) {
                sb_putc(sb, '-');
                sb_putu(sb, 0ul - (unsigned long)(long)v);
            } else {
                sb_putu(sb, (unsigned long)v);
            }
        } else if (*fmt == 'u') {
            sb_putu(sb, va_arg(ap, unsigned));
        } else if (*fmt == '%') {
            sb_putc(sb, '%');
        } else {
            if (*fmt == '\0')
                break;
            sb_putc(sb, '%');
            sb_putc(sb, *fmt);
        }
    }
}

static void sb_format(strbuf *sb, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    sb_vformat(sb, fmt, ap);
    va_end(ap);
}

/* Where the errors of callers that pass no eng_error go: static, because a
 * whole message is too big for a small device's stack. */
static eng_error discarded_error;

static void set_error(eng_error *err, eng_status status, uint32_t detail,
                      int32_t op_index)
{
    err->status = status;
    err->detail = detail;
    err->op_index = op_index;
    err->message[0] = '\0';
}

/* Sets `err` and starts its message. */
static void sb_start(strbuf *sb, eng_error *err, eng_status status,
                     uint32_t detail, int32_t op_index)
{
    set_error(err, status, detail, op_index);
    sb->buf = err->message;
    sb->cap = sizeof err->message;
    sb->len = 0;
}

eng_status eng_fail(eng_error *err, eng_status status, uint32_t detail,
                    int32_t op_index, const char *fmt, ...)
{
    va_list ap;
    strbuf sb;
    if (err == NULL)
        return status;
    sb_start(&sb, err, status, detail, op_index);
    va_start(ap, fmt);
    sb_vformat(&sb, fmt, ap);
    va_end(ap);
    return status;
}

/* "operator N" for subgraph 0, "subgraph S operator N" for the others
 * (S as numbered in the model, N counted within it). */
static void sb_op_location(strbuf *sb, const eng_t *e, int op_index)
{
    const eng_subgraph *g = &e->subgraphs[e->ops[op_index].subgraph];
    if (e->ops[op_index].subgraph == 0)
        sb_format(sb, "operator %d", op_index);
    else
        sb_format(sb, "subgraph %u operator %d", (unsigned)g->index,
                  op_index - (int)g->first_op);
}

eng_status eng_fail_variant(eng_error *err, const eng_t *e, int op_index,
                            const char *what, ...)
{
    va_list ap;
    strbuf sb;
    if (err == NULL)
        return ENG_E_UNSUPPORTED;
    sb_start(&sb, err, ENG_E_UNSUPPORTED, (uint32_t)e->ops[op_index].builtin,
             op_index);
    sb_op_location(&sb, e, op_index);
    sb_format(&sb, ": %s ", eng_op_name(e->ops[op_index].builtin));
    va_start(ap, what);
    sb_vformat(&sb, what, ap);
    va_end(ap);
    sb_puts(&sb, " is not supported by the built-in engine");
    return ENG_E_UNSUPPORTED;
}

eng_status eng_fail_invalid(eng_error *err, const eng_t *e, int op_index,
                            const char *why, ...)
{
    va_list ap;
    strbuf sb;
    if (err == NULL)
        return ENG_E_MODEL_INVALID;
    sb_start(&sb, err, ENG_E_MODEL_INVALID, 0, op_index);
    sb_op_location(&sb, e, op_index);
    sb_format(&sb, ": %s: ", eng_op_name(e->ops[op_index].builtin));
    va_start(ap, why);
    sb_vformat(&sb, why, ap);
    va_end(ap);
    return ENG_E_MODEL_INVALID;
}

/* ------------------------------------------------------------------------ */
/* Types                                                                     */

const char *eng_dtype_name(int dtype)
{
    static const char *const names[] = {
        "float32", "float16", "int32", "uint8", "int64", "string",
        "bool", "int16", "complex64", "int8", "float64", "complex128",
        "uint64", "resource", "variant", "uint32", "uint16", "int4",
        "bfloat16", "int2", "uint4", "float8_e4m3fn", "float8_e5m2"};
    if (dtype >= 0 && dtype < (int)(sizeof names / sizeof names[0]))
        return names[dtype];
    return "unknown type";
}

uint32_t eng_dtype_size(int dtype)
{
    switch (dtype) {
    case ENG_FLOAT32:
    case ENG_INT32:
        return 4;
    case ENG_UINT8:
    case ENG_INT8:
    case ENG_BOOL:
        return 1;
    case ENG_INT16:
        return 2;
    case ENG_INT64:
        return 8;
    default:
        return 0;
    }
}

eng_status eng_require_quant(const eng_t *e, int op_index,
                             const eng_tensor *t, const char *role,
                             eng_error *err)
{
    if (t->n_scales == 0 || t->n_zero_points == 0)
        return eng_fail_variant(err, e, op_index, "with a non-quantized %s %s",
                                eng_dtype_name(t->dtype), role);
    if (!(t->scale > 0.0f && t->scale < 3.0e38f))
        return eng_fail_invalid(err, e, op_index, "%s scale must be positive",
                                role);
    if ((t->dtype == ENG_INT8 &&
         (t->zero_point < -128 || t->zero_point > 127)) ||
        (t->dtype == ENG_UINT8 && (t->zero_point < 0 || t->zero_point > 255)))
        return eng_fail_invalid(err, e, op_index,
                                "%s zero point %d out of range", role,
                                (int)t->zero_point);
    return ENG_OK;
}

eng_status eng_scale_multiplier(const eng_t *e, int op_index, double m,
                                int32_t *multiplier, int32_t *shift,
                                eng_error *err)
{
    int s = 0;
    q_quantize_multiplier(m, multiplier, &s);
    if (s > 30)
        return eng_fail_variant(err, e, op_index,
                                "with a scale ratio above 2^30");
    *shift = s;
    return ENG_OK;
}

eng_status eng_int8_activation_range(const eng_t *e, int op_index,
                                     int activation, const eng_tensor *out,
                                     int32_t *act_min, int32_t *act_max,
                                     eng_error *err)
{
    if (q_activation_range(activation, out->scale, out->zero_point, -128, 127,
                           act_min, act_max) != 0)
        return eng_fail_invalid(err, e, op_index,
                                "activation range does not fit");
    return ENG_OK;
}

eng_status eng_check_weighted_types(const eng_t *e, int op_index,
                                    const eng_tensor *in,
                                    const eng_tensor *filter,
                                    const eng_tensor *bias,
                                    const eng_tensor *out, eng_error *err)
{
    if (in->dtype == ENG_FLOAT32) {
        if (out->dtype != ENG_FLOAT32 || filter->dtype != ENG_FLOAT32 ||
            (bias != NULL && bias->dtype != ENG_FLOAT32))
            return eng_fail_variant(err, e, op_index,
                                    "with float32 input and %s weights, %s "
                                    "bias, %s output",
                                    eng_dtype_name(filter->dtype),
                                    eng_dtype_name(bias ? bias->dtype
                                                        : ENG_FLOAT32),
                                    eng_dtype_name(out->dtype));
        return ENG_OK;
    }
    if (in->dtype != ENG_INT8 || out->dtype != ENG_INT8)
        return eng_fail_variant(err, e, op_index, "with %s activations",
                                eng_dtype_name(in->dtype != ENG_INT8
                                                   ? in->dtype
                                                   : out->dtype));
    if (filter->dtype != ENG_INT8)
        return eng_fail_variant(err, e, op_index, "with %s weights",
                                eng_dtype_name(filter->dtype));
    if (filter->const_data == NULL)
        return eng_fail_variant(err, e, op_index, "with non-constant weights");
    if (bias != NULL && (bias->dtype != ENG_INT32 || bias->const_data == NULL))
        return eng_fail_variant(err, e, op_index, "with %s%s bias",
                                bias->const_data == NULL ? "non-constant " : "",
                                eng_dtype_name(bias->dtype));
    return ENG_OK;
}

eng_status eng_channel_multipliers(const eng_t *e, int op_index,
                                   const eng_tensor *in,
                                   const eng_tensor *filter,
                                   const eng_tensor *out, int channels,
                                   int32_t *params, eng_error *err)
{
    int32_t *mult = params;
    int32_t *shift = params + channels;
    int i;
    for (i = 0; i < channels; ++i) {
        const float ws =
            eng_scale_at(filter, filter->n_scales > 1 ? (uint32_t)i : 0u);
        const eng_status st = eng_scale_multiplier(
            e, op_index, (double)in->scale * (double)ws / (double)out->scale,
            &mult[i], &shift[i], err);
        if (st != ENG_OK)
            return st;
    }
    return ENG_OK;
}

eng_status eng_check_arity(const eng_t *e, int op_index, int n_in_min,
                           int n_in_max, int n_out, eng_error *err)
{
    const eng_op *op = &e->ops[op_index];
    int i;
    if (op->n_inputs < n_in_min || op->n_inputs > n_in_max ||
        op->n_outputs != n_out) {
        if (n_in_min == n_in_max)
            return eng_fail_invalid(err, e, op_index,
                                    "expects %d inputs and %d outputs",
                                    n_in_min, n_out);
        return eng_fail_invalid(err, e, op_index,
                                "expects %d to %d inputs and %d outputs",
                                n_in_min, n_in_max, n_out);
    }
    for (i = 0; i < n_in_min; ++i)
        if (op->inputs[i] < 0)
            return eng_fail_invalid(err, e, op_index, "input %d is missing",
                                    i);
    return ENG_OK;
}

int eng_const_i32(const eng_tensor *t, int32_t *values, int max)
{
    uint32_t n, i;
    if (t == NULL || t->const_data == NULL || t->dtype != ENG_INT32)
        return -1;
    n = eng_elems(t);
    if (n > (uint32_t)max)
        return -1;
    for (i = 0; i < n; ++i)
        values[i] = eng_ld_i32(t->const_data + 4u * i);
    return (int)n;
}

int eng_op_options(const eng_t *e, const eng_op *op, uint8_t type, fb_buf *b,
                   fb_table *t)
{
    b->buf = e->model;
    b->len = e->model_len;
    if (op->options == NULL || op->options_type != type)
        return FB_ABSENT;
    return fb_table_at(b, (uint32_t)(op->options - e->model), t);
}

/* ------------------------------------------------------------------------ */
/* Kernel table                                                              */

static const eng_kernel kernels[] = {
    {ENG_OP_ADD, eng_binary_prepare, eng_binary_eval},
    {ENG_OP_AVERAGE_POOL_2D, eng_pool_prepare, eng_avgpool_eval},
    {ENG_OP_CONCATENATION, eng_concat_prepare, eng_concat_eval},
    {ENG_OP_CONV_2D, eng_conv2d_prepare, eng_conv2d_eval},
    {ENG_OP_DEPTHWISE_CONV_2D, eng_dwconv2d_prepare, eng_dwconv2d_eval},
    {ENG_OP_DEQUANTIZE, eng_dequantize_prepare, eng_dequantize_eval},
    {ENG_OP_FULLY_CONNECTED, eng_fc_prepare, eng_fc_eval},
    {ENG_OP_LOGISTIC, eng_logistic_prepare, eng_logistic_eval},
    {ENG_OP_MAX_POOL_2D, eng_pool_prepare, eng_maxpool_eval},
    {ENG_OP_MUL, eng_binary_prepare, eng_binary_eval},
    {ENG_OP_RELU, eng_relu_prepare, eng_relu_eval},
    {ENG_OP_RELU6, eng_relu6_prepare, eng_relu6_eval},
    {ENG_OP_RESHAPE, eng_reshape_prepare, eng_reshape_eval},
    {ENG_OP_SOFTMAX, eng_softmax_prepare, eng_softmax_eval},
    {ENG_OP_TANH, eng_tanh_prepare, eng_tanh_eval},
    {ENG_OP_PAD, eng_pad_prepare, eng_pad_eval},
    {ENG_OP_TRANSPOSE, eng_transpose_prepare, eng_transpose_eval},
    {ENG_OP_MEAN, eng_mean_prepare, eng_mean_eval},
    {ENG_OP_SUB, eng_binary_prepare, eng_binary_eval},
    {ENG_OP_STRIDED_SLICE, eng_strided_slice_prepare, eng_strided_slice_eval},
    {ENG_OP_SPLIT, eng_split_prepare, eng_split_eval},
    {ENG_OP_PADV2, eng_pad_prepare, eng_pad_eval},
    {ENG_OP_SHAPE, eng_shape_prepare, eng_shape_eval},
    {ENG_OP_PACK, eng_pack_prepare, eng_pack_eval},
    {ENG_OP_UNPACK, eng_unpack_prepare, eng_unpack_eval},
    {ENG_OP_SPLIT_V, eng_split_prepare, eng_split_eval},
    {ENG_OP_QUANTIZE, eng_quantize_prepare, eng_quantize_eval},
    {ENG_OP_HARD_SWISH, eng_hard_swish_prepare, eng_hard_swish_eval},
    {ENG_OP_CALL_ONCE, eng_call_once_prepare, eng_call_once_eval},
    {ENG_OP_VAR_HANDLE, eng_var_handle_prepare, eng_var_handle_eval},
    {ENG_OP_READ_VARIABLE, eng_read_variable_prepare, eng_read_variable_eval},
    {ENG_OP_ASSIGN_VARIABLE, eng_assign_variable_prepare,
     eng_assign_variable_eval},
};

const eng_kernel *eng_find_kernel(int32_t builtin)
{
    size_t i;
    for (i = 0; i < sizeof kernels / sizeof kernels[0]; ++i)
        if (kernels[i].builtin == builtin)
            return &kernels[i];
    return NULL;
}

/* ------------------------------------------------------------------------ */
/* Loading                                                                   */

static eng_status bad_model(eng_error *err, const char *what, int index)
{
    if (index >= 0)
        return eng_fail(err, ENG_E_MODEL_INVALID, 0, -1,
                        "invalid model: %s %d", what, index);
    return eng_fail(err, ENG_E_MODEL_INVALID, 0, -1, "invalid model: %s",
                    what);
}

static eng_status load_tensor(eng_t *e, const fb_buf *b, const fb_vec *buffers,
                              const fb_table *tt, int index, eng_error *err)
{
    eng_tensor *t = &e->tensors[index];
    fb_vec shape, scales, zps;
    fb_table quant, buffer;
    uint32_t buffer_index = 0, elem_size, i;
    uint64_t elems = 1, bytes;
    uint8_t type = 0, is_variable = 0;
    uint32_t pos;
    int r;

    memset(t, 0, sizeof *t);
    t->arena_offset = -1;
    t->alias = -1;
    t->first_op = -1;
    t->last_op = -1;

    r = fb_get_vec(b, tt, TENSOR_SHAPE, 4, &shape);
    if (r == FB_BAD)
        return bad_model(err, "shape of tensor", index);
    if (shape.count > ENG_MAX_DIMS)
        return eng_fail(err, ENG_E_LIMIT, shape.count, -1,
                        "tensor %d has %u dimensions (ENG_MAX_DIMS is %d)",
                        index, (unsigned)shape.count, ENG_MAX_DIMS);
    t->ndims = (uint8_t)shape.count;
    for (i = 0; i < shape.count; ++i) {
        int32_t d = fb_rd_i32(b, shape.pos + 4u * i);
        /* -1 is how TFLite marks a dynamic dimension; any other value
         * below 1 or beyond what the engine can index is a damaged model
         * (a zero dimension divides by zero in kernels' shape checks) */
        if (d == -1)
            return eng_fail(err, ENG_E_UNSUPPORTED, 0, -1,
                            "tensor %d has a dynamic dimension, which is "
                            "not supported by the built-in engine", index);
        if (d <= 0 || d > ENG_MAX_DIM_SIZE)
            return eng_fail(err, ENG_E_MODEL_INVALID, i, -1,
                            "invalid model: tensor %d dimension %u is %d "
                            "(must be 1..%d)", index, (unsigned)i, (int)d,
                            ENG_MAX_DIM_SIZE);
        t->dims[i] = d;
        elems *= (uint64_t)d;
        if (elems > ENG_MAX_DIM_SIZE)
            return eng_fail(err, ENG_E_MODEL_INVALID, i, -1,
                            "invalid model: tensor %d has more than %d "
                            "elements (dimension %u brings it past)", index,
                            ENG_MAX_DIM_SIZE, (unsigned)i);
    }
    if (fb_get_u8(b, tt, TENSOR_TYPE, 0, &type) == FB_BAD ||
        fb_get_u32(b, tt, TENSOR_BUFFER, 0, &buffer_index) == FB_BAD ||
        fb_get_u8(b, tt, TENSOR_IS_VARIABLE, 0, &is_variable) == FB_BAD)
        return bad_model(err, "fields of tensor", index);
    t->dtype = type;
    elem_size = eng_dtype_size(type);
    bytes = elems * elem_size;
    if (bytes > 0x7fffffffu)
        return eng_fail(err, ENG_E_MODEL_INVALID, 0, -1,
                        "invalid model: tensor %d is too large", index);
    t->bytes = (uint32_t)bytes;
    if (is_variable)
        t->flags |= ENG_TF_VARIABLE;
    if (fb_field(b, tt, TENSOR_SPARSITY, 4, &pos) == FB_OK)
        return eng_fail(err, ENG_E_UNSUPPORTED, 0, -1,
                        "tensor %d is sparse, which is not supported by the "
                        "built-in engine", index);

    /* quantization parameters: scale[0] / zero_point[0] act as the
     * per-tensor values, the vectors are kept for per-channel use */
    r = fb_get_table(b, tt, TENSOR_QUANTIZATION, &quant);
    if (r == FB_BAD)
        return bad_model(err, "quantization of tensor", index);
    if (r == FB_OK) {
        uint8_t details_type = 0;
        int32_t qdim = 0;
        if (fb_get_vec(b, &quant, QUANT_SCALE, 4, &scales) == FB_BAD ||
            fb_get_vec(b, &quant, QUANT_ZERO_POINT, 8, &zps) == FB_BAD ||
            fb_get_u8(b, &quant, QUANT_DETAILS_TYPE, 0, &details_type) ==
                FB_BAD ||
            fb_get_i32(b, &quant, QUANT_QUANTIZED_DIMENSION, 0, &qdim) ==
                FB_BAD)
            return bad_model(err, "quantization of tensor", index);
        if (details_type != 0)
            return eng_fail(err, ENG_E_UNSUPPORTED, 0, -1,
                            "tensor %d uses custom quantization, which is "
                            "not supported by the built-in engine", index);
        t->quantized_dimension = qdim;
        if (scales.count > 0 && zps.count > 0) {
            t->scales = b->buf + scales.pos;
            t->n_scales = scales.count;
            t->zero_points = b->buf + zps.pos;
            t->n_zero_points = zps.count;
            t->scale = fb_rd_f32(b, scales.pos);
            t->zero_point = (int32_t)fb_rd_i64(b, zps.pos);
        }
    }

    /* constant data */
    if (buffers->count == 0 && buffer_index == 0)
        return ENG_OK;
    if (buffer_index >= buffers->count)
        return bad_model(err, "buffer index of tensor", index);
    if (fb_vec_table(b, buffers, buffer_index, &buffer) != FB_OK)
        return bad_model(err, "buffer of tensor", index);
    {
        fb_vec data;
        uint64_t offset = 0, size = 0;
        const uint8_t *ptr = NULL;
        uint64_t len = 0;
        if (fb_get_vec(b, &buffer, BUFFER_DATA, 1, &data) == FB_BAD ||
            fb_get_u64(b, &buffer, BUFFER_OFFSET, 0, &offset) == FB_BAD ||
            fb_get_u64(b, &buffer, BUFFER_SIZE, 0, &size) == FB_BAD)
            return bad_model(err, "buffer of tensor", index);
        if (data.count > 0) {
            ptr = b->buf + data.pos;
            len = data.count;
        } else if (offset > 1 && size > 0) {
            /* data stored after the flatbuffer, offset from its start */
            if (offset > b->len || size > b->len - offset)
                return bad_model(err, "external buffer of tensor", index);
            ptr = b->buf + offset;
            len = size;
        }
        if (ptr != NULL) {
            if (len < t->bytes)
                return bad_model(err, "buffer too small for tensor", index);
            t->const_data = ptr;
        }
    }
    return ENG_OK;
}

static eng_status load_io(eng_t *e, const fb_buf *b, const fb_vec *v,
                          int16_t *list, uint8_t *count, uint8_t flag,
                          const char *what, eng_error *err)
{
    uint32_t i;
    if (v->count > ENG_MAX_IO)
        return eng_fail(err, ENG_E_LIMIT, v->count, -1,
                        "model has %u %ss (ENG_MAX_IO is %d)",
                        (unsigned)v->count, what, ENG_MAX_IO);
    for (i = 0; i < v->count; ++i) {
        int32_t t = fb_rd_i32(b, v->pos + 4u * i);
        if (t < 0 || t >= e->n_tensors)
            return bad_model(err, "tensor index of model input/output",
                             (int)i);
        list[i] = (int16_t)t;
        e->tensors[t].flags |= flag;
    }
    *count = (uint8_t)v->count;
    return ENG_OK;
}

/* Loads operator `local` of the subgraph being loaded (tensor indices
 * relative to its first tensor) into e->ops[index]. */
static eng_status load_operator(eng_t *e, const fb_buf *b,
                                const fb_vec *opcodes, const fb_table *ot,
                                int index, eng_error *err)
{
    eng_op *op = &e->ops[index];
    const eng_subgraph *g = &e->subgraphs[e->n_subgraphs - 1];
    fb_table code, options;
    fb_vec ins, outs;
    uint32_t opcode_index = 0, i;
    int8_t deprecated = 0;
    int32_t builtin = 0;
    uint8_t options_type = 0;
    int r;

    memset(op, 0, sizeof *op);
    op->subgraph = (uint8_t)(e->n_subgraphs - 1);
    op->aux = -1;
    if (fb_get_u32(b, ot, OPERATOR_OPCODE_INDEX, 0, &opcode_index) == FB_BAD ||
        opcode_index >= opcodes->count ||
        fb_vec_table(b, opcodes, opcode_index, &code) != FB_OK)
        return bad_model(err, "operator code of operator", index);
    /* the builtin code moved to a wider field; older files only have the
     * byte-sized one, so the larger of the two is the real code */
    if (fb_get_i8(b, &code, OPCODE_DEPRECATED_BUILTIN, 0, &deprecated) ==
            FB_BAD ||
        fb_get_i32(b, &code, OPCODE_BUILTIN, 0, &builtin) == FB_BAD)
        return bad_model(err, "operator code of operator", index);
    op->builtin = builtin > deprecated ? builtin : deprecated;

    if (fb_get_vec(b, ot, OPERATOR_INPUTS, 4, &ins) == FB_BAD ||
        fb_get_vec(b, ot, OPERATOR_OUTPUTS, 4, &outs) == FB_BAD)
        return bad_model(err, "inputs/outputs of operator", index);
    if (ins.count > ENG_MAX_OP_INPUTS || outs.count > ENG_MAX_OP_OUTPUTS)
        return eng_fail(err, ENG_E_LIMIT, (uint32_t)index, index,
                        "operator %d: %s has %u inputs and %u outputs "
                        "(limits %d and %d)",
                        index - (int)g->first_op, eng_op_name(op->builtin),
                        (unsigned)ins.count, (unsigned)outs.count,
                        ENG_MAX_OP_INPUTS, ENG_MAX_OP_OUTPUTS);
    if (ins.count + outs.count > (uint32_t)(ENG_MAX_OP_IO - e->n_op_io))
        return eng_fail(err, ENG_E_LIMIT, ENG_MAX_OP_IO + 1u, index,
                        "the operators have more than %d inputs and outputs "
                        "in all (ENG_MAX_OP_IO)", ENG_MAX_OP_IO);
    op->n_inputs = (uint8_t)ins.count;
    op->n_outputs = (uint8_t)outs.count;
    op->inputs = &e->op_io[e->n_op_io];
    op->outputs = op->inputs + ins.count;
    e->n_op_io = (uint16_t)(e->n_op_io + ins.count + outs.count);
    for (i = 0; i < ins.count; ++i) {
        int32_t t = fb_rd_i32(b, ins.pos + 4u * i);
        if (t < -1 || t >= (int32_t)g->n_tensors)
            return bad_model(err, "input tensor index of operator", index);
        op->inputs[i] = (int16_t)(t < 0 ? -1 : t + (int32_t)g->first_tensor);
    }
    for (i = 0; i < outs.count; ++i) {
        int32_t t = fb_rd_i32(b, outs.pos + 4u * i);
        if (t < 0 || t >= (int32_t)g->n_tensors)
            return bad_model(err, "output tensor index of operator", index);
        op->outputs[i] = (int16_t)(t + (int32_t)g->first_tensor);
    }

    if (fb_get_u8(b, ot, OPERATOR_OPTIONS_TYPE, 0, &options_type) == FB_BAD)
        return bad_model(err, "options of operator", index);
    r = fb_get_table(b, ot, OPERATOR_OPTIONS, &options);
    if (r == FB_BAD)
        return bad_model(err, "options of operator", index);
    if (r == FB_OK && options_type != 0) {
        op->options = b->buf + options.pos;
        op->options_type = options_type;
    }
    return ENG_OK;
}

static eng_status unsupported_op(eng_t *e, const fb_buf *b,
                                 const fb_vec *opcodes,
                                 const fb_vec *subgraphs, int index,
                                 eng_error *err)
{
    const int32_t builtin = e->ops[index].builtin;
    const eng_subgraph *g = &e->subgraphs[e->ops[index].subgraph];
    const int local = index - (int)g->first_op;
    char where[40];
    strbuf sb;

    sb.buf = where;
    sb.cap = sizeof where;
    sb.len = 0;
    sb_op_location(&sb, e, index);
    if (builtin == ENG_OP_CUSTOM) {
        /* name the custom operator when the model says what it is */
        fb_table sg, ot, code;
        fb_vec ops;
        uint32_t opcode_index = 0, n = 0;
        const char *name = "";
        char shortname[48];
        if (fb_vec_table(b, subgraphs, g->index, &sg) == FB_OK &&
            fb_get_vec(b, &sg, SUBGRAPH_OPERATORS, 4, &ops) == FB_OK &&
            fb_vec_table(b, &ops, (uint32_t)local, &ot) == FB_OK &&
            fb_get_u32(b, &ot, OPERATOR_OPCODE_INDEX, 0, &opcode_index) !=
                FB_BAD &&
            fb_vec_table(b, opcodes, opcode_index, &code) == FB_OK &&
            fb_get_str(b, &code, OPCODE_CUSTOM_CODE, &name, &n) == FB_OK &&
            n > 0) {
            uint32_t i;
            for (i = 0; i < n && i + 1 < sizeof shortname; ++i) {
                char c = name[i];
                shortname[i] = (c >= 32 && c < 127) ? c : '?';
            }
            shortname[i] = '\0';
            return eng_fail(err, ENG_E_UNSUPPORTED_OP, (uint32_t)builtin,
                            index,
                            "%s: CUSTOM (%s) is not supported by the "
                            "built-in engine", where, shortname);
        }
    }
    return eng_fail(err, ENG_E_UNSUPPORTED_OP, (uint32_t)builtin, index,
                    "%s: %s is not supported by the built-in engine", where,
                    eng_op_name(builtin));
}

/* Loads subgraph `model_index` of the model after those already loaded. */
static eng_status load_subgraph(eng_t *e, const fb_buf *b,
                                const fb_vec *subgraphs, const fb_vec *opcodes,
                                const fb_vec *buffers, uint32_t model_index,
                                eng_error *err)
{
    fb_table subgraph;
    fb_vec tensors, inputs, outputs, ops;
    eng_subgraph *g;
    uint32_t i;
    eng_status st;

    if (e->n_subgraphs >= ENG_MAX_SUBGRAPHS)
        return eng_fail(err, ENG_E_LIMIT, e->n_subgraphs + 1u, -1,
                        "model calls more than %d subgraphs "
                        "(ENG_MAX_SUBGRAPHS)", ENG_MAX_SUBGRAPHS);
    if (fb_vec_table(b, subgraphs, model_index, &subgraph) != FB_OK ||
        fb_get_vec(b, &subgraph, SUBGRAPH_TENSORS, 4, &tensors) == FB_BAD ||
        fb_get_vec(b, &subgraph, SUBGRAPH_INPUTS, 4, &inputs) == FB_BAD ||
        fb_get_vec(b, &subgraph, SUBGRAPH_OUTPUTS, 4, &outputs) == FB_BAD ||
        fb_get_vec(b, &subgraph, SUBGRAPH_OPERATORS, 4, &ops) == FB_BAD)
        return bad_model(err, "subgraph", (int)model_index);
    if (tensors.count > (uint32_t)(ENG_MAX_TENSORS - e->n_tensors))
        return eng_fail(err, ENG_E_LIMIT, e->n_tensors + tensors.count, -1,
                        "model has %u tensors (ENG_MAX_TENSORS is %d)",
                        (unsigned)(e->n_tensors + tensors.count),
                        ENG_MAX_TENSORS);
    if (ops.count > (uint32_t)(ENG_MAX_OPS - e->n_ops))
        return eng_fail(err, ENG_E_LIMIT, e->n_ops + ops.count, -1,
                        "model has %u operators (ENG_MAX_OPS is %d)",
                        (unsigned)(e->n_ops + ops.count), ENG_MAX_OPS);

    g = &e->subgraphs[e->n_subgraphs++];
    g->index = (uint16_t)model_index;
    g->first_tensor = e->n_tensors;
    g->n_tensors = (uint16_t)tensors.count;
    g->first_op = e->n_ops;
    g->n_ops = (uint16_t)ops.count;
    for (i = 0; i < tensors.count; ++i) {
        fb_table tt;
        const int t = (int)(g->first_tensor + i);
        if (fb_vec_table(b, &tensors, i, &tt) != FB_OK)
            return bad_model(err, "tensor", t);
        st = load_tensor(e, b, buffers, &tt, t, err);
        if (st != ENG_OK)
            return st;
    }
    e->n_tensors = (uint16_t)(e->n_tensors + tensors.count);

    if (model_index == 0) {
        st = load_io(e, b, &inputs, e->inputs, &e->n_inputs, ENG_TF_INPUT,
                     "input", err);
        if (st == ENG_OK)
            st = load_io(e, b, &outputs, e->outputs, &e->n_outputs,
                         ENG_TF_OUTPUT, "output", err);
        if (st != ENG_OK)
            return st;
    } else if (inputs.count > 0) {
        return eng_fail(err, ENG_E_UNSUPPORTED, model_index, -1,
                        "subgraph %u has inputs: a subgraph called by "
                        "CALL_ONCE with inputs is not supported by the "
                        "built-in engine", (unsigned)model_index);
    }

    for (i = 0; i < ops.count; ++i) {
        fb_table ot;
        const int op = (int)(g->first_op + i);
        if (fb_vec_table(b, &ops, i, &ot) != FB_OK)
            return bad_model(err, "operator", op);
        st = load_operator(e, b, opcodes, &ot, op, err);
        if (st != ENG_OK)
            return st;
        ++e->n_ops;
    }
    return ENG_OK;
}

/* Loads the subgraphs CALL_ONCE operators call, each once, and records the
 * callee (index into e->subgraphs) in the operator's aux. */
static eng_status load_called_subgraphs(eng_t *e, const fb_buf *b,
                                        const fb_vec *subgraphs,
                                        const fb_vec *opcodes,
                                        const fb_vec *buffers, eng_error *err)
{
    int i;
    /* e->n_ops grows as callees load; their CALL_ONCEs are visited too */
    for (i = 0; i < e->n_ops; ++i) {
        eng_op *op = &e->ops[i];
        fb_buf ob;
        fb_table t;
        int32_t callee = 0;
        int k, r;
        eng_status st;
        if (op->builtin != ENG_OP_CALL_ONCE)
            continue;
        r = eng_op_options(e, op, ENG_OPT_CALL_ONCE, &ob, &t);
        if (r == FB_BAD ||
            (r == FB_OK && fb_get_i32(&ob, &t, 0, 0, &callee) == FB_BAD))
            return eng_fail_invalid(err, e, i, "bad options");
        if (callee <= 0 || (uint32_t)callee >= subgraphs->count)
            return eng_fail_invalid(err, e, i, "calls subgraph %d of %u",
                                    (int)callee, (unsigned)subgraphs->count);
        for (k = 0; k < e->n_subgraphs; ++k)
            if (e->subgraphs[k].index == (uint16_t)callee)
                return eng_fail_variant(err, e, i,
                                        "calling subgraph %d, which another "
                                        "operator already calls,",
                                        (int)callee);
        st = load_subgraph(e, b, subgraphs, opcodes, buffers,
                           (uint32_t)callee, err);
        if (st != ENG_OK)
            return st;
        e->ops[i].aux = (int16_t)(e->n_subgraphs - 1);
    }
    return ENG_OK;
}

/* Execution order: subgraph 0 in order, each CALL_ONCE followed by the
 * operators of the subgraph it calls. Sets every op's time. */
static int order_subgraph(eng_t *e, int s, int pos)
{
    const eng_subgraph *g = &e->subgraphs[s];
    int i;
    for (i = g->first_op; i < g->first_op + g->n_ops; ++i) {
        e->ops[i].time = (int16_t)pos;
        e->exec_order[pos++] = (int16_t)i;
        if (e->ops[i].builtin == ENG_OP_CALL_ONCE && e->ops[i].aux > 0)
            pos = order_subgraph(e, e->ops[i].aux, pos);
    }
    return pos;
}

int eng_var_handle_of(const eng_t *e, int op_index, int t)
{
    const eng_subgraph *g = &e->subgraphs[e->ops[op_index].subgraph];
    int i;
    for (i = g->first_op; i < g->first_op + g->n_ops; ++i)
        if (e->ops[i].builtin == ENG_OP_VAR_HANDLE &&
            e->ops[i].n_outputs == 1 && e->ops[i].outputs[0] == t)
            return i;
    return -1;
}

static int same_name(const char *a, uint32_t a_len, const char *b,
                     uint32_t b_len)
{
    return a_len == b_len && (a_len == 0 || memcmp(a, b, a_len) == 0);
}

/* Gives the variable ASSIGN_VARIABLE `i` writes its size and reset byte,
 * unless an earlier one did. */
static eng_status size_variable(eng_t *e, int i, eng_error *err)
{
    const eng_op *op = &e->ops[i];
    const eng_tensor *value;
    eng_variable *var;
    int h;
    if (op->n_inputs != 2 || op->inputs[0] < 0 || op->inputs[1] < 0)
        return eng_fail_invalid(err, e, i, "expects 2 inputs");
    h = eng_var_handle_of(e, i, op->inputs[0]);
    if (h < 0)
        return eng_fail_variant(err, e, i,
                                "of a variable not made by a VAR_HANDLE in "
                                "the same subgraph");
    var = &e->variables[e->ops[h].aux];
    if (var->bytes != 0)
        return ENG_OK;
    value = &e->tensors[op->inputs[1]];
    if (value->bytes == 0 || eng_dtype_size(value->dtype) == 0)
        return eng_fail_variant(err, e, i, "of a %s value",
                                eng_dtype_name(value->dtype));
    var->bytes = value->bytes;
    /* the zero point's low byte when the value is quantized (TFLite Micro
     * memsets the buffer with it), else 0 */
    var->fill = (value->n_scales > 0 && value->n_zero_points > 0)
                    ? (uint8_t)(int8_t)value->zero_point
                    : 0;
    return ENG_OK;
}

/* Resource variables: one per distinct (container, shared_name) among the
 * VAR_HANDLE operators; sized and given their reset value by the first
 * ASSIGN_VARIABLE in subgraph and operator order (as TFLite Micro's
 * prepare does). */
static eng_status resolve_variables(eng_t *e, eng_error *err)
{
    int order[ENG_MAX_SUBGRAPHS];
    int i, k, v;
    for (i = 0; i < e->n_ops; ++i) {
        eng_op *op = &e->ops[i];
        fb_buf b;
        fb_table t;
        const char *container = NULL, *name = "";
        uint32_t container_len = 0, name_len = 0;
        int r;
        if (op->builtin != ENG_OP_VAR_HANDLE)
            continue;
        r = eng_op_options(e, op, ENG_OPT_VAR_HANDLE, &b, &t);
        if (r == FB_BAD)
            return eng_fail_invalid(err, e, i, "bad options");
        if (r == FB_OK) {
            r = fb_get_str(&b, &t, 0, &container, &container_len);
            if (r == FB_BAD)
                return eng_fail_invalid(err, e, i, "bad container name");
            if (r == FB_ABSENT)
                container = NULL;
            if (fb_get_str(&b, &t, 1, &name, &name_len) == FB_BAD)
                return eng_fail_invalid(err, e, i, "bad shared name");
        }
        for (v = 0; v < e->n_variables; ++v) {
            const eng_variable *var = &e->variables[v];
            if (same_name(var->shared_name, var->shared_name_len, name,
                          name_len) &&
                (container == NULL || var->container == NULL ||
                 same_name(var->container, var->container_len, container,
                           container_len)))
                break;
        }
        if (v == e->n_variables) {
            eng_variable *var;
            if (e->n_variables >= ENG_MAX_VARIABLES)
                return eng_fail(err, ENG_E_LIMIT, ENG_MAX_VARIABLES + 1u, i,
                                "model has more than %d resource variables "
                                "(ENG_MAX_VARIABLES)", ENG_MAX_VARIABLES);
            var = &e->variables[e->n_variables++];
            memset(var, 0, sizeof *var);
            var->container = container;
            var->container_len = container_len;
            var->shared_name = name;
            var->shared_name_len = name_len;
        }
        op->aux = (int16_t)v;
    }
    /* ASSIGN_VARIABLEs in the model's subgraph order (TFLite Micro
     * prepares subgraph 0, 1, 2...; they were loaded in call order) */
    for (k = 0; k < e->n_subgraphs; ++k) {
        int rank = 0, j;
        for (j = 0; j < e->n_subgraphs; ++j)
            if (e->subgraphs[j].index < e->subgraphs[k].index)
                ++rank;
        order[rank] = k;
    }
    for (k = 0; k < e->n_subgraphs; ++k) {
        const eng_subgraph *g = &e->subgraphs[order[k]];
        for (i = g->first_op; i < g->first_op + g->n_ops; ++i) {
            if (e->ops[i].builtin == ENG_OP_ASSIGN_VARIABLE) {
                const eng_status st = size_variable(e, i, err);
                if (st != ENG_OK)
                    return st;
            }
        }
    }
    return ENG_OK;
}

/* is_variable tensors: zero point for int8, zeros otherwise (as TFLite
 * Micro's ResetVariableTensors); resource variables: their fill byte. */
static void clear_variables(eng_t *e)
{
    int i;
    for (i = 0; i < e->n_tensors; ++i) {
        eng_tensor *t = &e->tensors[i];
        uint8_t fill = 0;
        if (!(t->flags & ENG_TF_VARIABLE) || t->const_data != NULL ||
            t->arena_offset < 0)
            continue;
        if (t->dtype == ENG_INT8 && t->n_zero_points > 0)
            fill = (uint8_t)t->zero_point;
        memset(e->arena + t->arena_offset, fill, t->bytes);
    }
    for (i = 0; i < e->n_variables; ++i) {
        const eng_variable *v = &e->variables[i];
        if (v->bytes > 0)
            memset(e->arena + v->offset, v->fill, v->bytes);
    }
}

static eng_status load(eng_t *e, const uint8_t *model, uint32_t model_len,
                       uint8_t *arena, uint32_t arena_size, eng_error *err)
{
    fb_buf b;
    fb_table root;
    fb_vec opcodes, subgraphs, buffers;
    uint32_t version = 0, i, base_pad, off;
    uint64_t persistent, variables, total; /* sums of up to 2 GB sizes */
    eng_status st;

    b.buf = model;
    b.len = model_len;
    if (model == NULL || fb_root(&b, &root) != FB_OK)
        return bad_model(err, "not a readable flatbuffer", -1);
    if (fb_get_u32(&b, &root, MODEL_VERSION, 0, &version) == FB_BAD)
        return bad_model(err, "version field", -1);
    if (version != TFLITE_SCHEMA_VERSION)
        return eng_fail(err, ENG_E_MODEL_INVALID, version, -1,
                        "invalid model: schema version %u, expected %u",
                        (unsigned)version, TFLITE_SCHEMA_VERSION);
    if (fb_get_vec(&b, &root, MODEL_OPERATOR_CODES, 4, &opcodes) == FB_BAD)
        return bad_model(err, "operator codes", -1);
    if (fb_get_vec(&b, &root, MODEL_SUBGRAPHS, 4, &subgraphs) == FB_BAD)
        return bad_model(err, "subgraphs", -1);
    if (fb_get_vec(&b, &root, MODEL_BUFFERS, 4, &buffers) == FB_BAD)
        return bad_model(err, "buffers", -1);
    if (subgraphs.count == 0)
        return bad_model(err, "no readable subgraph", -1);

    /* subgraph 0, then whatever its CALL_ONCE operators call; subgraphs
     * nothing calls (e.g. other signatures) are never run, so not loaded */
    st = load_subgraph(e, &b, &subgraphs, &opcodes, &buffers, 0, err);
    if (st == ENG_OK)
        st = load_called_subgraphs(e, &b, &subgraphs, &opcodes, &buffers,
                                   err);
    if (st != ENG_OK)
        return st;
    order_subgraph(e, 0, 0);

    /* every operator must have a kernel that accepts its variant */
    for (i = 0; i < e->n_ops; ++i) {
        if (eng_find_kernel(e->ops[i].builtin) == NULL)
            return unsupported_op(e, &b, &opcodes, &subgraphs, (int)i, err);
    }
    st = resolve_variables(e, err);
    if (st != ENG_OK)
        return st;
    persistent = 0;
    for (i = 0; i < e->n_ops; ++i) {
        uint32_t bytes = 0;
        st = eng_find_kernel(e->ops[i].builtin)
                 ->prepare(e, (int)i, NULL, &bytes, err);
        if (st != ENG_OK)
            return st;
        e->ops[i].persistent_bytes = ENG_ALIGN_UP(bytes);
        persistent += e->ops[i].persistent_bytes;
    }
    variables = 0;
    for (i = 0; i < e->n_variables; ++i) {
        if (variables > 0x7fffffffu)
            break; /* too large for any arena: refused below */
        e->variables[i].offset = (uint32_t)variables; /* relative for now */
        variables += ENG_ALIGN_UP((uint64_t)e->variables[i].bytes);
    }

    st = eng_plan(e, err);
    if (st != ENG_OK)
        return st;

    /* arena: [align pad][per-op data][variables][tensor plan] */
    base_pad = (uint32_t)((ENG_ALIGN - ((uintptr_t)arena % ENG_ALIGN)) %
                          ENG_ALIGN);
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
    off = base_pad;
    for (i = 0; i < e->n_ops; ++i) {
        e->ops[i].persistent_offset = off;
        off += e->ops[i].persistent_bytes;
    }
    for (i = 0; i < e->n_variables; ++i)
        e->variables[i].offset += off;
    off += variables;
    for (i = 0; i < e->n_tensors; ++i) {
        if (e->tensors[i].arena_offset >= 0)
            e->tensors[i].arena_offset += (int32_t)off;
    }
    for (i = 0; i < e->n_ops; ++i) {
        uint32_t bytes = e->ops[i].persistent_bytes;
        st = eng_find_kernel(e->ops[i].builtin)
                 ->prepare(e, (int)i, arena + e->ops[i].persistent_offset,
                           &bytes, err);
        if (st != ENG_OK)
            return st;
    }
    clear_variables(e);
    return ENG_OK;
}

eng_status eng_load(eng_t *e, const uint8_t *model, uint32_t model_len,
                    uint8_t *arena, uint32_t arena_size, eng_error *err)
{
    eng_status st;
    if (err == NULL)
        err = &discarded_error;
    set_error(err, ENG_OK, 0, -1);
    if (e == NULL)
        return eng_fail(err, ENG_E_NO_MODEL, 0, -1, "no engine state");
    memset(e, 0, sizeof *e);
    e->model = model;
    e->model_len = model_len;
    st = load(e, model, model_len, arena, arena_size, err);
    if (st != ENG_OK) {
        uint32_t needed = e->arena_used;
        memset(e, 0, sizeof *e);
        e->arena_used = (st == ENG_E_ARENA_TOO_SMALL) ? err->detail : needed;
        return st;
    }
    e->loaded = 1;
    return ENG_OK;
}

/* ------------------------------------------------------------------------ */
/* Inputs, outputs, invoke                                                   */

static eng_status tensor_info(const eng_tensor *t, eng_tensor_info *out)
{
    int i;
    memset(out, 0, sizeof *out);
    out->dtype = t->dtype;
    out->ndims = t->ndims;
    for (i = 0; i < t->ndims; ++i)
        out->dims[i] = t->dims[i];
    out->bytes = t->bytes;
    out->scale = t->scale;
    out->zero_point = t->zero_point;
    return ENG_OK;
}

eng_status eng_input_info(const eng_t *e, uint32_t index, eng_tensor_info *out)
{
    if (e == NULL || !e->loaded)
        return ENG_E_NO_MODEL;
    if (index >= e->n_inputs || out == NULL)
        return ENG_E_BAD_INDEX;
    return tensor_info(&e->tensors[e->inputs[index]], out);
}

eng_status eng_output_info(const eng_t *e, uint32_t index,
                           eng_tensor_info *out)
{
    if (e == NULL || !e->loaded)
        return ENG_E_NO_MODEL;
    if (index >= e->n_outputs || out == NULL)
        return ENG_E_BAD_INDEX;
    return tensor_info(&e->tensors[e->outputs[index]], out);
}

uint8_t *eng_input_data(eng_t *e, uint32_t index, uint32_t *bytes)
{
    const eng_tensor *t;
    if (e == NULL || !e->loaded || index >= e->n_inputs)
        return NULL;
    t = &e->tensors[e->inputs[index]];
    if (t->const_data != NULL || t->arena_offset < 0)
        return NULL; /* a constant input cannot be written */
    if (bytes != NULL)
        *bytes = t->bytes;
    return e->arena + t->arena_offset;
}

const uint8_t *eng_output_data(const eng_t *e, uint32_t index,
                               uint32_t *bytes)
{
    const eng_tensor *t;
    if (e == NULL || !e->loaded || index >= e->n_outputs)
        return NULL;
    t = &e->tensors[e->outputs[index]];
    if (bytes != NULL)
        *bytes = t->bytes;
    return eng_data(e, t);
}

/* Run the operators of subgraph s in order, stopping after `count` of them. */
static eng_status run_ops(eng_t *e, int s, int count, eng_op_hook on_op, void *ctx,
                          eng_error *err)
{
    const eng_subgraph *g = &e->subgraphs[s];
    int i, end = g->first_op + (count < g->n_ops ? count : g->n_ops);
    for (i = g->first_op; i < end; ++i) {
        const eng_kernel *k = eng_find_kernel(e->ops[i].builtin);
        eng_status st = (k != NULL) ? k->eval(e, i, err) : ENG_E_INVOKE;
        if (st != ENG_OK) {
            if (err->status == ENG_OK || err->message[0] == '\0')
                eng_fail(err, ENG_E_INVOKE, (uint32_t)i, i,
                         "operator %d: %s failed", i - (int)g->first_op,
                         eng_op_name(e->ops[i].builtin));
            err->status = ENG_E_INVOKE;
            err->detail = (uint32_t)i;
            err->op_index = i;
            return ENG_E_INVOKE;
        }
        if (on_op != NULL)
            on_op(ctx, (uint32_t)i, e->ops[i].builtin);
    }
    return ENG_OK;
}

eng_status eng_run_subgraph(eng_t *e, int s, eng_error *err)
{
    if (s <= 0 || s >= e->n_subgraphs)
        return ENG_E_INVOKE;
    return run_ops(e, s, e->subgraphs[s].n_ops, NULL, NULL, err);
}

eng_status eng_invoke(eng_t *e, eng_op_hook on_op, void *ctx, eng_error *err)
{
    if (err == NULL)
        err = &discarded_error;
    set_error(err, ENG_OK, 0, -1);
    if (e == NULL || !e->loaded)
        return eng_fail(err, ENG_E_NO_MODEL, 0, -1, "no model loaded");
    return run_ops(e, 0, e->subgraphs[0].n_ops, on_op, ctx, err);
}

eng_status eng_invoke_until(eng_t *e, uint32_t last_op, eng_op_hook on_op, void *ctx,
                            eng_error *err)
{
    if (err == NULL)
        err = &discarded_error;
    set_error(err, ENG_OK, 0, -1);
    if (e == NULL || !e->loaded)
        return eng_fail(err, ENG_E_NO_MODEL, 0, -1, "no model loaded");
    if (last_op >= e->subgraphs[0].n_ops)
        return eng_fail(err, ENG_E_BAD_INDEX, last_op, -1, "no operator %u in subgraph 0",
                        (unsigned)last_op);
    return run_ops(e, 0, (int)last_op + 1, on_op, ctx, err);
}

const uint8_t *eng_tensor_data(const eng_t *e, uint32_t index, uint32_t *bytes)
{
    const eng_tensor *t;
    if (e == NULL || !e->loaded || index >= e->subgraphs[0].n_tensors)
        return NULL;
    t = &e->tensors[e->subgraphs[0].first_tensor + index];
    if (bytes != NULL)
        *bytes = t->bytes;
    return eng_data(e, t);
}

void eng_reset(eng_t *e)
{
    if (e == NULL || !e->loaded)
        return;
    clear_variables(e);
}
