/*
 * State across invokes: resource variables and one-time initialisation.
 *
 *   VAR_HANDLE       names a variable (container, shared_name); the loader
 *                    gives every distinct name one eng_variable
 *   READ_VARIABLE    copies the variable's value to its output
 *   ASSIGN_VARIABLE  copies its value input into the variable
 *   CALL_ONCE        runs its initialisation subgraph on the first invoke
 *                    after load, never again (eng_reset does not re-arm it,
 *                    as TFLite Micro's reset does not)
 *
 * A variable's size and reset byte come from the first ASSIGN_VARIABLE
 * (engine.c, resolve_variables); every read and write must match that size.
 */
#include "../engine_internal.h"

typedef struct {
    int32_t subgraph; /* CALL_ONCE: index into e->subgraphs */
    int32_t has_run;
} call_once_data;

typedef struct {
    int32_t variable;
} variable_data;

eng_status eng_call_once_prepare(eng_t *e, int op_index, uint8_t *data,
                                 uint32_t *bytes, eng_error *err)
{
    const eng_op *op = &e->ops[op_index];
    call_once_data d;
    eng_status st = eng_check_arity(e, op_index, 0, 0, 0, err);
    if (st != ENG_OK)
        return st;
    if (op->aux <= 0 || op->aux >= e->n_subgraphs)
        return eng_fail_invalid(err, e, op_index, "no subgraph to call");
    d.subgraph = op->aux;
    d.has_run = 0;
    return eng_keep_op_data(data, bytes, &d, sizeof d);
}

eng_status eng_call_once_eval(eng_t *e, int op_index, eng_error *err)
{
    call_once_data *d = (call_once_data *)eng_op_data(e, &e->ops[op_index]);
    eng_status st;
    if (d->has_run)
        return ENG_OK;
    st = eng_run_subgraph(e, d->subgraph, err);
    if (st != ENG_OK)
        return st;
    d->has_run = 1;
    return ENG_OK;
}

eng_status eng_var_handle_prepare(eng_t *e, int op_index, uint8_t *data,
                                  uint32_t *bytes, eng_error *err)
{
    const eng_op *op = &e->ops[op_index];
    eng_status st = eng_check_arity(e, op_index, 0, 0, 1, err);
    (void)data;
    if (st != ENG_OK)
        return st;
    if (op->aux < 0 || op->aux >= e->n_variables)
        return eng_fail_invalid(err, e, op_index, "no variable");
    if (e->tensors[op->outputs[0]].dtype != ENG_RESOURCE)
        return eng_fail_invalid(err, e, op_index, "output is not a resource");
    *bytes = 0;
    return ENG_OK;
}

eng_status eng_var_handle_eval(eng_t *e, int op_index, eng_error *err)
{
    (void)e;
    (void)op_index;
    (void)err;
    return ENG_OK; /* the handle is resolved at load */
}

/* The variable behind the resource tensor in input 0, sized, and of the
 * value tensor's size. */
static eng_status variable_of(eng_t *e, int op_index, const eng_tensor *value,
                              int32_t *variable, eng_error *err)
{
    const eng_op *op = &e->ops[op_index];
    const eng_variable *v;
    const int h = eng_var_handle_of(e, op_index, op->inputs[0]);
    if (h < 0)
        return eng_fail_variant(err, e, op_index,
                                "of a variable not made by a VAR_HANDLE in "
                                "the same subgraph");
    v = &e->variables[e->ops[h].aux];
    if (v->bytes == 0)
        return eng_fail_variant(err, e, op_index,
                                "of a variable that no ASSIGN_VARIABLE "
                                "writes");
    if (value->bytes != v->bytes)
        return eng_fail_invalid(err, e, op_index,
                                "value has %u bytes, the variable %u",
                                (unsigned)value->bytes, (unsigned)v->bytes);
    *variable = e->ops[h].aux;
    return ENG_OK;
}

/* READ_VARIABLE (resource in, value out) and ASSIGN_VARIABLE (resource and
 * value in): the variable the value tensor reads or writes. */
static eng_status variable_prepare(eng_t *e, int op_index, int n_inputs,
                                   int n_outputs, const eng_tensor *value,
                                   uint8_t *data, uint32_t *bytes,
                                   eng_error *err)
{
    variable_data d = {-1}; /* set by variable_of */
    eng_status st =
        eng_check_arity(e, op_index, n_inputs, n_inputs, n_outputs, err);
    if (st == ENG_OK)
        st = variable_of(e, op_index, value, &d.variable, err);
    if (st != ENG_OK)
        return st;
    return eng_keep_op_data(data, bytes, &d, sizeof d);
}

eng_status eng_read_variable_prepare(eng_t *e, int op_index, uint8_t *data,
                                     uint32_t *bytes, eng_error *err)
{
    return variable_prepare(e, op_index, 1, 1,
                            eng_op_output(e, &e->ops[op_index], 0), data,
                            bytes, err);
}

eng_status eng_read_variable_eval(eng_t *e, int op_index, eng_error *err)
{
    const eng_op *op = &e->ops[op_index];
    const variable_data *d = (const variable_data *)eng_op_data(e, op);
    const eng_variable *v = &e->variables[d->variable];
    (void)err;
    memcpy(eng_data(e, eng_op_output(e, op, 0)), e->arena + v->offset,
           v->bytes);
    return ENG_OK;
}

eng_status eng_assign_variable_prepare(eng_t *e, int op_index, uint8_t *data,
                                       uint32_t *bytes, eng_error *err)
{
    return variable_prepare(e, op_index, 2, 0,
                            eng_op_input(e, &e->ops[op_index], 1), data,
                            bytes, err);
}

eng_status eng_assign_variable_eval(eng_t *e, int op_index, eng_error *err)
{
    const eng_op *op = &e->ops[op_index];
    const variable_data *d = (const variable_data *)eng_op_data(e, op);
    const eng_variable *v = &e->variables[d->variable];
    (void)err;
    memcpy(e->arena + v->offset, eng_data(e, eng_op_input(e, op, 1)),
           v->bytes);
    return ENG_OK;
}
