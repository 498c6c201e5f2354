/**
 * RFC 9113 framing for HBONE tunnels: the 9-byte frame header, frame encoders, an incremental
 * reader that hands DATA payload to the caller piece by piece as TLS records arrive (no
 * reassembly copy on the bulk path), and the send/receive flow-control windows.
 */
import { Buffer } from "node:buffer";
import { WeftError } from "../errors.ts";

export const PREFACE: Uint8Array = new TextEncoder().encode("PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n");

export const FrameType = {
  DATA: 0x0,
  HEADERS: 0x1,
  PRIORITY: 0x2,
  RST_STREAM: 0x3,
  SETTINGS: 0x4,
  PUSH_PROMISE: 0x5,
  PING: 0x6,
  GOAWAY: 0x7,
  WINDOW_UPDATE: 0x8,
  CONTINUATION: 0x9,
} as const;

export const Flag = {
  END_STREAM: 0x1,
  ACK: 0x1,
  END_HEADERS: 0x4,
  PADDED: 0x8,
  PRIORITY: 0x20,
} as const;

export const ErrorCode = {
  NO_ERROR: 0x0,
  PROTOCOL_ERROR: 0x1,
  INTERNAL_ERROR: 0x2,
  FLOW_CONTROL_ERROR: 0x3,
  STREAM_CLOSED: 0x5,
  FRAME_SIZE_ERROR: 0x6,
  REFUSED_STREAM: 0x7,
  CANCEL: 0x8,
  COMPRESSION_ERROR: 0x9,
  ENHANCE_YOUR_CALM: 0xb,
} as const;

export const Setting = {
  HEADER_TABLE_SIZE: 0x1,
  ENABLE_PUSH: 0x2,
  MAX_CONCURRENT_STREAMS: 0x3,
  INITIAL_WINDOW_SIZE: 0x4,
  MAX_FRAME_SIZE: 0x5,
  MAX_HEADER_LIST_SIZE: 0x6,
} as const;

export const DEFAULT_WINDOW = 65535;
export const MAX_WINDOW = 0x7fffffff;
export const MIN_FRAME_SIZE = 16384;
export const MAX_FRAME_SIZE = 16777215;

/** A peer broke the protocol: `h2Code` is the RFC 9113 error code to put in GOAWAY/RST_STREAM. */
export class H2ProtocolError extends WeftError {
  readonly h2Code: number;
  constructor(h2Code: number, reason: string) {
    super("h2_protocol_error", `Cannot process HTTP/2 frame: ${reason}`);
    this.h2Code = h2Code;
  }
}

export function frameHeader(
  length: number,
  type: number,
  flags: number,
  streamId: number,
): Uint8Array {
  const h = new Uint8Array(9);
  writeFrameHeader(h, length, type, flags, streamId);
  return h;
}

/** The 9-byte frame header at the start of `out`. */
export function writeFrameHeader(
  out: Uint8Array,
  length: number,
  type: number,
  flags: number,
  streamId: number,
): void {
  out[0] = length >>> 16;
  out[1] = (length >>> 8) & 0xff;
  out[2] = length & 0xff;
  out[3] = type;
  out[4] = flags;
  const id = streamId & MAX_WINDOW;
  out[5] = id >>> 24;
  out[6] = (id >>> 16) & 0xff;
  out[7] = (id >>> 8) & 0xff;
  out[8] = id & 0xff;
}

/** A whole frame (header + payload) in one buffer, for control frames. */
export function frame(
  type: number,
  flags: number,
  streamId: number,
  payload?: Uint8Array,
): Uint8Array {
  const len = payload?.length ?? 0;
  const out = new Uint8Array(9 + len);
  writeFrameHeader(out, len, type, flags, streamId);
  if (payload) out.set(payload, 9);
  return out;
}

/** A frame whose payload is 32-bit words (WINDOW_UPDATE, RST_STREAM, GOAWAY), in one buffer. */
function wordsFrame(type: number, streamId: number, a: number, b?: number): Uint8Array {
  const len = b === undefined ? 4 : 8;
  const out = new Uint8Array(9 + len);
  writeFrameHeader(out, len, type, 0, streamId);
  writeU32(out, 9, a);
  if (b !== undefined) writeU32(out, 13, b);
  return out;
}

