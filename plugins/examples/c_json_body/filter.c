/* c_json_body: a weft:filter@0.2.0 body filter in C.
 * Config {"request": "buffered" | "streamed" | "none", "response": ...} (default: both buffered).
 * Buffered request: the body must be a JSON object (else a local 400) and every "password"
 * string value becomes "***". Buffered response: every "token" value becomes "***". Streamed
 * (either direction): every chunk is passed on upper-cased, to show chunk-wise replacement. */
#include "weft_filter.h"

static weft_body_modes modes;

static int contains(weft_str s, const char *needle) {
  size_t n = weft_strlen(needle);
  for (size_t i = 0; i + n <= s.len; i++) {
    size_t j = 0;
    while (j < n && s.ptr[i + j] == needle[j]) j++;
    if (j == n) return 1;
  }
  return 0;
}

static weft_body_mode mode_of(weft_str config, const char *streamed, const char *none) {
  if (contains(config, streamed)) return WEFT_BODY_STREAMED;
  if (contains(config, none)) return WEFT_BODY_NONE;
  return WEFT_BODY_BUFFERED;
}

int weft_configure(weft_str config, weft_str *error, weft_body_modes *out) {
  (void)error;
  modes.request = mode_of(config, "\"request\":\"streamed\"", "\"request\":\"none\"");
  modes.response = mode_of(config, "\"response\":\"streamed\"", "\"response\":\"none\"");
  *out = modes;
  return 0;
}

weft_action weft_on_request_headers(void) { return weft_continue(); }
weft_action weft_on_response_headers(void) { return weft_continue(); }

static int is_object(weft_str b) {
  for (size_t i = 0; i < b.len; i++) {
    char c = b.ptr[i];
    if (c == ' ' || c == '\n' || c == '\r' || c == '\t') continue;
    return c == '{';
  }
  return 0;
}

/* Replace the string value after every "key": with "***". */
static weft_str redact(weft_str in, const char *key, int *count) {
  size_t kl = weft_strlen(key);
  char *out = weft_alloc(in.len + 16 * (in.len / 8 + 1));
  size_t o = 0, i = 0;
  while (i < in.len) {
    if (in.ptr[i] == '"' && i + kl + 1 < in.len && in.ptr[i + kl + 1] == '"') {
      size_t j = 0;
      while (j < kl && in.ptr[i + 1 + j] == key[j]) j++;
      if (j == kl) {
        size_t k = i + kl + 2;
        while (k < in.len && (in.ptr[k] == ' ' || in.ptr[k] == ':')) k++;
        if (k < in.len && in.ptr[k] == '"') {
          size_t e = k + 1;
          while (e < in.len && in.ptr[e] != '"') e += in.ptr[e] == '\\' ? 2 : 1;
          if (e < in.len) {
            for (size_t x = i; x <= k; x++) out[o++] = in.ptr[x];
            out[o++] = '*'; out[o++] = '*'; out[o++] = '*'; out[o++] = '"';
            i = e + 1;
            (*count)++;
            continue;
          }
        }
      }
    }
    out[o++] = in.ptr[i++];
  }
  weft_str r = {out, o};
  return r;
}

static weft_body_action shout(weft_str chunk) {
  char *out = weft_alloc(chunk.len + 1);
  for (size_t i = 0; i < chunk.len; i++) {
    char c = chunk.ptr[i];
    out[i] = (c >= 'a' && c <= 'z') ? (char)(c - 32) : c;
  }
  weft_str r = {out, chunk.len};
  return weft_body_replace(r);
}

weft_body_action weft_on_request_body(weft_str body, int end_of_stream) {
  (void)end_of_stream;
  if (modes.request == WEFT_BODY_STREAMED) return shout(body);
  if (!is_object(body)) {
    return weft_body_respond(weft_respond(400, "expected a JSON object\n", "json_body_rejected"));
  }
  int n = 0;
  weft_str out = redact(body, "password", &n);
  return n ? weft_body_replace(out) : weft_body_continue();
}

weft_body_action weft_on_response_body(weft_str body, int end_of_stream) {
  (void)end_of_stream;
  if (modes.response == WEFT_BODY_STREAMED) return shout(body);
  int n = 0;
  weft_str out = redact(body, "token", &n);
  return n ? weft_body_replace(out) : weft_body_continue();
}
