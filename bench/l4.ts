/**
 * `deno task bench:l4`: weft's L4 data path against loopback peers, in one go.
 *   iperf3 raw loopback · stunnel4 mTLS pair · weft pair over HBONE (two `weft run` processes)
 *   wrk -c32 small requests: nginx direct · haproxy mTLS pair · weft pair
 *   idle RSS of a node · peak RSS during the throughput run · memory per idle tunnel (N held)
 *   the Rust HBONE pair (ztunnel's h2 + rustls stack) when WEFT_BENCH_RUST_PAIR names its binary
 *   fixed-rate latency (hey, 1k req/s): nginx direct · haproxy pair · weft pair, added p50/p99;
 *   the same at 1k req/s as an evenly spaced open loop (bench/openloop.ts: a C client with
 *   absolute-deadline sends; bench/seq_client.ts on Bun only as a labelled fallback without a C
 *   compiler), also timed from each request's actual send, with the client's own send lag; per round
 *   direct, haproxy and weft run back to back, and the summary rows give the median added p50/p99
 *   of weft and of haproxy over the rounds, weft's against haproxy's and against the goal
 * Options: --bun (run the weft nodes on Bun), --binary [path] (run the shipped `weft` binary,
 * built by `deno task build` when no path is given; adds the idle RSS of the binary, of the
 * container image and of a Deno run, bench/l4_idle.ts), --seconds N (per run, default 5) --tunnels N (default 10000), --harness (run the
 * weft nodes as bench/l4_node.ts: NodeProxy alone, without admin/xDS/L7; --weft-only (no peers),
 * --tunnels-only (only the idle-tunnels row); --only <sections> (comma-separated: throughput
 * (iperf3, peak RSS), wrk, latency, bare, tunnels, idle; peers run as the chosen sections need
 * them); --rounds N (latency rounds, default 1); --warm N (seconds of wrk through each pair
 * before the latency rounds when the wrk section does not run, default 5; 0 = none); default is
 * `deno run -A src/main.ts run --config <generated yaml>`).
 */
import * as net from "node:net";
import {
  haproxyConf,
  IP,
  iperf,
  makeCerts,
  nginxConf,
  PORT,
  type Proc,
  rssMb,
  spawn,
  stunnelConf,
  waitPort,
  weftConfig,
  wrk,
  type WrkResult,
} from "./l4_peers.ts";
import { fixedRate, type Latency, openLoop, RUST_IP, rustPair } from "./l4_more_peers.ts";
import { containerForm, type IdleForm, idleRss } from "./l4_idle.ts";

const argv = Deno.args;
const opt = (name: string, dflt: number): number => {
  const i = argv.indexOf(`--${name}`);
  return i >= 0 ? Number(argv[i + 1]) : dflt;
};
const SECONDS = opt("seconds", 5);
/** Seconds of wrk through each pair before the latency rounds when the wrk section did not run:
 * a fresh node's JIT tier-up (~0.4 s of compile CPU per node in its first half minute at 1k req/s,
 * docs/MEASUREMENTS.md) is then behind it, as on a node that has carried traffic for a while. */
const WARM = opt("warm", 5);
/** Extra V8 flags for the weft nodes (e.g. --v8 "--max-semi-space-size=1"), to compare. */
const V8 = argv.includes("--v8") ? argv[argv.indexOf("--v8") + 1] : undefined;
const TUNNELS = opt("tunnels", 10_000);
const HARNESS = argv.includes("--harness");
/** Runtime of the weft nodes: deno (default) or bun (same code, node: APIs only). */
const BUN = argv.includes("--bun");
/** The shipped binary (`--binary [path]`; built with tools/build.ts when no path follows). */
const BINARY = argv.includes("--binary")
  ? (argv[argv.indexOf("--binary") + 1]?.startsWith("--") === false
    ? argv[argv.indexOf("--binary") + 1]!
    : "")
  : undefined;
