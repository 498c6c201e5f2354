/**
 * Body and trailer callbacks in Envoy's order when a message has trailers: every body call has
 * end_of_stream false, then the trailers callback runs (Envoy's decodeData/encodeData then
 * decodeTrailers/encodeTrailers); a body the filter held (StopIterationAndBuffer) still goes on,
 * before the trailers. Without trailers the last body call has end_of_stream true, as before.
 * The C test filter ("seq" mode) logs each callback; HTTP/1.1 chunked and h2c downstreams, in
 * front of a real HTTP/1.1 upstream whose responses always carry trailers (trailer_rig.ts).
 */
import assert from "node:assert/strict";
import net from "node:net";
import http2 from "node:http2";
import type { Buffer } from "node:buffer";
import { chunkedEnd, startRig, trailerMap } from "./support/trailer_rig.ts";
import { ref, testFilter } from "./support/proxy_wasm_kit.ts";
import { closeSession, h2Call } from "./support/h2c_client.ts";
import { createProxyWasmFilter } from "../src/filters/proxy_wasm/mod.ts";
import { setLogSink } from "../src/core/mod.ts";

const HEAD = "POST /up HTTP/1.1\r\nHost: a\r\nx-test: seq\r\nTransfer-Encoding: chunked\r\n\r\n";
const WITH_TRAILERS = HEAD + "5\r\nhello\r\n0\r\nx-sum: 42\r\n\r\n";
const WITHOUT = HEAD + "5\r\nhello\r\n0\r\n\r\n";

async function exchange(port: number, req: string): Promise<string> {
  const s = net.connect(port, "127.0.0.1");
  s.on("error", () => {});
  let text = "";
  let timer: ReturnType<typeof setTimeout> | undefined;
  await new Promise<void>((done) => {
    timer = setTimeout(done, 3000);
    s.on("data", (c: Buffer) => {
      text += c.toString("latin1");
      if (chunkedEnd(text) >= 0) done();
    });
    s.on("close", () => done());
    s.write(req);
  });
  clearTimeout(timer);
  s.destroy();
  return text;
}

/** The "seq" lines the guest logged, headers without their count (it differs by wire). */
function callbacks(lines: string[]): string[] {
  const out: string[] = [];
  for (const l of lines) {
    const m = /"seq ([a-z-]+) (\d+) ([01])"/.exec(l);
    if (!m) continue;
    const [what, n, eos] = [m[1]!, m[2]!, m[3]!];
    if (what.endsWith("headers")) out.push(`${what} eos=${eos}`);
    else if (what.endsWith("trailers")) out.push(`${what} ${n}`);
    else out.push(`${what} ${n} eos=${eos}`);
  }
  return out;
}

// The response always carries two trailers (x-checksum, x-extra) and a 2-byte body "ok".
const RESPONSE_SIDE = [
  "response-headers eos=0",
  "response-body 2 eos=0",
  "response-trailers 2",
];
const TRAILED = ["request-headers eos=0", "request-body 5 eos=0", "request-trailers 1"];
const EXPECT = {
  trailers: [...TRAILED, ...RESPONSE_SIDE],
  none: {
    streamed: ["request-headers eos=0", "request-body 5 eos=0", "request-body 5 eos=1"],
    buffered: ["request-headers eos=0", "request-body 5 eos=1"],
  },
};

for (const bodies of ["streamed", "buffered"] as const) {
  Deno.test(`body/trailer callbacks in Envoy's order, HTTP/1.1 and h2c (bodies ${bodies})`, async () => {
    const lines: string[] = [];
    const restore = setLogSink((l) => lines.push(l));
    const f = await createProxyWasmFilter(ref("test-filter", await testFilter(), {}), {
      bodies: bodies === "streamed" ? "streamed" : true,
    });
    const rig = await startRig([f]);
    const s = http2.connect(`http://127.0.0.1:${rig.port}`);
    try {
      const res = await exchange(rig.port, WITH_TRAILERS);
      assert.match(res, /^HTTP\/1\.1 200 /);
      assert.deepEqual(callbacks(lines), EXPECT.trailers, "HTTP/1.1 with trailers");
      assert.match(rig.received(), /\r\nhello\r\n/, "the held body went on");
      assert.equal(trailerMap(rig.received()).get("x-sum"), "42");
      assert.match(res, /\r\nok\r\n/, "the held response body went on");
      assert.equal(trailerMap(res).get("x-checksum"), "abc");

      lines.length = 0;
      await exchange(rig.port, WITHOUT);
      assert.deepEqual(
        callbacks(lines),
        [...EXPECT.none[bodies], ...RESPONSE_SIDE],
        "HTTP/1.1 without request trailers: the last body call ends the stream",
      );

      lines.length = 0;
      const h2 = await h2Call(s, "/up", {
        headers: { "x-test": "seq" },
        body: ["hello"],
        trailers: { "x-sum": "42" },
      });
      assert.equal(h2.status, 200);
      assert.equal(h2.body, "ok");
      assert.equal(h2.trailers["x-checksum"], "abc");
      assert.deepEqual(callbacks(lines), EXPECT.trailers, "h2c with trailers");

      lines.length = 0;
      const plain = await h2Call(s, "/up", { headers: { "x-test": "seq" }, body: ["hello"] });
      assert.equal(plain.body, "ok");
      assert.deepEqual(
        callbacks(lines),
        [...EXPECT.none[bodies], ...RESPONSE_SIDE],
        "h2c without request trailers",
      );
    } finally {
      restore();
      await closeSession(s).catch(() => {});
      await rig.close();
      f.close();
    }
  });
}
