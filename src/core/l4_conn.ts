/**
 * One proxied L4 connection (downstream ⇄ upstream) and the table that tracks them: byte copy with
 * backpressure and half-close, byte counts, idle timeout, the connection limit, policy re-checks
 * and drain. Each connection records its metrics and access log exactly once, when it finishes.
 */
import type { Duplex } from "node:stream";
import { connect, type Socket } from "node:net";
import { H2Stream } from "./h2/mod.ts";
import { WeftError } from "./errors.ts";
import { type ConnInfo, l4Metrics, type Outcome, recordClose, recordOpen } from "./l4_telemetry.ts";

let nextId = 1;

export class L4Conn {
  readonly id = nextId++;
  readonly startedAt = Date.now();
  lastActivity = performance.now();
  bytesRecv = 0;
  bytesSent = 0;
  upstream: Duplex | undefined;
  /** Re-run authorization after a snapshot update; false = close. Inbound only. */
  recheck: (() => boolean) | undefined;
  private opened = false;
  private finished = false;
  private outcome: Outcome | undefined;
  private detail: string | undefined;
  private closes = 0;
  /** The metric label key of this connection (recordOpen), reused when it closes. */
  private labelKey: string | undefined;
  private readonly table: ConnTable | undefined;

  constructor(readonly info: ConnInfo, readonly downstream: Duplex, table?: ConnTable) {
    this.table = table;
    (downstream as Side)[CONN] = this;
    downstream.on("error", onSideError);
  }

  /** Start copying both ways; the connection counts as opened from here. */
  attach(upstream: Duplex): void {
    this.upstream = upstream;
    this.opened = true;
    this.labelKey = recordOpen(this.info);
    (upstream as Side)[CONN] = this;
    upstream.on("error", onSideError);
    // An idle tunnel's memory is mostly its listeners (bench:l4 "idle tunnels held"): both sides
    // point at this connection and share module-level listeners, no closure per tunnel.
    pump(this.downstream);
    pump(upstream);
  }

  /** The other side of `side` (the one its bytes are copied to). */
  peerOf(side: Duplex): Duplex | undefined {
    return side === this.downstream ? this.upstream : this.downstream;
  }

  /** Bytes and activity of one direction (called by pump for each chunk). */
  counted(fromDownstream: boolean, n: number): void {
    if (fromDownstream) this.bytesRecv += n;
    else this.bytesSent += n;
    this.lastActivity = performance.now();
  }

  /** One direction ended (FIN); 0b01 downstream, 0b10 upstream. */
  private ends = 0;

  ended(fromDownstream: boolean): void {
    this.ends |= fromDownstream ? 1 : 2;
  }

  /** One side closed: a close before both directions ended is an error for the other side. */
  closedSide(other: Duplex): void {
    this.closes++;
    if (this.ends !== 3) {
      this.note("error", "peer closed before both directions ended");
      other.destroy();
    }
    if (this.closes === 2) this.finish();
  }

  /**
   * Terminate the connection here (an L7 handler reads the downstream socket or HBONE stream
   * itself: no in-memory pair, one copy per byte). Bytes are taken from the downstream's own
   * counters (`bytesRead`/`bytesWritten` of net.Socket and H2Stream), polled for idleness.
   */
  serve(handler: (down: Duplex) => Promise<void>): void {
    this.opened = true;
    this.labelKey = recordOpen(this.info);
    const d = this.downstream as Duplex & { bytesRead?: number; bytesWritten?: number };
    const read0 = d.bytesRead ?? 0;
    const written0 = d.bytesWritten ?? 0;
    this.counters = () => [(d.bytesRead ?? 0) - read0, (d.bytesWritten ?? 0) - written0];
    let pending = 2;
    const done = (): void => {
      if (--pending > 0) return;
      this.syncCounters();
      this.finish();
    };
    d.once("close", done);
    handler(d).catch((e: unknown) => this.note("error", String(e))).finally(() => {
      settle(d);
      done();
    });
    d.resume(); // listeners accept paused (pauseOnConnect)
  }

  /** Served connections: the downstream's own byte counters (set by `serve`). */
  counters: (() => [number, number]) | undefined;

  /** Served connections: refresh byte counts (and activity when they moved). */
  syncCounters(): void {
    if (!this.counters) return;
    const [r, w] = this.counters();
    if (r !== this.bytesRecv || w !== this.bytesSent) this.lastActivity = performance.now();
    this.bytesRecv = r;
    this.bytesSent = w;
  }

  /** Remember the first non-ok reason; the outcome is recorded at finish. */
  note(outcome: Outcome, detail?: string): void {
    if (this.outcome === undefined) {
      this.outcome = outcome;
      this.detail = detail;
    }
  }

