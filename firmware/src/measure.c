/* SysTick-based 64-bit work counter and stack painting/peak measurement.
 *
 * Under QEMU with -icount shift=S every guest instruction advances virtual
 * time by 2^S ns, and SysTick (clocked from the processor clock) follows
 * virtual time, so a tick count converts exactly to executed instructions:
 *   instructions = ticks * 1e9 / (TE_SYSTICK_HZ * 2^S).
 * DWT->CYCCNT is not modelled by QEMU; on silicon the same ticks are cycles.
 */
#include "te_firmware.h"

#ifndef TE_SYSTICK_HZ
#error "TE_SYSTICK_HZ (the SysTick clock in Hz) must be defined by the build"
#endif
#ifndef TE_ICOUNT_SHIFT
#define TE_ICOUNT_SHIFT 6
#endif

#define SYST_CSR (*(volatile uint32_t*)0xE000E010u)
#define SYST_RVR (*(volatile uint32_t*)0xE000E014u)
#define SYST_CVR (*(volatile uint32_t*)0xE000E018u)
#define SCB_ICSR (*(volatile uint32_t*)0xE000ED04u)
#define SCB_SHPR3 (*(volatile uint32_t*)0xE000ED20u)
#define ICSR_PENDSTSET (1u << 26)
#define SYST_RELOAD 0x00FFFFFFu

static volatile uint32_t te_systick_wraps;

void SysTick_Handler(void) { te_systick_wraps = te_systick_wraps + 1u; }

void te_counter_init(void) {
  SYST_CSR = 0u;
  SCB_SHPR3 = (SCB_SHPR3 & 0x00FFFFFFu); /* SysTick at the highest priority */
  te_systick_wraps = 0u;
  SYST_RVR = SYST_RELOAD;
  SYST_CVR = 0u;                 /* any write clears the counter */
  SYST_CSR = (1u << 2) | (1u << 1) | 1u; /* processor clock, TICKINT, ENABLE */
}

uint64_t te_counter_read(void) {
  uint32_t primask;
  __asm__ volatile("mrs %0, primask\n\tcpsid i" : "=r"(primask)::"memory");
  uint32_t wraps = te_systick_wraps;
  uint32_t value = SYST_CVR;
  if (SCB_ICSR & ICSR_PENDSTSET) { /* wrapped; its interrupt has not run yet */
    wraps += 1u;
    value = SYST_CVR;
  }
  __asm__ volatile("msr primask, %0" ::"r"(primask) : "memory");
  return (uint64_t)wraps * (SYST_RELOAD + 1u) + (uint64_t)(SYST_RELOAD - value);
}

static uint64_t te_gcd(uint64_t a, uint64_t b) {
  while (b != 0u) {
    uint64_t t = a % b;
    a = b;
    b = t;
  }
  return a;
}

uint64_t te_ticks_to_instructions(uint64_t ticks) {
  uint64_t num = 1000000000u;
  uint64_t den = (uint64_t)TE_SYSTICK_HZ << TE_ICOUNT_SHIFT;
  const uint64_t g = te_gcd(num, den);
  num /= g;
  den /= g;
  /* ticks * num / den without overflowing 64 bits for any realistic count */
  const uint64_t whole = ticks / den, rest = ticks % den;
  return whole * num + (rest * num + den / 2u) / den;
}

/* ---- stack ---------------------------------------------------------- */
extern uint32_t __stack_limit__[];
extern uint32_t __stack_top__[];
#define TE_STACK_GUARD_WORDS 4u

uintptr_t te_stack_pointer(void) {
  uintptr_t sp;
  __asm__ volatile("mov %0, sp" : "=r"(sp));
  return sp;
}

uintptr_t te_stack_top(void) { return (uintptr_t)__stack_top__; }

uint32_t te_stack_size_bytes(void) { return (uint32_t)((uintptr_t)__stack_top__ - (uintptr_t)__stack_limit__); }

/* Paint everything below the caller's frame. In assembly so that nothing
 * (not even a saved register of this function) lives below SP while it runs. */
__attribute__((naked)) void te_stack_paint(void) {
  __asm__ volatile(
      "ldr r0, =__stack_limit__\n\t"
      "mov r1, sp\n\t"
      "bic r1, r1, #3\n\t"
      "ldr r2, =0xC5AC5AC5\n\t" /* TE_STACK_PAINT */
      "1:\n\t"
      "cmp r0, r1\n\t"
      "bhs 2f\n\t"
      "str r2, [r0], #4\n\t"
      "b 1b\n\t"
      "2:\n\t"
      "bx lr\n\t"
      ".ltorg");
}
_Static_assert(TE_STACK_PAINT == 0xC5AC5AC5u, "te_stack_paint's literal");

uint32_t te_stack_peak_bytes(void) {
  const uint32_t* p = __stack_limit__;
  const uint32_t* const top = __stack_top__;
  while (p < top && *p == TE_STACK_PAINT) ++p;
  return (uint32_t)((uintptr_t)top - (uintptr_t)p);
}

int te_stack_guard_broken(void) {
  for (uint32_t i = 0; i < TE_STACK_GUARD_WORDS; ++i) {
    if (__stack_limit__[i] != TE_STACK_PAINT) return 1;
  }
  return 0;
}
