// deno-lint-ignore-file no-console
/**
 * A/B of the L7 proxy on one noisy box: `deno run -A bench/l7/l7_ab.ts <treeA> <treeB>
 * [rounds]` starts bench/l7/l7_proxy_server.ts of two source trees (each with its plugins built)
 * and one nginx reverse proxy, all in front of the same nginx upstream, then runs wrk -t2 -c32
 * against nginx, A, B, nginx, A, B, ... (L7_BENCH_SECONDS each, default 5) and prints each
 * tree's ratio to nginx over the same rounds, with the load average, and each proxy's CPU time
 * (user + system) per request over its rounds.
 * `--deno`: the proxies run on Deno (default Bun, the shipped runtime). Other `--` arguments
 * (e.g. `--no-filters`) go to both proxy servers. A tree may carry environment for its proxy:
 * `path?K=V,K2=V2` (the same tree twice with and without a JSC option, say). Loopback only,
 * bounded duration.
 */
import { join } from "node:path";
import { proxyReadyLine, startNginxPair, type Wrk, wrk as wrkFor } from "./peers.ts";

const SECONDS = Deno.env.get("L7_BENCH_SECONDS") ?? "5";
const positional = Deno.args.filter((a) => !a.startsWith("--"));
const [treeA, treeB, roundsArg] = positional;
if (!treeA || !treeB) throw new Error("usage: l7_ab.ts <treeA> <treeB> [rounds] [--deno]");
const ROUNDS = Number(roundsArg ?? 3);
const DENO = Deno.args.includes("--deno");
const passOn = Deno.args.filter((a) => a.startsWith("--") && a !== "--deno");
const load = (): string => Deno.loadavg().map((l) => l.toFixed(2)).join(" ");

const nginx = await startNginxPair("weft-l7-ab-");
const wrk = (url: string): Promise<Wrk> => wrkFor(url, SECONDS);

/** `tree?K=V,K2=V2`: the tree's proxy runs with that environment added (a JSC option, say). */
function treeEnv(spec: string): [string, Record<string, string>] {
  const [tree, vars] = spec.split("?", 2) as [string, string | undefined];
  const env: Record<string, string> = {};
  for (const kv of vars ? vars.split(",") : []) {
    const i = kv.indexOf("=");
    env[kv.slice(0, i)] = kv.slice(i + 1);
  }
  return [tree, env];
}

async function proxy(spec: string): Promise<{ port: number; child: Deno.ChildProcess }> {
  const [tree, env] = treeEnv(spec);
  const server = join(tree, "bench/l7/l7_proxy_server.ts");
  const args = [server, "--upstream", `127.0.0.1:${nginx.upPort}`, ...passOn];
  const child = new Deno.Command(DENO ? Deno.execPath() : "bun", {
    args: DENO ? ["run", "-A", ...args] : args,
    cwd: tree,
    env: { ...Deno.env.toObject(), ...env },
    stdout: "piped",
  }).spawn();
  const line = await proxyReadyLine(child, `the proxy of ${tree}`);
  return { port: Number(/"port":(\d+)/.exec(line)![1]), child };
}

/** utime + stime of a process in ms (Linux, 100 ticks a second). */
function cpuMs(pid: number): number {
  const f = Deno.readTextFileSync(`/proc/${pid}/stat`).split(") ")[1]!.split(" ");
  return (Number(f[11]) + Number(f[12])) * 10;
}

const procs: Deno.ChildProcess[] = [];
try {
  const a = await proxy(treeA);
  procs.push(a.child);
  const b = await proxy(treeB);
  procs.push(b.child);
  await wrk(`http://127.0.0.1:${a.port}/warmup`);
  await wrk(`http://127.0.0.1:${b.port}/warmup`);
  const sums = { n: 0, a: 0, b: 0 };
  // CPU per request of each proxy (user + system, from /proc).
  const cpu = { a: { ms: 0, req: 0 }, b: { ms: 0, req: 0 } };
  const pidOf = { a: a.child.pid, b: b.child.pid };
  for (let i = 0; i < ROUNDS; i++) {
    // The order rotates so neither tree always runs right after nginx.
    const order = i % 2 === 0 ? ["n", "a", "b"] as const : ["n", "b", "a"] as const;
    const got: Partial<Record<"n" | "a" | "b", Wrk>> = {};
    for (const k of order) {
      const port = k === "n" ? nginx.proxyPort : k === "a" ? a.port : b.port;
      const before = k === "n" ? 0 : cpuMs(pidOf[k]);
      got[k] = await wrk(`http://127.0.0.1:${port}/hello`);
      sums[k] += got[k].rps;
      if (k !== "n") {
        cpu[k].ms += cpuMs(pidOf[k]) - before;
        cpu[k].req += got[k].rps * Number(SECONDS);
      }
    }
    const f = (w: Wrk | undefined): string =>
      `${w!.rps.toFixed(0).padStart(6)} req/s p50 ${w!.p50} p99 ${w!.p99}`;
    console.log(`round ${i + 1} (load ${load()})`);
    console.log(`  nginx: ${f(got.n)}`);
    console.log(`  A:     ${f(got.a)}  (${(got.a!.rps / got.n!.rps).toFixed(2)}x)`);
    console.log(`  B:     ${f(got.b)}  (${(got.b!.rps / got.n!.rps).toFixed(2)}x)`);
  }
  console.log(
    `${DENO ? "deno" : "bun"} ${passOn.join(" ") || "(three filters)"}: A ${treeA} ${
      (sums.a / sums.n).toFixed(3)
    }x nginx, B ${treeB} ${(sums.b / sums.n).toFixed(3)}x nginx, B/A ${
      (sums.b / sums.a).toFixed(3)
    } (load ${load()})`,
  );
  const us = (c: { ms: number; req: number }): string => (c.ms * 1000 / c.req).toFixed(1);
  console.log(
    `CPU per request (user + system): A ${us(cpu.a)} µs, B ${us(cpu.b)} µs, B/A ${
      ((cpu.b.ms / cpu.b.req) / (cpu.a.ms / cpu.a.req)).toFixed(3)
    }`,
  );
} finally {
  for (const c of procs) {
    c.kill("SIGTERM");
    await c.status;
  }
  await nginx.stop();
}
