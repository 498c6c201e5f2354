/**
 * Loading, failure and reload: traps, runaway loops and memory growth fail the stream and the
 * next request gets a fresh VM; unknown imports load as UNIMPLEMENTED stubs; PAUSE + http_call
 * against a real loopback server; sha256 and ABI checks; hot reload of a rebuilt module.
 */
import { readFileSync } from "node:fs";
import { assert, assertEquals, assertRejects } from "../../../tests/support/assert.ts";
import {
  cAddHeaderWith,
  ref,
  request,
  response,
  testFilter,
} from "../../../tests/support/proxy_wasm_kit.ts";
import { metrics, setLogSink } from "../../core/mod.ts";
import type { FilterOutcome } from "../../core/mod.ts";
import { createProxyWasmFilter } from "./mod.ts";

const wasm = await testFilter();

function quietLogs(): { lines: string[]; restore: () => void } {
  const lines: string[] = [];
  return { lines, restore: setLogSink((l) => lines.push(l)) };
}

const FAILURES = [
  ["trap", "trap", true],
  ["loop", "timeout", true],
  // The sandbox clamps the memory maximum: grow fails and the guest traps at the cap, which is
  // a memory failure, not a plain trap.
  ["grow-loop", "memory", true],
  ["grow", "memory", false], // without it, the host's size check after the call catches it
] as const;

for (const [mode, kind, sandbox] of FAILURES) {
  Deno.test(`a ${mode} (sandbox ${sandbox}) fails the stream as "${kind}"; next request, new VM`, async () => {
    const logs = quietLogs();
    const f = await createProxyWasmFilter(ref("failing", wasm, {}, "FAIL_OPEN"), {
      callBudgetMs: 20,
      maxMemoryBytes: 4 << 20,
      sandbox,
    });
    try {
      const first = f.currentVm!;
      const bad = request({ "x-test": mode });
      const out = await f.onRequest(bad);
      assertEquals(out.action, "failed");
      assert(out.action === "failed");
      assertEquals(out.kind, kind);
      assertEquals(f.failPolicy, "FAIL_OPEN", "the chain runner applies the policy");
      f.onDone(bad);
      assert(first.dead, "the trapped VM is dead");
      const good = request({});
      assertEquals(f.onRequest(good), { action: "continue" });
      assert(f.currentVm !== first && f.currentVm!.generation === 2, "a fresh VM serves");
      f.onDone(good);
      assert(
        metrics.render().includes(`weft_filter_errors_total{filter="failing",kind="${kind}"}`),
      );
      assert(logs.lines.some((l) => l.includes('"msg":"proxy-wasm VM failed"')));
    } finally {
      f.close();
      logs.restore();
    }
  });
}

Deno.test("repeated crashes back off, then the plugin recovers", async () => {
  const logs = quietLogs();
  const f = await createProxyWasmFilter(ref("crashy", wasm, {}), { reloadBackoffMs: 30 });
  try {
    for (let i = 0; i < 2; i++) {
      const r = request({ "x-test": "trap" });
      assertEquals((await f.onRequest(r)).action, "failed");
      f.onDone(r);
    }
    const during = await f.onRequest(request({}));
    assert(during.action === "failed" && during.kind === "unavailable", "backing off");
    await new Promise((r) => setTimeout(r, 40));
    const after = request({});
    assertEquals(f.onRequest(after), { action: "continue" });
    f.onDone(after);
  } finally {
    f.close();
    logs.restore();
  }
});

Deno.test("an unknown import loads, is logged once, and answers UNIMPLEMENTED", async () => {
  const logs = quietLogs();
  try {
    const f = await createProxyWasmFilter(ref("unknown-import", wasm, {}));
    const req = request({ "x-test": "unimplemented" });
    await f.onRequest(req);
    f.onDone(req);
    f.close();
    assertEquals(req.requestHeaders.get("x-unimplemented-status"), "12");
    const reports = logs.lines.filter((l) =>
      l.includes("imports functions weft does not implement")
    );
    assertEquals(reports.length, 1);
    assertEquals(JSON.parse(reports[0]!).imports, [
      "env.proxy_weft_no_such_function",
      "wasi_snapshot_preview1.path_open",
    ]);
  } finally {
    logs.restore();
  }
});

