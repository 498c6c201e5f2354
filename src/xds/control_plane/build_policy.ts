/**
 * AuthorizationPolicy → Istio `Authorization` (L4 only, like istiod for ztunnel). A rule with L7
 * conditions (hosts, methods, paths, when) cannot be checked at L4: an ALLOW rule is dropped
 * (allows less), a DENY rule keeps its L4 part (denies more) — both fail safe.
 */
import { create } from "@bufbuild/protobuf";
import type { AuthorizationPolicy, PolicyOperation, PolicySource } from "../../core/mod.ts";
import { parseIp } from "../../core/mod.ts";
import { IstioAuthorizationSchema, istioSecurity } from "../proto.ts";
import type { Mesh } from "./mesh.ts";

type Sm = {
  matchType: { case: "exact" | "prefix" | "suffix"; value: string } | {
    case: "presence";
    value: object;
  };
};

function sm(v: string): Sm {
  if (v === "*") return { matchType: { case: "presence", value: {} } };
  if (v.endsWith("*")) return { matchType: { case: "prefix", value: v.slice(0, -1) } };
  if (v.startsWith("*")) return { matchType: { case: "suffix", value: v.slice(1) } };
  return { matchType: { case: "exact", value: v } };
}

/** "10.0.0.0/8", "2001:db8::/32" or a bare address (its full length), IPv4 or IPv6. The parser
 * validated it (src/istio/security.ts). */
function cidr(v: string): { address: Uint8Array; length: number } {
  const [ip, len] = v.split("/");
  const parsed = parseIp(ip ?? "");
  const bytes = parsed?.bytes ?? new Uint8Array(4);
  return { address: bytes, length: len === undefined ? bytes.length * 8 : Number(len) };
}

/** `ns/sa` → a principal suffix match (the trust domain is any). */
const saPrincipal = (v: string): string => {
  const [ns, sa] = v.split("/");
  return `*/ns/${ns}/sa/${sa}`;
};

function source(s: PolicySource) {
  return {
    principals: [...(s.principals ?? []), ...(s.serviceAccounts ?? []).map(saPrincipal)].map(sm),
    notPrincipals: [...(s.notPrincipals ?? []), ...(s.notServiceAccounts ?? []).map(saPrincipal)]
      .map(sm),
    namespaces: (s.namespaces ?? []).map(sm),
    notNamespaces: (s.notNamespaces ?? []).map(sm),
    sourceIps: (s.ipBlocks ?? []).map(cidr),
    notSourceIps: (s.notIpBlocks ?? []).map(cidr),
  };
}

function operation(o: PolicyOperation) {
  return {
    destinationPorts: (o.ports ?? []).map(Number),
    notDestinationPorts: (o.notPorts ?? []).map(Number),
  };
}

/** HTTP-only source fields, and serviceAccounts beside principals (an AND the wire's principal
 * list, an OR, cannot carry). */
const isL7Source = (s: PolicySource): boolean =>
  [s.remoteIpBlocks, s.notRemoteIpBlocks, s.requestPrincipals, s.notRequestPrincipals].some((x) =>
      x?.length
    ) || (s.principals?.length && s.serviceAccounts?.length)
    ? true
    : false;

const isL7 = (o: PolicyOperation): boolean =>
  [o.hosts, o.notHosts, o.methods, o.notMethods, o.paths, o.notPaths].some((x) => x?.length);

export function authorizationOf(mesh: Mesh, p: AuthorizationPolicy): istioSecurity.Authorization {
  const rules = [];
  for (const r of p.rules) {
    const l7 = (r.to ?? []).some((t) => isL7(t.operation)) || (r.when ?? []).length > 0 ||
      (r.from ?? []).some((f) => isL7Source(f.source));
    if (l7 && p.action === "ALLOW") continue;
    const clauses = [];
    if (r.from?.length) clauses.push({ matches: r.from.map((f) => source(f.source)) });
    const ops = (r.to ?? []).map((t) => operation(t.operation))
      .filter((o) => o.destinationPorts.length + o.notDestinationPorts.length);
    if (ops.length) clauses.push({ matches: ops });
    rules.push({ clauses });
  }
  // A targetRefs policy reaches L4 only bound to a TCP service's workloads (build_address.ts).
  const scope = p.selector || p.targetServices
    ? istioSecurity.Scope.WORKLOAD_SELECTOR
    : p.namespace === mesh.rootNamespace
    ? istioSecurity.Scope.GLOBAL
    : istioSecurity.Scope.NAMESPACE;
  return create(IstioAuthorizationSchema, {
    name: p.name,
    namespace: p.namespace,
    scope,
    action: p.action === "DENY" ? istioSecurity.Action.DENY : istioSecurity.Action.ALLOW,
    dryRun: p.dryRun || p.action === "AUDIT",
    rules,
  });
}
