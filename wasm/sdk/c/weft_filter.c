/*
 * Canonical-ABI glue for weft:filter/http-filter@0.1.0, 0.2.0 and 0.3.0 (see weft_filter.h and
 * wasm/README.md for the memory layouts). Keep in step with wasm/filter*.wit.
 */
#include "weft_filter.h"

#if defined(WEFT_FILTER_V3)
#define WORLD_VERSION "0.3.0"
#elif defined(WEFT_FILTER_V2)
#define WORLD_VERSION "0.2.0"
#else
#define WORLD_VERSION "0.1.0"
#endif
#define IMPORT(name) \
  __attribute__((import_module("weft:filter/host@" WORLD_VERSION), import_name(name)))
#define EXPORT(name) __attribute__((export_name(name)))

/* ---- imports, flattened --------------------------------------------------------------- */
IMPORT("get-header") void weft_host_get_header(int32_t map, const char *n, size_t nl, void *ret);
IMPORT("set-header") void weft_host_set_header(int32_t map, const char *n, size_t nl,
                                                const char *v, size_t vl);
IMPORT("add-header") void weft_host_add_header(int32_t map, const char *n, size_t nl,
                                                const char *v, size_t vl);
IMPORT("remove-header") void weft_host_remove_header(int32_t map, const char *n, size_t nl);
IMPORT("get-headers") void weft_host_get_headers(int32_t map, void *ret);
IMPORT("get-property") void weft_host_get_property(const char *n, size_t nl, void *ret);
IMPORT("set-state") void weft_host_set_state(const char *k, size_t kl, const char *v, size_t vl);
IMPORT("log") void weft_host_log(int32_t level, const char *m, size_t ml);
IMPORT("counter-add") void weft_host_counter_add(const char *n, size_t nl, uint64_t delta);
IMPORT("now-ns") uint64_t weft_host_now_ns(void);
IMPORT("monotonic-ns") uint64_t weft_host_monotonic_ns(void);
IMPORT("random-u64") uint64_t weft_host_random_u64(void);

/* ---- memory: one bump heap; hooks reset it to the mark left by configure ------------------ */
extern unsigned char __heap_base;
static uintptr_t heap_top = 0;
static uintptr_t heap_end = 0;
static uintptr_t heap_mark = 0; /* allocations below survive hooks */

static void *bump(size_t size, size_t align) {
  if (heap_top == 0) {
    heap_top = (uintptr_t)&__heap_base;
    heap_end = __builtin_wasm_memory_size(0) * 65536u;
    heap_mark = heap_top;
  }
  if (align < 1) align = 1;
  uintptr_t p = (heap_top + align - 1) & ~(uintptr_t)(align - 1);
  uintptr_t end = p + size;
  if (end > heap_end) {
    size_t pages = (end - heap_end + 65535u) / 65536u;
    if (__builtin_wasm_memory_grow(0, pages) == (size_t)-1) __builtin_trap();
    heap_end += pages * 65536u;
  }
  heap_top = end;
  return (void *)p;
}

void *weft_alloc(size_t size) { return bump(size, 8); }

EXPORT("cabi_realloc")
void *cabi_realloc(void *old, size_t old_size, size_t align, size_t new_size) {
  if (old != 0 && new_size <= old_size) return old;
  void *p = bump(new_size, align);
  if (old != 0 && old_size > 0) __builtin_memcpy(p, old, old_size);
  return p;
}

static void hook_enter(void) {
  if (heap_top == 0) bump(0, 1);
  heap_top = heap_mark;
}

/* libc pieces clang may call; with -mbulk-memory copies and fills lower to memory.copy/fill. */
__attribute__((weak)) void *memcpy(void *d, const void *s, size_t n) {
  __builtin_memcpy(d, s, n);
  return d;
}
__attribute__((weak)) void *memmove(void *d, const void *s, size_t n) {
  __builtin_memmove(d, s, n);
  return d;
}
__attribute__((weak)) void *memset(void *d, int c, size_t n) {
  __builtin_memset(d, c, n);
  return d;
}
__attribute__((weak)) int memcmp(const void *a, const void *b, size_t n) {
  const unsigned char *x = a, *y = b;
  for (size_t i = 0; i < n; i++)
    if (x[i] != y[i]) return x[i] - y[i];
  return 0;
}

