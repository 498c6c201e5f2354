/**
 * Double HBONE through an east-west gateway (hbone.md §9), real processes: node A (network n1)
 * → gateway (network n2; tests/support/ew_gateway.ts, a node:http2 relay in Envoy's role) → node
 * B (n2) hosting the workload. The outer CONNECT names `<service hostname>:<port>` and is
 * verified against the gateway's identity; inside it A's second TLS handshake runs end to end
 * with B (the gateway relays only TLS records) and the inner CONNECT carries
 * `x-forwarded-network: n1`, which B reads as "from another network": its source comes from
 * `baggage`. Refusals: a destination presenting an identity A does not expect, a gateway
 * presenting one A does not expect, an endpoint of a third network without a gateway. An
 * endpoint on A's own network is still dialled directly. On Deno, and on Bun when installed.
 */
import { join } from "node:path";
import { connect, type Socket } from "node:net";
import { stringify } from "yaml";
import { assert, assertEquals } from "./support/assert.ts";
import { startEcho } from "./support/echo_server.ts";
import { closed, metricSum, roundTrip, scrape } from "./support/mesh.ts";
import {
  bunPath,
  LISTENERS,
  loopbackBlock,
  startWeft,
  type WeftProc,
} from "./support/weft_proc.ts";
import { createTestPki } from "./support/test_ca.ts";
import { type EwGateway, startEwGateway } from "./support/ew_gateway.ts";

const MARKER = "plaintext-marker-7f3a";
const GW_ID = "spiffe://cluster.local/ns/istio-system/sa/istio-eastwestgateway";
const fqdn = (name: string) => `${name}.default.svc.cluster.local`;

function dial(host: string, localAddress: string): Promise<Socket> {
  return new Promise<Socket>((resolve, reject) => {
    const c = connect({ host, port: 80, localAddress });
    c.once("connect", () => resolve(c));
    c.once("error", reject);
  });
}

/** A connection the proxy refuses: closed after the write, or reset at once (Bun's native
 * sockets may refuse before the connect completes). */
async function refusedAt(host: string, localAddress: string, data: Uint8Array): Promise<void> {
  let s: Socket;
  try {
    s = await dial(host, localAddress);
  } catch {
    return;
  }
  s.on("error", () => {});
  s.write(data);
  await closed(s);
}

function configs(ip: (n: number) => string, echoPort: number) {
  const remote = (sa: string, gw: unknown) => ({
    workload: "echo",
    serviceAccount: sa,
    address: ip(3),
    network: "n2",
    networkGateway: gw,
  });
  const byIp = (n: number) => ({ address: { network: "n2", ip: ip(n) } });
  const svc = (name: string, vip: number, ep: unknown) => ({
    name,
    vips: [ip(vip)],
    ports: [{ port: 80, targetPort: echoPort }],
    endpoints: [ep],
  });
  const a = {
    node: { name: "a", network: "n1" },
    ca: {},
    listeners: LISTENERS,
    workloads: [{ name: "sleep", serviceAccount: "sleep", address: ip(2) }],
    services: [
      svc("echo", 100, remote("echo", byIp(50))),
      // The registry names another service account than the one B's workload runs as.
      svc("echo-badsan", 101, remote("echo-old", byIp(50))),
      // ip(51) is the same gateway process, but the registry expects another identity there.
      svc("echo-badgw", 102, remote("echo", byIp(51))),
      svc("echo-direct", 103, { workload: "echo", serviceAccount: "echo", address: ip(3) }),
      svc("echo-nogw", 104, { ...remote("echo", undefined), network: "n3" }),
      svc(
        "echo-byname",
        105,
        remote("echo", {
          hostname: { namespace: "istio-system", hostname: "ew.istio-system.svc.cluster.local" },
        }),
      ),
      {
        name: "ew",
        namespace: "istio-system",
        ports: [{ port: 15008 }],
        endpoints: [{
          workload: "ew",
          namespace: "istio-system",
          serviceAccount: "istio-eastwestgateway",
          address: ip(50),
          network: "n2",
        }],
      },
      {
        name: "impostor",
        namespace: "istio-system",
        ports: [{ port: 15008 }],
        endpoints: [{
          workload: "impostor",
          namespace: "istio-system",
          serviceAccount: "not-the-gateway",
          address: ip(51),
          network: "n2",
        }],
      },
    ],
  };
  const local = (name: string) => ({
    name,
    ports: [{ port: 80, targetPort: echoPort }],
    endpoints: [{ workload: "echo", serviceAccount: "echo", address: ip(3) }],
  });
  const b = {
    node: { name: "b", network: "n2" },
    ca: {},
    listeners: LISTENERS,
    workloads: [{ name: "echo", serviceAccount: "echo", address: ip(3) }],
    services: ["echo", "echo-badsan", "echo-badgw", "echo-byname"].map(local),
  };
  return { a, b };
}

