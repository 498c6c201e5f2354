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

/** The counter bound per direction and status class (no label key or string built per
 * request): [inbound 1xx..5xx, outbound 1xx..5xx] by index. */
const bound: ((() => void) | undefined)[] = [];

/** Counts the request and writes its access record (debug level: opt-in, it costs µs). */
export function countRequest(direction: Direction, status: number, ctx: HttpRequestContext): void {
  const cls = Math.floor(status / 100);
  if (cls >= 1 && cls <= 9) {
    const i = (direction === "inbound" ? 0 : 10) + cls;
    let inc = bound[i];
    if (!inc) bound[i] = inc = requests.bind({ direction, code_class: `${cls}xx` });
    inc();
  } else requests.inc({ direction, code_class: `${cls}xx` });
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
