/**
 * Rapid-reset flood (CVE-2023-44487) with reconnects against a real node's HBONE listener: an
 * authenticated client opens CONNECT streams and resets each at once, reconnecting whenever the
 * node closes the session. The node must answer with GOAWAY ENHANCE_YOUR_CALM, keep accepting
 * legitimate clients (a fresh tunnel within 1 s after the flood) and give its memory back (RSS
 * within 20 % of the pre-flood value, polled for up to 40 s). Bounded: 2 s of flood, 4 attacker
 * connections at a time. The node releases memory 2 s after the last flood event (runtime.ts
 * noteBurst). Runs on Bun (the shipped runtime) from a cold node, and on Deno after one warm-up
 * flood: Deno's JS heap returns to its pre-flood size (~11 MB), but the first flood grows native
 * memory (JIT code and TLS allocations, ~14–17 MB) that stays resident once; every later flood
 * comes back to that level, which is what this bounds on Deno.
 */
import { Buffer } from "node:buffer";
import * as tls from "node:tls";
import { encodeHeaders } from "../src/core/h2/hpack.ts";
import {
  ErrorCode,
  FrameReader,
  FrameType,
  headersFrames,
  PREFACE,
  readU32,
  rstStreamFrame,
  settingsFrame,
} from "../src/core/h2/frames.ts";
import { assert } from "./support/assert.ts";
import { type Mesh, roundTrip, startMesh } from "./support/mesh.ts";
import { bunPath } from "./support/weft_proc.ts";

const FLOOD_MS = 2000;
const ATTACKERS = 4;

function rssMb(pid: number): number {
  const m = /VmRSS:\s+(\d+) kB/.exec(Deno.readTextFileSync(`/proc/${pid}/status`));
  return Number(m?.[1] ?? 0) / 1024;
}

interface FloodStats {
  sessions: number;
  streams: number;
  calm: number;
}

/** One attacker: connect, flood HEADERS+RST_STREAM pairs until the node closes us, repeat. */
async function attacker(
  host: string,
  creds: { cert: string; key: string; ca: string },
  authority: string,
  until: number,
  stats: FloodStats,
): Promise<void> {
  const block = encodeHeaders([[":method", "CONNECT"], [":authority", authority]]);
  while (Date.now() < until) {
    const sock = tls.connect({
      host,
      port: 15008,
      ...creds,
      ALPNProtocols: ["h2"],
      checkServerIdentity: () => undefined,
    });
    sock.on("error", () => {});
    const closed = new Promise<void>((r) => sock.once("close", () => r()));
    const reader = new FrameReader({
      frame: (type, _flags, _id, payload) => {
        if (type === FrameType.GOAWAY && readU32(payload, 4) === ErrorCode.ENHANCE_YOUR_CALM) {
          stats.calm++;
        }
      },
      data: () => {},
    }, 1 << 24);
    sock.on("data", (c: Uint8Array) => {
      try {
        reader.push(c);
      } catch { /* a torn frame at close */ }
    });
    const up = await Promise.race([
      new Promise<boolean>((r) => sock.once("secureConnect", () => r(true))),
      closed.then(() => false),
    ]);
    if (!up) continue;
    stats.sessions++;
    sock.write(PREFACE);
    sock.write(settingsFrame(new Map()));
    let id = 1;
    let open = true;
    closed.then(() => open = false);
    while (open && Date.now() < until) {
      const batch: Uint8Array[] = [];
      for (let i = 0; i < 50; i++, id += 2) {
        batch.push(headersFrames(id, block, false, 16384), rstStreamFrame(id, ErrorCode.CANCEL));
        stats.streams++;
      }
      if (!sock.write(Buffer.concat(batch))) {
        await Promise.race([new Promise((r) => sock.once("drain", r)), closed]);
      }
      await new Promise((r) => setTimeout(r, 1));
    }
    sock.destroy();
    await closed;
  }
}

