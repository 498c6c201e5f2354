/**
 * Node agent end to end with real processes: client → node A (VIP capture) → HBONE mTLS → node B
 * → echo workload. Identities, metrics (promtool-checked), access logs, allow/deny, a policy
 * change closing a live connection, and a large transfer with bounded memory.
 */
import { spawnSync } from "node:child_process";
import { assert, assertEquals } from "./support/assert.ts";
import { closed, metricSum, roundTrip, scrape, startMesh } from "./support/mesh.ts";

const CLIENT = "cluster.local/ns/default/sa/sleep";
const ECHO = "cluster.local/ns/default/sa/echo";

Deno.test("tunnel: bytes cross A → HBONE → B with both identities, metrics and access logs", async () => {
  const m = await startMesh();
  try {
    const s = await m.dial();
    const msg = new TextEncoder().encode("hello through weft\n".repeat(100));
    assertEquals(await roundTrip(s, msg), msg);
    s.end();
    await closed(s);
    const rec = await m.b!.waitFor((l) => l.scope === "access" && l.direction === "inbound");
    assertEquals(rec["src.identity"], `spiffe://${CLIENT}`);
    assertEquals(rec["dst.identity"], `spiffe://${ECHO}`);
    assertEquals(rec.bytes_recv, msg.length);
    const out = await m.a.waitFor((l) => l.scope === "access" && l.direction === "outbound");
    assertEquals(out["dst.hbone_addr"], `${m.echoIp}:15008`);
    const metricsB = await scrape(m.b!);
    assert(
      metricSum(
        metricsB,
        "istio_tcp_connections_opened_total",
        'reporter="destination"',
        `source_principal="${CLIENT}"`,
        `destination_principal="${ECHO}"`,
        'connection_security_policy="mutual_tls"',
      ) >= 1,
      metricsB,
    );
    assert(
      metricSum(metricsB, "istio_tcp_received_bytes_total", 'reporter="destination"') >= msg.length,
    );
    const metricsA = await scrape(m.a);
    assert(
      metricSum(
        metricsA,
        "istio_tcp_connections_closed_total",
        'reporter="source"',
        'destination_service="echo.default.svc.cluster.local"',
      ) >= 1,
      metricsA,
    );
    // The exposition must pass promtool (Debian package prometheus).
    for (const text of [metricsA, metricsB]) {
      const r = spawnSync("promtool", ["check", "metrics"], { input: text, encoding: "utf8" });
      assertEquals(r.status, 0, `promtool: ${r.stdout}${r.stderr}`);
    }
    const dump = await (await fetch(`http://${m.b!.ready.admin}/config_dump`)).json();
    assert(
      !JSON.stringify(dump).includes("PRIVATE KEY"),
      "config_dump must never contain a private key",
    );
    assertEquals(dump.certificates[0].identity, `spiffe://${ECHO}`);
    assert(typeof dump.certificates[0].serial === "string");
  } finally {
    await m.stop();
  }
});

Deno.test("authz: a DENY policy on node B refuses the client (401) and counts it; ALLOW for it passes", async () => {
  const m = await startMesh({
    policiesB: [{
      metadata: { name: "deny-sleep", namespace: "default" },
      spec: { action: "DENY", rules: [{ from: [{ source: { principals: [CLIENT] } }] }] },
    }],
  });
  try {
    const s = await m.dial();
    s.write("x");
    await closed(s);
    assertEquals(m.echo.sockets.size, 0, "nothing may reach the workload");
    const metricsB = await scrape(m.b!);
    assert(metricSum(metricsB, "weft_hbone_responses_total", 'code="401"') >= 1, metricsB);
    // Flip to an ALLOW that names the client: the next connection passes.
    await m.writeB({
      ...m.nodeB,
      authorizationPolicies: [{
        metadata: { name: "allow-sleep", namespace: "default" },
        spec: { action: "ALLOW", rules: [{ from: [{ source: { principals: [CLIENT] } }] }] },
      }],
    });
    await m.b!.waitFor((l) => l.msg === "snapshot applied");
    const s2 = await m.dial();
    const data = new TextEncoder().encode("allowed now");
    assertEquals(await roundTrip(s2, data), data);
    s2.destroy();
  } finally {
    await m.stop();
  }
});

Deno.test("authz: a policy change closes a live connection that is now denied", async () => {
  const m = await startMesh();
  try {
    const s = await m.dial();
    const data = new TextEncoder().encode("before");
    assertEquals(await roundTrip(s, data), data);
    await m.writeB({
      ...m.nodeB,
      authorizationPolicies: [{
        metadata: { name: "deny-all", namespace: "default" },
        spec: { action: "DENY", rules: [{}] },
      }],
    });
    await closed(s, 15_000);
    const rec = await m.b!.waitFor((l) => l.scope === "access" && l.direction === "inbound");
    assertEquals(rec.outcome, "policy_revoked");
  } finally {
    await m.stop();
  }
});

Deno.test("tunnel: a 512 MiB transfer completes with bounded memory on both nodes", async () => {
  const m = await startMesh();
  try {
    const s = await m.dial();
    const total = 512 * 1024 * 1024;
    const chunk = new Uint8Array(256 * 1024).fill(7);
    let received = 0;
    const done = new Promise<void>((resolve, reject) => {
      s.on("data", (c: Uint8Array) => {
        received += c.length;
        if (received >= total) resolve();
      });
      s.once(
        "close",
        () => received >= total ? resolve() : reject(new Error(`closed at ${received}`)),
      );
    });
    let sent = 0;
    const pump = () => {
      while (sent < total) {
        sent += chunk.length;
        if (!s.write(chunk)) return void s.once("drain", pump);
      }
    };
    pump();
    await done;
    s.destroy();
    for (const p of [m.a, m.b!]) {
      const status = Deno.readTextFileSync(`/proc/${p.child.pid}/status`);
      const hwmKb = Number(/VmHWM:\s+(\d+)/.exec(status)?.[1]);
      // The goal is ≤ 100 MB peak under load (bench:l4 reports it; Deno's node:tls/http2 keep
      // ~130 MB of native buffers, see the note); this guards against unbounded buffering: the
      // transfer is larger than the bound, so holding it would blow through.
      assert(hwmKb < 400 * 1024, `peak RSS ${Math.round(hwmKb / 1024)} MB`);
    }
  } finally {
    await m.stop();
  }
});
