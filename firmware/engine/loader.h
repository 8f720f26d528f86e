/*
 * Model loader (loader.c): the flatbuffer into eng_t's tables.
 */
#ifndef HIL_ENGINE_LOADER_H
#define HIL_ENGINE_LOADER_H

#include "engine_internal.h"

/* Reads e->model (e->model_len bytes) into e's tensors, operators and
 * subgraphs, and binds every operator's kernel. ENG_OK or an error. */
eng_status eng_read_model(eng_t *e, eng_error *err);

#endif
