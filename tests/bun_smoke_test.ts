/**
 * weft stays runnable on Bun: two `bun src/main.ts run` nodes carry a tunnel end to end (HBONE
 * mTLS, L4 authz) and serve their admin endpoints. Skipped when no bun binary is present
 * (`deno task setup` installs one into .weft/tools with npm).
 */
import { join } from "node:path";
import { stringify } from "yaml";
import { assertEquals } from "./support/assert.ts";
import { startEcho } from "./support/echo_server.ts";
import { closed, roundTrip } from "./support/mesh.ts";
import {
  bunPath,
  LISTENERS,
  loopbackBlock,
  startWeft,
  type WeftProc,
} from "./support/weft_proc.ts";
import { createTestPki } from "./support/test_ca.ts";
import { connect, type Socket } from "node:net";

const BUN = bunPath();

Deno.test({
  name: "bun: two weft nodes on Bun tunnel A → HBONE → B",
  ignore: BUN === undefined,
  fn: async () => {
    const ip = loopbackBlock();
    const pki = await createTestPki();
    const echo = await startEcho(ip(3));
    const ca = { mode: "files", certFile: pki.rootsPath, keyFile: pki.caKeyPath };
    const a = {
      node: { name: "bun-a" },
      ca,
      listeners: LISTENERS,
      workloads: [{ name: "sleep", serviceAccount: "sleep", address: ip(2) }],
      services: [{
        name: "echo",
        vips: [ip(100)],
        ports: [{ port: 80, targetPort: echo.port }],
        endpoints: [{ workload: "echo", serviceAccount: "echo", address: ip(3) }],
      }],
    };
    const b = {
      node: { name: "bun-b" },
      ca,
      listeners: LISTENERS,
      workloads: [{ name: "echo", serviceAccount: "echo", address: ip(3) }],
    };
    await Deno.writeTextFile(join(pki.dir, "a.yaml"), stringify(a));
    await Deno.writeTextFile(join(pki.dir, "b.yaml"), stringify(b));
    const procs: WeftProc[] = [];
    try {
      for (const f of ["b.yaml", "a.yaml"]) {
        procs.push(await startWeft(["run", "--config", join(pki.dir, f)], { runtime: BUN! }));
      }
      const s = await new Promise<Socket>((resolve, reject) => {
        const c = connect({ host: ip(100), port: 80, localAddress: ip(2) });
        c.once("connect", () => resolve(c));
        c.once("error", reject);
      });
      const data = new TextEncoder().encode("hello from bun");
      assertEquals(await roundTrip(s, data), data);
      s.end();
      await closed(s);
      const r = await fetch(`http://${procs[0]!.ready.readiness}/healthz/ready`);
      assertEquals([r.status, await r.text()], [200, "ready\n"]);
    } finally {
      await Promise.all(procs.map((p) => p.stop()));
      await echo.close();
      await pki.dispose();
    }
  },
});
