/**
 * `deno task bench:idle`: idle RSS of one weft node against the floors of its runtime, measured
 * one after the other in one run, so a note can say what is weft's and what is Bun's.
 *   bare bun (a timer) · bun + a node:tls mTLS listener · that + three Bun.serve servers (admin,
 *   metrics, readiness) · bun with weft's static imports (nothing started) · weft run on bun
 *   (source) · the same with the three first-party L7 filters (authz, fault, traffic-split) on
 *   its services · weft run taking its config over xDS from a `weft control-plane` (ADS stream open,
 *   on Bun and on Deno: the node's xDS and CA clients run on weft's own HTTP/2, without grpc-js)
 *   · the same as compiled binaries: bare, TLS listener + servers, `./weft run` (also with its
 *   readiness endpoint polled as the xDS rows are) and `./weft run` over xDS (the DaemonSet node's
 *   shape), the same with its workload certificate by CSR from the
 *   control plane's CA (ca.mode xds: no CA key on the node), `./weft run` with the three filters,
 *   the same with the filters as third-party builds (instrumented at load), `./weft run` over xDS
 *   whose workload has an HTTP service (no policy) and one with an L7 AuthorizationPolicy (RBAC
 *   over LDS)
 * Each weft binary row says whether issue #13's goal (idle RSS per node ≤ 48 MB) is met.
 * Each row: VmRSS and its split — RssAnon (heap, JIT code, stacks: the process's own) and
 * RssFile (pages of the bun executable touched so far: clean, shared, reclaimable).
 * Options: --binary PATH (default ./weft; built with `deno task build` when missing),
 * --settle-ms N (after the ready line; default 1000, as bench:l4), --source-only (no binary rows),
 * --repeat N (each row the median of N runs), --rows REGEX (only the rows whose label matches),
 * --as-written (do not drop the binaries' page cache first: see evictPageCache), --big (also the
 * binary on the 10 000-workload mesh, 3 s after its sync), --first-request (only: the latency of
 * the first and second requests through the binary's three-filter node, after its idle settle),
 * --smaps DIR (also save each run's /proc/PID/smaps there, named after its row, and the resident
 * pages of its file mappings: bench/idle_pages.ts names the code on them).
 */
import { createHash } from "node:crypto";
import { existsSync } from "node:fs";
import {
  IP as L4_IP,
  makeCerts,
  type Proc,
  spawn,
  weftConfig as l4WeftConfig,
} from "./l4_peers.ts";
import { meshManifests } from "../tests/support/istio_manifests.ts";
import { evictPageCache } from "./l4_idle.ts";
import { bigMeshJson } from "../src/xds/_bench_mesh.ts";

/** bench:l4's addresses moved to a block of their own (127.78.x instead of 127.79.x), so this
 * bench can run while bench:l4 holds its nodes on the same box. */
const ownBlock = (s: string): string => s.replaceAll("127.79.", "127.78.");
const IP = Object.fromEntries(
  Object.entries(L4_IP).map(([k, v]) => [k, ownBlock(v)]),
) as typeof L4_IP;
const weftConfig = (dir: string, side: "a" | "b"): string => ownBlock(l4WeftConfig(dir, side));

const argv = Deno.args;
const flag = (name: string): string | undefined => {
  const i = argv.indexOf(`--${name}`);
  return i >= 0 ? argv[i + 1] : undefined;
};
const SETTLE_MS = Number(flag("settle-ms") ?? 1000);
const BINARY = flag("binary") ?? "./weft";
const SOURCE_ONLY = argv.includes("--source-only");
/** --repeat N: each row is the median of N runs (min–max printed); --rows REGEX: only those rows. */
const AS_WRITTEN = argv.includes("--as-written");
/** --big: also the binary over xDS on the 10 000-workload mesh (src/xds/_bench_mesh.ts). */
const BIG = argv.includes("--big");
const FIRST_REQUEST = argv.includes("--first-request");
const XDS_BIG = `${IP.client}:15013`;
const REPEAT = Math.max(1, Number(flag("repeat") ?? 1));
const ROWS = flag("rows") ? new RegExp(flag("rows")!) : undefined;
/** --smaps DIR: also save each run's /proc/PID/smaps under DIR (named after the row). */
const SMAPS = flag("smaps");
const XDS_ADDRESS = `${IP.client}:15010`;
/** A second control plane, serving the mesh with an L7 AuthorizationPolicy (one row). */
const XDS_AUTHZ = `${IP.client}:15012`;
/** A third, serving the same mesh without the policy (the L7 listener without a filter). */
const XDS_HTTP = `${IP.client}:15014`;
/** Node bench-a's bearer token for the CA service (its SHA-256 is in the mesh's nodeTokens). */
const CSR_TOKEN = "bench-a-token";
const enc = new TextEncoder();
const out = (m: string): void => void Deno.stdout.writeSync(enc.encode(`${m}\n`));
const note = (m: string): void => void Deno.stderr.writeSync(enc.encode(`[bench:idle] ${m}\n`));

