/**
 * hbone.md §4: the client accepts the destination workload's identity or any of its service's
 * `subject_alt_names` (ztunnel's `upstream_sans`). Node A expects the endpoint to run as
 * `echo-old`; node B's workload presents `echo`. Without the service's SANs the tunnel is refused
 * (identity_mismatch); with `subjectAltNames: [.../sa/echo]` on the service the same dial works.
 */
import { join } from "node:path";
import { stringify } from "yaml";
import { assert, assertEquals } from "./support/assert.ts";
import { startEcho } from "./support/echo_server.ts";
import { closed, metricSum, roundTrip, scrape } from "./support/mesh.ts";
import { LISTENERS, loopbackBlock, startWeft, type WeftProc } from "./support/weft_proc.ts";
import { createTestPki } from "./support/test_ca.ts";
import { connect, type Socket } from "node:net";

function dial(host: string, localAddress: string): Promise<Socket> {
  return new Promise<Socket>((resolve, reject) => {
    const c = connect({ host, port: 80, localAddress });
    c.once("connect", () => resolve(c));
    c.once("error", reject);
  });
}

Deno.test("hbone: a service's subjectAltNames widen the identities its endpoints may present", async () => {
  const ip = loopbackBlock();
  const pki = await createTestPki();
  const echo = await startEcho(ip(3));
  const ca = { mode: "files", certFile: pki.rootsPath, keyFile: pki.caKeyPath };
  const nodeA = (sans: string[] | undefined) => ({
    node: { name: "a" },
    ca,
    listeners: LISTENERS,
    workloads: [{ name: "sleep", serviceAccount: "sleep", address: ip(2) }],
    services: [{
      name: "echo",
      vips: [ip(100)],
      ports: [{ port: 80, targetPort: echo.port }],
      // The registry still names the old service account; the pod now runs as `echo`.
      endpoints: [{ workload: "echo", serviceAccount: "echo-old", address: ip(3) }],
      ...(sans ? { subjectAltNames: sans } : {}),
    }],
  });
  const b = {
    node: { name: "b" },
    ca,
    listeners: LISTENERS,
    workloads: [{ name: "echo", serviceAccount: "echo", address: ip(3) }],
  };
  await Deno.writeTextFile(join(pki.dir, "b.yaml"), stringify(b));
  await Deno.writeTextFile(join(pki.dir, "a1.yaml"), stringify(nodeA(undefined)));
  await Deno.writeTextFile(
    join(pki.dir, "a2.yaml"),
    stringify(nodeA(["spiffe://cluster.local/ns/default/sa/echo"])),
  );
  const procs: WeftProc[] = [];
  try {
    procs.push(await startWeft(["run", "--config", join(pki.dir, "b.yaml")]));
    const data = new TextEncoder().encode("hello through the service's SAN");

    const a1 = await startWeft(["run", "--config", join(pki.dir, "a1.yaml")]);
    procs.push(a1);
    const s1 = await dial(ip(100), ip(2));
    s1.write(data);
    await closed(s1);
    assertEquals(echo.accepted(), 0, "nothing may reach the workload");
    const text = await scrape(a1);
    assert(
      metricSum(text, "weft_tls_rejections_total", 'reason="identity_mismatch"', 'side="client"') >=
        1,
      "the client counts the identity mismatch",
    );
    await a1.stop();
    procs.pop();

    const a2 = await startWeft(["run", "--config", join(pki.dir, "a2.yaml")]);
    procs.push(a2);
    const s2 = await dial(ip(100), ip(2));
    assertEquals(await roundTrip(s2, data), data);
    s2.end();
    await closed(s2);
  } finally {
    await Promise.all(procs.map((p) => p.stop()));
    await echo.close();
    await pki.dispose();
  }
});
