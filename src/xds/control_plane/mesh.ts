/**
 * The control plane's mesh: Kubernetes-style manifests (src/istio parses and validates them)
 * compiled into the per-service, per-workload form the xDS builders read. Workloads come from
 * Pods (node = spec.nodeName), WorkloadEntries and ServiceEntry endpoints; services from
 * Kubernetes Services and ServiceEntries, with DestinationRule subsets, VirtualService routes and
 * WasmPlugins attached by host; PeerAuthentication STRICT becomes a DENY policy for plaintext
 * peers, as istiod converts it for ztunnel.
 */
import type { AuthorizationPolicy, GatewayAddress } from "../../core/mod.ts";
import { spiffeId, WeftError } from "../../core/mod.ts";
import { peerAuthnPolicies } from "./peer_authn.ts";
import {
  deepFreeze,
  type DocumentCache,
  type ExtAuthzProvider,
  hostFqdn,
  type HttpFault,
  type HttpMatch,
  type HttpRetry,
  type HttpRoute,
  type IstioResources,
  labelsMatch,
  loadIstioDocuments,
  type RequestAuthentication,
  type SourceText,
  type VirtualService,
  type WasmPlugin,
  withPullSecrets,
} from "../../istio/mod.ts";

export interface MeshWorkload {
  readonly name: string;
  readonly namespace: string;
  readonly serviceAccount: string;
  readonly address: string;
  /** "" = not hosted by a weft node (VM workload, external endpoint). */
  readonly node: string;
  readonly labels: Readonly<Record<string, string>>;
  readonly identity: string;
  /** false: reached over plain TCP (a MESH_EXTERNAL ServiceEntry endpoint), not HBONE. */
  readonly hbone: boolean;
  /** Istio network (WorkloadEntry `network`, else the `topology.istio.io/network` label). */
  readonly network?: string;
  /** Its network's east-west gateway (Workload.network_gateway), when one is known. */
  readonly networkGateway?: GatewayAddress;
}

export interface MeshRouteDestination {
  /** FQDN of the destination service. */
  readonly host: string;
  readonly subset: string | undefined;
  readonly port: number | undefined;
  readonly weight: number;
  /** Istio `headers` of this destination (ClusterWeight header fields). */
  readonly headers?: HttpRoute["headers"];
}

export interface MeshRoute {
  /** VirtualService http[].match; empty = every request. */
  readonly match: readonly HttpMatch[];
  readonly route: readonly MeshRouteDestination[];
  readonly fault: HttpFault | undefined;
  readonly timeoutMs: number | undefined;
  readonly retries: HttpRetry | undefined;
  /** Istio `redirect` / `directResponse` (then `route` is empty). */
  readonly redirect?: HttpRoute["redirect"];
  readonly directResponse?: HttpRoute["directResponse"];
  readonly rewrite?: HttpRoute["rewrite"];
  /** Istio `headers` of the route (Route header fields). */
  readonly headers?: HttpRoute["headers"];
  /** Istio `corsPolicy` (typed_per_filter_config CorsPolicy: build_cors.ts). */
  readonly cors?: HttpRoute["cors"];
  /** Istio `mirror`/`mirrors`, hosts as FQDNs. */
  readonly mirrors?: readonly {
    readonly host: string;
    readonly subset: string | undefined;
    readonly port: number | undefined;
    readonly percent: number;
  }[];
  /** 500 for a Gateway API route (an invalid backendRef's share); absent = Envoy's 503. */
  readonly clusterNotFoundStatus?: 500;
}

export interface MeshPlugin {
  readonly name: string;
  /** Istio's `pluginName` (root id); defaults to the WasmPlugin's name. */
  readonly pluginName: string;
  /** vmConfig.env: value, or `$HOST:<name>` for valueFrom HOST. */
  readonly env: Readonly<Record<string, string>>;
  readonly url: string;
  readonly sha256: string | undefined;
  readonly type: "component" | "proxy-wasm";
  readonly phase: "AUTHN" | "AUTHZ" | "STATS" | "UNSPECIFIED";
  readonly priority: number;
  readonly failStrategy: "FAIL_CLOSE" | "FAIL_OPEN";
  readonly pluginConfig: unknown;
}

