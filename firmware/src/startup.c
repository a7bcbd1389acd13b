/* Reset, vector table and fault handlers of the tinyengine-tvm firmware.
 *
 * Reset: FPU enabled (CPACR), stack limit set (ARMv8-M MSPLIM), .data copied
 * from flash, .bss zeroed, the stack painted for peak measurement, C++/C
 * constructors run, then main(); its return value ends the emulation.
 * Every fault prints its status registers through semihosting and exits with
 * a distinctive status (TE_EXIT_* in te_firmware.h) instead of hanging.
 */
#include <stdint.h>

#include "te_firmware.h"

extern uint32_t __data_load__[], __data_start__[], __data_end__[];
extern uint32_t __bss_start__[], __bss_end__[];
extern uint32_t __stack_limit__[], __stack_top__[];
extern void (*__preinit_array_start[])(void);
extern void (*__preinit_array_end[])(void);
extern void (*__init_array_start[])(void);
extern void (*__init_array_end[])(void);

int main(void);

#define SCB_CPACR (*(volatile uint32_t*)0xE000ED88u)
#define SCB_SHCSR (*(volatile uint32_t*)0xE000ED24u)
#define SCB_CCR (*(volatile uint32_t*)0xE000ED14u)
#define SCB_CFSR (*(volatile uint32_t*)0xE000ED28u)
#define SCB_HFSR (*(volatile uint32_t*)0xE000ED2Cu)
#define SCB_MMFAR (*(volatile uint32_t*)0xE000ED34u)
#define SCB_BFAR (*(volatile uint32_t*)0xE000ED38u)
#define SAU_SFSR (*(volatile uint32_t*)0xE000EDE4u)

#if defined(__ARM_ARCH_8M_MAIN__) || defined(__ARM_ARCH_8_1M_MAIN__)
#define TE_ARMV8M 1
#else
#define TE_ARMV8M 0
#endif

__attribute__((noreturn, used)) void Reset_Handler(void) {
#if defined(__ARM_FP) || defined(__ARM_FEATURE_MVE)
  SCB_CPACR |= (0xFu << 20); /* CP10/CP11 full access: FPU (and MVE) */
  __asm__ volatile("dsb\n\tisb" ::: "memory");
#endif
#if TE_ARMV8M
  __asm__ volatile("msr msplim, %0" ::"r"(__stack_limit__));
#endif
  for (uint32_t *src = __data_load__, *dst = __data_start__; dst < __data_end__;) *dst++ = *src++;
  for (uint32_t* dst = __bss_start__; dst < __bss_end__;) *dst++ = 0u;
  te_stack_paint();
  /* Separate MemManage/BusFault/UsageFault (and SecureFault) handlers;
   * divide-by-zero traps instead of silently giving 0. */
  SCB_SHCSR |= (1u << 16) | (1u << 17) | (1u << 18) | (TE_ARMV8M ? (1u << 19) : 0u);
  SCB_CCR |= (1u << 4);
  __asm__ volatile("dsb\n\tisb" ::: "memory");
  for (void (**f)(void) = __preinit_array_start; f < __preinit_array_end; ++f) (*f)();
  for (void (**f)(void) = __init_array_start; f < __init_array_end; ++f) (*f)();
  te_sh_exit(main());
}

/* ---- faults ----------------------------------------------------------- */
static const char* const te_fault_names[] = {
    "HardFault", "MemManage", "BusFault", "UsageFault", "NMI", "unexpected interrupt", "SecureFault"};

/* Static, not on the stack: the fault may be a stack overflow. */
static char te_fault_line[256];

