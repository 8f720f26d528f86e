/*
 * Model loader: reads the .tflite flatbuffer in place into the engine's
 * tables (tensors, operators, subgraph 0 and the subgraphs its CALL_ONCE
 * operators call), validating every offset, size and index, and binds each
 * operator to its kernel. Field slots come from schema.h.
 */
#include "loader.h"

static eng_status bad_model(eng_error *err, const char *what, int index)
{
    if (index >= 0)
        return eng_fail(err, ENG_E_MODEL_INVALID, 0, -1,
                        "invalid model: %s %d", what, index);
    return eng_fail(err, ENG_E_MODEL_INVALID, 0, -1, "invalid model: %s",
                    what);
}

static eng_status load_tensor(eng_t *e, const fb_buf *b, const fb_vec *buffers,
                              const fb_table *tt, int index, eng_error *err)
{
    eng_tensor *t = &e->tensors[index];
    fb_vec shape, scales, zps;
    fb_table quant, buffer;
    uint32_t buffer_index = 0, elem_size, i;
    uint64_t elems = 1, bytes;
    uint8_t type = 0, is_variable = 0;
    uint32_t pos;
    int r;

    memset(t, 0, sizeof *t);
    t->arena_offset = -1;
    t->alias = -1;
    t->first_op = -1;
    t->last_op = -1;

    r = fb_get_vec(b, tt, ENG_SLOT_TENSOR_SHAPE, 4, &shape);
    if (r == FB_BAD)
        return bad_model(err, "shape of tensor", index);
    if (shape.count > ENG_MAX_DIMS)
        return eng_fail(err, ENG_E_LIMIT, shape.count, -1,
                        "tensor %d has %u dimensions (ENG_MAX_DIMS is %d)",
                        index, (unsigned)shape.count, ENG_MAX_DIMS);
    t->ndims = (uint8_t)shape.count;
    for (i = 0; i < shape.count; ++i) {
        int32_t d = fb_rd_i32(b, shape.pos + 4u * i);
        /* -1 is how TFLite marks a dynamic dimension; any other value
         * below 1 or beyond what the engine can index is a damaged model
         * (a zero dimension divides by zero in kernels' shape checks) */
        if (d == -1)
            return eng_fail(err, ENG_E_UNSUPPORTED, 0, -1,
                            "tensor %d has a dynamic dimension, which is "
                            "not supported by the built-in engine", index);
        if (d <= 0 || d > ENG_MAX_DIM_SIZE)
            return eng_fail(err, ENG_E_MODEL_INVALID, i, -1,
                            "invalid model: tensor %d dimension %u is %d "
                            "(must be 1..%d)", index, (unsigned)i, (int)d,
                            ENG_MAX_DIM_SIZE);
        t->dims[i] = d;
        elems *= (uint64_t)d;
        if (elems > ENG_MAX_DIM_SIZE)
            return eng_fail(err, ENG_E_MODEL_INVALID, i, -1,
                            "invalid model: tensor %d has more than %d "
                            "elements (dimension %u brings it past)", index,
                            ENG_MAX_DIM_SIZE, (unsigned)i);
    }
    if (fb_get_u8(b, tt, ENG_SLOT_TENSOR_TYPE, 0, &type) == FB_BAD ||
        fb_get_u32(b, tt, ENG_SLOT_TENSOR_BUFFER, 0, &buffer_index) == FB_BAD ||
        fb_get_u8(b, tt, ENG_SLOT_TENSOR_IS_VARIABLE, 0, &is_variable) == FB_BAD)
        return bad_model(err, "fields of tensor", index);
    t->dtype = type;
    elem_size = eng_dtype_size(type);
    bytes = elems * elem_size;
    if (bytes > 0x7fffffffu)
        return eng_fail(err, ENG_E_MODEL_INVALID, 0, -1,
                        "invalid model: tensor %d is too large", index);
    t->bytes = (uint32_t)bytes;
    if (is_variable)
        t->flags |= ENG_TF_VARIABLE;
    if (fb_field(b, tt, ENG_SLOT_TENSOR_SPARSITY, 4, &pos) == FB_OK)
        return eng_fail(err, ENG_E_UNSUPPORTED, 0, -1,
                        "tensor %d is sparse, which is not supported by the "
                        "built-in engine", index);

    /* quantization parameters: scale[0] / zero_point[0] act as the
     * per-tensor values, the vectors are kept for per-channel use */
    r = fb_get_table(b, tt, ENG_SLOT_TENSOR_QUANTIZATION, &quant);
    if (r == FB_BAD)
        return bad_model(err, "quantization of tensor", index);
    if (r == FB_OK) {
        uint8_t details_type = 0;
        int32_t qdim = 0;
        if (fb_get_vec(b, &quant, ENG_SLOT_QUANT_SCALE, 4, &scales) == FB_BAD ||
            fb_get_vec(b, &quant, ENG_SLOT_QUANT_ZERO_POINT, 8, &zps) == FB_BAD ||
            fb_get_u8(b, &quant, ENG_SLOT_QUANT_DETAILS_TYPE, 0, &details_type) ==
                FB_BAD ||
            fb_get_i32(b, &quant, ENG_SLOT_QUANT_QUANTIZED_DIMENSION, 0, &qdim) ==
                FB_BAD)
            return bad_model(err, "quantization of tensor", index);
        if (details_type != 0)
            return eng_fail(err, ENG_E_UNSUPPORTED, 0, -1,
                            "tensor %d uses custom quantization, which is "
                            "not supported by the built-in engine", index);
        t->quantized_dimension = qdim;
        if (scales.count > 0 && zps.count > 0) {
            t->scales = b->buf + scales.pos;
            t->n_scales = scales.count;
            t->zero_points = b->buf + zps.pos;
            t->n_zero_points = zps.count;
            t->scale = fb_rd_f32(b, scales.pos);
            t->zero_point = (int32_t)fb_rd_i64(b, zps.pos);
        }
    }

    /* constant data */
    if (buffers->count == 0 && buffer_index == 0)
        return ENG_OK;
    if (buffer_index >= buffers->count)
        return bad_model(err, "buffer index of tensor", index);
    if (fb_vec_table(b, buffers, buffer_index, &buffer) != FB_OK)
        return bad_model(err, "buffer of tensor", index);
    {
        fb_vec data;
        uint64_t offset = 0, size = 0;
        const uint8_t *ptr = NULL;
        uint64_t len = 0;
        if (fb_get_vec(b, &buffer, ENG_SLOT_BUFFER_DATA, 1, &data) == FB_BAD ||
            fb_get_u64(b, &buffer, ENG_SLOT_BUFFER_OFFSET, 0, &offset) == FB_BAD ||
            fb_get_u64(b, &buffer, ENG_SLOT_BUFFER_SIZE, 0, &size) == FB_BAD)
            return bad_model(err, "buffer of tensor", index);
        if (data.count > 0) {
            ptr = b->buf + data.pos;
            len = data.count;
        } else if (offset > 1 && size > 0) {
            /* data stored after the flatbuffer, offset from its start */
            if (offset > b->len || size > b->len - offset)
                return bad_model(err, "external buffer of tensor", index);
            ptr = b->buf + offset;
            len = size;
        }
        if (ptr != NULL) {
            if (len < t->bytes)
                return bad_model(err, "buffer too small for tensor", index);
            t->const_data = ptr;
            t->data = (uint8_t *)(uintptr_t)ptr; /* kernels read it in prepare */
        }
    }
    return ENG_OK;
}

