/*
 * tinyengine-tvm int8 kernel library: the one public header.
 *
 * Every kernel is a plain C function: no global state, no heap, no
 * exceptions.  Arithmetic follows TensorFlow Lite Micro's reference integer
 * kernels exactly, so a generated model is bit-exact with TFLM.
 *
 * Conventions shared by all kernels
 *  - Activations are int8, row-major NHWC.  Shapes are in elements.
 *  - "offset" fields are added to a raw int8 value before arithmetic: an
 *    input offset is the NEGATED input zero point; an output offset is the
 *    output zero point.
 *  - A requantization (multiplier, shift) pair represents the real number
 *    multiplier * 2^(shift - 31); multiplier is in [2^30, 2^31) or 0, shift is
 *    positive for a left shift.  Per-channel arrays have one pair per output
 *    channel.
 *  - act_min/act_max clamp the int8 result (fused activation); they are
 *    -128/127 when the operator has no fused activation.
 *  - Input and output buffers must not overlap unless a kernel says so.
 */
#ifndef TINYENGINE_KERNELS_H_
#define TINYENGINE_KERNELS_H_

#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/* ------------------------------------------------------------------------ */
/* Convolutions                                                              */
/* ------------------------------------------------------------------------ */

/** Geometry and quantization of a 2-D convolution (regular or depthwise). */
typedef struct {
  int32_t batch;            /**< N of input and output. */
  int32_t input_h;          /**< Input height. */
  int32_t input_w;          /**< Input width. */
  int32_t input_c;          /**< Input channels. */
  int32_t output_h;         /**< Output height. */
  int32_t output_w;         /**< Output width. */
  int32_t output_c;         /**< Output channels (input_c * depth_multiplier
                                 for depthwise). */
  int32_t kernel_h;         /**< Filter height. */
  int32_t kernel_w;         /**< Filter width. */
  int32_t stride_h;         /**< Vertical stride. */
  int32_t stride_w;         /**< Horizontal stride. */
  int32_t dilation_h;       /**< Vertical dilation (1 = dense). */
  int32_t dilation_w;       /**< Horizontal dilation (1 = dense). */
  int32_t pad_top;          /**< Implicit zero-point rows above the input. */
  int32_t pad_left;         /**< Implicit zero-point columns left of it. */
  int32_t depth_multiplier; /**< Depthwise only: outputs per input channel. */
  int32_t input_offset;     /**< -input_zero_point. */
  int32_t output_offset;    /**< output_zero_point. */
  int32_t act_min;          /**< Lower clamp of the int8 result. */
  int32_t act_max;          /**< Upper clamp of the int8 result. */
} te_conv_params;

/**
 * Regular convolution, per-channel requantization.
 * @param p          geometry and quantization (depth_multiplier ignored).
 * @param input      [batch, input_h, input_w, input_c].
 * @param filter     [output_c, kernel_h, kernel_w, input_c] (TFLite OHWI),
 *                   symmetric (zero point 0).
 * @param bias       [output_c] int32, or NULL for no bias.
 * @param multiplier [output_c] requantization multipliers.
 * @param shift      [output_c] requantization shifts.
 * @param output     [batch, output_h, output_w, output_c].
 */
void te_conv2d_s8(const te_conv_params* p, const int8_t* input,
                  const int8_t* filter, const int32_t* bias,
                  const int32_t* multiplier, const int32_t* shift,
                  int8_t* output);

/**
 * Depthwise convolution, per-channel requantization.
 * @param p          geometry and quantization; output_c must equal
 *                   input_c * depth_multiplier.
 * @param input      [batch, input_h, input_w, input_c].
 * @param filter     [1, kernel_h, kernel_w, output_c] (TFLite layout); output
 *                   channel c reads input channel c / depth_multiplier.
 * @param bias       [output_c] int32, or NULL.
 * @param multiplier [output_c] requantization multipliers.
 * @param shift      [output_c] requantization shifts.
 * @param output     [batch, output_h, output_w, output_c].
 */
