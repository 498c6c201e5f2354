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
import type { HeaderMap } from "./filter_api.ts";
import { type Field, HeaderList } from "./header_map.ts";
import { knownName } from "./http1_names.ts";

export {
  bodyChunks,
  copyBody,
  FORBIDDEN_TRAILERS,
  type Framing,
  framingFrom,
  framingOf,
  lastChunk,
  type Trailer,
} from "./http1_body.ts";

/** Envoy's defaults: 60 KiB of headers (max_request_headers_kb), 100 headers (max_headers_count). */
export const MAX_HEAD_BYTES = 60 * 1024;
export const MAX_HEADERS = 100;
const HIGH_WATER = 256 * 1024;
const EMPTY = Buffer.alloc(0);
const NO_LIMITS: HeadLimits = {};

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
  private buf: Buffer = EMPTY;
  private ended = false;
  private failed: Error | undefined;
  private wake: (() => void) | undefined;

  // The reader's own listeners, so that detach() removes exactly these and leaves the others
  // (the L4 record's `close`, the proxy's `error`) in place.
  private readonly onData = (c: Buffer): void => {
    this.buf = this.buf.length === 0 ? c : Buffer.concat([this.buf, c]);
    if (this.buf.length > HIGH_WATER) this.stream.pause();
    this.notify();
  };
  private readonly onEnd = (): void => {
    this.ended = true;
    this.notify();
  };
  private readonly onError = (e: Error): void => {
    this.failed = e;
    this.notify();
  };

  constructor(readonly stream: Duplex) {
    stream.on("data", this.onData);
    stream.on("end", this.onEnd);
    stream.on("error", this.onError);
    stream.on("close", this.onEnd);
  }

  private notify(): void {
    const w = this.wake;
    this.wake = undefined;
    w?.();
  }

  private wait(): Promise<void> {
    if (this.stream.isPaused()) this.stream.resume();
    return new Promise(this.park);
  }

  /** The executor of wait()'s Promise, made once per reader rather than once per wait (two per
   * proxied request). */
  private readonly park = (resolve: () => void): void => {
    this.wake = resolve;
  };

  /** While no read is pending (a pooled connection): `cb` once at the next data, end, error or
   * close. The one wake-up slot the reads use, so watching costs no listener; a read started
   * later replaces the watch (unwatch() first all the same: see http1_pool.ts). */
  watch(cb: () => void): void {
    this.wake = cb;
  }

  /** Ends watch(cb), if it is still the one set. */
  unwatch(cb: () => void): void {
    if (this.wake === cb) this.wake = undefined;
  }

  /** Fail every pending and later read with `err` (header timeout). */
  abort(err: Error): void {
    this.failed ??= err;
    this.notify();
  }

  get buffered(): number {
    return this.buf.length;
  }

  /** A whole line (up to an LF) is buffered from byte `from` on. */
  lineBuffered(from: number): boolean {
    return this.buf.indexOf(0x0a, from) >= 0;
  }

  get atEnd(): boolean {
    return this.ended && this.buf.length === 0;
  }

  /** The head up to and including CRLFCRLF; null on a clean end before any byte. Leading empty
   * lines are skipped (RFC 9112 §2.2). Bare LF → 400, beyond `maxHeadBytes` → 431 (whether the
   * head arrives in one read or many), not complete within `timeoutMs` → 408.
   * No async frame: the head is looked for now and then at each wake-up of the reader (data, end,
   * error, timeout), and one Promise settles with it — two heads per proxied request made the
   * generator, its environment and an extra Promise per wait measurable. */
  readHead(limits: HeadLimits = NO_LIMITS): Promise<Buffer | null> {
    const ms = limits.timeoutMs ?? 0;
    this.headMax = limits.maxHeadBytes ?? MAX_HEAD_BYTES;
    this.headMs = ms;
    this.headScan = 0;
    this.headTimedOut = false;
    if (ms > 0 && !limits.timeFromFirstByte) this.armHead(ms);
    let got: Buffer | null | undefined;
    try {
      got = this.headStep();
    } catch (e) {
      this.disarmHead();
      return Promise.reject(e);
    }
    if (got !== undefined) {
      this.disarmHead();
      return Promise.resolve(got);
    }
    return new Promise(this.parkHead);
  }

  // The pending readHead (one read at a time per reader), in fields: no closure per call.
  private headMax = MAX_HEAD_BYTES;
  private headMs = 0;
  private headScan = 0;
  private headResolve: ((head: Buffer | null) => void) | undefined;
  private headReject: ((e: unknown) => void) | undefined;

  private readonly parkHead = (
    resolve: (head: Buffer | null) => void,
    reject: (e: unknown) => void,
  ): void => {
    this.headResolve = resolve;
    this.headReject = reject;
    this.waitForHead();
  };

  private waitForHead(): void {
    if (this.stream.isPaused()) this.stream.resume();
    this.wake = this.onHeadWake;
  }

  private readonly onHeadWake = (): void => {
    let got: Buffer | null | undefined;
    try {
      got = this.headStep();
    } catch (e) {
      const reject = this.headReject;
      this.settleHead();
      reject?.(e);
      return;
    }
    if (got === undefined) return this.waitForHead();
    const resolve = this.headResolve;
    this.settleHead();
    resolve?.(got);
  };

  private settleHead(): void {
    this.disarmHead();
    this.headResolve = this.headReject = undefined;
  }

  /** One look for the head: the head, null (clean end), undefined (wait), or throws. */
  private headStep(): Buffer | null | undefined {
    while (this.buf.length >= 2 && this.buf[0] === 0x0d && this.buf[1] === 0x0a) {
      this.buf = this.buf.subarray(2);
      this.headScan = 0;
    }
    const end = headEnd(this.buf, this.headScan, this.headMax);
    if (end > 0) return this.take(end);
    // Armed only when a head is started but not complete: a head that arrives whole (the
    // common case) costs no timer.
    if (this.buf.length > 0 && this.headMs > 0) this.armHead(this.headMs);
    this.headScan = Math.max(0, this.buf.length - 3);
    if (this.failed) throw this.failed;
    if (this.ended) {
      if (this.buf.length === 0) return null;
      throw bad("connection closed inside a message head");
    }
    if (this.headTimedOut) {
      throw bad("request headers not received in time", "http_header_timeout");
    }
    return undefined;
  }

  private disarmHead(): void {
    if (this.headTimer) {
      clearTimeout(this.headTimer);
      this.headTimer = undefined;
    }
  }

  /** The head timer of the current readHead (one at a time per reader; no closure per call). */
  private headTimer: ReturnType<typeof setTimeout> | undefined;
  private headTimedOut = false;
  private readonly onHeadTimeout = (): void => {
    this.headTimedOut = true;
    this.notify();
  };

  private armHead(ms: number): void {
    if (!this.headTimer) this.headTimer = setTimeout(this.onHeadTimeout, ms);
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
    this.stream.removeListener("data", this.onData);
    this.stream.removeListener("end", this.onEnd);
    this.stream.removeListener("error", this.onError);
    this.stream.removeListener("close", this.onEnd);
    const rest = this.buf;
    this.buf = EMPTY;
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
    const all = this.buf;
    let out: Buffer;
    if (n === all.length) {
      // The common case (a head or body that arrived alone): no views to make.
      out = all;
      this.buf = EMPTY;
    } else {
      out = all.subarray(0, n);
      this.buf = all.subarray(n);
    }
    if (this.buf.length < HIGH_WATER && this.stream.isPaused()) this.stream.resume();
    return out;
  }
}

