/** Endpoint choice and service-name matching, shared by the L4 and L7 outbound paths. */
import type { Endpoint, Service } from "./snapshot.ts";

/** The endpoint address each L7 upstream connection was dialled to (for Envoy's previous_hosts
 * retry predicate: route_exchange.ts). */
export const dialedHost: WeakMap<object, string> = new WeakMap();

/** Weighted random choice among endpoints with weight > 0; with `tried` (a request's earlier
 * tries), among those not in it when any is left (Envoy's previous_hosts predicate), and the
 * choice is added to it. */
export function pickEndpoint(
  eps: readonly Endpoint[],
  rand: () => number = Math.random,
  tried?: Set<string>,
): Endpoint | undefined {
  let usable = eps.filter((e) => e.weight > 0);
  if (tried?.size) {
    const fresh = usable.filter((e) => !tried.has(e.address));
    if (fresh.length) usable = fresh;
  }
  const e = pickWeighted(usable, rand);
  if (e && tried) tried.add(e.address);
  return e;
}

function pickWeighted(usable: readonly Endpoint[], rand: () => number): Endpoint | undefined {
  const total = usable.reduce((n, e) => n + e.weight, 0);
  if (total <= 0) return undefined;
  let r = rand() * total;
  for (const e of usable) {
    r -= e.weight;
    if (r < 0) return e;
  }
  return usable[usable.length - 1];
}

/** A host names a service by FQDN, `name`, `name.ns` or `name.ns.svc` (trailing dot allowed). */
export function matchesHost(s: Service, host: string): boolean {
  const h = host.toLowerCase().replace(/\.$/, "");
  return h === s.hostname || h === s.name || h === `${s.name}.${s.namespace}` ||
    h === `${s.name}.${s.namespace}.svc`;
}
