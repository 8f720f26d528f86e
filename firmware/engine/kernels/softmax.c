/*
 * SOFTMAX, int8 in -> int8 out (output scale 1/256, zero point -128), over
 * the last dimension, with beta.
 *
 * For each row, with m the row maximum and d = x - m <= 0 (raw units):
 *   e(d)  = exp(beta * input_scale * d), evaluated in fixed point on the
 *           difference rescaled to Q5.26; differences below diff_min would
 *           not fit and contribute nothing
 *   sum   = sum of e(d) in Q12.19
 *   y     = e(d) / sum, as a Q0.31 reciprocal times e(d), shifted down to
 *           8 bits and offset by -128
 *
 * float32: per row, m = max (NaNs skipped), e_c = expf((x_c - m) * beta)
 * (glibc-identical expf from fmath.c), y_c = e_c / (sum of e_c in order).
 */
#include <float.h>

#include "../engine_internal.h"
#include "../fmath.h"
#include "../quant.h"

/* SoftmaxOptions slot */
enum { SOFTMAX_BETA = 0 };

#define SUM_INT_BITS 12 /* headroom for adding up to 4096 exponentials */
#define SOFTMAX_KEPT 64 /* exps kept on the stack between the two passes */

typedef struct {
    int32_t rows, depth;
    int32_t multiplier;
    int32_t left_shift;
    int32_t diff_min;
    int32_t is_float;
    float beta;
} softmax_data;

eng_status eng_softmax_prepare(eng_t *e, int op_index, uint8_t *data,
                               uint32_t *bytes, eng_error *err)
{
    const eng_op *op = &e->ops[op_index];
    const eng_tensor *in, *out;
    softmax_data d;
    fb_buf b;
    fb_table t;
    float beta = 0.0f;
    int shift = 0, r;
    eng_status st;

    if (op->n_inputs != 1 || op->n_outputs != 1)
        return eng_fail_invalid(err, e, op_index,
                                "expects 1 input and 1 output");
    in = eng_op_input(e, op, 0);
    out = eng_op_output(e, op, 0);
    if (in == NULL)
        return eng_fail_invalid(err, e, op_index, "missing input");
    if (!(in->dtype == ENG_INT8 && out->dtype == ENG_INT8) &&
        !(in->dtype == ENG_FLOAT32 && out->dtype == ENG_FLOAT32))
        return eng_fail_variant(err, e, op_index, "with %s input and %s output",
                                eng_dtype_name(in->dtype),
                                eng_dtype_name(out->dtype));
    if (in->ndims < 1 || in->ndims != out->ndims ||
        eng_elems(in) != eng_elems(out) ||
        in->dims[in->ndims - 1] != out->dims[out->ndims - 1] ||
        in->dims[in->ndims - 1] <= 0)
        return eng_fail_invalid(err, e, op_index,
                                "input and output shapes differ");
    r = eng_op_options(e, op, ENG_OPT_SOFTMAX, &b, &t);
    if (r == FB_BAD ||
        (r == FB_OK && fb_get_f32(&b, &t, SOFTMAX_BETA, 0.0f, &beta) == FB_BAD))
        return eng_fail_invalid(err, e, op_index, "bad options");

    if (in->dtype == ENG_FLOAT32) {
        memset(&d, 0, sizeof d);
        d.depth = in->dims[in->ndims - 1];
        d.rows = (int32_t)(eng_elems(in) / (uint32_t)d.depth);
        d.is_float = 1;
        d.beta = beta;
        return eng_keep_op_data(data, bytes, &d, sizeof d);
    }
    st = eng_require_quant(e, op_index, in, "input", err);
    if (st == ENG_OK)
        st = eng_require_quant(e, op_index, out, "output", err);
    if (st != ENG_OK)
        return st;
    if (out->zero_point != -128 || out->scale != 1.0f / 256.0f)
        return eng_fail_variant(err, e, op_index,
                                "with output not scale 1/256, zero point "
                                "-128");

    memset(&d, 0, sizeof d);
    d.depth = in->dims[in->ndims - 1];
    d.rows = (int32_t)(eng_elems(in) / (uint32_t)d.depth);
    if (q_softmax_input_scaling((double)beta, (double)in->scale,
                                &d.multiplier, &shift, &d.diff_min) != 0)
        return eng_fail_variant(err, e, op_index,
                                "with beta * input_scale below 2^-26");
    d.left_shift = shift;
    return eng_keep_op_data(data, bytes, &d, sizeof d);
}

