/**
 * Bootstrap config: weft.yaml → validated, frozen, fully defaulted WeftConfig, with every problem
 * reported by path. Parsing uses js-yaml (YAML 1.2 core schema), the parser src/istio already loads:
 * one YAML package in the node's idle graph (the `yaml` package cost ~10 MB of idle RSS on Bun).
 */
import { load as parseYaml } from "js-yaml";
import { spiffeId } from "../core/mod.ts";
import type { Workload } from "../core/mod.ts";
import { isValidCidr, parseIp, splitHostPort } from "../core/mod.ts";
import {
  Checker,
  deepFreeze,
  exceedsNodes,
  type HttpRetry,
  isObj,
  parseHttpRetry,
  Problems,
} from "../istio/mod.ts";
import type { WeftConfig } from "./config_types.ts";
import {
  checkPolicies,
  checkResources,
  type ConfigResources,
  meshProviders,
} from "./config_resources.ts";
import { checkService, warnUnknownHosts } from "./config_service.ts";
import { offLoopback } from "./admin_guard.ts";
import { checkInpod, INPOD_KEY } from "./config_inpod.ts";

export type ValidationResult =
  | { ok: true; config: WeftConfig }
  | { ok: false; problems: readonly string[] };

const NAME = /^[a-z0-9]([-a-z0-9.]*[a-z0-9])?$/;
/** Values a weft.yaml may expand to (a 10 000-workload file holds ~150 000). */
const MAX_CONFIG_NODES = 1_000_000;
const TOP = [
  "node",
  "ca",
  "certificates",
  "listeners",
  "outboundTrafficPolicy",
  "meshConfig",
  "timeouts",
  "limits",
  "workloads",
  "services",
  "authorizationPolicies",
  "resources",
  "configDir",
  "xds",
  INPOD_KEY,
];

/** `baseDir`: where a relative `configDir` is read from (the config file's directory). */
export function parseConfigText(
  text: string,
  nodeName?: string,
  baseDir = ".",
): ValidationResult {
  let raw: unknown;
  try {
    // js-yaml throws on unknown tags and duplicate keys and prints nothing itself (only
    // core/log.ts writes to stderr); aliases are capped as for manifests.
    raw = parseYaml(text, { maxAliases: 100 });
  } catch (err) {
    return { ok: false, problems: [`(yaml): ${(err as Error).message.split("\n")[0]}`] };
  }
  raw ??= {};
  // An alias-free file has fewer values than characters: more means aliases expanding (a bomb).
  const maxNodes = Math.max(MAX_CONFIG_NODES, text.length);
  if (exceedsNodes(raw, maxNodes)) {
    return { ok: false, problems: [`(yaml): aliases expand to more than ${maxNodes} values`] };
  }
  if (nodeName !== undefined && isObj(raw)) {
    raw = { ...raw, node: { ...(isObj(raw.node) ? raw.node : {}), name: nodeName } };
  }
  return validateConfig(raw, baseDir);
}

