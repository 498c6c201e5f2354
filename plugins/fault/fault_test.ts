/**
 * fault through the real filter host (fault.wasm built from plugins/fault/src, ComponentFilter,
 * and the core FilterChain for delay-then-abort). Cases follow
 * /work/shared/reference/l7-semantics.md §3 (F-items).
 */
import assert from "node:assert/strict";
import { parse } from "yaml";
import type { FilterOutcome } from "../../src/core/mod.ts";
import { metrics } from "../../src/core/mod.ts";
import { FilterChain } from "../../src/core/filter_chain.ts";
import {
  faultConfigFromEnvoy,
  faultConfigFromIstio,
  type FaultPluginConfig,
  faultStages,
} from "../../src/filters/first_party/mod.ts";
import {
  decide,
  loadPlugin,
  prepare,
  request,
  type RequestSpec,
} from "../_common/plugin_harness.ts";
import { FAULT_SOURCES } from "./build.ts";

await prepare("fault", FAULT_SOURCES);

const fault = (cfg: unknown, name = "fault") => loadPlugin("fault", FAULT_SOURCES, cfg, name);
const istio = (yaml: string) => faultConfigFromIstio(parse(yaml));

function kind(o: FilterOutcome): string {
  if (o.action === "respond") return `abort:${o.response.status}`;
  if (o.action === "delay") return `delay:${o.delayMs}`;
  return o.action;
}

async function count(cfg: unknown, n: number, spec: () => RequestSpec = () => ({})) {
  const f = await fault(cfg);
  const c = new Map<string, number>();
  for (let i = 0; i < n; i++) {
    const k = kind(await decide(f, request(spec())));
    c.set(k, (c.get(k) ?? 0) + 1);
  }
  return c;
}

Deno.test("fault F1/F13: an unset percentage never fires", async () => {
  const c = await count(istio("{delay: {fixedDelay: 5s}, abort: {httpStatus: 503}}"), 1000);
  assert.deepEqual([...c], [["continue", 1000]]);
  const e = await count(faultConfigFromEnvoy({ abort: { httpStatus: 500 } }), 500);
  assert.deepEqual([...e], [["continue", 500]]);
});

Deno.test("fault F5: HTTP abort answers the status with body 'fault filter abort'", async () => {
  const f = await fault(istio("{abort: {httpStatus: 418, percentage: {value: 100}}}"));
  const out = await decide(f, request());
  assert.equal(out.action, "respond");
  if (out.action !== "respond") return;
  assert.equal(out.response.status, 418);
  assert.equal(new TextDecoder().decode(out.response.body as Uint8Array), "fault filter abort");
  assert.equal(out.response.details, "fault_filter_abort");
});

Deno.test("fault F5/F12: gRPC abort is HTTP 200 with grpc-status from the code name", async () => {
  const f = await fault(istio("{abort: {grpcStatus: UNAVAILABLE, percentage: {value: 100}}}"));
  const out = await decide(
    f,
    request({ method: "POST", headers: { "content-type": "application/grpc" } }),
  );
  assert.equal(out.action, "respond");
  if (out.action !== "respond") return;
  assert.equal(out.response.status, 200);
  const h = new Map(out.response.headers.map(([k, v]) => [k, v]));
  assert.equal(h.get("grpc-status"), "14");
  assert.equal(h.get("grpc-message"), "fault filter abort");
});

Deno.test("fault F15: a 25 % abort lands within ±2 % over 10 000 requests", async () => {
  const cfg = istio("{abort: {httpStatus: 503, percentage: {value: 25}}}");
  assert.deepEqual(cfg.abort?.percentage, { numerator: 250_000, denominator: "MILLION" });
  const n = 10_000;
  const c = await count(cfg, n);
  const share = (c.get("abort:503") ?? 0) / n;
  assert.ok(Math.abs(share - 0.25) <= 0.02, `abort share ${share}`);
});

