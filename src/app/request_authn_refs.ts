/**
 * weft.yaml's RequestAuthentications → the jwt_authn filter ref of an HTTP service's inbound
 * chain (scope and order: src/istio requestAuthnsFor, as istiod's).
 */
import type { FilterRef, Workload } from "../core/mod.ts";
import { JWT_AUTHN_TYPE } from "../filters/mod.ts";
import { jwtRuleToIstio, requestAuthnsFor } from "../istio/mod.ts";
import type { ServiceConfig, WeftConfig } from "./config_types.ts";

/** The jwt_authn ref, or undefined when no RequestAuthentication applies (or all are empty). */
export function jwtAuthnRef(
  svc: ServiceConfig,
  local: readonly Workload[],
  cfg: WeftConfig,
): FilterRef | undefined {
  const rules = requestAuthnsFor(
    cfg.requestAuthentications ?? [],
    svc,
    local,
    cfg.node.rootNamespace,
  ).flatMap((ra) => ra.jwtRules);
  if (rules.length === 0) return undefined;
  return {
    name: `${svc.name}.${svc.namespace}.jwt-authn`,
    type: JWT_AUTHN_TYPE,
    url: undefined,
    sha256: undefined,
    config: { jwtRules: rules.map(jwtRuleToIstio) },
    failPolicy: "FAIL_CLOSE",
    // After AUTHN WasmPlugins, before AUTHZ ones and RBAC (Istio's inbound order).
    phase: "AUTHN",
    priority: -1_000_000,
  };
}
