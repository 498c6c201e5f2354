/* authz config: JSON → compiled policies (validated once per instance). */
#include "authz_internal.h"

static const char *const POLICY_KEYS[] = {"name", "action", "dryRun", "rules", 0};
static const char *const RULE_KEYS[] = {"from", "to", "when", 0};
static const char *const SOURCE_KEYS[] = {
    "principals", "notPrincipals", "namespaces", "notNamespaces", "ipBlocks", "notIpBlocks",
    "remoteIpBlocks", "notRemoteIpBlocks", "serviceAccounts", "notServiceAccounts",
    "requestPrincipals", "notRequestPrincipals", 0};
static const char *const OP_KEYS[] = {"hosts", "notHosts", "ports", "notPorts", "methods",
                                      "notMethods", "paths", "notPaths", 0};
static const char *const COND_KEYS[] = {"key", "values", "notValues", 0};

static int cidrs(cfgctx *c, const jval *obj, const char *key, cidrlist *out) {
  strlist s;
  if (!cfg_strlist(c, obj, key, &s)) return 0;
  out->n = s.n;
  out->v = (cidr *)arena_alloc(c->a, sizeof(cidr) * (s.n ? s.n : 1));
  if (out->v == 0) return cfg_fail(c, "out of memory", WSTR_NONE);
  for (uint32_t i = 0; i < s.n; i++) {
    if (!cidr_parse(s.v[i], &out->v[i])) {
      uint32_t m = cfg_push_key(c, key);
      cfg_push_index(c, i);
      cfg_fail(c, "not an IP or CIDR: ", s.v[i]);
      cfg_pop(c, m);
      return 0;
    }
  }
  return 1;
}

static int ports(cfgctx *c, const jval *obj, const char *key, strlist *out) {
  if (!cfg_strlist(c, obj, key, out)) return 0;
  for (uint32_t i = 0; i < out->n; i++) {
    uint64_t p;
    if (!wstr_to_u64(out->v[i], &p) || p < 1 || p > 65535) {
      cfg_push_key(c, key);
      cfg_push_index(c, i);
      return cfg_fail(c, "must be a port 1-65535, got ", out->v[i]);
    }
  }
  return 1;
}

/* A path holding `{*}` or `{**}` is an Envoy URI template (Istio): only those operators, `{**}`
 * the last one, no bare `*`. Any other path is an Istio string match. */
static const char *template_error(wstr t) {
  int glob_seen = 0;
  for (uint32_t k = 0; k < t.n; k++) {
    uint32_t op = authz_template_op(t, k);
    if (op != 0) {
      if (glob_seen) return "{**} must be the last operator of a URI template: ";
      glob_seen = op == 4;
      k += op - 1;
    } else if (t.p[k] == '*' || t.p[k] == '{' || t.p[k] == '}') {
      return "a URI template may use only {*} and {**}: ";
    }
  }
  return 0;
}

static int paths(cfgctx *c, const jval *obj, const char *key, strlist *out) {
  if (!cfg_strlist(c, obj, key, out)) return 0;
  for (uint32_t i = 0; i < out->n; i++) {
    const char *err = authz_is_template(out->v[i]) ? template_error(out->v[i]) : 0;
    if (err) {
      cfg_push_key(c, key);
      cfg_push_index(c, i);
      return cfg_fail(c, err, out->v[i]);
    }
  }
  return 1;
}

