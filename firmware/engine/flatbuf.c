/*
 * Bounds-checked FlatBuffers reader. See flatbuf.h.
 *
 * Layout reminders (all little endian):
 *   uoffset  u32, added to its own position, points forward
 *   soffset  i32 at a table start; vtable = table - soffset
 *   vtable   u16 vtable size, u16 table size, then one u16 per slot giving
 *            the field's offset from the table start (0 = absent)
 *   vector   u32 element count followed by the elements
 *   string   a byte vector followed by a NUL
 */
#include "flatbuf.h"

#include <string.h>

uint8_t fb_rd_u8(const fb_buf *b, uint32_t pos) { return b->buf[pos]; }

uint16_t fb_rd_u16(const fb_buf *b, uint32_t pos)
{
    const uint8_t *p = b->buf + pos;
    return (uint16_t)(p[0] | (p[1] << 8));
}

uint32_t fb_rd_u32(const fb_buf *b, uint32_t pos)
{
    const uint8_t *p = b->buf + pos;
    return (uint32_t)p[0] | ((uint32_t)p[1] << 8) | ((uint32_t)p[2] << 16) |
           ((uint32_t)p[3] << 24);
}

int32_t fb_rd_i32(const fb_buf *b, uint32_t pos)
{
    return (int32_t)fb_rd_u32(b, pos);
}

int64_t fb_rd_i64(const fb_buf *b, uint32_t pos)
{
    uint64_t lo = fb_rd_u32(b, pos);
    uint64_t hi = fb_rd_u32(b, pos + 4);
    return (int64_t)(lo | (hi << 32));
}

float fb_rd_f32(const fb_buf *b, uint32_t pos)
{
    uint32_t u = fb_rd_u32(b, pos);
    float f;
    memcpy(&f, &u, sizeof f);
    return f;
}

/* Is [pos, pos + size) inside the buffer? */
static int in_bounds(const fb_buf *b, uint64_t pos, uint64_t size)
{
    return pos <= b->len && size <= (uint64_t)b->len - pos;
}

int fb_table_at(const fb_buf *b, uint32_t table_pos, fb_table *out)
{
    int64_t vt;
    uint16_t vt_len, obj_len;

    if (!in_bounds(b, table_pos, 4))
        return FB_BAD;
    vt = (int64_t)table_pos - (int64_t)fb_rd_i32(b, table_pos);
    if (vt < 0 || !in_bounds(b, (uint64_t)vt, 4))
        return FB_BAD;
    vt_len = fb_rd_u16(b, (uint32_t)vt);
    obj_len = fb_rd_u16(b, (uint32_t)vt + 2);
    if (vt_len < 4 || (vt_len & 1u) || !in_bounds(b, (uint64_t)vt, vt_len))
        return FB_BAD;
    if (obj_len < 4 || !in_bounds(b, table_pos, obj_len))
        return FB_BAD;
    out->pos = table_pos;
    out->vt = (uint32_t)vt;
    out->vt_len = vt_len;
    out->obj_len = obj_len;
    return FB_OK;
}

/* Follow the uoffset stored at `pos`. */
static int follow(const fb_buf *b, uint32_t pos, uint32_t *target)
{
    uint64_t t;
    if (!in_bounds(b, pos, 4))
        return FB_BAD;
    t = (uint64_t)pos + fb_rd_u32(b, pos);
    if (t >= b->len)
        return FB_BAD;
    *target = (uint32_t)t;
    return FB_OK;
}

int fb_root(const fb_buf *b, fb_table *out)
{
    uint32_t pos;
    if (b->buf == NULL || b->len < 8)
        return FB_BAD;
    if (follow(b, 0, &pos) != FB_OK)
        return FB_BAD;
    return fb_table_at(b, pos, out);
}

int fb_field(const fb_buf *b, const fb_table *t, unsigned slot, uint32_t size,
             uint32_t *pos)
{
    uint32_t entry = 4u + 2u * slot;
    uint16_t off;

    if (entry + 2u > t->vt_len)
        return FB_ABSENT;
    off = fb_rd_u16(b, t->vt + entry);
    if (off == 0)
        return FB_ABSENT;
    /* The field must lie after the soffset and inside the table. */
    if (off < 4 || (uint32_t)off + size > t->obj_len)
        return FB_BAD;
    *pos = t->pos + off;
    return FB_OK;
}

