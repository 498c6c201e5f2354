/* VirtualService-style HTTP routing with weighted destinations, independent of the host ABI. */
#ifndef WEFT_SPLIT_H
#define WEFT_SPLIT_H

#include "../../_common/c/cfg.h"
#include "../../_common/c/regex.h"

typedef enum { SA_METHOD, SA_PATH, SA_HOST, SA_SCHEME, SA_COUNT } split_attr;

typedef struct {
  void *ctx;
  int (*header)(void *ctx, const char *lower_name, wstr *out);
  int (*attr)(void *ctx, split_attr which, wstr *out);
  uint64_t (*random)(void *ctx);
} split_env;

typedef enum { SM_NONE, SM_EXACT, SM_PREFIX, SM_REGEX, SM_PRESENT } smatch_kind;

typedef struct {
  smatch_kind kind;
  wstr value;
  regex *re;
} smatch;

typedef struct {
  const char *name; /* lower-case, NUL-terminated */
  smatch m;
} hmatch;

typedef struct {
  smatch uri, method, authority, scheme;
  int ignore_uri_case;
  hmatch *headers;
  uint32_t nheaders;
  hmatch *without_headers;
  uint32_t nwithout;
  hmatch *query;
  uint32_t nquery;
} split_match;

typedef struct {
  const char *service;        /* 0 when cluster_header is set */
  const char *subset;         /* 0 = whole service */
  const char *cluster_header; /* Envoy cluster_header: the cluster is this header's value */
  uint64_t weight;
  const char *metric; /* "<route>/<service>#<subset>" */
} split_dest;

typedef struct {
  const char *name;
  split_match *match; /* none = matches every request */
  uint32_t nmatch;
  split_dest *dests;
  uint32_t ndests;
  uint64_t total_weight;
  const char *hash_header; /* sticky choice by this header's value; 0 = random */
  /* Envoy random_value_specifier.header_name: a decimal uint64 in this header is the draw */
  const char *random_header;
} split_route;

typedef struct {
  split_route *routes;
  uint32_t nroutes;
  int not_found; /* no route matched → 404 instead of continuing on the default route */
  /* The listener port a cluster_header's Istio cluster name must carry (0 = any). */
  uint32_t cluster_port;
  uint32_t counter_batch;
} split_config;

typedef struct {
  const split_route *route; /* 0 = no route matched */
  const split_dest *dest;
} split_result;

split_config *split_configure(arena *a, wstr json, const char **err);
/* An Istio cluster name `outbound|<port>|<subset>|<fqdn>` → service and subset (subset.n == 0:
 * none); 0 when the name has another shape or another port than `port` (when not 0). */
int split_parse_cluster(wstr name, uint32_t port, wstr *service, wstr *subset);
void split_choose(const split_config *cfg, const split_env *env, split_result *out);

#endif