/** Iterating on weft alone: skip the peers (ratios then use NaN). */
const WEFT_ONLY = argv.includes("--weft-only");
/** Iterating on per-tunnel memory: only the idle-tunnels row. */
const TUNNELS_ONLY = argv.includes("--tunnels-only");
const SECTIONS = ["throughput", "wrk", "latency", "bare", "tunnels", "idle"] as const;
type Section = typeof SECTIONS[number];
const ONLY = argv.includes("--only")
  ? new Set((argv[argv.indexOf("--only") + 1] ?? "").split(",") as Section[])
  : undefined;
for (const s of ONLY ?? []) {
  if (!SECTIONS.includes(s)) {
    throw new Error(`--only: unknown section ${s} (${SECTIONS.join(",")})`);
  }
}
const want = (s: Section): boolean => !ONLY || ONLY.has(s);
/** Latency rounds: direct, haproxy and weft back to back in each. */
const ROUNDS = opt("rounds", 1);
const dir = Deno.makeTempDirSync({ prefix: "weft-bench-l4-" });
const procs: Proc[] = [];
const rows: [string, string, string][] = [];
const enc = new TextEncoder();
const note = (m: string): void => void Deno.stderr.writeSync(enc.encode(`[bench:l4] ${m}\n`));
const out = (m: string): void => void Deno.stdout.writeSync(enc.encode(`${m}\n`));
const row = (what: string, value: string, ratio = ""): void => {
  rows.push([what, value, ratio]);
  note(`${what}: ${value} ${ratio}`);
};

/** Echo upstream for the tunnel-holding run, in its own process: the bench process already
 * holds one fd per tunnel, and the fd limit (ulimit -n) is per process. */
function startEcho(): Promise<Proc> {
  const code = `import * as net from "node:net";
    const server = net.createServer((s) => { s.on("error", () => {}); s.pipe(s); });
    server.listen(${PORT.echo}, "${IP.server}", 16384, () => console.log("echo ready"));`;
  return spawn(Deno.execPath(), ["eval", code], { readyText: "echo ready" });
}

async function weftNode(side: "a" | "b"): Promise<Proc> {
  const file = `${dir}/weft-${side}.yaml`;
  Deno.writeTextFileSync(file, weftConfig(dir, side));
  const script = HARNESS
    ? ["bench/l4_node.ts", dir, side]
    : ["src/main.ts", "run", "--config", file];
  const flags = V8 ? [`--v8-flags=${V8}`] : [];
  const [cmd, args] = binPath && !HARNESS
    ? [binPath, ["run", "--config", file]]
    : BUN
    ? ["bun", script]
    : [Deno.execPath(), ["run", "-A", ...flags, ...script]];
  const p = await spawn(cmd, args, {
    readyText: '"msg":"ready"',
    env: { ...Deno.env.toObject(), WEFT_LOG: "info" },
  });
  procs.push(p);
  return p;
}

/** Open `n` tunnels through node A (VIP → HBONE → B → echo), 1 byte each way, and hold them.
 * Bounded: a tunnel that fails or stalls past the deadline is dropped from the count. */
async function holdTunnels(n: number, deadlineMs: number): Promise<net.Socket[]> {
  const socks: net.Socket[] = [];
  const end = Date.now() + deadlineMs;
  const one = (): Promise<void> =>
    new Promise((resolve) => {
      const s = net.connect({ host: IP.vip, port: PORT.echo, localAddress: IP.client }, () =>
        s.write("x"));
      const timer = setTimeout(() => {
        s.destroy();
        resolve();
      }, Math.max(1, end - Date.now()));
      s.once("data", () => {
        clearTimeout(timer);
        socks.push(s);
        resolve();
      });
      s.once("error", () => {});
      s.once("close", () => {
        clearTimeout(timer);
        resolve();
      });
    });
  const batch = 250;
  for (let i = 0; i < n && Date.now() < end; i += batch) {
    await Promise.all(Array.from({ length: Math.min(batch, n - i) }, one));
  }
  return socks;
}

