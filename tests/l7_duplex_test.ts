/**
 * The HTTP/1.1 proxy is full duplex with its upstream, as Envoy: a response that starts while the
 * request body is still arriving goes downstream at once (an upstream that answers before it has
 * read the whole request — an echo whose socket buffers fill, a server that streams — must not
 * wait on a proxy that reads no response until the request is sent), and an upstream that closes
 * mid-request ends the exchange promptly instead of leaving the copy waiting on a dead socket.
 * Each runs on Deno (node:net) and on Bun's native sockets (tests/support/bun_l7_proxy.ts).
 */
import assert from "node:assert/strict";
import http from "node:http";
import http2 from "node:http2";
import net from "node:net";
import type { AddressInfo } from "node:net";
import { Buffer } from "node:buffer";
import { bunPath } from "./support/weft_proc.ts";
import { startBunProxy } from "./support/bun_l7.ts";
import { startNodeProxy } from "./support/node_l7.ts";
import { within } from "./support/within.ts";

const BUN = bunPath();

/** A raw upstream. A chunked request is answered at once with a head and a first chunk
 * ("early"), and ended when its last chunk arrives; any other request gets "ok". With `reset`,
 * a request with a body is cut (the socket destroyed) after 64 KiB of it. */
async function rawUpstream(reset = false): Promise<{ port: number; close(): Promise<void> }> {
  const sockets = new Set<net.Socket>();
  const server = net.createServer((s) => {
    sockets.add(s);
    s.on("close", () => sockets.delete(s));
    s.on("error", () => {});
    let buf = Buffer.alloc(0);
    let inBody = false;
    let bodyBytes = 0;
    s.on("data", (c: Buffer) => {
      buf = Buffer.concat([buf, c]);
      for (;;) {
        if (!inBody) {
          const end = buf.indexOf("\r\n\r\n");
          if (end < 0) return;
          const head = buf.subarray(0, end).toString("latin1");
          buf = buf.subarray(end + 4);
          if (/\r\n(transfer-encoding: *chunked|content-length: *[1-9])/i.test(head)) {
            inBody = true;
            bodyBytes = 0;
            if (!reset) {
              s.write("HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\n5\r\nearly\r\n");
            }
          } else s.write("HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\nok");
          continue;
        }
        bodyBytes += buf.length;
        if (reset && bodyBytes >= 64 * 1024) return void s.destroy();
        const last = buf.indexOf("0\r\n\r\n");
        if (last < 0) {
          buf = buf.subarray(Math.max(0, buf.length - 4));
          return;
        }
        buf = buf.subarray(last + 5);
        inBody = false;
        s.write("0\r\n\r\n");
      }
    });
  });
  await new Promise<void>((r) => server.listen(0, "127.0.0.1", r));
  return {
    port: (server.address() as AddressInfo).port,
    close: async () => {
      for (const s of sockets) s.destroy();
      await new Promise((r) => server.close(r));
    },
  };
}

/** A raw client connection: what it received so far, and a wait for a pattern in it. */
async function rawConn(port: number): Promise<{
  s: net.Socket;
  seen(re: RegExp, what: string): Promise<string>;
  closed: Promise<void>;
}> {
  const s = net.connect(port, "127.0.0.1");
  s.on("error", () => {});
  await new Promise<void>((r) => s.once("connect", r));
  let text = "";
  let wake = (): void => {};
  const closed = new Promise<void>((r) => s.once("close", () => r()));
  s.on("data", (c: Buffer) => {
    text += c.toString("latin1");
    wake();
  });
  void closed.then(() => wake());
  return {
    s,
    closed,
    seen: (re, what) =>
      within(
        10_000,
        what,
        (async () => {
          while (!re.test(text)) await new Promise<void>((r) => (wake = r));
          const all = text;
          text = "";
          return all;
        })(),
      ),
  };
}

async function responseBeforeRequestEnds(port: number): Promise<void> {
  const c = await rawConn(port);
  try {
    c.s.write(
      "POST /stream HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nfirst\r\n",
    );
    // Before the fix the proxy read no response until the request body had ended: this waited.
    const early = await c.seen(
      /\r\n\r\n5\r\nearly\r\n/,
      "the response head before the request ends",
    );
    assert.match(early, /^HTTP\/1\.1 200 OK\r\n/);
    c.s.write("6\r\nsecond\r\n0\r\n\r\n");
    await c.seen(/0\r\n\r\n$/, "the end of the response");
    // The connection stays usable (the request was read whole, the response sent whole).
    c.s.write("GET /next HTTP/1.1\r\nHost: a\r\n\r\n");
    assert.match(await c.seen(/\r\n\r\nok$/, "the next request's answer"), /^HTTP\/1\.1 200 /);
  } finally {
    c.s.destroy();
  }
}

