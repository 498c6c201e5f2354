/** Per-request cost of the fault hook through the real host: a 25 % abort plus a header gate.
 * Run: deno bench -A plugins/fault/fault_bench.ts */
import { loadPlugin, request } from "../_common/plugin_harness.ts";
import { FAULT_SOURCES } from "./build.ts";

const abort = await loadPlugin("fault", FAULT_SOURCES, {
  abort: { httpStatus: 503, percentage: { numerator: 250_000, denominator: "MILLION" } },
}, "fault-bench");
const gated = await loadPlugin("fault", FAULT_SOURCES, {
  delay: { fixedDelayMs: 100, percentage: { numerator: 10 } },
  headers: [{ name: "x-chaos", exact: "on" }],
  maxActiveFaults: 100,
}, "fault-bench-gated");
const req = request({ headers: { "x-chaos": "off" } });

Deno.bench("fault onRequest: 25 % abort (Istio percentage)", () => {
  abort.onRequest(req);
});
Deno.bench("fault onRequest: header gate not matching", () => {
  gated.onRequest(req);
});
