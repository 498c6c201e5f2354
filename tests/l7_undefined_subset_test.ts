/**
 * S17 (l7-semantics §4.3): a VirtualService destination whose subset no DestinationRule defines
 * is accepted, as Istio does (istioctl analyze only warns), and points at a cluster that does
 * not exist, so Envoy answers its share of requests 503 NC (`cluster_not_found`) while the other
 * weighted destinations keep their share. Through real weft processes: weft.yaml on Deno and on
 * Bun, and an xDS node fed by the embedded control plane (whose RDS names a cluster CDS lacks).
 */
import { request } from "node:http";
import { stringify } from "yaml";
import { join } from "node:path";
import { assert, assertEquals } from "./support/assert.ts";
import { bunPath, loopbackBlock, startWeft, type WeftProc } from "./support/weft_proc.ts";
import { startHttpWorkload } from "./support/http_workload.ts";
import { startXdsMesh, type XdsMesh } from "./support/xds_nodes.ts";

const PORT = 18080;
const N = 100;

function call(host: string, path: string, from: string): Promise<{ status: number; body: string }> {
  return new Promise((resolve, reject) => {
    const req = request({ host, port: 80, path, localAddress: from, agent: false }, (res) => {
      let body = "";
      res.setEncoding("utf8");
      res.on("data", (c: string) => body += c);
      res.on("end", () => resolve({ status: res.statusCode ?? 0, body }));
    });
    req.on("error", reject);
    req.end();
  });
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

async function check(vip: string, from: string, hits: () => number): Promise<void> {
  assertEquals((await call(vip, "/ok", from)).status, 200);
  // Only v9: every request 503 NC, none reaches the upstream, none retried (Istio's default
  // retries cover connect failures, not a missing cluster).
  const before = hits();
  for (let i = 0; i < 10; i++) {
    const r = await call(vip, "/none", from);
    assertEquals([r.status, r.body], [503, ""]);
  }
  assertEquals(hits(), before, "a missing cluster never reaches an upstream");
  // 50/50: the v9 share is 503, v1 still serves its share (binomial sd 5 over 100).
  let ok = 0, nc = 0;
  const start = hits();
  for (let i = 0; i < N; i++) {
    const s = (await call(vip, "/half", from)).status;
    if (s === 200) ok++;
    else if (s === 503) nc++;
  }
  assertEquals(ok + nc, N);
  assert(ok > 25 && ok < 75, `${ok}/${N} served by v1, ${nc} answered 503`);
  assertEquals(hits() - start, ok);
}

async function weftYaml(runtime: string | undefined): Promise<void> {
  const ip = loopbackBlock();
  const dir = await Deno.makeTempDir({ prefix: "weft-undefined-subset-" });
  const up = await startHttpWorkload(ip(3), PORT, "v1");
  const cfg = {
    node: { name: "node-a" },
    ca: { mode: "auto", stateDir: join(dir, "ca") },
    listeners: {
      admin: "127.0.0.1:0",
      metrics: "127.0.0.1:0",
      readiness: "127.0.0.1:0",
      socks5: "",
      inboundPlaintextPort: 0,
    },
    workloads: [{ name: "sleep", namespace: "default", serviceAccount: "sleep", address: ip(2) }],
    services: [{
      name: "echo",
      namespace: "default",
      vips: [ip(100)],
      ports: [{ port: 80, targetPort: PORT, protocol: "HTTP" }],
      endpoints: [{ address: ip(3), tunnel: "NONE", labels: { version: "v1" } }],
      subsets: [{ name: "v1", labels: { version: "v1" } }],
      http: ROUTES,
    }],
  };
  let weft: WeftProc | undefined;
  try {
    await Deno.writeTextFile(join(dir, "a.yaml"), stringify(cfg));
    weft = await startWeft(["run", "--config", join(dir, "a.yaml")], {
      timeoutMs: 120_000,
      ...(runtime ? { runtime } : {}),
    });
    // Accepted with a warning naming the path, as istioctl analyze.
    const w = await weft.waitFor((l) => l.msg === "config warning");
    assertEquals(w.path, "services[0].http[0].route[1].destination.subset");
    await check(ip(100), ip(2), () => up.hits());
  } finally {
    await weft?.stop();
    await up.close();
    await Deno.remove(dir, { recursive: true });
  }
}

const bun = bunPath();
Deno.test("S17 (Deno, weft.yaml): an undefined subset is accepted and its share answers 503 NC", () =>
  weftYaml(undefined));
Deno.test({
  name: "S17 (Bun, weft.yaml): an undefined subset is accepted and its share answers 503 NC",
  ignore: !bun, // deno task setup installs Bun
  fn: () => weftYaml(bun),
});

Deno.test("S17 (xds): the control plane accepts an undefined subset; the node answers 503 NC", async () => {
  const ip = loopbackBlock();
  const dir = await Deno.makeTempDir({ prefix: "weft-undefined-subset-xds-" });
  const up = await startHttpWorkload(ip(3), PORT, "v1");
  const mesh = {
    workloads: [
      { name: "sleep", serviceAccount: "sleep", address: ip(2), node: "node-a" },
      {
        name: "echo",
        serviceAccount: "echo",
        address: ip(3),
        node: "node-b",
        labels: { app: "echo", version: "v1" },
      },
    ],
    services: [{
      name: "echo",
      vips: [ip(100)],
      ports: [{ port: 80, targetPort: PORT, protocol: "HTTP" }],
      subsets: [{ name: "v1", labels: { version: "v1" } }],
      http: ROUTES,
    }],
  };
  let x: XdsMesh | undefined;
  try {
    x = await startXdsMesh(dir, mesh, ["node-a", "node-b"], ["node-a"]);
    const [a, b] = x.nodes as [WeftProc, WeftProc];
    const w = await x.cp.waitFor((l) => l.msg === "mesh warning");
    assert(String(w.warning).includes('.subset: "v9" is not a subset of'), String(w.warning));
    await x.waitReady(a);
    await x.waitReady(b);
    await check(ip(100), ip(2), () => up.hits());
  } finally {
    await x?.stop();
    await up.close();
    await Deno.remove(dir, { recursive: true });
  }
});
