/**
 * AuthorizationPolicy CUSTOM → the two HTTP filters istiod puts first in an inbound chain
 * (pilot/pkg/security/authz/builder: extauthz.go): an RBAC filter whose `shadow_rules` (action
 * DENY, stat prefix `istio_ext_authz_`, policy ids prefixed `istio-ext-authz-`) hold the CUSTOM
 * rules, then `envoy.filters.http.ext_authz` for the one provider MeshConfig extensionProviders
 * names (cluster `outbound|<port>||<host>`, istiod's defaults). A workload whose CUSTOM policies
 * name no usable provider gets istiod's deny-all RBAC filter instead
 * (`default-deny-all-due-to-bad-CUSTOM-action`). The ExtAuthz message is written field by field
 * (envoy/extensions/filters/http/ext_authz/v3/ext_authz.proto numbers); the node reads it back in
 * src/xds/resources/ext_authz.ts. `filter_enabled_metadata` is left out: weft's node pairs the
 * two filters itself.
 */
import { create } from "@bufbuild/protobuf";
import { type Any, AnySchema } from "@bufbuild/protobuf/wkt";
import type { AuthorizationPolicy } from "../../core/mod.ts";
import { type ExtAuthzProvider, providerFor } from "../../istio/mod.ts";
import { Writer } from "../wire.ts";
import { rbacFilters } from "./build_rbac.ts";
import type { Mesh } from "./mesh.ts";

export const EXT_AUTHZ_TYPE_URL =
  "type.googleapis.com/envoy.extensions.filters.http.ext_authz.v3.ExtAuthz";
export const EXT_AUTHZ_STAT_PREFIX = "istio_ext_authz_";

export type RbacOrAny =
  | { readonly name: string; readonly rbac: Record<string, unknown> }
  | { readonly name: string; readonly any: Any };

const DENY_ALL = {
  rules: {
    action: "DENY",
    policies: {
      "default-deny-all-due-to-bad-CUSTOM-action": {
        permissions: [{ any: true }],
        principals: [{ any: true }],
      },
    },
  },
};

function duration(w: Writer, field: number, ms: number): void {
  const s = Math.floor(ms / 1000);
  w.tag(field, 2).fork();
  if (s) w.tag(1, 0).int64(s);
  if (ms % 1000) w.tag(2, 0).int32((ms % 1000) * 1_000_000);
  w.join();
}

/** Istio's header patterns → ListStringMatcher{patterns: StringMatcher{exact|prefix|suffix,
 * ignore_case: true}} (extauthz.go generateHeaders). */
function headers(w: Writer, field: number, patterns: readonly string[]): void {
  if (patterns.length === 0) return;
  w.tag(field, 2).fork();
  for (const p of patterns) {
    w.tag(1, 2).fork();
    if (p.startsWith("*")) w.tag(3, 2).string(p.slice(1));
    else if (p.endsWith("*")) w.tag(2, 2).string(p.slice(0, -1));
    else w.tag(1, 2).string(p);
    w.tag(6, 0).bool(true).join();
  }
  w.join();
}

/** ExtAuthz bytes for a resolved provider (`host`: its service's hostname or IP). */
export function extAuthzBytes(p: ExtAuthzProvider, host: string): Uint8Array {
  const cluster = `outbound|${p.port}||${host}`;
  const w = new Writer();
  if (p.kind === "grpc") {
    // GrpcService{envoy_grpc{cluster_name, authority}, timeout}
    w.tag(1, 2).fork().tag(1, 2).fork().tag(1, 2).string(cluster);
    w.tag(2, 2).string(cluster.replaceAll("|", "_.")).join();
    duration(w, 3, p.timeoutMs);
    w.join();
  } else {
    // HttpService{server_uri{uri, cluster, timeout}, path_prefix, authorization_request,
    // authorization_response}
    w.tag(3, 2).fork();
    w.tag(1, 2).fork().tag(1, 2).string(`http://${host}`).tag(2, 2).string(cluster);
    duration(w, 3, p.timeoutMs);
    w.join();
    if (p.pathPrefix) w.tag(2, 2).string(p.pathPrefix);
    const extra = Object.entries(p.includeAdditionalHeadersInCheck).sort();
    if (p.includeRequestHeadersInCheck.length || extra.length) {
      w.tag(7, 2).fork();
      headers(w, 1, p.includeRequestHeadersInCheck);
      for (const [k, v] of extra) w.tag(2, 2).fork().tag(1, 2).string(k).tag(2, 2).string(v).join();
      w.join();
    }
    const r = [
      p.headersToUpstreamOnAllow,
      p.headersToDownstreamOnDeny,
      p.headersToDownstreamOnAllow,
    ];
    if (r.some((l) => l.length)) {
      w.tag(8, 2).fork();
      headers(w, 1, p.headersToUpstreamOnAllow);
      headers(w, 2, p.headersToDownstreamOnDeny);
      headers(w, 4, p.headersToDownstreamOnAllow);
      w.join();
    }
    w.join();
  }
  if (p.failOpen) w.tag(2, 0).bool(true);
  const b = p.includeRequestBodyInCheck;
  if (b) {
    w.tag(5, 2).fork().tag(1, 0).uint32(b.maxRequestBytes);
    if (b.allowPartialMessage) w.tag(2, 0).bool(true);
    if (b.packAsBytes) w.tag(3, 0).bool(true);
    w.join();
  }
  if (p.statusOnError !== undefined) w.tag(7, 2).fork().tag(1, 0).int32(p.statusOnError).join();
  w.tag(12, 0).int32(2); // transport_api_version: V3
  return w.finish();
}

/** The hostname a provider's `service` names in the mesh, an IP literal, or undefined (istiod:
 * LookupCluster fails). */
function providerHost(mesh: Mesh, service: string): string | undefined {
  if (/^[\d.]+$/.test(service) || service.includes(":")) return service;
  const [ns, host] = service.includes("/") ? service.split("/") : [undefined, service];
  const found = mesh.services.filter((s) =>
    s.hostname === host && (ns === undefined || s.namespace === ns)
  );
  return found.length === 1 ? found[0]!.hostname : undefined;
}

/** The CUSTOM filters of one inbound chain (policies: those of its workloads), in order. */
export function extAuthzFilters(
  mesh: Mesh,
  policies: readonly AuthorizationPolicy[],
): RbacOrAny[] {
  const custom = policies.filter((p) => p.action === "CUSTOM");
  if (custom.length === 0) return [];
  const p = providerFor(mesh.extensionProviders, custom.map((x) => x.provider ?? ""));
  const host = typeof p === "string" ? undefined : providerHost(mesh, p.service);
  if (typeof p === "string" || host === undefined) {
    return [{ name: "envoy.filters.http.rbac", rbac: DENY_ALL }];
  }
  const shadow = rbacFilters(
    custom.map((x) => ({ ...x, action: "DENY" as const, dryRun: true })),
  )[0]!.config as { shadowRules: { action: string; policies: Record<string, unknown> } };
  const policiesById = Object.fromEntries(
    Object.entries(shadow.shadowRules.policies).map(([id, v]) => [`istio-ext-authz-${id}`, v]),
  );
  return [
    {
      name: "envoy.filters.http.rbac",
      rbac: {
        shadowRules: { action: "DENY", policies: policiesById },
        shadowRulesStatPrefix: EXT_AUTHZ_STAT_PREFIX,
      },
    },
    {
      name: "envoy.filters.http.ext_authz",
      any: create(AnySchema, { typeUrl: EXT_AUTHZ_TYPE_URL, value: extAuthzBytes(p, host) }),
    },
  ];
}
