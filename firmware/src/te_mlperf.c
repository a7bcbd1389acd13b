/* MLPerf Tiny / EEMBC DUT serial protocol over a te_port; see te_mlperf.h.
 * Written for this project from the protocol's description and the reference
 * DUT's observable behaviour (messages, their order, the db buffer, the
 * result formats); no code of the mlcommons/tiny repository is used. */
#include "te_mlperf.h"

#include <string.h>

#define TE_ML_FW_VERSION "ULPMark for tinyML Firmware V0.0.1"
#define TE_ML_VENDOR "tinyengine-tvm"

/* ---- output -------------------------------------------------------------------- */
static const te_port* te_ml_port;
static void (*te_ml_pulse)(void);

void te_mlperf_set_timestamp_pulse(void (*pulse)(void)) { te_ml_pulse = pulse; }

static void te_ml_puts(const char* s) {
  te_ml_port->write((const uint8_t*)s, (uint32_t)strlen(s));
}

static void te_ml_putu(uint64_t v) {
  char tmp[21];
  int n = 0;
  do {
    tmp[n++] = (char)('0' + (int)(v % 10u));
    v /= 10u;
  } while (v != 0u);
  char out[21];
  for (int i = 0; i < n; ++i) out[i] = tmp[n - 1 - i];
  te_ml_port->write((const uint8_t*)out, (uint32_t)n);
}

/* printf("%d") of a 32-bit int. */
static void te_ml_puti(int32_t v) {
  if (v < 0) {
    te_ml_puts("-");
    te_ml_putu((uint64_t)(-(int64_t)v));
  } else {
    te_ml_putu((uint64_t)v);
  }
}

/* printf("%0.3f", v): the exact binary value rounded to 3 decimals, an exact
 * tie to even (glibc and newlib alike). |v| * 1000 is exact in double (24 + 10
 * mantissa bits), so the comparison with .5 is exact too. */
static void te_ml_put_printf3(float v) {
  const double d = (double)v;
  if (d != d) {
    te_ml_puts("nan");
    return;
  }
  const int neg = d < 0.0 || (d == 0.0 && 1.0 / d < 0.0); /* printf keeps the sign of -0.0 */
  const double a = (neg ? -d : d) * 1000.0;
  if (!(a < 1.8e19)) {
    te_ml_puts(neg ? "-inf" : "inf"); /* only infinities: finite floats this large do not occur */
    return;
  }
  uint64_t s = (uint64_t)a;
  const double r = a - (double)s;
  if (r > 0.5 || (r == 0.5 && (s & 1u))) ++s;
  if (neg) te_ml_puts("-");
  te_ml_putu(s / 1000u);
  char frac[5] = {'.', (char)('0' + (int)(s / 100u % 10u)), (char)('0' + (int)(s / 10u % 10u)),
                  (char)('0' + (int)(s % 10u)), '\0'};
  te_ml_puts(frac);
}

/* (int)f as C++ static_cast<int> does, without the undefined overflow. */
static int32_t te_ml_trunc(float f) {
  if (!(f > -2147483648.0f)) return f != f ? 0 : INT32_MIN;
  if (!(f < 2147483648.0f)) return INT32_MAX;
  return (int32_t)f;
}

/* The kws01 reference's "0.%d" (int)(v*10), "%d" (int)(v*100)%10, "%d"
 * (int)(v*1000)%10: truncation in float arithmetic (1.0 prints 0.1000). */
static void te_ml_put_trunc3(float v) {
  te_ml_puts("0.");
  te_ml_puti(te_ml_trunc(v * 10.0f));
  te_ml_puti(te_ml_trunc(v * 100.0f) % 10);
  te_ml_puti(te_ml_trunc(v * 1000.0f) % 10);
}

static void te_ml_put_value(const te_mlperf_config* cfg, float v) {
  if (cfg->results_format == TE_MLPERF_FMT_TRUNC3) {
    te_ml_put_trunc3(v);
  } else {
    te_ml_put_printf3(v);
  }
}

static void te_ml_put_lap(uint64_t stamp) {
  const uint64_t hz = te_ml_port->counter_hz ? te_ml_port->counter_hz : 1u;
  const uint64_t us = (stamp / hz) * 1000000u + (stamp % hz) * 1000000u / hz;
  te_ml_puts("m-lap-us-");
  te_ml_putu(us);
  te_ml_puts("\r\n");
}

