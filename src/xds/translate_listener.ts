/**
 * One outbound xDS listener → a Fragment (its service port, endpoints, subsets, filters and
 * route policies), and fragments → one Service per hostname. Pure functions of the stored
 * resources; src/xds/translate.ts decides when a listener is warm and memoises.
 */
import type {
  DestinationHeaderOps,
  Endpoint,
  FilterRef,
  RouteHeaders,
  RoutePolicy,
  Service,
  ServicePort,
  Subset,
} from "../core/mod.ts";
import { errorMessage, logger } from "../core/mod.ts";
import type { ClusterValue } from "./resources/cluster.ts";
import type { AssignmentValue } from "./resources/endpoint.ts";
import type { ExtensionValue } from "./resources/extension_config.ts";
import type { ListenerValue } from "./resources/listener.ts";
import type { RouteRule, RouteValue } from "./resources/route.ts";
import { requestMatchOfRule } from "./resources/route_policy.ts";
import { routeScopedRefs } from "./resources/route_scope.ts";
import type { ResourceStore } from "./store.ts";
import { missingConfig, trafficSplit } from "./translate_filters.ts";
import { CLUSTER, ENDPOINT, EXTENSION_CONFIG, ROUTE } from "./type_urls.ts";

const log = logger("xds");

export interface Fragment {
  readonly hostname: string;
  readonly name: string;
  readonly namespace: string;
  readonly vips: readonly string[];
  readonly port: ServicePort;
  readonly endpoints: readonly Endpoint[];
  readonly subsets: readonly Subset[];
  readonly filters: readonly FilterRef[];
  /** This port's rules as route policies, when one has a timeout or retries. */
  readonly routes: readonly RoutePolicy[] | undefined;
}