void te_depthwise_conv2d_s8(const te_conv_params* p, const int8_t* input,
                            const int8_t* filter, const int32_t* bias,
                            const int32_t* multiplier, const int32_t* shift,
                            int8_t* output);

/**
 * In-place depthwise convolution (depth_multiplier 1): the output is written
 * over the input, so one buffer of max(input, output) bytes holds both.
 *
 * Contract: buffer holds the input [batch, input_h, input_w, input_c] on
 * entry and the output [batch, output_h, output_w, output_c] (packed from the
 * start of the buffer) on return; output_c == input_c; output_h * output_w
 * <= input_h * input_w (any stride, padding and kernel size that satisfies
 * this).  Channels are processed one at a time: channel c of the input is
 * first copied to scratch, and writing output channel c only overwrites
 * channel-c elements of the input (the same channel, already in scratch) or
 * elements of earlier batches.  Results equal te_depthwise_conv2d_s8's.
 * @param p          geometry and quantization (depth_multiplier must be 1).
 * @param buffer     input on entry, output on return.
 * @param filter     [1, kernel_h, kernel_w, output_c].
 * @param bias       [output_c] int32, or NULL.
 * @param multiplier [output_c] requantization multipliers.
 * @param shift      [output_c] requantization shifts.
 * @param scratch    input_h * input_w bytes (one input channel).
 */
void te_depthwise_conv2d_inplace_s8(const te_conv_params* p, int8_t* buffer,
                                    const int8_t* filter, const int32_t* bias,
                                    const int32_t* multiplier,
                                    const int32_t* shift, int8_t* scratch);

/** Shape and quantization of a fully connected layer. */
typedef struct {
  int32_t batch;         /**< Rows of the input. */
  int32_t input_depth;   /**< Input features per row. */
  int32_t output_depth;  /**< Output features per row. */
  int32_t input_offset;  /**< -input_zero_point. */
  int32_t filter_offset; /**< -filter_zero_point (0 for symmetric weights). */
  int32_t output_offset; /**< output_zero_point. */
  int32_t act_min;       /**< Lower clamp of the int8 result. */
  int32_t act_max;       /**< Upper clamp of the int8 result. */
} te_fc_params;

/**
 * Fully connected layer: output = requant(input x filter^T + bias).
 * @param p          shapes and quantization.
 * @param input      [batch, input_depth].
 * @param filter     [output_depth, input_depth].
 * @param bias       [output_depth] int32, or NULL.
 * @param multiplier [output_depth] requantization multipliers (all equal for
 *                   per-tensor weights).
 * @param shift      [output_depth] requantization shifts.
 * @param output     [batch, output_depth].
 */
void te_fully_connected_s8(const te_fc_params* p, const int8_t* input,
                           const int8_t* filter, const int32_t* bias,
                           const int32_t* multiplier, const int32_t* shift,
                           int8_t* output);

/* ------------------------------------------------------------------------ */
/* Element-wise binary operators with 4-D broadcasting                       */
/* ------------------------------------------------------------------------ */

/**
 * Quantization and broadcast geometry of ADD and MUL.  Both inputs are
 * addressed through 4-D strides over the output shape; a stride of 0 repeats
 * (broadcasts) the input along that dimension.
 */
typedef struct {
  int32_t dims[4];           /**< Output shape, padded to 4-D with 1s. */
  int32_t input1_strides[4]; /**< Element strides of input 1 per dim. */
  int32_t input2_strides[4]; /**< Element strides of input 2 per dim. */
  int32_t input1_offset;     /**< -input1_zero_point. */
  int32_t input2_offset;     /**< -input2_zero_point. */
  int32_t output_offset;     /**< output_zero_point. */
  int32_t left_shift;        /**< ADD: common left shift of both inputs. */
  int32_t input1_multiplier; /**< ADD: rescale of input 1. */
  int32_t input1_shift;      /**< ADD: rescale shift of input 1 (<= 0). */
  int32_t input2_multiplier; /**< ADD: rescale of input 2. */
  int32_t input2_shift;      /**< ADD: rescale shift of input 2 (<= 0). */
  int32_t output_multiplier; /**< Output rescale (ADD and MUL). */
  int32_t output_shift;      /**< Output rescale shift. */
  int32_t act_min;           /**< Lower clamp of the int8 result. */
  int32_t act_max;           /**< Upper clamp of the int8 result. */
} te_elementwise_params;

