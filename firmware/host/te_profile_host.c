/*
 * Per-step wall time of a profile build of a model run on the host
 * (tinyengine_tvm.runtime.host, tvmc run --device=host --profile).
 *
 * The generated model, compiled with -DTE_PROFILE, calls te_profile_mark(s)
 * before step s and te_profile_mark(num_steps) after the last one. Here the
 * time between two marks (CLOCK_MONOTONIC, nanoseconds) is added to the step
 * before, less the cost of a mark itself, measured by te_profile_host_begin.
 * Built with -DTE_PROFILE_MAX_STEPS=<the model's NUM_STEPS>.
 */
#define _POSIX_C_SOURCE 199309L
#include <stdint.h>
#include <time.h>

#ifndef TE_PROFILE_MAX_STEPS
#error "te_profile_host.c needs -DTE_PROFILE_MAX_STEPS=<steps of the model>"
#endif

void te_profile_mark(uint32_t step);
void te_profile_host_begin(void);
void te_profile_host_end(void);
uint64_t te_profile_host_read(uint32_t step);
uint64_t te_profile_host_mark_cost(void);

static uint64_t te_ns[TE_PROFILE_MAX_STEPS + 1];
static uint64_t te_at;
static uint64_t te_mark_cost;
static int te_on;

static uint64_t te_now_ns(void) {
  struct timespec t;
  clock_gettime(CLOCK_MONOTONIC, &t);
  return (uint64_t)t.tv_sec * 1000000000u + (uint64_t)t.tv_nsec;
}

void te_profile_mark(uint32_t step) {
  if (!te_on) return;
  const uint64_t now = te_now_ns();
  if (step > 0u && step <= TE_PROFILE_MAX_STEPS) {
    const uint64_t e = now - te_at;
    te_ns[step - 1u] += e > te_mark_cost ? e - te_mark_cost : 0u;
  }
  te_at = te_now_ns();
}

/* Clear the counters and measure a mark's cost (the least of 100 back-to-back pairs). */
void te_profile_host_begin(void) {
  te_on = 1;
  te_mark_cost = 0u;
  uint64_t least = ~(uint64_t)0;
  for (int k = 0; k < 100; ++k) {
    te_ns[0] = 0u;
    te_profile_mark(0u);
    te_profile_mark(1u);
    if (te_ns[0] < least) least = te_ns[0];
  }
  te_mark_cost = least;
  for (uint32_t s = 0; s <= TE_PROFILE_MAX_STEPS; ++s) te_ns[s] = 0u;
}

void te_profile_host_end(void) { te_on = 0; }

uint64_t te_profile_host_read(uint32_t step) { return step < TE_PROFILE_MAX_STEPS ? te_ns[step] : 0u; }

uint64_t te_profile_host_mark_cost(void) { return te_mark_cost; }