function fmtWrk(r: WrkResult): string {
  return `${Math.round(r.rps)} req/s, p50 ${r.p50.toFixed(2)} ms, p99 ${r.p99.toFixed(2)} ms`;
}

let rustGbps = NaN;
const NO_WRK: WrkResult = { rps: NaN, p50: NaN, p99: NaN };
const median = (xs: number[]): number => {
  const v = [...xs].sort((a, b) => a - b);
  const m = v.length >> 1;
  return v.length === 0 ? NaN : v.length % 2 ? v[m]! : (v[m - 1]! + v[m]!) / 2;
};

interface PeerFigures {
  raw: number;
  stunnel: number;
  /** The haproxy mTLS pair, left running for the wrk and latency sections (same-time peers). */
  hap?: Proc;
}

/** Baselines: raw loopback and the stunnel4 pair (iperf3), the Rust pair, and the haproxy pair
 * started for the wrk and latency sections. */
async function peers(): Promise<PeerFigures> {
  const out: PeerFigures = { raw: NaN, stunnel: NaN };
  if (want("throughput")) {
    out.raw = await iperf(IP.server, PORT.iperf, SECONDS);
    row("iperf3 raw loopback", `${out.raw.toFixed(2)} Gbit/s`);
    Deno.writeTextFileSync(
      `${dir}/st-s.conf`,
      stunnelConf(dir, "server", `${IP.server}:${PORT.iperf}`),
    );
    Deno.writeTextFileSync(`${dir}/st-c.conf`, stunnelConf(dir, "client", ""));
    // Readiness from the log, not a probe connection: a probe would reach iperf3's control port.
    const stS = await spawn("stunnel4", [`${dir}/st-s.conf`], {
      readyText: "Configuration successful",
    });
    const stC = await spawn("stunnel4", [`${dir}/st-c.conf`], {
      readyText: "Configuration successful",
    });
    out.stunnel = await iperf(IP.stunnelC, PORT.tunnelIn, SECONDS);
    row("stunnel4 mTLS pair, iperf3 1 stream", `${out.stunnel.toFixed(2)} Gbit/s`);
    await stC.stop();
    await stS.stop();
  }
  if (want("throughput") || want("wrk")) await rustRows();
  if (want("wrk") || want("latency")) {
    Deno.writeTextFileSync(`${dir}/haproxy.cfg`, haproxyConf(dir, `${IP.server}:${PORT.http}`));
    out.hap = await spawn("haproxy", ["-db", "-f", `${dir}/haproxy.cfg`]);
    procs.push(out.hap);
    await waitPort(IP.haproxyC, PORT.tunnelIn);
  }
  return out;
}

async function rustRows(): Promise<void> {
  const rust = await rustPair(dir);
  if (!rust) {
    row("Rust HBONE pair", "skipped: set WEFT_BENCH_RUST_PAIR to the hbone-pair binary");
    return;
  }
  rustGbps = await iperf(RUST_IP.client, PORT.tunnelIn, SECONDS);
  row("Rust HBONE pair (h2+rustls), iperf3 1 stream", `${rustGbps.toFixed(2)} Gbit/s`);
  const rw = await wrk(`http://${RUST_IP.client}:${PORT.tunnelOut}/`, SECONDS);
  row("wrk -c32 Rust HBONE pair", fmtWrk(rw));
  row(
    "Rust HBONE pair peak RSS (server / client)",
    rust.map((p) => rssMb(p.pid).peak.toFixed(1)).slice(0, 2).join(" / ") + " MB",
  );
  for (const p of rust.reverse()) await p.stop();
}

const URL_DIRECT = `http://${IP.server}:${PORT.http}/`;
const URL_HAPROXY = `http://${IP.haproxyC}:${PORT.tunnelIn}/`;
const URL_WEFT = `http://${IP.vip}:80/`;

