/* Per-request routing: first matching route wins; weighted (optionally sticky) destination. */
#include "split.h"

typedef struct {
  const split_env *env;
  uint32_t have, present;
  wstr v[SA_COUNT];
  int path_done, query_done;
  wstr path, query;
} req;

static int attr(req *r, split_attr a, wstr *out) {
  uint32_t bit = 1u << a;
  if (!(r->have & bit)) {
    r->have |= bit;
    if (r->env->attr(r->env->ctx, a, &r->v[a])) r->present |= bit;
  }
  *out = r->v[a];
  return (r->present & bit) != 0;
}

/* Envoy matches routes on the path without the query string. */
static void split_path(req *r) {
  if (r->path_done) return;
  r->path_done = 1;
  wstr p;
  if (!attr(r, SA_PATH, &p)) return;
  r->path = p;
  for (uint32_t i = 0; i < p.n; i++)
    if (p.p[i] == '?' || p.p[i] == '#') {
      r->path.n = i;
      if (p.p[i] == '?') {
        uint32_t e = i + 1;
        while (e < p.n && p.p[e] != '#') e++;
        r->query = (wstr){p.p + i + 1, e - i - 1};
      }
      break;
    }
}

static int sm(const smatch *m, int present, wstr v, int icase) {
  switch (m->kind) {
    case SM_NONE: return 1;
    case SM_PRESENT: return present;
    case SM_EXACT: return present && (icase ? wstr_eq_nocase(m->value, v) : wstr_eq(m->value, v));
    case SM_PREFIX:
      return present && (icase ? wstr_has_prefix_nocase(v, m->value) : wstr_has_prefix(v, m->value));
    case SM_REGEX: return present && regex_full_match(m->re, v);
  }
  return 0;
}

/* Value of query parameter `name` (first occurrence); a bare "key" has the empty value. */
static int query_param(req *r, const char *name, wstr *out) {
  split_path(r);
  wstr q = r->query, key = wstr_cstr(name);
  uint32_t i = 0;
  while (q.p != 0 && i <= q.n) {
    uint32_t e = i;
    while (e < q.n && q.p[e] != '&') e++;
    wstr pair = {q.p + i, e - i};
    uint32_t eq = 0;
    while (eq < pair.n && pair.p[eq] != '=') eq++;
    if (wstr_eq((wstr){pair.p, eq}, key)) {
      *out = eq < pair.n ? (wstr){pair.p + eq + 1, pair.n - eq - 1} : (wstr){pair.p + eq, 0};
      return 1;
    }
    i = e + 1;
  }
  return 0;
}

static int block_ok(req *r, const split_match *m) {
  wstr v = WSTR_NONE;
  int has;
  if (m->uri.kind != SM_NONE) {
    split_path(r);
    if (!sm(&m->uri, r->path.p != 0, r->path, m->ignore_uri_case)) return 0;
  }
  if (m->method.kind != SM_NONE) {
    has = attr(r, SA_METHOD, &v);
    if (!sm(&m->method, has, v, 0)) return 0;
  }
  if (m->authority.kind != SM_NONE) {
    has = attr(r, SA_HOST, &v);
    if (!sm(&m->authority, has, v, 0)) return 0;
  }
  if (m->scheme.kind != SM_NONE) {
    has = attr(r, SA_SCHEME, &v);
    if (!sm(&m->scheme, has, v, 0)) return 0;
  }
  for (uint32_t i = 0; i < m->nheaders; i++) {
    has = r->env->header(r->env->ctx, m->headers[i].name, &v);
    if (!sm(&m->headers[i].m, has, v, 0)) return 0;
  }
  /* withoutHeaders: the request must NOT match any of these. */
  for (uint32_t i = 0; i < m->nwithout; i++) {
    has = r->env->header(r->env->ctx, m->without_headers[i].name, &v);
    if (sm(&m->without_headers[i].m, has, v, 0)) return 0;
  }
  for (uint32_t i = 0; i < m->nquery; i++) {
    has = query_param(r, m->query[i].name, &v);
    if (!sm(&m->query[i].m, has, v, 0)) return 0;
  }
  return 1;
}

