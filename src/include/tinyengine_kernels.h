/*
 * tinyengine-tvm int8 kernel library: the one public header.
 *
 * Every kernel is a plain C function: no global state, no heap, no
 * exceptions.  Arithmetic follows TensorFlow Lite Micro's reference integer
 * kernels exactly, so a generated model is bit-exact with TFLM.  This header
 * is the one description of the kernels' ABI: every argument, every struct
 * field, every scratch size and every packed constant layout is defined here.
 * The compiler reads its structs and prototypes from this file
 * (tinyengine_tvm/kernels/header.py), so they are written once.
 *
 * Calling convention
 *  - A kernel is te_<op>_s8(const te_<...>_params* p, tensors..., [scratch]):
 *    one parameter struct holding every scalar (shapes, quantization, sizes),
 *    then the tensors (inputs first, then the output), then the scratch
 *    buffer for the kernels that need one.  The struct is read only during
 *    the call; it may be a `static const` in flash.
 *  - Activations are int8, row-major NHWC.  Shapes and sizes are in
 *    elements, strides in elements, "bytes" in bytes.
 *  - "offset" fields are added to a raw int8 value before arithmetic: an
 *    input offset is the NEGATED input zero point; an output offset is the
 *    output zero point.
 *  - A requantization (multiplier, shift) pair represents the real number
 *    multiplier * 2^(shift - 31); multiplier is in [2^30, 2^31) or 0, shift is
 *    positive for a left shift (TFLite's QuantizeMultiplier).  Per-channel
 *    arrays have one pair per output channel.
 *  - act_min/act_max clamp the int8 result (fused activation); they are
 *    -128/127 when the operator has no fused activation.
 *  - Input and output buffers must not overlap unless a kernel says so.
 *
 * Scratch memory
 *  - A kernel that needs working memory takes `void* scratch` as its last
 *    argument and has, declared right after it,
 *        int32_t <kernel>_get_buffer_size(const <params>* p);
 *    which returns the bytes of scratch the kernel needs for the same `p`.
 *    A kernel without a _get_buffer_size function needs no scratch.
 *  - Scratch must be 4-byte aligned.  Its contents are ignored on entry and
 *    undefined on return, so any memory that is dead during the call will do
 *    (the generated code uses a slice of the activation arena).
 *  - The size belongs to the function called, never to the build: call the
 *    _get_buffer_size of the variant you call.  The Cortex-M variants
 *    (te_arm_*, below) compiled without __ARM_FEATURE_DSP run the same
 *    algorithm in plain C on the same scratch, so te_arm_X_get_buffer_size()
 *    is right for a DSP build and for the host build alike; the portable
 *    te_X has its own function, or none when it needs no scratch (e.g.
 *    te_arm_conv2d_s8 needs scratch, te_conv2d_s8 does not).
 *
 * Tags read by the compiler (formulas use the parameter struct's field names
 * and integer arithmetic: + - * / % and parentheses)
 *  - @op <TFLite operator> [<operator> ...]: the function is a portable
 *    kernel the integer lowering may call for that operator (the first; the
 *    others are operators it also computes, listed by --list-operators).  Its arguments map by name: `p`,
 *    then inputs in order, `output`, `buffer` (input and output: in place),
 *    `inputs` (an array of input pointers) and `scratch`.
 *  - @macs <formula>: multiply-accumulates of one call (0 when absent).
 *  - @size <formula> on a _get_buffer_size function: the bytes it returns
 *    (tests/test_kernel_abi.py checks the formula against the function).
 */
#ifndef TINYENGINE_KERNELS_H_
#define TINYENGINE_KERNELS_H_

#include <stdbool.h>
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
  int32_t pad_left;         /**< Implicit zero-point columns left of it
                                 (bottom/right padding follows from the
                                 output size). */
  int32_t depth_multiplier; /**< Depthwise only: outputs per input channel
                                 (ignored by regular convolutions). */
  int32_t input_offset;     /**< -input_zero_point. */
  int32_t output_offset;    /**< output_zero_point. */
  int32_t act_min;          /**< Lower clamp of the (int8 or int16) result. */
  int32_t act_max;          /**< Upper clamp of the (int8 or int16) result. */
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
 * @op CONV_2D
 * @macs batch * output_h * output_w * output_c * kernel_h * kernel_w * input_c
 */
void te_conv2d_s8(const te_conv_params* p, const int8_t* input,
                  const int8_t* filter, const int32_t* bias,
                  const int32_t* multiplier, const int32_t* shift,
                  int8_t* output);

/**
 * Regular convolution of int16 activations with int8 weights (TFLite 16x8):
 * int64 accumulation and TFLite's 64-bit requantization.
 * @param p          as te_conv2d_s8; input_offset and output_offset are 0
 *                   (int16 activations are symmetric).
 * @param input      [batch, input_h, input_w, input_c] int16.
 * @param filter     [output_c, kernel_h, kernel_w, input_c], symmetric int8.
 * @param bias       [output_c] int64, or NULL.
 * @param multiplier [output_c] requantization multipliers.
 * @param shift      [output_c] requantization shifts.
 * @param output     [batch, output_h, output_w, output_c] int16.
 * @op CONV_2D
 * @macs batch * output_h * output_w * output_c * kernel_h * kernel_w * input_c
 */
void te_conv2d_s16(const te_conv_params* p, const int16_t* input,
                   const int8_t* filter, const int64_t* bias,
                   const int32_t* multiplier, const int32_t* shift,
                   int16_t* output);

/**
 * Regular convolution of int16 activations with an int32 bias: TFLM then
 * accumulates in int32 and requantizes with the 32-bit rounding of int8
 * layers (the partial sums must fit in int32, as TFLM assumes).
 * @param p          as te_conv2d_s16.
 * @param input      [batch, input_h, input_w, input_c] int16.
 * @param filter     [output_c, kernel_h, kernel_w, input_c], symmetric int8.
 * @param bias       [output_c] int32.
 * @param multiplier [output_c] requantization multipliers.
 * @param shift      [output_c] requantization shifts.
 * @param output     [batch, output_h, output_w, output_c] int16.
 * @op CONV_2D
 * @macs batch * output_h * output_w * output_c * kernel_h * kernel_w * input_c
 */
void te_conv2d_s16_b32(const te_conv_params* p, const int16_t* input,
                       const int8_t* filter, const int32_t* bias,
                       const int32_t* multiplier, const int32_t* shift,
                       int16_t* output);

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
 * @op DEPTHWISE_CONV_2D
 * @macs batch * output_h * output_w * output_c * kernel_h * kernel_w
 */
void te_depthwise_conv2d_s8(const te_conv_params* p, const int8_t* input,
                            const int8_t* filter, const int32_t* bias,
                            const int32_t* multiplier, const int32_t* shift,
                            int8_t* output);

/**
 * Depthwise convolution of int16 activations with int8 weights (16x8).
 * @param p          as te_depthwise_conv2d_s8; offsets 0.
 * @param input      [batch, input_h, input_w, input_c] int16.
 * @param filter     [1, kernel_h, kernel_w, output_c] int8.
 * @param bias       [output_c] int64, or NULL.
 * @param multiplier [output_c] requantization multipliers.
 * @param shift      [output_c] requantization shifts.
 * @param output     [batch, output_h, output_w, output_c] int16.
 * @op DEPTHWISE_CONV_2D
 * @macs batch * output_h * output_w * output_c * kernel_h * kernel_w
 */
void te_depthwise_conv2d_s16(const te_conv_params* p, const int16_t* input,
                             const int8_t* filter, const int64_t* bias,
                             const int32_t* multiplier, const int32_t* shift,
                             int16_t* output);

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
 * @param scratch    te_depthwise_conv2d_inplace_s8_get_buffer_size(p) bytes.
 * @op DEPTHWISE_CONV_2D
 * @macs batch * output_h * output_w * output_c * kernel_h * kernel_w
 */
void te_depthwise_conv2d_inplace_s8(const te_conv_params* p, int8_t* buffer,
                                    const int8_t* filter, const int32_t* bias,
                                    const int32_t* multiplier,
                                    const int32_t* shift, void* scratch);

/** Scratch of te_depthwise_conv2d_inplace_s8: one input channel,
 *  input_h * input_w bytes.
 * @size input_h * input_w
 */
int32_t te_depthwise_conv2d_inplace_s8_get_buffer_size(
    const te_conv_params* p);

/**
 * Transposed convolution (TRANSPOSE_CONV), per-channel requantization: each
 * input pixel adds its products to the output pixels its filter window
 * covers, then bias, requantization and clamp.
 * @param p          geometry and quantization: input_* and output_* as the
 *                   tensors, kernel_*, stride_*, pad_top/pad_left (output
 *                   rows/columns cut before the first), offsets, act range;
 *                   dilation and depth_multiplier ignored (1).
 * @param input      [batch, input_h, input_w, input_c].
 * @param filter     [output_c, kernel_h, kernel_w, input_c] (TFLite OHWI),
 *                   symmetric.
 * @param bias       [output_c] int32, or NULL.
 * @param multiplier [output_c] requantization multipliers.
 * @param shift      [output_c] requantization shifts.
 * @param output     [batch, output_h, output_w, output_c].
 * @param scratch    te_transpose_conv2d_s8_get_buffer_size(p) bytes: the
 *                   int32 sums of one batch.
 * @op TRANSPOSE_CONV
 * @macs batch * input_h * input_w * kernel_h * kernel_w * output_c * input_c
 */
void te_transpose_conv2d_s8(const te_conv_params* p, const int8_t* input,
                            const int8_t* filter, const int32_t* bias,
                            const int32_t* multiplier, const int32_t* shift,
                            int8_t* output, void* scratch);

/** Scratch of te_transpose_conv2d_s8: one int32 per output element of a batch.
 * @size output_h * output_w * output_c * 4
 */
int32_t te_transpose_conv2d_s8_get_buffer_size(const te_conv_params* p);

/**
 * TRANSPOSE_CONV of int16 activations with int8 weights (16x8): int64 sums
 * and bias, TFLite's 64-bit requantization; arguments as for
 * te_transpose_conv2d_s8 (offsets 0).
 * @param p          geometry and quantization.
 * @param input      [batch, input_h, input_w, input_c] int16.
 * @param filter     [output_c, kernel_h, kernel_w, input_c] int8.
 * @param bias       [output_c] int64, or NULL.
 * @param multiplier [output_c] requantization multipliers.
 * @param shift      [output_c] requantization shifts.
 * @param output     [batch, output_h, output_w, output_c] int16.
 * @param scratch    te_transpose_conv2d_s16_get_buffer_size(p) bytes.
 * @op TRANSPOSE_CONV
 * @macs batch * input_h * input_w * kernel_h * kernel_w * output_c * input_c
 */
void te_transpose_conv2d_s16(const te_conv_params* p, const int16_t* input,
                             const int8_t* filter, const int64_t* bias,
                             const int32_t* multiplier, const int32_t* shift,
                             int16_t* output, void* scratch);

/** Scratch of te_transpose_conv2d_s16: one int64 per output element of a batch.
 * @size output_h * output_w * output_c * 8
 */
int32_t te_transpose_conv2d_s16_get_buffer_size(const te_conv_params* p);

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
 * @op FULLY_CONNECTED
 * @macs batch * input_depth * output_depth
 */
void te_fully_connected_s8(const te_fc_params* p, const int8_t* input,
                           const int8_t* filter, const int32_t* bias,
                           const int32_t* multiplier, const int32_t* shift,
                           int8_t* output);

/**
 * Fully connected layer of int16 activations with int8 weights (16x8):
 * int64 accumulation and TFLite's 64-bit requantization.
 * @param p          as te_fully_connected_s8; input and output offsets 0.
 * @param input      [batch, input_depth] int16.
 * @param filter     [output_depth, input_depth] int8.
 * @param bias       [output_depth] int64, or NULL.
 * @param multiplier [output_depth] requantization multipliers.
 * @param shift      [output_depth] requantization shifts.
 * @param output     [batch, output_depth] int16.
 * @op FULLY_CONNECTED
 * @macs batch * input_depth * output_depth
 */
void te_fully_connected_s16(const te_fc_params* p, const int16_t* input,
                            const int8_t* filter, const int64_t* bias,
                            const int32_t* multiplier, const int32_t* shift,
                            int16_t* output);

/**
 * Fully connected layer of int16 activations with an int32 bias: TFLM then
 * accumulates in int32 and requantizes with the 32-bit rounding of int8
 * layers (the partial sums must fit in int32, as TFLM assumes).
 * @param p          as te_fully_connected_s8; input and output offsets 0.
 * @param input      [batch, input_depth] int16.
 * @param filter     [output_depth, input_depth] int8.
 * @param bias       [output_depth] int32.
 * @param multiplier [output_depth] requantization multipliers.
 * @param shift      [output_depth] requantization shifts.
 * @param output     [batch, output_depth] int16.
 * @op FULLY_CONNECTED
 * @macs batch * input_depth * output_depth
 */
void te_fully_connected_s16_b32(const te_fc_params* p, const int16_t* input,
                                const int8_t* filter, const int32_t* bias,
                                const int32_t* multiplier,
                                const int32_t* shift, int16_t* output);

/* ------------------------------------------------------------------------ */
/* Element-wise binary operators with 4-D broadcasting                       */
/* ------------------------------------------------------------------------ */

/**
 * Quantization and broadcast geometry of ADD and MUL.  Both inputs are
 * addressed through 4-D strides over the output shape; a stride of 0 repeats
 * (broadcasts) the input along that dimension.
 *
 * ADD (TFLM's arithmetic): a = MultiplyByQuantizedMultiplier((x1 +
 * input1_offset) << left_shift, input1_multiplier, input1_shift), b likewise
 * for input 2, out = clamp(MultiplyByQuantizedMultiplier(a + b,
 * output_multiplier, output_shift) + output_offset).
 * MUL: out = clamp(MultiplyByQuantizedMultiplier((x1 + input1_offset) *
 * (x2 + input2_offset), output_multiplier, output_shift) + output_offset);
 * the ADD-only fields are ignored.
 * SUB: as ADD with a - b.  SQUARED_DIFFERENCE: as SUB, then the difference
 * squared before the output rescale.  PRELU (input 2 is alpha): a = x1 +
 * input1_offset; out = clamp(MultiplyByQuantizedMultiplier(a,
 * output_multiplier, output_shift) + output_offset) when a >= 0, else with
 * a * (x2 + input2_offset) and input2_multiplier/input2_shift.  MAXIMUM/MINIMUM compare the raw int8
 * values (TFLM does; the converter gives inputs and output one quantization)
 * and read only the geometry.
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

/**
 * Quantized ADD.
 * @param p      quantization and broadcast geometry.
 * @param input1 first operand, read through p->input1_strides.
 * @param input2 second operand, read through p->input2_strides.
 * @param output [dims[0], dims[1], dims[2], dims[3]]; may alias input1 or
 *               input2 when that input has the output's shape.
 * @op ADD
 */
