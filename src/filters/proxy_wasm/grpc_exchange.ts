/**
 * One gRPC call or stream of a proxy-wasm VM on weft's gRPC client (src/core `GrpcChannel`, on
 * weft's own HTTP/2): the transport (TCP, TLS with ALPN h2, or the node's mesh dialer for a
 * service cluster; one connection per call), and the deliveries to the root context as the
 * response arrives (initial metadata once, each message, trailing metadata, then close with the
 * grpc-status). grpc_call.ts documents the ABI side.
 */
import type { Duplex } from "node:stream";
import { isIP } from "node:net";
import { dialGrpc, type GrpcCall, GrpcChannel, logger } from "../../core/mod.ts";
import { localOf, type Target } from "./http_call.ts";
import type { GrpcDelivery } from "./grpc_call.ts";
import type { ProxyWasmVm, StreamState } from "./vm.ts";

const log = logger("proxy_wasm");
const MAX_MESSAGE_BYTES = 4 * 1024 * 1024;
const UNAVAILABLE = 14;

function openTransport(
  vm: ProxyWasmVm,
  target: Target,
  local: string | undefined,
): Promise<Duplex> {
  const dial = vm.settings.dialService;
  if (target.mesh && dial) return dial(target.mesh.service, target.mesh.port, local);
  const url = new URL(target.base);
  const tls = url.protocol === "https:";
  const host = url.hostname.replace(/^\[(.*)\]$/, "$1");
  const port = Number(url.port) || (tls ? 443 : 80);
  return dialGrpc({
    host,
    port,
    ...(tls ? { tls: { ...(isIP(host) ? {} : { servername: host }), ...target.tls } } : {}),
  });
}

export class GrpcExchange {
  private channel: GrpcChannel | undefined;
  private call: GrpcCall | undefined;
  private readonly stream: StreamState | undefined;
  private localEnded = false;
  private done = false;
  private cancelled = false;

  constructor(
    private readonly vm: ProxyWasmVm,
    readonly id: number,
    private readonly cluster: string,
    private readonly target: Target,
    private readonly path: string,
    private readonly metadata: readonly [string, string][],
    /** 0 for a stream (no deadline); a unary call's deadline otherwise. */
    private readonly timeoutMs: number,
  ) {
    this.stream = vm.effective;
    if (this.stream) this.stream.calloutsInFlight++;
    vm.callouts.add(this.cancel);
    vm.grpcCalls.set(id, this);
  }

  /** Opens the call; `first` (a unary call's message) goes with the head, `end` half-closes. */
  start(first: Uint8Array | undefined, end: boolean): void {
    this.localEnded = end;
    const t = this.target;
    const local = localOf(this.stream);
    this.channel = new GrpcChannel({
      connect: () => openTransport(this.vm, t, local),
      authority: t.mesh
        ? `${t.mesh.service}${t.mesh.port ? `:${t.mesh.port}` : ""}`
        : new URL(t.base).host,
      scheme: t.base.startsWith("https:") ? "https" : "http",
      session: { streamWindowBytes: 1 << 20, connectionWindowBytes: 4 << 20, maxFrameBytes: 16384 },
    });
    const call = this.channel.call({
      path: this.path,
      metadata: this.metadata,
      maxMessageBytes: MAX_MESSAGE_BYTES,
      ...(this.timeoutMs ? { deadlineMs: this.timeoutMs } : {}),
    }, {
      onHeaders: (initial) => {
        if (initial.length) {
          this.deliver(
            { initial: [...initial] },
            "proxy_on_grpc_receive_initial_metadata",
            initial.length,
          );
        }
      },
      onMessage: (message) => this.deliver({ message }, "proxy_on_grpc_receive", message.length),
      onClose: (st) => {
        if (st.trailers.length) {
          this.deliver(
            { trailing: [...st.trailers] },
            "proxy_on_grpc_receive_trailing_metadata",
            st.trailers.length,
          );
        }
        this.finish(st.code, st.message);
      },
    });
    this.call = call;
    if (first) call.send(first);
    if (end) call.end();
  }

  /** `proxy_grpc_send`: false once the local side is closed. */
  send(message: Uint8Array, end: boolean): boolean {
    if (this.localEnded || this.done || !this.call) return false;
    this.localEnded = end;
    this.call.send(message);
    if (end) this.call.end();
    return true;
  }

  /** `proxy_grpc_close`: a call is cancelled, a stream half-closed (its replies still come). */
  close(): void {
    if (this.timeoutMs) return this.cancel();
    if (this.localEnded || this.done) return;
    this.localEnded = true;
    this.call?.end();
  }

  /** `proxy_grpc_cancel`, or the VM's death: reset, no more callbacks. */
  readonly cancel = (): void => {
    this.cancelled = true;
    this.finish(UNAVAILABLE, "cancelled");
  };

  private deliver(d: GrpcDelivery, name: string, ...args: number[]): void {
    if (this.vm.dead || this.cancelled || this.done) return;
    // The stream that made the call is gone (on_delete ran): Envoy cancels its calls; nothing
    // more is delivered for it (Kong/ngx_wasm_module#528).
    if (this.stream && !this.vm.streams.has(this.stream.id)) return this.cancel();
    this.vm.grpc = d;
    try {
      this.vm.callRoot(name, this.id, ...args);
    } finally {
      this.vm.grpc = undefined;
    }
  }

  private finish(status: number, why: string): void {
    if (this.done) return;
    this.deliverClose(status, why);
    this.done = true;
    this.vm.callouts.delete(this.cancel);
    this.vm.grpcCalls.delete(this.id);
    if (this.stream) this.stream.calloutsInFlight--;
    this.call?.cancel(why); // no-op once the call ended by itself
    this.channel?.close();
    if (status !== 0 && this.stream && !this.cancelled && !this.vm.dead) {
      this.vm.failPausedAfterCallout(this.stream);
    }
  }

  private deliverClose(status: number, why: string): void {
    if (this.cancelled || this.vm.dead) return;
    if (status !== 0) {
      log.warn("proxy-wasm grpc call failed", {
        plugin: this.vm.settings.name,
        cluster: this.cluster,
        path: this.path,
        status,
        error: why,
      });
      this.vm.calloutFailed(
        this.stream,
        `grpc call to ${this.cluster}${this.path} ended with status ${status}`,
      );
    }
    this.deliver({ status, statusMessage: why }, "proxy_on_grpc_close", status);
  }
}
