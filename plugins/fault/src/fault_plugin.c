/* fault as a weft:filter/http-filter component (see fault.h for the logic). */
#include "../../_common/c/sdk_glue.h"
#include "../../_common/c/counters.h"
#include "fault.h"

static arena cfg_arena;
static fault_config *cfg;
static prng rng;
static int seeded;

static int env_header(void *ctx, const char *name, wstr *out) {
  (void)ctx;
  return glue_header(wstr_cstr(name), out);
}

static uint64_t env_random(void *ctx) {
  (void)ctx;
  if (!seeded) {
    prng_seed(&rng, weft_random_u64());
    seeded = 1;
  }
  return prng_next(&rng);
}

static uint64_t env_mono(void *ctx) {
  (void)ctx;
  return weft_monotonic_ns();
}

int weft_configure(weft_str config, weft_str *error) {
  const char *err = 0;
  cfg = fault_configure(&cfg_arena, (wstr){config.ptr, (uint32_t)config.len}, &err);
  if (cfg == 0) {
    *error = weft_cstr(err ? err : "unknown error");
    return 1;
  }
  counters_set_batch(cfg->counter_batch);
  return 0;
}

static const char *u32_text(uint32_t v) {
  char *s = (char *)weft_alloc(12);
  int i = 11;
  s[i] = 0;
  do {
    s[--i] = (char)('0' + v % 10);
    v /= 10;
  } while (v != 0);
  return s + i;
}

static weft_action abort_action(const fault_result *r) {
  if (r->grpc_status < 0) return weft_respond((uint16_t)r->http_status, "fault filter abort", "fault_filter_abort");
  /* 0.1.0's local-response has no grpc-status: a trailers-only gRPC reply (HTTP 200). */
  weft_action a = weft_respond(200, "", "fault_filter_abort");
  weft_respond_header(&a, "content-type", "application/grpc");
  weft_respond_header(&a, "grpc-status", u32_text((uint32_t)r->grpc_status));
  weft_respond_header(&a, "grpc-message", "fault filter abort");
  return a;
}

weft_action weft_on_request_headers(void) {
  fault_env env = {0, env_header, env_random, env_mono};
  fault_result r;
  counters_tick();
  fault_decide(cfg, &env, &r);
  if (r.overflow) counters_add("faults_overflow");
  switch (r.kind) {
    case FD_CONTINUE: return weft_continue();
    case FD_DELAY:
      counters_add("delays_injected");
      weft_set_state("fault.delayed", "true");
      return weft_delay((uint32_t)(r.delay_ms > 0xFFFFFFFFu ? 0xFFFFFFFFu : r.delay_ms));
    case FD_ABORT:
      counters_add("aborts_injected");
      return abort_action(&r);
    case FD_DELAY_THEN_ABORT:
      /* 0.1.0's `delay` always continues afterwards: there is no delay-then-respond. A chain of
       * two instances (stage "delay" then stage "abort") gives Envoy's order; a single
       * instance keeps the delay and counts the abort it could not express. */
      counters_add("delays_injected");
      counters_add("aborts_dropped_after_delay");
      return weft_delay((uint32_t)(r.delay_ms > 0xFFFFFFFFu ? 0xFFFFFFFFu : r.delay_ms));
  }
  return weft_continue();
}

weft_action weft_on_response_headers(void) { return weft_continue(); }