function writeU32(out: Uint8Array, o: number, v: number): void {
  out[o] = v >>> 24;
  out[o + 1] = (v >>> 16) & 0xff;
  out[o + 2] = (v >>> 8) & 0xff;
  out[o + 3] = v & 0xff;
}

export function settingsFrame(settings: ReadonlyMap<number, number>): Uint8Array {
  const payload = new Uint8Array(settings.size * 6);
  const dv = new DataView(payload.buffer);
  let o = 0;
  for (const [id, value] of settings) {
    dv.setUint16(o, id);
    dv.setUint32(o + 2, value);
    o += 6;
  }
  return frame(FrameType.SETTINGS, 0, 0, payload);
}

export const settingsAckFrame = (): Uint8Array => frame(FrameType.SETTINGS, Flag.ACK, 0);
export const windowUpdateFrame = (streamId: number, increment: number): Uint8Array =>
  wordsFrame(FrameType.WINDOW_UPDATE, streamId, increment);
export const rstStreamFrame = (streamId: number, code: number): Uint8Array =>
  wordsFrame(FrameType.RST_STREAM, streamId, code);
export const goawayFrame = (lastStreamId: number, code: number): Uint8Array =>
  wordsFrame(FrameType.GOAWAY, 0, lastStreamId, code);
export const pingFrame = (opaque: Uint8Array, ack: boolean): Uint8Array =>
  frame(FrameType.PING, ack ? Flag.ACK : 0, 0, opaque);

/** HEADERS (+ CONTINUATION when the block exceeds the peer's max frame size), one buffer. */
export function headersFrames(
  streamId: number,
  block: Uint8Array,
  endStream: boolean,
  maxFrameSize: number,
): Uint8Array {
  const parts: Uint8Array[] = [];
  let o = 0;
  do {
    const piece = block.subarray(o, o + maxFrameSize);
    o += piece.length;
    const type = parts.length === 0 ? FrameType.HEADERS : FrameType.CONTINUATION;
    let flags = o >= block.length ? Flag.END_HEADERS : 0;
    if (parts.length === 0 && endStream) flags |= Flag.END_STREAM;
    parts.push(frame(type, flags, streamId, piece));
  } while (o < block.length);
  return parts.length === 1 ? parts[0]! : Buffer.concat(parts);
}

export function parseSettings(payload: Uint8Array): Map<number, number> {
  if (payload.length % 6 !== 0) {
    throw new H2ProtocolError(ErrorCode.FRAME_SIZE_ERROR, "SETTINGS length not a multiple of 6");
  }
  const dv = new DataView(payload.buffer, payload.byteOffset, payload.length);
  const out = new Map<number, number>();
  for (let o = 0; o < payload.length; o += 6) out.set(dv.getUint16(o), dv.getUint32(o + 2));
  return out;
}

/** A big-endian u32 at `offset` (no DataView: this runs for every frame header). */
export function readU32(payload: Uint8Array, offset = 0): number {
  if (offset + 4 > payload.length) {
    throw new H2ProtocolError(ErrorCode.FRAME_SIZE_ERROR, "frame payload too short");
  }
  return ((payload[offset]! << 24) | (payload[offset + 1]! << 16) | (payload[offset + 2]! << 8) |
    payload[offset + 3]!) >>> 0;
}

export interface FrameSink {
  /** A complete non-DATA frame, or a padded DATA frame (rare; reassembled). */
  frame(type: number, flags: number, streamId: number, payload: Uint8Array): void;
  /** A piece of an unpadded DATA frame; `last` on the final piece (flags apply there). */
  data(streamId: number, piece: Uint8Array, last: boolean, flags: number): void;
}

const EMPTY = new Uint8Array(0);

/** Incremental frame parser fed with socket chunks. */
export class FrameReader {
  #hdr = new Uint8Array(9);
  #hdrLen = 0;
  #remaining = -1; // payload bytes left in the current frame; -1 = reading a header
  #type = 0;
  #flags = 0;
  #stream = 0;
  #parts: Uint8Array[] = [];
  #partsLen = 0;
  #maxFrameSize: number;
  readonly #sink: FrameSink;

  constructor(sink: FrameSink, maxFrameSize: number) {
    this.#sink = sink;
    this.#maxFrameSize = maxFrameSize;
  }

