/* The tinyengine-tvm benchmark protocol, device side (see te_protocol.h and
 * docs/serial_protocol.md). Platform-independent: it talks through a te_port
 * and runs the model through a te_model_desc, and references nothing else
 * but memcpy. */
#include "te_protocol.h"

#include <string.h>

#define TE_PROTO_MAX_INPUTS 32u

/* ---- CRCs ------------------------------------------------------------------ */
static const uint32_t te_crc32_nibble[16] = {
    0x00000000u, 0x1DB71064u, 0x3B6E20C8u, 0x26D930ACu, 0x76DC4190u, 0x6B6B51F4u, 0x4DB26158u, 0x5005713Cu,
    0xEDB88320u, 0xF00F9344u, 0xD6D6A3E8u, 0xCB61B38Cu, 0x9B64C2B0u, 0x86D3D2D4u, 0xA00AE278u, 0xBDBDF21Cu};

uint32_t te_crc32(uint32_t crc, const void* data, size_t len) {
  const uint8_t* p = (const uint8_t*)data;
  crc = ~crc;
  for (size_t i = 0; i < len; ++i) {
    crc ^= p[i];
    crc = (crc >> 4) ^ te_crc32_nibble[crc & 0xFu];
    crc = (crc >> 4) ^ te_crc32_nibble[crc & 0xFu];
  }
  return ~crc;
}

uint8_t te_crc8(const uint8_t* data, size_t len) {
  uint8_t crc = 0u;
  for (size_t i = 0; i < len; ++i) {
    crc ^= data[i];
    for (int b = 0; b < 8; ++b) crc = (uint8_t)((crc & 0x80u) ? (uint8_t)((crc << 1) ^ 0x07u) : (uint8_t)(crc << 1));
  }
  return crc;
}

/* ---- little-endian helpers -------------------------------------------------- */
static void put_u16(uint8_t* p, uint32_t v) {
  p[0] = (uint8_t)v;
  p[1] = (uint8_t)(v >> 8);
}
static void put_u32(uint8_t* p, uint32_t v) {
  for (int i = 0; i < 4; ++i) p[i] = (uint8_t)(v >> (8 * i));
}
static void put_u64(uint8_t* p, uint64_t v) {
  for (int i = 0; i < 8; ++i) p[i] = (uint8_t)(v >> (8 * i));
}
static uint32_t get_u16(const uint8_t* p) { return (uint32_t)p[0] | ((uint32_t)p[1] << 8); }
static uint32_t get_u32(const uint8_t* p) {
  return (uint32_t)p[0] | ((uint32_t)p[1] << 8) | ((uint32_t)p[2] << 16) | ((uint32_t)p[3] << 24);
}
/* A length-prefixed string (at most 63 bytes); returns the bytes written. */
static uint32_t put_str(uint8_t* p, const char* s) {
  uint32_t n = 0;
  while (s != 0 && s[n] != '\0' && n < 63u) {
    p[1 + n] = (uint8_t)s[n];
    ++n;
  }
  p[0] = (uint8_t)n;
  return n + 1u;
}

/* ---- frames ------------------------------------------------------------------ */
void te_proto_send(const te_port* port, uint8_t cmd, uint8_t seq, const uint8_t* head, uint32_t head_len,
                   const uint8_t* body, uint32_t body_len) {
  uint8_t h[TE_PROTO_HEADER_BYTES];
  const uint32_t len = head_len + body_len;
  h[0] = TE_PROTO_SYNC0;
  h[1] = TE_PROTO_SYNC1;
  put_u16(h + 2, len);
  h[4] = cmd;
  h[5] = seq;
  h[6] = te_crc8(h + 2, 4);
  uint32_t crc = te_crc32(0u, h + 2, 5);
  if (head_len) crc = te_crc32(crc, head, head_len);
  if (body_len) crc = te_crc32(crc, body, body_len);
  uint8_t c[4];
  put_u32(c, crc);
  port->write(h, sizeof h);
  if (head_len) port->write(head, head_len);
  if (body_len) port->write(body, body_len);
  port->write(c, 4);
}

