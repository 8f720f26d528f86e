/*
 * PAD and PADV2: surround the input with a constant, up to 5 dimensions,
 * paddings a constant int32 [rank, 2] tensor of (before, after) counts.
 *
 * The padding value is PADV2's third input (a one-element tensor of the
 * input's type, same quantization for int8), else 0, or the output zero
 * point for int8 (a real 0). float32, int8, int16 and int32 tensors.
 */
#include "../engine_internal.h"

#define PAD_MAX_DIMS 5

typedef struct {
    int32_t rank, elem_size;
    int32_t out_dims[PAD_MAX_DIMS];
    int32_t before[PAD_MAX_DIMS];
    int32_t in_dims[PAD_MAX_DIMS];
    int32_t count;       /* output elements */
    uint8_t value[4];    /* padding value when there is no third input */
} pad_data;

eng_status eng_pad_prepare(eng_t *e, int op_index, uint8_t *data,
                           uint32_t *bytes, eng_error *err)
{
    const eng_op *op = &e->ops[op_index];
    const eng_tensor *in, *paddings, *value, *out;
    int32_t p[2 * PAD_MAX_DIMS];
    pad_data d;
    int i;
    eng_status st = eng_check_arity(e, op_index, 2, 3, 1, err);
    if (st != ENG_OK)
        return st;
    in = eng_op_input(e, op, 0);
    paddings = eng_op_input(e, op, 1);
    value = eng_op_input(e, op, 2);
    out = eng_op_output(e, op, 0);
    if (in->dtype != out->dtype ||
        (in->dtype != ENG_FLOAT32 && in->dtype != ENG_INT8 &&
         in->dtype != ENG_INT16 && in->dtype != ENG_INT32))
        return eng_fail_variant(err, e, op_index, "with %s input and %s output",
                                eng_dtype_name(in->dtype),
                                eng_dtype_name(out->dtype));
    if (in->ndims > PAD_MAX_DIMS || in->ndims != out->ndims)
        return eng_fail_variant(err, e, op_index, "of a %d-D tensor",
                                (int)in->ndims);
    if (eng_const_i32(paddings, p, 2 * PAD_MAX_DIMS) != 2 * in->ndims)
        return eng_fail_variant(err, e, op_index,
                                "with non-constant or non-int32 paddings");
    if (value != NULL && (value->dtype != in->dtype || eng_elems(value) != 1))
        return eng_fail_invalid(err, e, op_index,
                                "padding value is not one %s",
                                eng_dtype_name(in->dtype));

    memset(&d, 0, sizeof d);
    d.rank = in->ndims;
    d.elem_size = (int32_t)eng_dtype_size(in->dtype);
    d.count = (int32_t)eng_elems(out);
    for (i = 0; i < in->ndims; ++i) {
        if (p[2 * i] < 0 || p[2 * i + 1] < 0)
            return eng_fail_variant(err, e, op_index, "with negative padding");
        if ((int64_t)in->dims[i] + p[2 * i] + p[2 * i + 1] != out->dims[i])
            return eng_fail_invalid(err, e, op_index,
                                    "output shape does not match the "
                                    "paddings");
        d.in_dims[i] = in->dims[i];
        d.out_dims[i] = out->dims[i];
        d.before[i] = p[2 * i];
    }
    if (in->dtype == ENG_INT8) {
        st = eng_require_quant(e, op_index, out, "output", err);
        if (st != ENG_OK)
            return st;
        if (value != NULL &&
            (value->n_scales == 0 || value->zero_point != out->zero_point ||
             value->scale != out->scale))
            return eng_fail_variant(err, e, op_index,
                                    "with a padding value quantized unlike "
                                    "the output");
        d.value[0] = (uint8_t)(int8_t)out->zero_point;
    }
    return eng_keep_op_data(data, bytes, &d, sizeof d);
}

eng_status eng_pad_eval(eng_t *e, int op_index, eng_error *err)
{
    const eng_op *op = &e->ops[op_index];
    const pad_data *d = (const pad_data *)eng_op_data(e, op);
    const eng_tensor *value_t = eng_op_input(e, op, 2);
    const uint8_t *x = eng_data(e, eng_op_input(e, op, 0));
    const uint8_t *value = value_t != NULL ? eng_data(e, value_t) : d->value;
    uint8_t *y = eng_data(e, eng_op_output(e, op, 0));
    const size_t size = (size_t)d->elem_size;
    int32_t index[PAD_MAX_DIMS];
    int32_t i, k;
    size_t in_offset = 0;
    (void)err;

    /* output in order; the input is read in order too, skipping padding */
    memset(index, 0, sizeof index);
    for (i = 0; i < d->count; ++i) {
        int inside = 1;
        for (k = 0; k < d->rank; ++k)
            if (index[k] < d->before[k] ||
                index[k] >= d->before[k] + d->in_dims[k])
                inside = 0;
        if (inside) {
            memcpy(y + (size_t)i * size, x + in_offset * size, size);
            ++in_offset;
        } else {
            memcpy(y + (size_t)i * size, value, size);
        }
        for (k = d->rank - 1; k >= 0; --k) {
            if (++index[k] < d->out_dims[k])
                break;
            index[k] = 0;
        }
    }
    return ENG_OK;
}
