/**
 * Double HBONE configured by the embedded control plane (hbone.md §9): the echo pod is labelled
 * `topology.istio.io/network: n2` and a Service labelled with n2 on port 15008 is that network's
 * east-west gateway, so the control plane sends the pod's Workload.network and network_gateway
 * (WDS) and the same in EDS metadata. Node A (weft.yaml `node.network: n1`) then reaches the pod
 * on node B (n2) through the gateway (tests/support/ew_gateway.ts at the gateway Service's
 * address); the gateway's identity comes from the workload behind that Service. The client
 * connects through node A's SOCKS5 port (no VIP capture: the gateway's address must not be
 * captured on this shared loopback).
 */
import { join } from "node:path";
import { copyFile, mkdir } from "node:fs/promises";
import { connect, type Socket } from "node:net";
import { stringify } from "yaml";
import { assert, assertEquals } from "./support/assert.ts";
import { startEcho } from "./support/echo_server.ts";
import { closed, roundTrip } from "./support/mesh.ts";
import { LISTENERS, loopbackBlock, startWeft, type WeftProc } from "./support/weft_proc.ts";
import { createTestPki } from "./support/test_ca.ts";
import { type EwGateway, startEwGateway } from "./support/ew_gateway.ts";
import { nodeToken, readyStatus } from "./support/xds_nodes.ts";

const MARKER = "plaintext-marker-xds-51c2";
const GW_ID = "spiffe://cluster.local/ns/istio-system/sa/istio-eastwestgateway";
const ECHO = "echo.default.svc.cluster.local";

async function sha256Hex(text: string): Promise<string> {
  const d = await crypto.subtle.digest("SHA-256", new TextEncoder().encode(text));
  return [...new Uint8Array(d)].map((b) => b.toString(16).padStart(2, "0")).join("");
}

function manifests(ip: (n: number) => string, echoPort: number, tokens: Record<string, string>) {
  return `
apiVersion: weft.dev/v1alpha1
kind: MeshConfig
metadata: { name: mesh, namespace: istio-system }
spec: { nodeTokens: ${JSON.stringify(tokens)} }
---
apiVersion: v1
kind: Pod
metadata: { name: sleep, namespace: default, labels: { app: sleep, topology.istio.io/network: n1 } }
spec: { nodeName: a, serviceAccountName: sleep }
status: { podIP: ${ip(2)} }
---
apiVersion: v1
kind: Pod
metadata: { name: echo, namespace: default, labels: { app: echo, topology.istio.io/network: n2 } }
spec: { nodeName: b, serviceAccountName: echo }
status: { podIP: ${ip(3)} }
---
apiVersion: v1
kind: Service
metadata: { name: echo, namespace: default }
spec:
  clusterIPs: [${ip(100)}]
  selector: { app: echo }
  ports: [{ name: tcp-80, port: 80, targetPort: ${echoPort} }]
---
apiVersion: networking.istio.io/v1
kind: WorkloadEntry
metadata: { name: eastwest, namespace: istio-system }
spec:
  address: ${ip(50)}
  network: n2
  serviceAccount: istio-eastwestgateway
  labels: { app: eastwest }
---
apiVersion: v1
kind: Service
metadata:
  name: eastwest
  namespace: istio-system
  labels: { topology.istio.io/network: n2 }
spec:
  clusterIPs: [${ip(60)}]
  selector: { app: eastwest }
  ports: [{ name: tls-hbone, port: 15008, targetPort: 15008 }]
`;
}

/** SOCKS5 CONNECT to host:port through `proxy`, from `localAddress` (the source workload). */
function socks(proxy: string, host: string, port: number, localAddress: string): Promise<Socket> {
  const at = proxy.lastIndexOf(":");
  return new Promise<Socket>((resolve, reject) => {
    const s = connect({
      host: proxy.slice(0, at),
      port: Number(proxy.slice(at + 1)),
      localAddress,
    });
    s.once("error", reject);
    let step = 0;
    let buf = new Uint8Array(0);
    const onData = (d: Uint8Array) => {
      const b = new Uint8Array(buf.length + d.length);
      b.set(buf);
      b.set(d, buf.length);
      buf = b;
      if (step === 0 && buf.length >= 2) {
        buf = buf.subarray(2);
        step = 1;
        const h = new TextEncoder().encode(host);
        s.write(Uint8Array.of(5, 1, 0, 3, h.length, ...h, port >> 8, port & 0xff));
      }
      if (step === 1 && buf.length >= 10) {
        s.off("data", onData);
        s.off("error", reject);
        if (buf[1] !== 0) {
          s.destroy();
          reject(new Error(`SOCKS5 reply ${buf[1]}`));
        } else resolve(s);
      }
    };
    s.on("data", onData);
    s.once("connect", () => s.write(Uint8Array.of(5, 1, 0)));
  });
}

