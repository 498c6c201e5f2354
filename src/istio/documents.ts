/**
 * Multi-document YAML (or JSON) files of Kubernetes-style objects → validated IstioResources.
 * Every problem names its file, document index, kind and namespace/name, and the field path:
 * `mesh.yaml#3 VirtualService default/reviews: spec.http[0].fault.abort.percent: ...`.
 */
// js-yaml (YAML 1.2 core schema, no timestamps) parses ~10x faster than the `yaml` package on
// big manifest sets (2 MB of Pods: ~0.45 s against ~5 s here), and caps aliases.
import { loadAll } from "js-yaml";
import { Checker, deepFreeze, isObj, Problems, type Raw } from "./check.ts";
import { DNS_NAME, meta } from "./meta.ts";
import { parseAuthorizationPolicy, parsePeerAuthentication } from "./security.ts";
import { parseRequestAuthentication } from "./request_authn.ts";
import { parseHttpRetry, parseVirtualService } from "./virtual_service.ts";
import { gatewayVirtualServices, parseGatewayHttpRoute } from "./http_route.ts";
import { parseDestinationRule, parseServiceEntry, parseWorkloadEntry } from "./destination.ts";
import { parseWasmPlugin } from "./wasm_plugin.ts";
import { parseExtensionProviders } from "./ext_authz.ts";
import { parseMeshConfigMap } from "./mesh_configmap.ts";
import { parsePullSecret } from "./pull_secret.ts";
import { parseEndpointSlice, parsePod, parseService } from "./kube.ts";
import type { IstioObject, IstioResources, MeshConfig } from "./types.ts";
import { mergeDelegates } from "./delegate.ts";

type Parser = (c: Checker, doc: Raw) => IstioObject;

/** kind → [accepted apiVersions, parser]. */
const KINDS: Record<string, readonly [readonly string[], Parser]> = {
  AuthorizationPolicy: [
    ["security.istio.io/v1", "security.istio.io/v1beta1"],
    parseAuthorizationPolicy,
  ],
  PeerAuthentication: [
    ["security.istio.io/v1", "security.istio.io/v1beta1"],
    parsePeerAuthentication,
  ],
  RequestAuthentication: [
    ["security.istio.io/v1", "security.istio.io/v1beta1"],
    parseRequestAuthentication,
  ],
  VirtualService: [NET(), parseVirtualService],
  DestinationRule: [NET(), parseDestinationRule],
  ServiceEntry: [NET(), parseServiceEntry],
  WorkloadEntry: [NET(), parseWorkloadEntry],
  WasmPlugin: [["extensions.istio.io/v1alpha1"], parseWasmPlugin],
  Service: [["v1"], parseService],
  Pod: [["v1"], parsePod],
  EndpointSlice: [["discovery.k8s.io/v1"], parseEndpointSlice],
  MeshConfig: [["weft.dev/v1alpha1"], parseMeshConfig],
  // Istio's own form: the `istio` ConfigMap (istio-system) with MeshConfig YAML in `data.mesh`.
  ConfigMap: [["v1"], parseMeshConfigMap],
  Secret: [["v1"], parsePullSecret],
  HTTPRoute: [
    ["gateway.networking.k8s.io/v1", "gateway.networking.k8s.io/v1beta1"],
    parseGatewayHttpRoute,
  ],
};

function NET(): string[] {
  return ["networking.istio.io/v1", "networking.istio.io/v1beta1", "networking.istio.io/v1alpha3"];
}

export const SUPPORTED_KINDS: readonly string[] = Object.keys(KINDS);

export interface LoadResult {
  readonly resources: IstioResources;
  /** Empty when every document is valid. */
  readonly problems: readonly string[];
}

/** A file's text, already read; `file` is only used in messages. */
export interface SourceText {
  readonly file: string;
  readonly text: string;
}

/** Caps that keep a hostile file from costing unbounded time or memory. */
const MAX_DOCS = 100_000;
const MAX_DEPTH = 64;

