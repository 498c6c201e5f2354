/**
 * HTTP/1.1 message heads for the L7 proxy over any Duplex (TCP socket, TLS socket, an HTTP/2
 * CONNECT stream inside HBONE), strict as RFC 9112 and hyper/llhttp/Envoy: a pull reader with
 * bounded buffering, a head reader (CRLF only, size cap in any chunking, header-timeout), a head
 * parser (token names, no obs-fold, no CTLs in values, header-count cap, start-line checks) and
 * head serialisation. Body framing and the body framer live in http1_body.ts.
 * Bad peer input raises a WeftError whose code maps to the status to answer (`httpErrorStatus`).
 */
import type { Duplex } from "node:stream";
import { Buffer } from "node:buffer";
import { WeftError } from "./errors.ts";

export {
  bodyChunks,
  copyBody,
  FORBIDDEN_TRAILERS,
  type Framing,
  framingOf,
  lastChunk,
  type Trailer,
} from "./http1_body.ts";

/** Envoy's defaults: 60 KiB of headers (max_request_headers_kb), 100 headers (max_headers_count). */
export const MAX_HEAD_BYTES = 60 * 1024;
export const MAX_HEADERS = 100;
const HIGH_WATER = 256 * 1024;

/** The status each codec error code answers with; connection closes after each. */
const STATUS: Record<string, number> = {
  http_bad_message: 400,
  http_header_timeout: 408,
  http_head_too_large: 431,
  http_not_implemented: 501,
  http_upstream_bad_message: 502,
  http_version_not_supported: 505,
};

export function httpErrorStatus(err: unknown): number {
  return err instanceof WeftError ? STATUS[err.code] ?? 400 : 400;
}

export function bad(reason: string, code = "http_bad_message"): WeftError {
  return new WeftError(code, `Cannot parse HTTP/1.1 message: ${reason}`);
}

export interface HeadLimits {
  /** Total head bytes (start line + headers + CRLFs). */
  readonly maxHeadBytes?: number;
  /** Whole head within this time; 0/undefined = no limit. */
  readonly timeoutMs?: number;
  /** Start the timer at the first byte (keep-alive requests) instead of now. */
  readonly timeFromFirstByte?: boolean;
}

export class ByteReader {
  private buf: Buffer = Buffer.alloc(0);
  private ended = false;
  private failed: Error | undefined;
  private wake: (() => void) | undefined;

  constructor(readonly stream: Duplex) {
    stream.on("data", (c: Buffer) => {
      this.buf = this.buf.length === 0 ? c : Buffer.concat([this.buf, c]);
      if (this.buf.length > HIGH_WATER) stream.pause();
      this.notify();
    });
    stream.on("end", () => {
      this.ended = true;
      this.notify();
    });
    stream.on("error", (e: Error) => {
      this.failed = e;
      this.notify();
    });
    stream.on("close", () => {
      this.ended = true;
      this.notify();
    });
  }

  private notify(): void {
    const w = this.wake;
    this.wake = undefined;
    w?.();
  }

  private wait(): Promise<void> {
    if (this.stream.isPaused()) this.stream.resume();
    return new Promise((r) => (this.wake = r));
  }

  /** Fail every pending and later read with `err` (header timeout). */
  abort(err: Error): void {
    this.failed ??= err;
    this.notify();
  }

  get buffered(): number {
    return this.buf.length;
  }

  get atEnd(): boolean {
    return this.ended && this.buf.length === 0;
  }

  /** The head up to and including CRLFCRLF; null on a clean end before any byte. Leading empty
   * lines are skipped (RFC 9112 §2.2). Bare LF → 400, beyond `maxHeadBytes` → 431 (whether the
   * head arrives in one read or many), not complete within `timeoutMs` → 408. */
  async readHead(limits: HeadLimits = {}): Promise<Buffer | null> {
    const max = limits.maxHeadBytes ?? MAX_HEAD_BYTES;
    let timer: ReturnType<typeof setTimeout> | undefined;
    let timedOut = false;
    const arm = (): void => {
      if (timer || !limits.timeoutMs) return;
      timer = setTimeout(() => {
        timedOut = true;
        this.notify();
      }, limits.timeoutMs);
    };
    if (!limits.timeFromFirstByte) arm();
    try {
      let scan = 0;
      for (;;) {
        while (this.buf.length >= 2 && this.buf[0] === 0x0d && this.buf[1] === 0x0a) {
          this.buf = this.buf.subarray(2);
          scan = 0;
        }
        if (this.buf.length > 0) arm();
        const end = headEnd(this.buf, scan, max);
        if (end > 0) return this.take(end);
        scan = Math.max(0, this.buf.length - 3);
        if (this.failed) throw this.failed;
        if (this.ended) {
          if (this.buf.length === 0) return null;
          throw bad("connection closed inside a message head");
        }
        if (timedOut) throw bad("request headers not received in time", "http_header_timeout");
        await this.wait();
      }
    } finally {
      clearTimeout(timer);
    }
  }

  /** Exactly `n` bytes when already buffered (lets a small body share the head's write). */
  takeBuffered(n: number): Buffer | undefined {
    return this.buf.length >= n ? this.take(n) : undefined;
  }

  /** Waits until `n` bytes are buffered (or the stream ended) and returns what is buffered. */
  async peek(n: number): Promise<Buffer> {
    while (this.buf.length < n && !this.ended && !this.failed) await this.wait();
    return this.buf;
  }

  /** Stops reading; returns the bytes buffered so far (to unshift before handing the stream on). */
  detach(): Buffer {
    for (const ev of ["data", "end", "error", "close"]) this.stream.removeAllListeners(ev);
    const rest = this.buf;
    this.buf = Buffer.alloc(0);
    return rest;
  }

