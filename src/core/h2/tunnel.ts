/**
 * H2Session: an HTTP/2 connection specialised for HBONE CONNECT tunnels over an already
 * connected Duplex (the mTLS socket). Client role opens CONNECT streams; server role hands
 * each CONNECT to a handler that answers with a status. No request/response semantics beyond
 * that: streams are raw byte pipes with flow control, half-close, reset and GOAWAY drain.
 */
import { Buffer } from "node:buffer";
import type { Duplex } from "node:stream";
import { WeftError } from "../errors.ts";
import { encodeHeaders } from "./hpack.ts";
import {
  ErrorCode,
  Flag,
  frameHeader,
  FrameType,
  H2ProtocolError,
  headersFrames,
  MAX_FRAME_SIZE,
  MAX_WINDOW,
  MIN_FRAME_SIZE,
  parseSettings,
  pingFrame,
  readU32,
  rstStreamFrame,
  Setting,
  settingsAckFrame,
  unpad,
  windowUpdateFrame,
  writeFrameHeader,
} from "./frames.ts";
import { H2Stream, type StreamHost } from "./tunnel_stream.ts";
import { type ConnectHandler, H2Base, type H2SessionOptions, type Headers } from "./tunnel_base.ts";

export type { ConnectHandler, H2SessionOptions, Headers };
export { H2Stream };

/** DATA payloads up to this size are copied next to their header and written once. */
const SMALL_FRAME = 8192;

/** One multiplexed HTTP/2 connection carrying CONNECT tunnels. */
export class H2Session extends H2Base implements StreamHost {
  constructor(socket: Duplex, role: "client" | "server", opts: H2SessionOptions = {}) {
    super(socket, role, opts);
  }

  /** Client: open a CONNECT tunnel. `headers` must include `:authority`. */
  openConnect(headers: Headers): Promise<{ status: number; stream: H2Stream }> {
    if (this.role !== "client") return Promise.reject(this.fail("open", "not a client session"));
    if (this.draining) return Promise.reject(this.fail("open", "session is draining (GOAWAY)"));
    if (this.streams.size >= this.peerMaxStreams) {
      return Promise.reject(this.fail("open", `peer allows ${this.peerMaxStreams} streams`));
    }
    const id = this.nextStreamId;
    this.nextStreamId += 2;
    this.newStream(id);
    const list: [string, string][] = [[":method", "CONNECT"]];
    for (const [k, v] of Object.entries(headers)) if (k !== ":method") list.push([k, v]);
    this.write(headersFrames(id, encodeHeaders(list), false, this.peerMaxFrameSize));
    return new Promise((resolve, reject) => this.pendingOpens.set(id, { resolve, reject }));
  }

  /** Server: register the CONNECT handler. */
  onConnect(handler: ConnectHandler): void {
    this.handler = handler;
  }

  // --- StreamHost ---------------------------------------------------------------------------

  writeData(s: H2Stream, chunk: Uint8Array, cb: (err?: Error | null) => void): void {
    if (s.h2Closed) return cb(); // the peer closed the stream with NO_ERROR: drop, as RFC 9113 §8.1
    const n = chunk.length;
    if (
      s.pending === null && n <= SMALL_FRAME && n <= s.sendWindow.available &&
      n <= this.connSend.available && n <= this.peerMaxFrameSize
    ) {
      // Request/response traffic: one frame queued with the others of this turn, no pending
      // record and no cork (the bulk path's), so a small write allocates only its frame.
      this.queueSmallData(s, chunk);
      if (!this.socket.writableNeedDrain && this.queuedBytes < this.hwm) cb();
      else this.drainWaiters.push(cb);
      return;
    }
    s.pending = { chunk, offset: 0, cb };
    this.flushStream(s);
  }

  /** Header and payload in one buffer, queued with the other frames of this turn (write()). */
  private queueSmallData(s: H2Stream, chunk: Uint8Array): void {
    const n = chunk.length;
    const out = new Uint8Array(9 + n);
    writeFrameHeader(out, n, FrameType.DATA, 0, s.id);
    out.set(chunk, 9);
    this.write(out);
    s.sendWindow.available -= n;
    this.connSend.available -= n;
  }

