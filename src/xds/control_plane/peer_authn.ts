/**
 * PeerAuthentication for ztunnel-style nodes with istiod's precedence: per workload the
 * workload-selector PeerAuthentication of its namespace, else the namespace-wide one, else the
 * mesh-wide one in the root namespace (UNSET inherits from the next level; nothing = PERMISSIVE).
 * Each distinct effective setting becomes one DENY policy for peers without an identity in the
 * root namespace, bound by name to exactly the workloads that have it (Address
 * `authorization_policies`), so a workload-level PERMISSIVE does open a namespace-level STRICT.
 */
import type { AuthorizationPolicy } from "../../core/mod.ts";
import {
  convertPeerAuthentication,
  labelsMatch,
  type MtlsMode,
  type PeerAuthentication,
} from "../../istio/mod.ts";

interface Bindable {
  readonly namespace: string;
  readonly labels: Readonly<Record<string, string>>;
}

/** Never matched by labels: these policies are bound by name. */
export const BOUND_BY_NAME = Object.freeze({ "weft.dev/bound-by-name": "true" });

export function peerAuthnPolicies<W extends Bindable>(
  pas: readonly PeerAuthentication[],
  workloads: readonly W[],
  rootNamespace: string,
): { policies: AuthorizationPolicy[]; bindings: Map<W, string[]> } {
  const bindings = new Map<W, string[]>();
  const byKey = new Map<string, AuthorizationPolicy>();
  if (pas.length === 0) return { policies: [], bindings };
  const nsWide = new Map<string, PeerAuthentication>();
  for (const pa of pas) {
    if (!pa.selector && !nsWide.has(pa.meta.namespace)) nsWide.set(pa.meta.namespace, pa);
  }
  for (const w of workloads) {
    const own = pas.find((p) =>
      p.selector && p.meta.namespace === w.namespace && labelsMatch(w.labels, p.selector)
    );
    const levels = [own, nsWide.get(w.namespace), nsWide.get(rootNamespace)];
    const mode: MtlsMode = levels.find((p) => p && p.mode !== "UNSET")?.mode ?? "PERMISSIVE";
    const ports = own?.portLevelMtls ?? {};
    const key = `${mode}|${JSON.stringify(ports)}`;
    let policy = byKey.get(key);
    if (policy === undefined) {
      const [converted] = convertPeerAuthentication({
        kind: "PeerAuthentication",
        meta: { name: "", namespace: rootNamespace, labels: {}, annotations: {} },
        selector: undefined,
        mode,
        portLevelMtls: ports,
      });
      if (!converted) continue;
      policy = {
        ...converted,
        name: `istio_converted_peer_authentication_${byKey.size}`,
        selector: BOUND_BY_NAME,
      };
      byKey.set(key, policy);
    }
    bindings.set(w, [`${policy.namespace}/${policy.name}`]);
  }
  return { policies: [...byKey.values()], bindings };
}
