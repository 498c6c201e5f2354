/**
 * `proxy_http_call`: a real HTTP(S) request to a declared cluster; the result is delivered to the
 * root context with `proxy_on_http_call_response` (num_headers 0 = the call failed). Clusters are
 * declared per plugin (host:port, a URL, or a mesh service resolved per call; Istio's
 * `outbound|<port>||<hostname>` names resolve through the same service resolver). An unknown
 * cluster is refused at once (BAD_ARGUMENT, as Envoy), logged and counted as a `callout` error;
 * a failed or timed-out call is logged and counted too. A callout whose VM died is dropped, never
 * delivered into a dead instance (Kong#696).
 */
import { httpExchange, logger, metrics } from "../../core/mod.ts";
import type { ServiceDial } from "../../core/mod.ts";
import type { HttpCallResult } from "./env_services.ts";
import type { Cluster } from "./options.ts";
import type { ProxyWasmVm, StreamState } from "./vm.ts";

const log = logger("proxy_wasm");
/** Envoy's callout default when the guest passes 0. */
const DEFAULT_TIMEOUT_MS = 30_000;
const MAX_RESPONSE_BYTES = 16 * 1024 * 1024;

const callouts = metrics.counter(
  "weft_proxy_wasm_callouts_total",
  "proxy-wasm HTTP callouts by result (ok, unknown_cluster, failed, timeout).",
  ["plugin", "result"],
);

/** Where a call to `cluster` goes: "http(s)://host:port" plus TLS options, or a mesh service
 * reached through the node's upstream dialer (`mesh`), or why not. */
export interface Target {
  readonly base: string;
  readonly tls: Cluster["tls"];
  readonly mesh?: { readonly service: string; readonly port: number | undefined };
}

const ISTIO_CLUSTER = /^(?:outbound|inbound)\|(\d+)\|[^|]*\|(.+)$/;

/** `viaMesh`: may answer a mesh target (HTTP callouts); gRPC callouts still dial the address. */
export function resolveCluster(vm: ProxyWasmVm, name: string, viaMesh = true): Target | string {
  const st = vm.settings;
  const c = st.clusters.get(name);
  if (c?.base) return { base: c.base, tls: c.tls };
  let service = c?.service;
  let port = c?.port;
  if (!c) {
    const m = ISTIO_CLUSTER.exec(name);
    if (!m) return `unknown cluster "${name}" (declare it in the plugin's clusters)`;
    port = Number(m[1]);
    service = m[2];
  }
  // Through the mesh (HBONE, the calling workload's identity) when the node gives a dialer.
  if (viaMesh && st.dialService && !c?.tls) {
    return {
      base: `http://${service}${port ? `:${port}` : ""}`,
      tls: undefined,
      mesh: { service: service!, port },
    };
  }
  const addr = st.resolveService?.(service!, port);
  if (!addr) return `cluster "${name}": service ${service}${port ? `:${port}` : ""} not found`;
  return { base: `${c?.tls ? "https" : "http"}://${addr}`, tls: c?.tls };
}

/** A callout refused before it started: logged, counted, and the stream marked so that a PAUSE
 * right after it fails at once instead of waiting for a response that will never come. */
export function refuseCall(vm: ProxyWasmVm, name: string, why: string): void {
  callouts.inc({ plugin: vm.settings.name, result: "unknown_cluster" });
  log.warn("proxy-wasm http call refused", { plugin: vm.settings.name, cluster: name, error: why });
  vm.calloutFailed(vm.effective, `http call refused: ${why}`);
}

/** A mesh service call: the node's dialer (HBONE for mesh endpoints) and weft's own HTTP/1.1
 * codec over the stream; `:authority` becomes Host, as in Envoy. */
async function performMesh(
  dial: ServiceDial,
  mesh: NonNullable<Target["mesh"]>,
  local: string | undefined,
  headers: [string, string][],
  body: Uint8Array,
  signal: AbortSignal,
): Promise<HttpCallResult> {
  let method = "GET";
  let path = "/";
  const h: [string, string][] = [];
  for (const [k, v] of headers) {
    if (k === ":method") method = v;
    else if (k === ":path") path = v;
    else if (k === ":authority") h.unshift(["host", v]);
    else if (!k.startsWith(":") && k !== "host") h.push([k, v]);
  }
  if (!h.some(([k]) => k === "host")) h.unshift(["host", mesh.service]);
  const stream = await dial(mesh.service, mesh.port, local);
  const abort = (): void => {
    stream.destroy(new Error("callout aborted"));
  };
  if (signal.aborted) abort();
  signal.addEventListener("abort", abort, { once: true });
  try {
    const r = await httpExchange(stream, { method, path, headers: h, body }, MAX_RESPONSE_BYTES);
    return {
      status: r.status,
      headers: [[":status", String(r.status)], ...r.headers],
      body: r.body,
    };
  } finally {
    signal.removeEventListener("abort", abort);
  }
}

/** The workload a stream's callout is made for: the local end of its request. */
export function localOf(stream: StreamState | undefined): string | undefined {
  const req = stream?.req;
  if (!req) return undefined;
  return req.direction === "inbound" ? req.peer.destinationAddress : req.peer.sourceAddress;
}

