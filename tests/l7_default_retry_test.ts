/**
 * Istio's default retry policy (istio/istio route/retry/retry.go) through real weft processes on
 * Deno and on Bun: routes of an L7 service that set no `retries` get 2 retries on
 * connect-failure,refused-stream,unavailable,cancelled with the previous_hosts predicate (an
 * upstream's own 503 is not retried since Istio 1.24); `attempts: 0` turns them off; MeshConfig
 * `defaultHttpRetryPolicy` (weft.yaml `meshConfig`) replaces them; a body over the 1 MiB replay
 * limit goes once. Client → weft (outbound L7; the `/slow` route's own timeout makes the port L7,
 * the other routes carry only the default) → endpoints on loopback, one of them refusing
 * connections.
 */
import { startFlakyUpstream } from "./support/flaky_upstream.ts";
import { callVip } from "./support/vip_call.ts";
import { join } from "node:path";
import { assert, assertEquals } from "./support/assert.ts";
import {
  LISTENERS,
  loopbackBlock,
  onDenoAndBun,
  type WeftProc,
  withWeftYaml,
} from "./support/weft_proc.ts";

const PORT = 18080;

interface Reply {
  status: number;
  body: string;
}

async function call(
  host: string,
  path: string,
  from: string,
  headers: Record<string, string> = {},
  body?: Uint8Array,
): Promise<Reply> {
  const r = await callVip(host, path, from, body ? { headers, body } : { headers });
  return { status: r.status, body: r.body };
}

async function retries(weft: WeftProc, reason: string): Promise<number> {
  const text = await (await fetch(`http://${weft.ready.metrics}/metrics`)).text();
  const line = text.split("\n").find((l) =>
    l.startsWith(`weft_http_upstream_retries_total{reason="${reason}"}`)
  );
  return line ? Number(line.split(" ").pop()) : 0;
}

function config(
  dir: string,
  ip: (n: number) => string,
  services: Record<string, unknown>[],
  meshConfig?: Record<string, unknown>,
) {
  return {
    node: { name: "node-a" },
    ca: { mode: "auto", stateDir: join(dir, "ca") },
    listeners: LISTENERS,
    ...(meshConfig ? { meshConfig } : {}),
    workloads: [{ name: "sleep", namespace: "default", serviceAccount: "sleep", address: ip(2) }],
    services,
  };
}

/** `/slow` has a timeout of its own (the port is L7 for it); the rest only the default. */
function service(name: string, vip: string, endpoints: string[], extra: unknown[] = []) {
  const route = [{ destination: { host: name } }];
  return {
    name,
    namespace: "default",
    vips: [vip],
    ports: [{ port: 80, targetPort: PORT, protocol: "HTTP" }],
    endpoints: endpoints.map((address) => ({ address, tunnel: "NONE" })),
    http: [
      { match: [{ uri: { prefix: "/slow" } }], timeout: "5s", route },
      ...extra,
      { route },
    ],
  };
}

async function withWeft(
  runtime: string | undefined,
  cfg: (dir: string) => Record<string, unknown>,
  body: (weft: WeftProc) => Promise<void>,
): Promise<void> {
  const dir = await Deno.makeTempDir({ prefix: "weft-default-retry-" });
  try {
    await withWeftYaml(dir, cfg(dir), runtime, body);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
}

async function defaultPolicy(runtime: string | undefined): Promise<void> {
  const ip = loopbackBlock();
  const up = await startFlakyUpstream(ip(4), PORT); // ip(3) and ip(5) listen on nothing: connections refused
  const off = { match: [{ uri: { prefix: "/off" } }], retries: { attempts: 0 }, route: [] };
  try {
    await withWeft(runtime, (dir) =>
      config(dir, ip, [
        service("echo", ip(100), [ip(3), ip(4)]),
        service("gone", ip(101), [ip(5)], [{
          ...off,
          route: [{ destination: { host: "gone" } }],
        }]),
      ]), async (weft) => {
      const from = ip(2);
      // A refused connection is retried on the other endpoint (previous_hosts): with a random
      // pick of one of two endpoints per try and no predicate, 20 requests would fail ~93% of runs.
      for (let i = 0; i < 20; i++) {
        const r = await call(ip(100), `/x${i}`, from, { "x-key": `ok${i}` });
        assertEquals(r.status, 200, `request ${i}: ${r.body}`);
      }
      assert((await retries(weft, "connect-failure")) > 0, "no connect-failure retry counted");
      // The upstream's own 503 is not retried by default (Istio >= 1.24).
      const once = await call(ip(100), "/y", from, { "x-key": "503", "x-fail": "1" });
      assertEquals([once.status, once.body, up.tries.get("503")], [503, "failed try 1", 1]);
      // Only refused endpoints: three tries (two retries), then Envoy's 503.
      const before = await retries(weft, "connect-failure");
      const gone = await call(ip(101), "/x", from);
      assertEquals([gone.status, gone.body], [503, "upstream connect error"]);
      assertEquals(await retries(weft, "connect-failure") - before, 2);
      // attempts: 0 turns the default off: one try.
      const offReply = await call(ip(101), "/off", from);
      assertEquals(offReply.status, 503);
      assertEquals(await retries(weft, "connect-failure") - before, 2);
    });
  } finally {
    await up.close();
  }
}

async function meshDefault(runtime: string | undefined): Promise<void> {
  const ip = loopbackBlock();
  const up = await startFlakyUpstream(ip(4), PORT);
  try {
    await withWeft(runtime, (dir) =>
      config(dir, ip, [
        service("echo", ip(100), [ip(4)], [{
          match: [{ uri: { prefix: "/own" } }],
          retries: { attempts: 1, retryOn: "gateway-error" },
          route: [{ destination: { host: "echo" } }],
        }]),
      ], { defaultHttpRetryPolicy: { attempts: 3, retryOn: "503" } }), async (weft) => {
      const from = ip(2);
      // The mesh default retries the 503s the built-in one leaves alone.
      const get = await call(ip(100), "/x", from, { "x-key": "g", "x-fail": "2" });
      assertEquals([get.status, JSON.parse(get.body).try], [200, 3]);
      assert((await retries(weft, "503")) >= 2);
      // A route's own retries replace it whole (attempts 1).
      const own = await call(ip(100), "/own", from, { "x-key": "o", "x-fail": "2" });
      assertEquals([own.status, up.tries.get("o")], [503, 2]);
      // A body held whole (within 1 MiB) is sent again; a 2 MiB streamed one goes once.
      const small = await call(
        ip(100),
        "/p",
        from,
        { "x-key": "s", "x-fail": "1" },
        new Uint8Array(1000),
      );
      assertEquals([small.status, JSON.parse(small.body).bytes], [200, 1000]);
      const big = await call(
        ip(100),
        "/p",
        from,
        { "x-key": "b", "x-fail": "1" },
        new Uint8Array(2 << 20),
      );
      assertEquals([big.status, up.tries.get("b")], [503, 1]);
    });
  } finally {
    await up.close();
  }
}

for (
  const t of onDenoAndBun(
    (rt) => `l7 default retries (${rt}): connect-failure to another endpoint, no 503, attempts 0`,
    defaultPolicy,
  )
) Deno.test(t);
for (
  const t of onDenoAndBun(
    (rt) => `l7 default retries (${rt}): MeshConfig defaultHttpRetryPolicy, own retries, bodies`,
    meshDefault,
  )
) Deno.test(t);
