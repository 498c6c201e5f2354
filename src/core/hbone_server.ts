/**
 * HBONE server for one local workload on <workload ip>:<hbonePort>, presenting that workload's
 * identity (no SNI: the listening address decides the certificate, ztunnel's in-pod mode). Runs
 * ztunnel's checks in order (hbone.md §7): a plain CONNECT (no other pseudo-headers) with a
 * parsable authority (400), the listener's workload still known (503), a destination on this
 * listener (400; a service-hostname authority maps to its target port here, else 503),
 * authorization (401), upstream connect (503), then 200 with the destination's `baggage`.
 */
import type { Socket } from "node:net";
import type { Duplex } from "node:stream";
import { type L7Dispatch, peerInfo } from "./l7_dispatch.ts";
import * as tls from "node:tls";
import type { TLSSocket } from "node:tls";
import type { AuthzDecision, L4Attributes } from "./authz.ts";
import type { Service, Snapshot, Workload } from "./snapshot.ts";
import type { IdentityProvider, RevocationAdmission } from "./transport.ts";
import { type ConnTable, dialTcp, TCP_KEEPALIVE_MS } from "./l4_conn.ts";
import { emptyInfo, l4Metrics, setEnd } from "./l4_telemetry.ts";
import { H2_OPTIONS } from "./hbone_client.ts";
import { H2Session, type H2Stream, type Headers, NO_HEADERS } from "./h2/mod.ts";
import { joinHostPort, parseIp, splitHostPort } from "./ip.ts";
import { proxyV2Header } from "./proxy_protocol.ts";
import { baggageFor } from "./upstream_dialer.ts";
import { indexOf } from "./snapshot_index.ts";
import { certRevokedError, hboneContext, negotiatedSuite, peerChainDer } from "./hbone_tls.ts";
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
  /** In-pod mode: dial the workload from inside its network namespace, as `srcIp` when the
   * kernel allows (default dialTcp). */
  readonly dial?:
    | ((host: string, port: number, timeoutMs: number, srcIp: string) => Promise<Duplex>)
    | undefined;
  /** In-pod mode: run the synchronous listen call inside the pod's network namespace. */
  readonly bind?: ((listen: () => void) => void) | undefined;
  /** TLS handshake budget on 15008 (default 10 s). */
  readonly handshakeTimeoutMs?: () => number;
  /** Pending (pre-handshake) connections per HBONE listener (default 256). */
  readonly maxPendingHandshakes?: () => number;
}

/** k8s.namespace.name / k8s.<kind>.name from a baggage header (telemetry only). */
export interface Baggage {
  workload?: string;
  namespace?: string;
  /** service.name / service.version: the source's canonical service and revision. */
  service?: string;
  version?: string;
  cluster?: string;
}

/** The keys ztunnel reads from a CONNECT's `baggage` (telemetry only, never authorization). */
export function parseBaggage(b: string | undefined): Baggage {
  const out: Baggage = {};
  for (const part of (b ?? "").split(",")) {
    const [k, v] = part.trim().split("=", 2) as [string, string | undefined];
    if (!v) continue;
    if (k === "k8s.namespace.name") out.namespace = v;
    else if (/^k8s\.(deployment|cronjob|pod|job)\.name$/.test(k)) out.workload = v;
    else if (k === "service.name") out.service = v;
    else if (k === "service.version") out.version = v;
    else if (k === "k8s.cluster.name") out.cluster = v;
  }
  return out;
}

/** Connection-specific fields a valid HTTP/2 request never carries (RFC 9113 §8.2.2). */
const CONNECTION_FIELDS = new Set([
  "connection",
  "keep-alive",
  "proxy-connection",
  "transfer-encoding",
  "upgrade",
]);

/**
 * Why a CONNECT head is not a plain RFC 9113 §8.5 CONNECT (undefined: it is): `:method` and
 * `:authority` once each and no other pseudo-header (`:scheme`, `:path`, `:protocol` — weft does
 * not offer extended CONNECT — `:status` or unknown ones), pseudo-headers first, lower-case
 * names, no connection-specific fields (§8.2). ztunnel's HTTP/2 layer (h2) refuses such a
 * malformed request before `serve_connect` runs; weft answers it 400, like a bad method.
 */
