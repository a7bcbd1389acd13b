/* The tinyengine-tvm measurement firmware.
 *
 * 1. reads every model input from a host file through semihosting
 *    (te_inputs[i].file, relative to QEMU's working directory) and checks its
 *    size against the model's;
 * 2. runs <name>_run exactly once between two reads of the SysTick counter,
 *    with the stack freshly painted;
 * 3. writes every output to its host file;
 * 4. prints one line
 *      tinyengine-report: model=<name> board=<board> ticks=<n> sysclk_hz=<n>
 *        icount_shift=<n> instructions=<n> stack_peak_bytes=<n>
 *        stack_size_bytes=<n> status=ok
 *    and exits with 0 (QEMU's exit status).  Errors print
 *    "tinyengine-error: ..." and exit with a TE_EXIT_* status.
 */
#include <stdint.h>

#include "te_firmware.h"

#ifndef TE_BOARD
#define TE_BOARD "unknown"
#endif
#ifndef TE_ICOUNT_SHIFT
#define TE_ICOUNT_SHIFT 6
#endif

static char te_line[512];

static __attribute__((noreturn)) void te_fail(int32_t status, const char* what, const te_io_buffer* b,
                                              int64_t got) {
  size_t pos = 0;
  te_fmt_str(te_line, sizeof te_line, &pos, "tinyengine-error: ");
  te_fmt_str(te_line, sizeof te_line, &pos, what);
  if (b != 0) {
    te_fmt_str(te_line, sizeof te_line, &pos, " '");
    te_fmt_str(te_line, sizeof te_line, &pos, b->name);
    te_fmt_str(te_line, sizeof te_line, &pos, "' (file ");
    te_fmt_str(te_line, sizeof te_line, &pos, b->file);
    te_fmt_str(te_line, sizeof te_line, &pos, "): expected ");
    te_fmt_u64(te_line, sizeof te_line, &pos, b->bytes);
    te_fmt_str(te_line, sizeof te_line, &pos, " bytes");
    if (got >= 0) {
      te_fmt_str(te_line, sizeof te_line, &pos, ", got ");
      te_fmt_u64(te_line, sizeof te_line, &pos, (uint64_t)got);
    }
  } else if (got >= 0) {
    te_fmt_str(te_line, sizeof te_line, &pos, " ");
    te_fmt_u64(te_line, sizeof te_line, &pos, (uint64_t)got);
  }
  te_fmt_str(te_line, sizeof te_line, &pos, "\n");
  te_sh_puts(te_line);
  te_sh_exit(status);
}

static void te_read_inputs(void) {
  for (uint32_t i = 0; i < te_num_inputs; ++i) {
    const te_io_buffer* b = &te_inputs[i];
    const int32_t h = te_sh_open(b->file, 1 /* rb */);
    if (h < 0) te_fail(TE_EXIT_IO_OPEN, "cannot open input", b, -1);
    const int32_t len = te_sh_flen(h);
    if (len != (int32_t)b->bytes) {
      te_sh_close(h);
      te_fail(TE_EXIT_INPUT_SIZE, "wrong size of input", b, len);
    }
    const int32_t left = te_sh_read(h, b->data, b->bytes);
    te_sh_close(h);
    if (left != 0) te_fail(TE_EXIT_INPUT_SIZE, "short read of input", b, (int64_t)b->bytes - left);
  }
}

static void te_write_outputs(void) {
  for (uint32_t i = 0; i < te_num_outputs; ++i) {
    const te_io_buffer* b = &te_outputs[i];
    const int32_t h = te_sh_open(b->file, 5 /* wb */);
    if (h < 0) te_fail(TE_EXIT_IO_OPEN, "cannot create output", b, -1);
    const int32_t left = te_sh_write(h, b->data, b->bytes);
    te_sh_close(h);
    if (left != 0) te_fail(TE_EXIT_IO_WRITE, "short write of output", b, (int64_t)b->bytes - left);
  }
}

static void te_kv(size_t* pos, const char* key, uint64_t v) {
  te_fmt_str(te_line, sizeof te_line, pos, " ");
  te_fmt_str(te_line, sizeof te_line, pos, key);
  te_fmt_str(te_line, sizeof te_line, pos, "=");
  te_fmt_u64(te_line, sizeof te_line, pos, v);
}

int main(void) {
  te_read_inputs();
  te_counter_init();

#if defined(TE_FORCE_FAULT)
  __asm__ volatile("udf #0"); /* test hook: an undefined instruction -> UsageFault */
#endif
#if defined(TE_FORCE_HANG)
  for (;;) __asm__ volatile(""); /* test hook: never finishes */
#endif

  /* Cost of the measurement itself, subtracted below. */
  const uint64_t c0 = te_counter_read();
  const uint64_t c1 = te_counter_read();

  te_stack_paint();
  const uint64_t t0 = te_counter_read();
  const int rc = te_model_run();
  const uint64_t t1 = te_counter_read();
  const uint32_t stack_peak = te_stack_peak_bytes();

  if (rc != 0) te_fail(TE_EXIT_RUN_FAILED, "the model's run function returned", 0, rc < 0 ? -rc : rc);
  if (te_stack_guard_broken()) te_fail(TE_EXIT_STACK_OVERFLOW, "stack overflow; stack bytes:", 0, te_stack_size_bytes());
  te_write_outputs();

  const uint64_t overhead = c1 - c0;
  const uint64_t ticks = (t1 - t0) > overhead ? (t1 - t0) - overhead : 0u;
  size_t pos = 0;
  te_fmt_str(te_line, sizeof te_line, &pos, "tinyengine-report: model=");
  te_fmt_str(te_line, sizeof te_line, &pos, te_model_name);
  te_fmt_str(te_line, sizeof te_line, &pos, " board=");
  te_fmt_str(te_line, sizeof te_line, &pos, TE_BOARD);
  te_kv(&pos, "ticks", ticks);
  te_kv(&pos, "sysclk_hz", (uint64_t)TE_SYSTICK_HZ);
  te_kv(&pos, "icount_shift", (uint64_t)TE_ICOUNT_SHIFT);
  te_kv(&pos, "instructions", te_ticks_to_instructions(ticks));
  te_kv(&pos, "stack_peak_bytes", stack_peak);
  te_kv(&pos, "stack_size_bytes", te_stack_size_bytes());
  te_fmt_str(te_line, sizeof te_line, &pos, " status=ok\n");
  te_sh_puts(te_line);
  return TE_EXIT_OK;
}