  endStream(s: H2Stream): void {
    if (s.localEnded || s.h2Closed || this.closedSocket) return;
    s.localEnded = true;
    if (s.outTrailers) {
      this.write(headersFrames(s.id, encodeHeaders(s.outTrailers), true, this.peerMaxFrameSize));
    } else this.write(frameHeader(0, FrameType.DATA, Flag.END_STREAM, s.id));
    this.maybeClose(s);
  }

  sendHeaders(s: H2Stream, list: [string, string][], endStream: boolean): void {
    if (s.h2Closed || this.closedSocket) return;
    this.write(headersFrames(s.id, encodeHeaders(list), endStream, this.peerMaxFrameSize));
    if (endStream) {
      s.localEnded = true;
      this.maybeClose(s);
    }
  }

  /** Client: open a plain HTTP/2 request (h2c to an upstream); `list` holds the pseudo-headers.
   * Resolves with the final response head; the body and trailers arrive on the stream. */
  request(
    list: [string, string][],
    endStream: boolean,
  ): { stream: H2Stream; response: Promise<{ status: number; headers: Headers }> } {
    if (this.role !== "client") throw this.fail("open", "not a client session");
    if (this.draining) throw this.fail("open", "session is draining (GOAWAY)");
    if (this.streams.size >= this.peerMaxStreams) {
      throw this.fail("open", `peer allows ${this.peerMaxStreams} streams`);
    }
    const id = this.nextStreamId;
    this.nextStreamId += 2;
    const s = this.newStream(id);
    this.write(headersFrames(id, encodeHeaders(list), endStream, this.peerMaxFrameSize));
    if (endStream) s.localEnded = true;
    const response = new Promise<{ status: number; headers: Headers }>((resolve, reject) =>
      this.pendingOpens.set(id, { resolve, reject })
    );
    return { stream: s, response };
  }

  consumed(s: H2Stream, n: number): void {
    this.connConsumed(n);
    if (s.h2Closed || s.remoteEnded) return;
    const inc = s.recvWindow.consume(n);
    if (inc > 0) this.write(windowUpdateFrame(s.id, inc));
  }

  streamDestroyed(s: H2Stream, err: Error | null, clean = false): void {
    s.h2Closed = true;
    this.blocked.delete(s);
    if (this.streams.delete(s.id) && !this.closedSocket) {
      if (clean && !s.localEnded) {
        // The peer already ended its side and nothing of ours is left unsent: a destroy without
        // an error is a normal close, so end ours (END_STREAM) rather than reset — a peer records
        // a CANCEL as an aborted connection (ztunnel and weft both log it as an error).
        s.localEnded = true;
        this.write(frameHeader(0, FrameType.DATA, Flag.END_STREAM, s.id));
      } else {
        const code = err instanceof H2ProtocolError
          ? err.h2Code
          : err
          ? ErrorCode.INTERNAL_ERROR
          : ErrorCode.CANCEL;
        this.write(rstStreamFrame(s.id, code));
      }
    }
    this.pendingOpens.get(s.id)?.reject(err ?? this.fail("open", "stream destroyed"));
    this.pendingOpens.delete(s.id);
    this.afterStreamGone();
  }

  /** Send as much of the stream's pending write as both windows allow. */
  protected flushStream(s: H2Stream): void {
    const p = s.pending;
    if (!p) return;
    let ok = true;
    const whole = Math.min(s.sendWindow.available, this.connSend.available, this.peerMaxFrameSize);
    if (p.offset === 0 && p.chunk.length <= SMALL_FRAME && p.chunk.length <= whole) {
      // A small write that waited for window: as writeData's fast path.
      this.queueSmallData(s, p.chunk);
      ok = !this.socket.writableNeedDrain && this.queuedBytes < this.hwm;
      p.offset = p.chunk.length;
    } else ok = this.flushOut(); // queued frames first: order on the wire is order of writes
    this.socket.cork(); // header + payload leave in one TLS record write
    while (p.offset < p.chunk.length) {
      const n = Math.min(
        p.chunk.length - p.offset,
        s.sendWindow.available,
        this.connSend.available,
        this.peerMaxFrameSize,
      );
      if (n <= 0) break;
      this.socket.write(frameHeader(n, FrameType.DATA, 0, s.id));
      ok = this.socket.write(p.chunk.subarray(p.offset, p.offset + n));
      p.offset += n;
      s.sendWindow.available -= n;
      this.connSend.available -= n;
    }
    this.socket.uncork();
    if (p.offset < p.chunk.length) {
      this.blocked.add(s);
      return;
    }
    s.pending = null;
    this.blocked.delete(s);
    if (ok) p.cb();
    else this.drainWaiters.push(p.cb);
  }