static void te_send_error(const te_port* port, uint8_t seq, uint8_t cmd, uint32_t code, const char* text) {
  uint8_t p[2 + 96];
  uint32_t n = 0;
  p[0] = (uint8_t)code;
  p[1] = cmd;
  while (text[n] != '\0' && n < 96u) {
    p[2 + n] = (uint8_t)text[n];
    ++n;
  }
  te_proto_send(port, TE_RSP_ERROR, seq, p, 2u + n, 0, 0);
}

/* ---- state ------------------------------------------------------------------- */
static uint8_t te_rx[TE_PROTO_HEADER_BYTES + TE_PROTO_MAX_PAYLOAD + 4u];
static uint8_t te_tx[256];
static uint32_t te_loaded[TE_PROTO_MAX_INPUTS];
static char te_path[256];
static te_run_stats te_last;
static int te_have_run;

static uint32_t te_hello_payload(const te_model_desc* model, const te_port* port, uint8_t* p) {
  p[0] = (uint8_t)TE_PROTO_VERSION;
  p[1] = port->unit;
  put_u16(p + 2, TE_PROTO_MAX_PAYLOAD);
  put_u32(p + 4, port->counter_hz);
  p[8] = port->icount_shift;
  p[9] = (uint8_t)model->num_inputs;
  p[10] = (uint8_t)model->num_outputs;
  p[11] = (uint8_t)((port->reset != 0 ? 1u : 0u) | (model->profile != 0 ? 2u : 0u) |
                    (port->load_file != 0 ? 4u : 0u));
  put_u32(p + 12, model->arena_bytes);
  put_u32(p + 16, port->stack_size);
  uint32_t n = 20;
  n += put_str(p + n, model->name);
  n += put_str(p + n, port->board);
  n += put_str(p + n, port->platform);
  return n;
}

void te_proto_send_boot(const te_model_desc* model, const te_port* port) {
  const uint32_t n = te_hello_payload(model, port, te_tx);
  te_proto_send(port, TE_MSG_BOOT, 0u, te_tx, n, 0, 0);
}

void te_proto_send_fault(const te_port* port, uint32_t reason, const char* text) {
  uint8_t p[4 + 64];
  uint32_t n = 0;
  put_u32(p, reason);
  while (text != 0 && text[n] != '\0' && n < 64u) {
    p[4 + n] = (uint8_t)text[n];
    ++n;
  }
  te_proto_send(port, TE_MSG_FAULT, 0u, p, 4u + n, 0, 0);
}

/* ---- running ------------------------------------------------------------------- */
static uint32_t te_outputs_crc(const te_model_desc* model) {
  uint32_t crc = 0u;
  for (uint32_t i = 0; i < model->num_outputs; ++i)
    crc = te_crc32(crc, model->output((int32_t)i), model->outputs[i].bytes);
  return crc;
}

#ifdef TE_PROFILE
/* Per-step counters: set up by te_proto_run for its inferences only, so a mark
 * outside a RUN (or a model without counters) costs a test and nothing else. */
static const te_port* te_prof_port;
static const te_model_desc* te_prof_model;
static uint64_t te_prof_at;
static uint64_t te_prof_mark_cost;
static uint32_t te_prof_count;

void te_profile_mark(uint32_t step) {
  const te_port* port = te_prof_port;
  if (port == 0) return;
  const uint64_t now = port->stamp();
  /* Raw stamp differences here (converted to the unit once, after the run):
   * a conversion per mark would cost more than the mark itself. */
  if (step > 0u && step <= te_prof_model->num_steps) {
    const uint64_t e = now - te_prof_at;
    te_prof_model->profile[step - 1u] += e > te_prof_mark_cost ? e - te_prof_mark_cost : 0u;
  }
  te_prof_at = port->stamp();
}

