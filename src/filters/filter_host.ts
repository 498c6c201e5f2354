/**
 * The filter host: one stable `HttpFilter` facade per configured filter name whose generation is
 * swapped atomically. A new generation (config update, `reload(name)`, a rebuilt .wasm) is loaded
 * and configured beside the old one and swapped in only when ready; requests that started on the
 * old generation finish on it; a bad new generation is rejected and the old keeps serving.
 */
import type {
  FilterOutcome,
  FilterRef,
  FilterResolver,
  HttpFilter,
  HttpRequestContext,
  HttpResponseContext,
} from "../core/mod.ts";
import { errorCode, errorMessage, logger, orderFilterRefs, WeftError } from "../core/mod.ts";
import { filterMetrics } from "./filter_metrics.ts";
import { fetchModule, type FilterRegistry } from "./registry.ts";

const log = logger("filters");

/** Stands in while a filter cannot be loaded: every call fails, so its fail policy decides. */
class UnavailableFilter implements HttpFilter {
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

export interface ReloadResult {
  readonly name: string;
  readonly generation: number;
  readonly loadMs: number;
  readonly changed: boolean;
}

export class FilterHost implements FilterResolver {
  private readonly filters = new Map<string, ManagedFilter>();

  constructor(readonly registry: FilterRegistry) {}

  /** Loads every ref not loaded yet or changed. Rejects (the xDS NACK path) on the first bad one;
   * the filters already serving keep their current generation. */
  async apply(refs: readonly FilterRef[]): Promise<void> {
    for (const ref of refs) {
      const m = this.filters.get(ref.name);
      if (m && JSON.stringify(m.ref) === JSON.stringify(ref)) continue;
      await this.load(ref);
    }
  }

  /** Loads `ref` once; when the module cannot be fetched or loaded at start-up, the filter is
   * served as unavailable (its fail policy answers) instead of blocking readiness (istio#53279). */
  async ensure(ref: FilterRef): Promise<ManagedFilter> {
    const m = this.filters.get(ref.name);
    if (m) return m;
    try {
      await this.load(ref);
    } catch (e) {
      const u = new ManagedFilter(
        ref,
        new UnavailableFilter(ref.name, ref.failPolicy, errorMessage(e)),
      );
      this.filters.set(ref.name, u);
      log.error("filter unavailable", {
        filter: ref.name,
        code: errorCode(e),
        err: errorMessage(e),
      });
    }
    return this.filters.get(ref.name)!;
  }

  resolve(ref: FilterRef): HttpFilter {
    const m = this.filters.get(ref.name);
    if (m) return m;
    const u = new ManagedFilter(
      ref,
      new UnavailableFilter(ref.name, ref.failPolicy, "not loaded yet"),
    );
    this.filters.set(ref.name, u);
    void this.ensureLoaded(ref);
    return u;
  }

  private async ensureLoaded(ref: FilterRef): Promise<void> {
    try {
      await this.load(ref);
    } catch (e) {
      log.error("filter unavailable", {
        filter: ref.name,
        code: errorCode(e),
        err: errorMessage(e),
      });
    }
  }

  /** A service's chain in run order (phase, priority, name), ready for core's FilterChain. */
  filtersFor(refs: readonly FilterRef[]): HttpFilter[] {
    return orderFilterRefs(refs).map((r) => this.resolve(r));
  }

  get(name: string): ManagedFilter | undefined {
    return this.filters.get(name);
  }

  names(): string[] {
    return [...this.filters.keys()];
  }

  /** Re-reads the filter's module and swaps in a new generation when it changed (or `force`). */
  async reload(name: string, opts: { force?: boolean } = {}): Promise<ReloadResult> {
    const m = this.filters.get(name);
    if (!m) {
      throw new WeftError("filter_not_found", `Cannot reload filter "${name}": no such filter`);
    }
    return await this.load(m.ref, opts.force ?? true);
  }

  private async load(ref: FilterRef, force = true): Promise<ReloadResult> {
    const t0 = performance.now();
    const existing = this.filters.get(ref.name);
    try {
      const factory = this.registry.factoryFor(ref);
      const bytes = await fetchModule(ref, factory);
      const sha = await sha256(bytes);
      if (existing && !force && existing.sha256 === sha && existing.ref === ref) {
        return {
          name: ref.name,
          generation: existing.generation,
          loadMs: performance.now() - t0,
          changed: false,
        };
      }
      const next = await factory.create(ref, bytes);
      const m = existing ?? new ManagedFilter(ref, next, sha);
      m.ref = ref;
      m.swap(next); // the atomic swap: new requests see `next` from here on
      m.sha256 = sha;
      m.generation++;
      this.filters.set(ref.name, m);
      const loadMs = performance.now() - t0;
      filterMetrics.reloads.inc({ filter: ref.name, result: "ok" });
      log.info("filter loaded", {
        filter: ref.name,
        generation: m.generation,
        loadMs: Math.round(loadMs),
      });
      return { name: ref.name, generation: m.generation, loadMs, changed: true };
    } catch (e) {
      filterMetrics.reloads.inc({ filter: ref.name, result: "rejected" });
      filterMetrics.errors.inc({ filter: ref.name, kind: "config" });
      log.warn("filter generation rejected", {
        filter: ref.name,
        code: errorCode(e),
        err: errorMessage(e),
      });
      throw e;
    }
  }

  /** Close every generation (timers, VMs); the host is unusable afterwards. */
  close(): void {
    for (const m of this.filters.values()) m.close();
    this.filters.clear();
  }

  summary(): Record<string, unknown>[] {
    return [...this.filters.values()].map((m) => ({
      name: m.name,
      type: m.ref.type,
      url: m.ref.url,
      generation: m.generation,
      sha256: m.sha256,
      failPolicy: m.failPolicy,
    }));
  }
}

async function sha256(bytes: Uint8Array): Promise<string> {
  const d = await crypto.subtle.digest("SHA-256", bytes as Uint8Array<ArrayBuffer>);
  return [...new Uint8Array(d)].map((b) => b.toString(16).padStart(2, "0")).join("");
}
