/*
 * RESHAPE: same bytes, new shape (taken from the output tensor). The planner
 * usually lets the output share the input's buffer, in which case there is
 * nothing to do; otherwise the bytes are copied.
 *
 * SHAPE: the input's dimensions as an int32 vector.
 */
#include "../engine_internal.h"

eng_status eng_reshape_prepare(eng_t *e, int op_index, uint8_t *data,
                               uint32_t *bytes, eng_error *err)
{
    const eng_op *op = &e->ops[op_index];
    const eng_tensor *in, *out;
    (void)data;
    if (op->n_inputs < 1 || op->n_inputs > 2 || op->n_outputs != 1 ||
        eng_op_input(e, op, 0) == NULL)
        return eng_fail_invalid(err, e, op_index,
                                "expects 1 or 2 inputs and 1 output");
    in = eng_op_input(e, op, 0);
    out = eng_op_output(e, op, 0);
    if (eng_dtype_size(in->dtype) == 0)
        return eng_fail_variant(err, e, op_index, "of %s tensors",
                                eng_dtype_name(in->dtype));
    if (in->dtype != out->dtype || in->bytes != out->bytes)
        return eng_fail_invalid(err, e, op_index,
                                "input and output differ in type or size");
    *bytes = 0;
    return ENG_OK;
}

eng_status eng_reshape_eval(eng_t *e, int op_index, eng_error *err)
{
    eng_op *op = &e->ops[op_index];
    const eng_tensor *in = eng_op_input(e, op, 0);
    const eng_tensor *out = eng_op_output(e, op, 0);
    const uint8_t *src = eng_data(e, in);
    uint8_t *dst = eng_data(e, out);
    (void)err;
    if (src != dst && out->bytes > 0)
        memmove(dst, src, out->bytes);
    return ENG_OK;
}

eng_status eng_shape_prepare(eng_t *e, int op_index, uint8_t *data,
                             uint32_t *bytes, eng_error *err)
{
    const eng_op *op = &e->ops[op_index];
    const eng_tensor *in, *out;
    eng_status st = eng_check_arity(e, op_index, 1, 1, 1, err);
    (void)data;
    if (st != ENG_OK)
        return st;
    in = eng_op_input(e, op, 0);
    out = eng_op_output(e, op, 0);
    if (out->dtype != ENG_INT32)
        return eng_fail_variant(err, e, op_index, "with %s output",
                                eng_dtype_name(out->dtype));
    if (eng_elems(out) != in->ndims)
        return eng_fail_invalid(err, e, op_index,
                                "output does not have %d elements",
                                (int)in->ndims);
    *bytes = 0;
    return ENG_OK;
}

eng_status eng_shape_eval(eng_t *e, int op_index, eng_error *err)
{
    eng_op *op = &e->ops[op_index];
    const eng_tensor *in = eng_op_input(e, op, 0);
    uint8_t *y = eng_data(e, eng_op_output(e, op, 0));
    int i;
    (void)err;
    for (i = 0; i < in->ndims; ++i)
        eng_st_i32(y + 4 * i, in->dims[i]);
    return ENG_OK;
}
