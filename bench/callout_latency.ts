/**
 * proxy_http_call round-trip latency percentiles (p50/p90/p99 over 300 sequential requests)
 * against its peer measured in the same run: the same HTTP request made directly with node:http
 * to the same loopback server. `deno bench` averages are dominated by rare GC/scheduler
 * outliers on a shared box; percentiles show the typical cost. Run: deno task bench:bodies
 */
import { request as httpRequest } from "node:http";
import { ref, request, testFilter } from "../tests/support/proxy_wasm_kit.ts";
import { setLogLevel } from "../src/core/mod.ts";
import { createProxyWasmFilter } from "../src/filters/proxy_wasm/mod.ts";

setLogLevel("warn");
const enc = new TextEncoder();
const out = (m: string): void => void Deno.stdout.writeSync(enc.encode(`${m}\n`));
const N = 300;
const server = Deno.serve({ hostname: "127.0.0.1", port: 0, onListen: () => {} }, async (r) => {
  await r.text();
  return new Response("allowed:alice");
});
const port = server.addr.port;
const f = await createProxyWasmFilter(ref("callout", await testFilter(), {}), {
  clusters: { authz: `127.0.0.1:${port}` },
});

const direct = (): Promise<void> =>
  new Promise((resolve, reject) => {
    const q = httpRequest({
      host: "127.0.0.1",
      port,
      method: "POST",
      path: "/check",
      headers: { host: "authz", "content-length": "5" },
    }, (r) => {
      r.resume();
      r.on("end", () => resolve());
    });
    q.on("error", reject);
    q.end("alice");
  });

const callout = async (): Promise<void> => {
  const ctx = request({ "x-test": "callout", "x-user": "alice" });
  const out = await f.onRequest(ctx);
  if (out.action !== "continue") throw new Error(`callout failed: ${JSON.stringify(out)}`);
  f.onDone(ctx);
};

function pct(a: number[]): string {
  a.sort((x, y) => x - y);
  return [0.5, 0.9, 0.99].map((p) => a[Math.floor(p * (a.length - 1))]!.toFixed(3)).join(" / ");
}

try {
  for (
    const [name, fn] of [["peer: node:http direct", direct], ["proxy_http_call", callout]] as const
  ) {
    const t: number[] = [];
    for (let i = 0; i < N; i++) {
      const t0 = performance.now();
      await fn();
      t.push(performance.now() - t0);
    }
    out(`${name.padEnd(24)} p50 / p90 / p99 ms: ${pct(t)}`);
  }
} finally {
  f.close();
  await server.shutdown();
}
