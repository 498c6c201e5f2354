/**
 * `proxy_grpc_call`: a unary gRPC call over HTTP/2 (h2c, or TLS for a cluster with `tls`) to a
 * declared cluster. The upstream argument is a cluster name, or a serialised GrpcService whose
 * `envoy_grpc.cluster_name` names one (what Envoy accepts). Results reach the root context as
 * Envoy delivers them: `proxy_on_grpc_receive_initial_metadata`, `proxy_on_grpc_receive`
 * (message in GRPC_CALL_MESSAGE), `proxy_on_grpc_receive_trailing_metadata`, then
 * `proxy_on_grpc_close(status)`. Transport failures close with UNAVAILABLE (14), the guest's
 * timeout with DEADLINE_EXCEEDED (4); both are logged and counted as `callout` errors.
 */
import { type ClientHttp2Session, connect, constants } from "node:http2";
import { Buffer } from "node:buffer";
import { logger } from "../../core/mod.ts";
import { resolveCluster, type Target } from "./http_call.ts";
import type { ProxyWasmVm, StreamState } from "./vm.ts";

const log = logger("proxy_wasm");
const DEFAULT_TIMEOUT_MS = 30_000;
const MAX_MESSAGE_BYTES = 4 * 1024 * 1024;
const UNAVAILABLE = 14;
const DEADLINE_EXCEEDED = 4;

/** What the guest may read while one gRPC callback runs. */
export interface GrpcDelivery {
  readonly initial?: [string, string][];
  readonly message?: Uint8Array;
  readonly trailing?: [string, string][];
  readonly status?: number;
  readonly statusMessage?: string;
}

/** The cluster a proxy_grpc_call names: a plain name, or GrpcService.envoy_grpc.cluster_name. */
export function grpcClusterName(raw: Uint8Array): string {
  // GrpcService { envoy_grpc (1): EnvoyGrpc { cluster_name (1): string } }
  if (raw[0] === 0x0a) {
    const [outerLen, o] = varint(raw, 1);
    if (o + outerLen === raw.length && raw[o] === 0x0a) {
      const [len, i] = varint(raw, o + 1);
      if (i + len <= o + outerLen) return new TextDecoder().decode(raw.subarray(i, i + len));
    }
  }
  return new TextDecoder().decode(raw);
}

function varint(b: Uint8Array, at: number): [number, number] {
  let v = 0;
  let shift = 0;
  while (at < b.length && shift < 35) {
    const x = b[at++]!;
    v |= (x & 0x7f) << shift;
    if ((x & 0x80) === 0) return [v >>> 0, at];
    shift += 7;
  }
  return [-1, b.length + 1];
}

export function resolveGrpcCluster(vm: ProxyWasmVm, raw: Uint8Array): Target | string {
  return resolveCluster(vm, grpcClusterName(raw), false);
}

function frame(message: Uint8Array): Uint8Array {
  const out = new Uint8Array(5 + message.length);
  new DataView(out.buffer).setUint32(1, message.length);
  out.set(message, 5);
  return out;
}

function pairsOf(h: Record<string, string | string[] | undefined>): [string, string][] {
  const out: [string, string][] = [];
  for (const [k, v] of Object.entries(h)) {
    if (k.startsWith(":") || v === undefined) continue;
    for (const one of Array.isArray(v) ? v : [v]) out.push([k, String(one)]);
  }
  return out;
}

interface Outcome {
  initial: [string, string][] | undefined;
  message: Uint8Array | undefined;
  trailing: [string, string][];
  status: number;
  statusMessage: string;
}

