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
import { type CompiledPolicy, compilePolicy } from "./authz_compile.ts";

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
  /** Mesh endpoint on this node's network by IP (first service that lists it). */
  readonly endpointByIp: ReadonlyMap<string, Endpoint>;
  /** Endpoint by "network/ip", every network (ztunnel's NetworkAddress lookup: how a network
   * gateway named by address is found). */
  readonly endpointAt: ReadonlyMap<string, Endpoint>;
  /** A service's endpoints this node can reach: on its network, or behind a network gateway
   * (ztunnel skips the others when picking). The service's own list when all are local. */
  reachable(svc: Service): readonly Endpoint[];
  /** Services with an inbound chain, by "endpoint ip|target port", in snapshot order. */
  readonly inboundChains: ReadonlyMap<string, readonly ServiceMatch[]>;
  /** Authorization policies that apply to a local workload (computed once per workload). */
  policiesFor(w: Workload): readonly AuthorizationPolicy[];
  /** What the L4 check evaluates for a connection to `w` on `port`: the policies by selector
   * then those attached by targetRefs to a TCP service `w` backs on that port, compiled and
   * split by role (computed once per workload and port). */
  l4Policies(w: Workload, port: number): L4Policies;
}

/** The policies of one L4 check, each list in evaluation order. */
export interface L4Policies {
  /** Dry-run ALLOW and DENY policies (logged, never deciding); AUDIT ones are left out. */
  readonly dryRun: readonly CompiledPolicy[];
  readonly deny: readonly CompiledPolicy[];
  readonly allow: readonly CompiledPolicy[];
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
  const endpointAt = new Map<string, Endpoint>();
  const localNet = snap.node?.network ?? "";
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
      if (!ep.address) continue; // another network's, reached only through its gateway
      const net = ep.network ?? localNet;
      if (net === localNet && !endpointByIp.has(ep.address)) endpointByIp.set(ep.address, ep);
      const at = `${net}/${ep.address}`;
      if (!endpointAt.has(at)) endpointAt.set(at, ep);
    }
  }
  const reachableBySvc = new Map<Service, readonly Endpoint[]>();
  const reachable = (svc: Service): readonly Endpoint[] => {
    let r = reachableBySvc.get(svc);
    if (!r) {
      // An address-less endpoint is only reachable through a gateway, and only from another
      // network (ztunnel: WDS names gateways even for same-network workloads; never use them).
      const ok = (e: Endpoint): boolean => {
        const local = e.network === undefined || e.network === localNet;
        return e.address ? local || e.networkGateway !== undefined : !local && !!e.networkGateway;
      };
      r = svc.endpoints.every(ok) ? svc.endpoints : svc.endpoints.filter(ok);
      reachableBySvc.set(svc, r);
    }
    return r;
  };
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
  const policiesFor = (w: Workload): readonly AuthorizationPolicy[] => {
    let p = policies.get(w);
    if (!p) policies.set(w, p = policiesApplying(snap, w));
    return p;
  };
  const anyTargeted = (snap.policies ?? []).some((p) => p.targetServices !== undefined);
  const l4 = new Map<Workload, L4Policies>();
  const l4ByPort = new Map<Workload, Map<number, L4Policies>>();
  return {
    workloadByIp,
    workloadByName,
    serviceByAddr,
    serviceByHost,
    endpointByIp,
    endpointAt,
    reachable,
    inboundChains,
    policiesFor,
    l4Policies(w, port) {
      if (!anyTargeted) {
        let out = l4.get(w);
        if (!out) l4.set(w, out = split(policiesFor(w)));
        return out;
      }
      let byPort = l4ByPort.get(w);
      if (!byPort) l4ByPort.set(w, byPort = new Map());
      let out = byPort.get(port);
      if (!out) {
        const targeted = targetedPolicies(snap, w, port);
        const own = policiesFor(w);
        byPort.set(port, out = split(targeted.length === 0 ? own : [...own, ...targeted]));
      }
      return out;
    },
  };
}

function split(policies: readonly AuthorizationPolicy[]): L4Policies {
  const of = (keep: (p: AuthorizationPolicy) => boolean): CompiledPolicy[] =>
    policies.filter(keep).map(compilePolicy);
  return {
    dryRun: of((p) => p.dryRun && p.action !== "AUDIT"),
    deny: of((p) => !p.dryRun && p.action === "DENY"),
    allow: of((p) => !p.dryRun && p.action === "ALLOW"),
  };
}

/** Policies attached by targetRefs to a service this connection reaches (the workload backs it
 * on this port). An HTTP service's are enforced by its L7 chain (an L7 port never comes here);
 * a TCP service's by the L4 check, as a waypoint's TCP chain would. */
function targetedPolicies(snap: Snapshot, w: Workload, port: number): AuthorizationPolicy[] {
  const names = new Set(
    (snap.services ?? []).filter((s) =>
      s.namespace === w.namespace && s.ports.some((p) => p.targetPort === port) &&
      s.endpoints.some((e) => e.address === w.address)
    ).map((s) => s.name),
  );
  return names.size === 0
    ? []
    : snap.policies.filter((p) =>
      p.namespace === w.namespace && (p.targetServices ?? []).some((n) => names.has(n))
    );
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
