/**
 * Where the open loop's slow requests go: one evenly spaced open loop at a fixed rate
 * (bench/openloop.c `--trace`, the C client; bench/seq_client.ts `trace` on Bun as a labelled
 * fallback without a C compiler) through nginx direct, the haproxy mTLS pair (two processes,
 * one per side, as the weft nodes are; bench/l4.ts runs both sides in one) and the weft pair, in
 * turn, with JavaScriptCore's collection log (BUN_JSC_logGC=1) on the client and on both weft
 * nodes. Each log line is stamped when it arrives here (the end of the collection, ms since the
 * epoch, as the client stamps its requests). A request is slow when it took more than the direct
 * run's p50 + `--over` ms from its scheduled start; it goes to the first class that explains it:
 *   client late  only the client's own send lag made it slow (from its actual send it was not);
 *   new conn     it opened a connection (through weft: a new HBONE stream, node B's dial);
 *   node A GC / node B GC   a collection of that weft node overlapped it;
 *   client GC    a client collection overlapped it;
 *   runq <proc>  (--sched) the main thread that waited longest in the run queue while it was in
 *                flight (> 0.2 ms, `perf sched timehist`'s sch delay; perf's clock put on the
 *                epoch through /proc/timer_list): client, node A/B, nginx or haproxy;
 *   unexplained  none of those.
 * "touched by" counts, without the order, the slow requests (from the send) that a node
 * collection or any run-queue wait overlapped at all. Each target also prints the CPU and
 * run-queue wait of every thread group of the client, nginx's worker, haproxy and the nodes over
 * the run (/proc/<pid>/task/<tid>/schedstat; threads that come and go make a group's delta
 * approximate). Usage:
 *   deno run -A bench/l4_tail.ts [--binary ./weft | --tree .] [--seconds 10] [--rate 1000]
 *     [--over 1] [--env K=V,K2=V2] (weft nodes) [--no-haproxy] [--rounds 1] [--sched]
 *     [--slice-us N] (a second weft run per round, "weft slice", with both nodes' main threads on
 *     an N µs EEVDF slice set from outside, the two runs alternating their order)
 *     [--dump-gc] (the nodes' collection lines) [--grep RE] (node lines matching RE, e.g. JSC's
 *     compile reports with --env BUN_JSC_reportCompileTimes=1)
 */
import {
  haproxyConf,
  IP,
  makeCerts,
  nginxConf,
  PORT,
  type Proc,
  spawn,
  waitPort,
  weftConfig,
} from "./l4_peers.ts";
import {
  GcLog,
  now,
  type Sched,
  sched,
  schedDelta,
  schedWaits,
  setSlice,
  type Wait,
} from "./l4_tail_probes.ts";
import { clientFlags, FALLBACK, openLoopBinary } from "./openloop.ts";

const argv = Deno.args;
const opt = (n: string, d: string): string => {
  const i = argv.indexOf(`--${n}`);
  return i >= 0 && argv[i + 1] ? argv[i + 1]! : d;
};
const BINARY = argv.includes("--binary") ? opt("binary", "./weft") : undefined;
const TREE = opt("tree", ".");
const SECONDS = Number(opt("seconds", "10"));
const RATE = Number(opt("rate", "1000"));
const OVER = Number(opt("over", "1"));
const ROUNDS = Number(opt("rounds", "1"));
const HAPROXY = !argv.includes("--no-haproxy");
const SCHED = argv.includes("--sched");
const DUMP_GC = argv.includes("--dump-gc");
/** --slice-us N: a second weft run per round with the nodes' main threads on an N µs EEVDF slice. */
const SLICE_US = Number(opt("slice-us", "0"));
const GREP = argv.includes("--grep") ? new RegExp(opt("grep", ".")) : undefined;
const EXTRA = Object.fromEntries(
  opt("env", "").split(",").filter(Boolean).map((kv) => kv.split("=") as [string, string]),
);
const enc = new TextEncoder();
const say = (m: string): void => void Deno.stdout.writeSync(enc.encode(`${m}\n`));
const load = (): string => Deno.readTextFileSync("/proc/loadavg").split(" ").slice(0, 3).join(" ");

type Sample = [start: number, ms: number, lagMs: number, fresh: number];