/** wrk -c32: nginx direct once, then haproxy and weft alternately for --rounds (medians). */
async function wrkSection(hap: boolean): Promise<WrkResult> {
  row("wrk -c32 nginx direct", fmtWrk(await wrk(URL_DIRECT, SECONDS)));
  const h: WrkResult[] = [];
  const w: WrkResult[] = [];
  for (let r = 0; r < ROUNDS; r++) {
    if (hap) h.push(await wrk(URL_HAPROXY, SECONDS));
    w.push(await wrk(URL_WEFT, SECONDS));
  }
  const med = (l: WrkResult[]): WrkResult =>
    l.length === 0 ? NO_WRK : {
      rps: median(l.map((x) => x.rps)),
      p50: median(l.map((x) => x.p50)),
      p99: median(l.map((x) => x.p99)),
    };
  const hw = med(h);
  const ww = med(w);
  const of = ROUNDS > 1 ? ` (median of ${ROUNDS})` : "";
  if (hap) row(`wrk -c32 haproxy mTLS pair${of}`, fmtWrk(hw));
  row(
    `wrk -c32 weft pair${of}`,
    fmtWrk(ww),
    `${(ww.rps / hw.rps).toFixed(2)}x haproxy req/s (goal ≥ 1.0x), p99 ${
      (ww.p99 / hw.p99).toFixed(2)
    }x (goal ≤ 1.0x)`,
  );
  return ww;
}

const fmtLat = (l: Latency): string => `${l.p50.toFixed(2)}/${l.p99.toFixed(2)}`;
const signed = (x: number): string => `${x >= 0 ? "+" : "−"}${Math.abs(x).toFixed(2)}`;

/**
 * Added latency at 1k req/s, two probes: hey (10 workers at 100 req/s each, which tick together:
 * bursts of 10) and the evenly spaced open loop (bench/openloop.ts, the C client). In each round nginx
 * direct, the haproxy pair and the weft pair run back to back; added = pair − direct of the same
 * round. The summary gives the medians over the rounds, weft's against haproxy's and the goal
 * (added p50 ≤ 0.25 ms, p99 ≤ 1 ms for the two hops).
 */
