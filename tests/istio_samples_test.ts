/**
 * Istio sample-style manifests (tests/fixtures/istio/) through real processes: `weft
 * control-plane --config-dir` serves them, two `weft run` nodes take everything (workloads,
 * services, routes, faults, policies, certificates) over xDS, and traffic shows Istio's documented
 * behaviour: bookinfo's reviews 80/20 split, ratings-test-abort only for `end-user: jason`, a
 * header-matched delay, a WasmPlugin on the client side, and AuthorizationPolicies: at L4 as
 * ztunnel enforces them (ALLOW by principal, ALLOW with only HTTP-only fields matching nothing on
 * a TCP service) and at L7 on the destination node for HTTP services with HTTP conditions (a DENY
 * on `methods` answers 403 for that method only).
 */
import assert from "node:assert/strict";
import { request } from "node:http";
import { connect, type Socket } from "node:net";
import { join } from "node:path";
import { stringify } from "yaml";
import { buildProxyWasmPlugins } from "../plugins/proxy-wasm/build.ts";
import { startEcho } from "./support/echo_server.ts";
import { startHttpWorkload } from "./support/http_workload.ts";
import { closed, roundTrip } from "./support/mesh.ts";
import { LISTENERS, loopbackBlock, ROOT, startWeft, type WeftProc } from "./support/weft_proc.ts";
import { readyStatus } from "./support/xds_nodes.ts";

const FIXTURES = join(ROOT, "tests", "fixtures", "istio");

interface Reply {
  status: number;
  body: Record<string, unknown> | undefined;
  ms: number;
}

function get(
  from: string,
  vip: string,
  headers: Record<string, string> = {},
  method = "GET",
): Promise<Reply> {
  const t0 = performance.now();
  return new Promise((resolve) => {
    const req = request(
      { host: vip, port: 9080, path: "/", method, localAddress: from, agent: false, headers },
      (res) => {
        let text = "";
        res.setEncoding("utf8");
        res.on("data", (c) => text += c);
        res.on("end", () => {
          let body: Record<string, unknown> | undefined;
          try {
            body = JSON.parse(text);
          } catch { /* a local reply */ }
          resolve({ status: res.statusCode ?? 0, body, ms: performance.now() - t0 });
        });
      },
    );
    req.setTimeout(10_000, () => req.destroy());
    req.on("error", () => resolve({ status: 0, body: undefined, ms: performance.now() - t0 }));
    req.end();
  });
}

async function many(n: number, f: () => Promise<Reply>): Promise<Reply[]> {
  const out: Reply[] = [];
  for (let i = 0; i < n; i += 25) {
    out.push(...await Promise.all(Array.from({ length: Math.min(25, n - i) }, f)));
  }
  return out;
}

function tcpDial(from: string, host: string, port: number): Promise<Socket> {
  return new Promise((resolve, reject) => {
    const s = connect({ host, port, localAddress: from });
    s.once("error", reject);
    s.once("connect", () => {
      s.on("error", () => {});
      resolve(s);
    });
  });
}

async function writeManifests(dir: string, ip: (n: number) => string, wasm: string) {
  for (const e of Deno.readDirSync(FIXTURES)) {
    if (!e.name.endsWith(".yaml")) continue;
    const text = Deno.readTextFileSync(join(FIXTURES, e.name))
      .replace(/\{\{ip (\d+)\}\}/g, (_, n) => ip(Number(n)))
      .replace(/\{\{wasm add-header\}\}/g, `file://${wasm}`);
    await Deno.writeTextFile(join(dir, e.name), text);
  }
}