/** The open loop through `url`: bench/openloop.c (C) when a compiler is there, else
 * bench/seq_client.ts on Bun (labelled, with its own collections logged). */
async function trace(
  url: string,
  seconds: number,
): Promise<{ samples: Sample[]; gc: GcLog; sched: string; pid: number; extra: string }> {
  const gc = new GcLog();
  const bin = await openLoopBinary();
  const [cmd, args] = bin
    ? [bin, [url, String(RATE), String(seconds), ...clientFlags(), "--trace"]]
    : ["bun", [
      new URL("./seq_client.ts", import.meta.url).pathname,
      "trace",
      url,
      String(RATE),
      String(seconds),
    ]];
  let out = "";
  const p = await spawn(cmd, args, {
    env: { ...Deno.env.toObject(), ...(bin ? {} : { BUN_JSC_logGC: "1" }) },
    onText: (t) => {
      if (bin || t.includes('"samples"') || out !== "") out += t;
      else gc.feed(t);
    },
  });
  // The client's own scheduling, read just before it exits (it prints its result last).
  let before: Sched = new Map();
  let last: Sched = new Map();
  const poll = setInterval(() => {
    const now = sched(p.pid);
    if (before.size === 0) before = now;
    if (now.size > 0) last = now;
  }, 20);
  await p.child.status;
  clearInterval(poll);
  await new Promise((r) => setTimeout(r, 50)); // the pipes' last chunks
  const line = out.split("\n").find((l) => l.startsWith("{")) ?? "{}";
  const r = JSON.parse(line) as {
    samples?: Sample[];
    cpuMs?: number;
    runqMs?: number;
    policy?: string;
  };
  const extra = bin
    ? `client c (${r.policy}): cpu ${r.cpuMs?.toFixed(0)} ms, run-queue wait ${
      r.runqMs?.toFixed(0)
    } ms`
    : `client ${FALLBACK}`;
  return { samples: r.samples ?? [], gc, sched: schedDelta(before, last), pid: p.pid, extra };
}

const quantile = (xs: number[], q: number): number =>
  xs[Math.min(xs.length - 1, Math.floor(q * xs.length))] ?? NaN;

/** Filled by `classify`: slow requests (from the send) that a node collection or a run-queue
 * wait overlapped at all, whatever else explained them. */
const touched: Record<string, number> = {};

/**
 * Slow requests by cause. A request whose time from its actual send (latency − send lag) is
 * within the limit was only slow because the client sent it late: "client late". The others go
 * to the first class that explains them, in the order of the file's opening comment.
 */
function classify(
  samples: Sample[],
  limitMs: number,
  client: GcLog,
  nodes: [string, GcLog][],
  waits: Wait[],
): Record<string, number> {
  const slack = 0.3;
  const count: Record<string, number> = { "client late": 0, "new conn": 0 };
  for (const [n] of nodes) count[`${n} GC`] = 0;
  count["client GC"] = 0;
  count.unexplained = 0;
  for (const k of Object.keys(touched)) delete touched[k];
  for (const [n] of nodes) touched[`${n} GC`] = 0;
  touched.runq = 0;
  for (const [start, ms, lag, fresh] of samples) {
    if (ms <= limitMs) continue;
    const from = start + lag - slack;
    const to = start + ms + slack;
    const node = nodes.find(([, g]) => g.between(from, to).length > 0)?.[0];
    const key = ms - lag <= limitMs
      ? "client late"
      : fresh === 1
      ? "new conn"
      : node !== undefined
      ? `${node} GC`
      : client.between(from, to).length > 0
      ? "client GC"
      : runq(waits, from, to) ?? "unexplained";
    count[key] = (count[key] ?? 0) + 1;
    if (ms - lag > limitMs) {
      // Not exclusive: how many slow requests each kind of event touched at all.
      for (const [n, g] of nodes) if (g.between(from, to).length > 0) touched[`${n} GC`]! += 1;
      if (waits.some((w) => w.end >= from && w.start <= to)) touched.runq! += 1;
    }
  }
  return count;
}

/** The process that waited longest in the run queue within [from, to]: "runq node A". */
function runq(waits: Wait[], from: number, to: number): string | undefined {
  let best: Wait | undefined;
  let bestMs = 0;
  for (const w of waits) {
    const ms = Math.min(w.end, to) - Math.max(w.start, from);
    if (ms > bestMs) [best, bestMs] = [w, ms];
  }
  return best && `runq ${best.who}`;
}

