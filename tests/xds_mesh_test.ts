import { join } from "node:path";
import { meshManifests } from "./support/istio_manifests.ts";
import { stringify } from "yaml";
/**
 * xDS end to end with real processes: `weft control-plane` serves a mesh file; two `weft run`
 * nodes take workloads, services, policies and their certificates (CSR → CreateCertificate) from
 * it. A mesh-file edit changes behaviour live; the nodes keep serving across a control-plane
 * restart.
 */
import { connect, type Socket } from "node:net";
import { assertEquals } from "./support/assert.ts";
import { startEcho } from "./support/echo_server.ts";
import { closed, roundTrip } from "./support/mesh.ts";
import { LISTENERS, loopbackBlock, startWeft, type WeftProc } from "./support/weft_proc.ts";
import { readyStatus, startXdsMesh, type XdsMesh } from "./support/xds_nodes.ts";

function mesh(
  ip: (n: number) => string,
  echoPort: number,
  policies: unknown[],
): Record<string, unknown> {
  return {
    trustDomain: "cluster.local",
    workloads: [
      {
        name: "sleep",
        namespace: "default",
        serviceAccount: "sleep",
        address: ip(2),
        node: "node-a",
        labels: { app: "sleep" },
      },
      {
        name: "echo",
        namespace: "default",
        serviceAccount: "echo",
        address: ip(3),
        node: "node-b",
        labels: { app: "echo" },
      },
    ],
    services: [{
      name: "echo",
      namespace: "default",
      vips: [ip(100)],
      ports: [{ port: 80, targetPort: echoPort }],
    }],
    authorizationPolicies: policies,
  };
}

Deno.test("xds: nodes configured and certified by the control plane; a mesh edit applies live", async () => {
  const ip = loopbackBlock();
  const dir = await Deno.makeTempDir({ prefix: "weft-xds-mesh-" });
  const echo = await startEcho(ip(3));
  let x: XdsMesh | undefined;
  try {
    x = await startXdsMesh(dir, mesh(ip, echo.port, []), ["node-a", "node-b"], ["node-a"]);
    const [a, b] = x.nodes as [WeftProc, WeftProc];
    const dial = () =>
      new Promise<Socket>((resolve, reject) => {
        const deadline = Date.now() + 15_000;
        const attempt = () => {
          const s = connect({ host: ip(100), port: 80, localAddress: ip(2) });
          const retry = (e: Error) => Date.now() < deadline ? setTimeout(attempt, 100) : reject(e);
          s.once("error", retry);
          s.once("connect", () => {
            s.off("error", retry);
            s.on("error", () => {});
            resolve(s);
          });
        };
        attempt();
      });
    // Both nodes converge: ready once every xDS type was answered and certificates exist.
    await x.waitReady(a);
    await x.waitReady(b);
    const s = await dial();
    const data = new TextEncoder().encode("via xds");
    assertEquals(await roundTrip(s, data), data);
    const dump = await (await fetch(`http://${b.ready.admin}/config_dump`)).json();
    assertEquals(dump.certificates[0].identity, "spiffe://cluster.local/ns/default/sa/echo");
    // Live policy change: deny the client; the open connection is closed, new ones refused.
    await x.writeMesh(mesh(ip, echo.port, [{
      name: "deny-sleep",
      namespace: "default",
      action: "DENY",
      rules: [{ from: [{ source: { principals: ["cluster.local/ns/default/sa/sleep"] } }] }],
    }]));
    await closed(s, 15_000);
    const s2 = await dial();
    s2.write("x");
    await closed(s2);
    // Control plane goes away: the nodes keep serving the last good config.
    await x.cp.stop();
    await x.writeMesh(mesh(ip, echo.port, []));
    const s3 = await dial();
    s3.write("y");
    await closed(s3);
    assertEquals(await readyStatus(b), 200);
  } finally {
    await x?.stop();
    await echo.close();
    await Deno.remove(dir, { recursive: true });
  }
});

/** The node's /config_dump once `ready` holds for it (snapshots arrive type by type), polled
 * every 100 ms for 20 s at most; the last dump otherwise, for the assertions to show. */
async function configDumpWhen<T>(p: WeftProc, ready: (d: T) => boolean): Promise<T> {
  let dump: T;
  for (let i = 0;; i++) {
    dump = await (await fetch(`http://${p.ready.admin}/config_dump`)).json();
    if (ready(dump) || i >= 200) return dump;
    await new Promise((r) => setTimeout(r, 100));
  }
}

