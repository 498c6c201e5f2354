/**
 * The floor of a two-hop forwarder pair on Bun: plain TCP both hops (no TLS, no framing, no weft
 * logic), native sockets (`Bun.listen`/`Bun.connect`), one upstream connection per client
 * connection, bytes copied as they come with the kernel's backpressure. Usage (Bun only):
 *   bun bench/l4_tcp_pair.ts <dir> a|b <vipPort> <upstreamPort>
 * Node A listens on the VIP and forwards to node B on IP.server:15008; node B forwards to
 * IP.server:<upstreamPort>. bench/l4_ab.ts runs it as the tree `tcp-pair`.
 */
import process from "node:process";
import { IP } from "./l4_peers.ts";

// deno-lint-ignore no-explicit-any
const Bun = (globalThis as any).Bun;
const [, side, vipPort, upPort] = process.argv.slice(2) as [string, "a" | "b", string, string];
const [host, port, target] = side === "a"
  ? [IP.vip, Number(vipPort), { hostname: IP.server, port: 15008 }]
  : [IP.server, 15008, { hostname: IP.server, port: Number(upPort) }];

/** What one side could not write yet (resent on `drain`); the other side pauses meanwhile. */
interface Link {
  peer: BunSocket | undefined;
  early: Uint8Array[];
  pending: Uint8Array | undefined;
  other: Link | undefined;
}
interface BunSocket {
  data: Link;
  write(b: Uint8Array): number;
  end(): void;
  pause(): void;
  resume(): void;
}

function send(l: Link, from: BunSocket, b: Uint8Array): void {
  if (!l.peer) return void l.early.push(b);
  const n = l.peer.write(b);
  if (n < b.length) {
    l.pending = b.subarray(Math.max(0, n));
    from.pause();
  }
}

const handlers = {
  data(s: BunSocket, b: Uint8Array): void {
    send(s.data, s, b);
  },
  drain(s: BunSocket): void {
    const o = s.data.other;
    if (!o?.pending || !o.peer) return;
    const b = o.pending;
    o.pending = undefined;
    send(o, o.peer === s ? (s.data.peer as BunSocket) : s, b);
    if (!o.pending) s.data.peer?.resume();
  },
  end(s: BunSocket): void {
    s.data.peer?.end();
  },
  close(s: BunSocket): void {
    s.data.peer?.end();
  },
  error(): void {},
};

Bun.listen({
  hostname: host,
  port,
  socket: {
    ...handlers,
    open(down: BunSocket): void {
      const d: Link = { peer: undefined, early: [], pending: undefined, other: undefined };
      down.data = d;
      Bun.connect({
        ...target,
        socket: {
          ...handlers,
          open(up: BunSocket): void {
            const u: Link = { peer: down, early: [], pending: undefined, other: d };
            d.other = u;
            up.data = u;
            d.peer = up;
            for (const b of d.early.splice(0)) send(d, down, b);
          },
          connectError(): void {
            down.end();
          },
        },
      }).catch(() => down.end());
    },
  },
});
process.stdout.write('{"msg":"ready"}\n');
process.on("SIGTERM", () => process.exit(0));
