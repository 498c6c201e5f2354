/**
 * One node's view of the mesh as xDS resources: every service as CDS/EDS/LDS/RDS (outbound is
 * mesh-wide), plugins as ECDS, the node's own workloads as Istio Address resources,
 * policies as Istio Authorization (L4) and, for HTTP services with HTTP policy conditions, as
 * Envoy RBAC on an inbound Listener per node (build_rbac.ts). Versions are content hashes, so
 * an unchanged resource keeps its version across rebuilds and is never re-pushed.
 */
import { create, fromJson, type JsonValue } from "@bufbuild/protobuf";
import { BinaryWriter, WireType } from "@bufbuild/protobuf/wire";
import { parseIp } from "../../core/mod.ts";
import { type Any, anyPack, AnySchema } from "@bufbuild/protobuf/wkt";
import {
  Cluster_DiscoveryType,
  ClusterSchema,
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

export interface Built {
  readonly version: string;
  readonly any: Any;
  /** What the resource was built from, to reuse it unchanged on the next build. */
  readonly key?: string;
}
export type NodeResources = ReadonlyMap<string, ReadonlyMap<string, Built>>;

function fnv(bytes: Uint8Array): string {
  let h = 0x811c9dc5;
  for (let i = 0; i < bytes.length; i++) h = Math.imul(h ^ bytes[i]!, 0x01000193);
  return (h >>> 0).toString(16).padStart(8, "0");
}

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

const selections = new WeakMap<MeshService, MeshWorkload[]>();

/** What selecting workloads is made of: the workloads (frozen; those of unchanged manifests are
 * the same objects across reloads, so their keys stand for content), once per mesh. */
const workloadSigs = new WeakMap<Mesh, string>();
function workloadSig(mesh: Mesh): string {
  let sig = workloadSigs.get(mesh);
  if (sig === undefined) workloadSigs.set(mesh, sig = mesh.workloads.map(workloadKey).join(","));
  return sig;
}

/** Selections of the last mesh by selector, reused while the workloads are the same: a reload
 * that changed routes only does not select 10 000 workloads again. */
let lastSelections: { sig: string; bySelector: Map<string, MeshWorkload[]> } = {
  sig: "",
  bySelector: new Map(),
};

function selectorKey(s: MeshService): string {
  return s.selector
    ? `s|${s.namespace}|${key(s.selector)}`
    : `e|${key([...s.endpointIps ?? []].sort())}`;
}

/** The service's workloads: by label selector in its namespace (through the label index), or the
 * addresses of its EndpointSlices. */
function selected(mesh: Mesh, s: MeshService): MeshWorkload[] {
  let out = selections.get(s);
  if (out) return out;
  const sig = workloadSig(mesh);
  if (lastSelections.sig !== sig) lastSelections = { sig, bySelector: new Map() };
  const sk = selectorKey(s);
  out = lastSelections.bySelector.get(sk);
  if (out) {
    selections.set(s, out);
    return out;
  }
  out = select(mesh, s);
  lastSelections.bySelector.set(sk, out);
  selections.set(s, out);
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

const IPV4 = /^(\d{1,3})\.(\d{1,3})\.(\d{1,3})\.(\d{1,3})$/;

function ipBytes(ip: string): Uint8Array {
  const m = IPV4.exec(ip);
  if (m) return new Uint8Array([+m[1]!, +m[2]!, +m[3]!, +m[4]!]);
  return parseIp(ip)?.bytes ?? new Uint8Array();
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

/** google.protobuf.Struct{fields = 1: map<string, Value{string_value = 3, struct_value = 5}>}
 * of string leaves and nested string maps. */
function writeStruct(
  wr: BinaryWriter,
  o: Readonly<Record<string, string | Record<string, string>>>,
) {
  for (const [k, v] of Object.entries(o)) {
    wr.tag(1, WireType.LengthDelimited).fork();
    wr.tag(1, WireType.LengthDelimited).string(k);
    wr.tag(2, WireType.LengthDelimited).fork();
    if (typeof v === "string") wr.tag(3, WireType.LengthDelimited).string(v);
    else {
      wr.tag(5, WireType.LengthDelimited).fork();
      writeStruct(wr, v);
      wr.join();
    }
    wr.join();
    wr.join();
  }
}

/** LbEndpoint{endpoint = 1: Endpoint{address = 1: Address{socket_address = 1:
 * SocketAddress{address = 2, port_value = 3}}}, metadata = 3: Metadata{filter_metadata = 1:
 * map<string, Struct>}} written field by field (protobuf-es spends most of its time on the
 * Struct); equality-tested against protobuf-es in build_test.ts. */
export function lbEndpointBytes(mesh: Mesh, w: MeshWorkload, targetPort: number): Uint8Array {
  const wr = new BinaryWriter();
  wr.tag(1, WireType.LengthDelimited).fork(); // endpoint
  wr.tag(1, WireType.LengthDelimited).fork(); // address
  wr.tag(1, WireType.LengthDelimited).fork(); // socket_address
  wr.tag(2, WireType.LengthDelimited).string(w.address);
  wr.tag(3, WireType.Varint).uint32(targetPort);
  wr.join().join().join();
  wr.tag(3, WireType.LengthDelimited).fork(); // metadata
  wr.tag(1, WireType.LengthDelimited).fork(); // filter_metadata entry
  wr.tag(1, WireType.LengthDelimited).string("weft");
  wr.tag(2, WireType.LengthDelimited).fork();
  writeStruct(wr, {
    workload: w.name,
    namespace: w.namespace,
    node: w.node,
    ...(w.hbone ? { hbone: `${w.address}:${mesh.hbonePort}` } : {}),
    identity: w.identity,
    labels: { ...w.labels },
  });
  wr.join().join().join();
  return wr.finish();
}

/** ClusterLoadAssignment{cluster_name = 1, endpoints = 2: LocalityLbEndpoints{locality = 1 (empty:
 * gRPC clients skip localities without a weight), lb_endpoints = 2, load_balancing_weight = 3}},
 * assembled from the cached LbEndpoint bytes. */
function assignment(
  mesh: Mesh,
  s: MeshService,
  name: string,
  targetPort: number,
  subset?: Record<string, string>,
): Any {
  const eps = selected(mesh, s).filter((w) => !subset || matches(w.labels, subset));
  const wr = new BinaryWriter();
  wr.tag(1, WireType.LengthDelimited).string(name);
  wr.tag(2, WireType.LengthDelimited).fork();
  wr.tag(1, WireType.LengthDelimited).bytes(new Uint8Array());
  for (const w of eps) wr.tag(2, WireType.LengthDelimited).bytes(lbEndpoint(mesh, w, targetPort));
  wr.tag(3, WireType.LengthDelimited).fork().tag(1, WireType.Varint).uint32(1).join();
  wr.join();
  return create(AnySchema, { typeUrl: ENDPOINT, value: wr.finish() });
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

type PortLists = Record<string, { ports: { servicePort: number; targetPort: number }[] }>;

/** workload → {"namespace/hostname" → ports} for every service selecting it (istiod's
 * Workload.services map), built once per mesh from each service's selection. */
function servicesByWorkload(mesh: Mesh): Map<MeshWorkload, PortLists> {
  const out = new Map<MeshWorkload, PortLists>();
  for (const s of mesh.services) {
    const ports = s.ports.map((p) => ({ servicePort: p.port, targetPort: p.targetPort }));
    for (const w of selected(mesh, s)) {
      let m = out.get(w);
      if (!m) out.set(w, m = {});
      m[`${s.namespace}/${s.hostname}`] = { ports };
    }
  }
  return out;
}

export function workloadUid(mesh: Mesh, w: MeshWorkload): string {
  return `${mesh.trustDomain}//Pod/${w.namespace}/${w.name}`;
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

/** istio.workload.Address{workload = 1: Workload} written field by field (10 000 of them per
 * mesh: ~2x faster than building messages): name 1, namespace 2, addresses 3, tunnel_protocol 5,
 * trust_domain 6, service_account 7, node 9, canonical_name 10, canonical_revision 11,
 * workload_name 13, authorization_policies 16, uid 20, services 22 (map<string, PortList{ports
 * 1: Port{service_port 1, target_port 2}}>). Proto3 defaults are left out, as protobuf-es does. */
export function workloadAddressBytes(
  mesh: Mesh,
  w: MeshWorkload,
  services: PortLists,
  policies: readonly string[],
): Uint8Array {
  const wr = new BinaryWriter();
  const str = (field: number, v: string): void => {
    if (v !== "") wr.tag(field, WireType.LengthDelimited).string(v);
  };
  wr.tag(1, WireType.LengthDelimited).fork();
  str(1, w.name);
  str(2, w.namespace);
  wr.tag(3, WireType.LengthDelimited).bytes(ipBytes(w.address));
  if (w.hbone) wr.tag(5, WireType.Varint).int32(1); // HBONE
  str(6, mesh.trustDomain);
  str(7, w.serviceAccount);
  str(9, w.node);
  str(10, w.labels["app"] ?? w.name);
  str(11, w.labels["version"] ?? "");
  str(13, w.name);
  for (const p of policies) wr.tag(16, WireType.LengthDelimited).string(p);
  str(20, workloadUid(mesh, w));
  for (const [k, list] of Object.entries(services)) {
    wr.tag(22, WireType.LengthDelimited).fork();
    wr.tag(1, WireType.LengthDelimited).string(k);
    wr.tag(2, WireType.LengthDelimited).fork();
    for (const port of list.ports) {
      wr.tag(1, WireType.LengthDelimited).fork();
      if (port.servicePort) wr.tag(1, WireType.Varint).uint32(port.servicePort);
      if (port.targetPort) wr.tag(2, WireType.Varint).uint32(port.targetPort);
      wr.join();
    }
    wr.join();
    wr.join();
  }
  wr.join();
  return wr.finish();
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

const serviceKey = (s: MeshService, hbonePort: number): string =>
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
    hbonePort,
  ]);

function buildShared(mesh: Mesh, prev?: NodeResources): NodeResources {
  const out = new Map<string, Map<string, Built>>(
    [CLUSTER, ENDPOINT, LISTENER, ROUTE, EXTENSION_CONFIG, AUTHORIZATION, ADDRESS].map((t) => [
      t,
      new Map(),
    ]),
  );
  /** `k` names everything the resource is made of; same key as before → same bytes. */
  const put = (t: string, name: string, k: string, make: () => Any): void => {
    const old = prev?.get(t)?.get(name);
    if (old && old.key === k) {
      out.get(t)!.set(name, old);
      return;
    }
    const any = make();
    out.get(t)!.set(name, { version: fnv(any.value), any, key: k });
  };

  for (const s of mesh.services) {
    const eps = endpointsKey(selected(mesh, s));
    const svcKey = serviceKey(s, mesh.hbonePort);
    for (const p of s.ports) {
      for (const sub of [undefined, ...s.subsets]) {
        const name = clusterName(s, p.port, sub?.name);
        put(ENDPOINT, name, `${key([p.targetPort, sub ?? null, mesh.hbonePort])}${eps}`, () => {
          return assignment(mesh, s, name, p.targetPort, sub?.labels);
        });
        put(CLUSTER, name, key([s.hostname, sub]), () =>
          anyPack(
            ClusterSchema,
            create(ClusterSchema, {
              name,
              clusterDiscoveryType: { case: "type", value: Cluster_DiscoveryType.EDS },
              edsClusterConfig: {
                edsConfig: { configSourceSpecifier: { case: "ads", value: {} } },
              },
              metadata: {
                filterMetadata: {
                  weft: {
                    hostname: s.hostname,
                    subset: sub?.name ?? "",
                    labels: { ...sub?.labels },
                  },
                },
              },
            }),
          ));
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
  return out;
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
      mesh.services.map((s) => [s.name, s.namespace, s.hostname, s.vips, s.ports, selectorKey(s)]),
      mesh.authorizationPolicies.map((p) => [p.namespace, p.name, p.selector ?? null]),
      [...mesh.policyBindings].map(([w, names]) => [workloadKey(w), names]),
    ])
  }`;
}

function buildAddresses(
  mesh: Mesh,
  put: (t: string, name: string, k: string, make: () => Any) => void,
  bound: Map<MeshWorkload, string[]>,
): void {
  const svcs = servicesByWorkload(mesh);
  for (const w of mesh.workloads) {
    const services = svcs.get(w) ?? {};
    const policies = bound.get(w) ?? [];
    put(
      ADDRESS,
      workloadUid(mesh, w),
      `${workloadKey(w)}|${key([services, policies, mesh.trustDomain])}`,
      () =>
        create(AnySchema, {
          typeUrl: ADDRESS,
          value: workloadAddressBytes(mesh, w, services, policies),
        }),
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