/* Counters and the mark's cost from stamp units to the port's unit. */
static void te_profile_end(const te_model_desc* model, const te_port* port) {
  if (te_prof_port == 0) return;
  te_prof_port = 0;
  for (uint32_t s = 0; s < model->num_steps; ++s) model->profile[s] = port->elapsed(0u, model->profile[s]);
  te_prof_mark_cost = port->elapsed(0u, te_prof_mark_cost);
}

/* The work a mark adds to the step before it (return, call, the stamp reads):
 * two marks back to back, the least of three tries. Then every counter is cleared. */
static void te_profile_begin(const te_model_desc* model, const te_port* port) {
  te_prof_model = model;
  te_prof_port = model->profile != 0 && model->num_steps > 0u ? port : 0;
  if (te_prof_port == 0) return;
  te_prof_mark_cost = 0u;
  uint64_t least = ~(uint64_t)0;
  for (int k = 0; k < 3; ++k) {
    model->profile[0] = 0u;
    te_profile_mark(0u);
    te_profile_mark(1u);
    if (model->profile[0] < least) least = model->profile[0];
  }
  te_prof_mark_cost = least;
  for (uint32_t s = 0; s < model->num_steps; ++s) model->profile[s] = 0u;
}
#endif

uint32_t te_proto_run(const te_model_desc* model, const te_port* port, uint32_t count, te_run_stats* stats,
                      uint8_t progress_seq, int progress) {
#ifdef TE_PROFILE
  te_profile_begin(model, port);
  te_prof_count = 0u;
#endif
  /* The cost of a back-to-back pair of stamps, subtracted from every figure. */
  uint64_t overhead = ~(uint64_t)0;
  for (int k = 0; k < 3; ++k) {
    const uint64_t a = port->stamp();
    const uint64_t b = port->stamp();
    const uint64_t o = port->elapsed(a, b);
    if (o < overhead) overhead = o;
  }
  stats->count = 0u;
  stats->total = 0u;
  stats->min = ~(uint64_t)0;
  stats->max = 0u;
  stats->first = 0u;
  port->stack_paint();
  for (uint32_t k = 0; k < count; ++k) {
    /* An inference may overwrite its inputs in the arena: restore them. */
    for (uint32_t i = 0; i < model->num_inputs; ++i)
      memcpy(model->input((int32_t)i), model->staging[i], model->inputs[i].bytes);
    const uint64_t t0 = port->stamp();
    const int rc = model->invoke();
    const uint64_t t1 = port->stamp();
    if (rc != 0) {
#ifdef TE_PROFILE
      te_profile_end(model, port);
#endif
      return TE_ERR_RUN;
    }
    const uint64_t e = port->elapsed(t0, t1);
    const uint64_t w = e > overhead ? e - overhead : 0u;
    stats->total += w;
    if (w < stats->min) stats->min = w;
    if (w > stats->max) stats->max = w;
    if (k == 0) stats->first = w;
    stats->count = k + 1u;
#ifdef TE_PROFILE
    te_prof_count = k + 1u;
#endif
    if (progress && k + 1u < count) {
      uint8_t p[4];
      put_u32(p, k + 1u);
      te_proto_send(port, TE_MSG_PROGRESS, progress_seq, p, 4, 0, 0);
    }
  }
#ifdef TE_PROFILE
  te_profile_end(model, port);
#endif
  stats->stack_peak = port->stack_peak();
  if (port->stack_broken != 0 && port->stack_broken()) return TE_ERR_STACK;
  stats->output_crc = te_outputs_crc(model);
  return 0u;
}

static uint32_t te_stats_payload(const te_port* port, const te_run_stats* s, uint8_t* p) {
  put_u32(p + 0, s->count);
  put_u32(p + 4, s->output_crc);
  put_u64(p + 8, s->total);
  put_u64(p + 16, s->count ? s->min : 0u);
  put_u64(p + 24, s->max);
  put_u64(p + 32, s->first);
  put_u32(p + 40, s->stack_peak);
  put_u32(p + 44, port->stack_size);
  p[48] = port->unit;
  return 49u;
}

