#include "json.h"

typedef struct {
  arena *a;
  const char *s;
  uint32_t n, i;
  const char *err;
  int depth;
} jp;

static void ws(jp *p) {
  while (p->i < p->n) {
    char c = p->s[p->i];
    if (c != ' ' && c != '\t' && c != '\n' && c != '\r') break;
    p->i++;
  }
}

static jval *fail(jp *p, const char *msg) {
  if (p->err == 0) p->err = msg;
  return 0;
}

static jval *node(jp *p, jtype t) {
  jval *v = (jval *)arena_alloc(p->a, sizeof(jval));
  if (v == 0) return fail(p, "out of memory");
  weft_memset(v, 0, sizeof(jval));
  v->t = t;
  return v;
}

static int hex4(jp *p, uint32_t *out) {
  if (p->n - p->i < 4) return 0;
  uint32_t v = 0;
  for (int k = 0; k < 4; k++) {
    char c = p->s[p->i++];
    v <<= 4;
    if (c >= '0' && c <= '9') v |= (uint32_t)(c - '0');
    else if (c >= 'a' && c <= 'f') v |= (uint32_t)(c - 'a' + 10);
    else if (c >= 'A' && c <= 'F') v |= (uint32_t)(c - 'A' + 10);
    else return 0;
  }
  *out = v;
  return 1;
}

static uint32_t put_utf8(char *d, uint32_t cp) {
  if (cp < 0x80) { d[0] = (char)cp; return 1; }
  if (cp < 0x800) { d[0] = (char)(0xC0 | (cp >> 6)); d[1] = (char)(0x80 | (cp & 0x3F)); return 2; }
  if (cp < 0x10000) {
    d[0] = (char)(0xE0 | (cp >> 12)); d[1] = (char)(0x80 | ((cp >> 6) & 0x3F));
    d[2] = (char)(0x80 | (cp & 0x3F)); return 3;
  }
  d[0] = (char)(0xF0 | (cp >> 18)); d[1] = (char)(0x80 | ((cp >> 12) & 0x3F));
  d[2] = (char)(0x80 | ((cp >> 6) & 0x3F)); d[3] = (char)(0x80 | (cp & 0x3F)); return 4;
}

/* Parses a string starting after the opening quote. Escapes never grow the text (\uXXXX is
 * 6 bytes for at most 3 UTF-8 bytes, a surrogate pair 12 for 4), so the output fits in n. */
static int str(jp *p, wstr *out) {
  uint32_t start = p->i, end = start;
  int simple = 1;
  while (end < p->n && p->s[end] != '"') {
    if (p->s[end] == '\\') { simple = 0; end++; }
    else if ((unsigned char)p->s[end] < 0x20) { p->err = "control character in string"; return 0; }
    end++;
  }
  if (end >= p->n) { p->err = "unterminated string"; return 0; }
  if (simple) { *out = (wstr){p->s + start, end - start}; p->i = end + 1; return 1; }
  char *d = (char *)arena_alloc(p->a, end - start + 1);
  if (d == 0) { p->err = "out of memory"; return 0; }
  uint32_t o = 0;
  while (p->i < end) {
    char c = p->s[p->i++];
    if (c != '\\') { d[o++] = c; continue; }
    char e = p->s[p->i++];
    switch (e) {
      case '"': d[o++] = '"'; break;
      case '\\': d[o++] = '\\'; break;
      case '/': d[o++] = '/'; break;
      case 'b': d[o++] = '\b'; break;
      case 'f': d[o++] = '\f'; break;
      case 'n': d[o++] = '\n'; break;
      case 'r': d[o++] = '\r'; break;
      case 't': d[o++] = '\t'; break;
      case 'u': {
        uint32_t cp;
        if (!hex4(p, &cp)) { p->err = "bad \\u escape"; return 0; }
        if (cp >= 0xD800 && cp < 0xDC00 && p->i + 6 <= end && p->s[p->i] == '\\' &&
            p->s[p->i + 1] == 'u') {
          uint32_t lo;
          p->i += 2;
          if (!hex4(p, &lo) || lo < 0xDC00 || lo > 0xDFFF) { p->err = "bad surrogate"; return 0; }
          cp = 0x10000 + ((cp - 0xD800) << 10) + (lo - 0xDC00);
        }
        o += put_utf8(d + o, cp);
        break;
      }
      default: p->err = "bad escape"; return 0;
    }
  }
  p->i = end + 1;
  *out = (wstr){d, o};
  return 1;
}

static jval *value(jp *p);