void te_add_s8(const te_elementwise_params* p, const int8_t* input1,
               const int8_t* input2, int8_t* output);

/**
 * BATCH_MATMUL of two int8 activations: per batch, out[r][c] =
 * clamp(MultiplyByQuantizedMultiplier(sum_k (lhs[r][k] + lhs_offset) *
 * (rhs[k][c] + rhs_offset), output_multiplier, output_shift) +
 * output_offset).  Operands are read through strides, which covers TFLite's
 * adj_x/adj_y (transposed operands) and batch broadcasting (stride 0).
 */
typedef struct {
  int32_t batches;              /**< Product of batch_dims. */
  int32_t batch_dims[4];        /**< Output batch shape, padded with 1s. */
  int32_t lhs_batch_strides[4]; /**< Element strides of lhs per batch dim. */
  int32_t rhs_batch_strides[4]; /**< Element strides of rhs per batch dim. */
  int32_t rows;                 /**< Output rows (M). */
  int32_t cols;                 /**< Output columns (N). */
  int32_t depth;                /**< Summed dimension (K). */
  int32_t lhs_row_stride;       /**< lhs step per output row. */
  int32_t lhs_depth_stride;     /**< lhs step per k. */
  int32_t rhs_depth_stride;     /**< rhs step per k. */
  int32_t rhs_col_stride;       /**< rhs step per output column. */
  int32_t lhs_offset;           /**< -lhs_zero_point. */
  int32_t rhs_offset;           /**< -rhs_zero_point. */
  int32_t output_offset;        /**< output_zero_point. */
  int32_t output_multiplier;    /**< Rescale lhs_scale * rhs_scale / out. */
  int32_t output_shift;         /**< Its shift. */
} te_batch_matmul_params;

/**
 * Quantized BATCH_MATMUL.
 * @param p      geometry and quantization.
 * @param lhs    left operand.
 * @param rhs    right operand.
 * @param output [batch_dims..., rows, cols].
 * @op BATCH_MATMUL
 * @macs batches * rows * cols * depth
 */
void te_batch_matmul_s8(const te_batch_matmul_params* p, const int8_t* lhs,
                        const int8_t* rhs, int8_t* output);

/**
 * BATCH_MATMUL of two int16 activations (16x8 models, zero points 0): the sum
 * over k is int64 and is requantized with TFLite's 64-bit
 * MultiplyByQuantizedMultiplier (the multiplier rounded to 16 bits; shift at
 * most 14), clamped to int16, as TFLM's int16 BATCH_MATMUL.
 * @param p      geometry and quantization (offsets 0).
 * @param lhs    left operand.
 * @param rhs    right operand.
 * @param output [batch_dims..., rows, cols].
 * @op BATCH_MATMUL
 * @macs batches * rows * cols * depth
 */
void te_batch_matmul_s16(const te_batch_matmul_params* p, const int16_t* lhs,
                         const int16_t* rhs, int16_t* output);

/**
 * Quantized MUL; arguments and aliasing as for te_add_s8.
 * @op MUL
 */
void te_mul_s8(const te_elementwise_params* p, const int8_t* input1,
               const int8_t* input2, int8_t* output);

/**
 * Quantized SUB (input1 - input2); arguments and aliasing as for te_add_s8.
 * @op SUB
 */
void te_sub_s8(const te_elementwise_params* p, const int8_t* input1,
               const int8_t* input2, int8_t* output);

/**
 * Quantized SQUARED_DIFFERENCE; arguments and aliasing as for te_add_s8.
 * @op SQUARED_DIFFERENCE
 */
void te_squared_difference_s8(const te_elementwise_params* p,
                              const int8_t* input1, const int8_t* input2,
                              int8_t* output);

/**
 * Quantized PRELU (input2 is alpha, broadcast); arguments and aliasing as for
 * te_add_s8.
 * @op PRELU
 */
void te_prelu_s8(const te_elementwise_params* p, const int8_t* input1,
                 const int8_t* input2, int8_t* output);

/**
 * MAXIMUM of the raw int8 values; arguments and aliasing as for te_add_s8.
 * @op MAXIMUM
 */
void te_maximum_s8(const te_elementwise_params* p, const int8_t* input1,
                   const int8_t* input2, int8_t* output);

/**
 * MINIMUM of the raw int8 values; arguments and aliasing as for te_add_s8.
 * @op MINIMUM
 */
void te_minimum_s8(const te_elementwise_params* p, const int8_t* input1,
                   const int8_t* input2, int8_t* output);

/**
 * ADD of int16 values (TFLite 16x8, zero points 0): te_add_s8's arithmetic
 * with left_shift 15; arguments and aliasing as for te_add_s8.
 * @op ADD
 */
void te_add_s16(const te_elementwise_params* p, const int16_t* input1,
                const int16_t* input2, int16_t* output);

/**
 * SUB of int16 values: te_sub_s8's arithmetic with left_shift 15.
 * @op SUB
 */
void te_sub_s16(const te_elementwise_params* p, const int16_t* input1,
                const int16_t* input2, int16_t* output);

/**
 * MUL of int16 values: te_mul_s8's arithmetic.
 * @op MUL
 */
void te_mul_s16(const te_elementwise_params* p, const int16_t* input1,
                const int16_t* input2, int16_t* output);

/**
 * PRELU of int16 values (zero point 0) with an int8 alpha (broadcast), as
 * TFLM's 16x8 PRELU: te_prelu_s8's arithmetic, clamped to act_min/act_max.
 * @param p      broadcast shape and strides; input1_offset 0, input2_offset
 *               -alpha_zero_point, output_offset 0; output_multiplier/shift
 *               rescale in_scale / out_scale (x >= 0), input2_multiplier/shift
 *               in_scale * alpha_scale / out_scale (x < 0).
 * @param input1 int16 input.
 * @param input2 int8 alpha.
 * @param output int16, [dims].
 * @op PRELU
 */
void te_prelu_s16(const te_elementwise_params* p, const int16_t* input1,
                  const int8_t* input2, int16_t* output);

/**
 * SQUARED_DIFFERENCE of int16 values (zero points 0): te_squared_difference_s8's
 * arithmetic with left_shift 0, as TFLM's int16 path.
 * @op SQUARED_DIFFERENCE
 */
void te_squared_difference_s16(const te_elementwise_params* p,
                               const int16_t* input1, const int16_t* input2,
                               int16_t* output);

/**
 * MAXIMUM of the raw int16 values.
 * @op MAXIMUM
 */
void te_maximum_s16(const te_elementwise_params* p, const int16_t* input1,
                    const int16_t* input2, int16_t* output);

/**
 * MINIMUM of the raw int16 values.
 * @op MINIMUM
 */
void te_minimum_s16(const te_elementwise_params* p, const int16_t* input1,
                    const int16_t* input2, int16_t* output);

/** ADD_N (size, n_inputs) or CUMSUM (outer, axis_size, inner, exclusive,
 *  reverse) of int8 tensors of one quantization; each uses its own fields. */
typedef struct {
  int32_t size;              /**< ADD_N: elements per tensor. */
  int32_t n_inputs;          /**< ADD_N: number of inputs summed. */
  int32_t outer;             /**< CUMSUM: product of the dims before the axis. */
  int32_t axis_size;         /**< CUMSUM: length of the summed axis. */
  int32_t inner;             /**< CUMSUM: product of the dims after the axis. */
  int32_t exclusive;         /**< CUMSUM: 1 leaves each output's own input out. */
  int32_t reverse;           /**< CUMSUM: 1 sums from the end of the axis. */
  int32_t input_offset;      /**< -input_zero_point. */
  int32_t output_offset;     /**< output_zero_point. */
  int32_t left_shift;        /**< Headroom bits (20). */
  int32_t input_multiplier;  /**< Rescale of each term (1/2). */
  int32_t input_shift;       /**< Its shift. */
  int32_t output_multiplier; /**< 2 input_scale / (2^left_shift output_scale). */
  int32_t output_shift;      /**< Its shift. */
} te_sum_params;

/**
 * ADD_N: the sum of n_inputs int8 tensors with TFLM's arithmetic (each term
 * rescaled as ADD does, the sum starting at the rescaled -zero_point).
 * @param p      sizes and quantization.
 * @param inputs [n_inputs] pointers to [size] int8.
 * @param output [size] int8.
 * @op ADD_N
 */
void te_add_n_s8(const te_sum_params* p, const int8_t* const* inputs,
                 int8_t* output);

/**
 * CUMSUM with TFLM's arithmetic (terms rescaled as ADD does, the running sum
 * starting at the rescaled -zero_point).
 * @param p      shape, flags and quantization.
 * @param input  [outer, axis_size, inner] int8.
 * @param output [outer, axis_size, inner] int8.
 * @op CUMSUM
 */
void te_cumsum_s8(const te_sum_params* p, const int8_t* input,
                  int8_t* output);

/* ------------------------------------------------------------------------ */
/* Recurrent (stateful) operators                                            */
/* ------------------------------------------------------------------------ */

/** Shapes and quantization of an SVDF layer. */
typedef struct {
  int32_t batch;              /**< B: rows of input, output and state. */
  int32_t input_size;         /**< I: features of one input frame. */
  int32_t num_filters;        /**< F: feature filters (rank * units). */
  int32_t memory_size;        /**< M: frames of history per filter. */
  int32_t rank;               /**< R: filters summed into one output unit. */
  int32_t input_zero_point;   /**< Zero point of the input. */
  int32_t state_zero_point;   /**< Zero point of the state. */
  int32_t output_zero_point;  /**< Zero point of the output. */
  int32_t feature_multiplier; /**< input * weights_feature -> state: */
  int32_t feature_shift;      /**< s_in * s_wf / s_state. */
  int32_t output_multiplier;  /**< state * weights_time -> output: */
  int32_t output_shift;       /**< s_state * s_wt / s_out. */
} te_svdf_params;

/**
 * SVDF with int8 input and output and an int16 state (TFLM's integer SVDF):
 * the history moves one frame left, the new frame's feature projections
 * (requantized to the state) enter as its newest column, each filter's
 * history is weighted in time, filters are summed per unit (rank), bias
 * added, the sum requantized to the output.  The fused activation is not
 * applied (TFLM's integer path ignores it).
 * @param p               shapes and quantization.
 * @param input           [batch, input_size] int8.
 * @param weights_feature [num_filters, input_size] int8.
 * @param weights_time    [num_filters, memory_size] int16.
 * @param bias            [num_filters / rank] int32.
 * @param state           te_svdf_s8_get_state_size(p) bytes: [batch,
 *                        num_filters, memory_size] int16, kept by the caller
 *                        between calls (0 at the start of a stream).
 * @param output          [batch, num_filters / rank] int8.
 * @param scratch         te_svdf_s8_get_buffer_size(p) bytes.
 * @op SVDF
 * @macs batch * num_filters * (input_size + memory_size)
 */
void te_svdf_s8(const te_svdf_params* p, const int8_t* input,
                const int8_t* weights_feature, const int16_t* weights_time,
                const int32_t* bias, int16_t* state, int8_t* output,
                void* scratch);

/** Scratch of te_svdf_s8: the per-filter time sums, int32.
 * @size batch * num_filters * 4
 */
int32_t te_svdf_s8_get_buffer_size(const te_svdf_params* p);

/** Persistent state of te_svdf_s8: the int16 history.
 * @size batch * num_filters * memory_size * 2
 */
int32_t te_svdf_s8_get_state_size(const te_svdf_params* p);

/**
 * SVDF as te_svdf_s8 with int8 time weights and an int8 state (at its zero
 * point at the start of a stream).
 * @param p               shapes and quantization.
 * @param input           [batch, input_size] int8.
 * @param weights_feature [num_filters, input_size] int8.
 * @param weights_time    [num_filters, memory_size] int8.
 * @param bias            [num_filters / rank] int32.
 * @param state           te_svdf_s8_int8_state_get_state_size(p) bytes.
 * @param output          [batch, num_filters / rank] int8.
 * @param scratch         te_svdf_s8_int8_state_get_buffer_size(p) bytes.
 * @op SVDF
 * @macs batch * num_filters * (input_size + memory_size)
 */
void te_svdf_s8_int8_state(const te_svdf_params* p, const int8_t* input,
                           const int8_t* weights_feature,
                           const int8_t* weights_time, const int32_t* bias,
                           int8_t* state, int8_t* output, void* scratch);

/** Scratch of te_svdf_s8_int8_state.
 * @size batch * num_filters * 4
 */
int32_t te_svdf_s8_int8_state_get_buffer_size(const te_svdf_params* p);

/** Persistent state of te_svdf_s8_int8_state: the int8 history.
 * @size batch * num_filters * memory_size
 */
int32_t te_svdf_s8_int8_state_get_state_size(const te_svdf_params* p);

/**
 * EQUAL of two int8 tensors (4-D broadcasting): both inputs brought to a
 * common scale as te_add_s8 does (left_shift 8; output fields unused), then
 * compared; the bool result.
 * @param p      broadcast shape, strides and the inputs' rescales.
 * @param input1 first operand.
 * @param input2 second operand.
 * @param output [dims] bool.
 * @op EQUAL
 */
void te_equal_s8(const te_elementwise_params* p, const int8_t* input1,
                 const int8_t* input2, bool* output);

/** NOT_EQUAL; arguments as for te_equal_s8.
 * @op NOT_EQUAL
 */
void te_not_equal_s8(const te_elementwise_params* p, const int8_t* input1,
                     const int8_t* input2, bool* output);

/** GREATER; arguments as for te_equal_s8.
 * @op GREATER
 */
void te_greater_s8(const te_elementwise_params* p, const int8_t* input1,
                   const int8_t* input2, bool* output);

/** GREATER_EQUAL; arguments as for te_equal_s8.
 * @op GREATER_EQUAL
 */
void te_greater_equal_s8(const te_elementwise_params* p, const int8_t* input1,
                         const int8_t* input2, bool* output);

/** LESS; arguments as for te_equal_s8.
 * @op LESS
 */
void te_less_s8(const te_elementwise_params* p, const int8_t* input1,
                const int8_t* input2, bool* output);

/** LESS_EQUAL; arguments as for te_equal_s8.
 * @op LESS_EQUAL
 */
void te_less_equal_s8(const te_elementwise_params* p, const int8_t* input1,
                      const int8_t* input2, bool* output);

/** SELECT_V2's broadcast: the output shape (padded to 4-D with leading 1s)
 *  and each input's element strides (0 on broadcast axes). */
typedef struct {
  int32_t dims[4];              /**< Output shape. */
  int32_t condition_strides[4]; /**< Strides of the condition. */
  int32_t x_strides[4];         /**< Strides of x. */
  int32_t y_strides[4];         /**< Strides of y. */
} te_select_params;