int fb_get_u8(const fb_buf *b, const fb_table *t, unsigned slot, uint8_t def,
              uint8_t *out)
{
    uint32_t pos;
    int r = fb_field(b, t, slot, 1, &pos);
    *out = (r == FB_OK) ? fb_rd_u8(b, pos) : def;
    return r;
}

int fb_get_i8(const fb_buf *b, const fb_table *t, unsigned slot, int8_t def,
              int8_t *out)
{
    uint32_t pos;
    int r = fb_field(b, t, slot, 1, &pos);
    *out = (r == FB_OK) ? (int8_t)fb_rd_u8(b, pos) : def;
    return r;
}

int fb_get_i32(const fb_buf *b, const fb_table *t, unsigned slot, int32_t def,
               int32_t *out)
{
    uint32_t pos;
    int r = fb_field(b, t, slot, 4, &pos);
    *out = (r == FB_OK) ? fb_rd_i32(b, pos) : def;
    return r;
}

int fb_get_u32(const fb_buf *b, const fb_table *t, unsigned slot, uint32_t def,
               uint32_t *out)
{
    uint32_t pos;
    int r = fb_field(b, t, slot, 4, &pos);
    *out = (r == FB_OK) ? fb_rd_u32(b, pos) : def;
    return r;
}

int fb_get_u64(const fb_buf *b, const fb_table *t, unsigned slot, uint64_t def,
               uint64_t *out)
{
    uint32_t pos;
    int r = fb_field(b, t, slot, 8, &pos);
    *out = (r == FB_OK) ? (uint64_t)fb_rd_i64(b, pos) : def;
    return r;
}

int fb_get_f32(const fb_buf *b, const fb_table *t, unsigned slot, float def,
               float *out)
{
    uint32_t pos;
    int r = fb_field(b, t, slot, 4, &pos);
    *out = (r == FB_OK) ? fb_rd_f32(b, pos) : def;
    return r;
}

int fb_get_table(const fb_buf *b, const fb_table *t, unsigned slot,
                 fb_table *out)
{
    uint32_t pos, target;
    int r = fb_field(b, t, slot, 4, &pos);
    if (r != FB_OK)
        return r;
    if (follow(b, pos, &target) != FB_OK)
        return FB_BAD;
    return fb_table_at(b, target, out);
}

/* The vector whose uoffset is stored at `pos`. */
static int vec_at(const fb_buf *b, uint32_t pos, uint32_t elem_size,
                  fb_vec *out)
{
    uint32_t vpos, count;
    if (follow(b, pos, &vpos) != FB_OK)
        return FB_BAD;
    if (!in_bounds(b, vpos, 4))
        return FB_BAD;
    count = fb_rd_u32(b, vpos);
    if (!in_bounds(b, (uint64_t)vpos + 4u, (uint64_t)count * elem_size))
        return FB_BAD;
    out->pos = vpos + 4u;
    out->count = count;
    return FB_OK;
}

int fb_get_vec(const fb_buf *b, const fb_table *t, unsigned slot,
               uint32_t elem_size, fb_vec *out)
{
    uint32_t pos;
    int r = fb_field(b, t, slot, 4, &pos);
    out->pos = 0;
    out->count = 0;
    if (r != FB_OK)
        return r;
    return vec_at(b, pos, elem_size, out);
}

int fb_vec_table(const fb_buf *b, const fb_vec *v, uint32_t i, fb_table *out)
{
    uint32_t target;
    if (i >= v->count)
        return FB_BAD;
    if (follow(b, v->pos + 4u * i, &target) != FB_OK)
        return FB_BAD;
    return fb_table_at(b, target, out);
}

int fb_get_str(const fb_buf *b, const fb_table *t, unsigned slot,
               const char **s, uint32_t *n)
{
    uint32_t pos;
    fb_vec v;
    int r = fb_field(b, t, slot, 4, &pos);
    *s = "";
    *n = 0;
    if (r != FB_OK)
        return r;
    if (vec_at(b, pos, 1, &v) != FB_OK)
        return FB_BAD;
    /* the terminating NUL must be inside the buffer too */
    if (!in_bounds(b, v.pos, (uint64_t)v.count + 1u) ||
        b->buf[v.pos + v.count] != 0)
        return FB_BAD;
    *s = (const char *)(b->buf + v.pos);
    *n = v.count;
    return FB_OK;
}
