/**
 * Deno's half of netns.ts (loaded only on Deno): libc through `Deno.dlopen` (setns, and a
 * netlink socket per pod for conntrack), dials made from inside a pod with `Deno.connect` (its
 * socket is created while the call is dispatched, so in the namespace entered around it) as a
 * node:stream Duplex, and the original destination of a redirected connection from conntrack:
 * Deno's sockets expose no descriptor, so neither SO_ORIGINAL_DST nor SO_MARK/IP_TRANSPARENT
 * can be used (see netns.ts for what that changes).
 */
import { Duplex } from "node:stream";
import { conntrackGetByReply, type Endpoint, parseConntrackReply } from "./conntrack.ts";

const MSG_DONTWAIT = 0x40;
const READ_BYTES = 64 * 1024;

// deno-lint-ignore no-explicit-any
type Fn = (...a: any[]) => any;

/** libc as netns.ts calls it (pointers are plain buffers on Deno). */
export interface DenoFfi {
  readonly libc: {
    readonly open: Fn;
    readonly close: Fn;
    readonly setns: Fn;
    readonly socket: Fn;
    readonly send: Fn;
    readonly recv: Fn;
    readonly __errno_location: Fn;
  };
  readonly ptr: (b: ArrayBufferView) => unknown;
  readonly readI32: (p: unknown) => number;
}

export function loadDenoFfi(): DenoFfi {
  const lib = Deno.dlopen("libc.so.6", {
    open: { parameters: ["buffer", "i32"], result: "i32" },
    close: { parameters: ["i32"], result: "i32" },
    setns: { parameters: ["i32", "i32"], result: "i32" },
    socket: { parameters: ["i32", "i32", "i32"], result: "i32" },
    send: { parameters: ["i32", "buffer", "usize", "i32"], result: "isize" },
    recv: { parameters: ["i32", "buffer", "usize", "i32"], result: "isize" },
    __errno_location: { parameters: [], result: "pointer" },
  });
  return {
    libc: lib.symbols,
    ptr: (b) => b,
    readI32: (p) => new Deno.UnsafePointerView(p as Deno.PointerObject).getInt32(),
  };
}

let seq = 0;

/** One conntrack lookup on the pod's netlink socket `nl`: the kernel answers while `send`
 * runs, so the reply is read without waiting. Undefined when there is no such connection. */
export function conntrackOriginalDst(
  libc: { readonly send: Fn; readonly recv: Fn },
  nl: number,
  local: Endpoint,
  remote: Endpoint,
): Endpoint | undefined {
  seq = (seq + 1) >>> 0;
  const q = conntrackGetByReply(local, remote, seq);
  if (!q) return undefined;
  if (Number(libc.send(nl, q, BigInt(q.length), 0)) !== q.length) return undefined;
  const buf = new Uint8Array(4096);
  const n = Number(libc.recv(nl, buf, BigInt(buf.length), MSG_DONTWAIT));
  if (n <= 0) return undefined;
  const r = parseConntrackReply(buf.subarray(0, n), seq);
  return typeof r === "object" && "dst" in r ? r.dst : undefined;
}

/** A Deno.Conn as the Duplex the data path takes (half-close: `end()` is closeWrite). */
export function duplexOfConn(conn: Deno.TcpConn): Duplex {
  let reading = false;
  const d: Duplex = new Duplex({
    allowHalfOpen: true,
    read(): void {
      if (reading) return;
      reading = true;
      const buf = new Uint8Array(READ_BYTES);
      conn.read(buf).then((n) => {
        reading = false;
        // A small read is copied, so it does not pin the whole read buffer while queued.
        const chunk = n === null ? null : n < READ_BYTES / 4 ? buf.slice(0, n) : buf.subarray(0, n);
        if (d.push(chunk) && chunk) d.read(0);
      }, (e) => d.destroy(e));
    },
    write(chunk: Uint8Array, _enc, cb): void {
      (async () => {
        for (let off = 0; off < chunk.length;) off += await conn.write(chunk.subarray(off));
      })().then(() => cb(), cb);
    },
    final(cb): void {
      conn.closeWrite().then(() => cb(), cb);
    },
    destroy(err, cb): void {
      try {
        conn.close();
      } catch { /* already closed */ }
      cb(err);
    },
  });
  const local = conn.localAddr;
  const remote = conn.remoteAddr;
  Object.assign(d, {
    localAddress: local.hostname,
    localPort: local.port,
    remoteAddress: remote.hostname,
    remotePort: remote.port,
    setNoDelay: () => d,
  });
  conn.setNoDelay(true);
  return d;
}

/** A TCP connection created by `enter` (which runs its argument inside a pod's namespace). */
export async function connectIn(
  enter: <T>(fn: () => T) => T,
  host: string,
  port: number,
  timeoutMs: number,
): Promise<Duplex> {
  const pending = enter(() => Deno.connect({ hostname: host, port }));
  let timer: ReturnType<typeof setTimeout> | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error("timed out")), timeoutMs);
  });
  try {
    return duplexOfConn(await Promise.race([pending, timeout]));
  } catch (e) {
    pending.then((c) => c.close(), () => {});
    throw e;
  } finally {
    clearTimeout(timer);
  }
}
