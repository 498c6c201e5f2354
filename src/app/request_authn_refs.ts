/**
 * weft.yaml's RequestAuthentications → the jwt_authn filter ref of an HTTP service's inbound
 * chain. Scope as istiod's: the root namespace's apply to every workload, a namespace's to its
 * workloads (narrowed by `selector`), `targetRefs` to the named Service; their jwtRules are
 * merged in that order (root first, then namespace-wide, then selected, then targeted).
 */
import type { FilterRef, Workload } from "../core/mod.ts";
import { JWT_AUTHN_TYPE } from "../filters/mod.ts";
import { jwtRuleToIstio, labelsMatch, type RequestAuthentication } from "../istio/mod.ts";
import type { ServiceConfig, WeftConfig } from "./config_types.ts";

export function requestAuthnsFor(
  svc: ServiceConfig,
  local: readonly Workload[],
  cfg: WeftConfig,
): RequestAuthentication[] {
  const root = cfg.node.rootNamespace;
  const rank = (ra: RequestAuthentication): number => {
    if (ra.targetServices.length > 0) {
      return ra.meta.namespace === svc.namespace && ra.targetServices.includes(svc.name) ? 3 : -1;
    }
    const applies = local.some((w) =>
      (ra.meta.namespace === root || ra.meta.namespace === w.namespace) &&
      (ra.selector === undefined || labelsMatch(w.labels, ra.selector))
    );
    if (!applies) return -1;
    return ra.meta.namespace === root ? 0 : ra.selector === undefined ? 1 : 2;
  };
  return (cfg.requestAuthentications ?? [])
    .map((ra) => [rank(ra), ra] as const)
    .filter(([r]) => r >= 0)
    .sort((a, b) => a[0] - b[0])
    .map(([, ra]) => ra);
}

/** The jwt_authn ref, or undefined when no RequestAuthentication applies (or all are empty). */
export function jwtAuthnRef(
  svc: ServiceConfig,
  local: readonly Workload[],
  cfg: WeftConfig,
): FilterRef | undefined {
  const rules = requestAuthnsFor(svc, local, cfg).flatMap((ra) => ra.jwtRules);
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
