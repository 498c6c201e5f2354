/** Per-filter metrics, shared by every filter implementation in src/filters. */
import {
  type Counter,
  type FilterFailureKind,
  type Histogram,
  type HttpRequestContext,
  metrics,
} from "../core/mod.ts";

const BUCKETS = [1e-6, 5e-6, 2e-5, 1e-4, 5e-4, 2e-3, 1e-2, 5e-2, 0.25, 1];

export interface FilterMetrics {
  readonly calls: Counter;
  readonly errors: Counter;
  readonly duration: Histogram;
  readonly guestCounter: Counter;
  readonly reloads: Counter;
}

export const filterMetrics: FilterMetrics = {
  calls: metrics.counter("weft_filter_calls_total", "Filter hook calls.", ["filter", "phase"]),
  errors: metrics.counter(
    "weft_filter_errors_total",
    "Filter failures by kind (trap, timeout, memory, callout, bad_output, unavailable, config), once per request.",
    ["filter", "kind"],
  ),
  duration: metrics.histogram(
    "weft_filter_duration_seconds",
    "Filter hook call latency, sampled (1 call in 8).",
    ["filter", "phase"],
    BUCKETS,
  ),
  guestCounter: metrics.counter(
    "weft_filter_counter_total",
    "Counters bumped by filters themselves (counter-add).",
    ["filter", "name"],
  ),
  reloads: metrics.counter(
    "weft_filter_reloads_total",
    "Filter generations loaded, by result.",
    ["filter", "result"],
  ),
};

/** Requests whose failure is already counted, per filter name. */
const counted = new WeakMap<HttpRequestContext, Set<string>>();

/** Count one failure of `filter`; a request (when given) is counted at most once per filter,
 * whichever phases fail. Returns false when it was already counted. */
export function countFilterError(
  filter: string,
  kind: FilterFailureKind | "config",
  ctx?: HttpRequestContext,
): boolean {
  if (ctx) {
    let names = counted.get(ctx);
    if (!names) counted.set(ctx, names = new Set());
    if (names.has(filter)) return false;
    names.add(filter);
  }
  filterMetrics.errors.inc({ filter, kind });
  return true;
}
