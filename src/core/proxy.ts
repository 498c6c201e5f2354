/**
 * NodeProxy: weft's L4 data path for one node. Owns the listeners (service VIPs, SOCKS5, HBONE
 * 15008 and optional plaintext 15006 per local workload), the HBONE client pool and the table of
 * live connections. The control path hands it immutable snapshots; `update` swaps the snapshot,
 * reconciles listeners and closes inbound connections the new policy denies.
 */
import * as net from "node:net";
import type { Duplex } from "node:stream";
import type { Snapshot } from "./snapshot.ts";
import type { IdentityProvider } from "./transport.ts";
import { authorizeL4 } from "./authz.ts";
import { ConnTable, type L4Conn } from "./l4_conn.ts";
import { HbonePool } from "./hbone_pool.ts";
import { type Authorize, HboneServer, type InboundDeps } from "./hbone_server.ts";
import { handleOutbound, type OutboundDeps } from "./outbound.ts";
import { dialUpstream } from "./upstream_dialer.ts";
import { dialService, type ServiceDial } from "./service_dialer.ts";
import type { FilterResolver } from "./filter_api.ts";
import { upstreamsEnded } from "./http1_upstream.ts";
import { L7Dispatch } from "./l7_dispatch.ts";
import { handlePlaintextInbound } from "./inbound_plain.ts";
import { socksHandshake } from "./socks5.ts";
import { dialTcpL7, listenTcp, type TcpListener } from "./plain_tcp.ts";
import { joinHostPort, splitHostPort } from "./ip.ts";
import { l4Metrics } from "./l4_telemetry.ts";
import { errorMessage, WeftError } from "./errors.ts";
import { logger } from "./log.ts";
import { PodCaptures, type PodEnrollment, type PodView } from "./pod_capture.ts";
import { loadNetns } from "./netns.ts";

const log = logger("proxy");
export const DEFAULT_SOCKS5 = "127.0.0.1:15080";
/** Ports of weft itself (hbone.md §1): connections through the proxy to them are loops. */
const WELL_KNOWN_SELF_PORTS = [15000, 15001, 15006, 15008, 15020, 15021, 15053, 15080];

export interface NodeProxyOptions {
  readonly snapshot: Snapshot;
  readonly identity: IdentityProvider;
  /** Resolves the filters of services with L7 chains (wired by src/app from src/filters);
   * without it every service stays L4. */
  readonly filters?: FilterResolver;
  /** Override authorization (tests, dry runs); defaults to authorizeL4. */
  readonly authorize?: Authorize;
}

export interface NodeProxyStats {
  readonly ready: boolean;
  readonly draining: boolean;
  readonly snapshotVersion: string;
  readonly listeners: readonly string[];
  readonly connections: { readonly inbound: number; readonly outbound: number };
  readonly hboneSessions: number;
  readonly pool: ReturnType<HbonePool["stats"]>;
}

/** Never rejects (close errors, e.g. not listening, resolve too), so callers may drop it. */
function closeServer(s: TcpListener): Promise<void> {
  return s.close();
}

/** A plain TCP listener NodeProxy wants (desiredTcp). */
interface DesiredListener {
  readonly on: (s: net.Socket) => void;
  /** May use native sockets on Bun (listenTcp's default there); false: node:net. */
  readonly native: boolean;
}

export class NodeProxy {
  private snap: Snapshot;
  private readonly identity: IdentityProvider;
  private readonly conns: ConnTable;
  private readonly pool: HbonePool;
  private readonly hbone = new Map<string, HboneServer>();
  private readonly tcp = new Map<string, TcpListener>();
  private readonly inbound: InboundDeps;
  private readonly l7: L7Dispatch | undefined;
  private readonly outbound: OutboundDeps;
  private readonly pods: PodCaptures;
  private updating: Promise<void> = Promise.resolve();
  private isReady = false;
  private isDraining = false;
  private closed = false;

