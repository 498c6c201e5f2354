#include "cfg.h"

void cfg_init(cfgctx *c, arena *a) {
  c->a = a;
  sb_init(&c->path, a);
  c->err = 0;
}

int cfg_fail(cfgctx *c, const char *msg, wstr detail) {
  if (c->err != 0) return 0;
  sbuf b;
  sb_init(&b, c->a);
  if (c->path.n > 0) {
    sb_wstr(&b, (wstr){c->path.p, c->path.n});
    sb_cstr(&b, ": ");
  }
  sb_cstr(&b, msg);
  if (detail.n > 0) sb_wstr(&b, detail);
  c->err = sb_cdup(&b);
  return 0;
}

uint32_t cfg_push_key(cfgctx *c, const char *key) {
  uint32_t mark = c->path.n;
  if (c->path.n > 0) sb_cstr(&c->path, ".");
  sb_cstr(&c->path, key);
  return mark;
}

uint32_t cfg_push_index(cfgctx *c, uint32_t i) {
  uint32_t mark = c->path.n;
  sb_cstr(&c->path, "[");
  sb_u64(&c->path, i);
  sb_cstr(&c->path, "]");
  return mark;
}

void cfg_pop(cfgctx *c, uint32_t mark) { sb_truncate(&c->path, mark); }

int cfg_expect(cfgctx *c, const jval *v, jtype t, const char *what) {
  if (v != 0 && v->t == t) return 1;
  return cfg_fail(c, what, WSTR_NONE);
}

int cfg_known_keys(cfgctx *c, const jval *obj, const char *const *allowed) {
  for (const jval *m = obj->child; m != 0; m = m->next) {
    int ok = 0;
    for (const char *const *k = allowed; *k != 0 && !ok; k++) ok = wstr_eq_cstr(m->key, *k);
    if (!ok) return cfg_fail(c, "unknown field ", m->key);
  }
  return 1;
}

int cfg_strlist(cfgctx *c, const jval *obj, const char *key, strlist *out) {
  out->v = 0;
  out->n = 0;
  const jval *l = json_get(obj, key);
  if (l == 0 || l->t == J_NULL) return 1;
  uint32_t mark = cfg_push_key(c, key);
  if (!cfg_expect(c, l, J_ARR, "must be a list of strings")) return 0;
  out->v = (wstr *)arena_alloc(c->a, sizeof(wstr) * (l->len ? l->len : 1));
  if (out->v == 0) return cfg_fail(c, "out of memory", WSTR_NONE);
  uint32_t i = 0;
  for (const jval *e = l->child; e != 0; e = e->next, i++) {
    if (e->t != J_STR) {
      cfg_push_index(c, i);
      return cfg_fail(c, "must be a string", WSTR_NONE);
    }
    out->v[out->n++] = e->s;
  }
  cfg_pop(c, mark);
  return 1;
}

int cfg_counter_batch(cfgctx *c, const jval *root, uint32_t *out) {
  const jval *v = json_get(root, "counterBatch");
  int64_t n = 32;
  if (v != 0 && v->t != J_NULL && !json_is_int(v, 1, 65536, &n))
    return cfg_fail(c, "counterBatch: must be an integer 1-65536", WSTR_NONE);
  *out = (uint32_t)n;
  return 1;
}

jval *cfg_parse_root(arena *a, wstr text, const char **err) {
  const char *jerr;
  uint32_t at;
  jval *root = json_parse(a, text.p, text.n, &jerr, &at);
  if (root == 0) {
    sbuf b;
    sb_init(&b, a);
    sb_cstr(&b, "invalid JSON at byte ");
    sb_u64(&b, at);
    sb_cstr(&b, ": ");
    sb_cstr(&b, jerr);
    *err = sb_cdup(&b);
  }
  return root;
}