static int source(cfgctx *c, const jval *j, authz_source *s) {
  if (json_get(j, "source") != 0 && j->len == 1) j = json_get(j, "source");
  if (!cfg_expect(c, j, J_OBJ, "must be an object") || !cfg_known_keys(c, j, SOURCE_KEYS)) return 0;
  return cfg_strlist(c, j, "principals", &s->principals) &&
         cfg_strlist(c, j, "notPrincipals", &s->not_principals) &&
         cfg_strlist(c, j, "namespaces", &s->namespaces) &&
         cfg_strlist(c, j, "notNamespaces", &s->not_namespaces) &&
         cfg_strlist(c, j, "serviceAccounts", &s->service_accounts) &&
         cfg_strlist(c, j, "notServiceAccounts", &s->not_service_accounts) &&
         cfg_strlist(c, j, "requestPrincipals", &s->request_principals) &&
         cfg_strlist(c, j, "notRequestPrincipals", &s->not_request_principals) &&
         cidrs(c, j, "ipBlocks", &s->ip_blocks) && cidrs(c, j, "notIpBlocks", &s->not_ip_blocks) &&
         cidrs(c, j, "remoteIpBlocks", &s->remote_ip_blocks) &&
         cidrs(c, j, "notRemoteIpBlocks", &s->not_remote_ip_blocks);
}

static int operation(cfgctx *c, const jval *j, authz_operation *o) {
  if (json_get(j, "operation") != 0 && j->len == 1) j = json_get(j, "operation");
  if (!cfg_expect(c, j, J_OBJ, "must be an object") || !cfg_known_keys(c, j, OP_KEYS)) return 0;
  return cfg_strlist(c, j, "hosts", &o->hosts) && cfg_strlist(c, j, "notHosts", &o->not_hosts) &&
         ports(c, j, "ports", &o->ports) && ports(c, j, "notPorts", &o->not_ports) &&
         cfg_strlist(c, j, "methods", &o->methods) &&
         cfg_strlist(c, j, "notMethods", &o->not_methods) && paths(c, j, "paths", &o->paths) &&
         paths(c, j, "notPaths", &o->not_paths);
}

static int parse_cond_kind(wstr key, authz_condition *out) {
  static const struct { const char *k; cond_kind kind; } fixed[] = {
      {"source.ip", CK_SOURCE_IP},          {"remote.ip", CK_SOURCE_IP},
      {"source.namespace", CK_SOURCE_NS},   {"source.principal", CK_SOURCE_PRINCIPAL},
      {"source.serviceAccount", CK_SOURCE_SA}, {"destination.ip", CK_DEST_IP},
      {"destination.port", CK_DEST_PORT},   {"connection.sni", CK_SNI},
      {"request.auth.principal", CK_AUTH_PRINCIPAL}, {"request.auth.audiences", CK_AUTH_AUDIENCES},
      {"request.auth.presenter", CK_AUTH_PRESENTER}};
  for (uint32_t i = 0; i < sizeof(fixed) / sizeof(fixed[0]); i++)
    if (wstr_eq_cstr(key, fixed[i].k)) { out->kind = fixed[i].kind; return 1; }
  wstr hp = WSTR_LIT("request.headers[");
  if (wstr_has_prefix(key, hp) && key.n > hp.n + 1 && key.p[key.n - 1] == ']') {
    out->kind = CK_HEADER;
    out->header = (wstr){key.p + hp.n, key.n - hp.n - 1};
    return 1;
  }
  wstr cp = WSTR_LIT("request.auth.claims[");
  if (wstr_has_prefix(key, cp) && key.n > cp.n + 1 && key.p[key.n - 1] == ']') {
    /* Istio: one or more non-empty [name] segments (nested claims). */
    for (uint32_t i = cp.n - 1; i < key.n;) {
      if (key.p[i] != '[') return 0;
      uint32_t e = i + 1;
      while (e < key.n && key.p[e] != ']' && key.p[e] != '[') e++;
      if (e >= key.n || key.p[e] != ']' || e == i + 1) return 0;
      i = e + 1;
    }
    out->kind = CK_AUTH_CLAIM;
    out->prop = key;
    return 1;
  }
  return 0;
}

