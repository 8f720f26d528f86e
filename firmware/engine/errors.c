/*
 * Errors of the built-in engine: messages formatted by a tiny formatter
 * (%s %d %u %%, no stdio on the device) into the caller's eng_error, and
 * the names and sizes of tensor types they mention.
 */
#include <stdarg.h>
#include <string.h>

#include "engine_internal.h"

/* ------------------------------------------------------------------------ */
/* Messages: a tiny formatter (%s %d %u %%), no stdio needed on the device. */

typedef struct {
    char *buf;
    size_t cap;
    size_t len;
} strbuf;

static void sb_putc(strbuf *sb, char c)
{
    if (sb->len + 1 < sb->cap)
        sb->buf[sb->len++] = c;
    sb->buf[sb->len] = '\0';
}

static void sb_puts(strbuf *sb, const char *s)
{
    if (s == NULL)
        s = "(null)";
    while (*s)
        sb_putc(sb, *s++);
}

static void sb_putu(strbuf *sb, unsigned long v)
{
    char tmp[24];
    int n = 0;
    do {
        tmp[n++] = (char)('0' + (v % 10u));
        v /= 10u;
    } while (v != 0 && n < (int)sizeof tmp);
    while (n > 0)
        sb_putc(sb, tmp[--n]);
}

static void sb_vformat(strbuf *sb, const char *fmt, va_list ap)
{
    for (; *fmt; ++fmt) {
        if (*fmt != '%') {
            sb_putc(sb, *fmt);
            continue;
        }
        ++fmt;
        if (*fmt == 's') {
            sb_puts(sb, va_arg(ap, const char *));
        } else if (*fmt == 'd') {
            int v = va_arg(ap, int);
            if (v < 0) {
                sb_putc(sb, '-');
                sb_putu(sb, 0ul - (unsigned long)(long)v);
            } else {
                sb_putu(sb, (unsigned long)v);
            }
        } else if (*fmt == 'u') {
            sb_putu(sb, va_arg(ap, unsigned));
        } else if (*fmt == '%') {
            sb_putc(sb, '%');
        } else {
            if (*fmt == '\0')
                break;
            sb_putc(sb, '%');
            sb_putc(sb, *fmt);
        }
    }
}

static void sb_format(strbuf *sb, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    sb_vformat(sb, fmt, ap);
    va_end(ap);
}

/* Where the errors of callers that pass no eng_error go: static, because a
 * whole message is too big for a small device's stack. */
static eng_error discarded_error;

static void set_error(eng_error *err, eng_status status, uint32_t detail,
                      int32_t op_index)
{
    err->status = status;
    err->detail = detail;
    err->op_index = op_index;
    err->message[0] = '\0';
}

/* Sets `err` and starts its message. */
static void sb_start(strbuf *sb, eng_error *err, eng_status status,
                     uint32_t detail, int32_t op_index)
{
    set_error(err, status, detail, op_index);
    sb->buf = err->message;
    sb->cap = sizeof err->message;
    sb->len = 0;
}

eng_status eng_fail(eng_error *err, eng_status status, uint32_t detail,
                    int32_t op_index, const char *fmt, ...)
{
    va_list ap;
    strbuf sb;
    if (err == NULL)
        return status;
    sb_start(&sb, err, status, detail, op_index);
    va_start(ap, fmt);
    sb_vformat(&sb, fmt, ap);
    va_end(ap);
    return status;
}

/* "operator N" for subgraph 0, "subgraph S operator N" for the others
 * (S as numbered in the model, N counted within it). */
static void sb_op_location(strbuf *sb, const eng_t *e, int op_index)
{
    const eng_subgraph *g = &e->subgraphs[e->ops[op_index].subgraph];
    if (e->ops[op_index].subgraph == 0)
        sb_format(sb, "operator %d", op_index);
    else
        sb_format(sb, "subgraph %u operator %d", (unsigned)g->index,
                  op_index - (int)g->first_op);
}

eng_status eng_fail_variant(eng_error *err, const eng_t *e, int op_index,
                            const char *what, ...)
{
    va_list ap;
    strbuf sb;
    if (err == NULL)
        return ENG_E_UNSUPPORTED;
    sb_start(&sb, err, ENG_E_UNSUPPORTED, (uint32_t)e->ops[op_index].builtin,
             op_index);
    sb_op_location(&sb, e, op_index);
    sb_format(&sb, ": %s ", eng_op_name(e->ops[op_index].builtin));
    va_start(ap, what);
    sb_vformat(&sb, what, ap);
    va_end(ap);
    sb_puts(&sb, " is not supported by the built-in engine");
    return ENG_E_UNSUPPORTED;
}

eng_status eng_fail_at(eng_error *err, const eng_t *e, eng_status status,
                       uint32_t detail, int op_index, const char *what, ...)
{
    va_list ap;
    strbuf sb;
    if (err == NULL)
        return status;
    sb_start(&sb, err, status, detail, op_index);
    sb_op_location(&sb, e, op_index);
    sb_puts(&sb, ": ");
    va_start(ap, what);
    sb_vformat(&sb, what, ap);
    va_end(ap);
    return status;
}

eng_error *eng_error_begin(eng_error *err)
{
    if (err == NULL)
        err = &discarded_error;
    set_error(err, ENG_OK, 0, -1);
    return err;
}

eng_status eng_fail_invalid(eng_error *err, const eng_t *e, int op_index,
                            const char *why, ...)
{
    va_list ap;
    strbuf sb;
    if (err == NULL)
        return ENG_E_MODEL_INVALID;
    sb_start(&sb, err, ENG_E_MODEL_INVALID, 0, op_index);
    sb_op_location(&sb, e, op_index);
    sb_format(&sb, ": %s: ", eng_op_name(e->ops[op_index].builtin));
    va_start(ap, why);
    sb_vformat(&sb, why, ap);
    va_end(ap);
    return ENG_E_MODEL_INVALID;
}

/* ------------------------------------------------------------------------ */
/* Type names and sizes                                                      */

const char *eng_dtype_name(int dtype)
{
    static const char *const names[] = {
        "float32", "float16", "int32", "uint8", "int64", "string",
        "bool", "int16", "complex64", "int8", "float64", "complex128",
        "uint64", "resource", "variant", "uint32", "uint16", "int4",
        "bfloat16", "int2", "uint4", "float8_e4m3fn", "float8_e5m2"};
    if (dtype >= 0 && dtype < (int)(sizeof names / sizeof names[0]))
        return names[dtype];
    return "unknown type";
}

uint32_t eng_dtype_size(int dtype)
{
    switch (dtype) {
    case ENG_FLOAT32:
    case ENG_INT32:
        return 4;
    case ENG_UINT8:
    case ENG_INT8:
    case ENG_BOOL:
        return 1;
    case ENG_INT16:
        return 2;
    case ENG_INT64:
        return 8;
    default:
        return 0;
    }
}
