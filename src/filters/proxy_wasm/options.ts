/**
 * Host-side options of a proxy-wasm filter (what Envoy takes from the Wasm filter config and the
 * node) and their validation into a frozen, fully-defaulted shape.
 */
import { WeftError } from "../../core/mod.ts";
import type { FailPolicy } from "../../core/mod.ts";

export interface ProxyWasmHostOptions {
  /** `plugin_root_id` the guest sees; Istio sets it from WasmPlugin `pluginName`. Default: the
   * filter name. SDKs pick their root context by it. */
  readonly rootId?: string;
  /** `plugin_vm_id`; shared data and queues are scoped by it. Default "". */
  readonly vmId?: string;
  /** VM_CONFIGURATION bytes given to `proxy_on_vm_start`. */
  readonly vmConfig?: string | Uint8Array;
  /** Upstreams `proxy_http_call` may reach: cluster name → "host:port" or "http://host:port". */
  readonly clusters?: Readonly<Record<string, string>>;
  /** Envoy node id and metadata (`node.metadata.<KEY>`, `xds.node.metadata.<KEY>`). */
  readonly nodeId?: string;
  readonly nodeMetadata?: Readonly<Record<string, unknown>>;
  /** WASI environment for the plugin only (WasmPlugin vmConfig.env, INLINE values). */
  readonly env?: Readonly<Record<string, string>>;
  /** Ask the data path for buffered bodies and run the body callbacks. Default false. */
  readonly bodies?: boolean;
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
  readonly clusters: ReadonlyMap<string, string>;
  readonly nodeId: string;
  readonly nodeMetadata: Readonly<Record<string, unknown>>;
  readonly env: readonly string[];
  readonly bodies: boolean;
  readonly maxMemoryBytes: number;
  readonly reloadBackoffMs: number;
  readonly sandbox: boolean;
  readonly callBudgetMs: number;
  readonly pauseTimeoutMs: number;
  readonly failPolicy: FailPolicy;
}

const DEFAULT_MAX_MEMORY = 256 * 1024 * 1024;

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

function normaliseCluster(name: string, addr: string, problems: string[]): string {
  const base = /^https?:\/\//.test(addr) ? addr : `http://${addr}`;
  try {
    const u = new URL(base);
    return `${u.protocol}//${u.host}`;
  } catch {
    problems.push(`clusters.${name}: must be host:port or an http(s) URL`);
    return "";
  }
}

export function resolveSettings(
  name: string,
  failPolicy: FailPolicy,
  config: unknown,
  o: ProxyWasmHostOptions,
): PluginSettings {
  const problems: string[] = [];
  const clusters = new Map<string, string>();
  for (const [k, v] of Object.entries(o.clusters ?? {})) {
    clusters.set(k, normaliseCluster(k, v, problems));
  }
  const maxMemoryBytes = o.maxMemoryBytes ?? DEFAULT_MAX_MEMORY;
  if (!(maxMemoryBytes >= 65536)) problems.push("maxMemoryBytes: must be at least 65536");
  const reloadBackoffMs = o.reloadBackoffMs ?? 1000;
  if (!(reloadBackoffMs >= 0)) problems.push("reloadBackoffMs: must be >= 0");
  const callBudgetMs = o.callBudgetMs ?? 100;
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
    nodeId: o.nodeId ?? "",
    nodeMetadata: o.nodeMetadata ?? {},
    env: Object.entries(o.env ?? {}).map(([k, v]) => `${k}=${v}`),
    bodies: o.bodies ?? false,
    maxMemoryBytes,
    reloadBackoffMs,
    sandbox: o.sandbox ?? true,
    callBudgetMs,
    pauseTimeoutMs,
    failPolicy,
  });
}
