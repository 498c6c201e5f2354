/**
 * The HTTP/1.1 upstream keep-alive pool of the L7 proxy, per route, as Envoy's: a connection is
 * kept only when nothing is left unread on it; one the upstream closes (FIN or RST) or sends bytes
 * on while idle leaves the pool at once (watched through its reader's wake-up slot, so no
 * listener is added or removed per request), and one idle longer than `idleTimeoutMs` is closed
 * (Envoy's upstream `common_http_protocol_options.idle_timeout`, default 1 h) by one timer per
 * pool, armed for the oldest idle connection. `weft_http_upstream_idle_connections` counts the
 * idle connections of every pool of the process; `weft_http_upstream_idle_closed_total{reason}`
 * those that left the pool while idle.
 */
import type { Duplex } from "node:stream";
import type { RouteChoice } from "./filter_api.ts";
import { ByteReader } from "./http1_codec.ts";
import { endUpstream, type Upstream } from "./http1_upstream.ts";
import { setNoDelay } from "./http_io.ts";
import { metrics } from "./metrics.ts";

/** Envoy's default upstream idle timeout. */
export const DEFAULT_UPSTREAM_IDLE_MS = 3_600_000;

let idleTotal = 0;
metrics.gauge(
  "weft_http_upstream_idle_connections",
  "Idle keep-alive HTTP/1.1 upstream connections pooled by the L7 proxies",
).collect(() => idleTotal);
const idleClosed = metrics.counter(
  "weft_http_upstream_idle_closed_total",
  "Pooled HTTP/1.1 upstream connections closed while idle: the upstream closed or reset them " +
    "(peer_closed), sent bytes nobody asked for (unsolicited_bytes), or idle past timeouts.upstreamIdle (idle_timeout)",
  ["reason"],
);

/** What the pool keeps per idle connection (on the Upstream itself: no allocation per release). */
interface Pooled extends Upstream {
  /** performance.now() when it went idle. */
  idleSince?: number;
  /** Its watch while idle (made once per connection). */
  onIdleEvent?: (() => void) | undefined;
}

/** The pool key of a route, remembered for the last service and subset seen (compared by value;
 * filters that choose routes hand back the same strings for the same route, respond_memo.ts), so
 * the common request builds and hashes no key string. */
let lastService: string | undefined;
let lastSubset: string | undefined;
let lastKey = "";
function keyOf(route: RouteChoice | undefined): string {
  if (route === undefined) return "";
  if (route.service !== lastService || route.subset !== lastSubset) {
    lastKey = `${route.service}|${route.subset ?? ""}`;
    lastService = route.service;
    lastSubset = route.subset;
  }
  return lastKey;
}

export class Http1UpstreamPool {
  /** Per key, oldest first (reuse takes the newest: the warmest and the furthest from expiry). */
  private readonly idle = new Map<string, Pooled[]>();
  private closed = false;
  private sweepTimer: ReturnType<typeof setTimeout> | undefined;
  private readonly sweepNow = (): void => this.sweep();

  constructor(
    private readonly dial: (route?: RouteChoice, tried?: Set<string>) => Promise<Duplex>,
    private readonly maxIdlePerRoute = 64,
    private readonly idleTimeoutMs = DEFAULT_UPSTREAM_IDLE_MS,
  ) {}

  /** A kept connection for `route`, if one is usable now (no Promise: the common case). */
  idleFor(route: RouteChoice | undefined): Upstream | undefined {
    const list = this.idle.get(keyOf(route));
    while (list && list.length > 0) {
      const u = list.pop()!;
      this.leave(u);
      if (!u.stream.destroyed && !u.reader.atEnd && u.reader.buffered === 0) {
        u.reused = true;
        return u;
      }
      u.stream.destroy();
    }
    return undefined;
  }

