/**
 * Gateway API HTTPRoute bound to a Service (GAMMA; l7-semantics S18–S23) through real weft
 * processes on Deno and on Bun: an HTTPRoute in weft.yaml `resources` with `parentRefs: [{kind:
 * Service}]` routes that Service's requests — Gateway API precedence across two routes (exact
 * path, longest prefix, method, header count; PathPrefix by whole path elements), relative
 * weights (default 1, 0 = none), RequestRedirect (302 by default), a rule without backends (500),
 * `timeouts.request`, Request/ResponseHeaderModifier on a rule and a backendRef, and 404 when
 * nothing matches.
 */
import { callVip } from "./support/vip_call.ts";
import { assert, assertEquals } from "./support/assert.ts";
import { loopbackBlock, onDenoAndBun, withWeftYaml } from "./support/weft_proc.ts";
import { startHttpWorkload } from "./support/http_workload.ts";
import { threeServiceNodeConfig } from "./support/echo_node.ts";

const PORT = 18080;

async function call(
  host: string,
  path: string,
  from: string,
  opts: { method?: string; headers?: Record<string, string> } = {},
) {
  const r = await callVip(host, path, from, opts);
  return { ...r, location: r.headers.location };
}

const version = (r: { status: number; body: string }): string =>
  r.status === 200 ? JSON.parse(r.body).version : String(r.status);

function httpRoute(name: string, created: string, rules: unknown[]) {
  return {
    apiVersion: "gateway.networking.k8s.io/v1",
    kind: "HTTPRoute",
    metadata: { name, namespace: "default", creationTimestamp: created },
    spec: { parentRefs: [{ group: "", kind: "Service", name: "echo", port: 80 }], rules },
  };
}

const backend = (name: string, weight?: number) => ({
  name,
  port: 80,
  ...(weight !== undefined ? { weight } : {}),
});

async function checkRoutes(vip: string, from: string): Promise<void> {
  const v = async (path: string, opts = {}) => version(await call(vip, path, from, opts));
  // Precedence (S20): exact, then the longest prefix, then method, then header count.
  assertEquals(await v("/api/v2/exact"), "a");
  assertEquals(await v("/api/v2/x"), "b");
  assertEquals(await v("/api/x"), "a");
  assertEquals(await v("/api/x", { method: "POST" }), "b");
  assertEquals(await v("/hdr", { headers: { "x-canary": "1" } }), "b");
  assertEquals(await v("/hdr"), "a");
  // PathPrefix matches whole path elements.
  assertEquals(await v("/apix"), "404");
  // Weights (S18): 0 gets nothing; 3:1 lands near 75 %.
  for (let i = 0; i < 10; i++) assertEquals(await v("/w0"), "b");
  let na = 0;
  for (let i = 0; i < 200; i++) if ((await v("/split")) === "a") na++;
  assert(na > 120 && na < 180, `${na}/200 to svc-a`);
  // S19: a rule with no backends answers 500; S21: RequestRedirect is a 302 by default.
  assertEquals((await call(vip, "/none", from)).status, 500);
  const old = await call(vip, "/old?x=1", from);
  assertEquals([old.status, old.location], [302, "http://new.example/new?x=1"]);
  // S22: timeouts.request.
  const slow = await call(vip, "/slow", from, { headers: {} });
  assertEquals(slow.status, 200); // the workload answers at once
  // S21: URLRewrite ReplacePrefixMatch "/" drops the matched path element.
  assertEquals(JSON.parse((await call(vip, "/rw/x?y=1", from)).body).path, "/x?y=1");
  assertEquals(JSON.parse((await call(vip, "/rw", from)).body).path, "/");
  // S21: RequestHeaderModifier / ResponseHeaderModifier (rule and backendRef).
  const hm = await call(vip, "/hm", from, {
    headers: { "x-set": "client", "x-add": "client", "x-gone": "1" },
  });
  const seen = JSON.parse(hm.body).headers as Record<string, string>;
  assertEquals([seen["x-set"], seen["x-add"], seen["x-gone"], seen["x-backend"]], [
    "s",
    "client, a",
    undefined,
    "b",
  ]);
  assertEquals(hm.headers["x-resp"], "r");
  // S20: no match → 404.
  assertEquals((await call(vip, "/elsewhere", from)).status, 404);
}

