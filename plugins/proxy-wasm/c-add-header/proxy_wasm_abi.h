/* The slice of the proxy-wasm ABI 0.2.1 these C guests use, declared by hand: no SDK, no libc
 * (clang --target=wasm32-unknown-unknown -nostdlib). Spec: github.com/proxy-wasm/spec. */
#ifndef PROXY_WASM_ABI_H
#define PROXY_WASM_ABI_H
#include <stddef.h>
#include <stdint.h>

#define IMPORT(name) __attribute__((import_module("env"), import_name(#name)))
#define EXPORT(name) __attribute__((export_name(#name)))

enum { OK = 0, NOT_FOUND = 1, BAD_ARGUMENT = 2, UNIMPLEMENTED = 12 };
enum { CONTINUE = 0, PAUSE = 1 };
enum { LOG_TRACE = 0, LOG_DEBUG = 1, LOG_INFO = 2, LOG_WARN = 3, LOG_ERROR = 4 };
enum { HTTP_REQUEST_BODY = 0, HTTP_CALL_RESPONSE_BODY = 4, VM_CONFIGURATION = 6, PLUGIN_CONFIGURATION = 7 };
enum {
  HTTP_REQUEST_HEADERS = 0,
  HTTP_REQUEST_TRAILERS = 1,
  HTTP_RESPONSE_HEADERS = 2,
  HTTP_RESPONSE_TRAILERS = 3,
  HTTP_CALL_RESPONSE_HEADERS = 6
};
enum { STREAM_HTTP_REQUEST = 0, STREAM_HTTP_RESPONSE = 1 };
enum { METRIC_COUNTER = 0, METRIC_GAUGE = 1, METRIC_HISTOGRAM = 2 };

IMPORT(proxy_log) uint32_t proxy_log(uint32_t level, const char *msg, size_t len);
IMPORT(proxy_get_buffer_bytes)
uint32_t proxy_get_buffer_bytes(uint32_t type, uint32_t start, uint32_t max, char **ptr, size_t *len);
IMPORT(proxy_add_header_map_value)
uint32_t proxy_add_header_map_value(uint32_t map, const char *k, size_t kl, const char *v, size_t vl);
IMPORT(proxy_get_header_map_value)
uint32_t proxy_get_header_map_value(uint32_t map, const char *k, size_t kl, char **ptr, size_t *len);

/* A bump allocator over the heap: the host's copies (config, header values) live until the guest
 * resets the arena at the start of its next callback. Enough for filters that keep no host
 * buffers across callbacks (configuration is copied into static storage). */
extern unsigned char __heap_base;
static uintptr_t arena_top = 0;
static inline void arena_reset(void) { arena_top = (uintptr_t)&__heap_base; }

EXPORT(proxy_on_memory_allocate) void *proxy_on_memory_allocate(size_t size) {
  if (arena_top == 0) arena_reset();
  uintptr_t p = (arena_top + 7) & ~(uintptr_t)7;
  size_t pages = __builtin_wasm_memory_size(0);
  if (p + size > pages * 65536) {
    size_t need = (p + size - pages * 65536 + 65535) / 65536;
    if (__builtin_wasm_memory_grow(0, need) == (size_t)-1) return 0;
  }
  arena_top = p + size;
  return (void *)p;
}

static size_t cstrlen(const char *s) {
  size_t n = 0;
  while (s[n]) n++;
  return n;
}

static int bytes_eq(const char *a, size_t al, const char *b, size_t bl) {
  if (al != bl) return 0;
  for (size_t i = 0; i < al; i++)
    if (a[i] != b[i]) return 0;
  return 1;
}

/* Copy the string value of "key" in a flat JSON object into out (no escapes); 0 if absent. */
static size_t json_string(const char *json, size_t len, const char *key, char *out, size_t cap) {
  size_t kl = cstrlen(key);
  for (size_t i = 0; i + kl + 2 <= len; i++) {
    if (json[i] != '"' || !bytes_eq(json + i + 1, kl, key, kl) || json[i + 1 + kl] != '"') continue;
    size_t j = i + kl + 2;
    while (j < len && json[j] != '"') j++;
    size_t n = 0;
    for (j++; j < len && json[j] != '"' && n < cap; j++) out[n++] = json[j];
    return n;
  }
  return 0;
}
#endif
