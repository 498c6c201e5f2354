/* fault config: JSON → validated fault_config. */
#include "fault.h"

static const char *const ROOT_KEYS[] = {"delay",   "abort", "maxActiveFaults", "headers",
                                        "stage",   "counterBatch", 0};
static const char *const DELAY_KEYS[] = {"fixedDelayMs", "headerDelay", "percentage", 0};
static const char *const ABORT_KEYS[] = {"httpStatus", "grpcStatus", "headerAbort", "percentage", 0};
static const char *const PCT_KEYS[] = {"numerator", "denominator", 0};
static const char *const HDR_KEYS[] = {"name", "exact", "prefix", "regex", "present", "invertMatch", 0};

static int fraction_of(cfgctx *c, const jval *j, fraction *f) {
  f->numerator = 0; /* unset percentage: the fault never fires (F1, F13) */
  f->denominator = 100;
  if (j == 0 || j->t == J_NULL) return 1;
  uint32_t mk = cfg_push_key(c, "percentage");
  if (!cfg_expect(c, j, J_OBJ, "must be an object") || !cfg_known_keys(c, j, PCT_KEYS)) return 0;
  int64_t n = 0;
  const jval *nv = json_get(j, "numerator");
  if (nv != 0 && !json_is_int(nv, 0, 0xFFFFFFFFll, &n))
    return cfg_fail(c, "numerator: must be an integer >= 0", WSTR_NONE);
  const jval *d = json_get(j, "denominator");
  if (d == 0 || d->t == J_NULL || (d->t == J_STR && wstr_eq_cstr(d->s, "HUNDRED"))) f->denominator = 100;
  else if (d->t == J_STR && wstr_eq_cstr(d->s, "TEN_THOUSAND")) f->denominator = 10000;
  else if (d->t == J_STR && wstr_eq_cstr(d->s, "MILLION")) f->denominator = 1000000;
  else return cfg_fail(c, "denominator: must be HUNDRED, TEN_THOUSAND or MILLION", WSTR_NONE);
  /* Envoy clamps a numerator above the denominator to 100%. */
  f->numerator = (uint64_t)n > f->denominator ? f->denominator : (uint64_t)n;
  cfg_pop(c, mk);
  return 1;
}

static int flag(cfgctx *c, const jval *j, const char *key, int *out) {
  const jval *v = json_get(j, key);
  *out = 0;
  if (v == 0 || v->t == J_NULL) return 1;
  if (v->t != J_BOOL) {
    cfg_push_key(c, key);
    return cfg_fail(c, "must be a boolean", WSTR_NONE);
  }
  *out = v->b;
  return 1;
}

static int delay(cfgctx *c, const jval *j, fault_config *f) {
  uint32_t mk = cfg_push_key(c, "delay");
  if (!cfg_expect(c, j, J_OBJ, "must be an object") || !cfg_known_keys(c, j, DELAY_KEYS)) return 0;
  if (!flag(c, j, "headerDelay", &f->header_delay)) return 0;
  const jval *ms = json_get(j, "fixedDelayMs");
  int64_t v = 0;
  if (ms != 0 && ms->t != J_NULL && (!json_is_int(ms, 1, 0xFFFFFFFFll, &v)))
    return cfg_fail(c, "fixedDelayMs: must be an integer 1-4294967295", WSTR_NONE);
  if ((v > 0) == (f->header_delay != 0))
    return cfg_fail(c, "exactly one of fixedDelayMs or headerDelay", WSTR_NONE);
  f->fixed_delay_ms = (uint64_t)v;
  f->has_delay = 1;
  if (!fraction_of(c, json_get(j, "percentage"), &f->delay_pct)) return 0;
  cfg_pop(c, mk);
  return 1;
}

static int abort_block(cfgctx *c, const jval *j, fault_config *f) {
  uint32_t mk = cfg_push_key(c, "abort");
  if (!cfg_expect(c, j, J_OBJ, "must be an object") || !cfg_known_keys(c, j, ABORT_KEYS)) return 0;
  if (!flag(c, j, "headerAbort", &f->header_abort)) return 0;
  const jval *hs = json_get(j, "httpStatus"), *gs = json_get(j, "grpcStatus");
  int64_t v;
  int kinds = f->header_abort;
  f->grpc_status = -1;
  if (hs != 0 && hs->t != J_NULL) {
    if (!json_is_int(hs, 200, 599, &v)) return cfg_fail(c, "httpStatus: must be 200-599", WSTR_NONE);
    f->http_status = (uint32_t)v;
    kinds++;
  }
  if (gs != 0 && gs->t != J_NULL) {
    if (!json_is_int(gs, 0, 16, &v)) return cfg_fail(c, "grpcStatus: must be a gRPC code 0-16", WSTR_NONE);
    f->grpc_status = (int)v;
    kinds++;
  }
  if (kinds != 1) return cfg_fail(c, "exactly one of httpStatus, grpcStatus or headerAbort", WSTR_NONE);
  f->has_abort = 1;
  if (!fraction_of(c, json_get(j, "percentage"), &f->abort_pct)) return 0;
  cfg_pop(c, mk);
  return 1;
}