  /** Up to `max` bytes, at least 1; null at end of stream. */
  async readSome(max: number): Promise<Buffer | null> {
    while (this.buf.length === 0) {
      if (this.failed) throw this.failed;
      if (this.ended) return null;
      await this.wait();
    }
    return this.take(Math.min(max, this.buf.length));
  }

  /** One CRLF-terminated line (chunk sizes, trailers) of at most `max` bytes; bare LF → 400. */
  async readLine(max = 4096): Promise<Buffer> {
    for (;;) {
      const i = this.buf.indexOf(0x0a);
      if (i >= 0) {
        if (i === 0 || this.buf[i - 1] !== 0x0d) throw bad("bare LF");
        if (i + 1 > max) throw bad("line too long");
        return this.take(i + 1);
      }
      if (this.buf.length > max) throw bad("line too long");
      if (this.failed) throw this.failed;
      if (this.ended) throw bad("connection closed inside a chunked body");
      await this.wait();
    }
  }

  private take(n: number): Buffer {
    const out = this.buf.subarray(0, n);
    this.buf = this.buf.subarray(n);
    if (this.buf.length < HIGH_WATER && this.stream.isPaused()) this.stream.resume();
    return out;
  }
}

/** Index just past the head's CRLFCRLF, or 0 when not complete yet. Every LF must follow a CR. */
function headEnd(buf: Buffer, from: number, max: number): number {
  let i = buf.indexOf(0x0a, from);
  while (i >= 0) {
    if (i === 0 || buf[i - 1] !== 0x0d) throw bad("bare LF in the head");
    if (i >= 3 && buf[i - 2] === 0x0a) {
      if (i + 1 > max) throw bad("head too large", "http_head_too_large");
      return i + 1;
    }
    if (i + 1 > max) throw bad("head too large", "http_head_too_large");
    i = buf.indexOf(0x0a, i + 1);
  }
  if (buf.length > max) throw bad("head too large", "http_head_too_large");
  return 0;
}

export interface Head {
  /** Request: method, target, version. Response: version, status, reason. */
  readonly line: [string, string, string];
  /** Raw header pairs, names as sent. */
  readonly headers: [string, string][];
}

// RFC 9110 §5.6.2 tchar.
const TOKEN = /^[!#$%&'*+\-.^_`|~0-9A-Za-z]+$/;
// Field values: no CTL except HTAB (NUL, CR, LF and the rest refused, as llhttp in strict mode).
// deno-lint-ignore no-control-regex -- control characters are what is refused
const BAD_VALUE = /[\x00-\x08\x0a-\x1f\x7f]/;

/** Parses the header lines of a head (from readHead) strictly; the start line is split only. */
export function parseHead(raw: Buffer, maxHeaders = MAX_HEADERS): Head {
  const text = raw.toString("latin1", 0, raw.length - 4);
  const lines = text.split("\r\n");
  const first = lines[0] ?? "";
  const a = first.indexOf(" ");
  const b = first.indexOf(" ", a + 1);
  if (a <= 0) throw bad("malformed start line");
  const line: [string, string, string] = b < 0
    ? [first.slice(0, a), first.slice(a + 1), ""]
    : [first.slice(0, a), first.slice(a + 1, b), first.slice(b + 1)];
  if (lines.length - 1 > maxHeaders) throw bad("too many headers", "http_head_too_large");
  const headers: [string, string][] = [];
  for (let i = 1; i < lines.length; i++) {
    const l = lines[i]!;
    if (l[0] === " " || l[0] === "\t") throw bad("obsolete line folding");
    const c = l.indexOf(":");
    if (c <= 0) throw bad("malformed header line");
    const name = l.slice(0, c);
    if (!TOKEN.test(name)) throw bad("bad header name");
    const value = l.slice(c + 1).replace(/^[ \t]+|[ \t]+$/g, "");
    if (BAD_VALUE.test(value)) throw bad("control character in a header value");
    headers.push([name, value]);
  }
  return { line, headers };
}

/** Request line checks (RFC 9112 §3): token method, one-SP separators, a target without spaces
 * or controls, HTTP/1.0 or HTTP/1.1 (another well-formed version → 505). */
export function checkRequestLine(first: [string, string, string], raw: Buffer): void {
  const [method, target, version] = first;
  if (!TOKEN.test(method)) throw bad("bad method");
  // deno-lint-ignore no-control-regex -- control characters are what is refused
  if (target === "" || /[\x00-\x20\x7f]/.test(target)) throw bad("bad request target");
  const lineEnd = raw.indexOf("\r\n");
  if (lineEnd !== method.length + target.length + version.length + 2) {
    throw bad("malformed request line");
  }
  if (version === "HTTP/1.1" || version === "HTTP/1.0") return;
  if (/^HTTP\/\d\.\d$/.test(version)) {
    throw bad(`unsupported version ${version}`, "http_version_not_supported");
  }
  throw bad("malformed version");
}

/** Status line checks: HTTP/1.x, three digits. */
export function checkStatusLine(first: [string, string, string]): void {
  if (!/^HTTP\/1\.[01]$/.test(first[0]) || !/^[1-9]\d\d$/.test(first[1])) {
    throw bad("malformed status line");
  }
}

export function serializeHead(startLine: string, headers: Iterable<[string, string]>): Buffer {
  let s = startLine + "\r\n";
  for (const [k, v] of headers) {
    if (hasLineBreak(k) || hasLineBreak(v)) continue; // never let a filter split headers
    s += k + ": " + v + "\r\n";
  }
  return Buffer.from(s + "\r\n", "latin1");
}

function hasLineBreak(s: string): boolean {
  return s.indexOf("\n") >= 0 || s.indexOf("\r") >= 0;
}
