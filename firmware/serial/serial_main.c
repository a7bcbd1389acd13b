/* Bare-metal benchmark server: the te_protocol (or, with TE_MLPERF=1, the
 * MLPerf Tiny / EEMBC protocol) over the board's CMSDK UART, for the Arm
 * MPS2/MPS3 machines QEMU emulates.
 *
 * The model arrives through the generated te_model_desc.c; the counter is the
 * SysTick instruction counter of measure.c (QEMU -icount), the stack is
 * painted and scanned like the semihosting runner's. Faults still end QEMU
 * through semihosting with a TE_EXIT_* status (startup.c), which the host
 * reports. Build definitions: TE_UART_BASE, TE_SYSTICK_HZ, TE_ICOUNT_SHIFT,
 * TE_BOARD, optional TE_MLPERF=1; test hooks TE_TEST_HANG_IN_RUN,
 * TE_TEST_FAULT_IN_RUN, TE_TEST_RESET_IN_RUN, TE_TEST_NOOP_RUN,
 * TE_TEST_COPY_RUN (what the model's invoke does instead of running: the
 * link tests' "board stops answering/crashes/resets", the MLPerf tests'
 * empty timed window and outputs of their choosing).
 */
#include <stdint.h>
#include <string.h>

#include "te_firmware.h"
#include "te_mlperf.h"
#include "te_protocol.h"
#include "te_uart.h"

#ifndef TE_UART_BASE
#error "TE_UART_BASE (the CMSDK UART's base address) must be defined by the build"
#endif
#ifndef TE_BOARD
#define TE_BOARD "unknown"
#endif
#ifndef TE_ICOUNT_SHIFT
#define TE_ICOUNT_SHIFT 6
#endif
#ifndef TE_MLPERF
#define TE_MLPERF 0
#endif

#define TE_AIRCR (*(volatile uint32_t*)0xE000ED0Cu)

static int bm_read_byte(uint32_t timeout_ms) {
  int c = te_uart_getc(TE_UART_BASE);
  if (c >= 0 || timeout_ms == 0u) return c;
  const uint64_t start = te_counter_read();
  const uint64_t limit = (uint64_t)timeout_ms * ((uint64_t)TE_SYSTICK_HZ / 1000u);
  for (;;) {
    c = te_uart_getc(TE_UART_BASE);
    if (c >= 0) return c;
    if (timeout_ms != TE_WAIT_FOREVER && te_counter_read() - start >= limit) return -1;
  }
}

static void bm_write(const uint8_t* data, uint32_t len) { te_uart_write(TE_UART_BASE, data, len); }

static uint64_t bm_elapsed(uint64_t from, uint64_t to) { return te_ticks_to_instructions(to - from); }

static __attribute__((noreturn)) void bm_reset(void) {
  __asm__ volatile("dsb" ::: "memory");
  TE_AIRCR = 0x05FA0004u; /* VECTKEY | SYSRESETREQ */
  __asm__ volatile("dsb" ::: "memory");
  for (;;) {
  }
}
static void bm_reset_void(void) { bm_reset(); }

/* QEMU runs this firmware with semihosting on: the host's files are one trap away. */
static int bm_load_file(const char* path, uint8_t* dst, uint32_t bytes) {
  const int32_t fd = te_sh_open(path, 1 /* "rb" */);
  if (fd < 0) return -1;
  const int ok = te_sh_flen(fd) == (int32_t)bytes && te_sh_read(fd, dst, bytes) == 0;
  te_sh_close(fd);
  return ok ? 0 : -1;
}

#if defined(TE_TEST_HANG_IN_RUN)
static int te_test_invoke(void) {
  for (;;) __asm__ volatile("");
  return 0;
}
#elif defined(TE_TEST_FAULT_IN_RUN)
static int te_test_invoke(void) {
  __asm__ volatile("udf #0");
  return 0;
}
#elif defined(TE_TEST_RESET_IN_RUN)
static int te_test_invoke(void) { bm_reset(); }
#elif defined(TE_TEST_NOOP_RUN)
static int te_test_invoke(void) { return 0; }
#elif defined(TE_TEST_COPY_RUN)
/* The output's bytes become the input's: the MLPerf tests choose the values printed. */
static int te_test_invoke(void) {
  uint8_t* out = (uint8_t*)(uintptr_t)te_model.output(0);
  const uint8_t* in = (const uint8_t*)te_model.input(0);
  const uint32_t n = te_model.outputs[0].bytes < te_model.inputs[0].bytes ? te_model.outputs[0].bytes
                                                                          : te_model.inputs[0].bytes;
  memmove(out, in, n);
  return 0;
}
#endif

#if TE_MLPERF
extern const te_mlperf_config te_mlperf_cfg;
#endif

int main(void) {
  te_counter_init();
  te_uart_init(TE_UART_BASE, 16u);
  te_port port = {
      .board = TE_BOARD,
      .platform = "bare-metal",
      .unit = TE_UNIT_INSTRUCTIONS,
      .icount_shift = (uint8_t)TE_ICOUNT_SHIFT,
      .counter_hz = (uint32_t)TE_SYSTICK_HZ,
      .read_byte = bm_read_byte,
      .write = bm_write,
      .stamp = te_counter_read,
      .elapsed = bm_elapsed,
      .stack_paint = te_stack_paint,
      .stack_peak = te_stack_peak_bytes,
      .stack_broken = te_stack_guard_broken,
      .stack_size = te_stack_size_bytes(),
      .reset = bm_reset_void,
      .load_file = bm_load_file,
  };
  te_model_desc model = te_model;
#if defined(TE_TEST_HANG_IN_RUN) || defined(TE_TEST_FAULT_IN_RUN) || defined(TE_TEST_RESET_IN_RUN) || \
    defined(TE_TEST_NOOP_RUN) || defined(TE_TEST_COPY_RUN)
  model.invoke = te_test_invoke;
#endif
#if TE_MLPERF
  te_mlperf_serve(&model, &port, &te_mlperf_cfg);
#else
  te_proto_send_boot(&model, &port);
  te_proto_serve(&model, &port);
#endif
  return TE_EXIT_OK;
}