/** The floor programs: each prints "ready" and stays idle. */
function floorSources(dir: string): Record<string, string> {
  const tls = `import * as tls from "node:tls"; import * as fs from "node:fs";
const d = ${JSON.stringify(dir)};
const s = tls.createServer({ cert: fs.readFileSync(d + "/client.pem"),
  key: fs.readFileSync(d + "/client.key"), ca: fs.readFileSync(d + "/ca.pem"),
  requestCert: true, rejectUnauthorized: true, ALPNProtocols: ["h2"] });
await new Promise((r) => s.listen(15008, ${JSON.stringify(IP.client)}, r));
`;
  const serve = `for (const port of [15000, 15020, 15021]) {
  Bun.serve({ hostname: ${JSON.stringify(IP.client)}, port, fetch: () => new Response("ok") });
}
`;
  const idle = `console.log("ready"); setInterval(() => {}, 1 << 30);\n`;
  return {
    "bare.ts": idle,
    "tls.ts": tls + idle,
    "tls_serve.ts": tls + serve + idle,
    "imports.ts": `await import(${
      JSON.stringify(new URL("../src/app/node_agent.ts", import.meta.url).pathname)
    });\nawait import(${
      JSON.stringify(new URL("../src/app/cli.ts", import.meta.url).pathname)
    });\n${idle}`,
  };
}

interface Reading {
  readonly rss: number;
  readonly anon: number;
  readonly file: number;
  readonly min?: number;
  readonly max?: number;
}

function readStatus(pid: number): Reading {
  const s = Deno.readTextFileSync(`/proc/${pid}/status`);
  const kb = (k: string): number => Number(new RegExp(`${k}:\\s+(\\d+)`).exec(s)?.[1] ?? 0);
  return { rss: kb("VmRSS") / 1024, anon: kb("RssAnon") / 1024, file: kb("RssFile") / 1024 };
}

async function measure(
  label: string,
  cmd: string,
  args: string[],
  readyText: string,
  after?: (p: Proc) => Promise<void>,
  env: Record<string, string> = {},
): Promise<Reading> {
  let p: Proc | undefined;
  try {
    p = await spawn(cmd, args, {
      readyText,
      env: { ...Deno.env.toObject(), WEFT_LOG: "info", ...env },
    });
    await after?.(p);
    await new Promise((r) => setTimeout(r, SETTLE_MS));
    if (SMAPS) {
      const name = label.replace(/[^a-z0-9]+/gi, "_").slice(0, 80);
      Deno.mkdirSync(SMAPS, { recursive: true });
      Deno.copyFileSync(`/proc/${p.pid}/smaps`, `${SMAPS}/${name}.${p.pid}.smaps`);
      Deno.writeTextFileSync(`${SMAPS}/${name}.${p.pid}.pages`, residentFilePages(p.pid));
    }
    return readStatus(p.pid);
  } finally {
    await p?.stop();
  }
}

/** The resident pages of the process's file mappings, one line each: the file's path and the
 * page's file offset in hex (from /proc/PID/pagemap's present bit, bit 63). What --smaps saves
 * beside smaps: bench/idle_pages.ts names the code on those pages from the executable's symbols. */
