/*
 * Resource variables (VAR_HANDLE, READ_VARIABLE, ASSIGN_VARIABLE) and the
 * state kept across invokes: which variable each VAR_HANDLE names, their
 * sizes and reset bytes, and clearing them (eng_reset).
 */
#include "resource_vars.h"

int eng_var_handle_of(const eng_t *e, int op_index, int t)
{
    const eng_subgraph *g = &e->subgraphs[e->ops[op_index].subgraph];
    int i;
    for (i = g->first_op; i < g->first_op + g->n_ops; ++i)
        if (e->ops[i].builtin == ENG_OP_VAR_HANDLE &&
            e->ops[i].n_outputs == 1 && e->ops[i].outputs[0] == t)
            return i;
    return -1;
}

static int same_name(const char *a, uint32_t a_len, const char *b,
                     uint32_t b_len)
{
    return a_len == b_len && (a_len == 0 || memcmp(a, b, a_len) == 0);
}

/* Gives the variable ASSIGN_VARIABLE `i` writes its size and reset byte,
 * unless an earlier one did. */
static eng_status size_variable(eng_t *e, int i, eng_error *err)
{
    const eng_op *op = &e->ops[i];
    const eng_tensor *value;
    eng_variable *var;
    int h;
    if (op->n_inputs != 2 || op->inputs[0] < 0 || op->inputs[1] < 0)
        return eng_fail_invalid(err, e, i, "expects 2 inputs");
    h = eng_var_handle_of(e, i, op->inputs[0]);
    if (h < 0)
        return eng_fail_variant(err, e, i,
                                "of a variable not made by a VAR_HANDLE in "
                                "the same subgraph");
    var = &e->variables[e->ops[h].aux];
    if (var->bytes != 0)
        return ENG_OK;
    value = &e->tensors[op->inputs[1]];
    if (value->bytes == 0 || eng_dtype_size(value->dtype) == 0)
        return eng_fail_variant(err, e, i, "of a %s value",
                                eng_dtype_name(value->dtype));
    var->bytes = value->bytes;
    /* the zero point's low byte when the value is quantized (TFLite Micro
     * memsets the buffer with it), else 0 */
    var->fill = (value->n_scales > 0 && value->n_zero_points > 0)
                    ? (uint8_t)(int8_t)value->zero_point
                    : 0;
    return ENG_OK;
}

eng_status eng_resolve_variables(eng_t *e, eng_error *err)
{
    int order[ENG_MAX_SUBGRAPHS];
    int i, k, v;
    for (i = 0; i < e->n_ops; ++i) {
        eng_op *op = &e->ops[i];
        fb_buf b;
        fb_table t;
        const char *container = NULL, *name = "";
        uint32_t container_len = 0, name_len = 0;
        int r;
        if (op->builtin != ENG_OP_VAR_HANDLE)
            continue;
        r = eng_op_options(e, op, ENG_OPT_VAR_HANDLE, &b, &t);
        if (r == FB_BAD)
            return eng_fail_invalid(err, e, i, "bad options");
        if (r == FB_OK) {
            r = fb_get_str(&b, &t, ENG_SLOT_VARHANDLEOPTIONS_CONTAINER, &container,
                           &container_len);
            if (r == FB_BAD)
                return eng_fail_invalid(err, e, i, "bad container name");
            if (r == FB_ABSENT)
                container = NULL;
            if (fb_get_str(&b, &t, ENG_SLOT_VARHANDLEOPTIONS_SHARED_NAME, &name,
                           &name_len) == FB_BAD)
                return eng_fail_invalid(err, e, i, "bad shared name");
        }
        for (v = 0; v < e->n_variables; ++v) {
            const eng_variable *var = &e->variables[v];
            if (same_name(var->shared_name, var->shared_name_len, name,
                          name_len) &&
                (container == NULL || var->container == NULL ||
                 same_name(var->container, var->container_len, container,
                           container_len)))
                break;
        }
        if (v == e->n_variables) {
            eng_variable *var;
            if (e->n_variables >= ENG_MAX_VARIABLES)
                return eng_fail(err, ENG_E_LIMIT, ENG_MAX_VARIABLES + 1u, i,
                                "model has more than %d resource variables "
                                "(ENG_MAX_VARIABLES)", ENG_MAX_VARIABLES);
            var = &e->variables[e->n_variables++];
            memset(var, 0, sizeof *var);
            var->container = container;
            var->container_len = container_len;
            var->shared_name = name;
            var->shared_name_len = name_len;
        }
        op->aux = (int16_t)v;
    }
    /* ASSIGN_VARIABLEs in the model's subgraph order (TFLite Micro
     * prepares subgraph 0, 1, 2...; they were loaded in call order) */
    for (k = 0; k < e->n_subgraphs; ++k) {
        int rank = 0, j;
        for (j = 0; j < e->n_subgraphs; ++j)
            if (e->subgraphs[j].index < e->subgraphs[k].index)
                ++rank;
        order[rank] = k;
    }
    for (k = 0; k < e->n_subgraphs; ++k) {
        const eng_subgraph *g = &e->subgraphs[order[k]];
        for (i = g->first_op; i < g->first_op + g->n_ops; ++i) {
            if (e->ops[i].builtin == ENG_OP_ASSIGN_VARIABLE) {
                const eng_status st = size_variable(e, i, err);
                if (st != ENG_OK)
                    return st;
            }
        }
    }
    return ENG_OK;
}

void eng_clear_variables(eng_t *e)
{
    int i;
    for (i = 0; i < e->n_tensors; ++i) {
        eng_tensor *t = &e->tensors[i];
        uint8_t fill = 0;
        if (!(t->flags & ENG_TF_VARIABLE) || t->const_data != NULL ||
            t->arena_offset < 0)
            continue;
        if (t->dtype == ENG_INT8 && t->n_zero_points > 0)
            fill = (uint8_t)t->zero_point;
        memset(e->arena + t->arena_offset, fill, t->bytes);
    }
    for (i = 0; i < e->n_variables; ++i) {
        const eng_variable *v = &e->variables[i];
        if (v->bytes > 0)
            memset(e->arena + v->offset, v->fill, v->bytes);
    }
}

void eng_reset(eng_t *e)
{
    if (e == NULL || !e->loaded)
        return;
    eng_clear_variables(e);
}
