/**
 * Istio AuthorizationPolicy evaluated at L4, as ztunnel does (l7-semantics.md A8, A20–A24): dry-run
 * policies only logged, any DENY match denies, no ALLOW policy allows, an ALLOW match allows, else
 * deny. At L4 the HTTP-only fields (hosts, methods, paths, request headers) cannot be evaluated: an
 * ALLOW rule using them never matches (narrower), a DENY rule treats them as matching (wider).
 */
import { indexOf, policiesApplying } from "./snapshot_index.ts";
import type { AuthorizationPolicy, Snapshot, Workload } from "./snapshot.ts";
import { matchingRule } from "./authz_compile.ts";
import { L4Peer } from "./authz_peer.ts";

export interface L4Attributes {
  /** Verified peer identity (spiffe://...), undefined for plaintext. */
  sourcePrincipal: string | undefined;
  sourceIp: string;
  destinationIp: string;
  destinationPort: number;
}

export interface AuthzDecision {
  allowed: boolean;
  /** Policy id that decided (`ns[..]-policy[..]-rule[..]`), or undefined (default allow/deny). */
  policy: string | undefined;
  /** Dry-run verdicts, for logs: "allow:<id>" / "deny:<id>". */
  dryRun: readonly string[];
}

/** Istio string match: exact, `abc*` prefix, `*abc` suffix, `*` presence. */
export function stringMatch(pattern: string, value: string | undefined): boolean {
  if (value === undefined) return false;
  if (pattern === "*") return value.length > 0;
  if (pattern.endsWith("*")) return value.startsWith(pattern.slice(0, -1));
  if (pattern.startsWith("*")) return value.endsWith(pattern.slice(1));
  return pattern === value;
}

/** Policies that apply to a workload: its namespace's and the root namespace's, by selector. */
export function policiesFor(
  snapshot: Snapshot,
  workload: Workload,
): readonly AuthorizationPolicy[] {
  return policiesApplying(snapshot, workload);
}

const NO_DRY_RUN: readonly string[] = Object.freeze([]);

/** Per connection: the policies come compiled and split from the snapshot's index, the peer's
 * namespace, service account and parsed IPs are derived once, on first use. */
export function authorizeL4(
  snapshot: Snapshot,
  workload: Workload,
  attrs: L4Attributes,
): AuthzDecision {
  const { dryRun: dry, deny, allow } = indexOf(snapshot).l4Policies(
    workload,
    attrs.destinationPort,
  );
  const sp = attrs.sourcePrincipal;
  const peer = new L4Peer(
    sp !== undefined && sp.startsWith("spiffe://") ? sp.slice(9) : sp,
    attrs.sourceIp,
    attrs.destinationIp,
    attrs.destinationPort,
  );
  let dryRun = NO_DRY_RUN;
  if (dry.length > 0) {
    const out: string[] = [];
    for (const p of dry) out.push(matchingRule(p, peer)?.verdict ?? p.none);
    dryRun = out;
  }
  for (const p of deny) {
    const r = matchingRule(p, peer);
    if (r) return { allowed: false, policy: r.id, dryRun };
  }
  if (allow.length === 0) return { allowed: true, policy: undefined, dryRun };
  for (const p of allow) {
    const r = matchingRule(p, peer);
    if (r) return { allowed: true, policy: r.id, dryRun };
  }
  return { allowed: false, policy: undefined, dryRun };
}
