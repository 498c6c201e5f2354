/**
 * Accepted xDS resources → one immutable core Snapshot. Listeners are served only when warm
 * (their routes, clusters, endpoints and ECDS configs are all present, xds.md §8); a listener
 * whose update is still warming keeps serving its last warm translation.
 */
import type {
  Endpoint,
  FilterRef,
  RoutePolicy,
  Service,
  ServicePort,
  Snapshot,
  Subset,
} from "../core/mod.ts";
import type { AddressValue } from "./resources/address.ts";
import { identityOf } from "./resources/address.ts";
import type { ClusterValue } from "./resources/cluster.ts";
import type { AssignmentValue } from "./resources/endpoint.ts";
import type { ExtensionValue } from "./resources/extension_config.ts";
import { missingConfig, trafficSplit } from "./translate_filters.ts";
import { routeScopedRefs } from "./resources/route_scope.ts";
import { errorMessage, logger } from "../core/mod.ts";

const log = logger("xds");
import type { ListenerValue } from "./resources/listener.ts";
import type { RouteRule, RouteValue } from "./resources/route.ts";
import { requestMatchOfRule } from "./resources/route_policy.ts";
import type { ResourceStore } from "./store.ts";
import {
  ADDRESS,
  AUTHORIZATION,
  CLUSTER,
  ENDPOINT,
  EXTENSION_CONFIG,
  LISTENER,
  ROUTE,
} from "./type_urls.ts";
import type { AuthorizationPolicy } from "../core/mod.ts";

/** What the snapshot takes from bootstrap rather than xDS. */
export type SnapshotBase = Omit<Snapshot, "version" | "workloads" | "services" | "policies">;

interface Fragment {
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

export class Translator {
  private readonly lastWarm = new Map<string, Fragment>();
  /** Listeners (by value) waiting for dependencies, since when. */
  private readonly warming = new Map<string, { value: ListenerValue; since: number }>();

  /** `initialFetchTimeoutMs` (Envoy's default 15 s; 0 = wait forever): after it a listener
   * serves without what is missing — no endpoints for a missing cluster, HTTP 500 for a
   * missing ECDS filter config (Envoy's NoFilterConfigFound). */
  constructor(
    private readonly base: SnapshotBase,
    private readonly initialFetchTimeoutMs = 15_000,
    private readonly now: () => number = () => performance.now(),
  ) {}

  /** When a warming listener times out next (then build again), or undefined. */
  nextDeadline(): number | undefined {
    if (this.initialFetchTimeoutMs <= 0) return undefined;
    let min: number | undefined;
    for (const w of this.warming.values()) {
      const d = w.since + this.initialFetchTimeoutMs;
      if (min === undefined || d < min) min = d;
    }
    return min;
  }

  build(store: ResourceStore, version: string): Snapshot {
    const frags: Fragment[] = [];
    const live = new Set<string>();
    const inbound = new Map<string, FilterRef[]>();
    for (const [name, l] of store.values<ListenerValue>(LISTENER)) {
      if (l.inbound) {
        // Named for this node, or (a per-node control plane) for no node in particular.
        if (l.kind === "http" && (l.node === undefined || l.node === this.base.node.name)) {
          inbound.set(l.hostname, inboundChain(l));
        }
        continue;
      }
      live.add(name);
      let f = this.warmFragment(store, name, l);
      if (f) this.warming.delete(name);
      else {
        const w = this.warming.get(name);
        if (w?.value !== l) this.warming.set(name, { value: l, since: this.now() });
        const since = this.warming.get(name)!.since;
        if (this.initialFetchTimeoutMs > 0 && this.now() - since >= this.initialFetchTimeoutMs) {
          f = this.fragment(store, l, true);
        }
      }
      if (f) this.lastWarm.set(name, f);
      const use = f ?? this.lastWarm.get(name);
      if (use) frags.push(use);
    }
    for (const k of this.lastWarm.keys()) if (!live.has(k)) this.lastWarm.delete(k);
    for (const k of this.fragments.keys()) if (!live.has(k)) this.fragments.delete(k);
    for (const k of this.warming.keys()) if (!live.has(k)) this.warming.delete(k);
    const addr = this.addresses(store);
    return Object.freeze({
      ...this.base,
      version,
      workloads: addr.workloads,
      services: Object.freeze(
        this.withAddressServices(merge(frags, this.merged)).map((s) => {
          const chain = inbound.get(s.hostname);
          return chain ? Object.freeze({ ...s, inboundFilters: Object.freeze(chain) }) : s;
        }),
      ),
      policies: Object.freeze(this.policies(store)),
    });
  }

