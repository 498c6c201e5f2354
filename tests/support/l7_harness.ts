/** An upstream echo (node:http), and weft's HttpProxy in front of it on 127.0.0.1:0. */
import { Buffer } from "node:buffer";
import http from "node:http";
import http2 from "node:http2";
import net from "node:net";
import type { AddressInfo } from "node:net";
import type { Duplex } from "node:stream";
import { FilterChain, type HttpFilter, HttpProxy, type RouteChoice } from "../../src/core/mod.ts";
import { TEST_PEER } from "./filter_context.ts";

export interface L7Harness {
  readonly url: string;
  readonly routes: (RouteChoice | undefined)[];
  setChain(filters: readonly HttpFilter[]): void;
  close(): Promise<void>;
}

const h2Sessions = new Set<http2.ServerHttp2Session>();

function h2Echo(): http2.Http2Server {
  const server = http2.createServer();
  server.on("session", (s) => {
    h2Sessions.add(s);
    s.on("close", () => h2Sessions.delete(s));
  });
  server.on("stream", (s, headers) => {
    // Cast: depending on the other files in a check, the overload may type it as Http2Stream.
    const stream = s as http2.ServerHttp2Stream;
    let body = "";
    stream.setEncoding("utf8");
    stream.on("data", (c: string) => (body += c));
    stream.on("end", () => {
      stream.respond({ ":status": 200, "content-type": "application/grpc", "x-upstream": "h2" }, {
        waitForTrailers: true,
      });
      stream.on(
        "wantTrailers",
        () => stream.sendTrailers({ "grpc-status": "0", "grpc-message": "ok" }),
      );
      stream.end(JSON.stringify({ path: headers[":path"], headers, body }));
    });
  });
  return server;
}

function listen(server: net.Server | http.Server | http2.Http2Server): Promise<number> {
  return new Promise((r) =>
    server.listen(0, "127.0.0.1", () => r((server.address() as AddressInfo).port))
  );
}

/** Echo upstream: 200 with JSON {method, url, headers}; /status/<n> answers n. With
 * `upstream: "h2"` it is an h2c server that also sends trailers (grpc-status: 0). */
export async function startL7(
  filters: readonly HttpFilter[],
  opts: { upstream?: "http1" | "h2"; maxBufferedBodyBytes?: number } = {},
): Promise<L7Harness> {
  const h2 = opts.upstream === "h2";
  const upstream = h2 ? h2Echo() : http.createServer((req, res) => {
    if (req.url?.startsWith("/echo-body")) return echoBody(req, res);
    const m = /^\/status\/(\d{3})/.exec(req.url ?? "");
    const body = JSON.stringify({ method: req.method, url: req.url, headers: req.headers });
    res.writeHead(m ? Number(m[1]) : 200, {
      "content-type": "application/json",
      "x-upstream": "echo",
    });
    req.resume();
    req.on("end", () => res.end(body));
  });
  const upPort = await listen(upstream);
  let chain = new FilterChain(filters);
  const routes: (RouteChoice | undefined)[] = [];
  const proxy = new HttpProxy({
    chain: () => chain,
    direction: "inbound",
    upstreamProtocol: h2 ? "h2" : "http1",
    ...(opts.maxBufferedBodyBytes ? { maxBufferedBodyBytes: opts.maxBufferedBodyBytes } : {}),
    dialUpstream: (route) => {
      routes.push(route);
      return new Promise<Duplex>((ok, fail) => {
        const s = net.connect(upPort, "127.0.0.1");
        s.once("connect", () => ok(s));
        s.once("error", fail);
      });
    },
  });
  const sockets = new Set<net.Socket>();
  const front = net.createServer((s) => {
    sockets.add(s);
    s.on("close", () => sockets.delete(s));
    void proxy.handle(s, TEST_PEER);
  });
  const port = await listen(front);
  return {
    url: `http://127.0.0.1:${port}`,
    routes,
    setChain: (f) => (chain = new FilterChain(f)),
    close: async () => {
      proxy.close();
      for (const s of sockets) s.destroy();
      await new Promise((r) => front.close(r));
      if (upstream instanceof http.Server) upstream.closeAllConnections();
      for (const s of h2Sessions) s.destroy();
      await new Promise((r) => upstream.close(r));
    },
  };
}

/** /echo-body[?pad=N]: JSON with the request body as received, its framing, a "token" to redact
 * and N bytes of padding (for response-size limits). */
function echoBody(req: http.IncomingMessage, res: http.ServerResponse): void {
  const chunks: Buffer[] = [];
  req.on("data", (c: Buffer) => chunks.push(c));
  req.on("end", () => {
    const pad = Number(new URL(req.url!, "http://x").searchParams.get("pad") ?? 0);
    res.writeHead(200, { "content-type": "application/json" });
    res.end(JSON.stringify({
      received: Buffer.concat(chunks).toString(),
      contentLength: req.headers["content-length"] ?? null,
      chunked: req.headers["transfer-encoding"] === "chunked",
      token: "t0p-secret",
      pad: "x".repeat(pad),
    }));
  });
}

/** A streaming body filter that upper-cases every chunk (the streamed path re-frames). */
export const upperCaseBodies: HttpFilter = {
  name: "upper",
  failPolicy: "FAIL_CLOSE",
  wantsRequestBody: false,
  wantsResponseBody: false,
  streamsRequestBody: true,
  streamsResponseBody: true,
  onRequest: () => ({ action: "continue" }),
  onResponse: () => ({ action: "continue" }),
  onRequestBodyChunk: (_c, chunk) => ({ action: "replace", body: upperBytes(chunk) }),
  onResponseBodyChunk: (_c, _r, chunk) => ({ action: "replace", body: upperBytes(chunk) }),
  onDone: () => {},
};

function upperBytes(chunk: Uint8Array): Uint8Array {
  return new TextEncoder().encode(new TextDecoder().decode(chunk).toUpperCase());
}
