/**
 * Linux network namespaces for in-pod capture (ztunnel's in-pod mode), behind one small module:
 * entering a pod's namespace for the synchronous part of creating a socket, the original
 * destination of a redirected connection (SO_ORIGINAL_DST, IPv4 and IPv6) and a dial made from
 * inside a pod.
 * Bun only: its node:net sockets expose their descriptor (`_handle.fd`) and can adopt a raw one
 * (`connect({ fd, fdIsRawSocket })`); Deno exposes neither, so in-pod mode refuses to start there.
 * libc is reached through bun:ffi, loaded with a dynamic import so Deno never resolves it.
 */
import { Socket } from "node:net";
import { WeftError } from "./errors.ts";
import { runtimeName } from "./runtime.ts";
import {
  AF_INET,
  AF_INET6,
  decodeSockaddr,
  encodeSockaddr,
  ipFamily,
  SOCKADDR_IN6_BYTES,
} from "./sockaddr.ts";

const CLONE_NEWNET = 0x40000000;
const O_RDONLY_CLOEXEC = 0x80000;
const SOCK_STREAM_NONBLOCK_CLOEXEC = 1 | 0x800 | 0x80000;
const SOL_SOCKET = 1;
const SO_ERROR = 4;
const SO_MARK = 36;
const IPPROTO_TCP = 6;
const TCP_NODELAY = 1;
const SOL_IP = 0;
const SOL_IPV6 = 41;
/** SO_ORIGINAL_DST (SOL_IP) and IP6T_SO_ORIGINAL_DST (SOL_IPV6) share the number. */
const SO_ORIGINAL_DST = 80;
const POLLOUT = 4;
const EINPROGRESS = 115;
/** ztunnel's socket mark (0x539): the pod's rules let packets carrying it through. */
export const WEFT_SOCKET_MARK = 0x539;
/** Mark of deliveries that keep the client's IP: the pod's rules route their replies back to
 * weft's socket (connmark + a local routing table, src/inpod/nft_rules.ts). */
export const WEFT_TRANSPARENT_MARK = 0x53a;
const IP_TRANSPARENT = 19;
const IPV6_TRANSPARENT = 75;

// deno-lint-ignore no-explicit-any
type Fn = (...a: any[]) => any;
interface Libc {
  readonly open: Fn;
  readonly close: Fn;
  readonly setns: Fn;
  readonly socket: Fn;
  readonly connect: Fn;
  readonly setsockopt: Fn;
  readonly bind: Fn;
  readonly getsockopt: Fn;
  readonly poll: Fn;
  readonly __errno_location: Fn;
}
interface Ffi {
  readonly libc: Libc;
  readonly ptr: (b: ArrayBufferView) => unknown;
  readonly readI32: (p: unknown) => number;
  readonly selfFd: number;
}

let ffi: Ffi | undefined;

/** Why in-pod capture cannot run in this runtime, or undefined when it can. */
export function netnsUnsupportedReason(): string | undefined {
  if (runtimeName !== "bun") {
    return `${runtimeName} exposes no socket descriptor, so the original destination of a ` +
      "redirected connection (SO_ORIGINAL_DST) cannot be read; run the node agent on Bun " +
      "(bun src/main.ts run, or the shipped binary)";
  }
  return undefined;
}

/** Load libc through bun:ffi once; rejects with a clear error on other runtimes. */
export async function loadNetns(): Promise<void> {
  if (ffi) return;
  const why = netnsUnsupportedReason();
  if (why) throw new WeftError("inpod_unsupported", `Cannot enable in-pod capture: ${why}`);
  const spec = "bun:ffi";
  const b = await import(spec);
  const T = b.FFIType;
  const lib = b.dlopen("libc.so.6", {
    open: { args: [T.ptr, T.i32], returns: T.i32 },
    close: { args: [T.i32], returns: T.i32 },
    setns: { args: [T.i32, T.i32], returns: T.i32 },
    socket: { args: [T.i32, T.i32, T.i32], returns: T.i32 },
    connect: { args: [T.i32, T.ptr, T.u32], returns: T.i32 },
    setsockopt: { args: [T.i32, T.i32, T.i32, T.ptr, T.u32], returns: T.i32 },
    bind: { args: [T.i32, T.ptr, T.u32], returns: T.i32 },
    getsockopt: { args: [T.i32, T.i32, T.i32, T.ptr, T.ptr], returns: T.i32 },
    poll: { args: [T.ptr, T.u64, T.i32], returns: T.i32 },
    __errno_location: { args: [], returns: T.ptr },
  });
  const libc = lib.symbols as Libc;
  const ptr = (v: ArrayBufferView): unknown => b.ptr(v);
  const selfFd = libc.open(ptr(cstr("/proc/self/ns/net")), O_RDONLY_CLOEXEC) as number;
  if (selfFd < 0) throw new WeftError("netns_open_failed", "Cannot open /proc/self/ns/net");
  ffi = { libc, ptr, readI32: (p) => b.read.i32(p, 0), selfFd };
}