static eng_status load_io(eng_t *e, const fb_buf *b, const fb_vec *v,
                          int16_t *list, uint8_t *count, uint8_t flag,
                          const char *what, eng_error *err)
{
    uint32_t i;
    if (v->count > ENG_MAX_IO)
        return eng_fail(err, ENG_E_LIMIT, v->count, -1,
                        "model has %u %ss (ENG_MAX_IO is %d)",
                        (unsigned)v->count, what, ENG_MAX_IO);
    for (i = 0; i < v->count; ++i) {
        int32_t t = fb_rd_i32(b, v->pos + 4u * i);
        if (t < 0 || t >= e->n_tensors)
            return bad_model(err, "tensor index of model input/output",
                             (int)i);
        list[i] = (int16_t)t;
        e->tensors[t].flags |= flag;
    }
    *count = (uint8_t)v->count;
    return ENG_OK;
}

/* Loads operator `local` of the subgraph being loaded (tensor indices
 * relative to its first tensor) into e->ops[index]. */
static eng_status load_operator(eng_t *e, const fb_buf *b,
                                const fb_vec *opcodes, const fb_table *ot,
                                int index, eng_error *err)
{
    eng_op *op = &e->ops[index];
    const eng_subgraph *g = &e->subgraphs[e->n_subgraphs - 1];
    fb_table code, options;
    fb_vec ins, outs;
    uint32_t opcode_index = 0, i;
    int8_t deprecated = 0;
    int32_t builtin = 0;
    uint8_t options_type = 0;
    int r;

    memset(op, 0, sizeof *op);
    op->subgraph = (uint8_t)(e->n_subgraphs - 1);
    op->aux = -1;
    if (fb_get_u32(b, ot, ENG_SLOT_OPERATOR_OPCODE_INDEX, 0, &opcode_index) == FB_BAD ||
        opcode_index >= opcodes->count ||
        fb_vec_table(b, opcodes, opcode_index, &code) != FB_OK)
        return bad_model(err, "operator code of operator", index);
    /* the builtin code moved to a wider field; older files only have the
     * byte-sized one, so the larger of the two is the real code */
    if (fb_get_i8(b, &code, ENG_SLOT_OPCODE_DEPRECATED_BUILTIN_CODE, 0, &deprecated) ==
            FB_BAD ||
        fb_get_i32(b, &code, ENG_SLOT_OPCODE_BUILTIN_CODE, 0, &builtin) == FB_BAD)
        return bad_model(err, "operator code of operator", index);
    op->builtin = builtin > deprecated ? builtin : deprecated;

    if (fb_get_vec(b, ot, ENG_SLOT_OPERATOR_INPUTS, 4, &ins) == FB_BAD ||
        fb_get_vec(b, ot, ENG_SLOT_OPERATOR_OUTPUTS, 4, &outs) == FB_BAD)
        return bad_model(err, "inputs/outputs of operator", index);
    if (ins.count > ENG_MAX_OP_INPUTS || outs.count > ENG_MAX_OP_OUTPUTS)
        return eng_fail(err, ENG_E_LIMIT, (uint32_t)index, index,
                        "operator %d: %s has %u inputs and %u outputs "
                        "(limits %d and %d)",
                        index - (int)g->first_op, eng_op_name(op->builtin),
                        (unsigned)ins.count, (unsigned)outs.count,
                        ENG_MAX_OP_INPUTS, ENG_MAX_OP_OUTPUTS);
    if (ins.count + outs.count > (uint32_t)(ENG_MAX_OP_IO - e->n_op_io))
        return eng_fail(err, ENG_E_LIMIT, ENG_MAX_OP_IO + 1u, index,
                        "the operators have more than %d inputs and outputs "
                        "in all (ENG_MAX_OP_IO)", ENG_MAX_OP_IO);
    op->n_inputs = (uint8_t)ins.count;
    op->n_outputs = (uint8_t)outs.count;
    op->inputs = &e->op_io[e->n_op_io];
    op->outputs = op->inputs + ins.count;
    e->n_op_io = (uint16_t)(e->n_op_io + ins.count + outs.count);
    for (i = 0; i < ins.count; ++i) {
        int32_t t = fb_rd_i32(b, ins.pos + 4u * i);
        if (t < -1 || t >= (int32_t)g->n_tensors)
            return bad_model(err, "input tensor index of operator", index);
        op->inputs[i] = (int16_t)(t < 0 ? -1 : t + (int32_t)g->first_tensor);
    }
    for (i = 0; i < outs.count; ++i) {
        int32_t t = fb_rd_i32(b, outs.pos + 4u * i);
        if (t < 0 || t >= (int32_t)g->n_tensors)
            return bad_model(err, "output tensor index of operator", index);
        op->outputs[i] = (int16_t)(t + (int32_t)g->first_tensor);
    }

    if (fb_get_u8(b, ot, ENG_SLOT_OPERATOR_BUILTIN_OPTIONS_TYPE, 0, &options_type) == FB_BAD)
        return bad_model(err, "options of operator", index);
    r = fb_get_table(b, ot, ENG_SLOT_OPERATOR_BUILTIN_OPTIONS, &options);
    if (r == FB_BAD)
        return bad_model(err, "options of operator", index);
    if (r == FB_OK && options_type != 0) {
        op->options = b->buf + options.pos;
        op->options_type = options_type;
    }
    return ENG_OK;
}