async function scenario(runtime: string | undefined): Promise<void> {
  const ip = loopbackBlock();
  const pki = await createTestPki();
  const echo = await startEcho(ip(3));
  const ca = { mode: "files", certFile: pki.rootsPath, keyFile: pki.caKeyPath };
  const { a, b } = configs(ip, echo.port);
  await Deno.writeTextFile(join(pki.dir, "a.yaml"), stringify({ ...a, ca }));
  await Deno.writeTextFile(join(pki.dir, "b.yaml"), stringify({ ...b, ca }));
  const gwCert = await pki.good(GW_ID);
  const hbone = `${ip(3)}:15008`;
  const procs: WeftProc[] = [];
  let gw: EwGateway | undefined;
  try {
    gw = await startEwGateway({
      addresses: [ip(50), ip(51)],
      port: 15008,
      certPem: gwCert.certPem,
      keyPem: gwCert.keyPem,
      rootsPem: pki.rootsPem,
      routes: Object.fromEntries(
        ["echo", "echo-badsan", "echo-badgw", "echo-byname"].map((n) => [`${fqdn(n)}:80`, hbone]),
      ),
      marker: MARKER,
    });
    const opts = runtime ? { runtime } : {};
    const nodeB = await startWeft(["run", "--config", join(pki.dir, "b.yaml")], opts);
    procs.push(nodeB);
    const nodeA = await startWeft(["run", "--config", join(pki.dir, "a.yaml")], opts);
    procs.push(nodeA);
    const data = new TextEncoder().encode(`${MARKER} through the east-west gateway`);

    // 1. Bytes echo end to end; the gateway saw the service authority and only TLS records.
    for (const [name, vip] of [["echo", 100], ["echo-byname", 105]] as const) {
      const s = await dial(ip(vip), ip(2));
      assertEquals(await roundTrip(s, data), data, `${name}: echoed through the gateway`);
      s.end();
      await closed(s);
      const c = await gw.waitFor((l) => l.connect === `${fqdn(name)}:80`);
      assertEquals(c.peer, "spiffe://cluster.local/ns/default/sa/sleep");
      assertEquals(c["x-forwarded-network"], null, "the outer CONNECT names no network");
      const t = await gw.waitFor((l) => l.tunnel === `${fqdn(name)}:80`);
      assertEquals(t.sawMarker, false, "the gateway never sees the plaintext");
      assert((t.bytes as number) > data.length, "the inner handshake crossed the gateway");
      assert(String(t.head).startsWith("16"), `a TLS handshake record first, got ${t.head}`);
      // 2. B read the inner CONNECT's x-forwarded-network: the source is taken from baggage.
      const rec = await nodeB.waitFor((l) =>
        l.msg === "connection complete" && l.direction === "inbound" &&
        l["dst.service"] === fqdn(name)
      );
      assertEquals(rec["src.network"], "n1");
      assertEquals(rec["src.workload"], "sleep");
      assertEquals(rec["src.identity"], "spiffe://cluster.local/ns/default/sa/sleep");
      assertEquals(rec.outcome, "ok");
    }
    const accepted = echo.accepted();

    // 3. The destination presents an identity A does not expect: the inner handshake is refused.
    await refusedAt(ip(101), ip(2), data);
    await gw.waitFor((l) => l.connect === `${fqdn("echo-badsan")}:80`);
    assertEquals(echo.accepted(), accepted, "nothing reached the workload");
    const mismatches = () =>
      scrape(nodeA).then((t) =>
        metricSum(t, "weft_tls_rejections_total", 'reason="identity_mismatch"', 'side="client"')
      );
    assert(await mismatches() >= 1, "A counts the destination's identity mismatch");

    // 4. The gateway presents an identity A does not expect: no CONNECT is ever sent to it.
    const before = await mismatches();
    await refusedAt(ip(102), ip(2), data);
    assert(await mismatches() > before, "A counts the gateway's identity mismatch");
    assert(!gw.lines.some((l) => l.connect === `${fqdn("echo-badgw")}:80`));

    // 5. Another network without a gateway: not reachable.
    await refusedAt(ip(104), ip(2), data);
    const text = await scrape(nodeA);
    assert(
      metricSum(text, "weft_l4_refused_total", 'reason="no_healthy_upstream"') >= 1,
      "an endpoint of another network without a gateway is skipped",
    );

    // 6. An endpoint on A's own network is still dialled directly (no gateway, no network).
    const connects = gw.lines.filter((l) => l.connect !== undefined).length;
    const direct = await dial(ip(103), ip(2));
    assertEquals(await roundTrip(direct, data), data);
    direct.end();
    await closed(direct);
    const rec = await nodeB.waitFor((l) =>
      l.msg === "connection complete" && l.direction === "inbound" &&
      l["dst.hbone_addr"] !== undefined && l["src.network"] === undefined && l.outcome === "ok"
    );
    assertEquals(rec["src.workload"], "sleep");
    assertEquals(gw.lines.filter((l) => l.connect !== undefined).length, connects);
  } finally {
    await Promise.all(procs.map((p) => p.stop()));
    await gw?.close();
    await echo.close();
    await pki.dispose();
  }
}

Deno.test("double HBONE: A (n1) → east-west gateway → B (n2), on Deno", () => scenario(undefined));

const bun = bunPath();
Deno.test({
  name: "double HBONE: A (n1) → east-west gateway → B (n2), on Bun",
  ignore: !bun,
  fn: () => scenario(bun),
});
