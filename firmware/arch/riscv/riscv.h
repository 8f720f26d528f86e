/* RISC-V (RV32, machine mode) support shared by the RISC-V board layers:
 * startup, trap reporting, the minstret counter, semihosting. */
#ifndef HIL_RISCV_H
#define HIL_RISCV_H
#include <stdint.h>

#define REG32(addr) (*(volatile uint32_t *)(addr))
#define REG8(addr) (*(volatile uint8_t *)(addr))

/* Zicsr is named for the assembler here, not in -march: GCC 12 picks its
 * rv32imac multilib only for the plain -march=rv32imac. */
#define CSR_READ(csr)                                                                    \
    ({                                                                                   \
        uint32_t v_;                                                                     \
        __asm volatile(".option push\n.option arch, +zicsr\ncsrr %0, " #csr "\n.option pop"  \
                       : "=r"(v_));                                                      \
        v_;                                                                              \
    })

#define CSR_SET(csr, bits)                                                                  \
    __asm volatile(".option push\n.option arch, +zicsr\ncsrs " #csr ", %0\n.option pop" : : "r"(bits) : "memory")
#define CSR_CLEAR(csr, bits)                                                                \
    __asm volatile(".option push\n.option arch, +zicsr\ncsrc " #csr ", %0\n.option pop" : : "r"(bits) : "memory")

#define MIE_MEIE (1u << 11) /* machine external interrupt enable (mie) */

/* mcause exception codes (privileged spec, table 3.6) */
enum {
    RV_CAUSE_INSN_MISALIGNED = 0,
    RV_CAUSE_INSN_ACCESS = 1,
    RV_CAUSE_ILLEGAL_INSN = 2,
    RV_CAUSE_BREAKPOINT = 3,
    RV_CAUSE_LOAD_MISALIGNED = 4,
    RV_CAUSE_LOAD_ACCESS = 5,
    RV_CAUSE_STORE_MISALIGNED = 6,
    RV_CAUSE_STORE_ACCESS = 7,
};

/* minstret as a 64-bit counter: retired instructions (under QEMU's -icount,
 * an exact instruction count). */
uint64_t rv_counter_read(void);

/* Stack painted at reset; the deepest byte no longer painted is the
 * high-water mark. */
void rv_stack_usage(uint32_t *size, uint32_t *high_water);

#endif
