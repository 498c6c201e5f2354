/**
 * Trailers through the filter chain: the trailer section of a chunked body (parsed by
 * http1_body.ts, forbidden fields already dropped) is shown to the filters that have
 * `onRequestTrailers` (chain order) / `onResponseTrailers` (reverse order) as a HeaderMap they
 * may change, once the body has been read, as Envoy's decodeTrailers/encodeTrailers. A filter
 * that throws is logged and skipped (trailers cannot answer locally: the body already went on).
 */
import type { FilterChain } from "./filter_chain.ts";
import type { HttpFilter, HttpRequestContext, HttpResponseContext } from "./filter_api.ts";
import { HeaderList } from "./header_map.ts";
import type { Trailer } from "./http1_codec.ts";
import { logger } from "./log.ts";

const log = logger("http_proxy");

function run(
  filters: readonly HttpFilter[],
  call: (f: HttpFilter, h: HeaderList) => void,
  t: Trailer[],
  ctx: HttpRequestContext,
): Trailer[] {
  if (filters.length === 0) return t;
  const h = new HeaderList(t);
  for (const f of filters) {
    try {
      call(f, h);
    } catch (e) {
      log.warn("trailer hook failed", { filter: f.name, requestId: ctx.requestId, err: String(e) });
    }
  }
  return h.entries();
}

/** What the request's trailers become through `chain`. */
export function requestTrailers(
  chain: FilterChain,
  ctx: HttpRequestContext,
): (t: Trailer[]) => Trailer[] {
  // Most messages have no trailers: the chain is only looked at when some arrived.
  return (t) =>
    t.length === 0 ? t : run(
      chain.filters.filter((f) => f.onRequestTrailers),
      (f, h) => f.onRequestTrailers!(ctx, h),
      t,
      ctx,
    );
}

/** What the response's trailers become through `chain` (reverse order). */
export function responseTrailers(
  chain: FilterChain,
  ctx: HttpRequestContext,
  res: HttpResponseContext,
): (t: Trailer[]) => Trailer[] {
  return (t) =>
    t.length === 0 ? t : run(
      chain.filters.filter((f) => f.onResponseTrailers).reverse(),
      (f, h) => f.onResponseTrailers!(ctx, res, h),
      t,
      ctx,
    );
}
