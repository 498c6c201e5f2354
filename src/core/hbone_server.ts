/**
 * HBONE server for one local workload on <workload ip>:<hbonePort>, presenting that workload's
 * identity (no SNI: the listening address decides the certificate, ztunnel's in-pod mode). Runs
 * ztunnel's checks in order (hbone.md §7): CONNECT only and a parsable authority (400), a local
 * destination on this listener (400), authorization (401), upstream connect (503), then 200.
 */
import type { Duplex } from "node:stream";
import { L7Dispatch, peerInfo } from "./l7_dispatch.ts";
import * as http2 from "node:http2";
import type { TLSSocket } from "node:tls";
import type { AuthzDecision, L4Attributes } from "./authz.ts";
import type { Snapshot, Workload } from "./snapshot.ts";
import type { IdentityProvider, TlsMaterial } from "./transport.ts";
import { type ConnTable, dialTcp } from "./l4_conn.ts";
import { emptyInfo, l4Metrics } from "./l4_telemetry.ts";
import { H2_MAX_FRAME, H2_STREAM_WINDOW, raiseConnectionWindow } from "./hbone_client.ts";
import { PING_INTERVAL_MS, PING_TIMEOUT_MS } from "./hbone_pool.ts";
import { joinHostPort, splitHostPort } from "./ip.ts";
import {
  capPendingHandshakes,
  HANDSHAKE_TIMEOUT_MS,
  hboneTlsOptions,
  isHandshakeTimeout,
  MAX_PENDING_HANDSHAKES,
  verifyBeforeSession,
} from "./hbone_accept.ts";
import { errorMessage } from "./errors.ts";
import { logger } from "./log.ts";

const log = logger("hbone");

export type Authorize = (s: Snapshot, w: Workload, a: L4Attributes) => AuthzDecision;

export interface InboundDeps {
  readonly snapshot: () => Snapshot;
  readonly identity: IdentityProvider;
  readonly conns: ConnTable;
  readonly authorize: Authorize;
  /** L7 chains for inbound service ports (undefined: everything stays L4). */
  readonly l7?: L7Dispatch | undefined;
  /** TLS handshake budget on 15008 (default 10 s). */
  readonly handshakeTimeoutMs?: () => number;
  /** Pending (pre-handshake) connections per HBONE listener (default 256). */
  readonly maxPendingHandshakes?: () => number;
  /** In-pod mode: dial the workload from inside its network namespace, as `srcIp` when the
   * kernel allows (default dialTcp). */
  readonly dial?:
    | ((host: string, port: number, timeoutMs: number, srcIp: string) => Promise<Duplex>)
    | undefined;
  /** In-pod mode: run the synchronous listen call inside the pod's network namespace. */
  readonly bind?: ((listen: () => void) => void) | undefined;
}

/** k8s.namespace.name / k8s.<kind>.name from a baggage header (telemetry only). */
export function parseBaggage(b: string | undefined): { workload?: string; namespace?: string } {
  const out: { workload?: string; namespace?: string } = {};
  for (const part of (b ?? "").split(",")) {
    const [k, v] = part.trim().split("=", 2) as [string, string | undefined];
    if (!v) continue;
    if (k === "k8s.namespace.name") out.namespace = v;
    else if (/^k8s\.(deployment|cronjob|pod|job)\.name$/.test(k)) out.workload = v;
  }
  return out;
}

function serviceHost(forwarded: string | undefined): string | undefined {
  return /(?:^|;)\s*host=([^;,\s]+)/.exec(forwarded ?? "")?.[1];
}

export class HboneServer {
  private server: http2.Http2SecureServer | undefined;
  private sessions = new Set<http2.ServerHttp2Session>();
  private unsubscribe: (() => void) | undefined;

  constructor(private deps: InboundDeps, private workload: Workload, private port: number) {}

  get address(): string {
    return joinHostPort(this.workload.address, this.port);
  }

  setWorkload(w: Workload): void {
    this.workload = w;
  }

