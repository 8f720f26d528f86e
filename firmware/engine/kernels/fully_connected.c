/*
 * FULLY_CONNECTED, int8 activations and weights, optional int32 bias.
 *
 * Weights are [units, depth]; the input is read as [batches, depth] whatever
 * its rank (batches = output elements / units, so keep_num_dims only changes
 * the output shape, which the model already states).
 *
 *   acc[b][u] = sum_d (w[u][d] - w_zero_point) * (x[b][d] - x_zero_point)
 *               + bias[u]
 *   y[b][u]   = clamp(requantize(acc, M[u]) + y_zero_point, act_min, act_max)
 *
 * Per-tensor weights: M = (float)(input_scale * weight_scale) / output_scale,
 * the product taken in single precision as the reference does. Per-channel
 * weights: M[u] = input_scale * weight_scale[u] / output_scale in double, and
 * the weight zero point is not used.
 *
 * float32 (input, weights, optional bias, output all float32):
 *   y[b][u] = clamp(sum_d x[b][d] * w[u][d] (single precision, d in order)
 *                   + bias[u] (0 without bias), activation range)
 */
#include <math.h>

#include "../engine_internal.h"
#include "../quant.h"
#if HIL_KERNELS_DSP
#include "s8_dsp.h"
#endif

/* FullyConnectedOptions slots */
enum { FC_ACTIVATION = 0, FC_WEIGHTS_FORMAT = 1 };

/* Per-op data; per-channel: followed by int32 multiplier[units],
 * int32 shift[units]; then, when the DSP kernels take the op (dsp),
 * dsp_chan[units]. */
typedef struct {
    int32_t batches, units, depth;
    int32_t input_offset, filter_offset, output_offset;
    int32_t act_min, act_max;
    int32_t per_channel;
    int32_t multiplier, shift; /* per-tensor */
    int32_t is_float;
    int32_t dsp; /* s8_dsp.c runs it (HIL_KERNELS_DSP builds) */
    float f_min, f_max;
} fc_data;

