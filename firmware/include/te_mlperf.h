/*
 * MLPerf Tiny / EEMBC benchmark serial protocol, DUT side, performance and
 * accuracy modes (the runner of the mlcommons/tiny repository, or the EEMBC
 * EnergyRunner, talks to the board directly at 115200 baud).
 *
 * Commands are ASCII, terminated by '%'; every command's output ends with
 * "m-ready\r\n". Supported: name, profile, help, timestamp, db load N,
 * db HEXBYTES, db print, infer N [W], results. Energy mode (timestamps on a
 * GPIO through the IO manager) is not implemented.
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
#define TE_MLPERF_RESULTS_VECTOR 0u /* m-results-[every output element, dequantized, 3 decimals] */
#define TE_MLPERF_RESULTS_MSE 1u    /* m-results-[mean squared error of the output vs the float input] (ad01) */

#define TE_MLPERF_CMD_MAX 160u /* characters of one command (the runner sends at most 65) */

typedef struct {
  const char* model_version; /**< "kws01", "ic01", "vww01", "ad01" or the model's name: m-model-[...] */
  uint8_t input_mode;        /**< TE_MLPERF_INPUT_* */
  uint8_t results_mode;      /**< TE_MLPERF_RESULTS_* */
  uint8_t* db;               /**< the 'db load' buffer */
  uint32_t db_capacity;      /**< its bytes: what input_mode needs for all inputs */
} te_mlperf_config;

/** Print the boot lines, then serve commands forever. */
void te_mlperf_serve(const te_model_desc* model, const te_port* port, const te_mlperf_config* config);

#ifdef __cplusplus
}
#endif

#endif /* TE_MLPERF_H_ */
