/**
 * One HTTP/2 CONNECT stream as a node Duplex. Backpressure maps onto flow control: bytes the
 * consumer has not read yet are not returned to the peer's window, so the peer can buffer at
 * most one window (plus the readable high-water mark) here; writes complete only once their
 * DATA frames are in the socket, so at most one chunk plus the writable high-water mark waits.
 */
import { Duplex } from "node:stream";
import { RecvWindow, SendWindow } from "./frames.ts";

/** What a stream needs from its session (implemented by H2Session). */
export interface StreamHost {
  writeData(s: H2Stream, chunk: Uint8Array, cb: (err?: Error | null) => void): void;
  endStream(s: H2Stream): void;
  /** HEADERS on this stream (a response, or trailers when `endStream`). */
  sendHeaders(s: H2Stream, list: [string, string][], endStream: boolean): void;
  /** The consumer read `n` bytes: return them to the peer's window. */
  consumed(s: H2Stream, n: number): void;
  /** The stream was destroyed locally before both sides ended: reset it, or end it when `clean`
   * (no error, the peer already ended, nothing of ours unsent). */
  streamDestroyed(s: H2Stream, err: Error | null, clean: boolean): void;
}

/** The header list of a stream that keeps none (shared, frozen: a tunnel holds no array). */
export const NO_HEADERS = Object.freeze([]) as unknown as [string, string][];

/** A queued write waiting for send window. */
export interface PendingWrite {
  chunk: Uint8Array;
  offset: number;
  cb: (err?: Error | null) => void;
}

export class H2Stream extends Duplex {
  readonly id: number;
  readonly sendWindow: SendWindow;
  readonly recvWindow: RecvWindow;
  pending: PendingWrite | null = null;
  localEnded = false;
  remoteEnded = false;
  /** Closed at the HTTP/2 level (both ends, or reset): no RST on destroy. */
  h2Closed = false;
  /** The peer's header fields in order: request (server side) or response (client side). */
  headerList: [string, string][] = NO_HEADERS;
  /** Trailers the peer sent (set before 'end'). */
  trailers: [string, string][] | undefined;
  /** Trailers to send instead of an empty END_STREAM DATA frame when the writable side ends. */
  outTrailers: [string, string][] | undefined;
  headersSent = false;
  /** DATA payload bytes received from / written to the peer (telemetry). */
  bytesRead = 0;
  bytesWritten = 0;
  #held = 0; // bytes pushed while the readable buffer was full: not yet returned to the peer
  /** The L4 copy's listener, called straight from `deliver` while the stream flows with nothing
   * buffered (setDataSink). */
  #sink: ((this: H2Stream, chunk: Uint8Array) => void) | null = null;
  /** `send` writes handed to the session and not yet completed. */
  #direct = 0;
  /** The Writable's one write in flight, issued while `send` writes were pending. */
  #afterDirect: { chunk: Uint8Array; cb: (err?: Error | null) => void } | null = null;
  /** `_final` waiting for those writes (END_STREAM must follow their DATA). */
  #finalCb: ((err?: Error | null) => void) | null = null;
  readonly #host: StreamHost;

  constructor(host: StreamHost, id: number, sendWindow: number, recvWindow: number, hwm: number) {
    super({ allowHalfOpen: true, readableHighWaterMark: hwm, writableHighWaterMark: hwm });
    this.#host = host;
    this.id = id;
    this.sendWindow = new SendWindow(sendWindow);
    this.recvWindow = new RecvWindow(recvWindow);
  }

