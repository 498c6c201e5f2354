// deno-lint-ignore-file no-console
/**
 * A/B of the L7 proxy on one noisy box: `deno run -A bench/l7/l7_ab.ts <treeA> <treeB>
 * [rounds]` starts bench/l7/l7_proxy_server.ts of two source trees (each with its plugins built)
 * and one nginx reverse proxy, all in front of the same nginx upstream, then runs wrk -t2 -c32
 * against nginx, A, B, nginx, A, B, ... (L7_BENCH_SECONDS each, default 5) and prints each
 * tree's ratio to nginx over the same rounds, with the load average. `--deno`: the proxies run
 * on Deno (default Bun, the shipped runtime). Other `--` arguments (e.g. `--no-filters`) go to
 * both proxy servers. Loopback only, bounded duration.
 */
import { mkdtempSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { tmpdir } from "node:os";
import net from "node:net";

const SECONDS = Deno.env.get("L7_BENCH_SECONDS") ?? "5";
const positional = Deno.args.filter((a) => !a.startsWith("--"));
const [treeA, treeB, roundsArg] = positional;
if (!treeA || !treeB) throw new Error("usage: l7_ab.ts <treeA> <treeB> [rounds] [--deno]");
const ROUNDS = Number(roundsArg ?? 3);
const DENO = Deno.args.includes("--deno");
const passOn = Deno.args.filter((a) => a.startsWith("--") && a !== "--deno");
const load = (): string => Deno.loadavg().map((l) => l.toFixed(2)).join(" ");

function freePort(): Promise<number> {
  return new Promise((r) => {
    const s = net.createServer().listen(0, "127.0.0.1", () => {
      const p = (s.address() as net.AddressInfo).port;
      s.close(() => r(p));
    });
  });
}

interface Wrk {
  rps: number;
  p50: string;
  p99: string;
}

async function wrk(url: string): Promise<Wrk> {
  const out = await new Deno.Command("wrk", {
    args: ["-t2", "-c32", `-d${SECONDS}s`, "--latency", url],
  }).output();
  const text = new TextDecoder().decode(out.stdout);
  const errors = /Non-2xx or 3xx responses: (\d+)|Socket errors: (.*)/.exec(text)?.[0];
  if (errors) console.error(`  wrk ${url}: ${errors}`);
  return {
    rps: Number(/Requests\/sec:\s+([\d.]+)/.exec(text)?.[1] ?? 0),
    p50: /^\s+50%\s+(\S+)/m.exec(text)?.[1] ?? "?",
    p99: /^\s+99%\s+(\S+)/m.exec(text)?.[1] ?? "?",
  };
}

const dir = mkdtempSync(join(tmpdir(), "weft-l7-ab-"));
const [upPort, nginxPort] = [await freePort(), await freePort()];
writeFileSync(
  join(dir, "nginx.conf"),
  `
worker_processes 1; daemon off; pid ${dir}/nginx.pid; error_log ${dir}/error.log;
events { worker_connections 1024; }
http {
  access_log off;
  upstream up { server 127.0.0.1:${upPort}; keepalive 64; }
  server { listen 127.0.0.1:${upPort}; location / { return 200 "ok\\n"; } }
  server { listen 127.0.0.1:${nginxPort};
    location / { proxy_pass http://up; proxy_http_version 1.1; proxy_set_header Connection ""; } }
}`,
);
const nginx = new Deno.Command("nginx", {
  args: ["-c", join(dir, "nginx.conf"), "-p", dir],
  stderr: "null",
}).spawn();

async function proxy(tree: string): Promise<{ port: number; child: Deno.ChildProcess }> {
  const server = join(tree, "bench/l7/l7_proxy_server.ts");
  const args = [server, "--upstream", `127.0.0.1:${upPort}`, ...passOn];
  const child = new Deno.Command(DENO ? Deno.execPath() : "bun", {
    args: DENO ? ["run", "-A", ...args] : args,
    cwd: tree,
    stdout: "piped",
  }).spawn();
  const reader = child.stdout.pipeThrough(new TextDecoderStream()).getReader();
  let line = "";
  while (!/"port":\d+.*\n/.test(line)) {
    const r = await reader.read();
    if (r.done) throw new Error(`the proxy of ${tree} exited: ${line}`);
    line += r.value;
  }
  reader.cancel().catch(() => {});
  return { port: Number(/"port":(\d+)/.exec(line)![1]), child };
}

const procs: Deno.ChildProcess[] = [];
try {
  const a = await proxy(treeA);
  procs.push(a.child);
  const b = await proxy(treeB);
  procs.push(b.child);
  for (let i = 0; i < 50; i++) {
    const ok = await fetch(`http://127.0.0.1:${nginxPort}/`).then((r) => r.text()).then(
      () => true,
      () => false,
    );
    if (ok) break;
    await new Promise((r) => setTimeout(r, 100));
  }
  await wrk(`http://127.0.0.1:${a.port}/warmup`);
  await wrk(`http://127.0.0.1:${b.port}/warmup`);
  const sums = { n: 0, a: 0, b: 0 };
  for (let i = 0; i < ROUNDS; i++) {
    // The order rotates so neither tree always runs right after nginx.
    const order = i % 2 === 0 ? ["n", "a", "b"] as const : ["n", "b", "a"] as const;
    const got: Partial<Record<"n" | "a" | "b", Wrk>> = {};
    for (const k of order) {
      const port = k === "n" ? nginxPort : k === "a" ? a.port : b.port;
      got[k] = await wrk(`http://127.0.0.1:${port}/hello`);
      sums[k] += got[k].rps;
    }
    const f = (w: Wrk | undefined): string =>
      `${w!.rps.toFixed(0).padStart(6)} req/s p50 ${w!.p50} p99 ${w!.p99}`;
    console.log(`round ${i + 1} (load ${load()})`);
    console.log(`  nginx: ${f(got.n)}`);
    console.log(`  A:     ${f(got.a)}  (${(got.a!.rps / got.n!.rps).toFixed(2)}x)`);
    console.log(`  B:     ${f(got.b)}  (${(got.b!.rps / got.n!.rps).toFixed(2)}x)`);
  }
  console.log(
    `${DENO ? "deno" : "bun"} ${passOn.join(" ") || "(three filters)"}: A ${treeA} ${
      (sums.a / sums.n).toFixed(3)
    }x nginx, B ${treeB} ${(sums.b / sums.n).toFixed(3)}x nginx, B/A ${
      (sums.b / sums.a).toFixed(3)
    } (load ${load()})`,
  );
} finally {
  for (const c of procs) {
    c.kill("SIGTERM");
    await c.status;
  }
  nginx.kill("SIGTERM");
  await nginx.status;
}
