/**
 * Host-side options of a proxy-wasm filter (what Envoy takes from the Wasm filter config and the
 * node) and their validation into a frozen, fully-defaulted shape.
 */
import { readFileSync } from "node:fs";
import { DEFAULT_MAX_BUFFERED_BODY_BYTES, WeftError } from "../../core/mod.ts";
import type { CalloutCluster, FailPolicy, FilterRuntime, ServiceDial } from "../../core/mod.ts";

export interface ProxyWasmHostOptions {
  /** `plugin_root_id` the guest sees; Istio sets it from WasmPlugin `pluginName`. Default: the
   * filter name. SDKs pick their root context by it. */
  readonly rootId?: string;
  /** `plugin_vm_id`; shared data and queues are scoped by it. Default "". */
  readonly vmId?: string;
  /** VM_CONFIGURATION bytes given to `proxy_on_vm_start`. */
  readonly vmConfig?: string | Uint8Array;
  /** Upstreams `proxy_http_call` may reach: cluster name → "host:port", an http(s) URL, or a
   * CalloutCluster (address or mesh service, TLS options). */
  readonly clusters?: Readonly<Record<string, string | CalloutCluster>>;
  /** Resolves a mesh service (a cluster's `service`, or an Istio cluster name
   * `outbound|<port>||<hostname>`) to "host:port" at call time; undefined = unknown. */
  readonly resolveService?: (service: string, port: number | undefined) => string | undefined;
  /** Dials a mesh service for a local workload through the node's upstream dialer (HBONE with
   * the workload's identity for mesh endpoints). When set, service clusters without TLS options
   * travel the mesh instead of a plaintext dial to `resolveService`'s address. */
  readonly dialService?: ServiceDial;
  /** Envoy node id and metadata (`node.metadata.<KEY>`, `xds.node.metadata.<KEY>`). */
  readonly nodeId?: string;
  /** Envoy node cluster (`node.cluster`; Istio: `<workload>.<namespace>`). */
  readonly nodeCluster?: string;
  readonly nodeMetadata?: Readonly<Record<string, unknown>>;
  /** WASI environment for the plugin only (WasmPlugin vmConfig.env, INLINE values). */
  readonly env?: Readonly<Record<string, string>>;
  /** Body callbacks: `true`/"buffered" (the data path buffers the whole body, one callback with
   * end_of_stream), "streamed" (one callback per chunk as Envoy: StopIterationAndBuffer keeps
   * accumulating up to `maxBufferedBodyBytes`), or false/"none" (default). */
  readonly bodies?: boolean | "none" | "buffered" | "streamed";
  /** Envoy's buffer limit for streamed bodies a filter holds (StopIterationAndBuffer): 413 for
   * a request over it, a reset response (its head already left). Default 1 MiB. */
  readonly maxBufferedBodyBytes?: number;
  /** Linear-memory cap; a VM growing past it is failed ("memory") and recreated. */
  readonly maxMemoryBytes?: number;
  /** Instrument the module (fuel + per-call deadline, memory maximum clamp). Default true. */
  readonly sandbox?: boolean;
  /** Wall-clock budget of one guest call (callback) before it is stopped as "timeout". */
  readonly callBudgetMs?: number;
  /** Longest a stream may stay paused (waiting for proxy_continue_stream) before it fails as
   * "timeout". Default 60 s. */
  readonly pauseTimeoutMs?: number;
  /** Backoff base between VM restarts after repeated traps (Envoy FAIL_RELOAD: 1 s). The first
   * restart after a healthy period is immediate. */
  readonly reloadBackoffMs?: number;
}

export interface PluginSettings {
  readonly name: string;
  readonly rootId: string;
  readonly vmId: string;
  readonly vmConfig: Uint8Array;
  readonly pluginConfig: Uint8Array;
  readonly clusters: ReadonlyMap<string, Cluster>;
  readonly resolveService:
    | ((service: string, port: number | undefined) => string | undefined)
    | undefined;
  readonly dialService: ServiceDial | undefined;
  readonly nodeId: string;
  readonly nodeCluster: string;
  readonly nodeMetadata: Readonly<Record<string, unknown>>;
  readonly env: readonly string[];
  readonly bodies: "none" | "buffered" | "streamed";
  readonly maxBufferedBodyBytes: number;
  readonly maxMemoryBytes: number;
  readonly reloadBackoffMs: number;
  readonly sandbox: boolean;
  readonly callBudgetMs: number;
  readonly pauseTimeoutMs: number;
  readonly failPolicy: FailPolicy;
}

/** A declared callout upstream, validated. */
export interface Cluster {
  /** "http://host:port" / "https://host:port"; undefined for a service resolved per call. */
  readonly base: string | undefined;
  readonly service: string | undefined;
  readonly port: number | undefined;
  readonly tls: {
    readonly ca?: string;
    readonly servername?: string;
    readonly rejectUnauthorized: boolean;
  } | undefined;
}

const DEFAULT_MAX_MEMORY = 256 * 1024 * 1024;
/** README's promise: one guest callback may run 50 ms before it is stopped as "timeout". */
export const DEFAULT_CALL_BUDGET_MS = 50;

/** Istio marshals pluginConfig (a Struct) to JSON text; strings and bytes pass through raw. */
export function pluginConfigBytes(config: unknown): Uint8Array {
  if (config === undefined || config === null) return new Uint8Array(0);
  if (config instanceof Uint8Array) return config;
  if (typeof config === "string") return new TextEncoder().encode(config);
  return new TextEncoder().encode(JSON.stringify(config));
}

