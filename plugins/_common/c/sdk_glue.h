/* Small adapters between the weft C SDK (wasm/sdk/c) and the plugins' portable code. Only
 * compiled into wasm builds. */
#ifndef WEFT_SDK_GLUE_H
#define WEFT_SDK_GLUE_H

#include "weft_filter.h"
#include "weft_rt.h"

/* Names with their lengths (WSTR_LIT or kept from configure): no strlen per call. */
int glue_header(wstr lower_name, wstr *out);
int glue_property(wstr name, wstr *out);
void glue_log2(weft_log_level level, const char *a, const char *b);
/* NUL-terminated concatenation in the per-hook heap. */
const char *glue_concat3(const char *a, const char *b, const char *c);

#endif
