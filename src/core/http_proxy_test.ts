/**
 * Keep-alive latency of HttpProxy: sequential requests on one downstream connection must not
 * stall on Nagle + delayed ACK (~40 ms per request when a head and its body leave in separate
 * small writes on a socket without TCP_NODELAY).
 */
import assert from "node:assert/strict";
import { startL7 } from "../../tests/support/l7_harness.ts";
import { rawClient } from "../../tests/support/raw_http_client.ts";

const N = 100;
// A 40 ms stall per request would take 4 s; without one, 100 loopback requests take ~50 ms
// (1.0–1.4 s at load ~20). 2.5 s leaves a margin for a loaded machine and still catches a stall.
const BOUND_MS = 2500;

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
