/**
 * weft:filter@0.3.0 trailers for WIT components, built from source (plugins/examples/c_trailers
 * in C, both bindings; js_trailers in JS when componentize-qjs is installed): the trailer maps
 * through the header calls and the trailers hooks, on HTTP/1.1 (chunked trailer sections) and h2c
 * (trailers frames, an HTTP/2 upstream's grpc-status included), a local reply from a trailers
 * hook; 0.1.0 and 0.2.0 components beside it keep trailers untouched.
 */
import assert from "node:assert/strict";
import http2 from "node:http2";
import type { HttpFilter } from "../src/core/mod.ts";
import { componentizeQjsPath } from "../src/filters/plugin_build.ts";
import { exampleFilter } from "./support/example_plugins.ts";
import { closeSession, h2Call } from "./support/h2c_client.ts";
import { startL7 } from "./support/l7_harness.ts";
import { chunkedEnd, startRig, trailerMap } from "./support/trailer_rig.ts";

const REQUEST = (sum: string) =>
  "POST /up HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n" +
  `5\r\nhello\r\n0\r\nx-checksum: ${sum}\r\n\r\n`;

async function exchange(port: number, req: string): Promise<string> {
  const net = await import("node:net");
  const s = net.connect(port, "127.0.0.1");
  s.on("error", () => {});
  let text = "";
  await new Promise<void>((done) => {
    const timer = setTimeout(done, 3000);
    s.on("data", (c: Uint8Array) => {
      text += new TextDecoder("latin1").decode(c);
      if (chunkedEnd(text) >= 0 || /content-length: \d+\r\n\r\n[^]+$/i.test(text)) {
        clearTimeout(timer);
        done();
      }
    });
    s.on("close", () => {
      clearTimeout(timer);
      done();
    });
    s.write(req);
  });
  s.destroy();
  return text;
}

const variants: [string, string, "auto" | "jco", boolean][] = [
  ["C, direct binding", "c_trailers", "auto", false],
  ["C, jco binding", "c_trailers", "jco", false],
  ["JS", "js_trailers", "jco", componentizeQjsPath() === undefined],
];

for (const [label, example, binding, ignore] of variants) {
  const tag = example.startsWith("c_") ? "c" : "js";
  Deno.test({
    name: `component trailers (0.3.0, ${label}): read, changed, answered locally`,
    ignore,
    fn: async () => {
      const f = await exampleFilter(example, {}, { binding });
      assert.equal(f.binding, binding === "auto" ? "direct" : "jco");
      // A 0.2.0 and a 0.1.0 component in the same chain leave the trailers alone.
      const older = [
        await exampleFilter("c_json_body", { request: "none", response: "none" }),
        await exampleFilter("c_header_rewrite", { header: "x-hello", value: "t" }),
      ];
      const rig = await startRig([...older, f]);
      const s = http2.connect(`http://127.0.0.1:${rig.port}`);
      try {
        const res = await exchange(rig.port, REQUEST("abc"));
        assert.match(res, /^HTTP\/1\.1 200 /);
        assert.deepEqual(Object.fromEntries(trailerMap(rig.received())), {
          "x-checksum": "abc",
          "x-checked-checksum": "abc",
          "x-filter": tag,
        });
        const down = trailerMap(res);
        assert.equal(down.get("x-filter"), tag, "response trailers hook ran");
        assert.equal(down.get("x-checksum"), "abc");
        const bad = await exchange(rig.port, REQUEST("bad"));
        assert.match(bad, /^HTTP\/1\.1 422 /);
        assert.match(bad, /bad checksum\n$/);
        // h2c downstream: the same hooks on h2 trailers frames.
        const h2 = await h2Call(s, "/up", { body: ["hello"], trailers: { "x-checksum": "h2" } });
        assert.equal(h2.status, 200);
        assert.equal(h2.trailers["x-filter"], tag);
        const h2bad = await h2Call(s, "/up", { body: ["x"], trailers: { "x-checksum": "bad" } });
        assert.equal(h2bad.status, 422);
      } finally {
        await closeSession(s).catch(() => {});
        await rig.close();
      }
    },
  });
}

Deno.test("component trailers (0.3.0): an HTTP/2 upstream's grpc-status seen by the hook", async () => {
  const f: HttpFilter = await exampleFilter("c_trailers");
  const h = await startL7([f], { upstream: "h2" });
  const s = http2.connect(h.url);
  try {
    const r = await h2Call(s, "/pkg.Svc/Method", { body: ["msg"] });
    assert.equal(r.status, 200);
    assert.equal(r.trailers["grpc-status"], "0");
    assert.equal(r.trailers["x-seen-grpc-status"], "0");
    assert.equal(r.trailers["x-filter"], "c");
  } finally {
    await closeSession(s);
    await h.close();
  }
});
