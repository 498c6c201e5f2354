/**
 * Hostile-peer cases for weft's HTTP/1.1 proxy (tests/l7_hostile_*_test.ts): a scripted raw
 * upstream, a raw client that waits for patterns, and a runner that registers each case on Deno
 * (node:net) and on Bun (native sockets).
 */
import net from "node:net";
import type { AddressInfo } from "node:net";
import { Buffer } from "node:buffer";
import assert from "node:assert/strict";
import { bunPath } from "./weft_proc.ts";
import { startBunProxy } from "./bun_l7.ts";
import { startNodeProxy } from "./node_l7.ts";

import { within } from "./within.ts";
export { within };

/** One upstream connection as a script sees it: everything received so far (latin1). */
export interface UpConn {
  readonly s: net.Socket;
  readonly n: number;
  text: string;
}

/** A raw upstream; `onData` runs on each chunk with the connection's text so far. */
export async function scripted(onData: (c: UpConn) => void): Promise<{
  port: number;
  accepted(): number;
  open(): number;
  texts: string[];
  close(): Promise<void>;
}> {
  let accepted = 0;
  const sockets = new Set<net.Socket>();
  const texts: string[] = [];
  const server = net.createServer((s) => {
    const c: UpConn = { s, n: accepted++, text: "" };
    sockets.add(s);
    s.on("close", () => sockets.delete(s));
    s.on("error", () => {});
    s.on("data", (b: Buffer) => {
      c.text += b.toString("latin1");
      texts[c.n] = c.text;
      onData(c);
    });
  });
  await new Promise<void>((r) => server.listen(0, "127.0.0.1", r));
  return {
    port: (server.address() as AddressInfo).port,
    accepted: () => accepted,
    open: () => sockets.size,
    texts,
    close: async () => {
      for (const s of sockets) s.destroy();
      await new Promise((r) => server.close(r));
    },
  };
}

/** Requests (heads) seen in `text`. */
export const heads = (text: string): number => text.split("\r\n\r\n").length - 1;

export interface Client {
  readonly s: net.Socket;
  text(): string;
  seen(re: RegExp, what: string, ms?: number): Promise<string>;
  readonly closed: Promise<void>;
  /** The proxy's FIN (the product's L4 record then closes after a linger: l4_conn.ts settle). */
  readonly ended: Promise<void>;
}

export async function client(port: number): Promise<Client> {
  const s = net.connect(port, "127.0.0.1");
  s.on("error", () => {});
  await new Promise<void>((r) => s.once("connect", r));
  let text = "";
  let wake = (): void => {};
  let isClosed = false;
  const closed = new Promise<void>((r) =>
    s.once("close", () => {
      isClosed = true;
      r();
    })
  );
  s.on("data", (c: Buffer) => {
    text += c.toString("latin1");
    wake();
  });
  void closed.then(() => wake());
  const ended = new Promise<void>((r) => s.once("end", () => r()));
  return {
    s,
    closed,
    ended,
    text: () => text,
    seen: (re, what, ms = 8_000) =>
      within(
        ms,
        what,
        (async () => {
          while (!re.test(text)) {
            if (isClosed) throw new Error(`${what}: closed with ${JSON.stringify(text)}`);
            await new Promise<void>((r) => (wake = r));
          }
          return text;
        })(),
      ).catch((e: Error) => {
        throw new Error(`${e.message}; got ${JSON.stringify(text.slice(0, 300))}`);
      }),
  };
}

export const OK = "HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\nok";

/** Answers each request head with OK once its content-length body is there. */
export function answerEach(c: UpConn, answer = (_i: number) => OK): void {
  const done = (c as UpConn & { done?: number }).done ?? 0;
  let at = 0;
  let i = 0;
  for (;;) {
    const end = c.text.indexOf("\r\n\r\n", at);
    if (end < 0) break;
    const len = Number(/\r\ncontent-length: *(\d+)/i.exec(c.text.slice(at, end))?.[1] ?? 0);
    if (c.text.length < end + 4 + len) break;
    at = end + 4 + len;
    if (i++ >= done) c.s.write(answer(i - 1));
  }
  (c as UpConn & { done?: number }).done = i;
}

export type Proxy = Awaited<ReturnType<typeof startNodeProxy>>;
export type Up = Awaited<ReturnType<typeof scripted>>;
export type Case = (proxy: Proxy, up: Up) => Promise<void>;

/** A case: its name, the upstream's script, and what the client side does and checks. */
export type HostileCase = [string, (c: UpConn) => void, Case];

export async function waitFor(cond: () => boolean | Promise<boolean>): Promise<void> {
  while (!(await cond())) await new Promise((r) => setTimeout(r, 20));
}

/** Registers each case on Deno (node:net, in this process) and on Bun (native sockets), each
 * with its own upstream and proxy; a proxy that logs an unhandled error fails the case. */
export function runCases(cases: readonly HostileCase[]): void {
  const BUN = bunPath();
  for (const runtime of ["deno", "bun"] as const) {
    for (const [name, upScript, fn] of cases) {
      Deno.test({
        name: `hostile (${runtime}): ${name}`,
        ignore: runtime === "bun" && BUN === undefined,
        fn: async () => {
          const up = await scripted(upScript);
          const proxy = runtime === "bun"
            ? await startBunProxy(up.port, 10_000)
            : await startNodeProxy(up.port);
          let out = "";
          try {
            await fn(proxy, up);
          } finally {
            out = await proxy.stop();
            await up.close();
          }
          assert.ok(!/unhandled|uncaught/i.test(out), `the proxy logged: ${out}`);
        },
      });
    }
  }
}
