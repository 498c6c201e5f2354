/**
 * A/B of the weft pair on one noisy box:
 *   deno run -A bench/l4_ab.ts <treeA> <treeB> [...] [rounds]
 * runs the same L4 figures for two (or more) source trees or binaries alternately (A, B, A, B,
 * ...) on Bun: hey at 1k req/s (added p50/p99 over nginx direct measured in the same round), the
 * open loop at 1k req/s, wrk -c32 and iperf3 1 stream, with the nodes' CPU per request.
 * Options: --only hey,open,wrk,iperf; --seconds N (default 5); --rounds N (default 2);
 * --cmd "<runtime>" (default bun); --gc (the nodes log JSC's collections, BUN_JSC_logGC=1: each
 * figure is followed by the collections and pauses of both nodes during it, and each round by
 * the nodes' idle RSS after start and peak RSS; --no-rss skips the RSS readings and their 5-s
 * wait). A tree may carry environment for its nodes:
 * `path?K=V,K2=V2` (a binary path ending in `weft` runs as is; a source tree runs src/main.ts;
 * `tls-pair` runs bench/l4_tls_pair.ts on Bun: node:tls with a 9-byte framing and no weft logic,
 * one TLS connection per client connection; `tcp-pair` runs bench/l4_tcp_pair.ts: plain TCP
 * both hops on Bun's native sockets, the floor of any two-hop forwarder on this runtime).
 */
import {
  IP,
  iperf,
  makeCerts,
  nginxConf,
  PORT,
  type Proc,
  rssMb,
  spawn,
  waitPort,
  weftConfig,
  wrk,
} from "./l4_peers.ts";
import { fixedRate, openLoop } from "./l4_more_peers.ts";

const FLAGS_WITHOUT_VALUE = new Set(["--gc", "--no-rss"]);
const argv = Deno.args.filter((a, i, all) =>
  !a.startsWith("--") && !(all[i - 1]?.startsWith("--") && !FLAGS_WITHOUT_VALUE.has(all[i - 1]!))
);
/** Trees (or binaries) to compare, labelled A, B, C, ...; a trailing number is the rounds. */
const roundsArg = /^\d+$/.test(argv.at(-1) ?? "") ? argv.pop() : undefined;
const trees = argv;
const flag = (n: string): string | undefined => {
  const i = Deno.args.indexOf(`--${n}`);
  return i >= 0 ? Deno.args[i + 1] : undefined;
};
const SECONDS = Number(flag("seconds") ?? 5);
const ONLY = (flag("only") ?? "hey,open,wrk").split(",");
const ROUNDS = Number(flag("rounds") ?? roundsArg ?? 2);
const GC = Deno.args.includes("--gc");
/** Skip the idle-RSS wait after each round (5 s): CPU and latency A/B only. */
const NO_RSS = Deno.args.includes("--no-rss");
const dir = Deno.makeTempDirSync({ prefix: "weft-ab-" });
const procs: Proc[] = [];
const enc = new TextEncoder();
const say = (m: string): void => void Deno.stdout.writeSync(enc.encode(m + "\n"));
const load = (): string => Deno.readTextFileSync("/proc/loadavg").split(" ").slice(0, 3).join(" ");

