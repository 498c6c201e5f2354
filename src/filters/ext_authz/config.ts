/**
 * The ext_authz filter's config, built once per workload's policy set (weft.yaml: src/app
 * first_party_refs.ts): the provider the CUSTOM policies name, or why none can serve them, and
 * the CUSTOM policies' rules as the shadow-RBAC gate (Istio: an RBAC filter with shadow rules and
 * stat prefix `istio_ext_authz_` in front of ext_authz). The gate is the authz plugin with those
 * rules as DENY policies: a request is sent to the authorizer exactly when the plugin would deny
 * it, so CUSTOM matching is ALLOW/DENY matching, by the same code. Over xDS the gate comes as
 * istiod's shadow RBAC rules (extAuthzConfigFromXds).
 */
import type { AuthorizationPolicy } from "../../core/mod.ts";
import { type ExtAuthzProvider, providerFor } from "../../istio/mod.ts";
import { authzConfigFromPolicies, type AuthzPluginConfig } from "../first_party/authz_config.ts";
import { authzConfigFromEnvoyRbac } from "../first_party/rbac_config.ts";
import { problemsError } from "../first_party/convert_util.ts";

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

const CHECK_ALL = {
  rules: {
    action: "DENY",
    policies: { all: { permissions: [{ any: true }], principals: [{ any: true }] } },
  },
};

const PROVIDER_KEYS = [
  "name",
  "kind",
  "service",
  "port",
  "timeoutMs",
  "failOpen",
  "statusOnError",
  "pathPrefix",
  "includeRequestHeadersInCheck",
  "includeAdditionalHeadersInCheck",
  "includeRequestBodyInCheck",
  "headersToUpstreamOnAllow",
  "headersToDownstreamOnDeny",
  "headersToDownstreamOnAllow",
];

/** An xDS node's `{provider, rbac}` (src/xds/resources/ext_authz.ts) → the filter's config: the
 * gate from the RBAC rules (checked as any RBAC config), the provider's shape checked (it came
 * from an untrusted control plane, through weft's own decoder). Throws a `config_invalid`
 * WeftError: the update is NACKed. */
export function extAuthzConfigFromXds(raw: unknown): ExtAuthzFilterConfig {
  const o = (raw ?? {}) as { provider?: Record<string, unknown>; rbac?: unknown };
  const p = o.provider ?? {};
  const problems: string[] = [];
  for (const k of Object.keys(p)) {
    if (!PROVIDER_KEYS.includes(k)) problems.push(`provider.${k}: unknown`);
  }
  if (p.kind !== "http" && p.kind !== "grpc") problems.push("provider.kind: must be http or grpc");
  if (typeof p.service !== "string" || p.service === "") {
    problems.push("provider.service: required");
  }
  const port = p.port as number;
  if (!(Number.isInteger(port) && port >= 1 && port <= 65535)) {
    problems.push("provider.port: 1-65535");
  }
  if (!(typeof p.timeoutMs === "number" && p.timeoutMs >= 0)) problems.push("provider.timeoutMs");
  if (problems.length > 0) throw problemsError("ext_authz config", problems);
  return {
    provider: p as unknown as ExtAuthzProvider,
    error: undefined,
    // No gate (an ext_authz without istiod's shadow RBAC before it, or from ECDS): Envoy checks
    // every request.
    gate: authzConfigFromEnvoyRbac(o.rbac ?? CHECK_ALL),
  };
}
