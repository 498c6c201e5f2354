/**
 * HTTP/1.1 message framing for the L7 proxy over any Duplex (TCP socket, TLS socket, an HTTP/2
 * CONNECT stream inside HBONE): a pull reader with bounded buffering, head parsing, head
 * serialisation and body copying (content-length, chunked passed through verbatim, or until
 * close). Bad peer input raises WeftError("http_bad_message").
 */
import type { Duplex } from "node:stream";
import { Buffer } from "node:buffer";
import { WeftError } from "./errors.ts";

export const MAX_HEAD_BYTES = 64 * 1024;
const HIGH_WATER = 256 * 1024;
const CRLFCRLF = Buffer.from("\r\n\r\n");

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

  get buffered(): number {
    return this.buf.length;
  }

  get atEnd(): boolean {
    return this.ended && this.buf.length === 0;
  }

  /** The head up to and including CRLFCRLF; null on a clean end before any byte. */
  async readHead(): Promise<Buffer | null> {
    for (;;) {
      const i = this.buf.indexOf(CRLFCRLF);
      if (i >= 0) return this.take(i + 4);
      if (this.buf.length > MAX_HEAD_BYTES) throw bad("head too large");
      if (this.failed) throw this.failed;
      if (this.ended) {
        if (this.buf.length === 0) return null;
        throw bad("connection closed inside a message head");
      }
      await this.wait();
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

  /** One CRLF-terminated line (for chunk sizes). */
  async readLine(): Promise<Buffer> {
    for (;;) {
      const i = this.buf.indexOf("\r\n");
      if (i >= 0) return this.take(i + 2);
      if (this.buf.length > 4096) throw bad("chunk line too long");
      if (this.failed) throw this.failed;
      if (this.ended) throw bad("connection closed inside a chunk");
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

export function bad(reason: string): WeftError {
  return new WeftError("http_bad_message", `Cannot parse HTTP/1.1 message: ${reason}`);
}

export interface Head {
  /** Request: method, target, version. Response: version, status, reason. */
  readonly line: [string, string, string];
  /** Raw header pairs, names as sent. */
  readonly headers: [string, string][];
}

export function parseHead(raw: Buffer): Head {
  const text = raw.toString("latin1", 0, raw.length - 4);
  const lines = text.split("\r\n");
  const first = lines[0] ?? "";
  const a = first.indexOf(" ");
  const b = first.indexOf(" ", a + 1);
  if (a < 0) throw bad("malformed start line");
  const line: [string, string, string] = b < 0
    ? [first.slice(0, a), first.slice(a + 1), ""]
    : [first.slice(0, a), first.slice(a + 1, b), first.slice(b + 1)];
  const headers: [string, string][] = [];
  for (let i = 1; i < lines.length; i++) {
    const l = lines[i]!;
    const c = l.indexOf(":");
    if (c <= 0) throw bad("malformed header line");
    headers.push([l.slice(0, c).trim(), l.slice(c + 1).trim()]);
  }
  return { line, headers };
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

export type Framing =
  | { readonly kind: "none" }
  | { readonly kind: "length"; readonly length: number }
  | { readonly kind: "chunked" }
  | { readonly kind: "close" };

/** Body framing from headers (lower-case names). */
export function framingOf(get: (name: string) => string | undefined, isResponse: boolean): Framing {
  const te = get("transfer-encoding");
  if (te !== undefined) {
    if (te.toLowerCase().split(",").map((x) => x.trim()).pop() !== "chunked") {
      if (!isResponse) throw bad("unsupported transfer-encoding");
      return { kind: "close" };
    }
    return { kind: "chunked" };
  }
  const cl = get("content-length");
  if (cl !== undefined) {
    if (!/^\d{1,15}$/.test(cl)) throw bad("bad content-length");
    const n = Number(cl);
    return n === 0 ? { kind: "none" } : { kind: "length", length: n };
  }
  return isResponse ? { kind: "close" } : { kind: "none" };
}

/** Copies one body from `r` to `write`, preserving its wire framing (or, with `dechunk`, only
 * the data of a chunked body: for HTTP/2 downstreams). */
export async function copyBody(
  r: ByteReader,
  framing: Framing,
  write: (b: Buffer) => boolean | Promise<void>,
  dechunk = false,
): Promise<void> {
  switch (framing.kind) {
    case "none":
      return;
    case "length": {
      let left = framing.length;
      while (left > 0) {
        const c = await r.readSome(left);
        if (!c) throw bad("connection closed inside a body");
        left -= c.length;
        await write(c);
      }
      return;
    }
    case "close":
      for (;;) {
        const c = await r.readSome(1 << 20);
        if (!c) return;
        await write(c);
      }
    case "chunked":
      for (;;) {
        const line = await r.readLine();
        if (!dechunk) await write(line);
        const size = parseInt(line.toString("latin1").split(";")[0]!.trim(), 16);
        if (!Number.isFinite(size) || size < 0) throw bad("bad chunk size");
        if (size === 0) {
          // trailers until an empty line
          for (;;) {
            const t = await r.readLine();
            if (!dechunk) await write(t);
            if (t.length === 2) return;
          }
        }
        let left = size + 2;
        while (left > 0) {
          const c = await r.readSome(left);
          if (!c) throw bad("connection closed inside a chunk");
          left -= c.length;
          // With dechunk, drop the CRLF that ends each chunk's data.
          const data = dechunk && left < 2 ? c.subarray(0, c.length - (2 - left)) : c;
          if (data.length) await write(data);
        }
      }
  }
}