/** Quantized ADD.  output may alias input1 or input2 when shapes match. */
void te_add_s8(const te_elementwise_params* p, const int8_t* input1,
               const int8_t* input2, int8_t* output);

/** Quantized MUL.  output may alias input1 or input2 when shapes match. */
void te_mul_s8(const te_elementwise_params* p, const int8_t* input1,
               const int8_t* input2, int8_t* output);

/* ------------------------------------------------------------------------ */
/* Pooling and reductions                                                    */
/* ------------------------------------------------------------------------ */

/** Geometry of AVERAGE_POOL_2D and MAX_POOL_2D (same quantization in/out). */
typedef struct {
  int32_t batch;    /**< N. */
  int32_t input_h;  /**< Input height. */
  int32_t input_w;  /**< Input width. */
  int32_t channels; /**< Channels (unchanged by pooling). */
  int32_t output_h; /**< Output height. */
  int32_t output_w; /**< Output width. */
  int32_t filter_h; /**< Window height. */
  int32_t filter_w; /**< Window width. */
  int32_t stride_h; /**< Vertical stride. */
  int32_t stride_w; /**< Horizontal stride. */
  int32_t pad_top;  /**< Rows of padding above (excluded from averages). */
  int32_t pad_left; /**< Columns of padding left (excluded from averages). */
  int32_t act_min;  /**< Lower clamp of the result. */
  int32_t act_max;  /**< Upper clamp of the result. */
} te_pool_params;

/** Average pooling; the divisor counts only the in-bounds elements. */
void te_avg_pool_s8(const te_pool_params* p, const int8_t* input,
                    int8_t* output);

/** Max pooling over the in-bounds elements of each window. */
void te_max_pool_s8(const te_pool_params* p, const int8_t* input,
                    int8_t* output);

/** MEAN over a set of axes of a tensor seen as [outer, reduced, inner]. */
typedef struct {
  int32_t outer;         /**< Product of the dims before the reduced ones. */
  int32_t reduced;       /**< Number of elements averaged per output. */
  int32_t inner;         /**< Product of the dims after the reduced ones. */
  int32_t input_offset;  /**< -input_zero_point. */
  int32_t output_offset; /**< output_zero_point. */
  int32_t multiplier;    /**< Rescale input_scale / output_scale. */
  int32_t shift;         /**< Rescale shift. */
} te_mean_params;

/** Quantized MEAN (the reduced dims must be contiguous). */
void te_mean_s8(const te_mean_params* p, const int8_t* input, int8_t* output);

/* ------------------------------------------------------------------------ */
/* Data movement                                                             */
/* ------------------------------------------------------------------------ */

/** PAD of a 4-D tensor with a constant. */
typedef struct {
  int32_t input_dims[4]; /**< Input shape, padded to 4-D with leading 1s. */
  int32_t before[4];     /**< Elements added before, per dim. */
  int32_t after[4];      /**< Elements added after, per dim. */
  int32_t pad_value;     /**< Value written into the border (usually the
                              zero point). */
} te_pad_params;

/** Constant padding. */
void te_pad_s8(const te_pad_params* p, const int8_t* input, int8_t* output);

/** TRANSPOSE of up to 6-D tensors. */
typedef struct {
  int32_t rank;          /**< Number of dims used (1..6). */
  int32_t input_dims[6]; /**< Input shape. */
  int32_t perm[6];       /**< Output dim i is input dim perm[i]. */
} te_transpose_params;

/** Permute the axes of a tensor. */
void te_transpose_s8(const te_transpose_params* p, const int8_t* input,
                     int8_t* output);

