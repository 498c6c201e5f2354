/**
 * One proxy-wasm VM: an instance of the plugin module with its root context and the stream
 * contexts of the requests it serves. Lifecycle per the spec: `_initialize`/`_start`, root
 * `proxy_on_context_create`, `proxy_on_vm_start`, `proxy_on_configure`. Any exception out of the
 * guest (trap, `proc_exit`, memory cap) kills the VM: paused streams are failed, timers and
 * callouts dropped, and the owning filter builds a fresh VM for new requests.
 */
import { WeftError } from "../../core/mod.ts";
import { countFilterError } from "../filter_metrics.ts";
import type { FilterOutcome, HttpRequestContext, Logger } from "../../core/mod.ts";
import type { AbiVersion } from "./abi.ts";
import { GuestMemory } from "./guest_memory.ts";
import type { PluginSettings } from "./options.ts";
import { buildImports } from "./imports.ts";
import { DEFAULT_FUEL } from "../sandbox/instrument.ts";
import type { HttpCallResult } from "./env_services.ts";
import type { GrpcDelivery } from "./grpc_call.ts";
import type { GrpcExchange } from "./grpc_exchange.ts";
import {
  type Callback,
  type CompiledPlugin,
  GuestFailure,
  StartExit,
  type StreamState,
} from "./vm_types.ts";

export { type Callback, type CompiledPlugin, GuestFailure, StartExit, type StreamState };

const ROOT_ID = 1;
/** Wall-clock budget of each lifecycle call while a VM starts (see `ProxyWasmVm.start`). */
const START_BUDGET_MS = 1000;

// deno-lint-ignore no-explicit-any
type Fn = (...args: any[]) => any;

export class ProxyWasmVm {
  readonly mem: GuestMemory = new GuestMemory();
  readonly rootId = ROOT_ID;
  readonly streams = new Map<number, StreamState>();
  readonly root: { written: Map<string, Uint8Array> } = { written: new Map() };
  callback: Callback = "none";
  /** The effective context: a stream, or undefined for the root context. */
  effective: StreamState | undefined;
  httpCallResult: HttpCallResult | undefined;
  /** The gRPC callout result being delivered (one callback at a time). */
  grpc: GrpcDelivery | undefined;
  /** gRPC calls and streams in flight, by id (proxy_grpc_send / _close / _cancel). */
  readonly grpcCalls = new Map<number, GrpcExchange>();
  dead: GuestFailure | undefined;
  /** Timer cleanups, run when the VM dies or closes. */
  readonly cleanups = new Set<() => void>();
  /** Cancels for callouts in flight, run only when the VM dies (a closed VM drains). */
  readonly callouts = new Set<() => void>();
  /** Declared imports weft does not implement ("module.name"); they answer UNIMPLEMENTED. */
  readonly unimplemented: readonly string[];
  private nextId = ROOT_ID + 1;
  /** Deadline of the current top-level call; 0 = not armed yet (armed at the first check, so
   * calls that never run out of fuel never read the clock). */
  private deadline = 0;
  /** Budget of the current top-level call: `callBudgetMs`, or `START_BUDGET_MS` while the
   * lifecycle runs (`start`). */
  private budgetMs: number;
  private readonly ex: Record<string, Fn | undefined>;

  private constructor(
    readonly plugin: CompiledPlugin,
    readonly generation: number,
    private readonly onDeath: (vm: ProxyWasmVm, f: GuestFailure, streams: number) => void,
  ) {
    this.budgetMs = Math.max(plugin.settings.callBudgetMs, START_BUDGET_MS);
    const { imports, unimplemented } = buildImports(this, plugin.imports);
    this.unimplemented = unimplemented;
    // Listed before instantiation: a module that fails to start is exactly when it matters.
    plugin.onImports?.(unimplemented, generation);
    const instance = new WebAssembly.Instance(plugin.module, imports);
    this.ex = instance.exports as Record<string, Fn | undefined>;
    const memory = instance.exports["memory"];
    if (!(memory instanceof WebAssembly.Memory)) {
      throw new WeftError(
        "proxy_wasm_load",
        `Cannot load proxy-wasm plugin ${plugin.settings.name}: module exports no memory`,
      );
    }
    const alloc = this.ex["proxy_on_memory_allocate"] ?? this.ex["malloc"];
    if (!alloc) {
      throw new WeftError(
        "proxy_wasm_load",
        `Cannot load proxy-wasm plugin ${plugin.settings.name}: module exports neither ` +
          "proxy_on_memory_allocate nor malloc",
      );
    }
    this.mem.bind(memory, alloc as (n: number) => number);
  }

