/**
 * The one place for runtime-specific calls, so weft stays runnable on Deno and Bun: environment,
 * signals, exit, monotonic time. Everything else uses web or node: APIs both runtimes provide.
 */
// deno-lint-ignore no-explicit-any
const g = globalThis as any;
export const runtimeName: "deno" | "bun" | "node" = g.Deno ? "deno" : g.Bun ? "bun" : "node";

/** "deno 2.9.6", "bun 1.4.5", "node v20.x". */
export function runtimeVersion(): string {
  if (g.Deno) return `deno ${g.Deno.version.deno}`;
  if (g.Bun) return `bun ${g.Bun.version}`;
  return `node ${g.process?.version ?? "?"}`;
}

export function env(name: string): string | undefined {
  if (g.Deno) {
    try {
      return g.Deno.env.get(name);
    } catch {
      return undefined;
    }
  }
  return g.process?.env?.[name];
}

export function onSignal(signal: "SIGTERM" | "SIGINT", fn: () => void): () => void {
  if (g.Deno) {
    g.Deno.addSignalListener(signal, fn);
    return () => g.Deno.removeSignalListener(signal, fn);
  }
  g.process.on(signal, fn);
  return () => g.process.off(signal, fn);
}

export function exit(code: number): never {
  if (g.Deno) g.Deno.exit(code);
  g.process.exit(code);
  throw new Error("unreachable");
}

export function args(): string[] {
  return g.Deno ? [...g.Deno.args] : g.process.argv.slice(2);
}

/**
 * The collector and JIT settings weft's binary runs with unless the operator sets them. Bun reads
 * them once, when its VM starts, from the environment only (no flag, no run-time setter).
 *
 * BUN_GC_TIMER_DISABLE=1: Bun's own GC timer (on top of JavaScriptCore's allocation-driven eden
 * collections and activity timers) starts an asynchronous collection every second while the heap
 * size changes; on a proxy under steady traffic it always does: ~1 collection a second per node at
 * 1k req/s, each a 0.5-4 ms stop of every tunnel it carries. Without it, JavaScriptCore's own
 * triggers collect as the heap grows (bench/l4_ab.ts --gc, both nodes over 10 s at 1k req/s: 18-22
 * collections → 4-8; idle and peak RSS unchanged). weft's own releaseMemory after start-up and
 * after bursts keeps returning memory to the OS.
 * Set BUN_GC_TIMER_DISABLE=0 to keep Bun's timer.
 *
 * BUN_JSC_thresholdForBBQOptimizeAfterWarmUp=20000 (JavaScriptCore's default 50): a wasm function
 * is compiled by the BBQ JIT only after that much use in the in-place interpreter, so configuring
 * the L7 filters at load (their JSON parsing, run a few times) stays in the interpreter and the
 * BBQ compiler's code is never touched on an idle node (bench:idle, alternated: the three-filter
 * node 48.2–48.3 → 47.4–47.7 MB); under traffic the filters' per-request functions cross it within
 * a fraction of a second. Set it to 50 for JavaScriptCore's default.
 */
export const GC_DEFAULTS: Readonly<Record<string, string>> = Object.freeze({
  BUN_GC_TIMER_DISABLE: "1",
  BUN_JSC_thresholdForBBQOptimizeAfterWarmUp: "20000",
});

/** The collector settings in effect (Bun; undefined elsewhere), for the ready line and
 * /config_dump: Bun's GC timer, whether it is weft's default or the operator's, and every
 * BUN_JSC_* option the process started with (weft's defaults among them). */
