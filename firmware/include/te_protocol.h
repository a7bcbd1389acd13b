/*
 * tinyengine-tvm benchmark protocol: the device side, shared by the bare-metal
 * firmware (firmware/serial/serial_main.c, CMSDK UART under QEMU) and the
 * Zephyr application (zephyr_app/src/main.c, uart_poll_in/out).
 *
 * Everything platform-specific arrives through a te_port (byte I/O, a work
 * counter, stack measurement, reset); the model through a te_model_desc that
 * is generated per model (te_model_desc.c, tinyengine_tvm.micro.model_desc).
 * This file and te_protocol.c reference no other symbol, so they build into
 * any image (they are part of firmware/src/ and cost nothing when unused).
 *
 * Frame (all integers little-endian), docs/serial_protocol.md has the whole spec:
 *
 *   0      1      2..3   4     5     6      7 .. 6+LEN   7+LEN .. 10+LEN
 *   0xA5   0x5A   LEN    CMD   SEQ   HCRC   PAYLOAD       CRC32
 *
 *   LEN    payload bytes (at most the device's max_payload, told by HELLO)
 *   HCRC   CRC-8 (poly 0x07, init 0) of bytes 2..5: a corrupted length is
 *          rejected at once instead of swallowing the following frames
 *   CRC32  IEEE 802.3 CRC (zlib.crc32) of bytes 2 .. 6+LEN
 *
 * A response has CMD = request | 0x80 and the request's SEQ; an error is
 * CMD 0xFF with payload {u8 code, u8 request cmd, message text}.
 */
#ifndef TE_PROTOCOL_H_
#define TE_PROTOCOL_H_

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

#define TE_PROTO_VERSION 1u
#define TE_PROTO_SYNC0 0xA5u
#define TE_PROTO_SYNC1 0x5Au
#define TE_PROTO_HEADER_BYTES 7u   /* sync(2) len(2) cmd seq hcrc */
#define TE_PROTO_OVERHEAD 11u      /* header + CRC32 */

#ifndef TE_PROTO_MAX_PAYLOAD
#define TE_PROTO_MAX_PAYLOAD 1024u /* largest payload the device accepts or sends */
#endif
#ifndef TE_PROTO_BYTE_TIMEOUT_MS
#define TE_PROTO_BYTE_TIMEOUT_MS 2000u /* a frame whose next byte is later is dropped */
#endif
#define TE_WAIT_FOREVER 0xFFFFFFFFu

/* ---- commands (host -> device); the response is cmd | TE_RSP ----------- */
#define TE_CMD_HELLO 0x01u       /* -> device, counter and model summary */
#define TE_CMD_TENSOR 0x02u      /* {u8 kind (0 in, 1 out), u8 index} -> tensor description */
#define TE_CMD_WRITE_INPUT 0x03u /* {u8 index, u32 offset, data} -> {u8 index, u32 offset, u32 loaded} */
#define TE_CMD_RUN 0x04u         /* {u32 count, u32 inputs crc32, u8 flags} -> timings */
#define TE_CMD_READ_OUTPUT 0x05u /* {u8 index, u32 offset, u16 max} -> {u8 index, u32 offset, data} */
#define TE_CMD_TIMINGS 0x06u     /* -> the last RUN's timings again */
#define TE_CMD_ECHO 0x07u        /* payload -> the same payload */
#define TE_CMD_RESET 0x08u       /* -> empty response, then the device resets (a BOOT frame follows) */
#define TE_CMD_PROFILE 0x09u     /* {u16 first, u16 max} -> per-step counters of the last RUN (profile builds) */
#define TE_CMD_LOAD_INPUT 0x0Au  /* {u8 index, host file path} -> as WRITE_INPUT, the whole input read from
                                   the file (an emulator with semihosting: HELLO flags bit 2) */
#define TE_RSP 0x80u

/* ---- device -> host messages outside a response ------------------------- */
#define TE_MSG_FAULT 0x7Cu    /* {u32 reason, text}: the device crashed and resets */
#define TE_MSG_PROGRESS 0x7Du /* seq of the RUN: {u32 inferences done} */
#define TE_MSG_BOOT 0x7Eu     /* seq 0: the HELLO payload, sent once after every reset */
#define TE_RSP_ERROR 0xFFu

#define TE_RUN_FLAG_PROGRESS 0x01u

/* ---- error codes ----------------------------------------------------------- */
#define TE_ERR_CRC 1u        /* frame CRC32 mismatch */
#define TE_ERR_LENGTH 2u     /* payload too long for the device, or too short for the command */
#define TE_ERR_UNKNOWN 3u    /* unknown command */
#define TE_ERR_ARG 4u        /* bad index, offset, count */
#define TE_ERR_NOT_READY 5u  /* inputs not (completely) written, or no run yet */
#define TE_ERR_INPUT_CRC 6u  /* the inputs on the device are not what the host sent */
#define TE_ERR_RUN 7u        /* <name>_invoke returned non-zero */
#define TE_ERR_STACK 8u      /* the stack's guard words were overwritten */
#define TE_ERR_TIMEOUT 9u    /* a frame stopped arriving half-way */

/* ---- what the device reports its counter in ------------------------------- */
#define TE_UNIT_INSTRUCTIONS 1u /* QEMU -icount: executed instructions */
#define TE_UNIT_CYCLES 2u       /* silicon: DWT->CYCCNT core cycles */
/* Zephyr's k_cycle_get: the system timer's count, where the core has no DWT
 * cycle counter (QEMU, Cortex-M0): not core cycles. */