  get settings(): PluginSettings {
    return this.plugin.settings;
  }
  get abi(): AbiVersion {
    return this.plugin.abi;
  }
  get log(): Logger {
    return this.plugin.log;
  }

  has(name: string): boolean {
    return this.ex[name] !== undefined;
  }

  /** Instantiate and run the plugin lifecycle; throws WeftError when the guest refuses its VM or
   * plugin configuration, or GuestFailure when it traps. */
  static start(
    plugin: CompiledPlugin,
    generation: number,
    onDeath: (vm: ProxyWasmVm, f: GuestFailure, streams: number) => void,
  ): ProxyWasmVm {
    const vm = new ProxyWasmVm(plugin, generation, onDeath);
    const name = plugin.settings.name;
    // The lifecycle (initialisers, on_vm_start, on_configure) runs once per generation, often
    // parsing a whole configuration: it gets a start-up budget, not the per-request one, so a
    // busy node does not refuse a sound plugin (Envoy bounds neither). A runaway start is still
    // stopped, as "timeout". The constructor armed it (a start section runs at instantiation).
    try {
      return ProxyWasmVm.lifecycle(vm, plugin, name);
    } finally {
      vm.budgetMs = plugin.settings.callBudgetMs;
    }
  }

  private static lifecycle(vm: ProxyWasmVm, plugin: CompiledPlugin, name: string): ProxyWasmVm {
    vm.run("start", undefined, () => {
      if (vm.ex["_initialize"]) {
        vm.ex["_initialize"]();
        // cpp-host: main(0, 0), or __main_void (newer wasi-libc's name for it).
        if (vm.ex["main"]) vm.ex["main"](0, 0);
        else if (vm.ex["__main_void"]) vm.ex["__main_void"]();
      } else if (vm.ex["_start"]) vm.ex["_start"]();
    });
    if (vm.dead) throw vm.dead;
    vm.run("none", undefined, () => vm.ex["proxy_on_context_create"]?.(ROOT_ID, 0));
    if (vm.dead) throw vm.dead;
    const vmOk = vm.run(
      "vm_start",
      undefined,
      () => vm.ex["proxy_on_vm_start"]?.(ROOT_ID, plugin.settings.vmConfig.length) ?? 1,
    );
    if (vm.dead) throw vm.dead;
    if (!vmOk) {
      vm.close();
      throw new WeftError(
        "proxy_wasm_vm_start",
        `Cannot start proxy-wasm VM for ${name}: ` +
          "proxy_on_vm_start returned false",
        { hint: "check the plugin's vmConfig and logs" },
      );
    }
    const cfgOk = vm.run(
      "configure",
      undefined,
      () => vm.ex["proxy_on_configure"]?.(ROOT_ID, plugin.settings.pluginConfig.length) ?? 1,
    );
    if (vm.dead) throw vm.dead;
    if (!cfgOk) {
      vm.close();
      throw new WeftError(
        "proxy_wasm_configure",
        `Cannot configure proxy-wasm plugin ${name}: ` +
          "proxy_on_configure rejected the plugin configuration",
        {
          hint: "check pluginConfig against what the plugin expects (see its log lines)",
        },
      );
    }
    return vm;
  }

  /** Run guest code as one top-level call; a throw kills the VM and yields undefined. */
  run<T>(cb: Callback, eff: StreamState | undefined, fn: () => T): T | undefined {
    return this.invoke(cb, eff, fn, 0, 0, 0) as T | undefined;
  }

  /** `run` for an export with up to three i32 args, without a closure (the per-request path). */
  invoke(
    cb: Callback,
    eff: StreamState | undefined,
    fn: Fn,
    a: number,
    b: number,
    c: number,
  ): unknown {
    if (this.dead) return undefined;
    const prevCb = this.callback;
    const prevEff = this.effective;
    this.callback = cb;
    this.effective = eff;
    this.deadline = 0;
    try {
      const r = fn(a, b, c);
      if (this.mem.byteLength > this.settings.maxMemoryBytes) {
        this.die(new GuestFailure("memory", `linear memory grew to ${this.mem.byteLength} bytes`));
        return undefined;
      }
      return r;
    } catch (e) {
      if (e instanceof StartExit) return undefined;
      this.die(e instanceof GuestFailure ? e : this.trapOf(e));
      return undefined;
    } finally {
      this.callback = prevCb;
      this.effective = prevEff;
    }
  }

