// deno-lint-ignore-file no-console
/**
 * Closed-loop latency (for bench:inpod): N sequential GETs on one keep-alive connection, timed with
 * performance.now(); prints one JSON line {p50, p99, avg} in ms. Runs unmodified inside a pod.
 * Usage: seq_client.ts <url> <n>
 */
import { Agent, get } from "node:http";
import process from "node:process";

const [url, nArg] = process.argv.slice(2);
const n = Number(nArg ?? 2000);
const agent = new Agent({ keepAlive: true, maxSockets: 1 });

function once(): Promise<number> {
  const t0 = performance.now();
  return new Promise((resolve, reject) => {
    get(url!, { agent }, (res) => {
      res.on("data", () => {});
      res.on("end", () => resolve(performance.now() - t0));
    }).on("error", reject);
  });
}

const times: number[] = [];
for (let i = 0; i < 200; i++) await once(); // warm-up
for (let i = 0; i < n; i++) times.push(await once());
times.sort((a, b) => a - b);
const at = (q: number): number => times[Math.min(times.length - 1, Math.floor(q * times.length))]!;
console.log(JSON.stringify({
  p50: at(0.5),
  p99: at(0.99),
  avg: times.reduce((a, b) => a + b, 0) / times.length,
}));
agent.destroy();