/**
 * SELECT_V2: x where the condition holds, else y (raw int8 values: x, y and
 * the output share one quantization).
 * @param p         broadcast shape and strides.
 * @param condition bool.
 * @param x         int8.
 * @param y         int8.
 * @param output    [dims] int8.
 * @op SELECT_V2 SELECT
 */
void te_select_s8(const te_select_params* p, const bool* condition,
                  const int8_t* x, const int8_t* y, int8_t* output);

/**
 * SELECT_V2 of raw int16 values (x, y and the output share one quantization).
 * @param p         broadcast shape and strides.
 * @param condition bool.
 * @param x         int16.
 * @param y         int16.
 * @param output    [dims] int16.
 * @op SELECT_V2 SELECT
 */
void te_select_s16(const te_select_params* p, const bool* condition,
                   const int16_t* x, const int16_t* y, int16_t* output);

/** Shapes and quantization of an integer UNIDIRECTIONAL_SEQUENCE_LSTM.  Gates
 *  are indexed input, forget, cell, output. */
typedef struct {
  int32_t batch;                   /**< B: independent sequences. */
  int32_t time;                    /**< T: steps per invocation. */
  int32_t input_size;              /**< I: features per step. */
  int32_t units;                   /**< S: cells (and hidden values). */
  int32_t time_major;              /**< 1: input [T, B, I]; 0: [B, T, I]. */
  int32_t input_zero_point;        /**< Zero point of the input. */
  int32_t hidden_zero_point;       /**< Zero point of the hidden state (and output). */
  int32_t input_multiplier[4];     /**< input projection -> gate (2^-12 steps) */
  int32_t input_shift[4];          /**< ... per gate. */
  int32_t recurrent_multiplier[4]; /**< hidden projection -> gate (2^-12 steps) */
  int32_t recurrent_shift[4];      /**< ... per gate. */
  int32_t forget_multiplier;       /**< forget gate * cell -> cell. */
  int32_t forget_shift;            /**< Its shift. */
  int32_t update_multiplier;       /**< input gate * cell gate -> cell. */
  int32_t update_shift;            /**< Its shift. */
  int32_t hidden_multiplier;       /**< output gate * tanh(cell) -> hidden. */
  int32_t hidden_shift;            /**< Its shift. */
  int32_t cell_scale_power;        /**< log2 of the cell scale (rounded). */
  int32_t cell_clip;               /**< |cell| limit in cell steps; 0: none. */
  int32_t cell_gate_tanh;          /**< 1: tanh on the cell gate; 0: none. */
} te_lstm_params;

/**
 * UNIDIRECTIONAL_SEQUENCE_LSTM, int8 input/output/weights, int16 cell
 * (TFLM's integer LSTM, no peephole, projection or layer norm).  Each step:
 * four gates from the input and hidden projections, cell = forget * cell +
 * input * cell gate (clipped), hidden = output gate * tanh(cell); the output
 * holds every step's hidden state.
 * @param p                 shapes and quantization.
 * @param input             [T, B, I] or [B, T, I] int8.
 * @param input_weights     [4, units, input_size] int8, symmetric.
 * @param recurrent_weights [4, units, units] int8, symmetric.
 * @param bias              [4, units] int32 (input projections only).
 * @param table             [256] sigmoid_table_s16().
 * @param state             te_lstm_s8_get_state_size(p) bytes: the cells
 *                          (int16 [B, units]) then the hidden state (int8
 *                          [B, units]); set by te_lstm_s8_reset_state().
 * @param output            [T, B, units] or [B, T, units] int8.
 * @param scratch           te_lstm_s8_get_buffer_size(p) bytes: one step's gates.
 * @op UNIDIRECTIONAL_SEQUENCE_LSTM
 * @macs batch * time * 4 * units * (input_size + units)
 */
void te_lstm_s8(const te_lstm_params* p, const int8_t* input,
                const int8_t* input_weights, const int8_t* recurrent_weights,
                const int32_t* bias, const uint16_t* table, void* state,
                int8_t* output, void* scratch);

/** Scratch of te_lstm_s8: the four gates of one step, int16.
 * @size 4 * units * 2
 */
int32_t te_lstm_s8_get_buffer_size(const te_lstm_params* p);

/** Persistent state of te_lstm_s8: int16 cells and int8 hidden values.
 * @size batch * units * 3
 */
int32_t te_lstm_s8_get_state_size(const te_lstm_params* p);

/**
 * The start of a sequence for te_lstm_s8: cells 0, hidden state at its zero
 * point (as TFLM resets variable tensors).
 * @param p     shapes and quantization.
 * @param state te_lstm_s8_get_state_size(p) bytes.
 */
void te_lstm_s8_reset_state(const te_lstm_params* p, void* state);

/**
 * UNIDIRECTIONAL_SEQUENCE_LSTM of int16 activations with int8 weights
 * (16x8): te_lstm_s8's steps with int64 sums and bias, an int16 hidden state.
 * @param p                 shapes and quantization (zero points 0).
 * @param input             [T, B, I] or [B, T, I] int16.
 * @param input_weights     [4, units, input_size] int8.
 * @param recurrent_weights [4, units, units] int8.
 * @param bias              [4, units] int64.
 * @param table             [256] sigmoid_table_s16().
 * @param state             te_lstm_s16_get_state_size(p) bytes: int16 cells,
 *                          then the int16 hidden state.
 * @param output            [T, B, units] or [B, T, units] int16.
 * @param scratch           te_lstm_s16_get_buffer_size(p) bytes.
 * @op UNIDIRECTIONAL_SEQUENCE_LSTM
 * @macs batch * time * 4 * units * (input_size + units)
 */
void te_lstm_s16(const te_lstm_params* p, const int16_t* input,
                 const int8_t* input_weights, const int8_t* recurrent_weights,
                 const int64_t* bias, const uint16_t* table, void* state,
                 int16_t* output, void* scratch);

/** Scratch of te_lstm_s16: the four gates of one step, int16.
 * @size 4 * units * 2
 */
int32_t te_lstm_s16_get_buffer_size(const te_lstm_params* p);

/** Persistent state of te_lstm_s16: int16 cells and hidden values.
 * @size batch * units * 4
 */
int32_t te_lstm_s16_get_state_size(const te_lstm_params* p);

/**
 * The start of a sequence for te_lstm_s16: cells 0, hidden state at its zero
 * point.
 * @param p     shapes and quantization.
 * @param state te_lstm_s16_get_state_size(p) bytes.
 */
void te_lstm_s16_reset_state(const te_lstm_params* p, void* state);

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

/**
 * Average pooling; the divisor counts only the in-bounds elements.
 * @param p      geometry.
 * @param input  [batch, input_h, input_w, channels].
 * @param output [batch, output_h, output_w, channels].
 * @op AVERAGE_POOL_2D
 */
void te_avg_pool_s8(const te_pool_params* p, const int8_t* input,
                    int8_t* output);

/**
 * Average pooling of int16 values; arguments as for te_avg_pool_s8.
 * @op AVERAGE_POOL_2D
 */
void te_avg_pool_s16(const te_pool_params* p, const int16_t* input,
                     int16_t* output);

/** Max pooling over the in-bounds elements of each window; arguments as for
 *  te_avg_pool_s8.
 * @op MAX_POOL_2D
 */
void te_max_pool_s8(const te_pool_params* p, const int8_t* input,
                    int8_t* output);

/**
 * Max pooling of int16 values; arguments as for te_avg_pool_s8.
 * @op MAX_POOL_2D
 */
void te_max_pool_s16(const te_pool_params* p, const int16_t* input,
                     int16_t* output);

/** MEAN, SUM, REDUCE_MAX or REDUCE_MIN over a set of contiguous axes of a
 *  tensor seen as [outer, reduced, inner]. */
typedef struct {
  int32_t outer;         /**< Product of the dims before the reduced ones. */
  int32_t reduced;       /**< Number of elements averaged per output. */
  int32_t inner;         /**< Product of the dims after the reduced ones. */
  int32_t input_offset;  /**< -input_zero_point. */
  int32_t output_offset; /**< output_zero_point. */
  int32_t multiplier;    /**< Rescale input_scale / output_scale. */
  int32_t shift;         /**< Rescale shift. */
} te_mean_params;

/**
 * Quantized MEAN (the reduced dims must be contiguous).
 * @param p      shape and quantization.
 * @param input  [outer, reduced, inner].
 * @param output [outer, inner].
 * @op MEAN
 */
void te_mean_s8(const te_mean_params* p, const int8_t* input, int8_t* output);

/**
 * MEAN of int16 values: te_mean_s8's arithmetic, int16 result.
 * @op MEAN
 */
void te_mean_s16(const te_mean_params* p, const int16_t* input,
                 int16_t* output);

/**
 * Quantized SUM: as te_mean_s8 without the division by the count.
 * @param p      shape and quantization.
 * @param input  [outer, reduced, inner].
 * @param output [outer, inner].
 * @op SUM
 */
void te_sum_s8(const te_mean_params* p, const int8_t* input, int8_t* output);

/**
 * SUM of int16 values: te_sum_s8's arithmetic, int16 result.
 * @op SUM
 */
void te_sum_s16(const te_mean_params* p, const int16_t* input,
                int16_t* output);

/**
 * REDUCE_MAX of the raw int8 values (input and output share one
 * quantization; the quantization fields are not read).
 * @param p      shape.
 * @param input  [outer, reduced, inner].
 * @param output [outer, inner].
 * @op REDUCE_MAX
 */
void te_reduce_max_s8(const te_mean_params* p, const int8_t* input,
                      int8_t* output);

/**
 * REDUCE_MIN of the raw int8 values; as te_reduce_max_s8.
 * @param p      shape.
 * @param input  [outer, reduced, inner].
 * @param output [outer, inner].
 * @op REDUCE_MIN
 */
void te_reduce_min_s8(const te_mean_params* p, const int8_t* input,
                      int8_t* output);

/**
 * ARG_MAX over the middle axis of [outer, reduced, inner]: the index (first
 * of equals) of the largest raw int8 value (quantization does not change the
 * order); offsets and multiplier of p unused.
 * @param p      the [outer, reduced, inner] view of the input.
 * @param input  int8.
 * @param output [outer, inner] int32.
 * @op ARG_MAX
 */
void te_arg_max_s8(const te_mean_params* p, const int8_t* input,
                   int32_t* output);

/**
 * ARG_MIN: as te_arg_max_s8 for the smallest value.
 * @param p      the [outer, reduced, inner] view of the input.
 * @param input  int8.
 * @param output [outer, inner] int32.
 * @op ARG_MIN
 */
void te_arg_min_s8(const te_mean_params* p, const int8_t* input,
                   int32_t* output);

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

/**
 * Constant padding.
 * @param p      shapes and padding.
 * @param input  [input_dims].
 * @param output [input_dims[i] + before[i] + after[i] for i in 0..3].
 * @op PAD PADV2 SPACE_TO_BATCH_ND
 */
void te_pad_s8(const te_pad_params* p, const int8_t* input, int8_t* output);

/**
 * PAD of int16 values; arguments as for te_pad_s8.
 * @op PAD PADV2
 */
void te_pad_s16(const te_pad_params* p, const int16_t* input, int16_t* output);

/** TRANSPOSE of up to 6-D tensors. */
typedef struct {
  int32_t rank;          /**< Number of dims used (1..6). */
  int32_t input_dims[6]; /**< Input shape (the first `rank` entries). */
  int32_t perm[6];       /**< Output dim i is input dim perm[i]. */
} te_transpose_params;

/**
 * Permute the axes of a tensor.
 * @param p      rank, shape and permutation.
 * @param input  [input_dims[0 .. rank-1]].
 * @param output [input_dims[perm[i]] for i in 0 .. rank-1].
 * @op TRANSPOSE SPACE_TO_DEPTH DEPTH_TO_SPACE SPACE_TO_BATCH_ND BATCH_TO_SPACE_ND
 */
void te_transpose_s8(const te_transpose_params* p, const int8_t* input,
                     int8_t* output);

/**
 * TRANSPOSE of int16 values; arguments as for te_transpose_s8.
 * @op TRANSPOSE
 */
void te_transpose_s16(const te_transpose_params* p, const int16_t* input,
                      int16_t* output);

/** CONCATENATION along one axis, the tensors seen as [outer, axis, inner]. */
typedef struct {
  int32_t n_inputs;          /**< Number of inputs. */
  int32_t outer;             /**< Product of the dims before the axis. */
  int32_t inner;             /**< Product of the dims after the axis. */
  const int32_t* axis_sizes; /**< [n_inputs]: size of the concatenated axis
                                  in each input. */
} te_concat_params;

/**
 * Concatenate n_inputs tensors along one axis.
 * @param p      sizes.
 * @param inputs [n_inputs] pointers; input i is [outer, axis_sizes[i], inner].
 * @param output [outer, sum(axis_sizes), inner].
 * @op CONCATENATION PACK
 */
void te_concat_s8(const te_concat_params* p, const int8_t* const* inputs,
                  int8_t* output);

/**
 * CONCATENATION of int16 values (one quantization); arguments as for
 * te_concat_s8.
 * @op CONCATENATION PACK
 */
void te_concat_s16(const te_concat_params* p, const int16_t* const* inputs,
                   int16_t* output);

/** A tensor of one value (FILL, ZEROS_LIKE). */
typedef struct {
  int32_t size;  /**< Number of elements. */
  int32_t value; /**< The raw value written (int8 or int16 range). */
} te_fill_params;

/**
 * FILL / ZEROS_LIKE of int8: every element the raw value (ZEROS_LIKE writes
 * raw 0, as TFLM does, not the zero point).
 * @param p      size and value.
 * @param output [size] int8.
 * @op FILL ZEROS_LIKE
 */
void te_fill_s8(const te_fill_params* p, int8_t* output);

/**
 * FILL / ZEROS_LIKE of int16; arguments as for te_fill_s8.
 * @param p      size and value.
 * @param output [size] int16.
 * @op FILL ZEROS_LIKE
 */
void te_fill_s16(const te_fill_params* p, int16_t* output);

/** A 2-D block of bytes between strided layouts. */
typedef struct {
  int32_t rows;       /**< Number of rows. */
  int32_t row_bytes;  /**< Bytes copied per row. */
  int32_t src_stride; /**< Bytes between row starts in the source. */
  int32_t dst_stride; /**< Bytes between row starts in the destination. */
} te_copy_2d_params;

/**
 * Copy rows x row_bytes bytes from src to dst (rows src_stride and
 * dst_stride bytes apart).  Cuts a spatial window out of an NHWC tensor, or
 * pastes one into it (patch-based inference).
 * @param p   block geometry.
 * @param src first byte of the first source row.
 * @param dst first byte of the first destination row (must not overlap the
 *            source).
 */
void te_copy_2d_s8(const te_copy_2d_params* p, const int8_t* src,
                   int8_t* dst);

