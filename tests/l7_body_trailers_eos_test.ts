/**
 * Body and trailer callbacks in Envoy's order when a message has trailers: every body call has
 * end_of_stream false, then the trailers callback runs (Envoy's decodeData/encodeData then
 * decodeTrailers/encodeTrailers); a body the filter held (StopIterationAndBuffer) still goes on,
 * before the trailers. Without trailers the last body call has end_of_stream true, as before.
 * The C proxy-wasm test filter ("seq" mode) and a weft:filter@0.3.0 component built from C
 * (src/filters/component/testdata/body_seq) log each callback; HTTP/1.1 chunked and h2c
 * downstreams, in front of a real HTTP/1.1 upstream whose responses always carry trailers
 * (trailer_rig.ts).
 */
import assert from "node:assert/strict";
import http2 from "node:http2";
import { exchange, startRig, trailerMap } from "./support/trailer_rig.ts";
import { ref, testFilter } from "./support/proxy_wasm_kit.ts";
import { closeSession, h2Call } from "./support/h2c_client.ts";
import { createProxyWasmFilter } from "../src/filters/proxy_wasm/mod.ts";
import { type HttpFilter, setLogSink } from "../src/core/mod.ts";
import { join } from "node:path";
import { buildPlugin } from "../src/filters/plugin_build.ts";
import { loadComponent } from "../src/filters/component/component_loader.ts";
import { ComponentFilter, DEFAULT_SANDBOX } from "../src/filters/component/component_filter.ts";

// Importing src/filters evaluates jco, whose vendored tools start reading their own wasm files:
// let those reads finish here, before any test (the op sanitizer counts them otherwise).
await import("@bytecodealliance/jco-transpile");
await new Promise((r) => setTimeout(r, 100));

const HEAD = "POST /up HTTP/1.1\r\nHost: a\r\nx-test: seq\r\nTransfer-Encoding: chunked\r\n\r\n";
const WITH_TRAILERS = HEAD + "5\r\nhello\r\n0\r\nx-sum: 42\r\n\r\n";
const WITHOUT = HEAD + "5\r\nhello\r\n0\r\n\r\n";

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

// The response always carries two trailers (x-checksum, x-extra) and a 2-byte body "ok". The C
// proxy-wasm filter holds the body (StopIterationAndBuffer) until end of stream, so its last
// call sees the whole body again; the component sees each chunk and logs no counts for headers
// (they have no end-of-stream flag in WIT) and trailers.
type Kind = "proxy-wasm" | "component";
const trailerCount = (k: Kind, n: number) => (k === "proxy-wasm" ? n : 0);
const responseSide = (k: Kind) => [
  "response-headers eos=0",
  "response-body 2 eos=0",
  `response-trailers ${trailerCount(k, 2)}`,
];
const withTrailers = (k: Kind) => [
  "request-headers eos=0",
  "request-body 5 eos=0",
  `request-trailers ${trailerCount(k, 1)}`,
  ...responseSide(k),
];
const withoutRequestTrailers = (k: Kind, bodies: "streamed" | "buffered") => [
  "request-headers eos=0",
  ...(bodies === "buffered"
    ? ["request-body 5 eos=1"]
    : ["request-body 5 eos=0", `request-body ${k === "proxy-wasm" ? 5 : 0} eos=1`]),
  ...responseSide(k),
];

async function seqFilter(kind: Kind, bodies: "streamed" | "buffered"): Promise<HttpFilter> {
  if (kind === "proxy-wasm") {
    return await createProxyWasmFilter(ref("test-filter", await testFilter(), {}), {
      bodies: bodies === "streamed" ? "streamed" : true,
    });
  }
  const built = await buildPlugin(join(import.meta.dirname!, COMPONENT));
  const c = await loadComponent(built.bytes, { maxMemoryBytes: DEFAULT_SANDBOX.maxMemoryBytes });
  return await ComponentFilter.create("body-seq", "FAIL_CLOSE", c, bodies, DEFAULT_SANDBOX);
}
const COMPONENT = "../src/filters/component/testdata/body_seq";

for (const kind of ["proxy-wasm", "component"] as const) {
  for (const bodies of ["streamed", "buffered"] as const) {
    Deno.test(`body/trailer callbacks in Envoy's order, HTTP/1.1 and h2c (${kind}, bodies ${bodies})`, async () => {
      const lines: string[] = [];
      const restore = setLogSink((l) => lines.push(l));
      const f = await seqFilter(kind, bodies);
      const rig = await startRig([f]);
      const s = http2.connect(`http://127.0.0.1:${rig.port}`);
      try {
        const res = await exchange(rig.port, WITH_TRAILERS);
        assert.match(res, /^HTTP\/1\.1 200 /);
        assert.deepEqual(callbacks(lines), withTrailers(kind), "HTTP/1.1 with trailers");
        assert.match(rig.received(), /\r\nhello\r\n/, "the held body went on");
        assert.equal(trailerMap(rig.received()).get("x-sum"), "42");
        assert.match(res, /\r\nok\r\n/, "the held response body went on");
        assert.equal(trailerMap(res).get("x-checksum"), "abc");

        lines.length = 0;
        await exchange(rig.port, WITHOUT);
        assert.deepEqual(
          callbacks(lines),
          withoutRequestTrailers(kind, bodies),
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
        assert.deepEqual(callbacks(lines), withTrailers(kind), "h2c with trailers");

        lines.length = 0;
        const plain = await h2Call(s, "/up", { headers: { "x-test": "seq" }, body: ["hello"] });
        assert.equal(plain.body, "ok");
        assert.deepEqual(
          callbacks(lines),
          withoutRequestTrailers(kind, bodies),
          "h2c without request trailers",
        );
      } finally {
        restore();
        await closeSession(s).catch(() => {});
        await rig.close();
        f.close?.();
      }
    });
  }
}

Deno.test("body/trailer callbacks: a body held by one proxy-wasm filter reaches the next before its trailers", async () => {
  const lines: string[] = [];
  const restore = setLogSink((l) => lines.push(l));
  const wasm = await testFilter();
  const [a, b] = await Promise.all(
    ["seq-a", "seq-b"].map((n) => createProxyWasmFilter(ref(n, wasm, {}), { bodies: "streamed" })),
  );
  const rig = await startRig([a!, b!]);
  try {
    const res = await exchange(rig.port, WITH_TRAILERS);
    assert.match(res, /^HTTP\/1\.1 200 /);
    for (const name of ["seq-a", "seq-b"]) {
      const own = callbacks(lines.filter((l) => l.includes(`"plugin":"${name}"`)));
      assert.deepEqual(own, withTrailers("proxy-wasm"), name);
    }
    assert.match(rig.received(), /\r\nhello\r\n/, "held by both, then sent on");
    assert.match(res, /\r\nok\r\n/);
  } finally {
    restore();
    await rig.close();
    a!.close();
    b!.close();
  }
});
