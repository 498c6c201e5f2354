import * as net from "node:net";
import { Buffer } from "node:buffer";
import assert from "node:assert/strict";
import { answerHead, readinessRoutes, servePlainHttp } from "./plain_http_server.ts";

let ready = false;
const routes = readinessRoutes({
  readiness: () => ({ ready, waitingFor: ready ? [] : ["xds"] }),
});

/** Write `bytes`, read until the server closes or `ms` pass; the whole answer as text. */
async function exchange(port: number, bytes: string, ms = 1500): Promise<string> {
  const sock = net.connect({ host: "127.0.0.1", port });
  const chunks: Buffer[] = [];
  sock.on("data", (c: Buffer) => chunks.push(c));
  sock.on("error", () => {});
  await new Promise<void>((resolve) => sock.once("connect", () => resolve()));
  sock.write(bytes);
  await new Promise<void>((resolve) => {
    const t = setTimeout(() => {
      sock.destroy();
      resolve();
    }, ms);
    sock.once("close", () => {
      clearTimeout(t);
      resolve();
    });
  });
  return Buffer.concat(chunks).toString("latin1");
}

Deno.test("plain HTTP responder: readiness, liveness, HEAD, 404 and malformed heads", () => {
  ready = false;
  const notReady = answerHead("GET /healthz/ready HTTP/1.1\r\nhost: x", routes);
  assert.deepEqual(notReady.answer.status, 503);
  assert.deepEqual(notReady.answer.body, "not ready: xds\n");
  assert.deepEqual(notReady.keepAlive, true);
  ready = true;
  assert.deepEqual(answerHead("GET /healthz/ready?x=1 HTTP/1.0", routes).answer.status, 200);
  assert.deepEqual(answerHead("GET /healthz/ready HTTP/1.0", routes).keepAlive, false);
  assert.deepEqual(
    answerHead("GET /healthz/live HTTP/1.0\r\nConnection: keep-alive", routes).keepAlive,
    true,
  );
  const head = answerHead("HEAD /healthz/live HTTP/1.1", routes);
  assert.deepEqual([head.answer.status, head.head], [200, true]);
  assert.deepEqual(answerHead("POST /healthz/ready HTTP/1.1", routes).answer.status, 404);
  assert.deepEqual(answerHead("GET /other HTTP/1.1", routes).answer.status, 404);
  // A body is never read: answered, and the connection is not reused.
  const withBody = answerHead("GET /healthz/ready HTTP/1.1\r\ncontent-length: 5", routes);
  assert.deepEqual([withBody.answer.status, withBody.keepAlive], [200, false]);
  const chunked = answerHead("GET /healthz/ready HTTP/1.1\r\ntransfer-encoding: chunked", routes);
  assert.deepEqual(chunked.keepAlive, false);
  for (
    const bad of [
      "GET /healthz/ready",
      "GET /healthz/ready HTTP/2.0",
      "GET  /healthz/ready HTTP/1.1",
      "G(T /healthz/ready HTTP/1.1",
      "GET /healthz/ready HTTP/1.1\r\n folded: line",
      "GET /healthz/ready HTTP/1.1\r\nno-colon",
      "GET /healthz/ready HTTP/1.1\r\n: empty name",
    ]
  ) {
    const r = answerHead(bad, routes);
    assert.deepEqual([r.answer.status, r.keepAlive], [400, false], bad);
  }
});

Deno.test("plain HTTP responder on a socket: keep-alive, pipelining, close, 431", async () => {
  ready = true;
  const server = await servePlainHttp("127.0.0.1:0", routes);
  try {
    // Two pipelined requests then one that closes: three answers, then the server closes.
    const three = await exchange(
      server.port,
      "GET /healthz/ready HTTP/1.1\r\nhost: a\r\n\r\n" +
        "HEAD /healthz/live HTTP/1.1\r\nhost: a\r\n\r\n" +
        "GET /healthz/live HTTP/1.1\r\nhost: a\r\nconnection: close\r\n\r\n",
    );
    assert.deepEqual(three.match(/HTTP\/1\.1 200 OK/g)?.length, 3);
    assert.match(three, /content-length: 6\r\n[^]*\r\n\r\nready\n/);
    assert.match(three, /connection: close\r\n[^]*\r\n\r\nlive\n$/);
    // A head that never ends is cut at the bound with 431 and the connection closed.
    const big = await exchange(
      server.port,
      `GET /healthz/ready HTTP/1.1\r\nx: ${"a".repeat(9000)}`,
    );
    assert.match(big, /^HTTP\/1\.1 431 /);
    const bad = await exchange(server.port, "BREW /pot HTCPCP/1.0\r\n\r\n");
    assert.match(bad, /^HTTP\/1\.1 400 [^]*connection: close/);
  } finally {
    await server.close();
  }
});
