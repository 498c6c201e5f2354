/**
 * A third-party filter written for Envoy's streamed body semantics runs unchanged: the
 * proxy-wasm-go-sdk `http_body_chunk` example (Go 1.24 wasip1, committed in
 * tests/fixtures/third_party_wasm with its provenance) is called once per chunk with the growing
 * body_buffer_length, pauses (StopIterationAndBuffer) until the end of the body, reads each new
 * chunk at its offset in the held buffer with proxy_get_buffer_bytes, and answers 403 "pattern
 * found in chunk: N" from the chunk that holds "pattern". Unit-level with exact chunks, then
 * through weft's HttpProxy on HTTP/1.1 and h2c.
 */
import assert from "node:assert/strict";
import http2 from "node:http2";
import { join } from "node:path";
import { createProxyWasmFilter } from "../src/filters/proxy_wasm/mod.ts";
import { setLogSink } from "../src/core/mod.ts";
import { startL7 } from "./support/l7_harness.ts";
import { ref, request } from "./support/proxy_wasm_kit.ts";
import { closeSession, h2Call } from "./support/h2c_client.ts";

const WASM = join(import.meta.dirname!, "fixtures/third_party_wasm/go-http_body_chunk.wasm");
const enc = (s: string) => new TextEncoder().encode(s);

async function bodyChunk() {
  return await createProxyWasmFilter(ref("http-body-chunk", `file://${WASM}`, {}), {
    bodies: "streamed",
  });
}

Deno.test("third-party streamed bodies: Go SDK http_body_chunk, one callback per chunk", async () => {
  const lines: string[] = [];
  const restore = setLogSink((l) => lines.push(l));
  const f = await bodyChunk();
  try {
    assert.equal(f.streamsRequestBody, true);
    const req = request({ "transfer-encoding": "chunked" }, { method: "POST" });
    assert.deepEqual(await f.onRequest(req), { action: "continue" });
    const held = await f.onRequestBodyChunk(req, enc("first chunk, "), false);
    assert.deepEqual(held, { action: "replace", body: new Uint8Array(0) }, "paused: held");
    const found = await f.onRequestBodyChunk(req, enc("a pattern here"), false);
    assert.equal(found.action, "respond");
    if (found.action === "respond") {
      assert.equal(found.response.status, 403);
      assert.equal(
        new TextDecoder().decode(found.response.body as Uint8Array),
        "pattern found in chunk: 2",
      );
    }
    f.onDone(req);
    const clean = request({ "transfer-encoding": "chunked" }, { method: "POST" });
    await f.onRequest(clean);
    for (const c of ["abc", "defg", "hi"]) await f.onRequestBodyChunk(clean, enc(c), false);
    const last = await f.onRequestBodyChunk(clean, new Uint8Array(0), true);
    assert.equal(last.action, "replace");
    if (last.action === "replace") assert.equal(new TextDecoder().decode(last.body), "abcdefghi");
    f.onDone(clean);
    // The guest read each chunk at its offset in the held buffer, and saw the growing length.
    const log = lines.filter((l) => l.includes("OnHttpRequestBody called")).map((l) =>
      /BodySize: (\d+), totalRequestBodyReadSize: (\d+), endOfStream: (\w+)/.exec(l)!.slice(1)
    );
    assert.deepEqual(log.slice(-4), [
      ["3", "0", "false"],
      ["7", "3", "false"],
      ["9", "7", "false"],
      ["9", "9", "true"],
    ]);
    assert.ok(lines.some((l) => l.includes("pattern not found")));
    assert.ok(!lines.some((l) => l.includes("does not match")), "offsets and sizes agreed");
  } finally {
    f.close();
    restore();
  }
});

Deno.test("third-party streamed bodies: http_body_chunk through weft's proxy (HTTP/1.1, h2c)", async () => {
  const restore = setLogSink(() => {});
  const f = await bodyChunk();
  const h = await startL7([f]);
  const client = Deno.createHttpClient({});
  const s = http2.connect(h.url);
  try {
    const stream = (parts: string[]) =>
      new ReadableStream({
        start(c) {
          for (const p of parts) c.enqueue(enc(p));
          c.close();
        },
      });
    const ok = await fetch(`${h.url}/echo-body`, {
      client,
      method: "POST",
      body: stream(["hello ", "world"]),
    });
    assert.equal(ok.status, 200);
    assert.equal((await ok.json()).received, "hello world", "held, then sent on whole");
    const denied = await fetch(`${h.url}/echo-body`, {
      client,
      method: "POST",
      body: stream(["x".repeat(1000), "has a pattern"]),
    });
    assert.equal(denied.status, 403);
    assert.match(await denied.text(), /^pattern found in chunk: \d$/);
    const viaH2 = await h2Call(s, "/echo-body", { body: ["no", " match"] });
    assert.equal(JSON.parse(viaH2.body).received, "no match");
    const h2Denied = await h2Call(s, "/echo-body", { body: ["pattern"] });
    assert.equal(h2Denied.status, 403);
    assert.equal(h2Denied.headers["powered-by"], "proxy-wasm-go-sdk");
  } finally {
    await closeSession(s);
    client.close();
    await h.close();
    f.close();
    restore();
  }
});