  /** A trap at the memory cap is a memory failure: the guest's allocator saw memory.grow fail
   * (the sandbox clamps the maximum) and aborted. */
  private trapOf(e: unknown): GuestFailure {
    const message = e instanceof Error ? e.message : String(e);
    const nearCap = this.mem.byteLength + 1024 * 1024 >= this.settings.maxMemoryBytes;
    return new GuestFailure(nearCap ? "memory" : "trap", message, { cause: e });
  }

  /** A callout of stream `s` (or of the root context) failed: count it once for the request. */
  calloutFailed(s: StreamState | undefined, why: string): void {
    countFilterError(this.settings.name, "callout", s?.req);
    if (s) s.calloutError = why;
  }

  /** Fail a stream left paused after its callout failed, with nothing else in flight. */
  failPausedAfterCallout(s: StreamState): void {
    if (!s.pausedOn || s.calloutsInFlight > 0 || s.calloutError === undefined) return;
    this.resume(s, { action: "failed", kind: "callout", message: s.calloutError });
  }

  /** `weft:sandbox.check`, called by instrumented code when its fuel runs out. */
  readonly sandboxCheck = (): number => {
    const now = performance.now();
    if (this.deadline === 0) this.deadline = now + this.budgetMs;
    else if (now > this.deadline) {
      throw new GuestFailure("timeout", `guest call exceeded ${this.budgetMs} ms`);
    }
    return DEFAULT_FUEL;
  };

  /** Call an exported callback on the root context (timers, callout results, queues). */
  callRoot(name: string, ...args: number[]): void {
    const f = this.ex[name];
    if (f) this.run("root", undefined, () => f(ROOT_ID, ...args));
  }

  export(name: string): Fn | undefined {
    return this.ex[name];
  }

  newStream(req: HttpRequestContext): StreamState | undefined {
    const id = this.nextId++;
    const s: StreamState = {
      id,
      vm: this,
      req,
      res: undefined,
      requestTrailers: undefined,
      responseTrailers: undefined,
      requestHeld: undefined,
      responseHeld: undefined,
      startMs: Date.now(),
      local: undefined,
      resume: undefined,
      pausedOn: undefined,
      awaitingDone: false,
      calloutsInFlight: 0,
      calloutError: undefined,
    };
    this.streams.set(id, s);
    const create = this.ex["proxy_on_context_create"];
    if (create) this.invoke("none", s, create, id, ROOT_ID, 0);
    return this.dead ? undefined : s;
  }

  /** Settle a paused stream (from continue/local response/close, or a death). */
  resume(s: StreamState, o: FilterOutcome): void {
    const r = s.resume;
    if (!r) return;
    s.resume = undefined;
    s.pausedOn = undefined;
    r(o);
  }

  /** on_log and on_delete after on_done said yes (or the guest called proxy_done). */
  finishStream(s: StreamState): void {
    s.awaitingDone = false;
    const onLog = this.ex["proxy_on_log"];
    const onDelete = this.ex["proxy_on_delete"];
    if (onLog) this.invoke("log", s, onLog, s.id, 0, 0);
    if (onDelete) this.invoke("log", s, onDelete, s.id, 0, 0);
    this.streams.delete(s.id);
  }

  private die(f: GuestFailure): void {
    if (this.dead) return;
    this.dead = f;
    const outcome: FilterOutcome = { action: "failed", kind: f.kind, message: f.message };
    const affected = this.streams.size;
    for (const s of this.streams.values()) this.resume(s, outcome);
    this.streams.clear();
    this.runCleanups();
    for (const c of this.callouts) c();
    this.callouts.clear();
    this.onDeath(this, f, affected);
  }

  private runCleanups(): void {
    for (const c of this.cleanups) c();
    this.cleanups.clear();
  }

  /** Stop timers; streams and callouts in flight finish on their own. */
  close(): void {
    this.runCleanups();
  }
}
