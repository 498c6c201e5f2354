/* Istio AuthorizationPolicy evaluation at L7 (ALLOW / DENY / AUDIT, dry-run), independent of the
 * host ABI: attributes come through authz_env so the same code runs natively and in wasm. */
#ifndef WEFT_AUTHZ_H
#define WEFT_AUTHZ_H

#include "../../_common/c/json.h"
#include "../../_common/c/match.h"

typedef enum {
  AT_METHOD,
  AT_PATH,      /* :path including the query; the evaluator strips it */
  AT_HOST,      /* :authority */
  AT_PRINCIPAL, /* verified peer id, with or without "spiffe://"; absent for plaintext */
  AT_SOURCE_IP,
  AT_DEST_IP,
  AT_DEST_PORT,
  AT_SNI,
  /* The JWT the host's jwt_authn filter verified (RequestAuthentication); absent without one. */
  AT_AUTH_PRINCIPAL, /* request.auth.principal: "<iss>/<sub>" */
  AT_AUTH_AUDIENCES, /* request.auth.audiences: each audience, separated by NUL */
  AT_AUTH_PRESENTER, /* request.auth.presenter: azp */
  AT_CONTENT_TYPE,
  AT_COUNT
} authz_attr;

typedef struct {
  void *ctx;
  /* Returns 1 and sets *out when present (several values joined with ","), else 0. */
  int (*header)(void *ctx, wstr lower_name, wstr *out);
  int (*attr)(void *ctx, authz_attr which, wstr *out);
  /* Any host property by name (request.auth.claims[a][b]: a string claim, or a list claim's
   * strings separated by NUL). */
  int (*prop)(void *ctx, wstr name, wstr *out);
} authz_env;

typedef struct authz_config authz_config;

typedef enum { DEC_ALLOW, DEC_DENY } authz_verdict;

typedef struct {
  authz_verdict verdict;
  /* Effective policy id "ns[..]-policy[..]-rule[i]", or "none" (no ALLOW matched / no policy). */
  const char *policy_id;
  const char *policy_name; /* "ns[..]-policy[..]" for metrics, or "none" */
  int audit;               /* an AUDIT policy matched */
  /* Dry-run results: -1 no dry-run policy of that action, 0 denied, 1 allowed. */
  int dry_allow, dry_deny;
  const char *dry_allow_id, *dry_deny_id;
  int grpc; /* content-type application/grpc* (looked up only for denials) */
  /* Counter name: "allowed/<policy>" or "denied/<policy>" ("none" when no policy decided). */
  const char *metric;
} authz_result;

/* Parses and validates the JSON config; on error returns 0 with *err set (arena-allocated). */
uint32_t authz_counter_batch(const authz_config *cfg);
authz_config *authz_configure(arena *a, wstr json, const char **err);
void authz_evaluate(const authz_config *cfg, const authz_env *env, authz_result *out);

#endif
