/**
 * Endpoints on another network (hbone.md §9, ztunnel's `build_request_through_gateway` and
 * `fetch_network_gateway`): such an endpoint is reached through its network's east-west gateway
 * by double HBONE. This resolves the hop from the snapshot: where the gateway listens, which
 * identities it may present, the `host:port` authority both CONNECTs carry and the identities the
 * destination may present inside.
 */
import type { Endpoint, Service, Snapshot } from "./snapshot.ts";
import { indexOf } from "./snapshot_index.ts";
import { pickEndpoint } from "./endpoints.ts";
import { joinHostPort } from "./ip.ts";

/** The outer tunnel's peer (the gateway) and what the inner one expects. */
export interface GatewayHop {
  /** ip:port of the gateway's HBONE listener (its `hbone_mtls_port`). */
  readonly addr: string;
  /** The gateway workload's identity, then its service's SANs (ztunnel's
   * `workload_and_services_san`). */
  readonly sans: readonly string[];
  /** `<service hostname>:<service port>` (ztunnel's HboneAddress::SvcHostname), on both CONNECTs:
   * the gateway routes by it without reading the inner tunnel. */
  readonly authority: string;
  /** Identities the final destination may present (ztunnel's `final_sans`): the service's SANs
   * and, as weft knows them, the identities of the service's endpoints on that network (the
   * gateway picks which one answers). */
  readonly finalSans: readonly string[];
}

/** Whether `ep` is on another network than this node (an unset network is the node's). */
export function isRemote(snap: Snapshot, ep: Endpoint): boolean {
  return ep.network !== undefined && ep.network !== snap.node.network;
}

/** The gateway hop to `ep` of `svc` on `servicePort`, or why there is none (a refusal reason). */
export function gatewayHop(
  snap: Snapshot,
  svc: Service,
  ep: Endpoint,
  servicePort: number,
): GatewayHop | string {
  const gw = ep.networkGateway;
  if (!gw) return "no_network_gateway";
  const idx = indexOf(snap);
  let at: Endpoint | undefined;
  let gwSans: readonly string[] = [];
  const d = gw.destination;
  if (d.kind === "address") {
    // A gateway named by IP is a known workload of its network, or a service whose address it is
    // (its load balancer's), with the HBONE port (ztunnel's find_upstream).
    at = idx.endpointAt.get(`${d.network || snap.node.network}/${d.ip}`);
    const vip = at ? undefined : idx.serviceByAddr.get(`${d.ip}|${gw.hboneMtlsPort}`);
    if (vip) {
      at = pickEndpoint(vip.svc.endpoints.filter((e) => e.address !== ""));
      gwSans = vip.svc.subjectAltNames ?? [];
    }
  } else {
    const s = idx.serviceByHost.get(d.hostname);
    if (s && s.namespace === d.namespace) {
      at = pickEndpoint(s.endpoints.filter((e) => e.address !== ""));
      gwSans = s.subjectAltNames ?? [];
    }
  }
  if (!at) return "unknown_network_gateway";
  if (!at.identity) return "network_gateway_without_identity";
  const addr = joinHostPort(d.kind === "address" ? d.ip : at.address, gw.hboneMtlsPort);
  const finals = new Set(svc.subjectAltNames ?? []);
  for (const e of svc.endpoints) {
    if (e.identity && e.network === ep.network) finals.add(e.identity);
  }
  return {
    addr,
    sans: [at.identity, ...gwSans],
    authority: `${svc.hostname}:${servicePort}`,
    finalSans: [...finals],
  };
}
