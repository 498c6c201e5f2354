/**
 * A gRPC client channel on weft's own HTTP/2 (src/core/h2): one `H2Session` to one server,
 * dialled on the first call and again on the first call after it went away (GOAWAY, a closed
 * socket, a failed keepalive PING), shared by the calls in between. Calls on a session that dies
 * end with UNAVAILABLE (grpc_call.ts); reconnecting with back-off is the caller's policy (the xDS
 * client's), so a channel never retries by itself. `dialGrpc` makes the transport: TCP for h2c
 * with prior knowledge, or TLS that must negotiate ALPN h2. Used by the xDS ADS and CA clients
 * (src/xds) and proxy-wasm's gRPC calls (src/filters/proxy_wasm); nothing here runs node:http2.
 */
import type { Duplex } from "node:stream";
import { connect as tcpConnect } from "node:net";
import { connect as tlsConnect, type ConnectionOptions, type TLSSocket } from "node:tls";
import { errorMessage, WeftError } from "./errors.ts";
import { H2Session, type H2SessionOptions } from "./h2/mod.ts";
import { GrpcCall, type GrpcCallHandlers, type GrpcCallOptions } from "./grpc_call.ts";
import { GrpcCode, GrpcError, type GrpcStatus } from "./grpc_status.ts";

export interface GrpcChannelOptions {
  /** Opens a connected transport (`dialGrpc`, or an HBONE stream for a mesh service). */
  readonly connect: () => Promise<Duplex>;
  /** `:authority` of every call ("host:port"). */
  readonly authority: string;
  readonly scheme: "http" | "https";
  /** HTTP/2 PING keepalive: a silent dead peer fails the session (and its calls) after this. */
  readonly keepalive?: { readonly intervalMs: number; readonly timeoutMs: number };
  /** Windows and frame size of the session (defaults: 4 MiB per stream, 16 MiB per session). */
  readonly session?: H2SessionOptions;
}

export class GrpcChannel {
  #session: H2Session | undefined;
  /** Every open session: the current one, and older ones still finishing their calls. */
  readonly #sessions = new Set<H2Session>();
  #dialing: Promise<H2Session> | undefined;
  #closed = false;

  constructor(private readonly opts: GrpcChannelOptions) {}

  /** Start a call; its handlers run later (never inside this call). */
  call(opts: GrpcCallOptions, handlers: GrpcCallHandlers): GrpcCall {
    const c = new GrpcCall(opts, handlers);
    const s = this.#session;
    const session = s?.usable ? Promise.resolve(s) : this.#dial();
    session.then(
      (s) => c.open(s, this.opts.authority, this.opts.scheme),
      (err) => c.fail(errorMessage(err)),
    );
    return c;
  }

  /** One request message, one response message (or a GrpcError with the status). */
  unary(opts: GrpcCallOptions, message: Uint8Array): Promise<Uint8Array> {
    return new Promise((resolve, reject) => {
      let reply: Uint8Array | undefined;
      const c = this.call(opts, {
        onMessage: (m) => {
          if (reply === undefined) reply = m;
          else c.cancel("a unary call got a second response message");
        },
        onClose: (st: GrpcStatus) => {
          if (st.code !== GrpcCode.OK) reject(new GrpcError(st));
          else if (reply === undefined) {
            reject(new GrpcError({ ...st, code: GrpcCode.INTERNAL, message: "no response" }));
          } else resolve(reply);
        },
      });
      c.send(message);
      c.end();
    });
  }

  /** Close the connection now; calls still open end with UNAVAILABLE. */
  close(): void {
    this.#closed = true;
    for (const s of this.#sessions) s.destroy();
    this.#sessions.clear();
    this.#session = undefined;
  }

  #dial(): Promise<H2Session> {
    if (this.#closed) {
      return Promise.reject(new WeftError("grpc_closed", "Cannot call: the channel is closed"));
    }
    if (this.#dialing) return this.#dialing;
    const p = this.opts.connect().then((sock) => {
      if (this.#closed || sock.destroyed) {
        sock.destroy();
        throw new WeftError("grpc_closed", "Cannot call: the channel closed while dialling");
      }
      const s = new H2Session(sock, "client", {
        ...this.opts.session,
        ...(this.opts.keepalive ? { keepalive: this.opts.keepalive } : {}),
      });
      // A session replaced while still usable (the peer's stream limit) drains: its calls
      // finish, then it closes (one after GOAWAY closes by itself).
      this.#session?.close().catch(() => {}); // `closed` never rejects
      this.#session = s;
      this.#sessions.add(s);
      s.closed.then(() => {
        this.#sessions.delete(s);
        if (this.#session === s) this.#session = undefined;
      });
      return s;
    });
    this.#dialing = p;
    const clear = () => {
      if (this.#dialing === p) this.#dialing = undefined;
    };
    p.then(clear, clear);
    return p;
  }
}

export interface GrpcTarget {
  readonly host: string;
  readonly port: number;
  /** node:tls options (ca, cert, key, servername, checkServerIdentity); absent: h2c. */
  readonly tls?: ConnectionOptions;
  /** Default 10 s. */
  readonly connectTimeoutMs?: number;
}

/** TCP (h2c prior knowledge) or TLS with ALPN h2 to `target`. */
export function dialGrpc(target: GrpcTarget): Promise<Duplex> {
  return new Promise((resolve, reject) => {
    const where = `${target.host}:${target.port}`;
    const s = target.tls
      ? tlsConnect({ ...target.tls, host: target.host, port: target.port, ALPNProtocols: ["h2"] })
      : tcpConnect({ host: target.host, port: target.port });
    const timer = setTimeout(() => {
      s.destroy();
      reject(new WeftError("grpc_connect", `Cannot connect to ${where}: timed out`));
    }, target.connectTimeoutMs ?? 10_000);
    const failed = (err: Error) => {
      clearTimeout(timer);
      reject(new WeftError("grpc_connect", `Cannot connect to ${where}: ${err.message}`));
    };
    s.once("error", failed);
    s.once(target.tls ? "secureConnect" : "connect", () => {
      clearTimeout(timer);
      s.off("error", failed);
      s.on("error", () => {}); // the HTTP/2 session sees the close
      const alpn = target.tls ? (s as TLSSocket).alpnProtocol : "h2";
      if (alpn !== "h2") {
        s.destroy();
        return reject(
          new WeftError("grpc_connect", `Cannot use ${where}: the server did not agree to h2`),
        );
      }
      if (!target.tls) (s as { setNoDelay?: (on: boolean) => void }).setNoDelay?.(true);
      resolve(s);
    });
  });
}
