// deno-lint-ignore-file no-console
/**
 * Latency clients for bench:inpod, run unmodified inside a pod (node:http, Bun or Deno); each prints
 * one JSON line {p50, p99, avg, sent, failed} in ms.
 *   seq_client.ts seq <url> <n>: n sequential GETs on one keep-alive connection (no queueing);
 *   seq_client.ts rate <url> <rps> <seconds>: open loop at a fixed rate over a pool of keep-alive
 *   connections; each request is timed from its scheduled start, so time spent waiting behind a
 *   slow one counts (no coordinated omission); `sendP50`/`sendP99` time the same requests from
 *   their actual send instead (without the client's own timer lag: its 1 ms ticks alone delay a
 *   send by 0-1 ms, p50 ~0.6 ms, and its busy moments by more: bench/l4_tail.ts);
 *   seq_client.ts trace <url> <rps> <seconds>: the same open loop, and the JSON line also carries
 *   `samples`, one [scheduled start (ms since the epoch), latency ms, send lag ms, new connection
 *   0/1] per request, for bench/l4_tail.ts to match against other processes' events.
 */
import { Agent, get } from "node:http";
import process from "node:process";

const [mode, url, a, b] = process.argv.slice(2);
const agent = new Agent({ keepAlive: true, maxSockets: mode === "seq" ? 1 : 64 });

const samples: [number, number, number, number][] = [];
const fromSend: number[] = [];
const tracing = mode === "trace";

function once(t0: number): Promise<number> {
  const sent = performance.now();
  return new Promise((resolve, reject) => {
    const req = get(url!, { agent }, (res) => {
      res.on("data", () => {});
      res.on("end", () => {
        const ms = performance.now() - t0;
        fromSend.push(ms - (sent - t0));
        if (tracing) {
          const fresh = (req as { reusedSocket?: boolean }).reusedSocket ? 0 : 1;
          samples.push([performance.timeOrigin + t0, ms, sent - t0, fresh]);
        }
        resolve(ms);
      });
    }).on("error", reject);
  });
}

const times: number[] = [];
let failed = 0;
if (mode === "seq") {
  for (let i = 0; i < 200; i++) await once(performance.now()); // warm-up
  for (let i = 0; i < Number(a ?? 2000); i++) times.push(await once(performance.now()));
} else {
  const rps = Number(a ?? 1000);
  const total = Math.round(rps * Number(b ?? 5));
  for (let i = 0; i < 50; i++) await once(performance.now()); // warm-up
  samples.length = 0;
  fromSend.length = 0;
  const start = performance.now();
  const pending: Promise<void>[] = [];
  let sent = 0;
  await new Promise<void>((done) => {
    const tick = (): void => {
      const due = Math.min(total, Math.floor(((performance.now() - start) * rps) / 1000) + 1);
      for (; sent < due; sent++) {
        const scheduled = start + (sent * 1000) / rps;
        pending.push(once(scheduled).then((t) => void times.push(t), () => void failed++));
      }
      if (sent < total) setTimeout(tick, 1);
      else done();
    };
    tick();
  });
  await Promise.all(pending);
}
times.sort((x, y) => x - y);
fromSend.sort((x, y) => x - y);
const q = (xs: number[], p: number): number =>
  xs[Math.min(xs.length - 1, Math.floor(p * xs.length))]!;
const at = (p: number): number => q(times, p);
console.log(JSON.stringify({
  p50: at(0.5),
  p99: at(0.99),
  ...(mode === "seq" ? {} : { sendP50: q(fromSend, 0.5), sendP99: q(fromSend, 0.99) }),
  avg: times.reduce((x, y) => x + y, 0) / times.length,
  sent: times.length + failed,
  failed,
  ...(tracing ? { samples } : {}),
}));
agent.destroy();