eng_status eng_fc_prepare(eng_t *e, int op_index, uint8_t *data,
                          uint32_t *bytes, eng_error *err)
{
    const eng_op *op = &e->ops[op_index];
    const eng_tensor *in, *filter, *bias, *out;
    fc_data d;
    int8_t activation = 0;
    uint8_t weights_format = 0;
    fb_buf b;
    fb_table t;
    int r;
    eng_status st;

    if ((op->n_inputs != 2 && op->n_inputs != 3) || op->n_outputs != 1)
        return eng_fail_invalid(err, e, op_index,
                                "expects 2 or 3 inputs and 1 output");
    in = eng_op_input(e, op, 0);
    filter = eng_op_input(e, op, 1);
    bias = eng_op_input(e, op, 2);
    out = eng_op_output(e, op, 0);
    if (in == NULL || filter == NULL)
        return eng_fail_invalid(err, e, op_index, "missing input or weights");
    st = eng_check_weighted_types(e, op_index, in, filter, bias, out, err);
    if (st != ENG_OK)
        return st;

    r = eng_op_options(e, op, ENG_OPT_FULLY_CONNECTED, &b, &t);
    if (r == FB_BAD)
        return eng_fail_invalid(err, e, op_index, "bad options");
    if (r == FB_OK &&
        (fb_get_i8(&b, &t, FC_ACTIVATION, 0, &activation) == FB_BAD ||
         fb_get_u8(&b, &t, FC_WEIGHTS_FORMAT, 0, &weights_format) == FB_BAD))
        return eng_fail_invalid(err, e, op_index, "bad options");
    if (weights_format != 0)
        return eng_fail_variant(err, e, op_index, "with shuffled weights");
    if (activation < ENG_ACT_NONE || activation > ENG_ACT_RELU6)
        return eng_fail_variant(err, e, op_index, "with fused activation %d",
                                activation);

    if (filter->ndims < 2 || out->ndims < 1)
        return eng_fail_invalid(err, e, op_index,
                                "weights must be at least 2-D");
    memset(&d, 0, sizeof d);
    d.units = out->dims[out->ndims - 1];
    d.depth = filter->dims[filter->ndims - 1];
    if (d.units <= 0 || d.depth <= 0 ||
        d.units > filter->dims[filter->ndims - 2] ||
        eng_elems(filter) < (uint32_t)d.units * (uint32_t)d.depth)
        return eng_fail_invalid(err, e, op_index,
                                "weights do not match the output units");
    d.batches = (int32_t)(eng_elems(out) / (uint32_t)d.units);
    if ((uint64_t)d.batches * (uint64_t)d.depth != eng_elems(in))
        return eng_fail_invalid(err, e, op_index,
                                "input size is not batches x %d", d.depth);
    if (bias != NULL && eng_elems(bias) < (uint32_t)d.units)
        return eng_fail_invalid(err, e, op_index,
                                "bias smaller than the output units");

    if (in->dtype == ENG_FLOAT32) {
        d.is_float = 1;
        q_float_activation_range(activation, &d.f_min, &d.f_max);
        return eng_keep_op_data(data, bytes, &d, sizeof d);
    }
    st = eng_require_quant(e, op_index, in, "input", err);
    if (st == ENG_OK)
        st = eng_require_quant(e, op_index, out, "output", err);
    if (st == ENG_OK)
        st = eng_require_quant(e, op_index, filter, "weights", err);
    if (st != ENG_OK)
        return st;

    const uint32_t room = *bytes; /* what `data` holds */
    d.per_channel = filter->n_scales > 1;
    d.input_offset = -in->zero_point;
    d.filter_offset = -filter->zero_point;
    d.output_offset = out->zero_point;
    st = eng_int8_activation_range(e, op_index, activation, out, &d.act_min,
                                   &d.act_max, err);
    if (st != ENG_OK)
        return st;

    if (d.per_channel) {
        if (filter->quantized_dimension < 0 ||
            filter->quantized_dimension >= filter->ndims ||
            filter->n_scales !=
                (uint32_t)filter->dims[filter->quantized_dimension] ||
            filter->n_scales < (uint32_t)d.units)
            return eng_fail_invalid(err, e, op_index,
                                    "per-channel scales do not match the "
                                    "weights");
        *bytes = (uint32_t)sizeof d + 8u * (uint32_t)d.units;
    } else {
        /* the reference checks that the bias scale is close to
         * input_scale * weight_scale before using per-tensor parameters */
        if (bias != NULL) {
            const double product = (double)in->scale * (double)filter->scale;
            const double diff = fabs(product - (double)bias->scale);
            if (!(diff / (double)out->scale <= 0.02))
                return eng_fail_variant(err, e, op_index,
                                        "with bias scale != input x weight "
                                        "scale");
        }
        st = eng_scale_multiplier(e, op_index,
                                  (double)(in->scale * filter->scale) /
                                      (double)out->scale,
                                  &d.multiplier, &d.shift, err);
        if (st != ENG_OK)
            return st;
        *bytes = (uint32_t)sizeof d;
    }
#if HIL_KERNELS_DSP
    /* a weight zero point would need the input's sum: reference only. The
     * optimised kernel never falls back, so its dsp_chan array, which holds
     * the requantisation, replaces the per-channel multipliers. */
    d.dsp = (d.per_channel || d.filter_offset == 0) && d.units <= DSP_MAX_ROWS;
    if (d.dsp)
        *bytes = (uint32_t)sizeof d +
                 (uint32_t)sizeof(dsp_chan) * (uint32_t)DSP_CHAN_ROWS(d.units);
#endif
    if (data == NULL || *bytes > room)
        return ENG_OK;

    memcpy(data, &d, sizeof d);
#if HIL_KERNELS_DSP
    if (d.dsp) {
        dsp_chan *ch = (dsp_chan *)(void *)(data + sizeof d);
        int u;
        dsp_channels((const int8_t *)eng_data(e, filter), d.units, d.depth,
                     d.depth, 1, d.input_offset,
                     bias != NULL ? eng_data(e, bias) : NULL,
                     d.per_channel ? NULL : &d.multiplier,
                     d.per_channel ? NULL : &d.shift, 0, ch);
        for (u = 0; d.per_channel && u < d.units; ++u) {
            int32_t mult = 0, shift = 0;
            st = eng_channel_multiplier(e, op_index, in, filter, out, u, &mult,
                                        &shift, err);
            if (st != ENG_OK)
                return st;
            dsp_chan_requant(&ch[u], mult, shift);
        }
        return ENG_OK;
    }
#endif
    if (d.per_channel)
        return eng_channel_multipliers(e, op_index, in, filter, out, d.units,
                                       (int32_t *)(void *)(data + sizeof d),
                                       err);
    return ENG_OK;
}

