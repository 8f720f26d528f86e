/*
 * The built-in engine: reads a .tflite flatbuffer in place and runs its
 * first subgraph (and the subgraphs it calls through CALL_ONCE) from a
 * caller-supplied, statically sized arena.
 *
 * No dynamic allocation. Every size read from the model is checked against
 * the model buffer and the fixed limits below before it is used, so a
 * truncated or hostile model gives an error, never a fault.
 *
 * Portable C99: compiles for the device and for the host (unit tests).
 */
#ifndef HIL_ENGINE_H
#define HIL_ENGINE_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

#ifndef ENG_MAX_TENSORS /* a platform file may shrink it (firmware.defines) */
#define ENG_MAX_TENSORS 512   /* all loaded subgraphs together */
#endif
#ifndef ENG_MAX_OPS
#define ENG_MAX_OPS 256       /* all loaded subgraphs together */
#endif
#ifndef ENG_MAX_IO
#define ENG_MAX_IO 8
#endif
#ifndef ENG_MAX_DIMS
#define ENG_MAX_DIMS 6
#endif
#ifndef ENG_MAX_OP_INPUTS
#define ENG_MAX_OP_INPUTS 16   /* per operator */
#endif
#ifndef ENG_MAX_OP_OUTPUTS
#define ENG_MAX_OP_OUTPUTS 16
#endif
#ifndef ENG_MAX_OP_IO
#define ENG_MAX_OP_IO 1536     /* inputs + outputs of all operators */
#endif
#ifndef ENG_MAX_SUBGRAPHS
#define ENG_MAX_SUBGRAPHS 8
#endif
#ifndef ENG_MAX_DIM_SIZE
/* Largest dimension, and largest element count of a tensor: far beyond
 * any MCU's memory, small enough that index products of a few of them
 * stay inside 64-bit and every single one inside int32 arithmetic. */
#define ENG_MAX_DIM_SIZE (1 << 28)
#endif
#ifndef ENG_MAX_VARIABLES
#define ENG_MAX_VARIABLES 16  /* resource variables (VAR_HANDLE) */
#endif

typedef enum {
    ENG_OK = 0,
    ENG_E_MODEL_INVALID = 1,   /* not a flatbuffer we can read, or bounds broken */
    ENG_E_UNSUPPORTED_OP = 2,  /* detail = builtin operator code               */
    ENG_E_UNSUPPORTED = 3,     /* a supported op with an unsupported variant    */
    ENG_E_ARENA_TOO_SMALL = 4, /* detail = bytes needed                         */
    ENG_E_LIMIT = 5,           /* a fixed ENG_MAX_* limit exceeded              */
    ENG_E_NO_MODEL = 6,
    ENG_E_BAD_INDEX = 7,
    ENG_E_INVOKE = 8           /* a kernel failed at run time; detail = op index */
} eng_status;

/* TFLite TensorType values (schema.fbs) that the engine knows. */
typedef enum {
    ENG_FLOAT32 = 0,
    ENG_INT32 = 2,
    ENG_UINT8 = 3,
    ENG_INT64 = 4,
    ENG_BOOL = 6,
    ENG_INT16 = 7,
    ENG_INT8 = 9,
    ENG_RESOURCE = 13 /* a resource variable handle (no data) */
} eng_dtype;

#ifndef ENG_MAX_MESSAGE
/* Longest error message: what one protocol ERROR frame carries (1024-byte
 * payload less its 7-byte header), so no message is cut before the wire. */
#define ENG_MAX_MESSAGE 1017
#endif

typedef struct {
    eng_status status;
    uint32_t detail;   /* meaning depends on status (see above) */
    int32_t op_index;  /* operator index the error is about, -1 if none */
    char message[ENG_MAX_MESSAGE + 1]; /* human readable, NUL terminated */
} eng_error;

typedef struct {
    uint8_t dtype;     /* eng_dtype */
    uint8_t ndims;
    int32_t dims[ENG_MAX_DIMS];
    uint32_t bytes;
    float scale;       /* 0 when not quantized */
    int32_t zero_point;
} eng_tensor_info;

/* Opaque-ish engine state. Sized statically; callers allocate it (static).
 * It points into itself once loaded: do not copy a loaded eng_t. */
