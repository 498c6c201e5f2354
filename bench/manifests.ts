/**
 * `deno task bench:manifests` — issue 12's goals on a 10 000-workload directory of Kubernetes-style
 * manifests (Pods, Services, DestinationRules, VirtualServices as multi-document YAML, 60 files):
 *  1. parse + validate + build the xDS resources (control plane) ≤ 500 ms;
 *  2. one file edited → the change enforced on a node (XdsClient snapshot) ≤ 50 ms.
 * Peers measured in the same run: the YAML parse alone (js-yaml, the floor for step 1) and the
 * `yaml` package weft used before (what step 1 cost with it). Medians of several runs.
 */
import process from "node:process";
import { mkdtemp, readFile, rename, rm, writeFile } from "node:fs/promises";
import { loadavg, tmpdir } from "node:os";
import { join } from "node:path";
import { loadAll } from "js-yaml";
import { parseAllDocuments, stringify } from "yaml";
import { setLogLevel } from "../src/core/mod.ts";
import {
  loadMesh,
  newMeshLoader,
  readSources,
  startControlPlane,
} from "../src/xds/control_plane/mod.ts";
import { XdsClient } from "../src/xds/mod.ts";
import { BASE } from "../src/xds/_test_fixtures.ts";
import { bigMeshJson } from "../src/xds/_bench_mesh.ts";

setLogLevel("warn");
const say = (line: string): void => void process.stdout.write(`${line}\n`);
const median = (xs: number[]): number => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;
const ms = (x: number): string => `${x.toFixed(1)} ms`;

const docs = (JSON.parse(bigMeshJson()) as { items: Record<string, unknown>[] }).items;
const dir = await mkdtemp(join(tmpdir(), "weft-bench-manifests-"));
const PER_FILE = 200;
const files: string[] = [];
for (let i = 0; i < docs.length; i += PER_FILE) {
  const f = join(dir, `m${String(i / PER_FILE).padStart(3, "0")}.yaml`);
  await writeFile(f, docs.slice(i, i + PER_FILE).map((d) => stringify(d)).join("---\n"));
  files.push(f);
}
// The VirtualServices live in files of their own: svc0's alone (the one-route edit), the other
// 499 together (the every-route edit).
const allVs = docs.filter((d) => d.kind === "VirtualService");
const vsText = (list: Record<string, unknown>[], v2: number): string =>
  list.map((d) => {
    const spec = d.spec as { http: { route: { weight?: number }[] }[] };
    const route = spec.http[0]!.route;
    return stringify({
      ...d,
      spec: {
        ...spec,
        http: [{ route: [{ ...route[0], weight: 100 - v2 }, { ...route[1], weight: v2 }] }],
      },
    });
  }).join("---\n");
const oneFile = join(dir, "zz-vs-svc0.yaml");
const restFile = join(dir, "zz-vs-rest.yaml");
for (const f of files) {
  const text = await readFile(f, "utf8");
  await writeFile(
    f,
    text.split("---\n").filter((t) => !t.includes("kind: VirtualService")).join("---\n"),
  );
}
await writeFile(oneFile, vsText(allVs.slice(0, 1), 10));
await writeFile(restFile, vsText(allVs.slice(1), 10));
const sources = await readSources([dir]);
const bytes = sources.reduce((a, s) => a + s.text.length, 0);
const workloads = docs.filter((d) => d.kind === "Pod").length;
say(
  `${workloads} workloads, ${docs.length} objects, ${sources.length} files, ${
    (bytes / 1e6).toFixed(1)
  } MB; ${typeof Deno === "object" ? "Deno" : "Bun"}, load average ${
    loadavg().map((x) => x.toFixed(2)).join(" ")
  }`,
);

const runs = 5;
const full: number[] = [], cpu: number[] = [], jsy: number[] = [], yml: number[] = [];
for (let i = 0; i < runs; i++) {
  let t = performance.now();
  const c0 = process.cpuUsage();
  await loadMesh([dir]);
  full.push(performance.now() - t);
  const c = process.cpuUsage(c0);
  cpu.push((c.user + c.system) / 1000);
  t = performance.now();
  for (const s of sources) loadAll(s.text);
  jsy.push(performance.now() - t);
  if (i < 2) {
    t = performance.now();
    for (const s of sources) parseAllDocuments(s.text).forEach((d) => d.toJS());
    yml.push(performance.now() - t);
  }
}
say(
  `1. read + parse + validate + build xDS resources: median ${ms(median(full))} (goal ≤ 500 ms); ` +
    `process CPU time ${ms(median(cpu))} (GC threads included)`,
);
say(
  `   peer: js-yaml parse alone ${ms(median(jsy))} (step 1 is ${
    (median(full) / median(jsy)).toFixed(1)
  }x it); the \`yaml\` package parse alone ${ms(median(yml))}`,
);

// Incremental reload without a client: one file changed.
const loader = newMeshLoader();
await loadMesh([dir], loader);
const inc: number[] = [];
for (let i = 0; i < runs; i++) {
  await writeFile(oneFile, vsText(allVs.slice(0, 1), i % 2 ? 10 : 20));
  const t = performance.now();
  await loadMesh([dir], loader);
  inc.push(performance.now() - t);
}
say(
  `   reload after one file changed (cached parse + reused resources): median ${ms(median(inc))}`,
);

const cp = await startControlPlane({ configPaths: [dir], address: "127.0.0.1:0" });
const client = new XdsClient({ server: cp.address, mode: "delta", nodeId: "node-a", base: BASE });
client.start();
const t0 = performance.now();
await client.ready();
say(`   initial sync of a node over gRPC (delta): ${ms(performance.now() - t0)}`);
async function edits(
  what: string,
  file: string,
  list: Record<string, unknown>[],
  probe: (s: Awaited<ReturnType<typeof client.ready>>) => string,
): Promise<void> {
  const out: number[] = [];
  let v2 = 10;
  for (let i = 0; i < 7; i++) {
    v2 = v2 === 10 ? 20 : 10;
    const want = `"weight":${v2}}`;
    const seen = client.waitFor((s) => probe(s).includes(want));
    const tmp = join(dir, ".vs.tmp");
    await writeFile(tmp, vsText(list, v2));
    const t = performance.now();
    await rename(tmp, file); // the watcher picks it up (10 ms debounce included)
    await seen;
    out.push(performance.now() - t);
  }
  say(`2. edit (${what}) → enforced on a node: median ${ms(median(out))} (goal ≤ 50 ms)`);
}
const filtersOf = (s: Awaited<ReturnType<typeof client.ready>>, name: string): string =>
  JSON.stringify(s.services.find((x) => x.name === name)?.outboundFilters ?? null);
await edits(
  "one VirtualService's weights",
  oneFile,
  allVs.slice(0, 1),
  (s) => filtersOf(s, "svc0"),
);
await edits(
  "499 VirtualServices' weights",
  restFile,
  allVs.slice(1),
  (s) => filtersOf(s, "svc998"),
);
await client.close();
await cp.close();
await rm(dir, { recursive: true });