/** undefined = not warm; `expired`: serve anyway with what is there. */
export function fragment(
  store: ResourceStore,
  l: ListenerValue,
  expired: boolean,
): Fragment | undefined {
  const route = l.kind === "http"
    ? (l.routeConfig ?? store.get<RouteValue>(ROUTE, l.rds ?? ""))
    : undefined;
  if (l.kind === "http" && !route && !expired) return undefined;
  const split = l.kind === "tcp"
    ? [{ match: { prefix: "" }, clusters: l.clusters, overrides: {} }]
    : route
    ? pickHost(route, l)?.rules ?? []
    : [];
  const clusterNames = [
    ...new Set([
      ...split.flatMap((r) => r.clusters.map((c) => c.cluster).filter((c) => c !== "")),
      ...headerClusters(store, l, split),
    ]),
  ];
  const clusters: ClusterValue[] = [];
  const eps = new Map<string, Endpoint>();
  let targetPort = l.targetPort;
  let missing = false;
  for (const cn of clusterNames) {
    const c = store.get<ClusterValue>(CLUSTER, cn);
    if (!c && l.kind === "http" && store.generation(CLUSTER) > 0) {
      // As Envoy: a route naming a cluster CDS does not hold is accepted and its share answers
      // 503 NC `cluster_not_found` at request time (src/core l7_dispatch.ts `missingRoute`).
      missing = true;
      continue;
    }
    const cla = c?.inline ??
      (c?.edsName ? store.get<AssignmentValue>(ENDPOINT, c.edsName) : undefined);
    if (!c || !cla) {
      if (expired) continue;
      return undefined;
    }
    clusters.push(c);
    for (const e of cla.endpoints) {
      targetPort ??= e.port;
      if (eps.has(e.address)) continue;
      const { port: _p, ...ep } = e;
      eps.set(e.address, Object.freeze(ep));
    }
  }
  const filters: FilterRef[] = [];
  if (l.kind === "http") {
    for (const e of l.chain) {
      if (e.kind === "inline") {
        // Per-route config (Istio puts faults there) becomes route-scoped instances.
        try {
          filters.push(...routeScopedRefs(e.ref, split));
        } catch (err) {
          log.warn("per-route filter config not applied", { error: errorMessage(err) });
          filters.push(e.ref);
        }
        continue;
      }
      const held = store.get<ExtensionValue>(EXTENSION_CONFIG, e.name);
      // A config of a type the listener did not allow counts as missing (Envoy rejects it).
      const ext = held && (e.typeUrls.length === 0 || e.typeUrls.includes(held.typeUrl))
        ? held
        : undefined;
      const dflt = e.defaultConfig;
      if (!ext && dflt && (dflt.withoutWarming || expired)) {
        // Envoy's default_config: stands in until the ECDS config arrives.
        if (dflt.ref) filters.push({ ...dflt.ref, priority: -filters.length });
        continue;
      }
      if (!ext && !e.optional && !expired) return undefined;
      if (!ext && !e.optional) filters.push(missingConfig(e.name, -filters.length));
      if (ext?.ref) filters.push({ ...ext.ref, priority: -filters.length });
    }
    // The split also answers Envoy's 404 when a request can match no route (no catch-all).
    const catchAll = (m: RouteRule["match"]): boolean =>
      (m.prefix === "" || m.prefix === "/") && !m.ignoreUriCase && !m.method && !m.authority &&
      !m.scheme && !m.headers && !m.withoutHeaders && !m.queryParams;
    if (
      split.some((r) => r.clusters.length > 1 || r.clusters.some((c) => "clusterHeader" in c)) ||
      clusters.some((c) => c.subset) || missing ||
      (split.length > 0 && !split.some((r) => catchAll(r.match)))
    ) {
      filters.push(trafficSplit(split, clusters, l.hostname, l.port, -1000));
    }
  }
  return {
    hostname: l.hostname,
    name: l.service,
    namespace: l.namespace,
    vips: l.vips,
    port: Object.freeze({
      port: l.port,
      targetPort: targetPort ?? l.port,
      protocol: l.kind === "tcp" ? "TCP" : l.protocol,
      name: `${l.kind}-${l.port}`,
    }),
    endpoints: [...eps.values()],
    subsets: clusters.filter((c) => c.subset).map((c) => ({
      name: c.subset!,
      labels: c.subsetLabels,
    })),
    filters,
    // Every rule in order (the first match decides), once one has a policy.
    routes: l.kind === "http" && route && split.some((r) => "policy" in r && r.policy)
      ? split.map((r) => ({
        match: [requestMatchOfRule((r as RouteRule).match, l.port)],
        timeoutMs: (r as RouteRule).policy?.timeoutMs,
        retries: (r as RouteRule).policy?.retries,
        ...((r as RouteRule).policy?.defaultRetries ? { defaultRetries: true } : {}),
        ...((r as RouteRule).policy?.fault ? { fault: (r as RouteRule).policy!.fault } : {}),
        ...((r as RouteRule).policy?.reply ? { reply: (r as RouteRule).policy!.reply } : {}),
        ...((r as RouteRule).policy?.mirrors ? { mirrors: (r as RouteRule).policy!.mirrors } : {}),
        ...((r as RouteRule).policy?.rewrite ? { rewrite: (r as RouteRule).policy!.rewrite } : {}),
        ...routeHeadersOf(r as RouteRule, clusters),
        ...((r as RouteRule).policy?.cors ? { cors: (r as RouteRule).policy!.cors } : {}),
        ...((r as RouteRule).policy?.clusterNotFoundStatus
          ? { clusterNotFoundStatus: (r as RouteRule).policy!.clusterNotFoundStatus }
          : {}),
      }))
      : undefined,
  };
}

/** A route that takes its cluster from a request header may name any subset cluster of this
 * service and port (`outbound|<port>|<subset>|<hostname>`, CDS being wildcard): their endpoints
 * and subsets join the fragment, so the split's choice finds them. Scans CDS only for such
 * listeners. */
function headerClusters(
  store: ResourceStore,
  l: ListenerValue,
  split: readonly { readonly clusters: readonly object[] }[],
): string[] {
  if (!split.some((r) => r.clusters.some((c) => "clusterHeader" in c))) return [];
  const pre = `outbound|${l.port}|`, post = `|${l.hostname}`;
  const out: string[] = [];
  for (const [name] of store.values(CLUSTER)) {
    if (name.startsWith(pre) && name.endsWith(post) && name.split("|").length === 4) out.push(name);
  }
  return out;
}

/** Every stored value a listener's fragment reads (fragment() is a function of these). */
export function dependencies(store: ResourceStore, l: ListenerValue): unknown[] {
  const out: unknown[] = [l];
  const route = l.kind === "http"
    ? (l.routeConfig ?? store.get<RouteValue>(ROUTE, l.rds ?? ""))
    : undefined;
  out.push(route);
  const split = l.kind === "tcp"
    ? [{ clusters: l.clusters }]
    : route
    ? pickHost(route, l)?.rules ?? []
    : [];
  const names = split.flatMap((r) => r.clusters.map((c) => c.cluster));
  for (const name of [...names, ...headerClusters(store, l, split)]) {
    if (name === "") continue; // a cluster_header: named per request
    const cv = store.get<ClusterValue>(CLUSTER, name);
    out.push(cv, cv?.edsName ? store.get<AssignmentValue>(ENDPOINT, cv.edsName) : undefined);
  }
  if (l.kind === "http") {
    for (const e of l.chain) {
      if (e.kind !== "inline") out.push(store.get<ExtensionValue>(EXTENSION_CONFIG, e.name));
    }
  }
  return out;
}

