// deno-lint-ignore-file no-console
/**
 * `deno task bench:soak [--minutes 5] [--conns 10000] [--bun] [--bun-b] [--pool-idle S]`
 * (--bun-b: only node B on Bun, to tell client-side from server-side runtime behaviour): reliability of two real weft nodes
 * (A: client side, VIP capture; B: HBONE server in front of an echo workload run as its own
 * process, so each process stays under the file-descriptor limit).
 *  1. soak: mixed load for N minutes — persistent connections doing 1 KiB round trips, connection
 *     churn (connect, one round trip, close), admin /config_dump and metrics scrapes — with RSS of
 *     both nodes sampled every 5 s; "flat" = per-minute medians after the first minute within ±10 %.
 *  2. concurrency: `--conns` connections open at once through A → HBONE → B, each doing a round
 *     trip while all are held, then closed; counts failures.
 *  3. SIGTERM under load: 200 connections looping round trips; SIGTERM node A; the clients finish
 *     their current exchange within 2 s and close; counts resets/incomplete exchanges (goal 0),
 *     the exit code and how long the drain took (window 30 s).
 */
import { connect, type Socket } from "node:net";
import { stringify } from "yaml";
import { join } from "node:path";
import {
  bunPath,
  LISTENERS,
  loopbackBlock,
  ROOT,
  startWeft,
  type WeftProc,
} from "../tests/support/weft_proc.ts";
import { createTestPki } from "../tests/support/test_ca.ts";
import { meshConfigs } from "../tests/support/mesh.ts";

const argv = Deno.args;
const opt = (name: string, dflt: number): number => {
  const i = argv.indexOf(`--${name}`);
  return i >= 0 ? Number(argv[i + 1]) : dflt;
};
const MINUTES = opt("minutes", 5);
const CONNS = opt("conns", 10_000);
/** Pool idle timeout in seconds (default: weft's 5 min); short values exercise session teardown
 * while other sessions carry traffic. */
const POOL_IDLE = opt("pool-idle", 0);
const RUNTIME = argv.includes("--bun") ? bunPath() : undefined;

async function startEchoProc(host: string): Promise<{ port: number; child: Deno.ChildProcess }> {
  const code = `import { createServer } from "node:net";
const s = createServer((c) => { c.on("error", () => {}); c.pipe(c); });
s.listen(0, ${JSON.stringify(host)}, () => console.log(s.address().port));`;
  const child = new Deno.Command(Deno.execPath(), {
    args: ["eval", code],
    stdout: "piped",
    stderr: "inherit",
  }).spawn();
  const reader = child.stdout.pipeThrough(new TextDecoderStream()).getReader();
  const { value } = await reader.read();
  reader.releaseLock();
  return { port: Number(value!.trim()), child };
}

function rssMb(pid: number): number {
  const m = /VmRSS:\s+(\d+) kB/.exec(Deno.readTextFileSync(`/proc/${pid}/status`));
  return m ? Number(m[1]) / 1024 : NaN;
}

function dial(host: string, localAddress: string): Promise<Socket> {
  return new Promise((resolve, reject) => {
    const s = connect({ host, port: 80, localAddress });
    s.once("connect", () => resolve(s));
    s.once("error", reject);
  });
}

/** One echo round trip of `n` bytes on `s`. */
function roundTrip(s: Socket, n: number, timeoutMs = 15_000): Promise<void> {
  return new Promise((resolve, reject) => {
    let got = 0;
    const t = setTimeout(() => done(new Error(`timeout after ${got}/${n}`)), timeoutMs);
    const onData = (c: Uint8Array): void => {
      got += c.length;
      if (got >= n) done();
    };
    const onClose = (): void => done(new Error(`closed after ${got}/${n}`));
    const onErr = (e: Error): void => done(e);
    const done = (e?: Error): void => {
      clearTimeout(t);
      s.off("data", onData).off("close", onClose).off("error", onErr);
      e ? reject(e) : resolve();
    };
    s.on("data", onData).once("close", onClose).once("error", onErr);
    s.write(new Uint8Array(n).fill(0x61));
  });
}

const median = (xs: number[]): number =>
  [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)] ?? NaN;