async function latencySection(hap: boolean): Promise<void> {
  if (WARM > 0 && !want("wrk")) {
    await wrk(URL_WEFT, WARM);
    if (hap) await wrk(URL_HAPROXY, WARM);
    note(`latency: ${WARM} s of wrk through each pair first (--warm)`);
  }
  const probes = [["hey", fixedRate], ["open loop", openLoop]] as const;
  const added: Record<string, { weft: Latency[]; haproxy: Latency[] }> = {};
  for (let r = 1; r <= ROUNDS; r++) {
    for (const [name, probe] of probes) {
      const d = await probe(URL_DIRECT, SECONDS);
      const h = hap ? await probe(URL_HAPROXY, SECONDS) : undefined;
      const w = await probe(URL_WEFT, SECONDS);
      const plus = (x: Latency): Latency => ({
        p50: x.p50 - d.p50,
        p99: x.p99 - d.p99,
        rps: x.rps,
        ...(x.sendP50 !== undefined && d.sendP50 !== undefined
          ? { sendP50: x.sendP50 - d.sendP50, sendP99: x.sendP99! - d.sendP99! }
          : {}),
      });
      const a = added[name] ??= { weft: [], haproxy: [] };
      a.weft.push(plus(w));
      if (h) a.haproxy.push(plus(h));
      const fmtAdded = (x: Latency): string => `${signed(x.p50)}/${signed(x.p99)}`;
      row(
        `1k req/s ${name}, round ${r}: p50/p99 ms direct · haproxy · weft`,
        `${fmtLat(d)} · ${h ? fmtLat(h) : "-"} · ${fmtLat(w)} (weft ${Math.round(w.rps)} req/s)`,
        `added: haproxy ${h ? fmtAdded(plus(h)) : "-"}, weft ${fmtAdded(plus(w))} [load ${load()}]`,
      );
      if (w.sendP50 !== undefined) {
        // The open loop from each request's actual send: the client's own timer lag left out.
        const fmtSend = (x: Latency): string => `${signed(x.sendP50!)}/${signed(x.sendP99!)}`;
        row(
          `1k req/s ${name}, round ${r}: added from the send`,
          `haproxy ${h ? fmtSend(plus(h)) : "-"}, weft ${fmtSend(plus(w))}`,
          `direct from the send ${d.sendP50!.toFixed(2)}/${d.sendP99!.toFixed(2)} ms`,
        );
        // The client's own send lag (a precise client keeps it far below the goal) and p99.9.
        const lag = (x: Latency): string =>
          `${x.lagP99?.toFixed(3) ?? "-"} (timer ${x.timerP99?.toFixed(3) ?? "-"})`;
        const p999 = (x: Latency): string => x.p999?.toFixed(2) ?? "-";
        row(
          `1k req/s ${name}, round ${r}: client ${w.client}, its send lag p99 direct · haproxy · weft`,
          `${lag(d)} · ${h ? lag(h) : "-"} · ${lag(w)} ms`,
          `p99.9 ${p999(d)} · ${h ? p999(h) : "-"} · ${p999(w)} ms`,
        );
      }
    }
  }
  for (const [name] of probes) {
    const a = added[name]!;
    const p50 = median(a.weft.map((x) => x.p50));
    const p99 = median(a.weft.map((x) => x.p99));
    const h50 = median(a.haproxy.map((x) => x.p50));
    const h99 = median(a.haproxy.map((x) => x.p99));
    const met = (x: number, goal: number): string => x <= goal ? "met" : "not met";
    if (a.weft[0]?.sendP50 !== undefined) {
      const m = (xs: Latency[], k: "sendP50" | "sendP99"): string =>
        signed(median(xs.map((x) => x[k]!)));
      row(
        `1k req/s ${name}: added from the send${ROUNDS > 1 ? `, median of ${ROUNDS} rounds` : ""}`,
        `weft ${m(a.weft, "sendP50")}/${m(a.weft, "sendP99")} ms, haproxy pair ${
          m(a.haproxy, "sendP50")
        }/${m(a.haproxy, "sendP99")} ms`,
        "the client's timer lag left out (bench/l4_tail.ts)",
      );
    }
    row(
      `1k req/s ${name}: added p50/p99${ROUNDS > 1 ? `, median of ${ROUNDS} rounds` : ""}`,
      `weft ${signed(p50)}/${signed(p99)} ms, haproxy pair ${signed(h50)}/${signed(h99)} ms`,
      `weft/haproxy ${(p50 / h50).toFixed(2)}x / ${(p99 / h99).toFixed(2)}x; goal ≤ +0.25/+1 ms: ` +
        `p50 ${met(p50, 0.25)}, p99 ${met(p99, 1)}`,
    );
  }
}

const load = (): string => Deno.readTextFileSync("/proc/loadavg").split(" ").slice(0, 3).join(" ");

let binPath = "";

/** `--binary` without a path: build ./weft now (the image, for the container's idle RSS, too). */
async function prepareBinary(): Promise<void> {
  if (BINARY === undefined) return;
  binPath = BINARY;
  if (binPath === "") {
    binPath = "./weft";
    for (const tool of ["tools/build.ts", "tools/image.ts"]) {
      const r = await new Deno.Command(Deno.execPath(), { args: ["run", "-A", tool] }).output();
      if (!r.success && tool === "tools/build.ts") throw new Error("deno task build failed");
      if (!r.success) note("image build failed: no container idle RSS");
    }
  }
}

