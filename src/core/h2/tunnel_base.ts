/**
 * Connection-level state and plumbing shared by H2Session: preface, SETTINGS exchange,
 * connection windows, socket writes with drain tracking, PING, GOAWAY drain and teardown.
 * Frame semantics live in tunnel.ts.
 */
import { Buffer } from "node:buffer";
import type { Duplex } from "node:stream";
import { WeftError } from "../errors.ts";
import { noteBurst } from "../runtime.ts";
import { HpackDecoder } from "./hpack.ts";
import {
  DEFAULT_WINDOW,
  ErrorCode,
  FrameReader,
  type FrameSink,
  goawayFrame,
  H2ProtocolError,
  pingFrame,
  PREFACE,
  RecvWindow,
  SendWindow,
  Setting,
  settingsFrame,
  windowUpdateFrame,
} from "./frames.ts";
import type { H2Stream } from "./tunnel_stream.ts";
import { FloodGuard, type H2Limits } from "./limits.ts";

/** Queued frames past this size are written at once rather than at the end of the turn. */
const FLUSH_AT_BYTES = 64 * 1024;

/** Header fields by lower-case name (repeated fields joined with ", "). */
export type Headers = Record<string, string>;

/**
 * Server CONNECT handler: inspect `headers`, do the upstream work, then `respond(status)`.
 * A 2xx returns the tunnel stream; any other status ends the stream and returns null. `stream`
 * is the same stream before the answer: it is destroyed (with an error) if the peer resets it
 * first, so pending work can be abandoned.
 */
export type ConnectHandler = (
  headers: Headers,
  respond: (status: number, headers?: Headers) => H2Stream | null,
  stream: H2Stream,
) => void;

export interface H2SessionOptions {
  /** Our SETTINGS_INITIAL_WINDOW_SIZE (bytes buffered per stream at most). Default 4 MiB. */
  streamWindowBytes?: number;
  /** Connection receive window. Default 16 MiB. */
  connectionWindowBytes?: number;
  /** Largest frame we accept (SETTINGS_MAX_FRAME_SIZE). Default 1 MiB. */
  maxFrameBytes?: number;
  /** Server: SETTINGS_MAX_CONCURRENT_STREAMS. Default 200 (ztunnel's). */
  maxConcurrentStreams?: number;
  /** SETTINGS_MAX_HEADER_LIST_SIZE, enforced while decoding. Default 64 KiB. */
  maxHeaderListBytes?: number;
  /** Readable/writable high-water mark of each stream. Default 64 KiB. */
  streamHighWaterMark?: number;
  /** Flood budgets (limits.ts). */
  limits?: Partial<H2Limits>;
  /** Bytes already read from the socket (e.g. by protocol sniffing), processed first. */
  initialBytes?: Uint8Array;
  /** PING keepalive: one PING per interval; no answer within the timeout destroys the session. */
  keepalive?: { intervalMs: number; timeoutMs: number };
}

interface PendingOpen {
  resolve(v: { status: number; stream: H2Stream; headers: Headers }): void;
  reject(err: Error): void;
}

export abstract class H2Base implements FrameSink {
  readonly role: "client" | "server";
  /** Resolves once the socket is closed (after drain, destroy or a connection error). */
  readonly closed: Promise<void>;
  protected readonly socket: Duplex;
  protected readonly opts: H2SessionOptions;
  protected readonly streams = new Map<number, H2Stream>();
  protected readonly blocked = new Set<H2Stream>();
  protected readonly pendingOpens = new Map<number, PendingOpen>();
  protected drainWaiters: ((err?: Error | null) => void)[] = [];
  protected readonly decoder: HpackDecoder;
  protected readonly connSend = new SendWindow(DEFAULT_WINDOW);
  protected readonly connRecv: RecvWindow;
  protected readonly streamWindow: number;
  protected readonly maxStreams: number;
  protected readonly hwm: number;
  protected peerMaxStreams = 100;
  protected peerMaxFrameSize = 16384;
  protected peerInitialWindow = DEFAULT_WINDOW;
  protected nextStreamId = 1;
  protected lastPeerStreamId = 0;
  protected draining = false;
  protected closedSocket = false;
  protected goawayCode = 0;
  protected handler: ConnectHandler | null = null;
  protected headerBlock:
    | { streamId: number; flags: number; parts: Uint8Array[]; bytes: number }
    | null = null;
  protected readonly guard: FloodGuard;
  #goawayFns: (() => void)[] = [];
  #keepalive: ReturnType<typeof setInterval> | undefined;
  #lastPong = performance.now();
  #prefaceLeft: number;
  #reader: FrameReader;
  #pings: ((rttMs: number) => void)[] = [];
  #pingSent = 0;
  #resolveClosed!: () => void;
  /** Frames written this turn, sent together by `flushOut` (one TLS record, one syscall). */
  #out: Uint8Array[] = [];
  #outBytes = 0;
  #flushQueued = false;
  readonly #flushCb = (): void => {
    if (this.#flushQueued) this.flushOut();
  };