static int route_ok(req *r, const split_route *rt) {
  if (rt->nmatch == 0) return 1;
  for (uint32_t i = 0; i < rt->nmatch; i++)
    if (block_ok(r, &rt->match[i])) return 1;
  return 0;
}

/* absl::SimpleAtoi for uint64 as Envoy reads random_value_specifier's header: ASCII whitespace
 * around, an optional '+', decimal digits, no overflow. */
static int parse_u64(wstr s, uint64_t *out) {
  uint32_t i = 0, n = s.n;
  while (i < n && (s.p[i] == ' ' || (s.p[i] >= '\t' && s.p[i] <= '\r'))) i++;
  while (n > i && (s.p[n - 1] == ' ' || (s.p[n - 1] >= '\t' && s.p[n - 1] <= '\r'))) n--;
  if (i < n && s.p[i] == '+') i++;
  if (i >= n) return 0;
  uint64_t v = 0;
  for (; i < n; i++) {
    char ch = s.p[i];
    if (ch < '0' || ch > '9') return 0;
    uint64_t d = (uint64_t)(ch - '0');
    if (v > (UINT64_MAX - d) / 10) return 0;
    v = v * 10 + d;
  }
  *out = v;
  return 1;
}

static uint32_t parse_port(const char *p, uint32_t n, int *ok) {
  uint32_t v = 0;
  *ok = n > 0 && n <= 5;
  for (uint32_t i = 0; *ok && i < n; i++) {
    if (p[i] < '0' || p[i] > '9') *ok = 0;
    else v = v * 10 + (uint32_t)(p[i] - '0');
  }
  if (v > 65535) *ok = 0;
  return v;
}

int split_parse_cluster(wstr name, uint32_t port, wstr *service, wstr *subset) {
  uint32_t bars[3], nb = 0;
  for (uint32_t i = 0; i < name.n; i++) {
    if (name.p[i] != '|') continue;
    if (nb == 3) return 0;
    bars[nb++] = i;
  }
  if (nb != 3 || !wstr_eq_cstr((wstr){name.p, bars[0]}, "outbound")) return 0;
  int ok;
  uint32_t p = parse_port(name.p + bars[0] + 1, bars[1] - bars[0] - 1, &ok);
  if (!ok || (port != 0 && p != port)) return 0;
  *subset = (wstr){name.p + bars[1] + 1, bars[2] - bars[1] - 1};
  *service = (wstr){name.p + bars[2] + 1, name.n - bars[2] - 1};
  return service->n > 0;
}

static const split_dest *pick(req *r, const split_route *rt) {
  if (rt->ndests == 1) return &rt->dests[0];
  uint64_t x;
  wstr hv;
  if (rt->hash_header != 0 && r->env->header(r->env->ctx, rt->hash_header, &hv)) x = fnv1a64(hv);
  else if (!(rt->random_header != 0 && r->env->header(r->env->ctx, rt->random_header, &hv) &&
             parse_u64(hv, &x)))
    x = r->env->random(r->env->ctx); /* Envoy: a missing or invalid value falls back to random */
  x %= rt->total_weight;
  for (uint32_t i = 0; i < rt->ndests; i++) {
    if (x < rt->dests[i].weight) return &rt->dests[i];
    x -= rt->dests[i].weight;
  }
  return &rt->dests[rt->ndests - 1]; /* unreachable: x < total_weight */
}

void split_choose(const split_config *cfg, const split_env *env, split_result *out) {
  req r;
  weft_memset(&r, 0, sizeof r);
  r.env = env;
  out->route = 0;
  out->dest = 0;
  for (uint32_t i = 0; i < cfg->nroutes; i++) {
    if (!route_ok(&r, &cfg->routes[i])) continue;
    out->route = &cfg->routes[i];
    out->dest = pick(&r, out->route);
    return;
  }
}
