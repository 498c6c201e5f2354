/* Envoy HTTPFault / Istio VirtualService fault injection, independent of the host ABI. */
#ifndef WEFT_FAULT_H
#define WEFT_FAULT_H

#include "../../_common/c/cfg.h"
#include "../../_common/c/regex.h"

typedef struct {
  void *ctx;
  /* First value of a request header. */
  int (*header)(void *ctx, const char *lower_name, wstr *out);
  uint64_t (*random)(void *ctx);
  uint64_t (*monotonic_ns)(void *ctx);
} fault_env;

typedef struct {
  uint64_t numerator, denominator; /* denominator 100, 10000 or 1000000 */
} fraction;

typedef enum { FH_EXACT, FH_PREFIX, FH_REGEX, FH_PRESENT } fh_kind;

typedef struct {
  const char *name;
  fh_kind kind;
  wstr value;
  regex *re;
  int invert;
} fault_header;

typedef enum { STAGE_ALL, STAGE_DELAY, STAGE_ABORT } fault_stage;

typedef struct {
  int has_delay, header_delay;
  uint64_t fixed_delay_ms;
  fraction delay_pct;
  int has_abort, header_abort;
  uint32_t http_status; /* 0 = not set */
  int grpc_status;      /* -1 = not set */
  fraction abort_pct;
  uint32_t max_active; /* 0 = unlimited */
  fault_header *headers;
  uint32_t nheaders;
  fault_stage stage;
  uint32_t counter_batch;
  /* Active faults are in-flight delays: the expiry time of each (time-based, see README). */
  uint64_t *active_until;
} fault_config;

typedef enum { FD_CONTINUE, FD_DELAY, FD_ABORT, FD_DELAY_THEN_ABORT } fault_kind;

typedef struct {
  fault_kind kind;
  uint64_t delay_ms;
  uint32_t http_status;
  int grpc_status; /* -1 = HTTP abort */
  int overflow;    /* a fault was skipped by max_active_faults */
} fault_result;

fault_config *fault_configure(arena *a, wstr json, const char **err);
void fault_decide(fault_config *cfg, const fault_env *env, fault_result *out);

#endif
