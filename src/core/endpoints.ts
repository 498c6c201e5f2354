/** Endpoint choice and service-name matching, shared by the L4 and L7 outbound paths. */
import type { Endpoint, Service } from "./snapshot.ts";

/** Weighted random choice among endpoints with weight > 0. */
export function pickEndpoint(
  eps: readonly Endpoint[],
  rand: () => number = Math.random,
): Endpoint | undefined {
  const usable = eps.filter((e) => e.weight > 0);
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