/** Idle RSS of node A alone as a Deno run, the binary and the container (one at a time). */
async function idleForms(): Promise<void> {
  const file = `${dir}/weft-a.yaml`;
  const forms: IdleForm[] = [
    {
      label: "deno run src/main.ts",
      cmd: Deno.execPath(),
      args: ["run", "-A", "src/main.ts", "run", "--config", file],
    },
    { label: `binary ${binPath}`, cmd: binPath, args: ["run", "--config", file], binary: binPath },
  ];
  const version = JSON.parse(Deno.readTextFileSync("package.json")).version as string;
  const c = containerForm(`localhost/weft:${version}`, dir, file);
  if (c) forms.push(c);
  const rss = await idleRss(forms);
  const deno = rss.get(forms[0]!.label) ?? NaN;
  for (const [label, mb] of rss) {
    row(
      `idle RSS, one node: ${label}`,
      `${mb.toFixed(1)} MB`,
      `${(mb / deno).toFixed(2)}x deno run`,
    );
  }
}

async function main(): Promise<void> {
  note(`work dir ${dir}`);
  await prepareBinary();
  await makeCerts(dir);
  Deno.writeTextFileSync(`${dir}/nginx.conf`, nginxConf(dir));
  for (const d of ["nb", "np", "nf", "nu", "ns"]) Deno.mkdirSync(`${dir}/${d}`);
  procs.push(await spawn("nginx", ["-c", `${dir}/nginx.conf`, "-p", dir]));
  procs.push(
    await spawn("iperf3", ["-s", "--forceflush", "-B", IP.server, "-p", String(PORT.iperf)], {
      readyText: "Server listening",
    }),
  );
  procs.push(await startEcho());
  await waitPort(IP.server, PORT.http);

  if (TUNNELS_ONLY) return await tunnelMemory();
  const peer: PeerFigures = WEFT_ONLY ? { raw: NaN, stunnel: NaN } : await peers();
  let weft = NaN;
  let ww = NO_WRK;
  if (want("throughput") || want("wrk") || want("latency")) {
    const b = await weftNode("b");
    const a = await weftNode("a");
    await new Promise((r) => setTimeout(r, 1000)); // settle after start-up before the idle reading
    const idleA = rssMb(a.pid).rss;
    const idleB = rssMb(b.pid).rss;
    row(
      "weft idle RSS (node A / node B)",
      `${idleA.toFixed(1)} / ${idleB.toFixed(1)} MB`,
      "goal ≤ 48 MB",
    );
    if (want("throughput")) {
      weft = await iperf(IP.vip, PORT.iperf, SECONDS, IP.client);
      row(
        "weft pair over HBONE, iperf3 1 stream",
        `${weft.toFixed(2)} Gbit/s`,
        `${(weft / peer.stunnel).toFixed(2)}x stunnel4 (goal ≥ 1.0x), ${
          rustGbps > 0 ? `${(weft / rustGbps).toFixed(2)}x Rust pair, ` : ""
        }${(weft / peer.raw).toFixed(3)}x raw`,
      );
      row(
        "weft peak RSS during throughput (A / B)",
        `${rssMb(a.pid).peak.toFixed(1)} / ${rssMb(b.pid).peak.toFixed(1)} MB`,
        "goal ≤ 100 MB",
      );
    }
    if (want("wrk")) ww = await wrkSection(peer.hap !== undefined);
    if (want("latency")) await latencySection(peer.hap !== undefined);
    await b.stop();
    await a.stop();
  }
  await peer.hap?.stop();
  if (want("bare")) await bareFloor(weft, ww);

  // Per-tunnel memory on a fresh pair: after a bulk run the heap holds garbage that would blur
  // the difference.
  if (want("tunnels") && TUNNELS > 0) await tunnelMemory();
  if (want("idle") && BINARY !== undefined) await idleForms();
}

