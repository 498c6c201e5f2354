/**
 * Destinations that do not exist are a share of error answers, not a load error, through real
 * weft processes: weft.yaml on Deno and on Bun, and an xDS node fed by the embedded control
 * plane (whose RDS names a cluster CDS lacks).
 * - S17 (l7-semantics §4.3): a VirtualService destination whose subset no DestinationRule
 *   defines is accepted, as Istio does (istioctl analyze only warns), and points at a cluster
 *   that does not exist, so Envoy answers its share 503 NC (`cluster_not_found`).
 * - S19 (§4.4): an HTTPRoute backendRef to a Service that does not exist: its share gets 500.
 * The other weighted destinations keep their share; the missing ones never reach an upstream.
 */
import { echoNodeConfig } from "./support/echo_node.ts";
import { callVip } from "./support/vip_call.ts";
import { assert, assertEquals } from "./support/assert.ts";
import { loopbackBlock, onDenoAndBun, withWeftYaml } from "./support/weft_proc.ts";
import { startHttpWorkload } from "./support/http_workload.ts";
import { onNodeB, sleepOnNodeA, withTwoXdsNodes } from "./support/xds_nodes.ts";

const PORT = 18080;
const N = 100;

async function call(host: string, path: string, from: string) {
  const r = await callVip(host, path, from);
  return { status: r.status, body: r.body };
}

/** `/half`: v1 and the undefined v9 at 50/50; `/none`: only v9; anything else: v1. */
const ROUTES = [
  {
    match: [{ uri: { prefix: "/half" } }],
    route: [
      { destination: { host: "echo", subset: "v1" }, weight: 50 },
      { destination: { host: "echo", subset: "v9" }, weight: 50 },
    ],
  },
  {
    match: [{ uri: { prefix: "/none" } }],
    route: [{ destination: { host: "echo", subset: "v9" } }],
  },
  { route: [{ destination: { host: "echo", subset: "v1" } }] },
];

/** `/none` goes only to the missing destination, `/half` half to it and half to one that
 * exists; `status`: the missing share's answer (503 NC for a subset, 500 for a backendRef). */
async function check(
  vip: string,
  from: string,
  hits: () => number,
  status: number,
): Promise<void> {
  assertEquals((await call(vip, "/ok", from)).status, 200);
  // Every request answered locally, none reaches the upstream, none retried (Istio's default
  // retries cover connect failures, not a missing cluster).
  const before = hits();
  for (let i = 0; i < 10; i++) {
    const r = await call(vip, "/none", from);
    assertEquals([r.status, r.body], [status, ""]);
  }
  assertEquals(hits(), before, "a missing cluster never reaches an upstream");
  // 50/50: the missing share is `status`, the other still serves its share (binomial sd 5).
  let ok = 0, missing = 0;
  const start = hits();
  for (let i = 0; i < N; i++) {
    const s = (await call(vip, "/half", from)).status;
    if (s === 200) ok++;
    else if (s === status) missing++;
  }
  assertEquals(ok + missing, N);
  assert(ok > 25 && ok < 75, `${ok}/${N} served, ${missing} answered ${status}`);
  assertEquals(hits() - start, ok);
}

/** An HTTPRoute on the echo Service: `/half` splits between echo and the Service "ghost" that
 * does not exist, `/none` goes only to ghost, anything else to echo. */
const GHOST_ROUTE = {
  apiVersion: "gateway.networking.k8s.io/v1",
  kind: "HTTPRoute",
  metadata: { name: "ghost", namespace: "default" },
  spec: {
    parentRefs: [{ group: "", kind: "Service", name: "echo", port: 80 }],
    rules: [
      {
        matches: [{ path: { value: "/half" } }],
        backendRefs: [{ name: "echo", port: 80 }, { name: "ghost", port: 80 }],
      },
      { matches: [{ path: { value: "/none" } }], backendRefs: [{ name: "ghost", port: 80 }] },
      { backendRefs: [{ name: "echo", port: 80 }] },
    ],
  },
};

async function weftYaml(runtime: string | undefined, gateway: boolean): Promise<void> {
  const ip = loopbackBlock();
  const dir = await Deno.makeTempDir({ prefix: "weft-undefined-subset-" });
  const up = await startHttpWorkload(ip(3), PORT, "v1");
  const cfg = echoNodeConfig(dir, ip, PORT, {
    endpoints: [{ address: ip(3), tunnel: "NONE", labels: { version: "v1" } }],
    subsets: [{ name: "v1", labels: { version: "v1" } }],
    ...(gateway ? {} : { http: ROUTES }),
  }, {
    ...(gateway ? { resources: [GHOST_ROUTE] } : {}),
  });
  try {
    await withWeftYaml(dir, cfg, runtime, async (weft) => {
      // Accepted with a warning naming the path, as istioctl analyze.
      const w = await weft.waitFor((l) => l.msg === "config warning");
      if (gateway) {
        // The HTTPRoute's rules are the service's routes in precedence order: /half is first.
        assertEquals([w.path, w.route], [
          "services[0].http[0].route[1].destination.host",
          "default.ghost.0.0",
        ]);
        assert(String(w.warning).includes("gets 500"), String(w.warning));
      } else assertEquals(w.path, "services[0].http[0].route[1].destination.subset");
      await check(ip(100), ip(2), () => up.hits(), gateway ? 500 : 503);
    });
  } finally {
    await up.close();
    await Deno.remove(dir, { recursive: true });
  }
}

for (
  const t of onDenoAndBun(
    (rt) => `S17 (${rt}, weft.yaml): an undefined subset is accepted and its share answers 503 NC`,
    (runtime) => weftYaml(runtime, false),
  )
) Deno.test(t);
for (
  const t of onDenoAndBun(
    (rt) =>
      `S19 (${rt}, weft.yaml): an HTTPRoute backendRef to a missing Service: its share gets 500`,
    (runtime) => weftYaml(runtime, true),
  )
) Deno.test(t);

async function xds(gateway: boolean): Promise<void> {
  const ip = loopbackBlock();
  const dir = await Deno.makeTempDir({ prefix: "weft-undefined-subset-xds-" });
  const up = await startHttpWorkload(ip(3), PORT, "v1");
  const mesh = {
    workloads: [
      sleepOnNodeA(ip),
      onNodeB("echo", ip(3), { app: "echo", version: "v1" }),
    ],
    services: [{
      name: "echo",
      vips: [ip(100)],
      ports: [{ port: 80, targetPort: PORT, protocol: "HTTP" }],
      subsets: [{ name: "v1", labels: { version: "v1" } }],
      ...(gateway ? {} : { http: ROUTES }),
    }],
    ...(gateway ? { resources: [GHOST_ROUTE] } : {}),
  };
  try {
    await withTwoXdsNodes(dir, mesh, async (x) => {
      const w = await x.cp.waitFor((l) => l.msg === "mesh warning");
      const expect = gateway
        ? ".host: ghost.default.svc.cluster.local matches no Service"
        : '.subset: "v9" is not a subset of';
      assert(String(w.warning).includes(expect), String(w.warning));
      await check(ip(100), ip(2), () => up.hits(), gateway ? 500 : 503);
    });
  } finally {
    await up.close();
    await Deno.remove(dir, { recursive: true });
  }
}

Deno.test("S17 (xds): the control plane accepts an undefined subset; the node answers 503 NC", () =>
  xds(false));
Deno.test("S19 (xds): an HTTPRoute backendRef to a missing Service: the node answers 500", () =>
  xds(true));
