/**
 * One node's view of the mesh as xDS resources: every service as CDS/EDS/LDS/RDS (outbound is
 * mesh-wide), plugins as ECDS, the node's own workloads as Istio Address resources,
 * policies as Istio Authorization (L4) and, for HTTP services with HTTP policy conditions, as
 * Envoy RBAC on an inbound Listener per node (build_rbac.ts). Versions are content hashes, so
 * an unchanged resource keeps its version across rebuilds and is never re-pushed.
 */
import { create, fromJson, type JsonValue } from "@bufbuild/protobuf";
import { type Any, anyPack } from "@bufbuild/protobuf/wkt";
import {
  HttpConnectionManagerSchema,
  IstioAddressSchema,
  IstioAuthorizationSchema,
  ListenerSchema,
  RouteConfigurationSchema,
  RouterSchema,
  TcpProxySchema,
} from "../proto.ts";
import {
  ADDRESS,
  AUTHORIZATION,
  CLUSTER,
  ENDPOINT,
  EXTENSION_CONFIG,
  LISTENER,
  ROUTE,
} from "../type_urls.ts";
import { authorizationOf } from "./build_policy.ts";
import { isHttpPolicy, rbacFilters } from "./build_rbac.ts";
import { RBACSchema } from "../proto.ts";
import type { AuthorizationPolicy } from "../../core/mod.ts";
import {
  clusterName,
  faultFilter,
  listenerName,
  orderedPlugins,
  pluginExtension,
  pluginResourceName,
  routeConfig,
} from "./build_routes.ts";
import type { Mesh, MeshRouteDestination, MeshService, MeshWorkload } from "./mesh.ts";
import {
  anyOf,
  assignmentBytes,
  edsClusterBytes,
  fnv,
  ipBytes,
  lbEndpointBytes,
  type PortLists,
  workloadAddressBytes,
  workloadUid,
} from "./build_wire.ts";

export { lbEndpointBytes, workloadAddressBytes, workloadUid } from "./build_wire.ts";

export interface Built {
  readonly version: string;
  readonly any: Any;
  /** What the resource was built from, to reuse it unchanged on the next build. */
  readonly key?: string;
}
export type NodeResources = ReadonlyMap<string, ReadonlyMap<string, Built>>;

const matches = (labels: Record<string, string>, sel: Record<string, string>): boolean =>
  Object.entries(sel).every(([k, v]) => labels[k] === v);

const indexes = new WeakMap<Mesh, Map<string, MeshWorkload[]>>();
/** The last index built, reused by a mesh with the same workloads. */
let lastIndex = { sig: "", idx: new Map<string, MeshWorkload[]>() };

/** Workloads by "label=value", so selecting endpoints is linear in the mesh, not quadratic. */
function indexOf(mesh: Mesh): Map<string, MeshWorkload[]> {
  let idx = indexes.get(mesh);
  if (idx) return idx;
  const sig = workloadSig(mesh);
  if (lastIndex.sig === sig) {
    indexes.set(mesh, lastIndex.idx);
    return lastIndex.idx;
  }
  indexes.set(mesh, idx = new Map());
  lastIndex = { sig, idx };
  for (const w of mesh.workloads) {
    for (const [k, v] of Object.entries(w.labels)) {
      const key = `${k}=${v}`;
      const list = idx.get(key);
      if (list) list.push(w);
      else idx.set(key, [w]);
    }
  }
  return idx;
}

/** A service's selection and the workload signature it was made under: a service object is
 * reused across meshes (mesh.ts) while the workloads may differ. */
const selections = new WeakMap<MeshService, { sig: string; out: MeshWorkload[] }>();

/** What selecting workloads is made of: the workloads (frozen; those of unchanged manifests are
 * the same objects across reloads, so identity stands for content), as a token once per mesh:
 * the same token as the previous mesh when its workloads are the same objects in the same
 * order, a new one otherwise. */