export interface MeshService {
  readonly name: string;
  readonly namespace: string;
  readonly hostname: string;
  readonly vips: readonly string[];
  readonly ports: readonly { port: number; targetPort: number; protocol: string; name: string }[];
  /** Endpoints: workloads with these labels in the namespace, or (selector-less Services) the
   * addresses of its EndpointSlices. */
  readonly selector: Readonly<Record<string, string>> | undefined;
  readonly endpointIps: ReadonlySet<string> | undefined;
  readonly subsets: readonly { name: string; labels: Readonly<Record<string, string>> }[];
  readonly http: readonly MeshRoute[];
  /** VirtualService `tcp` (first route whose match fits the port; weighted destinations). */
  readonly tcp: readonly {
    readonly port: number | undefined;
    readonly route: readonly MeshRouteDestination[];
  }[];
  readonly plugins: readonly MeshPlugin[];
  /** MeshConfig `defaultHttpRetryPolicy`: the retries of routes that set none (undefined =
   * Istio's built-in default); build_routes.ts emits what applies on every route. */
  readonly defaultRetry?: HttpRetry | undefined;
  /** ServiceEntry `subjectAltNames`: sent as the WDS Service's `subject_alt_names`. */
  readonly subjectAltNames?: readonly string[];
}

export interface Mesh {
  readonly trustDomain: string;
  readonly rootNamespace: string;
  readonly hbonePort: number;
  /** SPIFFE id of node agents, which request certificates for the workloads of their node. */
  readonly nodeAgentIdentity: string;
  /** SHA-256 (hex) of each node's bearer token for the CA service. */
  readonly nodeTokens: Readonly<Record<string, string>>;
  readonly workloads: readonly MeshWorkload[];
  readonly services: readonly MeshService[];
  readonly authorizationPolicies: readonly AuthorizationPolicy[];
  /** RequestAuthentications: a jwt_authn filter on the inbound listener of the HTTP services
   * whose workloads they select (build_listener.ts). */
  readonly requestAuthentications: readonly RequestAuthentication[];
  /** MeshConfig `extensionProviders` (ext_authz) that CUSTOM policies name. */
  readonly extensionProviders: readonly ExtAuthzProvider[];
  /** Policies bound to workloads by name (converted PeerAuthentications), beyond selectors. */
  readonly policyBindings: ReadonlyMap<MeshWorkload, readonly string[]>;
  /** Objects per kind, for the load log ("never silently empty"). */
  readonly counts: Readonly<Record<string, number>>;
  /** Valid but inert config (a VirtualService for an unknown host, ...), logged on load. */
  readonly warnings: readonly string[];
}

/** Istio's cluster domain suffix (not the trust domain). */
const DOMAIN = "svc.cluster.local";

/** Files' texts → Mesh; every problem of every file in one WeftError. */
export function parseMeshSources(sources: readonly SourceText[], cache?: DocumentCache): Mesh {
  const { resources, problems } = loadIstioDocuments(sources, cache);
  if (problems.length > 0) throw meshError(problems);
  return meshFromResources(resources);
}

/** One file's text (tests, `--config FILE`). */
export function parseMesh(text: string, file = "mesh.yaml"): Mesh {
  return parseMeshSources([{ file, text }]);
}

function meshError(problems: readonly string[]): WeftError {
  const shown = problems.slice(0, 200);
  const more = problems.length > shown.length ? [`... and ${problems.length - 200} more`] : [];
  return new WeftError(
    "mesh_invalid",
    `Cannot load mesh: ${problems.length} problem(s):\n  ${[...shown, ...more].join("\n  ")}`,
  );
}