/** A strided box of an int8 tensor of up to 6 dimensions. */
typedef struct {
  int32_t rank;           /**< Dimensions used (1-6); the arrays hold rank. */
  int32_t input_dims[6];  /**< Input shape. */
  int32_t begin[6];       /**< Input index of the first element, per dim. */
  int32_t strides[6];     /**< Input step per output step (may be < 0). */
  int32_t output_dims[6]; /**< Output shape. */
} te_strided_slice_params;

/**
 * output[i] = input[begin + i * strides] along every dimension (the indices
 * are in range: the compiler resolves TFLite's masks, negative indices and
 * clamping).  STRIDED_SLICE and SLICE, and each part of SPLIT, SPLIT_V and
 * UNPACK.
 * @param p      shapes, first index and steps.
 * @param input  the input tensor.
 * @param output the output tensor.
 * @op STRIDED_SLICE SLICE SPLIT SPLIT_V UNPACK BROADCAST_TO BATCH_TO_SPACE_ND
 */
void te_strided_slice_s8(const te_strided_slice_params* p, const int8_t* input,
                         int8_t* output);

/**
 * Strided slice of int16 values; arguments as for te_strided_slice_s8.
 * @op STRIDED_SLICE SLICE SPLIT SPLIT_V UNPACK BROADCAST_TO
 */
void te_strided_slice_s16(const te_strided_slice_params* p,
                          const int16_t* input, int16_t* output);

/** GATHER of an int8 tensor along one axis with int32 indices. */
typedef struct {
  int32_t outer;      /**< Product of the dims before the axis. */
  int32_t axis_size;  /**< Input extent of the axis. */
  int32_t inner;      /**< Product of the dims after the axis (bytes moved). */
  int32_t count;      /**< Number of indices. */
} te_gather_params;

/**
 * output[o][k][i] = input[o][indices[k]][i].  Every index must lie in
 * [0, axis_size) (the compiler checks the constant indices it passes).
 * @param p       geometry.
 * @param input   [outer, axis_size, inner].
 * @param indices count int32 indices.
 * @param output  [outer, count, inner].
 * @op GATHER
 */
void te_gather_s8(const te_gather_params* p, const int8_t* input,
                  const int32_t* indices, int8_t* output);

/** GATHER_ND with constant indices: count index tuples of depth values. */
typedef struct {
  int32_t count;      /**< Index tuples (the product of indices' outer dims). */
  int32_t depth;      /**< Values per tuple (indices' last dim, at most 5). */
  int32_t slice_size; /**< Elements copied per tuple (params' trailing dims). */
  int32_t strides[5]; /**< Elements of params per step of each indexed dim. */
} te_gather_nd_params;

/**
 * GATHER_ND of int8 values: output tuple n is the slice of params the n-th
 * index tuple addresses (raw copy; indices checked in range at compile time).
 * @param p       counts and params' strides.
 * @param input   params.
 * @param indices [count, depth] int32.
 * @param output  [count, slice_size] int8.
 * @op GATHER_ND
 */
void te_gather_nd_s8(const te_gather_nd_params* p, const int8_t* input,
                     const int32_t* indices, int8_t* output);

/** MIRROR_PAD of an int8 tensor of up to 4 dimensions (padded with leading 1s). */
typedef struct {
  int32_t input_dims[4]; /**< Input shape. */
  int32_t before[4];     /**< Elements added before, per dim. */
  int32_t after[4];      /**< Elements added after, per dim. */
  int32_t offset;        /**< 1: REFLECT (edge not repeated); 0: SYMMETRIC. */
} te_mirror_pad_params;

/**
 * MIRROR_PAD: the padding mirrors the input about its edge (before/after at
 * most input_dims - offset).
 * @param p      shapes, paddings and mode.
 * @param input  the input tensor.
 * @param output the padded tensor.
 * @op MIRROR_PAD
 */
void te_mirror_pad_s8(const te_mirror_pad_params* p, const int8_t* input,
                      int8_t* output);

/** RESIZE_NEAREST_NEIGHBOR of an NHWC tensor, or of a window of its output. */
typedef struct {
  int32_t batch;              /**< N. */
  int32_t input_h;            /**< Height of the whole input. */
  int32_t input_w;            /**< Width of the whole input. */
  int32_t channels;           /**< Channels. */
  int32_t output_h;           /**< Height of the whole output (sets the scale). */
  int32_t output_w;           /**< Width of the whole output (sets the scale). */
  int32_t align_corners;      /**< TFLite align_corners flag (0 or 1). */
  int32_t half_pixel_centers; /**< TFLite half_pixel_centers flag (0 or 1). */
  int32_t window_y0;          /**< First output row computed (0: whole map). */
  int32_t window_x0;          /**< First output column computed. */
  int32_t window_h;           /**< Output rows computed (output_h: whole map). */
  int32_t window_w;           /**< Output columns computed. */
  int32_t block_y0;           /**< First input row held in `input` (0). */
  int32_t block_x0;           /**< First input column held in `input` (0). */
  int32_t block_h;            /**< Input rows held in `input` (input_h). */
  int32_t block_w;            /**< Input columns held in `input` (input_w). */
} te_resize_params;

/**
 * Nearest-neighbour resize, TFLite index rounding.  Patch-based inference
 * computes one window of the output from a block of the input that holds
 * every row and column the window reads (the values in parentheses give the
 * whole map).
 * @param p      shapes, rounding flags, the output window and the input block.
 * @param input  [batch, block_h, block_w, channels].
 * @param output [batch, window_h, window_w, channels].
 * @op RESIZE_NEAREST_NEIGHBOR
 */
void te_resize_nearest_s8(const te_resize_params* p, const int8_t* input,
                          int8_t* output);

/**
 * RESIZE_NEAREST_NEIGHBOR of int16 values; arguments as for
 * te_resize_nearest_s8 (windows included).
 * @param p      geometry, as for te_resize_nearest_s8.
 * @param input  the input block, int16.
 * @param output the output window, int16.
 * @op RESIZE_NEAREST_NEIGHBOR
 */
void te_resize_nearest_s16(const te_resize_params* p, const int16_t* input,
                           int16_t* output);

/**
 * Bilinear resize (RESIZE_BILINEAR) of int8 values by TFLite's integer rule:
 * positions in 1/1024 steps, the four neighbours weighted and the sum
 * rounded at 2^20; the output keeps the input's quantization.
 * @param p      shapes and rounding flags (the window and block fields are
 *               the whole maps: window 0, 0, output_h, output_w; block 0, 0,
 *               input_h, input_w).
 * @param input  [batch, input_h, input_w, channels].
 * @param output [batch, output_h, output_w, channels].
 * @op RESIZE_BILINEAR
 */
void te_resize_bilinear_s8(const te_resize_params* p, const int8_t* input,
                           int8_t* output);

/* ------------------------------------------------------------------------ */
/* Element-wise unary operators                                              */
/* ------------------------------------------------------------------------ */

/** Rescaling from one int8 quantization to another. */
typedef struct {
  int32_t size;          /**< Number of elements. */
  int32_t input_offset;  /**< -input_zero_point. */
  int32_t output_offset; /**< output_zero_point. */
  int32_t multiplier;    /**< Rescale input_scale / output_scale. */
  int32_t shift;         /**< Rescale shift. */
  int32_t act_min;       /**< Lower clamp of the result (int8 or int16). */
  int32_t act_max;       /**< Upper clamp of the result (int8 or int16). */
} te_requantize_params;

/**
 * out = clamp(output_offset + requant(in + input_offset)).  Serves QUANTIZE
 * int8->int8, and RELU/RELU6/CLIP (with act_min/act_max).
 * @param p      size and quantization.
 * @param input  [size].
 * @param output [size]; may alias input (same buffer).
 * @op QUANTIZE RELU RELU6 RELU_N1_TO_1
 */
void te_requantize_s8(const te_requantize_params* p, const int8_t* input,
                      int8_t* output);

/**
 * te_requantize_s8 on int16 values (QUANTIZE int16->int16, int16 clips).
 * @param p      size and quantization; act_min/act_max within int16.
 * @param input  [size] int16.
 * @param output [size] int16; may alias input.
 * @op QUANTIZE RELU RELU6
 */
void te_requantize_s16(const te_requantize_params* p, const int16_t* input,
                       int16_t* output);

/**
 * QUANTIZE int8 -> int16: te_requantize_s8's arithmetic, int16 result.
 * @param p      size and quantization; act_min/act_max within int16.
 * @param input  [size] int8.
 * @param output [size] int16.
 * @op QUANTIZE
 */
void te_requantize_s8_s16(const te_requantize_params* p, const int8_t* input,
                          int16_t* output);

/**
 * QUANTIZE int16 -> int8: te_requantize_s8's arithmetic on int16 input.
 * @param p      size and quantization; act_min/act_max within int8.
 * @param input  [size] int16.
 * @param output [size] int8; may alias input (element i is written after
 *               element i is read and lies at or before it).
 * @op QUANTIZE
 */
void te_requantize_s16_s8(const te_requantize_params* p, const int16_t* input,
                          int8_t* output);

/**
 * QUANTIZE int32 -> int8 (e.g. a model's int32 input): te_requantize_s8's
 * arithmetic on int32 input.
 * @param p      size and quantization; act_min/act_max within int8.
 * @param input  [size] int32.
 * @param output [size] int8.
 * @op QUANTIZE
 */
void te_requantize_s32_s8(const te_requantize_params* p, const int32_t* input,
                          int8_t* output);

/**
 * QUANTIZE int32 -> int16: te_requantize_s8's arithmetic, int32 in, int16 out.
 * @param p      size and quantization; act_min/act_max within int16.
 * @param input  [size] int32.
 * @param output [size] int16.
 * @op QUANTIZE
 */
void te_requantize_s32_s16(const te_requantize_params* p,
                           const int32_t* input, int16_t* output);

/**
 * An affine quantization of `size` elements: real = scale * (q - zero_point).
 * scale is a float, as in the .tflite file and in TFLM; dequantization in
 * float equals TFLM's double arithmetic bit for bit (the product of a float
 * and an integer of at most 24 bits is exact in double, so rounding it to
 * float once is the float product).
 */
typedef struct {
  int32_t size;       /**< Number of elements. */
  float scale;        /**< Quantization scale. */
  int32_t zero_point; /**< Quantization zero point. */
} te_quant_params;

/**
 * QUANTIZE float32 -> int8: round(x / scale) + zero_point, rounding half away
 * from zero, saturated to int8.
 * @param p      size and quantization of the output.
 * @param input  [size] float32.
 * @param output [size] int8; may be the address of input (in place: element i
 *               is written after float element i is read, and byte i never
 *               lies past it), so the int8 tensor takes the start of the
 *               float buffer.
 * @op QUANTIZE
 */
void te_quantize_f32_s8(const te_quant_params* p, const float* input,
                        int8_t* output);

/**
 * QUANTIZE float32 -> int16, as te_quantize_f32_s8 saturating to int16.
 * @param p      size and quantization of the output.
 * @param input  [size] float32.
 * @param output [size] int16; may be the address of input (in place).
 * @op QUANTIZE
 */
void te_quantize_f32_s16(const te_quant_params* p, const float* input,
                         int16_t* output);

/**
 * DEQUANTIZE int8 -> float32: scale * (x - zero_point).
 * @param p      size and quantization of the input.
 * @param input  [size] int8.
 * @param output [size] float32.
 * @op DEQUANTIZE
 */
void te_dequantize_s8_f32(const te_quant_params* p, const int8_t* input,
                          float* output);

/**
 * DEQUANTIZE int16 -> float32: scale * (x - zero_point).
 * @param p      size and quantization of the input.
 * @param input  [size] int16.
 * @param output [size] float32.
 * @op DEQUANTIZE
 */
void te_dequantize_s16_f32(const te_quant_params* p, const int16_t* input,
                           float* output);

/** CAST int8 -> int16 of the raw values (p: size only).
 * @op CAST
 */
void te_cast_s8_s16(const te_quant_params* p, const int8_t* input,
                    int16_t* output);

/** CAST int8 -> int32 of the raw values (p: size only).
 * @op CAST
 */
void te_cast_s8_s32(const te_quant_params* p, const int8_t* input,
                    int32_t* output);

/** CAST int16 -> int8 of the raw values, wrapping as C converts (p: size only).
 * @op CAST
 */
void te_cast_s16_s8(const te_quant_params* p, const int16_t* input,
                    int8_t* output);

/** CAST int16 -> int32 of the raw values (p: size only).
 * @op CAST
 */
void te_cast_s16_s32(const te_quant_params* p, const int16_t* input,
                     int32_t* output);

/** SOFTMAX over the last axis, as TFLite's Prepare derives it. */
typedef struct {
  int32_t rows;                  /**< Number of vectors. */
  int32_t depth;                 /**< Length of each vector (the last axis). */
  int32_t input_beta_multiplier; /**< beta * input_scale in Q5.26 fixed
                                      point: multiplier ... */
  int32_t input_beta_left_shift; /**< ... and left shift (>= 0). */
  int32_t diff_min;              /**< Differences from the row maximum below
                                      this give exp() = 0. */
} te_softmax_params;

/**
 * SOFTMAX (output scale 1/256, zero point -128).  Needs no scratch.
 * @param p      sizes and fixed-point parameters.
 * @param input  [rows, depth].
 * @param output [rows, depth].
 * @op SOFTMAX
 */
void te_softmax_s8(const te_softmax_params* p, const int8_t* input,
                   int8_t* output);

/**
 * SOFTMAX of int8 to int16 (output scale 1/65536, zero point -32768, as TFLM
 * requires): the int8 kernel's arithmetic with 16 output bits.
 * @param p      sizes and fixed-point parameters, as for te_softmax_s8.
 * @param input  [rows, depth] int8.
 * @param output [rows, depth] int16.
 * @op SOFTMAX
 */
void te_softmax_s8_s16(const te_softmax_params* p, const int8_t* input,
                       int16_t* output);

/** LOG_SOFTMAX over the last axis, as TFLite's int8 Prepare derives it. */
typedef struct {
  int32_t rows;               /**< Number of vectors. */
  int32_t depth;              /**< Length of each vector (the last axis). */
  int32_t input_multiplier;   /**< input_scale in Q5.26 steps: multiplier */
  int32_t input_left_shift;   /**< ... and left shift (>= 0). */
  int32_t reverse_multiplier; /**< Q5.26 back to input steps: multiplier */
  int32_t reverse_shift;      /**< ... and shift (<= 0). */
  int32_t diff_min;           /**< Differences from the row maximum below
                                   this add no exp() to the sum. */
} te_log_softmax_params;

/**
 * LOG_SOFTMAX (output scale 16/256, zero point 127): x - max - log(sum of
 * exp(x - max)) in fixed point.  Needs no scratch.
 * @param p      sizes and fixed-point parameters.
 * @param input  [rows, depth].
 * @param output [rows, depth].
 * @op LOG_SOFTMAX
 */