/** JSC's logGC output of the nodes, as collections and stop-the-world pauses. */
class GcTally {
  eden = 0;
  full = 0;
  /** Collections JSC requested because the eden budget was spent (the rest come from timers). */
  budget = 0;
  /** Bytes JSC counted as allocated in the cycles it collected on budget. */
  budgetBytes = 0;
  pauses: number[] = [];
  #buf = "";
  feed(text: string): void {
    const lines = (this.#buf + text).split("\n");
    this.#buf = lines.pop() ?? "";
    for (const l of lines) {
      if (l.includes("=> EdenCollection")) this.eden++;
      if (l.includes("=> FullCollection")) this.full++;
      if (l.startsWith("Requesting GC because bytes allocated")) {
        this.budget++;
        this.budgetBytes += Number(/this cycle: (\d+)/.exec(l)?.[1] ?? 0);
      }
      for (const m of l.matchAll(/ p=([\d.]+)ms/g)) this.pauses.push(Number(m[1]));
    }
  }
  /** What happened since the last call: "gc 3e+0f (2 on budget), 5 pauses 1.2 ms, 2 >1ms, max 2.1",
   * and with `requests`, the bytes of the budget-triggered cycles per request (a floor of what
   * the nodes allocate per request: cycles started by a timer print no byte count). */
  take(requests = 0): string {
    const p = this.pauses;
    const sum = p.reduce((a, b) => a + b, 0);
    const s = `gc ${this.eden}e+${this.full}f (${this.budget} on budget), ${p.length} pauses ${
      sum.toFixed(1)
    } ms, ${p.filter((x) => x > 1).length} >1ms, max ${Math.max(0, ...p).toFixed(1)}`;
    const perReq = requests > 0 && this.budget > 0
      ? `, ${(this.budgetBytes / requests / 1024).toFixed(2)} KB/req in budget cycles`
      : "";
    this.eden = this.full = this.budget = 0;
    this.budgetBytes = 0;
    this.pauses = [];
    return s + perReq;
  }
}
const gc = new GcTally();

/** CPU time (user + system) a process has used, in ms (/proc/<pid>/stat, clock ticks of 10 ms). */
function cpuMs(pid: number): number {
  const f = Deno.readTextFileSync(`/proc/${pid}/stat`).split(") ")[1]!.split(" ");
  return (Number(f[11]) + Number(f[12])) * 10;
}

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
    const tlsPair = new URL("./l4_tls_pair.ts", import.meta.url).pathname;
    const tcpPair = new URL("./l4_tcp_pair.ts", import.meta.url).pathname;
    const [cmd, args] = tree === "tls-pair"
      ? ["bun", [tlsPair, dir, side, "80", String(PORT.http)]]
      : tree === "tcp-pair"
      ? ["bun", [tcpPair, dir, side, "80", String(PORT.http)]]
      : tree.endsWith("weft")
      ? [tree, ["run", "--config", file]]
      : [flag("cmd") ?? "bun", [`${tree}/src/main.ts`, "run", "--config", file]];
    out.push(
      await spawn(cmd, args, {
        readyText: '"msg":"ready"',
        env: {
          ...Deno.env.toObject(),
          WEFT_LOG: "info",
          ...(GC ? { BUN_JSC_logGC: "1" } : {}),
          ...extra,
        },
        ...(GC ? { onText: (t: string) => gc.feed(t) } : {}),
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
    for (const [i, tree] of trees.entries()) {
      const name = String.fromCharCode(65 + i);
      const p = await pair(tree);
      const parts: string[] = [];
      const idle = p.map((x) => rssMb(x.pid).rss.toFixed(1)).join("/");
      const tally = (requests = 0): string => GC ? ` [${gc.take(requests)}]` : "";
      tally();
      // CPU of both nodes per request of the last figure: robust where latency is not (a busy box).
      let cpu0 = p.reduce((a, x) => a + cpuMs(x.pid), 0);
      const cpu = (requests: number): string => {
        const now = p.reduce((a, x) => a + cpuMs(x.pid), 0);
        const us = ((now - cpu0) * 1000) / requests;
        cpu0 = now;
        return `, cpu ${us.toFixed(1)} µs/req`;
      };
      // First, on the fresh pair, as bench:l4 runs it: the peak RSS after it is the throughput
      // run's (the goal); the peak after the latency runs follows at the end.
      if (ONLY.includes("iperf")) {
        const g = await iperf(IP.vip, PORT.iperf, SECONDS, IP.client);
        const peak = p.map((x) => rssMb(x.pid).peak.toFixed(1)).join("/");
        parts.push(`iperf ${g.toFixed(2)} Gbit/s, peak B/A ${peak} MB${tally()}`);
      }
      if (ONLY.includes("hey")) {
        const d = await fixedRate(`http://${IP.server}:${PORT.http}/`, SECONDS);
        cpu(1);
        const w = await fixedRate(url, SECONDS);
        parts.push(
          `hey +${(w.p50 - d.p50).toFixed(2)}/+${(w.p99 - d.p99).toFixed(2)} (d ${
            d.p50.toFixed(2)
          }/${d.p99.toFixed(2)})${cpu(w.rps * SECONDS)}${tally()}`,
        );
      }
      if (ONLY.includes("open")) {
        const d = await openLoop(`http://${IP.server}:${PORT.http}/`, SECONDS);
        cpu(1);
        const w = await openLoop(url, SECONDS);
        const sent = `from the send +${(w.sendP50! - d.sendP50!).toFixed(2)}/+${
          (w.sendP99! - d.sendP99!).toFixed(2)
        }`;
        parts.push(
          `open +${(w.p50 - d.p50).toFixed(2)}/+${(w.p99 - d.p99).toFixed(2)} (${sent})${
            cpu(w.rps * SECONDS)
          }${tally()}`,
        );
      }
      if (ONLY.includes("wrk")) {
        cpu(1);
        const w = await wrk(url, SECONDS);
        parts.push(
          `wrk ${Math.round(w.rps)} p50 ${w.p50.toFixed(2)} p99 ${w.p99.toFixed(2)}${
            cpu(w.rps * SECONDS)
          }${tally(w.rps * SECONDS)}`,
        );
      }
      if (!NO_RSS) {
        const peakEnd = p.map((x) => rssMb(x.pid).peak.toFixed(1)).join("/");
        // What the nodes keep once the traffic stops (the collector's timers, or not, at work).
        await new Promise((r) => setTimeout(r, 5000));
        const after = p.map((x) => rssMb(x.pid).rss.toFixed(1)).join("/");
        parts.push(`RSS B/A idle ${idle}, peak at end ${peakEnd}, 5 s after ${after} MB`);
      }
      for (const x of p.reverse()) await x.stop();
      say(`${name} r${r}: ${parts.join(" | ")}  [load ${load()}]`);
    }
  }
} finally {
  for (const p of procs.reverse()) await p.stop();
  Deno.removeSync(dir, { recursive: true });
}
