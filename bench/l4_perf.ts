/**
 * Where the weft pair's CPU goes per request (root, `perf`):
 *   deno run -A bench/l4_perf.ts [tree-or-binary] [--seconds N] [--rate R] [--out DIR]
 * starts nginx and the two nodes as bench/l4_ab.ts does (JSC writes a jitdump for perf inject,
 * BUN_JSC_useJITDump), drives hey at a fixed rate (default 1k req/s, 10 workers) through
 * the pair and records both nodes with `perf record -g`; prints the nodes' CPU µs per request and
 * the top symbols of each node (`perf report --no-children`), leaving perf.data files in DIR.
 */
import {
  IP,
  makeCerts,
  nginxConf,
  PORT,
  type Proc,
  spawn,
  waitPort,
  weftConfig,
} from "./l4_peers.ts";

const flag = (n: string): string | undefined => {
  const i = Deno.args.indexOf(`--${n}`);
  return i >= 0 ? Deno.args[i + 1] : undefined;
};
const tree = Deno.args.find((a, i, all) => !a.startsWith("--") && !all[i - 1]?.startsWith("--")) ??
  ".";
const SECONDS = Number(flag("seconds") ?? 8);
const RATE = Number(flag("rate") ?? 1000);
const OUT = flag("out") ?? Deno.makeTempDirSync({ prefix: "weft-perf-out-" });
const dir = Deno.makeTempDirSync({ prefix: "weft-perf-" });
const procs: Proc[] = [];
const say = (m: string): void => void Deno.stdout.writeSync(new TextEncoder().encode(m + "\n"));

function cpuTicks(pid: number): [number, number] {
  const f = Deno.readTextFileSync(`/proc/${pid}/stat`).split(") ")[1]!.split(" ");
  return [Number(f[11]) * 10, Number(f[12]) * 10];
}

try {
  await makeCerts(dir);
  Deno.writeTextFileSync(`${dir}/nginx.conf`, nginxConf(dir));
  for (const d of ["nb", "np", "nf", "nu", "ns"]) Deno.mkdirSync(`${dir}/${d}`);
  procs.push(await spawn("nginx", ["-c", `${dir}/nginx.conf`, "-p", dir]));
  await waitPort(IP.server, PORT.http);
  const nodes: Proc[] = [];
  for (const side of ["b", "a"] as const) {
    const file = `${dir}/weft-${side}.yaml`;
    Deno.writeTextFileSync(file, weftConfig(dir, side));
    const [cmd, args] = tree.endsWith("weft")
      ? [tree, ["run", "--config", file]]
      : ["bun", [`${tree}/src/main.ts`, "run", "--config", file]];
    nodes.push(
      await spawn(cmd, args, {
        readyText: '"msg":"ready"',
        env: {
          ...Deno.env.toObject(),
          WEFT_LOG: "info",
          BUN_JSC_useJITDump: "1",
          BUN_JSC_jitDumpDirectory: OUT,
        },
      }),
    );
  }
  procs.push(...nodes);
  const url = `http://${IP.vip}:80/`;
  // Warm up (JIT tiers), then record.
  await new Deno.Command("hey", { args: ["-z", "2s", "-c", "10", "-q", String(RATE / 10), url] })
    .output();
  const perfs = nodes.map((n, i) =>
    new Deno.Command("perf", {
      args: [
        "record",
        "-k",
        "mono",
        "-g",
        "-F",
        "2999",
        "-p",
        String(n.pid),
        "-o",
        `${OUT}/${"ba"[i]}.data`,
      ],
      stdout: "null",
      stderr: "null",
    }).spawn()
  );
  const before = nodes.map((n) => cpuTicks(n.pid));
  const hey = await new Deno.Command("hey", {
    args: ["-z", `${SECONDS}s`, "-c", "10", "-q", String(RATE / 10), url],
    stdout: "piped",
  }).output();
  const after = nodes.map((n) => cpuTicks(n.pid));
  for (const p of perfs) p.kill("SIGINT");
  for (const p of perfs) await p.status;
  const text = new TextDecoder().decode(hey.stdout);
  const requests = Number(/Requests\/sec:\s+([\d.]+)/.exec(text)?.[1] ?? 0) * SECONDS;
  for (const [i, n] of ["B", "A"].entries()) {
    const u = ((after[i]![0] - before[i]![0]) * 1000) / requests;
    const s = ((after[i]![1] - before[i]![1]) * 1000) / requests;
    say(`node ${n}: ${u.toFixed(1)} µs user + ${s.toFixed(1)} µs system per request`);
  }
  say(`perf data in ${OUT} (b.data, a.data); load ${Deno.readTextFileSync("/proc/loadavg")}`);
} finally {
  for (const p of procs.reverse()) await p.stop();
  Deno.removeSync(dir, { recursive: true });
}
