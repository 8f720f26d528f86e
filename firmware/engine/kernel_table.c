/*
 * The kernels of the built-in engine by BuiltinOperator code. The loader
 * binds each operator to its entry once (eng_op.kernel), so an invoke
 * never searches this table.
 */
#include "engine_internal.h"

static const eng_kernel kernels[] = {
    {ENG_OP_ADD, eng_binary_prepare, eng_binary_eval},
    {ENG_OP_AVERAGE_POOL_2D, eng_pool_prepare, eng_avgpool_eval},
    {ENG_OP_CONCATENATION, eng_concat_prepare, eng_concat_eval},
    {ENG_OP_CONV_2D, eng_conv2d_prepare, eng_conv2d_eval},
    {ENG_OP_DEPTHWISE_CONV_2D, eng_dwconv2d_prepare, eng_dwconv2d_eval},
    {ENG_OP_DEQUANTIZE, eng_dequantize_prepare, eng_dequantize_eval},
    {ENG_OP_FULLY_CONNECTED, eng_fc_prepare, eng_fc_eval},
    {ENG_OP_LOGISTIC, eng_logistic_prepare, eng_logistic_eval},
    {ENG_OP_MAX_POOL_2D, eng_pool_prepare, eng_maxpool_eval},
    {ENG_OP_MUL, eng_binary_prepare, eng_binary_eval},
    {ENG_OP_RELU, eng_relu_prepare, eng_relu_eval},
    {ENG_OP_RELU6, eng_relu6_prepare, eng_relu6_eval},
    {ENG_OP_RESHAPE, eng_reshape_prepare, eng_reshape_eval},
    {ENG_OP_SOFTMAX, eng_softmax_prepare, eng_softmax_eval},
    {ENG_OP_TANH, eng_tanh_prepare, eng_tanh_eval},
    {ENG_OP_PAD, eng_pad_prepare, eng_pad_eval},
    {ENG_OP_TRANSPOSE, eng_transpose_prepare, eng_transpose_eval},
    {ENG_OP_MEAN, eng_mean_prepare, eng_mean_eval},
    {ENG_OP_SUB, eng_binary_prepare, eng_binary_eval},
    {ENG_OP_STRIDED_SLICE, eng_strided_slice_prepare, eng_strided_slice_eval},
    {ENG_OP_SPLIT, eng_split_prepare, eng_split_eval},
    {ENG_OP_PADV2, eng_pad_prepare, eng_pad_eval},
    {ENG_OP_SHAPE, eng_shape_prepare, eng_shape_eval},
    {ENG_OP_PACK, eng_pack_prepare, eng_pack_eval},
    {ENG_OP_UNPACK, eng_unpack_prepare, eng_unpack_eval},
    {ENG_OP_SPLIT_V, eng_split_prepare, eng_split_eval},
    {ENG_OP_QUANTIZE, eng_quantize_prepare, eng_quantize_eval},
    {ENG_OP_HARD_SWISH, eng_hard_swish_prepare, eng_hard_swish_eval},
    {ENG_OP_CALL_ONCE, eng_call_once_prepare, eng_call_once_eval},
    {ENG_OP_VAR_HANDLE, eng_var_handle_prepare, eng_var_handle_eval},
    {ENG_OP_READ_VARIABLE, eng_read_variable_prepare, eng_read_variable_eval},
    {ENG_OP_ASSIGN_VARIABLE, eng_assign_variable_prepare,
     eng_assign_variable_eval},
};

const eng_kernel *eng_find_kernel(int32_t builtin)
{
    size_t i;
    for (i = 0; i < sizeof kernels / sizeof kernels[0]; ++i)
        if (kernels[i].builtin == builtin)
            return &kernels[i];
    return NULL;
}