function residentFilePages(pid: number): string {
  const lines: string[] = [];
  const pagemap = Deno.openSync(`/proc/${pid}/pagemap`);
  try {
    for (const m of Deno.readTextFileSync(`/proc/${pid}/maps`).split("\n")) {
      const f = m.split(/\s+/);
      if (f.length < 6 || !f[5]!.startsWith("/")) continue;
      const [lo, hi] = f[0]!.split("-").map((x) => parseInt(x, 16)) as [number, number];
      const off = parseInt(f[2]!, 16);
      const n = (hi - lo) / 4096;
      const buf = new Uint8Array(n * 8);
      pagemap.seekSync((lo / 4096) * 8, Deno.SeekMode.Start);
      let got = 0;
      while (got < buf.length) {
        const r = pagemap.readSync(buf.subarray(got));
        if (!r) break;
        got += r;
      }
      const v = new DataView(buf.buffer);
      for (let i = 0; i < n; i++) {
        if (v.getUint8(i * 8 + 7) & 0x80) lines.push(`${f[5]} ${(off + i * 4096).toString(16)}`);
      }
    }
  } finally {
    pagemap.close();
  }
  return lines.join("\n") + "\n";
}

async function compile(src: string, outfile: string): Promise<void> {
  const r = await new Deno.Command("bun", {
    args: ["build", "--compile", "--outfile", outfile, src],
    stdout: "null",
    stderr: "piped",
  }).output();
  if (!r.success) throw new Error(`bun build ${src}: ${new TextDecoder().decode(r.stderr)}`);
}