Deno.test("istio samples: bookinfo routes, faults, WasmPlugin, L4 and L7 policies through real processes", async () => {
  const ip = loopbackBlock();
  const dir = await Deno.makeTempDir({ prefix: "weft-istio-samples-" });
  const manifests = join(dir, "manifests");
  await Deno.mkdir(manifests);
  const { addHeader } = await buildProxyWasmPlugins();
  await writeManifests(manifests, ip, addHeader);
  const servers = [
    await startHttpWorkload(ip(11), 9080, "reviews-v1"),
    await startHttpWorkload(ip(12), 9080, "reviews-v2"),
    await startHttpWorkload(ip(13), 9080, "ratings-v1"),
    await startHttpWorkload(ip(14), 9080, "details-v1"),
  ];
  const mongo = await startEcho(ip(15), 27017);
  const procs: WeftProc[] = [];
  try {
    const cp = await startWeft([
      "control-plane",
      "--config-dir",
      manifests,
      "--address",
      "127.0.0.1:0",
      "--ca-dir",
      join(dir, "ca"),
    ]);
    procs.push(cp);
    for (const name of ["node-a", "node-b"]) {
      const tokenFile = join(dir, `${name}.token`);
      await Deno.writeTextFile(tokenFile, `${name}-token`);
      const cfg = {
        node: { name },
        ca: { mode: "xds" },
        listeners: { ...LISTENERS, captureServiceVips: name === "node-a" },
        xds: { address: String(cp.ready.address), tokenFile },
      };
      await Deno.writeTextFile(join(dir, `${name}.yaml`), stringify(cfg));
      procs.push(
        await startWeft(["run", "--config", join(dir, `${name}.yaml`)], { timeoutMs: 120_000 }),
      );
    }
    for (const p of procs.slice(1)) {
      const deadline = Date.now() + 30_000;
      while ((await readyStatus(p)) !== 200) {
        assert.ok(Date.now() < deadline, "node never became ready");
        await new Promise((r) => setTimeout(r, 100));
      }
    }
    const productpage = ip(2), sleep = ip(3);
    const [reviews, ratings, details] = [ip(100), ip(101), ip(102)];
    // The service VIPs are bound once node-a applied its snapshot: retry the first request.
    const deadline = Date.now() + 20_000;
    let first: Reply;
    while ((first = await get(productpage, reviews)).status !== 200) {
      if (Date.now() >= deadline) {
        const logs = procs.flatMap((p) =>
          p.lines.filter((l) => l.level !== "info" && l.level !== "debug")
        );
        assert.fail(
          `reviews never answered (${first.status}): ${JSON.stringify(logs).slice(0, 3000)}`,
        );
      }
      await new Promise((r) => setTimeout(r, 100));
    }

    // reviews-80-20: 1000 requests within ±5 % of 80/20 (a random split: one standard deviation
    // is 1.26 %, so ±5 % fails by chance about once in 15 000 runs); the WasmPlugin ran on each.
    const split = await many(1000, () => get(productpage, reviews));
    const v1 = split.filter((r) => r.body?.version === "reviews-v1").length;
    const v2 = split.filter((r) => r.body?.version === "reviews-v2").length;
    assert.equal(v1 + v2, 1000, `every request served: ${split.map((r) => r.status)}`);
    assert.ok(Math.abs(v1 / 10 - 80) <= 5, `reviews v1 share ${v1 / 10} % (80 ± 5)`);
    const hdrs = split[0]!.body!.headers as Record<string, string>;
    assert.equal(hdrs["x-weft-sample"], "wasm", "WasmPlugin add-header on the client side");

    // ratings-test-abort: only jason's requests fail, with the configured status.
    const jason = await many(50, () => get(productpage, ratings, { "end-user": "jason" }));
    assert.deepEqual([...new Set(jason.map((r) => r.status))], [500]);
    const others = await many(50, () => get(productpage, ratings, { "end-user": "alice" }));
    assert.deepEqual([...new Set(others.map((r) => r.status))], [200]);

    // test-delay shape on details: jason waits the configured 0.3 s; a lower bound only.
    const slow = await get(productpage, details, { "end-user": "jason" });
    assert.equal(slow.status, 200);
    assert.ok(slow.ms >= 290, `delayed ${slow.ms} ms`);

    // L4 policies (ztunnel semantics). ratings-viewer: ALLOW only productpage's identity.
    assert.notEqual((await get(sleep, ratings)).status, 200, "sleep (ns foo) → ratings refused");
    // deny-foo-to-details: DENY GET from ns foo, enforced at L7 on details' node (inbound RBAC
    // over xDS): sleep's GET gets 403, its POST passes, productpage's GET passes.
    assert.equal((await get(sleep, details)).status, 403, "sleep (ns foo) GET → details denied");
    assert.equal((await get(sleep, details, {}, "POST")).status, 200, "sleep POST → details");
    assert.equal((await get(productpage, details)).status, 200, "productpage → details allowed");
    // mongodb-from-jwt: its only ALLOW rule uses HTTP-only fields → matches nothing at L4.
    const s = await tcpDial(productpage, ip(103), 27017);
    s.write("ping");
    await closed(s);
    // (the echo server itself answers a direct connection)
    const direct = await tcpDial(productpage, ip(15), 27017);
    assert.deepEqual(
      await roundTrip(direct, new TextEncoder().encode("ping")),
      new TextEncoder().encode("ping"),
    );
    direct.destroy();
  } finally {
    await Promise.all(procs.map((p) => p.stop()));
    for (const w of servers) await w.close();
    await mongo.close();
    await Deno.remove(dir, { recursive: true });
  }
});