void te_log_softmax_s8(const te_log_softmax_params* p, const int8_t* input,
                       int8_t* output);

/** L2_NORMALIZATION over the last axis. */
typedef struct {
  int32_t rows;             /**< Number of vectors. */
  int32_t depth;            /**< Length of each vector (the last axis). */
  int32_t input_zero_point; /**< Zero point of the input (its scale cancels). */
} te_l2_norm_params;

/**
 * L2_NORMALIZATION (output scale 1/128, zero point 0): x / sqrt(sum x^2)
 * per vector, with TFLite's integer inverse square root.
 * @param p      sizes and the input zero point.
 * @param input  [rows, depth].
 * @param output [rows, depth].
 * @op L2_NORMALIZATION
 */
void te_l2_normalization_s8(const te_l2_norm_params* p, const int8_t* input,
                            int8_t* output);

/** LayerNormalization over the last axis (ONNX; TFLite has no builtin). */
typedef struct {
  int32_t rows;              /**< Number of vectors. */
  int32_t depth;             /**< Length of each vector (the last axis, at
                                  most 4096). */
  int32_t input_zero_point;  /**< Zero point of the input. */
  int32_t output_zero_point; /**< Zero point of the output. */
  int32_t fraction_bits;     /**< Fraction bits of the scaled values and
                                  of bias (0..16). */
  int64_t epsilon_term;      /**< round(epsilon * depth^3 / input_scale^2),
                                  at most 2^60. */
} te_layer_norm_params;

/**
 * LayerNormalization: (x - mean) / sqrt(variance + epsilon) * gamma + beta
 * per vector, in integers (int64 sums and one integer inverse square root
 * per vector).  Element c of a vector is written as
 * y * multiplier[c] * 2^shift[c] (y: the normalized value in Q30) plus
 * bias[c], both with fraction_bits fraction bits, then rounded.
 * @param p          sizes, zero points and the epsilon term.
 * @param input      [rows, depth].
 * @param multiplier [depth] Q31 of sqrt(depth) * gamma[c] / output_scale.
 * @param shift      [depth] its power of two (including -30 and fraction_bits).
 * @param bias       [depth] beta[c] / output_scale * 2^fraction_bits.
 * @param output     [rows, depth].
 * @op LAYER_NORMALIZATION
 */
void te_layer_norm_s8(const te_layer_norm_params* p, const int8_t* input,
                      const int32_t* multiplier, const int32_t* shift,
                      const int32_t* bias, int8_t* output);

/** SOFTMAX of int16 values, as TFLite's int16 Prepare derives it. */
typedef struct {
  int32_t rows;             /**< Number of vectors. */
  int32_t depth;            /**< Length of each vector (the last axis). */
  int32_t input_multiplier; /**< input_scale * beta / (10 / 65535): input */
  int32_t input_shift;      /**< differences in exp-table steps. */
} te_softmax_s16_params;

/**
 * SOFTMAX of int16 values (zero points 0, output scale 2^-15): exp and
 * 1 / (1 + x) by interpolation in two tables.  Needs no scratch (the output
 * row holds the exponentials until their sum is known).
 * @param p                sizes and the input rescale.
 * @param input            [rows, depth] int16.
 * @param exp_table        [513] exp over [-10, 0] (softmax_s16_params()).
 * @param reciprocal_table [513] 1 / (1 + x) over [0, 1].
 * @param output           [rows, depth] int16.
 * @op SOFTMAX
 */
void te_softmax_s16(const te_softmax_s16_params* p, const int16_t* input,
                    const int16_t* exp_table, const int16_t* reciprocal_table,
                    int16_t* output);

/** LOGISTIC, as TFLite's Prepare derives it. */
typedef struct {
  int32_t size;               /**< Number of elements. */
  int32_t input_zero_point;   /**< Zero point of the input. */
  int32_t input_range_radius; /**< Inputs at least this far from the zero
                                   point saturate to 0 or 1. */
  int32_t input_multiplier;   /**< input_scale in Q4.27: multiplier ... */
  int32_t input_left_shift;   /**< ... and left shift. */
} te_logistic_params;

/**
 * LOGISTIC (output scale 1/256, zero point -128).
 * @param p      size and fixed-point parameters.
 * @param input  [size].
 * @param output [size].
 * @op LOGISTIC
 */
void te_logistic_s8(const te_logistic_params* p, const int8_t* input,
                    int8_t* output);

/**
 * LOGISTIC of int16 values (zero points 0, output scale 2^-15), by linear
 * interpolation in a sigmoid table.
 * @param p      size, input_multiplier and input_left_shift (the other
 *               fields unused); a multiplier of 0 marks a power-of-two
 *               input scale.
 * @param input  [size] int16.
 * @param table  [256] 65536 * sigmoid(i / 24), adjusted for interpolation
 *               (sigmoid_table_s16() in quantization/activation_params.py).
 * @param output [size] int16.
 * @op LOGISTIC
 */
void te_logistic_s16(const te_logistic_params* p, const int16_t* input,
                     const uint16_t* table, int16_t* output);

/**
 * Element-wise rescaling operators on int8 (TFLM's arithmetic):
 *   ABS:        out = MultiplyByQuantizedMultiplier(|x - input_zero_point|,
 *               multiplier, shift) + output_zero_point;
 *   RSQRT:      1/sqrt(x - input_zero_point) by TFLite's fixed-point
 *               Newton-Raphson, then rescaled by multiplier/shift (x at the
 *               zero point gives 127; x below it is outside RSQRT's domain,
 *               where TFLM fails the invocation);
 *   LEAKY_RELU: x - input_zero_point rescaled by multiplier/shift when >= 0,
 *               else by alpha_multiplier/alpha_shift; plus output_zero_point.
 * Results saturate to int8.
 */
typedef struct {
  int32_t size;              /**< Number of elements. */
  int32_t input_zero_point;  /**< Input zero point. */
  int32_t output_zero_point; /**< Output zero point. */
  int32_t multiplier;        /**< Output rescale (identity path). */
  int32_t shift;             /**< Its shift. */
  int32_t alpha_multiplier;  /**< LEAKY_RELU: rescale of negative inputs. */
  int32_t alpha_shift;       /**< Its shift. */
} te_unary_params;

/**
 * NEG as TFLite computes it for int8 (TFLM has no int8/int16 NEG): the raw
 * integers negated, the quantization ignored, the type's minimum wrapping to
 * itself.
 * @param p      size (the other fields are unused).
 * @param input  [size].
 * @param output [size] (may be the input: element-wise).
 * @op NEG
 */
void te_neg_s8(const te_unary_params* p, const int8_t* input, int8_t* output);

/**
 * NEG of int16 values; arguments as for te_neg_s8.
 * @param p      size.
 * @param input  [size] int16.
 * @param output [size] int16.
 * @op NEG
 */
void te_neg_s16(const te_unary_params* p, const int16_t* input,
                int16_t* output);

/**
 * ABS.
 * @param p      size, zero points and rescale.
 * @param input  [size].
 * @param output [size] (may be the input: element-wise).
 * @op ABS
 */
void te_abs_s8(const te_unary_params* p, const int8_t* input, int8_t* output);

/**
 * ABS of int16 values; arguments as for te_abs_s8.
 * @op ABS
 */
void te_abs_s16(const te_unary_params* p, const int16_t* input,
                int16_t* output);

/**
 * RSQRT.
 * @param p      size, zero points and rescale.
 * @param input  [size].
 * @param output [size] (may be the input: element-wise).
 * @op RSQRT
 */
void te_rsqrt_s8(const te_unary_params* p, const int8_t* input,
                 int8_t* output);

/**
 * RSQRT of int16 values (zero points 0): te_rsqrt_s8's arithmetic, 0 giving
 * 32767 and results clamped to int16, as TFLM's int16 RSQRT; arguments as for
 * te_rsqrt_s8.  TFLM refuses negative inputs at run time; this kernel does not
 * check them.
 * @op RSQRT
 */
void te_rsqrt_s16(const te_unary_params* p, const int16_t* input,
                  int16_t* output);

/**
 * LEAKY_RELU.
 * @param p      size, zero points and both rescales.
 * @param input  [size].
 * @param output [size] (may be the input: element-wise).
 * @op LEAKY_RELU
 */
void te_leaky_relu_s8(const te_unary_params* p, const int8_t* input,
                      int8_t* output);

/**
 * LEAKY_RELU of int16 values; arguments as for te_leaky_relu_s8.
 * @op LEAKY_RELU
 */
void te_leaky_relu_s16(const te_unary_params* p, const int16_t* input,
                       int16_t* output);

/**
 * TANH (output scale 1/128, zero point 0); p as for te_logistic_s8 (TFLM
 * derives TANH's input rescale the same way).
 * @param p      size and fixed-point parameters.
 * @param input  [size].
 * @param output [size].
 * @op TANH
 */
void te_tanh_s8(const te_logistic_params* p, const int8_t* input,
                int8_t* output);

/**
 * TANH of int16 values (zero points 0, output scale 2^-15), from the same
 * sigmoid table as te_logistic_s16.
 * @param p      size, input_multiplier and input_left_shift.
 * @param input  [size] int16.
 * @param table  [256] the sigmoid table of te_logistic_s16.
 * @param output [size] int16.
 * @op TANH
 */
void te_tanh_s16(const te_logistic_params* p, const int16_t* input,
                 const uint16_t* table, int16_t* output);

/** An int8 -> int8 function given by its 256 values. */
typedef struct {
  int32_t size; /**< Number of elements. */
} te_lut_params;

/**
 * output[i] = table[(uint8_t)input[i]]: an operator TFLM itself computes
 * through a table built from float arithmetic at Prepare (ELU); the compiler
 * builds the same table.
 * @param p      size.
 * @param input  [size].
 * @param table  256 values, indexed by the input's two's-complement byte.
 * @param output [size] (may be the input: element-wise).
 * @op ELU
 */
void te_lut_s8(const te_lut_params* p, const int8_t* input,
               const int8_t* table, int8_t* output);

/** HARD_SWISH's fixed-point parameters, as TFLite's Prepare derives them. */
typedef struct {
  int32_t size;                        /**< Number of elements. */
  int32_t input_zero_point;            /**< Input zero point. */
  int32_t output_zero_point;           /**< Output zero point. */
  int32_t reluish_multiplier_fixedpoint_int16; /**< Q15 reluish scale. */
  int32_t reluish_multiplier_exponent; /**< Its power-of-two exponent. */
  int32_t output_multiplier_fixedpoint_int16;  /**< Q15 output scale. */
  int32_t output_multiplier_exponent;  /**< Its power-of-two exponent. */
} te_hard_swish_params;

/**
 * HARD_SWISH: x * relu6(x + 3) / 6 in TFLite's int16 fixed point.
 * @param p      size and fixed-point parameters.
 * @param input  [size].
 * @param output [size].
 * @op HARD_SWISH
 */
void te_hard_swish_s8(const te_hard_swish_params* p, const int8_t* input,
                      int8_t* output);

/* ======================================================================== */
/* Cortex-M optimized variants (src/kernels/arm/)                            */
/* ======================================================================== */
/*
 * Chosen at code generation for cores with the DSP extension (Cortex-M4, M7,
 * M55; tinyengine_tvm.compile(..., core=...)).  Same results as the portable
 * kernel named in each comment, bit for bit.  Without __ARM_FEATURE_DSP they
 * compile to plain C running the same algorithm on the same scratch, so a
 * generated project builds and runs anywhere.  Activation pointers need not
 * be aligned (32-bit LDR/STR at any address, the Cortex-M default); packed
 * constants and scratch must be 4-byte aligned.
 *
 * Their constants are not the TFLite tensors: the code generator
 * (tinyengine_tvm/codegen/kernel_selection.py) re-lays them out once, at
 * compile time, into the packed layouts defined here.  All multi-byte values
 * are little-endian.  Notation: round_up4(n) = (n + 3) & ~3;
 * int8 x[n] = n bytes; int32 x = 4 bytes.
 *
 * Requantization record.  Each output channel's (multiplier, shift) becomes
 * three int32 values {m2, rounding, rs}:
 *   rs       = -shift (the kernels only take shift in [-31, -1]);
 *   m2       = 2 * multiplier - 2^32 (wrapped to int32; multiplier in
 *              [2^30, 2^31));
 *   rounding = 2^(rs - 1), plus output_offset * 2^rs when the generator
 *              folded the output offset in (then p->output_offset is 0).
 * A channel with multiplier 0 has {m2, rounding, rs} = {-2^31, 1, 1}, zero
 * weights and zero bias.  The generator checks per layer that |accumulator|
 * is bounded so that the rounding sum cannot overflow (the derivation is in
 * src/kernels/arm/arm_dsp.h) and keeps the portable kernel otherwise.
 * The effective bias of a channel is bias + input_offset * sum(its filter
 * taps), so the kernels multiply raw int8 inputs (padding reads the input
 * zero point, -input_offset, whose contribution cancels exactly).
 */

/**
 * = te_conv2d_s8 (any kernel, stride, dilation, padding).
 * @param p       as for te_conv2d_s8, except output_offset, which is 0 when
 *                the generator folded it into the rounding terms.
 * @param input   [batch, input_h, input_w, input_c].
 * @param packed  output_c records of k4 + 16 bytes, record o:
 *                  int32 bias + input_offset * sum(filter[o]);
 *                  int8  w[k4]: filter[o] in the conv K order below;
 *                  int32 m2, rounding, rs (the requantization record).
 *                Conv K order.  With seg = kernel_w * input_c (one filter
 *                row, OHWI), a = seg & ~3, b = seg & 3 and
 *                k4 = kernel_h * a + round_up4(kernel_h * b): for each
 *                filter row ky, its first a values (filter[o][ky] flattened,
 *                indices 0 .. a-1); then, for each ky, its last b values
 *                (indices a .. seg-1); then zeros up to k4.  When seg % 4 ==
 *                0 this is plain OHWI order and k4 = K = kernel_h * seg.
 * @param output  [batch, output_h, output_w, output_c].
 * @param scratch te_arm_conv2d_s8_get_buffer_size(p) bytes.
 */
void te_arm_conv2d_s8(const te_conv_params* p, const int8_t* input,
                      const int8_t* packed, int8_t* output, void* scratch);

/**
 * Scratch of te_arm_conv2d_s8 (k4 as defined there):
 * 8 * k4 (four int16 im2col columns) + 4 * output_c (a partial block of
 * outputs) + (input_c % 4 != 0 ? round_up4(k4 + kernel_w * input_c) : 0)
 * (the int8 staging of a column) bytes.
 */
int32_t te_arm_conv2d_s8_get_buffer_size(const te_conv_params* p);

