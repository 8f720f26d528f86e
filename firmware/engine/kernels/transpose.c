/*
 * TRANSPOSE by a constant permutation (int32), up to 5 dimensions, float32,
 * int8 or int16: output dimension i is input dimension perm[i], so
 *   y[i0, ..., ik] = x[j] with j[perm[i]] = i_i
 */
#include "../engine_internal.h"

#define TRANSPOSE_MAX_DIMS 5

typedef struct {
    int32_t rank, elem_size, count;
    int32_t dims[TRANSPOSE_MAX_DIMS];       /* output shape */
    int32_t in_stride[TRANSPOSE_MAX_DIMS];  /* input stride of output dim i */
} transpose_data;

eng_status eng_transpose_prepare(eng_t *e, int op_index, uint8_t *data,
                                 uint32_t *bytes, eng_error *err)
{
    const eng_op *op = &e->ops[op_index];
    const eng_tensor *in, *out;
    int32_t perm[TRANSPOSE_MAX_DIMS], stride[TRANSPOSE_MAX_DIMS];
    transpose_data d;
    int used = 0, i;
    eng_status st = eng_check_arity(e, op_index, 2, 2, 1, err);
    if (st != ENG_OK)
        return st;
    in = eng_op_input(e, op, 0);
    out = eng_op_output(e, op, 0);
    if (in->dtype != out->dtype ||
        (in->dtype != ENG_FLOAT32 && in->dtype != ENG_INT8 &&
         in->dtype != ENG_INT16))
        return eng_fail_variant(err, e, op_index, "of %s tensors",
                                eng_dtype_name(in->dtype));
    if (in->ndims < 1 || in->ndims > TRANSPOSE_MAX_DIMS)
        return eng_fail_variant(err, e, op_index, "of a %d-D tensor",
                                (int)in->ndims);
    if (eng_const_i32(eng_op_input(e, op, 1), perm, TRANSPOSE_MAX_DIMS) !=
        in->ndims)
        return eng_fail_variant(err, e, op_index,
                                "with a non-constant permutation");
    memset(&d, 0, sizeof d);
    d.rank = in->ndims;
    d.elem_size = (int32_t)eng_dtype_size(in->dtype);
    d.count = (int32_t)eng_elems(in);
    stride[in->ndims - 1] = 1;
    for (i = in->ndims - 2; i >= 0; --i)
        stride[i] = stride[i + 1] * in->dims[i + 1];
    if (out->ndims != in->ndims)
        return eng_fail_invalid(err, e, op_index, "output rank differs");
    for (i = 0; i < in->ndims; ++i) {
        if (perm[i] < 0 || perm[i] >= in->ndims || (used >> perm[i]) & 1)
            return eng_fail_invalid(err, e, op_index,
                                    "not a permutation of %d dimensions",
                                    (int)in->ndims);
        used |= 1 << perm[i];
        if (out->dims[i] != in->dims[perm[i]])
            return eng_fail_invalid(err, e, op_index,
                                    "output shape does not match the "
                                    "permutation");
        d.dims[i] = out->dims[i];
        d.in_stride[i] = stride[perm[i]];
    }
    return eng_keep_op_data(data, bytes, &d, sizeof d);
}

eng_status eng_transpose_eval(eng_t *e, int op_index, eng_error *err)
{
    const eng_op *op = &e->ops[op_index];
    const transpose_data *d = (const transpose_data *)eng_op_data(e, op);
    const uint8_t *x = eng_data(e, eng_op_input(e, op, 0));
    uint8_t *y = eng_data(e, eng_op_output(e, op, 0));
    const size_t size = (size_t)d->elem_size;
    int32_t index[TRANSPOSE_MAX_DIMS];
    int32_t i, at = 0;
    int k;
    (void)err;
    memset(index, 0, sizeof index);
    for (i = 0; i < d->count; ++i) {
        memcpy(y + (size_t)i * size, x + (size_t)at * size, size);
        for (k = d->rank - 1; k >= 0; --k) {
            at += d->in_stride[k];
            if (++index[k] < d->dims[k])
                break;
            at -= d->in_stride[k] * d->dims[k];
            index[k] = 0;
        }
    }
    return ENG_OK;
}
