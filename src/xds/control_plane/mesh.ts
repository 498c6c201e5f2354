/**
 * The control plane's mesh file (YAML), in the vocabulary of weft's bootstrap config (Istio
 * names): workloads with their node, services selecting workloads by labels, DestinationRule
 * subsets, VirtualService-style `http` routes (weights, fault), WasmPlugin-style plugins and
 * AuthorizationPolicies. `parseMesh` reports every problem with its path.
 */
import { parse } from "yaml";
import type { AuthorizationPolicy, PolicyRule } from "../../core/mod.ts";
import { spiffeId, WeftError } from "../../core/mod.ts";

export interface MeshWorkload {
  readonly name: string;
  readonly namespace: string;
  readonly serviceAccount: string;
  readonly address: string;
  readonly node: string;
  readonly labels: Readonly<Record<string, string>>;
  readonly identity: string;
}

export interface MeshRoute {
  /** The first `match` block: uri exact/prefix and exact/prefix/regex header matches. */
  readonly match: {
    readonly prefix?: string;
    readonly exact?: string;
    readonly headers: Readonly<Record<string, { exact?: string; prefix?: string; regex?: string }>>;
  } | undefined;
  readonly route: readonly { readonly subset: string | undefined; readonly weight: number }[];
  readonly fault: unknown;
}

export interface MeshPlugin {
  readonly name: string;
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
  readonly selector: Readonly<Record<string, string>>;
  readonly subsets: readonly { name: string; labels: Readonly<Record<string, string>> }[];
  readonly http: readonly MeshRoute[];
  readonly plugins: readonly MeshPlugin[];
}

export interface Mesh {
  readonly trustDomain: string;
  readonly rootNamespace: string;
  readonly hbonePort: number;
  /** SPIFFE id of node agents, which may request certificates for any mesh workload. */
  readonly nodeAgentIdentity: string;
  readonly workloads: readonly MeshWorkload[];
  readonly services: readonly MeshService[];
  readonly authorizationPolicies: readonly AuthorizationPolicy[];
}

class Check {
  readonly errors: string[] = [];
  obj(path: string, v: unknown): Record<string, unknown> {
    if (v === undefined || v === null) return {};
    if (typeof v !== "object" || Array.isArray(v)) this.errors.push(`${path}: must be a mapping`);
    return typeof v === "object" && v && !Array.isArray(v) ? v as Record<string, unknown> : {};
  }
  list(path: string, v: unknown): unknown[] {
    if (v === undefined || v === null) return [];
    if (!Array.isArray(v)) this.errors.push(`${path}: must be a list`);
    return Array.isArray(v) ? v : [];
  }
  str(path: string, v: unknown, def?: string): string {
    if ((v === undefined || v === null) && def !== undefined) return def;
    if (typeof v !== "string" || v === "") this.errors.push(`${path}: must be a non-empty string`);
    return typeof v === "string" ? v : "";
  }
  num(path: string, v: unknown, def: number, min: number, max: number): number {
    if (v === undefined || v === null) return def;
    if (typeof v !== "number" || !Number.isInteger(v) || v < min || v > max) {
      this.errors.push(`${path}: must be an integer ${min}-${max}`);
      return def;
    }
    return v;
  }
  oneOf<T extends string>(path: string, v: unknown, allowed: readonly T[], def: T): T {
    if (v === undefined || v === null) return def;
    if (!allowed.includes(v as T)) {
      this.errors.push(`${path}: must be one of ${allowed.join(", ")}`);
    }
    return allowed.includes(v as T) ? v as T : def;
  }
  labels(path: string, v: unknown): Readonly<Record<string, string>> {
    const o = this.obj(path, v);
    for (const [k, x] of Object.entries(o)) {
      if (typeof x !== "string") this.errors.push(`${path}.${k}: must be a string`);
    }
    return Object.freeze({ ...o } as Record<string, string>);
  }
}

const IP = /^(\d{1,3}(\.\d{1,3}){3}|[0-9a-fA-F:]+)$/;

