/**
 * Request and response bodies through weft's HTTP/1.1 proxy with a proxy-wasm body filter built
 * from source (plugins/proxy-wasm/c-json-redact): buffered bodies, rewrites that change the
 * length (re-framed with content-length, chunked input included), a local reply from the body
 * callback, and Envoy's limits (413 for a request body over the limit, 500 for a response).
 */
import assert from "node:assert/strict";
import { createProxyWasmFilter } from "../src/filters/proxy_wasm/mod.ts";
import { startL7 } from "./support/l7_harness.ts";
import { jsonRedact, ref } from "./support/proxy_wasm_kit.ts";

Deno.test("bodies: a proxy-wasm filter rewrites JSON request and response bodies", async () => {
  const wasm = await jsonRedact();
  const f = await createProxyWasmFilter(ref("json-redact", wasm, {}), { bodies: true });
  const h = await startL7([f], { maxBufferedBodyBytes: 64 * 1024 });
  const client = Deno.createHttpClient({});
  try {
    const body = JSON.stringify({ user: "ann", password: "hunter2" });
    const r = await fetch(`${h.url}/echo-body`, { client, method: "POST", body });
    assert.equal(r.status, 200);
    const got = await r.json();
    assert.equal(got.received, '{"user":"ann","password":"***"}', "request body rewritten");
    assert.equal(got.contentLength, String(got.received.length), "re-framed with its length");
    assert.equal(got.token, "***", "response body rewritten");

    // Chunked in (a stream body), content-length out.
    const stream = new ReadableStream({
      start(c) {
        c.enqueue(new TextEncoder().encode('{"password": "a'));
        c.enqueue(new TextEncoder().encode('b"}'));
        c.close();
      },
    });
    const rc = await fetch(`${h.url}/echo-body`, { client, method: "POST", body: stream });
    const gc = await rc.json();
    assert.equal(gc.received, '{"password": "***"}');
    assert.equal(gc.chunked, false);

    const bad = await fetch(`${h.url}/echo-body`, { client, method: "POST", body: "not json" });
    assert.equal(bad.status, 400);
    assert.equal(await bad.text(), "expected a JSON object\n");

    const big = await fetch(`${h.url}/echo-body`, {
      client,
      method: "POST",
      body: JSON.stringify({ password: "x".repeat(70 * 1024) }),
    });
    assert.equal(big.status, 413, "request body over the buffer limit");
    await big.body?.cancel();

    const bigRes = await fetch(`${h.url}/echo-body?pad=${70 * 1024}`, {
      client,
      method: "POST",
      body: "{}",
    });
    assert.equal(bigRes.status, 500, "response body over the buffer limit");
    await bigRes.body?.cancel();

    // Without a body filter in the chain, bodies stream through untouched.
    h.setChain([]);
    const plain = await fetch(`${h.url}/echo-body`, { client, method: "POST", body });
    assert.equal((await plain.json()).received, body);
  } finally {
    client.close();
    await h.close();
    f.close();
  }
});
