/**
 * One configured generation of a component filter: an instance pool over a loaded component,
 * the per-call sandbox (time budget through the fuel check, memory cap from the loader), failure
 * classification, metrics, and reload-on-trap (crash loop and backoff: crash_guard.ts). Body
 * chunks and trailers (0.2.0/0.3.0 guests) are single synchronous calls on an idle instance.
 *
 * Hooks are synchronous wasm calls, so an instance is never entered by two requests at once; the
 * pool exists so a trapped instance is replaced without touching the others and so a future
 * async (JSPI) binding keeps the same shape.
 */
import type {
  BodyDecision,
  BodyOutcome,
  FailPolicy,
  FilterDecision,
  FilterFailureKind,
  FilterOutcome,
  HeaderMap,
  HttpFilter,
  HttpRequestContext,
  HttpResponseContext,
  TrailersOutcome,
} from "../../core/mod.ts";
import { failResponse, logger, WeftError } from "../../core/mod.ts";
import { countFilterError, filterMetrics } from "../filter_metrics.ts";
import type { Guest, TrailersDecision } from "./guest.ts";
import { HostBridge } from "./host_bridge.ts";
import { CrashGuard } from "./crash_guard.ts";
import { DEFAULT_SANDBOX, LATENCY_SAMPLE_EVERY, type SandboxOptions } from "./sandbox_options.ts";
import type { LoadedComponent } from "./component_loader.ts";
import { DEFAULT_FUEL } from "../sandbox/instrument.ts";

const log = logger("filters");
const PASS: BodyOutcome = Object.freeze({ action: "continue" });
const EMPTY = new Uint8Array(0);

export { DEFAULT_SANDBOX, LATENCY_SAMPLE_EVERY, type SandboxOptions } from "./sandbox_options.ts";

interface Slot {
  readonly guest: Guest;
  readonly bridge: HostBridge;
}

type Failed = Extract<FilterOutcome, { action: "failed" }>;

export class ComponentFilter implements HttpFilter {
  /** From the guest's configure (0.2.0 body modes; 0.1.0 guests: no bodies). */
  wantsRequestBody = false;
  wantsResponseBody = false;
  streamsRequestBody = false;
  streamsResponseBody = false;
  /** 0.3.0 guests: trailers hooks (older guests leave trailers untouched at no cost). */
  private hasTrailerHooks = false;
  private readonly idle: Slot[] = [];
  private readonly crashes: CrashGuard;
  private callSeq = 0;
  private trapReported = false;
  private readonly labels: { req: Record<string, string>; res: Record<string, string> };
  /** weft_filter_calls_total per phase, label key built once. */
  private readonly countCall: { req: (by?: number) => void; res: (by?: number) => void };
  /** weft_filter_duration_seconds per phase, label key built once. */
  private readonly observeCall: { req: (s: number) => void; res: (s: number) => void };

  private constructor(
    readonly name: string,
    readonly failPolicy: FailPolicy,
    private readonly component: LoadedComponent,
    private readonly config: Uint8Array,
    private readonly sandbox: SandboxOptions,
  ) {
    this.crashes = new CrashGuard(name, sandbox);
    this.labels = {
      req: { filter: name, phase: "request" },
      res: { filter: name, phase: "response" },
    };
    this.countCall = {
      req: filterMetrics.calls.bind(this.labels.req),
      res: filterMetrics.calls.bind(this.labels.res),
    };
    this.observeCall = {
      req: filterMetrics.duration.bind(this.labels.req),
      res: filterMetrics.duration.bind(this.labels.res),
    };
  }

  get binding(): "direct" | "jco" {
    return this.component.binding;
  }

  /** Configures a first instance; a config the guest rejects fails with code filter_config. */
  static async create(
    name: string,
    failPolicy: FailPolicy,
    component: LoadedComponent,
    config: unknown,
    sandbox: SandboxOptions = DEFAULT_SANDBOX,
  ): Promise<ComponentFilter> {
    const bytes = new TextEncoder().encode(JSON.stringify(config ?? {}));
    const f = new ComponentFilter(name, failPolicy, component, bytes, sandbox);
    const first = await f.newSlot();
    f.idle.push(first);
    const modes = first.guest.bodyModes;
    f.wantsRequestBody = modes.request === "buffered";
    f.wantsResponseBody = modes.response === "buffered";
    f.streamsRequestBody = modes.request === "streamed";
    f.streamsResponseBody = modes.response === "streamed";
    f.hasTrailerHooks = first.guest.onRequestTrailers !== undefined;
    return f;
  }