const workloadSigs = new WeakMap<Mesh, string>();
let lastWorkloads: { list: readonly MeshWorkload[]; sig: string } = { list: [], sig: "w0" };
let nextSig = 1;
function workloadSig(mesh: Mesh): string {
  let sig = workloadSigs.get(mesh);
  if (sig !== undefined) return sig;
  const list = mesh.workloads;
  const old = lastWorkloads.list;
  const same = list.length === old.length && list.every((w, i) => w === old[i]);
  sig = same ? lastWorkloads.sig : `w${nextSig++}`;
  lastWorkloads = { list, sig };
  workloadSigs.set(mesh, sig);
  return sig;
}

/** Selections of the last mesh by selector, reused while the workloads are the same: a reload
 * that changed routes only does not select 10 000 workloads again. */
let lastSelections: { sig: string; bySelector: Map<string, MeshWorkload[]> } = {
  sig: "",
  bySelector: new Map(),
};

const selectorKeys = new WeakMap<MeshService, string>();
function selectorKey(s: MeshService): string {
  let k = selectorKeys.get(s);
  if (k === undefined) {
    k = s.selector
      ? `s|${s.namespace}|${key(s.selector)}`
      : `e|${key([...s.endpointIps ?? []].sort())}`;
    selectorKeys.set(s, k);
  }
  return k;
}

/** The service's workloads: by label selector in its namespace (through the label index), or the
 * addresses of its EndpointSlices. */
function selected(mesh: Mesh, s: MeshService): MeshWorkload[] {
  const sig = workloadSig(mesh);
  const held = selections.get(s);
  if (held?.sig === sig) return held.out;
  if (lastSelections.sig !== sig) lastSelections = { sig, bySelector: new Map() };
  const sk = selectorKey(s);
  let out = lastSelections.bySelector.get(sk);
  if (!out) {
    out = select(mesh, s);
    lastSelections.bySelector.set(sk, out);
  }
  selections.set(s, { sig, out });
  return out;
}

function select(mesh: Mesh, s: MeshService): MeshWorkload[] {
  const sel = s.selector;
  const first = sel ? Object.entries(sel)[0] : undefined;
  const candidates = first ? indexOf(mesh).get(`${first[0]}=${first[1]}`) ?? [] : mesh.workloads;
  return candidates.filter((w) =>
    sel
      ? w.namespace === s.namespace && matches(w.labels, sel)
      : s.endpointIps?.has(w.address) === true
  );
}

const lbEndpoints = new WeakMap<MeshWorkload, Map<string, Uint8Array>>();

/** One endpoint's LbEndpoint bytes, encoded once per workload and port: workloads of unchanged
 * manifests are the same objects across reloads, and one workload sits in several clusters
 * (the service and each subset it matches). */
function lbEndpoint(mesh: Mesh, w: MeshWorkload, targetPort: number): Uint8Array {
  let byPort = lbEndpoints.get(w);
  if (!byPort) lbEndpoints.set(w, byPort = new Map());
  const k = `${targetPort}|${mesh.hbonePort}`;
  let bytes = byPort.get(k);
  if (!bytes) {
    bytes = lbEndpointBytes(mesh, w, targetPort);
    byPort.set(k, bytes);
  }
  return bytes;
}

/** The service's (or subset's) endpoints as a ClusterLoadAssignment. */
function assignment(
  mesh: Mesh,
  s: MeshService,
  name: string,
  targetPort: number,
  subset?: Record<string, string>,
): Any {
  const eps = selected(mesh, s).filter((w) => !subset || matches(w.labels, subset));
  return anyOf(ENDPOINT, assignmentBytes(name, eps.map((w) => lbEndpoint(mesh, w, targetPort))));
}

function httpManager(s: MeshService, port: number) {
  const filters = [];
  // Envoy's shape for route-scoped faults (what istiod sends): an empty fault filter on the
  // listener, the actual fault in each route's typed_per_filter_config.
  const fault = faultFilter(s);
  if (fault) {
    filters.push({
      name: "envoy.filters.http.fault",
      configType: { case: "typedConfig" as const, value: fault },
    });
  }
  for (const p of orderedPlugins(s)) {
    filters.push({
      name: pluginResourceName(s, p),
      configType: {
        case: "configDiscovery" as const,
        value: {
          configSource: { configSourceSpecifier: { case: "ads" as const, value: {} } },
          typeUrls: ["type.googleapis.com/envoy.extensions.filters.http.wasm.v3.Wasm"],
        },
      },
    });
  }
  filters.push({
    name: "envoy.filters.http.router",
    configType: {
      case: "typedConfig" as const,
      value: anyPack(RouterSchema, create(RouterSchema)),
    },
  });
  return anyPack(
    HttpConnectionManagerSchema,
    create(HttpConnectionManagerSchema, {
      statPrefix: listenerName(s, port),
      routeSpecifier: {
        case: "rds",
        value: {
          routeConfigName: listenerName(s, port),
          configSource: { configSourceSpecifier: { case: "ads", value: {} } },
        },
      },
      httpFilters: filters,
    }),
  );
}

