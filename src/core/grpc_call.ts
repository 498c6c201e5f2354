/**
 * One gRPC call, unary or streaming, on one stream of weft's own HTTP/2 (src/core/h2), as
 * gRPC's PROTOCOL-HTTP2.md describes it: a POST with `content-type: application/grpc` and
 * `te: trailers`, messages behind a 5-byte prefix (compressed flag, big-endian length), the
 * status in `grpc-status`/`grpc-message` trailers or in a Trailers-Only response (one HEADERS
 * frame with END_STREAM), `grpc-timeout` for a deadline. Messages are bytes: (de)serialisation
 * is the caller's. Every call ends exactly once in `onClose`: with the peer's status, or with
 * the client's own (UNAVAILABLE when the connection or stream goes away — a GOAWAY, a reset, a
 * closed socket —, DEADLINE_EXCEEDED, CANCELLED, RESOURCE_EXHAUSTED for an oversized message,
 * INTERNAL for a malformed response), which is what lets a caller reconnect cleanly.
 */
import { errorCode, errorMessage } from "./errors.ts";
import type { H2Session, H2Stream } from "./h2/mod.ts";
import { GrpcCode, type GrpcStatus, httpToGrpc } from "./grpc_status.ts";

export interface GrpcCallHandlers {
  /** Response headers (initial metadata), once, before any message; a Trailers-Only response
   * has none. */
  onHeaders?(headers: readonly [string, string][]): void;
  onMessage?(message: Uint8Array): void;
  /** Exactly once, last. */
  onClose(status: GrpcStatus): void;
}

export interface GrpcCallOptions {
  /** "/package.Service/Method" */
  readonly path: string;
  /** Request metadata (lower-cased; pseudo-headers and the reserved gRPC fields are ignored). */
  readonly metadata?: Iterable<readonly [string, string]>;
  /** The call fails with DEADLINE_EXCEEDED after this long (and the server is told). */
  readonly deadlineMs?: number;
  /** Largest message received or sent. Default 4 MiB (gRPC's default). */
  readonly maxMessageBytes?: number;
}

const RESERVED = new Set(["content-type", "te", "grpc-timeout", "user-agent"]);
const EMPTY = new Uint8Array(0);

/** The 5-byte length prefix and the message. */
export function grpcFrame(message: Uint8Array): Uint8Array {
  const out = new Uint8Array(5 + message.length);
  new DataView(out.buffer).setUint32(1, message.length);
  out.set(message, 5);
  return out;
}

/** `grpc-timeout`: at most 8 digits (PROTOCOL-HTTP2.md), so long deadlines go in seconds. */
function timeoutHeader(ms: number): string {
  const n = Math.max(1, Math.ceil(ms));
  return n < 1e8 ? `${n}m` : `${Math.min(99_999_999, Math.ceil(n / 1000))}S`;
}

export class GrpcCall {
  #stream: H2Stream | undefined;
  #queued: { bytes: Uint8Array; end: boolean }[] = [];
  #localEnded = false;
  #done = false;
  #headersSeen = false;
  #timer: ReturnType<typeof setTimeout> | undefined;
  #chunks: Uint8Array[] = [];
  #bytes = 0;
  #need = -1; // payload length of the message being read, -1 while reading a prefix
  readonly #max: number;

