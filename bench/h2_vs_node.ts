/**
 * Single-stream CONNECT throughput: src/core/h2 framing vs node:http2, both over node:tls mTLS
 * (TLS 1.3, client certs required, ALPN h2), client and server in one process, plus a bare
 * node:tls pair as the ceiling. Each case runs in a fresh child process (same runtime) so peak
 * RSS is per case. Bounded: one transfer of N MiB per case (default 256).
 *   deno run -A bench/h2_vs_node.ts [--mib 256]      bun bench/h2_vs_node.ts [--mib 256]
 *   child:  ... h2_vs_node.ts --case ours|node|tls --mib N   (prints one JSON line)
 */
import { spawnSync } from "node:child_process";
import process from "node:process";
import type { Duplex } from "node:stream";
import { args, exit, nowMs, rssBytes, runtimeName } from "../src/core/runtime.ts";
import { H2Session } from "../src/core/h2/mod.ts";
import {
  makePki,
  mtlsConnect,
  mtlsListen,
  nodeH2Connect,
  nodeH2Listen,
  type Pki,
} from "../src/core/h2/_h2_test_kit.ts";

const argv = args();
const opt = (name: string): string | undefined => {
  const i = argv.indexOf(`--${name}`);
  return i < 0 ? undefined : argv[i + 1];
};
const mib = Number(opt("mib") ?? 256);
const say = (line: string): void => void process.stdout.write(`${line}\n`);
const CHUNK = new Uint8Array(65536).fill(7);

/** Write `total` bytes with backpressure, end, and resolve when the peer's reply ends. */
async function pump(s: Duplex, total: number): Promise<void> {
  const done = new Promise<void>((r, j) => {
    s.on("end", () => r()).on("error", j);
    s.resume();
  });
  for (let sent = 0; sent < total; sent += CHUNK.length) {
    if (!s.write(CHUNK)) await new Promise((r) => s.once("drain", r));
  }
  s.end();
  await done;
}

/** Server side of every case: count bytes, end after the client's end. */
function sink(s: Duplex, onBytes: (n: number) => void): void {
  s.on("data", (c: Uint8Array) => onBytes(c.length));
  s.on("end", () => s.end());
  s.on("error", () => {});
}

async function runCase(kind: string, pki: Pki, total: number): Promise<number> {
  let received = 0;
  const count = (n: number): void => void (received += n);
  let t0 = 0;
  if (kind === "ours") {
    const servers: H2Session[] = [];
    const l = await mtlsListen(pki, (sock) => {
      const h = new H2Session(sock, "server");
      servers.push(h);
      h.onConnect((_h, respond) => sink(respond(200)!, count));
    });
    const client = new H2Session(await mtlsConnect(pki, l.port), "client");
    const { stream } = await client.openConnect({ ":authority": "10.0.0.1:5201" });
    t0 = nowMs();
    await pump(stream, total);
    const ms = nowMs() - t0;
    client.destroy();
    servers.forEach((s) => s.destroy());
    await l.close();
    if (received !== total) throw new Error(`received ${received}`);
    return ms;
  }
  if (kind === "node") {
    const l = await nodeH2Listen(pki, (s) => {
      s.respond({ ":status": 200 });
      sink(s, count);
    });
    const session = await nodeH2Connect(pki, l.port);
    const req = session.request({ ":method": "CONNECT", ":authority": "10.0.0.1:5201" });
    await new Promise((r) => req.once("response", r));
    t0 = nowMs();
    await pump(req, total);
    const ms = nowMs() - t0;
    session.destroy();
    await l.close();
    if (received !== total) throw new Error(`received ${received}`);
    return ms;
  }
  const l = await mtlsListen(pki, (s) => sink(s, count));
  const sock = await mtlsConnect(pki, l.port);
  t0 = nowMs();
  await pump(sock, total);
  const ms = nowMs() - t0;
  sock.destroy();
  await l.close();
  if (received !== total) throw new Error(`received ${received}`);
  return ms;
}

const kind = opt("case");
if (kind) {
  const pki = await makePki();
  let peak = rssBytes();
  const timer = setInterval(() => (peak = Math.max(peak, rssBytes())), 20);
  const total = mib * 1024 * 1024;
  const ms = await runCase(kind, pki, total);
  clearInterval(timer);
  peak = Math.max(peak, rssBytes());
  const gbps = (total * 8) / (ms / 1000) / 1e9;
  say(
    JSON.stringify({
      case: kind,
      runtime: runtimeName,
      mib,
      ms: Math.round(ms),
      gbps: +gbps.toFixed(2),
      peakRssMb: Math.round(peak / 1e6),
    }),
  );
  exit(0);
} else {
  // Parent: interleave the cases for `rounds` rounds (the box is shared: noise is large), print
  // every run and then the median per case.
  const self = new URL(import.meta.url).pathname;
  const cmd = runtimeName === "bun" ? ["bun", self] : ["deno", "run", "-A", self];
  const rounds = Number(opt("rounds") ?? 3);
  const results = new Map<string, { gbps: number; peakRssMb: number }[]>();
  for (let r = 0; r < rounds; r++) {
    for (const c of ["tls", "node", "ours"]) {
      const out = spawnSync(cmd[0]!, [...cmd.slice(1), "--case", c, "--mib", String(mib)], {
        encoding: "utf8",
        timeout: 120_000,
      });
      const line = (out.stdout ?? "").trim().split("\n").pop() ?? "";
      say(
        line || `{"case":"${c}","error":${JSON.stringify((out.stderr ?? "").slice(-300))}}`,
      );
      if (line) results.set(c, [...(results.get(c) ?? []), JSON.parse(line)]);
    }
  }
  const median = (xs: number[]): number => xs.sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;
  for (const [c, rs] of results) {
    const gbps = median(rs.map((x) => x.gbps));
    const rss = median(rs.map((x) => x.peakRssMb));
    say(JSON.stringify({ median: c, runtime: runtimeName, mib, gbps, peakRssMb: rss }));
  }
}
