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
import { mkdtempSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { tmpdir } from "node:os";
import net from "node:net";

const DURATION = Deno.env.get("L7_BENCH_SECONDS") ?? "5";
const ROUNDS = Number(Deno.env.get("L7_BENCH_ROUNDS") ?? "2");
const NO_FILTERS = Deno.args.includes("--no-filters");

function freePort(): Promise<number> {
  return new Promise((r) => {
    const s = net.createServer().listen(0, "127.0.0.1", () => {
      const p = (s.address() as net.AddressInfo).port;
      s.close(() => r(p));
    });
  });
}

async function wrk(url: string): Promise<{ rps: number; p50: string; p99: string }> {
  const out = await new Deno.Command("wrk", {
    args: ["-t2", "-c32", `-d${DURATION}s`, "--latency", url],
  }).output();
  const text = new TextDecoder().decode(out.stdout);
  const rps = Number(/Requests\/sec:\s+([\d.]+)/.exec(text)?.[1] ?? 0);
  const p50 = /^\s+50%\s+(\S+)/m.exec(text)?.[1] ?? "?";
  const p99 = /^\s+99%\s+(\S+)/m.exec(text)?.[1] ?? "?";
  const errors = /Non-2xx or 3xx responses: (\d+)|Socket errors: (.*)/.exec(text)?.[0];
  if (errors) console.error(`  wrk ${url}: ${errors}`);
  return { rps, p50, p99 };
}

const dir = mkdtempSync(join(tmpdir(), "weft-l7-bench-"));
const [upPort, nginxProxyPort] = [await freePort(), await freePort()];
writeFileSync(
  join(dir, "nginx.conf"),
  `
worker_processes 1; daemon off; pid ${dir}/nginx.pid; error_log ${dir}/error.log;
events { worker_connections 1024; }
http {
  access_log off;
  upstream up { server 127.0.0.1:${upPort}; keepalive 64; }
  server { listen 127.0.0.1:${upPort}; location / { return 200 "ok\\n"; } }
  server { listen 127.0.0.1:${nginxProxyPort};
    location / { proxy_pass http://up; proxy_http_version 1.1; proxy_set_header Connection ""; } }
}`,
);
const nginx = new Deno.Command("nginx", {
  args: ["-c", join(dir, "nginx.conf"), "-p", dir],
  stderr: "null",
}).spawn();
const BUN = Deno.args.includes("--bun");
const serverArgs = [
  new URL("./l7_proxy_server.ts", import.meta.url).pathname,
  "--upstream",
  `127.0.0.1:${upPort}`,
  ...Deno.args.filter((a) => a !== "--bun"),
];
const weft = new Deno.Command(BUN ? "bun" : Deno.execPath(), {
  args: BUN ? serverArgs : ["run", "-A", ...serverArgs],
  stdout: "piped",
}).spawn();
try {
  const reader = weft.stdout.pipeThrough(new TextDecoderStream()).getReader();
  let line = "";
  // The first line with a port (on Bun a log line about jco's worker may come first).
  while (!/"port":\d+.*\n/.test(line)) {
    const r = await reader.read();
    if (r.done) throw new Error(`the weft proxy exited: ${line}`);
    line += r.value;
  }
  const weftPort = Number(/"port":(\d+)/.exec(line)![1]);
  const sockets = /"sockets":"([^"]+)"/.exec(line)?.[1] ?? "node:net";
  void reader.cancel();
  for (let i = 0; i < 50; i++) { // wait for nginx's listener
    const ok = await fetch(`http://127.0.0.1:${nginxProxyPort}/`).then((r) => r.text()).then(
      () => true,
      () => false,
    );
    if (ok) break;
    await new Promise((r) => setTimeout(r, 100));
  }
  await wrk(`http://127.0.0.1:${weftPort}/warmup`);
  // Alternated (nginx, weft, nginx, weft): on a shared box the load moves during a run; the
  // ratio is of the summed rates, each peer measured in both halves.
  const runs: { n: Awaited<ReturnType<typeof wrk>>; w: Awaited<ReturnType<typeof wrk>> }[] = [];
  for (let i = 0; i < ROUNDS; i++) {
    const n = await wrk(`http://127.0.0.1:${nginxProxyPort}/hello`);
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
  nginx.kill("SIGTERM");
  await nginx.status;
}