/** node:http rather than fetch: fetch drops a caller-set Host, and `:authority` must become
 * the Host header as in Envoy. */
type Request = typeof import("node:http").request;
let clients: Promise<{ http: Request; https: Request }> | undefined;
/** node:http and node:https, imported on the first direct callout: on Bun they cost ~7 MB of
 * idle RSS in every node that merely loads the filter layer (measured: `bun -e` importing them),
 * and most nodes never make a callout outside the mesh. A failed import is retried next time. */
function httpClients(): Promise<{ http: Request; https: Request }> {
  return clients ??= Promise.all([import("node:http"), import("node:https")]).then(
    ([h, s]) => ({ http: h.request, https: s.request as Request }),
    (e: unknown) => {
      clients = undefined;
      throw e;
    },
  );
}

async function perform(
  target: Target,
  headers: [string, string][],
  body: Uint8Array,
  signal: AbortSignal,
): Promise<HttpCallResult> {
  let method = "GET";
  let path = "/";
  const h: Record<string, string | string[]> = {};
  for (const [k, v] of headers) {
    if (k === ":method") method = v;
    else if (k === ":path") path = v;
    else if (k === ":authority") h["host"] = v;
    else if (!k.startsWith(":") && k !== "host" && k !== "content-length") {
      const prev = h[k];
      h[k] = prev === undefined ? v : [...(Array.isArray(prev) ? prev : [prev]), v];
    }
  }
  if (body.length) h["content-length"] = String(body.length);
  const url = new URL(path, target.base);
  const https = url.protocol === "https:";
  const c = await httpClients();
  const send = https ? c.https : c.http;
  const opts = https && target.tls ? { ...target.tls } : {};
  return new Promise((resolve, reject) => {
    const req = send(url, { method, headers: h, signal, ...opts }, (res) => {
      const chunks: Uint8Array[] = [];
      let size = 0;
      res.on("data", (c: Uint8Array) => {
        size += c.length;
        if (size > MAX_RESPONSE_BYTES) res.destroy(new Error("callout response too large"));
        else chunks.push(c);
      });
      res.on("error", reject);
      res.on("end", () => {
        const out: [string, string][] = [[":status", String(res.statusCode ?? 0)]];
        const raw = res.rawHeaders;
        for (let i = 0; i + 1 < raw.length; i += 2) out.push([raw[i]!.toLowerCase(), raw[i + 1]!]);
        resolve({ status: res.statusCode ?? 0, headers: out, body: concat(chunks) });
      });
    });
    req.on("error", reject);
    req.end(body.length ? body : undefined);
  });
}

function concat(chunks: Uint8Array[]): Uint8Array {
  let n = 0;
  for (const c of chunks) n += c.length;
  const out = new Uint8Array(n);
  let at = 0;
  for (const c of chunks) {
    out.set(c, at);
    at += c.length;
  }
  return out;
}

export function startHttpCall(
  vm: ProxyWasmVm,
  id: number,
  cluster: string,
  target: Target,
  headers: [string, string][],
  body: Uint8Array,
  timeoutMs: number,
): void {
  const plugin = vm.settings.name;
  const stream: StreamState | undefined = vm.effective;
  if (stream) stream.calloutsInFlight++;
  const ac = new AbortController();
  const limit = timeoutMs || DEFAULT_TIMEOUT_MS;
  let timedOut = false;
  const timer = setTimeout(() => {
    timedOut = true;
    ac.abort();
  }, limit);
  const cancel = (): void => {
    clearTimeout(timer);
    ac.abort();
  };
  vm.callouts.add(cancel);
  const t0 = performance.now();
  const dial = vm.settings.dialService;
  const call = target.mesh && dial
    ? performMesh(dial, target.mesh, localOf(stream), headers, body, ac.signal)
    : perform(target, headers, body, ac.signal);
  call.then(
    (r) => {
      callouts.inc({ plugin, result: "ok" });
      return r;
    },
    (e) => {
      if (vm.dead) return undefined;
      const why = timedOut ? `timed out after ${limit} ms` : String(e);
      callouts.inc({ plugin, result: timedOut ? "timeout" : "failed" });
      log.warn("proxy-wasm http call failed", {
        plugin,
        cluster,
        upstream: target.base,
        error: why,
        ms: Math.round(performance.now() - t0),
      });
      vm.calloutFailed(stream, `http call to ${cluster} ${why}`);
      return undefined;
    },
  ).then((result) => {
    clearTimeout(timer);
    vm.callouts.delete(cancel);
    if (stream) stream.calloutsInFlight--;
    if (vm.dead) return;
    // The stream that made the call is gone (on_delete ran): Envoy cancels its calls, so its
    // result is not delivered (Kong/ngx_wasm_module#528).
    if (stream && !vm.streams.has(stream.id)) return;
    vm.httpCallResult = result;
    try {
      vm.callRoot(
        "proxy_on_http_call_response",
        id,
        result ? result.headers.length : 0,
        result ? result.body.length : 0,
        0,
      );
    } finally {
      vm.httpCallResult = undefined;
    }
    // The guest was told the call failed; a stream still paused on it, with nothing else in
    // flight, would otherwise wait for the pause timeout: fail it now (its fail policy answers).
    if (!result && stream) vm.failPausedAfterCallout(stream);
  });
}
