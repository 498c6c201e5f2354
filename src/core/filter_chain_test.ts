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

// The synchronous fast path: while every hook answers synchronously, a phase is one plain loop
// (no Promise per phase or per filter); the first hook that suspends moves the rest of that
// phase onto the async path. These tests pin that it is taken and that it keeps the semantics.

function syncOf<T>(v: T | Promise<T>): T {
  assert.ok(!(v instanceof Promise), "expected the synchronous fast path");
  return v as T;
}

Deno.test("fast path: synchronous hooks answer both phases synchronously, in order, with routes and header changes", () => {
  const log: string[] = [];
  const route = { service: "reviews", subset: "v2" };
  const setter: HttpFilter = {
    ...tsFilter("a", CONT, "FAIL_CLOSE", log),
    onRequest: (c) => (log.push("req:a"), c.requestHeaders.set("x-a", "1"), CONT),
    onResponse: (_c, r) => (log.push("res:a"), r.responseHeaders.set("x-res", "a"), CONT),
  };
  const chain = new FilterChain([
    setter,
    tsFilter("b", { action: "continue", route }, "FAIL_CLOSE", log),
    tsFilter("c", CONT, "FAIL_CLOSE", log),
  ]);
  const c = ctx();
  assert.deepEqual(syncOf(chain.onRequest(c)), { kind: "forward", route });
  assert.equal(c.requestHeaders.get("x-a"), "1");
  const res = { status: 200, responseHeaders: new HeaderList(), responseBody: undefined };
  assert.deepEqual(syncOf(chain.onResponse(c, res)), { kind: "forward" });
  assert.equal(res.responseHeaders.get("x-res"), "a");
  chain.onDone(c);
  assert.deepEqual(log, [
    "req:a",
    "req:b",
    "req:c",
    "res:c",
    "res:b",
    "res:a",
    "done:a",
    "done:b",
    "done:c",
  ]);
  assert.equal(c.localReply, undefined);
});

Deno.test("fast path: a trap follows its fail policy synchronously (FAIL_OPEN skips, FAIL_CLOSE answers)", () => {
  const log: string[] = [];
  const thrower: HttpFilter = {
    ...tsFilter("t", CONT, "FAIL_OPEN", log),
    onRequest: () => {
      throw new Error("bug");
    },
  };
  const open = new FilterChain([
    thrower,
    tsFilter("o", FAILED, "FAIL_OPEN", log),
    tsFilter("c", CONT, "FAIL_CLOSE", log),
  ]);
  const c1 = ctx();
  assert.deepEqual(syncOf(open.onRequest(c1)), { kind: "forward", route: undefined });
  assert.equal(c1.localReply, undefined);
  assert.deepEqual(log, ["req:o", "req:c"]);

  log.length = 0;
  const closed = new FilterChain([
    tsFilter("x", FAILED, "FAIL_CLOSE", log),
    tsFilter("later", CONT, "FAIL_CLOSE", log),
  ]);
  const c2 = ctx("application/grpc");
  const v = syncOf(closed.onRequest(c2));
  assert.equal(v.kind, "respond");
  assert.equal(v.kind === "respond" && v.filter, "x");
  assert.equal(v.kind === "respond" && v.response.details, "wasm_fail_stream");
  assert.equal(v.kind === "respond" && v.response.grpcStatus, 14);
  assert.equal(c2.localReply?.details, "wasm_fail_stream", "the chain records the local reply");
  assert.deepEqual(log, ["req:x"], "no filter after a FAIL_CLOSE trap runs");

  // The response phase too: a failed response hook under FAIL_CLOSE replaces the response.
  const resFail: HttpFilter = { ...tsFilter("r", CONT), onResponse: () => FAILED };
  const c3 = ctx();
  const r = syncOf(
    new FilterChain([resFail]).onResponse(c3, {
      status: 200,
      responseHeaders: new HeaderList(),
      responseBody: undefined,
    }),
  );
  assert.equal(r.kind === "respond" && r.response.status, 503);
  assert.equal(c3.localReply?.status, 503);
});