/**
 * CONCATENATION along one axis, the tensors seen as [outer, axis*inner].
 * @param inputs     n_inputs pointers to the inputs.
 * @param axis_sizes [n_inputs] size of the concatenated axis in each input.
 * @param n_inputs   number of inputs.
 * @param outer      product of the dims before the axis.
 * @param inner      product of the dims after the axis.
 * @param output     concatenated tensor.
 */
void te_concat_s8(const int8_t* const* inputs, const int32_t* axis_sizes,
                  int32_t n_inputs, int32_t outer, int32_t inner,
                  int8_t* output);

/** RESIZE_NEAREST_NEIGHBOR of an NHWC tensor. */
typedef struct {
  int32_t batch;              /**< N. */
  int32_t input_h;            /**< Input height. */
  int32_t input_w;            /**< Input width. */
  int32_t channels;           /**< Channels. */
  int32_t output_h;           /**< Output height. */
  int32_t output_w;           /**< Output width. */
  int32_t align_corners;      /**< TFLite align_corners flag. */
  int32_t half_pixel_centers; /**< TFLite half_pixel_centers flag. */
} te_resize_params;

/**
 * Copy a 2-D block of bytes between strided layouts: rows of row_bytes each,
 * from src (rows src_stride bytes apart) to dst (rows dst_stride bytes apart).
 * Cuts a spatial window out of an NHWC tensor, or pastes one into it.
 */
void te_copy_2d_s8(const int8_t* src, int32_t src_stride, int8_t* dst,
                   int32_t dst_stride, int32_t rows, int32_t row_bytes);

/** Nearest-neighbour resize, TFLite index rounding. */
void te_resize_nearest_s8(const te_resize_params* p, const int8_t* input,
                          int8_t* output);

/* ------------------------------------------------------------------------ */
/* Element-wise unary operators                                              */
/* ------------------------------------------------------------------------ */

/**
 * Rescale from one int8 quantization to another, then clamp:
 * out = clamp(output_offset + requant(in + input_offset)).  Serves
 * QUANTIZE int8->int8, and RELU/RELU6 (with act_min/act_max).
 */
void te_requantize_s8(const int8_t* input, int8_t* output, int32_t size,
                      int32_t input_offset, int32_t output_offset,
                      int32_t multiplier, int32_t shift, int32_t act_min,
                      int32_t act_max);

/** QUANTIZE float32 -> int8: round(x / scale) + zero_point, saturated. */
void te_quantize_f32_s8(const float* input, int8_t* output, int32_t size,
                        float scale, int32_t zero_point);

/** DEQUANTIZE int8 -> float32: (float)(scale * (x - zero_point)). */
void te_dequantize_s8_f32(const int8_t* input, float* output, int32_t size,
                          double scale, int32_t zero_point);

/**
 * SOFTMAX over the last axis (output scale 1/256, zero point -128).
 * @param rows                 number of vectors.
 * @param depth                length of each vector.
 * @param input_beta_multiplier, input_beta_left_shift
 *                             beta * input_scale in Q5.26 fixed point.
 * @param diff_min             differences below this give exp() = 0.
 */
void te_softmax_s8(const int8_t* input, int8_t* output, int32_t rows,
                   int32_t depth, int32_t input_beta_multiplier,
                   int32_t input_beta_left_shift, int32_t diff_min);

/**
 * LOGISTIC (output scale 1/256, zero point -128).
 * @param input_zero_point   zero point of the input.
 * @param input_range_radius inputs further than this from the zero point
 *                           saturate to 0 or 1.
 * @param input_multiplier, input_left_shift
 *                           input_scale in Q4.27 fixed point.
 */
void te_logistic_s8(const int8_t* input, int8_t* output, int32_t size,
                    int32_t input_zero_point, int32_t input_range_radius,
                    int32_t input_multiplier, int32_t input_left_shift);

