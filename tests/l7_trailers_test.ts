/**
 * HTTP/1.1 chunked trailers through weft's HttpProxy (in-process, on a real TCP listener) in
 * front of a real TCP upstream that records what it receives, with raw sockets on both sides:
 * trailers go through in both directions (with and without a streaming body filter), forbidden
 * trailer fields (RFC 9110 §6.5.1) are dropped, malformed or oversize trailer sections are
 * refused like a bad head (400/431, nothing reaches the upstream).
 */
import assert from "node:assert/strict";
import {
  chunkedEnd,
  exchange,
  startRig,
  trailerMap,
  trailerSection,
} from "./support/trailer_rig.ts";
import { ref, testFilter } from "./support/proxy_wasm_kit.ts";
import { upperCaseBodies } from "./support/l7_harness.ts";
import { createProxyWasmFilter } from "../src/filters/proxy_wasm/mod.ts";

const REQUEST =
  "POST /up HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\nTrailer: x-sum\r\n\r\n" +
  "5\r\nhello\r\n0\r\nx-sum: 42\r\nHost: evil\r\nTransfer-Encoding: chunked\r\n\r\n";

for (
  const [label, filters] of [["no filter", []], ["streaming filter", [upperCaseBodies]]] as const
) {
  Deno.test(`trailers: request and response trailers go through, forbidden ones dropped (${label})`, async () => {
    const rig = await startRig([...filters]);
    try {
      const res = await exchange(rig.port, REQUEST);
      assert.match(res, /^HTTP\/1\.1 200 /);
      assert.equal(trailerSection(res), "x-checksum: abc\r\nX-Extra: v w\r\n\r\n");
      const up = rig.received();
      assert.equal(trailerSection(up), "x-sum: 42\r\n\r\n");
      assert.match(up, filters.length ? /\r\nHELLO\r\n/ : /\r\nhello\r\n/);
      assert.match(res, filters.length ? /\r\nOK\r\n/ : /\r\nok\r\n/);
      // The connection is reusable after a trailer section: a second exchange works.
      const again = await exchange(rig.port, REQUEST);
      assert.equal(trailerSection(again), "x-checksum: abc\r\nX-Extra: v w\r\n\r\n");
    } finally {
      await rig.close();
    }
  });
}

Deno.test("trailers: malformed or oversize trailer sections are refused and reach nothing", async () => {
  const rig = await startRig();
  const pre = "POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n0\r\n";
  const cases: [string, string, number][] = [
    ["space before colon", "x-a : 1\r\n\r\n", 400],
    ["obsolete folding", "x-a: 1\r\n  more\r\n\r\n", 400],
    ["no colon", "x-a\r\n\r\n", 400],
    ["control character", "x-a: 1\x01\r\n\r\n", 400],
    ["bare LF", "x-a: 1\n\r\n", 400],
    ["too many", "x-a: 1\r\n".repeat(101) + "\r\n", 431],
    ["too large", `x-a: ${"v".repeat(4000)}\r\n`.repeat(16) + "\r\n", 431],
  ];
  try {
    for (const [what, trailers, status] of cases) {
      const res = await exchange(rig.port, pre + trailers);
      assert.match(res, new RegExp(`^HTTP/1\\.1 ${status} `), what);
    }
    assert.equal(rig.received(), "", "nothing reached the upstream");
  } finally {
    await rig.close();
  }
});

for (const bodies of [false, true]) {
  Deno.test(`trailers: a C proxy-wasm filter reads and adds trailers end to end (bodies ${bodies})`, async () => {
    const f = await createProxyWasmFilter(ref("test-filter", await testFilter(), {}), { bodies });
    const rig = await startRig([f]);
    try {
      const req = REQUEST.replace("Host: a\r\n", "Host: a\r\nx-test: trailers\r\n");
      const res = await exchange(rig.port, req);
      assert.match(res, /^HTTP\/1\.1 200 /);
      const up = trailerMap(rig.received());
      assert.deepEqual(Object.fromEntries(up), {
        "x-sum": "42",
        "x-wasm-sum": "42",
        "x-wasm-count": "1",
      });
      const down = trailerMap(res);
      assert.equal(down.get("x-checksum"), "wasm");
      assert.equal(down.get("x-extra"), "v w");
      assert.equal(down.get("x-wasm-response-count"), "2");
      assert.equal(down.has("content-length"), false, "forbidden trailer set by a filter dropped");
      assert.match(res, /\r\nok\r\n/);
      // Without trailers the callbacks are not called and nothing changes.
      const plain = await exchange(rig.port, req.replace(/0\r\nx-sum[^]*$/, "0\r\n\r\n"));
      assert.match(plain, /^HTTP\/1\.1 200 /);
    } finally {
      await rig.close();
      f.close();
    }
  });
}

// A local reply from a proxy-wasm trailers callback (Envoy's decodeTrailers/encodeTrailers):
// the request is answered; a response already under way is reset, a buffered one answered.
for (const bodies of [false, true, "streamed"] as const) {
  Deno.test(`trailers: a proxy-wasm local reply from the trailers callbacks (bodies ${bodies})`, async () => {
    const f = await createProxyWasmFilter(ref("test-filter", await testFilter(), {}), { bodies });
    const rig = await startRig([f]);
    const { default: http2 } = await import("node:http2");
    const { h2Call, closeSession } = await import("./support/h2c_client.ts");
    const s = http2.connect(`http://127.0.0.1:${rig.port}`);
    try {
      const req = REQUEST.replace("Host: a\r\n", "Host: a\r\nx-test: trailers-local\r\n");
      const res = await exchange(rig.port, req);
      assert.match(res, /^HTTP\/1\.1 403 /, "request trailers answered locally");
      assert.match(res, /denied by trailers\n$/);
      const h2 = await h2Call(s, "/up", {
        headers: { "x-test": "trailers-local" },
        body: ["hello"],
        trailers: { "x-sum": "42" },
      });
      assert.equal(h2.status, 403, "h2c: the same");
      // No request trailers: the response's trailers callback answers.
      const late = await exchange(rig.port, req.replace(/0\r\nx-sum[^]*$/, "0\r\n\r\n"));
      if (bodies !== "streamed") {
        // Buffered, or arrived whole (held until its trailers were seen): nothing left yet.
        assert.match(late, /^HTTP\/1\.1 403 /, "response not started: answered");
      } else {
        assert.match(late, /^HTTP\/1\.1 200 /);
        assert.equal(chunkedEnd(late), -1, "response under way: reset before its trailers");
      }
    } finally {
      await closeSession(s).catch(() => {});
      await rig.close();
      f.close();
    }
  });
}