/** VirtualService `tcp`: the first route for this port (weighted), else the whole service. */
function tcpClusters(s: MeshService, port: number) {
  const r = s.tcp.find((t) => t.port === undefined || t.port === port);
  const name = (d: MeshRouteDestination) =>
    `outbound|${d.port ?? port}|${d.subset ?? ""}|${d.host || s.hostname}`;
  if (!r) return { case: "cluster" as const, value: clusterName(s, port) };
  if (r.route.length === 1) return { case: "cluster" as const, value: name(r.route[0]!) };
  return {
    case: "weightedClusters" as const,
    value: { clusters: r.route.map((d) => ({ name: name(d), weight: d.weight })) },
  };
}

function listener(s: MeshService, p: MeshService["ports"][number]) {
  const sock = (ip: string) => ({
    address: {
      case: "socketAddress" as const,
      value: { address: ip, portSpecifier: { case: "portValue" as const, value: p.port } },
    },
  });
  const tcp = p.protocol === "TCP";
  return create(ListenerSchema, {
    name: listenerName(s, p.port),
    address: s.vips[0] ? sock(s.vips[0]) : undefined,
    additionalAddresses: s.vips.slice(1).map((v) => ({ address: sock(v) })),
    metadata: {
      filterMetadata: {
        weft: {
          hostname: s.hostname,
          service: s.name,
          namespace: s.namespace,
          targetPort: p.targetPort,
        },
      },
    },
    filterChains: tcp
      ? [{
        filters: [{
          name: "envoy.filters.network.tcp_proxy",
          configType: {
            case: "typedConfig",
            value: anyPack(
              TcpProxySchema,
              create(TcpProxySchema, {
                statPrefix: s.hostname,
                clusterSpecifier: tcpClusters(s, p.port),
              }),
            ),
          },
        }],
      }]
      : [],
    // gRPC clients read HTTP listeners from api_listener (xds.md §15).
    apiListener: tcp ? undefined : { apiListener: httpManager(s, p.port) },
  });
}

/** The policies that apply to a workload (its namespace or the root namespace, by selector),
 * plus those bound to it by name (converted PeerAuthentications, whose selector matches nothing). */
function workloadPolicies(
  mesh: Mesh,
  byNamespace: ReadonlyMap<string, readonly AuthorizationPolicy[]>,
  byId: ReadonlyMap<string, AuthorizationPolicy>,
  w: MeshWorkload,
  bound: ReadonlyMap<MeshWorkload, readonly string[]>,
): AuthorizationPolicy[] {
  const out = [w.namespace, mesh.rootNamespace]
    .filter((ns, i) => i === 0 || ns !== w.namespace)
    .flatMap((ns) => byNamespace.get(ns) ?? [])
    .filter((p) => p.selector === undefined || matches(w.labels, p.selector));
  for (const id of bound.get(w) ?? []) {
    const p = byId.get(id);
    if (p && !out.includes(p)) out.push(p);
  }
  return out;
}

/** Inbound L7 authorization for an HTTP service on one node (istiod's sidecar/waypoint inbound
 * shape): an HCM whose RBAC filters hold every policy of the service's workloads on that node
 * (the weft.yaml union), then the router to the local workload. `traffic_direction: INBOUND`
 * and `filter_metadata.weft.node` tell nodes whose it is. */
