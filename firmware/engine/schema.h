/*
 * The facts of TFLite's schema (tensorflow/compiler/mlir/lite/schema/
 * schema.fbs, schema version 3) the engine relies on: BuiltinOperator codes,
 * BuiltinOptions union types and the field slots (vtable indices) of the
 * tables it reads. Written by hand, so tests/test_engine_schema.py checks
 * every value here against the schema as the tflite-micro package ships it
 * (its generated Python reader), without the network.
 */
#ifndef HIL_ENGINE_SCHEMA_H
#define HIL_ENGINE_SCHEMA_H

#define ENG_SCHEMA_VERSION 3u

/* BuiltinOperator codes the engine runs (and CUSTOM, to name it). */
enum {
    ENG_OP_ADD = 0,
    ENG_OP_AVERAGE_POOL_2D = 1,
    ENG_OP_CONCATENATION = 2,
    ENG_OP_CONV_2D = 3,
    ENG_OP_DEPTHWISE_CONV_2D = 4,
    ENG_OP_DEQUANTIZE = 6,
    ENG_OP_FULLY_CONNECTED = 9,
    ENG_OP_LOGISTIC = 14,
    ENG_OP_MAX_POOL_2D = 17,
    ENG_OP_MUL = 18,
    ENG_OP_RELU = 19,
    ENG_OP_RELU6 = 21,
    ENG_OP_RESHAPE = 22,
    ENG_OP_SOFTMAX = 25,
    ENG_OP_TANH = 28,
    ENG_OP_CUSTOM = 32,
    ENG_OP_PAD = 34,
    ENG_OP_TRANSPOSE = 39,
    ENG_OP_MEAN = 40,
    ENG_OP_SUB = 41,
    ENG_OP_STRIDED_SLICE = 45,
    ENG_OP_SPLIT = 49,
    ENG_OP_PADV2 = 60,
    ENG_OP_SHAPE = 77,
    ENG_OP_PACK = 83,
    ENG_OP_UNPACK = 88,
    ENG_OP_SPLIT_V = 102,
    ENG_OP_QUANTIZE = 114,
    ENG_OP_HARD_SWISH = 117,
    ENG_OP_CALL_ONCE = 129,
    ENG_OP_VAR_HANDLE = 142,
    ENG_OP_READ_VARIABLE = 143,
    ENG_OP_ASSIGN_VARIABLE = 144
};

/* BuiltinOptions union types the kernels read. */
enum {
    ENG_OPT_CONV_2D = 1,
    ENG_OPT_DEPTHWISE_CONV_2D = 2,
    ENG_OPT_POOL_2D = 5,
    ENG_OPT_FULLY_CONNECTED = 8,
    ENG_OPT_SOFTMAX = 9,
    ENG_OPT_CONCATENATION = 10,
    ENG_OPT_ADD = 11,
    ENG_OPT_RESHAPE = 17,
    ENG_OPT_MUL = 21,
    ENG_OPT_REDUCER = 27,
    ENG_OPT_SUB = 28,
    ENG_OPT_STRIDED_SLICE = 32,
    ENG_OPT_SPLIT = 35,
    ENG_OPT_SHAPE = 55,
    ENG_OPT_PACK = 59,
    ENG_OPT_UNPACK = 64,
    ENG_OPT_SPLIT_V = 79,
    ENG_OPT_CALL_ONCE = 103,
    ENG_OPT_VAR_HANDLE = 111
};

/* Field slots of the tables the loader reads. */
enum { ENG_SLOT_MODEL_VERSION = 0, ENG_SLOT_MODEL_OPERATOR_CODES = 1,
       ENG_SLOT_MODEL_SUBGRAPHS = 2, ENG_SLOT_MODEL_BUFFERS = 4 };
enum { ENG_SLOT_OPCODE_DEPRECATED_BUILTIN_CODE = 0,
       ENG_SLOT_OPCODE_CUSTOM_CODE = 1, ENG_SLOT_OPCODE_BUILTIN_CODE = 3 };
enum { ENG_SLOT_SUBGRAPH_TENSORS = 0, ENG_SLOT_SUBGRAPH_INPUTS = 1,
       ENG_SLOT_SUBGRAPH_OUTPUTS = 2, ENG_SLOT_SUBGRAPH_OPERATORS = 3 };
enum { ENG_SLOT_TENSOR_SHAPE = 0, ENG_SLOT_TENSOR_TYPE = 1,
       ENG_SLOT_TENSOR_BUFFER = 2, ENG_SLOT_TENSOR_QUANTIZATION = 4,
       ENG_SLOT_TENSOR_IS_VARIABLE = 5, ENG_SLOT_TENSOR_SPARSITY = 6 };
enum { ENG_SLOT_QUANT_SCALE = 2, ENG_SLOT_QUANT_ZERO_POINT = 3,
       ENG_SLOT_QUANT_DETAILS_TYPE = 4,
       ENG_SLOT_QUANT_QUANTIZED_DIMENSION = 6 };
enum { ENG_SLOT_BUFFER_DATA = 0, ENG_SLOT_BUFFER_OFFSET = 1,
       ENG_SLOT_BUFFER_SIZE = 2 };
enum { ENG_SLOT_OPERATOR_OPCODE_INDEX = 0, ENG_SLOT_OPERATOR_INPUTS = 1,
       ENG_SLOT_OPERATOR_OUTPUTS = 2, ENG_SLOT_OPERATOR_BUILTIN_OPTIONS_TYPE = 3,
       ENG_SLOT_OPERATOR_BUILTIN_OPTIONS = 4 };
/* Options tables the engine itself reads (kernels read their own). */
enum { ENG_SLOT_CALLONCEOPTIONS_INIT_SUBGRAPH_INDEX = 0 };
enum { ENG_SLOT_VARHANDLEOPTIONS_CONTAINER = 0,
       ENG_SLOT_VARHANDLEOPTIONS_SHARED_NAME = 1 };

#endif