async function main(): Promise<void> {
  const ip = loopbackBlock();
  const [clientIp, echoIp, vip] = [ip(2), ip(3), ip(100)];
  const pki = await createTestPki();
  const echo = await startEchoProc(echoIp);
  const ca = { mode: "files", certFile: pki.rootsPath, keyFile: pki.caKeyPath };
  const common = {
    ca,
    listeners: LISTENERS,
    timeouts: { drain: "30s" },
    limits: {
      maxConnections: 100_000,
      ...(POOL_IDLE ? { poolIdleTimeout: `${POOL_IDLE}s` } : {}),
    },
  };
  const { nodeA: a, nodeB: b } = meshConfigs({
    clientIp,
    echoIp,
    vip,
    echoPort: echo.port,
    common,
  });
  await Deno.writeTextFile(join(pki.dir, "a.yaml"), stringify(a));
  await Deno.writeTextFile(join(pki.dir, "b.yaml"), stringify(b));
  const run = RUNTIME
    ? { runtime: RUNTIME, env: { WEFT_LOG: "warn" } }
    : { env: { WEFT_LOG: "warn" } };
  let nodeA: WeftProc | undefined;
  let nodeB: WeftProc | undefined;
  try {
    // WEFT_LOG=warn keeps access records out of the pipes; readiness comes from the ready line at
    // info, so start at info and lower the level through the admin API right after.
    [nodeA, nodeB] = await Promise.all([
      startWeft(["run", "--config", join(pki.dir, "a.yaml")], { ...run, env: {} }),
      startWeft(
        ["run", "--config", join(pki.dir, "b.yaml")],
        argv.includes("--bun-b") && bunPath()
          ? { runtime: bunPath()!, env: {} }
          : { ...run, env: {} },
      ),
    ]);
    for (const p of argv.includes("--debug") ? [] : [nodeA, nodeB]) {
      await fetch(`http://${p.ready.admin}/logging?level=warn`, {
        method: "POST",
        headers: { "x-weft-admin": "1" },
      })
        .then((r) => r.body?.cancel());
    }
    console.log(`weft on ${RUNTIME ? "Bun" : "Deno"}; root ${ROOT}`);
    await soak(nodeA, nodeB, vip, clientIp);
    await concurrency(nodeA, nodeB, vip, clientIp);
    await sigtermUnderLoad(nodeA, vip, clientIp);
  } finally {
    await Promise.all([nodeA?.stop(), nodeB?.stop()]);
    echo.child.kill();
    await echo.child.status;
    await pki.dispose();
  }
}

async function soak(
  nodeA: WeftProc,
  nodeB: WeftProc,
  vip: string,
  clientIp: string,
): Promise<void> {
  const end = performance.now() + MINUTES * 60_000;
  const samples: { t: number; a: number; b: number }[] = [];
  const t0 = performance.now();
  let trips = 0, churn = 0, errors = 0, scrapes = 0;
  const sampler = setInterval(() => {
    samples.push({
      t: (performance.now() - t0) / 1000,
      a: rssMb(nodeA.child.pid),
      b: rssMb(nodeB.child.pid),
    });
  }, 5000);
  const persistent = async (): Promise<void> => {
    const s = await dial(vip, clientIp);
    try {
      while (performance.now() < end) {
        await roundTrip(s, 1024);
        trips++;
        await new Promise((r) => setTimeout(r, 20)); // paced: ~50 round trips/s per connection
      }
    } catch {
      errors++;
    } finally {
      s.destroy();
    }
  };
  const churner = async (): Promise<void> => {
    while (performance.now() < end) {
      try {
        const s = await dial(vip, clientIp);
        await roundTrip(s, 200);
        s.end();
        await new Promise((r) => s.once("close", r));
        churn++;
      } catch {
        errors++;
      }
      await new Promise((r) => setTimeout(r, 10));
    }
  };
  const scraper = async (): Promise<void> => {
    while (performance.now() < end) {
      for (
        const u of [
          `http://${nodeA.ready.admin}/config_dump`,
          `http://${nodeB.ready.metrics}/stats/prometheus`,
        ]
      ) {
        await (await fetch(u)).arrayBuffer();
        scrapes++;
      }
      await new Promise((r) => setTimeout(r, 1000));
    }
  };
  await Promise.all([
    ...Array.from({ length: 50 }, persistent),
    ...Array.from({ length: 10 }, churner),
    scraper(),
  ]);
  clearInterval(sampler);
  const minutes: { a: number; b: number }[] = [];
  for (let m = 1; m < MINUTES; m++) {
    const inMin = samples.filter((s) => s.t >= m * 60 && s.t < (m + 1) * 60);
    if (inMin.length) {
      minutes.push({
        a: median(inMin.map((s) => s.a)),
        b: median(inMin.map((s) => s.b)),
      });
    }
  }
  const spread = (xs: number[]): number => (Math.max(...xs) - Math.min(...xs)) / median(xs) * 100;
  console.log(
    `\n1. soak ${MINUTES} min: ${trips} round trips (1 KiB), ${churn} short connections, ${scrapes} admin/metrics scrapes, ${errors} errors`,
  );
  console.log(
    `   RSS MB per minute (median), after the first minute: A ${
      minutes.map((m) => m.a.toFixed(0)).join(" ")
    } | B ${minutes.map((m) => m.b.toFixed(0)).join(" ")}`,
  );
  console.log(
    `   spread (max-min)/median: A ${spread(minutes.map((m) => m.a)).toFixed(1)} %, B ${
      spread(minutes.map((m) => m.b)).toFixed(1)
    } % (goal ≤ 20 %, i.e. ±10 %)`,
  );
}

