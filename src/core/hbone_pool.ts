/**
 * HBONE connection pool (hbone.md §10): one pool entry per (source identity, source IP, destination
 * identity, destination HBONE address); at most `poolMaxStreamsPerConnection` streams per connection; a
 * single dial in flight per key; idle connections released after `poolIdleMs`; PING every 10 s,
 * fail after 20 s; a connection that received GOAWAY takes no new streams.
 */
import type { Duplex } from "node:stream";
import type { IdentityProvider } from "./transport.ts";
import { type ConnectRequest, dialHbone, type DialTarget, openConnect } from "./hbone_client.ts";
import type { H2Session } from "./h2/mod.ts";
import { l4Metrics } from "./l4_telemetry.ts";
import { WeftError } from "./errors.ts";
import { openInnerTunnel } from "./hbone_double.ts";

interface Pooled {
  readonly pool: HbonePool;
  readonly key: string;
  readonly session: H2Session;
  streams: number;
  closed: boolean;
  goaway: boolean;
  idleTimer: ReturnType<typeof setTimeout> | undefined;
}

export interface PoolLimits {
  readonly maxStreams: number;
  readonly idleMs: number;
  readonly connectMs: number;
}

function unref(t: unknown): void {
  (t as { unref?: () => void }).unref?.();
}

const POOLED = Symbol("weft.pooled");
type PooledStream = Duplex & { [POOLED]?: Pooled };

function releaseOnClose(this: Duplex): void {
  const p = (this as PooledStream)[POOLED];
  if (p) p.pool.release(p);
}

export class HbonePool {
  private entries = new Map<string, Pooled[]>();
  private dialing = new Map<string, Promise<Pooled>>();
  private draining = false;
  private closed = false;

  constructor(private identity: IdentityProvider, private limits: () => PoolLimits) {}

  static keyOf(t: DialTarget): string {
    // ztunnel's WorkloadKey holds the whole list of expected SANs (hbone.md §10).
    const sans = t.dstSans?.length ? `,${t.dstSans.join(",")}` : "";
    return `${t.srcIdentity}|${t.srcIp ?? ""}|${t.dstIdentity}${sans}|${t.hboneAddr}`;
  }

  /** Open a CONNECT stream to `target`, reusing a pooled connection when one has room. */
  async connect(target: DialTarget, req: ConnectRequest): Promise<Duplex> {
    const key = HbonePool.keyOf(target);
    // Waiters on one dial may overfill it: they loop and dial again. Only connections that die
    // under us count against the retry budget.
    for (let lost = 0; lost < 8;) {
      if (this.draining) break;
      const p = this.pick(key) ?? await this.dial(key, target);
      if (p.closed || p.goaway) {
        lost++;
        continue;
      }
      if (p.streams >= this.limits().maxStreams) continue;
      this.acquire(p);
      let stream: Duplex;
      try {
        stream = await openConnect(p.session, req, this.limits().connectMs);
      } catch (e) {
        this.release(p);
        throw e;
      }
      // One shared listener (the stream names its connection): no closure per tunnel, which
      // would also keep this call's scope (target, request) alive for the tunnel's life.
      (stream as PooledStream)[POOLED] = p;
      stream.on("close", releaseOnClose);
      return stream;
    }
    throw new WeftError(
      "hbone_pool_unavailable",
      "Cannot open HBONE stream: pool is draining or kept losing connections",
    );
  }

  /** Double HBONE (hbone.md §9): the outer CONNECT on a pooled connection to the network
   * gateway, the inner tunnel (TLS with `finalSans`, HTTP/2, CONNECT with `x-forwarded-network:
   * <network>`) on a connection of its own inside it. */
  async connectVia(
    gateway: DialTarget,
    req: ConnectRequest,
    finalSans: readonly string[],
    network: string,
  ): Promise<Duplex> {
    const outer = await this.connect(gateway, req);
    return openInnerTunnel(
      this.identity,
      outer,
      { srcIdentity: gateway.srcIdentity, finalSans, via: gateway.hboneAddr },
      { ...req, network },
      this.limits().connectMs,
    );
  }

