/**
 * JS heap cells allocated per request on the L4 HBONE path, per node: two NodeProxy nodes on Bun
 * (bench/l4_heap_node.ts with WEFT_BENCH_CENSUS=1) between a client and a minimal HTTP/1.1
 * responder in this process (each GET answered with a 3-byte body), N sequential small requests
 * on one keep-alive connection (VIP → A → HBONE → B → responder) after a warm-up, a
 * census of every cell before and after (garbage included), printed per request with the types.
 * Fewer cells per request means fewer eden collections at a given rate (bench/l4_tail.ts).
 *   deno run -A bench/l4_alloc.ts [--n 500] [--tree .] [--json] [--bun PATH]
 * `--json` prints one line {a, b} (cells per request per node) for tests. The addresses are
 * bench/l4_peers.ts's (WEFT_BENCH_NET picks the loopback block).
 */
import * as net from "node:net";
import { IP, makeCerts, PORT, type Proc, spawn } from "./l4_peers.ts";

const argv = Deno.args;
const opt = (n: string, d: string): string => {
  const i = argv.indexOf(`--${n}`);
  return i >= 0 && argv[i + 1] ? argv[i + 1]! : d;
};
const N = Number(opt("n", "500"));
const TREE = opt("tree", new URL("..", import.meta.url).pathname);
const JSON_OUT = argv.includes("--json");
const BUN = opt("bun", "bun");
const enc = new TextEncoder();
const out = (m: string): void => void Deno.stdout.writeSync(enc.encode(`${m}\n`));
const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

/** One node on Bun; `census` resolves with the next CENSUS line it prints. */
async function node(dir: string, side: "a" | "b"): Promise<Proc & { census(): Promise<string> }> {
  let log = "";
  const p = await spawn(BUN, [`${TREE}/bench/l4_heap_node.ts`, dir, side], {
    readyText: '"msg":"ready"',
    env: { ...Deno.env.toObject(), WEFT_BENCH_CENSUS: "1", WEFT_LOG: "error" },
    onText: (t) => log += t,
  });
  return {
    ...p,
    census: async () => {
      for (let i = 0; i < 200; i++) {
        const line = log.split("\n").find((l) => l.startsWith("CENSUS "));
        if (line) {
          log = log.slice(log.indexOf(line) + line.length);
          return line.slice(7);
        }
        await sleep(10);
      }
      throw new Error(`node ${side}: no census`);
    },
  };
}

/** `n` GETs one after the other on one connection through the VIP. */
async function requests(sock: net.Socket, n: number): Promise<void> {
  const req = "GET / HTTP/1.1\r\nHost: bench\r\n\r\n";
  for (let i = 0; i < n; i++) {
    await new Promise<void>((resolve) => {
      let got = "";
      const onData = (c: Uint8Array): void => {
        got += new TextDecoder().decode(c);
        if (got.endsWith("ok\n")) {
          sock.off("data", onData);
          resolve();
        }
      };
      sock.on("data", onData);
      sock.write(req);
    });
  }
}

const dir = Deno.makeTempDirSync({ prefix: "weft-bench-alloc-" });
const procs: Proc[] = [];
try {
  await makeCerts(dir);
  // The workload: one answer per request head (the client sends one at a time).
  const answer = new TextEncoder().encode("HTTP/1.1 200 OK\r\nContent-Length: 3\r\n\r\nok\n");
  const upstream = net.createServer((s) => {
    s.on("error", () => {});
    s.on("data", () => void s.write(answer));
  });
  await new Promise<void>((r) => upstream.listen(PORT.http, IP.server, r));
  procs.push({
    pid: 0,
    child: undefined as never,
    stop: () => new Promise((r) => upstream.close(() => r())),
  });
  const b = await node(dir, "b");
  procs.push(b);
  const a = await node(dir, "a");
  procs.push(a);
  const sock = await new Promise<net.Socket>((resolve, reject) => {
    const s = net.connect({ host: IP.vip, port: 80, localAddress: IP.client }, () => resolve(s));
    s.once("error", reject);
  });
  sock.setNoDelay(true);
  await requests(sock, 3000); // warm-up: the JIT tiers, the pool, the session
  /** Cells allocated on each node while `n` requests run (a census after a collection, then
   * another). */
  const window = async (n: number): Promise<Record<string, number>[]> => {
    for (const p of [a, b]) Deno.kill(p.pid, "SIGUSR2");
    await sleep(300);
    await requests(sock, n);
    for (const p of [a, b]) Deno.kill(p.pid, "SIGUSR2");
    return [JSON.parse(await a.census()), JSON.parse(await b.census())];
  };
  // The census itself allocates (its result objects and their structures): measured with no
  // request in the window and taken off.
  const idle = await window(0);
  const busy = await window(N);
  const per: Record<string, number> = {};
  for (const [i, name] of ["a", "b"].entries()) {
    const c = Object.fromEntries(
      Object.entries(busy[i]!).map(([k, v]) => [k, Math.max(0, v - (idle[i]![k] ?? 0)) / N]),
    );
    const total = Object.values(c).reduce((x, y) => x + y, 0);
    per[name] = Number(total.toFixed(1));
    if (!JSON_OUT) {
      const top = Object.entries(c).filter(([, v]) => v >= 0.01).sort((x, y) => y[1] - x[1])
        .map(([k, v]) => `${k} ${v.toFixed(2)}`).join(", ");
      out(`node ${name.toUpperCase()}: ${total.toFixed(1)} cells per request: ${top}`);
    }
  }
  if (JSON_OUT) out(JSON.stringify(per));
  sock.destroy();
} finally {
  for (const p of procs.reverse()) await p.stop();
  Deno.removeSync(dir, { recursive: true });
}
