/**
 * Streamed proxy-wasm bodies as Envoy runs them, through the C test filter (testdata/test_filter.c,
 * mode "chunks", built from source): one body callback per chunk with (body_buffer_length,
 * end_of_stream), CONTINUE sends the buffer as the guest left it, StopIterationAndBuffer keeps
 * accumulating (the next call sees the whole held buffer), the buffer limit answers 413 (request)
 * / 500 (response), and a stop at end of stream waits for proxy_continue_stream.
 */
import { assert, assertEquals } from "../../../tests/support/assert.ts";
import { ref, request, response, testFilter } from "../../../tests/support/proxy_wasm_kit.ts";
import type { BodyOutcome } from "../../core/mod.ts";
import { createProxyWasmFilter } from "./mod.ts";
import type { ProxyWasmHostOptions } from "./options.ts";

const wasm = await testFilter();
const enc = (s: string) => new TextEncoder().encode(s);

function text(o: BodyOutcome): string {
  assertEquals(o.action, "replace");
  return new TextDecoder().decode((o as { body: Uint8Array }).body);
}

async function streamed(opts: ProxyWasmHostOptions = {}) {
  const f = await createProxyWasmFilter(ref("test-filter", wasm, {}), {
    bodies: "streamed",
    ...opts,
  });
  const req = request({ "x-test": "chunks", "transfer-encoding": "chunked" }, { method: "POST" });
  assertEquals(await f.onRequest(req), { action: "continue" });
  return { f, req };
}

Deno.test("streamed bodies: one call per chunk; CONTINUE passes, StopIterationAndBuffer accumulates", async () => {
  const { f, req } = await streamed();
  try {
    assert(f.streamsRequestBody && f.streamsResponseBody, "streams where the module has callbacks");
    assert(!f.wantsRequestBody && !f.wantsResponseBody, "nothing buffered by the data path");
    assertEquals(text(await f.onRequestBodyChunk(req, enc("abc"), false)), "3:abc");
    assertEquals(text(await f.onRequestBodyChunk(req, enc("hold"), false)), "", "held");
    // The next call sees the held bytes plus the new chunk (length 7), held again.
    assertEquals(text(await f.onRequestBodyChunk(req, enc("ing"), false)), "");
    assertEquals(text(await f.onRequestBodyChunk(req, enc(""), true)), "7!holding");
    const res = response(200);
    await f.onResponse(req, res);
    assertEquals(text(await f.onResponseBodyChunk(req, res, enc("xy"), false)), "2:xy");
    assertEquals(text(await f.onResponseBodyChunk(req, res, enc("z"), true)), "1!z");
    f.onDone(req);
  } finally {
    f.close();
  }
});

Deno.test("streamed bodies: held bytes over the buffer limit answer 413 / 500 as Envoy", async () => {
  const { f, req } = await streamed({ maxBufferedBodyBytes: 8 });
  try {
    assertEquals(text(await f.onRequestBodyChunk(req, enc("hold"), false)), "");
    const over = await f.onRequestBodyChunk(req, enc("123456"), false);
    assertEquals(over.action, "respond");
    if (over.action === "respond") assertEquals(over.response.status, 413);
    f.onDone(req);
    const again = await streamed({ maxBufferedBodyBytes: 8 });
    const res = response(200);
    await again.f.onResponse(again.req, res);
    await again.f.onResponseBodyChunk(again.req, res, enc("hh"), false);
    const big = await again.f.onResponseBodyChunk(again.req, res, enc("1234567"), false);
    assertEquals(big.action, "respond");
    if (big.action === "respond") assertEquals(big.response.status, 500);
    again.f.onDone(again.req);
    again.f.close();
  } finally {
    f.close();
  }
});

Deno.test("streamed bodies: a stop at end of stream waits for proxy_continue_stream", async () => {
  const { f, req } = await streamed();
  try {
    const pending = f.onRequestBodyChunk(req, enc("wait"), true);
    assert(pending instanceof Promise, "held until the guest continues");
    let settled = false;
    pending.then(() => (settled = true), () => {});
    await new Promise((r) => setTimeout(r, 20));
    assertEquals(settled, false);
    const vm = f.currentVm!;
    assertEquals(vm.run("root", undefined, () => vm.export("test_continue_body")!(0)), 0);
    assertEquals(text(await pending), "wait", "the held buffer goes on");
    f.onDone(req);
  } finally {
    f.close();
  }
});

Deno.test('streamed bodies: bodies "none" leaves bodies to the data path untouched', async () => {
  const f = await createProxyWasmFilter(ref("test-filter", wasm, {}), { bodies: "none" });
  try {
    assert(!f.streamsRequestBody && !f.wantsRequestBody);
  } finally {
    f.close();
  }
});
