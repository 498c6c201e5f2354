/*
 * Example: rewrite headers. Config {"header": "<name>", "value": "<value>"}: sets that request
 * header, removes `x-remove-me`, copies the request path into response header `x-weft-path`
 * (through per-request filter state) and bumps a counter. Missing "value" is rejected.
 */
#include "weft_filter.h"

static weft_str header_name, header_value;

/* Finds "key":"..." in a flat JSON object (enough for this example's config). */
static int json_string(weft_str json, const char *key, weft_str *out) {
  size_t kl = weft_strlen(key);
  for (size_t i = 0; i + kl + 2 < json.len; i++) {
    if (json.ptr[i] != '"' || json.ptr[i + kl + 1] != '"') continue;
    if (__builtin_memcmp(json.ptr + i + 1, key, kl) != 0) continue;
    size_t j = i + kl + 2;
    while (j < json.len && (json.ptr[j] == ' ' || json.ptr[j] == ':')) j++;
    if (j >= json.len || json.ptr[j] != '"') return 0;
    size_t start = ++j;
    while (j < json.len && json.ptr[j] != '"') j++;
    out->ptr = json.ptr + start;
    out->len = j - start;
    return 1;
  }
  return 0;
}

int weft_configure(weft_str config, weft_str *error) {
  if (!json_string(config, "value", &header_value)) {
    *error = weft_cstr("config.value: required string");
    return 1;
  }
  if (!json_string(config, "header", &header_name)) header_name = weft_cstr("x-weft-filter");
  return 0;
}

weft_action weft_on_request_headers(void) {
  weft_set_header_n(WEFT_REQUEST_HEADERS, header_name, header_value);
  weft_remove_header(WEFT_REQUEST_HEADERS, "x-remove-me");
  weft_str path;
  if (weft_get_property("request.path", &path)) {
    char *copy = weft_alloc(path.len + 1);
    __builtin_memcpy(copy, path.ptr, path.len);
    copy[path.len] = 0;
    weft_set_state("seen_path", copy);
  }
  weft_counter_add("rewritten", 1);
  return weft_continue();
}

weft_action weft_on_response_headers(void) {
  weft_str path;
  if (weft_get_property("filter_state.seen_path", &path)) {
    weft_set_header_n(WEFT_RESPONSE_HEADERS, weft_cstr("x-weft-path"), path);
  }
  return weft_continue();
}