  async start(): Promise<void> {
    const m = await this.deps.identity.material(this.workload.identity);
    const server = http2.createSecureServer({
      // Missing, untrusted, expired and not-yet-valid client certificates fail the handshake;
      // the SPIFFE checks run on 'secureConnection' before HTTP/2 (hbone_accept.ts).
      ...hboneTlsOptions(m, this.deps.handshakeTimeoutMs?.() ?? HANDSHAKE_TIMEOUT_MS),
      ALPNProtocols: ["h2"],
      minVersion: "TLSv1.3",
      allowHTTP1: false,
      maxSessionMemory: 64,
      settings: {
        initialWindowSize: H2_STREAM_WINDOW,
        maxFrameSize: H2_MAX_FRAME,
        maxConcurrentStreams: 200,
        maxHeaderListSize: 64 * 1024,
        enablePush: false,
      },
    });
    this.server = server;
    this.guardAccept(server);
    server.on("secureConnection", (s: TLSSocket) => s.setNoDelay(true));
    server.on("session", (s) => this.onSession(s));
    server.on(
      "stream",
      (stream, headers) => this.onStream(stream as http2.ServerHttp2Stream, headers),
    );
    server.on("tlsClientError", (e: Error, sock: unknown) => {
      if (isHandshakeTimeout(e)) {
        l4Metrics.refused.inc({ direction: "inbound", reason: "tls_handshake_timeout" });
        return;
      }
      const reason = this.deps.identity.classifyTlsError(e, sock);
      this.deps.identity.recordRejection?.("server", reason);
      l4Metrics.refused.inc({ direction: "inbound", reason: `tls_${reason}` });
      log.debug("hbone handshake failed", { reason, err: e });
    });
    this.unsubscribe = this.deps.identity.onRotate((id, mat) => {
      // New handshakes get the new certificate; established sessions keep theirs.
      if (id === this.workload.identity) server.setSecureContext(this.contextOptions(mat));
    });
    await new Promise<void>((resolve, reject) => {
      server.once("error", reject);
      const listen = (): void => {
        server.listen(this.port, this.workload.address, () => {
          server.off("error", reject);
          resolve();
        });
      };
      if (this.deps.bind) this.deps.bind(listen);
      else listen();
    });
  }

  /** The TLS accept layer: pending-handshake cap (inside maxConnections) and the SPIFFE checks
   * before any HTTP/2 session. */
  private guardAccept(server: http2.Http2SecureServer): void {
    capPendingHandshakes(server, {
      maxPending: () => this.deps.maxPendingHandshakes?.() ?? MAX_PENDING_HANDSHAKES,
      reserve: () => this.deps.conns.reservePending(),
      release: () => this.deps.conns.releasePending(),
      refuse: (reason) => l4Metrics.refused.inc({ direction: "inbound", reason }),
    });
    this.verifiedPeer = verifyBeforeSession(server, (sock) => {
      const raw = sock.getPeerCertificate?.(false)?.raw;
      return raw
        ? this.deps.identity.verifyClient(new Uint8Array(raw))
        : { ok: false, reason: "no_client_cert", message: "no client certificate" };
    }, (v) => {
      this.deps.identity.recordRejection?.("server", v.reason);
      l4Metrics.refused.inc({ direction: "inbound", reason: `tls_${v.reason}` });
      log.debug("hbone client rejected", { reason: v.reason, message: v.message });
    });
  }

  private verifiedPeer: (sock: http2.ServerHttp2Session["socket"]) => string | undefined = () =>
    undefined;

  private contextOptions(m: TlsMaterial): { cert: string; key: string; ca: string } {
    return { cert: m.certChainPem, key: m.keyPem, ca: m.rootsPem };
  }

  private peers = new WeakMap<http2.Http2Session, string>();

  private onSession(session: http2.ServerHttp2Session): void {
    // Verified (or refused and destroyed) on 'secureConnection' before this session existed.
    const identity = this.verifiedPeer(session.socket);
    if (identity === undefined) {
      session.destroy();
      return;
    }
    this.peers.set(session, identity);
    this.sessions.add(session);
    raiseConnectionWindow(session);
    let lastPong = performance.now();
    const ping = setInterval(() => {
      if (performance.now() - lastPong > PING_TIMEOUT_MS) return session.destroy();
      try {
        session.ping((err) => {
          if (!err) lastPong = performance.now();
        });
      } catch {
        // closing
      }
    }, PING_INTERVAL_MS);
    (ping as unknown as { unref?: () => void }).unref?.();
    session.on("error", (e) => log.debug("hbone session error", { err: e }));
    session.once("close", () => {
      clearInterval(ping);
      this.sessions.delete(session);
    });
  }

  private reply(stream: http2.ServerHttp2Stream, status: number): void {
    l4Metrics.hboneResponses.inc({ side: "server", code: String(status) });
    if (stream.destroyed || stream.headersSent) return;
    stream.respond({ ":status": status }, { endStream: true });
    // The answer is final: stop reading the client's side too (RST_STREAM NO_ERROR after the
    // END_STREAM headers, as h2 servers do when the response completes first).
    setImmediate(() => stream.close(http2.constants.NGHTTP2_NO_ERROR));
  }