function workload(c: Check, p: string, v: unknown, td: string): MeshWorkload {
  const o = c.obj(p, v);
  const ns = c.str(`${p}.namespace`, o.namespace, "default");
  const sa = c.str(`${p}.serviceAccount`, o.serviceAccount, "default");
  const address = c.str(`${p}.address`, o.address);
  if (address && !IP.test(address)) c.errors.push(`${p}.address: must be an IP`);
  return Object.freeze({
    name: c.str(`${p}.name`, o.name),
    namespace: ns,
    serviceAccount: sa,
    address,
    node: c.str(`${p}.node`, o.node),
    labels: c.labels(`${p}.labels`, o.labels),
    identity: spiffeId(td, ns, sa),
  });
}

function matchOf(c: Check, p: string, v: unknown): MeshRoute["match"] {
  const o = c.obj(p, v);
  const uri = c.obj(`${p}.uri`, o.uri);
  const headers: Record<string, { exact?: string; prefix?: string; regex?: string }> = {};
  for (const [name, h] of Object.entries(c.obj(`${p}.headers`, o.headers))) {
    const hm = c.obj(`${p}.headers.${name}`, h);
    const kind = (["exact", "prefix", "regex"] as const).find((k) => typeof hm[k] === "string");
    if (!kind) c.errors.push(`${p}.headers.${name}: needs exact, prefix or regex`);
    else headers[name.toLowerCase()] = { [kind]: hm[kind] as string };
  }
  if (uri.exact !== undefined && typeof uri.exact !== "string") {
    c.errors.push(`${p}.uri.exact: string`);
  }
  if (uri.prefix !== undefined && typeof uri.prefix !== "string") {
    c.errors.push(`${p}.uri.prefix: string`);
  }
  return {
    ...(typeof uri.exact === "string" ? { exact: uri.exact } : {}),
    ...(typeof uri.prefix === "string" ? { prefix: uri.prefix } : {}),
    headers,
  };
}

function route(c: Check, p: string, v: unknown, subsets: readonly string[]): MeshRoute {
  const o = c.obj(p, v);
  const m = c.list(`${p}.match`, o.match)[0];
  const dests = c.list(`${p}.route`, o.route).map((d, i) => {
    const dp = `${p}.route[${i}]`;
    const dd = c.obj(dp, d);
    const subset = c.obj(`${dp}.destination`, dd.destination).subset;
    if (subset !== undefined && !subsets.includes(String(subset))) {
      c.errors.push(`${dp}.destination.subset: ${subset} is not a defined subset`);
    }
    return {
      subset: subset === undefined ? undefined : String(subset),
      weight: c.num(`${dp}.weight`, dd.weight, 1, 0, 1e9),
    };
  });
  if (dests.length === 0) c.errors.push(`${p}.route: needs at least one destination`);
  else if (dests.reduce((a, d) => a + d.weight, 0) <= 0) {
    c.errors.push(`${p}.route: weights sum to 0`);
  }
  return {
    match: m ? matchOf(c, `${p}.match[0]`, m) : undefined,
    route: dests,
    fault: o.fault,
  };
}

function plugin(c: Check, p: string, v: unknown): MeshPlugin {
  const o = c.obj(p, v);
  const url = c.str(`${p}.url`, o.url);
  if (url && !/^(file|https?):\/\//.test(url)) {
    c.errors.push(`${p}.url: must be file:// or https://`);
  }
  const sha = o.sha256 === undefined ? undefined : c.str(`${p}.sha256`, o.sha256);
  if (sha && !/^[0-9a-f]{64}$/.test(sha)) c.errors.push(`${p}.sha256: must be 64 hex digits`);
  return {
    name: c.str(`${p}.name`, o.name),
    url,
    sha256: sha,
    type: c.oneOf(`${p}.type`, o.type, ["component", "proxy-wasm"], "component"),
    phase: c.oneOf(
      `${p}.phase`,
      o.phase,
      ["AUTHN", "AUTHZ", "STATS", "UNSPECIFIED"],
      "UNSPECIFIED",
    ),
    priority: c.num(`${p}.priority`, o.priority, 0, -1e9, 1e9),
    failStrategy: c.oneOf(
      `${p}.failStrategy`,
      o.failStrategy,
      ["FAIL_CLOSE", "FAIL_OPEN"],
      "FAIL_CLOSE",
    ),
    pluginConfig: o.pluginConfig ?? {},
  };
}

