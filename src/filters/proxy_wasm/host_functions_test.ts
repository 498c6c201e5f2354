/**
 * Host functions through a real module: the C test filter (testdata/test_filter.c, built from
 * source) exercises one area per request, chosen by its `x-test` header.
 */
import { assert, assertEquals } from "../../../tests/support/assert.ts";
import {
  ref,
  request,
  response,
  testFilter,
  testFilterMainVoid,
} from "../../../tests/support/proxy_wasm_kit.ts";
import { HeaderList, metrics, setLogSink } from "../../core/mod.ts";
import type { FilterOutcome, HttpRequestContext } from "../../core/mod.ts";
import { createProxyWasmFilter } from "./mod.ts";
import type { ProxyWasmFilter } from "./filter.ts";
import type { ProxyWasmHostOptions } from "./options.ts";

const wasm = await testFilter();
const wasmV010 = await testFilter("0.1.0");

async function withFilter(
  fn: (f: ProxyWasmFilter) => Promise<void> | void,
  opts: ProxyWasmHostOptions = {},
  url = wasm,
  config: unknown = {},
): Promise<void> {
  const f = await createProxyWasmFilter(ref("test-filter", url, config), opts);
  try {
    await fn(f);
  } finally {
    f.close();
  }
}

function quietLogs(): { lines: string[]; restore: () => void } {
  const lines: string[] = [];
  return { lines, restore: setLogSink((l) => lines.push(l)) };
}

async function run(f: ProxyWasmFilter, req: HttpRequestContext): Promise<FilterOutcome> {
  const out = await f.onRequest(req);
  if (out.action === "continue") await f.onResponse(req, response(200));
  f.onDone(req);
  return out;
}

Deno.test("headers: pseudo-headers, counts, end_of_stream, :status read and rewrite", async () => {
  await withFilter(async (f) => {
    const req = request({ "x-test": "status", "content-length": "0" });
    assertEquals(f.onRequest(req), { action: "continue" });
    assertEquals(req.requestHeaders.get("x-header-count"), "6", "4 pseudo + 2 headers");
    assertEquals(req.requestHeaders.get("x-eos"), "1");
    const res = response(200, { "content-type": "text/plain" });
    await f.onResponse(req, res);
    assertEquals(res.responseHeaders.get("x-seen-status"), "200");
    assertEquals(res.responseHeaders.get("x-response-header-count"), "2");
    assertEquals(res.status, 299);
    f.onDone(req);
  });
});

Deno.test("headers: get pairs → set pairs round trip, remove, replace", async () => {
  await withFilter(async (f) => {
    const req = request({ "x-test": "pairs", "x-remove-me": "1", "x-replace-me": "old", a: "b" });
    await run(f, req);
    const h = req.requestHeaders;
    assertEquals(h.has("x-remove-me"), false);
    assertEquals(h.get("x-replace-me"), "replaced");
    assertEquals(h.get("a"), "b");
    assertEquals(h.has(":path"), false, "pseudo-headers are not copied into the map");
    assert(Number(h.get("x-pairs-bytes")) > 40);
  });
});

Deno.test("local response: status, body, headers and details", async () => {
  await withFilter(async (f) => {
    const req = request({ "x-test": "local" });
    const out = await f.onRequest(req);
    assert(out.action === "respond");
    assertEquals(out.response.status, 418);
    assertEquals(new TextDecoder().decode(out.response.body as Uint8Array), "short and stout");
    assertEquals(out.response.headers, [["x-local", "yes"]]);
    assertEquals(out.response.details, "test_local_reply");
    assertEquals(out.response.grpcStatus, undefined);
    f.onDone(req);
  });
});

Deno.test("properties: Envoy/Istio attribute paths from the request context", async () => {
  const opts = { nodeMetadata: { NAME: "pod-a", NAMESPACE: "default" } };
  await withFilter(async (f) => {
    const req = request({ "x-test": "props" }, { path: "/p?q=1", method: "POST" });
    await run(f, req);
    const h = req.requestHeaders;
    assertEquals(h.get("x-plugin-name"), "test-filter");
    assertEquals(h.get("x-path"), "/p?q=1");
    assertEquals(h.get("x-method"), "POST");
    assertEquals(h.get("x-source-address"), "127.0.0.7:40123");
    assertEquals(h.get("x-destination-port"), "8080");
    assertEquals(h.get("x-source-principal"), "spiffe://cluster.local/ns/default/sa/client");
    assertEquals(h.get("x-mtls"), "1");
    // The request's local workload (inbound: the destination "echo") overlays NAME.
    assertEquals(h.get("x-node-name"), "echo");
    assertEquals(h.get("x-node-namespace"), "default");
    assertEquals(h.get("x-unknown-prop"), "1001", "NOT_FOUND");
  }, opts);
});

