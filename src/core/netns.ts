/**
 * Linux network namespaces for in-pod capture (ztunnel's in-pod mode), behind one small module:
 * entering a pod's namespace for the synchronous part of creating a socket, the original
 * destination of a redirected connection (IPv4 and IPv6) and a dial made from inside a pod.
 * On Bun (libc through bun:ffi) node:net sockets expose their descriptor (`_handle.fd`) and can
 * adopt a raw one (`connect({ fd, fdIsRawSocket })`): SO_ORIGINAL_DST on the accepted socket, and
 * dials from a socket made in the pod with SO_MARK (and IP_TRANSPARENT to keep a client's IP).
 * On Deno (libc through Deno.dlopen, netns_deno.ts) sockets expose no descriptor: the original
 * destination comes from conntrack over netlink, dials are `Deno.connect` inside the pod with no
 * mark, so only those the pod's rules let through unmarked (to port 15008, to the pod itself)
 * are made from the pod (canMark() false: callers dial the rest from the node), and a delivery
 * keeps the pod's own address as its source. node:net's listen binds on a later tick in Deno,
 * so listenInNetns stays in the namespace until that tick has run. Each runtime's FFI module is
 * loaded with a dynamic import, so the other never resolves it.
 */
import { Socket } from "node:net";
import process from "node:process";
import { WeftError } from "./errors.ts";
import { runtimeName } from "./runtime.ts";
import { decodeSockaddr, ipFamily, SOCKADDR_IN6_BYTES } from "./sockaddr.ts";

const CLONE_NEWNET = 0x40000000;
const O_RDONLY_CLOEXEC = 0x80000;
const SOL_IP = 0;
const SOL_IPV6 = 41;
/** SO_ORIGINAL_DST (SOL_IP) and IP6T_SO_ORIGINAL_DST (SOL_IPV6) share the number. */
const SO_ORIGINAL_DST = 80;
/** ztunnel's socket mark (0x539): the pod's rules let packets carrying it through. */
export const WEFT_SOCKET_MARK = 0x539;
/** Mark of deliveries that keep the client's IP: the pod's rules route their replies back to
 * weft's socket (connmark + a local routing table, src/inpod/nft_rules.ts). */
export const WEFT_TRANSPARENT_MARK = 0x53a;

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
/** @internal */
export interface Ffi {
  readonly libc: Libc;
  readonly ptr: (b: ArrayBufferView) => unknown;
  readonly readI32: (p: unknown) => number;
  readonly selfFd: number;
  /** Deno's FFI side (netns_deno.ts), undefined on Bun. */
  readonly deno: typeof import("./netns_deno.ts") | undefined;
}

let ffi: Ffi | undefined;

/** Why in-pod capture cannot run in this runtime, or undefined when it can. */
export function netnsUnsupportedReason(): string | undefined {
  if (runtimeName === "node") {
    return "Node's sockets expose no descriptor and it has no FFI for setns; run the node agent " +
      "on Bun (bun src/main.ts run, or the shipped binary) or Deno";
  }
  return undefined;
}

/** Load libc (bun:ffi or Deno.dlopen) once; rejects with a clear error on other runtimes. */
export async function loadNetns(): Promise<void> {
  if (ffi) return;
  const why = netnsUnsupportedReason();
  if (why) throw new WeftError("inpod_unsupported", `Cannot enable in-pod capture: ${why}`);
  if (runtimeName === "deno") {
    const deno = await import("./netns_deno.ts");
    const f = deno.loadDenoFfi();
    ffi = { ...f, libc: f.libc as unknown as Libc, selfFd: openSelf(f.libc, f.ptr), deno };
    return;
  }
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
  ffi = {
    libc,
    ptr,
    readI32: (p) => b.read.i32(p, 0),
    selfFd: openSelf(libc, ptr),
    deno: undefined,
  };
}

function openSelf(libc: { open: Fn }, ptr: (b: ArrayBufferView) => unknown): number {
  const fd = libc.open(ptr(cstr("/proc/self/ns/net")), O_RDONLY_CLOEXEC) as number;
  if (fd < 0) throw new WeftError("netns_open_failed", "Cannot open /proc/self/ns/net");
  return fd;
}

