/*
 * MLPerf Tiny / EEMBC benchmark serial protocol, DUT side: performance and
 * accuracy modes (the runner of the mlcommons/tiny repository talks to the
 * board directly) and energy mode (timestamps are pulses on a GPIO that the
 * runner's IO manager watches, at 9600 baud).
 *
 * Commands are ASCII, terminated by '%'; every command's output ends with
 * "m-ready\r\n". Supported: name, profile, help, timestamp, db load N,
 * db HEXBYTES, db print, infer N [W], results. What the reference DUT code
 * (EEMBC internally_implemented.cpp and the reference submissions) prints,
 * this prints: the same messages, the same db capacity, the same result
 * format per benchmark (docs/serial_protocol.md lists the details).
 *
 * Platform-independent like te_protocol.c: a te_port, a te_model_desc and a
 * te_mlperf_config (generated next to the model descriptor).
 */
#ifndef TE_MLPERF_H_
#define TE_MLPERF_H_

#include <stdint.h>

#include "te_protocol.h"

#ifdef __cplusplus
extern "C" {
#endif

/* How the bytes of 'db' become the model's input (all inputs, in order). */
#define TE_MLPERF_INPUT_RAW 0u             /* the input tensors' own bytes (kws01) */
#define TE_MLPERF_INPUT_UINT8_MINUS_128 1u /* one uint8 per element, minus 128 -> int8 (ic01, vww01) */
#define TE_MLPERF_INPUT_FLOAT32 2u         /* float32 per element, quantized with the input's scale (ad01) */

/* What 'results' prints. */
#define TE_MLPERF_RESULTS_VECTOR 0u /* m-results-[every output element, dequantized] */
#define TE_MLPERF_RESULTS_MSE 1u    /* m-results-[mean squared error of the output vs the float input] (ad01) */

/* How each value is printed (the reference submissions differ). */
#define TE_MLPERF_FMT_PRINTF3 0u  /* printf("%0.3f"): correctly rounded, ties to even (ic01, vww01, ad01) */
#define TE_MLPERF_FMT_TRUNC3 1u   /* "0.%d%d%d" of (int)(v*10), (int)(v*100)%10, (int)(v*1000)%10 (kws01) */

/* The reference's db buffer (MAX_DB_INPUT_SIZE, 96*96*3 bytes): the default capacity. */
#define TE_MLPERF_REFERENCE_DB_BYTES 27648u

#define TE_MLPERF_CMD_MAX 160u /* characters of one command (the runner sends at most 65) */

typedef struct {
  const char* model_version; /**< "kws01", "ic01", "vww01", "ad01" or the model's name: m-model-[...] */
  uint8_t input_mode;        /**< TE_MLPERF_INPUT_* */
  uint8_t results_mode;      /**< TE_MLPERF_RESULTS_* */
  uint8_t results_format;    /**< TE_MLPERF_FMT_* */
  uint8_t trailing_comma;    /**< 1: a ',' after every value, the last one too (the vww01 reference) */
  uint8_t* db;               /**< the 'db load' buffer */
  uint32_t db_capacity;      /**< its bytes (at least what input_mode needs for all inputs) */
} te_mlperf_config;

/** Energy mode: ``pulse`` marks a timestamp on the GPIO the IO manager
 *  watches (falling edge = the time stamp) instead of printing m-lap-us.
 *  Call before te_mlperf_serve; NULL (the default) is performance mode. */
void te_mlperf_set_timestamp_pulse(void (*pulse)(void));

/** Print the boot lines, then serve commands forever. */
void te_mlperf_serve(const te_model_desc* model, const te_port* port, const te_mlperf_config* config);

#ifdef __cplusplus
}
#endif

#endif /* TE_MLPERF_H_ */
