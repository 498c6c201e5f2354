/**
 * weft.yaml's Istio objects: `authorizationPolicies` (Kubernetes form {metadata, spec}),
 * `resources` (inline manifests) and `configDir` (a directory of multi-document YAML files), all
 * parsed by src/istio. Standalone mode takes AuthorizationPolicy, PeerAuthentication,
 * RequestAuthentication, VirtualService, DestinationRule and WasmPlugin; workloads and services stay in weft.yaml's own
 * lists.
 */
import { readdirSync, readFileSync } from "node:fs";
import { isAbsolute, join } from "node:path";
import type { AuthorizationPolicy } from "../core/mod.ts";
import { env, logger } from "../core/mod.ts";
import type { PluginConfig } from "./config_types.ts";
import {
  type Checker,
  convertPeerAuthentication,
  type DrSubset,
  type ExtAuthzProvider,
  hostFqdn,
  type HttpRetry,
  type HttpRoute,
  isObj,
  type IstioResources,
  labelsMatch,
  loadIstioDocuments,
  parseAuthorizationPolicy,
  parseExtensionProviders,
  parseIstioObjects,
  type PullSecret,
  type RequestAuthentication,
  type SourceText,
  type WasmPlugin,
  withPullSecrets,
} from "../istio/mod.ts";

const log = logger("config");

export interface ConfigResources {
  readonly policies: readonly AuthorizationPolicy[];
  readonly requestAuthentications: readonly RequestAuthentication[];
  /** FQDN → DestinationRule subsets. */
  readonly subsets: ReadonlyMap<string, readonly DrSubset[]>;
  /** FQDN → the VirtualService's `http` routes (parsed by src/istio) and where they come from
   * (`VirtualService ns/name`), for messages. */
  readonly http: ReadonlyMap<
    string,
    { readonly routes: readonly HttpRoute[]; readonly namespace: string; readonly where: string }
  >;
  /** WasmPlugins, attached to services by `targetRefs` (Service name) or `selector` (labels
   * every endpoint of the service carries). */
  readonly wasmPlugins: readonly WasmPlugin[];
  /** A MeshConfig's `defaultHttpRetryPolicy`. */
  readonly defaultHttpRetryPolicy: HttpRetry | undefined;
  /** A MeshConfig's (or the istio ConfigMap's) ext_authz `extensionProviders`. */
  readonly extensionProviders: readonly ExtAuthzProvider[];
}

export function checkPolicies(c: Checker, v: unknown): AuthorizationPolicy[] {
  return c.list("authorizationPolicies", v).map((p, i) => {
    const saved = c.problems.context;
    c.problems.context = `${saved}authorizationPolicies[${i}].`;
    try {
      if (isObj(p) && !("spec" in p) && !("metadata" in p)) {
        c.problems.add(
          "",
          "must be an AuthorizationPolicy as Istio writes it ({metadata: {name, namespace}, " +
            "spec: {selector: {matchLabels}, action, rules}}); the flat form was removed",
        );
      }
      return parseAuthorizationPolicy(c, isObj(p) ? p : {}).policy;
    } finally {
      c.problems.context = saved;
    }
  });
}

const STANDALONE = [
  "AuthorizationPolicy",
  "PeerAuthentication",
  "RequestAuthentication",
  "VirtualService",
  "DestinationRule",
  "MeshConfig or the istio ConfigMap (defaultHttpRetryPolicy, extensionProviders)",
  "HTTPRoute (GAMMA: parentRefs a Service)",
];

function readDir(dir: string): SourceText[] {
  return readdirSync(dir).filter((f) => /\.(ya?ml|json)$/.test(f) && !f.startsWith(".")).sort()
    .map((f) => ({ file: join(dir, f), text: readFileSync(join(dir, f), "utf8") }));
}

export function checkResources(
  c: Checker,
  inline: unknown,
  configDir: unknown,
  baseDir: string,
): ConfigResources {
  const results = [parseIstioObjects("resources", c.list("resources", inline))];
  const dir = c.optStr("configDir", configDir);
  if (dir !== undefined) {
    try {
      results.push(loadIstioDocuments(readDir(isAbsolute(dir) ? dir : join(baseDir, dir))));
    } catch (err) {
      c.problems.add("configDir", `cannot read: ${(err as Error).message}`);
    }
  }
  const policies: AuthorizationPolicy[] = [];
  const requestAuthentications: RequestAuthentication[] = [];
  const subsets = new Map<string, readonly DrSubset[]>();
  const http = new Map<
    string,
    { routes: readonly HttpRoute[]; namespace: string; where: string }
  >();
  const wasmPlugins: WasmPlugin[] = [];
  const pullSecrets: PullSecret[] = [];
  let defaultHttpRetryPolicy: HttpRetry | undefined;
  let extensionProviders: readonly ExtAuthzProvider[] = [];
  for (const { resources: r, problems } of results) {
    if (r.meshConfig?.extensionProviders.length) {
      extensionProviders = r.meshConfig.extensionProviders;
    }
    wasmPlugins.push(...r.wasmPlugins);
    pullSecrets.push(...r.pullSecrets);
    defaultHttpRetryPolicy = r.meshConfig?.defaultHttpRetryPolicy ?? defaultHttpRetryPolicy;
    for (const p of problems) c.problems.list.push(p);
    for (const w of r.warnings ?? []) log.warn("config warning", { warning: w });
    refuseOthers(c, r);
    policies.push(...r.authorizationPolicies.map((p) => p.policy));
    policies.push(...r.peerAuthentications.flatMap(convertPeerAuthentication));
    requestAuthentications.push(...r.requestAuthentications);
    for (const dr of r.destinationRules) {
      subsets.set(hostFqdn(dr.host, dr.meta.namespace), dr.subsets);
    }
    for (const vs of r.virtualServices) {
      const where = `VirtualService ${vs.meta.namespace}/${vs.meta.name}`;
      for (const h of vs.hosts) {
        http.set(hostFqdn(h, vs.meta.namespace), {
          routes: vs.http,
          namespace: vs.meta.namespace,
          where,
        });
      }
    }
  }
  return {
    policies,
    requestAuthentications,
    subsets,
    http,
    // As istiod: a WasmPlugin's imagePullSecret goes into its VM env for the node's OCI pull.
    wasmPlugins: withPullSecrets(
      wasmPlugins,
      pullSecrets,
      (warning) => log.warn("config warning", { warning }),
    ),
    defaultHttpRetryPolicy,
    extensionProviders,
  };
}