/**
 * te_arm_conv2d_s8 with the filter stored as int16 (for small filters).
 * @param p       as for te_arm_conv2d_s8.
 * @param input   as for te_arm_conv2d_s8.
 * @param packed  as for te_arm_conv2d_s8 except that w is int16 w[k4]
 *                (records of 2 * k4 + 16 bytes), each group of four values
 *                (in conv K order) (k0, k1, k2, k3) stored (k0, k2, k1, k3).
 * @param output  as for te_arm_conv2d_s8.
 * @param scratch te_arm_conv2d_w16_s8_get_buffer_size(p) bytes.
 */
void te_arm_conv2d_w16_s8(const te_conv_params* p, const int8_t* input,
                          const int8_t* packed, int8_t* output,
                          void* scratch);

/** Scratch of te_arm_conv2d_w16_s8: the same as te_arm_conv2d_s8's. */
int32_t te_arm_conv2d_w16_s8_get_buffer_size(const te_conv_params* p);

/**
 * te_arm_conv2d_s8 computing one output pixel at a time (the "narrow"
 * kernel variant): its im2col holds a single int16 column instead of a
 * block of four, so its scratch is about a quarter (no partial block of
 * outputs either), for more instructions (each filter word is loaded and
 * unpacked once per pixel instead of once per four pixels).  Same results.
 * @param p       as for te_arm_conv2d_s8.
 * @param input   as for te_arm_conv2d_s8.
 * @param packed  as for te_arm_conv2d_s8 (the same records).
 * @param output  as for te_arm_conv2d_s8.
 * @param scratch te_arm_conv2d_narrow_s8_get_buffer_size(p) bytes.
 */
void te_arm_conv2d_narrow_s8(const te_conv_params* p, const int8_t* input,
                             const int8_t* packed, int8_t* output,
                             void* scratch);

/**
 * Scratch of te_arm_conv2d_narrow_s8 (k4 as defined at te_arm_conv2d_s8):
 * 2 * k4 (one int16 im2col column) + (input_c % 4 != 0 ?
 * round_up4(k4 + kernel_w * input_c) : 0) (the int8 staging of the column)
 * bytes.
 */
int32_t te_arm_conv2d_narrow_s8_get_buffer_size(const te_conv_params* p);

/**
 * te_arm_conv2d_w16_s8 computing one output pixel at a time (see
 * te_arm_conv2d_narrow_s8).
 * @param p       as for te_arm_conv2d_s8.
 * @param input   as for te_arm_conv2d_s8.
 * @param packed  as for te_arm_conv2d_w16_s8 (int16 filter records).
 * @param output  as for te_arm_conv2d_s8.
 * @param scratch te_arm_conv2d_narrow_w16_s8_get_buffer_size(p) bytes.
 */
void te_arm_conv2d_narrow_w16_s8(const te_conv_params* p, const int8_t* input,
                                 const int8_t* packed, int8_t* output,
                                 void* scratch);

/** Scratch of te_arm_conv2d_narrow_w16_s8: the same as te_arm_conv2d_narrow_s8's. */
int32_t te_arm_conv2d_narrow_w16_s8_get_buffer_size(const te_conv_params* p);

/**
 * = te_depthwise_conv2d_s8 with depth_multiplier 1 and dilation 1 (any
 * kernel, stride and padding); also = te_depthwise_conv2d_inplace_s8 when
 * output == input (same in-place contract).
 * @param p       as for te_depthwise_conv2d_s8, except output_offset, which
 *                is 0 when the generator folded it into the rounding terms.
 * @param input   [batch, input_h, input_w, input_c].
 * @param packed  input_c records of 16 + 4 * kernel_h * tw bytes, tw =
 *                (kernel_w + 3) / 4 words per filter row; record c:
 *                  int32 bias + input_offset * sum(filter[.., .., .., c]);
 *                  int8  per filter row ky: the taps filter[0][ky][0 ..
 *                        kernel_w-1][c] zero-padded to 4 * tw, each group of
 *                        four (t0, t1, t2, t3) stored (t0, t2, t1, t3);
 *                  int32 m2, rounding, rs (the requantization record).
 * @param output  [batch, output_h, output_w, input_c], or input itself.
 * @param scratch te_arm_depthwise_conv2d_s8_get_buffer_size(p) bytes.
 */
void te_arm_depthwise_conv2d_s8(const te_conv_params* p, const int8_t* input,
                                const int8_t* packed, int8_t* output,
                                void* scratch);

/**
 * Scratch of te_arm_depthwise_conv2d_s8 and of its specializations: an int16
 * plane of one padded input channel, then a line of outputs:
 * 2 * plane_h * plane_w + ow4 bytes with ow4 = round_up4(output_w),
 * plane_h = (output_h - 1) * stride_h + kernel_h and
 * plane_w = ((ow4 - 1) * stride_w + 2 * ((kernel_w + 1) / 2) + 2) & ~1.
 */
int32_t te_arm_depthwise_conv2d_s8_get_buffer_size(const te_conv_params* p);

/*
 * te_arm_depthwise_conv2d_s8 specialized at compile time for a square kernel
 * and stride (p must have kernel_h == kernel_w == K and stride_h == stride_w
 * == S of the name KxKsS); arguments, packing and scratch are the same.
 */
void te_arm_depthwise_conv2d_3x3s1_s8(const te_conv_params* p,
                                      const int8_t* input,
                                      const int8_t* packed, int8_t* output,
                                      void* scratch);
/** = te_arm_depthwise_conv2d_s8_get_buffer_size. */
int32_t te_arm_depthwise_conv2d_3x3s1_s8_get_buffer_size(
    const te_conv_params* p);
void te_arm_depthwise_conv2d_3x3s2_s8(const te_conv_params* p,
                                      const int8_t* input,
                                      const int8_t* packed, int8_t* output,
                                      void* scratch);
/** = te_arm_depthwise_conv2d_s8_get_buffer_size. */
int32_t te_arm_depthwise_conv2d_3x3s2_s8_get_buffer_size(
    const te_conv_params* p);
void te_arm_depthwise_conv2d_5x5s1_s8(const te_conv_params* p,
                                      const int8_t* input,
                                      const int8_t* packed, int8_t* output,
                                      void* scratch);
/** = te_arm_depthwise_conv2d_s8_get_buffer_size. */
int32_t te_arm_depthwise_conv2d_5x5s1_s8_get_buffer_size(
    const te_conv_params* p);
void te_arm_depthwise_conv2d_5x5s2_s8(const te_conv_params* p,
                                      const int8_t* input,
                                      const int8_t* packed, int8_t* output,
                                      void* scratch);
/** = te_arm_depthwise_conv2d_s8_get_buffer_size. */
int32_t te_arm_depthwise_conv2d_5x5s2_s8_get_buffer_size(
    const te_conv_params* p);
void te_arm_depthwise_conv2d_7x7s1_s8(const te_conv_params* p,
                                      const int8_t* input,
                                      const int8_t* packed, int8_t* output,
                                      void* scratch);
/** = te_arm_depthwise_conv2d_s8_get_buffer_size. */
int32_t te_arm_depthwise_conv2d_7x7s1_s8_get_buffer_size(
    const te_conv_params* p);
void te_arm_depthwise_conv2d_7x7s2_s8(const te_conv_params* p,
                                      const int8_t* input,
                                      const int8_t* packed, int8_t* output,
                                      void* scratch);
/** = te_arm_depthwise_conv2d_s8_get_buffer_size. */
int32_t te_arm_depthwise_conv2d_7x7s2_s8_get_buffer_size(
    const te_conv_params* p);

/**
 * = te_depthwise_conv2d_s8 along one axis (depth_multiplier 1): either
 * kernel_w == input_w == output_w == 1 (a kx1 kernel over the H axis, the
 * "line") or kernel_h == input_h == output_h == 1 (1xk over W); any kernel
 * length, stride, dilation and padding along the line.  Also =
 * te_depthwise_conv2d_inplace_s8 when output == input (same in-place
 * contract).  Notation: k, stride, dilation and pad are kernel_h, stride_h,
 * dilation_h and pad_top along H, else kernel_w, stride_w, dilation_w and
 * pad_left.
 * @param p       as for te_depthwise_conv2d_s8, except output_offset, which
 *                is 0 when the generator folded it into the rounding terms.
 * @param input   [batch, input_h, input_w, input_c].
 * @param packed  ceil(input_c / 4) records of 64 + 8 * k bytes, record g
 *                for channels c = 4g .. 4g+3 (channels past input_c are
 *                padding: zero bias and taps, requantization record
 *                {-2^31, 1, 1}):
 *                  int32 bias[c] + input_offset * sum(taps of c), 4 channels;
 *                  int16 per tap t: w[t][4g], w[t][4g+2], w[t][4g+1],
 *                        w[t][4g+3] (the filter's tap t of each channel);
 *                  int32 {m2, rounding, rs} of each of the 4 channels.
 * @param output  [batch, output_h, output_w, input_c], or input itself.
 * @param scratch te_arm_depthwise_conv1d_s8_get_buffer_size(p) bytes.
 */
void te_arm_depthwise_conv1d_s8(const te_conv_params* p, const int8_t* input,
                                const int8_t* packed, int8_t* output,
                                void* scratch);

/**
 * Scratch of te_arm_depthwise_conv1d_s8: four channels of the padded line
 * widened to int16, 8 * span bytes with span = (output_len - 1) * stride +
 * (k - 1) * dilation + 1 (output_len is output_h along H, else output_w).
 */
int32_t te_arm_depthwise_conv1d_s8_get_buffer_size(const te_conv_params* p);

/**
 * = te_depthwise_conv2d_s16 along one axis (the shapes of
 * te_arm_depthwise_conv1d_s8) with input_offset == 0 and fewer than 512
 * taps (so that the k products of an output sum exactly in 32 bits).
 * @param p       as for te_depthwise_conv2d_s16.
 * @param input   [batch, input_h, input_w, input_c] int16.
 * @param packed  ceil(input_c / 2) records of 4 * k + 32 bytes, record g for
 *                channels c = 2g, 2g+1 (a channel past input_c is padding:
 *                zero taps):
 *                  int16 per tap t: w[t][2g], w[t][2g+1];
 *                  per channel: int64 bias, int32 reduced multiplier, int32
 *                        total shift (the 16x8 record's tail, below at
 *                        te_arm_conv2d_s16).
 * @param output  [batch, output_h, output_w, input_c] int16.
 * @param scratch te_arm_depthwise_conv1d_s16_get_buffer_size(p) bytes.
 */
void te_arm_depthwise_conv1d_s16(const te_conv_params* p, const int16_t* input,
                                 const int8_t* packed, int16_t* output,
                                 void* scratch);

/**
 * Scratch of te_arm_depthwise_conv1d_s16: two channels of the padded line,
 * 4 * span bytes (span as for te_arm_depthwise_conv1d_s8).
 */
int32_t te_arm_depthwise_conv1d_s16_get_buffer_size(const te_conv_params* p);

/**
 * = te_fully_connected_s8 for symmetric weights (filter_offset == 0).
 * Needs no scratch.
 * @param p       as for te_fully_connected_s8.
 * @param input   [batch, input_depth].
 * @param packed  ceil(output_depth / 4) blocks of 64 + 4 * k4 bytes,
 *                k4 = round_up4(input_depth); block j covers output rows
 *                r = 4j .. 4j+3 (rows past output_depth are padding: zero
 *                bias and weights, requantization record {-2^31, 1, 1}):
 *                  int32 bias[r] + input_offset * sum(filter[r]), 4 rows;
 *                  int8  for each group g of four inputs (k = 4g .. 4g+3),
 *                        for each of the 4 rows: filter[r][k .. k+3] (zero
 *                        past input_depth);
 *                  int32 {m2, rounding, rs} of each of the 4 rows.
 * @param output  [batch, output_depth].
 */
void te_arm_fully_connected_s8(const te_fc_params* p, const int8_t* input,
                               const int8_t* packed, int8_t* output);

/*
 * 16x8 record.  The optimized 16x8 kernels (int16 activations, int8
 * weights) accumulate in 64 bits like te_conv2d_s16 (SMLALD on weights
 * widened to int16: exact for any layer size) and rescale with TFLite's
 * 64-bit arithmetic from two precomputed int32 values per output channel:
 *   reduced     = multiplier < 0x7FFF0000 ? (multiplier + 2^15) >> 16
 *                                        : 0x7FFF;
 *   total_shift = 15 - shift (the generator keeps the portable kernel
 *                 unless 1 <= total_shift <= 62);
 *   output = clamp(((acc + bias) * reduced + 2^(total_shift - 1))
 *                  >> total_shift) + output_offset, act_min, act_max).
 * One record per output channel o, with k2 = K rounded up to even:
 *   int16 w[k2]: filter[o] (flattened, K values) widened, then a 0 if K is
 *                odd;
 *   int64 bias[o] (0 without bias); int32 reduced; int32 total_shift.
 * Records are 2 * k2 + 16 bytes.
 */

/**
 * = te_conv2d_s16 for an input zero point of 0 (input_offset == 0); any
 * kernel, stride, dilation and padding.
 * @param p       as for te_conv2d_s16.
 * @param input   [batch, input_h, input_w, input_c] int16.
 * @param packed  output_c 16x8 records (above), K = kernel_h * kernel_w *
 *                input_c in OHWI order.
 * @param output  [batch, output_h, output_w, output_c] int16.
 * @param scratch te_arm_conv2d_s16_get_buffer_size(p) bytes.
 */
void te_arm_conv2d_s16(const te_conv_params* p, const int16_t* input,
                       const int8_t* packed, int16_t* output, void* scratch);

/**
 * Scratch of te_arm_conv2d_s16: one int16 input column, 2 * k2 bytes with
 * k2 = kernel_h * kernel_w * input_c rounded up to even.
 */
int32_t te_arm_conv2d_s16_get_buffer_size(const te_conv_params* p);

/**
 * = te_fully_connected_s16 for input_offset == 0 and filter_offset == 0.
 * Needs no scratch.
 * @param p       as for te_fully_connected_s16.
 * @param input   [batch, input_depth] int16.
 * @param packed  output_depth 16x8 records (above), K = input_depth.
 * @param output  [batch, output_depth] int16.
 */
void te_arm_fully_connected_s16(const te_fc_params* p, const int16_t* input,
                                const int8_t* packed, int16_t* output);

/**
 * = te_transpose_conv2d_s16 for input_offset == 0.
 * @param p       as for te_transpose_conv2d_s16.
 * @param input   [batch, input_h, input_w, input_c] int16.
 * @param packed  for each filter tap (ky, kx) in row-major order, for each
 *                output channel o: int16 filter[o][ky][kx][0 .. input_c-1]
 *                widened, zero-padded to an even count k2; then per output
 *                channel the 16x8 record's tail: int64 bias, int32 reduced
 *                multiplier, int32 total shift.
 * @param output  [batch, output_h, output_w, output_c] int16.
 * @param scratch te_arm_transpose_conv2d_s16_get_buffer_size(p) bytes.
 */