  /** The Address resources of the last build and what was made of them: an update that did
   * not touch them (a route edit) reuses all of it instead of walking 10 000 workloads. */
  private addressMemo:
    | {
      readonly names: string[];
      readonly values: AddressValue[];
      /** Indexes of the service Addresses among `values`. */
      readonly serviceAt: number[];
      readonly workloads: Snapshot["workloads"];
      readonly byService: ReadonlyMap<string, readonly Endpoint[]>;
      readonly services: Map<AddressValue, Service>;
    }
    | undefined;

  private addressGen: { store: ResourceStore; gen: number } | undefined;

  private addresses(store: ResourceStore): NonNullable<Translator["addressMemo"]> {
    // The same store and no Address change since: not even a walk (a route edit).
    const gen = store.generation(ADDRESS);
    if (this.addressMemo && this.addressGen?.store === store && this.addressGen.gen === gen) {
      return this.addressMemo;
    }
    this.addressGen = { store, gen };
    const names: string[] = [];
    const values: AddressValue[] = [];
    for (const [n, a] of store.values<AddressValue>(ADDRESS)) {
      names.push(n);
      values.push(a);
    }
    const m = this.addressMemo;
    if (
      m && m.values.length === values.length &&
      values.every((v, i) => v === m.values[i] && names[i] === m.names[i])
    ) return m;
    return this.addressMemo = {
      names,
      values,
      serviceAt: values.flatMap((v, i) => v.kind === "service" ? [i] : []),
      workloads: Object.freeze(this.workloads(store)),
      byService: this.endpointsByService(store),
      services: new Map(),
    };
  }

  private workloads(store: ResourceStore): Snapshot["workloads"][number][] {
    const out = [];
    for (const [, a] of store.values<AddressValue>(ADDRESS)) {
      if (a.kind !== "workload" || a.node !== this.base.node.name) continue;
      out.push(
        Object.freeze({ ...a.workload, identity: identityOf(a, this.base.node.trustDomain) }),
      );
    }
    return out;
  }

  /** Services known only from Istio Address resources (ztunnel's workload API): endpoints are
   * the healthy workloads naming them. Services from LDS win for the same hostname. */
  private withAddressServices(services: Service[]): Service[] {
    const have = new Set(services.map((s) => s.hostname));
    const memo = this.addressMemo!;
    for (const i of memo.serviceAt) {
      const a = memo.values[i]!;
      if (a.kind !== "service" || have.has(a.hostname)) continue;
      let svc = memo.services.get(a);
      if (!svc) {
        svc = Object.freeze({
          name: a.name,
          namespace: a.namespace,
          hostname: a.hostname,
          vips: a.vips,
          ports: a.ports,
          endpoints: Object.freeze(memo.byService.get(memo.names[i]!) ?? []),
          subsets: Object.freeze([]),
          outboundFilters: Object.freeze([]),
          inboundFilters: Object.freeze([]),
        });
        memo.services.set(a, svc);
      }
      services.push(svc);
    }
    return services;
  }