size_t weft_strlen(const char *s) {
  size_t n = 0;
  while (s[n]) n++;
  return n;
}

weft_str weft_cstr(const char *s) {
  weft_str r = {s, s ? weft_strlen(s) : 0};
  return r;
}

int weft_str_eq(weft_str a, const char *b) {
  size_t n = weft_strlen(b);
  if (a.len != n) return 0;
  for (size_t i = 0; i < n; i++)
    if (a.ptr[i] != b[i]) return 0;
  return 1;
}

/* ---- host calls ------------------------------------------------------------------------ */
typedef struct {
  uint8_t tag;
  const char *ptr;
  size_t len;
} option_str; /* option<string>: tag @0, ptr @4, len @8 */

int weft_get_header(weft_map map, const char *name, weft_str *out) {
  return weft_get_header_n(map, weft_cstr(name), out);
}

int weft_get_header_n(weft_map map, weft_str name, weft_str *out) {
  option_str r;
  weft_host_get_header(map, name.ptr, name.len, &r);
  if (!r.tag) return 0;
  out->ptr = r.ptr;
  out->len = r.len;
  return 1;
}

void weft_set_header_n(weft_map map, weft_str name, weft_str value) {
  weft_host_set_header(map, name.ptr, name.len, value.ptr, value.len);
}

void weft_set_header(weft_map map, const char *name, const char *value) {
  weft_host_set_header(map, name, weft_strlen(name), value, weft_strlen(value));
}

void weft_add_header(weft_map map, const char *name, const char *value) {
  weft_host_add_header(map, name, weft_strlen(name), value, weft_strlen(value));
}

void weft_remove_header(weft_map map, const char *name) {
  weft_host_remove_header(map, name, weft_strlen(name));
}

weft_str weft_get_headers(weft_map map) {
  struct {
    const char *ptr;
    size_t len;
  } r;
  weft_host_get_headers(map, &r);
  weft_str s = {r.ptr, r.len};
  return s;
}

int weft_get_property(const char *name, weft_str *out) {
  return weft_get_property_n(weft_cstr(name), out);
}

int weft_get_property_n(weft_str name, weft_str *out) {
  option_str r;
  weft_host_get_property(name.ptr, name.len, &r);
  if (!r.tag) return 0;
  out->ptr = r.ptr;
  out->len = r.len;
  return 1;
}

void weft_set_state(const char *key, const char *value) {
  weft_host_set_state(key, weft_strlen(key), value, weft_strlen(value));
}

void weft_log(weft_log_level level, const char *message) {
  weft_host_log(level, message, weft_strlen(message));
}

void weft_log_n(weft_log_level level, weft_str message) {
  weft_host_log(level, message.ptr, message.len);
}

void weft_counter_add(const char *name, uint64_t delta) {
  weft_host_counter_add(name, weft_strlen(name), delta);
}

uint64_t weft_now_ns(void) { return weft_host_now_ns(); }
uint64_t weft_monotonic_ns(void) { return weft_host_monotonic_ns(); }
uint64_t weft_random_u64(void) { return weft_host_random_u64(); }

/* ---- results --------------------------------------------------------------------------- */
weft_action weft_continue(void) {
  weft_action a;
  __builtin_memset(&a, 0, sizeof a);
  a.kind = WEFT_ACTION_CONTINUE;
  return a;
}

weft_action weft_respond(uint16_t status, const char *body, const char *details) {
  weft_action a = weft_continue();
  a.kind = WEFT_ACTION_RESPOND;
  a.status = status;
  a.body = weft_cstr(body ? body : "");
  a.details = weft_cstr(details ? details : "");
  return a;
}

