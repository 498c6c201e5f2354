/**
 * Bodies independent of their wire: a `BodyReader` yields a message body's payload (de-framed)
 * and then its trailers, whether it arrives as HTTP/1.1 (content-length, chunked, close-delimited)
 * or as HTTP/2 DATA frames plus a trailing HEADERS block; a `BodySink` takes payload and trailers
 * and frames them for its wire (HTTP/1.1 chunked or raw, HTTP/2 DATA and trailers HEADERS). The
 * body phases (body_buffer.ts, body_stream.ts) work on these, so HTTP/1.1 and h2c run the same
 * filters with the same limits, and trailers cross between the two wires both ways.
 */
import { Buffer } from "node:buffer";
import type { Duplex } from "node:stream";
import {
  bad,
  type ByteReader,
  copyBody,
  FORBIDDEN_TRAILERS,
  type Framing,
  lastChunk,
  type Trailer,
} from "./http1_codec.ts";
import type { H2Stream } from "./h2/mod.ts";

/** Reads a body to its end: `onChunk` per piece (a returned promise is awaited before more is
 * read: backpressure; a throw stops reading and rejects), then resolves with the trailers. */
export type BodyReader = (onChunk: (b: Buffer) => boolean | Promise<void>) => Promise<Trailer[]>;

/** Where a body goes: payload, then the end with the trailers (dropped where the framing has no
 * place for them). */
export interface BodySink {
  write(b: Uint8Array): boolean | Promise<void>;
  end(trailers: readonly Trailer[]): void | Promise<void>;
}

/** An HTTP/1.1 body read by the strict framer (http1_body.ts). */
export function h1Reader(r: ByteReader, framing: Framing): BodyReader {
  return async (onChunk) => {
    let trailers: Trailer[] = [];
    await copyBody(r, framing, onChunk, true, undefined, (t) => {
      trailers = t;
    });
    return trailers;
  };
}

/** An HTTP/2 stream's DATA then its trailers (pseudo-headers and fields forbidden in trailers
 * dropped, as the HTTP/1.1 parser drops them). The stream is read without being destroyed: the
 * response still goes out on it. Rejects when the stream closes before END_STREAM. */
export function h2Reader(s: H2Stream): BodyReader {
  return (onChunk) =>
    new Promise<Trailer[]>((resolve, reject) => {
      if (s.readableEnded) return resolve(h2Trailers(s.trailers));
      // A chunk still being handled when 'end' comes (pause() does not hold back an 'end' whose
      // data was all emitted) finishes first: its outcome (a local reply) must not be lost.
      let pending: Promise<void> | undefined;
      const onData = (c: Buffer): void => {
        let r: boolean | Promise<void>;
        try {
          r = onChunk(c);
        } catch (e) {
          return done(e);
        }
        if (r instanceof Promise) {
          s.pause();
          const p: Promise<void> = r.then(() => {
            if (pending === p) pending = undefined;
            s.resume();
          });
          pending = p;
          p.catch(done);
        }
      };
      const onEnd = (): void => {
        s.off("close", onClose); // the stream may close while the last chunk is handled
        const t = h2Trailers(s.trailers);
        if (pending) pending.then(() => done(undefined, t), () => {});
        else done(undefined, t);
      };
      const onClose = (): void => done(new Error("stream reset before its end"));
      let settled = false;
      function done(err: unknown, t?: Trailer[]): void {
        if (settled) return;
        settled = true;
        s.off("data", onData);
        s.off("end", onEnd);
        s.off("close", onClose);
        if (err !== undefined) reject(err);
        else resolve(t!);
      }
      s.on("data", onData);
      s.once("end", onEnd);
      s.once("close", onClose);
      s.resume();
    });
}

function h2Trailers(list: readonly [string, string][] | undefined): Trailer[] {
  if (!list) return [];
  return list.filter(([k]) => !k.startsWith(":") && !FORBIDDEN_TRAILERS.has(k));
}

/** Has this HTTP/2 request or response a body (or trailers) still to come? */
export function h2HasBody(s: H2Stream): boolean {
  return !(s.readableEnded || (s.remoteEnded && s.readableLength === 0 && !s.trailers));
}

/** An HTTP/1.1 body going out chunked (trailers in the last chunk) or raw (trailers dropped). */
export function h1Sink(
  to: Duplex,
  chunked: boolean,
  write: (to: Duplex, b: Buffer) => boolean | Promise<void>,
): BodySink {
  return {
    write: (bytes) => {
      if (!bytes.length) return true;
      const b = Buffer.from(bytes.buffer, bytes.byteOffset, bytes.length);
      if (!chunked) return write(to, b);
      return write(to, Buffer.concat([Buffer.from(`${b.length.toString(16)}\r\n`), b, CRLF]));
    },
    end: async (trailers) => {
      if (chunked) await write(to, lastChunk(trailers));
    },
  };
}
const CRLF = Buffer.from("\r\n");

/** A sink that passes exactly `n` bytes: an HTTP/2 request whose DATA disagree with its
 * content-length is malformed (RFC 9113 §8.1.1), and copied raw onto an HTTP/1.1 connection the
 * excess would be read as another request (smuggling). Throws on the first byte too many, or at
 * the end when short. */
export function exactLength(sink: BodySink, n: number): BodySink {
  let seen = 0;
  return {
    write: (b) => {
      seen += b.length;
      if (seen > n) throw bad(`body longer than its content-length ${n}`);
      return sink.write(b);
    },
    end: (t) => {
      if (seen !== n) throw bad(`body of ${seen} bytes, content-length ${n}`);
      return sink.end(t);
    },
  };
}

/** An HTTP/2 stream whose head was sent: DATA frames with flow control, then trailers (a HEADERS
 * frame with END_STREAM) or an empty END_STREAM. Writes reject once the stream is gone. */
export function h2Sink(s: H2Stream): BodySink {
  return {
    write: (b) => (b.length ? writeH2(s, b) : true),
    end: (trailers) => {
      const t = trailers.filter(([k]) => !FORBIDDEN_TRAILERS.has(k.toLowerCase()));
      if (t.length) s.outTrailers = t.map(([k, v]) => [k.toLowerCase(), v]);
      s.end();
    },
  };
}

export function writeH2(s: Duplex, chunk: Uint8Array): boolean | Promise<void> {
  if (s.destroyed) throw new Error("stream closed");
  if (s.write(chunk)) return true;
  return new Promise((resolve, reject) => {
    const done = (): void => {
      s.off("close", gone);
      resolve();
    };
    const gone = (): void => {
      s.off("drain", done);
      reject(new Error("stream closed"));
    };
    s.once("drain", done);
    s.once("close", gone);
  });
}
