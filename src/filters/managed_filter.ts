/**
 * One stable facade per filter (ManagedFilter) over its generations: requests stay on the
 * generation they started on (chunks of streamed bodies included), a swapped-out or retired
 * generation is closed after its last in-flight request. UnavailableFilter stands in while a
 * filter cannot be loaded.
 */
import type {
  BodyOutcome,
  FilterOutcome,
  FilterRef,
  HeaderMap,
  HttpFilter,
  HttpRequestContext,
  HttpResponseContext,
  TrailersOutcome,
} from "../core/mod.ts";

const PASS: BodyOutcome = Object.freeze({ action: "continue" });
const EMPTY = new Uint8Array(0);

/** Istio's stand-in for a module that could not be fetched (istio/istio pkg/wasm convert.go,
 * istio#53363): the filter's name is served as an RBAC filter that denies everything. */
const FETCH_FAILED_DENY: FilterOutcome = Object.freeze({
  action: "respond",
  response: Object.freeze({
    status: 403,
    headers: Object.freeze([["content-type", "text/plain"]] as const),
    body: "RBAC: access denied",
    details: "rbac_access_denied_matched_policy[none]",
  }),
});

/** Stands in while a filter cannot be loaded: every call fails, so its fail policy decides
 * (FAIL_OPEN skips it). Once its module could not be fetched or built (`fetchFailed`), a
 * FAIL_CLOSE or FAIL_RELOAD filter answers as Istio's deny-all RBAC stand-in: 403
 * `RBAC: access denied`; a trap at run time stays Envoy's 503 (filter_chain.ts). */
export class UnavailableFilter implements HttpFilter {
  readonly wantsRequestBody = false;
  readonly wantsResponseBody = false;
  constructor(
    readonly name: string,
    readonly failPolicy: FilterRef["failPolicy"],
    private readonly why: string,
    private readonly fetchFailed = false,
  ) {}
  onRequest(): FilterOutcome {
    if (this.fetchFailed && this.failPolicy !== "FAIL_OPEN") return FETCH_FAILED_DENY;
    return { action: "failed", kind: "unavailable", message: this.why };
  }
  onResponse(): FilterOutcome {
    return { action: "continue" };
  }
  onDone(): void {}
}

/** The generation a request started on, per ManagedFilter, kept on the request's context under
 * that filter's own symbol (invisible to filters: no string key, not enumerable by Object.keys
 * or JSON). A WeakMap insert and delete per filter per request cost about 0.2 µs each on Bun
 * (bench/l7/chain_cost.ts --managed); a property on the context costs a store. */
type StartedOn = Record<symbol, HttpFilter | undefined>;

export class ManagedFilter implements HttpFilter {
  private readonly slot: symbol = Symbol("weft.filter.generation");
  /** Requests in flight per generation, so a retired generation is closed after its last one:
   * the current generation's in a field (no Map update per request), older ones in the Map. */
  private currentInflight = 0;
  private readonly inflight = new Map<HttpFilter, number>();
  private readonly retired = new Set<HttpFilter>();
  generation = 0;

  constructor(public ref: FilterRef, public current: HttpFilter, public sha256 = "") {}

  get name(): string {
    return this.ref.name;
  }
  get failPolicy(): FilterRef["failPolicy"] {
    return this.ref.failPolicy;
  }
  get wantsRequestBody(): boolean {
    return this.current.wantsRequestBody;
  }
  get wantsResponseBody(): boolean {
    return this.current.wantsResponseBody;
  }
  get streamsRequestBody(): boolean {
    return this.current.streamsRequestBody ?? false;
  }
  get streamsResponseBody(): boolean {
    return this.current.streamsResponseBody ?? false;
  }

  /** Chunks go to the generation the request started on. */
  onRequestBodyChunk(
    ctx: HttpRequestContext,
    chunk: Uint8Array,
    eos: boolean,
  ): BodyOutcome | Promise<BodyOutcome> {
    const g = this.startedOn(ctx) ?? this.current;
    return g.onRequestBodyChunk?.(ctx, chunk, eos) ?? PASS;
  }
  onResponseBodyChunk(
    ctx: HttpRequestContext,
    res: HttpResponseContext,
    chunk: Uint8Array,
    eos: boolean,
  ): BodyOutcome | Promise<BodyOutcome> {
    const g = this.startedOn(ctx) ?? this.current;
    return g.onResponseBodyChunk?.(ctx, res, chunk, eos) ?? PASS;
  }

