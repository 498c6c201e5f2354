/* c-json-redact: a proxy-wasm body filter in C against the ABI directly (0.2.1, no SDK).
 * Request: a JSON object body is required (anything else: local 400); the string value of every
 * "password" key is replaced by "***" (the body changes length). Response: the string value of
 * every "token" key is replaced by "***". Bodies arrive buffered (StopIterationAndBuffer until
 * end_of_stream, as an Envoy filter would ask); the host re-frames the rewritten body. */
#include "../c-add-header/proxy_wasm_abi.h"

EXPORT(proxy_abi_version_0_2_1) void abi_marker(void) {}

enum { HTTP_RESPONSE_BODY = 1, STOP_ITERATION_AND_BUFFER = 1 };

IMPORT(proxy_set_buffer_bytes)
uint32_t proxy_set_buffer_bytes(uint32_t, uint32_t, uint32_t, const char *, size_t);
IMPORT(proxy_send_local_response)
uint32_t proxy_send_local_response(uint32_t status, const char *d, size_t dl, const char *b,
                                   size_t bl, const char *h, size_t hl, int32_t grpc);

#define S(lit) lit, sizeof lit - 1

/* The shared header's config helper is not needed here. */
__attribute__((unused)) static size_t (*const unused_json_string)(const char *, size_t, const char *,
                                                                   char *, size_t) = json_string;

EXPORT(proxy_on_context_create) void on_context_create(uint32_t ctx, uint32_t parent) {
  (void)ctx; (void)parent;
}
EXPORT(proxy_on_vm_start) uint32_t on_vm_start(uint32_t c, uint32_t s) { (void)c; (void)s; return 1; }
EXPORT(proxy_on_configure) uint32_t on_configure(uint32_t c, uint32_t s) { (void)c; (void)s; return 1; }

static int starts_object(const char *b, size_t n) {
  for (size_t i = 0; i < n; i++) {
    char c = b[i];
    if (c == ' ' || c == '\n' || c == '\r' || c == '\t') continue;
    return c == '{';
  }
  return 0;
}

/* Copy `in` to `out`, replacing the string value after every `"key":` (spaces allowed) with
 * "***". Returns the output length; `out` must hold len + 3 * occurrences bytes. */
static size_t redact(const char *in, size_t len, const char *key, size_t kl, char *out,
                     uint32_t *count) {
  size_t o = 0, i = 0;
  while (i < len) {
    if (in[i] == '"' && i + kl + 1 < len && bytes_eq(in + i + 1, kl, key, kl) &&
        in[i + 1 + kl] == '"') {
      size_t j = i + kl + 2;
      while (j < len && (in[j] == ' ' || in[j] == ':')) j++;
      if (j < len && in[j] == '"') {
        size_t k = j + 1;
        while (k < len && in[k] != '"') k += in[k] == '\\' ? 2 : 1;
        if (k < len) {
          for (size_t x = i; x <= j; x++) out[o++] = in[x];
          out[o++] = '*'; out[o++] = '*'; out[o++] = '*'; out[o++] = '"';
          i = k + 1;
          (*count)++;
          continue;
        }
      }
    }
    out[o++] = in[i++];
  }
  return o;
}

static uint32_t rewrite(uint32_t buffer, size_t size, const char *key, size_t kl, int require) {
  arena_reset();
  char *b = 0;
  size_t bl = 0;
  if (proxy_get_buffer_bytes(buffer, 0, size, &b, &bl) != OK) return CONTINUE;
  if (require && !starts_object(b, bl)) {
    proxy_send_local_response(400, S("json_redact_not_an_object"), S("expected a JSON object\n"),
                              0, 0, -1);
    return STOP_ITERATION_AND_BUFFER;
  }
  char *out = proxy_on_memory_allocate(bl * 2 + 16);
  if (!out) return CONTINUE;
  uint32_t n = 0;
  size_t ol = redact(b, bl, key, kl, out, &n);
  if (n) proxy_set_buffer_bytes(buffer, 0, bl, out, ol);
  return CONTINUE;
}

EXPORT(proxy_on_request_headers)
uint32_t on_request_headers(uint32_t ctx, uint32_t n, uint32_t eos) {
  (void)ctx; (void)n; (void)eos;
  return CONTINUE;
}

EXPORT(proxy_on_request_body) uint32_t on_request_body(uint32_t ctx, uint32_t size, uint32_t eos) {
  (void)ctx;
  if (!eos) return STOP_ITERATION_AND_BUFFER;
  return rewrite(HTTP_REQUEST_BODY, size, S("password"), 1);
}

EXPORT(proxy_on_response_body) uint32_t on_response_body(uint32_t ctx, uint32_t size, uint32_t eos) {
  (void)ctx;
  if (!eos) return STOP_ITERATION_AND_BUFFER;
  return rewrite(HTTP_RESPONSE_BODY, size, S("token"), 0);
}