function bytesOf(v: string | Uint8Array | undefined): Uint8Array {
  if (v === undefined) return new Uint8Array(0);
  return typeof v === "string" ? new TextEncoder().encode(v) : v;
}

function normaliseCluster(
  name: string,
  raw: string | CalloutCluster,
  problems: string[],
): Cluster {
  const path = `clusters.${name}`;
  const c: CalloutCluster = typeof raw === "string" ? { address: raw } : raw;
  if ((c.address === undefined) === (c.service === undefined)) {
    problems.push(`${path}: set exactly one of address, service`);
  }
  let tls: Cluster["tls"];
  if (c.tls !== undefined) {
    let ca: string | undefined;
    if (c.tls.caFile !== undefined) {
      try {
        ca = readFileSync(c.tls.caFile, "utf8");
      } catch (e) {
        problems.push(`${path}.tls.caFile: cannot read ${c.tls.caFile} (${String(e)})`);
      }
    }
    tls = {
      ...(ca !== undefined ? { ca } : {}),
      ...(c.tls.serverName !== undefined ? { servername: c.tls.serverName } : {}),
      rejectUnauthorized: c.tls.insecureSkipVerify !== true,
    };
  }
  if (c.port !== undefined && !(Number.isInteger(c.port) && c.port >= 1 && c.port <= 65535)) {
    problems.push(`${path}.port: must be 1-65535`);
  }
  let base: string | undefined;
  if (c.address !== undefined) {
    const scheme = tls ? "https" : "http";
    const withScheme = /^https?:\/\//.test(c.address) ? c.address : `${scheme}://${c.address}`;
    try {
      const u = new URL(withScheme);
      if (!u.port) throw new Error("no port");
      base = `${u.protocol}//${u.host}`;
    } catch {
      problems.push(`${path}: must be host:port or an http(s) URL with a port`);
    }
  }
  return { base, service: c.service, port: c.port, tls };
}

/** Host options carried on a FilterRef (weft.yaml plugin fields, Istio WasmPlugin). */
export function optionsFromRuntime(r: FilterRuntime | undefined): ProxyWasmHostOptions {
  if (!r) return {};
  return {
    ...(r.rootId !== undefined ? { rootId: r.rootId } : {}),
    ...(r.vmId !== undefined ? { vmId: r.vmId } : {}),
    ...(r.vmConfig !== undefined ? { vmConfig: r.vmConfig } : {}),
    ...(r.env !== undefined ? { env: r.env } : {}),
    ...(r.clusters !== undefined ? { clusters: r.clusters } : {}),
    ...(r.maxMemoryBytes !== undefined ? { maxMemoryBytes: r.maxMemoryBytes } : {}),
    ...(r.callBudgetMs !== undefined ? { callBudgetMs: r.callBudgetMs } : {}),
    ...(r.bodies !== undefined ? { bodies: r.bodies } : {}),
  };
}

export function resolveSettings(
  name: string,
  failPolicy: FailPolicy,
  config: unknown,
  o: ProxyWasmHostOptions,
): PluginSettings {
  const problems: string[] = [];
  const clusters = new Map<string, Cluster>();
  for (const [k, v] of Object.entries(o.clusters ?? {})) {
    clusters.set(k, normaliseCluster(k, v, problems));
  }
  const maxMemoryBytes = o.maxMemoryBytes ?? DEFAULT_MAX_MEMORY;
  if (!(maxMemoryBytes >= 65536)) problems.push("maxMemoryBytes: must be at least 65536");
  const reloadBackoffMs = o.reloadBackoffMs ?? 1000;
  if (!(reloadBackoffMs >= 0)) problems.push("reloadBackoffMs: must be >= 0");
  const callBudgetMs = o.callBudgetMs ?? DEFAULT_CALL_BUDGET_MS;
  if (!(callBudgetMs > 0)) problems.push("callBudgetMs: must be > 0");
  const pauseTimeoutMs = o.pauseTimeoutMs ?? 60_000;
  if (!(pauseTimeoutMs > 0)) problems.push("pauseTimeoutMs: must be > 0");
  if (problems.length) {
    throw new WeftError(
      "proxy_wasm_config",
      `Cannot configure proxy-wasm filter ${name}: ${problems.join("; ")}`,
    );
  }
  return Object.freeze({
    name,
    rootId: o.rootId ?? name,
    vmId: o.vmId ?? "",
    vmConfig: bytesOf(o.vmConfig),
    pluginConfig: pluginConfigBytes(config),
    clusters,
    resolveService: o.resolveService,
    dialService: o.dialService,
    nodeId: o.nodeId ?? "",
    nodeCluster: o.nodeCluster ?? "",
    nodeMetadata: o.nodeMetadata ?? {},
    env: Object.entries(o.env ?? {}).map(([k, v]) => `${k}=${v}`),
    bodies: o.bodies === true ? "buffered" : o.bodies === false ? "none" : o.bodies ?? "none",
    maxBufferedBodyBytes: o.maxBufferedBodyBytes ?? DEFAULT_MAX_BUFFERED_BODY_BYTES,
    maxMemoryBytes,
    reloadBackoffMs,
    sandbox: o.sandbox ?? true,
    callBudgetMs,
    pauseTimeoutMs,
    failPolicy,
  });
}