function refuseOthers(c: Checker, r: IstioResources): void {
  const others = [
    ...r.serviceEntries,
    ...r.workloadEntries,
    ...r.services,
    ...r.pods,
    ...r.endpointSlices,
  ];
  for (const o of others) {
    c.problems.add(
      `resources: ${o.kind} ${o.meta.namespace}/${o.meta.name}`,
      `standalone weft.yaml takes ${STANDALONE.join(", ")}; declare workloads, services and ` +
        "plugins in weft.yaml's own lists, or serve manifests with `weft control-plane`",
    );
  }
}

/** Whether some `spec.match` entry selects this direction (CLIENT → outbound, SERVER → inbound,
 * CLIENT_AND_SERVER → both) on one of the service's ports (no ports: any); no entry: all. */
function selects(
  p: WasmPlugin,
  direction: "inbound" | "outbound",
  ports: readonly { port: number }[],
): boolean {
  if (p.match.length === 0) return true;
  const mode = direction === "outbound" ? "CLIENT" : "SERVER";
  return p.match.some((m) =>
    (m.mode === mode || m.mode === "CLIENT_AND_SERVER") &&
    (m.ports.length === 0 || ports.some((x) => m.ports.includes(x.port)))
  );
}

/** The service's WasmPlugins as weft.yaml plugin entries: CLIENT → outbound, SERVER → inbound,
 * CLIENT_AND_SERVER (or no match) → both. */
export function wasmPluginsFor(
  svc: {
    name: string;
    namespace: string;
    ports: readonly { port: number }[];
    endpoints: readonly { labels: Readonly<Record<string, string>> }[];
  },
  plugins: readonly WasmPlugin[],
): PluginConfig[] {
  const out: PluginConfig[] = [];
  for (const p of plugins) {
    if (p.meta.namespace !== svc.namespace && p.meta.namespace !== "istio-system") continue;
    // targetRefs name a Service of the plugin's own namespace (even from the root namespace).
    const byRef = p.targetRefs.length > 0 && p.meta.namespace === svc.namespace &&
      p.targetRefs.some((t) => t.name === svc.name);
    const bySelector = p.targetRefs.length === 0 &&
      (!p.selector ||
        (svc.endpoints.length > 0 &&
          svc.endpoints.every((e) => labelsMatch(e.labels, p.selector!))));
    if (!byRef && !bySelector) continue;
    const directions = (["outbound", "inbound"] as const).filter((d) => selects(p, d, svc.ports));
    for (const direction of directions) {
      out.push({
        pluginName: p.pluginName,
        // HOST entries take weft's own variable of that name (as the weft.yaml plugin form).
        env: Object.fromEntries(
          Object.entries(p.env).flatMap(([k, v]) => {
            if (!v.startsWith("$HOST:")) return [[k, v]];
            const hv = env(k);
            return hv === undefined ? [] : [[k, hv]];
          }),
        ),
        clusters: {},
        maxMemoryBytes: undefined,
        callBudgetMs: undefined,
        bodies: "none",
        name: directions.length > 1 ? `${p.meta.name}-${direction}` : p.meta.name,
        url: p.url,
        sha256: p.sha256,
        type: p.abi,
        direction,
        phase: p.phase,
        priority: p.priority,
        failStrategy: p.failStrategy,
        pluginConfig: p.pluginConfig,
      });
    }
  }
  return out;
}

/** weft.yaml `meshConfig.extensionProviders`, or a MeshConfig document's (not both). A CUSTOM
 * policy naming none of them is logged (istiod: the workload then denies every request). */
export function meshProviders(
  c: Checker,
  v: unknown,
  extra: ConfigResources,
  policies: readonly AuthorizationPolicy[],
): readonly ExtAuthzProvider[] {
  let providers = extra.extensionProviders;
  if (v !== undefined) {
    if (providers.length > 0) {
      c.problems.add(
        "meshConfig.extensionProviders",
        "also set by a MeshConfig in resources/configDir: set them in one place",
      );
    }
    providers = parseExtensionProviders(c, "meshConfig.extensionProviders", v);
  }
  for (const p of policies) {
    if (p.action !== "CUSTOM" || providers.some((x) => x.name === p.provider)) continue;
    log.warn("config warning", {
      path: `AuthorizationPolicy ${p.namespace}/${p.name}: spec.provider.name`,
      warning: `no extension provider "${p.provider}" in meshConfig.extensionProviders: ` +
        "the workloads it selects deny every request (as istiod)",
    });
  }
  return providers;
}
