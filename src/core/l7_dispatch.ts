/**
 * Where L4 meets L7: for service ports that have filter chains, the node proxy hands the
 * connection to an HttpProxy instead of copying bytes. The L4 connection record (metrics, access
 * log, drain, policy re-checks) stays: `L4Conn.serve` hands the HttpProxy the downstream socket or
 * HBONE stream itself (no in-memory pair) and counts its bytes.
 *  - outbound (source node, before choosing the destination): the service's outbound chain
 *    (fault, traffic-split, ...); each request's upstream is picked per the route the chain chose
 *    (a subset narrows the endpoints to those with its labels) and reached over HBONE or TCP;
 *  - inbound (destination node, after HBONE termination, peer identity verified): the inbound
 *    chain (authorization, ...), then the local workload.
 * Chains are resolved per request from the current snapshot, so a reloaded or reconfigured filter
 * applies to new requests while in-flight ones finish on theirs.
 */
import { indexOf } from "./snapshot_index.ts";
import { dialedHost, matchesHost, pickEndpoint } from "./endpoints.ts";
import type { Duplex } from "node:stream";
import type {
  FilterResolver,
  LocalResponse,
  LocalWorkloadInfo,
  PeerInfo,
  RouteChoice,
} from "./filter_api.ts";
import type { Endpoint, FilterRef, Service, ServicePort, Snapshot, Workload } from "./snapshot.ts";
import { sourceVariantApplies } from "./snapshot.ts";
import { FilterChain, orderFilterRefs } from "./filter_chain.ts";
import { HttpProxy } from "./http_proxy.ts";
import { DEFAULT_UPSTREAM_IDLE_MS } from "./http1_pool.ts";
import { ownPolicy, routePolicyFor } from "./route_policy.ts";
import { WeftError } from "./errors.ts";
import { metrics } from "./metrics.ts";

export interface UpstreamDialer {
  /** Open a byte stream to `ep` on `port` for `source` (HBONE when the endpoint is in the mesh). */
  dial(
    source: Workload,
    svc: Service,
    ep: Endpoint,
    port: number,
    clientAddr: string,
  ): Promise<Duplex>;
  /** Open a TCP connection to a local workload. */
  dialLocal(host: string, port: number): Promise<Duplex>;
}

const isL7 = (sp: ServicePort): boolean => sp.protocol !== "TCP";

/** Whether a client's connection to this service port goes through the outbound HTTP proxy:
 * an HTTP port with outbound filters, or with routes that set timeouts or retries of their own
 * (those need the L7 proxy too, with or without filters; the mesh's default retry policy alone
 * does not: route_policy.ts `ownPolicy`). */
export function l7Outbound(svc: Service, sp: ServicePort): boolean {
  if (!isL7(sp)) return false;
  return svc.outboundFilters.length > 0 || (svc.routes?.some(ownPolicy) ?? false);
}

const clusterNotFound = metrics.counter(
  "weft_http_cluster_not_found_total",
  "Requests routed to a service or subset the node does not have (503 NC, cluster_not_found)",
  [],
);

/** Envoy's answer for a route whose cluster does not exist: 503, response flag NC, details
 * `cluster_not_found`, no body and no retry. Istio routes a VirtualService destination whose
 * subset no DestinationRule defines to such a cluster (`outbound|<port>|<subset>|<fqdn>`). */
export const CLUSTER_NOT_FOUND: LocalResponse = Object.freeze({
  status: 503,
  headers: [],
  body: "",
  details: "cluster_not_found",
});

/** The same for a Gateway API backend that is not valid (its share gets 500). */
const INVALID_BACKEND: LocalResponse = Object.freeze({ ...CLUSTER_NOT_FOUND, status: 500 });

/** The local answer for a route naming no known service or subset (`status`: the route's
 * `clusterNotFoundStatus`, default 503), or undefined. */
export function missingRoute(
  snap: Snapshot,
  route: RouteChoice,
  status = 503,
): LocalResponse | undefined {
  const hosts = indexOf(snap).serviceByHost;
  const svc = hosts.get(route.service) ?? hosts.get(route.service.toLowerCase().replace(/\.$/, ""));
  if (svc && (route.subset === undefined || svc.subsets.some((s) => s.name === route.subset))) {
    return undefined;
  }
  clusterNotFound.inc();
  return status === 503
    ? CLUSTER_NOT_FOUND
    : status === 500
    ? INVALID_BACKEND
    : { ...CLUSTER_NOT_FOUND, status };
}