#define TE_UNIT_TIMER_TICKS 3u

/* ---- tensor element types -------------------------------------------------- */
#define TE_DTYPE_INT8 1u
#define TE_DTYPE_UINT8 2u
#define TE_DTYPE_INT16 3u
#define TE_DTYPE_INT32 4u
#define TE_DTYPE_FLOAT32 5u

typedef struct {
  const char* name;       /**< tensor name in the model */
  uint8_t dtype;          /**< TE_DTYPE_* */
  uint8_t rank;
  uint8_t quantized;      /**< 1 when scale/zero_point apply */
  const int32_t* shape;   /**< rank dimensions */
  uint32_t bytes;
  float scale;
  int32_t zero_point;
} te_tensor_desc;

/** One generated model (te_model_desc.c): its tensors, arena and entry points. */
typedef struct {
  const char* name;
  uint32_t num_inputs;
  uint32_t num_outputs;
  const te_tensor_desc* inputs;
  const te_tensor_desc* outputs;
  uint32_t arena_bytes;
  void* (*input)(int32_t index);         /**< <name>_input: where input i goes in the arena */
  const void* (*output)(int32_t index);  /**< <name>_output */
  int (*invoke)(void);                   /**< <name>_invoke */
  uint8_t* const* staging;               /**< per input: a static copy, restored before every inference */
  uint32_t num_steps;                    /**< steps of invoke (metadata.json "ops") */
  uint64_t* profile;                     /**< num_steps counters in a profile build (TE_PROFILE), else NULL */
} te_model_desc;

/** What a platform provides. All function pointers are required unless noted. */
typedef struct {
  const char* board;      /**< e.g. "mps2-an500", "nucleo_f746zg" */
  const char* platform;   /**< e.g. "bare-metal", "zephyr 4.3.0" */
  uint8_t unit;           /**< TE_UNIT_* of elapsed() */
  uint8_t icount_shift;   /**< QEMU -icount shift the instruction count assumes (0 on silicon) */
  uint32_t counter_hz;    /**< cycles per second (silicon) or SysTick ticks per second (QEMU) */
  /** A byte 0..255, or -1 when none arrived within timeout_ms (TE_WAIT_FOREVER: wait). */
  int (*read_byte)(uint32_t timeout_ms);
  void (*write)(const uint8_t* data, uint32_t len);
  /** A 64-bit monotonic time stamp (counter_hz units). */
  uint64_t (*stamp)(void);
  /** Work between two stamps, in `unit` (instructions or cycles). */
  uint64_t (*elapsed)(uint64_t from, uint64_t to);
  /** Paint the unused stack below the caller; stack_peak() is the deepest use since. */
  void (*stack_paint)(void);
  uint32_t (*stack_peak)(void);
  /** Non-zero when the stack overflowed (optional: NULL). */
  int (*stack_broken)(void);
  uint32_t stack_size;
  /** Reset the device (optional: NULL = TE_CMD_RESET unsupported). */
  void (*reset)(void);
  /** Read exactly `bytes` bytes of the host file `path` into dst; 0 on success (optional: NULL =
   *  TE_CMD_LOAD_INPUT unsupported). Only an emulator can: a board has no host file system. */
  int (*load_file)(const char* path, uint8_t* dst, uint32_t bytes);
} te_port;

/** Timings of the last RUN. */
typedef struct {
  uint32_t count;
  uint32_t output_crc;
  uint64_t total;
  uint64_t min;
  uint64_t max;
  uint64_t first;
  uint32_t stack_peak;
} te_run_stats;

/** The model, defined by the generated te_model_desc.c (declared here for the
 *  applications' main; nothing in te_protocol.c refers to it). */
extern const te_model_desc te_model;

/** CRC-32/IEEE (zlib.crc32): pass crc = 0 first, then the previous result. */
uint32_t te_crc32(uint32_t crc, const void* data, size_t len);
/** CRC-8, polynomial 0x07, initial value 0 (CRC-8/SMBUS). */
uint8_t te_crc8(const uint8_t* data, size_t len);

/** Send one frame whose payload is head followed by body (either may be empty). */
void te_proto_send(const te_port* port, uint8_t cmd, uint8_t seq, const uint8_t* head, uint32_t head_len,
                   const uint8_t* body, uint32_t body_len);
/** Send the TE_MSG_BOOT frame (call once after reset). */
void te_proto_send_boot(const te_model_desc* model, const te_port* port);
/** Send TE_MSG_FAULT (from a fatal-error handler, before resetting). */
void te_proto_send_fault(const te_port* port, uint32_t reason, const char* text);
/** Run inferences on the staged inputs: the RUN command without the link
 *  (used by te_proto_serve and the MLPerf server). Returns 0 or a TE_ERR_*. */
uint32_t te_proto_run(const te_model_desc* model, const te_port* port, uint32_t count, te_run_stats* stats,
                      uint8_t progress_seq, int progress);
#ifdef TE_PROFILE
/** Called by a profile build of the model before step `step` and after the last one
 *  (step == num_steps): adds the work since the previous mark to that step, during a RUN. */
void te_profile_mark(uint32_t step);
#endif

/** Serve requests forever. */
void te_proto_serve(const te_model_desc* model, const te_port* port);

#ifdef __cplusplus
}
#endif

#endif /* TE_PROTOCOL_H_ */
