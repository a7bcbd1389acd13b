/* Test stub: <zephyr/sys/reboot.h>. */
#ifndef TE_STUB_ZEPHYR_REBOOT_H_
#define TE_STUB_ZEPHYR_REBOOT_H_
#define SYS_REBOOT_WARM 0
#define SYS_REBOOT_COLD 1
__attribute__((noreturn)) void sys_reboot(int type);
#endif