/* th_timestamp: a pulse in energy mode, else the time printed at once. */
static void te_ml_timestamp(void) {
  if (te_ml_pulse != 0) {
    te_ml_pulse();
  } else {
    te_ml_put_lap(te_ml_port->stamp());
  }
}

/* ---- tensors -------------------------------------------------------------------- */
static uint32_t te_ml_elem_bytes(uint8_t dtype) {
  switch (dtype) {
    case TE_DTYPE_INT16:
      return 2u;
    case TE_DTYPE_INT32:
    case TE_DTYPE_FLOAT32:
      return 4u;
    default:
      return 1u;
  }
}

static uint32_t te_ml_db_needed(const te_model_desc* m, const te_mlperf_config* cfg) {
  uint32_t n = 0;
  for (uint32_t i = 0; i < m->num_inputs; ++i) {
    const uint32_t elems = m->inputs[i].bytes / te_ml_elem_bytes(m->inputs[i].dtype);
    n += cfg->input_mode == TE_MLPERF_INPUT_RAW ? m->inputs[i].bytes
         : cfg->input_mode == TE_MLPERF_INPUT_FLOAT32 ? 4u * elems
                                                       : elems;
  }
  return n;
}

/* Bytes per element of the db format (what the reference divides by when it
 * reports a short buffer in elements). */
static uint32_t te_ml_db_unit(const te_model_desc* m, const te_mlperf_config* cfg) {
  if (cfg->input_mode == TE_MLPERF_INPUT_FLOAT32) return 4u;
  if (cfg->input_mode == TE_MLPERF_INPUT_UINT8_MINUS_128 || m->num_inputs == 0u) return 1u;
  return te_ml_elem_bytes(m->inputs[0].dtype);
}

static float te_ml_get_f32(const uint8_t* p) {
  float f;
  memcpy(&f, p, 4);
  return f;
}

static float te_ml_dequant(const te_tensor_desc* t, const void* data, uint32_t k) {
  int32_t q;
  switch (t->dtype) {
    case TE_DTYPE_FLOAT32: {
      float f;
      memcpy(&f, (const uint8_t*)data + 4u * k, 4);
      return f;
    }
    case TE_DTYPE_UINT8:
      q = ((const uint8_t*)data)[k];
      break;
    case TE_DTYPE_INT16: {
      int16_t v;
      memcpy(&v, (const uint8_t*)data + 2u * k, 2);
      q = v;
      break;
    }
    case TE_DTYPE_INT32:
      memcpy(&q, (const uint8_t*)data + 4u * k, 4);
      break;
    default:
      q = ((const int8_t*)data)[k];
      break;
  }
  if (!t->quantized) return (float)q;
  return (float)(q - t->zero_point) * t->scale;
}

/* QuantizeFloatToInt8 of the MLPerf Tiny reference: round half away from zero, clamp. */
static int32_t te_ml_quantize(float v, const te_tensor_desc* t, int32_t lo, int32_t hi) {
  const float r = v / t->scale;
  const double d = (double)r;
  double a = d >= 0.0 ? d + 0.5 : d - 0.5;
  if (a > 2147483647.0) a = 2147483647.0;
  if (a < -2147483648.0) a = -2147483648.0;
  int64_t q = (int64_t)a + t->zero_point;
  if (q < lo) q = lo;
  if (q > hi) q = hi;
  return (int32_t)q;
}

/* th_load_tensor: the first bytes of the db buffer into every input's staging
 * copy. Like the reference, a buffer holding fewer bytes than the input needs
 * is reported and leaves the inputs as they were (the inference still runs);
 * more bytes than needed are fine (only the first ones are used). */
