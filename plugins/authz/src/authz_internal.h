/* Compiled authz config, shared by authz_config.c (builds it) and authz_eval.c (reads it). */
#ifndef WEFT_AUTHZ_INTERNAL_H
#define WEFT_AUTHZ_INTERNAL_H

#include "../../_common/c/cfg.h"
#include "authz.h"

typedef struct {
  cidr *v;
  uint32_t n;
} cidrlist;

typedef struct {
  strlist principals, not_principals, namespaces, not_namespaces;
  strlist service_accounts, not_service_accounts, request_principals, not_request_principals;
  cidrlist ip_blocks, not_ip_blocks, remote_ip_blocks, not_remote_ip_blocks;
} authz_source;

typedef struct {
  strlist hosts, not_hosts, ports, not_ports, methods, not_methods, paths, not_paths;
} authz_operation;

typedef enum {
  CK_HEADER,
  CK_SOURCE_IP,
  CK_SOURCE_NS,
  CK_SOURCE_PRINCIPAL,
  CK_SOURCE_SA,
  CK_DEST_IP,
  CK_DEST_PORT,
  CK_SNI,
  CK_AUTH_PRINCIPAL,
  CK_AUTH_AUDIENCES, /* a list: any audience may match */
  CK_AUTH_PRESENTER,
  CK_AUTH_CLAIM /* `prop` names it; a string or a list of strings (any element may match) */
} cond_kind;

typedef struct {
  cond_kind kind;
  wstr header; /* lower-case, CK_HEADER */
  wstr prop;   /* CK_AUTH_CLAIM: the key itself, request.auth.claims[..] */
  strlist values, not_values;
  cidrlist cidrs, not_cidrs; /* CK_*_IP */
} authz_condition;

typedef struct {
  authz_source *from;
  uint32_t nfrom;
  authz_operation *to;
  uint32_t nto;
  authz_condition *when;
  uint32_t nwhen;
} authz_rule;

typedef enum { ACT_ALLOW, ACT_DENY, ACT_AUDIT } authz_action;

typedef struct {
  const char *name;
  authz_action action;
  int dry_run;
  authz_rule *rules; /* none = the policy matches nothing (spec: {}) */
  uint32_t nrules;
  const char **rule_ids;
  const char *metric_allowed, *metric_denied; /* "allowed/<name>", "denied/<name>" */
} authz_policy;

struct authz_config {
  authz_policy *policies;
  uint32_t npolicies;
  int has_allow; /* an enforced (not dry-run) ALLOW policy exists */
  uint32_t counter_batch;
};

int authz_config_policies(cfgctx *c, const jval *root, authz_config *cfg);
/* URI templates in paths (authz_eval.c): 3 for `{*}`, 4 for `{**}` at t[k], else 0. */
uint32_t authz_template_op(wstr t, uint32_t k);
int authz_is_template(wstr t);

#endif