  constructor(opts: NodeProxyOptions) {
    this.snap = opts.snapshot;
    this.identity = opts.identity;
    this.conns = new ConnTable(() => ({
      maxConnections: this.snap.limits.maxConnections,
      idleMs: this.snap.timeouts.idleMs,
    }));
    this.pool = new HbonePool(this.identity, () => ({
      maxStreams: this.snap.limits.poolMaxStreamsPerConnection,
      idleMs: this.snap.limits.poolIdleMs,
      connectMs: this.snap.timeouts.connectMs,
    }));
    this.l7 = opts.filters
      ? new L7Dispatch(opts.filters, () => this.snap, {
        // The same dialer as the L4 path (upstream_dialer.ts).
        dial: (src, svc, ep, port, clientAddr) =>
          dialUpstream(this.outbound, src, {
            host: ep.address,
            port,
            hbone: ep.hboneAddress !== undefined && ep.identity !== undefined
              ? { addr: ep.hboneAddress, identity: ep.identity, sans: svc.subjectAltNames }
              : undefined,
            clientAddr,
            serviceHost: svc.hostname,
          }),
        dialLocal: (host, port) => {
          // From inside the pod in in-pod mode; otherwise on native sockets on Bun (plain_tcp.ts).
          const ms = this.snap.timeouts.connectMs;
          return this.pods.dialerFrom(host)
            ? this.dialWorkload(host, port, ms)
            : dialTcpL7(host, port, ms);
        },
      })
      : undefined;
    this.inbound = {
      snapshot: () => this.snap,
      identity: this.identity,
      conns: this.conns,
      authorize: opts.authorize ?? authorizeL4,
      l7: this.l7,
      handshakeTimeoutMs: () => this.snap.timeouts.tlsHandshakeMs ?? 10_000,
      maxPendingHandshakes: () => this.snap.limits.maxPendingHandshakes ?? 256,
      dial: (host, port, ms, srcIp) => this.dialWorkload(host, port, ms, srcIp),
    };
    this.outbound = {
      snapshot: () => this.snap,
      pool: this.pool,
      conns: this.conns,
      selfPorts: () => this.selfPorts(),
      defaultSource: () => this.snap.capture?.defaultSourceWorkload,
      filters: this.l7,
      dialFrom: (ip) => this.pods.dialerFrom(ip),
    };
    this.pods = new PodCaptures(() => this.snap, this.inbound, this.outbound, this.conns);
  }

  /** A local workload: from inside its pod's namespace when it is an enrolled pod, keeping the
   * client's address `srcIp` as the source where the kernel allows; else a plain dial (native
   * sockets on Bun, plain_tcp.ts). */
  private dialWorkload(
    host: string,
    port: number,
    timeoutMs: number,
    srcIp?: string,
  ): Promise<Duplex> {
    const inPod = this.pods.dialerFrom(host);
    return inPod ? inPod(host, port, timeoutMs, srcIp) : dialTcpL7(host, port, timeoutMs);
  }

  /** In-pod mode: open the pod's listeners inside its network namespace. */
  async enrollPod(pod: PodEnrollment): Promise<PodView> {
    if (!this.snap.capture?.inpod) {
      throw new WeftError("inpod_disabled", "Cannot enroll a pod: in-pod capture is not enabled");
    }
    if (this.closed || this.isDraining) {
      throw new WeftError("draining", "Cannot enroll a pod: the node proxy is shutting down");
    }
    await loadNetns();
    return await this.pods.add(pod);
  }

  /** Close a pod's listeners and its connections (FIN, then closed after `graceMs`). */
  async removePod(uid: string, graceMs: number): Promise<boolean> {
    const ips = this.pods.list().find((p) => p.uid === uid)?.addresses ?? [];
    const removed = await this.pods.remove(uid, graceMs);
    for (const ip of ips) this.pool.retireSource(ip);
    return removed;
  }