export function meshFromResources(given: IstioResources): Mesh {
  const warnings: string[] = [...(given.warnings ?? [])];
  // As istiod: a WasmPlugin's imagePullSecret travels in its VM env over ECDS.
  const r = given.wasmPlugins.some((p) => p.imagePullSecret)
    ? {
      ...given,
      wasmPlugins: withPullSecrets(given.wasmPlugins, given.pullSecrets, (w) => warnings.push(w)),
    }
    : given;
  const mc = r.meshConfig;
  const td = mc?.trustDomain ?? "cluster.local";
  const rootNamespace = mc?.rootNamespace ?? "istio-system";
  const problems: string[] = [];
  const workloads = collectWorkloads(r, td);
  const services = collectServices(r, workloads, td, problems, warnings);
  for (const p of r.wasmPlugins) {
    if (p.match.some((m) => m.mode === "SERVER")) {
      problems.push(
        `WasmPlugin ${p.meta.namespace}/${p.meta.name}: spec.match[].mode: SERVER plugins are ` +
          "not supported by weft's control plane (it serves client-side chains); use CLIENT",
      );
    }
  }
  for (const p of r.authorizationPolicies) {
    p.policy.rules.forEach((rule, i) =>
      (rule.when ?? []).forEach((c, j) => {
        // build_rbac.ts carries claim paths as metadata path keys; a name holding a bracket has
        // no single reading (istiod's extractNameInNestedBrackets and the plugin's differ).
        if (
          c.key.startsWith("request.auth.claims") &&
          !/^request\.auth\.claims(\[[^[\]]+\])+$/.test(c.key)
        ) {
          problems.push(
            `AuthorizationPolicy ${p.meta.namespace}/${p.meta.name}: spec.rules[${i}].when[${j}]` +
              `.key: "${c.key}": a claim name with "[" is not served over xDS by weft's control ` +
              "plane (weft.yaml nodes enforce it)",
          );
        }
      })
    );
  }
  if (problems.length > 0) throw meshError(problems);
  const peer = peerAuthnPolicies(r.peerAuthentications, workloads, rootNamespace);
  const counts: Record<string, number> = {};
  for (const [k, v] of Object.entries(r)) if (Array.isArray(v)) counts[k] = v.length;
  // Every workload and service is frozen (most are reused from the last load); the lists holding
  // them are new per load and only typed readonly: freezing a 10 000-element array makes
  // JavaScriptCore (Bun) copy its storage, ~8 ms per reload.
  for (const s of services) deepFreeze(s);
  for (const w of workloads) deepFreeze(w);
  return Object.freeze({
    trustDomain: td,
    rootNamespace,
    hbonePort: mc?.hbonePort ?? 15008,
    nodeAgentIdentity: spiffeId(td, rootNamespace, mc?.nodeAgentServiceAccount ?? "weft-node"),
    nodeTokens: deepFreeze({ ...mc?.nodeTokens }),
    workloads,
    services,
    authorizationPolicies: deepFreeze([
      ...r.authorizationPolicies.map((p) => p.policy),
      ...peer.policies,
    ]),
    extensionProviders: mc?.extensionProviders ?? [],
    policyBindings: peer.bindings,
    requestAuthentications: r.requestAuthentications ?? [],
    counts: Object.freeze(counts),
    warnings: Object.freeze(warnings),
  });
}

/** Pods and WorkloadEntries of unchanged files are the same (frozen) objects across reloads; so
 * are the workloads made from them, which lets the xDS build reuse their resources cheaply. */
const madeFrom = new WeakMap<object, { td: string; gw: string; w: MeshWorkload }>();

/** istiod's label naming a workload's (or a gateway Service's) network. */
export const NETWORK_LABEL = "topology.istio.io/network";

/** Each network's east-west gateway: a Service labelled with its network that has the HBONE port
 * 15008, at its first address (the first such Service of a network wins). */
export function networkGateways(r: IstioResources): Map<string, GatewayAddress> {
  const out = new Map<string, GatewayAddress>();
  for (const s of r.services) {
    const net = s.meta.labels[NETWORK_LABEL];
    const ip = s.clusterIps[0];
    if (!net || !ip || out.has(net) || !s.ports.some((p) => p.port === 15008)) continue;
    out.set(net, { destination: { kind: "address", network: net, ip }, hboneMtlsPort: 15008 });
  }
  return out;
}

