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

/** Stands in while a filter cannot be loaded: every call fails, so its fail policy decides. */
export class UnavailableFilter implements HttpFilter {
  readonly wantsRequestBody = false;
  readonly wantsResponseBody = false;
  constructor(
    readonly name: string,
    readonly failPolicy: FilterRef["failPolicy"],
    private readonly why: string,
  ) {}
  onRequest(): FilterOutcome {
    return { action: "failed", kind: "unavailable", message: this.why };
  }
  onResponse(): FilterOutcome {
    return { action: "continue" };
  }
  onDone(): void {}
}

export class ManagedFilter implements HttpFilter {
  private readonly started = new WeakMap<HttpRequestContext, HttpFilter>();
  /** Requests in flight per generation, so a retired generation is closed after its last one. */
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
    const g = this.started.get(ctx) ?? this.current;
    return g.onRequestBodyChunk?.(ctx, chunk, eos) ?? PASS;
  }
  onResponseBodyChunk(
    ctx: HttpRequestContext,
    res: HttpResponseContext,
    chunk: Uint8Array,
    eos: boolean,
  ): BodyOutcome | Promise<BodyOutcome> {
    const g = this.started.get(ctx) ?? this.current;
    return g.onResponseBodyChunk?.(ctx, res, chunk, eos) ?? PASS;
  }

  /** Trailers follow the body: the generation's release hook, or (without one) its last empty
   * chunk with end-of-stream (body_stream.ts). */
  onRequestBodyBeforeTrailers(ctx: HttpRequestContext): BodyOutcome | Promise<BodyOutcome> {
    const g = this.started.get(ctx) ?? this.current;
    if (g.onRequestBodyBeforeTrailers) return g.onRequestBodyBeforeTrailers(ctx);
    return g.onRequestBodyChunk?.(ctx, EMPTY, true) ?? PASS;
  }
  onResponseBodyBeforeTrailers(
    ctx: HttpRequestContext,
    res: HttpResponseContext,
  ): BodyOutcome | Promise<BodyOutcome> {
    const g = this.started.get(ctx) ?? this.current;
    if (g.onResponseBodyBeforeTrailers) return g.onResponseBodyBeforeTrailers(ctx, res);
    return g.onResponseBodyChunk?.(ctx, res, EMPTY, true) ?? PASS;
  }

  /** Trailers go to the generation the request started on (no hook there: unchanged). */
  onRequestTrailers(
    ctx: HttpRequestContext,
    trailers: HeaderMap,
  ): TrailersOutcome | Promise<TrailersOutcome> {
    const g = this.started.get(ctx) ?? this.current;
    return g.onRequestTrailers?.(ctx, trailers);
  }
  onResponseTrailers(
    ctx: HttpRequestContext,
    res: HttpResponseContext,
    trailers: HeaderMap,
  ): TrailersOutcome | Promise<TrailersOutcome> {
    const g = this.started.get(ctx) ?? this.current;
    return g.onResponseTrailers?.(ctx, res, trailers);
  }

  onRequest(ctx: HttpRequestContext): FilterOutcome | Promise<FilterOutcome> {
    const gen = this.current;
    if (!this.started.has(ctx)) this.inflight.set(gen, (this.inflight.get(gen) ?? 0) + 1);
    this.started.set(ctx, gen);
    return gen.onRequest(ctx);
  }
  onResponse(
    ctx: HttpRequestContext,
    res: HttpResponseContext,
  ): FilterOutcome | Promise<FilterOutcome> {
    return (this.started.get(ctx) ?? this.current).onResponse(ctx, res);
  }
  onDone(ctx: HttpRequestContext): void {
    const gen = this.started.get(ctx) ?? this.current;
    if (this.started.delete(ctx)) {
      const n = (this.inflight.get(gen) ?? 1) - 1;
      if (n > 0) this.inflight.set(gen, n);
      else this.inflight.delete(gen);
    }
    gen.onDone(ctx);
    if (this.retired.has(gen) && !this.inflight.has(gen)) {
      this.retired.delete(gen);
      gen.close?.();
    }
  }

  /** No longer referenced: close every generation once its in-flight requests are done. */
  retire(): void {
    for (const g of [...this.retired, this.current]) {
      if (this.inflight.has(g)) this.retired.add(g);
      else {
        this.retired.delete(g);
        g.close?.();
      }
    }
  }

  /** Swap in a new generation; the old one is closed once its in-flight requests are done. */
  swap(next: HttpFilter): void {
    const old = this.current;
    this.current = next;
    if (old === next) return;
    if (this.inflight.has(old)) this.retired.add(old);
    else old.close?.();
  }

  close(): void {
    for (const g of this.retired) g.close?.();
    this.retired.clear();
    this.current.close?.();
  }
}
