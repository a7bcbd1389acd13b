/* Test stub: <zephyr/fatal.h>. */
#ifndef TE_STUB_ZEPHYR_FATAL_H_
#define TE_STUB_ZEPHYR_FATAL_H_
struct arch_esf;
void k_sys_fatal_error_handler(unsigned int reason, const struct arch_esf *esf);
#endif