function inboundListener(
  s: MeshService,
  node: string,
  port: MeshService["ports"][number],
  policies: readonly AuthorizationPolicy[],
) {
  const name = inboundListenerName(s, node);
  const typed = (name: string, value: Any) => ({
    name,
    configType: { case: "typedConfig" as const, value },
  });
  const filters = [
    ...rbacFilters(policies).map((f) =>
      typed(
        "envoy.filters.http.rbac",
        anyPack(RBACSchema, fromJson(RBACSchema, f.config as JsonValue)),
      )
    ),
    typed("envoy.filters.http.router", anyPack(RouterSchema, create(RouterSchema))),
  ];
  const cluster = `inbound|${port.targetPort}||`;
  return create(ListenerSchema, {
    name,
    trafficDirection: 1, // INBOUND
    address: {
      address: {
        case: "socketAddress",
        value: { address: "0.0.0.0", portSpecifier: { case: "portValue", value: port.targetPort } },
      },
    },
    metadata: {
      filterMetadata: {
        weft: { hostname: s.hostname, service: s.name, namespace: s.namespace, node },
      },
    },
    filterChains: [{
      filters: [{
        name: "envoy.filters.network.http_connection_manager",
        configType: {
          case: "typedConfig",
          value: anyPack(
            HttpConnectionManagerSchema,
            create(HttpConnectionManagerSchema, {
              statPrefix: name,
              routeSpecifier: {
                case: "routeConfig",
                value: {
                  name,
                  virtualHosts: [{
                    name: "inbound|http",
                    domains: ["*"],
                    routes: [{
                      match: { pathSpecifier: { case: "prefix", value: "/" } },
                      action: {
                        case: "route",
                        value: { clusterSpecifier: { case: "cluster", value: cluster } },
                      },
                    }],
                  }],
                },
              },
              httpFilters: filters,
            }),
          ),
        },
      }],
    }],
  });
}

export const inboundListenerName = (s: MeshService, node: string): string =>
  `inbound|${node}|${s.hostname}`;

const APP_PROTOCOL: Record<string, number> = { HTTP: 1, HTTP2: 2, GRPC: 3 };

/** workload → {"namespace/hostname" → ports} for every service selecting it (istiod's
 * Workload.services map), built once per mesh from each service's selection. */
function servicesByWorkload(mesh: Mesh): Map<MeshWorkload, { lists: PortLists; key: string }> {
  const out = new Map<MeshWorkload, { lists: PortLists; key: string }>();
  for (const s of mesh.services) {
    const ports = s.ports.map((p) => ({ servicePort: p.port, targetPort: p.targetPort }));
    const name = `${s.namespace}/${s.hostname}`;
    // What this entry adds to a workload's Address (its key names the content, see put).
    const part = key([name, ports]);
    for (const w of selected(mesh, s)) {
      let m = out.get(w);
      if (!m) out.set(w, m = { lists: {}, key: "" });
      m.lists[name] = { ports };
      m.key += part;
    }
  }
  return out;
}

/** workload → "ns/name" of the selector policies bound to it. */
function policiesByWorkload(mesh: Mesh): Map<MeshWorkload, string[]> {
  const out = new Map<MeshWorkload, string[]>();
  for (const [w, names] of mesh.policyBindings) out.set(w, [...names]);
  for (const p of mesh.authorizationPolicies) {
    const sel = p.selector;
    if (!sel) continue;
    const first = Object.entries(sel)[0];
    const candidates = first ? indexOf(mesh).get(`${first[0]}=${first[1]}`) ?? [] : mesh.workloads;
    for (const w of candidates) {
      if (w.namespace !== p.namespace || !matches(w.labels, sel)) continue;
      let l = out.get(w);
      if (!l) out.set(w, l = []);
      l.push(`${p.namespace}/${p.name}`);
    }
  }
  return out;
}

function serviceAddress(s: MeshService) {
  return create(IstioAddressSchema, {
    type: {
      case: "service",
      value: {
        name: s.name,
        namespace: s.namespace,
        hostname: s.hostname,
        addresses: s.vips.map((v) => ({ network: "", address: ipBytes(v) })),
        ports: s.ports.map((p) => ({
          servicePort: p.port,
          targetPort: p.targetPort,
          appProtocol: APP_PROTOCOL[p.protocol] ?? 0,
        })),
      },
    },
  });
}

