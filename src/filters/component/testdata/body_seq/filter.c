/* body_seq: a weft:filter@0.3.0 test guest that logs every hook as "seq <hook> <n> <eos>" (n:
 * the body bytes of a body hook, else 0) so a test can assert the order the host calls them in.
 * Config "streamed" asks for streamed bodies both ways, anything else for buffered ones. */
#include "weft_filter.h"

static void seq(const char *hook, size_t n, int eos) {
  char line[64];
  size_t k = 0;
  for (const char *p = "seq "; *p; p++) line[k++] = *p;
  for (const char *p = hook; *p && k < 40; p++) line[k++] = *p;
  line[k++] = ' ';
  char tmp[24];
  size_t t = 0;
  do { tmp[t++] = (char)('0' + n % 10); n /= 10; } while (n);
  while (t) line[k++] = tmp[--t];
  line[k++] = ' ';
  line[k++] = eos ? '1' : '0';
  weft_log_n(WEFT_LOG_INFO, (weft_str){line, k});
}

int weft_configure(weft_str config, weft_str *error, weft_body_modes *modes) {
  (void)error;
  int streamed = config.len >= 10 && weft_str_eq((weft_str){config.ptr + 1, 8}, "streamed");
  modes->request = modes->response = streamed ? WEFT_BODY_STREAMED : WEFT_BODY_BUFFERED;
  return 0;
}

weft_action weft_on_request_headers(void) {
  seq("request-headers", 0, 0);
  return weft_continue();
}
weft_action weft_on_response_headers(void) {
  seq("response-headers", 0, 0);
  return weft_continue();
}
weft_body_action weft_on_request_body(weft_str body, int eos) {
  seq("request-body", body.len, eos);
  return weft_body_continue();
}
weft_body_action weft_on_response_body(weft_str body, int eos) {
  seq("response-body", body.len, eos);
  return weft_body_continue();
}
weft_action weft_on_request_trailers(void) {
  seq("request-trailers", 0, 0);
  return weft_continue();
}
weft_action weft_on_response_trailers(void) {
  seq("response-trailers", 0, 0);
  return weft_continue();
}