/** Index just past the head's CRLFCRLF, or 0 when not complete yet. Every LF must follow a CR.
 * A plain loop over the bytes: for a six-field head 0.10 µs instead of 0.12 on Bun (one
 * Buffer#indexOf host call per line) and 0.12 instead of 0.18 on Deno. (The field-line search in
 * scanHead stays on String#indexOf: byte loops there measured slower on Bun.) */
function headEnd(buf: Buffer, from: number, max: number): number {
  const n = buf.length;
  for (let i = from; i < n; i++) {
    if (buf[i] !== 0x0a) continue;
    if (i === 0 || buf[i - 1] !== 0x0d) throw bad("bare LF in the head");
    if (i + 1 > max) throw bad("head too large", "http_head_too_large");
    if (i >= 3 && buf[i - 2] === 0x0a) return i + 1;
  }
  if (n > max) throw bad("head too large", "http_head_too_large");
  return 0;
}

export interface Head {
  /** Request: method, target, version. Response: version, status, reason. */
  readonly line: [string, string, string];
  /** Raw header pairs, names as sent. */
  readonly headers: [string, string][];
  /** Per header, the [start, end) of its line in the head's bytes (CRLF excluded). */
  readonly spans: number[];
}

// RFC 9110 §5.6.2 tchar.
const TCHAR = new Uint8Array(128);
for (const c of "!#$%&'*+-.^_`|~0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ") {
  TCHAR[c.charCodeAt(0)] = 1;
}

