/**
 * Dials made from inside a pod's network namespace (netns.ts has the namespace side). On Bun: a
 * raw non-blocking socket made in the pod, marked (SO_MARK) before connect so the pod's rules let
 * it through, optionally bound to a client's address (IP_TRANSPARENT / IPV6_TRANSPARENT), then
 * adopted by node:net. On Deno: `Deno.connect` inside the pod, unmarked (netns_deno.ts).
 */
import { Socket } from "node:net";
import type { Duplex } from "node:stream";
import { errorMessage, WeftError } from "./errors.ts";
import { joinHostPort } from "./ip.ts";
import { AF_INET, AF_INET6, encodeSockaddr, ipFamily } from "./sockaddr.ts";
import {
  errno,
  type Ffi,
  inNetns,
  lib,
  type Netns,
  WEFT_SOCKET_MARK,
  WEFT_TRANSPARENT_MARK,
} from "./netns.ts";

const SOCK_STREAM_NONBLOCK_CLOEXEC = 1 | 0x800 | 0x80000;
const SOL_SOCKET = 1;
const SO_ERROR = 4;
const SO_MARK = 36;
const IPPROTO_TCP = 6;
const TCP_NODELAY = 1;
const SOL_IP = 0;
const SOL_IPV6 = 41;
const IP_TRANSPARENT = 19;
const IPV6_TRANSPARENT = 75;
const POLLOUT = 4;
const EINPROGRESS = 115;

/** Non-blocking check of a pending connect: undefined = still in progress, 0 = done, else errno. */
function connectState(f: Ffi, fd: number): number | undefined {
  const pfd = new Uint8Array(8);
  new DataView(pfd.buffer).setInt32(0, fd, true);
  new DataView(pfd.buffer).setInt16(4, POLLOUT, true);
  const n = f.libc.poll(f.ptr(pfd), 1, 0) as number;
  if (n === 0) return undefined;
  const v = new Int32Array(1);
  const len = new Uint32Array([4]);
  f.libc.getsockopt(fd, SOL_SOCKET, SO_ERROR, f.ptr(v), f.ptr(len));
  return v[0]!;
}

function setInt(f: Ffi, fd: number, level: number, opt: number, v: number): boolean {
  return f.libc.setsockopt(fd, level, opt, f.ptr(new Int32Array([v])), 4) === 0;
}

/** A marked, Nagle-free socket of `family` made in `ns`; bound to `source` (IP_TRANSPARENT or
 * IPV6_TRANSPARENT) when given and of the same family. */
function podSocket(f: Ffi, ns: Netns, family: 4 | 6, source: Uint8Array | undefined): number {
  const af = family === 4 ? AF_INET : AF_INET6;
  const fd = inNetns(ns, () => f.libc.socket(af, SOCK_STREAM_NONBLOCK_CLOEXEC, 0) as number);
  if (fd < 0) throw new WeftError("connect_failed", `Cannot create a socket in ${ns.path}`);
  // Before connect: the adopted socket never goes through node:net's own setNoDelay path.
  setInt(f, fd, IPPROTO_TCP, TCP_NODELAY, 1);
  const [level, opt] = family === 4 ? [SOL_IP, IP_TRANSPARENT] : [SOL_IPV6, IPV6_TRANSPARENT];
  const transparent = source !== undefined && source[0] === af && setInt(f, fd, level, opt, 1) &&
    f.libc.bind(fd, f.ptr(source), source.length) === 0;
  setInt(f, fd, SOL_SOCKET, SO_MARK, transparent ? WEFT_TRANSPARENT_MARK : WEFT_SOCKET_MARK);
  return fd;
}

/**
 * TCP connection made from inside `ns` (IPv4 or IPv6), its socket marked so the pod's rules never
 * redirect it back to weft. With `sourceIp`, the connection keeps that address as its source
 * (IP_TRANSPARENT, as ztunnel delivers inbound traffic); without it, of the other family, or if
 * the kernel refuses, the pod's own address. Resolves once connected. On Deno: no mark, no
 * transparent source (see the file comment).
 */
export function dialInNetns(
  ns: Netns,
  host: string,
  port: number,
  timeoutMs: number,
  sourceIp?: string,
): Promise<Duplex> {
  const f = lib();
  if (f.deno) {
    return f.deno.connectIn((fn) => inNetns(ns, fn), host, port, timeoutMs).catch((e) => {
      throw new WeftError(
        "connect_failed",
        `Cannot connect to ${joinHostPort(host, port)} in ${ns.path}: ${errorMessage(e)}`,
      );
    });
  }
  const sa = encodeSockaddr(host, port);
  const family = ipFamily(host);
  if (!sa || !family) {
    return Promise.reject(new WeftError("connect_failed", `Cannot dial ${host}: not an IP`));
  }
  let fd: number;
  try {
    fd = podSocket(f, ns, family, sourceIp ? encodeSockaddr(sourceIp, 0) : undefined);
  } catch (e) {
    return Promise.reject(e);
  }
  const rc = f.libc.connect(fd, f.ptr(sa), sa.length) as number;
  const err = rc === 0 ? 0 : errno(f);
  const fail = (code: number): WeftError => {
    f.libc.close(fd);
    return new WeftError(
      code === -1 ? "connect_timeout" : "connect_failed",
      `Cannot connect to ${host}:${port} in ${ns.path}: ${
        code === -1 ? "timed out" : `errno ${code}`
      }`,
    );
  };
  if (err !== 0 && err !== EINPROGRESS) return Promise.reject(fail(err));
  const deadline = performance.now() + timeoutMs;
  return new Promise((resolve, reject) => {
    const check = (): void => {
      const state = err === 0 ? 0 : connectState(f, fd);
      if (state === 0) {
        const s = new Socket({ allowHalfOpen: true });
        (s as unknown as { connect(o: unknown): void }).connect({ fd, fdIsRawSocket: true });
        return resolve(s);
      }
      if (state !== undefined) return reject(fail(state));
      if (performance.now() > deadline) return reject(fail(-1));
      setTimeout(check, 1);
    };
    check();
  });
}
