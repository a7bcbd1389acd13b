/* Test stub: <zephyr/drivers/uart.h>. */
#ifndef TE_STUB_ZEPHYR_UART_H_
#define TE_STUB_ZEPHYR_UART_H_
#include <zephyr/device.h>
int uart_poll_in(const struct device *dev, unsigned char *p_char);
void uart_poll_out(const struct device *dev, unsigned char out_char);
#endif
