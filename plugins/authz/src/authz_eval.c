/* Per-request evaluation: DENY first, then ALLOW (Istio order); AUDIT and dry-run never enforce. */
#include "authz_internal.h"

/* Attributes fetched lazily from the env once per request. */
typedef struct {
  const authz_env *env;
  uint32_t have, present;
  wstr v[AT_COUNT];
  int ns_done, sa_done, ip_done[2];
  wstr ns, sa, path_noq;
  cidr ip[2];
  int ip_ok[2];
} req;

static int attr(req *r, authz_attr a, wstr *out) {
  uint32_t bit = 1u << a;
  if (!(r->have & bit)) {
    r->have |= bit;
    if (r->env->attr(r->env->ctx, a, &r->v[a])) r->present |= bit;
  }
  *out = r->v[a];
  return (r->present & bit) != 0;
}

/* Peer id without the scheme: "cluster.local/ns/default/sa/sleep". */
static int principal(req *r, wstr *out) {
  if (!attr(r, AT_PRINCIPAL, out) || out->n == 0) return 0;
  wstr scheme = WSTR_LIT("spiffe://");
  if (wstr_has_prefix(*out, scheme)) *out = (wstr){out->p + scheme.n, out->n - scheme.n};
  return 1;
}

/* The /ns/<ns>/sa/<sa> segments of the verified identity (Istio derives namespace from it). */
static void split_identity(req *r) {
  if (r->ns_done) return;
  r->ns_done = 1;
  wstr p;
  if (!principal(r, &p)) return;
  for (uint32_t i = 0; i + 4 <= p.n; i++) {
    if (p.p[i] != '/' || p.p[i + 1] != 'n' || p.p[i + 2] != 's' || p.p[i + 3] != '/') continue;
    uint32_t s = i + 4, e = s;
    while (e < p.n && p.p[e] != '/') e++;
    r->ns = (wstr){p.p + s, e - s};
    wstr rest = {p.p + e, p.n - e};
    if (wstr_has_prefix(rest, WSTR_LIT("/sa/"))) r->sa = (wstr){p.p + s, p.n - s}; /* "ns/sa/x" */
    return;
  }
}

static int namespace_of(req *r, wstr *out) {
  split_identity(r);
  *out = r->ns;
  return r->ns.p != 0;
}

/* "ns/sa" from "<ns>/sa/<sa>[/...]". */
static int sa_matches(req *r, wstr want) {
  split_identity(r);
  if (r->sa.p == 0) return 0;
  wstr ns = r->ns;
  wstr sa = {r->sa.p + ns.n + 4, r->sa.n - ns.n - 4};
  for (uint32_t i = 0; i < sa.n; i++)
    if (sa.p[i] == '/') { sa.n = i; break; }
  return want.n == ns.n + 1 + sa.n && wstr_has_prefix(want, ns) && want.p[ns.n] == '/' &&
         wstr_eq((wstr){want.p + ns.n + 1, sa.n}, sa);
}

static const cidr *ip_of(req *r, int dest) {
  if (!r->ip_done[dest]) {
    r->ip_done[dest] = 1;
    wstr s;
    r->ip_ok[dest] = attr(r, dest ? AT_DEST_IP : AT_SOURCE_IP, &s) && ip_parse(s, &r->ip[dest]);
  }
  return r->ip_ok[dest] ? &r->ip[dest] : 0;
}

static int any_str(const strlist *l, int present, wstr v, int nocase) {
  if (!present) return 0;
  for (uint32_t i = 0; i < l->n; i++)
    if (istio_match(l->v[i], v, nocase)) return 1;
  return 0;
}

static int any_exact(const strlist *l, int present, wstr v) {
  if (!present) return 0;
  for (uint32_t i = 0; i < l->n; i++)
    if (wstr_eq(l->v[i], v)) return 1;
  return 0;
}

static int any_cidr(const cidrlist *l, const cidr *ip) {
  if (ip == 0) return 0;
  for (uint32_t i = 0; i < l->n; i++)
    if (cidr_contains(&l->v[i], ip)) return 1;
  return 0;
}