  /** Fail before attach (refused, denied, connect failure): close the downstream, unless the
   * caller already ended it with a protocol answer (`answered`). */
  fail(outcome: Outcome, detail?: string, answered = false): void {
    this.note(outcome, detail);
    if (!answered) this.downstream.destroy();
    this.upstream?.destroy();
    if (!this.opened) this.finish();
  }

  /** Tear down an attached connection now (policy revoked, drain deadline, idle). */
  abort(outcome: Outcome, detail?: string): void {
    this.note(outcome, detail);
    this.downstream.destroy();
    this.upstream?.destroy();
    if (!this.opened) this.finish();
  }

  /** True once recorded (aborted or closed); a late upstream must then be discarded. */
  get done(): boolean {
    return this.finished || this.outcome !== undefined;
  }

  private finish(): void {
    if (this.finished) return;
    this.finished = true;
    const dur = Date.now() - this.startedAt;
    recordClose(
      this.info,
      this.outcome ?? "ok",
      this.opened,
      this.bytesRecv,
      this.bytesSent,
      dur,
      this.detail,
      this.labelKey,
    );
    this.table?.finished(this);
  }

  view(): Record<string, unknown> {
    this.syncCounters();
    return {
      id: this.id,
      ...this.info,
      bytesRecv: this.bytesRecv,
      bytesSent: this.bytesSent,
      ageMs: Date.now() - this.startedAt,
      state: this.opened ? "open" : "connecting",
    };
  }
}

/** A side of a proxied connection knows its connection (the shared listeners below read it). */
const CONN = Symbol("weft.l4conn");
type Side = Duplex & { [CONN]?: L4Conn };

function connOf(side: Duplex): L4Conn {
  return (side as Side)[CONN]!;
}

function onSideError(this: Duplex, e: Error): void {
  const c = connOf(this);
  // A served (L7) connection whose client cancels its HBONE stream simply ended.
  if (this === c.downstream && c.counters && (e as { code?: string }).code === "h2_stream_cancel") {
    return;
  }
  // The HBONE connection under this tunnel was closed because a CRL revoked its peer.
  c.note((e as { code?: string }).code === "cert_revoked" ? "cert_revoked" : "error", e.message);
}

function onSideData(this: Duplex, chunk: Uint8Array): void {
  const c = connOf(this);
  const dst = c.peerOf(this)!;
  c.counted(this === c.downstream, chunk.byteLength);
  if (!(dst instanceof H2Stream ? dst.send(chunk) : dst.write(chunk))) {
    this.pause();
    dst.once("drain", onPeerDrain);
  }
}

/** `this` drained: resume the side that writes into it. */
function onPeerDrain(this: Duplex): void {
  connOf(this).peerOf(this)?.resume();
}

function onSideEnd(this: Duplex): void {
  const c = connOf(this);
  c.ended(this === c.downstream);
  const dst = c.peerOf(this)!;
  if (!dst.destroyed) dst.end();
}

function onSideClose(this: Duplex): void {
  const c = connOf(this);
  c.closedSide(c.peerOf(this)!);
}

/** Copy `src` → its peer with backpressure and half-close. */
function pump(src: Duplex): void {
  src.on("data", onSideData);
  if (src instanceof H2Stream) src.setDataSink(onSideData);
  // `on`, not `once`: both fire at most once, and each `once` costs a wrapper per tunnel.
  src.on("end", onSideEnd);
  src.on("close", onSideClose);
  // Listeners accept paused (pauseOnConnect) so nothing is read before the upstream exists.
  src.resume();
}

/** weft_l4_active_connections by direction, bound once. */
const ACTIVE = {
  inbound: l4Metrics.active.bind({ direction: "inbound" }),
  outbound: l4Metrics.active.bind({ direction: "outbound" }),
};

export class ConnTable {
  private conns = new Set<L4Conn>();
  private sweep: ReturnType<typeof setInterval> | undefined;
  private emptyWaiters: (() => void)[] = [];

  constructor(private limits: () => { maxConnections: number; idleMs: number }) {}

  get size(): number {
    return this.conns.size;
  }

  /** Connections accepted but not yet proxied (HBONE handshakes): they count against
   * maxConnections too, so a flood of half-open TLS cannot grow past the budget. */
  private pending = 0;

  reservePending(): boolean {
    if (this.conns.size + this.pending >= this.limits().maxConnections) return false;
    this.pending++;
    return true;
  }

  releasePending(): void {
    this.pending--;
  }

  /** A new tracked connection, or undefined when the limit is reached (caller refuses). */
  create(info: ConnInfo, downstream: Duplex): L4Conn | undefined {
    if (this.conns.size + this.pending >= this.limits().maxConnections) return undefined;
    const c = new L4Conn(info, downstream, this);
    this.conns.add(c);
    ACTIVE[info.direction](1);
    this.ensureSweep();
    return c;
  }

