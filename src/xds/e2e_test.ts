import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { metrics, registerFilterConfigCheck } from "../core/mod.ts";
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { writeAtomic } from "./_atomic_write.ts";
import type { Snapshot } from "../core/mod.ts";
import { XdsClient } from "./client.ts";
import { startControlPlane } from "./control_plane/mod.ts";
import { xdsMessages, xdsNacks } from "./metrics.ts";
import { FILTER_TYPES } from "./resources/http_filters.ts";
import { LISTENER } from "./type_urls.ts";
import { BASE, meshYaml } from "./_test_fixtures.ts";

const split = (s: Snapshot): unknown =>
  s.services.find((x) => x.name === "echo")?.outboundFilters.find((f) =>
    f.type === FILTER_TYPES.trafficSplit
  )
    ?.config;

for (const mode of ["delta", "sotw"] as const) {
  Deno.test(`xds e2e (${mode}): control plane → client snapshot, push on file change`, async () => {
    const dir = await mkdtemp(join(tmpdir(), "weft-xds-"));
    const path = join(dir, "mesh.yaml");
    await writeAtomic(path, meshYaml(10));
    const cp = await startControlPlane({ configPath: path, address: "127.0.0.1:0" });
    // The mesh has a fault filter: its check loads once, before the response carrying it is
    // decoded, so the check runs on it.
    let loads = 0;
    const checked: unknown[] = [];
    const client = new XdsClient({
      server: cp.address,
      mode,
      nodeId: "node-a",
      base: BASE,
      loadFilterChecks: async () => {
        loads++;
        await new Promise((r) => setTimeout(r, 20));
        registerFilterConfigCheck(FILTER_TYPES.fault, (c) => void checked.push(c));
      },
    });
    try {
      client.start();
      const s1 = await client.ready();
      assert.equal(loads, 1, "the filter checks load once");
      assert.ok(checked.length > 0, "the fault config was checked before it was applied");
      assert.equal(s1.services.length, 2, "ready means every subscribed type was answered");
      assert.equal(s1.workloads.length, 1);
      const echo = s1.services.find((s) => s.name === "echo")!;
      assert.equal(echo.hostname, "echo.default.svc.cluster.local");
      assert.deepEqual(echo.vips, ["127.10.0.1"]);
      assert.deepEqual(echo.ports, [{
        port: 80,
        targetPort: 8080,
        protocol: "HTTP",
        name: "http-80",
      }]);
      assert.deepEqual(
        echo.endpoints.map((e) => [e.address, e.hboneAddress, e.node, e.identity]).sort(),
        [
          ["127.0.2.1", "127.0.2.1:15008", "node-a", "spiffe://cluster.local/ns/default/sa/echo"],
          ["127.0.2.2", "127.0.2.2:15008", "node-b", "spiffe://cluster.local/ns/default/sa/echo"],
        ],
      );
      // The route's fault is the route's own (route policy), not a filter of the chain.
      assert.deepEqual(echo.outboundFilters.map((f) => f.type), [FILTER_TYPES.trafficSplit]);
      assert.deepEqual(echo.routes?.map((r) => r.fault), [
        { abort: { httpStatus: 503, perMillion: 100_000 } },
      ]);
      assert.deepEqual(echo.subsets.map((s) => s.name).sort(), ["v1", "v2"]);
      const db = s1.services.find((s) => s.name === "db")!;
      assert.equal(db.ports[0]!.protocol, "TCP");
      assert.equal(db.outboundFilters.length, 0);
      assert.deepEqual(s1.workloads.map((w) => [w.name, w.identity]), [[
        "echo-1",
        "spiffe://cluster.local/ns/default/sa/echo",
      ]]);
      assert.equal(s1.policies.length, 1);
      assert.deepEqual(s1.workloads[0]!.labels["policy.weft.io/default.echo-allow"], "true");
      assert.match(JSON.stringify(split(s1)), /"weight":90.*"weight":10/);

      await writeAtomic(path, meshYaml(50));
      // Delta: explicit reload; SotW: the file watcher notices the rename.
      if (mode === "delta") assert.equal(await cp.reload(), true);
      const s2 = await client.waitFor((s) =>
        /"weight":50.*"weight":50/.test(JSON.stringify(split(s)))
      );
      assert.notEqual(s2.version, s1.version);

      // A bad edit is refused by the control plane; the last good mesh keeps being served.
      await writeAtomic(path, "services: [{ name: broken, ports: [{ port: 99999 }] }]\n");
      assert.equal(await cp.reload(), false);
      assert.equal(client.snapshot, s2);
      assert.ok(xdsMessages.get({ url: LISTENER }) > 0);
      assert.equal(xdsNacks.get({ url: LISTENER }), 0);
      // The exposition with the xDS families must pass promtool (Debian package prometheus).
      const text = metrics.render();
      assert.match(
        text,
        /istio_xds_message_total\{url="type.googleapis.com\/envoy.config.listener.v3.Listener"\} \d+/,
      );
      const r = spawnSync("promtool", ["check", "metrics"], { input: text, encoding: "utf8" });
      assert.equal(r.status, 0, `promtool: ${r.stdout}${r.stderr}`);
    } finally {
      registerFilterConfigCheck(FILTER_TYPES.fault, () => {});
      await client.close();
      await cp.close();
      await rm(dir, { recursive: true });
    }
  });
}