  /** A kept connection, else a new one. `tried`: a retry's earlier endpoints (previous_hosts):
   * when it names any, a new connection to another endpoint is dialled (the dialler picks and
   * adds to it). */
  async acquire(route: RouteChoice | undefined, tried?: Set<string>): Promise<Upstream> {
    const kept = tried?.size ? undefined : this.idleFor(route);
    if (kept) return kept;
    const key = keyOf(route);
    const stream = await this.dial(route, tried);
    setNoDelay(stream);
    stream.on("error", () => {}); // surfaced through the reader
    // Every field the pool sets later is there from the start: one object shape per connection.
    const u: Pooled = {
      stream,
      reader: new ByteReader(stream),
      key,
      reused: false,
      hold: undefined,
      owner: undefined,
      protocolError: false,
      idleSince: 0,
      onIdleEvent: undefined,
    };
    return u;
  }

  /** Only for a connection whose last response was read completely and cleanly. */
  release(up: Upstream): void {
    const u = up as Pooled;
    u.owner = undefined;
    const hold = u.hold;
    if (hold) {
      // Its request is still going out (http1_duplex.ts): pooled once that ends whole.
      u.hold = undefined;
      void hold.then(
        (whole) => whole ? this.release(u) : u.stream.destroy(),
        () => u.stream.destroy(),
      );
      return;
    }
    if (this.closed || u.stream.destroyed || u.reader.atEnd || u.reader.buffered > 0) {
      endUpstream(u.stream);
      return;
    }
    let list = this.idle.get(u.key);
    if (!list) this.idle.set(u.key, list = []);
    if (list.length >= this.maxIdlePerRoute) {
      endUpstream(u.stream);
      return;
    }
    u.idleSince = performance.now();
    u.onIdleEvent ??= () => this.idleEvent(u);
    u.reader.watch(u.onIdleEvent);
    list.push(u);
    idleTotal++;
    if (this.sweepTimer === undefined) this.arm(this.idleTimeoutMs);
  }

  /** Idle connections kept now (all routes). */
  get idleCount(): number {
    let n = 0;
    for (const list of this.idle.values()) n += list.length;
    return n;
  }

  close(): void {
    this.closed = true;
    clearTimeout(this.sweepTimer);
    this.sweepTimer = undefined;
    for (const list of this.idle.values()) {
      for (const u of list) {
        this.leave(u);
        endUpstream(u.stream);
      }
    }
    this.idle.clear();
  }

  /** No longer idle (reused, dropped or closed): its watch ends. */
  private leave(u: Pooled): void {
    idleTotal--;
    if (u.onIdleEvent) u.reader.unwatch(u.onIdleEvent);
  }

  /** The upstream closed, reset or sent bytes on an idle connection: it leaves the pool now. */
  private idleEvent(u: Pooled): void {
    const list = this.idle.get(u.key);
    const i = list ? list.indexOf(u) : -1;
    if (i < 0) return; // not idle any more
    list!.splice(i, 1);
    this.leave(u);
    // A clean FIN is answered with ours; bytes nobody asked for, or an error, are not.
    const unsolicited = u.reader.buffered > 0;
    idleClosed.inc({ reason: unsolicited ? "unsolicited_bytes" : "peer_closed" });
    if (u.reader.atEnd) endUpstream(u.stream);
    else u.stream.destroy();
  }

  private arm(ms: number): void {
    this.sweepTimer = setTimeout(this.sweepNow, Math.max(1, ms));
    (this.sweepTimer as { unref?: () => void }).unref?.(); // an idle pool keeps no process alive
  }

  /** Closes the connections idle for idleTimeoutMs; re-armed for the oldest left. */
  private sweep(): void {
    this.sweepTimer = undefined;
    const now = performance.now();
    let next = Infinity;
    for (const [key, list] of this.idle) {
      while (list.length > 0 && now - list[0]!.idleSince! >= this.idleTimeoutMs - 1) {
        const u = list.shift()!;
        this.leave(u);
        idleClosed.inc({ reason: "idle_timeout" });
        endUpstream(u.stream);
      }
      if (list.length === 0) this.idle.delete(key);
      else next = Math.min(next, list[0]!.idleSince! + this.idleTimeoutMs - now);
    }
    if (next !== Infinity) this.arm(next);
  }
}
