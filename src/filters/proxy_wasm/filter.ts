/**
 * `HttpFilter` over a proxy-wasm plugin: one configured generation (module + plugin config) with
 * one live VM at a time. A trap fails the current streams (`failed`/`trap`, the chain applies the
 * fail policy) and the next request gets a fresh VM from the cached Module — Envoy's
 * stuck-after-trap bug cannot happen. Repeated crashes back off (base `reloadBackoffMs`, doubling,
 * ≤ 30 s) and answer `failed`/`unavailable` meanwhile. Hot reload = build a new filter beside this
 * one, swap it into the chain, then `close()` this one: in-flight streams finish on their VM.
 */
import { HeaderList, logger, metrics } from "../../core/mod.ts";
import { countFilterError, filterMetrics } from "../filter_metrics.ts";
import type {
  BodyOutcome,
  FailPolicy,
  FilterOutcome,
  HeaderMap,
  HttpFilter,
  HttpRequestContext,
  HttpResponseContext,
  LocalResponse,
  TrailersOutcome,
} from "../../core/mod.ts";
import { donePhase, requestPhase, responsePhase, trailersPhase } from "./http_phases.ts";
import { bodyChunkPhase, releaseHeld } from "./body_phase.ts";
import { type CompiledPlugin, type GuestFailure, ProxyWasmVm, type StreamState } from "./vm.ts";