function namespaceOf(principal: string | undefined): string | undefined {
  return principal ? /\/ns\/([^/]+)\//.exec(principal)?.[1] : undefined;
}

function labelsMatch(
  labels: Readonly<Record<string, string>>,
  want: Readonly<Record<string, string>>,
): boolean {
  for (const k in want) if (labels[k] !== want[k]) return false;
  return true;
}

/** The refs a source workload's chain takes (its variant of source-scoped refs), the same array
 * while the service's refs are: the chain is rebuilt only when they change. */
function forSource(
  source: Workload,
  refs: () => readonly FilterRef[],
): () => readonly FilterRef[] {
  let last: readonly FilterRef[] | undefined;
  let picked: readonly FilterRef[] = [];
  return () => {
    const now = refs();
    if (now !== last) {
      last = now;
      picked = now.some((r) => r.sources)
        ? now.filter((r) => sourceVariantApplies(r.sources, source.labels))
        : now;
    }
    return picked;
  };
}

export class L7Dispatch {
  private readonly proxies = new Map<string, HttpProxy>();

  constructor(
    private readonly resolver: FilterResolver,
    private readonly snapshot: () => Snapshot,
    private readonly dialer: UpstreamDialer,
  ) {}

  private chainOf(refs: () => readonly FilterRef[]): () => FilterChain {
    let lastRefs: readonly FilterRef[] | undefined;
    let chain = new FilterChain([]);
    return () => {
      const now = refs();
      if (now !== lastRefs) {
        lastRefs = now;
        chain = new FilterChain(orderFilterRefs(now).map((r) => this.resolver.resolve(r)));
      }
      return chain;
    };
  }

  private indexed: { snap: Snapshot; byHost: Map<string, Service> } | undefined;

  /** The service as the current snapshot has it; the index is rebuilt once per snapshot, not
   * scanned per request. */
  private current(svc: Service): Service {
    const snap = this.snapshot();
    if (this.indexed?.snap !== snap) {
      this.indexed = { snap, byHost: new Map(snap.services.map((s) => [s.hostname, s])) };
    }
    return this.indexed.byHost.get(svc.hostname) ?? svc;
  }

  /** The L7 outbound handler for a service port, or undefined when it stays L4. */
  outbound(
    svc: Service,
    sp: ServicePort,
    source: Workload,
  ): ((down: Duplex, peer: PeerInfo) => Promise<void>) | undefined {
    if (!l7Outbound(svc, sp)) return undefined;
    const key = `out|${source.namespace}/${source.name}|${svc.hostname}|${sp.port}`;
    let proxy = this.proxies.get(key);
    if (!proxy) {
      // What routes match on besides the request: fixed for this proxy (one per source and
      // port), so built once rather than per request (every L7 request has a route now).
      const at = { port: sp.port, sourceLabels: source.labels };
      proxy = new HttpProxy({
        direction: "outbound",
        chain: this.chainOf(forSource(source, () => this.current(svc).outboundFilters)),
        upstreamProtocol: sp.protocol === "TCP" || sp.protocol === "HTTP" ? "http1" : "h2",
        requestHeadersTimeoutMs: this.snapshot().timeouts.requestHeadersMs ?? 10_000,
        upstreamIdleTimeoutMs: this.snapshot().timeouts.upstreamIdleMs ?? DEFAULT_UPSTREAM_IDLE_MS,
        dialUpstream: (route?: RouteChoice, tried?: Set<string>) =>
          this.dialRoute(this.current(svc), sp, source, route, tried),
        routePolicy: (ctx) => routePolicyFor(this.current(svc).routes, ctx, at),
        routeReply: (route, status) => missingRoute(this.snapshot(), route, status),
      });
      this.proxies.set(key, proxy);
    }
    const p = proxy;
    return (down, peer) => p.handle(down, peer);
  }

