/* A small strict JSON parser (RFC 8259) into an arena-allocated tree; plugin configs arrive as
 * JSON bytes at configure time and are parsed once per instance. */
#ifndef WEFT_JSON_H
#define WEFT_JSON_H

#include "weft_rt.h"

typedef enum { J_NULL, J_BOOL, J_NUM, J_STR, J_ARR, J_OBJ } jtype;

typedef struct jval {
  jtype t;
  int b;
  double num;
  wstr s;             /* J_STR: unescaped UTF-8; J_NUM: the literal text */
  wstr key;           /* member name when inside an object */
  uint32_t len;       /* J_ARR/J_OBJ: number of children */
  struct jval *child; /* first child */
  struct jval *next;  /* next sibling */
} jval;

/* Returns the root or 0; on error *err points at a static message and *err_at at the offset. */
jval *json_parse(arena *a, const char *text, uint32_t n, const char **err, uint32_t *err_at);
jval *json_get(const jval *obj, const char *key); /* 0 when absent or obj is not an object */
int json_is_int(const jval *v, int64_t min, int64_t max, int64_t *out);

#endif