static eng_status unsupported_op(eng_t *e, const fb_buf *b,
                                 const fb_vec *opcodes,
                                 const fb_vec *subgraphs, int index,
                                 eng_error *err)
{
    const int32_t builtin = e->ops[index].builtin;
    const eng_subgraph *g = &e->subgraphs[e->ops[index].subgraph];
    const int local = index - (int)g->first_op;

    if (builtin == ENG_OP_CUSTOM) {
        /* name the custom operator when the model says what it is */
        fb_table sg, ot, code;
        fb_vec ops;
        uint32_t opcode_index = 0, n = 0;
        const char *name = "";
        char shortname[48];
        if (fb_vec_table(b, subgraphs, g->index, &sg) == FB_OK &&
            fb_get_vec(b, &sg, ENG_SLOT_SUBGRAPH_OPERATORS, 4, &ops) == FB_OK &&
            fb_vec_table(b, &ops, (uint32_t)local, &ot) == FB_OK &&
            fb_get_u32(b, &ot, ENG_SLOT_OPERATOR_OPCODE_INDEX, 0,
                       &opcode_index) != FB_BAD &&
            fb_vec_table(b, opcodes, opcode_index, &code) == FB_OK &&
            fb_get_str(b, &code, ENG_SLOT_OPCODE_CUSTOM_CODE, &name, &n) ==
                FB_OK &&
            n > 0) {
            uint32_t i;
            for (i = 0; i < n && i + 1 < sizeof shortname; ++i) {
                char c = name[i];
                shortname[i] = (c >= 32 && c < 127) ? c : '?';
            }
            shortname[i] = '\0';
            return eng_fail_at(err, e, ENG_E_UNSUPPORTED_OP,
                               (uint32_t)builtin, index,
                               "CUSTOM (%s) is not supported by the "
                               "built-in engine", shortname);
        }
    }
    return eng_fail_at(err, e, ENG_E_UNSUPPORTED_OP, (uint32_t)builtin, index,
                       "%s is not supported by the built-in engine",
                       eng_op_name(builtin));
}

