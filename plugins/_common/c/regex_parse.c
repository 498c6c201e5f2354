/* RE2-subset pattern parser: pattern text → AST (see regex.h for the syntax). */
#include "regex_internal.h"

typedef struct {
  arena *a;
  const char *s;
  uint32_t n, i;
  int icase, depth;
  const char *err;
} rp;

static rnode *mk(rp *p, int k) {
  rnode *r = (rnode *)arena_alloc(p->a, sizeof(rnode));
  if (r == 0) { p->err = "out of memory"; return 0; }
  weft_memset(r, 0, sizeof(rnode));
  r->k = k;
  return r;
}

static void set_add(uint8_t *set, unsigned c) { set[c >> 3] |= (uint8_t)(1u << (c & 7)); }

static void set_class(uint8_t *set, char cls) {
  for (unsigned c = 0; c < 256; c++) {
    int in = 0;
    char l = lower_ascii((char)cls);
    if (l == 'd') in = c >= '0' && c <= '9';
    else if (l == 'w') in = (c >= '0' && c <= '9') || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_';
    else if (l == 's') in = c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\f' || c == '\v';
    if (cls >= 'A' && cls <= 'Z') in = !in;
    if (in) set_add(set, c);
  }
}

static int is_class_letter(char c) {
  return c == 'd' || c == 'D' || c == 'w' || c == 'W' || c == 's' || c == 'S';
}

/* Escaped literal: only punctuation and a few control escapes, so unknown letters fail loudly. */
static int escape_lit(char e, unsigned char *out) {
  if (e == 'n') { *out = '\n'; return 1; }
  if (e == 't') { *out = '\t'; return 1; }
  if (e == 'r') { *out = '\r'; return 1; }
  if ((e >= 'a' && e <= 'z') || (e >= 'A' && e <= 'Z') || (e >= '0' && e <= '9')) return 0;
  *out = (unsigned char)e;
  return 1;
}

static void set_fold(uint8_t *set) {
  for (unsigned c = 'a'; c <= 'z'; c++)
    if (set_has(set, c) || set_has(set, c - 32)) { set_add(set, c); set_add(set, c - 32); }
}

static rnode *parse_set(rp *p) {
  rnode *r = mk(p, N_SET);
  if (r == 0) return 0;
  r->set = (uint8_t *)arena_alloc(p->a, 32);
  if (r->set == 0) { p->err = "out of memory"; return 0; }
  weft_memset(r->set, 0, 32);
  int neg = 0, first = 1;
  if (p->i < p->n && p->s[p->i] == '^') { neg = 1; p->i++; }
  for (;;) {
    if (p->i >= p->n) { p->err = "missing ]"; return 0; }
    char c = p->s[p->i];
    if (c == ']' && !first) { p->i++; break; }
    first = 0;
    if (c == '[' && p->i + 1 < p->n && p->s[p->i + 1] == ':') { p->err = "[:class:] unsupported"; return 0; }
    p->i++;
    unsigned char lo = (unsigned char)c;
    if (c == '\\') {
      if (p->i >= p->n) { p->err = "trailing \\"; return 0; }
      char e = p->s[p->i++];
      if (is_class_letter(e)) { set_class(r->set, e); continue; }
      if (!escape_lit(e, &lo)) { p->err = "unsupported escape"; return 0; }
    }
    unsigned char hi = lo;
    if (p->i + 1 < p->n && p->s[p->i] == '-' && p->s[p->i + 1] != ']') {
      p->i++;
      hi = (unsigned char)p->s[p->i++];
      if (hi == '\\') {
        if (p->i >= p->n || !escape_lit(p->s[p->i++], &hi)) { p->err = "bad range"; return 0; }
      }
      if (hi < lo) { p->err = "bad range"; return 0; }
    }
    for (unsigned k = lo; k <= hi; k++) set_add(r->set, k);
  }
  if (p->icase) set_fold(r->set);
  if (neg)
    for (int k = 0; k < 32; k++) r->set[k] = (uint8_t)~r->set[k];
  return r;
}

static rnode *parse_alt(rp *p);

