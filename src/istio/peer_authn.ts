/** PeerAuthentication → core policies, as istiod converts it for ztunnel. */
import type { AuthorizationPolicy } from "../core/mod.ts";
import type { PeerAuthentication } from "./types.ts";

/** PeerAuthentication STRICT → a DENY policy for peers without a mesh identity (istiod's
 * conversion for ztunnel); port-level modes narrow it to ports. */
export function convertPeerAuthentication(pa: PeerAuthentication): AuthorizationPolicy[] {
  const strictPorts = Object.entries(pa.portLevelMtls).filter(([, m]) => m === "STRICT").map((
    [p],
  ) => p);
  const openPorts = Object.entries(pa.portLevelMtls).filter(([, m]) =>
    m === "PERMISSIVE" || m === "DISABLE"
  ).map(([p]) => p);
  const rules = [];
  const from = [{ source: { notPrincipals: ["*"] } }];
  if (pa.mode === "STRICT") {
    rules.push(
      openPorts.length ? { from, to: [{ operation: { notPorts: openPorts } }] } : { from },
    );
  } else if (strictPorts.length) {
    rules.push({ from, to: [{ operation: { ports: strictPorts } }] });
  }
  if (rules.length === 0) return [];
  return [{
    name: `converted_peer_authentication_${pa.meta.name}`,
    namespace: pa.meta.namespace,
    selector: pa.selector,
    action: "DENY",
    dryRun: false,
    rules,
  }];
}