  push(chunk: Uint8Array): void {
    let o = 0;
    while (o < chunk.length) {
      if (this.#remaining < 0) {
        if (this.#hdrLen === 0 && chunk.length - o >= 9) {
          this.#startFrame(chunk, o); // the common case: a whole header in this chunk, no copy
          o += 9;
        } else {
          const h = this.#hdr;
          while (this.#hdrLen < 9 && o < chunk.length) h[this.#hdrLen++] = chunk[o++]!;
          if (this.#hdrLen < 9) return;
          this.#hdrLen = 0;
          this.#startFrame(h, 0);
        }
        if (this.#remaining === 0) this.#finish(EMPTY);
        continue;
      }
      const take = Math.min(this.#remaining, chunk.length - o);
      const piece = chunk.subarray(o, o + take);
      o += take;
      this.#remaining -= take;
      if (this.#type === FrameType.DATA && !(this.#flags & Flag.PADDED)) {
        const last = this.#remaining === 0;
        if (last) this.#remaining = -1;
        this.#sink.data(this.#stream, piece, last, this.#flags);
      } else if (this.#remaining === 0) {
        this.#parts.push(piece);
        const payload = this.#parts.length === 1 ? piece : Buffer.concat(this.#parts);
        this.#finish(payload);
      } else {
        this.#parts.push(piece.slice()); // the socket may reuse its buffer
        this.#partsLen += take;
      }
    }
  }

  /** The 9-byte header at `h[o]`. */
  #startFrame(h: Uint8Array, o: number): void {
    const len = (h[o]! << 16) | (h[o + 1]! << 8) | h[o + 2]!;
    this.#type = h[o + 3]!;
    this.#flags = h[o + 4]!;
    this.#stream = readU32(h, o + 5) & MAX_WINDOW;
    if (len > this.#maxFrameSize) {
      throw new H2ProtocolError(ErrorCode.FRAME_SIZE_ERROR, `frame of ${len} bytes above limit`);
    }
    this.#remaining = len;
  }

  #finish(payload: Uint8Array): void {
    this.#remaining = -1;
    if (this.#parts.length !== 0) this.#parts.length = 0; // payload is a copy or `piece`, not this
    this.#partsLen = 0;
    this.#sink.frame(this.#type, this.#flags, this.#stream, payload);
  }
}

/** Strip PADDED (and for HEADERS, PRIORITY) fields from a payload. */
export function unpad(type: number, flags: number, payload: Uint8Array): Uint8Array {
  let start = 0;
  let pad = 0;
  if (flags & Flag.PADDED) {
    pad = payload[0] ?? 0;
    start = 1;
  }
  if (type === FrameType.HEADERS && flags & Flag.PRIORITY) start += 5;
  if (start + pad > payload.length) {
    throw new H2ProtocolError(ErrorCode.PROTOCOL_ERROR, "padding longer than payload");
  }
  return payload.subarray(start, payload.length - pad);
}

/**
 * Receive side of one flow-control window: counts consumed bytes and says when to send a
 * WINDOW_UPDATE (once half the window is consumed, so the peer never stalls on a full window).
 */
export class RecvWindow {
  #available: number;
  #pending = 0;
  readonly size: number;

  constructor(size: number) {
    this.size = size;
    this.#available = size;
  }

  /** Bytes arrived: the peer must not exceed what we granted. */
  receive(n: number): void {
    this.#available -= n;
    if (this.#available < 0) {
      throw new H2ProtocolError(
        ErrorCode.FLOW_CONTROL_ERROR,
        "peer exceeded the flow-control window",
      );
    }
  }

  /** Bytes handed to the consumer; returns the increment to announce now, or 0. */
  consume(n: number): number {
    this.#pending += n;
    if (this.#pending < this.size / 2) return 0;
    const inc = this.#pending;
    this.#pending = 0;
    this.#available += inc;
    return inc;
  }
}

/** Send side of a window: grows with WINDOW_UPDATE / SETTINGS deltas, may go negative. */
export class SendWindow {
  available: number;
  constructor(initial: number) {
    this.available = initial;
  }
  grow(n: number): void {
    this.available += n;
    if (this.available > MAX_WINDOW) {
      throw new H2ProtocolError(ErrorCode.FLOW_CONTROL_ERROR, "window above 2^31-1");
    }
  }
}