  /** A connection to a service for a local workload through the mesh (service_dialer.ts):
   * proxy-wasm callouts to service clusters. */
  readonly dialService: ServiceDial = (service, port, localAddress) =>
    dialService(this.outbound, service, port, localAddress);

  enrolledPods(): PodView[] {
    return this.pods.list();
  }

  get ready(): boolean {
    return this.isReady;
  }

  get snapshot(): Snapshot {
    return this.snap;
  }

  /** Bind every listener the snapshot asks for; rejects (and unbinds) if any bind fails. */
  async start(): Promise<void> {
    try {
      await this.reconcile();
    } catch (e) {
      await this.close();
      throw e;
    }
    this.isReady = true;
    log.info("node proxy ready", {
      listeners: this.listenerNames().length,
      version: this.snap.version,
    });
  }

  /** Swap the snapshot, rebind listeners as needed, close inbound connections now denied. */
  update(snapshot: Snapshot): Promise<void> {
    const run = async (): Promise<void> => {
      if (this.closed || this.isDraining) return;
      this.snap = snapshot;
      await this.reconcile();
      this.pods.update(snapshot);
      const closed = this.conns.recheckAll();
      if (closed) {
        log.info("closed connections denied by new policy", { closed, version: snapshot.version });
      }
    };
    const next = this.updating.then(run);
    this.updating = next.catch((e) =>
      log.error("snapshot update failed", { err: errorMessage(e) })
    );
    return next;
  }

  private selfPorts(): ReadonlySet<number> {
    const s = new Set(WELL_KNOWN_SELF_PORTS);
    s.add(this.snap.node.hbonePort);
    const c = this.snap.capture;
    if (c?.inboundPlaintextPort) s.add(c.inboundPlaintextPort);
    const socks = splitHostPort(c?.socks5 ?? DEFAULT_SOCKS5);
    if (socks) s.add(socks.port);
    return s;
  }

  /** Desired plain TCP listeners: address → handler, and whether it may use native sockets on
   * Bun (plain_tcp.ts). */
  private desiredTcp(): Map<string, DesiredListener> {
    const want = new Map<string, DesiredListener>();
    const c = this.snap.capture;
    if (c?.serviceVips !== false) {
      for (const svc of this.snap.services) {
        for (const vip of svc.vips) {
          for (const p of svc.ports) {
            const addr = joinHostPort(vip, p.port);
            want.set(addr, {
              on: (s) => void handleOutbound(this.outbound, s, vip, p.port),
              native: true,
            });
          }
        }
      }
    }
    const socks = c?.socks5 ?? DEFAULT_SOCKS5;
    if (socks) want.set(socks, { on: (s) => this.onSocks(s), native: false });
    if (c?.inboundPlaintextPort && !c.inpod) {
      for (const w of this.snap.workloads) {
        const addr = w.address;
        want.set(joinHostPort(addr, c.inboundPlaintextPort), {
          on: (s) => handlePlaintextInbound(this.inbound, s, addr),
          native: true,
        });
      }
    }
    return want;
  }

  private onSocks(s: net.Socket): void {
    s.resume();
    socksHandshake(s, this.snap.timeouts.connectMs).then(
      (req) => handleOutbound(this.outbound, s, req.host, req.port, req.reply),
      (e) => {
        l4Metrics.refused.inc({ direction: "outbound", reason: "socks5_handshake" });
        log.debug("socks5 handshake failed", { err: errorMessage(e) });
      },
    );
  }

