/* traffic-split config: JSON → compiled routes (regexes compiled once). */
#include "split.h"

static const char *const ROOT_KEYS[] = {"routes", "noMatch", "counterBatch", "clusterPort", 0};
static const char *const ROUTE_KEYS[] = {"name", "match", "route", "hashHeader",
                                         "randomValueHeader", 0};
static const char *const MATCH_KEYS[] = {"name", "uri", "method", "authority", "scheme",
                                         "ignoreUriCase", "headers", "withoutHeaders",
                                         "queryParams", 0};
static const char *const DEST_KEYS[] = {"service", "subset", "weight", "clusterHeader", 0};

/* A header name, lower-cased, NUL-terminated; 0 after cfg_fail. */
static const char *header_name(cfgctx *c, const jval *j, const char *what) {
  if (j->t != J_STR || j->s.n == 0) {
    cfg_fail(c, what, WSTR_NONE);
    return 0;
  }
  char *n = arena_strdup(c->a, j->s);
  if (n == 0) {
    cfg_fail(c, "out of memory", WSTR_NONE);
    return 0;
  }
  for (uint32_t i = 0; i < j->s.n; i++) n[i] = lower_ascii(n[i]);
  return n;
}
static const char *const SM_KEYS[] = {"exact", "prefix", "regex", 0};

static int str_match(cfgctx *c, const jval *j, smatch *m, int allow_present, int icase) {
  m->kind = SM_NONE;
  if (j == 0 || j->t == J_NULL) return 1;
  if (!cfg_expect(c, j, J_OBJ, "must be an object with exact, prefix or regex") ||
      !cfg_known_keys(c, j, SM_KEYS))
    return 0;
  if (j->len == 0) {
    if (!allow_present) return cfg_fail(c, "needs exact, prefix or regex", WSTR_NONE);
    m->kind = SM_PRESENT;
    return 1;
  }
  if (j->len != 1 || j->child->t != J_STR)
    return cfg_fail(c, "exactly one of exact, prefix, regex (a string)", WSTR_NONE);
  const jval *v = j->child;
  m->value = v->s;
  if (wstr_eq_cstr(v->key, "exact")) m->kind = SM_EXACT;
  else if (wstr_eq_cstr(v->key, "prefix")) m->kind = SM_PREFIX;
  else {
    m->kind = SM_REGEX;
    wstr pat = v->s;
    if (icase) {
      sbuf b;
      sb_init(&b, c->a);
      sb_cstr(&b, "(?i)");
      sb_wstr(&b, pat);
      pat = (wstr){b.p, b.n};
    }
    const char *err;
    m->re = regex_compile(c->a, pat, &err);
    if (m->re == 0) {
      uint32_t mk = cfg_push_key(c, "regex");
      cfg_fail(c, err, WSTR_NONE);
      cfg_pop(c, mk);
      return 0;
    }
  }
  return 1;
}

static int header_map(cfgctx *c, const jval *j, const char *key, hmatch **out, uint32_t *n, int lower) {
  const jval *h = json_get(j, key);
  *n = 0;
  if (h == 0 || h->t == J_NULL) return 1;
  uint32_t mk = cfg_push_key(c, key);
  if (!cfg_expect(c, h, J_OBJ, "must be a map of name to match")) return 0;
  *out = (hmatch *)arena_alloc(c->a, sizeof(hmatch) * (h->len ? h->len : 1));
  if (*out == 0) return cfg_fail(c, "out of memory", WSTR_NONE);
  for (const jval *e = h->child; e != 0; e = e->next) {
    hmatch *hm = &(*out)[(*n)++];
    char *name = arena_strdup(c->a, e->key);
    if (name == 0) return cfg_fail(c, "out of memory", WSTR_NONE);
    for (uint32_t i = 0; lower && i < e->key.n; i++) name[i] = lower_ascii(name[i]);
    hm->name = name;
    uint32_t mi = cfg_push_key(c, name);
    if (!str_match(c, e, &hm->m, 1, 0)) return 0;
    cfg_pop(c, mi);
  }
  cfg_pop(c, mk);
  return 1;
}

