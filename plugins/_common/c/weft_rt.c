#include "weft_rt.h"

#define ARENA_CHUNK 16384u

static size_t align8(size_t n) { return (n + 7u) & ~(size_t)7u; }

void *arena_alloc(arena *a, size_t n) {
  n = align8(n == 0 ? 1 : n);
  arena_chunk *c = a->head;
  if (c == 0 || c->cap - c->used < n) {
    size_t cap = n > ARENA_CHUNK ? n : ARENA_CHUNK;
    arena_chunk *nc = (arena_chunk *)weft_os_alloc(sizeof(arena_chunk) + cap);
    if (nc == 0) {
      a->failed = 1;
      return 0;
    }
    nc->cap = cap;
    nc->used = 0;
    nc->next = c;
    a->head = nc;
    c = nc;
  }
  void *p = (char *)(c + 1) + c->used;
  c->used += n;
  return p;
}

void arena_reset(arena *a) {
  arena_chunk *c = a->head;
  if (c == 0) return;
  /* Keep the oldest chunk (the tail): it is the steady-state size for per-request use. */
  while (c->next != 0) {
    arena_chunk *next = c->next;
    weft_os_free(c);
    c = next;
  }
  c->used = 0;
  a->head = c;
  a->failed = 0;
}

void arena_free(arena *a) {
  arena_chunk *c = a->head;
  while (c != 0) {
    arena_chunk *next = c->next;
    weft_os_free(c);
    c = next;
  }
  a->head = 0;
  a->failed = 0;
}

char *arena_strdup(arena *a, wstr s) {
  char *p = (char *)arena_alloc(a, s.n + 1u);
  if (p == 0) return 0;
  weft_memcpy(p, s.p, s.n);
  p[s.n] = 0;
  return p;
}

/* The builtins become memory.copy / memory.fill on wasm (-mbulk-memory): one instruction
 * instead of a byte loop that the sandbox would also meter per iteration. */
void weft_memcpy(void *dst, const void *src, size_t n) {
  if (n != 0) __builtin_memcpy(dst, src, n);
}

void weft_memset(void *dst, int c, size_t n) {
  if (n != 0) __builtin_memset(dst, c, n);
}

char lower_ascii(char c) { return (c >= 'A' && c <= 'Z') ? (char)(c + 32) : c; }

/* Eight bytes per step (unaligned loads are fine on wasm and x86): fewer iterations, each of
 * which the sandbox meters on wasm. */
int wstr_eq(wstr a, wstr b) {
  if (a.n != b.n) return 0;
  uint32_t i = 0;
  for (; i + 8 <= a.n; i += 8) {
    uint64_t x, y;
    __builtin_memcpy(&x, a.p + i, 8);
    __builtin_memcpy(&y, b.p + i, 8);
    if (x != y) return 0;
  }
  for (; i < a.n; i++)
    if (a.p[i] != b.p[i]) return 0;
  return 1;
}

int wstr_eq_nocase(wstr a, wstr b) {
  if (a.n != b.n) return 0;
  for (uint32_t i = 0; i < a.n; i++)
    if (lower_ascii(a.p[i]) != lower_ascii(b.p[i])) return 0;
  return 1;
}

wstr wstr_cstr(const char *s) {
  uint32_t n = 0;
  while (s[n] != 0) n++;
  return (wstr){s, n};
}

int wstr_eq_cstr(wstr a, const char *s) { return wstr_eq(a, wstr_cstr(s)); }

int wstr_has_prefix(wstr s, wstr pre) {
  return s.n >= pre.n && wstr_eq((wstr){s.p, pre.n}, pre);
}

int wstr_has_suffix(wstr s, wstr suf) {
  return s.n >= suf.n && wstr_eq((wstr){s.p + (s.n - suf.n), suf.n}, suf);
}

int wstr_has_prefix_nocase(wstr s, wstr pre) {
  return s.n >= pre.n && wstr_eq_nocase((wstr){s.p, pre.n}, pre);
}

int wstr_has_suffix_nocase(wstr s, wstr suf) {
  return s.n >= suf.n && wstr_eq_nocase((wstr){s.p + (s.n - suf.n), suf.n}, suf);
}

int wstr_to_u64(wstr s, uint64_t *out) {
  if (s.n == 0 || s.n > 19) return 0;
  uint64_t v = 0;
  for (uint32_t i = 0; i < s.n; i++) {
    char c = s.p[i];
    if (c < '0' || c > '9') return 0;
    v = v * 10u + (uint64_t)(c - '0');
  }
  *out = v;
  return 1;
}

uint64_t fnv1a64(wstr s) {
  uint64_t h = 14695981039346656037ull;
  for (uint32_t i = 0; i < s.n; i++) {
    h ^= (unsigned char)s.p[i];
    h *= 1099511628211ull;
  }
  return h;
}

void prng_seed(prng *r, uint64_t seed) { r->s = seed != 0 ? seed : 0x9E3779B97F4A7C15ull; }

uint64_t prng_next(prng *r) {
  uint64_t x = r->s;
  x ^= x >> 12;
  x ^= x << 25;
  x ^= x >> 27;
  r->s = x;
  return x * 0x2545F4914F6CDD1Dull;
}

uint64_t prng_below(prng *r, uint64_t bound) { return prng_next(r) % bound; }

void sb_init(sbuf *b, arena *a) {
  b->a = a;
  b->p = 0;
  b->n = 0;
  b->cap = 0;
}

static void sb_grow(sbuf *b, uint32_t extra) {
  if (b->n + extra <= b->cap) return;
  uint32_t cap = b->cap ? b->cap * 2 : 64;
  while (cap < b->n + extra) cap *= 2;
  char *np = (char *)arena_alloc(b->a, cap);
  if (np == 0) return;
  if (b->n) weft_memcpy(np, b->p, b->n);
  b->p = np;
  b->cap = cap;
}

void sb_wstr(sbuf *b, wstr s) {
  sb_grow(b, s.n);
  if (b->n + s.n > b->cap) return;
  weft_memcpy(b->p + b->n, s.p, s.n);
  b->n += s.n;
}

void sb_cstr(sbuf *b, const char *s) { sb_wstr(b, wstr_cstr(s)); }

void sb_u64(sbuf *b, uint64_t v) {
  char tmp[24];
  int i = 24;
  do {
    tmp[--i] = (char)('0' + v % 10);
    v /= 10;
  } while (v != 0);
  sb_wstr(b, (wstr){tmp + i, (uint32_t)(24 - i)});
}

void sb_truncate(sbuf *b, uint32_t n) {
  if (n < b->n) b->n = n;
}

const char *sb_cdup(sbuf *b) {
  char *s = (char *)arena_alloc(b->a, b->n + 1u);
  if (s == 0) return "out of memory";
  if (b->n) weft_memcpy(s, b->p, b->n);
  s[b->n] = 0;
  return s;
}