async function concurrency(
  nodeA: WeftProc,
  nodeB: WeftProc,
  vip: string,
  clientIp: string,
): Promise<void> {
  const t0 = performance.now();
  const socks: Socket[] = [];
  let failed = 0;
  for (let i = 0; i < CONNS; i += 500) {
    const batch = await Promise.allSettled(
      Array.from({ length: Math.min(500, CONNS - i) }, () => dial(vip, clientIp)),
    );
    for (const r of batch) r.status === "fulfilled" ? socks.push(r.value) : failed++;
  }
  const opened = performance.now() - t0;
  const trips = await Promise.allSettled(socks.map((s) => roundTrip(s, 64, 60_000)));
  const tripFailed = trips.filter((r) => r.status === "rejected").length;
  const rssA = rssMb(nodeA.child.pid), rssB = rssMb(nodeB.child.pid);
  const dump = await (await fetch(`http://${nodeA.ready.admin}/config_dump`)).json();
  for (const s of socks) s.destroy();
  console.log(
    `\n2. ${CONNS} concurrent connections: ${socks.length} open at once (${failed} connect failures, ${tripFailed} round-trip failures), opened in ${
      (opened / 1000).toFixed(1)
    } s`,
  );
  console.log(
    `   node A saw ${dump.proxy.connections.outbound} outbound connections open; RSS A ${
      rssA.toFixed(0)
    } MB, B ${rssB.toFixed(0)} MB`,
  );
  await new Promise((r) => setTimeout(r, 3000));
}

async function sigtermUnderLoad(nodeA: WeftProc, vip: string, clientIp: string): Promise<void> {
  let stop = false, trips = 0, resets = 0, clean = 0;
  const reasons = new Map<string, number>();
  const worker = async (): Promise<void> => {
    const s = await dial(vip, clientIp);
    try {
      while (!stop) {
        await roundTrip(s, 1024);
        trips++;
      }
      s.end();
      await new Promise((r) => s.once("close", r));
      clean++;
    } catch (e) {
      resets++;
      const k = String(e).replace(/\d+/g, "N");
      reasons.set(k, (reasons.get(k) ?? 0) + 1);
      s.destroy();
    }
  };
  const workers = Array.from({ length: 200 }, worker);
  await new Promise((r) => setTimeout(r, 3000));
  const before = trips;
  const t0 = performance.now();
  nodeA.child.kill("SIGTERM");
  await new Promise((r) => setTimeout(r, 2000)); // clients keep going during the drain
  stop = true;
  await Promise.all(workers);
  const status = await nodeA.exited;
  const exitMs = performance.now() - t0;
  console.log(
    `\n3. SIGTERM under load: 200 connections looping 1 KiB round trips (${
      trips - before
    } during the 2 s after SIGTERM)`,
  );
  console.log(
    `   ${clean} closed cleanly, ${resets} resets/incomplete exchanges; exit code ${status.code} after ${
      (exitMs / 1000).toFixed(1)
    } s (drain window 30 s)`,
  );
  if (reasons.size) console.log(`   failures: ${JSON.stringify(Object.fromEntries(reasons))}`);
  if (argv.includes("--debug")) {
    const tail = nodeA.lines.filter((l) => l.msg !== "connection complete").slice(-15);
    console.log(tail.map((l) => JSON.stringify(l).slice(0, 300)).join("\n"));
    const cc = nodeA.lines.filter((l) => l.msg === "connection complete").slice(-3);
    console.log(cc.map((l) => JSON.stringify(l).slice(400, 800)).join("\n"));
  }
}

await main();
