/*
 * Arena memory plan.
 *
 * Every non-constant tensor that an operator touches, or that is a model
 * input or output, lives in the arena. Its lifetime is the span of
 * execution times (positions in e->exec_order: subgraph 0 with each
 * CALL_ONCE followed by the subgraph it calls) from the first operator that
 * writes it (0 for model inputs and variables) to the last operator that
 * reads it (past the end for model outputs and variables). Buffers are placed greedily, largest first, at the
 * lowest offset where they overlap no buffer whose lifetime overlaps theirs.
 *
 * Two extra rules keep the caller-visible buffers usable between invokes:
 * model inputs and model outputs never share memory (so writing the next
 * input does not clobber the previous output), and model outputs stay live to
 * the end.
 *
 * RESHAPE does not move data, so its output shares its input's buffer when
 * the input is not a constant and the merged buffer would not hold both a
 * model input and a model output.
 */
#include "planner.h"

/* planner-only flags: the buffer (alias group) holds a model input/output */
#define GROUP_IN 0x20
#define GROUP_OUT 0x40

static int root_of(const eng_t *e, int t)
{
    int guard = ENG_MAX_TENSORS;
    while (e->tensors[t].alias >= 0 && guard-- > 0)
        t = e->tensors[t].alias;
    return t;
}

static int16_t max16(int16_t a, int16_t b) { return a > b ? a : b; }

static int conflicts(const eng_tensor *a, const eng_tensor *b)
{
    if (a->first_op <= b->last_op && b->first_op <= a->last_op)
        return 1; /* alive at the same time */
    if (((a->flags & GROUP_IN) && (b->flags & GROUP_OUT)) ||
        ((a->flags & GROUP_OUT) && (b->flags & GROUP_IN)))
        return 1; /* a model input never shares memory with an output */
    return 0;
}

static int needs_buffer(const eng_tensor *t)
{
    return t->const_data == NULL && t->first_op >= 0 && t->alias < 0;
}

static eng_status compute_lifetimes(eng_t *e, eng_error *err)
{
    const int16_t end = (int16_t)e->n_ops; /* "after the last operator" */
    int i, j, p;

    for (i = 0; i < e->n_tensors; ++i) {
        eng_tensor *t = &e->tensors[i];
        t->first_op = -1;
        t->last_op = -1;
        t->alias = -1;
        t->arena_offset = -1;
        t->flags &= (uint8_t)~(ENG_TF_PRODUCED | ENG_TF_USED | GROUP_IN |
                               GROUP_OUT);
        if (t->flags & ENG_TF_INPUT)
            t->flags |= GROUP_IN;
        if (t->flags & ENG_TF_OUTPUT)
            t->flags |= GROUP_OUT;
        if (t->const_data != NULL)
            continue;
        if (t->flags & ENG_TF_INPUT) {
            t->first_op = 0;
            t->last_op = 0;
        }
        if (t->flags & ENG_TF_VARIABLE) {
            t->first_op = 0;
            t->last_op = end;
        }
    }

    for (p = 0; p < e->n_ops; ++p) {
        const int o = e->exec_order[p];
        const eng_op *op = &e->ops[o];
        const int16_t time = op->time;
        for (j = 0; j < op->n_inputs; ++j) {
            eng_tensor *t;
            if (op->inputs[j] < 0)
                continue;
            t = &e->tensors[op->inputs[j]];
            t->flags |= ENG_TF_USED;
            if (t->const_data != NULL)
                continue;
            if (!(t->flags &
                  (ENG_TF_PRODUCED | ENG_TF_INPUT | ENG_TF_VARIABLE)))
                return eng_fail_invalid(err, e, o,
                                        "reads tensor %d before any operator "
                                        "writes it", op->inputs[j]);
            t->last_op = max16(t->last_op, time);
        }
        for (j = 0; j < op->n_outputs; ++j) {
            eng_tensor *t = &e->tensors[op->outputs[j]];
            int k;
            if (t->const_data != NULL)
                return eng_fail_invalid(err, e, o,
                                        "writes constant tensor %d",
                                        op->outputs[j]);
            if (t->flags & (ENG_TF_PRODUCED | ENG_TF_INPUT))
                return eng_fail_invalid(err, e, o,
                                        "writes tensor %d, which is a model "
                                        "input or already written",
                                        op->outputs[j]);
            for (k = 0; k < op->n_inputs; ++k)
                if (op->inputs[k] == op->outputs[j])
                    return eng_fail_invalid(err, e, o,
                                            "reads and writes tensor %d",
                                            op->outputs[j]);
            t->flags |= ENG_TF_PRODUCED;
            if (t->first_op < 0)
                t->first_op = time;
            t->last_op = max16(t->last_op, time);
        }
    }

    for (i = 0; i < e->n_outputs; ++i) {
        eng_tensor *t = &e->tensors[e->outputs[i]];
        if (t->const_data != NULL)
            continue;
        if (!(t->flags & (ENG_TF_PRODUCED | ENG_TF_INPUT | ENG_TF_VARIABLE)))
            return eng_fail(err, ENG_E_MODEL_INVALID, 0, -1,
                            "invalid model: output %d (tensor %d) is never "
                            "written", i, e->outputs[i]);
        t->last_op = end;
    }
    return ENG_OK;
}

