/**
 * One node's view of the mesh as xDS resources: every service as CDS/EDS/LDS/RDS (outbound is
 * mesh-wide), plugins as ECDS, the node's own workloads as Istio Address resources,
 * policies as Istio Authorization (L4) and, for HTTP services with HTTP policy conditions, as
 * Envoy RBAC on an inbound Listener per node (build_rbac.ts). Versions are content hashes, so
 * an unchanged resource keeps its version across rebuilds and is never re-pushed.
 */
import { type Any, anyPack } from "@bufbuild/protobuf/wkt";
import { IstioAuthorizationSchema, ListenerSchema, RouteConfigurationSchema } from "../proto.ts";
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
import { isHttpPolicy } from "./build_rbac.ts";
import { extAuthzFilters } from "./build_ext_authz.ts";
import type { AuthorizationPolicy } from "../../core/mod.ts";
import { requestAuthnsFor } from "../../istio/mod.ts";
import {
  clusterName,
  listenerName,
  pluginExtension,
  pluginResourceName,
  routeConfig,
} from "./build_routes.ts";
import type { Mesh, MeshService, MeshWorkload } from "./mesh.ts";
import { anyOf, assignmentBytes, edsClusterBytes, fnv, lbEndpointBytes } from "./build_wire.ts";
import { endpointsKey, key, matches, selected } from "./build_select.ts";
import {
  inboundListener,
  inboundListenerName,
  listener,
  workloadPolicies,
} from "./build_listener.ts";
import {
  addressInputs,
  addressKeys,
  buildAddresses,
  policiesByWorkload,
  tcpTargets,
} from "./build_address.ts";

export { lbEndpointBytes, workloadAddressBytes, workloadUid } from "./build_wire.ts";
export { inboundListenerName } from "./build_listener.ts";

export interface Built {
  readonly version: string;
  readonly any: Any;
  /** What the resource was built from, to reuse it unchanged on the next build. */
  readonly key?: string;
}
export type NodeResources = ReadonlyMap<string, ReadonlyMap<string, Built>>;

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
    s.defaultRetry ?? null,
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
  // A policy attached by targetRefs is enforced only here (never at L4), whatever its fields.
  const l7Only = (p: AuthorizationPolicy): boolean => p.targetServices !== undefined;
  // CUSTOM policies run in the HTTP chain only (ext_authz; ztunnel ignores them, as in Istio).
  const l7 = (p: AuthorizationPolicy): boolean =>
    isHttpPolicy(p) || l7Only(p) || p.action === "CUSTOM";
  const anyHttp = mesh.authorizationPolicies.some(l7);
  const byNamespace = new Map<string, AuthorizationPolicy[]>();
  const byId = new Map<string, AuthorizationPolicy>();
  for (const p of anyHttp ? mesh.authorizationPolicies : []) {
    byId.set(`${p.namespace}/${p.name}`, p);
    const list = byNamespace.get(p.namespace);
    if (list) list.push(p);
    else byNamespace.set(p.namespace, [p]);
  }
  // RequestAuthentication: a jwt_authn filter on the same inbound listener (istiod's order).
  const anyJwt = mesh.requestAuthentications.length > 0;
  for (const s of anyHttp || anyJwt ? mesh.services : []) {
    const http = s.ports.find((p) => p.protocol !== "TCP");
    if (!http) continue;
    const byNode = new Map<string, Map<string, AuthorizationPolicy>>();
    const onNode = new Map<string, MeshWorkload[]>();
    for (const w of selected(mesh, s)) {
      if (!w.node) continue;
      let m = byNode.get(w.node);
      if (!m) byNode.set(w.node, m = new Map());
      const ws = onNode.get(w.node);
      if (ws) ws.push(w);
      else onNode.set(w.node, [w]);
      for (const p of workloadPolicies(mesh, byNamespace, byId, w, bound())) {
        m.set(`${p.namespace}/${p.name}`, p);
      }
      for (const p of byNamespace.get(s.namespace) ?? []) {
        if (p.targetServices?.includes(s.name)) m.set(`${p.namespace}/${p.name}`, p);
      }
    }
    for (const [node, m] of byNode) {
      const policies = [...m.values()];
      const jwtRules = anyJwt
        ? requestAuthnsFor(mesh.requestAuthentications, s, onNode.get(node)!, mesh.rootNamespace)
          .flatMap((ra) => ra.jwtRules)
        : [];
      if (!policies.some(l7) && jwtRules.length === 0) continue;
      const ext = policies.some((p) => p.action === "CUSTOM")
        ? extAuthzFilters(mesh, policies)
        : [];
      idx.inbound.push(inboundListenerName(s, node));
      put(
        LISTENER,
        inboundListenerName(s, node),
        key([s.hostname, s.name, s.namespace, http.targetPort, policies, ext, jwtRules]),
        () => anyPack(ListenerSchema, inboundListener(s, node, http, policies, ext, jwtRules)),
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
    if (p.action === "CUSTOM") continue;
    if (l7Only(p) && tcpTargets(mesh, p).length === 0) continue;
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
