import assert from "node:assert/strict";
import { logger, setLogSink } from "./log.ts";

Deno.test("log: a field named like a record key (scope, msg, level, ts) never replaces it", () => {
  const lines: string[] = [];
  const off = setLogSink((line) => lines.push(line));
  try {
    logger("filters").info("filter loaded", { scope: "ns-a", msg: "x", level: "debug", n: 1 });
    logger("filters").info("plain", { n: 2 });
  } finally {
    off();
  }
  const [a, b] = lines.map((l) => JSON.parse(l));
  assert.equal(a.scope, "filters");
  assert.equal(a.msg, "filter loaded");
  assert.equal(a.level, "info");
  assert.equal(a.n, 1);
  assert.deepEqual(Object.keys(b), ["ts", "level", "scope", "msg", "n"]);
});