typedef struct eng_tensor {
    const uint8_t *const_data; /* points into the model for constant tensors */
    int32_t arena_offset;      /* -1 when constant or unused */
    uint32_t bytes;
    uint8_t dtype;
    uint8_t ndims;
    int32_t dims[ENG_MAX_DIMS];
    /* quantization: pointers into the model's vectors (may be unaligned) */
    const uint8_t *scales;     /* float32 vector */
    const uint8_t *zero_points;/* int64 vector */
    uint32_t n_scales;
    int32_t quantized_dimension;
    /* --- engine internals (read-only for callers) --- */
    uint32_t n_zero_points;
    float scale;               /* scales[0], 0 when not quantized */
    int32_t zero_point;        /* zero_points[0], 0 when not quantized */
    uint8_t flags;             /* ENG_TF_* */
    int16_t first_op;          /* planner: first operator that touches it */
    int16_t last_op;           /* planner: last operator that needs it */
    int16_t alias;             /* planner: shares this tensor's buffer, or -1 */
    uint8_t *data;             /* resolved at load: const_data, or its place in
                                * the arena; NULL without storage */
} eng_tensor;

/* eng_tensor.flags */
#define ENG_TF_INPUT 0x01    /* a model input */
#define ENG_TF_OUTPUT 0x02   /* a model output */
#define ENG_TF_VARIABLE 0x04 /* is_variable: state kept across invokes */
#define ENG_TF_PRODUCED 0x08 /* written by some operator */
#define ENG_TF_USED 0x10     /* read by some operator */

struct eng_kernel; /* engine_internal.h */

typedef struct eng_op {
    int32_t builtin;           /* BuiltinOperator code */
    uint8_t n_inputs, n_outputs;
    int16_t *inputs;           /* tensor indices (in eng_t.op_io); -1 =
                                * optional input absent */
    int16_t *outputs;
    const uint8_t *options;    /* builtin_options table, NULL if absent */
    uint8_t options_type;
    uint32_t persistent_offset;/* per-op data (multipliers...) in the arena */
    uint32_t persistent_bytes; /* size of that per-op data */
    uint8_t subgraph;          /* the subgraph it belongs to */
    int16_t time;              /* position in the execution order */
    int16_t aux;               /* resolved at load: CALL_ONCE's subgraph,
                                * VAR_HANDLE's variable; else -1 */
    const struct eng_kernel *kernel; /* resolved at load: its prepare/eval */
} eng_op;

/* A loaded subgraph: its tensors and operators are contiguous ranges of
 * eng_t.tensors and eng_t.ops (subgraph 0 first, at index 0). */
typedef struct {
    uint16_t first_tensor, n_tensors;
    uint16_t first_op, n_ops;
    uint16_t index;            /* index in the model's subgraph list */
} eng_subgraph;

/* A resource variable (VAR_HANDLE / READ_VARIABLE / ASSIGN_VARIABLE). Its
 * value lives in the arena, sized by the first ASSIGN_VARIABLE (in
 * subgraph, then operator order) as TFLite Micro does. */
typedef struct {
    const char *container;     /* in the model; NULL when absent */
    const char *shared_name;
    uint32_t container_len, shared_name_len;
    uint32_t offset;           /* value in the arena */
    uint32_t bytes;            /* 0 until an ASSIGN_VARIABLE sizes it */
    uint8_t fill;              /* byte eng_reset writes: zero point or 0 */
} eng_variable;

typedef struct {
    const uint8_t *model;
    uint32_t model_len;
    uint8_t *arena;
    uint32_t arena_size;
    uint32_t arena_used;       /* high-water of the plan (tensors + persistent) */
    uint16_t n_tensors, n_ops;
    uint8_t n_inputs, n_outputs;
    int16_t inputs[ENG_MAX_IO];
    int16_t outputs[ENG_MAX_IO];
    eng_tensor tensors[ENG_MAX_TENSORS];
    eng_op ops[ENG_MAX_OPS];
    int loaded;
    /* --- engine internals --- */
    uint8_t n_subgraphs, n_variables;
    uint16_t n_op_io;
    int16_t op_io[ENG_MAX_OP_IO];            /* operators' tensor lists */
    eng_subgraph subgraphs[ENG_MAX_SUBGRAPHS];
    eng_variable variables[ENG_MAX_VARIABLES];
    uint32_t persistent_size;  /* bytes of per-op data at the arena start */
    uint32_t variables_size;   /* bytes of resource variables after it */
    uint32_t plan_size;        /* bytes of the tensor plan after those */
    int16_t exec_order[ENG_MAX_OPS];      /* operators in execution order */
    int16_t plan_order[ENG_MAX_TENSORS];  /* planner scratch */
    int16_t plan_placed[ENG_MAX_TENSORS]; /* planner scratch */
} eng_t;

