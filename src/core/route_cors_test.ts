import assert from "node:assert/strict";
import { HeaderList } from "./header_map.ts";
import type { HttpRequestContext } from "./filter_api.ts";
import { corsDecision, originAllowed, type RouteCors, withCors } from "./route_cors.ts";
import { type RoutePolicy, routePolicyFor } from "./route_policy.ts";
import { applyResponseHeaders } from "./route_headers.ts";
import { beforeUpstream } from "./route_fault.ts";

const ctx = (method: string, headers: [string, string][] = []): HttpRequestContext => ({
  direction: "outbound",
  method,
  path: "/",
  authority: "echo",
  scheme: "http",
  protocol: "HTTP/1.1",
  requestHeaders: new HeaderList(headers),
  peer: { sourceAddress: "127.0.0.1" } as HttpRequestContext["peer"],
  requestId: "r",
  filterState: new Map(),
  requestBody: undefined,
});

const CORS: RouteCors = {
  allowOrigins: [{ exact: "https://a.example" }, { prefix: "https://p." }, {
    regex: "https://[a-z]+\\.r\\.example",
  }],
  allowMethods: "GET,POST",
  allowHeaders: "x-a,x-b",
  exposeHeaders: "x-e",
  maxAge: "3600",
  allowCredentials: true,
  forwardNotMatchingPreflights: true,
};

const preflight = (origin: string, extra: [string, string][] = []) =>
  ctx("OPTIONS", [["origin", origin], ["access-control-request-method", "PUT"], ...extra]);

Deno.test("CORS: origins match exactly, by prefix, by whole regex; a matcher of '*' allows all", () => {
  assert.equal(originAllowed(CORS, "https://a.example"), true);
  assert.equal(originAllowed(CORS, "https://a.example.evil"), false);
  assert.equal(originAllowed(CORS, "https://p.anything"), true);
  assert.equal(originAllowed(CORS, "https://x.r.example"), true);
  assert.equal(originAllowed(CORS, "https://x.r.example.evil"), false);
  assert.equal(originAllowed({ ...CORS, allowOrigins: [{ exact: "*" }] }, "https://z"), true);
  assert.equal(originAllowed({ ...CORS, allowOrigins: [{ regex: ".*" }] }, "https://z"), true);
  assert.equal(originAllowed({ ...CORS, allowOrigins: [] }, "https://a.example"), false);
});

Deno.test("CORS: no or empty Origin, and a disallowed actual request, are untouched", () => {
  assert.equal(corsDecision(CORS, ctx("GET")), undefined);
  assert.equal(corsDecision(CORS, ctx("GET", [["origin", ""]])), undefined);
  assert.equal(corsDecision(CORS, ctx("GET", [["origin", "https://b.example"]])), undefined);
  // An OPTIONS without Access-Control-Request-Method is an actual request.
  const d = corsDecision(CORS, ctx("OPTIONS", [["origin", "https://a.example"]]));
  assert.equal(d?.kind, "actual");
});

Deno.test("CORS: an allowed preflight is answered with Envoy's headers", () => {
  const d = corsDecision(CORS, preflight("https://a.example"));
  assert.equal(d?.kind, "preflight");
  if (d?.kind !== "preflight") return;
  assert.equal(d.reply.status, 200);
  assert.equal(d.reply.details, "cors_response");
  assert.deepEqual(d.reply.headers, [
    ["access-control-allow-origin", "https://a.example"],
    ["access-control-allow-credentials", "true"],
    ["access-control-allow-methods", "GET,POST"],
    ["access-control-allow-headers", "x-a,x-b"],
    ["access-control-max-age", "3600"],
  ]);
  // "*" echoes the request's method and headers; unset fields give no header.
  const star = { ...CORS, allowMethods: "*", allowHeaders: "*", maxAge: "" };
  const s = corsDecision(
    { ...star, allowCredentials: false },
    preflight("https://a.example", [["access-control-request-headers", "x-q"]]),
  );
  assert.deepEqual(s?.kind === "preflight" && s.reply.headers, [
    ["access-control-allow-origin", "https://a.example"],
    ["access-control-allow-methods", "PUT"],
    ["access-control-allow-headers", "x-q"],
  ]);
});

Deno.test("CORS: a disallowed preflight goes on (FORWARD) or is answered without allow-origin (IGNORE)", () => {
  assert.equal(corsDecision(CORS, preflight("https://b.example")), undefined);
  const d = corsDecision(
    { ...CORS, forwardNotMatchingPreflights: false },
    preflight("https://b.example"),
  );
  assert.equal(d?.kind, "preflight");
  if (d?.kind !== "preflight") return;
  assert.equal(d.reply.headers.some(([k]) => k === "access-control-allow-origin"), false);
  assert.equal(d.reply.headers.some(([k]) => k === "access-control-allow-methods"), true);
});

Deno.test("CORS: an actual request's response gets allow-origin, credentials, expose last", () => {
  const policy: RoutePolicy = {
    match: [],
    timeoutMs: undefined,
    retries: undefined,
    cors: CORS,
    headers: { response: { set: [["access-control-allow-origin", "*"], ["x-r", "1"]] } },
  };
  const got = withCors(policy, ctx("POST", [["origin", "https://p.q"]]));
  const h = new HeaderList([["access-control-allow-origin", "https://up"]]);
  applyResponseHeaders(got.headers!, undefined, h);
  assert.deepEqual(h.entries(), [
    ["access-control-allow-origin", "https://p.q"],
    ["x-r", "1"],
    ["access-control-allow-credentials", "true"],
    ["access-control-expose-headers", "x-e"],
  ]);
  // Without an Origin the route's own policy object goes on (no allocation).
  assert.equal(withCors(policy, ctx("POST")), policy);
  // The route's direct response gets the headers too; a preflight is the route's reply.
  const direct = { ...policy, reply: { kind: "direct" as const, status: 204, body: "" } };
  const r = beforeUpstream(
    withCors(direct, ctx("GET", [["origin", "https://a.example"]])),
    ctx("GET"),
  );
  assert.ok(r && !(r instanceof Promise));
  assert.equal(r.status, 204);
  assert.equal(
    r.headers.find(([k]) => k === "access-control-allow-origin")?.[1],
    "https://a.example",
  );
  const p = beforeUpstream(withCors(policy, preflight("https://a.example")), ctx("OPTIONS"));
  assert.ok(p && !(p instanceof Promise));
  assert.equal(p.details, "cors_response");
});

Deno.test("CORS: a route with only CORS is the request's policy", () => {
  const routes: RoutePolicy[] = [{
    match: [],
    timeoutMs: undefined,
    retries: undefined,
    cors: CORS,
  }];
  assert.equal(routePolicyFor(routes, ctx("GET"), { port: 80 })?.cors, CORS);
});