  private dialRoute(
    svc: Service,
    sp: ServicePort,
    source: Workload,
    route: RouteChoice | undefined,
    tried?: Set<string>,
  ): Promise<Duplex> {
    let target = svc;
    let port = sp;
    if (route) {
      const found = this.snapshot().services.find((s) => matchesHost(s, route.service));
      if (!found) {
        return Promise.reject(
          new WeftError("no_route", `Cannot route: unknown service ${route.service}`),
        );
      }
      target = found;
      port = found.ports.find((p) => p.port === sp.port) ?? found.ports[0] ?? sp;
    }
    // Endpoints of another network without a gateway are skipped (ztunnel's pick).
    let eps = indexOf(this.snapshot()).reachable(target);
    if (route?.subset !== undefined) {
      const subset = target.subsets.find((s) => s.name === route.subset);
      if (!subset) {
        return Promise.reject(
          new WeftError(
            "no_subset",
            `Cannot route: service ${target.hostname} has no subset ${route.subset}`,
          ),
        );
      }
      eps = eps.filter((e) => labelsMatch(e.labels, subset.labels));
    }
    const ep = pickEndpoint(eps, Math.random, tried);
    if (!ep) {
      return Promise.reject(
        new WeftError(
          "no_healthy_upstream",
          `Cannot route: no endpoint for ${target.hostname}${
            route?.subset ? ` subset ${route.subset}` : ""
          }`,
        ),
      );
    }
    const dialed = this.dialer.dial(
      source,
      target,
      ep,
      port.targetPort || port.port,
      `${source.address}:0`,
    );
    // Once per connection: a retry of a request sent on it knows which endpoint to avoid.
    return dialed.then((d) => (dialedHost.set(d, ep.address), d));
  }

  /** The L7 inbound handler for a local workload port, or undefined when it stays L4. */
  inbound(
    workload: Workload,
    port: number,
    serviceHost: string | undefined,
  ): ((down: Duplex, peer: PeerInfo) => Promise<void>) | undefined {
    const svc = this.inboundService(workload, port, serviceHost);
    if (!svc) return undefined;
    const key = `in|${workload.namespace}/${workload.name}|${svc.hostname}|${port}`;
    let proxy = this.proxies.get(key);
    if (!proxy) {
      const sp = svc.ports.find((p) => p.targetPort === port)!;
      proxy = new HttpProxy({
        direction: "inbound",
        chain: this.chainOf(() => this.current(svc).inboundFilters),
        upstreamProtocol: sp.protocol === "HTTP" ? "http1" : "h2",
        requestHeadersTimeoutMs: this.snapshot().timeouts.requestHeadersMs ?? 10_000,
        upstreamIdleTimeoutMs: this.snapshot().timeouts.upstreamIdleMs ?? DEFAULT_UPSTREAM_IDLE_MS,
        dialUpstream: () => this.dialer.dialLocal(workload.address, port),
      });
      this.proxies.set(key, proxy);
    }
    const p = proxy;
    return (down, peer) => p.handle(down, peer);
  }

  /** Does this inbound port run an L7 chain (so authorization happens at L7)? */
  inboundService(
    workload: Workload,
    port: number,
    serviceHost: string | undefined,
  ): Service | undefined {
    const list = indexOf(this.snapshot()).inboundChains.get(`${workload.address}|${port}`);
    for (const { svc, sp } of list ?? []) {
      if (serviceHost && svc.hostname !== serviceHost) continue;
      if (isL7(sp)) return svc;
    }
    return undefined;
  }

  /** Drain: idle HTTP connections close now, busy ones after their current response. */
  drain(): void {
    for (const p of this.proxies.values()) p.drain();
  }

  close(): void {
    for (const p of this.proxies.values()) p.close();
    this.proxies.clear();
  }
}

export function peerInfo(p: {
  sourcePrincipal: string | undefined;
  sourceAddress: string;
  sourcePort: number;
  destinationAddress: string;
  destinationPort: number;
  service: Service | undefined;
  workload: { name: string; namespace: string; identity?: string | undefined } | undefined;
  mtls: boolean;
  local?: LocalWorkloadInfo | undefined;
}): PeerInfo {
  return {
    sourcePrincipal: p.sourcePrincipal,
    sourceNamespace: namespaceOf(p.sourcePrincipal),
    sourceAddress: p.sourceAddress,
    sourcePort: p.sourcePort,
    destinationAddress: p.destinationAddress,
    destinationPort: p.destinationPort,
    destinationService: p.service?.hostname,
    destinationWorkload: p.workload?.name,
    destinationNamespace: p.workload?.namespace,
    destinationPrincipal: p.workload?.identity,
    mtls: p.mtls,
    localWorkload: p.local,
  };
}
