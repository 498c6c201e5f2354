/**
 * The WASI preview1 functions proxy-wasm SDK builds import, registered under both
 * `wasi_snapshot_preview1` and `wasi_unstable`. stdout/stderr become log lines; the environment
 * is the plugin's own (never the proxy's); there are no files and no arguments. `proc_exit` is a
 * trap ("never called" per the spec; AssemblyScript's abort lands here).
 */
import { WasiErrno } from "./abi.ts";
import { OutOfBounds } from "./guest_memory.ts";
import { GuestFailure, type ProxyWasmVm, StartExit } from "./vm.ts";

type WasiFn = (...a: (number | bigint)[]) => number;

const CHARACTER_DEVICE = 2;
const IOV_MAX = 1024;
const EVENT_SIZE = 32;
const SUBSCRIPTION_SIZE = 48;

function guard(fn: () => number): number {
  try {
    return fn();
  } catch (e) {
    if (e instanceof OutOfBounds) return WasiErrno.FAULT;
    throw e;
  }
}

export function wasiFunctions(vm: ProxyWasmVm): Record<string, WasiFn> {
  const m = vm.mem;
  const enc = new TextEncoder();
  const env = vm.settings.env.map((e) => enc.encode(e + "\0"));
  const n = (v: number | bigint): number => Number(v) >>> 0;
  return {
    fd_write: (fd, iovs, count, writtenPtr) =>
      guard(() => {
        if (fd !== 1 && fd !== 2) return WasiErrno.BADF;
        // POSIX IOV_MAX: a guest passing millions of (empty) iovecs would otherwise make the
        // host walk them all (and hold one array per entry) inside one call.
        if (n(count) > IOV_MAX) return WasiErrno.INVAL;
        const parts: Uint8Array[] = [];
        let total = 0;
        for (let i = 0; i < n(count); i++) {
          const base = n(iovs) + i * 8;
          const chunk = m.read(m.u32(base), m.u32(base + 4));
          parts.push(chunk);
          total += chunk.length;
        }
        const all = new Uint8Array(total);
        let at = 0;
        for (const p of parts) {
          all.set(p, at);
          at += p.length;
        }
        const text = new TextDecoder().decode(all).replace(/\n$/, "");
        const fields = { plugin: vm.settings.name, message: text };
        if (fd === 1) vm.log.info("proxy-wasm plugin stdout", fields);
        else vm.log.error("proxy-wasm plugin stderr", fields);
        m.setU32(n(writtenPtr), total);
        return WasiErrno.SUCCESS;
      }),
    clock_time_get: (id, _precision, ptr) =>
      guard(() => {
        let ns: bigint;
        if (id === 0) ns = BigInt(Date.now()) * 1_000_000n;
        else if (id === 1) ns = BigInt(Math.round(performance.now() * 1e6));
        else return WasiErrno.NOTSUP;
        m.setU64(n(ptr), ns);
        return WasiErrno.SUCCESS;
      }),
    clock_res_get: (id, ptr) =>
      guard(() => {
        if (id !== 0 && id !== 1) return WasiErrno.NOTSUP;
        m.setU64(n(ptr), 1000n);
        return WasiErrno.SUCCESS;
      }),
    random_get: (buf, len) =>
      guard(() => {
        const total = n(len);
        if (total > 64 * 1024 * 1024) return WasiErrno.INVAL;
        for (let off = 0; off < total; off += 65536) {
          const chunk = new Uint8Array(Math.min(65536, total - off));
          crypto.getRandomValues(chunk);
          m.write(n(buf) + off, chunk);
        }
        return WasiErrno.SUCCESS;
      }),
    environ_sizes_get: (countPtr, sizePtr) =>
      guard(() => {
        m.setU32(n(countPtr), env.length);
        m.setU32(n(sizePtr), env.reduce((a, e) => a + e.length, 0));
        return WasiErrno.SUCCESS;
      }),
    environ_get: (ptrs, buf) =>
      guard(() => {
        let at = n(buf);
        env.forEach((e, i) => {
          m.setU32(n(ptrs) + i * 4, at);
          m.write(at, e);
          at += e.length;
        });
        return WasiErrno.SUCCESS;
      }),
    args_sizes_get: (countPtr, sizePtr) =>
      guard(() => {
        m.setU32(n(countPtr), 0);
        m.setU32(n(sizePtr), 0);
        return WasiErrno.SUCCESS;
      }),
    args_get: () => WasiErrno.SUCCESS,
    proc_exit: (code) => {
      // A command module (TinyGo, Go) may exit(0) at the end of _start: that is a normal start.
      if (vm.callback === "start" && Number(code) === 0) throw new StartExit();
      throw new GuestFailure("trap", `plugin called proc_exit(${Number(code)})`);
    },
    sched_yield: () => WasiErrno.SUCCESS,
    // No real waiting: every subscription is reported as fired (clocks) or ready.
    poll_oneoff: (inPtr, outPtr, count, neventsPtr) =>
      guard(() => {
        for (let i = 0; i < n(count); i++) {
          const sub = n(inPtr) + i * SUBSCRIPTION_SIZE;
          const ev = n(outPtr) + i * EVENT_SIZE;
          m.write(ev, m.read(sub, 8)); // userdata
          m.setU16(ev + 8, WasiErrno.SUCCESS);
          m.setU8(ev + 10, m.read(sub + 8, 1)[0]!); // event type = subscription tag
        }
        m.setU32(n(neventsPtr), n(count));
        return WasiErrno.SUCCESS;
      }),
    fd_fdstat_get: (fd, ptr) =>
      guard(() => {
        if (n(fd) > 2) return WasiErrno.BADF;
        m.write(n(ptr), new Uint8Array(24));
        m.setU8(n(ptr), CHARACTER_DEVICE);
        return WasiErrno.SUCCESS;
      }),
    fd_fdstat_set_flags: (fd) => (n(fd) > 2 ? WasiErrno.BADF : WasiErrno.SUCCESS),
    fd_prestat_get: () => WasiErrno.BADF, // no preopened directories
    fd_prestat_dir_name: () => WasiErrno.BADF,
  };
}
