// deno-lint-ignore-file no-console
/**
 * `deno task bench:inpod` (root): unmodified HTTP traffic pod → pod across two node namespaces,
 * directly (no capture: the pods are not enrolled yet) and then through weft's in-pod capture
 * (client pod 15001 → HBONE over the wire → server pod 15008), on the same topology, same server
 * and same client tools, in one run:
 *   wrk -t1 -c32 (req/s, p50, p99) · hey at a fixed 1000 req/s (10 workers × 100 q/s): p50/p99
 *   and the latency weft adds per request (goal: +0.25 ms p50 for the two hops) · one connection,
 *   sequential requests, and an open-loop 1k req/s client timed from each request's schedule
 *   (bench/seq_client.ts, both in the client pod).
 * Options: --seconds N (per run, default 5). The weft agents run on Bun (the shipped runtime).
 */
import { topologyUnavailable } from "../tests/support/topology.ts";
import { APP_PORT, bunPath, type InpodMesh, startInpodMesh } from "../tests/support/inpod_mesh.ts";

const argv = Deno.args;
const SECONDS = argv.includes("--seconds") ? Number(argv[argv.indexOf("--seconds") + 1]) : 5;

interface Figures {
  rps: number;
  p50: number;
  p99: number;
}

function ms(v: string): number {
  const m = /([\d.]+)(us|ms|s)/.exec(v);
  if (!m) return NaN;
  const n = Number(m[1]);
  return m[2] === "us" ? n / 1000 : m[2] === "s" ? n * 1000 : n;
}

async function wrk(m: InpodMesh, url: string): Promise<Figures> {
  const r = await m.topo.run(
    m.topo.pod("client").ns,
    ["wrk", "-t1", "-c32", `-d${SECONDS}s`, "--latency", url],
    { timeoutMs: (SECONDS + 20) * 1000 },
  );
  const out = r.stdout;
  if (/Non-2xx|Socket errors/.test(out)) console.error(`wrk reported errors:\n${out}`);
  return {
    rps: Number(/Requests\/sec:\s+([\d.]+)/.exec(out)?.[1] ?? NaN),
    p50: ms(/\s50%\s+(\S+)/.exec(out)?.[1] ?? ""),
    p99: ms(/\s99%\s+(\S+)/.exec(out)?.[1] ?? ""),
  };
}

/** hey at a fixed rate: 10 workers × 100 q/s = 1000 req/s. */
async function fixedRate(m: InpodMesh, url: string): Promise<Figures> {
  const r = await m.topo.run(
    m.topo.pod("client").ns,
    ["hey", "-z", `${SECONDS}s`, "-c", "10", "-q", "100", url],
    { timeoutMs: (SECONDS + 20) * 1000 },
  );
  const out = r.stdout;
  const pct = (p: number): number =>
    Number(new RegExp(`\\s${p}% in ([\\d.]+) secs`).exec(out)?.[1] ?? NaN) * 1000;
  const codes = /\[200\]\s+(\d+) responses/.exec(out)?.[1];
  const total = /Requests\/sec:\s+([\d.]+)/.exec(out)?.[1];
  if (!codes) console.error(`hey reported no 200s:\n${out}`);
  return { rps: Number(total ?? NaN), p50: pct(50), p99: pct(99) };
}

/** bench/seq_client.ts in the client pod: "seq" (one connection) or "rate" (open loop, 1k/s). */
async function latency(m: InpodMesh, url: string, mode: "seq" | "rate"): Promise<Figures> {
  const args = mode === "seq" ? [url, "3000"] : [url, "1000", String(SECONDS)];
  const r = await m.topo.run(
    m.topo.pod("client").ns,
    [bunPath()!, new URL("./seq_client.ts", import.meta.url).pathname, mode, ...args],
    { timeoutMs: (SECONDS + 60) * 1000 },
  );
  const j = JSON.parse(r.stdout.trim().split("\n").pop() || "{}");
  if (j.failed) console.error(`${mode} ${url}: ${j.failed} of ${j.sent} requests failed`);
  return { rps: 1000 / j.avg, p50: j.p50, p99: j.p99 };
}

const f = (n: number, d = 2): string => (Number.isFinite(n) ? n.toFixed(d) : "n/a");

async function main(): Promise<number> {
  const why = topologyUnavailable() ?? (bunPath() ? undefined : "needs bun (deno task setup)");
  if (why) {
    console.error(`bench:inpod refused: ${why}`);
    return 2;
  }
  const m = await startInpodMesh();
  try {
    const server = m.topo.pod("server");
    const directUrl = `http://${server.ip}:${APP_PORT}/`;
    console.log(`bench:inpod — ${SECONDS}s per run; weft on Bun; server: node:http on Bun`);
    const dWrk = await wrk(m, directUrl);
    const dRate = await fixedRate(m, directUrl);
    const dSeq = await latency(m, directUrl, "seq");
    const dOpen = await latency(m, directUrl, "rate");
    for (const p of [m.topo.pod("client"), server]) {
      const r = await m.cni(p, "ADD");
      if (r.code !== 0) throw new Error(`enroll ${p.name}: ${r.stdout}`);
    }
    const meshUrl = `http://${m.vip}/`;
    const wWrk = await wrk(m, meshUrl);
    const wRate = await fixedRate(m, meshUrl);
    const wSeq = await latency(m, meshUrl, "seq");
    const wOpen = await latency(m, meshUrl, "rate");
    console.log(
      "\n| path | wrk -c32 req/s | p50 ms | p99 ms | hey 1k/s p50 ms | p99 ms | open-loop 1k/s p50 ms | p99 ms | 1 conn p50 ms | p99 ms |",
    );
    console.log("|---|---|---|---|---|---|---|---|---|---|");
    const row = (name: string, w: Figures, r: Figures, o: Figures, q: Figures): string =>
      `| ${name} | ${f(w.rps, 0)} | ${f(w.p50)} | ${f(w.p99)} | ${f(r.p50)} | ${f(r.p99)} | ` +
      `${f(o.p50, 3)} | ${f(o.p99, 3)} | ${f(q.p50, 3)} | ${f(q.p99, 3)} |`;
    console.log(row("direct pod → pod (routed via 2 nodes)", dWrk, dRate, dOpen, dSeq));
    console.log(row("weft in-pod: 15001 → HBONE → 15008", wWrk, wRate, wOpen, wSeq));
    console.log(
      `\nratio req/s weft/direct: ${f(wWrk.rps / dWrk.rps)}; added at 1k req/s: ` +
        `p50 +${f(wRate.p50 - dRate.p50, 3)} ms, p99 +${f(wRate.p99 - dRate.p99, 3)} ms ` +
        `(goal: +0.25 ms p50); rates achieved ${f(dRate.rps, 0)} / ${f(wRate.rps, 0)} req/s`,
    );
    console.log(
      `added at 1k req/s, open loop (bench/seq_client.ts): p50 +${
        f(wOpen.p50 - dOpen.p50, 3)
      } ms, ` +
        `p99 +${f(wOpen.p99 - dOpen.p99, 3)} ms`,
    );
    console.log(
      `added on one connection, sequential: p50 +${f(wSeq.p50 - dSeq.p50, 3)} ms, ` +
        `p99 +${f(wSeq.p99 - dSeq.p99, 3)} ms; load average ${Deno.loadavg().join(" ")}`,
    );
  } finally {
    await m.close();
  }
  return 0;
}

Deno.exit(await main());