async function run(runtime: string | undefined): Promise<void> {
  const ip = loopbackBlock();
  const dir = await Deno.makeTempDir({ prefix: "weft-http-route-" });
  const a = await startHttpWorkload(ip(3), PORT, "a");
  const b = await startHttpWorkload(ip(4), PORT, "b");
  const cfg = threeServiceNodeConfig(dir, ip, PORT, [
    // The newer route lists its rules first; precedence, not order, decides.
    httpRoute("newer", "2026-02-01T00:00:00Z", [
      {
        matches: [{ path: { type: "PathPrefix", value: "/api" } }],
        backendRefs: [backend("svc-a")],
      },
      {
        matches: [{ path: { type: "PathPrefix", value: "/api/v2" } }],
        backendRefs: [backend("svc-b")],
      },
      {
        matches: [{ path: { type: "Exact", value: "/api/v2/exact" } }],
        backendRefs: [backend("svc-a")],
      },
      {
        matches: [{ path: { value: "/hdr" }, headers: [{ name: "X-Canary", value: "1" }] }],
        backendRefs: [backend("svc-b")],
      },
      {
        matches: [{ path: { value: "/w0" } }],
        backendRefs: [backend("svc-a", 0), backend("svc-b")],
      },
      {
        matches: [{ path: { value: "/split" } }],
        backendRefs: [backend("svc-a", 3), backend("svc-b", 1)],
      },
      { matches: [{ path: { value: "/none" } }] },
      {
        matches: [{ path: { type: "Exact", value: "/old" } }],
        filters: [{
          type: "RequestRedirect",
          requestRedirect: {
            hostname: "new.example",
            path: { type: "ReplaceFullPath", replaceFullPath: "/new" },
          },
        }],
      },
    ]),
    httpRoute("older", "2026-01-01T00:00:00Z", [
      {
        matches: [{ path: { value: "/rw" } }],
        filters: [{
          type: "URLRewrite",
          urlRewrite: { path: { type: "ReplacePrefixMatch", replacePrefixMatch: "/" } },
        }],
        backendRefs: [backend("svc-a")],
      },
      { matches: [{ path: { value: "/hdr" } }], backendRefs: [backend("svc-a")] },
      {
        // S21: header modifiers on the rule and on a backendRef.
        matches: [{ path: { value: "/hm" } }],
        filters: [
          {
            type: "RequestHeaderModifier",
            requestHeaderModifier: {
              set: [{ name: "X-Set", value: "s" }],
              add: [{ name: "x-add", value: "a" }],
              remove: ["x-gone"],
            },
          },
          {
            type: "ResponseHeaderModifier",
            responseHeaderModifier: {
              set: [{ name: "x-resp", value: "r" }],
              remove: ["x-powered-by"],
            },
          },
        ],
        backendRefs: [{
          ...backend("svc-b"),
          filters: [{
            type: "RequestHeaderModifier",
            requestHeaderModifier: { set: [{ name: "x-backend", value: "b" }] },
          }],
        }],
      },
      { matches: [{ path: { value: "/api" }, method: "POST" }], backendRefs: [backend("svc-b")] },
      {
        matches: [{ path: { value: "/slow" } }],
        backendRefs: [backend("svc-a")],
        timeouts: { request: "250ms" },
      },
    ]),
  ]);
  try {
    await withWeftYaml(dir, cfg, runtime, () => checkRoutes(ip(100), ip(2)));
  } finally {
    await a.close();
    await b.close();
    await Deno.remove(dir, { recursive: true });
  }
}

for (
  const t of onDenoAndBun(
    (rt) => `gamma: HTTPRoute on a Service (${rt}): precedence, weights, redirect, 500, 404`,
    run,
  )
) Deno.test(t);
