/**
 * The few `env.*` functions Emscripten-built C++ filters import besides `proxy_*` (cpp-host
 * registers `pthread_equal` and `emscripten_notify_memory_growth`). Semantics matter:
 * `pthread_equal` returns nonzero iff the two ids are equal — a stub answering 12 reads as
 * "equal" and breaks libc++'s once-flags and mutex checks at VM start.
 */
import { GuestFailure, type ProxyWasmVm } from "./vm.ts";

// deno-lint-ignore no-explicit-any
type AnyFn = (...a: any[]) => any;

/** A single-threaded VM: every thread id is this one. */
const MAIN_THREAD = 1;

export function emscriptenFunctions(vm: ProxyWasmVm): Record<string, AnyFn> {
  return {
    pthread_equal: (a: number, b: number): number => ((a >>> 0) === (b >>> 0) ? 1 : 0),
    pthread_self: (): number => MAIN_THREAD,
    // Memory views are re-derived on growth by GuestMemory; nothing to do.
    emscripten_notify_memory_growth: (): void => {},
    emscripten_memcpy_big: (dest: number, src: number, n: number): number => {
      vm.mem.copyWithin(dest >>> 0, src >>> 0, n >>> 0);
      return dest;
    },
    // Growing from outside would bypass the sandbox's memory clamp: report failure, as a VM at
    // its maximum does; the guest's allocator then returns NULL.
    emscripten_resize_heap: (): number => 0,
    abort: (): never => {
      throw new GuestFailure("trap", "plugin called abort()");
    },
  };
}