async function main(): Promise<void> {
  const dir = Deno.makeTempDirSync({ prefix: "weft-bench-idle-" });
  try {
    await makeCerts(dir);
    const config = `${dir}/weft-a.yaml`;
    Deno.writeTextFileSync(config, weftConfig(dir, "a"));
    const l7Config = `${dir}/weft-l7.yaml`;
    Deno.writeTextFileSync(l7Config, l7Yaml(dir));
    for (const [name, code] of Object.entries(floorSources(dir))) {
      Deno.writeTextFileSync(`${dir}/${name}`, code);
    }
    // The same node taking its config from a control plane: one service, its own workload.
    Deno.writeTextFileSync(`${dir}/mesh.yaml`, xdsMesh());
    Deno.writeTextFileSync(`${dir}/mesh-authz.yaml`, xdsMesh("authz"));
    Deno.writeTextFileSync(`${dir}/mesh-http.yaml`, xdsMesh("http"));
    Deno.writeTextFileSync(
      `${dir}/weft-xds.yaml`,
      `${weftConfig(dir, "a")}xds:\n  address: ${XDS_ADDRESS}\n`,
    );
    // The DaemonSet node with no CA key: its workload certificate by CSR from the control
    // plane's CA (ca.mode xds, istiod's CreateCertificate), its token registered in the mesh.
    Deno.writeTextFileSync(`${dir}/node.token`, CSR_TOKEN);
    Deno.writeTextFileSync(
      `${dir}/weft-xds-csr.yaml`,
      `${
        weftConfig(dir, "a").replace(/ca:\n {2}mode: files\n.*\n.*\n/, "ca:\n  mode: xds\n")
      }xds:\n  address: ${XDS_ADDRESS}\n  tokenFile: ${dir}/node.token\n`,
    );
    Deno.writeTextFileSync(
      `${dir}/weft-xds-authz.yaml`,
      `${
        weftConfig(dir, "a").replace("name: bench-a", "name: bench-z")
      }xds:\n  address: ${XDS_AUTHZ}\n`,
    );
    Deno.writeTextFileSync(
      `${dir}/weft-xds-http.yaml`,
      `${
        weftConfig(dir, "a").replace("name: bench-a", "name: bench-z")
      }xds:\n  address: ${XDS_HTTP}\n`,
    );
    if (!SOURCE_ONLY && !existsSync(BINARY)) {
      note(`building ${BINARY}`);
      const b = await new Deno.Command(Deno.execPath(), {
        args: ["run", "-A", "tools/build.ts", "--outfile", BINARY],
      }).output();
      if (!b.success) throw new Error("deno task build failed");
    }
    const ready = '"msg":"ready"';
    if (FIRST_REQUEST) return await firstRequest(l7Config, ready);
    const rows: [string, Reading][] = [];
    const run = async (
      label: string,
      cmd: string,
      args: string[],
      text = "ready",
      after?: (p: Proc) => Promise<void>,
      env?: Record<string, string>,
    ) => {
      if (ROWS && !ROWS.test(label)) return;
      const runs: Reading[] = [];
      for (let i = 0; i < REPEAT; i++) {
        runs.push(await measure(label, cmd, args, text, after, env));
      }
      runs.sort((a, b) => a.rss - b.rss);
      const r = { ...runs[Math.floor(runs.length / 2)]!, min: runs[0]!.rss, max: runs.at(-1)!.rss };
      rows.push([label, r]);
      note(
        `${label}: ${r.rss.toFixed(1)} MB${
          REPEAT > 1 ? ` (${r.min.toFixed(1)}–${r.max.toFixed(1)})` : ""
        }`,
      );
    };
    await run("bun: bare (a timer)", "bun", [`${dir}/bare.ts`]);
    await run("bun: + node:tls mTLS listener", "bun", [`${dir}/tls.ts`]);
    await run("bun: + 3 Bun.serve (admin, metrics, readiness)", "bun", [`${dir}/tls_serve.ts`]);
    await run("bun: weft's static imports, nothing started", "bun", [`${dir}/imports.ts`]);
    await run("bun: weft run (source)", "bun", ["src/main.ts", "run", "--config", config], ready);
    await run(
      "bun: weft run, the three first-party L7 filters on one service (source)",
      "bun",
      ["src/main.ts", "run", "--config", l7Config],
      ready, // logged after the three filters' first generations loaded
    );
    const cp = await controlPlane(dir, "mesh.yaml", XDS_ADDRESS, "cp-ca");
    try {
      const xdsArgs = ["src/main.ts", "run", "--config", `${dir}/weft-xds.yaml`];
      await run("bun: weft run over xDS (source)", "bun", xdsArgs, ready, xdsApplied);
      await run(
        "deno: weft run over xDS (source)",
        Deno.execPath(),
        ["run", "-A", ...xdsArgs],
        ready,
        xdsApplied,
      );
      if (SOURCE_ONLY) return print(rows);
      await compile(`${dir}/bare.ts`, `${dir}/bare_bin`);
      await compile(`${dir}/tls_serve.ts`, `${dir}/tls_serve_bin`);
      if (!AS_WRITTEN) {
        for (const b of [`${dir}/bare_bin`, `${dir}/tls_serve_bin`, BINARY]) {
          await evictPageCache(b);
        }
      }
      await run("binary: bare (a timer)", `${dir}/bare_bin`, []);
      await run("binary: node:tls listener + 3 Bun.serve", `${dir}/tls_serve_bin`, []);
      await run(`binary: ${BINARY} run`, BINARY, ["run", "--config", config], ready);
      // The same node, its readiness endpoint polled until it answers, as the xDS rows are
      // (xdsApplied): serving those requests maps Bun's HTTP server code (+0.4–0.5 MB), part of
      // what the xDS rows carry over the row above.
      await run(
        `binary: ${BINARY} run, its readiness probed as the xDS rows`,
        BINARY,
        ["run", "--config", config],
        ready,
        xdsApplied,
      );
      await run(
        `binary: ${BINARY} run, the three first-party L7 filters`,
        BINARY,
        ["run", "--config", l7Config],
        ready,
      );
      await run(
        `binary: ${BINARY} run, the same three filters as third-party builds (instrumented at load)`,
        BINARY,
        ["run", "--config", l7Config],
        ready,
        undefined,
        { WEFT_PLUGIN_DIR: await customBuilds(dir) },
      );
      await run(
        `binary: ${BINARY} run over xDS`,
        BINARY,
        ["run", "--config", `${dir}/weft-xds.yaml`],
        ready,
        xdsApplied,
      );
      await run(
        `binary: ${BINARY} run over xDS, its certificate by CSR from the control plane's CA`,
        BINARY,
        ["run", "--config", `${dir}/weft-xds-csr.yaml`],
        ready,
        xdsApplied,
      );
      const cpHttp = await controlPlane(dir, "mesh-http.yaml", XDS_HTTP, "cp-ca-http");
      try {
        await run(
          `binary: ${BINARY} run over xDS, an HTTP service on its workload (no policy)`,
          BINARY,
          ["run", "--config", `${dir}/weft-xds-http.yaml`],
          ready,
          xdsApplied,
        );
      } finally {
        await cpHttp.stop();
      }
      const cpAuthz = await controlPlane(dir, "mesh-authz.yaml", XDS_AUTHZ, "cp-ca-authz");
      try {
        await run(
          `binary: ${BINARY} run over xDS, an L7 AuthorizationPolicy on its workload (RBAC)`,
          BINARY,
          ["run", "--config", `${dir}/weft-xds-authz.yaml`],
          ready,
          xdsApplied,
        );
      } finally {
        await cpAuthz.stop();
      }
      if (BIG) await bigMeshRow(dir, run);
    } finally {
      await cp.stop();
    }
    await print(rows);
  } finally {
    Deno.removeSync(dir, { recursive: true });
  }
}