export function gcSetting(): Record<string, unknown> | undefined {
  if (!g.Bun) return undefined;
  const e = g.process.env as Record<string, string | undefined>;
  const timer = e.BUN_GC_TIMER_DISABLE;
  const off = timer !== undefined && !["", "0", "false"].includes(timer);
  const jsc = Object.fromEntries(Object.entries(e).filter(([k]) => k.startsWith("BUN_JSC_")));
  return {
    bunGcTimer: off ? "off" : "on",
    source: timer === undefined
      ? "bun default"
      : (e.WEFT_GC_DEFAULTS_SET ?? "").split(",").includes(`BUN_GC_TIMER_DISABLE=${timer}`)
      ? "weft default"
      : "environment",
    ...(Object.keys(jsc).length > 0 ? { jsc } : {}),
    // The binary could not re-execute itself with GC_DEFAULTS (execWithGcDefaults): why.
    ...(reexecFailure !== undefined ? { reexec: reexecFailure } : {}),
    // An xDS node before its first sync (settleAfterStart's holdJitMs).
    ...(jitHold !== undefined ? { startupJit: "held" } : {}),
  };
}

/**
 * The compiled binary (Bun) started without GC_DEFAULTS' variables replaces itself with the same
 * executable, arguments and environment plus those defaults (execve: same pid, so a supervisor
 * or a container runtime sees nothing), before it reads config or binds a port. A variable the
 * operator set, to any value, is left as it is. Returns (doing nothing) on Deno, on `bun src/…`,
 * when every default is already set, or when execve fails: the node then runs on Bun's defaults,
 * and gcSetting's `reexec` (the ready line, /config_dump `node.gc`) says why.
 */
export async function execWithGcDefaults(): Promise<void> {
  if (!g.Bun || !String(g.Bun.main).startsWith("/$bunfs/")) return;
  const e = g.process.env as Record<string, string | undefined>;
  const missing = Object.entries(GC_DEFAULTS).filter(([k]) => e[k] === undefined);
  if (missing.length === 0) return;
  try {
    const spec = "bun:ffi";
    const b = await import(spec);
    const T = b.FFIType;
    const libc = b.dlopen("libc.so.6", {
      execve: { args: [T.ptr, T.ptr, T.ptr], returns: T.i32 },
      __errno_location: { args: [], returns: T.ptr },
    });
    const enc = new TextEncoder();
    const held: Uint8Array[] = []; // the strings must outlive the call
    const cstr = (s: string): unknown => {
      const bytes = enc.encode(s + "\0");
      held.push(bytes);
      return b.ptr(bytes);
    };
    const vec = (list: string[]): unknown => {
      const a = new BigUint64Array(list.length + 1); // NULL-terminated char*[]
      list.forEach((s, i) => a[i] = BigInt(cstr(s) as number));
      return b.ptr(a);
    };
    const set = missing.map(([k, v]) => `${k}=${v}`);
    const env = [
      ...Object.entries(e).filter(([, v]) => v !== undefined).map(([k, v]) => `${k}=${v}`),
      ...set,
      // What weft added, for gcSetting's `source`.
      `WEFT_GC_DEFAULTS_SET=${set.join(",")}`,
    ];
    const argv = [String(g.process.argv0), ...g.process.argv.slice(2)];
    libc.symbols.execve(cstr(g.process.execPath), vec(argv), vec(env));
    // Only reached when execve failed: run on as started.
    const errno = b.read.i32(libc.symbols.__errno_location(), 0) as number;
    reexecFailure = `execve failed (errno ${errno})`;
  } catch (e) {
    // No bun:ffi or no libc.so.6 (not a glibc system): run on as started.
    reexecFailure = `not attempted: ${e instanceof Error ? e.message : String(e)}`;
  }
}

let reexecFailure: string | undefined;

/** Resident set size in bytes (for /config_dump and benches). */
export function rssBytes(): number {
  if (g.Deno) return g.Deno.memoryUsage().rss;
  return g.process.memoryUsage().rss;
}