/** Parsed and validated objects of one file, reused while its text is unchanged (an edit of one
 * file re-parses only that file). */
export type DocumentCache = Map<string, FileEntry>;

interface FileEntry {
  readonly text: string;
  readonly objects: readonly IstioObject[];
  readonly problems: readonly string[];
  /** The objects by kind, and their "Kind namespace/name" (for duplicates across files). */
  readonly byKind: ReadonlyMap<string, readonly IstioObject[]>;
  readonly keys: readonly string[];
}

/** How often each "Kind namespace/name" occurs over a cache's files, kept up to date as files
 * change: a reload checks duplicates for the changed files only. */
const identityCounts = new WeakMap<DocumentCache, Map<string, number>>();

function entryOf(text: string, objects: readonly IstioObject[], problems: readonly string[]) {
  const byKind = new Map<string, IstioObject[]>();
  for (const o of objects) {
    const b = byKind.get(o.kind);
    if (b) b.push(o);
    else byKind.set(o.kind, [o]);
  }
  return { text, objects, problems, byKind, keys: objects.map(identityOf) };
}

function count(counts: Map<string, number>, keys: readonly string[], by: 1 | -1): void {
  for (const k of keys) {
    const n = (counts.get(k) ?? 0) + by;
    if (n > 0) counts.set(k, n);
    else counts.delete(k);
  }
}

export function loadIstioDocuments(
  sources: readonly SourceText[],
  cache: DocumentCache = new Map(),
): LoadResult {
  let counts = identityCounts.get(cache);
  if (!counts) identityCounts.set(cache, counts = new Map());
  const problems = new Problems();
  const entries: FileEntry[] = [];
  let total = 0;
  const seen = new Set<string>();
  for (const src of sources) {
    if (seen.has(src.file)) continue; // a file named twice (itself and its directory) counts once
    seen.add(src.file);
    let hit = cache.get(src.file);
    if (hit?.text !== src.text) {
      if (hit) count(counts, hit.keys, -1);
      const parsed = parseFile(src, MAX_DOCS - total);
      hit = entryOf(src.text, parsed.objects, parsed.problems);
      count(counts, hit.keys, 1);
      cache.set(src.file, hit);
    }
    total += hit.objects.length;
    entries.push(hit);
    problems.list.push(...hit.problems);
  }
  for (const [f, e] of cache) {
    if (!seen.has(f)) {
      count(counts, e.keys, -1);
      cache.delete(f);
    }
  }
  for (const [k, n] of counts) for (let i = 1; i < n; i++) problems.add(k, "defined twice");
  // The objects are deep-frozen per file already. The per-kind lists are new per load and only
  // typed readonly: freezing a 10 000-element array makes JavaScriptCore (Bun) copy its storage.
  return { resources: Object.freeze(resourcesOf(entries, problems)), problems: problems.list };
}

function parseFile(
  src: SourceText,
  room: number,
): { objects: IstioObject[]; problems: string[] } {
  const problems = new Problems();
  const objects: IstioObject[] = [];
  problems.context = `${src.file}: `;
  let docs: unknown[] = [];
  try {
    docs = parseText(src.text);
  } catch (err) {
    problems.add("(yaml)", String((err as Error).message ?? err).split("\n")[0]!);
  }
  if (docs.length > room) {
    problems.add("(file)", `more than ${MAX_DOCS} documents in all`);
    docs = docs.slice(0, Math.max(0, room));
  }
  docs.forEach((doc, i) => parseDoc(problems, `${src.file}#${i}`, doc, objects));
  problems.context = "";
  return { objects: deepFreeze(objects), problems: problems.list };
}