  private onStream(stream: http2.ServerHttp2Stream, headers: http2.IncomingHttpHeaders): void {
    const session = stream.session;
    const peer = session ? this.peers.get(session) : undefined;
    const sock = session?.socket;
    const srcIp = sock?.remoteAddress ?? "unknown";
    const srcAddr = joinHostPort(srcIp, sock?.remotePort ?? 0);
    const authority = String(headers[":authority"] ?? "");
    const info = emptyInfo("inbound", srcAddr, authority);
    info.mtls = true;
    info.srcIdentity = peer;
    const bag = parseBaggage(headers.baggage as string | undefined);
    info.srcWorkload = bag.workload;
    info.srcNamespace = bag.namespace;
    const host = serviceHost(headers.forwarded as string | undefined);
    info.dstService = host;
    info.dstHboneAddr = this.address;
    const conns = this.deps.conns;
    stream.on("error", () => {});
    if (!peer) return this.reply(stream, 400);
    const conn = conns.create(info, stream);
    if (!conn) {
      l4Metrics.refused.inc({ direction: "inbound", reason: "max_connections" });
      return this.reply(stream, 503);
    }
    const hp = splitHostPort(authority);
    if (headers[":method"] !== "CONNECT" || !hp) {
      this.reply(stream, 400);
      return conn.fail("refused", "bad method or authority", true);
    }
    const snap = this.deps.snapshot();
    const wl = snap.workloads.find((w) => w.address === hp.host);
    // The tunnel target must be the workload this listener serves (ztunnel's IPMismatch).
    if (!wl || wl.address !== this.workload.address) {
      this.reply(stream, 400);
      return conn.fail("refused", `unknown destination workload ${hp.host}`, true);
    }
    info.dstWorkload = wl.name;
    info.dstNamespace = wl.namespace;
    info.dstIdentity = wl.identity;
    const svc = host ? snap.services.find((s) => s.hostname === host) : undefined;
    info.dstServiceName = svc?.name;
    info.dstServiceNamespace = svc?.namespace;
    const attrs: L4Attributes = {
      sourcePrincipal: peer,
      sourceIp: srcIp,
      destinationIp: hp.host,
      destinationPort: hp.port,
    };
    // An L7 port is authorized per request by its inbound chain (the authz plugin applies the
    // same AuthorizationPolicies with their HTTP fields); L4 rules would drop those rules.
    const l7 = this.deps.l7?.inbound(wl, hp.port, host);
    const decision = l7 ? undefined : this.deps.authorize(snap, wl, attrs);
    if (decision && !decision.allowed) {
      this.reply(stream, 401);
      return conn.fail("denied", decision.policy ?? "no allow policy matched", true);
    }
    const upstream: Promise<Duplex> = l7
      ? Promise.resolve(L7Dispatch.bridge(
        l7,
        peerInfo({
          sourcePrincipal: peer,
          sourceAddress: srcIp,
          sourcePort: sock?.remotePort ?? 0,
          destinationAddress: hp.host,
          destinationPort: hp.port,
          service: this.deps.l7!.inboundService(wl, hp.port, host),
          workload: wl,
          mtls: true,
        }),
      ))
      : (this.deps.dial ?? dialTcp)(hp.host, hp.port, snap.timeouts.connectMs, srcIp);
    upstream.then((up) => {
      if (stream.destroyed || conn.done) {
        up.destroy();
        return conn.fail("error", "client went away", true);
      }
      l4Metrics.hboneResponses.inc({ side: "server", code: "200" });
      stream.respond({ ":status": 200 });
      conn.recheck = () => {
        const now = this.deps.snapshot();
        const w = now.workloads.find((x) => x.address === hp.host && x.name === wl.name);
        return w !== undefined && (l7 !== undefined || this.deps.authorize(now, w, attrs).allowed);
      };
      conn.attach(up);
    }, (e) => {
      this.reply(stream, 503);
      conn.fail("connect_failed", errorMessage(e), true);
    });
  }

  /** Listener closes now; every session gets GOAWAY and keeps its open streams. */
  drain(): Promise<void> {
    const closed = this.closeListener();
    for (const s of this.sessions) {
      try {
        s.close();
      } catch {
        // already closing
      }
    }
    return closed;
  }

  private closeListener(): Promise<void> {
    this.unsubscribe?.();
    this.unsubscribe = undefined;
    const server = this.server;
    if (!server?.listening) return Promise.resolve();
    return new Promise((r) => server.close(() => r()));
  }

  /** Force-close everything. */
  async close(): Promise<void> {
    for (const s of this.sessions) s.destroy();
    await this.closeListener();
  }

  sessionCount(): number {
    return this.sessions.size;
  }
}