eng_status eng_fc_eval(eng_t *e, int op_index, eng_error *err)
{
    eng_op *op = &e->ops[op_index];
    const fc_data *d =
        (const fc_data *)(const void *)(e->arena + op->persistent_offset);
    const int32_t *mult = (const int32_t *)(const void *)(d + 1);
    const int32_t *shift = mult + d->units;
    const eng_tensor *bias = eng_op_input(e, op, 2);
    const int8_t *x = (const int8_t *)eng_data(e, eng_op_input(e, op, 0));
    const int8_t *w = (const int8_t *)eng_data(e, eng_op_input(e, op, 1));
    const uint8_t *b = bias != NULL ? eng_data(e, bias) : NULL;
    int8_t *y = (int8_t *)eng_data(e, eng_op_output(e, op, 0));
    /* per-channel kernels ignore the weight zero point */
    const int32_t filter_offset = d->per_channel ? 0 : d->filter_offset;
    int n, u, k;
    (void)err;

    if (d->is_float) {
        const uint8_t *xf = (const uint8_t *)x, *wf = (const uint8_t *)w;
        uint8_t *yf = (uint8_t *)y;
        for (n = 0; n < d->batches; ++n) {
            for (u = 0; u < d->units; ++u) {
                float total = 0.0f;
                for (k = 0; k < d->depth; ++k)
                    total += eng_ld_f32(xf + 4 * ((size_t)n * d->depth + k)) *
                             eng_ld_f32(wf + 4 * ((size_t)u * d->depth + k));
                eng_st_f32(yf + 4 * ((size_t)n * d->units + u),
                           q_clamp_f(total + (b != NULL
                                                  ? eng_ld_f32(b + 4 * u)
                                                  : 0.0f),
                                     d->f_min, d->f_max));
            }
        }
        return ENG_OK;
    }
#if HIL_KERNELS_DSP
    if (d->dsp) {
        dsp_requant q;
        q.ch = (const dsp_chan *)(const void *)(d + 1);
        q.output_offset = d->output_offset;
        q.act_min = d->act_min;
        q.act_max = d->act_max;
        dsp_fc_s8(x, w, y, d->batches, d->units, d->depth, &q);
        return ENG_OK;
    }
#endif
    for (n = 0; n < d->batches; ++n) {
        const int8_t *xr = x + (size_t)n * d->depth;
        for (u = 0; u < d->units; ++u) {
            const int8_t *wr = w + (size_t)u * d->depth;
            /* wraps modulo 2^32 like the reference's int32 sum */
            uint32_t acc = 0;
            int32_t v;
            for (k = 0; k < d->depth; ++k)
                acc += (uint32_t)(((int32_t)wr[k] + filter_offset) *
                                  ((int32_t)xr[k] + d->input_offset));
            if (b != NULL)
                acc += (uint32_t)eng_ld_i32(b + 4u * (uint32_t)u);
            if (d->per_channel)
                v = q_mul_by_multiplier((int32_t)acc, mult[u], shift[u]);
            else
                v = q_mul_by_multiplier((int32_t)acc, d->multiplier,
                                        d->shift);
            v += d->output_offset;
            if (v < d->act_min)
                v = d->act_min;
            if (v > d->act_max)
                v = d->act_max;
            y[(size_t)n * d->units + u] = (int8_t)v;
        }
    }
    return ENG_OK;
}