function perform(
  target: Target,
  path: string,
  metadata: [string, string][],
  message: Uint8Array,
  timeoutMs: number,
  onSession: (s: ClientHttp2Session) => void,
): Promise<Outcome> {
  return new Promise((resolve) => {
    const https = target.base.startsWith("https:");
    const session = connect(target.base, https && target.tls ? { ...target.tls } : {});
    onSession(session);
    let initial: [string, string][] | undefined;
    let trailing: [string, string][] = [];
    const chunks: Buffer[] = [];
    let size = 0;
    let settled = false;
    const finish = (o: Outcome): void => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      session.close();
      resolve(o);
    };
    const fail = (status: number, why: string): void =>
      finish({ initial, message: undefined, trailing, status, statusMessage: why });
    const timer = setTimeout(
      () => fail(DEADLINE_EXCEEDED, `deadline of ${timeoutMs} ms exceeded`),
      timeoutMs,
    );
    session.on("error", (e) => fail(UNAVAILABLE, String(e)));
    const headers: Record<string, string | string[]> = {
      ":method": "POST",
      ":path": path,
      "content-type": "application/grpc",
      te: "trailers",
      "grpc-timeout": `${timeoutMs}m`,
    };
    for (const [k, v] of metadata) {
      if (k.startsWith(":")) continue;
      const prev = headers[k];
      headers[k] = prev === undefined ? v : [...(Array.isArray(prev) ? prev : [prev]), v];
    }
    const req = session.request(headers, { endStream: false });
    req.on("error", (e) => fail(UNAVAILABLE, String(e)));
    req.on("response", (h) => {
      initial = pairsOf(h as Record<string, string>);
      const st = (h as Record<string, string>)["grpc-status"];
      if (st !== undefined) trailing = initial; // trailers-only response
    });
    req.on("data", (c: Buffer) => {
      size += c.length;
      if (size > MAX_MESSAGE_BYTES) fail(UNAVAILABLE, "response message too large");
      else chunks.push(c);
    });
    req.on("trailers", (t) => (trailing = pairsOf(t as Record<string, string>)));
    req.on("close", () => {
      const all = Buffer.concat(chunks);
      const get = (k: string) => trailing.find(([n]) => n === k)?.[1];
      const status = req.rstCode && req.rstCode !== constants.NGHTTP2_NO_ERROR
        ? UNAVAILABLE
        : Number(get("grpc-status") ?? UNAVAILABLE);
      const len = all.length >= 5 ? all.readUInt32BE(1) : 0;
      finish({
        initial,
        message: all.length >= 5 ? new Uint8Array(all.subarray(5, 5 + len)) : undefined,
        trailing,
        status: Number.isInteger(status) ? status : UNAVAILABLE,
        statusMessage: decodeURIComponent(get("grpc-message") ?? ""),
      });
    });
    req.end(Buffer.from(frame(message)));
  });
}

/** Start the call; callbacks are delivered later on the root context. */
export function startGrpcCall(
  vm: ProxyWasmVm,
  id: number,
  cluster: string,
  target: Target,
  path: string,
  metadata: [string, string][],
  message: Uint8Array,
  timeoutMs: number,
): void {
  const plugin = vm.settings.name;
  const stream: StreamState | undefined = vm.effective;
  if (stream) stream.calloutsInFlight++;
  let session: ClientHttp2Session | undefined;
  let cancelled = false;
  const cancel = (): void => {
    cancelled = true;
    session?.destroy();
  };
  vm.callouts.add(cancel);
  vm.grpcCancels.set(id, cancel);
  const limit = timeoutMs || DEFAULT_TIMEOUT_MS;
  perform(target, path, metadata, message, limit, (s) => (session = s)).then((o) => {
    vm.callouts.delete(cancel);
    vm.grpcCancels.delete(id);
    if (stream) stream.calloutsInFlight--;
    if (cancelled || vm.dead) return;
    if (o.status !== 0) {
      log.warn("proxy-wasm grpc call failed", {
        plugin,
        cluster,
        path,
        status: o.status,
        error: o.statusMessage,
      });
      vm.calloutFailed(stream, `grpc call to ${cluster}${path} ended with status ${o.status}`);
    }
    const deliver = (d: GrpcDelivery, name: string, ...args: number[]): void => {
      if (vm.dead) return;
      vm.grpc = d;
      try {
        vm.callRoot(name, id, ...args);
      } finally {
        vm.grpc = undefined;
      }
    };
    if (o.initial?.length) {
      deliver({ initial: o.initial }, "proxy_on_grpc_receive_initial_metadata", o.initial.length);
    }
    if (o.message) deliver({ message: o.message }, "proxy_on_grpc_receive", o.message.length);
    if (o.trailing.length) {
      deliver(
        { trailing: o.trailing },
        "proxy_on_grpc_receive_trailing_metadata",
        o.trailing.length,
      );
    }
    deliver(
      { status: o.status, statusMessage: o.statusMessage },
      "proxy_on_grpc_close",
      o.status,
    );
    if (o.status !== 0 && stream) vm.failPausedAfterCallout(stream);
  });
}
