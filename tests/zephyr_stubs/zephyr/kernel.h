/* Test stub: the parts of <zephyr/kernel.h> zephyr_app/src/main.c uses. */
#ifndef TE_STUB_ZEPHYR_KERNEL_H_
#define TE_STUB_ZEPHYR_KERNEL_H_
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define ARG_UNUSED(x) (void)(x)
#define CODE_UNREACHABLE __builtin_unreachable()

struct _thread_stack_info {
	uintptr_t start;
	size_t size;
	size_t delta;
};
struct k_thread {
	struct _thread_stack_info stack_info;
};
typedef struct k_thread *k_tid_t;

k_tid_t k_current_get(void);
int64_t k_uptime_get(void);
void k_busy_wait(uint32_t usec_to_wait);
uint32_t k_cycle_get_32(void);
uint64_t k_cycle_get_64(void);
unsigned int irq_lock(void);
void irq_unlock(unsigned int key);
int sys_clock_hw_cycles_per_sec(void);
#endif
