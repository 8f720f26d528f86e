/*
 * Joining and splitting along an axis, pure data movement:
 *
 *   CONCATENATION  inputs joined along an existing axis
 *   PACK           inputs of one shape stacked along a new axis
 *   SPLIT          input cut into equal parts along an axis (constant axis)
 *   SPLIT_V        input cut into parts of the outputs' sizes
 *   UNPACK         input cut into slices along an axis, which disappears
 *
 * With "outer" the product of the dimensions before the axis, each part
 * holds, per outer index, one contiguous chunk of (its size along the axis)
 * x (product of the dimensions after the axis) elements, and the joined
 * tensor is the parts' chunks in turn. int8 CONCATENATION needs every input
 * quantized as the output (no requantization, as in the reference).
 */
#include "../engine_internal.h"

/* ConcatenationOptions / PackOptions / UnpackOptions slots */
enum { CONCAT_AXIS = 0, CONCAT_ACTIVATION = 1 };
enum { PACK_VALUES_COUNT = 0, PACK_AXIS = 1 };
enum { UNPACK_NUM = 0, UNPACK_AXIS = 1 };

#define MAX_PARTS 16
#define CONCAT_MAX_INPUTS 10 /* the reference's limit */

typedef struct {
    int32_t outer;
    int32_t n;                /* number of parts */
    int32_t data_input;       /* the whole tensor's input index (splits) */
    uint32_t chunk[MAX_PARTS]; /* bytes per outer index, per part */
} parts_data;

static int type_in(int dtype, const int *types, int n)
{
    int i;
    for (i = 0; i < n; ++i)
        if (types[i] == dtype)
            return 1;
    return 0;
}

/* outer = product of dims before axis, inner = product after (elements) */
static void outer_inner(const eng_tensor *t, int axis, int32_t *outer,
                        uint32_t *inner)
{
    int i;
    *outer = 1;
    *inner = 1;
    for (i = 0; i < axis; ++i)
        *outer *= t->dims[i];
    for (i = axis + 1; i < t->ndims; ++i)
        *inner *= (uint32_t)t->dims[i];
}

/* Are a and b the same shape except along `axis`? */
static int same_except(const eng_tensor *a, const eng_tensor *b, int axis)
{
    int i;
    if (a->ndims != b->ndims)
        return 0;
    for (i = 0; i < a->ndims; ++i)
        if (i != axis && a->dims[i] != b->dims[i])
            return 0;
    return 1;
}

static eng_status finish(const parts_data *d, uint8_t *data, uint32_t *bytes)
{
    return eng_keep_op_data(data, bytes, d, sizeof *d);
}

/* ---- CONCATENATION and PACK ---------------------------------------------- */

eng_status eng_concat_prepare(eng_t *e, int op_index, uint8_t *data,
                              uint32_t *bytes, eng_error *err)
{
    static const int types[] = {ENG_FLOAT32, ENG_INT8, ENG_INT16, ENG_INT32,
                                ENG_INT64, ENG_BOOL};
    const eng_op *op = &e->ops[op_index];
    const eng_tensor *out;
    parts_data d;
    fb_buf b;
    fb_table t;
    int32_t axis = 0, total = 0;
    int8_t activation = 0;
    uint32_t inner;
    int i, r;
    eng_status st;

    if (op->n_inputs > CONCAT_MAX_INPUTS)
        return eng_fail_variant(err, e, op_index, "with %d inputs (at most "
                                "%d)", op->n_inputs, CONCAT_MAX_INPUTS);
    st = eng_check_arity(e, op_index, op->n_inputs < 1 ? 1 : op->n_inputs,
                         CONCAT_MAX_INPUTS, 1, err);
    if (st != ENG_OK)
        return st;
    out = eng_op_output(e, op, 0);
    if (!type_in(out->dtype, types, 6))
        return eng_fail_variant(err, e, op_index, "of %s tensors",
                                eng_dtype_name(out->dtype));
    r = eng_op_options(e, op, ENG_OPT_CONCATENATION, &b, &t);
    if (r == FB_BAD ||
        (r == FB_OK &&
         (fb_get_i32(&b, &t, CONCAT_AXIS, 0, &axis) == FB_BAD ||
          fb_get_i8(&b, &t, CONCAT_ACTIVATION, 0, &activation) == FB_BAD)))
        return eng_fail_invalid(err, e, op_index, "bad options");
    if (activation != 0)
        return eng_fail_variant(err, e, op_index, "with fused activation %d",
                                activation);
    if (axis < 0)
        axis += out->ndims;
    if (axis < 0 || axis >= out->ndims)
        return eng_fail_invalid(err, e, op_index, "axis out of range");

    memset(&d, 0, sizeof d);
    d.n = op->n_inputs;
    outer_inner(out, axis, &d.outer, &inner);
    for (i = 0; i < op->n_inputs; ++i) {
        const eng_tensor *in = eng_op_input(e, op, i);
        if (in->dtype != out->dtype)
            return eng_fail_variant(err, e, op_index,
                                    "with %s and %s inputs",
                                    eng_dtype_name(in->dtype),
                                    eng_dtype_name(out->dtype));
        if (!same_except(in, out, axis))
            return eng_fail_invalid(err, e, op_index,
                                    "input %d shape does not match the "
                                    "output", i);
        if (out->dtype == ENG_INT8 && (in->scale != out->scale ||
                                       in->zero_point != out->zero_point))
            return eng_fail_variant(err, e, op_index,
                                    "with input %d quantized unlike the "
                                    "output", i);
        total += in->dims[axis];
        d.chunk[i] = (uint32_t)in->dims[axis] * inner *
                     eng_dtype_size(out->dtype);
    }
    if (total != out->dims[axis])
        return eng_fail_invalid(err, e, op_index,
                                "inputs do not add up to the output");
    return finish(&d, data, bytes);
}

