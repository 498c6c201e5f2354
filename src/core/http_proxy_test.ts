/**
 * Keep-alive latency of HttpProxy: sequential requests on one downstream connection must not
 * stall on Nagle + delayed ACK (~40 ms per request when a head and its body leave in separate
 * small writes on a socket without TCP_NODELAY).
 */
import assert from "node:assert/strict";
import net from "node:net";
import { Buffer } from "node:buffer";
import { startL7 } from "../../tests/support/l7_harness.ts";

/** One raw keep-alive client connection: send a request, read one whole response. */
async function rawClient(port: number): Promise<{
  roundTrip(req: string): Promise<{ head: string; body: string }>;
  close(): void;
}> {
  const s = net.connect(port, "127.0.0.1");
  await new Promise<void>((ok, fail) => {
    s.once("connect", ok);
    s.once("error", fail);
  });
  let buf = Buffer.alloc(0);
  let wake: (() => void) | undefined;
  let ended = false;
  s.on("data", (c: Buffer) => {
    buf = Buffer.concat([buf, c]);
    wake?.();
  });
  s.on("close", () => {
    ended = true;
    wake?.();
  });
  /** One complete response (content-length or chunked) off the front of `buf`, if there. */
  const takeResponse = (): { head: string; body: string } | undefined => {
    const end = buf.indexOf("\r\n\r\n");
    if (end < 0) return undefined;
    const head = buf.subarray(0, end).toString("latin1");
    let at = end + 4;
    let body = "";
    if (/\r\ntransfer-encoding: *chunked/i.test(head)) {
      for (;;) {
        const nl = buf.indexOf("\r\n", at);
        if (nl < 0) return undefined;
        const size = parseInt(buf.subarray(at, nl).toString("latin1"), 16);
        if (buf.length < nl + 2 + size + 2) return undefined;
        body += buf.subarray(nl + 2, nl + 2 + size).toString();
        at = nl + 2 + size + 2;
        if (size === 0) break;
      }
    } else {
      const len = Number(/\r\ncontent-length: *(\d+)/i.exec(head)?.[1] ?? "0");
      if (buf.length < at + len) return undefined;
      body = buf.subarray(at, at + len).toString();
      at += len;
    }
    buf = buf.subarray(at);
    return { head, body };
  };
  return {
    async roundTrip(req) {
      s.write(req);
      for (;;) {
        const res = takeResponse();
        if (res) return res;
        assert.ok(!ended, "connection closed before a full response");
        await new Promise<void>((r) => (wake = r));
      }
    },
    close: () => s.destroy(),
  };
}

const N = 100;
// A 40 ms stall per request would take 4 s; without one, 100 loopback requests take ~50 ms.
// 1 s leaves a wide margin for a loaded machine.
const BOUND_MS = 1000;

Deno.test("HttpProxy: keep-alive requests with bodies do not stall (content-length and chunked)", async () => {
  const h = await startL7([]);
  const c = await rawClient(Number(new URL(h.url).port));
  try {
    const shapes = {
      "content-length": "POST /cl HTTP/1.1\r\nhost: a\r\ncontent-length: 5\r\n\r\nhello",
      chunked:
        "POST /ch HTTP/1.1\r\nhost: a\r\ntransfer-encoding: chunked\r\n\r\n5\r\nhello\r\n0\r\n\r\n",
      "no body": "GET /get HTTP/1.1\r\nhost: a\r\n\r\n",
    };
    for (const [shape, req] of Object.entries(shapes)) {
      const t0 = performance.now();
      for (let i = 0; i < N; i++) {
        const res = await c.roundTrip(req);
        assert.match(res.head, /^HTTP\/1\.1 200 /, shape);
        assert.equal(JSON.parse(res.body).method, req.slice(0, req.indexOf(" ")), shape);
      }
      const ms = performance.now() - t0;
      assert.ok(ms < BOUND_MS, `${N} keep-alive ${shape} requests took ${ms.toFixed(0)} ms`);
    }
    assert.equal(h.routes.length, 1, "one upstream connection, reused for every request");
  } finally {
    c.close();
    await h.close();
  }
});