Deno.test("PAUSE until the http_call result continues or answers locally", async () => {
  const ac = new AbortController();
  const server = Deno.serve(
    { hostname: "127.0.0.1", port: 0, signal: ac.signal, onListen: () => {} },
    async (req) => {
      const who = await req.text();
      const ok = req.headers.get("host") === "authz" && who === "alice";
      return new Response(ok ? "allowed:alice" : "denied", { status: ok ? 200 : 403 });
    },
  );
  const clusters = { authz: `127.0.0.1:${server.addr.port}` };
  const f = await createProxyWasmFilter(ref("callout", wasm, {}), { clusters });
  try {
    const alice = request({ "x-test": "callout", "x-user": "alice" });
    const pending = f.onRequest(alice);
    assert(pending instanceof Promise, "the request is held");
    assertEquals(await pending, { action: "continue" });
    assertEquals(alice.requestHeaders.get("x-authz-body"), "allowed:alice");
    f.onDone(alice);

    const late = request({ "x-test": "callout-response" });
    assertEquals(f.onRequest(late), { action: "continue" });
    const res = response(200);
    const held = f.onResponse(late, res);
    assert(held instanceof Promise, "the response is held");
    assertEquals(await held, { action: "continue" });
    assertEquals(res.responseHeaders.get("x-late-authz"), "allowed:alice");
    f.onDone(late);

    const bob = request({ "x-test": "callout", "x-user": "bob" });
    const out = await f.onRequest(bob) as Extract<FilterOutcome, { action: "respond" }>;
    assertEquals(out.response.status, 403);
    assertEquals(new TextDecoder().decode(out.response.body as Uint8Array), "denied");
    f.onDone(bob);
  } finally {
    f.close();
    ac.abort();
    await server.finished;
  }
  const noCluster = await createProxyWasmFilter(ref("callout", wasm, {}));
  const r = request({ "x-test": "callout" });
  assertEquals(noCluster.onRequest(r), { action: "continue" });
  assertEquals(r.requestHeaders.get("x-callout-status"), "2", "unknown upstream: BAD_ARGUMENT");
  noCluster.onDone(r);
  noCluster.close();
});

Deno.test("a callout whose stream ended first is not delivered (Envoy cancels it)", async () => {
  const ac = new AbortController();
  const { promise: release, resolve } = Promise.withResolvers<void>();
  const { promise: answered, resolve: onAnswer } = Promise.withResolvers<void>();
  const server = Deno.serve(
    { hostname: "127.0.0.1", port: 0, signal: ac.signal, onListen: () => {} },
    async (req) => {
      await req.text();
      await release;
      queueMicrotask(onAnswer);
      return new Response("allowed:alice");
    },
  );
  const clusters = { authz: `127.0.0.1:${server.addr.port}` };
  const f = await createProxyWasmFilter(ref("callout-gone", wasm, {}), { clusters });
  try {
    const vm = f.currentVm!;
    const delivered = () => vm.export("test_callout_responses")!() as number;
    const alice = request({ "x-test": "callout", "x-user": "alice" });
    const pending = f.onRequest(alice);
    assert(pending instanceof Promise, "the request is held");
    f.onDone(alice); // the client went away while the callout was in flight
    const outcome = await pending;
    assert(outcome.action !== "continue", "an ended stream does not continue");
    resolve();
    await answered;
    while (vm.callouts.size > 0) await new Promise((r) => setTimeout(r, 5));
    assertEquals(delivered(), 0, "proxy_on_http_call_response not called for a deleted context");
    assert(!vm.dead);
  } finally {
    f.close();
    ac.abort();
    await server.finished;
  }
});