export function malformedConnect(list: readonly (readonly [string, string])[]): string | undefined {
  let regular = false;
  const seen = new Set<string>();
  for (const [k, v] of list) {
    if (k !== k.toLowerCase()) return `upper-case field name ${k}`;
    if (k.startsWith(":")) {
      if (regular) return `pseudo-header ${k} after a regular field`;
      if (k !== ":method" && k !== ":authority") return `pseudo-header ${k} on CONNECT`;
      if (seen.has(k)) return `repeated ${k}`;
      seen.add(k);
      continue;
    }
    regular = true;
    if (CONNECTION_FIELDS.has(k)) return `connection-specific field ${k}`;
    if (k === "te" && v !== "trailers") return "te other than trailers";
  }
  return undefined;
}

function serviceHost(forwarded: string | undefined): string | undefined {
  return /(?:^|;)\s*host=([^;,\s]+)/.exec(forwarded ?? "")?.[1];
}

/** What the HTTP/2 layer knows about the TLS connection a session runs on. */
interface SessionPeer {
  readonly identity: string;
  readonly ip: string;
  readonly port: number;
}

/** A pending CONNECT: answer with `respond`; `stream` dies if the peer resets it first. */
interface ConnectCall {
  readonly headers: Headers;
  readonly respond: (status: number, headers?: Headers) => H2Stream | null;
  readonly stream: H2Stream;
}

/**
 * Two layers, kept apart: the TLS accept (`tls.Server`, client-certificate verdict, counted
 * refusals) hands a verified socket to the HTTP/2 layer (`serveSession`: one H2Session with
 * weft's limits, CONNECT handling per stream).
 */
