/* Per-request fault decision (Envoy fault_filter.cc order): header filter → delay → abort,
 * the two drawn independently; max_active_faults bounds concurrent faults. */
#include "fault.h"

static int header_ok(const fault_env *env, const fault_header *h) {
  wstr v;
  int has = env->header(env->ctx, h->name, &v), hit;
  switch (h->kind) {
    case FH_EXACT: hit = has && wstr_eq(v, h->value); break;
    case FH_PREFIX: hit = has && wstr_has_prefix(v, h->value); break;
    case FH_REGEX: hit = has && regex_full_match(h->re, v); break;
    default: hit = has; break;
  }
  return h->invert ? !hit : hit;
}

/* Header values are integers ("first value only" is the host's get-header contract). */
static int header_u64(const fault_env *env, const char *name, uint64_t *out) {
  wstr v;
  return env->header(env->ctx, name, &v) && wstr_to_u64(v, out);
}

/* Header-controlled percentage: the configured numerator is a ceiling; invalid → configured. */
static fraction effective(const fault_env *env, fraction cfg, int header_mode, const char *hdr) {
  uint64_t h;
  if (header_mode && header_u64(env, hdr, &h) && h < cfg.numerator) cfg.numerator = h;
  return cfg;
}

static int draw(const fault_env *env, fraction f) {
  if (f.numerator == 0) return 0;
  if (f.numerator >= f.denominator) return 1;
  return env->random(env->ctx) % f.denominator < f.numerator;
}

static uint32_t active_now(const fault_config *c, uint64_t now, int32_t *free_slot) {
  uint32_t n = 0;
  *free_slot = -1;
  for (uint32_t i = 0; i < c->max_active; i++) {
    if (c->active_until[i] > now) n++;
    else if (*free_slot < 0) *free_slot = (int32_t)i;
  }
  return n;
}

void fault_decide(fault_config *c, const fault_env *env, fault_result *out) {
  weft_memset(out, 0, sizeof *out);
  out->grpc_status = -1;
  for (uint32_t i = 0; i < c->nheaders; i++)
    if (!header_ok(env, &c->headers[i])) return;
  uint64_t now = c->max_active ? env->monotonic_ns(env->ctx) : 0;
  int delayed = 0;
  if (c->has_delay && c->stage != STAGE_ABORT) {
    uint64_t ms = c->fixed_delay_ms;
    if (c->header_delay && !header_u64(env, "x-envoy-fault-delay-request", &ms)) ms = 0;
    fraction pct = effective(env, c->delay_pct, c->header_delay, "x-envoy-fault-delay-request-percentage");
    if (ms > 0 && draw(env, pct)) {
      int32_t slot = 0;
      if (c->max_active && active_now(c, now, &slot) >= c->max_active) {
        out->overflow = 1;
      } else {
        if (c->max_active) c->active_until[slot] = now + ms * 1000000u;
        out->kind = FD_DELAY;
        out->delay_ms = ms;
        delayed = 1;
      }
    }
  }
  if (!c->has_abort || c->stage == STAGE_DELAY) return;
  uint32_t status = c->http_status;
  int grpc = c->grpc_status;
  if (c->header_abort) {
    uint64_t h;
    if (header_u64(env, "x-envoy-fault-abort-request", &h) && h >= 200 && h < 600) status = (uint32_t)h;
    else if (header_u64(env, "x-envoy-fault-abort-grpc-request", &h) && h <= 0x7FFFFFFF) grpc = (int)h;
  }
  if (status == 0 && grpc < 0) return;
  fraction pct = effective(env, c->abort_pct, c->header_abort, "x-envoy-fault-abort-request-percentage");
  if (!draw(env, pct)) return;
  int32_t slot;
  /* One request is one active fault: a delayed request already holds its slot (F9). */
  if (!delayed && c->max_active && active_now(c, now, &slot) >= c->max_active) {
    out->overflow = 1;
    return;
  }
  out->kind = delayed ? FD_DELAY_THEN_ABORT : FD_ABORT;
  out->http_status = status;
  out->grpc_status = status != 0 ? -1 : grpc;
}