const shared = new WeakMap<Mesh, NodeResources>();

/** The node's view. As istiod does for ztunnel, every node gets every workload and service it
 * may reach as Address resources (not only its own), so the mesh-wide part is built once per
 * mesh and shared by every node. `prev` (the previous mesh's view) lets unchanged resources be
 * reused without encoding them again: an edit costs what it changes. */
export function buildNode(mesh: Mesh, _node: string, prev?: NodeResources): NodeResources {
  let common = shared.get(mesh);
  if (!common) shared.set(mesh, common = buildShared(mesh, prev));
  return common;
}

// Native JSON.stringify without a replacer: the keys of 20 000 resources cost a few ms.
const key = (v: unknown): string => JSON.stringify(v);

const workloadKeys = new WeakMap<MeshWorkload, string>();
let nextWorkloadKey = 0;

/** A short key per workload object. Workloads are frozen, and those of unchanged manifests are
 * the same objects across reloads (mesh.ts), so identity stands for content: a changed workload
 * is a new object with a new key. Short keys keep comparing 20 000 keys per reload cheap. */
function workloadKey(w: MeshWorkload): string {
  let k = workloadKeys.get(w);
  if (k === undefined) workloadKeys.set(w, k = (nextWorkloadKey++).toString(36));
  return k;
}

/** Services are frozen and reused across reloads while made of the same objects (mesh.ts), so
 * their keys are computed once per service object. */
const serviceKeys = new WeakMap<MeshService, string>();
const serviceKey = (s: MeshService, hbonePort: number): string => {
  let k = serviceKeys.get(s);
  if (k === undefined) serviceKeys.set(s, k = serviceContentKey(s));
  return `${hbonePort}|${k}`;
};

const serviceContentKey = (s: MeshService): string =>
  key([
    s.name,
    s.namespace,
    s.hostname,
    s.vips,
    s.ports,
    s.selector ?? null,
    s.endpointIps ? [...s.endpointIps].sort() : null,
    s.subsets,
    s.http,
    s.tcp,
    s.plugins,
  ]);

/** Each service's outbound resources (clusters, endpoints, listeners, routes, plugins) as last
 * built, with the endpoints they were built over. */
const outboundMemo = new WeakMap<
  MeshService,
  { sig: string; entries: readonly [string, string, Built][] }
>();

/** What a built view's outbound resources came from: each service's entries (by service
 * identity key) and the inbound listener names, so the next build starts from copies of its
 * maps and touches only what changed. */
interface OutboundIndex {
  readonly byService: Map<string, OutboundEntry>;
  readonly inbound: string[];
}
interface OutboundEntry {
  readonly svc: MeshService;
  readonly sig: string;
  readonly entries: readonly (readonly [string, string, Built])[];
}
const outboundIndexes = new WeakMap<NodeResources, OutboundIndex>();
/** The types whose maps a build copies from the previous one and edits. */
const EDITED = [CLUSTER, ENDPOINT, LISTENER, ROUTE, EXTENSION_CONFIG];

