/** Admin (15000), metrics (15020) and readiness (15021) of a real `weft run` process. */
import { join } from "node:path";
import { stringify } from "yaml";
import { assert, assertEquals, assertMatch } from "./support/assert.ts";
import { loopbackBlock, startWeft } from "./support/weft_proc.ts";

Deno.test("admin: dashboard, config_dump, logging, metrics, readiness, reload, quitquitquit", async () => {
  const ip = loopbackBlock();
  const dir = await Deno.makeTempDir({ prefix: "weft-admin-" });
  const cfg = {
    node: { name: "admin-node" },
    ca: { mode: "auto", stateDir: join(dir, "ca") },
    listeners: {
      admin: "127.0.0.1:0",
      metrics: "127.0.0.1:0",
      readiness: "127.0.0.1:0",
      socks5: "",
      inboundPlaintextPort: 0,
    },
    workloads: [{ name: "web", serviceAccount: "web", address: ip(2) }],
  };
  await Deno.writeTextFile(join(dir, "weft.yaml"), stringify(cfg));
  const p = await startWeft(["run", "--config", join(dir, "weft.yaml")]);
  const admin = `http://${p.ready.admin}`;
  const text = async (url: string, init?: RequestInit) => {
    const r = await fetch(url, init);
    return { status: r.status, body: await r.text(), type: r.headers.get("content-type") ?? "" };
  };
  try {
    const page = await text(`${admin}/`);
    assertEquals(page.status, 200);
    assertMatch(page.type, /text\/html/);
    assertMatch(page.body, /spiffe:\/\/cluster\.local\/ns\/default\/sa\/web/);
    const dump = JSON.parse((await text(`${admin}/config_dump`)).body);
    assertEquals(dump.node.name, "admin-node");
    assertEquals(dump.certificates[0].state, "Available");
    assert(!JSON.stringify(dump).includes("PRIVATE KEY"));
    assertEquals((await text(`${admin}/logging`)).status, 405);
    assertEquals((await text(`${admin}/logging?level=nope`, { method: "POST" })).status, 400);
    const lv = JSON.parse(
      (await text(`${admin}/logging?level=proxy:debug,warn`, { method: "POST" })).body,
    );
    assertEquals(lv, { level: "warn", scopes: { proxy: "debug" } });
    const m1 = await text(`http://${p.ready.metrics}/stats/prometheus`);
    const m2 = await text(`http://${p.ready.metrics}/metrics`);
    assertMatch(m1.type, /text\/plain/);
    assertMatch(m1.body, /istio_build\{component="weft",tag="[^"]+"\} 1/);
    assertMatch(m2.body, /# TYPE istio_tcp_connections_opened_total counter/);
    assertEquals(
      await text(`http://${p.ready.readiness}/healthz/ready`).then((r) => r.status),
      200,
    );
    assertEquals((await text(`${admin}/reload?filter=nope`, { method: "POST" })).status, 409);
    assertEquals((await text(`${admin}/quitquitquit`, { method: "POST" })).status, 200);
    assertEquals((await p.exited).code, 0);
  } finally {
    await p.stop();
    await Deno.remove(dir, { recursive: true });
  }
});
