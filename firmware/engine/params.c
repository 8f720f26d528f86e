/*
 * Parameter checks and derivations shared by several kernels: quantization
 * a kernel requires, rescaling multipliers, fused activation ranges, the
 * tensor types of weighted operators, operator arity, constant int32
 * operands and the operator's options table.
 */
#include "engine_internal.h"
#include "quant.h"

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
        const eng_status st = eng_channel_multiplier(e, op_index, in, filter,
                                                     out, i, &mult[i],
                                                     &shift[i], err);
        if (st != ENG_OK)
            return st;
    }
    return ENG_OK;
}

eng_status eng_channel_multiplier(const eng_t *e, int op_index,
                                  const eng_tensor *in,
                                  const eng_tensor *filter,
                                  const eng_tensor *out, int channel,
                                  int32_t *mult, int32_t *shift,
                                  eng_error *err)
{
    const float ws =
        eng_scale_at(filter, filter->n_scales > 1 ? (uint32_t)channel : 0u);
    return eng_scale_multiplier(
        e, op_index, (double)in->scale * (double)ws / (double)out->scale,
        mult, shift, err);
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