/** The processes a target runs through besides the weft nodes: nginx's workers, haproxy. */
function peerPids(target: string): [string, number][] {
  const out: [string, number][] = [];
  for (const e of Deno.readDirSync("/proc")) {
    if (!/^\d+$/.test(e.name)) continue;
    try {
      const comm = Deno.readTextFileSync(`/proc/${e.name}/comm`).trim();
      const ppid = Number(
        Deno.readTextFileSync(`/proc/${e.name}/stat`).split(") ")[1]!.split(" ")[1],
      );
      if (comm === "nginx" && ppid === nginxPid) out.push(["nginx worker", Number(e.name)]);
      if (comm === "haproxy" && target === "haproxy") out.push(["haproxy", Number(e.name)]);
    } catch { /* gone */ }
  }
  return out;
}
let nginxPid = 0;

const dir = Deno.makeTempDirSync({ prefix: "weft-l4-tail-" });
const perfDir = Deno.makeTempDirSync({ prefix: "weft-l4-tail-perf-" });
const procs: Proc[] = [];
try {
  await makeCerts(dir);
  Deno.writeTextFileSync(`${dir}/nginx.conf`, nginxConf(dir));
  for (const d of ["nb", "np", "nf", "nu", "ns"]) Deno.mkdirSync(`${dir}/${d}`);
  procs.push(await spawn("nginx", ["-c", `${dir}/nginx.conf`, "-p", dir]));
  nginxPid = procs[0]!.pid;
  await waitPort(IP.server, PORT.http);
  if (HAPROXY) {
    // Two processes, one per node as weft runs (bench/l4.ts runs both ends in one process).
    const cfg = haproxyConf(dir, `${IP.server}:${PORT.http}`);
    const head = cfg.slice(0, cfg.indexOf("frontend c"));
    const [c, srv] = cfg.slice(head.length).split(/(?=frontend s\n)/) as [string, string];
    for (const [side, body] of [["s", srv], ["c", c]] as const) {
      Deno.writeTextFileSync(`${dir}/haproxy-${side}.cfg`, head + body);
      procs.push(await spawn("haproxy", ["-db", "-f", `${dir}/haproxy-${side}.cfg`]));
    }
    await waitPort(IP.haproxyC, PORT.tunnelIn);
  }
  const nodeGc: [string, GcLog][] = [];
  const pids: [string, number][] = [];
  for (const side of ["b", "a"] as const) {
    const file = `${dir}/weft-${side}.yaml`;
    Deno.writeTextFileSync(file, weftConfig(dir, side));
    const gc = new GcLog({ grep: GREP, keepLines: DUMP_GC });
    nodeGc.unshift([`node ${side.toUpperCase()}`, gc]);
    const [cmd, args] = BINARY
      ? [BINARY, ["run", "--config", file]]
      : ["bun", [`${TREE}/src/main.ts`, "run", "--config", file]];
    const node = await spawn(cmd, args, {
      readyText: '"msg":"ready"',
      env: { ...Deno.env.toObject(), WEFT_LOG: "info", BUN_JSC_logGC: "1", ...EXTRA },
      onText: gc.feed,
    });
    procs.push(node);
    pids.unshift([`node ${side.toUpperCase()}`, node.pid]);
  }
  const targets: [string, string][] = [
    ["direct", `http://${IP.server}:${PORT.http}/`],
    ...(HAPROXY
      ? [["haproxy", `http://${IP.haproxyC}:${PORT.tunnelIn}/`] as [string, string]]
      : []),
    ["weft", `http://${IP.vip}:80/`],
    ...(SLICE_US > 0 ? [["weft slice", `http://${IP.vip}:80/`] as [string, string]] : []),
  ];
  for (const [, url] of targets) await trace(url, 1); // warm-up: connections, JIT
  for (const [n, g] of nodeGc) {
    if (g.grep.length > 0) say(`${n}: ${g.grep.splice(0).length} --grep lines before the rounds`);
  }
  say(
    `open loop ${RATE} req/s, ${SECONDS} s per target; slow = latency > direct p50 + ${OVER} ms`,
  );
  for (let r = 1; r <= ROUNDS; r++) {
    let limit = NaN;
    let directP50 = NaN;
    let directP99 = NaN;
    // With --slice-us the two weft runs alternate their order from round to round.
    const order = SLICE_US > 0 && r % 2 === 0
      ? [...targets.slice(0, -2), targets.at(-1)!, targets.at(-2)!]
      : targets;
    for (const [name, url] of order) {
      if (SLICE_US > 0) {
        for (const [, pid] of pids) setSlice(pid, name === "weft slice" ? SLICE_US * 1000 : 0);
      }
      const t0 = now();
      const s0 = pids.map(([, pid]) => sched(pid));
      const peers = peerPids(name);
      const p0 = peers.map(([, pid]) => sched(pid));
      // Not in `dir`: the nodes watch their config's folder, and perf writes all the time.
      const perfFile = `${perfDir}/sched-${name}.data`;
      const perf = SCHED
        ? new Deno.Command("perf", {
          args: ["sched", "record", "-k", "mono", "-o", perfFile],
          stdout: "null",
          stderr: "null",
        }).spawn()
        : undefined;
      if (perf) await new Promise((r) => setTimeout(r, 500)); // perf attaches
      const { samples, gc, sched: clientSched, pid: clientPid, extra } = await trace(
        url,
        SECONDS,
      );
      perf?.kill("SIGINT");
      await perf?.status;
      const waits = perf
        ? await schedWaits(
          perfFile,
          new Map([[clientPid, "client"], ...pids.map(([n, p]) => [p, n] as [number, string])]),
        )
        : [];
      const t1 = now();
      const s1 = pids.map(([, pid]) => sched(pid));
      const p1 = peers.map(([, pid]) => sched(pid));
      const ms = samples.map((s) => s[1]).sort((a, b) => a - b);
      const p50 = quantile(ms, 0.5);
      const p99 = quantile(ms, 0.99);
      // From the actual send: what the path took, without the client's own timer lag.
      const svc = samples.map((s) => s[1] - s[2]).sort((a, b) => a - b);
      const lag = samples.map((s) => s[2]).sort((a, b) => a - b);
      if (name === "direct") {
        limit = p50 + OVER;
        directP50 = p50;
        directP99 = p99;
      }
      const nodes = name.startsWith("weft") ? nodeGc : [];
      const c = classify(samples, limit, gc, nodes, waits);
      const slow = Object.values(c).reduce((a, b) => a + b, 0);
      const added = name === "direct"
        ? ""
        : ` (added +${(p50 - directP50).toFixed(2)}/+${(p99 - directP99).toFixed(2)})`;
      const classes = Object.entries(c).filter(([, n]) => n > 0).map(([k, n]) => `${k} ${n}`);
      say(
        `r${r} ${name.padEnd(7)} p50/p99 ${p50.toFixed(2)}/${
          p99.toFixed(2)
        } ms${added}, n ${ms.length}, ` +
          `slow ${slow}: ${classes.join(", ") || "-"} [load ${load()}]`,
      );
      say(
        `   from the send p50/p99 ${quantile(svc, 0.5).toFixed(2)}/${
          quantile(svc, 0.99).toFixed(2)
        } ms; send lag p50/p99 ${quantile(lag, 0.5).toFixed(2)}/${quantile(lag, 0.99).toFixed(2)}`,
      );
      const t = Object.entries(touched).map(([k, n]) => `${k} ${n}`).join(", ");
      if (t) say(`   slow from the send touched by: ${t}`);
      say(`   ${extra}`);
      say(`   client: ${gc.summary(t0, t1)}; ${clientSched}`);
      for (const [i, [n]] of peers.entries()) say(`   ${n}: ${schedDelta(p0[i]!, p1[i]!)}`);
      for (const [i, [n, g]] of nodes.entries()) {
        if (DUMP_GC) { for (const l of g.lines.splice(0)) say(`   ${n} gc: ${l}`); }
        say(`   ${n}: ${g.summary(t0, t1)}; ${schedDelta(s0[i]!, s1[i]!)}`);
      }
    }
  }
} finally {
  for (const p of procs.reverse()) await p.stop();
  Deno.removeSync(dir, { recursive: true });
  Deno.removeSync(perfDir, { recursive: true });
}