__attribute__((noreturn, used)) void te_fault_report(const uint32_t* frame, uint32_t status, uint32_t ipsr) {
  char* const line = te_fault_line;
  size_t pos = 0;
  const uint32_t idx = status - TE_EXIT_HARDFAULT;
  te_fmt_str(line, sizeof te_fault_line, &pos, "tinyengine-fault: ");
  te_fmt_str(line, sizeof te_fault_line, &pos, idx < 7u ? te_fault_names[idx] : "fault");
  te_fmt_str(line, sizeof te_fault_line, &pos, " exception=");
  te_fmt_u64(line, sizeof te_fault_line, &pos, ipsr & 0x1FFu);
  const uintptr_t f = (uintptr_t)frame;
  if (f >= (uintptr_t)__stack_limit__ && f + 32u <= (uintptr_t)__stack_top__ && (f & 3u) == 0u) {
    te_fmt_str(line, sizeof te_fault_line, &pos, " pc=");
    te_fmt_hex32(line, sizeof te_fault_line, &pos, frame[6]);
    te_fmt_str(line, sizeof te_fault_line, &pos, " lr=");
    te_fmt_hex32(line, sizeof te_fault_line, &pos, frame[5]);
  } else {
    te_fmt_str(line, sizeof te_fault_line, &pos, " sp=");
    te_fmt_hex32(line, sizeof te_fault_line, &pos, (uint32_t)f);
    te_fmt_str(line, sizeof te_fault_line, &pos, " (outside the stack: overflow?)");
  }
  te_fmt_str(line, sizeof te_fault_line, &pos, " cfsr=");
  te_fmt_hex32(line, sizeof te_fault_line, &pos, SCB_CFSR);
  te_fmt_str(line, sizeof te_fault_line, &pos, " hfsr=");
  te_fmt_hex32(line, sizeof te_fault_line, &pos, SCB_HFSR);
  te_fmt_str(line, sizeof te_fault_line, &pos, " mmfar=");
  te_fmt_hex32(line, sizeof te_fault_line, &pos, SCB_MMFAR);
  te_fmt_str(line, sizeof te_fault_line, &pos, " bfar=");
  te_fmt_hex32(line, sizeof te_fault_line, &pos, SCB_BFAR);
#if TE_ARMV8M
  if (status == TE_EXIT_SECUREFAULT) {
    te_fmt_str(line, sizeof te_fault_line, &pos, " sfsr=");
    te_fmt_hex32(line, sizeof te_fault_line, &pos, SAU_SFSR);
  }
#endif
  te_fmt_str(line, sizeof te_fault_line, &pos, "\n");
  te_sh_puts(line);
  te_sh_exit((int32_t)status);
}

/* Pick the stacked frame (MSP or PSP from EXC_RETURN bit 2), move SP back to
 * the top of the stack (it may have overflowed), then report. */
#define TE_FAULT_HANDLER(name, status)                         \
  __attribute__((naked, noreturn)) void name(void) {           \
    __asm__ volatile(                                          \
        "tst lr, #4\n\t"                                       \
        "ite eq\n\t"                                           \
        "mrseq r0, msp\n\t"                                    \
        "mrsne r0, psp\n\t"                                    \
        "mrs r2, ipsr\n\t"                                     \
        "ldr r1, =__stack_top__\n\t"                           \
        "mov sp, r1\n\t"                                       \
        "movs r1, #" #status "\n\t"                            \
        "b te_fault_report\n\t"                                \
        ".ltorg");                                             \
  }

TE_FAULT_HANDLER(HardFault_Handler, 97)
TE_FAULT_HANDLER(MemManage_Handler, 98)
TE_FAULT_HANDLER(BusFault_Handler, 99)
TE_FAULT_HANDLER(UsageFault_Handler, 100)
TE_FAULT_HANDLER(NMI_Handler, 101)
TE_FAULT_HANDLER(Default_Handler, 102)
TE_FAULT_HANDLER(SecureFault_Handler, 103)

_Static_assert(TE_EXIT_HARDFAULT == 97 && TE_EXIT_MEMMANAGE == 98 && TE_EXIT_BUSFAULT == 99 &&
                   TE_EXIT_USAGEFAULT == 100 && TE_EXIT_NMI == 101 && TE_EXIT_UNEXPECTED_IRQ == 102 &&
                   TE_EXIT_SECUREFAULT == 103,
               "fault handler statuses");

void SysTick_Handler(void);

/* ---- vector table ----------------------------------------------------- */
#define TE_NUM_IRQS 96
typedef void (*te_vector)(void);

__attribute__((section(".vectors"), used)) const te_vector te_vector_table[16 + TE_NUM_IRQS] = {
    [0] = (te_vector)(uintptr_t)__stack_top__,
    [1] = Reset_Handler,
    [2] = NMI_Handler,
    [3] = HardFault_Handler,
    [4] = MemManage_Handler,
    [5] = BusFault_Handler,
    [6] = UsageFault_Handler,
    [7] = SecureFault_Handler, /* ARMv8-M; reserved on ARMv7-M */
    [8 ... 10] = 0,
    [11] = Default_Handler,    /* SVCall */
    [12] = Default_Handler,    /* DebugMonitor */
    [13] = 0,
    [14] = Default_Handler,    /* PendSV */
    [15] = SysTick_Handler,
    [16 ...(16 + TE_NUM_IRQS - 1)] = Default_Handler,
};