/** An inbound listener's inline filters (RBAC → weft.authz, checked before the ACK). istiod
 * names every RBAC filter `envoy.filters.http.rbac` and the filter host keys instances by name,
 * so each gets its position, apart from the outbound chain's names. */
export function inboundChain(l: ListenerValue & { kind: "http" }): FilterRef[] {
  const out: FilterRef[] = [];
  for (const e of l.chain) {
    if (e.kind === "inline") out.push({ ...e.ref, name: `inbound-${out.length}.${e.ref.name}` });
  }
  return out;
}

function pickHost(
  route: RouteValue,
  l: ListenerValue,
): RouteValue["virtualHosts"][number] | undefined {
  const names = [
    l.hostname,
    `${l.hostname}:${l.port}`,
    ...l.vips,
    ...l.vips.map((v) => `${v}:${l.port}`),
  ];
  return route.virtualHosts.find((v) => v.domains.some((d) => names.includes(d))) ??
    route.virtualHosts.find((v) => v.domains.includes("*"));
}

/** Fragments → one Service per hostname. A hostname whose fragments are the same objects as in
 * the last build (`memo`, updated here) keeps its Service object: a route edit re-merges the
 * services it touched, not all of them. */
export function merge(
  frags: readonly Fragment[],
  memo: Map<string, { list: Fragment[]; service: Service }>,
): Service[] {
  const by = new Map<string, Fragment[]>();
  for (const f of frags) {
    const list = by.get(f.hostname);
    if (list) list.push(f);
    else by.set(f.hostname, [f]);
  }
  const out: Service[] = [];
  for (const k of memo.keys()) if (!by.has(k)) memo.delete(k);
  for (const [hostname, list] of by) {
    const held = memo.get(hostname);
    if (held && held.list.length === list.length && held.list.every((f, i) => f === list[i])) {
      out.push(held.service);
      continue;
    }
    const first = list[0]!;
    const eps = new Map<string, Endpoint>();
    const subsets = new Map<string, Subset>();
    for (const f of list) {
      for (const e of f.endpoints) if (!eps.has(e.address)) eps.set(e.address, e);
      for (const s of f.subsets) subsets.set(s.name, s);
    }
    const service: Service = Object.freeze({
      name: first.name,
      namespace: first.namespace,
      hostname,
      vips: Object.freeze([...new Set(list.flatMap((f) => f.vips))]),
      ports: Object.freeze(list.map((f) => f.port).sort((a, b) => a.port - b.port)),
      endpoints: Object.freeze([...eps.values()]),
      subsets: Object.freeze([...subsets.values()]),
      outboundFilters: Object.freeze(list.find((f) => f.filters.length)?.filters ?? []),
      inboundFilters: Object.freeze([]),
      ...(list.some((f) => f.routes)
        ? { routes: Object.freeze(list.flatMap((f) => f.routes ?? [])) }
        : {}),
    });
    memo.set(hostname, { list, service });
    out.push(service);
  }
  return out;
}

/** A rule's header operations with its weighted clusters' named as the split's choices name
 * destinations (the cluster's service and subset; Istio's cluster name for one the node lacks). */
function routeHeadersOf(
  r: RouteRule,
  clusters: readonly ClusterValue[],
): { headers?: RouteHeaders } {
  const h = r.policy?.headers;
  if (!h) return {};
  const destinations: DestinationHeaderOps[] = (h.clusters ?? []).map((c) => {
    const cv = clusters.find((x) => x.name === c.cluster);
    const istio = /^outbound\|\d*\|([^|]*)\|(.+)$/.exec(c.cluster);
    const { cluster: _c, ...ops } = c;
    return Object.freeze({
      service: cv?.hostname ?? istio?.[2] ?? c.cluster,
      subset: cv ? cv.subset : istio?.[1] || undefined,
      ...ops,
    });
  });
  return {
    headers: Object.freeze({
      ...(h.request ? { request: h.request } : {}),
      ...(h.response ? { response: h.response } : {}),
      ...(destinations.length ? { destinations } : {}),
      ...(destinations.length && r.clusters.length === 1 ? { single: true } : {}),
    }),
  };
}
