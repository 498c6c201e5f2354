/**
 * What one idle tunnel costs on each node, from the JS heap rather than RSS (which moves with the
 * allocator and the collector's timing): two NodeProxy nodes on Bun (bench/l4_heap_node.ts), N
 * tunnels VIP → A → HBONE → B → echo opened and held, then a full collection on each node and the
 * heap growth per tunnel with the object types that grew (functions and lexical environments are
 * closures kept per tunnel).
 *   deno run -A bench/l4_heap.ts [N=5000]
 */
import * as net from "node:net";
import { IP, makeCerts, PORT, type Proc, rssMb, spawn } from "./l4_peers.ts";

const N = Number(Deno.args[0] ?? 5000);
const dir = Deno.makeTempDirSync({ prefix: "weft-bench-heap-" });
const procs: Proc[] = [];
const logs: Record<"a" | "b", string> = { a: "", b: "" };
const enc = new TextEncoder();
const out = (m: string): void => void Deno.stdout.writeSync(enc.encode(`${m}\n`));
const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

async function node(side: "a" | "b"): Promise<Proc> {
  const child = new Deno.Command("bun", {
    args: [new URL("./l4_heap_node.ts", import.meta.url).pathname, dir, side],
    stdout: "piped",
    stderr: "piped",
  }).spawn();
  let ready: () => void = () => {};
  const seen = new Promise<void>((r) => ready = r);
  const dec = new TextDecoder();
  (async () => {
    for await (const c of child.stdout) if (dec.decode(c).includes('"msg":"ready"')) ready();
  })().catch(() => {});
  (async () => {
    for await (const c of child.stderr) logs[side] += dec.decode(c);
  })().catch(() => {});
  await Promise.race([seen, child.status.then(() => Promise.reject(new Error(logs[side])))]);
  return {
    pid: child.pid,
    child,
    stop: async () => {
      child.kill("SIGTERM");
      await child.status;
    },
  };
}

function hold(): Promise<net.Socket | undefined> {
  return new Promise((resolve) => {
    const s = net.connect(
      { host: IP.vip, port: PORT.echo, localAddress: IP.client },
      () => s.write("x"),
    );
    s.once("data", () => resolve(s));
    s.once("error", () => resolve(undefined));
  });
}

try {
  await makeCerts(dir);
  const echo = `import * as net from "node:net";
    const server = net.createServer((s) => { s.on("error", () => {}); s.pipe(s); });
    server.listen(${PORT.echo}, "${IP.server}", 16384, () => console.log("echo ready"));`;
  procs.push(await spawn(Deno.execPath(), ["eval", echo], { readyText: "echo ready" }));
  const b = await node("b");
  procs.push(b);
  const a = await node("a");
  procs.push(a);
  await sleep(500);
  for (const p of [a, b]) Deno.kill(p.pid, "SIGUSR2");
  await sleep(500);
  const rss0 = [rssMb(a.pid).rss, rssMb(b.pid).rss];
  const socks: net.Socket[] = [];
  for (let i = 0; i < N; i += 250) {
    for (const s of await Promise.all(Array.from({ length: Math.min(250, N - i) }, hold))) {
      if (s) socks.push(s);
    }
  }
  for (const p of [a, b]) Deno.kill(p.pid, "SIGUSR2");
  await sleep(1500);
  const rss1 = [rssMb(a.pid).rss, rssMb(b.pid).rss];
  out(`weft L4 heap per idle tunnel (bun, ${socks.length} held, ${new Date().toISOString()})`);
  for (const [i, side] of (["a", "b"] as const).entries()) {
    const line = logs[side].split("\n").find((l) => l.startsWith("HEAP "));
    const h = JSON.parse(line?.slice(5) ?? "{}") as { size?: number; grown?: [string, number][] };
    const per = (n: number): string => (n / socks.length).toFixed(1);
    out(
      `node ${side.toUpperCase()}: JS heap ${
        ((h.size ?? NaN) / 1024 / socks.length).toFixed(2)
      } KB, ` +
        `RSS ${
          ((rss1[i]! - rss0[i]!) * 1024 / socks.length).toFixed(2)
        } KB per tunnel; per tunnel: ` +
        (h.grown ?? []).map(([k, n]) => `${k} ${per(n)}`).join(", "),
    );
  }
  for (const s of socks) s.destroy();
} finally {
  for (const p of procs.reverse()) await p.stop();
  Deno.removeSync(dir, { recursive: true });
}