  private async reconcile(): Promise<void> {
    const want = this.desiredTcp();
    // Handlers close over the live snapshot through this.outbound/this.inbound, so a kept
    // listener needs no rebinding; only added and removed addresses change.
    // A removed listener stops accepting now; its open connections live on in the table (closing
    // the server must not wait for them, or an update would block on long-lived tunnels).
    for (const a of [...this.tcp.keys()].filter((a) => !want.has(a))) {
      void closeServer(this.tcp.get(a)!); // never rejects
      this.tcp.delete(a);
    }
    // On Bun, service VIPs and plaintext inbound use native sockets (plain_tcp.ts): both the L7
    // proxy and the L4 copy into HBONE cost less per read and write on them than on node:net's
    // stream layer (bench/l4_ab.ts, README "Measured figures"). SOCKS5 stays on node:net.
    // A listener keeps its kind until its address goes away; either kind serves either path.
    for (const [addr, { on, native }] of want) {
      if (this.tcp.has(addr)) continue;
      this.tcp.set(addr, await listenTcp(addr, on, native ? {} : { native: false }));
    }
    const port = this.snap.node.hbonePort;
    // In-pod mode: each pod's HBONE listener lives in its namespace (PodCaptures).
    const local = this.snap.capture?.inpod ? [] : this.snap.workloads;
    const wanted = new Map(
      local.map((w) => [joinHostPort(w.address, port) + "|" + w.identity, w]),
    );
    for (const [key, server] of [...this.hbone]) {
      if (!wanted.has(key)) {
        this.hbone.delete(key);
        await server.close();
      }
    }
    for (const [key, w] of wanted) {
      const existing = this.hbone.get(key);
      if (existing) {
        existing.setWorkload(w);
        continue;
      }
      const server = new HboneServer(this.inbound, w, port);
      await server.start();
      this.hbone.set(key, server);
    }
  }

  private listenerNames(): string[] {
    return [...this.tcp.keys(), ...[...this.hbone.values()].map((h) => h.address)];
  }

  /** Graceful shutdown (hbone.md §11): listeners close now, HBONE sessions get GOAWAY,
   * in-flight streams run until `deadlineMs`, then everything is force-closed. */
  async drain(deadlineMs: number): Promise<void> {
    if (this.closed) return;
    this.isDraining = true;
    this.isReady = false;
    l4Metrics.draining.set({}, 1);
    const tcp = [...this.tcp.values()];
    this.tcp.clear();
    const listenersClosed = Promise.all(tcp.map(closeServer)); // resolves as connections end
    for (const h of this.hbone.values()) void h.drain(); // never rejects
    this.pods.drain();
    this.pool.drain();
    this.l7?.drain();
    await this.conns.drain(deadlineMs);
    // The L7 upstreams ended above close when their peers answer END_STREAM; closing the HBONE
    // sessions first would leave the peers logging reset streams.
    await upstreamsEnded(Math.min(1_000, deadlineMs));
    await this.close();
    await listenersClosed;
  }

  async close(): Promise<void> {
    this.closed = true;
    this.isReady = false;
    this.conns.closeAll("drained");
    await this.pods.closeAll();
    this.pool.close();
    this.l7?.close();
    const servers = [...this.tcp.values()];
    this.tcp.clear();
    const hb = [...this.hbone.values()];
    this.hbone.clear();
    await Promise.all([...servers.map(closeServer), ...hb.map((h) => h.close())]);
    await this.conns.waitEmpty();
    l4Metrics.draining.set({}, 0);
  }

  stats(): NodeProxyStats {
    const list = this.conns.list();
    return {
      ready: this.isReady,
      draining: this.isDraining,
      snapshotVersion: this.snap.version,
      listeners: this.listenerNames(),
      connections: {
        inbound: list.filter((c) => c.info.direction === "inbound").length,
        outbound: list.filter((c) => c.info.direction === "outbound").length,
      },
      hboneSessions: [...this.hbone.values()].reduce((n, h) => n + h.sessionCount(), 0),
      pool: this.pool.stats(),
    };
  }

  /** Live connections for the admin endpoint (bounded to `limit`). */
  connections(limit = 1000): Record<string, unknown>[] {
    return this.conns.list().slice(0, limit).map((c: L4Conn) => c.view());
  }
}
