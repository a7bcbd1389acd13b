/* MLPerf Tiny / EEMBC DUT serial protocol (performance and accuracy modes)
 * over a te_port; see te_mlperf.h. Written for this project from the
 * protocol's description (command names, messages and their order as the
 * mlcommons/tiny runner expects them); no code of that repository is used. */
#include "te_mlperf.h"

#include <string.h>

#define TE_ML_FW_VERSION "ULPMark for tinyML Firmware V0.0.1"
#define TE_ML_VENDOR "tinyengine-tvm"

/* ---- output -------------------------------------------------------------------- */
static const te_port* te_ml_port;

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

static void te_ml_puti(int64_t v) {
  if (v < 0) {
    te_ml_puts("-");
    te_ml_putu((uint64_t)(-v));
  } else {
    te_ml_putu((uint64_t)v);
  }
}

/* Three decimals, rounded half up on |v| (computed in double: reproducible). */
static void te_ml_put_fixed3(float v) {
  double d = (double)v;
  const int neg = d < 0.0;
  if (neg) d = -d;
  if (!(d < 1.0e15)) d = 1.0e15; /* also NaN */
  const uint64_t s = (uint64_t)(d * 1000.0 + 0.5);
  if (neg && s != 0u) te_ml_puts("-");
  te_ml_putu(s / 1000u);
  char frac[5] = {'.', (char)('0' + (int)(s / 100u % 10u)), (char)('0' + (int)(s / 10u % 10u)),
                  (char)('0' + (int)(s % 10u)), '\0'};
  te_ml_puts(frac);
}