  // --- inbound frames -----------------------------------------------------------------------

  data(streamId: number, piece: Uint8Array, last: boolean, flags: number): void {
    this.onDataBytes(streamId, piece.length);
    const s = this.streams.get(streamId);
    if (s && !s.remoteEnded && !s.destroyed) {
      if (piece.length > 0) {
        s.recvWindow.receive(piece.length);
        s.deliver(piece);
      }
    } else this.connConsumed(piece.length); // stream gone: the bytes are dropped at once
    if (last && flags & Flag.END_STREAM && s) {
      s.deliverEnd();
      this.maybeClose(s);
    }
  }

  frame(type: number, flags: number, streamId: number, payload: Uint8Array): void {
    if (this.headerBlock && type !== FrameType.CONTINUATION) {
      throw new H2ProtocolError(ErrorCode.PROTOCOL_ERROR, "expected CONTINUATION");
    }
    switch (type) {
      case FrameType.DATA: { // padded DATA arrives whole
        const body = unpad(type, flags, payload);
        this.onDataBytes(streamId, payload.length - body.length);
        this.connConsumed(payload.length - body.length);
        return this.data(streamId, body, true, flags);
      }
      case FrameType.HEADERS: {
        if (streamId === 0) throw new H2ProtocolError(ErrorCode.PROTOCOL_ERROR, "HEADERS on 0");
        const block = unpad(type, flags, payload);
        this.headerBlock = { streamId, flags, parts: [block], bytes: block.length };
        this.checkHeaderBlock();
        if (flags & Flag.END_HEADERS) this.endHeaders();
        return;
      }
      case FrameType.CONTINUATION: {
        const hb = this.headerBlock;
        if (!hb || hb.streamId !== streamId) {
          throw new H2ProtocolError(ErrorCode.PROTOCOL_ERROR, "unexpected CONTINUATION");
        }
        hb.parts.push(payload.slice());
        hb.bytes += payload.length;
        this.checkHeaderBlock();
        if (flags & Flag.END_HEADERS) this.endHeaders();
        return;
      }
      case FrameType.SETTINGS:
        if (flags & Flag.ACK) return;
        this.guard.count("settings");
        this.applySettings(parseSettings(payload));
        return this.answer(settingsAckFrame());
      case FrameType.WINDOW_UPDATE:
        return this.onWindowUpdate(streamId, readU32(payload) & MAX_WINDOW);
      case FrameType.PING:
        if (payload.length !== 8) {
          throw new H2ProtocolError(ErrorCode.FRAME_SIZE_ERROR, "PING size");
        }
        if (flags & Flag.ACK) return this.onPingAck(payload);
        this.guard.count("ping");
        return this.answer(pingFrame(payload, true));
      case FrameType.RST_STREAM:
        return this.onReset(streamId, readU32(payload));
      case FrameType.GOAWAY:
        return this.goawayReceived(readU32(payload) & MAX_WINDOW, readU32(payload, 4));
      case FrameType.PUSH_PROMISE:
        throw new H2ProtocolError(ErrorCode.PROTOCOL_ERROR, "PUSH_PROMISE with push disabled");
      default:
        return; // PRIORITY and unknown types are ignored (RFC 9113 §5.5)
    }
  }

  private onWindowUpdate(streamId: number, inc: number): void {
    if (inc === 0) throw new H2ProtocolError(ErrorCode.PROTOCOL_ERROR, "zero WINDOW_UPDATE");
    if (streamId === 0) {
      this.connSend.grow(inc);
      for (const s of [...this.blocked]) this.flushStream(s);
      return;
    }
    const s = this.streams.get(streamId);
    if (!s) return;
    s.sendWindow.grow(inc);
    this.flushStream(s);
  }