async function upstreamResetMidRequest(port: number): Promise<void> {
  const c = await rawConn(port);
  try {
    c.s.write("POST /upload HTTP/1.1\r\nHost: a\r\nContent-Length: 4194304\r\n\r\n");
    const piece = Buffer.alloc(64 * 1024, 0x61);
    // The client writes on (it does not wait for drain: the kernel buffers what the proxy leaves
    // unread) — before the fix the proxy's copy waited for a `drain` of the dead upstream socket.
    for (let i = 0; i < 64 && !c.s.destroyed; i++) c.s.write(piece);
    const got = await c.seen(/\r\n\r\n/, "an answer after the upstream reset mid-request");
    assert.match(got, /^HTTP\/1\.1 503 /);
    assert.match(got, /\r\nconnection: close\r\n/i);
    await within(10_000, "the downstream closed after the 503", c.closed);
  } finally {
    c.s.destroy();
  }
}

/** An upstream that echoes each request body as it reads it (node:http, `req.pipe(res)`). */
async function echoUpstream(): Promise<{ port: number; close(): Promise<void> }> {
  const sockets = new Set<net.Socket>();
  const server = http.createServer((req, res) => {
    res.writeHead(200, { "content-type": "application/octet-stream" });
    req.pipe(res);
  });
  server.on("connection", (s: net.Socket) => {
    sockets.add(s);
    s.on("close", () => sockets.delete(s));
  });
  await new Promise<void>((r) => server.listen(0, "127.0.0.1", r));
  return {
    port: (server.address() as AddressInfo).port,
    close: async () => {
      for (const s of sockets) s.destroy();
      await new Promise((r) => server.close(r));
    },
  };
}

/** More than the socket buffers of both directions hold (here a 14 MiB echo already hung
 * before the fix; the kernel's autotuning decides where exactly). */
const ECHO_BYTES = 48 << 20;

async function bigEcho(port: number): Promise<void> {
  const piece = Buffer.alloc(64 * 1024, 0x62);
  let got = 0;
  await within(
    30_000,
    `a ${ECHO_BYTES >> 20} MiB echo`,
    new Promise<void>((resolve, reject) => {
      const req = http.request({
        host: "127.0.0.1",
        port,
        method: "POST",
        path: "/echo",
        headers: { "transfer-encoding": "chunked" },
      }, (res) => {
        res.on("data", (c: Buffer) => (got += c.length));
        res.on("end", resolve);
        res.on("error", reject);
      });
      req.on("error", reject);
      void (async () => {
        for (let at = 0; at < ECHO_BYTES; at += piece.length) {
          if (!req.write(piece)) await new Promise((r) => req.once("drain", r));
        }
        req.end();
      })().catch(reject);
    }),
  );
  assert.equal(got, ECHO_BYTES);
}

/** An upstream that streams an endless chunked response; `closed` settles when the proxy closes
 * the connection it streams on. */
async function endlessUpstream(): Promise<
  { port: number; closed: Promise<void>; close(): Promise<void> }
> {
  const sockets = new Set<net.Socket>();
  let onClosed = (): void => {};
  const closed = new Promise<void>((r) => (onClosed = r));
  const piece = Buffer.alloc(16 * 1024, 0x63);
  const server = net.createServer((s) => {
    sockets.add(s);
    s.on("error", () => {});
    let timer: ReturnType<typeof setInterval> | undefined;
    s.on("close", () => {
      clearInterval(timer);
      sockets.delete(s);
      onClosed();
    });
    s.once("data", () => {
      s.write("HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\n");
      timer = setInterval(() => {
        if (!s.destroyed) s.write(`4000\r\n${piece.toString("latin1")}\r\n`);
      }, 1);
    });
  });
  await new Promise<void>((r) => server.listen(0, "127.0.0.1", r));
  return {
    port: (server.address() as AddressInfo).port,
    closed,
    close: async () => {
      for (const s of sockets) s.destroy();
      await new Promise((r) => server.close(r));
    },
  };
}