export function validateConfig(raw: unknown, baseDir = "."): ValidationResult {
  const problems = new Problems();
  const c = new Checker(problems);
  if (!isObj(raw)) return { ok: false, problems: ["(root): must be a mapping"] };
  const r = c.obj("", raw, TOP);

  const n = c.obj("node", r.node, [
    "name",
    "trustDomain",
    "network",
    "hbonePort",
    "rootNamespace",
    "defaultSourceWorkload",
    "metadata",
  ]);
  const node = {
    name: c.str("node.name", n.name, "weft-node", NAME, "a DNS-1123 name"),
    trustDomain: c.str(
      "node.trustDomain",
      n.trustDomain,
      "cluster.local",
      /^[a-z0-9.-]+$/,
      "a trust domain (lowercase letters, digits, dots, dashes)",
    ),
    network: c.str("node.network", n.network, ""),
    hbonePort: c.int("node.hbonePort", n.hbonePort, 15008, 1, 65535),
    rootNamespace: c.str(
      "node.rootNamespace",
      n.rootNamespace,
      "istio-system",
      NAME,
      "a namespace name",
    ),
    defaultSourceWorkload: c.optStr("node.defaultSourceWorkload", n.defaultSourceWorkload),
    metadata: checkNodeMetadata(c, n.metadata),
  };

  const ca = checkCa(c, r.ca);
  const certs = c.obj("certificates", r.certificates, ["ttl", "rotateAtFraction"]);
  const ttlMs = c.duration("certificates.ttl", certs.ttl, 24 * 3_600_000);
  if (ttlMs < 2000) problems.add("certificates.ttl", "must be at least 2s");
  const certificates = {
    ttlMs,
    rotateAtFraction: c.num("certificates.rotateAtFraction", certs.rotateAtFraction, 0.5, 0.1, 0.9),
  };

  const l = c.obj("listeners", r.listeners, [
    "admin",
    "metrics",
    "readiness",
    "socks5",
    "inboundPlaintextPort",
    "captureServiceVips",
    "allowNonLoopback",
  ]);
  const listeners = {
    admin: addr(c, "listeners.admin", l.admin, "127.0.0.1:15000"),
    metrics: addr(c, "listeners.metrics", l.metrics, "127.0.0.1:15020"),
    readiness: addr(c, "listeners.readiness", l.readiness, "127.0.0.1:15021"),
    socks5: l.socks5 === "" || l.socks5 === false
      ? ""
      : addr(c, "listeners.socks5", l.socks5, "127.0.0.1:15080"),
    inboundPlaintextPort: c.int(
      "listeners.inboundPlaintextPort",
      l.inboundPlaintextPort,
      15006,
      0,
      65535,
    ),
    captureServiceVips: c.bool("listeners.captureServiceVips", l.captureServiceVips, true),
    allowNonLoopback: c.bool("listeners.allowNonLoopback", l.allowNonLoopback, false),
  };
  if (!listeners.allowNonLoopback) {
    for (const o of offLoopback(listeners)) {
      problems.add(
        o.path,
        `${o.address} is not a loopback address; ${o.risk} ` +
          "(set listeners.allowNonLoopback: true to expose it anyway)",
      );
    }
  }

  const otp = c.obj("outboundTrafficPolicy", r.outboundTrafficPolicy, ["mode"]);
  // Istio's install-time `meshConfig` values; only the route retry default applies to a node.
  const mc = c.obj("meshConfig", r.meshConfig, ["defaultHttpRetryPolicy", "extensionProviders"]);
  const t = c.obj("timeouts", r.timeouts, [
    "connect",
    "idle",
    "drain",
    "requestHeaders",
    "tlsHandshake",
    "upstreamIdle",
  ]);
  const lim = c.obj("limits", r.limits, [
    "maxConnections",
    "poolMaxStreamsPerConnection",
    "poolIdleTimeout",
    "maxPendingHandshakes",
  ]);
  const workloads = c.list("workloads", r.workloads).map((w, i) =>
    checkWorkload(c, `workloads[${i}]`, w, node.trustDomain)
  );
  dupes(problems, "workloads", workloads.map((w) => `${w.namespace}/${w.name}`), "name");
  dupes(problems, "workloads", workloads.map((w) => w.address), "address");
  const extra: ConfigResources = checkResources(c, r.resources, r.configDir, baseDir);
  const services = c.list("services", r.services).map((s, i) =>
    checkService(c, `services[${i}]`, s, node.trustDomain, extra)
  );
  dupes(problems, "services", services.map((s) => `${s.namespace}/${s.name}`), "name");
  warnUnknownHosts(services);
  const vipPorts = services.flatMap((s) =>
    s.vips.flatMap((v) => s.ports.map((p) => `${v}:${p.port}`))
  );
  dupes(problems, "services", vipPorts, "vip:port");
  const policies = [...checkPolicies(c, r.authorizationPolicies), ...extra.policies];
  dupes(problems, "authorizationPolicies", policies.map((p) => `${p.namespace}/${p.name}`), "name");
  const x = c.obj("xds", r.xds, [
    "address",
    "mode",
    "tls",
    "serverIdentity",
    "tokenFile",
    "rootCertFile",
  ]);
  const xdsAddress = x.address === undefined ? undefined : c.str("xds.address", x.address);
  const xdsProblem = xdsAddress === undefined ? undefined : hostPortProblem(xdsAddress);
  if (xdsProblem) problems.add("xds.address", xdsProblem);
  const xds = {
    address: xdsAddress,
    mode: c.oneOf("xds.mode", x.mode, ["delta", "sotw"], "delta"),
    tls: c.bool("xds.tls", x.tls, false),
    serverIdentity: c.optStr("xds.serverIdentity", x.serverIdentity),
    tokenFile: c.optStr("xds.tokenFile", x.tokenFile),
    rootCertFile: c.optStr("xds.rootCertFile", x.rootCertFile),
  };
  if (xds.tls && ca.mode === "xds") {
    problems.add("xds.tls", "mTLS to the control plane needs a local CA (ca.mode auto or files)");
  }
  if (xds.rootCertFile !== undefined && xds.tls) {
    problems.add("xds.rootCertFile", "set tls (mTLS with a local CA) or rootCertFile, not both");
  }
  if (xds.rootCertFile !== undefined && xds.tokenFile === undefined) {
    problems.add(
      "xds.tokenFile",
      "is required with rootCertFile: the control plane authenticates nodes by token",
    );
  }

  const config: WeftConfig = {
    node,
    ca,
    certificates,
    listeners,
    outboundTrafficPolicy: c.oneOf("outboundTrafficPolicy.mode", otp.mode, [
      "ALLOW_ANY",
      "REGISTRY_ONLY",
    ], "ALLOW_ANY"),
    defaultHttpRetryPolicy: meshRetry(c, mc.defaultHttpRetryPolicy, extra),
    extensionProviders: meshProviders(c, mc.extensionProviders, extra, policies),
    timeouts: {
      connectMs: c.duration("timeouts.connect", t.connect, 10_000),
      idleMs: c.duration("timeouts.idle", t.idle, 3_600_000),
      drainMs: c.duration("timeouts.drain", t.drain, 5_000),
      requestHeadersMs: c.duration("timeouts.requestHeaders", t.requestHeaders, 10_000),
      tlsHandshakeMs: c.duration("timeouts.tlsHandshake", t.tlsHandshake, 10_000),
      upstreamIdleMs: c.duration("timeouts.upstreamIdle", t.upstreamIdle, 3_600_000),
    },
    limits: {
      maxConnections: c.int("limits.maxConnections", lim.maxConnections, 100_000, 1, 10_000_000),
      poolMaxStreamsPerConnection: c.int(
        "limits.poolMaxStreamsPerConnection",
        lim.poolMaxStreamsPerConnection,
        100,
        1,
        10_000,
      ),
      poolIdleMs: c.duration("limits.poolIdleTimeout", lim.poolIdleTimeout, 300_000),
      maxPendingHandshakes: c.int(
        "limits.maxPendingHandshakes",
        lim.maxPendingHandshakes,
        256,
        1,
        1_000_000,
      ),
    },
    workloads,
    services,
    authorizationPolicies: policies,
    requestAuthentications: extra.requestAuthentications,
    xds,
    inpod: checkInpod(c, r.inpod),
  };
  const dsw = node.defaultSourceWorkload;
  if (dsw && !workloads.some((w) => w.name === dsw || `${w.namespace}/${w.name}` === dsw)) {
    problems.add("node.defaultSourceWorkload", `no local workload named "${dsw}"`);
  }
  if (!problems.ok) return { ok: false, problems: problems.list };
  return { ok: true, config: deepFreeze(config) };
}