/* ---- command handlers ---------------------------------------------------------- */
static void te_handle(const te_model_desc* model, const te_port* port, uint8_t cmd, uint8_t seq,
                      const uint8_t* p, uint32_t len) {
  const uint8_t rsp = (uint8_t)(cmd | TE_RSP);
  switch (cmd) {
    case TE_CMD_HELLO: {
      const uint32_t n = te_hello_payload(model, port, te_tx);
      te_proto_send(port, rsp, seq, te_tx, n, 0, 0);
      return;
    }
    case TE_CMD_ECHO:
      te_proto_send(port, rsp, seq, p, len, 0, 0);
      return;
    case TE_CMD_TENSOR: {
      if (len < 2u) break;
      const uint32_t kind = p[0], index = p[1];
      const uint32_t n_t = kind == 0u ? model->num_inputs : model->num_outputs;
      if (kind > 1u || index >= n_t) {
        te_send_error(port, seq, cmd, TE_ERR_ARG, "no such tensor");
        return;
      }
      const te_tensor_desc* t = kind == 0u ? &model->inputs[index] : &model->outputs[index];
      uint8_t* o = te_tx;
      o[0] = (uint8_t)kind;
      o[1] = (uint8_t)index;
      o[2] = t->dtype;
      o[3] = t->rank;
      put_u32(o + 4, t->bytes);
      uint32_t bits;
      memcpy(&bits, &t->scale, 4);
      put_u32(o + 8, bits);
      put_u32(o + 12, (uint32_t)t->zero_point);
      o[16] = t->quantized;
      uint32_t n = 17;
      for (uint32_t d = 0; d < t->rank && n + 4u < 180u; ++d, n += 4u) put_u32(o + n, (uint32_t)t->shape[d]);
      n += put_str(o + n, t->name);
      te_proto_send(port, rsp, seq, o, n, 0, 0);
      return;
    }
    case TE_CMD_WRITE_INPUT: {
      if (len < 5u) break;
      const uint32_t index = p[0], offset = get_u32(p + 1), n = len - 5u;
      if (index >= model->num_inputs || index >= TE_PROTO_MAX_INPUTS) {
        te_send_error(port, seq, cmd, TE_ERR_ARG, "no such input");
        return;
      }
      const uint32_t bytes = model->inputs[index].bytes;
      if (offset == 0u) te_loaded[index] = 0u;
      if (offset > te_loaded[index] || offset > bytes || n > bytes - offset) {
        te_send_error(port, seq, cmd, TE_ERR_ARG, "write outside the input or after a gap");
        return;
      }
      memcpy(model->staging[index] + offset, p + 5, n);
      if (offset + n > te_loaded[index]) te_loaded[index] = offset + n;
      te_tx[0] = (uint8_t)index;
      put_u32(te_tx + 1, offset);
      put_u32(te_tx + 5, te_loaded[index]);
      te_proto_send(port, rsp, seq, te_tx, 9, 0, 0);
      return;
    }
    case TE_CMD_LOAD_INPUT: {
      /* QEMU's UART takes one byte per main-loop round trip: loading an image over it costs far more
       * host CPU than the inference. Under semihosting the host's file system is one call away. */
      if (len < 2u) break;
      const uint32_t index = p[0], path_len = len - 1u;
      if (port->load_file == 0) {
        te_send_error(port, seq, cmd, TE_ERR_UNKNOWN, "this device cannot read host files");
        return;
      }
      if (index >= model->num_inputs || index >= TE_PROTO_MAX_INPUTS) {
        te_send_error(port, seq, cmd, TE_ERR_ARG, "no such input");
        return;
      }
      if (path_len >= sizeof te_path) {
        te_send_error(port, seq, cmd, TE_ERR_ARG, "file path too long");
        return;
      }
      memcpy(te_path, p + 1, path_len);
      te_path[path_len] = '\0';
      const uint32_t bytes = model->inputs[index].bytes;
      te_loaded[index] = 0u;
      if (port->load_file(te_path, model->staging[index], bytes) != 0) {
        te_send_error(port, seq, cmd, TE_ERR_ARG, "cannot read the input's bytes from that file");
        return;
      }
      te_loaded[index] = bytes;
      te_tx[0] = (uint8_t)index;
      put_u32(te_tx + 1, 0u);
      put_u32(te_tx + 5, bytes);
      te_proto_send(port, rsp, seq, te_tx, 9, 0, 0);
      return;
    }
    case TE_CMD_RUN: {
      if (len < 9u) break;
      const uint32_t count = get_u32(p), crc = get_u32(p + 4);
      const int progress = (p[8] & TE_RUN_FLAG_PROGRESS) != 0u;
      if (count == 0u) {
        te_send_error(port, seq, cmd, TE_ERR_ARG, "count must be at least 1");
        return;
      }
      uint32_t have = 0u;
      for (uint32_t i = 0; i < model->num_inputs; ++i) {
        if (i >= TE_PROTO_MAX_INPUTS || te_loaded[i] != model->inputs[i].bytes) {
          te_send_error(port, seq, cmd, TE_ERR_NOT_READY, "input not completely written since reset");
          return;
        }
        have = te_crc32(have, model->staging[i], model->inputs[i].bytes);
      }
      if (have != crc) {
        te_send_error(port, seq, cmd, TE_ERR_INPUT_CRC, "inputs on the device differ from the host's");
        return;
      }
      te_have_run = 0;
      const uint32_t err = te_proto_run(model, port, count, &te_last, seq, progress);
      if (err != 0u) {
        te_send_error(port, seq, cmd, err, err == TE_ERR_STACK ? "stack overflow" : "the model's invoke failed");
        return;
      }
      te_have_run = 1;
      const uint32_t n = te_stats_payload(port, &te_last, te_tx);
      te_proto_send(port, rsp, seq, te_tx, n, 0, 0);
      return;
    }
    case TE_CMD_TIMINGS: {
      if (!te_have_run) {
        te_send_error(port, seq, cmd, TE_ERR_NOT_READY, "no run since reset");
        return;
      }
      const uint32_t n = te_stats_payload(port, &te_last, te_tx);
      te_proto_send(port, rsp, seq, te_tx, n, 0, 0);
      return;
    }
    case TE_CMD_READ_OUTPUT: {
      if (len < 7u) break;
      const uint32_t index = p[0], offset = get_u32(p + 1);
      uint32_t n = get_u16(p + 5);
      if (!te_have_run) {
        te_send_error(port, seq, cmd, TE_ERR_NOT_READY, "no run since reset");
        return;
      }
      if (index >= model->num_outputs || offset > model->outputs[index].bytes) {
        te_send_error(port, seq, cmd, TE_ERR_ARG, "no such output or offset");
        return;
      }
      const uint32_t left = model->outputs[index].bytes - offset;
      if (n > left) n = left;
      if (n > TE_PROTO_MAX_PAYLOAD - 5u) n = TE_PROTO_MAX_PAYLOAD - 5u;
      te_tx[0] = (uint8_t)index;
      put_u32(te_tx + 1, offset);
      te_proto_send(port, rsp, seq, te_tx, 5, (const uint8_t*)model->output((int32_t)index) + offset, n);
      return;
    }
    case TE_CMD_PROFILE: {
      if (len < 4u) break;
#ifdef TE_PROFILE
      const uint32_t first = get_u16(p);
      uint32_t n = get_u16(p + 2);
      if (model->profile == 0) {
        te_send_error(port, seq, cmd, TE_ERR_NOT_READY, "the model has no step counters");
        return;
      }
      if (!te_have_run) {
        te_send_error(port, seq, cmd, TE_ERR_NOT_READY, "no run since reset");
        return;
      }
      if (first > model->num_steps) {
        te_send_error(port, seq, cmd, TE_ERR_ARG, "first step past the last");
        return;
      }
      if (n > model->num_steps - first) n = model->num_steps - first;
      if (n > (TE_PROTO_MAX_PAYLOAD - 17u) / 8u) n = (TE_PROTO_MAX_PAYLOAD - 17u) / 8u;
      put_u16(te_tx, (uint16_t)model->num_steps);
      put_u16(te_tx + 2, (uint16_t)first);
      put_u32(te_tx + 4, te_prof_count);
      put_u64(te_tx + 8, te_prof_mark_cost);
      te_tx[16] = port->unit;
      /* Counters go out as stored: little-endian, as every Cortex-M here runs. */
      te_proto_send(port, rsp, seq, te_tx, 17, (const uint8_t*)(model->profile + first), n * 8u);
#else
      (void)p;
      te_send_error(port, seq, cmd, TE_ERR_NOT_READY, "not a profile build (TE_PROFILE)");
#endif
      return;
    }
    case TE_CMD_RESET:
      if (port->reset == 0) {
        te_send_error(port, seq, cmd, TE_ERR_UNKNOWN, "reset is not supported here");
        return;
      }
      te_proto_send(port, rsp, seq, 0, 0, 0, 0);
      port->reset();
      return;
    default:
      te_send_error(port, seq, cmd, TE_ERR_UNKNOWN, "unknown command");
      return;
  }
  te_send_error(port, seq, cmd, TE_ERR_LENGTH, "payload too short for the command");
}

