/**
 * `proxy_grpc_call` (unary) and `proxy_grpc_stream` / `proxy_grpc_send` (streams) to a declared
 * cluster, on weft's gRPC client (src/core GrpcChannel, weft's own HTTP/2; the xDS clients use the
 * same) with a connection per call: h2c, TLS with ALPN h2
 * for a cluster with `tls`, or, for a cluster that names a mesh service, an HBONE stream from the
 * node's upstream dialer (as HTTP callouts). The upstream argument is a cluster name, or a
 * serialised GrpcService whose `envoy_grpc.cluster_name` names one (what Envoy accepts). Results
 * reach the root context as Envoy delivers them, as they arrive:
 * `proxy_on_grpc_receive_initial_metadata`, `proxy_on_grpc_receive` per message (in
 * GRPC_CALL_MESSAGE), `proxy_on_grpc_receive_trailing_metadata`, then `proxy_on_grpc_close(status)`.
 * As Envoy's context.cc: `proxy_grpc_close` cancels a call and half-closes a stream (replies still
 * come), `proxy_grpc_cancel` resets either with no more callbacks. Transport failures close with
 * UNAVAILABLE (14), a unary call's timeout with DEADLINE_EXCEEDED (4); both are logged and counted
 * as `callout` errors.
 */
import { resolveCluster, type Target } from "./http_call.ts";
import { GrpcExchange } from "./grpc_exchange.ts";
import type { ProxyWasmVm } from "./vm.ts";

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
  return resolveCluster(vm, grpcClusterName(raw));
}

/** Start a unary call; callbacks are delivered later on the root context. */
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
  const x = new GrpcExchange(vm, id, cluster, target, path, metadata, timeoutMs || 30_000);
  x.start(message, true);
}

/** Open a stream; messages go with `proxy_grpc_send` (grpc_exchange.ts keeps it by id). */
export function startGrpcStream(
  vm: ProxyWasmVm,
  id: number,
  cluster: string,
  target: Target,
  path: string,
  metadata: [string, string][],
): void {
  new GrpcExchange(vm, id, cluster, target, path, metadata, 0).start(undefined, false);
}
