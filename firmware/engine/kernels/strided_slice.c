/*
 * STRIDED_SLICE with constant begin / end / strides (int32), up to 4
 * dimensions, float32, int8, int16, int32 or bool.
 *
 * Per axis of size n, with stride s != 0:
 *   start = begin (+ n if negative), clamped to [0, n] (s > 0) or
 *           [-1, n - 1] (s < 0); begin_mask: 0 (s > 0) or n - 1 (s < 0)
 *   stop  = end likewise; end_mask: n (s > 0) or -1 (s < 0)
 *   shrink_axis_mask: one element at start, and the axis disappears
 * and the output walks start, start + s, ... while before stop. As in the
 * TFLite Micro kernel, ellipsis_mask, new_axis_mask and offset are not
 * applied; the output shape must match what the other fields give (which
 * the reference checks in the same way).
 */
#include <math.h>

#include "../engine_internal.h"

/* StridedSliceOptions slots */
enum { SS_BEGIN_MASK = 0, SS_END_MASK = 1, SS_SHRINK_AXIS_MASK = 4 };

#define SS_MAX_DIMS 4
#define SS_RANK 5 /* the kernel works on shapes padded to 5 dimensions */

typedef struct {
    int32_t elem_size;
    int32_t dims[SS_RANK];
    int32_t start[SS_RANK], stop[SS_RANK], stride[SS_RANK];
    int32_t steps[SS_RANK]; /* elements taken along each axis */
} ss_data;

static int32_t clamp_i32(int32_t v, int32_t lo, int32_t hi)
{
    return v > hi ? hi : (v < lo ? lo : v);
}

static int32_t wrap_negative(int32_t i, int32_t n)
{
    return i < 0 ? (int32_t)((int64_t)i + n) : i;
}

/* The start and stop the slice walks (the kernel's definition). */
static int32_t slice_start(int32_t begin, int32_t stride, int masked,
                           int32_t n)
{
    int32_t s = wrap_negative(begin, n);
    s = stride > 0 ? clamp_i32(s, 0, n) : clamp_i32(s, -1, n - 1);
    if (masked)
        s = stride > 0 ? 0 : n - 1;
    return s;
}

static int32_t slice_stop(int32_t end, int32_t stride, int masked,
                          int shrink, int32_t n, int32_t start)
{
    int32_t s;
    if (shrink)
        return start >= n ? start : start + 1;
    s = wrap_negative(end, n);
    s = stride > 0 ? clamp_i32(s, 0, n) : clamp_i32(s, -1, n - 1);
    if (masked)
        s = stride > 0 ? n : -1;
    return s;
}

/* The output size along an axis as the reference's shape check computes it
 * (masks applied before clamping; same results for sane slices). */
static int32_t checked_size(int32_t begin, int32_t end, int32_t stride,
                            int begin_masked, int end_masked, int shrink,
                            int32_t n)
{
    int32_t start, stop;
    if (n == 0)
        return 0;
    start = begin_masked ? (stride > 0 ? INT32_MIN : INT32_MAX) : begin;
    start = wrap_negative(start, n);
    start = stride > 0 ? clamp_i32(start, 0, n) : clamp_i32(start, -1, n - 1);
    if (shrink) {
        stop = start + 1;
    } else {
        stop = end_masked ? (stride > 0 ? INT32_MAX : INT32_MIN) : end;
        stop = wrap_negative(stop, n);
        stop = stride > 0 ? clamp_i32(stop, 0, n) : clamp_i32(stop, -1, n - 1);
    }
    {
        const int32_t size =
            (int32_t)ceilf((float)(stop - start) / (float)stride);
        return size < 0 ? 0 : size;
    }
}