/* A list attribute ("a\0b\0c"): some element matches some pattern. */
static int any_in_list(const strlist *l, int present, wstr v) {
  if (!present) return 0;
  uint32_t s = 0;
  for (uint32_t i = 0; i <= v.n; i++) {
    if (i < v.n && v.p[i] != 0) continue;
    if (any_str(l, 1, (wstr){v.p + s, i - s}, 0)) return 1;
    s = i + 1;
  }
  return 0;
}

/* A field constrains only when listed: positive lists need a hit, not-lists need none. */
#define POS(list, hit) ((list).n == 0 || (hit))
#define NEG(list, hit) ((list).n == 0 || !(hit))

static int source_ok(req *r, const authz_source *s) {
  /* Fetch only what this source constrains: every attribute may be a host call. */
  if (s->principals.n || s->not_principals.n) {
    wstr p = WSTR_NONE;
    int hp = principal(r, &p);
    if (!POS(s->principals, any_str(&s->principals, hp, p, 0))) return 0;
    if (!NEG(s->not_principals, any_str(&s->not_principals, hp, p, 0))) return 0;
  }
  if (s->namespaces.n || s->not_namespaces.n) {
    wstr ns = WSTR_NONE;
    int hn = namespace_of(r, &ns);
    if (!POS(s->namespaces, any_str(&s->namespaces, hn, ns, 0))) return 0;
    if (!NEG(s->not_namespaces, any_str(&s->not_namespaces, hn, ns, 0))) return 0;
  }
  if (s->service_accounts.n || s->not_service_accounts.n) {
    int hit = 0, nhit = 0;
    for (uint32_t i = 0; i < s->service_accounts.n && !hit; i++) hit = sa_matches(r, s->service_accounts.v[i]);
    for (uint32_t i = 0; i < s->not_service_accounts.n && !nhit; i++) nhit = sa_matches(r, s->not_service_accounts.v[i]);
    if (!POS(s->service_accounts, hit) || !NEG(s->not_service_accounts, nhit)) return 0;
  }
  /* `<iss>/<sub>` of the JWT the host verified; absent without one (never matches). */
  if (s->request_principals.n || s->not_request_principals.n) {
    wstr p = WSTR_NONE;
    int hp = attr(r, AT_AUTH_PRINCIPAL, &p);
    if (!POS(s->request_principals, any_str(&s->request_principals, hp, p, 0))) return 0;
    if (!NEG(s->not_request_principals, any_str(&s->not_request_principals, hp, p, 0))) return 0;
  }
  if (s->ip_blocks.n || s->not_ip_blocks.n || s->remote_ip_blocks.n || s->not_remote_ip_blocks.n) {
    const cidr *ip = ip_of(r, 0);
    if (!POS(s->ip_blocks, any_cidr(&s->ip_blocks, ip))) return 0;
    if (!NEG(s->not_ip_blocks, any_cidr(&s->not_ip_blocks, ip))) return 0;
    /* remote.ip = the direct peer: weft trusts no X-Forwarded-For hops (numTrustedProxies 0). */
    if (!POS(s->remote_ip_blocks, any_cidr(&s->remote_ip_blocks, ip))) return 0;
    if (!NEG(s->not_remote_ip_blocks, any_cidr(&s->not_remote_ip_blocks, ip))) return 0;
  }
  return 1;
}

/* The authority as sent, case-insensitively: Istio compiles hosts to `:authority` matchers with
 * ignore_case, so "example.com" does not match "example.com:8080" (write "example.com:*"). */
static int host_hit(const strlist *l, int present, wstr host) { return any_str(l, present, host, 1); }

/* 3 for `{*}`, 4 for `{**}` at t[k], else 0. */
uint32_t authz_template_op(wstr t, uint32_t k) {
  if (k + 3 <= t.n && t.p[k] == '{' && t.p[k + 1] == '*' && t.p[k + 2] == '}') return 3;
  if (k + 4 <= t.n && t.p[k] == '{' && t.p[k + 1] == '*' && t.p[k + 2] == '*' && t.p[k + 3] == '}') return 4;
  return 0;
}

int authz_is_template(wstr t) {
  for (uint32_t k = 0; k < t.n; k++)
    if (authz_template_op(t, k)) return 1;
  return 0;
}

/* Envoy's URI template (validated at configure): `{*}` one path segment (1+ characters, no
 * `/`), `{**}` the rest of the path (0+ characters, `/` included), other characters literal. */