static jval *number(jp *p) {
  uint32_t start = p->i;
  double v = 0, sign = 1;
  if (p->s[p->i] == '-') { sign = -1; p->i++; }
  if (p->i >= p->n || p->s[p->i] < '0' || p->s[p->i] > '9') return fail(p, "bad number");
  if (p->s[p->i] == '0' && p->i + 1 < p->n && p->s[p->i + 1] >= '0' && p->s[p->i + 1] <= '9')
    return fail(p, "leading zero");
  while (p->i < p->n && p->s[p->i] >= '0' && p->s[p->i] <= '9') v = v * 10 + (p->s[p->i++] - '0');
  if (p->i < p->n && p->s[p->i] == '.') {
    p->i++;
    double scale = 0.1;
    if (p->i >= p->n || p->s[p->i] < '0' || p->s[p->i] > '9') return fail(p, "bad fraction");
    while (p->i < p->n && p->s[p->i] >= '0' && p->s[p->i] <= '9') {
      v += (p->s[p->i++] - '0') * scale;
      scale /= 10;
    }
  }
  if (p->i < p->n && (p->s[p->i] == 'e' || p->s[p->i] == 'E')) {
    p->i++;
    int es = 1, e = 0;
    if (p->i < p->n && (p->s[p->i] == '+' || p->s[p->i] == '-')) es = p->s[p->i++] == '-' ? -1 : 1;
    if (p->i >= p->n || p->s[p->i] < '0' || p->s[p->i] > '9') return fail(p, "bad exponent");
    while (p->i < p->n && p->s[p->i] >= '0' && p->s[p->i] <= '9') {
      if (e < 400) e = e * 10 + (p->s[p->i] - '0');
      p->i++;
    }
    while (e-- > 0) v = es > 0 ? v * 10 : v / 10;
  }
  jval *r = node(p, J_NUM);
  if (r == 0) return 0;
  r->num = v * sign;
  r->s = (wstr){p->s + start, p->i - start};
  return r;
}

static int lit(jp *p, const char *w) {
  uint32_t k = 0;
  while (w[k] != 0) {
    if (p->i + k >= p->n || p->s[p->i + k] != w[k]) return 0;
    k++;
  }
  p->i += k;
  return 1;
}

static jval *container(jp *p, int is_obj) {
  jval *r = node(p, is_obj ? J_OBJ : J_ARR);
  if (r == 0) return 0;
  if (++p->depth > 64) return fail(p, "nesting too deep");
  char close = is_obj ? '}' : ']';
  jval **tail = &r->child;
  ws(p);
  if (p->i < p->n && p->s[p->i] == close) { p->i++; p->depth--; return r; }
  for (;;) {
    wstr key = WSTR_NONE;
    if (is_obj) {
      ws(p);
      if (p->i >= p->n || p->s[p->i] != '"') return fail(p, "expected member name");
      p->i++;
      if (!str(p, &key)) return 0;
      ws(p);
      if (p->i >= p->n || p->s[p->i] != ':') return fail(p, "expected ':'");
      p->i++;
    }
    jval *v = value(p);
    if (v == 0) return 0;
    v->key = key;
    *tail = v;
    tail = &v->next;
    r->len++;
    ws(p);
    if (p->i < p->n && p->s[p->i] == ',') { p->i++; continue; }
    if (p->i < p->n && p->s[p->i] == close) { p->i++; p->depth--; return r; }
    return fail(p, is_obj ? "expected ',' or '}'" : "expected ',' or ']'");
  }
}

static jval *value(jp *p) {
  ws(p);
  if (p->i >= p->n) return fail(p, "unexpected end");
  char c = p->s[p->i];
  jval *v;
  switch (c) {
    case '{': p->i++; return container(p, 1);
    case '[': p->i++; return container(p, 0);
    case '"':
      p->i++;
      v = node(p, J_STR);
      if (v == 0 || !str(p, &v->s)) return 0;
      return v;
    case 't': if (!lit(p, "true")) return fail(p, "bad literal");
      v = node(p, J_BOOL); if (v) v->b = 1; return v;
    case 'f': if (!lit(p, "false")) return fail(p, "bad literal");
      return node(p, J_BOOL);
    case 'n': if (!lit(p, "null")) return fail(p, "bad literal");
      return node(p, J_NULL);
    default: return number(p);
  }
}

jval *json_parse(arena *a, const char *text, uint32_t n, const char **err, uint32_t *err_at) {
  jp p = {a, text, n, 0, 0, 0};
  jval *v = value(&p);
  if (v != 0) {
    ws(&p);
    if (p.i != p.n) { v = 0; p.err = "trailing characters"; }
  }
  if (v == 0) {
    *err = p.err ? p.err : "invalid JSON";
    *err_at = p.i;
  }
  return v;
}

jval *json_get(const jval *obj, const char *key) {
  if (obj == 0 || obj->t != J_OBJ) return 0;
  wstr k = wstr_cstr(key);
  for (jval *c = obj->child; c != 0; c = c->next)
    if (wstr_eq(c->key, k)) return c;
  return 0;
}

int json_is_int(const jval *v, int64_t min, int64_t max, int64_t *out) {
  if (v == 0 || v->t != J_NUM) return 0;
  double d = v->num;
  if (d < (double)min || d > (double)max) return 0;
  int64_t i = (int64_t)d;
  if ((double)i != d) return 0;
  *out = i;
  return 1;
}
