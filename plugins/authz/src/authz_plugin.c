/* authz as a weft:filter/http-filter component: wires the portable evaluator (authz_eval.c) to
 * the host imports (wasm/sdk/c). Config is compiled once in weft_configure. */
#include "../../_common/c/sdk_glue.h"
#include "../../_common/c/counters.h"
#include "authz.h"

static arena cfg_arena;
static authz_config *cfg;

/* Every request header, fetched once per hook when a policy reads a header (the per-hook heap
 * keeps it valid until the hook returns). */
static weft_str all_headers;
static int have_all_headers;

/* Istio/Envoy match `request.headers[<name>]` against all the field's values joined with ","
 * (Envoy HeaderUtility::getAllOfHeaderAsString): repeated `x-role: admin` and `x-role: guest`
 * read "admin,guest", so the first value alone must not decide. `name` is lower-cased at
 * configure; the host's list has lower-case names. */
static int env_header(void *ctx, wstr name, wstr *out) {
  (void)ctx;
  if (!have_all_headers) {
    all_headers = weft_get_headers(WEFT_REQUEST_HEADERS);
    have_all_headers = 1;
  }
  const char *end = all_headers.ptr + all_headers.len;
  uint32_t n = 0, total = 0;
  wstr first = WSTR_NONE;
  for (int pass = 0; pass < 2; pass++) {
    char *dst = 0;
    if (pass == 1) {
      if (n <= 1) break;
      dst = (char *)weft_alloc(total + n - 1);
      *out = (wstr){dst, total + n - 1};
    }
    uint32_t seen = 0;
    for (const char *q = all_headers.ptr; q < end;) {
      const char *k = q;
      while (q < end && *q) q++;
      wstr key = {k, (uint32_t)(q - k)};
      const char *v = ++q;
      while (q < end && *q) q++;
      wstr val = {v, (uint32_t)(q - v)};
      q++;
      if (!wstr_eq(key, name)) continue;
      if (pass == 0) {
        if (n++ == 0) first = val;
        total += val.n;
      } else {
        if (seen++ > 0) *dst++ = ',';
        weft_memcpy(dst, val.p, val.n);
        dst += val.n;
      }
    }
  }
  if (n == 0) return 0;
  if (n == 1) *out = first;
  return 1;
}

static const wstr PROPS[AT_COUNT] = {
    WSTR_LIT("request.method"),   WSTR_LIT("request.path"),
    WSTR_LIT("request.host"),     WSTR_LIT("source.principal"),
    WSTR_LIT("source.address"),   WSTR_LIT("destination.address"),
    WSTR_LIT("destination.port"), WSTR_LIT("connection.requested_server_name"),
    WSTR_LIT("request.auth.principal"), WSTR_LIT("request.auth.audiences"),
    WSTR_LIT("request.auth.presenter"), WSTR_NONE};

static int env_attr(void *ctx, authz_attr which, wstr *out) {
  (void)ctx;
  if (which == AT_CONTENT_TYPE) return glue_header(WSTR_LIT("content-type"), out);
  return glue_property(PROPS[which], out);
}

static int env_prop(void *ctx, wstr name, wstr *out) {
  (void)ctx;
  return glue_property(name, out);
}

int weft_configure(weft_str config, weft_str *error) {
  const char *err = 0;
  cfg = authz_configure(&cfg_arena, (wstr){config.ptr, (uint32_t)config.len}, &err);
  if (cfg == 0) {
    *error = weft_cstr(err ? err : "Cannot configure authz: unknown error");
    return 1;
  }
  counters_set_batch(authz_counter_batch(cfg));
  return 0;
}

static void dry_run(const authz_result *r) {
  if (r->dry_deny >= 0) {
    counters_add(r->dry_deny ? "shadow_allowed/dry_run_deny" : "shadow_denied/dry_run_deny");
    weft_set_state("istio_dry_run_deny_shadow_engine_result", r->dry_deny ? "allowed" : "denied");
    if (!r->dry_deny) {
      weft_set_state("istio_dry_run_deny_shadow_effective_policy_id", r->dry_deny_id);
      glue_log2(WEFT_LOG_DEBUG, "shadow denied, matched policy ", r->dry_deny_id);
    }
  }
  if (r->dry_allow >= 0) {
    counters_add(r->dry_allow ? "shadow_allowed/dry_run_allow" : "shadow_denied/dry_run_allow");
    weft_set_state("istio_dry_run_allow_shadow_engine_result", r->dry_allow ? "allowed" : "denied");
    if (r->dry_allow) {
      weft_set_state("istio_dry_run_allow_shadow_effective_policy_id", r->dry_allow_id);
      glue_log2(WEFT_LOG_DEBUG, "shadow allowed, matched policy ", r->dry_allow_id);
    } else {
      glue_log2(WEFT_LOG_DEBUG, "shadow denied, matched policy ", "none");
    }
  }
}

weft_action weft_on_request_headers(void) {
  authz_env env = {0, env_header, env_attr, env_prop};
  have_all_headers = 0;
  authz_result r;
  counters_tick();
  authz_evaluate(cfg, &env, &r);
  if (r.dry_allow >= 0 || r.dry_deny >= 0) dry_run(&r);
  if (r.audit) weft_set_state("access_log_hint", "true");
  counters_add(r.metric);
  if (r.verdict == DEC_ALLOW) return weft_continue();
  const char *details = glue_concat3("rbac_access_denied_matched_policy[", r.policy_id, "]");
  if (!r.grpc) return weft_respond(403, "RBAC: access denied", details);
  /* The 0.1.0 local-response has no grpc-status field: answer as a gRPC trailers-only
   * response (HTTP 200, grpc-status 7 PERMISSION_DENIED) with an empty body. */
  weft_action a = weft_respond(200, "", details);
  weft_respond_header(&a, "content-type", "application/grpc");
  weft_respond_header(&a, "grpc-status", "7");
  weft_respond_header(&a, "grpc-message", "RBAC: access denied");
  return a;
}

weft_action weft_on_response_headers(void) { return weft_continue(); }
