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
  out.set(frameHeader(len, type, flags, streamId));
  if (payload) out.set(payload, 9);
  return out;
}

function u32(...values: number[]): Uint8Array {
  const out = new Uint8Array(values.length * 4);
  const dv = new DataView(out.buffer);
  values.forEach((v, i) => dv.setUint32(i * 4, v >>> 0));
  return out;
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
  frame(FrameType.WINDOW_UPDATE, 0, streamId, u32(increment));
export const rstStreamFrame = (streamId: number, code: number): Uint8Array =>
  frame(FrameType.RST_STREAM, 0, streamId, u32(code));
export const goawayFrame = (lastStreamId: number, code: number): Uint8Array =>
  frame(FrameType.GOAWAY, 0, 0, u32(lastStreamId, code));
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

export function readU32(payload: Uint8Array, offset = 0): number {
  return new DataView(payload.buffer, payload.byteOffset, payload.length).getUint32(offset);
}

export interface FrameSink {
  /** A complete non-DATA frame, or a padded DATA frame (rare; reassembled). */
  frame(type: number, flags: number, streamId: number, payload: Uint8Array): void;
  /** A piece of an unpadded DATA frame; `last` on the final piece (flags apply there). */
  data(streamId: number, piece: Uint8Array, last: boolean, flags: number): void;
}

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
        const take = Math.min(9 - this.#hdrLen, chunk.length - o);
        this.#hdr.set(chunk.subarray(o, o + take), this.#hdrLen);
        this.#hdrLen += take;
        o += take;
        if (this.#hdrLen < 9) return;
        this.#startFrame();
        if (this.#remaining === 0) this.#finish(new Uint8Array(0));
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

  #startFrame(): void {
    const h = this.#hdr;
    const len = (h[0]! << 16) | (h[1]! << 8) | h[2]!;
    this.#type = h[3]!;
    this.#flags = h[4]!;
    this.#stream = readU32(h, 5) & MAX_WINDOW;
    this.#hdrLen = 0;
    if (len > this.#maxFrameSize) {
      throw new H2ProtocolError(ErrorCode.FRAME_SIZE_ERROR, `frame of ${len} bytes above limit`);
    }
    this.#remaining = len;
  }

  #finish(payload: Uint8Array): void {
    this.#remaining = -1;
    this.#parts = [];
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