  constructor(socket: Duplex, role: "client" | "server", opts: H2SessionOptions) {
    this.socket = socket;
    this.role = role;
    this.opts = opts;
    this.streamWindow = opts.streamWindowBytes ?? 4 << 20;
    this.maxStreams = opts.maxConcurrentStreams ?? 200;
    this.hwm = opts.streamHighWaterMark ?? 65536;
    this.connRecv = new RecvWindow(opts.connectionWindowBytes ?? 16 << 20);
    this.decoder = new HpackDecoder(4096);
    this.guard = new FloodGuard(opts.limits);
    this.closed = new Promise((r) => (this.#resolveClosed = r));
    const maxFrame = opts.maxFrameBytes ?? 1 << 20;
    this.#reader = new FrameReader(this, maxFrame);
    this.#prefaceLeft = role === "server" ? PREFACE.length : 0;
    const settings = new Map<number, number>([
      [Setting.INITIAL_WINDOW_SIZE, this.streamWindow],
      [Setting.MAX_FRAME_SIZE, maxFrame],
      [Setting.MAX_HEADER_LIST_SIZE, opts.maxHeaderListBytes ?? 65536],
    ]);
    if (role === "client") settings.set(Setting.ENABLE_PUSH, 0);
    else settings.set(Setting.MAX_CONCURRENT_STREAMS, this.maxStreams);
    socket.cork();
    if (role === "client") socket.write(PREFACE);
    socket.write(settingsFrame(settings));
    socket.write(windowUpdateFrame(0, this.connRecv.size - DEFAULT_WINDOW));
    socket.uncork();
    const onBytes = (chunk: Uint8Array): void => this.#onBytes(chunk);
    socket.on("data", onBytes);
    directReads(socket, onBytes);
    socket.on("drain", () => {
      const w = this.drainWaiters;
      this.drainWaiters = [];
      for (const cb of w) cb();
    });
    socket.on("error", (err: Error) => this.#teardown(err));
    socket.on("close", () => this.#teardown(null));
    socket.on("end", () => {
      this.flushOut();
      socket.end();
    });
    if (opts.keepalive) this.#startKeepalive(opts.keepalive.intervalMs, opts.keepalive.timeoutMs);
    const first = opts.initialBytes;
    // After the caller registered its handler (the constructor returns first).
    if (first?.length) queueMicrotask(() => this.#onBytes(first));
  }

  #startKeepalive(intervalMs: number, timeoutMs: number): void {
    this.#keepalive = setInterval(() => {
      if (performance.now() - this.#lastPong > timeoutMs) {
        return this.destroy(
          new WeftError("h2_keepalive", "Cannot keep HTTP/2 session: no PING ack"),
        );
      }
      this.ping().then(() => this.#lastPong = performance.now());
    }, intervalMs);
    (this.#keepalive as unknown as { unref?: () => void }).unref?.();
  }

  /** Called once when the peer sends GOAWAY (no new streams on this session). */
  onGoaway(fn: () => void): void {
    this.#goawayFns.push(fn);
  }

  protected notifyGoaway(): void {
    for (const fn of this.#goawayFns.splice(0)) fn();
  }

  /** The peer's SETTINGS_MAX_CONCURRENT_STREAMS (100 until it says otherwise). */
  get peerStreamLimit(): number {
    return this.peerMaxStreams;
  }

  /** The underlying socket (TLS peer certificate, addresses). */
  get transport(): Duplex {
    return this.socket;
  }

  abstract data(streamId: number, piece: Uint8Array, last: boolean, flags: number): void;
  abstract frame(type: number, flags: number, streamId: number, payload: Uint8Array): void;

  /** Number of open streams. */
  get streamCount(): number {
    return this.streams.size;
  }

  /** Whether new streams can still be opened on this session. */
  get usable(): boolean {
    return !this.draining && !this.closedSocket && this.streams.size < this.peerMaxStreams;
  }

  /** Graceful drain: GOAWAY, refuse new streams, close once existing streams finish. */
  close(): Promise<void> {
    if (!this.draining && !this.closedSocket) {
      // Two-phase GOAWAY (RFC 9113 §6.8): announce with the maximum id, then after one PING
      // round trip name the real last stream, so requests in flight are not refused.
      this.write(goawayFrame(0x7fffffff, ErrorCode.NO_ERROR));
      this.ping().then(() => this.write(goawayFrame(this.lastPeerStreamId, ErrorCode.NO_ERROR)));
    }
    this.draining = true;
    this.afterStreamGone();
    return this.closed;
  }

  /** Abort: reset every stream and close the socket now. */
  destroy(err?: Error): void {
    if (!this.closedSocket) this.write(goawayFrame(this.lastPeerStreamId, ErrorCode.CANCEL));
    this.#teardown(err ?? null);
  }

  /** Round-trip a PING; resolves with the RTT in ms. */
  ping(): Promise<number> {
    this.#pingSent = performance.now();
    this.write(pingFrame(new Uint8Array(8), false));
    return new Promise((r) => this.#pings.push(r));
  }

  protected onPingAck(_payload: Uint8Array): void {
    const rtt = performance.now() - this.#pingSent;
    for (const r of this.#pings.splice(0)) r(rtt);
  }

  /**
   * Queue a frame; everything queued in this turn of the event loop leaves in one socket write
   * (setImmediate: after the I/O callbacks of this turn). A burst of requests on many tunnels
   * of one session (hey's 10 connections tick together) then costs one TLS record and one
   * syscall here and one read on the peer, instead of one each.
   */
  protected write(bytes: Uint8Array): void {
    if (this.closedSocket || this.socket.writableEnded) return;
    this.#out.push(bytes);
    this.#outBytes += bytes.length;
    if (this.#outBytes >= FLUSH_AT_BYTES) this.flushOut();
    else if (!this.#flushQueued) {
      this.#flushQueued = true;
      setImmediate(this.#flushCb);
    }
  }

  /** Bytes queued by `write` and not yet handed to the socket. */
  protected get queuedBytes(): number {
    return this.#outBytes;
  }

  /** Hand the queued frames to the socket now (before a direct write, an end or a destroy
   * that must not overtake them). Returns the socket's write() verdict. */
  protected flushOut(): boolean {
    this.#flushQueued = false;
    if (this.#out.length === 0) return !this.socket.writableNeedDrain;
    const chunk = this.#out.length === 1 ? this.#out[0]! : Buffer.concat(this.#out, this.#outBytes);
    this.#out.length = 0; // the same array every turn: one allocation less per flush
    this.#outBytes = 0;
    // Not `closedSocket`: teardown sends what was queued before it (GOAWAY) on its way out.
    if (this.socket.destroyed || this.socket.writableEnded) return true;
    const ok = this.socket.write(chunk);
    // Writers told to wait for room while their bytes were only queued here: there is room.
    if (ok && this.drainWaiters.length > 0) {
      const w = this.drainWaiters;
      this.drainWaiters = [];
      for (const cb of w) cb();
    }
    return ok;
  }

  /** A frame we owe the peer in answer to its own (ACKs, refusals): a peer that keeps asking
   * without reading cannot make us queue without bound. */
  protected answer(bytes: Uint8Array): void {
    if (this.socket.writableLength + this.#outBytes > this.guard.limits.maxQueuedBytes) {
      throw new H2ProtocolError(ErrorCode.ENHANCE_YOUR_CALM, "peer does not read our answers");
    }
    this.write(bytes);
  }

  protected fail(action: string, reason: string): WeftError {
    return new WeftError("h2_session", `Cannot ${action} HTTP/2 stream: ${reason}`);
  }

  /** DATA bytes arrived on the connection: they count against the connection window until the
   * consumer takes them (`connConsumed`), so the window bounds what one session holds. */
  protected onDataBytes(_streamId: number, n: number): void {
    if (n > 0) this.connRecv.receive(n);
  }

  /** Bytes leave the session (read by a consumer, or dropped): replenish the connection window. */
  protected connConsumed(n: number): void {
    if (n <= 0) return;
    const inc = this.connRecv.consume(n);
    if (inc > 0) this.write(windowUpdateFrame(0, inc));
  }

  protected afterStreamGone(): void {
    if (this.draining && this.streams.size === 0 && !this.closedSocket) {
      this.flushOut();
      this.socket.end();
    }
  }

  #onBytes(chunk: Uint8Array): void {
    try {
      if (this.#prefaceLeft > 0) {
        const take = Math.min(this.#prefaceLeft, chunk.length);
        const off = PREFACE.length - this.#prefaceLeft;
        for (let i = 0; i < take; i++) {
          if (chunk[i] !== PREFACE[off + i]) {
            throw new H2ProtocolError(ErrorCode.PROTOCOL_ERROR, "bad client preface");
          }
        }
        this.#prefaceLeft -= take;
        chunk = chunk.subarray(take);
      }
      if (chunk.length > 0) this.#reader.push(chunk);
    } catch (err) {
      const code = err instanceof H2ProtocolError ? err.h2Code : ErrorCode.INTERNAL_ERROR;
      if (code === ErrorCode.ENHANCE_YOUR_CALM) noteBurst();
      this.write(goawayFrame(this.lastPeerStreamId, code));
      this.#teardown(err as Error, true);
    }
  }

  /** `flush`: let queued bytes (our GOAWAY) reach the peer before the socket goes. */
  #teardown(err: Error | null, flush = false): void {
    const first = !this.closedSocket;
    this.closedSocket = true;
    if (this.#keepalive) clearInterval(this.#keepalive);
    this.#keepalive = undefined;
    this.draining = true;
    const reason = err ??
      new WeftError("h2_session_closed", "Cannot continue HTTP/2 stream: connection closed");
    for (const p of this.pendingOpens.values()) p.reject(reason);
    this.pendingOpens.clear();
    for (const s of [...this.streams.values()]) {
      s.h2Closed = true;
      s.destroy(reason);
    }
    this.streams.clear();
    this.blocked.clear();
    for (const cb of this.drainWaiters.splice(0)) cb(reason);
    if (first) {
      this.flushOut(); // our last frames (GOAWAY) go out as they did before queueing
      if (flush && !this.socket.writableEnded) {
        this.socket.once("finish", () => this.socket.destroy());
        this.socket.end();
      } else this.socket.destroy();
      this.#resolveClosed();
    }
  }
}

/**
 * Reads of the session's socket skip the Readable's queue while nothing waits in it: the runtime
 * hands each read to `push()` (Bun's and Node's net/tls sockets do), and while the socket flows
 * with an empty buffer and the session is its only 'data' listener, the bytes go to `onBytes` as
 * the 'data' event would, without the Readable's chunk bookkeeping, event dispatch and next-tick
 * read-ahead (a few µs per TLS read on Bun, the per-request cost of a tunnel). Anything else —
 * the end of stream, a paused or buffering socket, another 'data' listener — goes through the
 * Readable unchanged, in order.
 */
function directReads(socket: Duplex, onBytes: (chunk: Uint8Array) => void): void {
  const s = socket as Duplex & { push(chunk: unknown, encoding?: BufferEncoding): boolean };
  const push = s.push;
  if (typeof push !== "function") return; // not a Readable (native_socket.ts emits 'data' itself)
  s.push = function (this: Duplex, chunk: unknown, encoding?: BufferEncoding): boolean {
    if (
      chunk instanceof Uint8Array && this.readableFlowing === true && this.readableLength === 0 &&
      !this.destroyed && this.listenerCount("data") === 1
    ) {
      onBytes(chunk);
      return true;
    }
    return push.call(this, chunk, encoding);
  };
}
