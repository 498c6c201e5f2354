/** Per-request accounting of the L7 proxy: `weft_http_requests_total` and the access record. */
import type { Direction, HttpRequestContext } from "./filter_api.ts";
import { logger } from "./log.ts";
import { metrics } from "./metrics.ts";

const access = logger("http_proxy.access");
const requests = metrics.counter(
  "weft_http_requests_total",
  "HTTP requests through the L7 proxy.",
  [
    "direction",
    "code_class",
  ],
);

/** The counter bound per direction and status class (no label key built per request). */
const bound = new Map<string, () => void>();

/** Counts the request and writes its access record (debug level: opt-in, it costs µs). */
export function countRequest(direction: Direction, status: number, ctx: HttpRequestContext): void {
  const key = direction + Math.floor(status / 100);
  let inc = bound.get(key);
  if (!inc) {
    inc = requests.bind({ direction, code_class: `${Math.floor(status / 100)}xx` });
    bound.set(key, inc);
  }
  inc();
  if (access.enabled("debug")) {
    access.debug("request", {
      requestId: ctx.requestId,
      direction: ctx.direction,
      protocol: ctx.protocol,
      method: ctx.method,
      path: ctx.path,
      authority: ctx.authority,
      status,
      source: ctx.peer.sourcePrincipal ?? ctx.peer.sourceAddress,
    });
  }
}
