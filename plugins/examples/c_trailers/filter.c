/* c_trailers: a weft:filter@0.3.0 trailers filter in C (no bodies asked for).
 * Request trailers: "x-checksum: bad" answers 422 locally; otherwise x-checksum is copied to
 * "x-checked-checksum" and "x-filter: c" is added. Response trailers: "grpc-status" is copied to
 * "x-seen-grpc-status" and "x-filter: c" is added. The headers map cannot see trailers. */
#include "weft_filter.h"

int weft_configure(weft_str config, weft_str *error, weft_body_modes *modes) {
  (void)config;
  (void)error;
  (void)modes; /* bodies stay untouched (WEFT_BODY_NONE) */
  return 0;
}

weft_action weft_on_request_headers(void) { return weft_continue(); }
weft_action weft_on_response_headers(void) { return weft_continue(); }
weft_body_action weft_on_request_body(weft_str body, int eos) {
  (void)body;
  (void)eos;
  return weft_body_continue();
}
weft_body_action weft_on_response_body(weft_str body, int eos) {
  (void)body;
  (void)eos;
  return weft_body_continue();
}

weft_action weft_on_request_trailers(void) {
  weft_str v;
  if (weft_get_header(WEFT_REQUEST_TRAILERS, "x-checksum", &v)) {
    if (weft_str_eq(v, "bad")) {
      weft_action a = weft_respond(422, "bad checksum\n", "trailer_checksum_rejected");
      weft_respond_header(&a, "content-type", "text/plain");
      return a;
    }
    weft_set_header_n(WEFT_REQUEST_TRAILERS, weft_cstr("x-checked-checksum"), v);
  }
  weft_add_header(WEFT_REQUEST_TRAILERS, "x-filter", "c");
  return weft_continue();
}

weft_action weft_on_response_trailers(void) {
  weft_str v;
  if (weft_get_header(WEFT_RESPONSE_TRAILERS, "grpc-status", &v)) {
    weft_set_header_n(WEFT_RESPONSE_TRAILERS, weft_cstr("x-seen-grpc-status"), v);
  }
  weft_add_header(WEFT_RESPONSE_TRAILERS, "x-filter", "c");
  return weft_continue();
}
