/*
 * The loaded graph (graph.c): subgraph 0 and the subgraphs CALL_ONCE calls,
 * put in execution order and run.
 */
#ifndef HIL_ENGINE_GRAPH_H
#define HIL_ENGINE_GRAPH_H

#include "engine_internal.h"

/* Execution order: subgraph 0 in order, each CALL_ONCE followed by the
 * operators of the subgraph it calls (e->exec_order, every op's time). */
void eng_order_ops(eng_t *e);

/* Runs the first `count` operators of loaded subgraph `s` in order, calling
 * `on_op` (may be NULL) after each. On a kernel failure `err` names the
 * operator, status ENG_E_INVOKE. */
eng_status eng_run_ops(eng_t *e, int s, int count, eng_op_hook on_op,
                       void *ctx, eng_error *err);

#endif