async function clientLeavesMidResponse(port: number, upClosed: Promise<void>): Promise<void> {
  const c = await rawConn(port);
  c.s.write("GET /endless HTTP/1.1\r\nHost: a\r\n\r\n");
  await c.seen(/\r\n\r\n/, "the head of the endless response");
  c.s.destroy();
  // Before: the proxy went on reading the response into the dead client socket (or, on Bun,
  // waited for its drain) and the upstream connection stayed open.
  await within(10_000, "the upstream connection closed after the client left", upClosed);
}

/** One scenario on one runtime's proxy (Deno: node:net sockets; Bun: its native sockets) in
 * front of its own upstream; a proxy that logged an unhandled error fails it. */
function duplexTest<U extends { port: number; close(): Promise<void> }>(
  runtime: "deno" | "bun",
  what: string,
  upstream: () => Promise<U>,
  scenario: (proxyPort: number, up: U) => Promise<void>,
): void {
  Deno.test({
    name: `duplex (${runtime}): ${what}`,
    ignore: runtime === "bun" && BUN === undefined,
    fn: async () => {
      const up = await upstream();
      const proxy = runtime === "bun"
        ? await startBunProxy(up.port, 10_000)
        : await startNodeProxy(up.port);
      try {
        await scenario(proxy.port, up);
      } finally {
        const out = await proxy.stop();
        await up.close();
        assert.ok(!/unhandled/i.test(out), `the proxy logged: ${out}`);
      }
    },
  });
}

for (const runtime of ["deno", "bun"] as const) {
  duplexTest(
    runtime,
    "a response that starts before the request body ends goes downstream at once; the " +
      "connection stays usable",
    () => rawUpstream(),
    responseBeforeRequestEnds,
  );
  duplexTest(
    runtime,
    "an upstream that resets mid-request body ends the exchange with a 503 and a close, " +
      "without waiting on the dead socket",
    () => rawUpstream(true),
    upstreamResetMidRequest,
  );
  duplexTest(
    runtime,
    "a client that leaves mid-response gets the upstream connection closed at once",
    endlessUpstream,
    (port, up) => clientLeavesMidResponse(port, up.closed),
  );
  duplexTest(
    runtime,
    "an echo larger than the socket buffers of both directions completes (the response " +
      "streams while the request is sent)",
    echoUpstream,
    bigEcho,
  );
}

// The same under a route policy (route_exchange.ts: timeout and retries): a streamed body is not
// replayable, so it goes once, duplex as without a policy. Deno only: the policy is the same
// code on both runtimes, the sockets are covered above.
for (
  const [what, policy] of [
    ["a route timeout", { match: [], timeoutMs: 20_000, retries: undefined }],
    ["retries", {
      match: [],
      timeoutMs: undefined,
      retries: { attempts: 2, perTryTimeoutMs: 20_000, retryOn: ["5xx"] },
    }],
  ] as const
) {
  Deno.test(`duplex (deno, ${what}): the response starts before the request body ends`, async () => {
    const up = await rawUpstream();
    const proxy = await startNodeProxy(up.port, { routePolicy: () => policy });
    try {
      await responseBeforeRequestEnds(proxy.port);
    } finally {
      await proxy.stop();
      await up.close();
    }
  });
  Deno.test(`duplex (deno, ${what}): an echo larger than the socket buffers completes`, async () => {
    const up = await echoUpstream();
    const proxy = await startNodeProxy(up.port, { routePolicy: () => policy });
    try {
      await bigEcho(proxy.port);
    } finally {
      await proxy.stop();
      await up.close();
    }
  });
}

Deno.test("duplex (deno, h2c downstream to HTTP/1.1): the response starts before the request body ends", async () => {
  const up = await rawUpstream();
  const proxy = await startNodeProxy(up.port);
  const s = http2.connect(`http://127.0.0.1:${proxy.port}`);
  try {
    const req = s.request({ ":method": "POST", ":path": "/stream" });
    let body = "";
    req.setEncoding("utf8");
    req.on("data", (c: string) => (body += c));
    const ended = new Promise<void>((r, fail) => {
      req.on("end", r);
      req.on("error", fail);
    });
    req.write("first");
    // Before the fix the proxy read no response until the request's END_STREAM.
    const head = await within(
      10_000,
      "the response head before the request ends",
      new Promise<http2.IncomingHttpHeaders>((r) => req.once("response", r)),
    );
    assert.equal(head[":status"], 200);
    req.end("second");
    await within(10_000, "the end of the response", ended);
    assert.equal(body, "early");
  } finally {
    // destroy, not close: a stream left open by a failure must not hold the test.
    await new Promise<void>((r) => {
      s.once("close", () => r());
      s.destroy();
    });
    await proxy.stop();
    await up.close();
  }
});