static int template_match(wstr t, wstr v) {
  while (t.n > 0) {
    uint32_t op = authz_template_op(t, 0);
    if (op == 4) {
      wstr tail = {t.p + 4, t.n - 4}; /* literal only: {**} is the last operator */
      return v.n >= tail.n && wstr_has_suffix(v, tail);
    }
    if (op == 3) {
      wstr rest = {t.p + 3, t.n - 3};
      uint32_t seg = 0;
      while (seg < v.n && v.p[seg] != '/') seg++;
      for (uint32_t k = seg; k >= 1; k--)
        if (template_match(rest, (wstr){v.p + k, v.n - k})) return 1;
      return 0;
    }
    if (v.n == 0 || t.p[0] != v.p[0]) return 0;
    t = (wstr){t.p + 1, t.n - 1};
    v = (wstr){v.p + 1, v.n - 1};
  }
  return v.n == 0;
}

static int any_path(const strlist *l, int present, wstr v) {
  if (!present) return 0;
  for (uint32_t i = 0; i < l->n; i++)
    if (authz_is_template(l->v[i]) ? template_match(l->v[i], v) : istio_match(l->v[i], v, 0)) return 1;
  return 0;
}

static wstr path_only(req *r, int *present) {
  wstr p;
  *present = attr(r, AT_PATH, &p);
  for (uint32_t i = 0; i < p.n; i++)
    if (p.p[i] == '?' || p.p[i] == '#') return (wstr){p.p, i};
  return p;
}

static int op_ok(req *r, const authz_operation *o) {
  wstr v;
  int has;
  if (o->hosts.n || o->not_hosts.n) {
    has = attr(r, AT_HOST, &v);
    if (!POS(o->hosts, host_hit(&o->hosts, has, v))) return 0;
    if (!NEG(o->not_hosts, host_hit(&o->not_hosts, has, v))) return 0;
  }
  if (o->ports.n || o->not_ports.n) {
    has = attr(r, AT_DEST_PORT, &v);
    if (!POS(o->ports, any_exact(&o->ports, has, v))) return 0;
    if (!NEG(o->not_ports, any_exact(&o->not_ports, has, v))) return 0;
  }
  if (o->methods.n || o->not_methods.n) {
    has = attr(r, AT_METHOD, &v);
    if (!POS(o->methods, any_str(&o->methods, has, v, 0))) return 0;
    if (!NEG(o->not_methods, any_str(&o->not_methods, has, v, 0))) return 0;
  }
  if (o->paths.n || o->not_paths.n) {
    v = path_only(r, &has);
    if (!POS(o->paths, any_path(&o->paths, has, v))) return 0;
    if (!NEG(o->not_paths, any_path(&o->not_paths, has, v))) return 0;
  }
  return 1;
}

static int cond_ok(req *r, const authz_condition *k) {
  wstr v = WSTR_NONE;
  int has = 0;
  switch (k->kind) {
    case CK_SOURCE_IP:
    case CK_DEST_IP: {
      const cidr *ip = ip_of(r, k->kind == CK_DEST_IP);
      return POS(k->cidrs, any_cidr(&k->cidrs, ip)) && NEG(k->not_cidrs, any_cidr(&k->not_cidrs, ip));
    }
    case CK_SOURCE_SA: {
      int hit = 0, nhit = 0;
      for (uint32_t i = 0; i < k->values.n && !hit; i++) hit = sa_matches(r, k->values.v[i]);
      for (uint32_t i = 0; i < k->not_values.n && !nhit; i++) nhit = sa_matches(r, k->not_values.v[i]);
      return POS(k->values, hit) && NEG(k->not_values, nhit);
    }
    case CK_DEST_PORT:
      has = attr(r, AT_DEST_PORT, &v);
      return POS(k->values, any_exact(&k->values, has, v)) && NEG(k->not_values, any_exact(&k->not_values, has, v));
    case CK_HEADER: has = r->env->header(r->env->ctx, k->header, &v); break;
    case CK_SOURCE_NS: has = namespace_of(r, &v); break;
    case CK_SOURCE_PRINCIPAL: has = principal(r, &v); break;
    case CK_SNI: has = attr(r, AT_SNI, &v); break;
    case CK_AUTH_PRINCIPAL: has = attr(r, AT_AUTH_PRINCIPAL, &v); break;
    case CK_AUTH_PRESENTER: has = attr(r, AT_AUTH_PRESENTER, &v); break;
    case CK_AUTH_AUDIENCES:
    case CK_AUTH_CLAIM:
      has = k->kind == CK_AUTH_AUDIENCES ? attr(r, AT_AUTH_AUDIENCES, &v)
                                         : r->env->prop(r->env->ctx, k->prop, &v);
      return POS(k->values, any_in_list(&k->values, has, v)) &&
             NEG(k->not_values, any_in_list(&k->not_values, has, v));
  }
  return POS(k->values, any_str(&k->values, has, v, 0)) && NEG(k->not_values, any_str(&k->not_values, has, v, 0));
}

