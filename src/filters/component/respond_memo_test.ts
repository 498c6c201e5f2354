import assert from "node:assert/strict";
import {
  type RespondDecision,
  RespondMemo,
  type RouteDecision,
  RouteMemo,
} from "./respond_memo.ts";

/** A guest memory holding one local-response (direct_abi.ts layout) at RET. */
const RET = 0;
function memory(): { u8: Uint8Array; dv: DataView; put(s: string, at: number): void } {
  const u8 = new Uint8Array(4096);
  const dv = new DataView(u8.buffer);
  const put = (s: string, at: number) => u8.set(new TextEncoder().encode(s), at);
  // status, one header (table @256), body @512, details @768
  dv.setUint16(RET + 4, 403, true);
  dv.setUint32(RET + 8, 256, true);
  dv.setUint32(RET + 12, 1, true);
  const str = (at: number, p: number, s: string) => {
    put(s, p);
    dv.setUint32(at, p, true);
    dv.setUint32(at + 4, new TextEncoder().encode(s).length, true);
  };
  str(256, 300, "content-type");
  str(264, 340, "text/plain");
  str(RET + 16, 512, "RBAC: access denied");
  str(RET + 24, 768, "rbac_access_denied_matched_policy[ns[a]-policy[b]-rule[0]]");
  return { u8, dv, put };
}

function lifted(): RespondDecision {
  return {
    action: "respond",
    response: {
      status: 403,
      headers: [["content-type", "text/plain"]],
      body: new TextEncoder().encode("RBAC: access denied"),
      details: "rbac_access_denied_matched_policy[ns[a]-policy[b]-rule[0]]",
    },
  };
}

Deno.test("a repeated local response is the remembered (frozen) decision", () => {
  const { u8, dv } = memory();
  const memo = new RespondMemo();
  assert.equal(memo.find(u8, dv, RET), undefined);
  const d = memo.remember(lifted());
  assert.ok(Object.isFrozen(d) && Object.isFrozen(d.response));
  assert.ok(Object.isFrozen(d.response.headers) && Object.isFrozen(d.response.headers[0]));
  assert.equal(memo.find(u8, dv, RET), d);
});

Deno.test("any changed byte, status or header count misses", () => {
  const cases: [string, (m: ReturnType<typeof memory>) => void][] = [
    ["status", (m) => m.dv.setUint16(RET + 4, 401, true)],
    ["header count", (m) => m.dv.setUint32(RET + 12, 0, true)],
    ["header name", (m) => m.put("Content-type", 300)],
    ["header value", (m) => m.put("text/plaiN", 340)],
    ["body", (m) => m.put("rbac", 512)],
    ["body length", (m) => m.dv.setUint32(RET + 20, 18, true)],
    ["details", (m) => m.put("1", 768 + 56)],
    ["details length", (m) => m.dv.setUint32(RET + 28, 3, true)],
    ["details out of memory", (m) => m.dv.setUint32(RET + 24, 4090, true)],
    ["header table out of memory", (m) => m.dv.setUint32(RET + 8, 4088, true)],
  ];
  for (const [what, change] of cases) {
    const m = memory();
    const memo = new RespondMemo();
    memo.remember(lifted());
    change(m);
    assert.equal(memo.find(m.u8, m.dv, RET), undefined, what);
  }
});

Deno.test("non-ASCII responses are not remembered (bytes would not compare as chars)", () => {
  const { u8, dv } = memory();
  const memo = new RespondMemo();
  const d = lifted();
  const other: RespondDecision = { ...d, response: { ...d.response, details: "é" } };
  assert.equal(memo.remember(other), other);
  assert.ok(!Object.isFrozen(other));
  assert.equal(memo.find(u8, dv, RET), undefined);
});

Deno.test("several distinct responses are remembered side by side", () => {
  const a = memory();
  const memo = new RespondMemo();
  const first = memo.remember(lifted());
  const b = memory();
  b.put("rbac_access_denied_matched_policy[ns[a]-policy[c]-rule[0]]", 768);
  const d2 = lifted();
  const second = memo.remember({
    ...d2,
    response: {
      ...d2.response,
      details: "rbac_access_denied_matched_policy[ns[a]-policy[c]-rule[0]]",
    },
  });
  assert.equal(memo.find(a.u8, a.dv, RET), first);
  assert.equal(memo.find(b.u8, b.dv, RET), second);
});

/** A route (service @4/@8, subset tag @12, ptr/len @16/@20) at RET. */
function routeMemory(service: string, subset: string | undefined) {
  const u8 = new Uint8Array(1024);
  const dv = new DataView(u8.buffer);
  const put = (s: string, at: number, lenAt: number) => {
    u8.set(new TextEncoder().encode(s), at);
    dv.setUint32(lenAt - 4, at, true);
    dv.setUint32(lenAt, s.length, true);
  };
  put(service, 256, RET + 8);
  if (subset !== undefined) {
    dv.setUint8(RET + 12, 1);
    put(subset, 512, RET + 20);
  }
  return { u8, dv };
}

const route = (service: string, subset?: string): RouteDecision => ({
  action: "continue",
  route: { service, subset },
});

Deno.test("a repeated route is the remembered (frozen) decision; any difference misses", () => {
  const memo = new RouteMemo();
  const v1 = routeMemory("reviews", "v1");
  assert.equal(memo.find(v1.u8, v1.dv, RET), undefined);
  const d = memo.remember(route("reviews", "v1"));
  assert.ok(Object.isFrozen(d) && Object.isFrozen(d.route));
  assert.equal(memo.find(v1.u8, v1.dv, RET), d);
  for (const [service, subset] of [["reviews", "v2"], ["reviewz", "v1"], ["reviews", undefined]]) {
    const m = routeMemory(service!, subset);
    assert.equal(memo.find(m.u8, m.dv, RET), undefined, `${service} ${subset}`);
  }
  const bare = memo.remember(route("cdn"));
  const m = routeMemory("cdn", undefined);
  assert.equal(memo.find(m.u8, m.dv, RET), bare);
  const withSubset = routeMemory("cdn", "a");
  assert.equal(memo.find(withSubset.u8, withSubset.dv, RET), undefined);
});
