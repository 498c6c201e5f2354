/**
 * A node agent must never die because its control plane restarts. A real `weft control-plane`
 * is killed (SIGKILL: the connection just drops; SIGTERM: a graceful shutdown that cancels the
 * open ADS streams and sends GOAWAY) and restarted on the same address, repeatedly and at
 * different moments (right after a push, while the node's ACK is in flight, after a pause),
 * while a `weft run` node holds an open ADS stream: on Deno over h2c, on Bun over TLS with a
 * node token (istiod's bootstrap shape: the root from xds.rootCertFile, the control plane's
 * SPIFFE id checked). Each time the node keeps
 * serving its last good config while the control plane is away, reconnects, and applies the
 * config written while it was gone. On Deno this used to abort the node inside node:http2
 * (nghttp2's find_stream_on_goaway_func assertion) under the grpc-js client.
 */
import { assert, assertEquals } from "./support/assert.ts";
import { bunPath, loopbackBlock, type WeftProc } from "./support/weft_proc.ts";
import { startXdsMesh, type XdsMesh } from "./support/xds_nodes.ts";

const ROUNDS = 6;

function mesh(ip: (n: number) => string, round: number): Record<string, unknown> {
  return {
    trustDomain: "cluster.local",
    // A new workload each round: the node asks the CA for its certificate (a unary call on
    // the same connection as the ADS stream, so that connection holds finished streams too).
    workloads: [...new Set([0, round])].map((r) => ({
      name: `w-${r}`,
      namespace: "default",
      serviceAccount: `sa-${r}`,
      address: ip(10 + r),
      node: "node-a",
      labels: { app: "w" },
    })),
    services: [{
      name: `svc-${round}`,
      namespace: "default",
      vips: [ip(100 + round)],
      ports: [{ port: 80, targetPort: 8080 }],
    }],
  };
}

interface Dump {
  services: { name: string }[];
  certificates: { identity: string; state: string }[];
  xds: { connected: boolean; streams: number };
}

async function dump(node: WeftProc): Promise<Dump> {
  const r = await fetch(`http://${node.ready.admin}/config_dump`);
  return await r.json() as Dump;
}

/** Polls the node's config until `pred` holds (the node must stay up meanwhile). */
async function until(node: WeftProc, pred: (d: Dump) => boolean, what: string): Promise<Dump> {
  const deadline = Date.now() + 30_000;
  for (;;) {
    await alive(node);
    const d = await dump(node);
    if (pred(d)) return d;
    if (Date.now() > deadline) throw new Error(`${what}: not seen; last ${JSON.stringify(d.xds)}`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

async function alive(node: WeftProc): Promise<void> {
  const gone = await Promise.race([
    node.exited.then((s) => `exited with ${s.code} (signal ${s.signal})`),
    new Promise<undefined>((r) => setTimeout(() => r(undefined), 0)),
  ]);
  if (gone) throw new Error(`the node ${gone}; stderr:\n${node.stderrText().slice(-4000)}`);
}

async function restarts(runtime: string | undefined, tls: boolean): Promise<void> {
  const ip = loopbackBlock();
  const dir = await Deno.makeTempDir({ prefix: "weft-xds-restart-" });
  let x: XdsMesh | undefined;
  try {
    x = await startXdsMesh(dir, mesh(ip, 0), ["node-a"], [], undefined, {
      ...(runtime ? { nodeRuntime: runtime } : {}),
      tls,
    });
    const node = x.nodes[0]!;
    await x.waitReady(node);
    let seen = await until(node, (d) => d.services.some((s) => s.name === "svc-0"), "svc-0");
    const certified = (d: Dump, r: number) =>
      d.certificates.some((c) =>
        c.identity === `spiffe://cluster.local/ns/default/sa/sa-${r}` && c.state === "Available"
      );
    for (let round = 1; round <= ROUNDS; round++) {
      // Moments: at once after the last push and certificate (the ACK may still be in flight),
      // after a short pause, and after the stream has been idle a while.
      await new Promise((r) => setTimeout(r, [0, 5, 200][round % 3]));
      const streams = seen.xds.streams;
      await x.restartControlPlane(round % 3 === 2 ? "SIGKILL" : "SIGTERM", async () => {
        // The control plane is gone: the node still serves the last good config.
        await alive(node);
        const away = await dump(node);
        assert(away.services.some((s) => s.name === `svc-${round - 1}`), "last good config");
        await x!.writeMesh(mesh(ip, round));
      });
      seen = await until(
        node,
        (d) =>
          d.xds.connected && d.services.map((s) => s.name).join() === `svc-${round}` &&
          certified(d, round),
        `round ${round}: the config written while the control plane was away, and its certificate`,
      );
      assert(seen.xds.streams > streams, `round ${round}: the node opened a new ADS stream`);
    }
    await alive(node);
    assertEquals(await node.stop(), 0, "the node drains and exits cleanly");
  } finally {
    await x?.stop();
    await Deno.remove(dir, { recursive: true });
  }
}

Deno.test("xds: a Deno node agent (h2c) survives repeated control-plane kills and restarts", async () => {
  await restarts(undefined, false);
});

Deno.test({
  name:
    "xds: a Bun node agent (TLS + node token) survives repeated control-plane kills and restarts",
  ignore: bunPath() === undefined,
  fn: async () => {
    await restarts(bunPath(), true);
  },
});
