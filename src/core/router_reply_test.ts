import assert from "node:assert/strict";
import { latchCors, routerReply } from "./router_reply.ts";
import type { LocalResponse } from "./filter_api.ts";

const reply = (details: string): LocalResponse => ({
  status: 503,
  headers: [["x-a", "1"]],
  body: "",
  details,
});

Deno.test("routerReply: a latched CORS request's headers on router replies only", () => {
  const key = {};
  const ops = { set: [["access-control-allow-origin", "https://o"]] as [string, string][] };
  assert.equal(routerReply(key, reply("upstream_connect_failure")).headers.length, 1, "unlatched");
  latchCors(key, ops);
  for (const d of ["upstream_connect_failure", "upstream_response_timeout", "cluster_not_found"]) {
    assert.deepEqual(routerReply(key, reply(d)).headers, [
      ["x-a", "1"],
      ["access-control-allow-origin", "https://o"],
    ]);
  }
  for (const d of ["fault_filter_abort", "cors_response", "direct_response", "wasm_fail_stream"]) {
    const r = reply(d);
    assert.equal(routerReply(key, r), r, d);
  }
  latchCors({}, undefined);
  assert.equal(routerReply({}, reply("cluster_not_found")).headers.length, 1);
});