static int match_block(cfgctx *c, const jval *j, split_match *m) {
  if (!cfg_expect(c, j, J_OBJ, "must be an object") || !cfg_known_keys(c, j, MATCH_KEYS)) return 0;
  const jval *ic = json_get(j, "ignoreUriCase");
  m->ignore_uri_case = ic != 0 && ic->t == J_BOOL && ic->b;
  static const char *const names[] = {"uri", "method", "authority", "scheme"};
  smatch *slots[] = {&m->uri, &m->method, &m->authority, &m->scheme};
  for (int i = 0; i < 4; i++) {
    uint32_t mk = cfg_push_key(c, names[i]);
    if (!str_match(c, json_get(j, names[i]), slots[i], 0, i == 0 && m->ignore_uri_case)) return 0;
    cfg_pop(c, mk);
  }
  return header_map(c, j, "headers", &m->headers, &m->nheaders, 1) &&
         header_map(c, j, "withoutHeaders", &m->without_headers, &m->nwithout, 1) &&
         header_map(c, j, "queryParams", &m->query, &m->nquery, 0);
}

static int dest(cfgctx *c, const jval *j, split_dest *d, int single) {
  if (!cfg_expect(c, j, J_OBJ, "must be an object") || !cfg_known_keys(c, j, DEST_KEYS)) return 0;
  const jval *s = json_get(j, "service");
  const jval *ch = json_get(j, "clusterHeader");
  if (ch != 0 && ch->t != J_NULL) {
    if ((s != 0 && s->t != J_NULL) || json_get(j, "subset") != 0)
      return cfg_fail(c, "clusterHeader: takes no service or subset", WSTR_NONE);
    d->cluster_header = header_name(c, ch, "clusterHeader: must be a header name");
    if (d->cluster_header == 0) return 0;
  } else {
    if (s == 0 || s->t != J_STR || s->s.n == 0) return cfg_fail(c, "service: required non-empty string", WSTR_NONE);
    d->service = arena_strdup(c->a, s->s);
  }
  const jval *sub = json_get(j, "subset");
  if (sub != 0 && sub->t != J_NULL) {
    if (sub->t != J_STR || sub->s.n == 0) return cfg_fail(c, "subset: must be a non-empty string", WSTR_NONE);
    d->subset = arena_strdup(c->a, sub->s);
  }
  const jval *w = json_get(j, "weight");
  int64_t wv = single ? 100 : 0;
  if (w != 0 && w->t != J_NULL && !json_is_int(w, 0, 0xFFFFFFFFll, &wv))
    return cfg_fail(c, "weight: must be an integer 0-4294967295", WSTR_NONE);
  d->weight = (uint64_t)wv;
  return 1;
}

