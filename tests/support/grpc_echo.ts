/**
 * An h2c gRPC echo server on node:http2 for tests: every length-prefixed message of a stream is
 * answered with "pong:<msg>" as it arrives, the response ends with grpc-status 0 once the client
 * half-closes. `onStream` and `onMessage` let a test see the path, metadata and messages.
 */
import http2 from "node:http2";
import { Buffer } from "node:buffer";

export interface GrpcEchoOptions {
  /** Loopback host to bind; default 127.0.0.1. */
  host?: string;
  /** Port; default 0 (any free port). */
  port?: number;
  /** Extra response headers sent with :status 200. */
  responseHeaders?: Record<string, string>;
  onStream?: (headers: http2.IncomingHttpHeaders) => void;
  onMessage?: (msg: string) => void;
}

export interface GrpcEcho {
  port: number;
  close(): Promise<void>;
}

/** One gRPC message frame (uncompressed) holding `s`. */
export function grpcFrame(s: string): Buffer {
  const body = Buffer.from(s);
  const b = Buffer.alloc(5 + body.length);
  b.writeUInt32BE(body.length, 1);
  body.copy(b, 5);
  return b;
}

export async function startGrpcEcho(opts: GrpcEchoOptions = {}): Promise<GrpcEcho> {
  const server = http2.createServer();
  const sessions = new Set<http2.ServerHttp2Session>();
  server.on("session", (s) => {
    sessions.add(s);
    s.on("close", () => sessions.delete(s));
  });
  server.on("stream", (s, headers) => {
    const stream = s as http2.ServerHttp2Stream;
    opts.onStream?.(headers);
    stream.respond(
      { ":status": 200, "content-type": "application/grpc", ...opts.responseHeaders },
      {
        waitForTrailers: true,
      },
    );
    stream.on("wantTrailers", () => stream.sendTrailers({ "grpc-status": "0" }));
    let buf = Buffer.alloc(0);
    stream.on("data", (c: Buffer) => {
      buf = Buffer.concat([buf, c]);
      while (buf.length >= 5 && buf.length >= 5 + buf.readUInt32BE(1)) {
        const len = buf.readUInt32BE(1);
        const msg = buf.subarray(5, 5 + len).toString();
        buf = buf.subarray(5 + len);
        opts.onMessage?.(msg);
        stream.write(grpcFrame(`pong:${msg}`));
      }
    });
    stream.on("end", () => stream.end());
  });
  await new Promise<void>((r) => server.listen(opts.port ?? 0, opts.host ?? "127.0.0.1", r));
  return {
    port: (server.address() as { port: number }).port,
    close: () =>
      new Promise<void>((r) => {
        for (const s of sessions) s.destroy();
        server.close(() => r());
      }),
  };
}