  private pick(key: string): Pooled | undefined {
    const max = this.limits().maxStreams;
    const list = this.entries.get(key);
    if (!list) return undefined;
    for (const p of list) {
      if (p.closed || p.goaway) continue;
      if (p.streams < Math.min(max, p.session.peerStreamLimit)) return p;
    }
    return undefined;
  }

  /** Single-flight: concurrent callers for one key share one dial. */
  private dial(key: string, target: DialTarget): Promise<Pooled> {
    let d = this.dialing.get(key);
    if (!d) {
      d = dialHbone(this.identity, target, this.limits().connectMs)
        .then((s) => this.adopt(key, s))
        .finally(() => this.dialing.delete(key));
      this.dialing.set(key, d);
    }
    return d;
  }

  private adopt(key: string, session: H2Session): Pooled {
    if (this.closed) {
      session.destroy();
      throw new WeftError("hbone_pool_closed", "Cannot open HBONE stream: the pool is closed");
    }
    const p: Pooled = {
      pool: this,
      key,
      session,
      streams: 0,
      closed: false,
      goaway: this.draining,
      idleTimer: undefined,
    };
    let list = this.entries.get(key);
    if (!list) this.entries.set(key, list = []);
    list.push(p);
    l4Metrics.poolConnections.add({}, 1);
    // PING keepalive runs in the session (H2_OPTIONS.keepalive).
    session.onGoaway(() => p.goaway = true);
    session.closed.then(() => this.forget(p));
    this.armIdle(p);
    return p;
  }

  private acquire(p: Pooled): void {
    p.streams++;
    l4Metrics.poolStreams.add({}, 1);
    if (p.idleTimer) clearTimeout(p.idleTimer);
    p.idleTimer = undefined;
  }

  /** A stream of `p` closed (module-internal: releaseOnClose). */
  release(p: Pooled): void {
    p.streams--;
    l4Metrics.poolStreams.add({}, -1);
    if (p.streams === 0) {
      // Draining: leave it to close() at the end of the drain (see drain()).
      if (this.draining) return;
      // destroy, not close: with no stream left there is nothing to finish.
      if (p.goaway) p.session.destroy();
      else this.armIdle(p);
    }
  }

  private armIdle(p: Pooled): void {
    if (p.streams > 0 || p.closed) return;
    p.idleTimer = setTimeout(() => {
      if (p.streams === 0) p.session.destroy(); // see release()
    }, this.limits().idleMs);
    unref(p.idleTimer);
  }

  private forget(p: Pooled): void {
    if (p.closed) return;
    p.closed = true;
    if (p.idleTimer) clearTimeout(p.idleTimer);
    l4Metrics.poolConnections.add({}, -1);
    const list = this.entries.get(p.key);
    if (!list) return;
    const i = list.indexOf(p);
    if (i >= 0) list.splice(i, 1);
    if (list.length === 0) this.entries.delete(p.key);
  }

  /** Connections dialled from `srcIp` take no new streams and close as their last stream ends
   * (in-pod mode: that pod was removed, its namespace must not be kept alive by them). */
  retireSource(srcIp: string): void {
    for (const [key, list] of this.entries) {
      if (key.split("|")[1] !== srcIp) continue;
      for (const p of list) {
        p.goaway = true;
        if (p.streams === 0) p.session.close();
      }
    }
  }

  /** No new streams anywhere. Sessions stay open until close() at the end of the drain, idle
   * ones included: on Deno 2.9.6, closing or destroying pooled sessions while other sessions to
   * the same node carried tunnels cut those tunnels (bench/soak.ts after 10 000 connections: 200
   * of 200 reset at SIGTERM; 0 with this). */
  drain(): void {
    this.draining = true;
    for (const list of this.entries.values()) for (const p of list) p.goaway = true;
  }

  close(): void {
    this.draining = true;
    this.closed = true;
    for (const list of [...this.entries.values()]) for (const p of [...list]) p.session.destroy();
  }

  stats(): { key: string; connections: number; streams: number }[] {
    return [...this.entries].map(([key, list]) => ({
      key,
      connections: list.length,
      streams: list.reduce((n, p) => n + p.streams, 0),
    }));
  }
}