function buildShared(mesh: Mesh, prev?: NodeResources): NodeResources {
  const prevIdx = prev ? outboundIndexes.get(prev) : undefined;
  const out = new Map<string, Map<string, Built>>(
    [CLUSTER, ENDPOINT, LISTENER, ROUTE, EXTENSION_CONFIG, AUTHORIZATION, ADDRESS].map((t) => [
      t,
      prevIdx && EDITED.includes(t) ? new Map(prev!.get(t)) : new Map(),
    ]),
  );
  const dirty = new Set<string>();
  const setOut = (t: string, name: string, b: Built): void => {
    const m = out.get(t)!;
    if (m.get(name) === b) return;
    m.set(name, b);
    dirty.add(t);
  };
  const delOut = (t: string, name: string): void => {
    if (out.get(t)!.delete(name)) dirty.add(t);
  };
  /** `k` names everything the resource is made of; same key as before → same bytes. */
  const putShared = (t: string, name: string, k: string, make: () => Any): void => {
    const old = prev?.get(t)?.get(name);
    if (old && old.key === k) {
      setOut(t, name, old);
      return;
    }
    const any = make();
    setOut(t, name, { version: fnv(any.value), any, key: k });
  };

  const idx: OutboundIndex = { byService: new Map(), inbound: [] };
  for (const s of mesh.services) {
    const eps = endpointsKey(selected(mesh, s));
    const sig = `${mesh.hbonePort}|${eps}`;
    let id = `${s.namespace}/${s.name}/${s.hostname}`;
    while (idx.byService.has(id)) id += "+";
    const last = prevIdx?.byService.get(id);
    if (last?.svc === s && last.sig === sig) {
      // The same service object over the same endpoints: its resources are in the copies.
      idx.byService.set(id, last);
      continue;
    }
    if (last) { for (const [t, name] of last.entries) delOut(t, name); }
    const memo = outboundMemo.get(s);
    if (memo?.sig === sig) {
      for (const [t, name, b] of memo.entries) setOut(t, name, b);
      idx.byService.set(id, { svc: s, sig, entries: memo.entries });
      continue;
    }
    const entries: [string, string, Built][] = [];
    outboundMemo.set(s, { sig, entries });
    idx.byService.set(id, { svc: s, sig, entries });
    const put = (t: string, name: string, k: string, make: () => Any): void => {
      putShared(t, name, k, make);
      entries.push([t, name, out.get(t)!.get(name)!]);
    };
    const svcKey = serviceKey(s, mesh.hbonePort);
    for (const p of s.ports) {
      for (const sub of [undefined, ...s.subsets]) {
        const name = clusterName(s, p.port, sub?.name);
        put(ENDPOINT, name, `${key([p.targetPort, sub ?? null, mesh.hbonePort])}${eps}`, () => {
          return assignment(mesh, s, name, p.targetPort, sub?.labels);
        });
        put(
          CLUSTER,
          name,
          key([s.hostname, sub]),
          () =>
            anyOf(CLUSTER, edsClusterBytes(name, s.hostname, sub?.name ?? "", sub?.labels ?? {})),
        );
      }
      const lname = listenerName(s, p.port);
      put(LISTENER, lname, svcKey, () => anyPack(ListenerSchema, listener(s, p)));
      if (p.protocol !== "TCP") {
        put(ROUTE, lname, svcKey, () => anyPack(RouteConfigurationSchema, routeConfig(s, p.port)));
      }
    }
    for (const pl of s.plugins) {
      put(
        EXTENSION_CONFIG,
        pluginResourceName(s, pl),
        key([s.namespace, pl]),
        () => pluginExtension(s, pl),
      );
    }
  }
  // Services gone since the last build take their resources with them.
  for (const [id, last] of prevIdx?.byService ?? []) {
    if (!idx.byService.has(id)) { for (const [t, name] of last.entries) delOut(t, name); }
  }
  // Inbound listeners are decided again below (put reuses unchanged ones by key).
  for (const name of prevIdx?.inbound ?? []) delOut(LISTENER, name);
  const put = putShared;
  let boundMemo: Map<MeshWorkload, string[]> | undefined;
  const bound = (): Map<MeshWorkload, string[]> => boundMemo ??= policiesByWorkload(mesh);
  // Inbound L7 authorization: per HTTP service and node hosting its workloads, when a policy
  // of those workloads has HTTP conditions (the rest stays L4, as Authorization resources).
  const anyHttp = mesh.authorizationPolicies.some(isHttpPolicy);
  const byNamespace = new Map<string, AuthorizationPolicy[]>();
  const byId = new Map<string, AuthorizationPolicy>();
  for (const p of anyHttp ? mesh.authorizationPolicies : []) {
    byId.set(`${p.namespace}/${p.name}`, p);
    const list = byNamespace.get(p.namespace);
    if (list) list.push(p);
    else byNamespace.set(p.namespace, [p]);
  }
  for (const s of anyHttp ? mesh.services : []) {
    const http = s.ports.find((p) => p.protocol !== "TCP");
    if (!http) continue;
    const byNode = new Map<string, Map<string, AuthorizationPolicy>>();
    for (const w of selected(mesh, s)) {
      if (!w.node) continue;
      let m = byNode.get(w.node);
      if (!m) byNode.set(w.node, m = new Map());
      for (const p of workloadPolicies(mesh, byNamespace, byId, w, bound())) {
        m.set(`${p.namespace}/${p.name}`, p);
      }
    }
    for (const [node, m] of byNode) {
      const policies = [...m.values()];
      if (!policies.some(isHttpPolicy)) continue;
      idx.inbound.push(inboundListenerName(s, node));
      put(
        LISTENER,
        inboundListenerName(s, node),
        key([s.hostname, s.name, s.namespace, http.targetPort, policies]),
        () => anyPack(ListenerSchema, inboundListener(s, node, http, policies)),
      );
    }
  }
  const addrKey = addressInputs(mesh);
  addressKeys.set(out, addrKey);
  const prevAddresses = prev?.get(ADDRESS);
  if (prev && prevAddresses && addressKeys.get(prev) === addrKey) {
    // Nothing Address resources are made of changed (a route or policy edit): all are reused.
    out.set(ADDRESS, prevAddresses as Map<string, Built>);
  } else buildAddresses(mesh, put, bound());
  for (const p of mesh.authorizationPolicies) {
    put(
      AUTHORIZATION,
      `${p.namespace}/${p.name}`,
      key([p, mesh.rootNamespace]),
      () => anyPack(IstioAuthorizationSchema, authorizationOf(mesh, p)),
    );
  }
  // A type none of whose resources changed keeps its map object: ADS streams skip it on a push.
  for (const [t, m] of out) {
    const was = prev?.get(t);
    if (!was || was === m) continue;
    const untouched = prevIdx !== undefined && EDITED.includes(t) && !dirty.has(t);
    if (untouched || sameEntries(was, m)) out.set(t, was as Map<string, Built>);
  }
  outboundIndexes.set(out, idx);
  return out;
}

