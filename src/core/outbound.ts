/**
 * Outbound routing without iptables: a captured destination (service VIP:port, SOCKS5 address or
 * hostname) → service → endpoint (weighted random) → HBONE when the endpoint is in the mesh, direct
 * TCP otherwise; unknown destinations follow outboundTrafficPolicy. The source workload is the
 * local workload whose address the client bound (a configurable default covers the rest).
 */
import { baggageFor, dialUpstream, type PodDial } from "./upstream_dialer.ts";
import { pickEndpoint } from "./endpoints.ts";
import { indexOf } from "./snapshot_index.ts";
import { L7Dispatch, peerInfo } from "./l7_dispatch.ts";
import type { Socket } from "node:net";
import type { Endpoint, Service, ServicePort, Snapshot, Workload } from "./snapshot.ts";
import type { HbonePool } from "./hbone_pool.ts";
import type { ConnTable } from "./l4_conn.ts";
import { emptyInfo, l4Metrics, setEnd } from "./l4_telemetry.ts";
import { joinHostPort } from "./ip.ts";
import { type GatewayHop, gatewayHop, isRemote } from "./network_gateway.ts";
import { errorCode, errorMessage } from "./errors.ts";
import { SocksReply } from "./socks5.ts";
import { logger } from "./log.ts";

const log = logger("outbound");

export type Route =
  | {
    readonly kind: "hbone";
    readonly host: string;
    readonly port: number;
    readonly hboneAddr: string;
    readonly dstIdentity: string;
    readonly service: Service | undefined;
    readonly endpoint: Endpoint;
    /** The endpoint is on another network: `hboneAddr`/`dstIdentity` are its network gateway's
     * (double HBONE, hbone.md §9). */
    readonly gateway?: GatewayHop;
  }
  | {
    readonly kind: "direct";
    readonly host: string;
    readonly port: number;
    readonly service: Service | undefined;
    readonly endpoint: Endpoint | undefined;
  }
  | { readonly kind: "refuse"; readonly reason: string; readonly service?: Service };

function isLoopback(host: string): boolean {
  return /^127\./.test(host) || host === "::1" || host === "localhost";
}

export function findService(
  snap: Snapshot,
  host: string,
  port: number,
): { svc: Service; sp: ServicePort } | undefined {
  const idx = indexOf(snap);
  return idx.serviceByAddr.get(`${host}|${port}`) ??
    idx.serviceByAddr.get(`${host.toLowerCase().replace(/\.$/, "")}|${port}`);
}

export function routeOutbound(
  snap: Snapshot,
  host: string,
  port: number,
  selfPorts: ReadonlySet<number>,
): Route {
  const idx = indexOf(snap);
  const local = idx.workloadByIp.has(host);
  if (selfPorts.has(port) && (isLoopback(host) || local)) {
    return { kind: "refuse", reason: "self_call" };
  }
  const found = findService(snap, host, port);
  if (found) {
    // Endpoints of another network without a gateway are skipped (ztunnel's pick).
    const ep = pickEndpoint(idx.reachable(found.svc));
    if (!ep) return { kind: "refuse", reason: "no_healthy_upstream", service: found.svc };
    const targetPort = found.sp.targetPort || port;
    if (isRemote(snap, ep)) return throughGateway(snap, ep, port, targetPort, found.svc);
    return toEndpoint(ep, targetPort, found.svc);
  }
  const ep = idx.endpointByIp.get(host);
  if (ep) return toEndpoint(ep, port, undefined);
  if (snap.outboundTrafficPolicy === "REGISTRY_ONLY") {
    return { kind: "refuse", reason: "registry_only" };
  }
  return { kind: "direct", host, port, service: undefined, endpoint: undefined };
}

function toEndpoint(ep: Endpoint, port: number, svc: Service | undefined): Route {
  if (ep.hboneAddress === undefined) {
    return { kind: "direct", host: ep.address, port, service: svc, endpoint: ep };
  }
  if (!ep.identity) {
    return {
      kind: "refuse",
      reason: "endpoint_without_identity",
      ...(svc ? { service: svc } : {}),
    };
  }
  return {
    kind: "hbone",
    host: ep.address,
    port,
    hboneAddr: ep.hboneAddress,
    dstIdentity: ep.identity,
    service: svc,
    endpoint: ep,
  };
}

/** ztunnel's build_request_through_gateway: both CONNECTs name the service and its port (the
 * captured port), the outer one goes to the gateway. */
function throughGateway(
  snap: Snapshot,
  ep: Endpoint,
  servicePort: number,
  targetPort: number,
  svc: Service,
): Route {
  const hop = gatewayHop(snap, svc, ep, servicePort);
  if (typeof hop === "string") return { kind: "refuse", reason: hop, service: svc };
  return {
    kind: "hbone",
    host: ep.address,
    port: targetPort,
    hboneAddr: hop.addr,
    dstIdentity: hop.sans[0]!,
    service: svc,
    endpoint: ep,
    gateway: hop,
  };
}

export function resolveSource(
  snap: Snapshot,
  clientIp: string,
  defaultWorkload: string | undefined,
): Workload | undefined {
  const ip = clientIp.replace(/^::ffff:/, "");
  const idx = indexOf(snap);
  const byIp = idx.workloadByIp.get(ip);
  if (byIp) return byIp;
  if (!defaultWorkload) return undefined;
  return idx.workloadByName.get(defaultWorkload);
}