  /** Called once by a connection when it is recorded. */
  finished(done: L4Conn): void {
    this.conns.delete(done);
    ACTIVE[done.info.direction](-1);
    if (this.conns.size === 0) { for (const w of this.emptyWaiters.splice(0)) w(); }
  }

  private ensureSweep(): void {
    if (this.sweep) return;
    this.sweep = setInterval(() => this.sweepIdle(), 1000);
    // deno-lint-ignore no-explicit-any
    (this.sweep as any).unref?.();
  }

  private sweepIdle(): void {
    const idleMs = this.limits().idleMs;
    if (this.conns.size === 0) {
      clearInterval(this.sweep);
      this.sweep = undefined;
      return;
    }
    if (!(idleMs > 0)) return;
    const now = performance.now();
    for (const c of this.conns) {
      c.syncCounters();
      if (now - c.lastActivity > idleMs) c.abort("idle_timeout");
    }
  }

  /** Re-run authorization on tracked inbound connections; close the denied ones. */
  recheckAll(): number {
    let closed = 0;
    for (const c of [...this.conns]) {
      if (c.recheck && !c.recheck()) {
        c.abort("policy_revoked", "authorization policy changed");
        closed++;
      }
    }
    return closed;
  }

  /** Resolves when no connection is left, or at the deadline after aborting the rest. */
  async drain(deadlineMs: number): Promise<void> {
    if (this.conns.size > 0) {
      let timer: ReturnType<typeof setTimeout> | undefined;
      await Promise.race([
        new Promise<void>((r) => this.emptyWaiters.push(r)),
        new Promise<void>((r) => timer = setTimeout(r, deadlineMs)),
      ]);
      clearTimeout(timer);
    }
    this.closeAll("drained");
  }

  /** Resolves once every tracked connection has finished (after aborts, sockets close async), or
   * after `maxWaitMs` so a socket that never reports close cannot hang shutdown. */
  async waitEmpty(maxWaitMs = 2000): Promise<void> {
    if (this.conns.size === 0) return;
    let timer: ReturnType<typeof setTimeout> | undefined;
    await Promise.race([
      new Promise<void>((r) => this.emptyWaiters.push(r)),
      new Promise<void>((r) => timer = setTimeout(r, maxWaitMs)),
    ]);
    clearTimeout(timer);
  }

  closeAll(outcome: Outcome): void {
    for (const c of [...this.conns]) c.abort(outcome, "proxy shutting down");
    if (this.sweep) clearInterval(this.sweep);
    this.sweep = undefined;
  }

  list(): L4Conn[] {
    return [...this.conns];
  }
}

/** TCP connect with a timeout; the socket is half-close capable and Nagle-free. */
/** TCP keepalive idle time on every proxied socket (ztunnel's KEEPALIVE_TIME, 180 s; hbone.md
 * §5). node:net sets only the idle time; the probe interval and count stay the kernel's. */
export const TCP_KEEPALIVE_MS = 180_000;

export function dialTcp(host: string, port: number, timeoutMs: number): Promise<Socket> {
  return new Promise((resolve, reject) => {
    const s = connect({ host, port, allowHalfOpen: true, noDelay: true });
    const timer = setTimeout(() => {
      s.destroy();
      reject(
        new WeftError(
          "connect_timeout",
          `Cannot connect to ${host}:${port}: timed out after ${timeoutMs} ms`,
        ),
      );
    }, timeoutMs);
    s.once("connect", () => {
      clearTimeout(timer);
      s.off("error", onError);
      s.setKeepAlive(true, TCP_KEEPALIVE_MS);
      resolve(s);
    });
    const onError = (e: Error): void => {
      clearTimeout(timer);
      reject(
        new WeftError("connect_failed", `Cannot connect to ${host}:${port}: ${e.message}`, {
          cause: e,
        }),
      );
    };
    s.once("error", onError);
  });
}

/** After the handler ended its side: destroying the socket at once would drop the queued end (the
 * client would get its response but no FIN), so wait until the end went through ('finish'),
 * then until the client's side ended too (at most `lingerMs`), then destroy. */
function settle(side: Duplex, lingerMs = 5000): void {
  const last = (): void => {
    if (side.readableEnded || side.destroyed) return void side.destroy();
    const t = setTimeout(() => side.destroy(), lingerMs);
    side.once("end", () => {
      clearTimeout(t);
      side.destroy();
    });
    side.once("close", () => clearTimeout(t));
    side.resume(); // drain what the client still sends so its end can arrive
  };
  if (side.writableFinished || side.destroyed) return last();
  const t = setTimeout(() => side.destroy(), lingerMs);
  side.once("finish", () => {
    clearTimeout(t);
    last();
  });
  side.once("close", () => clearTimeout(t));
  if (!side.writableEnded) side.end();
}