/* Parse, validate, check every operator is supported, plan memory, and
 * precompute per-op parameters. The model buffer must outlive the engine.
 * Returns ENG_OK or an error with `err` filled in.
 *
 * Operators (int8 and float32 unless noted; see README.md for variants):
 * FULLY_CONNECTED, CONV_2D, DEPTHWISE_CONV_2D, AVERAGE_POOL_2D, MAX_POOL_2D,
 * RESHAPE, SOFTMAX, LOGISTIC, TANH, RELU, RELU6, HARD_SWISH, ADD, SUB, MUL
 * (also int32, with broadcasting), MEAN, PAD, PADV2, CONCATENATION,
 * STRIDED_SLICE, SPLIT, SPLIT_V, PACK, UNPACK, SHAPE, TRANSPOSE, QUANTIZE
 * (float32->int8, int8<->uint8, int8->int8), DEQUANTIZE (int8/uint8 ->
 * float32), and CALL_ONCE, VAR_HANDLE, READ_VARIABLE, ASSIGN_VARIABLE for
 * models that keep state in resource variables. Results are bit-exact with
 * the TFLite Micro reference kernels.
 *
 * Arena layout (any alignment; the engine aligns to 16 internally):
 * [pad][per-op parameters][resource variables][tensor buffers].
 * arena_used is the total; on
 * ENG_E_ARENA_TOO_SMALL, err->detail (and e->arena_used) is the number of
 * bytes an arena at the same address needs. Model inputs stay valid from
 * load until invoke, outputs from invoke until the next invoke, and inputs
 * never share memory with outputs. */
eng_status eng_load(eng_t *e, const uint8_t *model, uint32_t model_len,
                    uint8_t *arena, uint32_t arena_size, eng_error *err);

eng_status eng_input_info(const eng_t *e, uint32_t index, eng_tensor_info *out);
eng_status eng_output_info(const eng_t *e, uint32_t index, eng_tensor_info *out);

/* Writable input buffer / readable output buffer in the arena. */
uint8_t *eng_input_data(eng_t *e, uint32_t index, uint32_t *bytes);
const uint8_t *eng_output_data(const eng_t *e, uint32_t index, uint32_t *bytes);

/* Run every operator in order. `on_op`, when not NULL, is called after each
 * operator (index, builtin code) so the caller can profile. */
typedef void (*eng_op_hook)(void *ctx, uint32_t op_index, int32_t builtin);
eng_status eng_invoke(eng_t *e, eng_op_hook on_op, void *ctx, eng_error *err);

/* For localising a divergence: run subgraph 0's operators 0..last_op only.
 * The outputs of operator last_op are valid afterwards (the memory plan
 * keeps every tensor alive from its producer to its last consumer). */
eng_status eng_invoke_until(eng_t *e, uint32_t last_op, eng_op_hook on_op, void *ctx,
                            eng_error *err);

/* Current bytes of subgraph 0's tensor `index` (the model's tensor index),
 * NULL when it has no storage. Only meaningful for tensors alive now. */
const uint8_t *eng_tensor_data(const eng_t *e, uint32_t index, uint32_t *bytes);

/* Clear state kept across invokes; keeps the loaded model. As TFLite
 * Micro's MicroInterpreter::Reset(): resource variables and is_variable
 * tensors are filled with their zero point (int8) or zeros; CALL_ONCE does
 * NOT run its initialisation subgraph again (it runs once per load), so a
 * variable initialised there reads as zeros after a reset. */
void eng_reset(eng_t *e);

/* Name of a BuiltinOperator code, "UNKNOWN" when the engine does not know it. */
const char *eng_op_name(int32_t builtin);

#ifdef __cplusplus
}
#endif
#endif