function checkCa(c: Checker, v: unknown): WeftConfig["ca"] {
  const o = c.obj("ca", v, ["mode", "stateDir", "certFile", "keyFile", "crlFile"]);
  const mode = c.oneOf("ca.mode", o.mode, ["auto", "files", "xds"], "auto");
  const ca = {
    mode,
    stateDir: c.str("ca.stateDir", o.stateDir, ".weft/ca"),
    certFile: c.optStr("ca.certFile", o.certFile),
    keyFile: c.optStr("ca.keyFile", o.keyFile),
    crlFile: c.optStr("ca.crlFile", o.crlFile),
  };
  if (ca.crlFile === "") c.problems.add("ca.crlFile", "must be a file path (omit it for no CRL)");
  if (mode === "files") {
    if (!ca.certFile) c.problems.add("ca.certFile", "is required when ca.mode is files");
    if (!ca.keyFile) c.problems.add("ca.keyFile", "is required when ca.mode is files");
  }
  return ca;
}

function checkWorkload(c: Checker, path: string, v: unknown, td: string): Workload {
  const o = c.obj(path, v, [
    "name",
    "namespace",
    "serviceAccount",
    "address",
    "ports",
    "labels",
    "mtlsMode",
  ]);
  const namespace = c.str(`${path}.namespace`, o.namespace, "default", NAME, "a namespace name");
  const serviceAccount = c.str(
    `${path}.serviceAccount`,
    o.serviceAccount,
    "default",
    NAME,
    "a service account name",
  );
  const address = c.str(`${path}.address`, o.address);
  if (address && !parseIp(address)) {
    c.problems.add(`${path}.address`, `must be an IP address, got "${address}"`);
  }
  return {
    name: c.str(`${path}.name`, o.name, undefined, NAME, "a DNS-1123 name"),
    namespace,
    serviceAccount,
    identity: spiffeId(td, namespace, serviceAccount),
    address,
    ports: c.list(`${path}.ports`, o.ports).map((p, i) =>
      c.int(`${path}.ports[${i}]`, p, undefined, 1, 65535)
    ),
    labels: c.labels(`${path}.labels`, o.labels),
    mtlsMode: c.oneOf(`${path}.mtlsMode`, o.mtlsMode, ["STRICT", "PERMISSIVE"], "PERMISSIVE"),
  };
}