void weft_respond_header(weft_action *a, const char *name, const char *value) {
  if (a->header_count >= WEFT_MAX_RESPONSE_HEADERS) return;
  a->headers[a->header_count][0] = weft_cstr(name);
  a->headers[a->header_count][1] = weft_cstr(value);
  a->header_count++;
}

weft_action weft_delay(uint32_t ms) {
  weft_action a = weft_continue();
  a.kind = WEFT_ACTION_DELAY;
  a.delay_ms = ms;
  return a;
}

weft_action weft_route(const char *service, const char *subset) {
  weft_action a = weft_continue();
  a.kind = WEFT_ACTION_ROUTE;
  a.service = weft_cstr(service);
  a.has_subset = subset != 0;
  a.subset = weft_cstr(subset);
  return a;
}

/* ---- exports --------------------------------------------------------------------------- */
/* Return area of `action`: tag u8 @0; payload @4. respond: status u16 @4, headers (ptr,len)
 * @8/@12, body @16/@20, details @24/@28. delay: u32 @4. route: service @4/@8, subset tag @12,
 * ptr/len @16/@20. */
static uint32_t ret_area[8];
static weft_str header_pairs[WEFT_MAX_RESPONSE_HEADERS * 2];

static void *lower_action(weft_action a) {
  uint8_t *r = (uint8_t *)ret_area;
  uint32_t *w = ret_area;
  __builtin_memset(ret_area, 0, sizeof ret_area);
  r[0] = (uint8_t)a.kind;
  switch (a.kind) {
  case WEFT_ACTION_RESPOND:
    *(uint16_t *)(r + 4) = a.status;
    for (uint32_t i = 0; i < a.header_count; i++) {
      header_pairs[i * 2] = a.headers[i][0];
      header_pairs[i * 2 + 1] = a.headers[i][1];
    }
    w[2] = (uint32_t)(uintptr_t)header_pairs;
    w[3] = a.header_count;
    w[4] = (uint32_t)(uintptr_t)a.body.ptr;
    w[5] = a.body.len;
    w[6] = (uint32_t)(uintptr_t)a.details.ptr;
    w[7] = a.details.len;
    break;
  case WEFT_ACTION_DELAY:
    w[1] = a.delay_ms;
    break;
  case WEFT_ACTION_ROUTE:
    w[1] = (uint32_t)(uintptr_t)a.service.ptr;
    w[2] = a.service.len;
    r[12] = a.has_subset ? 1 : 0;
    w[4] = (uint32_t)(uintptr_t)a.subset.ptr;
    w[5] = a.subset.len;
    break;
  default:
    r[0] = WEFT_ACTION_CONTINUE;
  }
  return ret_area;
}

EXPORT("weft:filter/handler@" WORLD_VERSION "#configure")
void *weft_export_configure(const char *ptr, size_t len) {
  weft_str config = {ptr, len};
  weft_str error = {"", 0};
#ifdef WEFT_FILTER_V2
  weft_body_modes modes = {WEFT_BODY_NONE, WEFT_BODY_NONE};
  int rc = weft_configure(config, &error, &modes);
#else
  int rc = weft_configure(config, &error);
#endif
  heap_mark = heap_top; /* keep what configure allocated */
  uint32_t *w = ret_area;
  __builtin_memset(ret_area, 0, sizeof ret_area);
  ((uint8_t *)ret_area)[0] = rc == 0 ? 0 : 1;
  if (rc != 0) {
    w[1] = (uint32_t)(uintptr_t)error.ptr;
    w[2] = error.len;
  }
#ifdef WEFT_FILTER_V2
  else { /* result<body-modes, string>: ok payload = two enum bytes @4/@5 */
    ((uint8_t *)ret_area)[4] = (uint8_t)modes.request;
    ((uint8_t *)ret_area)[5] = (uint8_t)modes.response;
  }
#endif
  return ret_area;
}