static int condition(cfgctx *c, arena *a, const jval *j, authz_condition *k) {
  if (!cfg_expect(c, j, J_OBJ, "must be an object") || !cfg_known_keys(c, j, COND_KEYS)) return 0;
  const jval *key = json_get(j, "key");
  if (key == 0 || key->t != J_STR) return cfg_fail(c, "key: required string", WSTR_NONE);
  if (!parse_cond_kind(key->s, k)) return cfg_fail(c, "key: unknown or unsupported condition ", key->s);
  if (k->kind == CK_AUTH_CLAIM) {
    char *p = arena_strdup(a, k->prop); /* the key's text lives in the config JSON only */
    if (p == 0) return cfg_fail(c, "out of memory", WSTR_NONE);
    k->prop.p = p;
  }
  if (k->kind == CK_HEADER) {
    char *low = arena_strdup(a, k->header);
    if (low == 0) return cfg_fail(c, "out of memory", WSTR_NONE);
    for (uint32_t i = 0; i < k->header.n; i++) low[i] = lower_ascii(low[i]);
    k->header.p = low;
  }
  if (!cfg_strlist(c, j, "values", &k->values) || !cfg_strlist(c, j, "notValues", &k->not_values))
    return 0;
  if (k->values.n == 0 && k->not_values.n == 0)
    return cfg_fail(c, "needs values or notValues", WSTR_NONE);
  if (k->kind == CK_SOURCE_IP || k->kind == CK_DEST_IP)
    return cidrs(c, j, "values", &k->cidrs) && cidrs(c, j, "notValues", &k->not_cidrs);
  if (k->kind == CK_DEST_PORT) return ports(c, j, "values", &k->values) && ports(c, j, "notValues", &k->not_values);
  return 1;
}

#define LIST(c, j, key, T, n_out, each)                                                     \
  do {                                                                                      \
    const jval *l_ = json_get(j, key);                                                      \
    *(n_out) = 0;                                                                           \
    if (l_ == 0 || l_->t == J_NULL) break;                                                  \
    uint32_t mk_ = cfg_push_key(c, key);                                                    \
    if (!cfg_expect(c, l_, J_ARR, "must be a list")) return 0;                              \
    T *arr_ = (T *)arena_alloc(c->a, sizeof(T) * (l_->len ? l_->len : 1));                  \
    if (arr_ == 0) return cfg_fail(c, "out of memory", WSTR_NONE);                          \
    weft_memset(arr_, 0, sizeof(T) * (l_->len ? l_->len : 1));                              \
    uint32_t i_ = 0;                                                                        \
    for (const jval *e_ = l_->child; e_ != 0; e_ = e_->next, i_++) {                        \
      uint32_t mi_ = cfg_push_index(c, i_);                                                 \
      if (!each(c, e_, &arr_[i_])) return 0;                                                \
      cfg_pop(c, mi_);                                                                      \
    }                                                                                       \
    *(n_out) = l_->len;                                                                     \
    list_out_ = arr_;                                                                       \
    cfg_pop(c, mk_);                                                                        \
  } while (0)

static arena *g_cond_arena;
static int condition_cb(cfgctx *c, const jval *j, authz_condition *k) {
  return condition(c, g_cond_arena, j, k);
}

static int rule(cfgctx *c, const jval *j, authz_rule *r) {
  if (!cfg_expect(c, j, J_OBJ, "must be an object") || !cfg_known_keys(c, j, RULE_KEYS)) return 0;
  void *list_out_ = 0;
  LIST(c, j, "from", authz_source, &r->nfrom, source);
  r->from = (authz_source *)list_out_;
  list_out_ = 0;
  LIST(c, j, "to", authz_operation, &r->nto, operation);
  r->to = (authz_operation *)list_out_;
  list_out_ = 0;
  LIST(c, j, "when", authz_condition, &r->nwhen, condition_cb);
  r->when = (authz_condition *)list_out_;
  return 1;
}