  constructor(private readonly opts: GrpcCallOptions, private readonly h: GrpcCallHandlers) {
    this.#max = opts.maxMessageBytes ?? 4 << 20;
    const ms = opts.deadlineMs;
    if (ms !== undefined && ms > 0) {
      this.#timer = setTimeout(
        () => this.#finish(GrpcCode.DEADLINE_EXCEEDED, `deadline of ${ms} ms exceeded`),
        ms,
      );
    }
  }

  /** Ended (closed or about to be): sends are refused. */
  get done(): boolean {
    return this.#done;
  }

  /** Send one message; false once the call is over or half-closed. */
  send(message: Uint8Array): boolean {
    if (this.#localEnded || this.#done) return false;
    if (message.length > this.#max) {
      this.#finish(
        GrpcCode.RESOURCE_EXHAUSTED,
        `message of ${message.length} bytes exceeds ${this.#max}`,
      );
      return false;
    }
    this.#write(grpcFrame(message), false);
    return true;
  }

  /** Half-close: no more messages from us; the responses keep coming. */
  end(): void {
    if (this.#localEnded || this.#done) return;
    this.#localEnded = true;
    this.#write(EMPTY, true);
  }

  /** Reset the stream (RST_STREAM CANCEL) and close with CANCELLED. */
  cancel(message = "cancelled by the client"): void {
    this.#finish(GrpcCode.CANCELLED, message);
  }

  /** The channel has a session for this call: open the stream. */
  open(session: H2Session, authority: string, scheme: "http" | "https"): void {
    if (this.#done) return;
    const list: [string, string][] = [
      [":method", "POST"],
      [":scheme", scheme],
      [":authority", authority],
      [":path", this.opts.path],
      ["content-type", "application/grpc"],
      ["te", "trailers"],
      ["user-agent", "weft-grpc"],
    ];
    const ms = this.opts.deadlineMs;
    if (ms !== undefined && ms > 0) list.push(["grpc-timeout", timeoutHeader(ms)]);
    for (const [k, v] of this.opts.metadata ?? []) {
      const name = k.toLowerCase();
      if (!name.startsWith(":") && !RESERVED.has(name)) list.push([name, v]);
    }
    let stream: H2Stream;
    let response: Promise<unknown>;
    try {
      ({ stream, response } = session.request(list, false));
    } catch (err) {
      return this.fail(errorMessage(err));
    }
    this.#stream = stream;
    response.then(() => this.#headers(), (err) => this.#gone(err));
    stream.on("data", (c: Uint8Array) => this.#data(c));
    stream.on("end", () => this.#ended());
    stream.on("error", (err: Error) => this.#gone(err));
    stream.on("close", () => this.#gone(undefined));
    for (const q of this.#queued.splice(0)) this.#write(q.bytes, q.end);
  }

  /** No session could be had (dial failed, channel closed). */
  fail(message: string): void {
    this.#finish(GrpcCode.UNAVAILABLE, message);
  }

  #write(bytes: Uint8Array, end: boolean): void {
    const s = this.#stream;
    if (!s) return void this.#queued.push({ bytes, end });
    if (bytes.length) s.write(bytes);
    if (end) s.end();
  }

  /** Response headers: a non-gRPC answer ends the call; initial metadata goes to the caller. */
  #headers(): void {
    const s = this.#stream;
    if (this.#headersSeen || this.#done || !s || s.headerList.length === 0) return;
    this.#headersSeen = true;
    const get = (k: string) => s.headerList.find(([n]) => n === k)?.[1];
    if (get("grpc-status") !== undefined) return; // Trailers-Only: #ended reads it
    const status = Number(get(":status"));
    if (status !== 200) {
      return this.#finish(httpToGrpc(status), `HTTP status ${status} without grpc-status`);
    }
    const type = get("content-type") ?? "";
    if (!type.startsWith("application/grpc")) {
      return this.#finish(GrpcCode.UNKNOWN, `content-type "${type}" is not gRPC`);
    }
    this.h.onHeaders?.(s.headerList.filter(([k]) => !k.startsWith(":")));
  }

  #data(chunk: Uint8Array): void {
    this.#headers();
    if (this.#done) return;
    this.#chunks.push(chunk);
    this.#bytes += chunk.length;
    while (!this.#done) {
      if (this.#need < 0) {
        if (this.#bytes < 5) return;
        const head = this.#take(5);
        if (head[0] !== 0) {
          return this.#finish(GrpcCode.INTERNAL, `compressed or bad message flag ${head[0]}`);
        }
        this.#need = new DataView(head.buffer, head.byteOffset, 5).getUint32(1);
        if (this.#need > this.#max) {
          return this.#finish(
            GrpcCode.RESOURCE_EXHAUSTED,
            `received message of ${this.#need} bytes exceeds ${this.#max}`,
          );
        }
      }
      if (this.#bytes < this.#need) return;
      const message = this.#take(this.#need);
      this.#need = -1;
      this.h.onMessage?.(message);
    }
  }

  /** The next `n` buffered bytes, copied: a decoded message may keep views into its bytes (a
   * protobuf `bytes` field), which must not pin the whole socket chunk they arrived in. */
  #take(n: number): Uint8Array {
    this.#bytes -= n;
    const out = new Uint8Array(n);
    let at = 0;
    while (at < n) {
      const c = this.#chunks[0]!;
      const k = Math.min(c.length, n - at);
      out.set(k === c.length ? c : c.subarray(0, k), at);
      at += k;
      if (k === c.length) this.#chunks.shift();
      else this.#chunks[0] = c.subarray(k);
    }
    return out;
  }

  /** The status from trailers, or from a Trailers-Only response; undefined when neither came. */
  #status(): GrpcStatus | undefined {
    const s = this.#stream;
    if (!s) return undefined;
    const block = s.trailers ??
      (s.headerList.some(([k]) => k === "grpc-status") ? s.headerList : undefined);
    if (!block) return undefined;
    const trailers = block.filter(([k]) => !k.startsWith(":"));
    const get = (k: string) => trailers.find(([n]) => n === k)?.[1];
    const code = Number(get("grpc-status"));
    let message = get("grpc-message") ?? "";
    try {
      message = decodeURIComponent(message);
    } catch { /* not percent-encoded: as sent */ }
    return Number.isInteger(code) && code >= 0
      ? { code, message, trailers }
      : { code: GrpcCode.UNKNOWN, message: `bad grpc-status "${get("grpc-status")}"`, trailers };
  }

  #ended(): void {
    this.#headers();
    if (this.#done) return;
    const st = this.#status();
    if (!st) return this.#finish(GrpcCode.UNKNOWN, "stream ended without grpc-status");
    if (this.#bytes > 0 || this.#need >= 0) {
      return this.#finish(GrpcCode.INTERNAL, "stream ended inside a message");
    }
    this.#finish(st.code, st.message, st.trailers);
  }

  /** The stream went away without a status of its own: reset by the peer, GOAWAY, the
   * connection closed (trailers that did arrive still decide). */
  #gone(err: unknown): void {
    if (this.#done) return;
    const st = this.#status();
    if (st && this.#stream?.remoteEnded) return this.#finish(st.code, st.message, st.trailers);
    const cancelled = errorCode(err) === "h2_stream_cancel";
    this.#finish(
      cancelled ? GrpcCode.CANCELLED : GrpcCode.UNAVAILABLE,
      err === undefined ? "stream closed" : errorMessage(err),
    );
  }

  #finish(code: number, message: string, trailers: readonly [string, string][] = []): void {
    if (this.#done) return;
    this.#done = true;
    clearTimeout(this.#timer);
    this.#queued = [];
    this.#chunks = [];
    const s = this.#stream;
    // Not both ends closed: RST_STREAM (CANCEL), or END_STREAM when the peer already ended.
    if (s && !s.destroyed) s.destroy();
    this.h.onClose({ code, message, trailers });
  }
}