const MAX_BACKOFF_MS = 30_000;
/** Latency is sampled like component filters: 1 call in 8. */
const SAMPLE_MASK = 7;
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
  readonly streamsRequestBody: boolean;
  readonly streamsResponseBody: boolean;
  private vm: ProxyWasmVm | undefined;
  private generation = 0;
  private crashes = 0;
  private retryAt = 0;
  private closed = false;
  private readonly streams = new WeakMap<HttpRequestContext, StreamState>();
  private readonly log = logger("proxy_wasm");
  private readonly plugin: CompiledPlugin;
  private readonly labels: { req: Record<string, string>; res: Record<string, string> };
  private callSeq = 0;

  /** Starts the first VM: throws WeftError if the plugin refuses its configuration. */
  constructor(compiled: CompiledPlugin) {
    const st = compiled.settings;
    this.name = st.name;
    this.failPolicy = st.failPolicy;
    this.wantsRequestBody = st.bodies === "buffered";
    this.wantsResponseBody = st.bodies === "buffered";
    this.labels = {
      req: { filter: st.name, phase: "request" },
      res: { filter: st.name, phase: "response" },
    };
    this.plugin = {
      ...compiled,
      onImports: (unimplemented, generation) => {
        if (generation !== 1 || unimplemented.length === 0) return;
        this.log.warn("proxy-wasm module imports functions weft does not implement", {
          plugin: st.name,
          abi: compiled.abi,
          imports: unimplemented,
          answer: "UNIMPLEMENTED (12), WASI: NOSYS (52)",
        });
      },
    };
    this.vm = this.startVm();
    // Streamed (Envoy's per-chunk calls) only where the module has the callback: other bodies
    // keep their framing untouched.
    const streamed = st.bodies === "streamed";
    this.streamsRequestBody = streamed && !!this.vm.export("proxy_on_request_body");
    this.streamsResponseBody = streamed && !!this.vm.export("proxy_on_response_body");
    this.log.info("proxy-wasm plugin loaded", {
      plugin: st.name,
      abi: compiled.abi,
      rootId: st.rootId,
      failPolicy: st.failPolicy,
    });
  }

  /** The live VM (for tests and diagnostics). */
  get currentVm(): ProxyWasmVm | undefined {
    return this.vm;
  }

  private startVm(): ProxyWasmVm {
    const vm = ProxyWasmVm.start(
      this.plugin,
      ++this.generation,
      (v, f, n) => this.onDeath(v, f, n),
    );
    vmStarts.inc({ plugin: this.name });
    return vm;
  }

  private onDeath(vm: ProxyWasmVm, f: GuestFailure, streams: number): void {
    // With streams, each failed request counts the failure (once); a death in a timer or a
    // callout callback with no stream is counted here.
    if (streams === 0) countFilterError(this.name, f.kind);
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
    const sampled = (++this.callSeq & SAMPLE_MASK) === 1;
    const t0 = sampled ? performance.now() : 0;
    filterMetrics.calls.inc(this.labels.req);
    const vm = this.liveVm();
    let outcome: FilterOutcome | Promise<FilterOutcome>;
    if (vm instanceof ProxyWasmVm) {
      const r = requestPhase(vm, ctx);
      if (r.stream) this.streams.set(ctx, r.stream);
      outcome = r.outcome;
    } else outcome = vm;
    if (sampled) filterMetrics.duration.observe(this.labels.req, (performance.now() - t0) / 1000);
    return this.counted(ctx, outcome);
  }

  onResponse(
    ctx: HttpRequestContext,
    res: HttpResponseContext,
  ): FilterOutcome | Promise<FilterOutcome> {
    const s = this.streams.get(ctx);
    if (!s) return { action: "continue" }; // the request phase never reached this filter
    const sampled = (++this.callSeq & SAMPLE_MASK) === 1;
    const t0 = sampled ? performance.now() : 0;
    filterMetrics.calls.inc(this.labels.res);
    const outcome = responsePhase(s, res);
    if (sampled) filterMetrics.duration.observe(this.labels.res, (performance.now() - t0) / 1000);
    return this.counted(ctx, outcome);
  }

  onRequestBodyChunk(
    ctx: HttpRequestContext,
    chunk: Uint8Array,
    eos: boolean,
  ): BodyOutcome | Promise<BodyOutcome> {
    const s = this.streams.get(ctx);
    if (!s) return PASS;
    return this.countedBody(ctx, bodyChunkPhase(s, "request", chunk, eos));
  }

  onResponseBodyChunk(
    ctx: HttpRequestContext,
    _res: HttpResponseContext,
    chunk: Uint8Array,
    eos: boolean,
  ): BodyOutcome | Promise<BodyOutcome> {
    const s = this.streams.get(ctx);
    if (!s) return PASS;
    return this.countedBody(ctx, bodyChunkPhase(s, "response", chunk, eos));
  }

  onRequestBodyBeforeTrailers(ctx: HttpRequestContext): BodyOutcome {
    const s = this.streams.get(ctx);
    return s ? releaseHeld(s, "request") : PASS;
  }

  onResponseBodyBeforeTrailers(ctx: HttpRequestContext, _res: HttpResponseContext): BodyOutcome {
    const s = this.streams.get(ctx);
    return s ? releaseHeld(s, "response") : PASS;
  }

  private countedBody(
    ctx: HttpRequestContext,
    o: BodyOutcome | Promise<BodyOutcome>,
  ): BodyOutcome | Promise<BodyOutcome> {
    return this.counted(ctx, o as FilterOutcome | Promise<FilterOutcome>) as
      | BodyOutcome
      | Promise<BodyOutcome>;
  }

  onRequestTrailers(
    ctx: HttpRequestContext,
    trailers: HeaderMap,
  ): TrailersOutcome | Promise<TrailersOutcome> {
    const s = this.streams.get(ctx);
    if (s) return trailersPhase(s, "request", trailers);
  }

  onResponseTrailers(
    ctx: HttpRequestContext,
    _res: HttpResponseContext,
    trailers: HeaderMap,
  ): TrailersOutcome | Promise<TrailersOutcome> {
    const s = this.streams.get(ctx);
    if (s) return trailersPhase(s, "response", trailers);
  }

  /** Count a failed outcome once per request (whatever phase or cause). */
  private counted(
    ctx: HttpRequestContext,
    o: FilterOutcome | Promise<FilterOutcome>,
  ): FilterOutcome | Promise<FilterOutcome> {
    if (o instanceof Promise) {
      return o.then((x) => {
        if (x.action === "failed") countFilterError(this.name, x.kind, ctx);
        return x;
      });
    }
    if (o.action === "failed") countFilterError(this.name, o.kind, ctx);
    return o;
  }

  onDone(ctx: HttpRequestContext): void {
    const s = this.streams.get(ctx);
    if (!s) {
      // A filter earlier in the chain answered before this one ran. Envoy still runs every
      // filter's access log for the stream: Istio's stats counts RBAC 403s this way.
      if (ctx.localReply && this.vm && !this.vm.dead && this.vm.export("proxy_on_log")) {
        const late = this.vm.newStream(ctx);
        if (late) {
          late.res = localResponseContext(ctx.localReply);
          this.vm.finishStream(late);
        }
      }
      return;
    }
    this.streams.delete(ctx);
    if (!s.res && ctx.localReply) s.res = localResponseContext(ctx.localReply);
    const healthy = !s.vm.dead;
    donePhase(s);
    if (healthy && !s.vm.dead && s.vm === this.vm) this.crashes = 0;
  }

  /** Stop this generation's timers; streams already running finish on their VM. */
  close(): void {
    this.closed = true;
    this.vm?.close();
    this.vm = undefined; // streams in flight keep their VM; new requests get "unavailable"
  }
}

const PASS: BodyOutcome = Object.freeze({ action: "continue" });

/** The response a filter's access log sees for a local reply. */
function localResponseContext(r: LocalResponse): HttpResponseContext {
  const body = typeof r.body === "string" ? new TextEncoder().encode(r.body) : r.body;
  const headers = new HeaderList(r.headers);
  if (!headers.has("content-length")) headers.set("content-length", String(body.length));
  return { status: r.status, responseHeaders: headers, responseBody: body };
}

function unavailable(message: string): FilterOutcome {
  return { action: "failed", kind: "unavailable", message };
}