async function print(rows: [string, Reading][]): Promise<void> {
  const load = Deno.loadavg().map((l) => l.toFixed(2)).join(" ");
  out(`\nidle RSS floors (bun ${await bunVersion()}, settle ${SETTLE_MS} ms, load ${load})`);
  const range = REPEAT > 1 ? ` (median of ${REPEAT}; min–max)` : "";
  out(`| process | RSS MB${range} | anon MB | file MB | goal |`);
  out("|---|---|---|---|---|");
  for (const [label, r] of rows) {
    const mm = r.min !== undefined && REPEAT > 1
      ? ` (${r.min.toFixed(1)}–${r.max!.toFixed(1)})`
      : "";
    out(
      `| ${label} | ${r.rss.toFixed(1)}${mm} | ${r.anon.toFixed(1)} | ${r.file.toFixed(1)} | ${
        goalOf(label, r.rss)
      } |`,
    );
  }
}

/** Issue #13's goal, idle RSS per node ≤ 48 MB, is for the shipped binary's weft nodes; the
 * floors and the source runs are context, and the 10 000-workload row is not an idle node. */
const GOAL_MB = 48;
function goalOf(label: string, rss: number): string {
  if (!label.startsWith("binary:") || !label.includes(" run") || label.includes("10 000")) {
    return "—";
  }
  return rss <= GOAL_MB
    ? `≤ ${GOAL_MB}: met`
    : `≤ ${GOAL_MB}: not met (+${(rss - GOAL_MB).toFixed(1)})`;
}

/** First and second request through the idle three-filter binary (each on a new connection, after
 * the settle): `local` (VIP:8082 → the node's own workload over HBONE, inbound authz: 200 from a
 * backend here) and `web` (VIP:8081, outbound fault + traffic-split; its endpoints have no node,
 * so 503 after the filters). Medians of --repeat runs. */
async function firstRequest(l7Config: string, ready: string): Promise<void> {
  const backend = Deno.serve(
    { hostname: IP.client, port: 8080, onListen: () => {} },
    () => new Response("ok"),
  );
  const timed = async (url: string): Promise<[number, number]> => {
    const client = Deno.createHttpClient({});
    try {
      const t0 = performance.now();
      const r = await fetch(url, { client, signal: AbortSignal.timeout(5000) });
      await r.body?.cancel();
      return [performance.now() - t0, r.status];
    } finally {
      client.close();
    }
  };
  const rows = new Map<string, number[]>();
  const add = (k: string, v: number) => rows.set(k, [...(rows.get(k) ?? []), v]);
  try {
    for (let i = 0; i < REPEAT; i++) {
      const p = await spawn(BINARY, ["run", "--config", l7Config], {
        readyText: ready,
        env: { ...Deno.env.toObject(), WEFT_LOG: "info" },
      });
      try {
        await new Promise((r) => setTimeout(r, SETTLE_MS));
        for (const [svc, port] of [["local (authz, HBONE)", 8082], ["web (fault, split)", 8081]]) {
          for (const nth of ["first", "second"]) {
            const [ms, status] = await timed(`http://${IP.vip}:${port}/`);
            add(`${svc}: ${nth} request (${status})`, ms);
          }
        }
      } finally {
        await p.stop();
      }
    }
  } finally {
    await backend.shutdown();
  }
  const load = Deno.loadavg().map((l) => l.toFixed(2)).join(" ");
  out(`\nfirst requests through ${BINARY}, three filters (settle ${SETTLE_MS} ms, load ${load})`);
  out(`| request | ms (median of ${REPEAT}; min–max) |`);
  out("|---|---|");
  for (const [k, v] of rows) {
    v.sort((a, b) => a - b);
    const med = v[Math.floor(v.length / 2)]!;
    out(`| ${k} | ${med.toFixed(1)} (${v[0]!.toFixed(1)}–${v.at(-1)!.toFixed(1)}) |`);
  }
}

