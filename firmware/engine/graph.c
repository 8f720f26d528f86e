/*
 * The loaded graph: execution order over subgraphs, and the loop that runs
 * them. The loop is the per-operator overhead of every invoke, so it does
 * only this per operator: one indirect call through the kernel bound at
 * load, a status test and the optional hook.
 */
#include "graph.h"

/* Execution order from position `pos`; returns the next free position. */
static int order_subgraph(eng_t *e, int s, int pos)
{
    const eng_subgraph *g = &e->subgraphs[s];
    int i;
    for (i = g->first_op; i < g->first_op + g->n_ops; ++i) {
        e->ops[i].time = (int16_t)pos;
        e->exec_order[pos++] = (int16_t)i;
        if (e->ops[i].builtin == ENG_OP_CALL_ONCE && e->ops[i].aux > 0)
            pos = order_subgraph(e, e->ops[i].aux, pos);
    }
    return pos;
}

void eng_order_ops(eng_t *e) { (void)order_subgraph(e, 0, 0); }

/* The error of a failed operator: the kernel's message when it gave one. */
static eng_status op_failed(eng_t *e, int s, int i, eng_error *err)
{
    if (err->status == ENG_OK || err->message[0] == '\0')
        eng_fail(err, ENG_E_INVOKE, (uint32_t)i, i, "operator %d: %s failed",
                 i - (int)e->subgraphs[s].first_op,
                 eng_op_name(e->ops[i].builtin));
    err->status = ENG_E_INVOKE;
    err->detail = (uint32_t)i;
    err->op_index = i;
    return ENG_E_INVOKE;
}

eng_status eng_run_ops(eng_t *e, int s, int count, eng_op_hook on_op,
                       void *ctx, eng_error *err)
{
    const eng_subgraph *g = &e->subgraphs[s];
    const int end = g->first_op + (count < g->n_ops ? count : g->n_ops);
    int i;
    for (i = g->first_op; i < end; ++i) {
        const eng_op *op = &e->ops[i];
        if (op->kernel->eval(e, i, err) != ENG_OK)
            return op_failed(e, s, i, err);
        if (on_op != NULL)
            on_op(ctx, (uint32_t)i, op->builtin);
    }
    return ENG_OK;
}

eng_status eng_run_subgraph(eng_t *e, int s, eng_error *err)
{
    if (s <= 0 || s >= e->n_subgraphs)
        return ENG_E_INVOKE;
    return eng_run_ops(e, s, e->subgraphs[s].n_ops, NULL, NULL, err);
}