/* ---- the receive loop -------------------------------------------------------------- */
void te_proto_serve(const te_model_desc* model, const te_port* port) {
  for (uint32_t i = 0; i < TE_PROTO_MAX_INPUTS; ++i) te_loaded[i] = 0u;
  te_have_run = 0;
  for (;;) {
    /* Hunt for the two sync bytes; anything else is line noise. */
    int c = port->read_byte(TE_WAIT_FOREVER);
    if (c != (int)TE_PROTO_SYNC0) continue;
    do {
      c = port->read_byte(TE_PROTO_BYTE_TIMEOUT_MS);
    } while (c == (int)TE_PROTO_SYNC0);
    if (c != (int)TE_PROTO_SYNC1) continue;
    te_rx[0] = TE_PROTO_SYNC0;
    te_rx[1] = TE_PROTO_SYNC1;
    uint32_t i = 2;
    for (; i < TE_PROTO_HEADER_BYTES; ++i) {
      c = port->read_byte(TE_PROTO_BYTE_TIMEOUT_MS);
      if (c < 0) break;
      te_rx[i] = (uint8_t)c;
    }
    if (i < TE_PROTO_HEADER_BYTES) continue;
    if (te_crc8(te_rx + 2, 4) != te_rx[6]) continue; /* not a header: keep hunting */
    const uint32_t len = get_u16(te_rx + 2);
    const uint8_t cmd = te_rx[4], seq = te_rx[5];
    if (len > TE_PROTO_MAX_PAYLOAD) {
      te_send_error(port, seq, cmd, TE_ERR_LENGTH, "payload longer than max_payload");
      continue;
    }
    const uint32_t total = TE_PROTO_HEADER_BYTES + len + 4u;
    for (; i < total; ++i) {
      c = port->read_byte(TE_PROTO_BYTE_TIMEOUT_MS);
      if (c < 0) break;
      te_rx[i] = (uint8_t)c;
    }
    if (i < total) {
      te_send_error(port, seq, cmd, TE_ERR_TIMEOUT, "frame incomplete: the line went quiet");
      continue;
    }
    if (te_crc32(0u, te_rx + 2, 5u + len) != get_u32(te_rx + TE_PROTO_HEADER_BYTES + len)) {
      te_send_error(port, seq, cmd, TE_ERR_CRC, "CRC mismatch");
      continue;
    }
    te_handle(model, port, cmd, seq, te_rx + TE_PROTO_HEADER_BYTES, len);
  }
}