async function flood(
  m: Mesh,
  creds: { cert: string; key: string; ca: string },
): Promise<FloodStats> {
  const stats: FloodStats = { sessions: 0, streams: 0, calm: 0 };
  const until = Date.now() + FLOOD_MS;
  const authority = `${m.echoIp}:${m.echo.port}`;
  await Promise.all(
    Array.from({ length: ATTACKERS }, () => attacker(m.echoIp, creds, authority, until, stats)),
  );
  return stats;
}

for (const runtime of ["bun", "deno"] as const) {
  const bun = bunPath();
  Deno.test({
    name:
      `rapid-reset flood with reconnects (${runtime}): GOAWAY ENHANCE_YOUR_CALM, listener still serves, memory comes back`,
    ignore: runtime === "bun" && !bun,
    fn: () => floodTest(runtime === "bun" ? { runtime: bun! } : {}, runtime === "deno"),
  });
}

async function floodTest(opts: { runtime?: string }, warmUp: boolean): Promise<void> {
  const m = await startMesh(opts);
  try {
    const pid = m.b!.child.pid;
    const client = await m.pki.good("spiffe://cluster.local/ns/default/sa/sleep");
    const creds = { cert: client.certPem, key: client.keyPem, ca: m.pki.rootsPem };
    // Warm up the legitimate path (and on Deno the flood path), then take the baseline.
    if (warmUp) {
      await flood(m, creds);
      await settled(pid);
    }
    for (let i = 0; i < 20; i++) {
      const s = await m.dial();
      await roundTrip(s, new Uint8Array(100));
      s.destroy();
    }
    await new Promise((r) => setTimeout(r, 500));
    const before = rssMb(pid);
    const stats = await flood(m, creds);
    const exited = await Promise.race([m.b!.exited, new Promise((r) => setTimeout(r, 10))]);
    assert(!exited, `node B exited during the flood: ${m.b!.stderrText().slice(-3000)}`);
    const peak = rssMb(pid);
    // A legitimate client right after the flood: a fresh tunnel answers within 1 s.
    const t0 = performance.now();
    const s = await m.dial();
    const echoed = await roundTrip(s, new Uint8Array(1000), 1000);
    const ms = performance.now() - t0;
    s.destroy();
    assert(echoed.length === 1000, "echo through the node after the flood");
    assert(ms < 1000, `legitimate tunnel took ${ms.toFixed(0)} ms after the flood`);
    const t1 = performance.now();
    let after = rssMb(pid);
    // V8 gives heap pages back on its own schedule (memory reducer, seconds after the burst).
    for (let i = 0; i < 200 && after > before * 1.2; i++) {
      await new Promise((r) => setTimeout(r, 200));
      after = rssMb(pid);
    }
    // deno-lint-ignore no-console -- the figures are the point of a stress test
    console.error(
      `rapid reset: ${stats.streams} streams over ${stats.sessions} sessions, ${stats.calm} ` +
        `GOAWAY(ENHANCE_YOUR_CALM); RSS ${before.toFixed(1)} → peak ${peak.toFixed(1)} → ` +
        `${after.toFixed(1)} MB after ${((performance.now() - t1) / 1000).toFixed(1)} s; ` +
        `legit tunnel ${ms.toFixed(0)} ms`,
    );
    assert(stats.calm >= 1, "the node answers a reset flood with GOAWAY ENHANCE_YOUR_CALM");
    assert(stats.sessions >= 2, "the attacker reconnected after being closed");
    assert(
      after <= before * 1.2,
      `RSS ${after.toFixed(1)} MB is not within 20 % of ${before.toFixed(1)} MB`,
    );
  } finally {
    await m.stop();
  }
}

/** After a flood: waits for V8's memory reducer (it acts ~10–30 s after a burst) to bring RSS
 * down from its peak, then for RSS to hold within 0.5 MB for 5 s; at most 60 s. */
async function settled(pid: number): Promise<void> {
  const peak = rssMb(pid);
  let low = peak;
  let steady = 0;
  let fell = false;
  for (let i = 0; i < 60 && !(fell && steady >= 5); i++) {
    await new Promise((r) => setTimeout(r, 1000));
    const now = rssMb(pid);
    if (now < peak * 0.9) fell = true;
    if (now < low - 0.5) {
      low = now;
      steady = 0;
    } else steady++;
  }
}