/** The same runs through bench/l4_bare.ts: node:http2 CONNECT with no weft logic at all. */
async function bareFloor(weft: number, ww: WrkResult): Promise<void> {
  const start = async (side: "a" | "b", file = "bench/l4_bare.ts"): Promise<Proc> => {
    const script = [file, dir, side];
    const [cmd, args] = BUN || BINARY !== undefined
      ? ["bun", script]
      : [Deno.execPath(), ["run", "-A", ...script]];
    const p = await spawn(cmd, args, { readyText: '"msg":"ready"' });
    procs.push(p);
    return p;
  };
  const b = await start("b");
  const a = await start("a");
  const bare = await iperf(IP.vip, PORT.iperf, SECONDS, IP.client);
  const bw = await wrk(`http://${IP.vip}:80/`, SECONDS);
  row(
    "bare node:http2 CONNECT pair (floor: no weft logic)",
    `${bare.toFixed(2)} Gbit/s; ${fmtWrk(bw)}`,
    `weft/bare: ${(weft / bare).toFixed(2)}x Gbit/s, ${(ww.rps / bw.rps).toFixed(2)}x req/s`,
  );
  await a.stop();
  await b.stop();
  const tb = await start("b", "bench/l4_tls_pair.ts");
  const ta = await start("a", "bench/l4_tls_pair.ts");
  const tp = await iperf(IP.vip, PORT.iperf, SECONDS, IP.client);
  row(
    "node:tls mTLS pair + 9-byte framing (ceiling for a custom h2 framer)",
    `${tp.toFixed(2)} Gbit/s`,
    `peak RSS A ${rssMb(ta.pid).peak.toFixed(1)} / B ${rssMb(tb.pid).peak.toFixed(1)} MB`,
  );
  await ta.stop();
  await tb.stop();
}

async function tunnelMemory(): Promise<void> {
  const b = await weftNode("b");
  const a = await weftNode("a");
  await new Promise((r) => setTimeout(r, 1000));
  const a0 = rssMb(a.pid).rss;
  const b0 = rssMb(b.pid).rss;
  const t0 = Date.now();
  const held = await holdTunnels(TUNNELS, 60_000);
  const heldMs = Date.now() - t0;
  await new Promise((r) => setTimeout(r, 500));
  const rA = rssMb(a.pid).rss;
  const rB = rssMb(b.pid).rss;
  const kb = (mb: number): string => ((mb * 1024) / Math.max(1, held.length)).toFixed(1);
  row(
    `weft ${held.length} idle tunnels held, fresh pair (opened in ${(heldMs / 1000).toFixed(1)} s)`,
    `RSS A ${a0.toFixed(1)}→${rA.toFixed(1)} MB, B ${b0.toFixed(1)}→${rB.toFixed(1)} MB`,
    `${kb(rA + rB - a0 - b0)} KB per tunnel both nodes (A ${kb(rA - a0)}, B ${
      kb(rB - b0)
    }; goal ≤ 8 KB per node)`,
  );
  for (const s of held) s.destroy();
  await a.stop();
  await b.stop();
}

// Interrupted (Ctrl-C, timeout): still stop every child, or they keep the loopback ports.
for (const sig of ["SIGINT", "SIGTERM"] as const) {
  Deno.addSignalListener(sig, async () => {
    for (const p of procs.reverse()) await p.stop();
    Deno.exit(130);
  });
}

try {
  await main();
} finally {
  for (const p of procs.reverse()) await p.stop();
  try {
    Deno.removeSync(dir, { recursive: true });
  } catch { /* leave it */ }
}

const w = [0, 1, 2].map((i) => Math.max(...rows.map((r) => r[i]!.length)));
const mode = BINARY !== undefined
  ? `the shipped binary ${binPath}`
  : `${HARNESS ? "NodeProxy harness" : "weft run"} on ${BUN ? "bun" : "deno"}`;
out(`\nweft L4 bench (${mode}, ${SECONDS}s runs, load ${load()}, ${new Date().toISOString()})`);
for (const r of rows) out(`| ${r.map((c, i) => c.padEnd(w[i]!)).join(" | ")} |`);