export class HboneServer {
  private server: tls.Server | undefined;
  private sessions = new Set<H2Session>();
  /** Every accepted TCP connection until it closes, handshake done or not (close() ends them). */
  private sockets = new Set<Socket>();
  private stopping = false;
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
    const handshakeMs = this.deps.handshakeTimeoutMs?.() ?? HANDSHAKE_TIMEOUT_MS;
    const server = tls.createServer({
      // Missing, untrusted, expired and not-yet-valid client certificates fail the handshake;
      // the SPIFFE checks run on 'secureConnection' before HTTP/2 (hbone_accept.ts). The
      // handshake deadline is enforced below: Deno's tls.Server ignores `handshakeTimeout`.
      ...hboneTlsOptions(m, 0x7fffffff),
      ALPNProtocols: ["h2"],
      minVersion: "TLSv1.3",
    });
    this.server = server;
    server.on("connection", (sock: Socket) => {
      sock.setKeepAlive(true, TCP_KEEPALIVE_MS);
      this.sockets.add(sock);
      sock.once("close", () => this.sockets.delete(sock));
    });
    this.guardAccept(server);
    this.handshakeDeadline(server, handshakeMs);
    server.on("secureConnection", (s: TLSSocket) => this.accept(s));
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
      if (id === this.workload.identity) server.setSecureContext(hboneContext(mat));
    });
    await new Promise<void>((resolve, reject) => {
      server.once("error", reject);
      const listen = (): void => {
        // SO_REUSEPORT, as ztunnel: an upgraded process binds while this one drains (hbone.md §11).
        server.listen({ port: this.port, host: this.workload.address, reusePort: true }, () => {
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
  private guardAccept(server: tls.Server): void {
    capPendingHandshakes(server, {
      maxPending: () => this.deps.maxPendingHandshakes?.() ?? MAX_PENDING_HANDSHAKES,
      reserve: () => this.deps.conns.reservePending(),
      release: () => this.deps.conns.releasePending(),
      refuse: (reason) => l4Metrics.refused.inc({ direction: "inbound", reason }),
    });
    this.verifiedPeer = verifyBeforeSession(server, (sock) => {
      const suite = negotiatedSuite(sock);
      if (suite) {
        return { ok: false, reason: "handshake_failed", message: `cipher suite ${suite} refused` };
      }
      const raw = sock.getPeerCertificate?.(false)?.raw;
      if (!raw) return { ok: false, reason: "no_client_cert", message: "no client certificate" };
      const v = this.deps.identity.verifyClient(new Uint8Array(raw));
      const crl = this.deps.identity.revocation;
      if (!v.ok || !crl) return v;
      // CRLs (hbone.md §4): the client's whole chain, leaf and intermediates.
      const adm = crl.admit(peerChainDer(sock), "destination");
      if (!adm.ok) return adm;
      this.admitted.set(sock, adm);
      return v;
    }, (v) => {
      this.deps.identity.recordRejection?.("server", v.reason);
      l4Metrics.refused.inc({ direction: "inbound", reason: `tls_${v.reason}` });
      log.debug("hbone client rejected", { reason: v.reason, message: v.message });
    });
  }

  private verifiedPeer: (sock: TLSSocket) => string | undefined = () => undefined;
  /** CRL admissions of verified sockets, until accept() tracks their session. */
  private admitted = new WeakMap<TLSSocket, Extract<RevocationAdmission, { ok: true }>>();

  /** A connection whose TLS handshake has not completed within `ms` is closed and counted. */
  private handshakeDeadline(server: tls.Server, ms: number): void {
    const pending = new Map<string, () => void>();
    const key = (s: { remoteAddress?: string | undefined; remotePort?: number | undefined }) =>
      `${s.remoteAddress ?? ""}|${s.remotePort ?? 0}`;
    server.on("connection", (sock: Socket) => {
      if (sock.destroyed) return;
      const k = key(sock);
      const timer = setTimeout(() => {
        pending.delete(k);
        l4Metrics.refused.inc({ direction: "inbound", reason: "tls_handshake_timeout" });
        sock.destroy();
      }, ms);
      const clear = (): void => {
        clearTimeout(timer);
        if (pending.get(k) === clear) pending.delete(k);
      };
      pending.set(k, clear);
      sock.once("close", clear);
    });
    server.prependListener("secureConnection", (s: TLSSocket) => pending.get(key(s))?.());
  }

  /** Verified (or refused and destroyed) by guardAccept's listener, which runs first; then the
   * HTTP/2 layer takes the socket. */
  private accept(sock: TLSSocket): void {
    sock.on("error", () => {}); // the session (or the destroy below) owns the socket's end
    const identity = this.verifiedPeer(sock);
    // A handshake that completes after drain/close starts no session: it would outlive them.
    if (identity === undefined || this.stopping) {
      sock.destroy();
      return;
    }
    sock.setNoDelay(true);
    const session = this.serveSession(sock, {
      identity,
      ip: sock.remoteAddress ?? "unknown",
      port: sock.remotePort ?? 0,
    });
    const adm = this.admitted.get(sock);
    if (adm) {
      this.admitted.delete(sock);
      // Revoked later by a CRL update: a security event, so no graceful drain (as ztunnel).
      const untrack = adm.track(() => session.destroy(certRevokedError("inbound")));
      session.closed.then(untrack);
    }
  }

  /** HTTP/2 layer: one session per verified connection; each CONNECT is handled on its own. */
  serveSession(sock: Duplex, peer: SessionPeer): H2Session {
    // ztunnel's server settings (hbone.md §5): 200 concurrent streams, 64 KiB header list (the
    // client side keeps 16 KiB).
    const session = new H2Session(sock, "server", {
      ...H2_OPTIONS,
      maxConcurrentStreams: 200,
      maxHeaderListBytes: 64 * 1024,
    });
    this.sessions.add(session);
    session.onConnect((headers, respond, stream) =>
      this.onConnect(peer, { headers, respond, stream })
    );
    session.closed.then(() => this.sessions.delete(session));
    return session;
  }

  private reply(call: ConnectCall, status: number): void {
    l4Metrics.hboneResponses.inc({ side: "server", code: String(status) });
    call.respond(status);
  }

  private onConnect(peer: SessionPeer, call: ConnectCall): void {
    const { headers, stream } = call;
    const srcAddr = joinHostPort(peer.ip, peer.port);
    const authority = headers[":authority"] ?? "";
    const malformed = malformedConnect(stream.headerList);
    const info = emptyInfo("inbound", srcAddr, authority);
    info.mtls = true;
    info.srcIdentity = peer.identity;
    const host = serviceHost(headers.forwarded);
    stream.headerList = NO_HEADERS; // read through `headers`; not kept for the tunnel's life
    info.dstService = host;
    info.dstHboneAddr = this.address;
    const conns = this.deps.conns;
    stream.on("error", ignore); // not a closure: it would keep this call's scope for the tunnel's life
    const conn = conns.create(info, stream);
    if (!conn) {
      l4Metrics.refused.inc({ direction: "inbound", reason: "max_connections" });
      return this.reply(call, 503);
    }
    const hp = splitHostPort(authority);
    if (headers[":method"] !== "CONNECT" || !hp || malformed) {
      this.reply(call, 400);
      return conn.fail("refused", malformed ?? "bad method or authority", true);
    }
    const snap = this.deps.snapshot();
    const idx = indexOf(snap);
    // The workload this listener serves is gone from the snapshot (ztunnel: unknown local
    // workload, 503), whatever the authority names.
    if (!idx.workloadByIp.has(this.workload.address)) {
      this.reply(call, 503);
      return conn.fail("refused", `local workload ${this.workload.name} is not known`, true);
    }
    // `host:port` authority (ztunnel's HboneAddress::SvcHostname, the outer tunnel through an
    // east-west gateway): the service's port maps to this workload's target port; a service that
    // does not exist, lacks the port or does not have this workload as an endpoint is 503.
    let target = hp;
    let byName: Service | undefined;
    if (!parseIp(hp.host)) {
      byName = idx.serviceByHost.get(hp.host);
      const sp = byName?.ports.find((p) => p.port === hp.port);
      const mine = byName?.endpoints.some((e) => e.address === this.workload.address);
      if (!byName || !sp || !mine) {
        this.reply(call, 503);
        return conn.fail("refused", `no local endpoint of ${authority}`, true);
      }
      target = { host: this.workload.address, port: sp.targetPort || sp.port };
      info.dstService = byName.hostname;
    }
    let wl = idx.workloadByIp.get(target.host);
    // The tunnel target must be the workload this listener serves (ztunnel's IPMismatch), unless
    // that workload has its own application tunnel: it gets the target in the PROXY header.
    if (!wl || wl.address !== this.workload.address) {
      const local = idx.workloadByIp.get(this.workload.address);
      if (!local?.applicationTunnel) {
        this.reply(call, 400);
        return conn.fail("refused", `unknown destination workload ${hp.host}`, true);
      }
      wl = local;
    }
    const tunnel = wl.applicationTunnel;
    // Where the bytes go (and what authorization sees as the destination, as ztunnel's
    // resolve_inbound_target): an application tunnel's own address and port, else the target.
    const upstreamAt = tunnel ? { host: wl.address, port: tunnel.port ?? target.port } : target;
    setEnd(info, "dst", wl);
    // The source as ztunnel finds it: the workload at the peer's IP when it holds the peer's
    // certified identity, else what the client's baggage says (telemetry only).
    // Through a gateway (a hostname authority, or the inner CONNECT of double HBONE naming
    // another network in `x-forwarded-network`, as ztunnel's from_gateway): the peer IP is no
    // workload's (ztunnel#515).
    const xfn = headers["x-forwarded-network"];
    const fromGateway = xfn !== undefined && xfn.toLowerCase() !== snap.node.network.toLowerCase();
    if (fromGateway) info.srcNetwork = xfn;
    const from = byName || fromGateway ? undefined : idx.workloadByIp.get(peer.ip);
    if (from && from.identity === peer.identity) setEnd(info, "src", from);
    else {
      const bag = parseBaggage(headers.baggage);
      info.srcWorkload = bag.workload;
      info.srcNamespace = bag.namespace;
      info.srcCanonical = bag.service ?? bag.workload;
      info.srcRevision = bag.version ?? (bag.workload ? "latest" : undefined);
      info.srcCluster = bag.cluster;
    }
    const svc = byName ?? (host ? idx.serviceByHost.get(host) : undefined);
    info.dstServiceName = svc?.name;
    info.dstServiceNamespace = svc?.namespace;
    const svcHost = byName?.hostname ?? host;
    const attrs: L4Attributes = {
      sourcePrincipal: peer.identity,
      sourceIp: peer.ip,
      destinationIp: upstreamAt.host,
      destinationPort: upstreamAt.port,
    };
    // An L7 port is authorized per request by its inbound chain (the authz plugin applies the
    // same AuthorizationPolicies with their HTTP fields); L4 rules would drop those rules.
    const l7 = this.deps.l7?.inbound(wl, target.port, svcHost);
    const decision = l7 ? undefined : this.deps.authorize(snap, wl, attrs);
    if (decision && !decision.allowed) {
      this.reply(call, 401);
      return conn.fail("denied", decision.policy ?? "no allow policy matched", true);
    }
    // Kept for the tunnel's life: built outside this scope, so it does not hold the request's
    // headers, the snapshot or the CONNECT call.
    const recheck = rechecker(this.deps, wl.name, attrs, l7 !== undefined);
    if (l7) {
      // CONNECT answered at once; the HTTP proxy reads the HBONE stream itself (one copy per
      // byte) and authorizes each request with its inbound chain.
      const s = call.respond(200, { baggage: baggageFor(wl) });
      if (!s) return conn.fail("error", "client went away", true);
      l4Metrics.hboneResponses.inc({ side: "server", code: "200" });
      conn.recheck = recheck;
      const p = peerInfo({
        sourcePrincipal: peer.identity,
        sourceAddress: peer.ip,
        sourcePort: peer.port,
        destinationAddress: target.host,
        destinationPort: target.port,
        service: this.deps.l7!.inboundService(wl, target.port, svcHost),
        workload: wl,
        mtls: true,
        local: wl,
      });
      return conn.serve((down) => l7(down, p));
    }
    // Application tunnel (PROXY): the workload's own address and tunnel port, then a PROXY v2
    // header naming original source → tunnel target, with the peer identity in TLV 0xD0.
    const header = tunnel
      ? proxyV2Header(peer, { ip: target.host, port: target.port }, peer.identity)
      : undefined;
    const upstream = (this.deps.dial ?? dialTcp)(
      upstreamAt.host,
      upstreamAt.port,
      snap.timeouts.connectMs,
      peer.ip,
    );
    upstream.then((up) => {
      // The client reset the stream while we dialled (rapid reset): drop the upstream.
      const s = stream.destroyed || conn.done
        ? null
        : call.respond(200, { baggage: baggageFor(wl) });
      if (!s) {
        up.destroy();
        return conn.fail("error", "client went away", true);
      }
      l4Metrics.hboneResponses.inc({ side: "server", code: "200" });
      conn.recheck = recheck;
      if (header) up.write(header); // before any payload: attach starts the copy
      conn.attach(up);
    }, (e) => {
      this.reply(call, 503);
      conn.fail("connect_failed", errorMessage(e), true);
    });
  }

  /** Listener closes now; every session gets GOAWAY and keeps its open streams. */
  drain(): Promise<void> {
    this.stopping = true;
    const closed = this.closeListener();
    for (const s of this.sessions) void s.close().catch(() => {});
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
    this.stopping = true;
    for (const s of this.sessions) s.destroy();
    // Connections still in their handshake too: the listener's close waits for every one.
    for (const s of this.sockets) s.destroy();
    await this.closeListener();
  }

  sessionCount(): number {
    return this.sessions.size;
  }
}

/** Re-run an inbound tunnel's authorization against the current snapshot (policy updates). */
function rechecker(
  deps: InboundDeps,
  workloadName: string,
  attrs: L4Attributes,
  l7: boolean,
): () => boolean {
  return (): boolean => {
    const now = deps.snapshot();
    const w = indexOf(now).workloadByIp.get(attrs.destinationIp);
    return w?.name === workloadName && (l7 || deps.authorize(now, w, attrs).allowed);
  };
}

function ignore(): void {}