/** `s[from, to)` is a non-empty token (RFC 9110 tchar), without a slice or a regex. */
function isToken(s: string, from: number, to: number): boolean {
  return tokenKind(s, from, to) !== NOT_TOKEN;
}

const NOT_TOKEN = 0, LOWER_TOKEN = 1, UPPER_TOKEN = 2;

/** NOT_TOKEN, or a token without (LOWER_TOKEN) or with (UPPER_TOKEN) upper-case letters. */
function tokenKind(s: string, from: number, to: number): number {
  if (to <= from) return NOT_TOKEN;
  let kind = LOWER_TOKEN;
  for (let i = from; i < to; i++) {
    const c = s.charCodeAt(i);
    if (c > 127 || TCHAR[c] === 0) return NOT_TOKEN;
    if (c >= 0x41 && c <= 0x5a) kind = UPPER_TOKEN;
  }
  return kind;
}

/** The field value in `s[from, to)`: SP/HTAB trimmed at both ends; no CTL but HTAB inside (NUL,
 * CR, LF and the rest refused, as llhttp in strict mode). */
function fieldValue(s: string, from: number, to: number): string {
  while (from < to && (s.charCodeAt(from) === 0x20 || s.charCodeAt(from) === 0x09)) from++;
  while (to > from && (s.charCodeAt(to - 1) === 0x20 || s.charCodeAt(to - 1) === 0x09)) to--;
  for (let i = from; i < to; i++) {
    const c = s.charCodeAt(i);
    if ((c < 0x20 && c !== 0x09) || c === 0x7f) throw bad("control character in a header value");
  }
  return s.slice(from, to);
}

/** Parses the header lines of a head (from readHead) strictly; the start line is split only.
 * One pass over the latin1 text, no per-line strings but the name and value kept. */
export function parseHead(raw: Buffer, maxHeaders = MAX_HEADERS): Head {
  const { line, fields } = scanHead(raw, maxHeaders);
  const headers: [string, string][] = [];
  const spans: number[] = [];
  for (const f of fields) {
    headers.push([f[0], f[1]]);
    spans.push(f[2]!, f[3]!);
  }
  return { line, headers, spans };
}

/** parseHead straight into the data path's HeaderList (names lower-cased, spans kept), without
 * the intermediate lists. */
export function parseHeadList(
  raw: Buffer,
  maxHeaders = MAX_HEADERS,
): { readonly line: [string, string, string]; readonly headers: HeaderList } {
  const { line, fields } = scanHead(raw, maxHeaders, true);
  return { line, headers: HeaderList.adopt(raw, fields, true) };
}

/** The strict head parser: start line split, every field line checked; fields with names as
 * sent (lower-cased with `lower`) and their spans. */
function scanHead(
  raw: Buffer,
  maxHeaders: number,
  lower = false,
): { line: [string, string, string]; fields: Field[] } {
  const text = raw.toString("latin1", 0, raw.length - 4);
  let eol = text.indexOf("\r\n");
  if (eol < 0) eol = text.length;
  const a = text.indexOf(" ");
  if (a <= 0 || a >= eol) throw bad("malformed start line");
  const b = text.indexOf(" ", a + 1);
  const line: [string, string, string] = b < 0 || b >= eol
    ? [text.slice(0, a), text.slice(a + 1, eol), ""]
    : [text.slice(0, a), text.slice(a + 1, b), text.slice(b + 1, eol)];
  // More than maxHeaders field lines need at least 3 bytes each ("a:" CRLF): a shorter head
  // cannot have too many, and is not counted twice.
  if (text.length - eol > 3 * maxHeaders) {
    let count = 0;
    for (let i = text.indexOf("\r\n", eol); i >= 0; i = text.indexOf("\r\n", i + 2)) count++;
    if (count > maxHeaders) throw bad("too many headers", "http_head_too_large");
  }
  const fields: Field[] = [];
  for (let start = eol + 2; start <= text.length && eol < text.length; start = eol + 2) {
    eol = text.indexOf("\r\n", start);
    if (eol < 0) eol = text.length;
    const c0 = text.charCodeAt(start);
    if (c0 === 0x20 || c0 === 0x09) throw bad("obsolete line folding");
    const c = text.indexOf(":", start);
    if (c <= start || c >= eol) throw bad("malformed header line");
    const kind = tokenKind(text, start, c);
    if (kind === NOT_TOKEN) throw bad("bad header name");
    let name = lower ? knownName(text, start, c) : undefined;
    if (name === undefined) {
      name = text.slice(start, c);
      if (lower && kind === UPPER_TOKEN) name = name.toLowerCase();
    }
    fields.push([name, fieldValue(text, c + 1, eol), start, eol]);
  }
  return { line, fields };
}

