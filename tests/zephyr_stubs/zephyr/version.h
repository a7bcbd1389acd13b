/* Test stub: <zephyr/version.h>. */
#ifndef TE_STUB_ZEPHYR_VERSION_H_
#define TE_STUB_ZEPHYR_VERSION_H_
#define KERNEL_VERSION_STRING "4.3.0"
#endif
