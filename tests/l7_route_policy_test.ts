/**
 * VirtualService `timeout` and `retries` through real weft processes: client → weft (outbound
 * L7, routes from weft.yaml in Istio's shape, or from the control plane over xDS) → an HTTP
 * upstream in this process that is slow, fails or resets on purpose, counting the tries it sees
 * per request key.
 */
import { createHash } from "node:crypto";
import { connect } from "node:http2";
import { stringify } from "yaml";
import { join } from "node:path";
import { assert, assertEquals } from "./support/assert.ts";
import { LISTENERS, loopbackBlock, startWeft, type WeftProc } from "./support/weft_proc.ts";
import { onNodeB, sleepOnNodeA, withTwoXdsNodes } from "./support/xds_nodes.ts";
import { startHttpWorkload } from "./support/http_workload.ts";
import { callVip } from "./support/vip_call.ts";
import { startFlakyUpstream } from "./support/flaky_upstream.ts";

const PORT = 18080;

Deno.test("l7: VirtualService timeout (504) and retries (5xx, gateway-error, reset, per-try timeout) in a real weft node", async () => {
  const ip = loopbackBlock();
  const dir = await Deno.makeTempDir({ prefix: "weft-route-policy-" });
  const up = await startFlakyUpstream(ip(3), PORT);
  const route = [{ destination: { host: "echo" } }];
  const cfg = {
    node: { name: "node-a", defaultSourceWorkload: "sleep" },
    ca: { mode: "auto", stateDir: join(dir, "ca") },
    listeners: LISTENERS,
    workloads: [{ name: "sleep", namespace: "default", serviceAccount: "sleep", address: ip(2) }],
    services: [{
      name: "echo",
      namespace: "default",
      vips: [ip(100)],
      ports: [{ port: 80, targetPort: PORT, protocol: "HTTP" }],
      endpoints: [{ address: ip(3), tunnel: "NONE" }],
      http: [
        { match: [{ uri: { prefix: "/slow" } }], timeout: "300ms", route },
        {
          match: [{ uri: { prefix: "/retry" } }],
          retries: { attempts: 3, retryOn: "5xx" },
          route,
        },
        {
          match: [{ uri: { prefix: "/gw" } }],
          retries: { attempts: 2, retryOn: "gateway-error" },
          route,
        },
        {
          match: [{ uri: { prefix: "/pertry" } }],
          timeout: "3s",
          retries: { attempts: 2, perTryTimeout: "150ms", retryOn: "reset" },
          route,
        },
        { route },
      ],
    }],
  };
  await Deno.writeTextFile(join(dir, "a.yaml"), stringify(cfg));
  let weft: WeftProc | undefined;
  try {
    weft = await startWeft(["run", "--config", join(dir, "a.yaml")], { timeoutMs: 120_000 });
    const call = async (path: string, headers: Record<string, string> = {}, body?: string) => {
      const t0 = performance.now();
      const r = await fetch(`http://${ip(100)}:80${path}`, {
        method: body === undefined ? "GET" : "POST",
        headers,
        body: body ?? null,
      });
      return { status: r.status, body: await r.text(), ms: performance.now() - t0 };
    };
    // Route timeout: Envoy's 504 and body; a fast answer is untouched.
    const slow = await call("/slow?ms=6000"); // far beyond the timeout, also on a loaded box
    assertEquals([slow.status, slow.body], [504, "upstream request timeout"]);
    assert(slow.ms >= 250 && slow.ms < 4500, `timed out after ${slow.ms} ms`);
    assertEquals((await call("/slow?ms=20")).status, 200);
    // 5xx: two failures then success, on the third try.
    const ok = await call("/retry", { "x-key": "a", "x-fail": "2" });
    assertEquals(ok.status, 200, ok.body);
    assertEquals(JSON.parse(ok.body).try, 3);
    // Out of retries: the last answer goes to the client (1 + 3 tries).
    const out = await call("/retry", { "x-key": "b", "x-fail": "9", "x-status": "500" });
    assertEquals([out.status, out.body], [500, "failed try 4"]);
    assertEquals(up.tries.get("b"), 4);
    // A reset upstream is retried under 5xx; a POST body is sent again whole.
    const payload = "x".repeat(20_000);
    const post = await call(
      "/retry",
      { "x-key": "c", "x-fail": "1", "x-status": "reset" },
      payload,
    );
    assertEquals(post.status, 200, post.body);
    const got = JSON.parse(post.body);
    assertEquals([got.try, got.bytes], [2, payload.length]);
    assertEquals(got.sha, createHash("sha256").update(payload).digest("hex"));
    // gateway-error: 503 is retried, 500 is not.
    assertEquals(
      (await call("/gw", { "x-key": "d", "x-fail": "1", "x-status": "503" })).status,
      200,
    );
    const e500 = await call("/gw", { "x-key": "e", "x-fail": "1", "x-status": "500" });
    assertEquals([e500.status, up.tries.get("e")], [500, 1]);
    // Per-try timeout under `reset`: a stalled try is abandoned and the next one answers.
    const pt = await call("/pertry", { "x-key": "f", "x-fail": "1", "x-status": "stall" });
    assertEquals(pt.status, 200, pt.body);
    assertEquals(JSON.parse(pt.body).try, 2);
    // A route without retries sends once.
    const once = await call("/plain", { "x-key": "g", "x-fail": "1" });
    assertEquals([once.status, up.tries.get("g")], [503, 1]);
    // The same routes for HTTP/2 (h2c) clients, forwarded to the HTTP/1.1 upstream.
    const h2 = connect(`http://${ip(100)}:80`);
    try {
      const h2call = (path: string, headers: Record<string, string> = {}) =>
        new Promise<{ status: number; body: string }>((resolve, reject) => {
          const req = h2.request({ ":path": path, ...headers });
          let status = 0, body = "";
          req.on("response", (h) => status = Number(h[":status"]));
          req.setEncoding("utf8");
          req.on("data", (c: string) => body += c);
          req.on("end", () => resolve({ status, body }));
          req.on("error", reject);
          req.end();
        });
      const h2slow = await h2call("/slow?ms=2000");
      assertEquals([h2slow.status, h2slow.body], [504, "upstream request timeout"]);
      const h2ok = await h2call("/retry", { "x-key": "h", "x-fail": "2" });
      assertEquals([h2ok.status, JSON.parse(h2ok.body).try], [200, 3]);
    } finally {
      await new Promise<void>((r) => h2.close(() => r()));
    }
  } finally {
    await weft?.stop();
    await up.close();
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("xds: VirtualService timeout and retries reach a node as RouteAction timeout/retry_policy and apply", async () => {
  const ip = loopbackBlock();
  const dir = await Deno.makeTempDir({ prefix: "weft-route-policy-xds-" });
  const up = await startFlakyUpstream(ip(3), PORT);
  const route = [{ destination: {} }];
  const mesh = {
    workloads: [
      sleepOnNodeA(ip),
      onNodeB("echo", ip(3), { app: "echo" }),
    ],
    services: [{
      name: "echo",
      vips: [ip(100)],
      ports: [{ port: 80, targetPort: PORT, protocol: "HTTP" }],
      http: [
        { match: [{ uri: { prefix: "/slow" } }], timeout: "300ms", route },
        { retries: { attempts: 3, retryOn: "5xx" }, route },
      ],
    }],
  };
  try {
    await withTwoXdsNodes(dir, mesh, async () => {
      const call = (path: string, headers: Record<string, string> = {}) =>
        callVip(ip(100), path, ip(2), { headers });
      // The upstream would answer after 6 s; the 300 ms route timeout answers long before (the
      // margin covers a first request's HBONE set-up on a loaded CI box).
      const slow = await call("/slow?ms=6000");
      assertEquals([slow.status, slow.body], [504, "upstream request timeout"]);
      assert(slow.ms < 4500, `timed out after ${slow.ms} ms`);
      const ok = await call("/retry", { "x-key": "x1", "x-fail": "2" });
      assertEquals(ok.status, 200, ok.body);
      assertEquals(JSON.parse(ok.body).try, 3);
    });
  } finally {
    await up.close();
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("l7: VirtualService sourceLabels — each local source workload gets its own routes", async () => {
  const ip = loopbackBlock();
  const dir = await Deno.makeTempDir({ prefix: "weft-source-labels-" });
  const v1 = await startHttpWorkload(ip(3), PORT, "v1");
  const v2 = await startHttpWorkload(ip(4), PORT, "v2");
  const cfg = {
    node: { name: "node-a" },
    ca: { mode: "auto", stateDir: join(dir, "ca") },
    listeners: LISTENERS,
    workloads: [
      { name: "sleep", namespace: "default", serviceAccount: "sleep", address: ip(2) },
      {
        name: "canary-client",
        namespace: "default",
        serviceAccount: "canary",
        address: ip(6),
        labels: { app: "canary", track: "beta" },
      },
    ],
    services: [{
      name: "echo",
      namespace: "default",
      vips: [ip(100)],
      ports: [{ port: 80, targetPort: PORT, protocol: "HTTP" }],
      endpoints: [
        { address: ip(3), tunnel: "NONE", labels: { version: "v1" } },
        { address: ip(4), tunnel: "NONE", labels: { version: "v2" } },
      ],
      subsets: [{ name: "v1", labels: { version: "v1" } }, {
        name: "v2",
        labels: { version: "v2" },
      }],
      http: [
        {
          match: [{ sourceLabels: { app: "canary" }, uri: { prefix: "/" } }],
          route: [{ destination: { host: "echo", subset: "v2" } }],
        },
        { route: [{ destination: { host: "echo", subset: "v1" } }] },
      ],
    }],
  };
  await Deno.writeTextFile(join(dir, "a.yaml"), stringify(cfg));
  let weft: WeftProc | undefined;
  try {
    weft = await startWeft(["run", "--config", join(dir, "a.yaml")], { timeoutMs: 120_000 });
    const from = async (local: string) =>
      JSON.parse((await callVip(ip(100), "/x", local)).body).version;
    for (let i = 0; i < 5; i++) {
      assertEquals(await from(ip(2)), "v1", "sleep has no canary label: the default route");
      assertEquals(await from(ip(6)), "v2", "canary-client matches sourceLabels");
    }
  } finally {
    await weft?.stop();
    await v1.close();
    await v2.close();
    await Deno.remove(dir, { recursive: true });
  }
});
