/**
 * A response cut short on an h2c downstream reaches the client as a stream reset, never as a clean
 * end: weft's HTTP/2 ends a stream (END_STREAM) when it is destroyed without an error after the
 * peer ended its side (src/core/h2/tunnel.ts), so every L7 site that cuts a response must destroy
 * with an error code. Here the route timeout fires after a chunked HTTP/1.1 upstream sent its head
 * and part of its body (http2_to_http1.ts guardResponse): without a reset the client would take
 * the part for the whole response.
 */
import assert from "node:assert/strict";
import http2 from "node:http2";
import net from "node:net";
import type { AddressInfo } from "node:net";
import type { Duplex } from "node:stream";
import { FilterChain, HttpProxy, type RoutePolicy } from "../src/core/mod.ts";
import { TEST_PEER } from "./support/filter_context.ts";
import { closeSession } from "./support/h2c_client.ts";
import { within } from "./support/within.ts";

const listen = (s: net.Server): Promise<number> =>
  new Promise((r) => s.listen(0, "127.0.0.1", () => r((s.address() as AddressInfo).port)));

/** An HTTP/1.1 upstream (`onRequest` answers each connection's first bytes, or not at all), weft's
 * HttpProxy in front of it with a route `timeoutMs`, and an h2c client session to the proxy. */
async function startCutRig(timeoutMs: number, onRequest: (s: net.Socket) => void) {
  const upSockets = new Set<net.Socket>();
  const upstream = net.createServer((s) => {
    upSockets.add(s);
    s.on("close", () => upSockets.delete(s));
    s.on("error", () => {});
    s.once("data", () => onRequest(s));
  });
  const upPort = await listen(upstream);
  const policy: RoutePolicy = { match: [], timeoutMs, retries: undefined };
  const proxy = new HttpProxy({
    chain: () => new FilterChain([]),
    direction: "outbound",
    routePolicy: () => policy,
    dialUpstream: () =>
      new Promise<Duplex>((ok, fail) => {
        const s = net.connect(upPort, "127.0.0.1");
        s.once("connect", () => ok(s));
        s.once("error", fail);
      }),
  });
  const frontSockets = new Set<net.Socket>();
  const front = net.createServer((s) => {
    frontSockets.add(s);
    s.on("close", () => frontSockets.delete(s));
    proxy.handle(s, TEST_PEER).catch(() => s.destroy());
  });
  const port = await listen(front);
  const session = http2.connect(`http://127.0.0.1:${port}`);
  session.on("error", () => {});
  return {
    session,
    close: async () => {
      await closeSession(session);
      proxy.close();
      for (const s of frontSockets) s.destroy();
      for (const s of upSockets) s.destroy();
      await new Promise((r) => front.close(r));
      await new Promise((r) => upstream.close(r));
    },
  };
}

Deno.test("h2c downstream: a response cut by the route timeout after its head is a reset (CANCEL), not a clean end", async () => {
  // Head and a first chunk, then nothing more (the rest never comes).
  const { session, close } = await startCutRig(300, (s) => {
    s.write("HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\n7\r\npartial\r\n");
  });
  try {
    // The stream's fate as the client sees it once it closes: its RST_STREAM code (NO_ERROR when
    // it ended cleanly) and what it read.
    const got = await within(
      5_000,
      "the cut response",
      new Promise<{ rstCode: number | undefined; body: string }>((resolve) => {
        const req = session.request({ ":path": "/", ":method": "GET" });
        let body = "";
        req.setEncoding("utf8");
        req.on("data", (c: string) => (body += c));
        req.on("error", () => {});
        req.on("close", () => resolve({ rstCode: req.rstCode, body }));
        req.end();
      }),
    );
    assert.deepEqual(got, { rstCode: http2.constants.NGHTTP2_CANCEL, body: "partial" });
  } finally {
    await close();
  }
});

Deno.test("h2c downstream: a gRPC request's local reply (route timeout) is trailers-only grpc-status 14, as Envoy's", async () => {
  const { session, close } = await startCutRig(200, (s) => s.resume()); // never answers
  try {
    const got = await within(
      5_000,
      "the gRPC reply",
      new Promise<Record<string, unknown>>((resolve) => {
        const req = session.request({
          ":path": "/pkg.Svc/Call",
          ":method": "POST",
          "content-type": "application/grpc",
          te: "trailers",
        });
        let head: http2.IncomingHttpHeaders = {};
        let bytes = 0;
        req.on("response", (h) => (head = h));
        req.on("data", (c: Uint8Array) => (bytes += c.length));
        req.on("error", () => {});
        req.on("close", () =>
          resolve({
            status: head[":status"],
            grpcStatus: head["grpc-status"],
            grpcMessage: head["grpc-message"],
            bytes,
            rstCode: req.rstCode,
          }));
        req.end(new Uint8Array([0, 0, 0, 0, 0]));
      }),
    );
    assert.deepEqual(got, {
      status: 200,
      grpcStatus: "14",
      grpcMessage: "upstream%20request%20timeout",
      bytes: 0,
      rstCode: http2.constants.NGHTTP2_NO_ERROR,
    });
  } finally {
    await close();
  }
});