static void te_ml_load_tensor(const te_model_desc* m, const te_mlperf_config* cfg, uint32_t db_pos) {
  const uint32_t need = te_ml_db_needed(m, cfg);
  if (db_pos < need) {
    const uint32_t unit = te_ml_db_unit(m, cfg);
    te_ml_puts("Input db has ");
    te_ml_puti((int32_t)(db_pos / unit));
    te_ml_puts(" elemented, expected ");
    te_ml_puti((int32_t)(need / unit));
    te_ml_puts("\n");
    return;
  }
  const uint8_t* src = cfg->db;
  for (uint32_t i = 0; i < m->num_inputs; ++i) {
    const te_tensor_desc* t = &m->inputs[i];
    uint8_t* dst = m->staging[i];
    const uint32_t elems = t->bytes / te_ml_elem_bytes(t->dtype);
    if (cfg->input_mode == TE_MLPERF_INPUT_RAW) {
      memcpy(dst, src, t->bytes);
      src += t->bytes;
    } else if (cfg->input_mode == TE_MLPERF_INPUT_UINT8_MINUS_128) {
      for (uint32_t k = 0; k < elems; ++k) dst[k] = t->dtype == TE_DTYPE_INT8 ? (uint8_t)(src[k] - 128u) : src[k];
      src += elems;
    } else {
      for (uint32_t k = 0; k < elems; ++k) {
        const float v = te_ml_get_f32(src + 4u * k);
        if (t->dtype == TE_DTYPE_FLOAT32) {
          memcpy(dst + 4u * k, &v, 4);
        } else if (t->dtype == TE_DTYPE_UINT8) {
          dst[k] = (uint8_t)te_ml_quantize(v, t, 0, 255);
        } else {
          dst[k] = (uint8_t)(int8_t)te_ml_quantize(v, t, -128, 127);
        }
      }
      src += 4u * elems;
    }
  }
}

static void te_ml_results(const te_model_desc* m, const te_mlperf_config* cfg) {
  te_ml_puts("m-results-[");
  if (cfg->results_mode == TE_MLPERF_RESULTS_MSE && m->num_outputs > 0u && cfg->input_mode == TE_MLPERF_INPUT_FLOAT32) {
    /* ad01: the reconstruction error against the float input (the db's first floats). */
    const te_tensor_desc* t = &m->outputs[0];
    uint32_t n = t->bytes / te_ml_elem_bytes(t->dtype);
    const uint32_t n_in = te_ml_db_needed(m, cfg) / 4u;
    if (n > n_in) n = n_in;
    const void* out = m->output(0);
    float sum = 0.0f;
    for (uint32_t k = 0; k < n; ++k) {
      const float diff = te_ml_dequant(t, out, k) - te_ml_get_f32(cfg->db + 4u * k);
      sum += diff * diff;
    }
    te_ml_put_value(cfg, n ? sum / (float)n : 0.0f);
    if (cfg->trailing_comma) te_ml_puts(",");
  } else {
    int first = 1;
    for (uint32_t i = 0; i < m->num_outputs; ++i) {
      const te_tensor_desc* t = &m->outputs[i];
      const uint32_t n = t->bytes / te_ml_elem_bytes(t->dtype);
      const void* out = m->output((int32_t)i);
      for (uint32_t k = 0; k < n; ++k) {
        if (!first && !cfg->trailing_comma) te_ml_puts(",");
        first = 0;
        te_ml_put_value(cfg, te_ml_dequant(t, out, k));
        if (cfg->trailing_comma) te_ml_puts(",");
      }
    }
  }
  te_ml_puts("]\r\n");
}

/* ---- inference -------------------------------------------------------------------- */
static void te_ml_restore_inputs(const te_model_desc* m) {
  for (uint32_t i = 0; i < m->num_inputs; ++i) memcpy(m->input((int32_t)i), m->staging[i], m->inputs[i].bytes);
}

/* ee_infer: load the input, W warm-up inferences, then the timed window. The
 * window holds the N inferences and nothing else: the input is restored into
 * the arena before it, the start time is printed after it (in the same order,
 * before the end time), errors are checked after it. As with the reference,
 * inferences 2..N run on what the previous ones left in the arena (the arena
 * may reuse the input's bytes), so the results printed are the loaded input's
 * only for N = 1. */
