/**
 * Lookups the data path needs from a snapshot, built once per snapshot (ztunnel's stores: by
 * address, by VIP, by host) and cached beside the immutable snapshot object, so no connection
 * scans the workload, service or policy lists.
 */
import type {
  AuthorizationPolicy,
  Endpoint,
  Service,
  ServicePort,
  Snapshot,
  Workload,
} from "./snapshot.ts";

export interface ServiceMatch {
  readonly svc: Service;
  readonly sp: ServicePort;
}

export interface SnapshotIndex {
  /** Local workload by IP. */
  readonly workloadByIp: ReadonlyMap<string, Workload>;
  /** Local workload by "namespace/name" and by name. */
  readonly workloadByName: ReadonlyMap<string, Workload>;
  /** Service port by "vip|port" and by "host|port" for every name the service answers to. */
  readonly serviceByAddr: ReadonlyMap<string, ServiceMatch>;
  /** Service by any of its host names (FQDN, name.ns.svc, name.ns, name). */
  readonly serviceByHost: ReadonlyMap<string, Service>;
  /** Mesh endpoint by IP (first service that lists it). */
  readonly endpointByIp: ReadonlyMap<string, Endpoint>;
  /** Services with an inbound chain, by "endpoint ip|target port", in snapshot order. */
  readonly inboundChains: ReadonlyMap<string, readonly ServiceMatch[]>;
  /** Authorization policies that apply to a local workload (computed once per workload). */
  policiesFor(w: Workload): readonly AuthorizationPolicy[];
}

const cache = new WeakMap<Snapshot, SnapshotIndex>();

/** The index of `snap`, built on first use and kept as long as the snapshot lives. */
export function indexOf(snap: Snapshot): SnapshotIndex {
  let idx = cache.get(snap);
  if (!idx) cache.set(snap, idx = build(snap));
  return idx;
}

export function hostNames(s: Service): string[] {
  return [s.hostname, s.name, `${s.name}.${s.namespace}`, `${s.name}.${s.namespace}.svc`];
}

function build(snap: Snapshot): SnapshotIndex {
  const workloadByIp = new Map<string, Workload>();
  const workloadByName = new Map<string, Workload>();
  // Partial snapshots (tests, config-time policy checks) may carry only some lists.
  for (const w of snap.workloads ?? []) {
    if (!workloadByIp.has(w.address)) workloadByIp.set(w.address, w);
    const full = `${w.namespace}/${w.name}`;
    if (!workloadByName.has(full)) workloadByName.set(full, w);
    if (!workloadByName.has(w.name)) workloadByName.set(w.name, w);
  }
  const serviceByAddr = new Map<string, ServiceMatch>();
  const serviceByHost = new Map<string, Service>();
  const endpointByIp = new Map<string, Endpoint>();
  // First match wins, in snapshot order (the order the linear scan used to honour).
  for (const svc of snap.services ?? []) {
    const names = hostNames(svc);
    for (const h of names) if (!serviceByHost.has(h)) serviceByHost.set(h, svc);
    for (const sp of svc.ports) {
      for (const a of [...svc.vips, ...names]) {
        const key = `${a}|${sp.port}`;
        if (!serviceByAddr.has(key)) serviceByAddr.set(key, { svc, sp });
      }
    }
    for (const ep of svc.endpoints) {
      if (!endpointByIp.has(ep.address)) endpointByIp.set(ep.address, ep);
    }
  }
  const inboundChains = new Map<string, ServiceMatch[]>();
  for (const svc of snap.services ?? []) {
    if (svc.inboundFilters.length === 0) continue;
    for (const ep of svc.endpoints) {
      for (const sp of svc.ports) {
        const key = `${ep.address}|${sp.targetPort}`;
        const list = inboundChains.get(key) ?? [];
        // One entry per service even when it lists the endpoint twice.
        if (!list.some((m) => m.svc === svc)) list.push({ svc, sp });
        inboundChains.set(key, list);
      }
    }
  }
  const policies = new Map<Workload, readonly AuthorizationPolicy[]>();
  return {
    workloadByIp,
    workloadByName,
    serviceByAddr,
    serviceByHost,
    endpointByIp,
    inboundChains,
    policiesFor(w) {
      let p = policies.get(w);
      if (!p) policies.set(w, p = policiesApplying(snap, w));
      return p;
    },
  };
}

/** Policies that apply to a workload: its namespace's and the root namespace's, by selector. */
export function policiesApplying(
  snap: Pick<Snapshot, "policies" | "rootNamespace">,
  w: Workload,
): AuthorizationPolicy[] {
  return snap.policies.filter((x) =>
    x.targetServices === undefined &&
    (x.namespace === w.namespace || x.namespace === snap.rootNamespace) &&
    (x.selector === undefined || Object.entries(x.selector).every(([k, v]) => w.labels[k] === v))
  );
}
