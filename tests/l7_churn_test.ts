/**
 * Many keep-alive clients against an upstream that closes pooled connections at random (FIN or
 * reset, some as they are reused): 200 clients × 20 requests, half with small bodies, through
 * weft's HTTP/1.1 proxy on Deno (node:net) and on Bun (native sockets). Every request is answered
 * 200, or 503 (a body cannot be sent again on a fresh connection), none hangs; the pool ends at
 * most at its limit (64 idle per route); the proxy's RSS stays bounded.
 */
import assert from "node:assert/strict";
import net from "node:net";
import type { AddressInfo } from "node:net";
import { Buffer } from "node:buffer";
import { bunPath } from "./support/weft_proc.ts";
import { startBunProxy } from "./support/bun_l7.ts";
import { startNodeProxy } from "./support/node_l7.ts";

const BUN = bunPath();
const CLIENTS = 200;
const REQUESTS = 20;

/** Answers each request (content-length bodies) with 200 "ok"; after an answer, one connection
 * in five is reset or ended within 0-3 ms, racing its reuse. */
async function churningUpstream(): Promise<{ port: number; close(): Promise<void> }> {
  const sockets = new Set<net.Socket>();
  const timers = new Set<ReturnType<typeof setTimeout>>();
  const server = net.createServer((s) => {
    sockets.add(s);
    s.on("close", () => sockets.delete(s));
    s.on("error", () => {});
    let buf = "";
    s.on("data", (b: Buffer) => {
      buf += b.toString("latin1");
      for (;;) {
        const end = buf.indexOf("\r\n\r\n");
        if (end < 0) return;
        const len = Number(/\r\ncontent-length: *(\d+)/i.exec(buf.slice(0, end))?.[1] ?? 0);
        if (buf.length < end + 4 + len) return;
        buf = buf.slice(end + 4 + len);
        s.write("HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\nok");
        const r = Math.random();
        if (r < 0.2) {
          const t = setTimeout(() => {
            timers.delete(t);
            if (r < 0.15) s.destroy();
            else s.end();
          }, Math.floor(Math.random() * 4));
          timers.add(t);
        }
      }
    });
  });
  await new Promise<void>((r) => server.listen(0, "127.0.0.1", r));
  return {
    port: (server.address() as AddressInfo).port,
    close: async () => {
      for (const t of timers) clearTimeout(t);
      for (const s of sockets) s.destroy();
      await new Promise((r) => server.close(r));
    },
  };
}

/** One keep-alive client: REQUESTS requests in turn (reconnecting after a `connection: close`);
 * the statuses it got. */
async function oneClient(port: number, id: number): Promise<number[]> {
  const statuses: number[] = [];
  let s: net.Socket | undefined;
  let buf = "";
  let wake = (): void => {};
  let closed = true;
  try {
    for (let i = 0; i < REQUESTS; i++) {
      if (closed) {
        s?.destroy();
        const c = net.connect(port, "127.0.0.1");
        s = c;
        buf = "";
        closed = false;
        c.on("error", () => {});
        c.on("data", (b: Buffer) => {
          buf += b.toString("latin1");
          wake();
        });
        c.on("close", () => {
          if (s === c) closed = true;
          wake();
        });
        await new Promise((r) => c.once("connect", r));
      }
      s!.write(
        i % 2 === 0
          ? `GET /${id}/${i} HTTP/1.1\r\nHost: a\r\n\r\n`
          : `POST /${id}/${i} HTTP/1.1\r\nHost: a\r\nContent-Length: 10\r\n\r\n0123456789`,
      );
      for (;;) {
        const end = buf.indexOf("\r\n\r\n");
        if (end >= 0) {
          const head = buf.slice(0, end);
          const len = Number(/\r\ncontent-length: *(\d+)/i.exec(head)?.[1] ?? 0);
          if (buf.length >= end + 4 + len) {
            statuses.push(Number(head.slice(9, 12)));
            buf = buf.slice(end + 4 + len);
            if (/\r\nconnection: *close/i.test(head)) closed = true;
            break;
          }
        }
        if (closed) {
          statuses.push(0); // closed without an answer
          break;
        }
        await new Promise<void>((r) => (wake = r));
      }
    }
  } finally {
    s?.destroy();
  }
  return statuses;
}

function rssKiB(pid: number): number {
  const m = /VmRSS:\s+(\d+)/.exec(Deno.readTextFileSync(`/proc/${pid}/status`));
  return Number(m?.[1] ?? 0);
}

for (const runtime of ["deno", "bun"] as const) {
  Deno.test({
    name: `churn (${runtime}): ${CLIENTS} keep-alive clients × ${REQUESTS} requests against an ` +
      "upstream closing pooled connections at random: all answered 200/503, pool within its limit",
    ignore: runtime === "bun" && BUN === undefined,
    fn: async () => {
      const up = await churningUpstream();
      const proxy = runtime === "bun"
        ? await startBunProxy(up.port, 10_000)
        : await startNodeProxy(up.port);
      let timer: ReturnType<typeof setTimeout> | undefined;
      try {
        const rss0 = rssKiB(proxy.pid);
        const all = await Promise.race([
          Promise.all(Array.from({ length: CLIENTS }, (_, id) => oneClient(proxy.port, id))),
          new Promise<never>((_, fail) => {
            timer = setTimeout(() => fail(new Error("a request hung")), 60_000);
          }),
        ]);
        const rss1 = rssKiB(proxy.pid);
        const flat = all.flat();
        const count = (st: number): number => flat.filter((x) => x === st).length;
        // deno-lint-ignore no-console
        console.log(
          `${runtime}: ${count(200)} × 200, ${count(503)} × 503, ${count(0)} closed unanswered; ` +
            `RSS ${rss0 >> 10} → ${rss1 >> 10} MiB`,
        );
        assert.equal(flat.length, CLIENTS * REQUESTS);
        assert.equal(count(200) + count(503), flat.length, `statuses: ${[...new Set(flat)]}`);
        assert.ok(count(200) > flat.length / 2);
        assert.ok((await proxy.idle()) <= 64);
        assert.ok(rss1 - rss0 < 200 * 1024, `RSS grew by ${(rss1 - rss0) >> 10} MiB`);
      } finally {
        clearTimeout(timer);
        await proxy.stop();
        await up.close();
      }
    },
  });
}