/* Loads subgraph `model_index` of the model after those already loaded. */
static eng_status load_subgraph(eng_t *e, const fb_buf *b,
                                const fb_vec *subgraphs, const fb_vec *opcodes,
                                const fb_vec *buffers, uint32_t model_index,
                                eng_error *err)
{
    fb_table subgraph;
    fb_vec tensors, inputs, outputs, ops;
    eng_subgraph *g;
    uint32_t i;
    eng_status st;

    if (e->n_subgraphs >= ENG_MAX_SUBGRAPHS)
        return eng_fail(err, ENG_E_LIMIT, e->n_subgraphs + 1u, -1,
                        "model calls more than %d subgraphs "
                        "(ENG_MAX_SUBGRAPHS)", ENG_MAX_SUBGRAPHS);
    if (fb_vec_table(b, subgraphs, model_index, &subgraph) != FB_OK ||
        fb_get_vec(b, &subgraph, ENG_SLOT_SUBGRAPH_TENSORS, 4, &tensors) == FB_BAD ||
        fb_get_vec(b, &subgraph, ENG_SLOT_SUBGRAPH_INPUTS, 4, &inputs) == FB_BAD ||
        fb_get_vec(b, &subgraph, ENG_SLOT_SUBGRAPH_OUTPUTS, 4, &outputs) == FB_BAD ||
        fb_get_vec(b, &subgraph, ENG_SLOT_SUBGRAPH_OPERATORS, 4, &ops) == FB_BAD)
        return bad_model(err, "subgraph", (int)model_index);
    if (tensors.count > (uint32_t)(ENG_MAX_TENSORS - e->n_tensors))
        return eng_fail(err, ENG_E_LIMIT, e->n_tensors + tensors.count, -1,
                        "model has %u tensors (ENG_MAX_TENSORS is %d)",
                        (unsigned)(e->n_tensors + tensors.count),
                        ENG_MAX_TENSORS);
    if (ops.count > (uint32_t)(ENG_MAX_OPS - e->n_ops))
        return eng_fail(err, ENG_E_LIMIT, e->n_ops + ops.count, -1,
                        "model has %u operators (ENG_MAX_OPS is %d)",
                        (unsigned)(e->n_ops + ops.count), ENG_MAX_OPS);

    g = &e->subgraphs[e->n_subgraphs++];
    g->index = (uint16_t)model_index;
    g->first_tensor = e->n_tensors;
    g->n_tensors = (uint16_t)tensors.count;
    g->first_op = e->n_ops;
    g->n_ops = (uint16_t)ops.count;
    for (i = 0; i < tensors.count; ++i) {
        fb_table tt;
        const int t = (int)(g->first_tensor + i);
        if (fb_vec_table(b, &tensors, i, &tt) != FB_OK)
            return bad_model(err, "tensor", t);
        st = load_tensor(e, b, buffers, &tt, t, err);
        if (st != ENG_OK)
            return st;
    }
    e->n_tensors = (uint16_t)(e->n_tensors + tensors.count);

    if (model_index == 0) {
        st = load_io(e, b, &inputs, e->inputs, &e->n_inputs, ENG_TF_INPUT,
                     "input", err);
        if (st == ENG_OK)
            st = load_io(e, b, &outputs, e->outputs, &e->n_outputs,
                         ENG_TF_OUTPUT, "output", err);
        if (st != ENG_OK)
            return st;
    } else if (inputs.count > 0) {
        return eng_fail(err, ENG_E_UNSUPPORTED, model_index, -1,
                        "subgraph %u has inputs: a subgraph called by "
                        "CALL_ONCE with inputs is not supported by the "
                        "built-in engine", (unsigned)model_index);
    }

    for (i = 0; i < ops.count; ++i) {
        fb_table ot;
        const int op = (int)(g->first_op + i);
        if (fb_vec_table(b, &ops, i, &ot) != FB_OK)
            return bad_model(err, "operator", op);
        st = load_operator(e, b, opcodes, &ot, op, err);
        if (st != ENG_OK)
            return st;
        ++e->n_ops;
    }
    return ENG_OK;
}

