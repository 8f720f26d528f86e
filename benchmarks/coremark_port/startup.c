/* Reset, memory set-up, semihosting and the few libc routines the compiler
 * may call, for CoreMark on QEMU's Cortex-M and RISC-V virt machines.
 * The linker script comes from benchmarks/coremark.py (the platform file's
 * code and ram regions). */
#include <stddef.h>  /* the compiler's own: the RISC-V toolchain has no libc headers */

typedef unsigned int u32;

/* memset/memcpy below must stay loops, not become calls to themselves */
#pragma GCC optimize("no-tree-loop-distribute-patterns")

int main(void);

extern u32 __data_load[], __data_start[], __data_end[], __bss_start[], __bss_end[], __stack_top[];

void *memset(void *dst, int c, size_t n) {
    unsigned char *d = dst;
    while (n--) *d++ = (unsigned char)c;
    return dst;
}

void *memcpy(void *dst, const void *src, size_t n) {
    unsigned char *d = dst;
    const unsigned char *s = src;
    while (n--) *d++ = *s++;
    return dst;
}

#if defined(__riscv)
static long semihost(long op, const void *arg) {
    register long a0 __asm__("a0") = op;
    register const void *a1 __asm__("a1") = arg;
    /* the RISC-V semihosting trap: ebreak between two marker no-ops, uncompressed */
    __asm__ volatile(".option push\n.option norvc\n"
                     ".balign 16\n"
                     "slli x0, x0, 0x1f\n"
                     "ebreak\n"
                     "srai x0, x0, 7\n"
                     ".option pop\n"
                     : "+r"(a0) : "r"(a1) : "memory");
    return a0;
}
#else
static long semihost(long op, const void *arg) {
    register long r0 __asm__("r0") = op;
    register const void *r1 __asm__("r1") = arg;
    __asm__ volatile("bkpt 0xab" : "+r"(r0) : "r"(r1) : "memory");
    return r0;
}
#endif

void semihost_write0(const char *s) { semihost(0x04, s); }               /* SYS_WRITE0 */

__attribute__((noreturn)) void semihost_exit(int code) {
    semihost(0x18, (const void *)(size_t)(code ? 0x20024 : 0x20026)); /* SYS_EXIT: RunTimeError / ApplicationExit */
    for (;;) {}
}

__attribute__((noreturn)) void reset_c(void) {
#if defined(__ARM_FP) || defined(__ARM_FEATURE_MVE)
    /* CPACR: full access to CP10/CP11 (FPU, MVE), else they UsageFault; first,
     * because the compiler may vectorise the copy loops below */
    *(volatile u32 *)0xE000ED88 |= 0xFu << 20;
    __asm__ volatile("dsb\n\tisb" ::: "memory");
#endif
    for (u32 *s = __data_load, *d = __data_start; d < __data_end;) *d++ = *s++;
    for (u32 *d = __bss_start; d < __bss_end;) *d++ = 0;
    semihost_exit(main());
}

#if defined(__riscv)
__asm__(".section .text.start, \"ax\"\n"
        ".globl _start\n"
        "_start:\n"
        "  la sp, __stack_top\n"
        "  j reset_c\n");
#else
static void fault(void) { semihost_exit(3); }

__attribute__((section(".vectors"), used)) static const void *const vectors[16] = {
    __stack_top, (const void *)reset_c, (const void *)fault, (const void *)fault,
    (const void *)fault, (const void *)fault, (const void *)fault,
};
#endif