eng_status eng_pack_prepare(eng_t *e, int op_index, uint8_t *data,
                            uint32_t *bytes, eng_error *err)
{
    static const int types[] = {ENG_FLOAT32, ENG_INT8, ENG_INT16, ENG_INT32,
                                ENG_INT64};
    const eng_op *op = &e->ops[op_index];
    const eng_tensor *in0, *out;
    parts_data d;
    fb_buf b;
    fb_table t;
    int32_t count = 0, axis = 0;
    uint32_t inner;
    int i, r;
    eng_status st = eng_check_arity(e, op_index, op->n_inputs < 1 ? 1
                                                                  : op->n_inputs,
                                    MAX_PARTS, 1, err);
    if (st != ENG_OK)
        return st;
    in0 = eng_op_input(e, op, 0);
    out = eng_op_output(e, op, 0);
    if (!type_in(out->dtype, types, 5))
        return eng_fail_variant(err, e, op_index, "of %s tensors",
                                eng_dtype_name(out->dtype));
    r = eng_op_options(e, op, ENG_OPT_PACK, &b, &t);
    if (r != FB_OK || fb_get_i32(&b, &t, PACK_VALUES_COUNT, 0, &count) ==
                          FB_BAD ||
        fb_get_i32(&b, &t, PACK_AXIS, 0, &axis) == FB_BAD)
        return eng_fail_invalid(err, e, op_index, "missing or bad options");
    if (count != op->n_inputs)
        return eng_fail_invalid(err, e, op_index,
                                "values_count %d but %d inputs", (int)count,
                                op->n_inputs);
    if (axis < 0)
        axis += out->ndims;
    if (axis < 0 || axis >= out->ndims || out->ndims != in0->ndims + 1 ||
        out->dims[axis] != count)
        return eng_fail_invalid(err, e, op_index,
                                "output shape does not stack the inputs");
    for (i = 0; i < out->ndims; ++i)
        if (i != axis && out->dims[i] != in0->dims[i < axis ? i : i - 1])
            return eng_fail_invalid(err, e, op_index,
                                    "output shape does not stack the inputs");
    memset(&d, 0, sizeof d);
    d.n = count;
    outer_inner(out, axis, &d.outer, &inner);
    for (i = 0; i < count; ++i) {
        const eng_tensor *in = eng_op_input(e, op, i);
        if (in->dtype != out->dtype || !eng_same_shape(in, in0))
            return eng_fail_invalid(err, e, op_index,
                                    "inputs differ in type or shape");
        d.chunk[i] = inner * eng_dtype_size(out->dtype);
    }
    return finish(&d, data, bytes);
}

/* CONCATENATION and PACK: gather the inputs' chunks */
static eng_status join_eval(eng_t *e, int op_index)
{
    const eng_op *op = &e->ops[op_index];
    const parts_data *d = (const parts_data *)eng_op_data(e, op);
    uint8_t *y = eng_data(e, eng_op_output(e, op, 0));
    int32_t o;
    int i;
    for (o = 0; o < d->outer; ++o) {
        for (i = 0; i < d->n; ++i) {
            const uint8_t *x = eng_data(e, eng_op_input(e, op, i));
            memcpy(y, x + (size_t)o * d->chunk[i], d->chunk[i]);
            y += d->chunk[i];
        }
    }
    return ENG_OK;
}

eng_status eng_concat_eval(eng_t *e, int op_index, eng_error *err)
{
    (void)err;
    return join_eval(e, op_index);
}

eng_status eng_pack_eval(eng_t *e, int op_index, eng_error *err)
{
    (void)err;
    return join_eval(e, op_index);
}

/* ---- SPLIT, SPLIT_V and UNPACK ------------------------------------------- */

static const int split_types[] = {ENG_FLOAT32, ENG_INT8, ENG_INT16,
                                  ENG_INT32};

