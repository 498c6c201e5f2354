/**
 * The one upstream dialer of the L4 and L7 paths: a CONNECT stream over the pooled HBONE
 * connection for mesh endpoints (with ztunnel's headers: `forwarded: for="<client>";host=<svc>`,
 * baggage, traceparent), otherwise TCP; in in-pod mode from inside the source pod.
 */
import type { Duplex } from "node:stream";
import type { HbonePool } from "./hbone_pool.ts";
import type { Endpoint, Service, Snapshot, Workload } from "./snapshot.ts";
import { dialTcp } from "./l4_conn.ts";
import { joinHostPort } from "./ip.ts";
import { type GatewayHop, gatewayHop, isRemote } from "./network_gateway.ts";

/** A dial from inside a pod; `sourceIp` keeps a client's address (inbound delivery). */
export type PodDial = (
  host: string,
  port: number,
  timeoutMs: number,
  sourceIp?: string,
) => Promise<Duplex>;

export interface UpstreamTarget {
  readonly host: string;
  readonly port: number;
  /** Set for mesh endpoints: their HBONE address and the identity they must present. */
  readonly hbone:
    | {
      readonly addr: string;
      readonly identity: string;
      /** The service's `subject_alt_names` (hbone.md §4), when reached through a service. */
      readonly sans?: readonly string[] | undefined;
      /** An endpoint on another network: `addr`/`identity`/`sans` name its network gateway, this
       * the tunnel inside (double HBONE, hbone.md §9). */
      readonly gateway?: GatewayHop | undefined;
    }
    | undefined;
  /** The original client ip:port (the `forwarded` header's `for`). */
  readonly clientAddr: string;
  readonly serviceHost: string | undefined;
}

export interface DialerDeps {
  readonly pool: HbonePool;
  readonly snapshot: () => Snapshot;
  readonly dialFrom?: ((srcIp: string) => PodDial | undefined) | undefined;
}

export function dialUpstream(deps: DialerDeps, src: Workload, t: UpstreamTarget): Promise<Duplex> {
  const snap = deps.snapshot();
  const viaPod = deps.dialFrom?.(src.address);
  if (!t.hbone) return (viaPod ?? dialTcp)(t.host, t.port, snap.timeouts.connectMs);
  const gw = t.hbone.gateway;
  const dial = {
    srcIdentity: src.identity,
    // In-pod mode: from inside the source pod (its IP on the wire, as ztunnel); a source that
    // is not an enrolled pod dials from the node (its IP does not exist there).
    srcIp: viaPod || !snap.capture?.inpod ? src.address : undefined,
    connect: viaPod,
    dstIdentity: t.hbone.identity,
    dstSans: t.hbone.sans,
    hboneAddr: t.hbone.addr,
  };
  const req = {
    authority: gw ? gw.authority : joinHostPort(t.host, t.port),
    clientAddr: t.clientAddr,
    serviceHost: t.serviceHost,
    baggage: baggageFor(src),
  };
  if (gw) return deps.pool.connectVia(dial, req, gw.finalSans, snap.node.network);
  return deps.pool.connect(dial, req);
}

/** How the L7 and callout paths reach `ep` of `svc` on `servicePort`: HBONE to it (a mesh
 * endpoint), double HBONE through its network's gateway (another network), plain TCP
 * (undefined), or why it cannot be reached (a string). */
export function hboneFor(
  snap: Snapshot,
  svc: Service,
  ep: Endpoint,
  servicePort: number,
): UpstreamTarget["hbone"] | string {
  if (isRemote(snap, ep)) {
    const hop = gatewayHop(snap, svc, ep, servicePort);
    if (typeof hop === "string") return hop;
    return { addr: hop.addr, identity: hop.sans[0]!, sans: hop.sans.slice(1), gateway: hop };
  }
  return ep.hboneAddress !== undefined && ep.identity !== undefined
    ? { addr: ep.hboneAddress, identity: ep.identity, sans: svc.subjectAltNames }
    : undefined;
}

/** W3C `baggage` about a workload (ztunnel's keys): the client sends its source's, the HBONE
 * server answers with its destination's (ENABLE_RESPONSE_BAGGAGE). */
export function baggageFor(w: Workload): string {
  const parts = [`k8s.namespace.name=${w.namespace}`, `k8s.deployment.name=${w.name}`];
  const app = w.labels["app.kubernetes.io/name"] ?? w.labels.app;
  if (app) parts.push(`service.name=${app}`);
  const ver = w.labels["app.kubernetes.io/version"] ?? w.labels.version;
  if (ver) parts.push(`service.version=${ver}`);
  return parts.join(",");
}
