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

/* What the eval walks: the slice as up to SS_RANK nested loops of counts,
 * each advancing the input by a fixed number of bytes, around one
 * contiguous run copied with memcpy. Axes taken whole with stride 1 merge
 * into the run, so a time-axis slice of a [1, T, C] tensor is one copy. */
typedef struct {
    int32_t base;             /* byte offset of the first element taken */
    int32_t run;              /* bytes copied per innermost step */
    int32_t count[SS_RANK];   /* steps per loop, outermost first (1: unused) */
    int32_t advance[SS_RANK]; /* input bytes between steps of each loop */
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

/* The loops the eval runs (ss_data) for a slice of an input of shape n
 * (padded to SS_RANK axes), element size `size`: innermost axes taken
 * whole with stride 1 join the contiguous run, and so does the next axis
 * out when its stride is 1 (a partial range of whole rows); the other axes
 * become loops, innermost last. Refuses offsets beyond int32. */
static eng_status plan_walk(ss_data *d, int32_t size, const int32_t *n,
                            const int32_t *start, const int32_t *stride,
                            const int32_t *steps)
{
    int64_t pitch[SS_RANK], base = 0, run = size, total = size;
    int k, loops, i;
    for (k = SS_RANK - 1; k >= 0; --k) {
        pitch[k] = total;
        total *= n[k];
    }
    if (total > INT32_MAX)
        return ENG_E_UNSUPPORTED;
    for (k = 0; k < SS_RANK; ++k)
        base += (int64_t)start[k] * pitch[k];
    /* the run: whole unit-stride axes from the inside, then one more
     * unit-stride axis (any range) */
    k = SS_RANK - 1;
    while (k >= 0 && stride[k] == 1) {
        run *= steps[k];
        --k;
        if (steps[k + 1] != n[k + 1])
            break;
    }
    memset(d, 0, sizeof *d);
    d->base = (int32_t)base;
    d->run = (int32_t)run;
    /* axes 0..k are loops; put them innermost-last into the SS_RANK slots */
    loops = k + 1;
    for (i = 0; i < SS_RANK; ++i) {
        const int axis = i - (SS_RANK - loops);
        d->count[i] = axis >= 0 ? steps[axis] : 1;
        /* applied only between steps, so |stride| < n there and the
         * product is below the tensor's size */
        d->advance[i] = axis >= 0 && steps[axis] > 1
                            ? (int32_t)(stride[axis] * pitch[axis])
                            : 0;
    }
    if (run == 0)
        for (i = 0; i < SS_RANK; ++i)
            d->count[i] = 0;
    return ENG_OK;
}

eng_status eng_strided_slice_prepare(eng_t *e, int op_index, uint8_t *data,
                                     uint32_t *bytes, eng_error *err)
{
    const eng_op *op = &e->ops[op_index];
    const eng_tensor *in, *out;
    int32_t begin[SS_MAX_DIMS], end[SS_MAX_DIMS], strides[SS_MAX_DIMS];
    int32_t begin_mask = 0, end_mask = 0, shrink_mask = 0;
    int32_t n[SS_RANK], start[SS_RANK], stop[SS_RANK], stride[SS_RANK];
    int32_t steps[SS_RANK];
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
    pad = SS_RANK - rank;
    for (i = 0; i < SS_RANK; ++i) {
        int64_t span, step;
        if (i < pad) {
            n[i] = 1;
            start[i] = 0;
            stop[i] = 1;
            stride[i] = 1;
        } else {
            const int a = i - pad;
            n[i] = in->dims[a];
            stride[i] = strides[a];
            start[i] = slice_start(begin[a], strides[a],
                                   (begin_mask >> a) & 1, n[i]);
            stop[i] = slice_stop(end[a], strides[a], (end_mask >> a) & 1,
                                 (shrink_mask >> a) & 1, n[i], start[i]);
        }
        /* in 64 bits: a damaged model's stride can be INT32_MIN or close
         * to INT32_MAX, where the 32-bit span + stride overflowed */
        span = stride[i] > 0 ? (int64_t)stop[i] - start[i]
                             : (int64_t)start[i] - stop[i];
        step = stride[i] > 0 ? (int64_t)stride[i] : -(int64_t)stride[i];
        steps[i] = span > 0 ? (int32_t)((span + step - 1) / step) : 0;
        count *= steps[i];
    }
    if (count != (int64_t)eng_elems(out))
        return eng_fail_variant(err, e, op_index,
                                "with a slice that does not fill the output");
    st = plan_walk(&d, (int32_t)eng_dtype_size(in->dtype), n, start, stride,
                   steps);
    if (st != ENG_OK)
        return eng_fail_variant(err, e, op_index,
                                "of a tensor of 2 GB or more");
    return eng_keep_op_data(data, bytes, &d, sizeof d);
}

eng_status eng_strided_slice_eval(eng_t *e, int op_index, eng_error *err)
{
    const eng_op *op = &e->ops[op_index];
    const ss_data *d = (const ss_data *)eng_op_data(e, op);
    const uint8_t *p0 = eng_data(e, eng_op_input(e, op, 0)) + d->base;
    uint8_t *y = eng_data(e, eng_op_output(e, op, 0));
    const size_t run = (size_t)d->run;
    int32_t j0, j1, j2, j3, j4;
    (void)err;

    /* every pointer formed stays inside the input: the prepare counted the
     * steps so that the last one taken is the last element of the slice */
    for (j0 = 0; j0 < d->count[0]; ++j0) {
        const uint8_t *p1 = p0;
        for (j1 = 0; j1 < d->count[1]; ++j1) {
            const uint8_t *p2 = p1;
            for (j2 = 0; j2 < d->count[2]; ++j2) {
                const uint8_t *p3 = p2;
                for (j3 = 0; j3 < d->count[3]; ++j3) {
                    const uint8_t *p4 = p3;
                    for (j4 = 0; j4 < d->count[4]; ++j4) {
                        memcpy(y, p4, run);
                        y += run;
                        if (j4 + 1 < d->count[4])
                            p4 += d->advance[4];
                    }
                    if (j3 + 1 < d->count[3])
                        p3 += d->advance[3];
                }
                if (j2 + 1 < d->count[2])
                    p2 += d->advance[2];
            }
            if (j1 + 1 < d->count[1])
                p1 += d->advance[1];
        }
        if (j0 + 1 < d->count[0])
            p0 += d->advance[0];
    }
    return ENG_OK;
}
