/**
 * More peers for bench/l4.ts: the Rust HBONE pair (h2 + rustls on tokio, ztunnel's stack; built
 * from the project's shared tools, path in WEFT_BENCH_RUST_PAIR) and a fixed-rate latency probe
 * (hey at a total rate, p50/p99).
 */
import { IP, NET, PORT, type Proc, spawn } from "./l4_peers.ts";
import { openLoop as runOpenLoop } from "./openloop.ts";

export const RUST_IP = { client: `${NET}.0.30`, server: `${NET}.0.31` } as const;

/** The Rust pair: one server, one client per upstream (iperf on PORT.tunnelIn, HTTP on
 * PORT.tunnelOut of RUST_IP.client). Undefined when no binary is configured. */
export async function rustPair(dir: string): Promise<Proc[] | undefined> {
  const bin = Deno.env.get("WEFT_BENCH_RUST_PAIR");
  if (!bin) return undefined;
  const tls = ["--ca", `${dir}/ca.pem`];
  const server = await spawn(bin, [
    "server",
    "--listen",
    `${RUST_IP.server}:15008`,
    "--cert",
    `${dir}/server.pem`,
    "--key",
    `${dir}/server.key`,
    ...tls,
    "--quiet",
  ], { readyText: "server: listening on" });
  const client = (port: number, authority: string): Promise<Proc> =>
    spawn(bin, [
      "client",
      "--listen",
      `${RUST_IP.client}:${port}`,
      "--node",
      `${RUST_IP.server}:15008`,
      "--authority",
      authority,
      "--cert",
      `${dir}/client.pem`,
      "--key",
      `${dir}/client.key`,
      ...tls,
      "--quiet",
      // Readiness from the log, not a probe: a probe would reach iperf3's control port.
    ], { readyText: "client: listening on" });
  const procs = [
    server,
    await client(PORT.tunnelIn, `${IP.server}:${PORT.iperf}`),
    await client(PORT.tunnelOut, `${IP.server}:${PORT.http}`),
  ];
  return procs;
}

export interface Latency {
  readonly p50: number;
  readonly p99: number;
  readonly rps: number;
  /** The open loop's requests timed from their actual send (without the client's timer lag). */
  readonly sendP50?: number;
  readonly sendP99?: number;
  /** The open loop's p99.9 from the scheduled start, its own send lag p99, and which client. */
  readonly p999?: number;
  readonly lagP99?: number;
  readonly timerP99?: number;
  readonly client?: string;
}

/** `hey` at a fixed total rate (10 connections × rate/10 each), latencies in ms. */
export async function fixedRate(url: string, seconds: number, rate = 1000): Promise<Latency> {
  const out = await new Deno.Command("hey", {
    args: ["-z", `${seconds}s`, "-c", "10", "-q", String(rate / 10), url],
    stdout: "piped",
    stderr: "null",
  }).output();
  const text = new TextDecoder().decode(out.stdout);
  const pct = (p: number): number =>
    Number(new RegExp(`\\s${p}% in ([\\d.]+) secs`).exec(text)?.[1] ?? NaN) * 1000;
  return {
    p50: pct(50),
    p99: pct(99),
    rps: Number(/Requests\/sec:\s+([\d.]+)/.exec(text)?.[1] ?? NaN),
  };
}

/** An open loop at `rate` req/s with evenly spaced requests (bench/openloop.ts: the C client,
 * absolute-deadline sends over a keep-alive pool, each request timed from its scheduled start;
 * bench/seq_client.ts on Bun only as a labelled fallback without a C compiler). Unlike hey, whose
 * 10 workers tick together (bursts of 10 every 10 ms), no request waits behind its siblings. */
export async function openLoop(url: string, seconds: number, rate = 1000): Promise<Latency> {
  const r = await runOpenLoop(url, seconds, rate);
  return {
    p50: r.p50,
    p99: r.p99,
    rps: rate,
    sendP50: r.sendP50,
    sendP99: r.sendP99,
    p999: r.p999,
    lagP99: r.lagP99,
    timerP99: r.timerP99,
    client: r.client,
  };
}