Deno.test("fault F1: FractionalPercent denominators TEN_THOUSAND and a clamped numerator", async () => {
  const n = 10_000;
  const c = await count({
    abort: { httpStatus: 500, percentage: { numerator: 1000, denominator: "TEN_THOUSAND" } },
  }, n);
  const share = (c.get("abort:500") ?? 0) / n;
  assert.ok(Math.abs(share - 0.1) <= 0.02, `abort share ${share}`);
  const all = await count({ abort: { httpStatus: 500, percentage: { numerator: 250 } } }, 200);
  assert.deepEqual([...all], [["abort:500", 200]]);
});

Deno.test("fault F6: a delay alone continues after the delay", async () => {
  const f = await fault(istio("{delay: {fixedDelay: 1.5s, percentage: {value: 100}}}"));
  const out = await decide(f, request());
  assert.deepEqual(out, { action: "delay", delayMs: 1500, then: { action: "continue" } });
});

Deno.test("fault F4/F14: delay then abort, drawn independently (two chained stages)", async () => {
  const both = istio(
    "{delay: {fixedDelay: 40ms, percentage: {value: 100}}, abort: {httpStatus: 503, percentage: {value: 100}}}",
  );
  const stages = faultStages(both);
  assert.equal(stages.length, 2);
  const chain = new FilterChain(
    await Promise.all(stages.map((s, i) => fault(s, `fault-stage-${i}`))),
  );
  const t0 = performance.now();
  const v = await chain.onRequest(request());
  const elapsed = performance.now() - t0;
  assert.equal(v.kind, "respond");
  if (v.kind === "respond") assert.equal(v.response.status, 503);
  assert.ok(elapsed >= 38, `abort came after ${elapsed} ms, before the delay`);
  // Independence: 50 % delay × 50 % abort ≈ 25 % each combination.
  const half = istio(
    "{delay: {fixedDelay: 1s, percentage: {value: 50}}, abort: {httpStatus: 503, percentage: {value: 50}}}",
  );
  const [d, a] = await Promise.all(faultStages(half).map((s) => fault(s)));
  const n = 4000;
  const combos = new Map<string, number>();
  for (let i = 0; i < n; i++) {
    const r = request();
    const k = `${kind(await decide(d!, r))}|${kind(await decide(a!, r))}`;
    combos.set(k, (combos.get(k) ?? 0) + 1);
  }
  assert.equal(combos.size, 4);
  for (const [k, c] of combos) assert.ok(Math.abs(c / n - 0.25) <= 0.03, `${k}: ${c / n}`);
});

Deno.test("fault F7/F8: header-controlled faults only when enabled, percentage as a ceiling", async () => {
  const on: FaultPluginConfig = {
    abort: { headerAbort: true, percentage: { numerator: 100 } },
    delay: { headerDelay: true, percentage: { numerator: 100 } },
    stage: "abort",
  };
  const f = await fault(on);
  const k = async (h: Record<string, string | string[]>) =>
    kind(await decide(f, request({ headers: h })));
  assert.equal(await k({ "x-envoy-fault-abort-request": "429" }), "abort:429");
  assert.equal(await k({ "x-envoy-fault-abort-request": ["503", "429"] }), "abort:503");
  assert.equal(await k({ "x-envoy-fault-abort-request": "600" }), "continue");
  assert.equal(await k({ "x-envoy-fault-abort-request": "abc" }), "continue");
  assert.equal(await k({}), "continue");
  const g = await decide(f, request({ headers: { "x-envoy-fault-abort-grpc-request": "4" } }));
  assert.equal(g.action === "respond" && new Map(g.response.headers).get("grpc-status"), "4");
  const dl = await fault({ delay: { headerDelay: true, percentage: { numerator: 100 } } });
  assert.equal(
    kind(await decide(dl, request({ headers: { "x-envoy-fault-delay-request": "250" } }))),
    "delay:250",
  );
  assert.equal(
    kind(await decide(dl, request({ headers: { "x-envoy-fault-delay-request": "x" } }))),
    "continue",
  );
  // not enabled: a fixed abort config ignores the headers
  const off = await fault({ abort: { httpStatus: 500, percentage: { numerator: 0 } } });
  assert.equal(
    kind(await decide(off, request({ headers: { "x-envoy-fault-abort-request": "429" } }))),
    "continue",
  );
  // ceiling: configured 20 %; header 100 → 20 %, header 5 → 5 %, invalid → configured
  const n = 5000;
  const cfg = { abort: { headerAbort: true, percentage: { numerator: 20 } } };
  const share = async (pct?: string) => {
    const headers: Record<string, string> = { "x-envoy-fault-abort-request": "503" };
    if (pct !== undefined) headers["x-envoy-fault-abort-request-percentage"] = pct;
    return ((await count(cfg, n, () => ({ headers }))).get("abort:503") ?? 0) / n;
  };
  assert.ok(Math.abs((await share("100")) - 0.2) <= 0.025);
  assert.ok(Math.abs((await share("5")) - 0.05) <= 0.015);
  assert.ok(Math.abs((await share("bogus")) - 0.2) <= 0.025);
});

