/*
 * A small, bounds-checked reader for FlatBuffers, used in place on the
 * model buffer. Only what the engine needs: the root table, tables and their
 * vtables, scalar fields, vectors (of scalars and of tables), strings and
 * unions (a union is a type byte in one slot plus a table in the next).
 *
 * Every position handed out has been checked against the buffer length, so
 * the element readers (fb_rd_*) may be used without further checks on
 * positions that lie inside a validated table field or vector.
 */
#ifndef HIL_ENGINE_FLATBUF_H
#define HIL_ENGINE_FLATBUF_H

#include <stdint.h>

typedef struct {
    const uint8_t *buf;
    uint32_t len;
} fb_buf;

/* A table: its start, its vtable and their sizes. */
typedef struct {
    uint32_t pos;     /* table start (holds the soffset to its vtable) */
    uint32_t vt;      /* vtable start */
    uint16_t vt_len;  /* vtable size in bytes */
    uint16_t obj_len; /* table size in bytes */
} fb_table;

/* A vector: position of element 0 and the element count. */
typedef struct {
    uint32_t pos;
    uint32_t count;
} fb_vec;

/* Results of the field getters. */
#define FB_OK 0      /* present and valid */
#define FB_ABSENT 1  /* not stored: the default applies */
#define FB_BAD (-1)  /* out of bounds or malformed */

/* Little-endian element readers (no checks: positions must be validated). */
uint8_t fb_rd_u8(const fb_buf *b, uint32_t pos);
uint16_t fb_rd_u16(const fb_buf *b, uint32_t pos);
uint32_t fb_rd_u32(const fb_buf *b, uint32_t pos);
int32_t fb_rd_i32(const fb_buf *b, uint32_t pos);
int64_t fb_rd_i64(const fb_buf *b, uint32_t pos);
float fb_rd_f32(const fb_buf *b, uint32_t pos);

/* The root table (uoffset at byte 0). Returns FB_OK or FB_BAD. */
int fb_root(const fb_buf *b, fb_table *out);

/* The table at an absolute position (e.g. a saved table start). */
int fb_table_at(const fb_buf *b, uint32_t table_pos, fb_table *out);

/* Position of a field of `size` bytes in slot `slot`.
 * FB_OK with *pos set, FB_ABSENT, or FB_BAD. */
int fb_field(const fb_buf *b, const fb_table *t, unsigned slot, uint32_t size,
             uint32_t *pos);

/* Scalar fields: *out gets the stored value or `def` when absent.
 * Return FB_OK/FB_ABSENT (both fine) or FB_BAD. */
int fb_get_u8(const fb_buf *b, const fb_table *t, unsigned slot, uint8_t def,
              uint8_t *out);
int fb_get_i8(const fb_buf *b, const fb_table *t, unsigned slot, int8_t def,
              int8_t *out);
int fb_get_i32(const fb_buf *b, const fb_table *t, unsigned slot, int32_t def,
               int32_t *out);
int fb_get_u32(const fb_buf *b, const fb_table *t, unsigned slot, uint32_t def,
               uint32_t *out);
int fb_get_u64(const fb_buf *b, const fb_table *t, unsigned slot, uint64_t def,
               uint64_t *out);
int fb_get_f32(const fb_buf *b, const fb_table *t, unsigned slot, float def,
               float *out);

/* Sub-table field (also the value of a union). */
int fb_get_table(const fb_buf *b, const fb_table *t, unsigned slot,
                 fb_table *out);

/* Vector field whose elements are `elem_size` bytes (4 for tables/strings). */
int fb_get_vec(const fb_buf *b, const fb_table *t, unsigned slot,
               uint32_t elem_size, fb_vec *out);

/* Element i of a vector of tables. FB_OK or FB_BAD. */
int fb_vec_table(const fb_buf *b, const fb_vec *v, uint32_t i, fb_table *out);

/* String field: pointer to its bytes (NUL terminated in the buffer). */
int fb_get_str(const fb_buf *b, const fb_table *t, unsigned slot,
               const char **s, uint32_t *n);

#endif
