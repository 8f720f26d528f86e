/*
 * ADD, SUB, MUL on int8, int32 or float32 tensors, with numpy-style
 * broadcasting (inputs right-aligned to the output's rank; a dimension of
 * 1 repeats), up to ENG_MAX_DIMS dimensions.
 *
 * int8 ADD/SUB: both inputs are brought to a common scale with 20 bits of
 * headroom, added (subtracted), and rescaled to the output:
 *   a' = requantize((a - a_zp) * 2^20, a_scale / (2 max_scale))
 *   b' = requantize((b - b_zp) * 2^20, b_scale / (2 max_scale))
 *   y  = clamp(requantize(a' +- b', 2 max_scale / (2^20 y_scale)) + y_zp)
 *   (ADD derives the ratios in double, SUB in single precision, as the
 *   reference kernels do)
 * int8 MUL: y = clamp(requantize((a - a_zp)(b - b_zp),
 *                                a_scale b_scale / y_scale) + y_zp)
 * float32: y = clamp(a op b) to the fused activation range.
 * int32:   wrap-around a op b, clamped to the fused activation range (ADD
 *          ignores the fused activation, as the reference does).
 */
#include "../engine_internal.h"
#include "../quant.h"
#if HIL_KERNELS_DSP
#include "s8_dsp.h"
#endif

/* AddOptions / SubOptions / MulOptions: fused_activation_function */
enum { BINARY_ACTIVATION = 0 };

typedef struct {
    int32_t builtin, dtype;
    int32_t count;     /* output elements */
    int32_t broadcast; /* 0: same shapes, one flat loop */
    int32_t rank;
    int32_t dims[ENG_MAX_DIMS];                       /* output shape */
    int32_t stride1[ENG_MAX_DIMS], stride2[ENG_MAX_DIMS]; /* 0: repeat */
    int32_t offset1, offset2, output_offset;          /* int8 */
    int32_t mult1, shift1, mult2, shift2, mult_out, shift_out;
    int32_t act_min, act_max;                         /* int8, int32 */
    float f_min, f_max;                               /* float32 */
} binary_data;

/* Element strides of `t` seen with the output's rank; 0 where t's dimension
 * is 1 and the output's is not. -1 if the shapes do not broadcast. */
static int broadcast_strides(const eng_tensor *t, const eng_tensor *out,
                             int32_t *strides)
{
    const int shift = out->ndims - t->ndims;
    int32_t stride = 1;
    int i;
    if (shift < 0)
        return -1;
    for (i = out->ndims - 1; i >= 0; --i) {
        const int32_t dim = i >= shift ? t->dims[i - shift] : 1;
        if (dim == out->dims[i]) {
            strides[i] = stride;
        } else if (dim == 1) {
            strides[i] = 0;
        } else {
            return -1;
        }
        stride *= dim;
    }
    return 0;
}