export function addr(c: Checker, path: string, v: unknown, def: string): string {
  const s = c.str(path, v, def);
  const hp = splitHostPort(s);
  if (s && (!hp || !parseIp(hp.host))) {
    c.problems.add(path, `must be "ip:port" (IPv6 as [addr]:port), got "${s}"`);
  }
  return s;
}

/** The control plane's address: "host:port" with an IP or a DNS name (a Kubernetes Service), as
 * `xds.address`, `--xds` and `WEFT_XDS_ADDRESS` take it; a problem text, or undefined when good. */
export function hostPortProblem(s: string): string | undefined {
  const hp = splitHostPort(s);
  const hostOk = hp !== undefined && (parseIp(hp.host) !== undefined || DNS_HOST.test(hp.host));
  if (hp && hostOk && hp.port >= 1) return undefined;
  return `must be "host:port" (an IP, IPv6 as [addr]:port, or a DNS name; port 1-65535), got "${s}"`;
}

const DNS_HOST =
  /^(?=.{1,253}$)[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?(\.[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?)*$/;

function dupes(p: Problems, path: string, keys: string[], what: string): void {
  const seen = new Map<string, number>();
  keys.forEach((k, i) => {
    if (!k) return;
    const j = seen.get(k);
    if (j !== undefined) p.add(`${path}[${i}]`, `duplicate ${what} "${k}" (also at ${path}[${j}])`);
    else seen.set(k, i);
  });
}

export { isValidCidr };

/** Envoy's bootstrap `node.metadata` (a Struct): what proxy-wasm filters read as
 * `node.metadata`, over weft's defaults (istio-agent's EXCHANGE_KEYS, MESH_ID, CLUSTER_ID). */
function checkNodeMetadata(c: Checker, v: unknown): Readonly<Record<string, unknown>> {
  if (v === undefined) return {};
  if (!isObj(v)) {
    c.problems.add("node.metadata", "must be a mapping (Envoy node metadata)");
    return {};
  }
  const bad = (x: unknown, depth: number): boolean =>
    depth > 16 || (typeof x === "number" && !Number.isFinite(x)) ||
    (Array.isArray(x)
      ? x.some((e) => bad(e, depth + 1))
      : isObj(x)
      ? Object.values(x).some((e) => bad(e, depth + 1))
      : !["string", "number", "boolean"].includes(typeof x) && x !== null);
  if (bad(v, 0)) {
    c.problems.add("node.metadata", "must hold only strings, numbers, booleans, lists and maps");
    return {};
  }
  return v;
}

/** weft.yaml `meshConfig.defaultHttpRetryPolicy`, or a MeshConfig document's (not both). */
function meshRetry(c: Checker, v: unknown, extra: ConfigResources): HttpRetry | undefined {
  const fromDoc = extra.defaultHttpRetryPolicy;
  if (v === undefined) return fromDoc;
  if (fromDoc) {
    c.problems.add(
      "meshConfig.defaultHttpRetryPolicy",
      "also set by a MeshConfig in resources/configDir: set it in one place",
    );
  }
  return parseHttpRetry(c, "meshConfig.defaultHttpRetryPolicy", v);
}
