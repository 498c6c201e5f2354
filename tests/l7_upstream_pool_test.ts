/**
 * The L7 proxy's HTTP/1.1 upstream keep-alive pool, as Envoy's, on Deno (node:net) and Bun
 * (native sockets): an idle pooled connection the upstream closes (FIN) or resets (RST) leaves
 * the pool at once, without a new request (a FIN is answered with the proxy's own); a pooled
 * connection idle longer than the configured idle timeout is closed; a request after either gets
 * a fresh connection and a 200.
 */
import assert from "node:assert/strict";
import net from "node:net";
import type { AddressInfo } from "node:net";
import { Buffer } from "node:buffer";
import { bunPath } from "./support/weft_proc.ts";
import { startBunProxy } from "./support/bun_l7.ts";
import { startNodeProxy } from "./support/node_l7.ts";
import { type RawClient, rawClient } from "./support/raw_http_client.ts";
import { within } from "./support/within.ts";

const BUN = bunPath();

interface Upstream {
  port: number;
  /** Connections accepted so far. */
  readonly accepted: () => number;
  /** The open connections, each with a Promise of the proxy's FIN on it. */
  readonly conns: { s: net.Socket; finned: Promise<void> }[];
  close(): Promise<void>;
}

/** A raw keep-alive upstream answering every request with 200 "ok". */
async function okUpstream(): Promise<Upstream> {
  let accepted = 0;
  const conns: Upstream["conns"] = [];
  const server = net.createServer({ allowHalfOpen: true }, (s) => {
    accepted++;
    s.on("error", () => {});
    const finned = new Promise<void>((r) => s.once("end", () => r()));
    const entry = { s, finned };
    conns.push(entry);
    s.on("close", () => conns.splice(conns.indexOf(entry), 1));
    let buf = Buffer.alloc(0);
    s.on("data", (c: Buffer) => {
      buf = Buffer.concat([buf, c]);
      for (let end = buf.indexOf("\r\n\r\n"); end >= 0; end = buf.indexOf("\r\n\r\n")) {
        buf = buf.subarray(end + 4);
        s.write("HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\nok");
      }
    });
  });
  await new Promise<void>((r) => server.listen(0, "127.0.0.1", r));
  return {
    port: (server.address() as AddressInfo).port,
    accepted: () => accepted,
    conns,
    close: async () => {
      for (const c of [...conns]) c.s.destroy();
      await new Promise((r) => server.close(r));
    },
  };
}

/** Polls `idle()` until it is `n` (an RST leaves the upstream no event to wait on). */
async function idleBecomes(idle: () => Promise<number>, n: number, what: string): Promise<void> {
  await within(
    5_000,
    what,
    (async () => {
      while ((await idle()) !== n) await new Promise((r) => setTimeout(r, 10));
    })(),
  );
}

async function get(c: RawClient): Promise<void> {
  const r = await within(10_000, "a response", c.roundTrip("GET / HTTP/1.1\r\nHost: a\r\n\r\n"));
  assert.equal(r.status, 200);
  assert.equal(r.body, "ok");
}

type Start = (
  upPort: number,
  idleMs?: number,
) => Promise<{ port: number; idle(): Promise<number>; stop(): Promise<string> }>;

const starts: Record<"deno" | "bun", Start> = {
  deno: (upPort, idleMs) =>
    startNodeProxy(upPort, idleMs === undefined ? {} : { upstreamIdleTimeoutMs: idleMs }),
  bun: (upPort, idleMs) =>
    startBunProxy(
      upPort,
      10_000,
      idleMs === undefined ? [] : ["--upstream-idle-ms", String(idleMs)],
    ),
};

async function withPair(
  start: Start,
  idleMs: number | undefined,
  fn: (up: Upstream, proxy: Awaited<ReturnType<Start>>, c: RawClient) => Promise<void>,
): Promise<void> {
  const up = await okUpstream();
  const proxy = await start(up.port, idleMs);
  const c = await rawClient(proxy.port);
  try {
    await fn(up, proxy, c);
  } finally {
    c.close();
    const out = await proxy.stop();
    await up.close();
    assert.ok(!/unhandled/i.test(out), `the proxy logged: ${out}`);
  }
}

for (const runtime of ["deno", "bun"] as const) {
  const start = starts[runtime];
  const ignore = runtime === "bun" && BUN === undefined;
  Deno.test({
    name: `upstream pool (${runtime}): an idle connection the upstream closes leaves the pool ` +
      "at once and gets the proxy's FIN; the next request dials fresh",
    ignore,
    fn: () =>
      withPair(start, undefined, async (up, proxy, c) => {
        await get(c);
        assert.equal(await proxy.idle(), 1);
        const first = up.conns[0]!;
        first.s.end(); // the upstream's FIN while the connection is idle in the pool
        // Before: the pool kept the half-closed socket (Bun's native socket sent no FIN back)
        // until a request reused it.
        await within(5_000, "the proxy's FIN on the closed idle connection", first.finned);
        assert.equal(await proxy.idle(), 0);
        await get(c);
        assert.equal(up.accepted(), 2);
        assert.equal(await proxy.idle(), 1);
      }),
  });
  Deno.test({
    name: `upstream pool (${runtime}): an idle connection the upstream resets leaves the pool ` +
      "at once; the next request dials fresh",
    ignore,
    fn: () =>
      withPair(start, undefined, async (up, proxy, c) => {
        await get(c);
        assert.equal(await proxy.idle(), 1);
        up.conns[0]!.s.resetAndDestroy();
        await idleBecomes(proxy.idle, 0, "the reset connection gone from the pool");
        await get(c);
        assert.equal(up.accepted(), 2);
      }),
  });
  Deno.test({
    name: `upstream pool (${runtime}): a pooled connection idle past timeouts.upstreamIdle is ` +
      "closed with a FIN; the next request dials fresh",
    ignore,
    fn: () =>
      withPair(start, 200, async (up, proxy, c) => {
        await get(c);
        assert.equal(await proxy.idle(), 1);
        await within(5_000, "the idle timeout's FIN", up.conns[0]!.finned);
        assert.equal(await proxy.idle(), 0);
        await get(c);
        assert.equal(up.accepted(), 2);
      }),
  });
}
