/**
 * VirtualService delegation (l7-semantics S12) through a real weft process on Deno and on Bun: a
 * root VirtualService for `echo` hands `/api` to a delegate VirtualService (no hosts), whose
 * routes apply under the root's match; the rest of the root's routes keep working.
 */
import { request } from "node:http";
import { stringify } from "yaml";
import { join } from "node:path";
import { assertEquals } from "./support/assert.ts";
import { bunPath, loopbackBlock, startWeft, type WeftProc } from "./support/weft_proc.ts";
import { startHttpWorkload } from "./support/http_workload.ts";
import { threeServiceNodeConfig } from "./support/echo_node.ts";

const PORT = 18080;

function version(host: string, path: string, from: string, headers: Record<string, string> = {}) {
  return new Promise<string>((resolve, reject) => {
    const req = request(
      { host, port: 80, path, localAddress: from, agent: false, headers },
      (res) => {
        let body = "";
        res.setEncoding("utf8");
        res.on("data", (c: string) => body += c);
        res.on(
          "end",
          () => resolve(res.statusCode === 200 ? JSON.parse(body).version : String(res.statusCode)),
        );
      },
    );
    req.on("error", reject);
    req.end();
  });
}

async function run(runtime: string | undefined): Promise<void> {
  const ip = loopbackBlock();
  const dir = await Deno.makeTempDir({ prefix: "weft-vs-delegate-" });
  const a = await startHttpWorkload(ip(3), PORT, "a");
  const b = await startHttpWorkload(ip(4), PORT, "b");
  const cfg = threeServiceNodeConfig(dir, ip, PORT, [
    {
      apiVersion: "networking.istio.io/v1",
      kind: "VirtualService",
      metadata: { name: "root", namespace: "default" },
      spec: {
        hosts: ["echo"],
        http: [
          { match: [{ uri: { prefix: "/api" } }], delegate: { name: "api" } },
          { route: [{ destination: { host: "svc-a" } }] },
        ],
      },
    },
    {
      apiVersion: "networking.istio.io/v1",
      kind: "VirtualService",
      metadata: { name: "api", namespace: "default" },
      spec: {
        http: [
          {
            match: [{ uri: { prefix: "/api/v2" } }],
            route: [{ destination: { host: "svc-b" } }],
          },
          {
            match: [{ headers: { "x-beta": { exact: "1" } } }],
            route: [{ destination: { host: "svc-b" } }],
          },
          { route: [{ destination: { host: "svc-a" } }] },
        ],
      },
    },
  ]);
  let weft: WeftProc | undefined;
  try {
    await Deno.writeTextFile(join(dir, "a.yaml"), stringify(cfg));
    weft = await startWeft(["run", "--config", join(dir, "a.yaml")], {
      timeoutMs: 120_000,
      ...(runtime ? { runtime } : {}),
    });
    const vip = ip(100), from = ip(2);
    assertEquals(await version(vip, "/api/v2/x", from), "b");
    assertEquals(await version(vip, "/api/x", from, { "x-beta": "1" }), "b");
    assertEquals(await version(vip, "/api/x", from), "a");
    // The root's match still bounds the delegate: x-beta outside /api is the root's last route.
    assertEquals(await version(vip, "/other", from, { "x-beta": "1" }), "a");
  } finally {
    await weft?.stop();
    await a.close();
    await b.close();
    await Deno.remove(dir, { recursive: true });
  }
}

const bun = bunPath();
Deno.test("vs delegate: a root VirtualService hands /api to its delegate (Deno)", () =>
  run(undefined));
Deno.test({
  name: "vs delegate: a root VirtualService hands /api to its delegate (Bun)",
  ignore: !bun,
  fn: () => run(bun),
});
