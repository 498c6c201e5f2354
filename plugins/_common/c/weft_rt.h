/* Freestanding runtime helpers shared by weft's first-party C plugins: byte strings, an arena
 * allocator, hashing and a small PRNG. No libc: the same sources build natively (unit tests) and
 * for wasm32-unknown-unknown (-nostdlib). */
#ifndef WEFT_RT_H
#define WEFT_RT_H

#include <stddef.h>
#include <stdint.h>

typedef struct {
  const char *p;
  uint32_t n;
} wstr;

#define WSTR_LIT(s) ((wstr){(s), (uint32_t)(sizeof(s) - 1)})
#define WSTR_NONE ((wstr){0, 0})

/* Platform hook: raw memory for arenas (malloc natively, linear memory on wasm). */
void *weft_os_alloc(size_t n);
void weft_os_free(void *p);

typedef struct arena_chunk {
  struct arena_chunk *next;
  size_t cap, used;
} arena_chunk;

typedef struct {
  arena_chunk *head;
  int failed; /* set when an allocation could not be served */
} arena;

void *arena_alloc(arena *a, size_t n);
void arena_reset(arena *a); /* keeps the first chunk for reuse, frees the rest */
void arena_free(arena *a);
char *arena_strdup(arena *a, wstr s);

int wstr_eq(wstr a, wstr b);
int wstr_eq_nocase(wstr a, wstr b);
int wstr_eq_cstr(wstr a, const char *s);
int wstr_has_prefix(wstr s, wstr pre);
int wstr_has_suffix(wstr s, wstr suf);
int wstr_has_prefix_nocase(wstr s, wstr pre);
int wstr_has_suffix_nocase(wstr s, wstr suf);
wstr wstr_cstr(const char *s);
/* Parses a non-negative decimal integer; returns 0 on failure (empty, non-digit, overflow). */
int wstr_to_u64(wstr s, uint64_t *out);
char lower_ascii(char c);

void weft_memcpy(void *dst, const void *src, size_t n);
void weft_memset(void *dst, int c, size_t n);

uint64_t fnv1a64(wstr s);

/* xorshift64*: per-instance PRNG seeded from the host's randomness. */
typedef struct {
  uint64_t s;
} prng;
void prng_seed(prng *r, uint64_t seed);
uint64_t prng_next(prng *r);
/* Uniform in [0, bound), bound > 0, without modulo bias worth mentioning (64-bit source). */
uint64_t prng_below(prng *r, uint64_t bound);



/* Growable text in an arena; used for config error messages and ids. */
typedef struct {
  arena *a;
  char *p;
  uint32_t n, cap;
} sbuf;
void sb_init(sbuf *b, arena *a);
void sb_wstr(sbuf *b, wstr s);
void sb_cstr(sbuf *b, const char *s);
void sb_u64(sbuf *b, uint64_t v);
void sb_truncate(sbuf *b, uint32_t n);
const char *sb_cdup(sbuf *b); /* NUL-terminated copy in the arena */
#endif
