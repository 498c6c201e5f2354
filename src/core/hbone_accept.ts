/**
 * The TLS accept layer of an HBONE listener (before any HTTP/2): handshake options that make
 * node:tls refuse a missing, untrusted, expired or not-yet-valid client certificate inside the
 * handshake; a handshake timeout; a per-listener cap on pending (pre-handshake) connections that
 * also counts against `maxConnections`; and the SPIFFE checks node:tls cannot do in the
 * handshake (one URI SAN, trust domain), run on 'secureConnection' ahead of the HTTP/2 layer so
 * a refused peer's socket is destroyed before a session or SETTINGS exists. Small functions over
 * a tls.Server so the HTTP/2 engine above them can change independently.
 */
import type { Server as TlsServer, TLSSocket } from "node:tls";
import type { Socket } from "node:net";
import type { PeerVerdict, TlsMaterial } from "./transport.ts";
import { metrics } from "./metrics.ts";
import { hboneContext } from "./hbone_tls.ts";

/** Defaults: ztunnel/Envoy-like 10 s handshake budget; pending handshakes per listener. */
export const HANDSHAKE_TIMEOUT_MS = 10_000;
export const MAX_PENDING_HANDSHAKES = 256;

const pendingGauge = metrics.gauge(
  "weft_hbone_pending_handshakes",
  "Connections accepted on HBONE listeners whose TLS handshake has not completed",
);

/** Server TLS options: mTLS refused in the handshake where node:tls can (see ARCHITECTURE.md). */
export function hboneTlsOptions(m: TlsMaterial, handshakeTimeoutMs = HANDSHAKE_TIMEOUT_MS): {
  cert: string;
  key: string;
  ca: string;
  ciphers: string;
  requestCert: true;
  rejectUnauthorized: true;
  handshakeTimeout: number;
} {
  return {
    ...hboneContext(m),
    requestCert: true,
    rejectUnauthorized: true,
    handshakeTimeout: handshakeTimeoutMs,
  };
}

/** Both ends of one TCP connection, the same on the raw socket and on its TLSSocket. */
function connKey(
  s: { remoteAddress?: string | undefined; remotePort?: number | undefined },
): string {
  return `${s.remoteAddress ?? ""}|${s.remotePort ?? 0}`;
}

export interface PendingCap {
  readonly maxPending: () => number;
  /** Take one slot of the node-wide connection budget (maxConnections); false = full. */
  readonly reserve: () => boolean;
  readonly release: () => void;
  readonly refuse: (reason: "hbone_pending_limit") => void;
}

/** Counts connections from accept until their handshake completes or they close; beyond the cap
 * (or the node's connection budget) a new connection is closed at once. */
export function capPendingHandshakes(server: TlsServer, cap: PendingCap): { pending(): number } {
  const open = new Map<string, () => void>();
  server.on("connection", (sock: Socket) => {
    if (open.size >= cap.maxPending() || !cap.reserve()) {
      cap.refuse("hbone_pending_limit");
      sock.destroy();
      return;
    }
    const key = connKey(sock);
    let done = false;
    const finish = (): void => {
      if (done) return;
      done = true;
      if (open.get(key) === finish) open.delete(key);
      pendingGauge.add({}, -1);
      cap.release();
    };
    open.set(key, finish);
    pendingGauge.add({}, 1);
    sock.once("close", finish);
  });
  server.prependListener("secureConnection", (tls: TLSSocket) => open.get(connKey(tls))?.());
  return { pending: () => open.size };
}

/** Runs `verify` on every completed handshake before the HTTP/2 layer sees the socket; a refused
 * peer's socket is destroyed there (no session, no SETTINGS). Returns the verified identity of a
 * connection by its socket (as the HTTP/2 session reports it) and forgets it. */
export function verifyBeforeSession(
  server: TlsServer,
  verify: (sock: TLSSocket) => PeerVerdict,
  onRefused: (v: Extract<PeerVerdict, { ok: false }>) => void,
): (
  sock: { remoteAddress?: string | undefined; remotePort?: number | undefined },
) => string | undefined {
  const verified = new Map<string, string>();
  server.prependListener("secureConnection", (tls: TLSSocket) => {
    const v = verify(tls);
    if (!v.ok) {
      onRefused(v);
      tls.destroy();
      return;
    }
    const key = connKey(tls);
    verified.set(key, v.identity);
    tls.once("close", () => verified.delete(key));
  });
  return (sock) => {
    const key = connKey(sock);
    const id = verified.get(key);
    verified.delete(key);
    return id;
  };
}

/** True for node:tls handshake-timeout errors (Deno, Bun and Node name them alike). */
export function isHandshakeTimeout(err: unknown): boolean {
  const e = err as { code?: unknown; message?: unknown } | undefined;
  return e?.code === "ERR_TLS_HANDSHAKE_TIMEOUT" ||
    (typeof e?.message === "string" && /handshake time/i.test(e.message));
}
