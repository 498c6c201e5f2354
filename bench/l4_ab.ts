/**
 * A/B of the weft pair on one noisy box: `deno run -A bench/l4_ab.ts <treeA> <treeB> [rounds]`
 * runs the same L4 figures for two source trees alternately (A, B, A, B, ...) on Bun: hey at
 * 1k req/s (added p50/p99 over nginx direct measured in the same round), the open loop at 1k req/s,
 * wrk -c32 and iperf3 1 stream. Options: --only hey,open,wrk,iperf; --seconds N (default 5);
 * --cmd "<runtime>" (default bun). A tree may carry environment for its nodes: `path?K=V,K2=V2`.
 */
import {
  IP,
  iperf,
  makeCerts,
  nginxConf,
  PORT,
  type Proc,
  spawn,
  waitPort,
  weftConfig,
  wrk,
} from "./l4_peers.ts";
import { fixedRate, openLoop } from "./l4_more_peers.ts";

const argv = Deno.args.filter((a, i, all) => !a.startsWith("--") && !all[i - 1]?.startsWith("--"));
const [treeA, treeB, roundsArg] = argv;
const flag = (n: string): string | undefined => {
  const i = Deno.args.indexOf(`--${n}`);
  return i >= 0 ? Deno.args[i + 1] : undefined;
};
const SECONDS = Number(flag("seconds") ?? 5);
const ONLY = (flag("only") ?? "hey,open,wrk").split(",");
const ROUNDS = Number(roundsArg ?? 2);
const dir = Deno.makeTempDirSync({ prefix: "weft-ab-" });
const procs: Proc[] = [];
const enc = new TextEncoder();
const say = (m: string): void => void Deno.stdout.writeSync(enc.encode(m + "\n"));
const load = (): string => Deno.readTextFileSync("/proc/loadavg").split(" ").slice(0, 3).join(" ");

/** `tree` may carry environment for the nodes: `path?K=V,K2=V2`. */
async function pair(spec: string): Promise<Proc[]> {
  const [tree, query] = spec.split("?") as [string, string | undefined];
  const extra = Object.fromEntries(
    (query ?? "").split(",").filter(Boolean).map((kv) => kv.split("=")),
  );
  const out: Proc[] = [];
  for (const side of ["b", "a"] as const) {
    const file = `${dir}/weft-${side}.yaml`;
    Deno.writeTextFileSync(file, weftConfig(dir, side));
    const [cmd, args] = tree.endsWith("weft")
      ? [tree, ["run", "--config", file]]
      : [flag("cmd") ?? "bun", [`${tree}/src/main.ts`, "run", "--config", file]];
    out.push(
      await spawn(cmd, args, {
        readyText: '"msg":"ready"',
        env: { ...Deno.env.toObject(), WEFT_LOG: "info", ...extra },
      }),
    );
  }
  await new Promise((r) => setTimeout(r, 500));
  return out;
}

try {
  await makeCerts(dir);
  Deno.writeTextFileSync(`${dir}/nginx.conf`, nginxConf(dir));
  for (const d of ["nb", "np", "nf", "nu", "ns"]) Deno.mkdirSync(`${dir}/${d}`);
  procs.push(await spawn("nginx", ["-c", `${dir}/nginx.conf`, "-p", dir]));
  if (ONLY.includes("iperf")) {
    procs.push(
      await spawn("iperf3", ["-s", "--forceflush", "-B", IP.server, "-p", String(PORT.iperf)], {
        readyText: "Server listening",
      }),
    );
  }
  await waitPort(IP.server, PORT.http);
  const url = `http://${IP.vip}:80/`;
  for (let r = 0; r < ROUNDS; r++) {
    for (const [name, tree] of [["A", treeA!], ["B", treeB!]] as const) {
      const p = await pair(tree);
      const parts: string[] = [];
      if (ONLY.includes("hey")) {
        const d = await fixedRate(`http://${IP.server}:${PORT.http}/`, SECONDS);
        const w = await fixedRate(url, SECONDS);
        parts.push(
          `hey +${(w.p50 - d.p50).toFixed(2)}/+${(w.p99 - d.p99).toFixed(2)} (d ${
            d.p50.toFixed(2)
          }/${d.p99.toFixed(2)})`,
        );
      }
      if (ONLY.includes("open")) {
        const d = await openLoop(`http://${IP.server}:${PORT.http}/`, SECONDS);
        const w = await openLoop(url, SECONDS);
        parts.push(`open +${(w.p50 - d.p50).toFixed(2)}/+${(w.p99 - d.p99).toFixed(2)}`);
      }
      if (ONLY.includes("wrk")) {
        const w = await wrk(url, SECONDS);
        parts.push(`wrk ${Math.round(w.rps)} p50 ${w.p50.toFixed(2)} p99 ${w.p99.toFixed(2)}`);
      }
      if (ONLY.includes("iperf")) {
        parts.push(
          `iperf ${(await iperf(IP.vip, PORT.iperf, SECONDS, IP.client)).toFixed(2)} Gbit/s`,
        );
      }
      for (const x of p.reverse()) await x.stop();
      say(`${name} r${r}: ${parts.join(" | ")}  [load ${load()}]`);
    }
  }
} finally {
  for (const p of procs.reverse()) await p.stop();
  Deno.removeSync(dir, { recursive: true });
}
