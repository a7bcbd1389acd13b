/*
 * Polled UART of the bare-metal firmware. The implementation in
 * src/te_uart_cmsdk.c drives the Arm CMSDK APB UART of the MPS2/MPS3 boards
 * QEMU emulates (UART0 is QEMU's serial 0). The Zephyr application does not
 * use this: it calls Zephyr's uart_poll_in/uart_poll_out on the board's UART.
 */
#ifndef TE_UART_H_
#define TE_UART_H_

#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/** Enable transmitter and receiver, polled (no interrupts). QEMU ignores
 *  the divider's value but wants it >= 16; on an FPGA board the baud rate is
 *  the peripheral clock / bauddiv. */
void te_uart_init(uintptr_t base, uint32_t bauddiv);
/** The next received byte, or -1 when none is waiting. */
int te_uart_getc(uintptr_t base);
/** Send one byte (waits while the transmit buffer is full). */
void te_uart_putc(uintptr_t base, uint8_t c);
/** Send len bytes. */
void te_uart_write(uintptr_t base, const uint8_t* data, uint32_t len);

#ifdef __cplusplus
}
#endif

#endif /* TE_UART_H_ */
