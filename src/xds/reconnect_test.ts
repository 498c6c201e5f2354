/** Control plane absent at start, killed mid-stream, restarted: the client keeps serving its
 * last snapshot, reconnects with backoff, resubscribes and converges. */
import assert from "node:assert/strict";
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { writeAtomic } from "./_atomic_write.ts";
import { BASE, meshYaml } from "./_test_fixtures.ts";
import { XdsClient } from "./client.ts";
import { startControlPlane } from "./control_plane/mod.ts";
import { xdsTerminations } from "./metrics.ts";

const weights = (
  s: { services: readonly { name: string; outboundFilters: readonly { config: unknown }[] }[] },
) =>
  JSON.stringify(s.services.find((x) => x.name === "echo")?.outboundFilters.at(-1)?.config ?? null);

for (const mode of ["delta", "sotw"] as const) {
  Deno.test(`xds reconnect (${mode}): absent, killed, restarted → keeps serving and converges`, async () => {
    const dir = await mkdtemp(join(tmpdir(), "weft-xds-"));
    const path = join(dir, "mesh.yaml");
    await writeAtomic(path, meshYaml(10));
    // Learn a free loopback port, then leave it empty: the control plane is absent at start.
    const probe = await startControlPlane({ configPath: path, address: "127.0.0.1:0" });
    const address = probe.address;
    await probe.close();
    const before = xdsTerminations.sum();
    const client = new XdsClient({
      server: address,
      mode,
      nodeId: "node-a",
      base: BASE,
      initialBackoffMs: 5,
      maxBackoffMs: 100,
    });
    let cp = undefined as Awaited<ReturnType<typeof startControlPlane>> | undefined;
    try {
      client.start();
      const failed = new Promise<void>((resolve) => {
        const t = setInterval(() => {
          if (xdsTerminations.sum() > before) {
            clearInterval(t);
            resolve();
          }
        }, 5);
      });
      await failed;
      assert.equal(client.snapshot, undefined);
      cp = await startControlPlane({ configPath: path, address });
      const s1 = await client.waitFor((s) =>
        /"weight":90/.test(weights(s)) && s.workloads.length === 1
      );
      const streams1 = client.streams;

      await cp.close(); // killed mid-stream
      cp = undefined;
      assert.equal(client.snapshot, s1, "last good snapshot keeps serving while disconnected");
      await writeAtomic(path, meshYaml(30));
      cp = await startControlPlane({ configPath: path, address });
      const s2 = await client.waitFor((s) => /"weight":70.*"weight":30/.test(weights(s)));
      assert.ok(client.streams > streams1, "a new stream was opened");
      assert.equal(s2.services.length, 2);
      assert.equal(s2.workloads.length, 1);
    } finally {
      await client.close();
      await cp?.close();
      await rm(dir, { recursive: true });
    }
  });
}