Deno.test("shared data: CAS mismatch and success; metrics define/increment/record/get", async () => {
  await withFilter(async (f) => {
    const req = request({ "x-test": "shared" });
    await run(f, req);
    // set OK, get OK, set with a stale cas → CAS_MISMATCH (8), set with the right cas OK, get.
    assertEquals(req.requestHeaders.get("x-shared"), "0,0,8,0,0,v3");

    const m = request({ "x-test": "metrics" });
    await run(f, m);
    assertEquals(m.requestHeaders.get("x-counter-decrement"), "2", "BAD_ARGUMENT");
    assertEquals(m.requestHeaders.get("x-gauge"), "42");
    const text = metrics.render();
    assert(/^test_filter_requests_total 2$/m.test(text), "counter rendered");
    assert(/^test_filter_inflight 42$/m.test(text), "gauge name sanitised and rendered");
    assert(/^test_filter_latency_ms_count 1$/m.test(text), "histogram rendered");
  }, { vmId: "shared-test" });
});

Deno.test("shared data and queues span the VMs of one vm_id, and survive a VM restart", async () => {
  const logs = quietLogs();
  const opts = { vmId: "span-test" };
  const a = await createProxyWasmFilter(ref("span-a", wasm, {}), opts);
  const b = await createProxyWasmFilter(ref("span-b", wasm, {}), opts);
  const other = await createProxyWasmFilter(ref("span-other", wasm, {}), { vmId: "elsewhere" });
  try {
    assert(a.currentVm !== b.currentVm, "two VMs");
    await run(a, request({ "x-test": "shared" })); // writes k = v3
    const read = request({ "x-test": "shared-read" });
    await run(b, read);
    assertEquals(read.requestHeaders.get("x-shared-k"), "v3", "another VM of the vm_id reads it");
    const isolated = request({ "x-test": "shared-read" });
    await run(other, isolated);
    assertEquals(isolated.requestHeaders.has("x-shared-k"), false, "another vm_id does not");

    const owner = request({ "x-test": "queue-owner" });
    await run(a, owner);
    assertEquals(owner.requestHeaders.get("x-queue-status"), "0");
    const send = request({ "x-test": "queue-send" });
    await run(b, send);
    assertEquals(send.requestHeaders.get("x-queue-status"), "0");
    await new Promise((r) => setTimeout(r, 0)); // on_queue_ready is delivered asynchronously
    const last = request({ "x-test": "queue-last" });
    await run(a, last);
    assertEquals(last.requestHeaders.get("x-queue-last"), "hello-from-another-vm");

    // A trap restarts A's VM; the shared data outlives it.
    await run(a, request({ "x-test": "trap" }));
    const after = request({ "x-test": "shared-read" });
    await run(a, after);
    assertEquals(a.currentVm?.generation, 2);
    assertEquals(after.requestHeaders.get("x-shared-k"), "v3");
  } finally {
    a.close();
    b.close();
    other.close();
    logs.restore();
  }
});

Deno.test("logging: proxy_log goes to the log, proxy_get_log_level reflects weft's level", async () => {
  const lines: string[] = [];
  const restore = setLogSink((l) => lines.push(l));
  try {
    await withFilter(async (f) => {
      const req = request({ "x-test": "log" });
      await run(f, req);
      assertEquals(req.requestHeaders.get("x-log-level"), "2", "info");
    });
  } finally {
    restore();
  }
  assert(lines.some((l) => l.includes('"message":"hello from the test filter"')));
});

Deno.test("WASI under both module names: plugin-only environment, stdout to the log", async () => {
  const logs = quietLogs();
  try {
    await withFilter(async (f) => {
      const req = request({ "x-test": "wasi" });
      await run(f, req);
      const h = req.requestHeaders;
      assertEquals(h.get("x-env-count"), "1");
      assertEquals(h.get("x-env-first"), "GREETING=hi");
      assertEquals(h.get("x-random-status"), "0");
      assertEquals(h.get("x-clock-status"), "0");
      assertEquals(h.get("x-clock-after-2020"), "1");
      assertEquals(h.get("x-written"), "13");
      assertEquals(h.get("x-path-open"), "52", "unimplemented WASI answers NOSYS");
    }, { env: { GREETING: "hi" } });
  } finally {
    logs.restore();
  }
  assert(logs.lines.some((l) => l.includes('"message":"hello stdout"')));
  const report = logs.lines.find((l) => l.includes("does not implement"));
  assertEquals(JSON.parse(report!).imports, [
    "env.proxy_weft_no_such_function",
    "wasi_snapshot_preview1.path_open",
  ]);
});

Deno.test("bodies: the buffered request body is read and rewritten", async () => {
  await withFilter((f) => {
    assertEquals(f.wantsRequestBody, true);
    const req = request({ "x-test": "body" }, {
      method: "POST",
      body: new TextEncoder().encode("abc"),
    });
    assertEquals(f.onRequest(req), { action: "continue" });
    assertEquals(req.requestHeaders.get("x-eos"), "0");
    assertEquals(req.requestHeaders.get("x-body-size"), "3");
    assertEquals(new TextDecoder().decode(req.requestBody), "seen:abc");
    f.onDone(req);
  }, { bodies: true });
});

