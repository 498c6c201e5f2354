/**
 * VirtualService `fault` per route (l7-semantics F2/F4/F5/F6/F14/F15) and a request no route
 * matches (404), through real weft processes: weft.yaml on Deno and on Bun, and an xDS node fed
 * by the embedded control plane (istiod's per-route HTTPFault, path-matched routes included).
 * Each route's fault applies only to the requests that take that route, before the upstream and
 * before the route's timeout; an injected abort is never retried. Routes that answer themselves
 * (S12: `redirect`, `directResponse`) take their requests in the same first-match order.
 */
import { echoNodeConfig } from "./support/echo_node.ts";
import { callVip } from "./support/vip_call.ts";
import { assert, assertEquals } from "./support/assert.ts";
import { loopbackBlock, onDenoAndBun, withWeftYaml } from "./support/weft_proc.ts";
import { startHttpWorkload } from "./support/http_workload.ts";
import { onNodeB, sleepOnNodeA, withTwoXdsNodes } from "./support/xds_nodes.ts";

const PORT = 18080;

interface Reply {
  status: number;
  body: string;
  ms: number;
  grpcStatus: string | undefined;
  location: string | undefined;
}

async function call(
  host: string,
  path: string,
  from: string,
  headers: Record<string, string> = {},
): Promise<Reply> {
  const r = await callVip(host, path, from, { headers });
  return {
    status: r.status,
    body: r.body,
    ms: r.ms,
    grpcStatus: r.headers["grpc-status"] as string | undefined,
    location: r.headers.location,
  };
}

const route = (host: string) => [{ destination: { host } }];

/** VirtualService http routes, each with its own fault; no catch-all (so no match is a 404). */
function faultRoutes(host: string) {
  const at = (prefix: string) => [{ uri: { prefix } }];
  return [
    { match: at("/unset"), fault: { abort: { httpStatus: 503 } }, route: route(host) },
    {
      match: at("/abort"),
      fault: { abort: { httpStatus: 418, percentage: { value: 100 } } },
      retries: { attempts: 3, retryOn: "5xx,418" },
      route: route(host),
    },
    {
      match: at("/grpc"),
      fault: { abort: { grpcStatus: "UNAVAILABLE", percentage: { value: 100 } } },
      route: route(host),
    },
    {
      match: at("/delay"),
      fault: { delay: { fixedDelay: "300ms", percentage: { value: 100 } } },
      timeout: "200ms",
      route: route(host),
    },
    {
      match: at("/both"),
      fault: {
        delay: { fixedDelay: "200ms", percentage: { value: 100 } },
        abort: { httpStatus: 503, percentage: { value: 100 } },
      },
      route: route(host),
    },
    {
      match: at("/half"),
      fault: { abort: { httpStatus: 503, percentage: { value: 50 } } },
      route: route(host),
    },
    { match: at("/plain"), route: route(host) },
    {
      match: at("/rw"),
      rewrite: { uri: "/new", authority: "rewritten.example" },
      route: route(host),
    },
    { match: at("/moved"), redirect: { uri: "/new", authority: "example.com", redirectCode: 302 } },
    { match: at("/secure"), redirect: { scheme: "https" } },
    { match: at("/direct"), directResponse: { status: 429, body: { string: "slow down" } } },
  ];
}

async function checkFaults(vip: string, from: string, hits: () => number): Promise<void> {
  // F1/F13: no percentage, never.
  for (let i = 0; i < 10; i++) assertEquals((await call(vip, "/unset", from)).status, 200);
  // F5: the route's abort, its body; not sent upstream, not retried by the route's retries.
  const before = hits();
  const abort = await call(vip, "/abort", from);
  assertEquals([abort.status, abort.body, hits() - before], [418, "fault filter abort", 0]);
  // F5/F12: a gRPC abort is HTTP 200 with the grpc-status, no body.
  const g = await call(vip, "/grpc", from, { "content-type": "application/grpc" });
  assertEquals([g.status, g.grpcStatus, g.body], [200, "14", ""]);
  // F6: a delay alone continues; the route timeout (200 ms) starts after it, as Envoy's router.
  const delay = await call(vip, "/delay", from);
  assertEquals(delay.status, 200, delay.body);
  assert(delay.ms >= 280, `delayed ${delay.ms} ms`);
  // F4/F14: the delay, then the abort.
  const both = await call(vip, "/both", from);
  assertEquals([both.status, both.body], [503, "fault filter abort"]);
  assert(both.ms >= 180, `aborted after ${both.ms} ms`);
  // F15: 50 % over 200 requests (binomial sd ~7).
  let n = 0;
  for (let i = 0; i < 200; i++) if ((await call(vip, "/half", from)).status === 503) n++;
  assert(n > 60 && n < 140, `${n}/200 aborted`);
  // Other routes are untouched by those faults; no route matches → Envoy's 404.
  assertEquals((await call(vip, "/plain", from)).status, 200);
  assertEquals((await call(vip, "/other", from)).status, 404);
  // S12: rewrite — the matched prefix and the authority, the query kept.
  const rw = await call(vip, "/rw/x?q=1", from);
  const seen = JSON.parse(rw.body);
  assertEquals([rw.status, seen.path, seen.headers.host], [200, "/new/x?q=1", "rewritten.example"]);
  // S12: redirect (the request's query kept, Envoy's path_redirect) and direct response.
  const before2 = hits();
  const moved = await call(vip, "/moved/x?a=1", from);
  assertEquals([moved.status, moved.location], [302, "http://example.com/new?a=1"]);
  const secure = await call(vip, "/secure", from);
  assertEquals([secure.status, secure.location], [301, `https://${vip}/secure`]);
  const direct = await call(vip, "/direct", from);
  assertEquals([direct.status, direct.body], [429, "slow down"]);
  assertEquals(hits(), before2, "routes that answer themselves never reach the upstream");
}

async function weftYaml(runtime: string | undefined): Promise<void> {
  const ip = loopbackBlock();
  const dir = await Deno.makeTempDir({ prefix: "weft-route-fault-" });
  const up = await startHttpWorkload(ip(3), PORT, "v1");
  const cfg = echoNodeConfig(dir, ip, PORT, {
    endpoints: [{ address: ip(3), tunnel: "NONE" }],
    http: faultRoutes("echo"),
  });
  try {
    await withWeftYaml(dir, cfg, runtime, () => checkFaults(ip(100), ip(2), () => up.hits()));
  } finally {
    await up.close();
    await Deno.remove(dir, { recursive: true });
  }
}

for (
  const t of onDenoAndBun(
    (rt) => `l7 route faults (${rt}, weft.yaml): each route's own fault, 404 without a match`,
    weftYaml,
  )
) Deno.test(t);

Deno.test("xds: per-route faults (path-matched routes too) from the control plane apply per route", async () => {
  const ip = loopbackBlock();
  const dir = await Deno.makeTempDir({ prefix: "weft-route-fault-xds-" });
  const up = await startHttpWorkload(ip(3), PORT, "v1");
  const mesh = {
    workloads: [sleepOnNodeA(ip), onNodeB("echo", ip(3), { app: "echo" })],
    services: [{
      name: "echo",
      vips: [ip(100)],
      ports: [{ port: 80, targetPort: PORT, protocol: "HTTP" }],
      http: faultRoutes("echo").map((r) =>
        "route" in r ? { ...r, route: [{ destination: {} }] } : r
      ),
    }],
  };
  try {
    await withTwoXdsNodes(dir, mesh, () => checkFaults(ip(100), ip(2), () => up.hits()));
  } finally {
    await up.close();
    await Deno.remove(dir, { recursive: true });
  }
});