eng_status eng_strided_slice_prepare(eng_t *e, int op_index, uint8_t *data,
                                     uint32_t *bytes, eng_error *err)
{
    const eng_op *op = &e->ops[op_index];
    const eng_tensor *in, *out;
    int32_t begin[SS_MAX_DIMS], end[SS_MAX_DIMS], strides[SS_MAX_DIMS];
    int32_t begin_mask = 0, end_mask = 0, shrink_mask = 0;
    int64_t count = 1;
    ss_data d;
    fb_buf b;
    fb_table t;
    int rank, pad, i, out_axis = 0, r;
    eng_status st = eng_check_arity(e, op_index, 4, 4, 1, err);
    if (st != ENG_OK)
        return st;
    in = eng_op_input(e, op, 0);
    out = eng_op_output(e, op, 0);
    rank = in->ndims;
    if (in->dtype != out->dtype ||
        (in->dtype != ENG_FLOAT32 && in->dtype != ENG_INT8 &&
         in->dtype != ENG_INT16 && in->dtype != ENG_INT32 &&
         in->dtype != ENG_BOOL))
        return eng_fail_variant(err, e, op_index, "of %s tensors",
                                eng_dtype_name(in->dtype));
    if (rank > SS_MAX_DIMS)
        return eng_fail_variant(err, e, op_index, "of a %d-D tensor", rank);
    if (eng_const_i32(eng_op_input(e, op, 1), begin, SS_MAX_DIMS) != rank ||
        eng_const_i32(eng_op_input(e, op, 2), end, SS_MAX_DIMS) != rank ||
        eng_const_i32(eng_op_input(e, op, 3), strides, SS_MAX_DIMS) != rank)
        return eng_fail_variant(err, e, op_index,
                                "with non-constant begin, end or strides");
    r = eng_op_options(e, op, ENG_OPT_STRIDED_SLICE, &b, &t);
    if (r == FB_BAD ||
        (r == FB_OK &&
         (fb_get_i32(&b, &t, SS_BEGIN_MASK, 0, &begin_mask) == FB_BAD ||
          fb_get_i32(&b, &t, SS_END_MASK, 0, &end_mask) == FB_BAD ||
          fb_get_i32(&b, &t, SS_SHRINK_AXIS_MASK, 0, &shrink_mask) ==
              FB_BAD)))
        return eng_fail_invalid(err, e, op_index, "bad options");

    /* the output shape the reference expects */
    for (i = 0; i < rank; ++i) {
        const int shrink = (shrink_mask >> i) & 1;
        int32_t size;
        if (strides[i] == 0)
            return eng_fail_invalid(err, e, op_index, "stride 0");
        size = checked_size(begin[i], end[i], strides[i],
                            (begin_mask >> i) & 1, (end_mask >> i) & 1,
                            shrink, in->dims[i]);
        if (!shrink) {
            if (out_axis >= out->ndims || out->dims[out_axis] != size)
                break;
            ++out_axis;
        }
    }
    if (i < rank || out_axis != out->ndims)
        return eng_fail_variant(err, e, op_index,
                                "with an output shape other than begin, end, "
                                "strides and the begin/end/shrink masks give "
                                "(ellipsis and new-axis masks)");

    /* what the kernel walks, on the shape padded to 5 dimensions */
    memset(&d, 0, sizeof d);
    d.elem_size = (int32_t)eng_dtype_size(in->dtype);
    pad = SS_RANK - rank;
    for (i = 0; i < SS_RANK; ++i) {
        int32_t n;
        int64_t span, step;
        if (i < pad) {
            d.dims[i] = 1;
            d.start[i] = 0;
            d.stop[i] = 1;
            d.stride[i] = 1;
        } else {
            const int a = i - pad;
            n = in->dims[a];
            d.dims[i] = n;
            d.stride[i] = strides[a];
            d.start[i] = slice_start(begin[a], strides[a],
                                     (begin_mask >> a) & 1, n);
            d.stop[i] = slice_stop(end[a], strides[a], (end_mask >> a) & 1,
                                   (shrink_mask >> a) & 1, n, d.start[i]);
        }
        /* in 64 bits: a damaged model's stride can be INT32_MIN or close
         * to INT32_MAX, where the 32-bit span + stride overflowed */
        span = d.stride[i] > 0 ? (int64_t)d.stop[i] - d.start[i]
                               : (int64_t)d.start[i] - d.stop[i];
        step = d.stride[i] > 0 ? (int64_t)d.stride[i] : -(int64_t)d.stride[i];
        d.steps[i] = span > 0 ? (int32_t)((span + step - 1) / step) : 0;
        count *= d.steps[i];
    }
    if (count != (int64_t)eng_elems(out))
        return eng_fail_variant(err, e, op_index,
                                "with a slice that does not fill the output");
    *bytes = sizeof d;
    if (data != NULL)
        memcpy(data, &d, sizeof d);
    return ENG_OK;
}

eng_status eng_strided_slice_eval(eng_t *e, int op_index, eng_error *err)
{
    const eng_op *op = &e->ops[op_index];
    const ss_data *d = (const ss_data *)eng_op_data(e, op);
    const uint8_t *x = eng_data(e, eng_op_input(e, op, 0));
    uint8_t *y = eng_data(e, eng_op_output(e, op, 0));
    const size_t size = (size_t)d->elem_size;
    int32_t j0, j1, j2, j3, j4;
    (void)err;

    /* walk step counts, not indices: index = start + j * stride stays in
     * [0, dims) for every step the prepare counted, and nothing is added
     * past it (start + stride could overflow on a huge stride) */
#define SS_AT(k, j) ((size_t)((int64_t)d->start[k] + (int64_t)(j) * d->stride[k]))
    for (j0 = 0; j0 < d->steps[0]; ++j0)
        for (j1 = 0; j1 < d->steps[1]; ++j1)
            for (j2 = 0; j2 < d->steps[2]; ++j2)
                for (j3 = 0; j3 < d->steps[3]; ++j3)
                    for (j4 = 0; j4 < d->steps[4]; ++j4) {
                        const size_t at =
                            (((SS_AT(0, j0) * (size_t)d->dims[1] + SS_AT(1, j1)) *
                                  (size_t)d->dims[2] + SS_AT(2, j2)) *
                                 (size_t)d->dims[3] + SS_AT(3, j3)) *
                                (size_t)d->dims[4] + SS_AT(4, j4);
                        memcpy(y, x + at * size, size);
                        y += size;
                    }
#undef SS_AT
    return ENG_OK;
}
