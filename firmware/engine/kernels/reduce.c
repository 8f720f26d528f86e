/*
 * MEAN over a constant set of axes (negative axes count from the end,
 * repeats are ignored), int8 or float32, with or without keep_dims.
 *
 * The sums run over the input in memory order, each element added to the
 * output it reduces into (the order matters for float32).
 *
 * float32: y = sum / n in single precision.
 * int8:    with n elements per output and M = x_scale / y_scale as a Q0.31
 *          multiplier m * 2^s, the reference folds 1/n into it:
 *            k  = min(floor(log2 n), 32, 31 + s)
 *            m' = (m * 2^k) / n   (integer division)
 *          y = clamp(requantize(sum - n x_zp, m' * 2^(s - k)) + y_zp)
 */
#include "../engine_internal.h"
#include "../quant.h"

/* ReducerOptions: keep_dims */
enum { REDUCER_KEEP_DIMS = 0 };

/* Per-op data, followed for int8 by int32 sums[outputs]. */
typedef struct {
    int32_t dtype;
    int32_t rank;
    int32_t dims[ENG_MAX_DIMS];       /* input shape */
    int32_t out_stride[ENG_MAX_DIMS]; /* 0 along reduced axes */
    int32_t inputs, outputs;          /* element counts */
    int32_t n;                        /* inputs per output */
    int32_t input_zero_point, output_zero_point;
    int32_t multiplier, shift;
} mean_data;

eng_status eng_mean_prepare(eng_t *e, int op_index, uint8_t *data,
                            uint32_t *bytes, eng_error *err)
{
    const eng_op *op = &e->ops[op_index];
    const eng_tensor *in, *axis_t, *out;
    int32_t axes[ENG_MAX_DIMS * 2];
    int reduced[ENG_MAX_DIMS];
    int n_axes, i, j;
    int64_t stride = 1, n = 1;
    mean_data d;
    eng_status st = eng_check_arity(e, op_index, 2, 2, 1, err);
    if (st != ENG_OK)
        return st;
    in = eng_op_input(e, op, 0);
    axis_t = eng_op_input(e, op, 1);
    out = eng_op_output(e, op, 0);
    if (in->dtype != out->dtype ||
        (in->dtype != ENG_INT8 && in->dtype != ENG_FLOAT32))
        return eng_fail_variant(err, e, op_index, "with %s input and %s output",
                                eng_dtype_name(in->dtype),
                                eng_dtype_name(out->dtype));
    n_axes = eng_const_i32(axis_t, axes, ENG_MAX_DIMS * 2);
    if (n_axes < 0)
        return eng_fail_variant(err, e, op_index,
                                "with a non-constant or non-int32 axis");
    if (in->ndims < 1 || eng_elems(in) == 0)
        return eng_fail_variant(err, e, op_index, "of an empty or scalar "
                                "tensor");

    memset(&d, 0, sizeof d);
    memset(reduced, 0, sizeof reduced);
    for (i = 0; i < n_axes; ++i) {
        const int32_t a = axes[i] < 0 ? axes[i] + in->ndims : axes[i];
        if (a < 0 || a >= in->ndims)
            return eng_fail_invalid(err, e, op_index, "axis %d out of range",
                                    (int)axes[i]);
        reduced[a] = 1;
    }
    d.dtype = in->dtype;
    d.rank = in->ndims;
    for (j = in->ndims - 1; j >= 0; --j) {
        d.dims[j] = in->dims[j];
        if (reduced[j]) {
            d.out_stride[j] = 0;
            n *= in->dims[j];
        } else {
            d.out_stride[j] = (int32_t)stride;
            stride *= in->dims[j];
        }
    }
    d.inputs = (int32_t)eng_elems(in);
    d.outputs = (int32_t)stride;
    d.n = (int32_t)n;
    if (eng_elems(out) != (uint32_t)d.outputs)
        return eng_fail_invalid(err, e, op_index,
                                "output size does not match the axes");

    const uint32_t room = *bytes; /* what `data` holds */
    *bytes = (uint32_t)sizeof d;
    if (in->dtype == ENG_INT8) {
        int32_t m = 0, s = 0;
        int k;
        st = eng_require_quant(e, op_index, in, "input", err);
        if (st == ENG_OK)
            st = eng_require_quant(e, op_index, out, "output", err);
        if (st != ENG_OK)
            return st;
        st = eng_scale_multiplier(e, op_index,
                                  (double)in->scale / (double)out->scale, &m,
                                  &s, err);
        if (st != ENG_OK)
            return st;
        /* fold 1/n into the multiplier */
        for (k = 0; ((int64_t)1 << (k + 1)) <= n; ++k)
            ;
        if (k > 32)
            k = 32;
        if (k > 31 + s)
            k = 31 + s;
        d.multiplier = (int32_t)((((int64_t)m) << k) / n);
        d.shift = s - k;
        d.input_zero_point = in->zero_point;
        d.output_zero_point = out->zero_point;
        *bytes += 4u * (uint32_t)d.outputs;
    }
    if (data != NULL && *bytes <= room)
        memcpy(data, &d, sizeof d);
    return ENG_OK;
}

eng_status eng_mean_eval(eng_t *e, int op_index, eng_error *err)
{
    const eng_op *op = &e->ops[op_index];
    const mean_data *d = (const mean_data *)eng_op_data(e, op);
    const uint8_t *x = eng_data(e, eng_op_input(e, op, 0));
    uint8_t *y = eng_data(e, eng_op_output(e, op, 0));
    int32_t *sums = (int32_t *)(void *)((uint8_t *)eng_op_data(e, op) +
                                        sizeof *d);
    int32_t index[ENG_MAX_DIMS];
    int32_t i, o = 0;
    int k;
    (void)err;

    if (d->dtype == ENG_FLOAT32) {
        for (i = 0; i < d->outputs; ++i)
            eng_st_f32(y + 4 * i, 0.0f);
    } else {
        memset(sums, 0, 4u * (uint32_t)d->outputs);
    }
    memset(index, 0, sizeof index);
    for (i = 0; i < d->inputs; ++i) {
        if (d->dtype == ENG_FLOAT32)
            eng_st_f32(y + 4 * o,
                       eng_ld_f32(y + 4 * o) + eng_ld_f32(x + 4 * i));
        else
            sums[o] = q_add_wrap(sums[o], (int8_t)x[i]);
        for (k = d->rank - 1; k >= 0; --k) {
            o += d->out_stride[k];
            if (++index[k] < d->dims[k])
                break;
            o -= d->out_stride[k] * d->dims[k];
            index[k] = 0;
        }
    }

    for (i = 0; i < d->outputs; ++i) {
        if (d->dtype == ENG_FLOAT32) {
            eng_st_f32(y + 4 * i, eng_ld_f32(y + 4 * i) / (float)d->n);
        } else {
            const int32_t centered = (int32_t)(uint32_t)(uint64_t)(
                (int64_t)sums[i] - (int64_t)d->input_zero_point * d->n);
            int32_t v = q_mul_by_multiplier(centered, d->multiplier,
                                            d->shift) +
                        d->output_zero_point;
            v = v < -128 ? -128 : (v > 127 ? 127 : v);
            y[i] = (uint8_t)(int8_t)v;
        }
    }
    return ENG_OK;
}