static eng_status quantized_params(eng_t *e, int op_index, binary_data *d,
                                   const eng_tensor *a, const eng_tensor *b,
                                   const eng_tensor *y, eng_error *err)
{
    int s1 = 0, s2 = 0, so = 0;
    eng_status st = eng_require_quant(e, op_index, a, "input", err);
    if (st == ENG_OK)
        st = eng_require_quant(e, op_index, b, "input", err);
    if (st == ENG_OK)
        st = eng_require_quant(e, op_index, y, "output", err);
    if (st != ENG_OK)
        return st;
    d->offset1 = -a->zero_point;
    d->offset2 = -b->zero_point;
    d->output_offset = y->zero_point;

    if (d->builtin == ENG_OP_MUL)
        return eng_scale_multiplier(e, op_index,
                                    (double)a->scale * (double)b->scale /
                                        (double)y->scale,
                                    &d->mult_out, &d->shift_out, err);
    if (d->builtin == ENG_OP_ADD) {
        const double twice_max =
            2.0 * (double)(a->scale > b->scale ? a->scale : b->scale);
        q_quantize_multiplier((double)a->scale / twice_max, &d->mult1, &s1);
        q_quantize_multiplier((double)b->scale / twice_max, &d->mult2, &s2);
        q_quantize_multiplier(
            twice_max / ((double)(1 << 20) * (double)y->scale), &d->mult_out,
            &so);
    } else {
        const float twice_max = 2.0f * (a->scale > b->scale ? a->scale
                                                           : b->scale);
        q_quantize_multiplier((double)(a->scale / twice_max), &d->mult1, &s1);
        q_quantize_multiplier((double)(b->scale / twice_max), &d->mult2, &s2);
        q_quantize_multiplier(
            (double)(twice_max / ((float)(1 << 20) * y->scale)),
            &d->mult_out, &so);
    }
    /* the reference requires every ratio below one */
    if (s1 > 0 || s2 > 0 || so > 0)
        return eng_fail_variant(err, e, op_index,
                                "with an output scale below 2^-19 of the "
                                "input scales");
    d->shift1 = s1;
    d->shift2 = s2;
    d->shift_out = so;
    return ENG_OK;
}

eng_status eng_binary_prepare(eng_t *e, int op_index, uint8_t *data,
                              uint32_t *bytes, eng_error *err)
{
    const eng_op *op = &e->ops[op_index];
    const eng_tensor *a, *b, *y;
    binary_data d;
    fb_buf fb;
    fb_table t;
    int8_t activation = 0;
    int r, i;
    eng_status st = eng_check_arity(e, op_index, 2, 2, 1, err);
    if (st != ENG_OK)
        return st;
    a = eng_op_input(e, op, 0);
    b = eng_op_input(e, op, 1);
    y = eng_op_output(e, op, 0);
    if (a->dtype != y->dtype || b->dtype != y->dtype ||
        (y->dtype != ENG_INT8 && y->dtype != ENG_FLOAT32 &&
         y->dtype != ENG_INT32))
        return eng_fail_variant(err, e, op_index, "with %s and %s inputs and "
                                "%s output", eng_dtype_name(a->dtype),
                                eng_dtype_name(b->dtype),
                                eng_dtype_name(y->dtype));
    r = eng_op_options(e, op,
                       op->builtin == ENG_OP_ADD   ? ENG_OPT_ADD
                       : op->builtin == ENG_OP_SUB ? ENG_OPT_SUB
                                                   : ENG_OPT_MUL,
                       &fb, &t);
    if (r == FB_BAD || (r == FB_OK && fb_get_i8(&fb, &t, BINARY_ACTIVATION, 0,
                                                &activation) == FB_BAD))
        return eng_fail_invalid(err, e, op_index, "bad options");
    if (activation < ENG_ACT_NONE || activation > ENG_ACT_RELU6)
        return eng_fail_variant(err, e, op_index, "with fused activation %d",
                                activation);

    memset(&d, 0, sizeof d);
    d.builtin = op->builtin;
    d.dtype = y->dtype;
    d.count = (int32_t)eng_elems(y);
    d.rank = y->ndims;
    for (i = 0; i < y->ndims; ++i)
        d.dims[i] = y->dims[i];
    if (broadcast_strides(a, y, d.stride1) != 0 ||
        broadcast_strides(b, y, d.stride2) != 0)
        return eng_fail_invalid(err, e, op_index,
                                "input shapes do not broadcast to the "
                                "output shape");
    d.broadcast = !(eng_elems(a) == (uint32_t)d.count &&
                    eng_elems(b) == (uint32_t)d.count);

    if (y->dtype == ENG_INT8) {
        st = quantized_params(e, op_index, &d, a, b, y, err);
        if (st != ENG_OK)
            return st;
        st = eng_int8_activation_range(e, op_index, activation, y,
                                       &d.act_min, &d.act_max, err);
        if (st != ENG_OK)
            return st;
    } else if (y->dtype == ENG_FLOAT32) {
        q_float_activation_range(activation, &d.f_min, &d.f_max);
    } else {
        d.act_min = INT32_MIN;
        d.act_max = INT32_MAX;
        if (op->builtin != ENG_OP_ADD) {
            if (activation == ENG_ACT_RELU || activation == ENG_ACT_RELU6)
                d.act_min = 0;
            if (activation == ENG_ACT_RELU6)
                d.act_max = 6;
            if (activation == ENG_ACT_RELU_N1_TO_1) {
                d.act_min = -1;
                d.act_max = 1;
            }
        }
    }
    return eng_keep_op_data(data, bytes, &d, sizeof d);
}

