/*
 * Benchmark guest: each on-request-headers makes N calls of one host import, so the cost of a
 * single call is (hook with N calls - hook with 0 calls) / N. Config (raw bytes, not JSON when
 * driven by the bench directly): one op letter then N in decimal, e.g. "p16".
 *   p: get-property("request.method")   h: get-header(request, "user-agent")
 *   c: counter-add("bench_calls", 1)   s: set-header(request, "x-bench", "1")
 *   n: no host call
 */
#include "weft_filter.h"

static char op = 'n';
static uint32_t n;
static volatile uint32_t sink;

int weft_configure(weft_str config, weft_str *error) {
  (void)error;
  size_t i = 0;
  while (i < config.len && (config.ptr[i] < 'a' || config.ptr[i] > 'z')) i++;
  if (i < config.len) op = config.ptr[i++];
  n = 0;
  for (; i < config.len && config.ptr[i] >= '0' && config.ptr[i] <= '9'; i++)
    n = n * 10 + (uint32_t)(config.ptr[i] - '0');
  return 0;
}

weft_action weft_on_request_headers(void) {
  weft_str v;
  for (uint32_t i = 0; i < n; i++) {
    switch (op) {
      case 'p':
        if (weft_get_property("request.method", &v)) sink += (uint32_t)v.len;
        break;
      case 'h':
        if (weft_get_header(WEFT_REQUEST_HEADERS, "user-agent", &v)) sink += (uint32_t)v.len;
        break;
      case 'c':
        weft_counter_add("bench_calls", 1);
        break;
      case 's':
        weft_set_header(WEFT_REQUEST_HEADERS, "x-bench", "1");
        break;
      default:
        break;
    }
  }
  return weft_continue();
}

weft_action weft_on_response_headers(void) { return weft_continue(); }