  private applySettings(settings: Map<number, number>): void {
    for (const [id, v] of settings) {
      if (id === Setting.MAX_CONCURRENT_STREAMS) this.peerMaxStreams = v;
      else if (id === Setting.MAX_FRAME_SIZE) {
        if (v < MIN_FRAME_SIZE || v > MAX_FRAME_SIZE) {
          throw new H2ProtocolError(ErrorCode.PROTOCOL_ERROR, `MAX_FRAME_SIZE ${v}`);
        }
        this.peerMaxFrameSize = v;
      } else if (id === Setting.INITIAL_WINDOW_SIZE) {
        if (v > MAX_WINDOW) throw new H2ProtocolError(ErrorCode.FLOW_CONTROL_ERROR, "window");
        const delta = v - this.peerInitialWindow;
        this.peerInitialWindow = v;
        for (const s of this.streams.values()) s.sendWindow.grow(delta);
        for (const s of [...this.blocked]) this.flushStream(s);
      }
    }
  }

  /** CONTINUATION flood: bounded frames and bytes per header block, before any decoding. */
  private checkHeaderBlock(): void {
    const hb = this.headerBlock!;
    if (hb.parts.length > this.guard.limits.maxHeaderFrames) {
      throw new H2ProtocolError(ErrorCode.ENHANCE_YOUR_CALM, "too many CONTINUATION frames");
    }
    if (hb.bytes > (this.opts.maxHeaderListBytes ?? 65536)) {
      throw new H2ProtocolError(ErrorCode.ENHANCE_YOUR_CALM, "header block too large");
    }
  }

  private endHeaders(): void {
    const hb = this.headerBlock!;
    this.headerBlock = null;
    const block = hb.parts.length === 1 ? hb.parts[0]! : Buffer.concat(hb.parts);
    let list;
    try {
      list = this.decoder.decode(block, this.opts.maxHeaderListBytes ?? 65536);
    } catch (err) {
      throw new H2ProtocolError(ErrorCode.COMPRESSION_ERROR, (err as Error).message);
    }
    const headers: Headers = {};
    for (const [k, v] of list) headers[k] = k in headers ? `${headers[k]}, ${v}` : v;
    const endStream = (hb.flags & Flag.END_STREAM) !== 0;
    if (this.role === "server" && hb.streamId > this.lastPeerStreamId) {
      return this.onRequest(hb.streamId, headers, endStream, list);
    }
    const s = this.streams.get(hb.streamId);
    if (this.role === "server") {
      if (hb.streamId % 2 === 0) {
        throw new H2ProtocolError(ErrorCode.PROTOCOL_ERROR, `bad client stream id ${hb.streamId}`);
      }
      // A client reusing a stream id (RFC 9113 §5.1.1): a closed one is refused as h2 does
      // (RST_STREAM STREAM_CLOSED, spending the reset budget); on an open one only trailers
      // (END_STREAM) may follow the request head, anything else is malformed (§8.1).
      if (!s) {
        this.guard.count("reset");
        return this.answer(rstStreamFrame(hb.streamId, ErrorCode.STREAM_CLOSED));
      }
      if (!endStream) {
        return void s.destroy(new H2ProtocolError(ErrorCode.PROTOCOL_ERROR, "second request head"));
      }
    }
    if (!s) return;
    const open = this.pendingOpens.get(s.id);
    if (open) {
      const status = Number(headers[":status"] ?? 0);
      if (status >= 100 && status < 200) return; // informational: wait for the final response
      this.pendingOpens.delete(s.id);
      s.headerList = list;
      open.resolve({ status, stream: s, headers });
    } else s.trailers = list; // a second header block ends the stream: trailers
    if (endStream) {
      s.deliverEnd();
      this.maybeClose(s);
    }
  }

