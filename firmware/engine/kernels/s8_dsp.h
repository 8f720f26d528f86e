/*
 * Optimised int8 kernels for cores with the Armv7E-M / Armv8-M DSP
 * extension (Cortex-M4, M7, M33): dual 16-bit multiply-accumulate (SMLAD)
 * on sign-extended int8 pairs (SXTB16). Built when HIL_KERNELS_DSP is 1
 * (engine.cmake, platform key [firmware] kernels = "dsp"); the reference
 * kernels in conv.c / fully_connected.c stay and run every case these do
 * not take. Host builds define HIL_ACLE_PORTABLE and get the two
 * intrinsics in portable C (firmware/host/acle_portable.h).
 *
 * The input offset is folded into a per-output-channel term computed once
 * at prepare time,
 *     fold[c] = bias[c] + input_offset * sum of the weights of channel c,
 * so that every inner loop is a pure dot product of raw int8 values:
 *     acc[c] = fold[c] + sum w[c][k] * x[k]
 *            = bias[c] + sum w[c][k] * (x[k] + input_offset)   (mod 2^32).
 * Padded taps are filled with the input zero point, whose term cancels
 * exactly (x + input_offset = 0), so convolution windows that overlap the
 * padding need no special case. Sums wrap modulo 2^32 like the reference.
 */
#ifndef HIL_ENGINE_S8_DSP_H
#define HIL_ENGINE_S8_DSP_H

#include <stdint.h>

/* Bytes of the im2col scratch (two columns of f_h * f_w * in_channels). */
#ifndef HIL_IM2COL_BYTES
#define HIL_IM2COL_BYTES 4608
#endif
#define DSP_IM2COL_MAX_K (HIL_IM2COL_BYTES / 2)

/* Most filter taps the depthwise kernel keeps offsets for (micro_speech's
 * 10x8 filter is 80; two arrays of this many on the stack). */
#define DSP_DW_MAX_TAPS 128

/* Per output channel, computed at prepare: the folded term and the
 * requantisation (quant.c's q_mul_by_multiplier) split into its steps. */
typedef struct {
    int32_t fold;
    int32_t mult;
    int32_t left;  /* shift when > 0 */
    int32_t right; /* -shift when <= 0 */
    int32_t mask;  /* 2^right - 1 */
} dsp_chan;

/* Entries of a dsp_chan array for `rows` channels. MVE: a multiple of 8
 * and at least rows + 3, so that vector code may read whole groups of
 * eight from a multiple of 8 and of four from any channel (dsp_channels
 * fills the extra ones; callers allocate this many). The SMLAD code reads
 * only the rows it has, so the dsp set keeps no padding: the array lives in
 * the arena's persistent region, once per channel of every optimised op. */
#if defined(HIL_KERNELS_MVE) && HIL_KERNELS_MVE
#define DSP_CHAN_ROWS(rows) (((rows) + 10) & ~7)
#else
#define DSP_CHAN_ROWS(rows) (rows)
#endif

/* Most output channels (rows) an op may give the optimised kernels: their
 * per-op data, sizeof(dsp_chan) * DSP_CHAN_ROWS(rows) on top of the
 * reference's 8 B a channel, is summed in a uint32_t and must not wrap
 * (a 150 M-channel layer wrapped it to a few bytes, and prepare wrote
 * gigabytes into them). More channels take the reference kernels, whose
 * need stays below 2^31 + 64 at the loader's 2^28 elements. */
#define DSP_MAX_ROWS (1 << 24)

typedef struct {
    const dsp_chan *ch;
    int32_t output_offset, act_min, act_max;
} dsp_requant;

typedef struct {
    int batches;
    int in_h, in_w, in_c;
    int out_h, out_w, out_c;
    int f_h, f_w;
    int stride_h, stride_w, dil_h, dil_w, pad_h, pad_w;
    int8_t input_zero_point;
} dsp_conv_shape;

/* ch[r] for `rows` output channels (DSP_CHAN_ROWS(rows) entries): fold = bias[r] (0 without bias) +
 * input_offset * sum_i w[r * row_step + i * step] over `k` weights (conv
 * and fully connected: row_step k, step 1; depthwise: row_step 1, step
 * channels), and the requantisation of multiplier mult[r * mult_step],
 * shift shift[r * mult_step] (mult_step 0: one for all; mult NULL: the
 * caller sets each with dsp_chan_requant). bias is little-endian int32,
 * maybe unaligned. */
void dsp_channels(const int8_t *w, int rows, int k, int row_step, int step,
                  int32_t input_offset, const uint8_t *bias,
                  const int32_t *mult, const int32_t *shift, int mult_step,
                  dsp_chan *ch);

/* The requantisation of one channel: multiplier and shift as quant.c's. */
void dsp_chan_requant(dsp_chan *c, int32_t mult, int32_t shift);

/* FULLY_CONNECTED: y[b][u] for weights [units][depth] with a zero weight
 * zero point. */
void dsp_fc_s8(const int8_t *x, const int8_t *w, int8_t *y, int batches, int units, int depth,
               const dsp_requant *q);

/* CONV_2D without groups, any stride / dilation / padding, when
 * dsp_conv_fits(): 1x1 filters with unit strides read the input in place
 * (a matrix multiply), others go through a two-column im2col buffer. Returns 0, or -1 if the filter does
 * not fit the scratch (nothing written). */
int dsp_conv_fits(const dsp_conv_shape *s);
int dsp_conv_s8(const dsp_conv_shape *s, const int8_t *x, const int8_t *w,
                int8_t *y, const dsp_requant *q);

/* DEPTHWISE_CONV_2D, any depth multiplier (multiplier 1: four channels
 * at a time), when dsp_dwconv_fits() (at most DSP_DW_MAX_TAPS taps, at
 * most HIL_IM2COL_BYTES input channels: taps in the padding read a row of
 * input zero points kept in the scratch). Returns 0, or -1 if it does not
 * fit (nothing written). */
int dsp_dwconv_fits(const dsp_conv_shape *s);
int dsp_dwconv_s8(const dsp_conv_shape *s, const int8_t *x, const int8_t *w,
                  int8_t *y, const dsp_requant *q);

/* int8 ADD / SUB of same-shape tensors (binary.c's add_sub_q on every
 * element): both inputs to a common scale with 20 bits of headroom, added
 * or subtracted, rescaled to the output. Every shift is a right shift
 * (binary.c refuses the others); right_* = -shift. */
typedef struct {
    int32_t offset1, offset2, output_offset;
    int32_t mult1, right1, mult2, right2, mult_out, right_out;
    int32_t act_min, act_max;
    int32_t subtract;
} dsp_add_params;

void dsp_add_s8(const int8_t *a, const int8_t *b, int8_t *y, int32_t count,
                const dsp_add_params *p);

#endif
