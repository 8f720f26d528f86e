/*
 * Resource variables and state across invokes (resource_vars.c).
 */
#ifndef HIL_ENGINE_RESOURCE_VARS_H
#define HIL_ENGINE_RESOURCE_VARS_H

#include "engine_internal.h"

/* One variable per distinct (container, shared_name) among the VAR_HANDLE
 * operators (each VAR_HANDLE's aux), sized and given its reset byte by the
 * first ASSIGN_VARIABLE in subgraph and operator order, as TFLite Micro's
 * prepare does. Offsets are left to the caller. */
eng_status eng_resolve_variables(eng_t *e, eng_error *err);

/* is_variable tensors: zero point for int8, zeros otherwise (TFLite Micro's
 * ResetVariableTensors); resource variables: their fill byte. */
void eng_clear_variables(eng_t *e);

#endif