/** Request line checks (RFC 9112 §3): token method, one-SP separators, a target without spaces
 * or controls, HTTP/1.0 or HTTP/1.1 (another well-formed version → 505). */
export function checkRequestLine(first: [string, string, string], raw: Buffer): void {
  const [method, target, version] = first;
  if (!isToken(method, 0, method.length)) throw bad("bad method");
  if (target === "" || hasSpaceOrControl(target)) throw bad("bad request target");
  // The first CRLF: the first LF when a CR precedes it (always so for a head from readHead).
  // A byte loop: the request line is short, and Buffer#indexOf is a host call on Bun.
  let lineEnd = 0;
  while (lineEnd < raw.length && raw[lineEnd] !== 0x0a) lineEnd++;
  if (lineEnd === raw.length) lineEnd = -1;
  if (lineEnd > 0 && raw[lineEnd - 1] === 0x0d) lineEnd--;
  else lineEnd = raw.indexOf("\r\n");
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
  const [version, status] = first;
  if ((version !== "HTTP/1.1" && version !== "HTTP/1.0") || !isStatusCode(status)) {
    throw bad("malformed status line");
  }
}

/** Three digits, the first 1-9. */
function isStatusCode(s: string): boolean {
  if (s.length !== 3) return false;
  const a = s.charCodeAt(0), b = s.charCodeAt(1), c = s.charCodeAt(2);
  return a >= 0x31 && a <= 0x39 && b >= 0x30 && b <= 0x39 && c >= 0x30 && c <= 0x39;
}

/** Any SP or CTL (a request target has none). */
function hasSpaceOrControl(s: string): boolean {
  for (let i = 0; i < s.length; i++) {
    const c = s.charCodeAt(i);
    if (c <= 0x20 || c === 0x7f) return true;
  }
  return false;
}

export function serializeHead(startLine: string, headers: Iterable<[string, string]>): Buffer {
  let s = startLine + "\r\n";
  for (const [k, v] of headers) {
    if (hasLineBreak(k) || hasLineBreak(v)) continue; // never let a filter split headers
    s += k + ": " + v + "\r\n";
  }
  return latin1Bytes(s + "\r\n");
}

/** Changes `headBytes` makes to a field list on the way out (without changing the list). */
export interface HeadEdit {
  /** Every field of this name (or these names) is left out. */
  readonly omit?: string | ReadonlySet<string>;
  /** The first field of this name is left out and this field appended instead. */
  readonly replace?: readonly [string, string] | undefined;
  /** Fields appended at the end. */
  readonly extra?: readonly (readonly [string, string])[] | undefined;
}

/**
 * The head `startLine` + `headers` with `edit` applied, as bytes, followed by `tail` (a body that
 * leaves in the same write). Fields still as received (a HeaderList from parseHead) are copied
 * from the received head; only the start line and set or added fields are encoded (latin1;
 * fields with CR/LF skipped, as in serializeHead). Built in a scratch buffer, then copied once
 * into a buffer of the exact size (the socket keeps that one).
 */
export function headBytes(
  startLine: string,
  headers: HeaderMap,
  edit: HeadEdit = NO_EDIT,
  tail?: Uint8Array,
): Buffer {
  const out = headers instanceof HeaderList ? assemble(startLine, headers, edit, tail) : undefined;
  if (out) return out;
  const head = serializeHead(startLine, edited(headers, edit));
  return tail?.length ? Buffer.concat([head, tail]) : head;
}

const NO_EDIT: HeadEdit = {};
const SCRATCH = Buffer.allocUnsafe(MAX_HEAD_BYTES + 4096);

/** Writes `s` (latin1) at `at` in SCRATCH; -1 when it does not fit. */
function put(s: string, at: number): number {
  if (at + s.length > SCRATCH.length) return -1;
  for (let i = 0; i < s.length; i++) SCRATCH[at++] = s.charCodeAt(i);
  return at;
}