Deno.test("fast path: a local reply stops the chain synchronously and is recorded for every filter's onDone", () => {
  const log: string[] = [];
  const seen: (number | undefined)[] = [];
  const deny: FilterOutcome = {
    action: "respond",
    response: { status: 403, headers: [["x-by", "b"]], body: "no", details: "rbac" },
  };
  const watcher: HttpFilter = {
    ...tsFilter("a", CONT, "FAIL_CLOSE", log),
    onDone: (c) => seen.push(c.localReply?.status),
  };
  const chain = new FilterChain([
    watcher,
    tsFilter("b", deny, "FAIL_CLOSE", log),
    tsFilter("c", CONT, "FAIL_CLOSE", log),
  ]);
  const c = ctx();
  const v = syncOf(chain.onRequest(c));
  assert.equal(v.kind === "respond" && v.filter, "b");
  assert.equal(v.kind === "respond" && v.response.status, 403);
  chain.onDone(c);
  assert.deepEqual(log, ["req:a", "req:b", "done:b", "done:c"]);
  assert.deepEqual(seen, [403], "a filter the request never reached still sees the reply");
});

Deno.test("fast path → async: the filter that suspends runs once, the route chosen before it survives, the rest run after it", async () => {
  const log: string[] = [];
  const route = { service: "s", subset: "v1" };
  let release: (() => void) | undefined;
  const slow: HttpFilter = {
    ...tsFilter("slow", CONT, "FAIL_CLOSE", log),
    onRequest: (c) => {
      log.push("req:slow");
      return new Promise<FilterOutcome>((r) => {
        release = () => {
          c.requestHeaders.set("x-slow", "done");
          r(CONT);
        };
      });
    },
    onResponse: () => (log.push("res:slow"), Promise.resolve(CONT)),
  };
  const after: HttpFilter = {
    ...tsFilter("after", CONT, "FAIL_CLOSE", log),
    onRequest: (c) => (log.push(`req:after:${c.requestHeaders.get("x-slow")}`), CONT),
  };
  const chain = new FilterChain([
    tsFilter("first", { action: "continue", route }, "FAIL_CLOSE", log),
    slow,
    after,
  ]);
  const c = ctx();
  const pending = chain.onRequest(c);
  assert.ok(pending instanceof Promise, "a suspending hook moves the phase to the async path");
  assert.deepEqual(log, ["req:first", "req:slow"], "nothing after the suspended filter ran yet");
  release!();
  assert.deepEqual(await pending, { kind: "forward", route });
  const res = chain.onResponse(c, {
    status: 200,
    responseHeaders: new HeaderList(),
    responseBody: undefined,
  });
  assert.ok(res instanceof Promise);
  assert.deepEqual(await res, { kind: "forward" });
  assert.deepEqual(log, [
    "req:first",
    "req:slow",
    "req:after:done",
    "res:after",
    "res:slow",
    "res:first",
  ]);

  // A suspended hook that rejects is a trap under its fail policy; a delay goes async too.
  const rejecting: HttpFilter = {
    ...tsFilter("rej", CONT, "FAIL_OPEN"),
    onRequest: () => Promise.reject(new Error("lost")),
  };
  const v = chain.onRequest.call(new FilterChain([rejecting, tsFilter("z", CONT)]), ctx());
  assert.ok(v instanceof Promise);
  assert.deepEqual(await v, { kind: "forward", route: undefined });
  const d = new FilterChain([
    tsFilter("d", { action: "delay", delayMs: 1, then: { action: "continue" } }),
  ]).onRequest(ctx());
  assert.ok(d instanceof Promise, "a delay is never applied on the fast path");
  assert.deepEqual(await d, { kind: "forward", route: undefined });
});
