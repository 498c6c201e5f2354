/**
 * One gRPC call or stream of a proxy-wasm VM on weft's own HTTP/2 client (src/core/h2): the
 * transport (TCP, TLS with ALPN h2, or the node's mesh dialer for a service cluster), the request
 * (messages framed as they are sent; a unary call sends one and ends), and the deliveries to the
 * root context as the response arrives (initial metadata once, each message, trailing metadata,
 * then close with the grpc-status). grpc_call.ts documents the ABI side.
 */
import type { Duplex } from "node:stream";
import { Buffer } from "node:buffer";
import { connect as tcpConnect, isIP } from "node:net";
import { connect as tlsConnect } from "node:tls";
import { H2Session, type H2Stream, logger } from "../../core/mod.ts";
import { localOf, type Target } from "./http_call.ts";
import type { GrpcDelivery } from "./grpc_call.ts";
import type { ProxyWasmVm, StreamState } from "./vm.ts";

const log = logger("proxy_wasm");
const MAX_MESSAGE_BYTES = 4 * 1024 * 1024;
const UNAVAILABLE = 14;
const DEADLINE_EXCEEDED = 4;
const EMPTY = new Uint8Array(0);

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
  return new Promise((resolve, reject) => {
    const s = tls
      ? tlsConnect({
        host,
        port,
        ALPNProtocols: ["h2"],
        ...(isIP(host) ? {} : { servername: host }),
        ...target.tls,
      })
      : tcpConnect({ host, port });
    s.once(tls ? "secureConnect" : "connect", () => {
      s.off("error", reject);
      s.on("error", () => {}); // the HTTP/2 session sees the close
      resolve(s);
    });
    s.once("error", reject);
  });
}

function framed(message: Uint8Array): Uint8Array {
  const out = new Uint8Array(5 + message.length);
  new DataView(out.buffer).setUint32(1, message.length);
  out.set(message, 5);
  return out;
}

export class GrpcExchange {
  private session: H2Session | undefined;
  private up: H2Stream | undefined;
  private readonly stream: StreamState | undefined;
  private queued: { bytes: Uint8Array; end: boolean }[] = [];
  private localEnded = false;
  private done = false;
  private cancelled = false;
  private initialSent = false;
  private timer: ReturnType<typeof setTimeout> | undefined;

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
    if (first || end) this.queued.push({ bytes: first ? framed(first) : EMPTY, end });
    this.localEnded = end;
    if (this.timeoutMs) {
      this.timer = setTimeout(
        () => this.finish(DEADLINE_EXCEEDED, `deadline of ${this.timeoutMs} ms exceeded`),
        this.timeoutMs,
      );
    }
    openTransport(this.vm, this.target, localOf(this.stream)).then(
      (sock) => this.connected(sock),
      (e) => this.finish(UNAVAILABLE, String(e)),
    );
  }

  /** `proxy_grpc_send`: false once the local side is closed. */
  send(message: Uint8Array, end: boolean): boolean {
    if (this.localEnded || this.done) return false;
    this.localEnded = end;
    this.write(framed(message), end);
    return true;
  }

  /** `proxy_grpc_close`: a call is cancelled, a stream half-closed (its replies still come). */
  close(): void {
    if (this.timeoutMs) return this.cancel();
    if (this.localEnded || this.done) return;
    this.localEnded = true;
    this.write(EMPTY, true);
  }

  /** `proxy_grpc_cancel`, or the VM's death: reset, no more callbacks. */
  readonly cancel = (): void => {
    this.cancelled = true;
    this.finish(UNAVAILABLE, "cancelled");
  };

  private write(bytes: Uint8Array, end: boolean): void {
    const up = this.up;
    if (!up) return void this.queued.push({ bytes, end });
    if (bytes.length) up.write(bytes);
    if (end) up.end();
  }

  private connected(sock: Duplex): void {
    if (this.done) return void sock.destroy();
    const session = new H2Session(sock, "client", {
      streamWindowBytes: 1 << 20,
      connectionWindowBytes: 4 << 20,
      maxFrameBytes: 16384,
    });
    this.session = session;
    const authority = this.target.mesh
      ? `${this.target.mesh.service}${this.target.mesh.port ? `:${this.target.mesh.port}` : ""}`
      : new URL(this.target.base).host;
    const h: [string, string][] = [
      [":method", "POST"],
      [":scheme", this.target.base.startsWith("https:") ? "https" : "http"],
      [":authority", authority],
      [":path", this.path],
      ["content-type", "application/grpc"],
      ["te", "trailers"],
    ];
    if (this.timeoutMs) h.push(["grpc-timeout", `${this.timeoutMs}m`]);
    for (const [k, v] of this.metadata) if (!k.startsWith(":")) h.push([k.toLowerCase(), v]);
    let up: H2Stream;
    let response: Promise<{ status: number }>;
    try {
      ({ stream: up, response } = session.request(h, false));
    } catch (e) {
      return this.finish(UNAVAILABLE, String(e));
    }
    this.up = up;
    up.on("error", () => {});
    for (const q of this.queued.splice(0)) this.write(q.bytes, q.end);
    response.then(() => this.initial(), (e) => this.finish(UNAVAILABLE, String(e)));
    let buf: Buffer = Buffer.alloc(0);
    up.on("data", (c: Buffer) => {
      this.initial();
      buf = buf.length ? Buffer.concat([buf, c]) : c;
      while (buf.length >= 5 && !this.done) {
        const len = buf.readUInt32BE(1);
        if (len > MAX_MESSAGE_BYTES) return this.finish(UNAVAILABLE, "response message too large");
        if (buf.length < 5 + len) break;
        const message = new Uint8Array(buf.subarray(5, 5 + len));
        buf = buf.subarray(5 + len);
        this.deliver({ message }, "proxy_on_grpc_receive", message.length);
      }
    });
    up.on("end", () => this.ended(up));
    up.on("close", () => this.finish(UNAVAILABLE, "stream reset"));
  }

  /** Initial metadata, once, before any message. */
  private initial(): void {
    if (this.initialSent || !this.up) return;
    this.initialSent = true;
    const initial = this.up.headerList.filter(([k]) => !k.startsWith(":"));
    if (this.up.trailers === undefined && initial.some(([k]) => k === "grpc-status")) return;
    if (initial.length) {
      this.deliver({ initial }, "proxy_on_grpc_receive_initial_metadata", initial.length);
    }
  }

  private ended(up: H2Stream): void {
    this.initial();
    // Trailers, or a trailers-only response (grpc-status in the only header block).
    const trailing = (up.trailers ?? up.headerList).filter(([k]) => !k.startsWith(":"));
    const get = (k: string) => trailing.find(([n]) => n === k)?.[1];
    if (trailing.length) {
      this.deliver({ trailing }, "proxy_on_grpc_receive_trailing_metadata", trailing.length);
    }
    const status = Number(get("grpc-status") ?? UNAVAILABLE);
    let message = get("grpc-message") ?? "";
    try {
      message = decodeURIComponent(message);
    } catch { /* not percent-encoded: as sent */ }
    this.finish(Number.isInteger(status) ? status : UNAVAILABLE, message);
  }

  private deliver(d: GrpcDelivery, name: string, ...args: number[]): void {
    if (this.vm.dead || this.cancelled || this.done) return;
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
    clearTimeout(this.timer);
    this.vm.callouts.delete(this.cancel);
    this.vm.grpcCalls.delete(this.id);
    if (this.stream) this.stream.calloutsInFlight--;
    this.up?.destroy();
    this.session?.destroy();
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