static void te_ml_infer(const te_model_desc* m, const te_port* port, const te_mlperf_config* cfg, uint32_t db_pos,
                        uint32_t n, uint32_t w) {
  te_ml_load_tensor(m, cfg, db_pos);
  te_ml_restore_inputs(m);
  int rc = 0;
  te_ml_puts("m-warmup-start-");
  te_ml_putu(w);
  te_ml_puts("\r\n");
  for (uint32_t k = 0; k < w && rc == 0; ++k) rc = m->invoke();
  te_ml_puts("m-warmup-done\r\n");
  te_ml_puts("m-infer-start-");
  te_ml_putu(n);
  te_ml_puts("\r\n");
  te_ml_restore_inputs(m);
  int (*const invoke)(void) = m->invoke;
  uint64_t t0 = 0u, t1 = 0u;
  if (rc == 0) {
    if (te_ml_pulse != 0) {
      te_ml_pulse();
      for (uint32_t k = 0; k < n && rc == 0; ++k) rc = invoke();
      te_ml_pulse();
    } else {
      t0 = port->stamp();
      for (uint32_t k = 0; k < n && rc == 0; ++k) rc = invoke();
      t1 = port->stamp();
    }
  }
  if (te_ml_pulse == 0) {
    te_ml_put_lap(t0);
    te_ml_put_lap(t1);
  }
  te_ml_puts("m-infer-done\r\n");
  if (port->stack_broken != 0 && port->stack_broken()) {
    te_ml_puts("e-[Stack overflow]\r\n");
  } else if (rc != 0) {
    te_ml_puts("e-[Inference failed]\r\n");
  } else {
    te_ml_results(m, cfg);
  }
}

/* ---- parsing ---------------------------------------------------------------------- */
static int te_ml_streq(const char* a, const char* b) { return strcmp(a, b) == 0; }

/* atoi() as the reference uses it: optional sign, digits up to the first
 * other character, 0 when there are none (wrapping like a 32-bit int). */
static int32_t te_ml_atoi(const char* s) {
  int neg = 0;
  uint32_t r = 0;
  if (*s == '-' || *s == '+') neg = *s++ == '-';
  for (; *s >= '0' && *s <= '9'; ++s) r = r * 10u + (uint32_t)(*s - '0');
  return (int32_t)(neg ? 0u - r : r);
}