  private onRequest(
    id: number,
    headers: Headers,
    endStream: boolean,
    list: [string, string][],
  ): void {
    if (id % 2 === 0 || id <= this.lastPeerStreamId) {
      throw new H2ProtocolError(ErrorCode.PROTOCOL_ERROR, `bad client stream id ${id}`);
    }
    this.lastPeerStreamId = id;
    if (this.draining || !this.handler || this.streams.size >= this.maxStreams) {
      this.guard.count("reset"); // a peer opening past our limit spends the same budget
      return this.answer(rstStreamFrame(id, ErrorCode.REFUSED_STREAM));
    }
    const s = this.newStream(id);
    s.headerList = list;
    if (endStream) s.deliverEnd();
    const respond = (status: number, extra: Headers = {}): H2Stream | null => {
      const ok = status >= 200 && status < 300;
      s.headersSent = true;
      const list: [string, string][] = [[":status", String(status)], ...Object.entries(extra)];
      if (!s.h2Closed && !this.closedSocket) {
        this.write(headersFrames(id, encodeHeaders(list), !ok, this.peerMaxFrameSize));
      }
      if (ok) return s;
      // Rejected: tell the client to stop sending without an error (RFC 9113 §8.1).
      s.localEnded = true;
      if (!s.h2Closed && !s.remoteEnded) this.write(rstStreamFrame(id, ErrorCode.NO_ERROR));
      this.closeQuietly(s);
      s.destroy();
      return null;
    };
    // After the rest of this read: a stream the peer resets in the same burst (rapid reset)
    // never reaches the handler, so it costs no upstream dial and no connection record.
    const handler = this.handler;
    queueMicrotask(() => {
      if (!s.destroyed && !s.h2Closed) handler(headers, respond, s);
    });
  }

  private onReset(streamId: number, code: number, byPeer = true): void {
    if (streamId === 0) throw new H2ProtocolError(ErrorCode.PROTOCOL_ERROR, "RST_STREAM on 0");
    const s = this.streams.get(streamId);
    // Rapid reset (CVE-2023-44487): a stream the client resets before we answered it spends the
    // session's budget (hyper's pending-accept resets); cancelling an answered stream is normal.
    if (byPeer && this.role === "server" && s && !s.headersSent) this.guard.count("reset");
    if (!s) return;
    s.h2Closed = true;
    this.streams.delete(streamId);
    this.blocked.delete(s);
    // CANCEL is how a peer drops a stream it no longer needs (a client going away): its own code.
    const err = new WeftError(
      code === ErrorCode.CANCEL ? "h2_stream_cancel" : code === ErrorCode.REFUSED_STREAM // never processed: safe to try again (RFC 9113 §8.7)
        ? "h2_stream_refused"
        : "h2_stream_reset",
      `Cannot continue HTTP/2 stream: peer reset it (code ${code})`,
    );
    this.pendingOpens.get(streamId)?.reject(err);
    this.pendingOpens.delete(streamId);
    // NO_ERROR after a complete response: "stop sending", the read side still ends normally.
    if (code === ErrorCode.NO_ERROR && s.remoteEnded) s.localEnded = true;
    else s.destroy(err);
    this.afterStreamGone();
  }

  private closeQuietly(s: H2Stream): void {
    s.h2Closed = true;
    this.streams.delete(s.id);
    this.blocked.delete(s);
    this.afterStreamGone();
  }

  private goawayReceived(lastStreamId: number, code: number): void {
    this.draining = true;
    this.goawayCode = code;
    // The id names the last stream *we* initiated that the peer may process; only a client
    // initiates streams here, so a GOAWAY from a client (its answer to ours) refuses nothing.
    if (this.role === "client") {
      for (const s of [...this.streams.values()]) {
        if (s.id > lastStreamId) this.onReset(s.id, ErrorCode.REFUSED_STREAM, false);
      }
    }
    this.notifyGoaway();
    this.afterStreamGone();
  }

  private maybeClose(s: H2Stream): void {
    if (!s.localEnded || !s.remoteEnded || s.h2Closed) return;
    s.h2Closed = true;
    this.streams.delete(s.id);
    this.afterStreamGone();
  }

  private newStream(id: number): H2Stream {
    const s = new H2Stream(this, id, this.peerInitialWindow, this.streamWindow, this.hwm);
    // A peer reset destroys the stream with an error, possibly before its owner listens: that
    // must never become an uncaught 'error' event. Owners still see errors via their listeners.
    s.on("error", ignore);
    this.streams.set(id, s);
    return s;
  }
}

/** One shared no-op listener (a closure per stream would cost a function object each). */
function ignore(): void {}