static int policy(cfgctx *c, const jval *j, authz_policy *p) {
  if (!cfg_expect(c, j, J_OBJ, "must be an object") || !cfg_known_keys(c, j, POLICY_KEYS)) return 0;
  const jval *name = json_get(j, "name");
  if (name == 0 || name->t != J_STR || name->s.n == 0)
    return cfg_fail(c, "name: required non-empty string", WSTR_NONE);
  p->name = arena_strdup(c->a, name->s);
  sbuf m;
  sb_init(&m, c->a);
  sb_cstr(&m, "allowed/");
  sb_wstr(&m, name->s);
  p->metric_allowed = sb_cdup(&m);
  sb_init(&m, c->a);
  sb_cstr(&m, "denied/");
  sb_wstr(&m, name->s);
  p->metric_denied = sb_cdup(&m);
  const jval *act = json_get(j, "action");
  if (act == 0 || act->t == J_NULL || (act->t == J_STR && wstr_eq_cstr(act->s, "ALLOW"))) p->action = ACT_ALLOW;
  else if (act->t == J_STR && wstr_eq_cstr(act->s, "DENY")) p->action = ACT_DENY;
  else if (act->t == J_STR && wstr_eq_cstr(act->s, "AUDIT")) p->action = ACT_AUDIT;
  else if (act->t == J_STR && wstr_eq_cstr(act->s, "CUSTOM"))
    return cfg_fail(c, "action: CUSTOM (external authorization) is out of scope for weft authz", WSTR_NONE);
  else return cfg_fail(c, "action: must be ALLOW, DENY or AUDIT", WSTR_NONE);
  const jval *dry = json_get(j, "dryRun");
  if (dry != 0 && dry->t != J_NULL && dry->t != J_BOOL) return cfg_fail(c, "dryRun: must be a boolean", WSTR_NONE);
  p->dry_run = dry != 0 && dry->t == J_BOOL && dry->b;
  if (p->dry_run && p->action == ACT_AUDIT) return cfg_fail(c, "dryRun: only ALLOW and DENY policies", WSTR_NONE);
  void *list_out_ = 0;
  LIST(c, j, "rules", authz_rule, &p->nrules, rule);
  p->rules = (authz_rule *)list_out_;
  /* Precompute "<name>-rule[i]" ids so the data path never formats strings. */
  p->rule_ids = (const char **)arena_alloc(c->a, sizeof(char *) * (p->nrules ? p->nrules : 1));
  if (p->rule_ids == 0) return cfg_fail(c, "out of memory", WSTR_NONE);
  for (uint32_t i = 0; i < p->nrules; i++) {
    sbuf b;
    sb_init(&b, c->a);
    sb_wstr(&b, name->s);
    sb_cstr(&b, "-rule[");
    sb_u64(&b, i);
    sb_cstr(&b, "]");
    p->rule_ids[i] = sb_cdup(&b);
  }
  return 1;
}

authz_config *authz_configure(arena *a, wstr text, const char **err) {
  cfgctx c;
  cfg_init(&c, a);
  g_cond_arena = a;
  jval *root = cfg_parse_root(a, text, err);
  if (root == 0) return 0;
  authz_config *cfg = (authz_config *)arena_alloc(a, sizeof(authz_config));
  if (cfg == 0) { *err = "out of memory"; return 0; }
  weft_memset(cfg, 0, sizeof(authz_config));
  static const char *const ROOT_KEYS[] = {"policies", "counterBatch", 0};
  if (!cfg_expect(&c, root, J_OBJ, "config must be an object") || !cfg_known_keys(&c, root, ROOT_KEYS)) {
    *err = c.err;
    return 0;
  }
  if (!cfg_counter_batch(&c, root, &cfg->counter_batch) || !authz_config_policies(&c, root, cfg)) {
    *err = c.err;
    return 0;
  }
  for (uint32_t i = 0; i < cfg->npolicies; i++)
    if (cfg->policies[i].action == ACT_ALLOW && !cfg->policies[i].dry_run) cfg->has_allow = 1;
  return cfg;
}

int authz_config_policies(cfgctx *c, const jval *root, authz_config *cfg) {
  void *list_out_ = 0;
  LIST(c, root, "policies", authz_policy, &cfg->npolicies, policy);
  cfg->policies = (authz_policy *)list_out_;
  return 1;
}

uint32_t authz_counter_batch(const authz_config *cfg) { return cfg->counter_batch; }