#ifdef WEFT_FILTER_V2
weft_body_action weft_body_continue(void) {
  weft_body_action a;
  __builtin_memset(&a, 0, sizeof a);
  a.kind = WEFT_BODY_CONTINUE;
  return a;
}
weft_body_action weft_body_replace(weft_str body) {
  weft_body_action a = weft_body_continue();
  a.kind = WEFT_BODY_REPLACE;
  a.body = body;
  return a;
}
weft_body_action weft_body_respond(weft_action response) {
  weft_body_action a = weft_body_continue();
  a.kind = WEFT_BODY_RESPOND;
  a.response = response;
  return a;
}
/* body-action: tag u8 @0; replace: list (ptr,len) @4/@8; respond: local-response @4 (the same
 * layout as action.respond, so lower_action builds it and the tag is rewritten). */
static void *lower_body_action(weft_body_action a) {
  if (a.kind == WEFT_BODY_RESPOND && a.response.kind == WEFT_ACTION_RESPOND) {
    uint8_t *r = lower_action(a.response);
    r[0] = 2;
    return r;
  }
  __builtin_memset(ret_area, 0, sizeof ret_area);
  if (a.kind == WEFT_BODY_REPLACE) {
    ((uint8_t *)ret_area)[0] = 1;
    ret_area[1] = (uint32_t)(uintptr_t)a.body.ptr;
    ret_area[2] = a.body.len;
  }
  return ret_area;
}

/* A body hook's argument was lowered (cabi_realloc, at the arena top) just before the call:
 * reset the arena and move the bytes down to its start, so per-chunk memory stays bounded. */
static const char *body_hook_enter(const char *ptr, size_t len) {
  hook_enter();
  uintptr_t p = (uintptr_t)ptr;
  if (len == 0 || p < heap_mark) return ptr;
  char *dst = (char *)heap_mark;
  if (dst != ptr) __builtin_memmove(dst, ptr, len);
  heap_top = heap_mark + len;
  return dst;
}

EXPORT("weft:filter/handler@" WORLD_VERSION "#on-request-body")
void *weft_export_on_request_body(const char *ptr, size_t len, int32_t eos) {
  weft_str body = {body_hook_enter(ptr, len), len};
  return lower_body_action(weft_on_request_body(body, eos != 0));
}

EXPORT("weft:filter/handler@" WORLD_VERSION "#on-response-body")
void *weft_export_on_response_body(const char *ptr, size_t len, int32_t eos) {
  weft_str body = {body_hook_enter(ptr, len), len};
  return lower_body_action(weft_on_response_body(body, eos != 0));
}
#endif

EXPORT("weft:filter/handler@" WORLD_VERSION "#on-request-headers")
void *weft_export_on_request_headers(void) {
  hook_enter();
  return lower_action(weft_on_request_headers());
}

EXPORT("weft:filter/handler@" WORLD_VERSION "#on-response-headers")
void *weft_export_on_response_headers(void) {
  hook_enter();
  return lower_action(weft_on_response_headers());
}

#ifdef WEFT_FILTER_V3
/* trailers-action: tag u8 @0 (0 continue, 1 respond); respond: local-response @4 (as action). */
static void *lower_trailers_action(weft_action a) {
  if (a.kind != WEFT_ACTION_RESPOND) a = weft_continue();
  return lower_action(a);
}

__attribute__((weak)) weft_action weft_on_request_trailers(void) { return weft_continue(); }
__attribute__((weak)) weft_action weft_on_response_trailers(void) { return weft_continue(); }

EXPORT("weft:filter/handler@" WORLD_VERSION "#on-request-trailers")
void *weft_export_on_request_trailers(void) {
  hook_enter();
  return lower_trailers_action(weft_on_request_trailers());
}

EXPORT("weft:filter/handler@" WORLD_VERSION "#on-response-trailers")
void *weft_export_on_response_trailers(void) {
  hook_enter();
  return lower_trailers_action(weft_on_response_trailers());
}
#endif
