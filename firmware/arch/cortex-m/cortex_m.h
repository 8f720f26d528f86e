/* Cortex-M core registers used by the common startup, fault and counter code. */
#ifndef HIL_CORTEX_M_H
#define HIL_CORTEX_M_H
#include <stdint.h>

#define REG32(addr) (*(volatile uint32_t *)(addr))

#define SCB_CPACR REG32(0xE000ED88u)
#define SCB_SHCSR REG32(0xE000ED24u)
#define SCB_CCR REG32(0xE000ED14u)
#define SCB_CFSR REG32(0xE000ED28u)
#define SCB_HFSR REG32(0xE000ED2Cu)
#define SCB_MMFAR REG32(0xE000ED34u)
#define SCB_BFAR REG32(0xE000ED38u)
#define SCB_AIRCR REG32(0xE000ED0Cu)
#define SCB_VTOR REG32(0xE000ED08u)

#define SYST_CSR REG32(0xE000E010u)
#define SYST_RVR REG32(0xE000E014u)
#define SYST_CVR REG32(0xE000E018u)

/* Start SysTick as a free-running 24-bit counter extended to 64 bits. */
void cm_counter_start(void);
uint64_t cm_counter_read(void);
/* Restart from zero with a fresh tick phase. */
void cm_counter_restart(void);

void cm_system_reset(void);

/* DWT cycle counter: enable it and return 1 if it really counts (QEMU and
 * some cores have none: a dead counter must never be reported as zero). */
int cm_dwt_start(void);
uint64_t cm_dwt_read(void);
void cm_dwt_restart(void);

/* Counter for the board.h functions (board_common.c): DWT when it really
 * counts, else SysTick. Boards call cm_counter_select() from board_init(). */
void cm_counter_select(void);
/* Before sleeping in WFI: stop SysTick (a tick is an event that would end
 * the sleep); board_counter_restart() starts it again. No-op with DWT. */
void cm_counter_idle(void);
/* board_idle() of a board whose UART interrupts on receive: poll ready()
 * a while, then sleep in WFI until NVIC interrupt `irq` (never taken) or
 * ready(); clear() clears the UART's receive-interrupt flag. */
void cm_idle(uint32_t irq, int (*ready)(void), void (*clear)(void));

/* Stack painted at reset; the deepest byte no longer painted is the
 * high-water mark. */
void cm_stack_usage(uint32_t *size, uint32_t *high_water);

#define DWT_CTRL REG32(0xE0001000u)
#define DWT_CYCCNT REG32(0xE0001004u)
#define DEMCR REG32(0xE000EDFCu)

#endif
