/**
 * The L4 authorization check as weft evaluated it before policies were compiled per snapshot
 * (src/core/authz.ts up to 2026-12-07): every field tested directly against the policy objects
 * on each call. Kept only as the oracle src/core/authz_equiv_test.ts compares the compiled
 * check with, decision for decision.
 */
import { policiesApplying } from "../../src/core/snapshot_index.ts";
import { stringMatch } from "../../src/core/authz.ts";
import type { AuthzDecision, L4Attributes } from "../../src/core/authz.ts";
import type {
  AuthorizationPolicy,
  PolicyCondition,
  PolicyOperation,
  PolicyRule,
  PolicySource,
  Snapshot,
  Workload,
} from "../../src/core/snapshot.ts";
import { ipInCidr } from "../../src/core/ip.ts";

function anyMatch(patterns: readonly string[], value: string | undefined): boolean {
  for (const p of patterns) if (stringMatch(p, value)) return true;
  return false;
}

/** Outcome of a field at L4: matched, not matched, or not evaluable (HTTP-only). */
type Tri = "yes" | "no" | "n/a";

interface Peer {
  principal: string | undefined;
  namespace: string | undefined;
  attrs: L4Attributes;
}

function stripSpiffe(id: string | undefined): string | undefined {
  return id?.startsWith("spiffe://") ? id.slice("spiffe://".length) : id;
}

function namespaceOf(principal: string | undefined): string | undefined {
  const m = principal && /\/ns\/([^/]+)\/sa\//.exec(principal);
  return m ? m[1] : undefined;
}

function field(
  pos: readonly string[] | undefined,
  neg: readonly string[] | undefined,
  test: (patterns: readonly string[]) => boolean,
): boolean {
  if (pos && pos.length > 0 && !test(pos)) return false;
  if (neg && neg.length > 0 && test(neg)) return false;
  return true;
}

function serviceAccountOf(principal: string | undefined): string | undefined {
  const m = principal && /\/ns\/([^/]+)\/sa\/([^/]+)$/.exec(principal);
  return m ? `${m[1]}/${m[2]}` : undefined;
}

function sourceMatches(s: PolicySource, peer: Peer): Tri {
  const l4 = field(s.principals, s.notPrincipals, (p) => anyMatch(p, peer.principal)) &&
    field(s.namespaces, s.notNamespaces, (p) => anyMatch(p, peer.namespace)) &&
    field(
      s.serviceAccounts,
      s.notServiceAccounts,
      (p) => p.includes(serviceAccountOf(peer.principal) ?? "\0"),
    ) &&
    field(s.ipBlocks, s.notIpBlocks, (p) => p.some((c) => ipInCidr(peer.attrs.sourceIp, c)));
  if (!l4) return "no";
  // remoteIpBlocks (X-Forwarded-For) and requestPrincipals (JWT) exist only at L7.
  const httpOnly = [
    s.remoteIpBlocks,
    s.notRemoteIpBlocks,
    s.requestPrincipals,
    s.notRequestPrincipals,
  ].some((f) => f !== undefined && f.length > 0);
  return httpOnly ? "n/a" : "yes";
}

function operationMatches(o: PolicyOperation, peer: Peer): Tri {
  const port = String(peer.attrs.destinationPort);
  if (!field(o.ports, o.notPorts, (p) => p.includes(port))) return "no";
  const httpOnly = [o.hosts, o.notHosts, o.methods, o.notMethods, o.paths, o.notPaths]
    .some((f) => f !== undefined && f.length > 0);
  return httpOnly ? "n/a" : "yes";
}

/** The `when` keys L4 evaluates (conditionMatches); any other needs HTTP. */
const L4_KEYS: ReadonlySet<string> = new Set([
  "source.principal",
  "source.namespace",
  "source.serviceAccount",
  "source.ip",
  "destination.ip",
  "destination.port",
]);

function conditionMatches(c: PolicyCondition, peer: Peer): Tri {
  let value: string | undefined;
  switch (c.key) {
    case "source.principal":
      value = peer.principal;
      break;
    case "source.namespace":
      value = peer.namespace;
      break;
    case "source.ip":
      return field(c.values, c.notValues, (p) => p.some((x) => ipInCidr(peer.attrs.sourceIp, x)))
        ? "yes"
        : "no";
    case "destination.ip":
      return field(
          c.values,
          c.notValues,
          (p) => p.some((x) => ipInCidr(peer.attrs.destinationIp, x)),
        )
        ? "yes"
        : "no";
    case "destination.port":
      value = String(peer.attrs.destinationPort);
      break;
    case "source.serviceAccount":
      return field(
          c.values,
          c.notValues,
          (p) => p.includes(serviceAccountOf(peer.principal) ?? "\0"),
        )
        ? "yes"
        : "no";
    default:
      return "n/a"; // request.headers[..], request.auth.* and the like need L7
  }
  return field(c.values, c.notValues, (p) => anyMatch(p, value)) ? "yes" : "no";
}

