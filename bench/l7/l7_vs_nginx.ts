// deno-lint-ignore-file no-console
/**
 * `deno task bench:l7`: req/s and p50/p99 of small HTTP requests (wrk -t2 -c32) through
 * (a) nginx as a reverse proxy and (b) weft's HTTP proxy with the chain of the three first-party
 * filters (authz, fault, traffic-split; bench/l7/l7_proxy_server.ts), both in front of the same
 * nginx upstream, in the same run, alternated (L7_BENCH_ROUNDS rounds of L7_BENCH_SECONDS each,
 * default 2 × 5 s). Loopback only, bounded duration. `--bun`: the weft proxy runs on Bun (the
 * shipped runtime; on its native sockets, src/core/native_socket.ts, unless `--node-net`); default
 * Deno. `--no-filters`: the proxy alone. Other arguments go to the proxy server.
 */
import { proxyReadyLine, startNginxPair, type Wrk, wrk as wrkFor } from "./peers.ts";

const DURATION = Deno.env.get("L7_BENCH_SECONDS") ?? "5";
const ROUNDS = Number(Deno.env.get("L7_BENCH_ROUNDS") ?? "2");
const NO_FILTERS = Deno.args.includes("--no-filters");

const nginx = await startNginxPair("weft-l7-bench-");
const wrk = (url: string): Promise<Wrk> => wrkFor(url, DURATION);
const BUN = Deno.args.includes("--bun");
const serverArgs = [
  new URL("./l7_proxy_server.ts", import.meta.url).pathname,
  "--upstream",
  `127.0.0.1:${nginx.upPort}`,
  ...Deno.args.filter((a) => a !== "--bun"),
];
const weft = new Deno.Command(BUN ? "bun" : Deno.execPath(), {
  args: BUN ? serverArgs : ["run", "-A", ...serverArgs],
  stdout: "piped",
}).spawn();
try {
  const line = await proxyReadyLine(weft, "the weft proxy");
  const weftPort = Number(/"port":(\d+)/.exec(line)![1]);
  const sockets = /"sockets":"([^"]+)"/.exec(line)?.[1] ?? "node:net";
  await wrk(`http://127.0.0.1:${weftPort}/warmup`);
  // Alternated (nginx, weft, nginx, weft): on a shared box the load moves during a run; the
  // ratio is of the summed rates, each peer measured in both halves.
  const runs: { n: Wrk; w: Wrk }[] = [];
  for (let i = 0; i < ROUNDS; i++) {
    const n = await wrk(`http://127.0.0.1:${nginx.proxyPort}/hello`);
    runs.push({ n, w: await wrk(`http://127.0.0.1:${weftPort}/hello`) });
  }
  const load = Deno.loadavg().map((l) => l.toFixed(2)).join(" ");
  const what = `${NO_FILTERS ? "no filters" : "authz, fault, traffic-split"}; ${sockets}`;
  for (const { n, w } of runs) {
    console.log(`nginx reverse proxy: ${n.rps.toFixed(0)} req/s p50 ${n.p50} p99 ${n.p99}`);
    console.log(
      `weft http proxy (${BUN ? "bun" : "deno"}, ${what}): ${
        w.rps.toFixed(0)
      } req/s p50 ${w.p50} p99 ${w.p99}`,
    );
  }
  const sum = (f: (r: (typeof runs)[number]) => number): number =>
    runs.reduce((a, r) => a + f(r), 0);
  const ratio = sum((r) => r.w.rps) / sum((r) => r.n.rps);
  console.log(
    `ratio weft/nginx (${BUN ? "bun" : "deno"}, ${what}): ${
      ratio.toFixed(2)
    } (goal ≥ 0.8 with the filters; load ${load})`,
  );
} finally {
  weft.kill("SIGTERM");
  await weft.status;
  await nginx.stop();
}