/* beta * input_scale * diff as Q5.26 */
static int32_t scaled_diff(int32_t diff, const softmax_data *d)
{
    const int32_t shifted = (int32_t)((uint32_t)diff << d->left_shift);
    return q_mul_high(shifted, d->multiplier);
}

static void softmax_float(const softmax_data *d, const uint8_t *x,
                          uint8_t *y)
{
    int32_t r, c;
    for (r = 0; r < d->rows; ++r) {
        const uint8_t *xr = x + 4 * (size_t)r * d->depth;
        uint8_t *yr = y + 4 * (size_t)r * d->depth;
        float max = -FLT_MAX, sum = 0.0f;
        for (c = 0; c < d->depth; ++c) {
            const float v = eng_ld_f32(xr + 4 * c);
            max = max < v ? v : max;
        }
        for (c = 0; c < d->depth; ++c) {
            const float ex = eng_expf((eng_ld_f32(xr + 4 * c) - max) * d->beta);
            eng_st_f32(yr + 4 * c, ex);
            sum += ex;
        }
        for (c = 0; c < d->depth; ++c)
            eng_st_f32(yr + 4 * c, eng_ld_f32(yr + 4 * c) / sum);
    }
}

eng_status eng_softmax_eval(eng_t *e, int op_index, eng_error *err)
{
    eng_op *op = &e->ops[op_index];
    const softmax_data *d =
        (const softmax_data *)(const void *)(e->arena +
                                             op->persistent_offset);
    const int8_t *x = (const int8_t *)eng_data(e, eng_op_input(e, op, 0));
    int8_t *y = (int8_t *)eng_data(e, eng_op_output(e, op, 0));
    int r, c;

    if (d->is_float) {
        softmax_float(d, (const uint8_t *)x, (uint8_t *)y);
        return ENG_OK;
    }
    for (r = 0; r < d->rows; ++r) {
        const int8_t *xr = x + (size_t)r * d->depth;
        int8_t *yr = y + (size_t)r * d->depth;
        int32_t kept[SOFTMAX_KEPT]; /* the exps of the first columns, reused */
        int32_t max = -128, sum = 0, reciprocal;
        int bits_over_unit = 0, exponent;

        for (c = 0; c < d->depth; ++c)
            if (xr[c] > max)
                max = xr[c];

        for (c = 0; c < d->depth; ++c) {
            const int32_t diff = (int32_t)xr[c] - max;
            /* an exp below diff_min counts as 0 and gives -128 below, as
             * the reference's skipped element does */
            const int32_t ex = diff >= d->diff_min
                                   ? q_exp_on_negative_q5_26(scaled_diff(diff, d))
                                   : 0;
            if (c < SOFTMAX_KEPT)
                kept[c] = ex;
            /* Q0.31 -> Q12.19, wrapping add as the reference */
            sum = (int32_t)((uint32_t)sum +
                            (uint32_t)q_shift_round(ex, SUM_INT_BITS));
        }

        /* 1/sum = reciprocal * 2^-bits_over_unit, reciprocal in Q0.31 */
        reciprocal = q_reciprocal(sum, SUM_INT_BITS, &bits_over_unit);
        exponent = bits_over_unit + 31 - 8;
        if (exponent < 0 || exponent > 31)
            return eng_fail(err, ENG_E_INVOKE, (uint32_t)op_index, op_index,
                            "operator %d: SOFTMAX sum out of range",
                            op_index);

        for (c = 0; c < d->depth; ++c) {
            int32_t ex, v;
            if (c < SOFTMAX_KEPT) {
                ex = kept[c];
            } else {
                const int32_t diff = (int32_t)xr[c] - max;
                ex = diff >= d->diff_min
                         ? q_exp_on_negative_q5_26(scaled_diff(diff, d))
                         : 0;
            }
            /* ex == 0 gives -128, as the reference's skipped element */
            v = q_shift_round(q_mul_high(reciprocal, ex), exponent) - 128;
            if (v > 127)
                v = 127;
            if (v < -128)
                v = -128;
            yr[c] = (int8_t)v;
        }
    }
    return ENG_OK;
}
