/* c-add-header: the add-header filter written directly against the proxy-wasm ABI 0.2.1 in C.
 * Adds `name: value` (from the plugin configuration JSON) to the request and the response. */
#include "proxy_wasm_abi.h"

EXPORT(proxy_abi_version_0_2_1) void proxy_abi_version_0_2_1(void) {}

/* Defaults when the configuration names none; overridable at build time (-DADD_HEADER_VALUE=...),
 * which the hot-reload test uses to build two generations of the same filter. */
#ifndef ADD_HEADER_NAME
#define ADD_HEADER_NAME "x-weft-c-add-header"
#endif
#ifndef ADD_HEADER_VALUE
#define ADD_HEADER_VALUE "on"
#endif

static char name[128] = ADD_HEADER_NAME;
static size_t name_len = sizeof ADD_HEADER_NAME - 1;
static char value[256] = ADD_HEADER_VALUE;
static size_t value_len = sizeof ADD_HEADER_VALUE - 1;

EXPORT(proxy_on_context_create) void proxy_on_context_create(uint32_t ctx, uint32_t parent) {
  (void)ctx;
  (void)parent;
}

EXPORT(proxy_on_vm_start) uint32_t proxy_on_vm_start(uint32_t ctx, uint32_t size) {
  (void)ctx;
  (void)size;
  return 1;
}

EXPORT(proxy_on_configure) uint32_t proxy_on_configure(uint32_t ctx, uint32_t size) {
  (void)ctx;
  arena_reset();
  if (size == 0) return 1;
  char *cfg = 0;
  size_t len = 0;
  if (proxy_get_buffer_bytes(PLUGIN_CONFIGURATION, 0, size, &cfg, &len) != OK) return 0;
  size_t n = json_string(cfg, len, "name", name, sizeof name);
  if (n) name_len = n;
  n = json_string(cfg, len, "value", value, sizeof value);
  if (n) value_len = n;
  static const char msg[] = "c-add-header configured";
  proxy_log(LOG_INFO, msg, sizeof msg - 1);
  return name_len > 0;
}

EXPORT(proxy_on_request_headers)
uint32_t proxy_on_request_headers(uint32_t ctx, uint32_t headers, uint32_t eos) {
  (void)ctx;
  (void)headers;
  (void)eos;
  proxy_add_header_map_value(HTTP_REQUEST_HEADERS, name, name_len, value, value_len);
  return CONTINUE;
}

EXPORT(proxy_on_response_headers)
uint32_t proxy_on_response_headers(uint32_t ctx, uint32_t headers, uint32_t eos) {
  (void)ctx;
  (void)headers;
  (void)eos;
  proxy_add_header_map_value(HTTP_RESPONSE_HEADERS, name, name_len, value, value_len);
  return CONTINUE;
}

EXPORT(proxy_on_done) uint32_t proxy_on_done(uint32_t ctx) {
  (void)ctx;
  return 1;
}
