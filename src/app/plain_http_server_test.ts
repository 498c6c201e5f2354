import * as net from "node:net";
import { Buffer } from "node:buffer";
import assert from "node:assert/strict";
import {
  fetchHandler,
  parseRequestHead,
  readinessRoutes,
  routesHandler,
  servePlainHttp,
} from "./plain_http_server.ts";

let ready = false;
const probes = routesHandler(readinessRoutes({
  readiness: () => ({ ready, waitingFor: ready ? [] : ["xds"] }),
}));

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

const parse = (s: string) => parseRequestHead(Buffer.from(`${s}\r\n\r\n`, "latin1"));
const head = (s: string) => {
  const h = parse(s);
  assert.ok(h, s);
  return h;
};

Deno.test("plain HTTP server: request heads, keep-alive and bodies that are never read", () => {
  const h = head("GET /healthz/ready?x=1 HTTP/1.1\r\nHost: a\r\nX-Two: b ");
  assert.deepEqual(h, {
    method: "GET",
    target: "/healthz/ready?x=1",
    headers: [["Host", "a"], ["X-Two", "b"]],
    keepAlive: true,
  });
  assert.equal(head("GET / HTTP/1.0").keepAlive, false);
  assert.equal(head("GET / HTTP/1.0\r\nConnection: keep-alive").keepAlive, true);
  assert.equal(head("GET / HTTP/1.1\r\nconnection: close").keepAlive, false);
  // A body is never read: the connection is not reused after it.
  assert.equal(head("POST / HTTP/1.1\r\ncontent-length: 5").keepAlive, false);
  assert.equal(head("POST / HTTP/1.1\r\ncontent-length: 0").keepAlive, true);
  assert.equal(head("POST / HTTP/1.1\r\ntransfer-encoding: chunked").keepAlive, false);
  for (
    const bad of [
      "GET /healthz/ready",
      "GET /healthz/ready HTTP/2.0",
      "GET  /healthz/ready HTTP/1.1",
      "G(T /healthz/ready HTTP/1.1",
      "GET / HTTP/1.1\r\n folded: line",
      "GET / HTTP/1.1\r\nno-colon",
      "GET / HTTP/1.1\r\n: empty name",
      "GET / HTTP/1.1\r\nbad name: x",
    ]
  ) {
    assert.equal(parse(bad), undefined, bad);
  }
});

Deno.test("plain HTTP server: readiness and liveness routes", async () => {
  ready = false;
  const notReady = await probes(head("GET /healthz/ready HTTP/1.1"));
  assert.deepEqual([notReady.status, notReady.body], [503, "not ready: xds\n"]);
  ready = true;
  assert.equal((await probes(head("GET /healthz/ready?x=1 HTTP/1.1"))).status, 200);
  assert.equal((await probes(head("HEAD /healthz/live HTTP/1.1"))).status, 200);
  assert.equal((await probes(head("POST /healthz/ready HTTP/1.1"))).status, 404);
  assert.equal((await probes(head("GET /other HTTP/1.1"))).status, 404);
});

Deno.test("plain HTTP server on a socket: pipelining in order, HEAD, close, 400, 431", async () => {
  ready = true;
  const server = await servePlainHttp("127.0.0.1:0", probes);
  try {
    // Three pipelined requests, the last one closing: three answers in order, then the close.
    const three = await exchange(
      server.port,
      "GET /healthz/ready HTTP/1.1\r\nhost: a\r\n\r\n" +
        "HEAD /healthz/live HTTP/1.1\r\nhost: a\r\n\r\n" +
        "GET /healthz/live HTTP/1.1\r\nhost: a\r\nconnection: close\r\n\r\n",
    );
    assert.equal(three.match(/HTTP\/1\.1 200 OK/g)?.length, 3);
    assert.match(three, /content-length: 6\r\n[^]*\r\n\r\nready\nHTTP\/1\.1 200 OK/);
    // HEAD: the length of the body it would have had, and no body.
    assert.match(three, /content-length: 5\r\n[^]*\r\n\r\nHTTP\/1\.1 200 OK/);
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

Deno.test("plain HTTP server: a fetch app behind it, answers in order, graceful close", async () => {
  let release = (): void => {};
  const held = new Promise<void>((r) => release = r);
  const server = await servePlainHttp(
    "127.0.0.1:0",
    fetchHandler(async (req) => {
      const url = new URL(req.url);
      if (url.pathname === "/slow") await held;
      return new Response(`${req.method} ${url.pathname}${url.search} ${req.headers.get("host")}`, {
        status: url.pathname === "/missing" ? 404 : 200,
        headers: { "content-type": "text/x-test", "x-app": "1", "content-length": "999" },
      });
    }),
  );
  try {
    const two = await exchange(
      server.port,
      "POST /a?b=1 HTTP/1.1\r\nHost: h:1\r\n\r\nGET /missing HTTP/1.1\r\nHost: h:1\r\nConnection: close\r\n\r\n",
    );
    assert.match(two, /^HTTP\/1\.1 200 OK\r\ncontent-type: text\/x-test\r\nx-app: 1\r\n/);
    assert.match(
      two,
      /content-length: 15\r\n[^]*\r\n\r\nPOST \/a\?b=1 h:1HTTP\/1\.1 404 Not Found/,
    );
    assert.ok(!two.includes("999"), "the app's own framing fields are not sent");
    // Not a path, or a method the Fetch API refuses: 400.
    assert.match(await exchange(server.port, "GET http://x/ HTTP/1.1\r\n\r\n"), /^HTTP\/1\.1 400 /);
    assert.match(await exchange(server.port, "TRACE / HTTP/1.1\r\n\r\n"), /^HTTP\/1\.1 400 /);
    // The app sees the method as sent: `post` is not POST (the Fetch API would make it one), and
    // a method the runtime's Request does not keep (Bun makes BREW a GET) is not served.
    // (Either the method as sent reaches the app, or the answer is 501.)
    for (const m of ["post", "BREW", "PATCH"]) {
      const answer = await exchange(server.port, `${m} /a HTTP/1.1\r\nConnection: close\r\n\r\n`);
      const status = answer.slice(9, 12);
      assert.ok(status === "501" || answer.endsWith(`${m} /a null`), `${m}: ${answer}`);
      if (m === "post") assert.equal(status, "501");
    }

    // An answer still being made when the server closes reaches its client, then the close.
    const answer = exchange(server.port, "GET /slow HTTP/1.1\r\nHost: h:1\r\n\r\n", 5000);
    await new Promise((r) => setTimeout(r, 100));
    const closing = server.close();
    release();
    await closing;
    assert.match(await answer, /^HTTP\/1\.1 200 OK[^]*connection: close\r\n[^]*GET \/slow h:1$/);
  } finally {
    release();
    await server.close();
  }
});