/** Fixed-point parameters of HARD_SWISH, as TFLite's Prepare derives them. */
typedef struct {
  int32_t input_zero_point;            /**< Input zero point. */
  int32_t output_zero_point;           /**< Output zero point. */
  int32_t reluish_multiplier_fixedpoint_int16; /**< Q15 reluish scale. */
  int32_t reluish_multiplier_exponent; /**< Its power-of-two exponent. */
  int32_t output_multiplier_fixedpoint_int16;  /**< Q15 output scale. */
  int32_t output_multiplier_exponent;  /**< Its power-of-two exponent. */
} te_hard_swish_params;

/** HARD_SWISH: x * relu6(x + 3) / 6 in TFLite's int16 fixed point. */
void te_hard_swish_s8(const te_hard_swish_params* p, const int8_t* input,
                      int8_t* output, int32_t size);

/* ======================================================================== */
/* Cortex-M optimized variants (src/kernels/arm/)                            */
/* ======================================================================== */
/*
 * Chosen at code generation for cores with the DSP extension (Cortex-M4, M7,
 * M55; tinyengine_tvm.compile(..., core=...)).  Same results as the portable
 * kernel named in each comment, bit for bit.  Their constants are re-laid-out
 * by the code generator (tinyengine_tvm/codegen/kernel_selection.py): they
 * are not the TFLite tensors.  Without __ARM_FEATURE_DSP they compile to
 * plain C running the same algorithm, so a generated project builds anywhere.
 * Requantization parameters are packed per output channel as {bias +
 * input_offset * sum(filter), 2 * multiplier - 2^32, rounding, rs} with
 * rs = -shift and rounding = 2^(rs - 1), plus output_offset * 2^rs where the
 * generator folded the output offset in (see src/kernels/arm/arm_dsp.h).
 * Activation pointers need not be aligned (32-bit LDR/STR at any address, the
 * Cortex-M default); constants and scratch are 4-byte aligned.
 */

/**
 * = te_conv2d_s8 (any kernel, stride, dilation, padding).
 * @param p       as for te_conv2d_s8, except output_offset, which is 0 when
 *                the generator folded it into the rounding terms.
 * @param packed  per output channel: int32 bias + input_offset * sum(filter),
 *                int8 filter[k4] (OHWI, zero-padded to whole
 *                groups of four; when input_c % 4 != 0 each filter row's
 *                leading whole words first, then the trailing bytes of all
 *                rows: see conv_k_order in codegen/kernel_selection.py),
 *                int32 2 * multiplier - 2^32, rounding, rs.
 * @param scratch 8 * k4 + 4 * output_c bytes (+ k4 + kernel_w * input_c
 *                rounded up to 4 when input_c % 4 != 0), 4-byte aligned: four
 *                int16 im2col columns, one partial block of outputs, the int8
 *                staging of a column.
 */
void te_arm_conv2d_s8(const te_conv_params* p, const int8_t* input,
                      const int8_t* packed, int8_t* output, void* scratch);

/**
 * te_arm_conv2d_s8 with the filter stored as int16 (for small filters): each
 * row's filter[k4] is 2 * k4 bytes, each group of four (w0, w2, w1, w3).
 */
void te_arm_conv2d_w16_s8(const te_conv_params* p, const int8_t* input,
                          const int8_t* packed, int8_t* output,
                          void* scratch);

/**
 * = te_depthwise_conv2d_s8 with depth_multiplier 1 and dilation 1 (any
 * kernel, stride and padding); also = te_depthwise_conv2d_inplace_s8 when
 * output == input (same in-place contract).
 * @param packed  per channel: int32 bias + input_offset * sum(filter); int8
 *                per filter row the taps w0 .. w_{kw-1} zero-padded to whole
 *                words of four, each word stored (t0, t2, t1, t3); int32 2 *
 *                multiplier - 2^32, rounding, rs.
 * @param p       as for te_depthwise_conv2d_s8, except output_offset, which
 *                is 0 when the generator folded it into the rounding terms.
 * @param scratch one int16 plane of the padded input channel, plane_h *
 *                plane_w * 2 bytes with plane_h = (output_h - 1) * stride_h +
 *                kernel_h, plane_w = even((ow4 - 1) * stride_w + 2 * pw + 2),
 *                ow4 = output_w rounded up to a multiple of 4; then ow4
 *                bytes; 4-byte aligned.
 */
