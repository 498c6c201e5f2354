import assert from "node:assert/strict";
import type * as net from "node:net";
import { dial, roundTrip, startMesh } from "./_l4_test_kit.ts";

const limits = (maxStreams: number, idleMs: number) => ({
  limits: { maxConnections: 1000, poolMaxStreamsPerConnection: maxStreams, poolIdleMs: idleMs },
});

/** Poll a condition driven by timers inside the proxy (idle release); bounded. */
async function until(cond: () => boolean, ms = 3000): Promise<void> {
  const end = Date.now() + ms;
  while (!cond()) {
    if (Date.now() > end) throw new Error("condition not reached");
    await new Promise((r) => setTimeout(r, 10));
  }
}

Deno.test("pool: sequential tunnels reuse one connection", async () => {
  const m = await startMesh(31);
  try {
    for (let i = 0; i < 5; i++) {
      const s = await dial(m.vip, 80, m.clientIp);
      assert.equal((await roundTrip(s, new Uint8Array(10))).length, 10);
    }
    const pool = m.a.stats().pool;
    assert.equal(pool.length, 1);
    assert.equal(pool[0]?.connections, 1);
    assert.equal(m.b.stats().hboneSessions, 1);
  } finally {
    await m.close();
  }
});

Deno.test("pool: stream limit opens new connections, single-flight dials", async () => {
  const m = await startMesh(32, limits(2, 60_000));
  const socks: net.Socket[] = [];
  try {
    // 5 concurrent tunnels, 2 streams per connection → exactly 3 connections.
    for (let i = 0; i < 5; i++) socks.push(await dial(m.vip, 80, m.clientIp));
    await Promise.all(socks.map(async (s) => {
      s.write("x");
      await new Promise((r) => s.once("data", r));
    }));
    const pool = m.a.stats().pool;
    assert.equal(pool[0]?.connections, 3);
    assert.equal(pool[0]?.streams, 5);
    await Promise.all(socks.map((s) => roundTrip(s, new Uint8Array(0))));
    assert.equal(m.a.stats().pool[0]?.streams, 0);
  } finally {
    for (const s of socks) s.destroy();
    await m.close();
  }
});

Deno.test("pool: idle connections are released after poolIdleMs", async () => {
  const m = await startMesh(33, limits(100, 50));
  try {
    const s = await dial(m.vip, 80, m.clientIp);
    await roundTrip(s, new Uint8Array(3));
    await until(() => m.a.stats().pool.length === 0);
    await until(() => m.b.stats().hboneSessions === 0);
  } finally {
    await m.close();
  }
});