/**
 * Once a node is ready (Bun): the normal JIT policy again (the compiled binary starts with
 * reluctant tier-up, tools/bun_compile.ts), then start-up garbage back to the OS — a full
 * collection, JSC's shrink and mimalloc's purge: parsing the config and issuing certificates
 * leave a few MB of dead heap an idle node would otherwise keep resident.
 *
 * `holdJitMs` (a node taking its config over xDS): release the memory now but keep the reluctant
 * policy until settleAfterStart() is called again (its first xDS sync applied: that sync is its
 * real start-up, whose one-off work — decoding, translation, the first filter loads — would
 * otherwise get the optimizing JITs' code compiled and kept resident) or `holdJitMs` has passed
 * (a control plane that never answers), whichever comes first.
 */
export function settleAfterStart(opts: { holdJitMs?: number } = {}): void {
  if (jitHold !== undefined) clearTimeout(jitHold);
  jitHold = undefined;
  const hold = opts.holdJitMs;
  if (hold !== undefined && hold > 0 && !jitNormal && g.Bun?.unsafe?.setJITPolicy) {
    jitHold = setTimeout(() => settleAfterStart(), hold);
    unrefTimer(jitHold);
    setTimeout(() => releaseMemory(), 0);
    return;
  }
  jitNormal = true;
  // On the next turn, so the caller's latency (start-up, the ready line) does not include it.
  setTimeout(() => {
    g.Bun?.unsafe?.setJITPolicy?.(1);
    releaseMemory();
  }, 0);
}

let jitHold: ReturnType<typeof setTimeout> | undefined;
/** Once the normal policy is back, a later hold only releases memory. */
let jitNormal = false;

function unrefTimer(t: ReturnType<typeof setTimeout>): void {
  // deno-lint-ignore no-explicit-any
  (t as any).unref?.();
  if (g.Deno && typeof t === "number") g.Deno.unrefTimer(t);
}

/**
 * Give memory back to the OS after a burst: a full collection and, on Bun, JSC's shrink. V8 would
 * do it on its own schedule (its memory reducer, 10–30 s after the allocation rate drops, or not at
 * all on a busy node); after a flood that schedule leaves a node holding its peak. On Deno the
 * collector is reached through V8's --expose-gc, set at run time and read from a fresh context.
 */
export function releaseMemory(): void {
  if (g.Bun) {
    g.Bun.gc(true);
    g.Bun.shrink?.();
    return;
  }
  v8Gc().then((gc) => gc?.(), () => {});
}

let gcFn: Promise<(() => void) | undefined> | undefined;
/** node:v8 and node:vm are loaded only here (Deno), keeping them out of Bun's idle graph. */
function v8Gc(): Promise<(() => void) | undefined> {
  gcFn ??= Promise.all([import("node:v8"), import("node:vm")]).then(([v8, vm]) => {
    v8.setFlagsFromString("--expose-gc");
    const f = vm.runInNewContext("gc");
    return typeof f === "function" ? (f as () => void) : undefined;
  }).catch(() => undefined);
  return gcFn;
}

let burstRelease = false;
let burstTimer: ReturnType<typeof setTimeout> | undefined;

/** The node agent and the control plane turn this on: `noteBurst` then releases memory once a
 * burst is over. Off by default, so library users and unit tests keep no timers. */
export function releaseMemoryAfterBursts(on = true): void {
  burstRelease = on;
  if (!on && burstTimer) clearTimeout(burstTimer);
}

/** A burst happened (a flood closed a session): release memory 2 s after the last one, so a
 * sustained flood costs no collections and its end costs one. */
export function noteBurst(): void {
  if (!burstRelease) return;
  if (burstTimer) clearTimeout(burstTimer);
  burstTimer = setTimeout(() => {
    burstTimer = undefined;
    releaseMemory();
  }, 2000);
  // deno-lint-ignore no-explicit-any
  (burstTimer as any).unref?.();
  if (g.Deno && typeof burstTimer === "number") g.Deno.unrefTimer(burstTimer);
}

export function nowMs(): number {
  return performance.now();
}

export interface HttpServerHandle {
  readonly hostname: string;
  readonly port: number;
  close(): Promise<void>;
}
