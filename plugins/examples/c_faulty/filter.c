/*
 * Example of what the sandbox must contain, chosen by request path:
 *   /trap  -> executes `unreachable`
 *   /spin  -> loops forever (stopped by the per-call time budget)
 *   /grow  -> allocates 1 MiB at a time until memory.grow fails at the cap (then traps)
 *   other  -> continue, adding x-faulty: ok
 * Config {"reject": true} is refused (bad-config test).
 */
#include "weft_filter.h"

static volatile uint32_t sink;

int weft_configure(weft_str config, weft_str *error) {
  for (size_t i = 0; i + 8 <= config.len; i++) {
    if (__builtin_memcmp(config.ptr + i, "\"reject\"", 8) == 0) {
      *error = weft_cstr("config.reject: this filter refuses to start");
      return 1;
    }
  }
  return 0;
}

weft_action weft_on_request_headers(void) {
  weft_str path;
  if (weft_get_property("request.path", &path)) {
    if (weft_str_eq(path, "/trap")) __builtin_trap();
    if (weft_str_eq(path, "/spin")) {
      for (;;) sink++;
    }
    if (weft_str_eq(path, "/grow")) {
      for (;;) {
        uint8_t *p = weft_alloc(1 << 20);
        p[0] = 1; /* weft_alloc traps when memory.grow fails */
      }
    }
  }
  weft_set_header(WEFT_REQUEST_HEADERS, "x-faulty", "ok");
  return weft_continue();
}

weft_action weft_on_response_headers(void) { return weft_continue(); }