function collectWorkloads(r: IstioResources, td: string): MeshWorkload[] {
  const out: MeshWorkload[] = [];
  const gateways = networkGateways(r);
  let source: object = {};
  const add = (
    name: string,
    namespace: string,
    sa: string,
    address: string,
    node: string,
    labels: Readonly<Record<string, string>>,
    network = labels[NETWORK_LABEL] ?? "",
  ): void => {
    const gateway = network ? gateways.get(network) : undefined;
    // Reuse a workload only while its gateway is the same (a gateway Service edit rebuilds it).
    const gw = gateway ? JSON.stringify(gateway) : "";
    const old = madeFrom.get(source);
    if (old?.td === td && old.gw === gw) {
      out.push(old.w);
      return;
    }
    const identity = spiffeId(td, namespace, sa);
    const w = Object.freeze({
      name,
      namespace,
      serviceAccount: sa,
      address,
      node,
      labels,
      identity,
      hbone: true,
      ...(network ? { network } : {}),
      ...(gateway ? { networkGateway: gateway } : {}),
    });
    madeFrom.set(source, { td, gw, w });
    out.push(w);
  };
  for (const p of r.pods) {
    source = p;
    if (p.podIp) {
      add(p.meta.name, p.meta.namespace, p.serviceAccount, p.podIp, p.nodeName, p.meta.labels);
    }
  }
  for (const w of r.workloadEntries) {
    source = w;
    const labels = Object.freeze({ ...w.meta.labels, ...w.spec.labels });
    add(
      w.meta.name,
      w.meta.namespace,
      w.spec.serviceAccount,
      w.spec.address,
      labels["weft.dev/node"] ?? "",
      labels,
      w.spec.network || labels[NETWORK_LABEL] || "",
    );
  }
  return out;
}

function collectServices(
  r: IstioResources,
  workloads: MeshWorkload[],
  td: string,
  problems: string[],
  warnings: string[],
): MeshService[] {
  let gateways: Map<string, GatewayAddress> | undefined;
  const slices = new Map<string, Set<string>>();
  for (const s of r.endpointSlices) {
    const key = `${s.meta.namespace}/${s.serviceName}`;
    const set = slices.get(key) ?? new Set<string>();
    for (const e of s.endpoints) if (e.ready) { for (const a of e.addresses) set.add(a); }
    slices.set(key, set);
  }
  const base: Omit<MeshService, "subsets" | "http" | "tcp" | "plugins">[] = [];
  /** What each service is made of (same objects → same service, see reuseService). */
  const from = new Map<string, unknown[]>();
  for (const s of r.services) {
    const ips = s.selector ? null : slices.get(`${s.meta.namespace}/${s.meta.name}`);
    from.set(
      `${s.meta.name}.${s.meta.namespace}.${DOMAIN}`,
      [s, ips ? [...ips].sort().join(",") : null],
    );
    base.push({
      name: s.meta.name,
      namespace: s.meta.namespace,
      hostname: `${s.meta.name}.${s.meta.namespace}.${DOMAIN}`,
      vips: s.clusterIps,
      ports: s.ports,
      selector: s.selector,
      endpointIps: s.selector
        ? undefined
        : slices.get(`${s.meta.namespace}/${s.meta.name}`) ?? new Set(),
    });
  }
  for (const se of r.serviceEntries) {
    const selector = se.workloadSelector ?? { "weft.dev/serviceentry": se.meta.name };
    se.endpoints.forEach((e, i) => {
      const network = e.network || e.labels[NETWORK_LABEL] || "";
      const gateway = network ? (gateways ??= networkGateways(r)).get(network) : undefined;
      workloads.push({
        name: `${se.meta.name}-${i}`,
        namespace: se.meta.namespace,
        serviceAccount: e.serviceAccount,
        address: e.address,
        node: e.labels["weft.dev/node"] ?? "",
        labels: { ...e.labels, ...selector },
        identity: spiffeId(td, se.meta.namespace, e.serviceAccount),
        hbone: se.location === "MESH_INTERNAL",
        ...(network ? { network } : {}),
        ...(gateway ? { networkGateway: gateway } : {}),
      });
    });
    for (const host of se.hosts) {
      from.set(host, [se]);
      base.push({
        name: se.meta.name,
        namespace: se.meta.namespace,
        hostname: host,
        vips: se.addresses,
        ports: se.ports,
        selector,
        endpointIps: undefined,
        ...(se.subjectAltNames.length > 0 ? { subjectAltNames: se.subjectAltNames } : {}),
      });
    }
  }
  const byHost = new Map(base.map((s) => [s.hostname, s]));
  const subsets = new Map<string, MeshService["subsets"]>();
  for (const dr of r.destinationRules) {
    const host = hostFqdn(dr.host, dr.meta.namespace);
    const where = `DestinationRule ${dr.meta.namespace}/${dr.meta.name}`;
    if (!byHost.has(host)) {
      warnings.push(`${where}: host ${host} matches no Service or ServiceEntry`);
    } else if (subsets.has(host)) {
      warnings.push(`${where}: ${host} already has a DestinationRule; ignored`);
    } else subsets.set(host, dr.subsets);
  }
  const routes = new Map<string, VirtualService>();
  for (const vs of r.virtualServices) {
    for (const h of vs.hosts) {
      const host = hostFqdn(h, vs.meta.namespace);
      const where = `VirtualService ${vs.meta.namespace}/${vs.meta.name}`;
      if (!byHost.has(host)) {
        warnings.push(`${where}: host ${host} matches no Service or ServiceEntry`);
      } else if (routes.has(host)) {
        warnings.push(
          `${where}: ${host} is already routed by ${
            routes.get(host)!.meta.name
          }; ignored (as Istio: the first wins)`,
        );
      } else routes.set(host, vs);
    }
  }
  const next = new Map<string, { inputs: unknown[]; service: MeshService }>();
  const out = base.map((s) => {
    const vs = routes.get(s.hostname);
    // Routes are checked against the other services on every load, reused or not.
    const http = vs ? httpRoutes(vs, subsets, byHost, problems, warnings) : [];
    const tcp = vs ? tcpRoutes(vs, subsets, byHost, problems) : [];
    const plugins = r.wasmPlugins.filter((p) => pluginApplies(p, s));
    const defaultRetry = r.meshConfig?.defaultHttpRetryPolicy;
    const inputs = [
      ...from.get(s.hostname)!,
      vs,
      subsets.get(s.hostname),
      defaultRetry,
      ...plugins,
    ];
    return reuseService(next, s.hostname, inputs, () => ({
      ...s,
      subsets: subsets.get(s.hostname) ?? [],
      http,
      tcp,
      plugins: plugins.map(meshPlugin),
      ...(defaultRetry ? { defaultRetry } : {}),
    }));
  });
  lastServices = next;
  return out;
}

