/* CoreMark port layer: seeds, timing stubs, a small printf over semihosting.
 * See core_portme.h for why there is no timer. */
#include <stdarg.h>

#include "coremark.h"

/* The performance run's seeds (0, 0, 0x66), read through volatiles so the
 * compiler cannot fold the benchmark's inputs. */
volatile ee_s32 seed1_volatile = 0x0;
volatile ee_s32 seed2_volatile = 0x0;
volatile ee_s32 seed3_volatile = 0x66;
volatile ee_s32 seed4_volatile = ITERATIONS;
volatile ee_s32 seed5_volatile = 0;

ee_u32 default_num_contexts = 1;

void semihost_write0(const char *s);   /* startup.c */
void semihost_exit(int code);

/* Entered once before and once after the timed iterations: the cycle
 * plugin's markers. noinline so the symbols exist and are called; different
 * bodies so the compiler cannot fold the two into one address. */
static volatile ee_u32 timed_phase;
__attribute__((noinline)) void coremark_timed_start(void) { timed_phase = 1; }
__attribute__((noinline)) void coremark_timed_stop(void) { timed_phase = 2; }

void start_time(void) { coremark_timed_start(); }
void stop_time(void) { coremark_timed_stop(); }
CORE_TICKS get_time(void) { return 0; }
secs_ret time_in_secs(CORE_TICKS ticks) { return (secs_ret)ticks; }

void portable_init(core_portable *p, int *argc, char *argv[]) {
    (void)argc;
    (void)argv;
    if (sizeof(ee_ptr_int) != sizeof(ee_u8 *) || sizeof(ee_u32) != 4)
        ee_printf("ERROR! port types do not match the target's pointer and int sizes\n");
    p->portable_id = 1;
}

void portable_fini(core_portable *p) {
    p->portable_id = 0;
    semihost_exit(0);
}

/* --- ee_printf: the conversions core_main.c uses (%d %u %x %s %c, l, 0-pad, width) */

struct out { char buf[256]; unsigned n; };

static void put(struct out *o, char c) {
    if (o->n + 1 >= sizeof o->buf) {
        o->buf[o->n] = 0;
        semihost_write0(o->buf);
        o->n = 0;
    }
    o->buf[o->n++] = c;
}

static void put_number(struct out *o, unsigned long v, unsigned base, int negative, int width, char pad) {
    char digits[24];
    int n = 0;
    do {
        digits[n++] = "0123456789abcdef"[v % base];
        v /= base;
    } while (v);
    if (negative) digits[n++] = '-';
    for (int i = n; i < width; i++) put(o, pad);
    while (n) put(o, digits[--n]);
}

int ee_printf(const char *fmt, ...) {
    struct out o = {.n = 0};
    va_list ap;
    va_start(ap, fmt);
    for (const char *f = fmt; *f; f++) {
        if (*f != '%') { put(&o, *f); continue; }
        f++;
        char pad = ' ';
        int width = 0, is_long = 0;
        if (*f == '0') { pad = '0'; f++; }
        while (*f >= '0' && *f <= '9') width = width * 10 + (*f++ - '0');
        while (*f == 'l') { is_long = 1; f++; }
        switch (*f) {
        case 'd': case 'i': {
            long v = is_long ? va_arg(ap, long) : va_arg(ap, int);
            put_number(&o, v < 0 ? -(unsigned long)v : (unsigned long)v, 10, v < 0, width, pad);
            break;
        }
        case 'u': put_number(&o, is_long ? va_arg(ap, unsigned long) : va_arg(ap, unsigned), 10, 0, width, pad); break;
        case 'x': case 'X': put_number(&o, is_long ? va_arg(ap, unsigned long) : va_arg(ap, unsigned), 16, 0, width, pad); break;
        case 's': for (const char *s = va_arg(ap, const char *); *s; s++) put(&o, *s); break;
        case 'c': put(&o, (char)va_arg(ap, int)); break;
        case '%': put(&o, '%'); break;
        default: put(&o, '%'); put(&o, *f); break;
        }
        if (!*f) break;
    }
    va_end(ap);
    o.buf[o.n] = 0;
    semihost_write0(o.buf);
    return (int)o.n;
}