static int route(cfgctx *c, const jval *j, split_route *r, uint32_t index) {
  if (!cfg_expect(c, j, J_OBJ, "must be an object") || !cfg_known_keys(c, j, ROUTE_KEYS)) return 0;
  const jval *name = json_get(j, "name");
  sbuf b;
  sb_init(&b, c->a);
  if (name != 0 && name->t == J_STR) sb_wstr(&b, name->s);
  else sb_u64(&b, index);
  r->name = sb_cdup(&b);
  const jval *hh = json_get(j, "hashHeader");
  if (hh != 0 && hh->t != J_NULL) {
    r->hash_header = header_name(c, hh, "hashHeader: must be a header name");
    if (r->hash_header == 0) return 0;
  }
  const jval *rv = json_get(j, "randomValueHeader");
  if (rv != 0 && rv->t != J_NULL) {
    if (r->hash_header) return cfg_fail(c, "randomValueHeader: not with hashHeader", WSTR_NONE);
    r->random_header = header_name(c, rv, "randomValueHeader: must be a header name");
    if (r->random_header == 0) return 0;
  }
  const jval *ms = json_get(j, "match");
  if (ms != 0 && ms->t != J_NULL) {
    uint32_t mk = cfg_push_key(c, "match");
    if (!cfg_expect(c, ms, J_ARR, "must be a list")) return 0;
    r->match = (split_match *)arena_alloc(c->a, sizeof(split_match) * (ms->len ? ms->len : 1));
    if (r->match == 0) return cfg_fail(c, "out of memory", WSTR_NONE);
    weft_memset(r->match, 0, sizeof(split_match) * (ms->len ? ms->len : 1));
    for (const jval *e = ms->child; e != 0; e = e->next) {
      uint32_t mi = cfg_push_index(c, r->nmatch);
      if (!match_block(c, e, &r->match[r->nmatch++])) return 0;
      cfg_pop(c, mi);
    }
    cfg_pop(c, mk);
  }
  const jval *ds = json_get(j, "route");
  uint32_t mk = cfg_push_key(c, "route");
  if (ds == 0 || ds->t != J_ARR || ds->len == 0) return cfg_fail(c, "needs at least one destination", WSTR_NONE);
  r->dests = (split_dest *)arena_alloc(c->a, sizeof(split_dest) * ds->len);
  if (r->dests == 0) return cfg_fail(c, "out of memory", WSTR_NONE);
  weft_memset(r->dests, 0, sizeof(split_dest) * ds->len);
  for (const jval *e = ds->child; e != 0; e = e->next) {
    uint32_t mi = cfg_push_index(c, r->ndests);
    if (!dest(c, e, &r->dests[r->ndests], ds->len == 1)) return 0;
    split_dest *d = &r->dests[r->ndests++];
    r->total_weight += d->weight;
    sbuf m;
    sb_init(&m, c->a);
    sb_cstr(&m, r->name);
    sb_cstr(&m, "/");
    if (d->cluster_header) {
      sb_cstr(&m, "header:");
      sb_cstr(&m, d->cluster_header);
    } else
      sb_cstr(&m, d->service);
    if (d->subset) {
      sb_cstr(&m, "#");
      sb_cstr(&m, d->subset);
    }
    d->metric = sb_cdup(&m);
    cfg_pop(c, mi);
  }
  if (r->total_weight == 0) return cfg_fail(c, "the sum of weights must be > 0", WSTR_NONE);
  cfg_pop(c, mk);
  return 1;
}

split_config *split_configure(arena *a, wstr text, const char **err) {
  cfgctx c;
  cfg_init(&c, a);
  jval *root = cfg_parse_root(a, text, err);
  if (root == 0) return 0;
  split_config *cfg = (split_config *)arena_alloc(a, sizeof(split_config));
  if (cfg == 0) { *err = "out of memory"; return 0; }
  weft_memset(cfg, 0, sizeof *cfg);
  if (!cfg_expect(&c, root, J_OBJ, "config must be an object") || !cfg_known_keys(&c, root, ROOT_KEYS)) {
    *err = c.err;
    return 0;
  }
  if (!cfg_counter_batch(&c, root, &cfg->counter_batch)) {
    *err = c.err;
    return 0;
  }
  const jval *cp = json_get(root, "clusterPort");
  int64_t port = 0;
  if (cp != 0 && cp->t != J_NULL && !json_is_int(cp, 0, 65535, &port)) {
    *err = "clusterPort: must be an integer 0-65535";
    return 0;
  }
  cfg->cluster_port = (uint32_t)port;
  const jval *nm = json_get(root, "noMatch");
  if (nm != 0 && nm->t == J_STR && wstr_eq_cstr(nm->s, "notFound")) cfg->not_found = 1;
  else if (nm != 0 && !(nm->t == J_STR && wstr_eq_cstr(nm->s, "continue"))) {
    *err = "noMatch: must be \"continue\" or \"notFound\"";
    return 0;
  }
  const jval *rs = json_get(root, "routes");
  if (rs == 0 || rs->t != J_ARR) { *err = "routes: required list"; return 0; }
  cfg->routes = (split_route *)arena_alloc(a, sizeof(split_route) * (rs->len ? rs->len : 1));
  if (cfg->routes == 0) { *err = "out of memory"; return 0; }
  weft_memset(cfg->routes, 0, sizeof(split_route) * (rs->len ? rs->len : 1));
  cfg_push_key(&c, "routes");
  for (const jval *e = rs->child; e != 0; e = e->next) {
    uint32_t mi = cfg_push_index(&c, cfg->nroutes);
    if (!route(&c, e, &cfg->routes[cfg->nroutes], cfg->nroutes)) { *err = c.err; return 0; }
    cfg->nroutes++;
    cfg_pop(&c, mi);
  }
  return cfg;
}