void te_arm_transpose_conv2d_s16(const te_conv_params* p,
                                 const int16_t* input, const int8_t* packed,
                                 int16_t* output, void* scratch);

/**
 * Scratch of te_arm_transpose_conv2d_s16: the int64 sums of one batch,
 * 8 * output_h * output_w * output_c bytes.
 */
int32_t te_arm_transpose_conv2d_s16_get_buffer_size(const te_conv_params* p);

/**
 * = te_lstm_s8 (same state, same scratch) with the gate projections on
 * packed weights.
 * @param p      as for te_lstm_s8.
 * @param input  as for te_lstm_s8.
 * @param table  [256] sigmoid_table_s16().
 * @param packed the 4 * units gate rows (row g * units + r: gate g, unit r)
 *               of the input projection in blocks of four rows, then those
 *               of the recurrent projection; a block of rows of depth d
 *               (input_size, then units) is 16 + 4 * round_up4(d) bytes:
 *                 int32 per row: its sums' initial value, bias[row] -
 *                       input_zero_point * sum(input_weights[row]) for the
 *                       input projection, -hidden_zero_point *
 *                       sum(recurrent_weights[row]) for the recurrent one;
 *                 int8  for each group of four inputs (k = 4i .. 4i+3), for
 *                       each of the 4 rows: weights[row][k .. k+3] (zero
 *                       past d).
 * @param state  te_arm_lstm_s8_get_state_size(p) bytes, te_lstm_s8's layout;
 *               set by te_arm_lstm_s8_reset_state().
 * @param output as for te_lstm_s8.
 * @param scratch te_arm_lstm_s8_get_buffer_size(p) bytes.
 */
void te_arm_lstm_s8(const te_lstm_params* p, const int8_t* input,
                    const uint16_t* table, const int8_t* packed, void* state,
                    int8_t* output, void* scratch);

/** Scratch of te_arm_lstm_s8: the four int16 gates of one step, 8 * units bytes. */
int32_t te_arm_lstm_s8_get_buffer_size(const te_lstm_params* p);

/** Persistent state of te_arm_lstm_s8: = te_lstm_s8_get_state_size. */
int32_t te_arm_lstm_s8_get_state_size(const te_lstm_params* p);

/** = te_lstm_s8_reset_state. */
void te_arm_lstm_s8_reset_state(const te_lstm_params* p, void* state);

/**
 * = te_lstm_s16 (same state, same scratch) for zero points 0, with the gate
 * rows widened to int16.
 * @param p      as for te_lstm_s16 (input and hidden zero points 0).
 * @param input  as for te_lstm_s16.
 * @param table  [256] sigmoid_table_s16().
 * @param packed int16 input_weights as [4 * units, round_up2(input_size)]
 *               (row g * units + r: gate g, unit r; zero-padded), then
 *               recurrent_weights as [4 * units, round_up2(units)], then
 *               int64 bias [4 * units].
 * @param state  te_arm_lstm_s16_get_state_size(p) bytes, te_lstm_s16's
 *               layout; set by te_arm_lstm_s16_reset_state().
 * @param output as for te_lstm_s16.
 * @param scratch te_arm_lstm_s16_get_buffer_size(p) bytes.
 */
void te_arm_lstm_s16(const te_lstm_params* p, const int16_t* input,
                     const uint16_t* table, const int8_t* packed, void* state,
                     int16_t* output, void* scratch);

/** Scratch of te_arm_lstm_s16: the four int16 gates of one step, 8 * units bytes. */
int32_t te_arm_lstm_s16_get_buffer_size(const te_lstm_params* p);

/** Persistent state of te_arm_lstm_s16: = te_lstm_s16_get_state_size. */
int32_t te_arm_lstm_s16_get_state_size(const te_lstm_params* p);

/** = te_lstm_s16_reset_state. */
void te_arm_lstm_s16_reset_state(const te_lstm_params* p, void* state);

/**
 * = te_transpose_conv2d_s8.
 * @param p       as for te_transpose_conv2d_s8.
 * @param input   [batch, input_h, input_w, input_c] int8.
 * @param packed  for each filter tap (ky, kx) in row-major order, the
 *                output channels in blocks of four (channels past output_c
 *                are padding: zero weights), a block of 16 + 4 *
 *                round_up4(input_c) bytes:
 *                  int32 per channel o: input_offset * sum(filter[o][ky][kx]);
 *                  int8  for each group of four input channels (k = 4i ..
 *                        4i+3), for each of the 4 output channels:
 *                        filter[o][ky][kx][k .. k+3] (zero past input_c);
 *                then per output channel: int32 bias (0 without bias),
 *                multiplier, shift.
 * @param output  [batch, output_h, output_w, output_c] int8.
 * @param scratch te_arm_transpose_conv2d_s8_get_buffer_size(p) bytes.
 */
void te_arm_transpose_conv2d_s8(const te_conv_params* p, const int8_t* input,
                                const int8_t* packed, int8_t* output,
                                void* scratch);

/**
 * Scratch of te_arm_transpose_conv2d_s8: the int32 sums of one batch with the
 * channels rounded up to four, 4 * output_h * output_w * round_up4(output_c)
 * bytes.
 */
int32_t te_arm_transpose_conv2d_s8_get_buffer_size(const te_conv_params* p);

/**
 * = te_batch_matmul_s8 (any strides: adj_x, adj_y, broadcast batches).
 * @param p       as for te_batch_matmul_s8.
 * @param lhs     left operand.
 * @param rhs     right operand.
 * @param output  [batch_dims..., rows, cols].
 * @param scratch te_arm_batch_matmul_s8_get_buffer_size(p) bytes.
 */
void te_arm_batch_matmul_s8(const te_batch_matmul_params* p,
                            const int8_t* lhs, const int8_t* rhs,
                            int8_t* output, void* scratch);

/**
 * Scratch of te_arm_batch_matmul_s8: the right operand's columns and one left
 * row of a batch as int16 with their offsets added, 2 * (cols + 1) * k2 bytes
 * with k2 = depth rounded up to even.
 */
int32_t te_arm_batch_matmul_s8_get_buffer_size(
    const te_batch_matmul_params* p);

/**
 * = te_svdf_s8 (int16 state) with packed weights.
 * @param p       as for te_svdf_s8.
 * @param input   [batch, input_size] int8.
 * @param bias    [num_filters / rank] int32.
 * @param packed  the feature weights' rows (filters) in blocks of four
 *                (rows past num_filters are padding: zero), a block of 16 +
 *                4 * round_up4(input_size) bytes:
 *                  int32 per row f: -input_zero_point * sum(weights_feature[f]);
 *                  int8  for each group of four inputs (k = 4i .. 4i+3), for
 *                        each of the 4 rows: weights_feature[f][k .. k+3]
 *                        (zero past input_size);
 *                then per filter f, 4 + 2 * round_up2(memory_size) bytes:
 *                  int32 -state_zero_point * sum(weights_time[f]);
 *                  int16 weights_time[f], zero-padded to an even count.
 * @param state   te_arm_svdf_s8_get_state_size(p) bytes, te_svdf_s8's.
 * @param output  [batch, num_filters / rank] int8.
 * @param scratch te_arm_svdf_s8_get_buffer_size(p) bytes.
 */
void te_arm_svdf_s8(const te_svdf_params* p, const int8_t* input,
                    const int32_t* bias, const int8_t* packed, int16_t* state,
                    int8_t* output, void* scratch);

/** Scratch of te_arm_svdf_s8: = te_svdf_s8_get_buffer_size. */
int32_t te_arm_svdf_s8_get_buffer_size(const te_svdf_params* p);

/** Persistent state of te_arm_svdf_s8: = te_svdf_s8_get_state_size. */
int32_t te_arm_svdf_s8_get_state_size(const te_svdf_params* p);

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
 * = te_add_s8.  Needs no scratch.
 * @param p      broadcast geometry and output rescaling.
 * @param input1 first operand, read through p->input1_strides.
 * @param input2 second operand, read through p->input2_strides.
 * @param table1 int32 [256]: input 1's rescaled value per raw int8 x, at
 *               index (uint8_t)x: MultiplyByQuantizedMultiplier((x +
 *               input1_offset) << left_shift, input1_multiplier,
 *               input1_shift) (TFLM's arithmetic, computed at code
 *               generation).
 * @param table2 the same for input 2.
 * @param output [dims]; may alias input1 or input2 when that input has the
 *               output's shape.
 */
void te_arm_add_s8(const te_arm_add_params* p, const int8_t* input1,
                   const int8_t* input2, const int32_t* table1,
                   const int32_t* table2, int8_t* output);

/* ======================================================================== */
/* Training: backward and update kernels (src/kernels/te_training.cc)        */
/* ======================================================================== */
/*
 * The numerical core of on-device training in the style of MCUNetV3's Tiny
 * Training Engine (Lin et al., "On-Device Training Under 256KB Memory",
 * NeurIPS 2022): the forward pass stays the int8 graph above; these kernels
 * compute its gradients and update its int8 weights and int32 biases in
 * place.  No @op tag: no inference lowering emits them.
 *
 * Gradient format: float32, for every gradient tensor.  Why not int32:
 *  - a gradient's range moves by orders of magnitude between layers and
 *    during training; a fixed-point format would need a scale per tensor
 *    re-estimated at run time (an extra pass over the tensor and a way to
 *    lose the small gradients that matter late in training);
 *  - with the sparse update of MCUNetV3 the gradient tensors are small (the
 *    last layers' activations, biases and a few weight tensors), so 4 bytes
 *    per element costs little arena, while the int8 forward activations the
 *    backward pass reads stay int8;
 *  - the target cores (Cortex-M4F/M7) have a single-precision FPU: a float
 *    multiply-accumulate is one instruction, slower than the forward's int8
 *    SIMD but free of the per-tensor rescaling an integer format adds, and
 *    the backward kernels run only on the few layers a sparse update trains
 *    (the Tiny Training Engine keeps such gradients in float too).
 *  Only single precision is used (the M4's FPU has no double), and no libm
 *  beyond expf and logf (softmax cross-entropy).
 *
 * Conventions (in addition to the ones at the top of this file)
 *  - The name's suffix is the type of the quantized tensor the kernel reads
 *    or writes (_s8: int8 activations or weights, _s32: int32 bias, _f32:
 *    float only).
 *  - An activation gradient ("grad_output" dY, "grad_input" dX) is the
 *    derivative of the loss with respect to the REAL value of the activation,
 *    r = scale * (q - zero_point).  Requantization rounding is treated as the
 *    identity (straight-through); a fused activation's clamp is not: mask dY
 *    with te_activation_grad_s8 before calling a layer's gradient kernels.
 *  - A parameter gradient ("grad_filter", "grad_bias") is the derivative of
 *    the loss with respect to the STORED INTEGER parameter, as a real
 *    number: for a weight w of scale s_w (real value s_w * w) it is
 *    s_w * dL/dW_real; for an int32 bias of scale s_x * s_w it is
 *    s_x * s_w * dL/db_real.  te_qas_sgd_s8/_s32 turn it into an update.
 *  - Weights are symmetric int8 (zero point 0) with one float scale per
 *    output channel ("filter_scale"; repeat the value for per-tensor
 *    quantization).
 *  - "accumulate" fields: 0 overwrites the gradient outputs, 1 adds to them
 *    (gradient accumulation over calls, or the sum of the two gradients
 *    reaching a residual connection's input).
 *  - Gradient outputs are float32 buffers, 4-byte aligned; none of these
 *    kernels needs scratch.
 */

/** Shape and input quantization of a fully connected layer's gradients. */
typedef struct {
  int32_t batch;        /**< Rows of the input. */
  int32_t input_depth;  /**< Input features per row. */
  int32_t output_depth; /**< Output features per row. */
  int32_t input_offset; /**< -input_zero_point (weight gradient only). */
  float input_scale;    /**< Scale of the int8 input (weight gradient only). */
  int32_t accumulate;   /**< 0: write the outputs; 1: add to them. */
} te_fc_grad_params;

/**
 * Input gradient of a fully connected layer: dX = dY * W_real, with
 * W_real[o][i] = filter_scale[o] * filter[o][i].
 * @param p           shape (input quantization unused).
 * @param grad_output [batch, output_depth] float dY.
 * @param filter      [output_depth, input_depth] int8, symmetric.
 * @param filter_scale [output_depth] float scales of the filter.
 * @param grad_input  [batch, input_depth] float dX.
 */
void te_fully_connected_grad_input_s8(const te_fc_grad_params* p,
                                      const float* grad_output,
                                      const int8_t* filter,
                                      const float* filter_scale,
                                      float* grad_input);

/**
 * Parameter gradients of a fully connected layer, with respect to the
 * stored integers (see the section's conventions):
 *   grad_filter[o][i] = filter_scale[o] * input_scale *
 *                       sum_b dY[b][o] * (input[b][i] + input_offset)
 *   grad_bias[o]      = filter_scale[o] * input_scale * sum_b dY[b][o]
 * @param p            shape, input quantization and accumulate.
 * @param grad_output  [batch, output_depth] float dY.
 * @param input        [batch, input_depth] int8: the forward input.
 * @param filter_scale [output_depth] float scales of the filter.
 * @param grad_filter  [output_depth, input_depth] float, or NULL (a layer
 *                     whose weights are frozen: bias-only update).
 * @param grad_bias    [output_depth] float, or NULL.
 */
void te_fully_connected_grad_weights_s8(const te_fc_grad_params* p,
                                        const float* grad_output,
                                        const int8_t* input,
                                        const float* filter_scale,
                                        float* grad_filter, float* grad_bias);

/** Geometry and input quantization of a convolution's gradients (the
 *  fields mean what they mean in te_conv_params). */
typedef struct {
  int32_t batch;        /**< N of input and output. */
  int32_t input_h;      /**< Input height. */
  int32_t input_w;      /**< Input width. */
  int32_t input_c;      /**< Input channels. */
  int32_t output_h;     /**< Output height. */
  int32_t output_w;     /**< Output width. */
  int32_t output_c;     /**< Output channels (= input_c for depthwise). */
  int32_t kernel_h;     /**< Filter height. */
  int32_t kernel_w;     /**< Filter width. */
  int32_t stride_h;     /**< Vertical stride. */
  int32_t stride_w;     /**< Horizontal stride. */
  int32_t dilation_h;   /**< Vertical dilation (1 = dense). */
  int32_t dilation_w;   /**< Horizontal dilation (1 = dense). */
  int32_t pad_top;      /**< Implicit zero-point rows above the input. */
  int32_t pad_left;     /**< Implicit zero-point columns left of it. */
  int32_t input_offset; /**< -input_zero_point (weight gradient only). */
  float input_scale;    /**< Scale of the int8 input (weight gradient only). */
  int32_t accumulate;   /**< 0: write the outputs; 1: add to them. */
} te_conv_grad_params;

