#include "sdk_glue.h"

/* Arenas draw from the SDK's bump heap: what configure allocates is kept for the instance,
 * what a hook allocates is reclaimed when the next hook starts (so free is a no-op). */
void *weft_os_alloc(size_t n) { return weft_alloc(n); }
void weft_os_free(void *p) { (void)p; }

int glue_header(wstr lower_name, wstr *out) {
  weft_str v;
  if (!weft_get_header_n(WEFT_REQUEST_HEADERS, (weft_str){lower_name.p, lower_name.n}, &v)) return 0;
  *out = (wstr){v.ptr, (uint32_t)v.len};
  return 1;
}

int glue_property(wstr name, wstr *out) {
  weft_str v;
  if (name.p == 0 || !weft_get_property_n((weft_str){name.p, name.n}, &v)) return 0;
  *out = (wstr){v.ptr, (uint32_t)v.len};
  return 1;
}

const char *glue_concat3(const char *a, const char *b, const char *c) {
  size_t la = weft_strlen(a), lb = weft_strlen(b), lc = weft_strlen(c);
  char *s = (char *)weft_alloc(la + lb + lc + 1);
  weft_memcpy(s, a, la);
  weft_memcpy(s + la, b, lb);
  weft_memcpy(s + la + lb, c, lc);
  s[la + lb + lc] = 0;
  return s;
}

void glue_log2(weft_log_level level, const char *a, const char *b) {
  weft_log(level, glue_concat3(a, b, ""));
}