static void te_ml_timestamp(void) {
  const uint64_t s = te_ml_port->stamp();
  const uint64_t hz = te_ml_port->counter_hz ? te_ml_port->counter_hz : 1u;
  const uint64_t us = (s / hz) * 1000000u + (s % hz) * 1000000u / hz;
  te_ml_puts("m-lap-us-");
  te_ml_putu(us);
  te_ml_puts("\r\n");
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

/* th_load_tensor: the db buffer into every input's staging copy. */
static int te_ml_load_tensor(const te_model_desc* m, const te_mlperf_config* cfg, uint32_t db_pos) {
  const uint32_t need = te_ml_db_needed(m, cfg);
  if (db_pos != need) {
    te_ml_puts("e-[Input db has ");
    te_ml_putu(db_pos);
    te_ml_puts(" bytes, expected ");
    te_ml_putu(need);
    te_ml_puts("]\r\n");
    return 0;
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
  return 1;
}

static void te_ml_results(const te_model_desc* m, const te_mlperf_config* cfg, uint32_t db_pos) {
  te_ml_puts("m-results-[");
  if (cfg->results_mode == TE_MLPERF_RESULTS_MSE && m->num_outputs > 0u && cfg->input_mode == TE_MLPERF_INPUT_FLOAT32) {
    const te_tensor_desc* t = &m->outputs[0];
    uint32_t n = t->bytes / te_ml_elem_bytes(t->dtype);
    if (n > db_pos / 4u) n = db_pos / 4u;
    const void* out = m->output(0);
    float sum = 0.0f;
    for (uint32_t k = 0; k < n; ++k) {
      const float diff = te_ml_dequant(t, out, k) - te_ml_get_f32(cfg->db + 4u * k);
      sum += diff * diff;
    }
    te_ml_put_fixed3(n ? sum / (float)n : 0.0f);
  } else {
    int first = 1;
    for (uint32_t i = 0; i < m->num_outputs; ++i) {
      const te_tensor_desc* t = &m->outputs[i];
      const uint32_t n = t->bytes / te_ml_elem_bytes(t->dtype);
      const void* out = m->output((int32_t)i);
      for (uint32_t k = 0; k < n; ++k) {
        if (!first) te_ml_puts(",");
        first = 0;
        te_ml_put_fixed3(te_ml_dequant(t, out, k));
      }
    }
  }
  te_ml_puts("]\r\n");
}

/* ---- parsing ---------------------------------------------------------------------- */
static int te_ml_streq(const char* a, const char* b) { return strcmp(a, b) == 0; }

/* Decimal integer; returns 0 and leaves *v when s is not one. */
static int te_ml_parse_int(const char* s, int64_t* v) {
  int neg = 0;
  int64_t r = 0;
  if (*s == '-') {
    neg = 1;
    ++s;
  }
  if (*s == '\0') return 0;
  for (; *s; ++s) {
    if (*s < '0' || *s > '9' || r > 100000000000LL) return 0;
    r = r * 10 + (*s - '0');
  }
  *v = neg ? -r : r;
  return 1;
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
  te_ml_puts("db print     : Print the loaded bytes as hex\r\n");
  te_ml_puts("infer N [W=10]: Load input, execute N inferences after W warmup loops\r\n");
  te_ml_puts("results      : Return the result fp32 vector\r\n");
}

/* ---- the server ---------------------------------------------------------------------- */
void te_mlperf_serve(const te_model_desc* m, const te_port* port, const te_mlperf_config* cfg) {
  static char cmd[TE_MLPERF_CMD_MAX + 1u];
  uint32_t pos = 0, db_size = 0, db_pos = 0;
  int overflow = 0;
  te_run_stats stats;
  te_ml_port = port;

  te_ml_puts("m-timestamp-mode-performance\r\n");
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
        int64_t n = 0;
        if (argc < 3 || !te_ml_parse_int(argv[2], &n)) {
          te_ml_puts("e-[Command 'db load' requires the # of bytes]\r\n");
        } else if (n <= 0) {
          te_ml_puts("e-[Command 'db load' must be >0 bytes]\r\n");
        } else if ((uint64_t)n > cfg->db_capacity) {
          te_ml_puts("e-[Supplied buffer size ");
          te_ml_puti(n);
          te_ml_puts(" exceeds maximum of ");
          te_ml_putu(cfg->db_capacity);
          te_ml_puts("]\r\n");
        } else {
          db_size = (uint32_t)n;
          db_pos = 0;
          te_ml_puts("m-[Expecting ");
          te_ml_putu(db_size);
          te_ml_puts(" bytes]\r\n");
        }
      } else if (te_ml_streq(argv[1], "print")) {
        static const char hex[] = "0123456789abcdef";
        for (uint32_t i = 0; i < db_pos; ++i) {
          if (i % 8u == 0u) te_ml_puts("m-buffer-");
          const char b[3] = {hex[cfg->db[i] >> 4], hex[cfg->db[i] & 0xFu], '\0'};
          te_ml_puts(b);
          te_ml_puts((i + 1u) % 8u == 0u || i + 1u == db_pos ? "\r\n" : "-");
        }
      } else {
        const char* h = argv[1];
        const uint32_t digits = (uint32_t)strlen(h);
        if (digits & 1u) {
          te_ml_puts("e-[Insufficent number of hex digits]\r\n");
        } else if (db_size == 0u) {
          te_ml_puts("e-[Use 'db load N' first]\r\n");
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
            if (db_pos < db_size) cfg->db[db_pos++] = (uint8_t)(hi * 16 + lo);
            if (db_pos == db_size) {
              te_ml_puts("m-load-done\r\n");
              break;
            }
          }
        }
      }
    } else if (te_ml_streq(w0, "infer")) {
      int64_t n = 1, w = 10;
      if (argc >= 2 && (!te_ml_parse_int(argv[1], &n) || n <= 0)) {
        te_ml_puts("e-[Inference iterations must be >0]\r\n");
      } else if (argc >= 3 && (!te_ml_parse_int(argv[2], &w) || w < 0)) {
        te_ml_puts("e-[Inference warmup must be >=0]\r\n");
      } else if (n > 100000000 || w > 100000000) {
        te_ml_puts("e-[Too many iterations]\r\n");
      } else if (te_ml_load_tensor(m, cfg, db_pos)) {
        uint32_t err = 0u;
        te_ml_puts("m-warmup-start-");
        te_ml_putu((uint64_t)w);
        te_ml_puts("\r\n");
        if (w > 0) err = te_proto_run(m, port, (uint32_t)w, &stats, 0u, 0);
        te_ml_puts("m-warmup-done\r\n");
        te_ml_puts("m-infer-start-");
        te_ml_putu((uint64_t)n);
        te_ml_puts("\r\n");
        te_ml_timestamp();
        if (err == 0u) err = te_proto_run(m, port, (uint32_t)n, &stats, 0u, 0);
        te_ml_timestamp();
        te_ml_puts("m-infer-done\r\n");
        if (err != 0u) {
          te_ml_puts(err == TE_ERR_STACK ? "e-[Stack overflow]\r\n" : "e-[Inference failed]\r\n");
        } else {
          te_ml_results(m, cfg, db_pos);
        }
      }
    } else if (te_ml_streq(w0, "results")) {
      te_ml_results(m, cfg, db_pos);
    } else {
      te_ml_puts("e-[Unknown command: ");
      te_ml_puts(w0);
      te_ml_puts("]\r\n");
    }
    te_ml_puts("m-ready\r\n");
  }
}
