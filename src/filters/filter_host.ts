/**
 * The filter host: one stable `HttpFilter` facade per configured filter name whose generation is
 * swapped atomically. A new generation (config update, `reload(name)`, a rebuilt .wasm) is loaded
 * and configured beside the old one and swapped in only when ready; requests that started on the
 * old generation finish on it; a bad new generation is rejected and the old keeps serving.
 */
import type { FilterRef, FilterResolver, HttpFilter } from "../core/mod.ts";
import { errorCode, errorMessage, logger, orderFilterRefs, WeftError } from "../core/mod.ts";
import { countFilterError, filterMetrics } from "./filter_metrics.ts";
import { sha256Hex } from "./component/component_loader.ts";
import { fetchModule, type FilterRegistry } from "./registry.ts";
import { ManagedFilter, UnavailableFilter } from "./managed_filter.ts";
import { FetchRetries, isFetchFailure } from "./fetch_retry.ts";
import { withoutPullEnv } from "./oci_fetch.ts";

export { ManagedFilter };

const log = logger("filters");

export interface ReloadResult {
  readonly name: string;
  readonly generation: number;
  readonly loadMs: number;
  readonly changed: boolean;
}

/** A filter's identity: (scope, name). One name in two scopes is two filters. */
export function filterKey(
  ref: { readonly name: string; readonly scope?: string | undefined },
): string {
  return `${ref.scope ?? ""}\u0000${ref.name}`;
}

export class FilterHost implements FilterResolver {
  private readonly filters = new Map<string, ManagedFilter>();

  constructor(readonly registry: FilterRegistry) {}

  /** Applies a snapshot's filters all-or-nothing: every new or changed generation is built
   * first; if any fails, the ones built are closed and the error is thrown (the NACK / reject
   * path) with nothing swapped. Then all are swapped at once, and filters the snapshot no longer
   * references are retired (closed after their in-flight requests). Duplicate (scope, name)
   * pairs with different configs are a config error. */
  async apply(refs: readonly FilterRef[]): Promise<void> {
    const wanted = new Map<string, FilterRef>();
    for (const ref of refs) {
      const k = filterKey(ref);
      const prev = wanted.get(k);
      if (prev && JSON.stringify(prev) !== JSON.stringify(ref)) {
        throw new WeftError(
          "filter_duplicate",
          `Cannot apply filters: two different filters named "${ref.name}" in scope ` +
            `"${ref.scope ?? ""}"`,
          { hint: "give filters in one scope distinct names" },
        );
      }
      wanted.set(k, ref);
    }
    const built: { key: string; ref: FilterRef; next: HttpFilter; sha: string; t0: number }[] = [];
    const unfetched: { key: string; ref: FilterRef; err: unknown }[] = [];
    try {
      for (const [key, ref] of wanted) {
        const m = this.filters.get(key);
        if (m && !(m.current instanceof UnavailableFilter) && sameRef(m.ref, ref)) continue;
        const pending = this.retries.pendingRef(key);
        if (pending && sameRef(pending, ref)) continue; // still being fetched, with backoff
        const t0 = performance.now();
        try {
          const { next, sha } = await this.build(ref);
          built.push({ key, ref, next, sha, t0 });
        } catch (e) {
          if (!isFetchFailure(ref, e)) throw e;
          unfetched.push({ key, ref, err: e });
        }
      }
    } catch (e) {
      for (const b of built) b.next.close?.();
      throw e;
    }
    this.wanted = wanted;
    for (const b of built) {
      this.retries.stop(b.key);
      this.install(b.key, b.ref, b.next, b.sha, b.t0);
    }
    for (const u of unfetched) this.standIn(u.key, u.ref, u.err);
    for (const [key, m] of this.filters) {
      if (wanted.has(key)) continue;
      this.filters.delete(key);
      this.retries.stop(key);
      m.retire();
      log.info("filter retired", { filter: m.name, filterScope: m.ref.scope ?? "" });
    }
  }