/** The static node with the three first-party filters: its workload's HTTP port behind an
 * AuthorizationPolicy with an HTTP condition (authz, inbound) and one HTTP service whose
 * VirtualService routes carry a weighted split and a fault (traffic-split, fault, outbound). */
function l7Yaml(dir: string): string {
  const base = weftConfig(dir, "a").replace(
    `  - { name: client, namespace: default, serviceAccount: client, address: ${IP.client} }\n`,
    `  - { name: client, namespace: default, serviceAccount: client, address: ${IP.client}, ports: [8080], labels: { app: client } }\n`,
  );
  return `${base}  - name: web
    namespace: default
    vips: [${IP.vip}]
    ports: [{ port: 8081, targetPort: 8080, protocol: HTTP }]
    endpoints:
      - { workload: server, namespace: default, serviceAccount: server, address: ${IP.server}, hboneAddress: "${IP.server}:15008", labels: { version: v1 } }
      - { workload: server2, namespace: default, serviceAccount: server, address: ${IP.server}, hboneAddress: "${IP.server}:15008", labels: { version: v2 } }
    subsets: [{ name: v1, labels: { version: v1 } }, { name: v2, labels: { version: v2 } }]
    http:
      - route: [{ destination: { host: web, subset: v1 }, weight: 90 }, { destination: { host: web, subset: v2 }, weight: 10 }]
        fault: { abort: { httpStatus: 503, percentage: { value: 1 } } }
  - name: local
    namespace: default
    vips: [${IP.vip}]
    ports: [{ port: 8082, targetPort: 8080, protocol: HTTP }]
    endpoints:
      - { workload: client, namespace: default, serviceAccount: client, address: ${IP.client} }
authorizationPolicies:
  - metadata: { name: deny-admin, namespace: default }
    spec:
      selector: { matchLabels: { app: client } }
      action: DENY
      rules: [{ to: [{ operation: { paths: ["/admin*"] } }] }]
`;
}

/** The three first-party plugins as a third party would ship them: the same components with a
 * custom section appended (another sha256, same behaviour), in a WEFT_PLUGIN_DIR. The binary
 * embeds sandboxed cores only for its own plugins' sha256s (src/filters/sandbox/prebuilt.ts), so
 * these go through the load-time instrumenter like any third-party component. */
async function customBuilds(dir: string): Promise<string> {
  const out = `${dir}/plugins-custom`;
  Deno.mkdirSync(out, { recursive: true });
  const tag = enc.encode("built-by-a-third-party");
  // component custom section: id 0, size, name (length-prefixed), no payload
  const section = new Uint8Array([0, tag.length + 1, tag.length, ...tag]);
  for (const name of ["authz", "fault", "traffic-split"]) {
    const bytes = await Deno.readFile(`plugins/${name}/build/${name}.wasm`);
    await Deno.writeFile(`${out}/${name}.wasm`, new Uint8Array([...bytes, ...section]));
  }
  return out;
}

type Run = (
  label: string,
  cmd: string,
  args: string[],
  text?: string,
  after?: (p: Proc) => Promise<void>,
  env?: Record<string, string>,
) => Promise<void>;

/** The binary as node-0 of the 10 000-workload mesh (100 workloads of its own, 1000 services),
 * 3 s after its sync: what the decoded state holds, not an idle floor. Its 500 HTTP services carry
 * the traffic-split filter, whose wasm instances load around then, so the spread is wide (125–177
 * MB in one session); compare medians of several runs. */