  /** Trailers follow the body: the generation's release hook, or (without one) its last empty
   * chunk with end-of-stream (body_stream.ts). */
  onRequestBodyBeforeTrailers(ctx: HttpRequestContext): BodyOutcome | Promise<BodyOutcome> {
    const g = this.startedOn(ctx) ?? this.current;
    if (g.onRequestBodyBeforeTrailers) return g.onRequestBodyBeforeTrailers(ctx);
    return g.onRequestBodyChunk?.(ctx, EMPTY, true) ?? PASS;
  }
  onResponseBodyBeforeTrailers(
    ctx: HttpRequestContext,
    res: HttpResponseContext,
  ): BodyOutcome | Promise<BodyOutcome> {
    const g = this.startedOn(ctx) ?? this.current;
    if (g.onResponseBodyBeforeTrailers) return g.onResponseBodyBeforeTrailers(ctx, res);
    return g.onResponseBodyChunk?.(ctx, res, EMPTY, true) ?? PASS;
  }

  /** Trailers go to the generation the request started on (no hook there: unchanged). */
  onRequestTrailers(
    ctx: HttpRequestContext,
    trailers: HeaderMap,
  ): TrailersOutcome | Promise<TrailersOutcome> {
    const g = this.startedOn(ctx) ?? this.current;
    return g.onRequestTrailers?.(ctx, trailers);
  }
  onResponseTrailers(
    ctx: HttpRequestContext,
    res: HttpResponseContext,
    trailers: HeaderMap,
  ): TrailersOutcome | Promise<TrailersOutcome> {
    const g = this.startedOn(ctx) ?? this.current;
    return g.onResponseTrailers?.(ctx, res, trailers);
  }

  private startedOn(ctx: HttpRequestContext): HttpFilter | undefined {
    return (ctx as unknown as StartedOn)[this.slot];
  }

  onRequest(ctx: HttpRequestContext): FilterOutcome | Promise<FilterOutcome> {
    const gen = this.current;
    const slots = ctx as unknown as StartedOn;
    if (slots[this.slot] === undefined) this.currentInflight++;
    slots[this.slot] = gen;
    return gen.onRequest(ctx);
  }
  onResponse(
    ctx: HttpRequestContext,
    res: HttpResponseContext,
  ): FilterOutcome | Promise<FilterOutcome> {
    return (this.startedOn(ctx) ?? this.current).onResponse(ctx, res);
  }
  onDone(ctx: HttpRequestContext): void {
    const started = this.startedOn(ctx);
    const gen = started ?? this.current;
    if (started !== undefined) {
      (ctx as unknown as StartedOn)[this.slot] = undefined; // stays a plain store: no delete
      if (gen === this.current) this.currentInflight--;
      else {
        const n = (this.inflight.get(gen) ?? 1) - 1;
        if (n > 0) this.inflight.set(gen, n);
        else this.inflight.delete(gen);
      }
    }
    gen.onDone(ctx);
    if (this.retired.size > 0 && this.retired.has(gen) && this.inflightOn(gen) === 0) {
      this.retired.delete(gen);
      gen.close?.();
    }
  }

  /** No longer referenced: close every generation once its in-flight requests are done. */
  retire(): void {
    for (const g of [...this.retired, this.current]) {
      if (this.inflightOn(g) > 0) this.retired.add(g);
      else {
        this.retired.delete(g);
        g.close?.();
      }
    }
  }

  /** Swap in a new generation; the old one is closed once its in-flight requests are done. */
  swap(next: HttpFilter): void {
    const old = this.current;
    if (old === next) return;
    // The outgoing generation's count moves to the Map, the incoming one's (if it had requests
    // in flight, swapped back) to the field.
    if (this.currentInflight > 0) this.inflight.set(old, this.currentInflight);
    this.currentInflight = this.inflight.get(next) ?? 0;
    this.inflight.delete(next);
    this.retired.delete(next); // current again: not to be closed after its requests
    this.current = next;
    if (this.inflightOn(old) > 0) this.retired.add(old);
    else old.close?.();
  }

  private inflightOn(g: HttpFilter): number {
    return g === this.current ? this.currentInflight : this.inflight.get(g) ?? 0;
  }

  close(): void {
    for (const g of this.retired) g.close?.();
    this.retired.clear();
    this.current.close?.();
  }
}