Deno.test("callouts: refused, failed and timed-out calls are logged, counted, never hang", async () => {
  const logs = quietLogs();
  // A port nothing listens on: bind, note it, close.
  const probe = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const deadPort = (probe.addr as Deno.NetAddr).port;
  probe.close();
  const silent = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const held: Deno.Conn[] = [];
  const accepting = (async () => {
    for await (const c of silent) held.push(c); // accept, never answer
  })();
  const errors = (name: string) =>
    metrics.render().match(
      new RegExp(`weft_filter_errors_total\\{filter="${name}",kind="callout"\\} (\\d+)`),
    )?.[1];
  try {
    const refused = await createProxyWasmFilter(ref("co-refused", wasm, {}));
    const r1 = request({ "x-test": "callout-pause" });
    const t0 = performance.now();
    const o1 = await refused.onRequest(r1);
    assert(o1.action === "failed" && o1.kind === "callout", JSON.stringify(o1));
    assert(performance.now() - t0 < 500, "failed at once, not after the pause timeout");
    refused.onDone(r1);
    refused.close();
    assertEquals(errors("co-refused"), "1");
    assert(logs.lines.some((l) => l.includes("http call refused") && l.includes("nowhere")));

    const dead = await createProxyWasmFilter(ref("co-dead", wasm, {}), {
      clusters: { authz: { address: `127.0.0.1:${deadPort}` } },
    });
    const r2 = request({ "x-test": "callout", "x-user": "alice" });
    const o2 = await dead.onRequest(r2);
    assert(o2.action === "respond" && o2.response.status === 503, "the guest saw the failure");
    dead.onDone(r2);
    dead.close();
    assertEquals(errors("co-dead"), "1");
    assert(logs.lines.some((l) => l.includes("http call failed") && l.includes("co-dead")));

    // The guest asks for a 2 s timeout; the host honours it.
    const slow = await createProxyWasmFilter(ref("co-slow", wasm, {}), {
      clusters: { authz: `127.0.0.1:${(silent.addr as Deno.NetAddr).port}` },
    });
    const r3 = request({ "x-test": "callout", "x-user": "alice" });
    const t3 = performance.now();
    const o3 = await slow.onRequest(r3);
    const took = performance.now() - t3;
    assert(o3.action === "respond" && o3.response.status === 503);
    assert(took >= 1900 && took < 4000, `timed out after ${took} ms`);
    slow.onDone(r3);
    slow.close();
    assert(logs.lines.some((l) => l.includes("timed out after 2000 ms")));
  } finally {
    silent.close();
    await accepting.catch(() => {});
    for (const c of held) c.close();
    logs.restore();
  }
});

Deno.test("unimplemented imports are reported before the VM starts, even when it fails", async () => {
  const logs = quietLogs();
  try {
    await assertRejects(
      () => createProxyWasmFilter(ref("dies-at-start", wasm, {}), { vmConfig: "trap" }),
      /failed during start/,
    );
    assert(logs.lines.some((l) => l.includes("imports functions weft does not implement")));
  } finally {
    logs.restore();
  }
});

Deno.test("a VM start that never returns is stopped by the start-up budget, not the per-request one", async () => {
  const logs = quietLogs();
  try {
    const t0 = performance.now();
    await assertRejects(
      () =>
        createProxyWasmFilter(ref("loops-at-start", wasm, {}), {
          vmConfig: "loop",
          callBudgetMs: 20,
        }),
      /exceeded 1000 ms/,
    );
    const took = performance.now() - t0;
    // Lifecycle calls get 1 s (a busy node must not refuse a sound plugin), then stop.
    assert(took >= 1000 && took < 10_000, `stopped after ${took.toFixed(0)} ms`);
  } finally {
    logs.restore();
  }
});

Deno.test("a stream paused forever fails as timeout after pauseTimeoutMs", async () => {
  const f = await createProxyWasmFilter(ref("hold", wasm, {}), { pauseTimeoutMs: 20 });
  try {
    const req = request({ "x-test": "hold" });
    const out = await f.onRequest(req);
    assert(out.action === "failed");
    assertEquals(out.kind, "timeout");
    f.onDone(req);
    const other = request({ "x-test": "hold" });
    const pending = f.onRequest(other);
    f.onDone(other); // the client went away: the pause is settled, its timer cleared
    assertEquals((await pending).action, "failed");
  } finally {
    f.close();
  }
});