function putField(k: string, v: string, at: number): number {
  if (hasLineBreak(k) || hasLineBreak(v)) return at;
  at = put(k, at);
  if (at >= 0) at = put(": ", at);
  if (at >= 0) at = put(v, at);
  return at >= 0 ? put("\r\n", at) : -1;
}

/** Copies `src[start, end)` to SCRATCH at `at`; -1 when it does not fit. */
function copyRun(src: Buffer, start: number, end: number, at: number): number {
  if (at < 0 || at + end - start > SCRATCH.length) return -1;
  return at + src.copy(SCRATCH, at, start, end);
}

/** CR, LF or NUL in `s`, or a char past U+00FF: header strings are one char per byte, and such
 * a char would be cut down to its low byte on the wire (U+010D U+010A → CR LF, a header a filter
 * never wrote). A char scan: no regex call per field. */
function hasLineBreak(s: string): boolean {
  for (let i = 0; i < s.length; i++) {
    const c = s.charCodeAt(i);
    if (c === 0x0d || c === 0x0a || c === 0 || c > 0xff) return true;
  }
  return false;
}

/** headBytes through SCRATCH; undefined when the head does not fit there (then serialised). */
function assemble(
  startLine: string,
  headers: HeaderList,
  edit: HeadEdit,
  tail: Uint8Array | undefined,
): Buffer | undefined {
  const { src, pairs } = headers.fields();
  let at = put(startLine, 0);
  if (at >= 0) at = put("\r\n", at);
  let replaced = false;
  const omit = edit.omit;
  const omitOne = typeof omit === "string" ? omit : undefined;
  const omitSet = typeof omit === "string" ? undefined : omit;
  // Fields as received are copied in runs: consecutive ones are adjacent in `src`, so a head
  // whose fields all pass costs one Buffer#copy, not one per field.
  let runStart = -1, runEnd = -1;
  for (let i = 0; i < pairs.length && at >= 0; i++) {
    const p = pairs[i]!;
    const name = p[0];
    if (name === omitOne || omitSet?.has(name)) continue;
    if (!replaced && edit.replace && name === edit.replace[0]) {
      replaced = true;
      continue;
    }
    const start = p[2];
    if (src && start !== undefined) {
      const end = p[3]! + 2; // with its CRLF
      if (start === runEnd) runEnd = end;
      else {
        if (runStart >= 0) at = copyRun(src, runStart, runEnd, at);
        runStart = start;
        runEnd = end;
      }
    } else {
      if (runStart >= 0) at = copyRun(src!, runStart, runEnd, at);
      runStart = runEnd = -1;
      if (at >= 0) at = putField(name, p[1], at);
    }
  }
  if (runStart >= 0 && at >= 0) at = copyRun(src!, runStart, runEnd, at);
  if (edit.replace && at >= 0) at = putField(edit.replace[0], edit.replace[1], at);
  if (edit.extra) { for (const [k, v] of edit.extra) if (at >= 0) at = putField(k, v, at); }
  if (at >= 0) at = put("\r\n", at);
  if (at < 0) return undefined;
  const out = Buffer.allocUnsafe(at + (tail?.length ?? 0));
  SCRATCH.copy(out, 0, 0, at);
  if (tail?.length) out.set(tail, at);
  return out;
}

function edited(headers: HeaderMap, edit: HeadEdit): [string, string][] {
  let out = headers.entries();
  const omit = edit.omit;
  if (typeof omit === "string") out = out.filter(([k]) => k !== omit);
  else if (omit) out = out.filter(([k]) => !omit.has(k));
  if (edit.replace) {
    const i = out.findIndex(([k]) => k === edit.replace![0]);
    if (i >= 0) out.splice(i, 1);
    out.push([edit.replace[0], edit.replace[1]]);
  }
  for (const [k, v] of edit.extra ?? []) out.push([k, v]);
  return out;
}

/** The latin1 bytes of `s`. An ASCII string (nearly every head) takes the UTF-8 encoder, whose
 * bytes are the same and which is ~2x faster than the latin1 one on Deno. */
export function latin1Bytes(s: string): Buffer {
  return notAscii(s) ? Buffer.from(s, "latin1") : Buffer.from(s);
}

/** A char above 0x7f in `s` (a char scan: no regex call per head). */
function notAscii(s: string): boolean {
  for (let i = 0; i < s.length; i++) if (s.charCodeAt(i) > 0x7f) return true;
  return false;
}
