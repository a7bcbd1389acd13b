/* Test stub: <zephyr/device.h>. */
#ifndef TE_STUB_ZEPHYR_DEVICE_H_
#define TE_STUB_ZEPHYR_DEVICE_H_
#include <stdbool.h>
struct device {
	const char *name;
};
bool device_is_ready(const struct device *dev);
extern const struct device te_stub_uart_device;
#define DEVICE_DT_GET(node) (&te_stub_uart_device)
#endif