/* Loads the subgraphs CALL_ONCE operators call, each once, and records the
 * callee (index into e->subgraphs) in the operator's aux. */
static eng_status load_called_subgraphs(eng_t *e, const fb_buf *b,
                                        const fb_vec *subgraphs,
                                        const fb_vec *opcodes,
                                        const fb_vec *buffers, eng_error *err)
{
    int i;
    /* e->n_ops grows as callees load; their CALL_ONCEs are visited too */
    for (i = 0; i < e->n_ops; ++i) {
        eng_op *op = &e->ops[i];
        fb_buf ob;
        fb_table t;
        int32_t callee = 0;
        int k, r;
        eng_status st;
        if (op->builtin != ENG_OP_CALL_ONCE)
            continue;
        r = eng_op_options(e, op, ENG_OPT_CALL_ONCE, &ob, &t);
        if (r == FB_BAD ||
            (r == FB_OK &&
             fb_get_i32(&ob, &t, ENG_SLOT_CALLONCEOPTIONS_INIT_SUBGRAPH_INDEX, 0,
                        &callee) == FB_BAD))
            return eng_fail_invalid(err, e, i, "bad options");
        if (callee <= 0 || (uint32_t)callee >= subgraphs->count)
            return eng_fail_invalid(err, e, i, "calls subgraph %d of %u",
                                    (int)callee, (unsigned)subgraphs->count);
        for (k = 0; k < e->n_subgraphs; ++k)
            if (e->subgraphs[k].index == (uint16_t)callee)
                return eng_fail_variant(err, e, i,
                                        "calling subgraph %d, which another "
                                        "operator already calls,",
                                        (int)callee);
        st = load_subgraph(e, b, subgraphs, opcodes, buffers,
                           (uint32_t)callee, err);
        if (st != ENG_OK)
            return st;
        e->ops[i].aux = (int16_t)(e->n_subgraphs - 1);
    }
    return ENG_OK;
}