/** The services of the last mesh by hostname, with the objects each was made of. */
let lastServices = new Map<string, { inputs: unknown[]; service: MeshService }>();

/** Objects of unchanged manifests are the same frozen objects across reloads (the per-file
 * cache), so a service made of the same Service/ServiceEntry, VirtualService, DestinationRule
 * subsets and WasmPlugins is the same as last time: reusing the object lets the xDS build
 * recognise it by identity instead of comparing its content (an edit costs what it touches). */
function reuseService(
  next: Map<string, { inputs: unknown[]; service: MeshService }>,
  hostname: string,
  inputs: unknown[],
  make: () => MeshService,
): MeshService {
  const old = lastServices.get(hostname);
  const same = old !== undefined && old.inputs.length === inputs.length &&
    old.inputs.every((x, i) => x === inputs[i]);
  const service = same ? old.service : make();
  next.set(hostname, { inputs, service });
  return service;
}

function destinationsOf(
  vs: VirtualService,
  where: string,
  route: VirtualService["http"][number]["route"],
  subsets: ReadonlyMap<string, MeshService["subsets"]>,
  byHost: ReadonlyMap<string, unknown>,
  problems: string[],
  subsetIssues: string[] = problems,
  hostIssues: string[] = problems,
): MeshRouteDestination[] {
  return route.map((d, j) => {
    const host = hostFqdn(d.destination.host, vs.meta.namespace);
    const path =
      `VirtualService ${vs.meta.namespace}/${vs.meta.name}: ${where}.route[${j}].destination`;
    if (!byHost.has(host)) {
      hostIssues.push(
        `${path}.host: ${host} matches no Service or ServiceEntry` +
          (hostIssues === problems ? "" : "; its share of requests gets 500 (invalid backend)"),
      );
    }
    const sub = d.destination.subset;
    if (sub !== undefined && !(subsets.get(host) ?? []).some((s) => s.name === sub)) {
      subsetIssues.push(
        `${path}.subset: "${sub}" is not a subset of ${host} in any DestinationRule` +
          (subsetIssues === problems ? "" : "; its share of requests gets 503 (no cluster)"),
      );
    }
    return {
      host,
      subset: sub,
      port: d.destination.port,
      weight: d.weight,
      ...(d.headers ? { headers: d.headers } : {}),
    };
  });
}

function tcpRoutes(
  vs: VirtualService,
  subsets: ReadonlyMap<string, MeshService["subsets"]>,
  byHost: ReadonlyMap<string, unknown>,
  problems: string[],
): MeshService["tcp"] {
  return vs.tcp.flatMap((t, i) => {
    const route = destinationsOf(vs, `spec.tcp[${i}]`, t.route, subsets, byHost, problems);
    const ports = t.match.length ? t.match.map((m) => m.port) : [undefined];
    return ports.map((port) => ({ port, route }));
  });
}

