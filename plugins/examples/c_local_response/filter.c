/*
 * Example: local responses, delays and route choice by path.
 *   /deny...   -> 403 "denied by weft\n" with x-denied-by: c_local_response
 *   /delay...  -> continue after 20 ms
 *   /v2...     -> continue to service reviews.default.svc.cluster.local subset v2
 *   otherwise  -> continue; in the response phase a 5xx upstream status becomes a 502 reply.
 */
#include "weft_filter.h"

static int starts_with(weft_str s, const char *prefix) {
  size_t n = weft_strlen(prefix);
  return s.len >= n && __builtin_memcmp(s.ptr, prefix, n) == 0;
}

int weft_configure(weft_str config, weft_str *error) {
  (void)config;
  (void)error;
  return 0;
}

weft_action weft_on_request_headers(void) {
  weft_str path;
  if (!weft_get_property("request.path", &path)) return weft_continue();
  if (starts_with(path, "/deny")) {
    weft_action a = weft_respond(403, "denied by weft\n", "example_denied");
    weft_respond_header(&a, "x-denied-by", "c_local_response");
    weft_respond_header(&a, "content-type", "text/plain");
    return a;
  }
  if (starts_with(path, "/delay")) return weft_delay(20);
  if (starts_with(path, "/v2")) return weft_route("reviews.default.svc.cluster.local", "v2");
  return weft_continue();
}

weft_action weft_on_response_headers(void) {
  weft_str code;
  if (weft_get_property("response.code", &code) && code.len == 3 && code.ptr[0] == '5') {
    return weft_respond(502, "upstream failed\n", "example_upstream_5xx");
  }
  return weft_continue();
}
