/*
 * Arena memory plan (planner.c).
 */
#ifndef HIL_ENGINE_PLANNER_H
#define HIL_ENGINE_PLANNER_H

#include "engine_internal.h"

/* Computes tensor lifetimes over e->exec_order and offsets relative to the
 * start of the tensor region; sets e->plan_size. Offsets are stored in
 * arena_offset (the caller adds the region base). */
eng_status eng_plan(eng_t *e, eng_error *err);

#endif
