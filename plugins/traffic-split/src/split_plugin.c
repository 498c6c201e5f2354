/* traffic-split as a weft:filter/http-filter component (see split.h for the logic). */
#include "../../_common/c/sdk_glue.h"
#include "../../_common/c/counters.h"
#include "split.h"

static arena cfg_arena;
static split_config *cfg;
static prng rng;
static int seeded;

static int env_header(void *ctx, const char *name, wstr *out) {
  (void)ctx;
  return glue_header(wstr_cstr(name), out);
}

static const wstr PROPS[SA_COUNT] = {WSTR_LIT("request.method"), WSTR_LIT("request.path"),
                                     WSTR_LIT("request.host"), WSTR_LIT("request.scheme")};

static int env_attr(void *ctx, split_attr which, wstr *out) {
  (void)ctx;
  return glue_property(PROPS[which], out);
}

/* One host call seeds a per-instance PRNG; draws after that cost no host call. */
static uint64_t env_random(void *ctx) {
  (void)ctx;
  if (!seeded) {
    prng_seed(&rng, weft_random_u64());
    seeded = 1;
  }
  return prng_next(&rng);
}

/* Stands for a cluster no route choice can name (a missing header, a name of another shape):
 * not a hostname, so the host answers it as a missing cluster (503 NC). */
static const char NO_CLUSTER[] = "(no cluster)";

static const char *cdup(wstr s) {
  char *out = (char *)weft_alloc(s.n + 1);
  weft_memcpy(out, s.p, s.n);
  out[s.n] = 0;
  return out;
}

/* Envoy's cluster_header: the cluster named by the header's (first) value; a missing header is
 * the empty name, which no cluster has. */
static weft_action route_by_header(const char *name) {
  wstr v, svc, subset;
  if (!glue_header(wstr_cstr(name), &v) || !split_parse_cluster(v, cfg->cluster_port, &svc, &subset))
    return weft_route(NO_CLUSTER, 0);
  return weft_route(cdup(svc), subset.n ? cdup(subset) : 0);
}

int weft_configure(weft_str config, weft_str *error) {
  const char *err = 0;
  cfg = split_configure(&cfg_arena, (wstr){config.ptr, (uint32_t)config.len}, &err);
  if (cfg == 0) {
    *error = weft_cstr(err ? err : "unknown error");
    return 1;
  }
  counters_set_batch(cfg->counter_batch);
  return 0;
}

weft_action weft_on_request_headers(void) {
  split_env env = {0, env_header, env_attr, env_random};
  split_result r;
  counters_tick();
  split_choose(cfg, &env, &r);
  if (r.route == 0) {
    if (cfg->not_found) return weft_respond(404, "", "route_not_found");
    return weft_continue();
  }
  counters_add(r.dest->metric);
  if (r.dest->cluster_header) return route_by_header(r.dest->cluster_header);
  return weft_route(r.dest->service, r.dest->subset);
}

weft_action weft_on_response_headers(void) { return weft_continue(); }