static int te_ml_hexval(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

static void te_ml_help(void) {
  te_ml_puts(TE_ML_FW_VERSION "\r\n\r\n");
  te_ml_puts("help         : Print this information\r\n");
  te_ml_puts("name         : Print the name of the device\r\n");
  te_ml_puts("timestamp    : Generate a timestamp\r\n");
  te_ml_puts("profile      : Print the firmware and model versions\r\n");
  te_ml_puts("db load N    : Allocate N bytes and set load counter\r\n");
  te_ml_puts("db HH[HH]*   : Load 8-bit hex byte(s) until N bytes\r\n");
  te_ml_puts("db print     : Print the N loaded bytes as hex\r\n");
  te_ml_puts("infer N [W=10]: Load input, execute N inferences after W warmup loops\r\n");
  te_ml_puts("results      : Return the result fp32 vector\r\n");
}

/* ---- the server ---------------------------------------------------------------------- */
void te_mlperf_serve(const te_model_desc* m, const te_port* port, const te_mlperf_config* cfg) {
  static char cmd[TE_MLPERF_CMD_MAX + 1u];
  uint32_t pos = 0, db_size = 0, db_pos = 0;
  int overflow = 0;
  te_ml_port = port;

  te_ml_puts(te_ml_pulse != 0 ? "m-timestamp-mode-energy\r\n" : "m-timestamp-mode-performance\r\n");
  te_ml_timestamp();
  te_ml_puts("m-init-done\r\n");
  te_ml_puts("m-ready\r\n");
  for (;;) {
    const int c = port->read_byte(TE_WAIT_FOREVER);
    if (c < 0 || c == '\r' || c == '\n' || c == '\0') continue;
    if (c != '%') {
      if (pos < TE_MLPERF_CMD_MAX) {
        cmd[pos++] = (char)c;
      } else {
        overflow = 1;
      }
      continue;
    }
    cmd[pos] = '\0';
    pos = 0;
    if (overflow) {
      overflow = 0;
      te_ml_puts("e-[Command too long]\r\nm-ready\r\n");
      continue;
    }
    /* Split on spaces: at most 4 words. */
    char* argv[4] = {0, 0, 0, 0};
    int argc = 0;
    for (char* s = cmd; *s && argc < 4;) {
      while (*s == ' ') *s++ = '\0';
      if (*s == '\0') break;
      argv[argc++] = s;
      while (*s && *s != ' ') ++s;
    }
    if (argc == 0) {
      te_ml_puts("m-ready\r\n");
      continue;
    }
    const char* w0 = argv[0];
    if (te_ml_streq(w0, "name")) {
      te_ml_puts("m-name-dut-[" TE_ML_VENDOR "]\r\n");
    } else if (te_ml_streq(w0, "timestamp")) {
      te_ml_timestamp();
    } else if (te_ml_streq(w0, "profile")) {
      te_ml_puts("m-profile-[" TE_ML_FW_VERSION "]\r\n");
      te_ml_puts("m-model-[");
      te_ml_puts(cfg->model_version);
      te_ml_puts("]\r\n");
    } else if (te_ml_streq(w0, "help")) {
      te_ml_help();
    } else if (te_ml_streq(w0, "db")) {
      if (argc < 2) {
        te_ml_puts("e-[Command 'db' requires a subcommand]\r\n");
      } else if (te_ml_streq(argv[1], "load")) {
        if (argc < 3) {
          te_ml_puts("e-[Command 'db load' requires the # of bytes]\r\n");
        } else {
          /* The reference keeps the requested size even when it refuses it. */
          const int32_t n = te_ml_atoi(argv[2]);
          db_size = (uint32_t)n;
          if (db_size == 0u) {
            te_ml_puts("e-[Command 'db load' must be >0 bytes]\r\n");
          } else {
            db_pos = 0;
            if (db_size > cfg->db_capacity) {
              te_ml_puts("Supplied buffer size ");
              te_ml_puti(n);
              te_ml_puts(" exceeds maximum of ");
              te_ml_puti((int32_t)cfg->db_capacity);
              te_ml_puts("\n");
            } else {
              te_ml_puts("m-[Expecting ");
              te_ml_puti(n);
              te_ml_puts(" bytes]\r\n");
            }
          }
        }
      } else if (te_ml_streq(argv[1], "print")) {
        /* The requested size, loaded or not, 8 bytes a line. */
        static const char hex[] = "0123456789abcdef";
        const uint32_t size = db_size < cfg->db_capacity ? db_size : cfg->db_capacity;
        for (uint32_t i = 0; i < size; ++i) {
          if (i % 8u == 0u) te_ml_puts("m-buffer-");
          const char b[3] = {hex[cfg->db[i] >> 4], hex[cfg->db[i] & 0xFu], '\0'};
          te_ml_puts(b);
          te_ml_puts((i + 1u) % 8u == 0u || i + 1u == size ? "\r\n" : "-");
        }
        if (size % 8u != 0u) te_ml_puts("\r\n");
      } else {
        const char* h = argv[1];
        const uint32_t digits = (uint32_t)strlen(h);
        if (digits & 1u) {
          te_ml_puts("e-[Insufficent number of hex digits]\r\n");
        } else {
          for (uint32_t i = 0; i < digits; i += 2u) {
            const int hi = te_ml_hexval(h[i]), lo = te_ml_hexval(h[i + 1u]);
            if (hi < 0 || lo < 0) {
              const char bad[3] = {h[i], h[i + 1u], '\0'};
              te_ml_puts("e-[Invalid hex digit '");
              te_ml_puts(bad);
              te_ml_puts("']\r\n");
              break;
            }
            /* Never past the buffer (the reference would write on). */
            if (db_pos < cfg->db_capacity) cfg->db[db_pos++] = (uint8_t)(hi * 16 + lo);
            if (db_pos == db_size) {
              te_ml_puts("m-load-done\r\n");
              break;
            }
          }
        }
      }
    } else if (te_ml_streq(w0, "infer")) {
      /* The reference's defaults (1 inference, 10 warm-ups) and checks. */
      int32_t n = 1, w = 10;
      if (argc >= 2) n = te_ml_atoi(argv[1]);
      if (argc >= 3) w = te_ml_atoi(argv[2]);
      if (n <= 0) {
        te_ml_puts("e-[Inference iterations must be >0]\r\n");
      } else if (w < 0) {
        te_ml_puts("e-[Inference warmup must be >=0]\r\n");
      } else {
        te_ml_infer(m, port, cfg, db_pos, (uint32_t)n, (uint32_t)w);
      }
    } else if (te_ml_streq(w0, "results")) {
      te_ml_results(m, cfg);
    } else {
      te_ml_puts("e-[Unknown command: ");
      te_ml_puts(w0);
      te_ml_puts("]\r\n");
    }
    te_ml_puts("m-ready\r\n");
  }
}
