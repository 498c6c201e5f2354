import assert from "node:assert/strict";
import { closed, dial, roundTrip, startMesh, workload } from "./_l4_test_kit.ts";
import { metrics } from "./metrics.ts";
import { setLogSink } from "./log.ts";

Deno.test("client VIP → HBONE → server → echo: bytes round-trip with half-close", async () => {
  const lines: string[] = [];
  const restore = setLogSink((l) => lines.push(l));
  const m = await startMesh(11);
  try {
    assert.equal(m.a.ready, true);
    const s = await dial(m.vip, 80, m.clientIp);
    const payload = new Uint8Array(256 * 1024).map((_, i) => (i * 7919) & 0xff);
    const got = await roundTrip(s, payload);
    assert.deepEqual(got, payload);
    // Pool holds one connection with the finished stream released.
    assert.equal(m.a.stats().pool[0]?.connections, 1);
  } finally {
    await m.close();
    restore();
  }
  const access = lines.map((l) => JSON.parse(l)).filter((r) => r.scope === "access");
  const out = access.find((r) => r.direction === "outbound");
  const inn = access.find((r) => r.direction === "inbound");
  assert.equal(out?.outcome, "ok");
  assert.equal(out?.["dst.service"], "echo.default.svc.cluster.local");
  assert.equal(out?.bytes_sent, 256 * 1024);
  assert.equal(inn?.["src.identity"], "spiffe://cluster.local/ns/default/sa/client");
  assert.equal(inn?.bytes_recv, 256 * 1024);
  const text = metrics.render();
  assert.match(
    text,
    /istio_tcp_connections_opened_total\{reporter="source",source_workload="client"/,
  );
  assert.match(
    text,
    /istio_tcp_received_bytes_total\{reporter="destination",source_workload="client",.*source_workload_namespace="default",source_principal="cluster.local\/ns\/default\/sa\/client",.*destination_workload="server".*connection_security_policy="mutual_tls",response_flags="-"\} 262144/,
  );
});

Deno.test("unknown client source is refused unless a default workload is configured", async () => {
  const m = await startMesh(12);
  try {
    const s = await dial(m.vip, 80, "127.77.12.50");
    s.write("x");
    let n = 0;
    s.on("data", (c: Uint8Array) => n += c.length);
    await closed(s);
    assert.equal(n, 0);
    await m.a.update(
      m.snapA({
        version: "2",
        capture: { socks5: m.socks, defaultSourceWorkload: "default/client" },
      }),
    );
    const s2 = await dial(m.vip, 80, "127.77.12.50");
    assert.equal(
      new TextDecoder().decode(await roundTrip(s2, new TextEncoder().encode("hi"))),
      "hi",
    );
  } finally {
    await m.close();
  }
});

Deno.test("drain: GOAWAY + closed listeners, an in-flight transfer finishes before the deadline", async () => {
  const m = await startMesh(14);
  try {
    const s = await dial(m.vip, 80, m.clientIp);
    s.write("a");
    await new Promise((r) => s.once("data", r));
    const t0 = Date.now();
    const drained = m.b.drain(5000);
    assert.equal(m.b.ready, false);
    // The in-flight tunnel keeps working after drain started.
    const payload = new Uint8Array(512 * 1024).fill(7);
    const got = await roundTrip(s, payload);
    assert.equal(got.length, payload.length);
    await drained;
    assert.ok(Date.now() - t0 < 5000, "drain waited for the deadline despite no connections");
    // B's listener is gone: a new tunnel cannot be established.
    const s2 = await dial(m.vip, 80, m.clientIp);
    s2.write("x");
    let n = 0;
    s2.on("data", (c: Uint8Array) => n += c.length);
    await closed(s2);
    assert.equal(n, 0);
  } finally {
    await m.close();
  }
});

Deno.test("drain: connections still open at the deadline are force-closed", async () => {
  const m = await startMesh(15);
  try {
    const s = await dial(m.vip, 80, m.clientIp);
    s.write("a");
    await new Promise((r) => s.once("data", r));
    const done = closed(s);
    await m.a.drain(100);
    await done;
    assert.equal(m.a.stats().connections.outbound, 0);
  } finally {
    await m.close();
  }
});

Deno.test("idle timeout and max connections", async () => {
  const m = await startMesh(16);
  try {
    await m.a.update(
      m.snapA({ version: "2", timeouts: { connectMs: 2000, idleMs: 200, drainMs: 1000 } }),
    );
    const s = await dial(m.vip, 80, m.clientIp);
    s.write("a");
    await new Promise((r) => s.once("data", r));
    await closed(s); // closed by the idle sweep, no bytes for 200 ms
    await m.a.update(
      m.snapA({
        version: "3",
        limits: { maxConnections: 1, poolMaxStreamsPerConnection: 100, poolIdleMs: 60_000 },
      }),
    );
    const s1 = await dial(m.vip, 80, m.clientIp);
    s1.write("a");
    await new Promise((r) => s1.once("data", r));
    const s2 = await dial(m.vip, 80, m.clientIp);
    await closed(s2);
    assert.equal((await roundTrip(s1, new Uint8Array(0))).length, 0);
  } finally {
    await m.close();
  }
});

Deno.test("inbound plaintext: PERMISSIVE forwards, STRICT refuses", async () => {
  const m = await startMesh(17, {}, {
    capture: { socks5: "", serviceVips: false, inboundPlaintextPort: 15006 },
  });
  try {
    const s = await dial("127.77.17.3", 15006, "127.77.17.9");
    // The mesh's "server" workload declares one port (its echo), the plaintext target.
    assert.equal(
      new TextDecoder().decode(await roundTrip(s, new TextEncoder().encode("plain"))),
      "plain",
    );
    const strict = {
      ...workload("server", "127.77.17.3", [m.echo.port]),
      mtlsMode: "STRICT" as const,
    };
    await m.b.update(
      m.snapB({
        version: "2",
        workloads: [strict],
        capture: { socks5: "", serviceVips: false, inboundPlaintextPort: 15006 },
      }),
    );
    const s2 = await dial("127.77.17.3", 15006, "127.77.17.9");
    await closed(s2);
  } finally {
    await m.close();
  }
});

Deno.test("update rebinds VIP listeners: a new service is captured, a removed one is released", async () => {
  const m = await startMesh(18);
  try {
    const svc = m.snapA().services[0]!;
    const moved = { ...svc, vips: ["127.77.18.101"] };
    await m.a.update(m.snapA({ version: "2", services: [moved] }));
    const names = m.a.stats().listeners;
    assert.ok(names.includes("127.77.18.101:80") && !names.includes("127.77.18.100:80"));
    const s = await dial("127.77.18.101", 80, m.clientIp);
    assert.equal(
      new TextDecoder().decode(await roundTrip(s, new TextEncoder().encode("moved"))),
      "moved",
    );
    await assert.rejects(dial("127.77.18.100", 80, m.clientIp), /ECONNREFUSED/);
  } finally {
    await m.close();
  }
});