static int headers(cfgctx *c, const jval *j, fault_config *f) {
  uint32_t mk = cfg_push_key(c, "headers");
  if (!cfg_expect(c, j, J_ARR, "must be a list")) return 0;
  f->headers = (fault_header *)arena_alloc(c->a, sizeof(fault_header) * (j->len ? j->len : 1));
  if (f->headers == 0) return cfg_fail(c, "out of memory", WSTR_NONE);
  for (const jval *e = j->child; e != 0; e = e->next) {
    cfg_push_index(c, f->nheaders);
    if (!cfg_expect(c, e, J_OBJ, "must be an object") || !cfg_known_keys(c, e, HDR_KEYS)) return 0;
    fault_header *h = &f->headers[f->nheaders++];
    weft_memset(h, 0, sizeof *h);
    const jval *n = json_get(e, "name");
    if (n == 0 || n->t != J_STR || n->s.n == 0) return cfg_fail(c, "name: required", WSTR_NONE);
    char *low = arena_strdup(c->a, n->s);
    for (uint32_t i = 0; low && i < n->s.n; i++) low[i] = lower_ascii(low[i]);
    h->name = low;
    if (!flag(c, e, "invertMatch", &h->invert)) return 0;
    const jval *v;
    if ((v = json_get(e, "exact")) != 0 && v->t == J_STR) { h->kind = FH_EXACT; h->value = v->s; }
    else if ((v = json_get(e, "prefix")) != 0 && v->t == J_STR) { h->kind = FH_PREFIX; h->value = v->s; }
    else if ((v = json_get(e, "regex")) != 0 && v->t == J_STR) {
      const char *err;
      h->kind = FH_REGEX;
      if ((h->re = regex_compile(c->a, v->s, &err)) == 0) return cfg_fail(c, "regex: ", wstr_cstr(err));
    } else h->kind = FH_PRESENT;
    cfg_pop(c, mk);
    mk = cfg_push_key(c, "headers");
  }
  cfg_pop(c, mk);
  return 1;
}

fault_config *fault_configure(arena *a, wstr text, const char **err) {
  cfgctx c;
  cfg_init(&c, a);
  jval *root = cfg_parse_root(a, text, err);
  if (root == 0) return 0;
  fault_config *f = (fault_config *)arena_alloc(a, sizeof(fault_config));
  if (f == 0) { *err = "out of memory"; return 0; }
  weft_memset(f, 0, sizeof *f);
  f->grpc_status = -1;
  const jval *v;
  int64_t n;
  int ok = cfg_expect(&c, root, J_OBJ, "config must be an object") && cfg_known_keys(&c, root, ROOT_KEYS);
  if (ok) ok = cfg_counter_batch(&c, root, &f->counter_batch);
  if (ok && (v = json_get(root, "delay")) != 0 && v->t != J_NULL) ok = delay(&c, v, f);
  if (ok && (v = json_get(root, "abort")) != 0 && v->t != J_NULL) ok = abort_block(&c, v, f);
  if (ok && (v = json_get(root, "headers")) != 0 && v->t != J_NULL) ok = headers(&c, v, f);
  if (ok && (v = json_get(root, "maxActiveFaults")) != 0 && v->t != J_NULL) {
    if (!json_is_int(v, 0, 65536, &n)) ok = cfg_fail(&c, "maxActiveFaults: must be 0-65536", WSTR_NONE);
    else f->max_active = (uint32_t)n;
  }
  if (ok && (v = json_get(root, "stage")) != 0 && v->t != J_NULL) {
    if (v->t == J_STR && wstr_eq_cstr(v->s, "delay")) f->stage = STAGE_DELAY;
    else if (v->t == J_STR && wstr_eq_cstr(v->s, "abort")) f->stage = STAGE_ABORT;
    else if (!(v->t == J_STR && wstr_eq_cstr(v->s, "all")))
      ok = cfg_fail(&c, "stage: must be all, delay or abort", WSTR_NONE);
  }
  if (ok && f->max_active > 0) {
    f->active_until = (uint64_t *)arena_alloc(a, sizeof(uint64_t) * f->max_active);
    if (f->active_until == 0) ok = cfg_fail(&c, "out of memory", WSTR_NONE);
    else weft_memset(f->active_until, 0, sizeof(uint64_t) * f->max_active);
  }
  if (!ok) { *err = c.err; return 0; }
  return f;
}
