/* Config validation helpers: path-qualified errors ("routes[0].match[1].uri: ...") and typed
 * getters over the JSON tree. The first error wins. */
#ifndef WEFT_CFG_H
#define WEFT_CFG_H

#include "json.h"

typedef struct {
  arena *a;
  sbuf path;
  const char *err;
} cfgctx;

typedef struct {
  wstr *v;
  uint32_t n;
} strlist;

void cfg_init(cfgctx *c, arena *a);
/* Parse a plugin's JSON config; on a syntax error sets *err ("invalid JSON at byte N: ...") and
 * returns 0. */
jval *cfg_parse_root(arena *a, wstr text, const char **err);
/* Records "path: msg" (msg may be followed by detail) unless an error is already recorded. */
int cfg_fail(cfgctx *c, const char *msg, wstr detail);
uint32_t cfg_push_key(cfgctx *c, const char *key);
uint32_t cfg_push_index(cfgctx *c, uint32_t i);
void cfg_pop(cfgctx *c, uint32_t mark);
/* Fails when obj has a member not in the NULL-terminated allowed list. */
int cfg_known_keys(cfgctx *c, const jval *obj, const char *const *allowed);
/* Optional list of strings under key (absent or null = empty list). */
int cfg_strlist(cfgctx *c, const jval *obj, const char *key, strlist *out);
/* "counterBatch" (1-65536, default 32): see counters.h. */
int cfg_counter_batch(cfgctx *c, const jval *root, uint32_t *out);
int cfg_expect(cfgctx *c, const jval *v, jtype t, const char *what);

#endif