static int rule_ok(req *r, const authz_rule *rule) {
  int hit = rule->nfrom == 0;
  for (uint32_t i = 0; i < rule->nfrom && !hit; i++) hit = source_ok(r, &rule->from[i]);
  if (!hit) return 0;
  hit = rule->nto == 0;
  for (uint32_t i = 0; i < rule->nto && !hit; i++) hit = op_ok(r, &rule->to[i]);
  if (!hit) return 0;
  for (uint32_t i = 0; i < rule->nwhen; i++)
    if (!cond_ok(r, &rule->when[i])) return 0;
  return 1;
}

/* Returns the matching rule's id or 0. */
static const char *policy_match(req *r, const authz_policy *p) {
  for (uint32_t i = 0; i < p->nrules; i++)
    if (rule_ok(r, &p->rules[i])) return p->rule_ids[i];
  return 0;
}

/* First match among policies of one action/dry-run class, in config order (the converter sorts
 * by name, Envoy's order for the effective policy id). */
static const authz_policy *first(req *r, const authz_config *c, authz_action a, int dry, const char **id) {
  for (uint32_t i = 0; i < c->npolicies; i++) {
    const authz_policy *p = &c->policies[i];
    if (p->action != a || p->dry_run != dry) continue;
    if ((*id = policy_match(r, p)) != 0) return p;
  }
  *id = 0;
  return 0;
}

static int has_class(const authz_config *c, authz_action a, int dry) {
  for (uint32_t i = 0; i < c->npolicies; i++)
    if (c->policies[i].action == a && c->policies[i].dry_run == dry) return 1;
  return 0;
}

static int is_grpc(req *r) {
  wstr ct;
  return attr(r, AT_CONTENT_TYPE, &ct) && wstr_has_prefix_nocase(ct, WSTR_LIT("application/grpc"));
}

void authz_evaluate(const authz_config *cfg, const authz_env *env, authz_result *out) {
  req r;
  weft_memset(&r, 0, sizeof r);
  r.env = env;
  weft_memset(out, 0, sizeof *out);
  const char *id;
  out->audit = first(&r, cfg, ACT_AUDIT, 0, &id) != 0;
  /* Dry-run results are independent of each other and of enforcement (A34). */
  out->dry_deny = -1;
  out->dry_allow = -1;
  if (has_class(cfg, ACT_DENY, 1)) {
    out->dry_deny = first(&r, cfg, ACT_DENY, 1, &out->dry_deny_id) != 0 ? 0 : 1;
  }
  if (has_class(cfg, ACT_ALLOW, 1)) {
    out->dry_allow = first(&r, cfg, ACT_ALLOW, 1, &out->dry_allow_id) != 0 ? 1 : 0;
  }
  const authz_policy *p = first(&r, cfg, ACT_DENY, 0, &id);
  if (p != 0) {
    out->verdict = DEC_DENY;
    out->policy_id = id;
    out->policy_name = p->name;
    out->metric = p->metric_denied;
    out->grpc = is_grpc(&r);
    return;
  }
  if (!cfg->has_allow) {
    out->verdict = DEC_ALLOW;
    out->policy_id = "none";
    out->policy_name = "none";
    out->metric = "allowed/none";
    return;
  }
  p = first(&r, cfg, ACT_ALLOW, 0, &id);
  out->verdict = p != 0 ? DEC_ALLOW : DEC_DENY;
  out->policy_id = p != 0 ? id : "none";
  out->policy_name = p != 0 ? p->name : "none";
  out->metric = p != 0 ? p->metric_allowed : "denied/none";
  if (p == 0) out->grpc = is_grpc(&r); /* only a denial needs to know */
}