const some = (...fs: (readonly string[] | undefined)[]): boolean =>
  fs.some((f) => f !== undefined && f.length > 0);

/** Whether any part of the rule needs HTTP. Istio drops such a rule whole from an ALLOW policy
 * on TCP (istio/istio authz builder: a rule whose generation fails is skipped; ztunnel's
 * conversion does the same), even when another `from` or `to` entry of it is plain L4. */
function needsHttp(rule: PolicyRule): boolean {
  return (rule.from ?? []).some(({ source: s }) =>
    some(s.remoteIpBlocks, s.notRemoteIpBlocks, s.requestPrincipals, s.notRequestPrincipals)
  ) ||
    (rule.to ?? []).some(({ operation: o }) =>
      some(o.hosts, o.notHosts, o.methods, o.notMethods, o.paths, o.notPaths)
    ) ||
    (rule.when ?? []).some((c) => !L4_KEYS.has(c.key));
}

/** Does the rule match at L4? `wide` = DENY semantics for fields L4 cannot evaluate. */
function ruleMatches(rule: PolicyRule, peer: Peer, wide: boolean): boolean {
  if (!wide && needsHttp(rule)) return false;
  const tri = (t: Tri): boolean => t === "yes" || (t === "n/a" && wide);
  if (
    rule.from && rule.from.length > 0 && !rule.from.some((f) => tri(sourceMatches(f.source, peer)))
  ) {
    return false;
  }
  if (
    rule.to && rule.to.length > 0 && !rule.to.some((t) => tri(operationMatches(t.operation, peer)))
  ) {
    return false;
  }
  for (const c of rule.when ?? []) if (!tri(conditionMatches(c, peer))) return false;
  return true;
}

/** First matching rule's policy id, or undefined. */
function matchPolicy(p: AuthorizationPolicy, peer: Peer): string | undefined {
  const wide = p.action !== "ALLOW";
  for (let i = 0; i < p.rules.length; i++) {
    if (ruleMatches(p.rules[i]!, peer, wide)) {
      return `ns[${p.namespace}]-policy[${p.name}]-rule[${i}]`;
    }
  }
  return undefined;
}

const targetedCache = new WeakMap<Snapshot, Map<string, readonly AuthorizationPolicy[]>>();

/** Policies attached by targetRefs to a service this connection reaches (the workload backs it
 * on this port). An HTTP service's are enforced by its L7 chain (an L7 port never comes here);
 * a TCP service's here, as a waypoint's TCP chain would. Cached per snapshot. */
function targetedPolicies(
  snap: Snapshot,
  w: Workload,
  port: number,
): readonly AuthorizationPolicy[] {
  let bySnap = targetedCache.get(snap);
  if (!bySnap) targetedCache.set(snap, bySnap = new Map());
  const key = `${w.address}|${port}`;
  let out = bySnap.get(key);
  if (out === undefined) {
    const any = snap.policies.some((p) => p.targetServices !== undefined);
    const names = new Set(
      any
        ? snap.services.filter((s) =>
          s.namespace === w.namespace && s.ports.some((p) => p.targetPort === port) &&
          s.endpoints.some((e) => e.address === w.address)
        ).map((s) => s.name)
        : [],
    );
    out = names.size === 0
      ? []
      : snap.policies.filter((p) =>
        p.namespace === w.namespace && (p.targetServices ?? []).some((n) => names.has(n))
      );
    bySnap.set(key, out);
  }
  return out;
}

export function referenceAuthorizeL4(
  snapshot: Snapshot,
  workload: Workload,
  attrs: L4Attributes,
): AuthzDecision {
  const principal = stripSpiffe(attrs.sourcePrincipal);
  const peer: Peer = { principal, namespace: namespaceOf(principal), attrs };
  const bySelector = policiesApplying(snapshot, workload);
  const targeted = targetedPolicies(snapshot, workload, attrs.destinationPort);
  const policies = targeted.length === 0 ? bySelector : [...bySelector, ...targeted];
  const dryRun: string[] = [];
  for (const p of policies) {
    if (!p.dryRun || p.action === "AUDIT") continue;
    const id = matchPolicy(p, peer);
    if (p.action === "DENY") dryRun.push(id ? `deny:${id}` : "deny:none");
    else dryRun.push(id ? `allow:${id}` : "allow:none");
  }
  const live = policies.filter((p) => !p.dryRun);
  for (const p of live) {
    if (p.action !== "DENY") continue;
    const id = matchPolicy(p, peer);
    if (id) return { allowed: false, policy: id, dryRun };
  }
  const allows = live.filter((p) => p.action === "ALLOW");
  if (allows.length === 0) return { allowed: true, policy: undefined, dryRun };
  for (const p of allows) {
    const id = matchPolicy(p, peer);
    if (id) return { allowed: true, policy: id, dryRun };
  }
  return { allowed: false, policy: undefined, dryRun };
}