eng_status eng_split_prepare(eng_t *e, int op_index, uint8_t *data,
                             uint32_t *bytes, eng_error *err)
{
    const eng_op *op = &e->ops[op_index];
    const int is_v = op->builtin == ENG_OP_SPLIT_V;
    const eng_tensor *in, *axis_t;
    parts_data d;
    int32_t axis = 0, total = 0;
    uint32_t inner;
    int i;
    eng_status st = eng_check_arity(e, op_index, is_v ? 3 : 2, is_v ? 3 : 2,
                                    op->n_outputs < 1 ? 1 : op->n_outputs,
                                    err);
    if (st != ENG_OK)
        return st;
    in = eng_op_input(e, op, is_v ? 0 : 1);
    axis_t = eng_op_input(e, op, is_v ? 2 : 0);
    if (!type_in(in->dtype, split_types, 4))
        return eng_fail_variant(err, e, op_index, "of %s tensors",
                                eng_dtype_name(in->dtype));
    if (eng_const_i32(axis_t, &axis, 1) != 1)
        return eng_fail_variant(err, e, op_index,
                                "with a non-constant or non-int32 axis");
    if (axis < 0)
        axis += in->ndims;
    if (axis < 0 || axis >= in->ndims)
        return eng_fail_invalid(err, e, op_index, "axis out of range");
    memset(&d, 0, sizeof d);
    d.n = op->n_outputs;
    d.data_input = is_v ? 0 : 1;
    outer_inner(in, axis, &d.outer, &inner);
    for (i = 0; i < op->n_outputs; ++i) {
        const eng_tensor *out = eng_op_output(e, op, i);
        if (out->dtype != in->dtype || !same_except(out, in, axis) ||
            (!is_v && out->dims[axis] != eng_op_output(e, op, 0)->dims[axis]))
            return eng_fail_invalid(err, e, op_index,
                                    "output %d does not match the input", i);
        total += out->dims[axis];
        d.chunk[i] = (uint32_t)out->dims[axis] * inner *
                     eng_dtype_size(in->dtype);
    }
    if (total != in->dims[axis])
        return eng_fail_invalid(err, e, op_index,
                                "outputs do not add up to the input");
    return finish(&d, data, bytes);
}

eng_status eng_unpack_prepare(eng_t *e, int op_index, uint8_t *data,
                              uint32_t *bytes, eng_error *err)
{
    const eng_op *op = &e->ops[op_index];
    const eng_tensor *in;
    parts_data d;
    fb_buf b;
    fb_table t;
    int32_t num = 0, axis = 0;
    uint32_t inner;
    int i, k, r;
    eng_status st = eng_check_arity(e, op_index, 1, 1,
                                    op->n_outputs < 1 ? 1 : op->n_outputs,
                                    err);
    if (st != ENG_OK)
        return st;
    in = eng_op_input(e, op, 0);
    if (!type_in(in->dtype, split_types, 4))
        return eng_fail_variant(err, e, op_index, "of %s tensors",
                                eng_dtype_name(in->dtype));
    r = eng_op_options(e, op, ENG_OPT_UNPACK, &b, &t);
    if (r != FB_OK || fb_get_i32(&b, &t, UNPACK_NUM, 0, &num) == FB_BAD ||
        fb_get_i32(&b, &t, UNPACK_AXIS, 0, &axis) == FB_BAD)
        return eng_fail_invalid(err, e, op_index, "missing or bad options");
    if (axis < 0)
        axis += in->ndims;
    if (num != op->n_outputs || axis < 0 || axis >= in->ndims ||
        in->dims[axis] != num)
        return eng_fail_invalid(err, e, op_index,
                                "num / axis do not match the input");
    memset(&d, 0, sizeof d);
    d.n = num;
    outer_inner(in, axis, &d.outer, &inner);
    for (i = 0; i < num; ++i) {
        const eng_tensor *out = eng_op_output(e, op, i);
        if (out->dtype != in->dtype || out->ndims != in->ndims - 1)
            return eng_fail_invalid(err, e, op_index,
                                    "output %d does not match the input", i);
        for (k = 0; k < out->ndims; ++k)
            if (out->dims[k] != in->dims[k < axis ? k : k + 1])
                return eng_fail_invalid(err, e, op_index,
                                        "output %d does not match the "
                                        "input", i);
        d.chunk[i] = inner * eng_dtype_size(in->dtype);
    }
    return finish(&d, data, bytes);
}

/* SPLIT, SPLIT_V and UNPACK: scatter the input's chunks */
static eng_status cut_eval(eng_t *e, int op_index)
{
    const eng_op *op = &e->ops[op_index];
    const parts_data *d = (const parts_data *)eng_op_data(e, op);
    const uint8_t *x = eng_data(e, eng_op_input(e, op, d->data_input));
    int32_t o;
    int i;
    for (o = 0; o < d->outer; ++o) {
        for (i = 0; i < d->n; ++i) {
            uint8_t *y = eng_data(e, eng_op_output(e, op, i));
            memcpy(y + (size_t)o * d->chunk[i], x, d->chunk[i]);
            x += d->chunk[i];
        }
    }
    return ENG_OK;
}

eng_status eng_split_eval(eng_t *e, int op_index, eng_error *err)
{
    (void)err;
    return cut_eval(e, op_index);
}

eng_status eng_unpack_eval(eng_t *e, int op_index, eng_error *err)
{
    (void)err;
    return cut_eval(e, op_index);
}