  private async newSlot(): Promise<Slot> {
    const bridge = new HostBridge(this.name, DEFAULT_FUEL);
    const guest = await this.component.instantiate(bridge);
    bridge.begin(undefined, undefined, this.sandbox.callBudgetMs * 4);
    let err: string | undefined;
    try {
      err = guest.configure(this.config);
    } catch (e) {
      throw new WeftError("filter_config", `Cannot configure filter ${this.name}: it trapped`, {
        cause: e,
      });
    } finally {
      bridge.end();
    }
    if (err !== undefined) {
      throw new WeftError("filter_config", `Cannot configure filter ${this.name}: ${err}`, {
        hint: "fix the filter's config; the previous generation keeps serving",
      });
    }
    return { guest, bridge };
  }

  onRequest(ctx: HttpRequestContext): FilterOutcome | Promise<FilterOutcome> {
    return this.run(ctx, undefined);
  }

  onResponse(
    ctx: HttpRequestContext,
    res: HttpResponseContext,
  ): FilterOutcome | Promise<FilterOutcome> {
    return this.run(ctx, res);
  }

  onDone(_ctx: HttpRequestContext): void {}

  private run(
    req: HttpRequestContext,
    res: HttpResponseContext | undefined,
  ): FilterOutcome | Promise<FilterOutcome> {
    if (this.crashes.backingOff()) {
      return this.failed("unavailable", "filter in crash-loop backoff", req);
    }
    const slot = this.idle.pop();
    if (slot) return this.call(slot, req, res);
    return this.newSlot().then(
      (s) => this.call(s, req, res),
      (e) => this.failed("unavailable", `cannot start an instance: ${(e as Error).message}`, req),
    );
  }

  private call(
    slot: Slot,
    req: HttpRequestContext,
    res: HttpResponseContext | undefined,
  ): FilterOutcome {
    // Latency is sampled (1 call in LATENCY_SAMPLE_EVERY): two clock reads and a histogram
    // update cost about as much as the guest call itself. Unsampled calls start the sandbox
    // clock lazily (HostBridge.begin with 0).
    const sampled = (++this.callSeq & (LATENCY_SAMPLE_EVERY - 1)) === 1;
    const t0 = sampled ? performance.now() : 0;
    slot.bridge.begin(req, res, this.sandbox.callBudgetMs, t0);
    let out: FilterOutcome;
    try {
      let d: FilterDecision = res ? slot.guest.onResponseHeaders() : slot.guest.onRequestHeaders();
      // Buffered body mode: the whole body right after the headers hook, in the same phase.
      if (d.action === "continue") d = this.bufferedBody(slot, req, res, d);
      if (this.idle.length < this.sandbox.poolMax) this.idle.push(slot);
      out = d;
    } catch (e) {
      out = this.onTrap(slot, e, req);
    } finally {
      slot.bridge.end();
    }
    (res ? this.countCall.res : this.countCall.req)();
    if (sampled) {
      (res ? this.observeCall.res : this.observeCall.req)((performance.now() - t0) / 1000);
    }
    return out;
  }

  private bufferedBody(
    slot: Slot,
    req: HttpRequestContext,
    res: HttpResponseContext | undefined,
    headersDecision: FilterDecision,
  ): FilterDecision {
    const g = slot.guest;
    const body = res ? res.responseBody : req.requestBody;
    const hook = res ? g.onResponseBody : g.onRequestBody;
    const wants = res ? this.wantsResponseBody : this.wantsRequestBody;
    if (!wants || body === undefined || !hook) return headersDecision;
    // 0.3.0 guests see trailers: with some to come the body does not end the stream (Envoy).
    const trailers = res ? res.responseTrailersFollow : req.requestTrailersFollow;
    const b = hook.call(g, body, !(trailers && this.hasTrailerHooks));
    if (b.action === "respond") return b;
    if (b.action === "replace") {
      if (res) res.responseBody = b.body;
      else req.requestBody = b.body;
    }
    return headersDecision;
  }

  /** Streamed body chunks (0.2.0 `streamed` mode), one guest call per chunk. */
  onRequestBodyChunk(ctx: HttpRequestContext, chunk: Uint8Array, eos: boolean): BodyOutcome {
    return this.chunk(ctx, undefined, chunk, eos);
  }

  onResponseBodyChunk(
    ctx: HttpRequestContext,
    res: HttpResponseContext,
    chunk: Uint8Array,
    eos: boolean,
  ): BodyOutcome {
    return this.chunk(ctx, res, chunk, eos);
  }

