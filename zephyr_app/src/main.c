/*
 * tinyengine-tvm benchmark server, Zephyr port.
 *
 * The protocol code is the bare-metal firmware's (te_protocol.c, te_mlperf.c);
 * this file gives it a te_port on Zephyr:
 *   - the UART chosen as `tinyengine,uart` in boards/<board>.overlay (the
 *     board's debug-probe virtual COM port), polled with uart_poll_in/out;
 *   - a 64-bit core cycle counter: DWT->CYCCNT, its wraps recovered from
 *     k_uptime_get() (main never sleeps, so CYCCNT counts continuously);
 *     milliseconds = cycles / sys_clock_hw_cycles_per_sec() (the core clock
 *     on STM32: SysTick runs from it); where there is no DWT (QEMU) the
 *     system timer's k_cycle_get, reported as TE_UNIT_TIMER_TICKS, never
 *     as cycles;
 *   - stack painting of the main thread (CONFIG_THREAD_STACK_INFO);
 *   - sys_reboot for RESET, and a FAULT frame then a reboot on fatal errors.
 */
#include <stdint.h>
#include <string.h>

#include <zephyr/device.h>
#include <zephyr/devicetree.h>
#include <zephyr/drivers/uart.h>
#include <zephyr/fatal.h>
#include <zephyr/kernel.h>
#include <zephyr/sys/reboot.h>
#include <zephyr/version.h>

#include "te_mlperf.h"
#include "te_protocol.h"

#ifndef TE_MLPERF
#define TE_MLPERF 0
#endif
#ifndef TE_MLPERF_ENERGY
#define TE_MLPERF_ENERGY 0
#endif

#if TE_MLPERF && TE_MLPERF_ENERGY
#include <zephyr/drivers/gpio.h>
#endif

#if DT_HAS_CHOSEN(tinyengine_uart)
#define TE_UART_NODE DT_CHOSEN(tinyengine_uart)
#elif DT_HAS_CHOSEN(zephyr_console)
#define TE_UART_NODE DT_CHOSEN(zephyr_console)
#else
#error "no UART for the benchmark server: add 'chosen { tinyengine,uart = &usartN; };' to boards/<board>.overlay"
#endif

static const struct device *const te_uart = DEVICE_DT_GET(TE_UART_NODE);

/* ---- byte I/O ----------------------------------------------------------- */
static int te_read_byte(uint32_t timeout_ms)
{
	unsigned char c;

	if (uart_poll_in(te_uart, &c) == 0) {
		return c;
	}
	const int64_t start = k_uptime_get();

	for (;;) {
		if (uart_poll_in(te_uart, &c) == 0) {
			return c;
		}
		if (timeout_ms != TE_WAIT_FOREVER && k_uptime_get() - start >= (int64_t)timeout_ms) {
			return -1;
		}
	}
}

static void te_write(const uint8_t *data, uint32_t len)
{
	for (uint32_t i = 0; i < len; ++i) {
		uart_poll_out(te_uart, data[i]);
	}
}

/* ---- cycles --------------------------------------------------------------- */
#define TE_DEMCR (*(volatile uint32_t *)0xE000EDFCu)
#define TE_DWT_CTRL (*(volatile uint32_t *)0xE0001000u)
#define TE_DWT_CYCCNT (*(volatile uint32_t *)0xE0001004u)
#define TE_DWT_LAR (*(volatile uint32_t *)0xE0001FB0u)

static uint32_t te_hz;
static int64_t te_ms0;
static bool te_have_dwt;

static void te_cycles_init(void)
{
	te_hz = (uint32_t)sys_clock_hw_cycles_per_sec();
	TE_DEMCR |= (1u << 24);   /* TRCENA: enable the DWT */
	TE_DWT_LAR = 0xC5ACCE55u; /* unlock it (Cortex-M7; ignored elsewhere) */
	TE_DWT_CYCCNT = 0u;
	TE_DWT_CTRL |= 1u;        /* CYCCNTENA */
	te_ms0 = k_uptime_get();
	const uint32_t a = TE_DWT_CYCCNT;

	k_busy_wait(10);
	te_have_dwt = TE_DWT_CYCCNT != a; /* emulators without a DWT read 0 */
}

static uint64_t te_stamp(void)
{
	if (!te_have_dwt) {
#ifdef CONFIG_TIMER_HAS_64BIT_CYCLE_COUNTER
		return k_cycle_get_64();
#else
		return k_cycle_get_32();
#endif
	}
	const unsigned int key = irq_lock();
	const uint32_t low = TE_DWT_CYCCNT;
	const int64_t ms = k_uptime_get() - te_ms0;

	irq_unlock(key);
	/* The value congruent to CYCCNT modulo 2^32 nearest to the uptime's estimate. */
	const uint64_t approx = (uint64_t)(ms < 0 ? 0 : ms) * (te_hz / 1000u);
	uint64_t v = (approx & ~(uint64_t)0xFFFFFFFFu) | low;

	if (v > approx + 0x80000000u && v >= 0x100000000u) {
		v -= 0x100000000u;
	} else if (v + 0x80000000u < approx) {
		v += 0x100000000u;
	}
	return v;
}

static uint64_t te_elapsed(uint64_t from, uint64_t to)
{
	return to - from;
}

/* ---- stack ------------------------------------------------------------------ */
#define TE_PAINT 0xC5AC5AC5u
static uintptr_t te_stack_lo, te_stack_hi;

