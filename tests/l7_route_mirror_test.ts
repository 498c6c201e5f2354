/**
 * VirtualService `mirror` / `mirrors` (l7-semantics S15, Envoy request_mirror_policies S7) through
 * real weft processes: weft.yaml on Deno and on Bun, and an xDS node fed by the embedded control
 * plane. The mirror gets a copy (method, path, body; the authority's host suffixed `-shadow`), the
 * client gets the primary's answer, and `mirrorPercentage: 0` mirrors nothing.
 */
import { createServer, type Server } from "node:http";
import { callVip } from "./support/vip_call.ts";
import { join } from "node:path";
import { assertEquals } from "./support/assert.ts";
import { LISTENERS, loopbackBlock, onDenoAndBun, withWeftYaml } from "./support/weft_proc.ts";
import { startHttpWorkload } from "./support/http_workload.ts";
import { onNodeB, sleepOnNodeA, withTwoXdsNodes } from "./support/xds_nodes.ts";

const PORT = 18080;

interface Seen {
  method: string;
  path: string;
  host: string;
  body: string;
}

/** The mirror target: records what it gets and answers 500 (an answer nobody reads). */
function startShadow(host: string): Promise<{ seen: Seen[]; close(): Promise<void> }> {
  const seen: Seen[] = [];
  const server: Server = createServer((req, res) => {
    let body = "";
    req.setEncoding("utf8");
    req.on("data", (c: string) => body += c);
    req.on("end", () => {
      seen.push({
        method: req.method ?? "",
        path: req.url ?? "",
        host: String(req.headers.host),
        body,
      });
      res.statusCode = 500;
      res.end("shadow");
    });
  });
  return new Promise((resolve, reject) => {
    server.once("error", reject);
    server.listen(PORT, host, () =>
      resolve({
        seen,
        close: () =>
          new Promise<void>((r) => {
            server.closeAllConnections();
            server.close(() => r());
          }),
      }));
  });
}

async function call(host: string, path: string, from: string, body?: string) {
  const r = await callVip(host, path, from, body === undefined ? {} : { body });
  return { status: r.status, version: JSON.parse(r.body).version as string };
}

async function until(ok: () => boolean, what: string): Promise<void> {
  for (let i = 0; i < 100 && !ok(); i++) await new Promise((r) => setTimeout(r, 20));
  if (!ok()) throw new Error(`timed out waiting for ${what}`);
}

function routes(shadow: string) {
  const at = (prefix: string) => [{ uri: { prefix } }];
  return [
    { match: at("/none"), mirror: { host: shadow }, mirrorPercentage: { value: 0 }, route: [] },
    { match: at("/post"), mirrors: [{ destination: { host: shadow } }], route: [] },
    { match: at("/m"), mirror: { host: shadow }, route: [] },
    { route: [] },
  ];
}

async function check(vip: string, from: string, shadow: { seen: Seen[] }): Promise<void> {
  // mirrorPercentage 0: never; then a mirrored GET: the client has the primary's answer.
  assertEquals(await call(vip, "/none", from), { status: 200, version: "primary" });
  assertEquals(await call(vip, "/m/1?q=2", from), { status: 200, version: "primary" });
  await until(() => shadow.seen.length >= 1, "the mirrored GET");
  assertEquals(shadow.seen[0], {
    method: "GET",
    path: "/m/1?q=2",
    host: `${vip}-shadow`,
    body: "",
  });
  // A body held whole is mirrored with it (`mirrors` with no percentage = all).
  assertEquals(await call(vip, "/post", from, "hello mirror"), {
    status: 200,
    version: "primary",
  });
  await until(() => shadow.seen.length >= 2, "the mirrored POST");
  assertEquals([shadow.seen[1]!.method, shadow.seen[1]!.body], ["POST", "hello mirror"]);
  assertEquals(shadow.seen.filter((s) => s.path.startsWith("/none")).length, 0);
}

async function weftYaml(runtime: string | undefined): Promise<void> {
  const ip = loopbackBlock();
  const dir = await Deno.makeTempDir({ prefix: "weft-route-mirror-" });
  const primary = await startHttpWorkload(ip(3), PORT, "primary");
  const shadow = await startShadow(ip(4));
  const svc = (name: string, vip: string, address: string, http?: unknown[]) => ({
    name,
    namespace: "default",
    vips: [vip],
    ports: [{ port: 80, targetPort: PORT, protocol: "HTTP" }],
    endpoints: [{ address, tunnel: "NONE" }],
    ...(http ? { http } : {}),
  });
  const cfg = {
    node: { name: "node-a" },
    ca: { mode: "auto", stateDir: join(dir, "ca") },
    listeners: LISTENERS,
    workloads: [{ name: "sleep", namespace: "default", serviceAccount: "sleep", address: ip(2) }],
    services: [
      svc(
        "echo",
        ip(100),
        ip(3),
        routes("shadow").map((r) => ({ ...r, route: [{ destination: { host: "echo" } }] })),
      ),
      svc("shadow", ip(101), ip(4)),
    ],
  };
  try {
    await withWeftYaml(dir, cfg, runtime, () => check(ip(100), ip(2), shadow));
  } finally {
    await primary.close();
    await shadow.close();
    await Deno.remove(dir, { recursive: true });
  }
}

for (
  const t of onDenoAndBun(
    (rt) => `l7 route mirror (${rt}, weft.yaml): a copy to the mirror, the primary's answer`,
    weftYaml,
  )
) Deno.test(t);

Deno.test("xds: VirtualService mirror reaches a node as request_mirror_policies and applies", async () => {
  const ip = loopbackBlock();
  const dir = await Deno.makeTempDir({ prefix: "weft-route-mirror-xds-" });
  const primary = await startHttpWorkload(ip(3), PORT, "primary");
  const shadow = await startShadow(ip(4));
  const mesh = {
    workloads: [
      sleepOnNodeA(ip),
      onNodeB("echo", ip(3), { app: "echo" }),
      onNodeB("shadow", ip(4), { app: "shadow" }, "shadow"),
    ],
    services: [
      {
        name: "echo",
        vips: [ip(100)],
        ports: [{ port: 80, targetPort: PORT, protocol: "HTTP" }],
        http: routes("shadow").map((r) => ({ ...r, route: [{ destination: {} }] })),
      },
      {
        name: "shadow",
        vips: [ip(101)],
        ports: [{ port: 80, targetPort: PORT, protocol: "HTTP" }],
      },
    ],
  };
  try {
    await withTwoXdsNodes(dir, mesh, () => check(ip(100), ip(2), shadow));
  } finally {
    await primary.close();
    await shadow.close();
    await Deno.remove(dir, { recursive: true });
  }
});