  /** A module that cannot be fetched (Istio's fetch failure; a config or load error is not one):
   * a filter with a good generation keeps it; one without is served as Istio's stand-in (403 deny
   * all, or skipped under FAIL_OPEN: managed_filter.ts) so the node still becomes ready
   * (istio#53279). Either way the fetch is retried with backoff (istio#46033: no pull retry)
   * until it works or the ref goes. */
  private standIn(key: string, ref: FilterRef, err: unknown): void {
    const m = this.filters.get(key);
    if (!m || m.current instanceof UnavailableFilter) {
      const u = new UnavailableFilter(ref.name, ref.failPolicy, errorMessage(err), true);
      if (m) {
        m.ref = ref;
        m.swap(u);
      } else this.filters.set(key, new ManagedFilter(ref, u));
      log.error("filter unavailable", {
        filter: ref.name,
        filterScope: ref.scope ?? "",
        failPolicy: ref.failPolicy,
        code: errorCode(err),
        err: errorMessage(err),
      });
    }
    this.scheduleRetry(key, ref, 0);
  }

  /** The refs of the last apply (a fetch retry installs only what is still wanted). */
  private wanted: ReadonlyMap<string, FilterRef> = new Map();
  private readonly retries = new FetchRetries();

  private scheduleRetry(key: string, ref: FilterRef, n: number): void {
    this.retries.schedule(key, ref, n, () => {
      const m = this.filters.get(key);
      if (!m) return; // no longer configured
      const t0 = performance.now();
      const stillWanted = () =>
        this.filters.get(key) === m && this.retries.pendingRef(key) === undefined &&
        sameRef(this.wanted.get(key) ?? ref, ref);
      this.build(ref).then(({ next, sha }) => {
        // A newer apply may have installed another generation while this one was fetched.
        if (stillWanted()) this.install(key, ref, next, sha, t0);
        else next.close?.();
      }, (e) => {
        if (stillWanted() && isFetchFailure(ref, e)) this.scheduleRetry(key, ref, n + 1);
      }).catch((e) => {
        // install() threw: the serving generation stays; nothing may reject unhandled.
        log.error("filter retry failed", { filter: ref.name, err: errorMessage(e) });
      });
    });
  }

  /** Loads `ref` once; when the module cannot be fetched or loaded at start-up, the filter is
   * served as unavailable (its fail policy answers) instead of blocking readiness (istio#53279). */
  async ensure(ref: FilterRef): Promise<ManagedFilter> {
    const m = this.filters.get(filterKey(ref));
    if (m) return m;
    try {
      await this.load(ref);
    } catch (e) {
      const u = new ManagedFilter(
        ref,
        new UnavailableFilter(ref.name, ref.failPolicy, errorMessage(e), true),
      );
      this.filters.set(filterKey(ref), u);
      log.error("filter unavailable", {
        filter: ref.name,
        code: errorCode(e),
        err: errorMessage(e),
      });
    }
    return this.filters.get(filterKey(ref))!;
  }

  resolve(ref: FilterRef): HttpFilter {
    const m = this.filters.get(filterKey(ref));
    if (m) return m;
    const u = new ManagedFilter(
      ref,
      new UnavailableFilter(ref.name, ref.failPolicy, "not loaded yet"),
    );
    this.filters.set(filterKey(ref), u);
    void this.ensureLoaded(ref);
    return u;
  }