/**
 * Input gradient of a regular convolution: every output pixel's dY, times
 * the real filter, goes back to the input pixels its window read; padding
 * receives nothing.  Any stride, padding and dilation.
 * @param p            geometry (input quantization unused).
 * @param grad_output  [batch, output_h, output_w, output_c] float dY.
 * @param filter       [output_c, kernel_h, kernel_w, input_c] int8 (OHWI),
 *                     symmetric.
 * @param filter_scale [output_c] float scales of the filter.
 * @param grad_input   [batch, input_h, input_w, input_c] float dX.
 */
void te_conv2d_grad_input_s8(const te_conv_grad_params* p,
                             const float* grad_output, const int8_t* filter,
                             const float* filter_scale, float* grad_input);

/**
 * Parameter gradients of a regular convolution, with respect to the stored
 * integers (see the section's conventions):
 *   grad_filter[oc][ky][kx][ic] = filter_scale[oc] * input_scale *
 *       sum_{b,oy,ox} dY[b][oy][ox][oc] * (x[b][iy][ix][ic] + input_offset)
 *   (iy = oy * stride_h - pad_top + ky * dilation_h, likewise ix; padded
 *   positions hold the zero point and contribute nothing)
 *   grad_bias[oc] = filter_scale[oc] * input_scale * sum_{b,oy,ox} dY[...][oc]
 * @param p            geometry, input quantization and accumulate.
 * @param grad_output  [batch, output_h, output_w, output_c] float dY.
 * @param input        [batch, input_h, input_w, input_c] int8: the forward
 *                     input.
 * @param filter_scale [output_c] float scales of the filter.
 * @param grad_filter  [output_c, kernel_h, kernel_w, input_c] float, or NULL.
 * @param grad_bias    [output_c] float, or NULL.
 */
void te_conv2d_grad_weights_s8(const te_conv_grad_params* p,
                               const float* grad_output, const int8_t* input,
                               const float* filter_scale, float* grad_filter,
                               float* grad_bias);

/**
 * Input gradient of a depthwise convolution with depth multiplier 1
 * (output_c == input_c); any stride, padding and dilation.
 * @param p            geometry (input quantization unused).
 * @param grad_output  [batch, output_h, output_w, input_c] float dY.
 * @param filter       [1, kernel_h, kernel_w, input_c] int8, symmetric.
 * @param filter_scale [input_c] float scales of the filter.
 * @param grad_input   [batch, input_h, input_w, input_c] float dX.
 */
void te_depthwise_conv2d_grad_input_s8(const te_conv_grad_params* p,
                                       const float* grad_output,
                                       const int8_t* filter,
                                       const float* filter_scale,
                                       float* grad_input);

/**
 * Parameter gradients of a depthwise convolution (depth multiplier 1), as
 * te_conv2d_grad_weights_s8 with channel c reading input channel c only.
 * @param p            geometry, input quantization and accumulate.
 * @param grad_output  [batch, output_h, output_w, input_c] float dY.
 * @param input        [batch, input_h, input_w, input_c] int8: the forward
 *                     input.
 * @param filter_scale [input_c] float scales of the filter.
 * @param grad_filter  [1, kernel_h, kernel_w, input_c] float, or NULL.
 * @param grad_bias    [input_c] float, or NULL.
 */
void te_depthwise_conv2d_grad_weights_s8(const te_conv_grad_params* p,
                                         const float* grad_output,
                                         const int8_t* input,
                                         const float* filter_scale,
                                         float* grad_filter, float* grad_bias);

/**
 * Input gradient of te_avg_pool_s8: each window's dY, divided by the
 * window's in-bounds count (the forward's divisor), to each of its
 * in-bounds inputs.  The forward's rounding is straight-through.
 * @param p           the forward's geometry (act_min/act_max unused).
 * @param grad_output [batch, output_h, output_w, channels] float dY.
 * @param grad_input  [batch, input_h, input_w, channels] float dX.
 */
void te_avg_pool_grad_f32(const te_pool_params* p, const float* grad_output,
                          float* grad_input);

/**
 * Input gradient of te_max_pool_s8: each window's dY goes to the input the
 * forward took, the first in-bounds element (row by row) holding the
 * window's largest raw int8 value, as TFLite's forward scan keeps it.
 * @param p           the forward's geometry (act_min/act_max unused: mask
 *                    dY with te_activation_grad_s8 for a fused clamp).
 * @param input       [batch, input_h, input_w, channels] int8: the forward
 *                    input.
 * @param grad_output [batch, output_h, output_w, channels] float dY.
 * @param grad_input  [batch, input_h, input_w, channels] float dX.
 */
void te_max_pool_grad_s8(const te_pool_params* p, const int8_t* input,
                         const float* grad_output, float* grad_input);

/**
 * Input gradient of te_mean_s8 (a global average pooling is MEAN over H and
 * W: outer = batch, reduced = H * W, inner = channels): dX[o][r][i] =
 * dY[o][i] / reduced.
 * @param p           the forward's [outer, reduced, inner] view
 *                    (quantization fields unused).
 * @param grad_output [outer, inner] float dY.
 * @param grad_input  [outer, reduced, inner] float dX.
 */
void te_mean_grad_f32(const te_mean_params* p, const float* grad_output,
                      float* grad_input);

/** The clamp of a fused or standalone ReLU/ReLU6 (or of int8 saturation). */
typedef struct {
  int32_t size;    /**< Elements. */
  int32_t act_min; /**< The forward's lower clamp: the output zero point for
                        ReLU and ReLU6 (-128 when none). */
  int32_t act_max; /**< The forward's upper clamp: min(127, zero_point +
                        round(6 / scale)) for ReLU6 (127 when none). */
} te_activation_grad_params;

/**
 * Activation gradient from the int8 forward output: dX = dY where
 * act_min < output < act_max, else 0 (a clamped output, including one
 * exactly at zero for ReLU, passes no gradient, as PyTorch's ReLU and
 * Hardtanh backward do).
 * @param p           size and the forward clamp.
 * @param output      [size] int8: the forward output.
 * @param grad_output [size] float dY.
 * @param grad_input  [size] float dX; may be grad_output (in place).
 */
void te_activation_grad_s8(const te_activation_grad_params* p,
                           const int8_t* output, const float* grad_output,
                           float* grad_input);

/** Shape and scale of the logits of a softmax cross-entropy loss (their
 *  zero point cancels: only differences of logits enter). */
typedef struct {
  int32_t batch;     /**< Rows. */
  int32_t classes;   /**< Logits per row. */
  float input_scale; /**< Scale of the int8 logits. */
} te_softmax_ce_params;

/**
 * Softmax cross-entropy, averaged over the batch, and its gradient with
 * respect to the real logits z = input_scale * (logits - zero_point):
 *   loss = mean_b (log sum_k exp(z[b][k]) - z[b][label[b]])
 *   grad[b][k] = (softmax(z[b])[k] - (k == label[b])) / batch
 * @param p     shape and quantization of the logits.
 * @param logits [batch, classes] int8.
 * @param label [batch] int32 class indices, each in [0, classes).
 * @param grad  [batch, classes] float dL/dz.
 * @param loss  [1] float: the mean loss.
 */
void te_softmax_cross_entropy_s8(const te_softmax_ce_params* p,
                                 const int8_t* logits, const int32_t* label,
                                 float* grad, float* loss);

/**
 * SGD with quantization-aware scaling (QAS, MCUNetV3 section 2.2).  For a
 * parameter p stored as the integer P = p / s, dL/dP = s * dL/dp, so the
 * ratio of weight to gradient norms is off by s^2 compared with float
 * training; QAS divides the integer gradient by s^2, which makes the
 * integer update exactly float SGD on the real parameter:
 *   step   = grad / s^2               (+ momentum: v = momentum * v + step;
 *                                      step = v)
 *   P_new  = saturate(P + round(-learning_rate * step))
 * so s * (P_new - P) = -learning_rate * dL/dp up to the rounding.
 * round() is half away from zero and applies to the increment, so ties do
 * not depend on P; saturate() clamps to the stored type.  A NaN increment
 * leaves the parameter unchanged; +-inf saturates.
 * Layout: the parameter is [size / (channels * inner), channels, inner]
 * and channel c uses scale[c]: OHWI filters are channels = output_c,
 * inner = kernel_h * kernel_w * input_c; depthwise filters and biases are
 * channels = C, inner = 1; per-tensor scales are channels = 1, inner = size.
 */
typedef struct {
  int32_t size;          /**< Elements of the parameter. */
  int32_t channels;      /**< Entries of scale (see the layout above). */
  int32_t inner;         /**< Consecutive elements sharing one scale entry;
                              size must be a multiple of channels * inner. */
  float learning_rate;   /**< Step size on the real parameter. */
  float momentum;        /**< Momentum coefficient (read only when a
                              velocity buffer is given). */
  float input_scale;     /**< te_qas_sgd_s32 only: the layer's input scale
                              (bias scale = input_scale * scale[c]). */
} te_qas_sgd_params;

/**
 * QAS SGD step of int8 weights, in place.
 * @param p        layout and hyper-parameters.
 * @param weights  [size] int8 (symmetric), updated in place.
 * @param grad     [size] float dL/dW_int (te_*_grad_weights_s8's
 *                 grad_filter).
 * @param scale    [channels] float weight scales (> 0).
 * @param velocity [size] float momentum buffer (zero it before the first
 *                 step), updated in place; NULL for plain SGD.
 */
void te_qas_sgd_s8(const te_qas_sgd_params* p, int8_t* weights,
                   const float* grad, const float* scale, float* velocity);

/**
 * QAS SGD step of an int32 bias, in place: as te_qas_sgd_s8 with the bias
 * scale input_scale * scale[c] and int32 saturation.
 * @param p        layout (channels = C, inner = 1) and hyper-parameters.
 * @param bias     [size] int32, updated in place.
 * @param grad     [size] float dL/db_int (te_*_grad_weights_s8's
 *                 grad_bias).
 * @param scale    [channels] float WEIGHT scales (> 0).
 * @param velocity [size] float momentum buffer, or NULL for plain SGD.
 */
void te_qas_sgd_s32(const te_qas_sgd_params* p, int32_t* bias,
                    const float* grad, const float* scale, float* velocity);

/** A fully connected layer's weight gradient fused with its QAS SGD update
 *  (te_fully_connected_sgd_s8; one sample, no momentum). */
typedef struct {
  int32_t batch;         /**< Rows of the input: must be 1. */
  int32_t input_depth;   /**< Input features. */
  int32_t output_depth;  /**< Filter rows updated: the first output_depth. */
  int32_t input_offset;  /**< -input_zero_point. */
  float input_scale;     /**< Scale of the int8 input. */
  float learning_rate;   /**< Step size on the real weights. */
} te_fc_sgd_params;

/** Scratch of te_fully_connected_sgd_s8: one filter row's gradient. */
int32_t te_fully_connected_sgd_s8_get_buffer_size(const te_fc_sgd_params* p);

/**
 * The weight update of a fully connected layer, one filter row at a time:
 * each row's gradient (te_fully_connected_grad_weights_s8) goes to scratch
 * and is applied at once (te_qas_sgd_s8), so the training arena holds one
 * row's gradient instead of the whole filter's (the Tiny Training Engine's
 * "apply and free" at row granularity).  The result equals the two kernels
 * called on the whole filter.  Momentum needs every row's velocity kept
 * anyway, so it is not offered here.
 * @param p            shape, input quantization, learning rate.
 * @param filter       [output_depth(all), input_depth] int8, rows
 *                     0..p->output_depth-1 updated in place.
 * @param grad_output  [output_depth(all)] float dY of the one sample.
 * @param input        [input_depth] int8: the forward input.
 * @param filter_scale [output_depth(all)] float scales of the filter.
 * @param scratch      te_fully_connected_sgd_s8_get_buffer_size() bytes,
 *                     4-byte aligned (one row's float gradient).
 */
void te_fully_connected_sgd_s8(const te_fc_sgd_params* p, int8_t* filter,
                               const float* grad_output, const int8_t* input,
                               const float* filter_scale, void* scratch);

/** A convolution's weight gradient fused with its QAS SGD update
 *  (te_conv2d_sgd_s8; no momentum). */
typedef struct {
  int32_t batch;         /**< N of input and output. */
  int32_t input_h;       /**< Input height. */
  int32_t input_w;       /**< Input width. */
  int32_t input_c;       /**< Input channels. */
  int32_t output_h;      /**< Output height. */
  int32_t output_w;      /**< Output width. */
  int32_t output_c;      /**< Output channels: the row length of dY. */
  int32_t kernel_h;      /**< Filter height. */
  int32_t kernel_w;      /**< Filter width. */
  int32_t stride_h;      /**< Vertical stride. */
  int32_t stride_w;      /**< Horizontal stride. */
  int32_t dilation_h;    /**< Vertical dilation (1 = dense). */
  int32_t dilation_w;    /**< Horizontal dilation (1 = dense). */
  int32_t pad_top;       /**< Implicit zero-point rows above the input. */
  int32_t pad_left;      /**< Implicit zero-point columns left of it. */
  int32_t input_offset;  /**< -input_zero_point. */
  float input_scale;     /**< Scale of the int8 input. */
  float learning_rate;   /**< Step size on the real weights. */
  int32_t channels;      /**< Filters updated: the first channels of output_c. */
} te_conv_sgd_params;

/** Scratch of te_conv2d_sgd_s8: one filter's gradient
 *  (kernel_h * kernel_w * input_c floats). */
int32_t te_conv2d_sgd_s8_get_buffer_size(const te_conv_sgd_params* p);

/**
 * The weight update of a convolution, one output channel's filter at a
 * time: its gradient (as te_conv2d_grad_weights_s8 computes it) goes to
 * scratch and is applied at once (as te_qas_sgd_s8), so the training arena
 * holds one filter's gradient instead of all output_c of them.  Each
 * element's gradient is summed over the pixels in the same order as the
 * two-kernel path, so the result equals it exactly.  Momentum needs every
 * filter's velocity kept anyway, so it is not offered here.
 * @param p            geometry, input quantization, learning rate.
 * @param filter       [output_c, kernel_h, kernel_w, input_c] int8, filters
 *                     0..p->channels-1 updated in place.
 * @param grad_output  [batch, output_h, output_w, output_c] float dY.
 * @param input        [batch, input_h, input_w, input_c] int8: the forward
 *                     input.
 * @param filter_scale [output_c] float scales of the filter.
 * @param scratch      te_conv2d_sgd_s8_get_buffer_size() bytes, 4-byte
 *                     aligned (one filter's float gradient).
 */
void te_conv2d_sgd_s8(const te_conv_sgd_params* p, int8_t* filter,
                      const float* grad_output, const int8_t* input,
                      const float* filter_scale, void* scratch);

#ifdef __cplusplus
}  /* extern "C" */
#endif

#endif /* TINYENGINE_KERNELS_H_ */