/* Let RESHAPE outputs share their input's buffer where that is safe. */
static void alias_reshapes(eng_t *e)
{
    int i;
    for (i = 0; i < e->n_ops; ++i) {
        const eng_op *op = &e->ops[i];
        eng_tensor *in, *out, *root;
        int r;
        if (op->builtin != ENG_OP_RESHAPE || op->n_inputs < 1 ||
            op->n_outputs != 1 || op->inputs[0] < 0)
            continue;
        in = &e->tensors[op->inputs[0]];
        out = &e->tensors[op->outputs[0]];
        if (in->const_data != NULL || (out->flags & ENG_TF_VARIABLE) ||
            (in->flags & ENG_TF_VARIABLE) || in->bytes != out->bytes)
            continue;
        r = root_of(e, op->inputs[0]);
        root = &e->tensors[r];
        if (((root->flags & GROUP_IN) && (out->flags & GROUP_OUT)) ||
            ((root->flags & GROUP_OUT) && (out->flags & GROUP_IN)))
            continue;
        out->alias = (int16_t)r;
        root->flags |= (uint8_t)(out->flags & (GROUP_IN | GROUP_OUT));
        if (out->first_op < root->first_op)
            root->first_op = out->first_op;
        root->last_op = max16(root->last_op, out->last_op);
    }
}

eng_status eng_plan(eng_t *e, eng_error *err)
{
    int16_t *order = e->plan_order;
    int16_t *placed = e->plan_placed;
    int n = 0, n_placed = 0, i, j;
    uint64_t plan_size = 0;
    eng_status st;

    st = compute_lifetimes(e, err);
    if (st != ENG_OK)
        return st;
    alias_reshapes(e);

    /* buffers to place, largest first (then earliest first) */
    for (i = 0; i < e->n_tensors; ++i) {
        const eng_tensor *t = &e->tensors[i];
        if (!needs_buffer(t))
            continue;
        for (j = n; j > 0; --j) {
            const eng_tensor *o = &e->tensors[order[j - 1]];
            if (o->bytes > t->bytes ||
                (o->bytes == t->bytes && o->first_op <= t->first_op))
                break;
            order[j] = order[j - 1];
        }
        order[j] = (int16_t)i;
        ++n;
    }

    for (i = 0; i < n; ++i) {
        eng_tensor *t = &e->tensors[order[i]];
        const uint64_t size = ENG_ALIGN_UP((uint64_t)t->bytes);
        uint64_t offset = 0;
        /* placed[] is sorted by offset: take the first gap that is free of
         * every conflicting buffer */
        for (j = 0; j < n_placed; ++j) {
            const eng_tensor *p = &e->tensors[placed[j]];
            const uint64_t p_end =
                (uint64_t)p->arena_offset + ENG_ALIGN_UP((uint64_t)p->bytes);
            if (!conflicts(t, p))
                continue;
            if (offset + size <= (uint64_t)p->arena_offset)
                break;
            if (p_end > offset)
                offset = p_end;
        }
        if (offset + size > 0x7fffffffu)
            return eng_fail(err, ENG_E_LIMIT, 0, -1,
                            "the tensors need more than 2 GB of arena");
        t->arena_offset = (int32_t)offset;
        if (offset + size > plan_size)
            plan_size = offset + size;
        for (j = n_placed; j > 0; --j) {
            if (e->tensors[placed[j - 1]].arena_offset <= t->arena_offset)
                break;
            placed[j] = placed[j - 1];
        }
        placed[j] = order[i];
        ++n_placed;
    }

    for (i = 0; i < e->n_tensors; ++i) {
        eng_tensor *t = &e->tensors[i];
        if (t->alias >= 0)
            t->arena_offset = e->tensors[root_of(e, i)].arena_offset;
        t->flags &= (uint8_t)~(GROUP_IN | GROUP_OUT);
    }
    e->plan_size = (uint32_t)plan_size;
    return ENG_OK;
}
