/**
 * `deno task bench:idle`: idle RSS of one weft node against the floors of its runtime, measured
 * one after the other in one run, so a note can say what is weft's and what is Bun's.
 *   bare bun (a timer) · bun + a node:tls mTLS listener · that + three Bun.serve servers (admin,
 *   metrics, readiness) · bun with weft's static imports (nothing started) · weft run on bun
 *   (source) · the same as compiled binaries: bare, TLS listener + servers, and `./weft run`
 * Each row: VmRSS and its split — RssAnon (heap, JIT code, stacks: the process's own) and
 * RssFile (pages of the bun executable touched so far: clean, shared, reclaimable).
 * Options: --binary PATH (default ./weft; built with `deno task build` when missing),
 * --settle-ms N (after the ready line; default 1000, as bench:l4).
 */
import { existsSync } from "node:fs";
import { IP, makeCerts, type Proc, spawn, weftConfig } from "./l4_peers.ts";

const argv = Deno.args;
const flag = (name: string): string | undefined => {
  const i = argv.indexOf(`--${name}`);
  return i >= 0 ? argv[i + 1] : undefined;
};
const SETTLE_MS = Number(flag("settle-ms") ?? 1000);
const BINARY = flag("binary") ?? "./weft";
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
}

function readStatus(pid: number): Reading {
  const s = Deno.readTextFileSync(`/proc/${pid}/status`);
  const kb = (k: string): number => Number(new RegExp(`${k}:\\s+(\\d+)`).exec(s)?.[1] ?? 0);
  return { rss: kb("VmRSS") / 1024, anon: kb("RssAnon") / 1024, file: kb("RssFile") / 1024 };
}

async function measure(cmd: string, args: string[], readyText: string): Promise<Reading> {
  let p: Proc | undefined;
  try {
    p = await spawn(cmd, args, { readyText, env: { ...Deno.env.toObject(), WEFT_LOG: "info" } });
    await new Promise((r) => setTimeout(r, SETTLE_MS));
    return readStatus(p.pid);
  } finally {
    await p?.stop();
  }
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
    for (const [name, code] of Object.entries(floorSources(dir))) {
      Deno.writeTextFileSync(`${dir}/${name}`, code);
    }
    if (!existsSync(BINARY)) {
      note(`building ${BINARY}`);
      const b = await new Deno.Command(Deno.execPath(), {
        args: ["run", "-A", "tools/build.ts", "--outfile", BINARY],
      }).output();
      if (!b.success) throw new Error("deno task build failed");
    }
    await compile(`${dir}/bare.ts`, `${dir}/bare_bin`);
    await compile(`${dir}/tls_serve.ts`, `${dir}/tls_serve_bin`);
    const ready = '"msg":"ready"';
    const rows: [string, Reading][] = [];
    const run = async (label: string, cmd: string, args: string[], text = "ready") => {
      const r = await measure(cmd, args, text);
      rows.push([label, r]);
      note(`${label}: ${r.rss.toFixed(1)} MB`);
    };
    await run("bun: bare (a timer)", "bun", [`${dir}/bare.ts`]);
    await run("bun: + node:tls mTLS listener", "bun", [`${dir}/tls.ts`]);
    await run("bun: + 3 Bun.serve (admin, metrics, readiness)", "bun", [`${dir}/tls_serve.ts`]);
    await run("bun: weft's static imports, nothing started", "bun", [`${dir}/imports.ts`]);
    await run("bun: weft run (source)", "bun", ["src/main.ts", "run", "--config", config], ready);
    await run("binary: bare (a timer)", `${dir}/bare_bin`, []);
    await run("binary: node:tls listener + 3 Bun.serve", `${dir}/tls_serve_bin`, []);
    await run(`binary: ${BINARY} run`, BINARY, ["run", "--config", config], ready);
    const load = Deno.loadavg().map((l) => l.toFixed(2)).join(" ");
    out(`\nidle RSS floors (bun ${await bunVersion()}, settle ${SETTLE_MS} ms, load ${load})`);
    out("| process | RSS MB | anon MB | file MB |");
    out("|---|---|---|---|");
    for (const [label, r] of rows) {
      out(`| ${label} | ${r.rss.toFixed(1)} | ${r.anon.toFixed(1)} | ${r.file.toFixed(1)} |`);
    }
  } finally {
    Deno.removeSync(dir, { recursive: true });
  }
}

async function bunVersion(): Promise<string> {
  const r = await new Deno.Command("bun", { args: ["--version"], stdout: "piped" }).output();
  return new TextDecoder().decode(r.stdout).trim();
}

await main();
