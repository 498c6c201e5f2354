/** ManagedFilter's per-request bookkeeping: every phase of a request goes to the generation it
 * started on, and a swapped-out or retired generation is closed exactly when its last in-flight
 * request is done (the current generation's count lives in a field, older ones in a Map). */
import assert from "node:assert/strict";
import type { FilterOutcome, FilterRef, HttpFilter } from "../core/mod.ts";
import { ManagedFilter } from "./managed_filter.ts";
import { requestContext, responseContext } from "../../tests/support/filter_context.ts";

const REF: FilterRef = {
  name: "m",
  type: "weft.component",
  url: undefined,
  sha256: undefined,
  config: {},
  failPolicy: "FAIL_CLOSE",
  phase: "UNSPECIFIED",
  priority: 0,
};
const CONT: FilterOutcome = { action: "continue" };

function generation(name: string, log: string[]): HttpFilter {
  return {
    name,
    failPolicy: "FAIL_CLOSE",
    wantsRequestBody: false,
    wantsResponseBody: false,
    onRequest: () => (log.push(`req:${name}`), CONT),
    onResponse: () => (log.push(`res:${name}`), CONT),
    onDone: () => log.push(`done:${name}`),
    close: () => log.push(`close:${name}`),
  };
}

Deno.test("ManagedFilter: phases follow the starting generation; old ones close after their last request", () => {
  const log: string[] = [];
  const [a, b, c] = ["A", "B", "C"].map((n) => generation(n, log)) as [
    HttpFilter,
    HttpFilter,
    HttpFilter,
  ];
  const m = new ManagedFilter(REF, a);
  const r1 = requestContext("/1"), r2 = requestContext("/2"), r3 = requestContext("/3");
  const keys = Object.keys(r1);
  m.onRequest(r1);
  m.onRequest(r1); // a second call for one request counts it once
  m.onRequest(r2);
  assert.deepEqual(Object.keys(r1), keys, "the bookkeeping adds no visible key to the context");
  m.swap(b);
  m.onRequest(r3);
  m.onResponse(r1, responseContext());
  m.onResponse(r3, responseContext());
  m.onDone(r1);
  assert.ok(!log.includes("close:A"), "A still has r2 in flight");
  m.onDone(r2);
  assert.ok(log.includes("close:A"), "A closed after its last request");
  m.swap(c);
  assert.ok(!log.includes("close:B"), "B still has r3 in flight");
  m.onDone(r3);
  assert.equal(log.filter((l) => l === "close:B").length, 1);
  const r4 = requestContext("/4");
  m.onRequest(r4);
  m.retire();
  assert.ok(!log.includes("close:C"), "a retired generation waits for its requests");
  m.onDone(r4);
  m.onDone(r4); // a second onDone changes nothing
  assert.deepEqual(log, [
    "req:A",
    "req:A",
    "req:A",
    "req:B",
    "res:A",
    "res:B",
    "done:A",
    "done:A",
    "close:A",
    "done:B",
    "close:B",
    "req:C",
    "done:C",
    "close:C",
    "done:C",
  ]);
});

Deno.test("ManagedFilter: swapping back to a generation with requests in flight keeps its count and keeps it open", () => {
  const log: string[] = [];
  const a = generation("A", log), b = generation("B", log);
  const m = new ManagedFilter(REF, a);
  const r1 = requestContext("/1");
  m.onRequest(r1);
  m.swap(b); // A retired with r1 in flight
  m.swap(a); // back to A: B had nothing in flight and closes now
  assert.deepEqual(log.filter((l) => l.startsWith("close")), ["close:B"]);
  const r2 = requestContext("/2");
  m.onRequest(r2);
  m.onDone(r1);
  m.onDone(r2);
  assert.ok(!log.includes("close:A"), "the current generation is never closed by a request's end");
  const r3 = requestContext("/3");
  m.onRequest(r3);
  m.retire();
  assert.ok(!log.includes("close:A"), "A still has r3 in flight");
  m.onDone(r3);
  assert.ok(log.includes("close:A"));
});