void te_arm_depthwise_conv2d_s8(const te_conv_params* p, const int8_t* input,
                                const int8_t* packed, int8_t* output,
                                void* scratch);
/** The same, specialized at compile time for a square kernel and stride. */
void te_arm_depthwise_conv2d_3x3s1_s8(const te_conv_params* p,
                                      const int8_t* input,
                                      const int8_t* packed, int8_t* output,
                                      void* scratch);
void te_arm_depthwise_conv2d_3x3s2_s8(const te_conv_params* p,
                                      const int8_t* input,
                                      const int8_t* packed, int8_t* output,
                                      void* scratch);
void te_arm_depthwise_conv2d_5x5s1_s8(const te_conv_params* p,
                                      const int8_t* input,
                                      const int8_t* packed, int8_t* output,
                                      void* scratch);
void te_arm_depthwise_conv2d_5x5s2_s8(const te_conv_params* p,
                                      const int8_t* input,
                                      const int8_t* packed, int8_t* output,
                                      void* scratch);
void te_arm_depthwise_conv2d_7x7s1_s8(const te_conv_params* p,
                                      const int8_t* input,
                                      const int8_t* packed, int8_t* output,
                                      void* scratch);
void te_arm_depthwise_conv2d_7x7s2_s8(const te_conv_params* p,
                                      const int8_t* input,
                                      const int8_t* packed, int8_t* output,
                                      void* scratch);

/**
 * = te_fully_connected_s8 for symmetric weights (filter_offset == 0).
 * @param packed  output features in blocks of four (the last zero-padded),
 *                each: int32 bias + input_offset * sum(row) [4]; int8 rows
 *                interleaved per group of four inputs ([r0 k0..3][r1 k0..3]
 *                [r2 ..][r3 ..][r0 k4..7]..., input_depth rounded up to 4,
 *                zero-padded); int32 {2 * multiplier - 2^32, rounding, rs}
 *                [4].
 */
void te_arm_fully_connected_s8(const te_fc_params* p, const int8_t* input,
                               const int8_t* packed, int8_t* output);

/**
 * Broadcast geometry and output rescaling of te_arm_add_s8 (the inputs'
 * rescalings are tables).
 */
typedef struct {
  int32_t dims[4];           /**< Output shape, padded to 4-D with 1s. */
  int32_t input1_strides[4]; /**< Element strides of input 1 per dim. */
  int32_t input2_strides[4]; /**< Element strides of input 2 per dim. */
  int32_t output_m2;         /**< 2 * output_multiplier - 2^32. */
  int32_t output_rounding;   /**< 2^(rs - 1). */
  int32_t output_shift;      /**< rs = -output_shift of TFLite (>= 1). */
  int32_t output_offset;     /**< output_zero_point. */
  int32_t act_min;           /**< Lower clamp of the int8 result. */
  int32_t act_max;           /**< Upper clamp of the int8 result. */
} te_arm_add_params;

/**
 * = te_add_s8.  output may alias input1 or input2 when shapes match.
 * @param table1 int32 [256]: input 1's rescaled value per raw int8 x, at
 *               index (uint8_t)x: MultiplyByQuantizedMultiplier((x +
 *               input1_offset) << left_shift, input1_multiplier,
 *               input1_shift) (TFLM's arithmetic, computed at code
 *               generation).
 * @param table2 the same for input 2.
 */
void te_arm_add_s8(const te_arm_add_params* p, const int8_t* input1,
                   const int8_t* input2, const int32_t* table1,
                   const int32_t* table2, int8_t* output);

#ifdef __cplusplus
}  /* extern "C" */
#endif

#endif /* TINYENGINE_KERNELS_H_ */