/** The http routes as istiod builds them for a waypoint (pilot/pkg/networking/core
 * listener_waypoint.go `waypointInboundRoute`): a match block with sourceLabels is dropped, as
 * "source label matching is not supported in ambient mode" (istio/istio#51565), and a route
 * whose blocks all had them is dropped. weft's route tables are shared by every node, as a
 * waypoint's by every source; weft.yaml nodes build them per source instead, as for sidecars.
 * Each kept route keeps its index for the paths of later messages. */
function sourceFree(vs: VirtualService, warnings: string[]): [HttpRoute, number][] {
  const out: [HttpRoute, number][] = [];
  vs.http.forEach((h, i) => {
    const match = h.match.filter((m, j) => {
      if (!m.sourceLabels || Object.keys(m.sourceLabels).length === 0) return true;
      warnings.push(
        `VirtualService ${vs.meta.namespace}/${vs.meta.name}: spec.http[${i}].match[${j}]` +
          ".sourceLabels: this match is dropped, as istiod drops it from waypoint routes " +
          "(source labels are not supported in ambient mode, istio/istio#51565); weft.yaml " +
          "nodes apply it per source",
      );
      return false;
    });
    if (h.match.length > 0 && match.length === 0) return;
    out.push([match.length === h.match.length ? h : { ...h, match }, i]);
  });
  return out;
}

function httpRoutes(
  vs: VirtualService,
  subsets: ReadonlyMap<string, MeshService["subsets"]>,
  byHost: ReadonlyMap<string, unknown>,
  problems: string[],
  warnings: string[],
): MeshRoute[] {
  return sourceFree(vs, warnings).map(([h, i]) => ({
    match: h.match,
    fault: h.fault,
    timeoutMs: h.timeoutMs,
    retries: h.retries,
    ...(h.redirect ? { redirect: h.redirect } : {}),
    ...(h.directResponse ? { directResponse: h.directResponse } : {}),
    ...(h.rewrite ? { rewrite: h.rewrite } : {}),
    ...(h.headers ? { headers: h.headers } : {}),
    ...(h.cors ? { cors: h.cors } : {}),
    ...(h.mirrors
      ? {
        mirrors: destinationsOf(
          vs,
          `spec.http[${i}].mirror`,
          h.mirrors.map((m) => ({ destination: m.destination, weight: 0 })),
          subsets,
          byHost,
          problems,
        ).map((d, j) => ({ ...d, percent: h.mirrors![j]!.percent })),
      }
      : {}),
    // As Istio: an undefined subset is accepted (istioctl analyze warns) and points at a cluster
    // no node has, so its share answers 503 NC at request time.
    // Gateway API (S19): a backendRef to a Service that does not exist is accepted (status
    // ResolvedRefs=False, BackendNotFound) and the share that would go to it gets 500.
    ...(h.clusterNotFoundStatus ? { clusterNotFoundStatus: h.clusterNotFoundStatus } : {}),
    route: destinationsOf(
      vs,
      `spec.http[${i}]`,
      h.route,
      subsets,
      byHost,
      problems,
      warnings,
      h.clusterNotFoundStatus ? warnings : problems,
    ),
  }));
}

function pluginApplies(
  p: WasmPlugin,
  s: Omit<MeshService, "subsets" | "http" | "tcp" | "plugins">,
): boolean {
  if (p.targetRefs.length > 0) {
    return p.meta.namespace === s.namespace && p.targetRefs.some((t) => t.name === s.name);
  }
  if (p.meta.namespace !== s.namespace && p.meta.namespace !== "istio-system") return false;
  return !p.selector || (s.selector !== undefined && labelsMatch(s.selector, p.selector));
}

function meshPlugin(p: WasmPlugin): MeshPlugin {
  return {
    name: p.meta.name,
    pluginName: p.pluginName,
    env: p.env,
    url: p.url,
    sha256: p.sha256,
    type: p.abi,
    phase: p.phase,
    priority: p.priority,
    failStrategy: p.failStrategy === "FAIL_OPEN" ? "FAIL_OPEN" : "FAIL_CLOSE",
    pluginConfig: p.pluginConfig,
  };
}