function service(c: Check, p: string, v: unknown): MeshService {
  const o = c.obj(p, v);
  const name = c.str(`${p}.name`, o.name);
  const ns = c.str(`${p}.namespace`, o.namespace, "default");
  const subsets = c.list(`${p}.subsets`, o.subsets).map((s, i) => {
    const so = c.obj(`${p}.subsets[${i}]`, s);
    return {
      name: c.str(`${p}.subsets[${i}].name`, so.name),
      labels: c.labels(`${p}.subsets[${i}].labels`, so.labels),
    };
  });
  const ports = c.list(`${p}.ports`, o.ports).map((x, i) => {
    const po = c.obj(`${p}.ports[${i}]`, x);
    const port = c.num(`${p}.ports[${i}].port`, po.port, 0, 1, 65535);
    const protocol = c.oneOf(`${p}.ports[${i}].protocol`, po.protocol, [
      "TCP",
      "HTTP",
      "HTTP2",
      "GRPC",
    ], "TCP");
    return {
      port,
      targetPort: c.num(`${p}.ports[${i}].targetPort`, po.targetPort, port, 1, 65535),
      protocol,
      name: typeof po.name === "string" ? po.name : `${protocol.toLowerCase()}-${port}`,
    };
  });
  if (ports.length === 0) c.errors.push(`${p}.ports: needs at least one port`);
  const vips = c.list(`${p}.vips`, o.vips).map((x, i) => c.str(`${p}.vips[${i}]`, x));
  return {
    name,
    namespace: ns,
    hostname: c.str(`${p}.hostname`, o.hostname, `${name}.${ns}.svc.cluster.local`),
    vips,
    ports,
    selector: c.labels(`${p}.selector`, o.selector ?? { app: name }),
    subsets,
    http: c.list(`${p}.http`, o.http).map((r, i) =>
      route(c, `${p}.http[${i}]`, r, subsets.map((s) => s.name))
    ),
    plugins: c.list(`${p}.plugins`, o.plugins).map((x, i) => plugin(c, `${p}.plugins[${i}]`, x)),
  };
}

function policy(c: Check, p: string, v: unknown): AuthorizationPolicy {
  const o = c.obj(p, v);
  return Object.freeze({
    name: c.str(`${p}.name`, o.name),
    namespace: c.str(`${p}.namespace`, o.namespace, "default"),
    selector: o.selector === undefined ? undefined : c.labels(`${p}.selector`, o.selector),
    action: c.oneOf(`${p}.action`, o.action, ["ALLOW", "DENY", "AUDIT"], "ALLOW"),
    dryRun: o.dryRun === true,
    rules: c.list(`${p}.rules`, o.rules) as PolicyRule[],
  });
}

export function parseMesh(text: string): Mesh {
  let raw: unknown;
  try {
    // JSON is YAML too, and parses ~50x faster: big generated meshes should be JSON.
    raw = /^\s*\{/.test(text) ? JSON.parse(text) : parse(text);
  } catch (cause) {
    throw new WeftError("mesh_invalid", `Cannot load mesh file: not YAML: ${cause}`);
  }
  const c = new Check();
  const o = c.obj("mesh", raw);
  const td = c.str("trustDomain", o.trustDomain, "cluster.local");
  const rootNamespace = c.str("rootNamespace", o.rootNamespace, "istio-system");
  const agentSa = c.str("nodeAgentServiceAccount", o.nodeAgentServiceAccount, "weft-node");
  const mesh: Mesh = {
    trustDomain: td,
    rootNamespace,
    nodeAgentIdentity: spiffeId(td, rootNamespace, agentSa),
    hbonePort: c.num("hbonePort", o.hbonePort, 15008, 1, 65535),
    workloads: c.list("workloads", o.workloads).map((w, i) =>
      workload(c, `workloads[${i}]`, w, td)
    ),
    services: c.list("services", o.services).map((s, i) => service(c, `services[${i}]`, s)),
    authorizationPolicies: c.list("authorizationPolicies", o.authorizationPolicies)
      .map((x, i) => policy(c, `authorizationPolicies[${i}]`, x)),
  };
  if (c.errors.length) {
    throw new WeftError("mesh_invalid", `Cannot load mesh file: ${c.errors.join("; ")}`);
  }
  return mesh;
}
