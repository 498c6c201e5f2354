/**
 * xDS end to end with real processes: `weft control-plane` serves a mesh file; two `weft run`
 * nodes take workloads, services, policies and their certificates (CSR → CreateCertificate) from
 * it. A mesh-file edit changes behaviour live; the nodes keep serving across a control-plane
 * restart.
 */
import { stringify } from "yaml";
import { join } from "node:path";
import { connect, type Socket } from "node:net";
import { assert, assertEquals } from "./support/assert.ts";
import { startEcho } from "./support/echo_server.ts";
import { closed, roundTrip } from "./support/mesh.ts";
import { loopbackBlock, startWeft, type WeftProc } from "./support/weft_proc.ts";

const LISTENERS = {
  admin: "127.0.0.1:0",
  metrics: "127.0.0.1:0",
  readiness: "127.0.0.1:0",
  socks5: "",
  inboundPlaintextPort: 0,
};

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

async function writeAtomically(path: string, text: string): Promise<void> {
  await Deno.writeTextFile(path + ".tmp", text);
  await Deno.rename(path + ".tmp", path);
}

Deno.test("xds: nodes configured and certified by the control plane; a mesh edit applies live", async () => {
  const ip = loopbackBlock();
  const dir = await Deno.makeTempDir({ prefix: "weft-xds-mesh-" });
  const echo = await startEcho(ip(3));
  const meshPath = join(dir, "mesh.yaml");
  await writeAtomically(meshPath, stringify(mesh(ip, echo.port, [])));
  const procs: WeftProc[] = [];
  try {
    const cp = await startWeft([
      "control-plane",
      "--config",
      meshPath,
      "--address",
      "127.0.0.1:0",
      "--ca-dir",
      join(dir, "ca"),
    ]);
    procs.push(cp);
    const address = String(cp.ready.address);
    for (const name of ["node-a", "node-b"]) {
      const cfgPath = join(dir, `${name}.yaml`);
      const listeners = { ...LISTENERS, captureServiceVips: name === "node-a" };
      await Deno.writeTextFile(
        cfgPath,
        stringify({ node: { name }, ca: { mode: "xds" }, listeners, xds: { address } }),
      );
      procs.push(await startWeft(["run", "--config", cfgPath]));
    }
    const [, a, b] = procs as [WeftProc, WeftProc, WeftProc];
    const readyUrl = (p: WeftProc) => `http://${p.ready.readiness}/healthz/ready`;
    const status = async (url: string): Promise<number> => {
      try {
        const r = await fetch(url);
        await r.body?.cancel();
        return r.status;
      } catch {
        return 0;
      }
    };
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
    for (const p of [a, b]) {
      const deadline = Date.now() + 20_000;
      while ((await status(readyUrl(p))) !== 200) {
        assert(Date.now() < deadline, "node never became ready");
        await new Promise((r) => setTimeout(r, 100));
      }
    }
    const s = await dial();
    const data = new TextEncoder().encode("via xds");
    assertEquals(await roundTrip(s, data), data);
    const dump = await (await fetch(`http://${b.ready.admin}/config_dump`)).json();
    assertEquals(dump.certificates[0].identity, "spiffe://cluster.local/ns/default/sa/echo");
    // Live policy change: deny the client; the open connection is closed, new ones refused.
    await writeAtomically(
      meshPath,
      stringify(
        mesh(ip, echo.port, [{
          name: "deny-sleep",
          namespace: "default",
          action: "DENY",
          rules: [{ from: [{ source: { principals: ["cluster.local/ns/default/sa/sleep"] } }] }],
        }]),
      ),
    );
    await closed(s, 15_000);
    const s2 = await dial();
    s2.write("x");
    await closed(s2);
    // Control plane goes away: the nodes keep serving the last good config.
    await cp.stop();
    await writeAtomically(meshPath, stringify(mesh(ip, echo.port, [])));
    const s3 = await dial();
    s3.write("y");
    await closed(s3);
    assertEquals(await status(readyUrl(b)), 200);
  } finally {
    await Promise.all(procs.map((p) => p.stop()));
    await echo.close();
    await Deno.remove(dir, { recursive: true });
  }
});
