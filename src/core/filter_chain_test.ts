import assert from "node:assert/strict";
import type {
  FailPolicy,
  FilterOutcome,
  FilterRef,
  HttpFilter,
  HttpRequestContext,
} from "./mod.ts";
import { FilterChain, HeaderList, orderFilterRefs } from "./mod.ts";

/** A plain TypeScript filter: answers with a fixed outcome and records its calls. */
function tsFilter(
  name: string,
  out: FilterOutcome,
  failPolicy: FailPolicy = "FAIL_CLOSE",
  log: string[] = [],
): HttpFilter {
  return {
    name,
    failPolicy,
    wantsRequestBody: false,
    wantsResponseBody: false,
    onRequest: () => (log.push(`req:${name}`), out),
    onResponse:
      () => (log.push(`res:${name}`), out.action === "respond" ? { action: "continue" } : out),
    onDone: () => log.push(`done:${name}`),
  };
}

function ctx(contentType = "text/plain"): HttpRequestContext {
  return {
    direction: "inbound",
    method: "GET",
    path: "/",
    authority: "a",
    scheme: "http",
    protocol: "HTTP/1.1",
    requestHeaders: new HeaderList([["content-type", contentType]]),
    peer: {
      sourcePrincipal: undefined,
      sourceNamespace: undefined,
      sourceAddress: "127.0.0.1",
      sourcePort: 1,
      destinationAddress: "127.0.0.2",
      destinationPort: 2,
      destinationService: undefined,
      destinationWorkload: undefined,
      destinationNamespace: undefined,
      destinationPrincipal: undefined,
      mtls: false,
    },
    requestId: "r",
    filterState: new Map(),
    requestBody: undefined,
  };
}

const CONT: FilterOutcome = { action: "continue" };
const FAILED: FilterOutcome = { action: "failed", kind: "trap", message: "boom" };

Deno.test("refs are ordered by phase, then priority (higher first), then name", () => {
  const r = (name: string, phase: FilterRef["phase"], priority: number) => ({
    name,
    phase,
    priority,
  });
  const sorted = orderFilterRefs([
    r("z", "UNSPECIFIED", 0),
    r("b", "AUTHZ", 1),
    r("a", "AUTHZ", 1),
    r("c", "AUTHZ", 5),
    r("n", "AUTHN", -3),
  ]);
  assert.deepEqual(sorted.map((x) => x.name), ["n", "c", "a", "b", "z"]);
});

Deno.test("requests run in order, responses in reverse; a local response stops the chain", async () => {
  const log: string[] = [];
  const deny: FilterOutcome = {
    action: "respond",
    response: { status: 403, headers: [], body: "no", details: "d" },
  };
  const chain = new FilterChain([
    tsFilter("a", CONT, "FAIL_CLOSE", log),
    tsFilter("b", deny, "FAIL_CLOSE", log),
    tsFilter("c", CONT, "FAIL_CLOSE", log),
  ]);
  const c = ctx();
  const v = await chain.onRequest(c);
  assert.equal(v.kind === "respond" && v.response.status, 403);
  assert.equal(v.kind === "respond" && v.filter, "b");
  const chain2 = new FilterChain([
    tsFilter("a", CONT, "FAIL_CLOSE", log),
    tsFilter("c", CONT, "FAIL_CLOSE", log),
  ]);
  await chain2.onResponse(c, {
    status: 200,
    responseHeaders: new HeaderList(),
    responseBody: undefined,
  });
  chain2.onDone(c);
  assert.deepEqual(log, ["req:a", "req:b", "res:c", "res:a", "done:a", "done:c"]);
});

Deno.test("fail policies: FAIL_OPEN skips, FAIL_CLOSE and FAIL_RELOAD answer 503 (gRPC: UNAVAILABLE)", async () => {
  assert.deepEqual(await new FilterChain([tsFilter("o", FAILED, "FAIL_OPEN")]).onRequest(ctx()), {
    kind: "forward",
    route: undefined,
  });
  for (const p of ["FAIL_CLOSE", "FAIL_RELOAD"] as const) {
    const v = await new FilterChain([tsFilter("x", FAILED, p)]).onRequest(ctx());
    assert.equal(v.kind, "respond");
    if (v.kind === "respond") {
      assert.equal(v.response.status, 503);
      assert.equal(v.response.body, "");
      assert.equal(v.response.details, "wasm_fail_stream");
    }
  }
  const g = await new FilterChain([tsFilter("x", FAILED)]).onRequest(ctx("application/grpc"));
  assert.equal(g.kind === "respond" && g.response.grpcStatus, 14);
});

Deno.test("a throwing filter is treated as a trap; routes and delays are applied", async () => {
  const thrower: HttpFilter = {
    ...tsFilter("t", CONT),
    onRequest: () => {
      throw new Error("bug");
    },
  };
  const v = await new FilterChain([thrower]).onRequest(ctx());
  assert.equal(v.kind === "respond" && v.response.status, 503);
  const route = { service: "s", subset: "v2" };
  const delayed: FilterOutcome = {
    action: "delay",
    delayMs: 15,
    then: { action: "continue", route },
  };
  const t0 = performance.now();
  const r = await new FilterChain([tsFilter("d", delayed)]).onRequest(ctx());
  assert.ok(performance.now() - t0 >= 14);
  assert.deepEqual(r, { kind: "forward", route });
});