  private endpointsByService(store: ResourceStore): Map<string, Endpoint[]> {
    const byService = new Map<string, Endpoint[]>();
    for (const [, a] of store.values<AddressValue>(ADDRESS)) {
      if (a.kind !== "workload" || !a.healthy) continue;
      const w = a.workload;
      const ep: Endpoint = Object.freeze({
        workload: w.name,
        namespace: w.namespace,
        address: w.address,
        hboneAddress: a.hbone ? hostPort(w.address, this.base.node.hbonePort) : undefined,
        node: a.node || undefined,
        identity: identityOf(a, this.base.node.trustDomain),
        labels: w.labels,
        weight: a.capacity,
      });
      for (const key of a.services) {
        const list = byService.get(key);
        if (list) list.push(ep);
        else byService.set(key, [ep]);
      }
    }
    return byService;
  }

  private policies(store: ResourceStore): AuthorizationPolicy[] {
    const out = [];
    for (const [, p] of store.values<AuthorizationPolicy>(AUTHORIZATION)) {
      out.push(
        p.namespace === "" ? Object.freeze({ ...p, namespace: this.base.rootNamespace }) : p,
      );
    }
    return out;
  }

  /** Each hostname's merged service with the fragments it was made of (see merge). */
  private readonly merged = new Map<string, { list: Fragment[]; service: Service }>();

  /** Each listener's warm fragment with the resources it was made of: a push that changed one
   * route re-translates that listener only. */
  private readonly fragments = new Map<string, { deps: unknown[]; frag: Fragment }>();

  private warmFragment(store: ResourceStore, name: string, l: ListenerValue): Fragment | undefined {
    const deps = dependencies(store, l);
    const m = this.fragments.get(name);
    if (m && m.deps.length === deps.length && m.deps.every((d, i) => d === deps[i])) return m.frag;
    const frag = this.fragment(store, l, false);
    if (frag) this.fragments.set(name, { deps, frag });
    else this.fragments.delete(name);
    return frag;
  }

  /** undefined = not warm; `expired`: serve anyway with what is there. */
  private fragment(store: ResourceStore, l: ListenerValue, expired: boolean): Fragment | undefined {
    const route = l.kind === "http"
      ? (l.routeConfig ?? store.get<RouteValue>(ROUTE, l.rds ?? ""))
      : undefined;
    if (l.kind === "http" && !route && !expired) return undefined;
    const split = l.kind === "tcp"
      ? [{ match: { prefix: "" }, clusters: l.clusters, overrides: {} }]
      : route
      ? pickHost(route, l)?.rules ?? []
      : [];
    const clusterNames = [...new Set(split.flatMap((r) => r.clusters.map((c) => c.cluster)))];
    const clusters: ClusterValue[] = [];
    const eps = new Map<string, Endpoint>();
    let targetPort = l.targetPort;
    for (const cn of clusterNames) {
      const c = store.get<ClusterValue>(CLUSTER, cn);
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
        if (!ext && !e.optional && !expired) return undefined;
        if (!ext && !e.optional) filters.push(missingConfig(e.name, -filters.length));
        if (ext?.ref) filters.push({ ...ext.ref, priority: -filters.length });
      }
      if (split.some((r) => r.clusters.length > 1) || clusters.some((c) => c.subset)) {
        filters.push(trafficSplit(split, clusters, l.hostname, -1000));
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
        }))
        : undefined,
    };
  }
}

/** Every stored value a listener's fragment reads (fragment() is a function of these). */
function dependencies(store: ResourceStore, l: ListenerValue): unknown[] {
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
  for (const r of split) {
    for (const c of r.clusters) {
      const cv = store.get<ClusterValue>(CLUSTER, c.cluster);
      out.push(cv, cv?.edsName ? store.get<AssignmentValue>(ENDPOINT, cv.edsName) : undefined);
    }
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
function inboundChain(l: ListenerValue & { kind: "http" }): FilterRef[] {
  const out: FilterRef[] = [];
  for (const e of l.chain) {
    if (e.kind === "inline") out.push({ ...e.ref, name: `inbound-${out.length}.${e.ref.name}` });
  }
  return out;
}

function hostPort(ip: string, port: number): string {
  return ip.includes(":") ? `[${ip}]:${port}` : `${ip}:${port}`;
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
function merge(
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