async function bigMeshRow(dir: string, run: Run): Promise<void> {
  Deno.writeTextFileSync(`${dir}/mesh-big.json`, bigMeshJson());
  Deno.writeTextFileSync(
    `${dir}/weft-xds-big.yaml`,
    `${weftConfig(dir, "a").replace("name: bench-a", "name: node-0")}xds:\n  address: ${XDS_BIG}\n`,
  );
  const cp = await controlPlane(dir, "mesh-big.json", XDS_BIG, "cp-ca-big");
  try {
    await run(
      `binary: ${BINARY} run over xDS, 10 000-workload mesh (3 s after sync)`,
      BINARY,
      ["run", "--config", `${dir}/weft-xds-big.yaml`],
      '"msg":"ready"',
      async (p) => {
        await xdsApplied(p);
        await new Promise((r) => setTimeout(r, 3000 - SETTLE_MS));
      },
    );
  } finally {
    await cp.stop();
  }
}

function controlPlane(dir: string, mesh: string, address: string, caDir: string): Promise<Proc> {
  return spawn(Deno.execPath(), [
    "run",
    "-A",
    "src/main.ts",
    "control-plane",
    "--config",
    `${dir}/${mesh}`,
    "--address",
    address,
    "--ca-dir",
    `${dir}/${caDir}`,
  ], { readyText: '"msg":"ready"', env: { ...Deno.env.toObject(), WEFT_LOG: "info" } });
}

/** A mesh with the bench node's workload and one service, as Istio manifests; with `http`, also
 * node bench-z's workload behind an HTTP service (an inbound L7 listener for that node), and with
 * `authz` that and an L7 AuthorizationPolicy on it (the listener carries an RBAC filter). */
function xdsMesh(kind: "tcp" | "http" | "authz" = "tcp"): string {
  const client = {
    name: "client",
    namespace: "default",
    serviceAccount: "client",
    address: IP.client,
    node: "bench-a",
  };
  const echo = {
    name: "echo",
    namespace: "default",
    vips: [IP.vip],
    ports: [{ port: 80, targetPort: 8080 }],
  };
  if (kind === "tcp") {
    const token = createHash("sha256").update(CSR_TOKEN).digest("hex");
    return meshManifests({
      workloads: [client],
      services: [echo],
      nodeTokens: { "bench-a": token },
    });
  }
  return meshManifests({
    workloads: [client, {
      // node bench-z's workload: an HTTP service behind an L7 AuthorizationPolicy, so that node
      // gets an inbound listener with an RBAC filter over xDS
      name: "web",
      namespace: "default",
      serviceAccount: "web",
      address: IP.client,
      node: "bench-z",
      labels: { app: "web" },
    }],
    services: [echo, {
      name: "web",
      namespace: "default",
      vips: [IP.vip],
      ports: [{ port: 81, targetPort: 8081, protocol: "HTTP" }],
    }],
    authorizationPolicies: kind === "http" ? [] : [{
      name: "deny-header",
      namespace: "default",
      selector: { app: "web" },
      action: "DENY",
      rules: [{ when: [{ key: "request.headers[x-block]", values: ["yes"] }] }],
    }],
  });
}

/** Measured once the node took its config from the control plane: its readiness endpoint (what
 * a kubelet probes on the DaemonSet) answers 200 only once the first sync is applied. Not
 * /config_dump: rendering it every 50 ms (every metric, the whole config) made JavaScriptCore
 * Baseline-compile two of its functions in most xDS runs, once the node's start-up JIT hold had
 * ended, starting JIT worker threads and mapping the JIT's code (up to +0.9 MB in those rows,
 * alternated runs; the static rows, never polled, carry none of it). */
async function xdsApplied(p: Proc): Promise<void> {
  const deadline = Date.now() + 20_000;
  while (Date.now() < deadline) {
    try {
      const r = await fetch(`http://${IP.client}:15021/healthz/ready`);
      await r.body?.cancel();
      if (r.status === 200) return;
    } catch { /* not answering yet */ }
    await new Promise((r) => setTimeout(r, 50));
  }
  throw new Error(`node ${p.pid} never took its config over xDS`);
}

async function bunVersion(): Promise<string> {
  const r = await new Deno.Command("bun", { args: ["--version"], stdout: "piped" }).output();
  return new TextDecoder().decode(r.stdout).trim();
}

await main();
