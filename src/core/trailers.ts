/**
 * Trailers through the filter chain: a message's trailers (an HTTP/1.1 chunked trailer section
 * parsed by http1_body.ts, or an HTTP/2 trailers frame; forbidden fields already dropped) are
 * shown to the filters that have `onRequestTrailers` (chain order) / `onResponseTrailers`
 * (reverse order) as a HeaderMap they may change, once the body has been read, as Envoy's
 * decodeTrailers/encodeTrailers. A filter may hold them (its hook answers a Promise: proxy-wasm
 * paused until `proxy_continue_stream`) or answer locally: that throws `TrailersReply`, which the
 * body paths turn into a local reply (request) or a reset (response, already started). A hook
 * that throws is logged and skipped.
 */
import type { FilterChain } from "./filter_chain.ts";
import type {
  HttpFilter,
  HttpRequestContext,
  HttpResponseContext,
  LocalResponse,
  TrailersOutcome,
} from "./filter_api.ts";
import { HeaderList } from "./header_map.ts";
import type { Trailer } from "./http1_codec.ts";
import { logger } from "./log.ts";

const log = logger("http_proxy");

/** A trailers hook answered locally. */
export class TrailersReply extends Error {
  constructor(readonly response: LocalResponse) {
    super("local reply from a trailers hook");
  }
}

/** The trailers after `filters`, or a Promise when one of them holds them. */
export type TrailersStep = Trailer[] | Promise<Trailer[]>;

type Call = (f: HttpFilter, h: HeaderList) => TrailersOutcome | Promise<TrailersOutcome>;

function callOne(f: HttpFilter, call: Call, h: HeaderList, ctx: HttpRequestContext) {
  try {
    return call(f, h);
  } catch (e) {
    log.warn("trailer hook failed", { filter: f.name, requestId: ctx.requestId, err: String(e) });
    return undefined;
  }
}

function settle(o: TrailersOutcome): void {
  if (o && o.action === "respond") throw new TrailersReply(o.response);
}

function run(
  filters: readonly HttpFilter[],
  call: Call,
  t: Trailer[],
  ctx: HttpRequestContext,
): TrailersStep {
  if (filters.length === 0) return t;
  const h = new HeaderList(t);
  for (let i = 0; i < filters.length; i++) {
    const o = callOne(filters[i]!, call, h, ctx);
    if (o instanceof Promise) return rest(o, filters.slice(i + 1), call, h, ctx);
    settle(o);
  }
  return h.entries();
}

async function rest(
  first: Promise<TrailersOutcome>,
  filters: readonly HttpFilter[],
  call: Call,
  h: HeaderList,
  ctx: HttpRequestContext,
): Promise<Trailer[]> {
  settle(await first);
  for (const f of filters) {
    const o = callOne(f, call, h, ctx);
    settle(o instanceof Promise ? await o : o);
  }
  return h.entries();
}

/** What the request's trailers become through `chain`. */
export function requestTrailers(
  chain: FilterChain,
  ctx: HttpRequestContext,
): (t: Trailer[]) => TrailersStep {
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
): (t: Trailer[]) => TrailersStep {
  return (t) =>
    t.length === 0 ? t : run(
      chain.filters.filter((f) => f.onResponseTrailers).reverse(),
      (f, h) => f.onResponseTrailers!(ctx, res, h),
      t,
      ctx,
    );
}
