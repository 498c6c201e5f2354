/**
 * `deno task bench:xds`. Goals (issue 5): applying a 10 000-workload snapshot ≤ 500 ms;
 * push-to-enforced latency on one node ≤ 50 ms.
 */
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { writeAtomic } from "./_atomic_write.ts";
import { BASE, meshYaml } from "./_test_fixtures.ts";
import { bigMeshJson } from "./_bench_mesh.ts";
import { applyResources } from "./apply.ts";
import { XdsClient } from "./client.ts";
import { buildNode } from "./control_plane/build.ts";
import { parseMesh } from "./control_plane/mesh.ts";
import { startControlPlane } from "./control_plane/mod.ts";
import { setLogLevel } from "../core/mod.ts";
import { ResourceStore } from "./store.ts";
import { Translator } from "./translate.ts";
import { TYPE_ORDER } from "./type_urls.ts";

setLogLevel("warn");
const bigText = bigMeshJson();
const big = buildNode(parseMesh(bigText), "node-a");

Deno.bench(
  "control plane: parse + build a 10 000-workload mesh (JSON)",
  { n: 5, warmup: 1 },
  () => {
    buildNode(parseMesh(bigText), "node-a");
  },
);

Deno.bench(
  "apply a 10 000-workload snapshot (decode + validate + translate)",
  { n: 10, warmup: 2 },
  () => {
    const store = new ResourceStore();
    for (const t of TYPE_ORDER) {
      const items = [...big.get(t)!.values()].map((b) => ({
        name: undefined,
        version: b.version,
        any: b.any,
      }));
      applyResources(store, t, items, () => true);
    }
    const snap = new Translator(BASE).build(store, "bench");
    if (snap.services.length !== 1000) {
      throw new Error(
        `expected 1000 services, got ${snap.services.length}`,
      );
    }
  },
);

const dir = await mkdtemp(join(tmpdir(), "weft-xds-bench-"));
const path = join(dir, "mesh.yaml");
await writeAtomic(path, meshYaml(10));
const cp = await startControlPlane({ configPath: path, address: "127.0.0.1:0" });
const clients = await Promise.all((["delta", "sotw"] as const).map(async (mode) => {
  const c = new XdsClient({ server: cp.address, mode, nodeId: "node-a", base: BASE });
  c.start();
  await c.waitFor((s) => s.services.length === 2);
  return c;
}));
globalThis.addEventListener("unload", () => {
  for (const c of clients) void c.close();
  void cp.close();
  void rm(dir, { recursive: true });
});

let w = 10;
for (const [i, mode] of (["delta", "sotw"] as const).entries()) {
  Deno.bench(
    `push-to-enforced on one node (${mode}, small mesh)`,
    { n: 50, warmup: 5 },
    async (b) => {
      w = w === 10 ? 20 : 10;
      await writeAtomic(path, meshYaml(w));
      const want = `"weight":${w}}`;
      b.start();
      const seen = clients[i]!.waitFor((s) => JSON.stringify(s.services).includes(want));
      await cp.reload();
      await seen;
      b.end();
    },
  );
}

// The same 10 000-workload mesh end to end over gRPC: initial sync of a fresh node, then a
// one-route change pushed to it (includes re-reading and re-building the mesh file).
const bigPath = join(dir, "big.json");
await writeAtomic(bigPath, bigMeshJson());
const bigCp = await startControlPlane({ configPath: bigPath, address: "127.0.0.1:0" });
globalThis.addEventListener("unload", () => void bigCp.close());

Deno.bench(
  "initial sync of a 10 000-workload mesh over gRPC (delta)",
  { n: 5, warmup: 1 },
  async () => {
    const c = new XdsClient({
      server: bigCp.address,
      mode: "delta",
      nodeId: "node-a",
      base: BASE,
      // As the node agent configures it: every response is searched for a filter type whose
      // checks load lazily (this mesh has none, so all of them are).
      loadFilterChecks: () => Promise.resolve(),
    });
    c.start();
    const s = await c.ready();
    await c.close();
    if (s.services.length !== 1000) {
      throw new Error(
        `expected 1000 services, got ${s.services.length}`,
      );
    }
  },
);

const bigClient = new XdsClient({
  server: bigCp.address,
  mode: "delta",
  nodeId: "node-a",
  base: BASE,
});
bigClient.start();
await bigClient.ready();
globalThis.addEventListener("unload", () => void bigClient.close());
let bw = 10;
Deno.bench("push-to-enforced, 10 000-workload mesh, route weights of every HTTP service (delta)", {
  n: 5,
  warmup: 1,
}, async (b) => {
  bw = bw === 10 ? 20 : 10;
  await writeAtomic(bigPath, bigMeshJson(1000, 10, 100, bw));
  const want = `"weight":${bw}}`;
  b.start();
  const seen = bigClient.waitFor((s) =>
    JSON.stringify(s.services[0]!.outboundFilters).includes(want)
  );
  await bigCp.reload();
  await seen;
  b.end();
});
