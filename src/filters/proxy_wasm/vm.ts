/**
 * One proxy-wasm VM: an instance of the plugin module with its root context and the stream
 * contexts of the requests it serves. Lifecycle per the spec: `_initialize`/`_start`, root
 * `proxy_on_context_create`, `proxy_on_vm_start`, `proxy_on_configure`. Any exception out of the
 * guest (trap, `proc_exit`, memory cap) kills the VM: paused streams are failed, timers and
 * callouts dropped, and the owning filter builds a fresh VM for new requests.
 */
import { WeftError } from "../../core/mod.ts";
import type {
  FilterFailureKind,
  FilterOutcome,
  HttpRequestContext,
  HttpResponseContext,
  LocalResponse,
  Logger,
} from "../../core/mod.ts";
import type { AbiVersion } from "./abi.ts";
import { GuestMemory } from "./guest_memory.ts";
import type { PluginSettings } from "./options.ts";
import { buildImports } from "./imports.ts";
import type { FunctionImport } from "./module_info.ts";
import type { HttpCallResult } from "./env_services.ts";

export type Callback =
  | "none"
  | "start"
  | "vm_start"
  | "configure"
  | "request_headers"
  | "request_body"
  | "response_headers"
  | "response_body"
  | "done"
  | "log"
  | "root";

export interface StreamState {
  readonly id: number;
  readonly vm: ProxyWasmVm;
  readonly req: HttpRequestContext;
  res: HttpResponseContext | undefined;
  readonly startNs: bigint;
  local: LocalResponse | undefined;
  /** Set while the stream is paused: settles the phase's pending outcome. */
  resume: ((o: FilterOutcome) => void) | undefined;
  pausedOn: "request" | "response" | undefined;
  awaitingDone: boolean;
  written: Map<string, Uint8Array> | undefined;
}

/** A guest failure: the VM is dead after it. */
export class GuestFailure extends Error {
  constructor(readonly kind: FilterFailureKind, message: string, options?: { cause?: unknown }) {
    super(message, options);
  }
}

export interface CompiledPlugin {
  readonly module: WebAssembly.Module;
  readonly abi: AbiVersion;
  readonly imports: readonly FunctionImport[];
  readonly settings: PluginSettings;
  readonly log: Logger;
}

const ROOT_ID = 1;

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
  dead: GuestFailure | undefined;
  /** Timer cleanups, run when the VM dies or closes. */
  readonly cleanups = new Set<() => void>();
  /** Cancels for callouts in flight, run only when the VM dies (a closed VM drains). */
  readonly callouts = new Set<() => void>();
  /** Declared imports weft does not implement ("module.name"); they answer UNIMPLEMENTED. */
  readonly unimplemented: readonly string[];
  private nextId = ROOT_ID + 1;
  private readonly ex: Record<string, Fn | undefined>;

  private constructor(
    readonly plugin: CompiledPlugin,
    readonly generation: number,
    private readonly onDeath: (vm: ProxyWasmVm, f: GuestFailure) => void,
  ) {
    const { imports, unimplemented } = buildImports(this, plugin.imports);
    this.unimplemented = unimplemented;
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
    onDeath: (vm: ProxyWasmVm, f: GuestFailure) => void,
  ): ProxyWasmVm {
    const vm = new ProxyWasmVm(plugin, generation, onDeath);
    const name = plugin.settings.name;
    vm.run("start", undefined, () => {
      if (vm.ex["_initialize"]) {
        vm.ex["_initialize"]();
        if (vm.ex["main"]) vm.ex["main"](0, 0);
      } else if (vm.ex["_start"]) vm.ex["_start"]();
    });
    if (vm.dead) throw vm.dead;
    vm.run("none", undefined, () => vm.ex["proxy_on_context_create"]?.(ROOT_ID, 0));
    if (vm.dead) throw vm.dead;
    const vmOk = vm.run("vm_start", undefined, () =>
      vm.ex["proxy_on_vm_start"]?.(ROOT_ID, plugin.settings.vmConfig.length) ?? 1);
    if (vm.dead) throw vm.dead;
    if (!vmOk) {
      vm.close();
      throw new WeftError("proxy_wasm_vm_start", `Cannot start proxy-wasm VM for ${name}: ` +
        "proxy_on_vm_start returned false", { hint: "check the plugin's vmConfig and logs" });
    }
    const cfgOk = vm.run("configure", undefined, () =>
      vm.ex["proxy_on_configure"]?.(ROOT_ID, plugin.settings.pluginConfig.length) ?? 1);
    if (vm.dead) throw vm.dead;
    if (!cfgOk) {
      vm.close();
      throw new WeftError("proxy_wasm_configure", `Cannot configure proxy-wasm plugin ${name}: ` +
        "proxy_on_configure rejected the plugin configuration", {
        hint: "check pluginConfig against what the plugin expects (see its log lines)",
      });
    }
    return vm;
  }

  /** Run guest code as one top-level call; a throw kills the VM and yields undefined. */
  run<T>(cb: Callback, eff: StreamState | undefined, fn: () => T): T | undefined {
    if (this.dead) return undefined;
    const prevCb = this.callback;
    const prevEff = this.effective;
    this.callback = cb;
    this.effective = eff;
    try {
      const r = fn();
      if (this.mem.byteLength > this.settings.maxMemoryBytes) {
        this.die(new GuestFailure("memory", `linear memory grew to ${this.mem.byteLength} bytes`));
        return undefined;
      }
      return r;
    } catch (e) {
      this.die(
        e instanceof GuestFailure
          ? e
          : new GuestFailure("trap", e instanceof Error ? e.message : String(e), { cause: e }),
      );
      return undefined;
    } finally {
      this.callback = prevCb;
      this.effective = prevEff;
    }
  }

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
      startNs: BigInt(Date.now()) * 1_000_000n,
      local: undefined,
      resume: undefined,
      pausedOn: undefined,
      awaitingDone: false,
      written: undefined,
    };
    this.streams.set(id, s);
    const create = this.ex["proxy_on_context_create"];
    if (create) this.run("none", s, () => create(id, ROOT_ID));
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
    if (onLog) this.run("log", s, () => onLog(s.id));
    if (onDelete) this.run("log", s, () => onDelete(s.id));
    this.streams.delete(s.id);
  }

  private die(f: GuestFailure): void {
    if (this.dead) return;
    this.dead = f;
    const outcome: FilterOutcome = { action: "failed", kind: f.kind, message: f.message };
    for (const s of this.streams.values()) this.resume(s, outcome);
    this.streams.clear();
    this.runCleanups();
    for (const c of this.callouts) c();
    this.callouts.clear();
    this.onDeath(this, f);
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
