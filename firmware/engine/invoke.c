/*
 * The public run-time calls: model inputs and outputs, invoke (all of
 * subgraph 0, or its first operators for localisation) and intermediate
 * tensors.
 */
#include "graph.h"

static eng_status tensor_info(const eng_tensor *t, eng_tensor_info *out)
{
    int i;
    memset(out, 0, sizeof *out);
    out->dtype = t->dtype;
    out->ndims = t->ndims;
    for (i = 0; i < t->ndims; ++i)
        out->dims[i] = t->dims[i];
    out->bytes = t->bytes;
    out->scale = t->scale;
    out->zero_point = t->zero_point;
    return ENG_OK;
}

eng_status eng_input_info(const eng_t *e, uint32_t index, eng_tensor_info *out)
{
    if (e == NULL || !e->loaded)
        return ENG_E_NO_MODEL;
    if (index >= e->n_inputs || out == NULL)
        return ENG_E_BAD_INDEX;
    return tensor_info(&e->tensors[e->inputs[index]], out);
}

eng_status eng_output_info(const eng_t *e, uint32_t index,
                           eng_tensor_info *out)
{
    if (e == NULL || !e->loaded)
        return ENG_E_NO_MODEL;
    if (index >= e->n_outputs || out == NULL)
        return ENG_E_BAD_INDEX;
    return tensor_info(&e->tensors[e->outputs[index]], out);
}

uint8_t *eng_input_data(eng_t *e, uint32_t index, uint32_t *bytes)
{
    const eng_tensor *t;
    if (e == NULL || !e->loaded || index >= e->n_inputs)
        return NULL;
    t = &e->tensors[e->inputs[index]];
    if (t->const_data != NULL || t->data == NULL)
        return NULL; /* a constant input cannot be written */
    if (bytes != NULL)
        *bytes = t->bytes;
    return t->data;
}

const uint8_t *eng_output_data(const eng_t *e, uint32_t index,
                               uint32_t *bytes)
{
    const eng_tensor *t;
    if (e == NULL || !e->loaded || index >= e->n_outputs)
        return NULL;
    t = &e->tensors[e->outputs[index]];
    if (bytes != NULL)
        *bytes = t->bytes;
    return eng_data(e, t);
}

eng_status eng_invoke(eng_t *e, eng_op_hook on_op, void *ctx, eng_error *err)
{
    err = eng_error_begin(err);
    if (e == NULL || !e->loaded)
        return eng_fail(err, ENG_E_NO_MODEL, 0, -1, "no model loaded");
    return eng_run_ops(e, 0, e->subgraphs[0].n_ops, on_op, ctx, err);
}

eng_status eng_invoke_until(eng_t *e, uint32_t last_op, eng_op_hook on_op, void *ctx,
                            eng_error *err)
{
    err = eng_error_begin(err);
    if (e == NULL || !e->loaded)
        return eng_fail(err, ENG_E_NO_MODEL, 0, -1, "no model loaded");
    if (last_op >= e->subgraphs[0].n_ops)
        return eng_fail(err, ENG_E_BAD_INDEX, last_op, -1, "no operator %u in subgraph 0",
                        (unsigned)last_op);
    return eng_run_ops(e, 0, (int)last_op + 1, on_op, ctx, err);
}

const uint8_t *eng_tensor_data(const eng_t *e, uint32_t index, uint32_t *bytes)
{
    const eng_tensor *t;
    if (e == NULL || !e->loaded || index >= e->subgraphs[0].n_tensors)
        return NULL;
    t = &e->tensors[e->subgraphs[0].first_tensor + index];
    if (bytes != NULL)
        *bytes = t->bytes;
    return eng_data(e, t);
}