function cstr(s: string): Uint8Array {
  return new TextEncoder().encode(s + "\0");
}

function lib(): Ffi {
  if (!ffi) throw new WeftError("inpod_not_loaded", "Cannot use netns: loadNetns() not called");
  return ffi;
}

function errno(f: Ffi): number {
  return f.readI32(f.libc.__errno_location());
}

/** An open network namespace (kept open by its descriptor while a pod is enrolled). */
export interface Netns {
  readonly path: string;
  readonly fd: number;
}

export function openNetns(path: string): Netns {
  const f = lib();
  const fd = f.libc.open(f.ptr(cstr(path)), O_RDONLY_CLOEXEC) as number;
  if (fd < 0) {
    throw new WeftError("netns_open_failed", `Cannot open network namespace ${path}`, {
      cause: `errno ${errno(f)}`,
    });
  }
  return { path, fd };
}

export function closeNetns(ns: Netns): void {
  lib().libc.close(ns.fd);
}

/** Run `fn` with this thread in `ns`; sockets created synchronously inside stay there. */
export function inNetns<T>(ns: Netns, fn: () => T): T {
  const f = lib();
  if (f.libc.setns(ns.fd, CLONE_NEWNET) !== 0) {
    throw new WeftError("netns_enter_failed", `Cannot enter network namespace ${ns.path}`, {
      cause: `errno ${errno(f)}`,
    });
  }
  let result: T;
  try {
    result = fn();
  } catch (e) {
    back(f);
    throw e;
  }
  back(f);
  return result;
}

/** Failing to come back would put every later socket in the pod: a broken invariant. */
function back(f: Ffi): void {
  if (f.libc.setns(f.selfFd, CLONE_NEWNET) !== 0) {
    throw new Error(`setns back to the agent's namespace failed (errno ${errno(f)})`);
  }
}

function fdOf(sock: Socket): number | undefined {
  const fd = (sock as unknown as { _handle?: { fd?: number } })._handle?.fd;
  return typeof fd === "number" && fd >= 0 ? fd : undefined;
}

/**
 * The destination a client dialled before the pod's nftables redirect, from conntrack through the
 * socket: IP6T_SO_ORIGINAL_DST for an IPv6 connection, SO_ORIGINAL_DST for an IPv4 one (also on
 * a dual-stack socket, where the kernel answers it for a v4-mapped connection).
 */
export function originalDst(sock: Socket): { host: string; port: number } | undefined {
  const f = lib();
  const fd = fdOf(sock);
  if (fd === undefined) return undefined;
  const v6 = ipFamily(sock.localAddress ?? "") === 6;
  const buf = new Uint8Array(SOCKADDR_IN6_BYTES);
  const len = new Uint32Array([buf.length]);
  const level = v6 ? SOL_IPV6 : SOL_IP;
  if (f.libc.getsockopt(fd, level, SO_ORIGINAL_DST, f.ptr(buf), f.ptr(len)) !== 0) {
    return undefined;
  }
  return decodeSockaddr(buf.subarray(0, len[0]));
}

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
 * the kernel refuses, the pod's own address. Resolves once connected.
 */
export function dialInNetns(
  ns: Netns,
  host: string,
  port: number,
  timeoutMs: number,
  sourceIp?: string,
): Promise<Socket> {
  const f = lib();
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
