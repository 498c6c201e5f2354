/**
 * The node's plain TCP listeners (service VIPs, plaintext inbound) and the L7 proxy's TCP dials to
 * local workloads: node:net, or on Bun its native sockets (native_socket.ts) — the L7 proxy reads
 * the client connection itself, and on Bun the native layer costs less per request than
 * node:net's (bench/l7/socket_floor.ts). `WEFT_NODE_NET=1` keeps node:net on Bun. Accepted sockets
 * arrive paused (the handler resumes them) with Nagle off.
 */
import * as net from "node:net";
import { splitHostPort } from "./ip.ts";
import { errorMessage, WeftError } from "./errors.ts";
import type { Duplex } from "node:stream";
import { connectNative, listenNative, type NativeSocket, nativeSockets } from "./native_socket.ts";
import { dialTcp, TCP_KEEPALIVE_MS } from "./l4_conn.ts";
import { env } from "./runtime.ts";

export interface TcpListener {
  /** Stops accepting now; resolves once the connections it accepted have closed. Never
   * rejects. */
  close(): Promise<void>;
}

/** Whether plain TCP listeners use native sockets here (Bun, unless WEFT_NODE_NET=1). */
export function nativeListeners(): boolean {
  return nativeSockets && env("WEFT_NODE_NET") !== "1";
}

export function listenTcp(
  addr: string,
  onConn: (s: net.Socket) => void,
  opts: { readonly native?: boolean } = {},
): Promise<TcpListener> {
  const hp = splitHostPort(addr);
  if (!hp) {
    return Promise.reject(
      new WeftError("bad_listen_address", `Cannot listen: bad address ${addr}`),
    );
  }
  if (opts.native ?? nativeListeners()) return listenNativeTcp(addr, hp.host, hp.port, onConn);
  const server = net.createServer({ allowHalfOpen: true, pauseOnConnect: true }, (s) => {
    s.setNoDelay(true);
    s.setKeepAlive(true, TCP_KEEPALIVE_MS);
    onConn(s);
  });
  return new Promise((resolve, reject) => {
    server.once(
      "error",
      (e) =>
        reject(
          new WeftError("listen_failed", `Cannot listen on ${addr}: ${e.message}`, { cause: e }),
        ),
    );
    // SO_REUSEPORT (ztunnel's upgrade handover): a new process binds while the old one drains.
    server.listen(
      { port: hp.port, host: hp.host, reusePort: true },
      () => resolve({ close: () => new Promise((r) => server.close(() => r())) }),
    );
  });
}

function listenNativeTcp(
  addr: string,
  host: string,
  port: number,
  onConn: (s: net.Socket) => void,
): Promise<TcpListener> {
  const open = new Set<NativeSocket>();
  let emptied: (() => void) | undefined;
  try {
    const l = listenNative(host, port, (s) => {
      open.add(s);
      s.once("close", () => {
        open.delete(s);
        if (open.size === 0) emptied?.();
      });
      // The handlers take the Duplex subset NativeSocket implements (native_socket.ts).
      onConn(s as unknown as net.Socket);
    }, { pauseOnConnect: true });
    return Promise.resolve({
      close: () => {
        l.close(false);
        if (open.size === 0) return Promise.resolve();
        return new Promise<void>((r) => (emptied = r));
      },
    });
  } catch (e) {
    return Promise.reject(
      new WeftError("listen_failed", `Cannot listen on ${addr}: ${errorMessage(e)}`, { cause: e }),
    );
  }
}

/** A TCP connection for the L7 proxy (native on Bun, else l4_conn.ts's dialTcp), with dialTcp's
 * errors: connect_timeout, connect_failed. */
export function dialTcpL7(host: string, port: number, timeoutMs: number): Promise<Duplex> {
  if (!nativeListeners()) return dialTcp(host, port, timeoutMs);
  return connectNative(host, port, timeoutMs).then((s) => s.asDuplex());
}