Deno.test("on_done false defers on_log until the guest calls proxy_done", async () => {
  await withFilter(async (f) => {
    const vm = f.currentVm!;
    const logged = () => vm.export("test_logged_count")!() as number;
    const before = logged();
    const req = request({ "x-test": "deferdone" });
    await run(f, req);
    assertEquals(logged(), before, "on_log not yet called");
    assertEquals(vm.run("root", undefined, () => vm.export("test_finish_deferred")!()), 0);
    await Promise.resolve();
    assertEquals(logged(), before + 1);
  });
});

Deno.test("ABI 0.1.0: legacy configuration call and OK+empty for a missing header", async () => {
  await withFilter(
    async (f) => {
      const req = request({ "x-test": "missing" });
      await run(f, req);
      assertEquals(req.requestHeaders.get("x-missing-status"), "0");
    },
    {},
    wasmV010,
  );
  await withFilter(async (f) => {
    const req = request({ "x-test": "missing" });
    await run(f, req);
    assertEquals(req.requestHeaders.get("x-missing-status"), "1", "0.2.x: NOT_FOUND");
  });
});

Deno.test("tick timer drives proxy_on_tick on the root context", async () => {
  await withFilter(
    async () => {
      const ticks = () =>
        Number(metrics.render().match(/^test_filter_ticks_total (\d+)$/m)?.[1] ?? 0);
      const deadline = performance.now() + 2000;
      while (ticks() < 3 && performance.now() < deadline) {
        await new Promise((r) => setTimeout(r, 5));
      }
      assertEquals(ticks(), 3, "the guest stops its timer after three ticks");
    },
    {},
    wasm,
    { tick: "on" },
  );
});

Deno.test("trailers: on_request/response_trailers read and write their maps; other maps stay read-only", async () => {
  await withFilter(async (f) => {
    const req = request({ "x-test": "trailers" });
    assertEquals(f.onRequest(req), { action: "continue" });
    const reqT = new HeaderList([["x-sum", "7"], ["x-other", "o"]]);
    f.onRequestTrailers(req, reqT);
    assertEquals(reqT.get("x-wasm-sum"), "7");
    assertEquals(reqT.get("x-wasm-count"), "2");
    assertEquals(reqT.has("x-late-header-written"), false, "request headers read-only here");
    assertEquals(req.requestHeaders.has("x-late"), false);
    const res = response(200);
    await f.onResponse(req, res);
    const resT = new HeaderList([["x-checksum", "abc"], ["x-drop", "1"], ["x-keep", "k"]]);
    f.onResponseTrailers(req, res, resT);
    assertEquals(resT.get("x-checksum"), "wasm");
    assertEquals(resT.has("x-drop"), false);
    assertEquals(resT.get("x-keep"), "k");
    assertEquals(resT.get("x-wasm-response-count"), "3");
    f.onDone(req);
  });
});

Deno.test("bad arguments: unknown map/buffer types, pointers past memory, wrong context → spec statuses, no trap", async () => {
  const { restore } = quietLogs();
  try {
    await withFilter(async (f) => {
      const req = request({ "x-test": "abuse" });
      assertEquals(await run(f, req), { action: "continue" });
      // Per call (test_filter.c abuse_sequence): map 99 pairs/value/add, buffer 99
      // get/status/set → BAD_ARGUMENT; key, log message and property result past the end of
      // memory → INVALID_MEMORY_ACCESS; log level 9, effective context 12345 → BAD_ARGUMENT;
      // proxy_done with nothing deferred → NOT_FOUND; fd_write(7) → BADF; a 4 GiB key →
      // INVALID_MEMORY_ACCESS; continue_stream(7) → BAD_ARGUMENT; VM_CONFIGURATION outside
      // on_vm_start → NOT_FOUND; clock 5 → NOTSUP; send_local_response in on_vm_start → OK;
      // fd_write with 50 M iovecs → INVAL.
      assertEquals(req.requestHeaders.get("x-abuse"), "2,2,2,2,2,2,6,6,6,2,2,1,8,6,2,1,58,0,28");
      assert(f.currentVm !== undefined, "the VM is still alive");
      const again = request({ "x-test": "abuse" });
      await run(f, again);
      assertEquals(again.requestHeaders.get("x-abuse"), req.requestHeaders.get("x-abuse"));
    });
  } finally {
    restore();
  }
});

Deno.test("proxy_done twice: the second is NOT_FOUND and on_log runs once", async () => {
  await withFilter(async (f) => {
    const vm = f.currentVm!;
    const logged = () => vm.export("test_logged_count")!() as number;
    const before = logged();
    await run(f, request({ "x-test": "deferdone" }));
    assertEquals(vm.run("root", undefined, () => vm.export("test_finish_deferred_twice")!()), 1);
    await Promise.resolve();
    await Promise.resolve();
    assertEquals(logged(), before + 1);
  });
});

Deno.test("reactor start: _initialize, then __main_void when there is no main", async () => {
  await withFilter(
    (f) => {
      assertEquals(f.currentVm!.export("test_init_steps")!(), 12);
    },
    {},
    await testFilterMainVoid(),
  );
});
