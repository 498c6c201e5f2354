/**
 * A connection to a mesh service on behalf of a local workload, through the one upstream dialer
 * (upstream_dialer.ts): the service is looked up in the snapshot index (FQDN, `name`,
 * `name.namespace`, `name.namespace.svc`), an endpoint picked by weight, and a mesh endpoint is
 * reached over HBONE with the workload's identity (TCP otherwise), exactly as an L7 request of
 * that workload would be. Used for proxy-wasm callouts that name a service.
 */
import type { Duplex } from "node:stream";
import { indexOf } from "./snapshot_index.ts";
import { pickEndpoint } from "./endpoints.ts";
import { dialUpstream, hboneFor } from "./upstream_dialer.ts";
import { type OutboundDeps, resolveSource } from "./outbound.ts";
import { WeftError } from "./errors.ts";

/** `localAddress`: the workload the call is made for (its IP); undefined → the node's
 * `defaultSourceWorkload`. */
export type ServiceDial = (
  service: string,
  port: number | undefined,
  localAddress: string | undefined,
) => Promise<Duplex>;

export function dialService(
  deps: OutboundDeps,
  service: string,
  port: number | undefined,
  localAddress: string | undefined,
): Promise<Duplex> {
  const snap = deps.snapshot();
  const svc = indexOf(snap).serviceByHost.get(service.toLowerCase().replace(/\.$/, ""));
  const sp = port === undefined ? svc?.ports[0] : svc?.ports.find((p) => p.port === port);
  const fail = (why: string) => Promise.reject(new WeftError("callout_no_route", why));
  if (!svc || !sp) return fail(`Cannot dial ${service}${port ? `:${port}` : ""}: no such service`);
  const src = resolveSource(snap, localAddress ?? "", deps.defaultSource());
  if (!src) {
    return fail(`Cannot dial ${service}: no local workload to call from`);
  }
  const ep = pickEndpoint(indexOf(snap).reachable(svc));
  if (!ep) return fail(`Cannot dial ${service}: no endpoint`);
  const hbone = hboneFor(snap, svc, ep, sp.port);
  if (typeof hbone === "string") return fail(`Cannot dial ${service}: ${hbone}`);
  return dialUpstream(deps, src, {
    host: ep.address,
    port: sp.targetPort || sp.port,
    hbone,
    clientAddr: `${src.address}:0`,
    serviceHost: svc.hostname,
  });
}