/* The int8 ADD/SUB arithmetic inline, with the per-op constants hoisted:
 * multipliers in [2^30, 2^31) and operands far from INT32_MIN, so the
 * rounding doubling high multiply never saturates; every shift of ADD/SUB
 * is a right shift (prepare refuses the rest). Same results as
 * q_mul_by_multiplier. */
static inline int32_t mul_high(int32_t a, int32_t m)
{
    const int64_t ab = (int64_t)a * m;
    const int64_t nudge = ab >= 0 ? ((int64_t)1 << 30) : 1 - ((int64_t)1 << 30);
    return (int32_t)((ab + nudge) / ((int64_t)1 << 31));
}

static inline int32_t shift_round(int32_t x, int32_t right)
{
    const int32_t mask = (int32_t)(((uint32_t)1 << right) - 1u);
    const int32_t threshold = (mask >> 1) + (x < 0 ? 1 : 0);
    return (x >> right) + ((x & mask) > threshold ? 1 : 0);
}

typedef struct {
    int32_t offset1, mult1, right1, offset2, mult2, right2;
    int32_t mult_out, right_out, output_offset, act_min, act_max;
} add_q8;

static inline int32_t scale_in(int32_t v, int32_t offset, int32_t mult,
                               int32_t right)
{
    return shift_round(mul_high((v + offset) * (1 << 20), mult), right);
}

static inline int8_t add_out(int32_t raw, const add_q8 *p)
{
    int32_t v = shift_round(mul_high(raw, p->mult_out), p->right_out) +
                p->output_offset;
    v = v < p->act_min ? p->act_min : v;
    return (int8_t)(v > p->act_max ? p->act_max : v);
}

/* y[i] = a[i * sa] +- b[i * sb] for i < n, sa and sb 0 or 1 (a stride-0
 * operand is scaled once) */
static void add_sub_row(const int8_t *a, int32_t sa, const int8_t *b,
                        int32_t sb, int8_t *y, int32_t n, int subtract,
                        const add_q8 *p)
{
    int32_t i;
    if (sa == 0) {
        const int32_t ta = scale_in(a[0], p->offset1, p->mult1, p->right1);
        for (i = 0; i < n; ++i) {
            const int32_t tb = scale_in(b[i * sb], p->offset2, p->mult2, p->right2);
            y[i] = add_out(subtract ? ta - tb : ta + tb, p);
        }
    } else if (sb == 0) {
        const int32_t tb = scale_in(b[0], p->offset2, p->mult2, p->right2);
        for (i = 0; i < n; ++i) {
            const int32_t ta = scale_in(a[i], p->offset1, p->mult1, p->right1);
            y[i] = add_out(subtract ? ta - tb : ta + tb, p);
        }
    } else {
        for (i = 0; i < n; ++i) {
            const int32_t ta = scale_in(a[i], p->offset1, p->mult1, p->right1);
            const int32_t tb = scale_in(b[i], p->offset2, p->mult2, p->right2);
            y[i] = add_out(subtract ? ta - tb : ta + tb, p);
        }
    }
}

/* The constants of an int8 ADD/SUB, for the inline rows and (optimised
 * sets) for s8_dsp.c's same-arithmetic row kernel */
typedef struct {
    add_q8 q;
    int subtract;
#if HIL_KERNELS_DSP
    dsp_add_params v;
#endif
} add_rows;