/** Whether dials from a pod can carry weft's socket mark (Bun); on Deno only dials the pod's
 * rules let through unmarked may be made from the pod. */
export function canMark(): boolean {
  return lib().deno === undefined;
}

function cstr(s: string): Uint8Array {
  return new TextEncoder().encode(s + "\0");
}

/** @internal libc as loaded (netns_dial.ts). */
export function lib(): Ffi {
  if (!ffi) throw new WeftError("inpod_not_loaded", "Cannot use netns: loadNetns() not called");
  return ffi;
}

/** @internal */
export function errno(f: Ffi): number {
  return f.readI32(f.libc.__errno_location());
}

/** An open network namespace (kept open by its descriptor while a pod is enrolled). */
export interface Netns {
  readonly path: string;
  readonly fd: number;
  /** Deno: the pod's NETLINK_NETFILTER socket for conntrack lookups (-1 on Bun). */
  readonly nl: number;
}

const AF_NETLINK = 16;
const SOCK_RAW_CLOEXEC = 3 | 0x80000;
const NETLINK_NETFILTER = 12;

export function openNetns(path: string): Netns {
  const f = lib();
  const fd = f.libc.open(f.ptr(cstr(path)), O_RDONLY_CLOEXEC) as number;
  if (fd < 0) {
    throw new WeftError("netns_open_failed", `Cannot open network namespace ${path}`, {
      cause: `errno ${errno(f)}`,
    });
  }
  if (!f.deno) return { path, fd, nl: -1 };
  // Conntrack is per namespace: the pod's lookups go through a socket made inside it.
  const ns = { path, fd, nl: -1 };
  const nl = inNetns(ns, () => f.libc.socket(AF_NETLINK, SOCK_RAW_CLOEXEC, NETLINK_NETFILTER));
  if (nl < 0) {
    f.libc.close(fd);
    throw new WeftError("netns_open_failed", `Cannot open a conntrack socket in ${path}`, {
      cause: `errno ${errno(f)}`,
    });
  }
  return { ...ns, nl };
}

export function closeNetns(ns: Netns): void {
  if (ns.nl >= 0) lib().libc.close(ns.nl);
  lib().libc.close(ns.fd);
}

/**
 * Run `listen` (a node:net or node:tls `server.listen` call) so that its socket is bound inside
 * `ns`. Bun binds during the call. Deno's node:net binds on the tick queue: the namespace is
 * entered at the start of a fresh macrotask (so no earlier tick runs inside it), `listen` queues
 * its bind, and the next tick returns. Entering is tried once synchronously, so a namespace
 * that cannot be entered throws to the caller (later failures go to `onError`).
 */
export function listenInNetns(
  ns: Netns,
  listen: () => void,
  onError: (e: unknown) => void,
): void {
  const f = lib();
  if (!f.deno) return inNetns(ns, listen);
  inNetns(ns, () => {});
  setImmediate(() => {
    try {
      enter(f, ns);
    } catch (e) {
      return onError(e);
    }
    try {
      listen();
    } catch (e) {
      onError(e);
    } finally {
      process.nextTick(() => back(f));
    }
  });
}

/** Run `fn` with this thread in `ns`; sockets created synchronously inside stay there. */
export function inNetns<T>(ns: Netns, fn: () => T): T {
  const f = lib();
  enter(f, ns);
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

function enter(f: Ffi, ns: Netns): void {
  if (f.libc.setns(ns.fd, CLONE_NEWNET) !== 0) {
    throw new WeftError("netns_enter_failed", `Cannot enter network namespace ${ns.path}`, {
      cause: `errno ${errno(f)}`,
    });
  }
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
export function originalDst(
  sock: Socket,
  ns: Netns,
): { host: string; port: number } | undefined {
  const f = lib();
  if (f.deno) {
    const { localAddress, localPort, remoteAddress, remotePort } = sock;
    if (!localAddress || !localPort || !remoteAddress || !remotePort) return undefined;
    return f.deno.conntrackOriginalDst(f.libc as unknown as { send: Fn; recv: Fn }, ns.nl, {
      host: localAddress,
      port: localPort,
    }, { host: remoteAddress, port: remotePort });
  }
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
