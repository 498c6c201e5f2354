/**
 * Where a request's time goes on the weft pair at a fixed rate: `perf trace` (syscall tracepoints,
 * far lighter than strace) records recvfrom/sendto of both nodes while bench/seq_client.ts sends an
 * evenly spaced open loop through them, then each pass is timed from the end of the read that
 * brought the bytes to the start of the write that sent them on:
 *   A in (client → HBONE), B in (HBONE → workload), B out (workload → HBONE), A out (HBONE → client)
 * plus the two TLS hops between the nodes (A's write → B's read, B's write → A's read: loopback
 * and wake-up). Usage (root, perf installed):
 *   deno run -A bench/l4_trace.ts [--binary ./weft] [--rate 500] [--seconds 2]
 * Without --binary the nodes run `bun src/main.ts`; --pair runs bench/l4_tls_pair.ts instead (node:tls
 * with a 9-byte framing and no weft logic: the runtime's floor for the same passes and hops).
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

const argv = Deno.args;
const opt = (n: string, d: string): string => {
  const i = argv.indexOf(`--${n}`);
  return i >= 0 && argv[i + 1] ? argv[i + 1]! : d;
};
const BINARY = argv.includes("--binary") ? opt("binary", "./weft") : undefined;
const PAIR = argv.includes("--pair");
const RATE = Number(opt("rate", "500"));
const SECONDS = Number(opt("seconds", "2"));
const enc = new TextEncoder();
const say = (m: string): void => void Deno.stdout.writeSync(enc.encode(`${m}\n`));

interface Call {
  start: number; // ms
  t: number; // ms, end of a read / start of a write
  pid: number;
  op: "r" | "w";
  fd: number;
}

/** perf trace lines: `  12.345 ( 0.020 ms): bun/123 recvfrom(fd: 17, ...) = 62`. */
function parse(text: string): Call[] {
  const out: Call[] = [];
  const re = /^\s*([\d.]+) \(\s*([\d.]+) ms\): \S+\/(\d+) (recvfrom|sendto)\(fd: (\d+),.*= (\d+)/;
  for (const line of text.split("\n")) {
    const m = re.exec(line);
    if (!m || Number(m[6]) === 0) continue;
    const read = m[4] === "recvfrom";
    out.push({
      start: Number(m[1]),
      t: Number(m[1]) + (read ? Number(m[2]) : 0),
      pid: Number(m[3]),
      op: read ? "r" : "w",
      fd: Number(m[5]),
    });
  }
  // perf prints each CPU's buffer in turn: lines of two processes are not in time order.
  return out.sort((x, y) => x.start - y.start);
}

function stats(xs: number[]): string {
  if (xs.length === 0) return "none";
  xs.sort((a, b) => a - b);
  const at = (q: number): number => xs[Math.min(xs.length - 1, Math.floor(q * xs.length))]!;
  const us = (ms: number): string => `${Math.round(ms * 1000)}`;
  return `n ${xs.length}, p50 ${us(at(0.5))} µs, p90 ${us(at(0.9))}, p99 ${us(at(0.99))}`;
}

/** The HBONE socket of a node: the fd its reads and writes use most (one pooled session). */
function hboneFd(calls: Call[]): number {
  const n = new Map<number, number>();
  for (const c of calls) n.set(c.fd, (n.get(c.fd) ?? 0) + 1);
  return [...n.entries()].sort((a, b) => b[1] - a[1])[0]?.[0] ?? -1;
}

function analyse(calls: Call[], a: number, b: number): void {
  const passes: Record<string, number[]> = { "A in": [], "A out": [], "B in": [], "B out": [] };
  const hops: Record<string, number[]> = { "A→B (TLS)": [], "B→A (TLS)": [] };
  for (const [pid, name] of [[a, "A"], [b, "B"]] as const) {
    const mine = calls.filter((c) => c.pid === pid);
    const tlsFd = hboneFd(mine);
    let last: Call | undefined;
    for (const c of mine) {
      if (c.op === "r") last = c;
      else if (last) {
        const fromTls = last.fd === tlsFd;
        const toTls = c.fd === tlsFd;
        // A's plaintext side is the client, B's the workload: in = toward the workload.
        const dir = name === "A" ? (toTls ? "in" : "out") : (fromTls ? "in" : "out");
        if (fromTls !== toTls) passes[`${name} ${dir}`]!.push(c.t - last.t);
        last = undefined;
      }
    }
  }
  // Hops: each TLS write of one node to the next TLS read of the other.
  const tlsA = hboneFd(calls.filter((c) => c.pid === a));
  const tlsB = hboneFd(calls.filter((c) => c.pid === b));
  for (
    const [from, fromFd, to, toFd, key] of [
      [a, tlsA, b, tlsB, "A→B (TLS)"],
      [b, tlsB, a, tlsA, "B→A (TLS)"],
    ] as const
  ) {
    let pending: number | undefined;
    for (const c of calls) {
      if (c.pid === from && c.op === "w" && c.fd === fromFd) pending ??= c.t;
      else if (c.pid === to && c.op === "r" && c.fd === toFd && pending !== undefined) {
        hops[key]!.push(c.t - pending);
        pending = undefined;
      }
    }
  }
  for (const [k, v] of Object.entries(passes)) say(`${k.padEnd(12)} ${stats(v)}`);
  for (const [k, v] of Object.entries(hops)) say(`${k.padEnd(12)} ${stats(v)}`);
}

const dir = Deno.makeTempDirSync({ prefix: "weft-l4-trace-" });
const procs: Proc[] = [];
try {
  await makeCerts(dir);
  Deno.writeTextFileSync(`${dir}/nginx.conf`, nginxConf(dir));
  for (const d of ["nb", "np", "nf", "nu", "ns"]) Deno.mkdirSync(`${dir}/${d}`);
  procs.push(await spawn("nginx", ["-c", `${dir}/nginx.conf`, "-p", dir]));
  await waitPort(IP.server, PORT.http);
  const pid: Record<string, number> = {};
  for (const side of ["b", "a"] as const) {
    const file = `${dir}/weft-${side}.yaml`;
    Deno.writeTextFileSync(file, weftConfig(dir, side));
    const pair = new URL("./l4_tls_pair.ts", import.meta.url).pathname;
    const [cmd, args] = PAIR
      ? ["bun", [pair, dir, side, "80", String(PORT.http)]]
      : BINARY
      ? [BINARY, ["run", "--config", file]]
      : ["bun", ["src/main.ts", "run", "--config", file]];
    const p = await spawn(cmd, args, {
      readyText: '"msg":"ready"',
      env: { ...Deno.env.toObject(), WEFT_LOG: "info" },
    });
    procs.push(p);
    pid[side] = p.pid;
  }
  const url = `http://${IP.vip}:80/`;
  const client = new URL("./seq_client.ts", import.meta.url).pathname;
  const load = async (seconds: number): Promise<string> => {
    const out = await new Deno.Command("bun", {
      args: [client, "rate", url, String(RATE), String(seconds)],
      stdout: "piped",
      stderr: "null",
    }).output();
    return new TextDecoder().decode(out.stdout).trim();
  };
  await load(1); // warm-up: connections, JIT
  const traceFile = `${dir}/perf.txt`;
  const perf = new Deno.Command("strace", {
    args: [
      "-p",
      `${pid.a}`,
      "-e",
      "trace=epoll_pwait2,epoll_ctl,recvfrom,sendto",
      "-tt",
      "-o",
      "/tmp/l4cpu/strace_" + (Deno.env.get("TAG") ?? "x") + ".txt",
    ],
    stdout: "null",
    stderr: "null",
  }).spawn();
  await new Promise((r) => setTimeout(r, 1000)); // perf attaches
  const result = await load(SECONDS);
  perf.kill("SIGINT");
  await perf.status;
  say(`open loop ${RATE} req/s for ${SECONDS} s through the pair, traced: ${result}`);
  say(`load ${Deno.readTextFileSync("/proc/loadavg").split(" ").slice(0, 3).join(" ")}`);
  void traceFile;
  void analyse;
  void parse;
} finally {
  for (const p of procs.reverse()) await p.stop();
  Deno.removeSync(dir, { recursive: true });
}