static void add_params(const binary_data *d, add_rows *r)
{
    add_q8 *p = &r->q;
    p->offset1 = d->offset1;
    p->mult1 = d->mult1;
    p->right1 = -d->shift1;
    p->offset2 = d->offset2;
    p->mult2 = d->mult2;
    p->right2 = -d->shift2;
    p->mult_out = d->mult_out;
    p->right_out = -d->shift_out;
    p->output_offset = d->output_offset;
    p->act_min = d->act_min;
    p->act_max = d->act_max;
    r->subtract = d->builtin == ENG_OP_SUB;
#if HIL_KERNELS_DSP
    r->v.offset1 = p->offset1;
    r->v.offset2 = p->offset2;
    r->v.output_offset = p->output_offset;
    r->v.mult1 = p->mult1;
    r->v.right1 = p->right1;
    r->v.mult2 = p->mult2;
    r->v.right2 = p->right2;
    r->v.mult_out = p->mult_out;
    r->v.right_out = p->right_out;
    r->v.act_min = p->act_min;
    r->v.act_max = p->act_max;
    r->v.subtract = r->subtract;
#endif
}

/* One row: two contiguous operands take the optimised set's loop (vectors
 * on MVE), anything else the inline one */
static void add_sub_run(const int8_t *a, int32_t sa, const int8_t *b,
                        int32_t sb, int8_t *y, int32_t n, const add_rows *r)
{
#if HIL_KERNELS_DSP
    if (sa == 1 && sb == 1) {
        dsp_add_s8(a, b, y, n, &r->v);
        return;
    }
#endif
    add_sub_row(a, sa, b, sb, y, n, r->subtract, &r->q);
}

/* Inlined whatever GCC's estimate: its own choice gave eng_binary_eval's
 * inline ADD/SUB rows one spill more per element on the M4 and M33. */
#if defined(__GNUC__)
#define ALWAYS_INLINE __attribute__((always_inline))
#else
#define ALWAYS_INLINE
#endif

/* The next output element's index over axes 0..last (last the fastest),
 * both input offsets moved along: an axis past its end returns to 0 and
 * the axis outside it steps. */
static ALWAYS_INLINE inline void next_index(const binary_data *d, int last,
                                            int32_t *index, int32_t *ia,
                                            int32_t *ib)
{
    int k;
    for (k = last; k >= 0; --k) {
        *ia += d->stride1[k];
        *ib += d->stride2[k];
        if (++index[k] < d->dims[k])
            return;
        *ia -= d->stride1[k] * d->dims[k];
        *ib -= d->stride2[k] * d->dims[k];
        index[k] = 0;
    }
}

/* int8 ADD/SUB with broadcasting: the innermost axis as a row
 * (add_sub_row), the outer axes walked once per row */
static void add_sub_broadcast(const binary_data *d, const int8_t *a,
                              const int8_t *b, int8_t *y)
{
    const int inner = d->rank - 1;
    const int32_t n = d->dims[inner];
    const int32_t rows = n > 0 ? d->count / n : 0;
    int32_t index[ENG_MAX_DIMS];
    int32_t r, ia = 0, ib = 0;
    add_rows p;
    add_params(d, &p);
    memset(index, 0, sizeof index);
    for (r = 0; r < rows; ++r) {
        add_sub_run(a + ia, d->stride1[inner], b + ib, d->stride2[inner],
                    y + (size_t)r * (size_t)n, n, &p);
        next_index(d, inner - 1, index, &ia, &ib);
    }
}

/* The element functions */