  /** Trailers follow a streamed body: a 0.3.0 guest is not called (every chunk had
   * end-of-stream false; its trailers hook ends the message, as Envoy); an older guest, which
   * cannot see trailers, gets its last empty chunk with end-of-stream true. */
  onRequestBodyBeforeTrailers(ctx: HttpRequestContext): BodyOutcome {
    return this.hasTrailerHooks ? PASS : this.chunk(ctx, undefined, EMPTY, true);
  }

  onResponseBodyBeforeTrailers(ctx: HttpRequestContext, res: HttpResponseContext): BodyOutcome {
    return this.hasTrailerHooks ? PASS : this.chunk(ctx, res, EMPTY, true);
  }

  private chunk(
    req: HttpRequestContext,
    res: HttpResponseContext | undefined,
    chunk: Uint8Array,
    eos: boolean,
  ): BodyOutcome {
    return this.quick(req, res, undefined, (g): BodyDecision => {
      const hook = res ? g.onResponseBody : g.onRequestBody;
      return hook ? hook.call(g, chunk, eos) : { action: "continue" };
    });
  }

  /** Trailers (0.3.0 guests): the hook sees them as header-map request/response-trailers. A
   * failure follows the fail policy (FAIL_OPEN: the trailers go on; else the fail response). */
  onRequestTrailers(ctx: HttpRequestContext, trailers: HeaderMap): TrailersOutcome {
    return this.trailers(ctx, undefined, trailers);
  }

  onResponseTrailers(
    ctx: HttpRequestContext,
    res: HttpResponseContext,
    trailers: HeaderMap,
  ): TrailersOutcome {
    return this.trailers(ctx, res, trailers);
  }

  private trailers(
    req: HttpRequestContext,
    res: HttpResponseContext | undefined,
    t: HeaderMap,
  ): TrailersOutcome {
    if (!this.hasTrailerHooks) return;
    const d = this.quick(req, res, t, (g): TrailersDecision => {
      const hook = res ? g.onResponseTrailers : g.onRequestTrailers;
      return hook ? hook.call(g) : { action: "continue" };
    });
    if (d.action === "respond") return d;
    if (d.action === "failed" && this.failPolicy !== "FAIL_OPEN") {
      return { action: "respond", response: failResponse(req) };
    }
  }

  /** One synchronous guest call outside the headers phases (a body chunk, trailers): an idle
   * instance is needed now (the pool keeps one warm). */
  private quick<T extends BodyDecision | TrailersDecision>(
    req: HttpRequestContext,
    res: HttpResponseContext | undefined,
    trailers: HeaderMap | undefined,
    call: (g: Guest) => T,
  ): T | Failed {
    const slot = this.idle.pop();
    if (!slot) return this.failed("unavailable", "no idle instance for a body or trailers", req);
    slot.bridge.begin(req, res, this.sandbox.callBudgetMs, 0);
    slot.bridge.trailers = trailers;
    try {
      const d = call(slot.guest);
      if (this.idle.length < this.sandbox.poolMax) this.idle.push(slot);
      return d;
    } catch (e) {
      return this.onTrap(slot, e, req);
    } finally {
      slot.bridge.end();
      if (this.idle.length === 0) this.refill();
    }
  }

  /** Keep one instance warm for chunk calls after a trap dropped the last one. */
  private refill(): void {
    this.newSlot().then((s) => {
      if (this.idle.length < this.sandbox.poolMax) this.idle.push(s);
    }, (e) => log.debug("filter instance refill failed", { filter: this.name, err: e }));
  }

  /** The instance is dropped (its state may be corrupt); the next call gets a fresh one. */
  private onTrap(slot: Slot, e: unknown, req: HttpRequestContext): Failed {
    const kind = this.crashes.onTrap(e, slot.guest.memoryBytes());
    return this.failed(kind, (e as Error)?.message ?? String(e), req);
  }

  private failed(kind: FilterFailureKind, message: string, req: HttpRequestContext): Failed {
    countFilterError(this.name, kind, req);
    if (kind === "trap" && !this.trapReported) {
      // The first trap of a generation is worth a warning: for JS guests a bare "unreachable"
      // is usually a binding convention (wasm/README.md), not a crash in the filter's logic.
      this.trapReported = true;
      log.warn("filter trapped", {
        filter: this.name,
        message,
        hint: "JS guests: u64 are Numbers (a BigInt traps), enums are kebab-case strings, " +
          "variants are {tag, val}; see wasm/README.md",
      });
    }
    log.debug("filter failed", { filter: this.name, kind, message });
    return { action: "failed", kind, message };
  }
}