  private async ensureLoaded(ref: FilterRef): Promise<void> {
    try {
      await this.load(ref);
    } catch (e) {
      const m = this.filters.get(filterKey(ref));
      if (m?.current instanceof UnavailableFilter) {
        m.swap(new UnavailableFilter(ref.name, ref.failPolicy, errorMessage(e), true));
      }
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

  /** The filter named `name` in `scope` (default: the unscoped one, else the only one). */
  get(name: string, scope?: string): ManagedFilter | undefined {
    const exact = this.filters.get(filterKey({ name, scope }));
    if (exact || scope !== undefined) return exact;
    const all = [...this.filters.values()].filter((m) => m.name === name);
    return all.length === 1 ? all[0] : undefined;
  }

  /** Every filter named `name`, whatever its scope. */
  byName(name: string): ManagedFilter[] {
    return [...this.filters.values()].filter((m) => m.name === name);
  }

  names(): string[] {
    return [...new Set([...this.filters.values()].map((m) => m.name))];
  }

  /** Re-reads the filter's module and swaps in a new generation when it changed (or `force`). */
  async reload(name: string, opts: { force?: boolean } = {}): Promise<ReloadResult> {
    const all = [...this.filters.values()].filter((m) => m.name === name);
    if (all.length === 0) {
      throw new WeftError("filter_not_found", `Cannot reload filter "${name}": no such filter`);
    }
    let last: ReloadResult | undefined;
    for (const m of all) last = await this.load(m.ref, opts.force ?? true);
    return last!;
  }

  /** Fetch and build one generation, not yet installed. */
  private async build(ref: FilterRef): Promise<{ next: HttpFilter; sha: string }> {
    try {
      const factory = this.registry.factoryFor(ref);
      const bytes = await fetchModule(ref, factory);
      const sha = sha256Hex(bytes);
      // The pull secret and policy are the host's, not the plugin's (Istio's agent strips them).
      return { next: await factory.create(withoutPullEnv(ref), bytes), sha };
    } catch (e) {
      this.rejected(ref, e);
      throw e;
    }
  }

  private rejected(ref: FilterRef, e: unknown): void {
    filterMetrics.reloads.inc({ filter: ref.name, result: "rejected" });
    countFilterError(ref.name, "config");
    log.warn("filter generation rejected", {
      filter: ref.name,
      filterScope: ref.scope ?? "",
      code: errorCode(e),
      err: errorMessage(e),
    });
  }

  /** Swap `next` in (the atomic step: new requests see it from here on). */
  private install(key: string, ref: FilterRef, next: HttpFilter, sha: string, t0: number): number {
    const existing = this.filters.get(key);
    const m = existing ?? new ManagedFilter(ref, next, sha);
    m.ref = ref;
    m.swap(next);
    m.sha256 = sha;
    m.generation++;
    this.filters.set(key, m);
    filterMetrics.reloads.inc({ filter: ref.name, result: "ok" });
    log.info("filter loaded", {
      filter: ref.name,
      filterScope: ref.scope ?? "",
      generation: m.generation,
      loadMs: Math.round(performance.now() - t0),
    });
    return m.generation;
  }

  private async load(ref: FilterRef, force = true): Promise<ReloadResult> {
    const t0 = performance.now();
    const key = filterKey(ref);
    const existing = this.filters.get(key);
    if (existing && !force) {
      let bytes: Uint8Array;
      try {
        bytes = await fetchModule(ref, this.registry.factoryFor(ref));
      } catch (e) {
        this.rejected(ref, e);
        throw e;
      }
      if (existing.sha256 === sha256Hex(bytes) && existing.ref === ref) {
        return {
          name: ref.name,
          generation: existing.generation,
          loadMs: performance.now() - t0,
          changed: false,
        };
      }
    }
    const { next, sha } = await this.build(ref);
    const generation = this.install(key, ref, next, sha, t0);
    return { name: ref.name, generation, loadMs: performance.now() - t0, changed: true };
  }

  /** Close every generation (timers, VMs); the host is unusable afterwards. */
  close(): void {
    this.retries.stopAll();
    for (const m of this.filters.values()) m.close();
    this.filters.clear();
  }

  summary(): Record<string, unknown>[] {
    return [...this.filters.values()].map((m) => ({
      name: m.name,
      scope: m.ref.scope ?? "",
      type: m.ref.type,
      url: m.ref.url,
      generation: m.generation,
      sha256: m.sha256,
      failPolicy: m.failPolicy,
    }));
  }
}

function sameRef(a: FilterRef, b: FilterRef): boolean {
  return a === b || JSON.stringify(a) === JSON.stringify(b);
}