Deno.test("double HBONE from the control plane's network_gateway: A (n1) → gateway → B (n2)", async () => {
  const ip = loopbackBlock();
  const pki = await createTestPki();
  const echo = await startEcho(ip(3));
  // The control plane's CA is the test CA, so the gateway's certificate chains to the mesh root.
  const caDir = join(pki.dir, "ca");
  await mkdir(caDir);
  await copyFile(pki.rootsPath, join(caDir, "ca-cert.pem"));
  await copyFile(pki.caKeyPath, join(caDir, "ca-key.pem"));
  const tokens = { a: await sha256Hex(nodeToken("a")), b: await sha256Hex(nodeToken("b")) };
  const meshPath = join(pki.dir, "mesh.yaml");
  await Deno.writeTextFile(meshPath, manifests(ip, echo.port, tokens));
  const gwCert = await pki.good(GW_ID);
  const procs: WeftProc[] = [];
  let gw: EwGateway | undefined;
  try {
    gw = await startEwGateway({
      addresses: [ip(60)],
      port: 15008,
      certPem: gwCert.certPem,
      keyPem: gwCert.keyPem,
      rootsPem: pki.rootsPem,
      routes: { [`${ECHO}:80`]: `${ip(3)}:15008` },
      marker: MARKER,
    });
    const cp = await startWeft([
      "control-plane",
      "--config",
      meshPath,
      "--address",
      "127.0.0.1:0",
      "--ca-dir",
      caDir,
    ]);
    procs.push(cp);
    const node = async (name: string, network: string, socks5: string) => {
      const tokenFile = join(pki.dir, `${name}.token`);
      await Deno.writeTextFile(tokenFile, nodeToken(name));
      const cfg = join(pki.dir, `${name}.yaml`);
      await Deno.writeTextFile(
        cfg,
        stringify({
          node: { name, network },
          ca: { mode: "xds" },
          listeners: { ...LISTENERS, socks5, captureServiceVips: false },
          xds: { address: String(cp.ready.address), tokenFile },
        }),
      );
      const p = await startWeft(["run", "--config", cfg], { timeoutMs: 120_000 });
      procs.push(p);
      const deadline = Date.now() + 30_000;
      while ((await readyStatus(p)) !== 200) {
        if (Date.now() > deadline) throw new Error(`node ${name} never became ready`);
        await new Promise((r) => setTimeout(r, 100));
      }
      return p;
    };
    const nodeB = await node("b", "n2", "");
    // On this test's own loopback block (the ready line names the configured address).
    const socksAt = `${ip(9)}:15080`;
    await node("a", "n1", socksAt);

    const data = new TextEncoder().encode(`${MARKER} over xDS-configured double HBONE`);
    const s = await socks(socksAt, ECHO, 80, ip(2));
    assertEquals(await roundTrip(s, data), data);
    s.end();
    await closed(s);
    const c = await gw.waitFor((l) => l.connect === `${ECHO}:80`);
    assertEquals(c.peer, "spiffe://cluster.local/ns/default/sa/sleep");
    const t = await gw.waitFor((l) => l.tunnel === `${ECHO}:80`);
    assertEquals(t.sawMarker, false, "the gateway relays only the inner tunnel's TLS records");
    assert(String(t.head).startsWith("16"), `a TLS handshake record first, got ${t.head}`);
    const rec = await nodeB.waitFor((l) =>
      l.msg === "connection complete" && l.direction === "inbound" && l["dst.service"] === ECHO
    );
    assertEquals(rec["src.network"], "n1");
    assertEquals(rec["src.workload"], "sleep");
    assertEquals(rec.outcome, "ok");
  } finally {
    await Promise.all(procs.map((p) => p.stop()));
    await gw?.close();
    await echo.close();
    await pki.dispose();
  }
});