Deno.test("xds over mTLS: weft run with a local CA and xds.tls talks to weft control-plane --tls", async () => {
  const ip = loopbackBlock();
  const dir = await Deno.makeTempDir({ prefix: "weft-xds-mtls-" });
  const caDir = join(dir, "ca");
  const meshPath = join(dir, "mesh.yaml");
  await Deno.writeTextFile(meshPath, meshManifests(mesh(ip, 8080, [])));
  const procs: WeftProc[] = [];
  try {
    const cp = await startWeft([
      "control-plane",
      "--config",
      meshPath,
      "--address",
      "127.0.0.1:0",
      "--ca-dir",
      caDir,
      "--tls",
    ]);
    procs.push(cp);
    assertEquals(cp.ready.tls, true);
    const cfg = {
      node: { name: "node-b" },
      ca: { mode: "auto", stateDir: caDir }, // the control plane's CA: the node signs its own agent identity
      listeners: { ...LISTENERS, captureServiceVips: false },
      xds: { address: String(cp.ready.address), tls: true },
    };
    await Deno.writeTextFile(join(dir, "b.yaml"), stringify(cfg));
    const b = await startWeft(["run", "--config", join(dir, "b.yaml")]);
    procs.push(b);
    // Snapshots arrive type by type: wait until the node's workload came over the mTLS stream.
    const dump = await configDumpWhen<
      { workloads: { name: string }[]; xds: { connected: boolean } }
    >(
      b,
      (d) => d.workloads.length > 0,
    );
    assertEquals(dump.workloads.map((w) => w.name), ["echo"]);
    assertEquals(dump.xds.connected, true);
  } finally {
    await Promise.all(procs.map((p) => p.stop()));
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("xds over server TLS + node token (istiod's bootstrap): the root from a file, the token on ADS and CSRs; no token, no stream", async () => {
  const ip = loopbackBlock();
  const dir = await Deno.makeTempDir({ prefix: "weft-xds-token-" });
  const caDir = join(dir, "ca");
  const meshPath = join(dir, "mesh.yaml");
  const token = `token-${crypto.randomUUID()}`;
  const hash = Array.from(
    new Uint8Array(await crypto.subtle.digest("SHA-256", new TextEncoder().encode(token))),
  ).map((b) => b.toString(16).padStart(2, "0")).join("");
  await Deno.writeTextFile(
    meshPath,
    meshManifests({ ...mesh(ip, 8080, []), nodeTokens: { "node-b": hash } }),
  );
  const procs: WeftProc[] = [];
  try {
    const cp = await startWeft([
      "control-plane",
      "--config",
      meshPath,
      "--address",
      "127.0.0.1:0",
      "--ca-dir",
      caDir,
      "--tls",
      "--client-auth",
      "token",
    ]);
    procs.push(cp);
    assertEquals([cp.ready.tls, cp.ready.clientAuth], [true, "token"]);
    // What a cluster distributes: the CA's root certificate (a ConfigMap) and each node's token.
    await Deno.writeTextFile(join(dir, "token"), token);
    const node = (name: string, tokenFile: string) => ({
      node: { name },
      ca: { mode: "xds" }, // no CA key on the node: workload certificates by CSR
      listeners: { ...LISTENERS, captureServiceVips: false },
      xds: {
        address: String(cp.ready.address),
        rootCertFile: join(caDir, "ca-cert.pem"),
        tokenFile,
      },
    });
    await Deno.writeTextFile(join(dir, "b.yaml"), stringify(node("node-b", join(dir, "token"))));
    const b = await startWeft(["run", "--config", join(dir, "b.yaml")]);
    procs.push(b);
    const dump = await configDumpWhen<
      { workloads: { name: string }[]; certificates: { identity: string }[] }
    >(b, (d) => d.workloads.length > 0 && d.certificates.length > 0);
    assertEquals(dump.workloads.map((w) => w.name), ["echo"]);
    assertEquals(dump.certificates[0]!.identity, "spiffe://cluster.local/ns/default/sa/echo");
    // A node with a wrong token gets no xDS stream: it never learns the mesh.
    await Deno.writeTextFile(join(dir, "bad-token"), "not-the-token");
    await Deno.writeTextFile(
      join(dir, "c.yaml"),
      stringify(node("node-b", join(dir, "bad-token"))),
    );
    const c = await startWeft(["run", "--config", join(dir, "c.yaml")]);
    procs.push(c);
    await c.waitFor((l) => l.msg === "xds stream ended" && l.reason === "UNAUTHENTICATED", 15_000);
    const cDump = await (await fetch(`http://${c.ready.admin}/config_dump`)).json();
    assertEquals(cDump.workloads.length, 0);
  } finally {
    await Promise.all(procs.map((p) => p.stop()));
    await Deno.remove(dir, { recursive: true });
  }
});
