/**
 * Istio AuthorizationPolicy → the JSON config of the first-party `authz` plugin
 * (plugins/authz). Called by the bootstrap YAML loader and by the xDS translator.
 * CUSTOM policies are left out: the ext_authz filter (src/filters/ext_authz) enforces them.
 */
import type { AuthorizationPolicy, PolicyRule } from "../../core/mod.ts";
import { Checker, isObj, parseAuthorizationPolicy, Problems } from "../../istio/mod.ts";
import { problemsError } from "./convert_util.ts";

export interface AuthzPluginPolicy {
  /** `ns[<namespace>]-policy[<name>]`; the plugin appends `-rule[<i>]`. */
  readonly name: string;
  readonly action: "ALLOW" | "DENY" | "AUDIT";
  readonly dryRun: boolean;
  readonly rules: readonly PolicyRule[];
}

export interface AuthzPluginConfig {
  readonly policies: readonly AuthzPluginPolicy[];
  /** Counter bumps batched in the guest before a host call (default 32; 1 = exact). */
  readonly counterBatch?: number;
}

/** Policies already scoped to one workload (see core `policiesFor`). Sorted by id, Envoy's
 * order for the effective policy id; the decision itself does not depend on the order. */
export function authzConfigFromPolicies(
  policies: readonly AuthorizationPolicy[],
): AuthzPluginConfig {
  const out = policies.filter((p) => p.action !== "CUSTOM").map((p): AuthzPluginPolicy => ({
    name: `ns[${p.namespace}]-policy[${p.name}]`,
    action: p.action as AuthzPluginPolicy["action"],
    dryRun: p.dryRun,
    rules: p.rules,
  }));
  out.sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
  return Object.freeze({ policies: out });
}

/** An Istio `AuthorizationPolicy` document (apiVersion/kind/metadata/spec) → snapshot form,
 * parsed by src/istio (the one AuthorizationPolicy parser). */
export function authorizationPolicyFromIstio(doc: unknown): AuthorizationPolicy {
  const problems = new Problems();
  const p = parseAuthorizationPolicy(new Checker(problems), isObj(doc) ? doc : {});
  if (!isObj(doc)) problems.add("", "must be an object");
  if (!problems.ok) {
    throw problemsError(`AuthorizationPolicy ${p.meta.namespace}/${p.meta.name}`, problems.list);
  }
  return p.policy;
}