/* Execution order: subgraph 0 in order, each CALL_ONCE followed by the
 * operators of the subgraph it calls. Sets every op's time. */

eng_status eng_read_model(eng_t *e, eng_error *err)
{
    fb_buf b;
    fb_table root;
    fb_vec opcodes, subgraphs, buffers;
    uint32_t version = 0;
    int i;
    eng_status st;

    b.buf = e->model;
    b.len = e->model_len;
    if (e->model == NULL || fb_root(&b, &root) != FB_OK)
        return bad_model(err, "not a readable flatbuffer", -1);
    if (fb_get_u32(&b, &root, ENG_SLOT_MODEL_VERSION, 0, &version) == FB_BAD)
        return bad_model(err, "version field", -1);
    if (version != ENG_SCHEMA_VERSION)
        return eng_fail(err, ENG_E_MODEL_INVALID, version, -1,
                        "invalid model: schema version %u, expected %u",
                        (unsigned)version, ENG_SCHEMA_VERSION);
    if (fb_get_vec(&b, &root, ENG_SLOT_MODEL_OPERATOR_CODES, 4, &opcodes) ==
        FB_BAD)
        return bad_model(err, "operator codes", -1);
    if (fb_get_vec(&b, &root, ENG_SLOT_MODEL_SUBGRAPHS, 4, &subgraphs) ==
        FB_BAD)
        return bad_model(err, "subgraphs", -1);
    if (fb_get_vec(&b, &root, ENG_SLOT_MODEL_BUFFERS, 4, &buffers) == FB_BAD)
        return bad_model(err, "buffers", -1);
    if (subgraphs.count == 0)
        return bad_model(err, "no readable subgraph", -1);

    /* subgraph 0, then whatever its CALL_ONCE operators call; subgraphs
     * nothing calls (e.g. other signatures) are never run, so not loaded */
    st = load_subgraph(e, &b, &subgraphs, &opcodes, &buffers, 0, err);
    if (st == ENG_OK)
        st = load_called_subgraphs(e, &b, &subgraphs, &opcodes, &buffers,
                                   err);
    if (st != ENG_OK)
        return st;

    /* every operator must have a kernel; bound once, here */
    for (i = 0; i < e->n_ops; ++i) {
        e->ops[i].kernel = eng_find_kernel(e->ops[i].builtin);
        if (e->ops[i].kernel == NULL)
            return unsupported_op(e, &b, &opcodes, &subgraphs, i, err);
    }
    return ENG_OK;
}