function sameEntries(a: ReadonlyMap<string, Built>, b: ReadonlyMap<string, Built>): boolean {
  if (a.size !== b.size) return false;
  for (const [k, v] of b) if (a.get(k) !== v) return false;
  return true;
}

const endpointsKeys = new WeakMap<readonly MeshWorkload[], string>();
function endpointsKey(ws: readonly MeshWorkload[]): string {
  let k = endpointsKeys.get(ws);
  if (k === undefined) endpointsKeys.set(ws, k = ws.map(workloadKey).join(","));
  return k;
}

/** Everything the Address resources of a mesh are made of, per built view. */
const addressKeys = new WeakMap<NodeResources, string>();
function addressInputs(mesh: Mesh): string {
  return `${workloadSig(mesh)}|${
    key([
      mesh.trustDomain,
      mesh.services.map(serviceAddressKey),
      mesh.authorizationPolicies.map((p) => [p.namespace, p.name, p.selector ?? null]),
      [...mesh.policyBindings].map(([w, names]) => [workloadKey(w), names]),
    ])
  }`;
}

const serviceAddressKeys = new WeakMap<MeshService, string>();
function serviceAddressKey(s: MeshService): string {
  let k = serviceAddressKeys.get(s);
  if (k === undefined) {
    k = key([s.name, s.namespace, s.hostname, s.vips, s.ports, selectorKey(s)]);
    serviceAddressKeys.set(s, k);
  }
  return k;
}

function buildAddresses(
  mesh: Mesh,
  put: (t: string, name: string, k: string, make: () => Any) => void,
  bound: Map<MeshWorkload, string[]>,
): void {
  const svcs = servicesByWorkload(mesh);
  const none = { lists: {}, key: "" };
  for (const w of mesh.workloads) {
    const services = svcs.get(w) ?? none;
    const policies = bound.get(w) ?? [];
    put(
      ADDRESS,
      workloadUid(mesh, w),
      `${workloadKey(w)}|${mesh.trustDomain}|${services.key}|${policies.join(",")}`,
      () => anyOf(ADDRESS, workloadAddressBytes(mesh, w, services.lists, policies)),
    );
  }
  for (const s of mesh.services) {
    put(
      ADDRESS,
      `${s.namespace}/${s.hostname}`,
      key([s.name, s.vips, s.ports]),
      () => anyPack(IstioAddressSchema, serviceAddress(s)),
    );
  }
}
