/* Arm CMSDK APB UART, polled (the UART of the MPS2/MPS3 FPGA boards and of
 * QEMU's mps2-an385/an386/an500 and mps3-an547 machines). */
#include "te_uart.h"

#define TE_UART_DATA(b) (*(volatile uint32_t*)((b) + 0x00u))
#define TE_UART_STATE(b) (*(volatile uint32_t*)((b) + 0x04u))
#define TE_UART_CTRL(b) (*(volatile uint32_t*)((b) + 0x08u))
#define TE_UART_INTCLEAR(b) (*(volatile uint32_t*)((b) + 0x0Cu))
#define TE_UART_BAUDDIV(b) (*(volatile uint32_t*)((b) + 0x10u))

#define TE_STATE_TX_FULL 0x1u
#define TE_STATE_RX_FULL 0x2u
#define TE_STATE_OVERRUNS 0xCu /* TX and RX overrun flags, write 1 to clear */
#define TE_CTRL_TX_EN 0x1u
#define TE_CTRL_RX_EN 0x2u

void te_uart_init(uintptr_t base, uint32_t bauddiv) {
  TE_UART_CTRL(base) = 0u;
  TE_UART_BAUDDIV(base) = bauddiv < 16u ? 16u : bauddiv;
  TE_UART_STATE(base) = TE_STATE_OVERRUNS;
  TE_UART_INTCLEAR(base) = 0xFu;
  TE_UART_CTRL(base) = TE_CTRL_TX_EN | TE_CTRL_RX_EN;
}

int te_uart_getc(uintptr_t base) {
  const uint32_t state = TE_UART_STATE(base);
  if (state & TE_STATE_OVERRUNS) TE_UART_STATE(base) = TE_STATE_OVERRUNS; /* a lost byte: the CRC catches it */
  if ((state & TE_STATE_RX_FULL) == 0u) return -1;
  return (int)(TE_UART_DATA(base) & 0xFFu);
}

void te_uart_putc(uintptr_t base, uint8_t c) {
  while (TE_UART_STATE(base) & TE_STATE_TX_FULL) {
  }
  TE_UART_DATA(base) = c;
}

void te_uart_write(uintptr_t base, const uint8_t* data, uint32_t len) {
  for (uint32_t i = 0; i < len; ++i) te_uart_putc(base, data[i]);
}
