/**
 * The ext_authz filter's config, built once per workload's policy set (weft.yaml: src/app
 * first_party_refs.ts): the provider the CUSTOM policies name, or why none can serve them, and
 * the CUSTOM policies' rules as the shadow-RBAC gate (Istio: an RBAC filter with shadow rules and
 * stat prefix `istio_ext_authz_` in front of ext_authz). The gate is the authz plugin with those
 * rules as DENY policies: a request is sent to the authorizer exactly when the plugin would deny
 * it, so CUSTOM matching is ALLOW/DENY matching, by the same code.
 */
import type { AuthorizationPolicy } from "../../core/mod.ts";
import { type ExtAuthzProvider, providerFor } from "../../istio/mod.ts";
import { authzConfigFromPolicies, type AuthzPluginConfig } from "../first_party/authz_config.ts";

export interface ExtAuthzFilterConfig {
  readonly provider: ExtAuthzProvider | undefined;
  /** Why the CUSTOM policies cannot be served; istiod then denies every request of the
   * workload (RBAC `default-deny-all-due-to-bad-CUSTOM-action`), and so does the filter. */
  readonly error: string | undefined;
  readonly gate: AuthzPluginConfig;
}

/** `policies`: one workload's (or service's) CUSTOM policies; `knownHost`: whether a provider's
 * service hostname names a service weft can dial (istiod: LookupCluster). */
export function extAuthzConfig(
  policies: readonly AuthorizationPolicy[],
  providers: readonly ExtAuthzProvider[],
  knownHost: (host: string) => boolean,
): ExtAuthzFilterConfig {
  const custom = policies.filter((p) => p.action === "CUSTOM");
  const gate = authzConfigFromPolicies(custom.map((p) => ({ ...p, action: "DENY" as const })));
  const picked = providerFor(providers, custom.map((p) => p.provider ?? ""));
  if (typeof picked === "string") return { provider: undefined, error: picked, gate };
  const slash = picked.service.indexOf("/");
  const host = slash < 0 ? picked.service : picked.service.slice(slash + 1);
  if (!/^[\d.]+$|:/.test(host) && !knownHost(host)) {
    return {
      provider: undefined,
      error: `provider ${picked.name}: could not find service ${picked.service}`,
      gate,
    };
  }
  return { provider: picked, error: undefined, gate };
}