Deno.test("load checks: sha256, ABI marker, configure rejection", async () => {
  const bytes = readFileSync(wasm);
  const digest = Array.from(
    new Uint8Array(await crypto.subtle.digest("SHA-256", bytes)),
    (b) => b.toString(16).padStart(2, "0"),
  ).join("");
  const good = await createProxyWasmFilter({ ...ref("sha", `file://${wasm}`, {}), sha256: digest });
  good.close();
  await assertRejects(
    () => createProxyWasmFilter({ ...ref("sha", wasm, {}), sha256: "00".repeat(32) }),
    /sha256 mismatch/,
  );
  const noMarker = await Deno.makeTempFile({ suffix: ".wasm" });
  try {
    await Deno.writeFile(noMarker, Uint8Array.of(0, 0x61, 0x73, 0x6d, 1, 0, 0, 0));
    await assertRejects(
      () => createProxyWasmFilter(ref("nomarker", noMarker, {})),
      /missing or unknown Proxy-Wasm ABI version/,
    );
  } finally {
    await Deno.remove(noMarker);
  }
  await assertRejects(
    () => createProxyWasmFilter(ref("reject", wasm, {}), { vmConfig: "reject" }),
    /proxy_on_vm_start returned false/,
  );
  await assertRejects(
    () => createProxyWasmFilter(ref("reject", wasm, { reject: "yes" })),
    /proxy_on_configure rejected the plugin configuration/,
  );
  await assertRejects(() => createProxyWasmFilter(ref("x", "oci://hub/x:1", {})), /oci:\/\//);
});

Deno.test("hot reload: a rebuilt module loads beside the old one; in-flight streams stay", async () => {
  const logs = quietLogs();
  const [v1, v2] = [await cAddHeaderWith("v1"), await cAddHeaderWith("v2")];
  const old = await createProxyWasmFilter(ref("reload", v1, {}));
  try {
    const inflight = request();
    old.onRequest(inflight);
    assertEquals(inflight.requestHeaders.get("x-weft-c-add-header"), "v1");
    const next = await createProxyWasmFilter(ref("reload", v2, {}));
    let active = next; // the swap: new requests go to the new generation
    const fresh = request();
    active.onRequest(fresh);
    assertEquals(fresh.requestHeaders.get("x-weft-c-add-header"), "v2");
    const res = response();
    old.onResponse(inflight, res);
    assertEquals(res.responseHeaders.get("x-weft-c-add-header"), "v1", "old stream, old VM");
    old.onDone(inflight);
    old.close();
    active.onDone(fresh);
    active.close();
    active = next;
  } finally {
    logs.restore();
  }
});

Deno.test("metrics: proxy-wasm filters report calls and duration; one error per request", async () => {
  const logs = quietLogs();
  const f = await createProxyWasmFilter(ref("metered", wasm, {}, "FAIL_OPEN"), {
    reloadBackoffMs: 10_000,
  });
  const count = (re: RegExp) => Number(metrics.render().match(re)?.[1] ?? 0);
  try {
    for (let i = 0; i < 8; i++) {
      const r = request({});
      await f.onRequest(r);
      await f.onResponse(r, response(200));
      f.onDone(r);
    }
    assertEquals(count(/weft_filter_calls_total\{filter="metered",phase="request"\} (\d+)/), 8);
    assertEquals(count(/weft_filter_calls_total\{filter="metered",phase="response"\} (\d+)/), 8);
    assert(
      count(/weft_filter_duration_seconds_count\{filter="metered",phase="request"\} (\d+)/) >= 1,
      "latency sampled",
    );
    // Two traps in a row put the VM into backoff; each failing request counts once.
    for (const mode of ["trap", "trap"]) {
      const r = request({ "x-test": mode });
      await f.onRequest(r);
      await f.onResponse(r, response(200));
      f.onDone(r);
    }
    const r = request({});
    const o = await f.onRequest(r);
    assert(o.action === "failed" && o.kind === "unavailable");
    await f.onResponse(r, response(200));
    f.onDone(r);
    assertEquals(count(/weft_filter_errors_total\{filter="metered",kind="trap"\} (\d+)/), 2);
    assertEquals(count(/weft_filter_errors_total\{filter="metered",kind="unavailable"\} (\d+)/), 1);
  } finally {
    f.close();
    logs.restore();
  }
});

Deno.test("proxy_grpc_call: a unary call to a declared cluster; undeclared is PARSE_FAILURE", async () => {
  const { createServer } = await import("node:http2");
  const seen: Record<string, unknown>[] = [];
  let failNext = false;
  const server = createServer((req, res) => {
    const chunks: Uint8Array[] = [];
    req.on("data", (c: Uint8Array) => chunks.push(c));
    req.on("end", () => {
      seen.push({ path: req.url, md: req.headers["x-md"], ct: req.headers["content-type"] });
      const body = new TextDecoder().decode(new Uint8Array(chunks.flatMap((c) => [...c])).slice(5));
      const reply = new TextEncoder().encode(`pong:${body}`);
      const framed = new Uint8Array(5 + reply.length);
      new DataView(framed.buffer).setUint32(1, reply.length);
      framed.set(reply, 5);
      res.writeHead(200, { "content-type": "application/grpc", "x-initial": "1" });
      res.addTrailers({ "grpc-status": failNext ? "7" : "0", "grpc-message": "denied%20here" });
      if (failNext) res.end();
      else res.end(framed);
    });
  });
  await new Promise<void>((r) => server.listen(0, "127.0.0.1", r));
  const port = (server.address() as { port: number }).port;
  const logs = quietLogs();
  const f = await createProxyWasmFilter(ref("grpc", wasm, {}), {
    clusters: { grpc: `127.0.0.1:${port}` },
  });
  try {
    const req = request({ "x-test": "grpc" });
    const out = f.onRequest(req);
    assert(out instanceof Promise, "held while the call runs");
    assertEquals(await out, { action: "continue" });
    f.onDone(req);
    const h = req.requestHeaders;
    assertEquals(h.get("x-grpc-status"), "0");
    assertEquals(h.get("x-grpc-get-status"), "0");
    assertEquals(h.get("x-grpc-message"), "pong:ping");
    assert(Number(h.get("x-grpc-initial-count")) >= 2, "initial metadata delivered");
    assertEquals(seen[0], { path: "/test.Echo/Say", md: "v", ct: "application/grpc" });

    failNext = true;
    const denied = request({ "x-test": "grpc" });
    assertEquals(await f.onRequest(denied), { action: "continue" }, "the guest continues");
    f.onDone(denied);
    assertEquals(denied.requestHeaders.get("x-grpc-status"), "7");
    assert(logs.lines.some((l) => l.includes("grpc call failed")));

    const nowhere = request({ "x-test": "grpc-nowhere" });
    assertEquals(f.onRequest(nowhere), { action: "continue" });
    assertEquals(nowhere.requestHeaders.get("x-grpc-call-status"), "4", "PARSE_FAILURE");
    f.onDone(nowhere);
  } finally {
    f.close();
    logs.restore();
    await new Promise((r) => server.close(r));
  }
});

Deno.test("FilterRef.runtime (weft.yaml / WasmPlugin) reaches the host: root id, vm id, env, clusters", async () => {
  const ac = new AbortController();
  const server = Deno.serve(
    { hostname: "127.0.0.1", port: 0, signal: ac.signal, onListen: () => {} },
    async (req) => new Response((await req.text()) === "alice" ? "allowed:alice" : "denied"),
  );
  const r = {
    ...ref("runtime-wired", wasm, {}),
    runtime: {
      rootId: "root-from-plugin-name",
      vmId: "vm-7",
      env: { MODE: "strict" },
      clusters: { authz: { address: `127.0.0.1:${server.addr.port}` } },
      callBudgetMs: 20,
    },
  };
  const f = await createProxyWasmFilter(r);
  try {
    const props = request({ "x-test": "props" });
    f.onRequest(props);
    f.onDone(props);
    assertEquals(props.requestHeaders.get("x-plugin-name"), "runtime-wired");
    assertEquals(props.requestHeaders.get("x-root-id"), "root-from-plugin-name");
    assertEquals(props.requestHeaders.get("x-vm-id"), "vm-7");
    const env = request({ "x-test": "wasi" });
    f.onRequest(env);
    f.onDone(env);
    assertEquals(env.requestHeaders.get("x-env-first"), "MODE=strict");
    const call = request({ "x-test": "callout", "x-user": "alice" });
    assertEquals(await f.onRequest(call), { action: "continue" });
    assertEquals(call.requestHeaders.get("x-authz-body"), "allowed:alice");
    f.onDone(call);
    assertEquals(f.currentVm?.settings.callBudgetMs, 20);
  } finally {
    f.close();
    ac.abort();
    await server.finished;
  }
});