  /** DATA payload from the peer (already counted against the receive window). */
  deliver(piece: Uint8Array): void {
    if (this.destroyed) return this.#host.consumed(this, piece.length);
    this.bytesRead += piece.length;
    if (
      this.#sink !== null && this.#held === 0 && this.readableFlowing === true &&
      this.readableLength === 0 && this.listenerCount("data") === 1
    ) {
      // Request/response traffic on an L4 tunnel: the consumer is reading and nothing waits in
      // the buffer, so hand the bytes over as the 'data' event would, without the Readable's
      // queue, events and next-tick read-ahead (a few µs per chunk, per hop and direction).
      this.#host.consumed(this, piece.length);
      return this.#sink(piece);
    }
    if (this.push(piece) && this.#held === 0) this.#host.consumed(this, piece.length);
    else this.#held += piece.length;
  }

  /** Server (plain HTTP/2 requests): send the response head; `endStream` for no body. */
  respond(status: number, headers: Iterable<[string, string]> = [], endStream = false): void {
    if (this.headersSent) return;
    this.headersSent = true;
    const list: [string, string][] = [[":status", String(status)]];
    for (const [k, v] of headers) list.push([k.toLowerCase(), v]);
    this.#host.sendHeaders(this, list, endStream);
  }

  /**
   * The L4 copy reads this stream through `fn`, which is also its only 'data' listener: chunks
   * that arrive while the stream flows with an empty buffer go to `fn` directly, the others
   * through the Readable (after a pause, or with another 'data' listener) in order.
   */
  setDataSink(fn: (this: H2Stream, chunk: Uint8Array) => void): void {
    this.#sink = fn;
  }

  /**
   * The L4 copy's write: while nothing waits in the Writable (no buffered chunk, no end, no
   * cork), the chunk goes straight to the session, skipping the Writable's buffering and its
   * next-tick completion. While a chunk sent so waits for window or socket room, later chunks go
   * through the Writable, which holds them behind it (`_write`, `_final`) and applies the
   * high-water mark and 'drain' as write() does.
   */
  send(chunk: Uint8Array): boolean {
    if (
      this.#direct > 0 || this.writableLength !== 0 || this.writableEnded || this.destroyed ||
      this.writableCorked !== 0
    ) return this.write(chunk);
    this.bytesWritten += chunk.length;
    this.#direct++;
    this.#host.writeData(this, chunk, this.#directDone ??= (err) => this.#onDirectDone(err));
    return true;
  }

  /** Completion of a `send`: one function per stream that sends, made on its first write. */
  #directDone: ((err?: Error | null) => void) | undefined;
  #onDirectDone(err?: Error | null): void {
    this.#direct--;
    if (err) return void this.destroy(err);
    if (this.#direct > 0) return;
    // What the Writable issued meanwhile follows the DATA of `send`, in order.
    const w = this.#afterDirect;
    this.#afterDirect = null;
    if (w !== null) this.#host.writeData(this, w.chunk, w.cb);
    const fin = this.#finalCb;
    this.#finalCb = null;
    if (fin !== null) this._final(fin);
  }

  /** END_STREAM from the peer. */
  deliverEnd(): void {
    this.remoteEnded = true;
    if (!this.destroyed) this.push(null);
  }

  override _read(): void {
    if (this.#held > 0) {
      const n = this.#held;
      this.#held = 0;
      this.#host.consumed(this, n);
    }
  }

  override _write(chunk: Uint8Array, _enc: BufferEncoding, cb: (err?: Error | null) => void): void {
    this.bytesWritten += chunk.length;
    if (this.#direct > 0) return void (this.#afterDirect = { chunk, cb }); // after `send`'s DATA
    this.#host.writeData(this, chunk, cb);
  }

  override _final(cb: (err?: Error | null) => void): void {
    if (this.#direct > 0) return void (this.#finalCb = cb); // after the DATA of `send`
    this.#host.endStream(this);
    cb();
  }

  override _destroy(err: Error | null, cb: (err?: Error | null) => void): void {
    const p = this.pending;
    this.pending = null;
    const clean = !err && !p && this.remoteEnded && this.writableLength === 0;
    if (!this.h2Closed) this.#host.streamDestroyed(this, err, clean);
    if (this.#held > 0) this.#host.consumed(this, this.#held); // back to the connection window
    this.#held = 0;
    if (p) p.cb(err ?? new Error("stream destroyed"));
    const w = this.#afterDirect;
    this.#afterDirect = null;
    if (w) w.cb(err ?? new Error("stream destroyed"));
    cb(err);
  }
}
