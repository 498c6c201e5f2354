/**
 * `HttpFilter` over a proxy-wasm plugin: one configured generation (module + plugin config) with
 * one live VM at a time. A trap fails the current streams (`failed`/`trap`, the chain applies the
 * fail policy) and the next request gets a fresh VM from the cached Module — Envoy's
 * stuck-after-trap bug cannot happen. Repeated crashes back off (base `reloadBackoffMs`, doubling,
 * ≤ 30 s) and answer `failed`/`unavailable` meanwhile. Hot reload = build a new filter beside this
 * one, swap it into the chain, then `close()` this one: in-flight streams finish on their VM.
 */
import { logger, metrics } from "../../core/mod.ts";
import type {
  FailPolicy,
  FilterOutcome,
  HttpFilter,
  HttpRequestContext,
  HttpResponseContext,
} from "../../core/mod.ts";
import { donePhase, requestPhase, responsePhase } from "./http_phases.ts";
import { type CompiledPlugin, type GuestFailure, ProxyWasmVm, type StreamState } from "./vm.ts";

const MAX_BACKOFF_MS = 30_000;
// The same family the other filter kinds count into (src/filters/filter_metrics.ts).
const filterErrors = metrics.counter(
  "weft_filter_errors_total",
  "Filter failures by kind (trap, timeout, memory, bad_output, unavailable, config).",
  ["filter", "kind"],
);
const vmStarts = metrics.counter(
  "weft_proxy_wasm_vm_starts_total",
  "proxy-wasm VMs started (first start, restarts after failure)",
  ["plugin"],
);

export class ProxyWasmFilter implements HttpFilter {
  readonly name: string;
  readonly failPolicy: FailPolicy;
  readonly wantsRequestBody: boolean;
  readonly wantsResponseBody: boolean;
  private vm: ProxyWasmVm | undefined;
  private generation = 0;
  private crashes = 0;
  private retryAt = 0;
  private closed = false;
  private readonly streams = new WeakMap<HttpRequestContext, StreamState>();
  private readonly log = logger("proxy_wasm");

  /** Starts the first VM: throws WeftError if the plugin refuses its configuration. */
  constructor(private readonly plugin: CompiledPlugin) {
    const st = plugin.settings;
    this.name = st.name;
    this.failPolicy = st.failPolicy;
    this.wantsRequestBody = st.bodies;
    this.wantsResponseBody = st.bodies;
    this.vm = this.startVm();
    if (this.vm.unimplemented.length) {
      this.log.warn("proxy-wasm module imports functions weft does not implement", {
        plugin: st.name,
        abi: plugin.abi,
        imports: this.vm.unimplemented,
        answer: "UNIMPLEMENTED (12), WASI: NOSYS (52)",
      });
    }
    this.log.info("proxy-wasm plugin loaded", {
      plugin: st.name,
      abi: plugin.abi,
      rootId: st.rootId,
      failPolicy: st.failPolicy,
    });
  }

  /** The live VM (for tests and diagnostics). */
  get currentVm(): ProxyWasmVm | undefined {
    return this.vm;
  }

  private startVm(): ProxyWasmVm {
    const vm = ProxyWasmVm.start(this.plugin, ++this.generation, (v, f) => this.onDeath(v, f));
    vmStarts.inc({ plugin: this.name });
    return vm;
  }

  private onDeath(vm: ProxyWasmVm, f: GuestFailure): void {
    filterErrors.inc({ filter: this.name, kind: f.kind });
    this.log.error("proxy-wasm VM failed", {
      plugin: this.name,
      generation: vm.generation,
      kind: f.kind,
      error: f.message,
      stack: f.cause instanceof Error ? f.cause.stack : undefined,
    });
    if (this.vm !== vm) return;
    this.vm = undefined;
    this.crashes++;
    const delay = this.crashes <= 1
      ? 0
      : Math.min(MAX_BACKOFF_MS, this.plugin.settings.reloadBackoffMs * 2 ** (this.crashes - 2));
    this.retryAt = performance.now() + delay;
  }

  /** The VM for a new request, restarting a failed one when the backoff allows. */
  private liveVm(): ProxyWasmVm | FilterOutcome {
    if (this.vm) return this.vm;
    if (this.closed) return unavailable("filter closed");
    if (performance.now() < this.retryAt) return unavailable("VM restart backing off");
    try {
      this.vm = this.startVm();
      return this.vm;
    } catch (e) {
      this.onDeathOfStart(e);
      return unavailable(`VM restart failed: ${e instanceof Error ? e.message : String(e)}`);
    }
  }

  private onDeathOfStart(e: unknown): void {
    this.crashes++;
    const delay = Math.min(
      MAX_BACKOFF_MS,
      this.plugin.settings.reloadBackoffMs * 2 ** Math.max(0, this.crashes - 2),
    );
    this.retryAt = performance.now() + delay;
    this.log.error("proxy-wasm VM restart failed", { plugin: this.name, error: e });
  }

  onRequest(ctx: HttpRequestContext): FilterOutcome | Promise<FilterOutcome> {
    const vm = this.liveVm();
    if (!(vm instanceof ProxyWasmVm)) return vm;
    const { stream, outcome } = requestPhase(vm, ctx);
    if (stream) this.streams.set(ctx, stream);
    return outcome;
  }

  onResponse(
    ctx: HttpRequestContext,
    res: HttpResponseContext,
  ): FilterOutcome | Promise<FilterOutcome> {
    const s = this.streams.get(ctx);
    if (!s) return { action: "continue" }; // the request phase never reached this filter
    return responsePhase(s, res);
  }

  onDone(ctx: HttpRequestContext): void {
    const s = this.streams.get(ctx);
    if (!s) return;
    this.streams.delete(ctx);
    const healthy = !s.vm.dead;
    donePhase(s);
    if (healthy && !s.vm.dead && s.vm === this.vm) this.crashes = 0;
  }

  /** Stop this generation's timers; streams already running finish on their VM. */
  close(): void {
    this.closed = true;
    this.vm?.close();
  }
}

function unavailable(message: string): FilterOutcome {
  return { action: "failed", kind: "unavailable", message };
}