export interface OutboundDeps {
  readonly snapshot: () => Snapshot;
  readonly pool: HbonePool;
  readonly conns: ConnTable;
  readonly selfPorts: () => ReadonlySet<number>;
  readonly defaultSource: () => string | undefined;
  readonly filters: L7Dispatch | undefined;
  /** In-pod mode: dials made on behalf of an enrolled pod, from inside it (by the pod's IP). */
  readonly dialFrom?: ((srcIp: string) => PodDial | undefined) | undefined;
}

export { baggageFor, type PodDial };

function socksCode(err: unknown): number {
  const c = errorCode(err);
  if (c === "hbone_401") return SocksReply.notAllowed;
  if (c.includes("timeout")) return SocksReply.ttlExpired;
  if (c === "connect_failed") return SocksReply.connectionRefused;
  return SocksReply.hostUnreachable;
}

/** Proxy one captured client connection to host:port; `reply` answers a SOCKS5 client. Never
 * rejects: an unexpected failure is logged and closes that client connection only. */
export function handleOutbound(
  deps: OutboundDeps,
  sock: Socket,
  host: string,
  port: number,
  reply?: (code: number) => void,
): Promise<void> {
  return outbound(deps, sock, host, port, reply).catch((e: unknown) => {
    log.error("outbound handler failed", { err: errorMessage(e) });
    sock.destroy();
  });
}

async function outbound(
  deps: OutboundDeps,
  sock: Socket,
  host: string,
  port: number,
  reply?: (code: number) => void,
): Promise<void> {
  const snap = deps.snapshot();
  const clientIp = sock.remoteAddress ?? "unknown";
  const info = emptyInfo(
    "outbound",
    joinHostPort(clientIp, sock.remotePort ?? 0),
    joinHostPort(host, port),
  );
  const refuse = (reason: string, code: number = SocksReply.notAllowed): void => {
    l4Metrics.refused.inc({ direction: "outbound", reason });
    if (reply) reply(code);
    else sock.destroy();
  };
  const src = resolveSource(snap, clientIp, deps.defaultSource());
  if (!src) return refuse("unknown_source");
  setEnd(info, "src", src);
  info.srcIdentity = src.identity;
  const route = routeOutbound(snap, host, port, deps.selfPorts());
  if (route.kind === "refuse") return refuse(route.reason);
  const svc = route.service;
  if (svc) {
    info.dstService = svc.hostname;
    info.dstServiceName = svc.name;
    info.dstServiceNamespace = svc.namespace;
    const sp = svc.ports.find((p) => p.port === port);
    const l7 = deps.filters && sp ? deps.filters.outbound(svc, sp, src) : undefined;
    if (l7) {
      // L7 service: the chain picks each request's upstream; the L4 record wraps the whole
      // downstream connection (bytes, access log, drain).
      info.dstAddr = joinHostPort(host, port);
      const conn = deps.conns.create(info, sock);
      if (!conn) return refuse("max_connections", SocksReply.generalFailure);
      reply?.(SocksReply.succeeded);
      const peer = peerInfo({
        sourcePrincipal: src.identity,
        sourceAddress: clientIp,
        sourcePort: sock.remotePort ?? 0,
        destinationAddress: host,
        destinationPort: port,
        service: svc,
        workload: undefined,
        mtls: false,
        local: src,
      });
      // The HTTP proxy reads the client socket itself (one copy per byte).
      conn.serve((down) => l7(down, peer));
      return;
    }
  }
  const gw = route.kind === "hbone" ? route.gateway : undefined;
  // Through a gateway the gateway picks the workload: the destination stays unknown.
  if (route.endpoint && !gw) {
    const ep = route.endpoint;
    setEnd(info, "dst", { name: ep.workload, namespace: ep.namespace, labels: ep.labels });
  }
  info.dstAddr = gw ? gw.addr : joinHostPort(route.host, route.port);
  const conn = deps.conns.create(info, sock);
  if (!conn) return refuse("max_connections", SocksReply.generalFailure);
  try {
    if (route.kind === "hbone") {
      info.mtls = true;
      info.dstHboneAddr = gw ? gw.authority : route.hboneAddr;
      if (!gw) info.dstIdentity = route.dstIdentity;
    }
    const up = await dialUpstream(deps, src, {
      host: route.host,
      port: route.port,
      hbone: route.kind === "hbone"
        ? {
          addr: route.hboneAddr,
          identity: route.dstIdentity,
          sans: gw ? gw.sans.slice(1) : svc?.subjectAltNames,
          gateway: gw,
        }
        : undefined,
      clientAddr: info.srcAddr,
      serviceHost: svc?.hostname,
    });
    if (sock.destroyed || conn.done) {
      up.destroy();
      return conn.fail("error", "client went away");
    }
    reply?.(SocksReply.succeeded);
    conn.attach(up);
  } catch (e) {
    const code = errorCode(e);
    const outcome = code === "hbone_401" ? "denied" : "connect_failed";
    reply?.(socksCode(e));
    conn.fail(outcome, errorMessage(e), reply !== undefined);
  }
}

export { pickEndpoint };