static rnode *parse_atom(rp *p) {
  char c = p->s[p->i++];
  rnode *r;
  if (c == '(') {
    if (p->i + 1 < p->n && p->s[p->i] == '?') {
      if (p->s[p->i + 1] != ':') { p->err = "unsupported group"; return 0; }
      p->i += 2;
    }
    if (++p->depth > RE_MAX_DEPTH) { p->err = "nesting too deep"; return 0; }
    r = parse_alt(p);
    p->depth--;
    if (r == 0) return 0;
    if (p->i >= p->n || p->s[p->i] != ')') { p->err = "missing )"; return 0; }
    p->i++;
    return r;
  }
  if (c == '[') return parse_set(p);
  if (c == '.') {
    r = mk(p, N_SET);
    if (r == 0) return 0;
    r->set = (uint8_t *)arena_alloc(p->a, 32);
    if (r->set == 0) { p->err = "out of memory"; return 0; }
    weft_memset(r->set, 0xFF, 32);
    r->set['\n' >> 3] &= (uint8_t)~(1u << ('\n' & 7)); /* RE2: '.' excludes \n by default */
    return r;
  }
  if (c == '*' || c == '+' || c == '?' || c == '{') { p->err = "missing argument to repetition"; return 0; }
  if (c == '\\') {
    if (p->i >= p->n) { p->err = "trailing \\"; return 0; }
    char e = p->s[p->i++];
    if (is_class_letter(e)) {
      r = mk(p, N_SET);
      if (r == 0) return 0;
      r->set = (uint8_t *)arena_alloc(p->a, 32);
      if (r->set == 0) { p->err = "out of memory"; return 0; }
      weft_memset(r->set, 0, 32);
      set_class(r->set, e);
      return r;
    }
    unsigned char lit;
    if (!escape_lit(e, &lit)) { p->err = "unsupported escape"; return 0; }
    c = (char)lit;
  }
  if (p->icase && ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z'))) {
    r = mk(p, N_SET);
    if (r == 0) return 0;
    r->set = (uint8_t *)arena_alloc(p->a, 32);
    if (r->set == 0) { p->err = "out of memory"; return 0; }
    weft_memset(r->set, 0, 32);
    set_add(r->set, (unsigned char)c);
    set_fold(r->set);
    return r;
  }
  r = mk(p, N_CHAR);
  if (r) r->c = (unsigned char)c;
  return r;
}

static int parse_int(rp *p, int *out) {
  int v = 0, any = 0;
  while (p->i < p->n && p->s[p->i] >= '0' && p->s[p->i] <= '9') {
    v = v * 10 + (p->s[p->i++] - '0');
    if (v > 1000) return 0;
    any = 1;
  }
  *out = v;
  return any;
}

static rnode *parse_repeat(rp *p) {
  rnode *r = parse_atom(p);
  while (r != 0 && p->i < p->n) {
    char c = p->s[p->i];
    rnode *q;
    if (c == '*' || c == '+' || c == '?') {
      p->i++;
      q = mk(p, c == '*' ? N_STAR : c == '+' ? N_PLUS : N_QUEST);
    } else if (c == '{') {
      uint32_t save = p->i++;
      int mn, mx;
      if (!parse_int(p, &mn)) { p->i = save; p->err = "bad repetition"; return 0; }
      mx = mn;
      if (p->i < p->n && p->s[p->i] == ',') {
        p->i++;
        if (!parse_int(p, &mx)) mx = -1;
      }
      if (p->i >= p->n || p->s[p->i] != '}' || (mx >= 0 && mx < mn)) { p->err = "bad repetition"; return 0; }
      p->i++;
      q = mk(p, N_REP);
      if (q) { q->min = mn; q->max = mx; }
    } else {
      break;
    }
    if (q == 0) return 0;
    if (p->i < p->n && p->s[p->i] == '?') p->i++; /* lazy: same language under full match */
    q->a = r;
    r = q;
  }
  return r;
}

static rnode *parse_cat(rp *p) {
  rnode *r = mk(p, N_EMPTY);
  while (r != 0 && p->i < p->n && p->s[p->i] != '|' && p->s[p->i] != ')') {
    if (p->s[p->i] == '$' && p->i + 1 == p->n) { p->i++; break; }
    rnode *x = parse_repeat(p);
    if (x == 0) return 0;
    if (r->k == N_EMPTY) { r = x; continue; }
    rnode *c = mk(p, N_CAT);
    if (c == 0) return 0;
    c->a = r;
    c->b = x;
    r = c;
  }
  return r;
}

static rnode *parse_alt(rp *p) {
  rnode *r = parse_cat(p);
  while (r != 0 && p->i < p->n && p->s[p->i] == '|') {
    p->i++;
    rnode *b = parse_cat(p);
    if (b == 0) return 0;
    rnode *x = mk(p, N_ALT);
    if (x == 0) return 0;
    x->a = r;
    x->b = b;
    r = x;
  }
  return r;
}

rnode *regex_parse(arena *a, wstr pat, const char **err) {
  rp p = {a, pat.p, pat.n, 0, 0, 0, 0};
  *err = 0;
  if (pat.n >= 4 && pat.p[0] == '(' && pat.p[1] == '?' && pat.p[2] == 'i' && pat.p[3] == ')') {
    p.icase = 1;
    p.i = 4;
  }
  if (p.i < p.n && p.s[p.i] == '^') p.i++;
  rnode *root = parse_alt(&p);
  if (root != 0 && p.i != p.n) p.err = "unexpected )";
  if (root == 0 || p.err != 0) {
    *err = p.err ? p.err : "invalid pattern";
    return 0;
  }
  return root;
}