static __attribute__((noinline)) void te_stack_paint(void)
{
	volatile uint32_t here = 0u;
	volatile uint32_t *p = (volatile uint32_t *)((te_stack_lo + 3u) & ~(uintptr_t)3u);
	volatile uint32_t *const end = (volatile uint32_t *)(((uintptr_t)&here - 64u) & ~(uintptr_t)3u);

	while (p < end) {
		*p++ = TE_PAINT;
	}
}

static uint32_t te_stack_peak(void)
{
	const volatile uint32_t *p = (const volatile uint32_t *)((te_stack_lo + 3u) & ~(uintptr_t)3u);

	while ((uintptr_t)p < te_stack_hi && *p == TE_PAINT) {
		++p;
	}
	return (uint32_t)(te_stack_hi - (uintptr_t)p);
}

/* ---- reset -------------------------------------------------------------------- */
static void te_reset(void)
{
	k_busy_wait(2000); /* let the answer leave the UART */
	sys_reboot(SYS_REBOOT_COLD);
}

/* The board as `west build -b` names it: Zephyr 4's board target (e.g.
 * "mps2/an500"; CONFIG_BOARD alone is "mps2" for every MPS2 board). */
#ifdef CONFIG_BOARD_TARGET
#define TE_BOARD_NAME CONFIG_BOARD_TARGET
#else
#define TE_BOARD_NAME CONFIG_BOARD
#endif

static te_port te_zport = {
	.board = TE_BOARD_NAME,
	.platform = "zephyr " KERNEL_VERSION_STRING,
	.unit = TE_UNIT_CYCLES,
	.icount_shift = 0u,
	.read_byte = te_read_byte,
	.write = te_write,
	.stamp = te_stamp,
	.elapsed = te_elapsed,
	.stack_paint = te_stack_paint,
	.stack_peak = te_stack_peak,
	.stack_broken = NULL, /* the MPU stack guard turns an overflow into a fatal error */
	.reset = te_reset,
};

/* A crash (HardFault, stack guard, k_panic): tell the host, then reboot so the
 * board is usable again (the host sees FAULT, then BOOT). */
void k_sys_fatal_error_handler(unsigned int reason, const struct arch_esf *esf)
{
	ARG_UNUSED(esf);
#if TE_MLPERF
	static const char msg[] = "e-[fatal error: the device resets]\r\n";

	te_write((const uint8_t *)msg, sizeof(msg) - 1u);
	ARG_UNUSED(reason);
#else
	te_proto_send_fault(&te_zport, reason, "Zephyr fatal error");
#endif
	k_busy_wait(2000);
	sys_reboot(SYS_REBOOT_COLD);
	CODE_UNREACHABLE;
}

#if TE_MLPERF
extern const te_mlperf_config te_mlperf_cfg;
#endif

#if TE_MLPERF && TE_MLPERF_ENERGY
/* EEMBC energy mode: a time stamp is a falling edge on the open-drain pin the
 * IO manager watches (alias tinyengine-timestamp, mlperf_timestamp.overlay),
 * held low for TE_MLPERF_TIMESTAMP_HOLD_US (at least 1 us) and released. */
#if !DT_NODE_EXISTS(DT_ALIAS(tinyengine_timestamp))
#error "energy mode needs the devicetree alias tinyengine-timestamp (project option mlperf_timestamp_gpio)"
#endif
#ifndef TE_MLPERF_TIMESTAMP_HOLD_US
#define TE_MLPERF_TIMESTAMP_HOLD_US 10u
#endif
static const struct gpio_dt_spec te_ts_pin = GPIO_DT_SPEC_GET(DT_ALIAS(tinyengine_timestamp), gpios);

static void te_ts_pulse(void)
{
	gpio_pin_set_raw(te_ts_pin.port, te_ts_pin.pin, 0);
	k_busy_wait(TE_MLPERF_TIMESTAMP_HOLD_US);
	gpio_pin_set_raw(te_ts_pin.port, te_ts_pin.pin, 1);
}
#endif

int main(void)
{
	if (!device_is_ready(te_uart)) {
		return -1; /* nothing to talk on */
	}
	te_cycles_init();
	/* The host must know what it measures: DWT cycles, or the timer's ticks
	 * when te_stamp fell back to k_cycle_get. */
	te_zport.unit = te_have_dwt ? TE_UNIT_CYCLES : TE_UNIT_TIMER_TICKS;
	const struct k_thread *self = k_current_get();

	te_stack_lo = self->stack_info.start;
	te_stack_hi = self->stack_info.start + self->stack_info.size;
	te_zport.stack_size = (uint32_t)self->stack_info.size;
	te_zport.counter_hz = te_hz;
#if TE_MLPERF
#if TE_MLPERF_ENERGY
	/* Released (high) from the start, so that the first time stamp is a falling edge. */
	if (!gpio_is_ready_dt(&te_ts_pin) || gpio_pin_configure_dt(&te_ts_pin, GPIO_OUTPUT_HIGH) != 0) {
		return -1;
	}
	te_mlperf_set_timestamp_pulse(te_ts_pulse);
#endif
	te_mlperf_serve(&te_model, &te_zport, &te_mlperf_cfg);
#else
	te_proto_send_boot(&te_model, &te_zport);
	te_proto_serve(&te_model, &te_zport);
#endif
	return 0;
}