Deno.test("fault F9: max_active_faults bounds concurrent delays, counts overflow", async () => {
  const f = await fault({
    // Long enough that the third decision below always finds both delays still running, even
    // on a loaded box (40 ms lost that race at load ~20).
    delay: { fixedDelayMs: 600, percentage: { numerator: 100 } },
    maxActiveFaults: 2,
    counterBatch: 1,
  }, "fault-max");
  const chain = new FilterChain([f]);
  const first = chain.onRequest(request());
  const second = chain.onRequest(request());
  assert.equal(kind(await decide(f, request())), "continue"); // third: both slots busy
  await Promise.all([first, second]);
  assert.equal(kind(await decide(f, request())), "delay:600"); // slots free again
  assert.match(
    metrics.render(),
    /weft_filter_counter_total\{filter="fault-max",name="faults_overflow"\} 1/,
  );
  assert.match(
    metrics.render(),
    /weft_filter_counter_total\{filter="fault-max",name="delays_injected"\} 3/,
  );
});

Deno.test("fault F4: the headers filter gates the fault", async () => {
  const f = await fault(faultConfigFromEnvoy({
    abort: { httpStatus: 503, percentage: { numerator: 100 } },
    headers: [{ name: "x-chaos", stringMatch: { exact: "on" } }],
  }));
  assert.equal(kind(await decide(f, request({ headers: { "x-chaos": "on" } }))), "abort:503");
  assert.equal(kind(await decide(f, request({ headers: { "x-chaos": "off" } }))), "continue");
  assert.equal(kind(await decide(f, request())), "continue");
});

Deno.test("fault config errors reject the generation", async () => {
  const bad: readonly [unknown, RegExp][] = [
    [{ abort: { httpStatus: 600 } }, /abort: httpStatus: must be 200-599/],
    [
      { abort: { httpStatus: 500, grpcStatus: 14 } },
      /exactly one of httpStatus, grpcStatus or headerAbort/,
    ],
    [{ delay: { percentage: { numerator: 1 } } }, /exactly one of fixedDelayMs or headerDelay/],
    [
      { delay: { fixedDelayMs: 5, percentage: { numerator: 1, denominator: "BILLION" } } },
      /denominator: must be HUNDRED/,
    ],
  ];
  for (const [cfg, re] of bad) await assert.rejects(fault(cfg), re);
  assert.throws(
    () => istio("{abort: {grpcStatus: NOPE, percentage: {value: 1}}}"),
    /grpcStatus: must be a gRPC status name such as "UNAVAILABLE", got "NOPE"/,
  );
  assert.throws(() => istio("{delay: {exponentialDelay: 1s}}"), /exponentialDelay: not supported/);
});