static int8_t add_sub_q(int32_t a, int32_t b, const binary_data *d)
{
    const int32_t a_scaled = q_mul_by_multiplier((a + d->offset1) * (1 << 20),
                                                 d->mult1, d->shift1);
    const int32_t b_scaled = q_mul_by_multiplier((b + d->offset2) * (1 << 20),
                                                 d->mult2, d->shift2);
    const int32_t raw = d->builtin == ENG_OP_ADD ? a_scaled + b_scaled
                                                 : a_scaled - b_scaled;
    int32_t v = q_mul_by_multiplier(raw, d->mult_out, d->shift_out) +
                d->output_offset;
    v = v < d->act_min ? d->act_min : v;
    v = v > d->act_max ? d->act_max : v;
    return (int8_t)v;
}

static int8_t mul_q(int32_t a, int32_t b, const binary_data *d)
{
    int32_t v = q_mul_by_multiplier((a + d->offset1) * (b + d->offset2),
                                    d->mult_out, d->shift_out) +
                d->output_offset;
    v = v < d->act_min ? d->act_min : v;
    v = v > d->act_max ? d->act_max : v;
    return (int8_t)v;
}

static float op_f(float a, float b, const binary_data *d)
{
    const float v = d->builtin == ENG_OP_ADD   ? a + b
                    : d->builtin == ENG_OP_SUB ? a - b
                                               : a * b;
    return q_clamp_f(v, d->f_min, d->f_max);
}

static int32_t op_i32(int32_t a, int32_t b, const binary_data *d)
{
    int32_t v = d->builtin == ENG_OP_ADD   ? q_add_wrap(a, b)
                : d->builtin == ENG_OP_SUB ? q_sub_wrap(a, b)
                                           : q_mul_wrap(a, b);
    v = v < d->act_min ? d->act_min : v;
    return v > d->act_max ? d->act_max : v;
}

static void apply(const binary_data *d, const uint8_t *a, const uint8_t *b,
                  uint8_t *y, int32_t ia, int32_t ib, int32_t iy)
{
    switch (d->dtype) {
    case ENG_INT8:
        y[iy] = (uint8_t)(d->builtin == ENG_OP_MUL
                              ? mul_q((int8_t)a[ia], (int8_t)b[ib], d)
                              : add_sub_q((int8_t)a[ia], (int8_t)b[ib], d));
        break;
    case ENG_FLOAT32:
        eng_st_f32(y + 4 * iy, op_f(eng_ld_f32(a + 4 * ia),
                                    eng_ld_f32(b + 4 * ib), d));
        break;
    default:
        eng_st_i32(y + 4 * iy, op_i32(eng_ld_i32(a + 4 * ia),
                                      eng_ld_i32(b + 4 * ib), d));
        break;
    }
}

eng_status eng_binary_eval(eng_t *e, int op_index, eng_error *err)
{
    const eng_op *op = &e->ops[op_index];
    const binary_data *d = (const binary_data *)eng_op_data(e, op);
    const uint8_t *a = eng_data(e, eng_op_input(e, op, 0));
    const uint8_t *b = eng_data(e, eng_op_input(e, op, 1));
    uint8_t *y = eng_data(e, eng_op_output(e, op, 0));
    int32_t index[ENG_MAX_DIMS];
    int32_t i, ia = 0, ib = 0;
    (void)err;

    if (d->dtype == ENG_INT8 && d->builtin != ENG_OP_MUL) {
        if (d->broadcast) {
            add_sub_broadcast(d, (const int8_t *)a, (const int8_t *)b, (int8_t *)y);
        } else {
            add_rows p;
            add_params(d, &p);
            add_sub_run((const int8_t *)a, 1, (const int8_t *)b, 1, (int8_t *)y,
                        d->count, &p);
        }
        return ENG_OK;
    }
    if (!d->broadcast) {
        for (i = 0; i < d->count; ++i)
            apply(d, a, b, y, i, i, i);
        return ENG_OK;
    }
    /* walk the output in order, moving both input offsets along */
    memset(index, 0, sizeof index);
    for (i = 0; i < d->count; ++i) {
        apply(d, a, b, y, ia, ib, i);
        next_index(d, d->rank - 1, index, &ia, &ib);
    }
    return ENG_OK;
}