/** Parses already-decoded objects (e.g. weft.yaml's `resources:` list). */
export function parseIstioObjects(where: string, raws: readonly unknown[]): LoadResult {
  const problems = new Problems();
  const objects: IstioObject[] = [];
  raws.forEach((doc, i) => parseDoc(problems, `${where}[${i}]`, doc, objects));
  problems.context = "";
  const counts = new Map<string, number>();
  const entry = entryOf("", objects, []);
  count(counts, entry.keys, 1);
  for (const [k, n] of counts) for (let i = 1; i < n; i++) problems.add(k, "defined twice");
  return { resources: deepFreeze(resourcesOf([entry], problems)), problems: problems.list };
}

function parseText(text: string): unknown[] {
  // JSON is YAML too and parses much faster; big generated meshes may be one JSON document or
  // a JSON `List`.
  if (/^\s*[{[]/.test(text)) {
    try {
      return [JSON.parse(text)];
    } catch {
      // flow-style YAML (or several documents) that merely starts like JSON
    }
  }
  return loadAll(text, { maxAliases: 100 }).filter((v) => v !== null && v !== undefined);
}

/** Nesting depth, capped; also bounded in nodes visited, so an alias-built DAG cannot make it
 * exponential. */
function depthOf(v: unknown, limit: number, budget = { nodes: 1_000_000 }): number {
  if (typeof v !== "object" || v === null) return 0;
  if (limit <= 0 || --budget.nodes <= 0) return Infinity;
  let d = 0;
  for (const x of Object.values(v)) {
    d = Math.max(d, depthOf(x, limit - 1, budget));
    if (d === Infinity) break;
  }
  return d + 1;
}

function parseDoc(problems: Problems, where: string, doc: unknown, out: IstioObject[]): void {
  problems.context = `${where}: `;
  if (!isObj(doc)) {
    problems.add("(document)", "must be a mapping with apiVersion, kind, metadata, spec");
    return;
  }
  if (depthOf(doc, MAX_DEPTH + 1) > MAX_DEPTH) {
    problems.add("(document)", `nested deeper than ${MAX_DEPTH} levels, or too large`);
    return;
  }
  const kind = doc.kind;
  if (kind === "List" && Array.isArray(doc.items)) {
    doc.items.forEach((x, i) => parseDoc(problems, `${where}.items[${i}]`, x, out));
    return;
  }
  if (typeof kind !== "string") {
    const old = ["workloads", "services", "authorizationPolicies"].some((k) => k in doc);
    problems.add(
      "kind",
      old
        ? "the weft mesh file shape (workloads/services/authorizationPolicies lists) was replaced " +
          "by Kubernetes-style manifests (Pod, Service, VirtualService, DestinationRule, " +
          "AuthorizationPolicy, ...); see src/xds/README.md"
        : `is required (one of ${SUPPORTED_KINDS.join(", ")})`,
    );
    return;
  }
  const entry = KINDS[kind];
  const m = isObj(doc.metadata) ? doc.metadata : {};
  const ns = typeof m.namespace === "string" ? m.namespace : "default";
  problems.context = `${where} ${kind} ${ns}/${typeof m.name === "string" ? m.name : "?"}: `;
  if (!entry) {
    problems.add("kind", `unsupported kind (weft reads ${SUPPORTED_KINDS.join(", ")})`);
    return;
  }
  if (!entry[0].includes(String(doc.apiVersion))) {
    problems.add(
      "apiVersion",
      `must be one of ${entry[0].join(", ")}, got ${JSON.stringify(doc.apiVersion)}`,
    );
  }
  const c = new Checker(problems);
  const top = kind === "EndpointSlice"
    ? ["apiVersion", "kind", "metadata", "addressType", "endpoints", "ports"]
    : kind === "ConfigMap"
    ? ["apiVersion", "kind", "metadata", "data", "binaryData", "immutable"]
    : kind === "Secret"
    ? ["apiVersion", "kind", "metadata", "type", "data", "stringData", "immutable"]
    : ["apiVersion", "kind", "metadata", "spec", "status"];
  c.obj("", doc, top);
  if (doc.status !== undefined && kind !== "Pod" && !isObj(doc.status)) {
    c.problems.add("status", "must be a mapping");
  }
  const before = problems.list.length;
  const obj = entry[1](c, doc);
  if (problems.list.length === before) out.push(obj);
}

function parseMeshConfig(c: Checker, doc: Raw): MeshConfig {
  const m = meta(c, doc.metadata, "istio-system");
  const spec = c.obj("spec", doc.spec, [
    "trustDomain",
    "rootNamespace",
    "hbonePort",
    "nodeAgentServiceAccount",
    "nodeTokens",
    "defaultHttpRetryPolicy",
    "extensionProviders",
  ]);
  const tokens = c.labels("spec.nodeTokens", spec.nodeTokens);
  for (const [node, h] of Object.entries(tokens)) {
    if (!/^[0-9a-f]{64}$/.test(h)) {
      c.problems.add(`spec.nodeTokens.${node}`, "must be the SHA-256 (hex) of the node's token");
    }
  }
  return {
    kind: "MeshConfig",
    meta: m,
    trustDomain: c.str(
      "spec.trustDomain",
      spec.trustDomain,
      "cluster.local",
      /^[a-z0-9.-]+$/,
      "a trust domain",
    ),
    rootNamespace: c.str(
      "spec.rootNamespace",
      spec.rootNamespace,
      "istio-system",
      DNS_NAME,
      "a namespace name",
    ),
    hbonePort: c.int("spec.hbonePort", spec.hbonePort, 15008, 1, 65535),
    nodeAgentServiceAccount: c.str(
      "spec.nodeAgentServiceAccount",
      spec.nodeAgentServiceAccount,
      "weft-node",
      DNS_NAME,
      "a service account name",
    ),
    nodeTokens: tokens,
    defaultHttpRetryPolicy: spec.defaultHttpRetryPolicy === undefined
      ? undefined
      : parseHttpRetry(c, "spec.defaultHttpRetryPolicy", spec.defaultHttpRetryPolicy),
    extensionProviders: parseExtensionProviders(
      c,
      "spec.extensionProviders",
      spec.extensionProviders,
    ),
  };
}

/** "Kind namespace/name" per (frozen) object: objects of unchanged files are the same across
 * reloads, so the string is made once. */
const identities = new WeakMap<IstioObject, string>();
function identityOf(o: IstioObject): string {
  let k = identities.get(o);
  if (k === undefined) identities.set(o, k = `${o.kind} ${o.meta.namespace}/${o.meta.name}`);
  return k;
}

/** The files' objects by kind, in file order. */
function resourcesOf(entries: readonly FileEntry[], problems: Problems): IstioResources {
  const by = <K extends IstioObject["kind"]>(k: K) => {
    const lists = [];
    for (const e of entries) {
      const l = e.byKind.get(k);
      if (l) lists.push(l);
    }
    return ([] as IstioObject[]).concat(...lists) as Extract<IstioObject, { kind: K }>[];
  };
  const warnings: string[] = [];
  const meshConfigs = by("MeshConfig");
  if (meshConfigs.length > 1) problems.add("MeshConfig", "at most one MeshConfig");
  return {
    meshConfig: meshConfigs[0],
    authorizationPolicies: by("AuthorizationPolicy"),
    peerAuthentications: by("PeerAuthentication"),
    requestAuthentications: by("RequestAuthentication"),
    // HTTPRoutes bound to Services (GAMMA) become one VirtualService per Service (http_route.ts).
    virtualServices: [
      ...mergeDelegates(by("VirtualService"), warnings),
      ...gatewayVirtualServices(by("HTTPRoute")),
    ],
    destinationRules: by("DestinationRule"),
    wasmPlugins: by("WasmPlugin"),
    serviceEntries: by("ServiceEntry"),
    workloadEntries: by("WorkloadEntry"),
    services: by("Service"),
    pods: by("Pod"),
    endpointSlices: by("EndpointSlice"),
    pullSecrets: by("Secret"),
    ...(warnings.length ? { warnings } : {}),
  };
}
