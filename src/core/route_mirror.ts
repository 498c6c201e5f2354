/**
 * Request mirroring on the request's route (Istio VirtualService `mirror`/`mirrors` with
 * `mirrorPercentage`, Envoy's RouteAction request_mirror_policies; l7-semantics S7/S15): a copy
 * of the request goes to the mirror's service (subset) over HTTP/1.1, with the authority's host
 * suffixed `-shadow` as Envoy does, fire and forget: its answer is read up to the head and
 * dropped, never awaited by the request, and a failure is only counted. A request whose body is
 * still streaming (not held in memory) is not mirrored: weft has no second copy of it (Envoy
 * streams one to the shadow).
 */
import type { HttpRequestContext, RouteChoice } from "./filter_api.ts";
import { serializeHead } from "./http1_codec.ts";
import type { Upstream } from "./http1_upstream.ts";
import { readUpstreamHead } from "./http1_duplex.ts";
import { HOP_BY_HOP } from "./http2_phases.ts";
import { metrics } from "./metrics.ts";
import type { RouteMirror } from "./route_policy.ts";

const mirrored = metrics.counter(
  "weft_http_mirror_requests_total",
  "Requests mirrored by route mirror policies, by outcome (sent: the mirror answered; failed).",
  ["result"],
);

/** A mirror gets this long for its answer's head (Envoy bounds shadows by the route timeout). */
const MIRROR_TIMEOUT_MS = 10_000;

/** Envoy's shadow authority: `-shadow` after the host, before any port. */
export function shadowAuthority(authority: string): string {
  const m = /^(.*?)(:\d+)?$/.exec(authority)!;
  return `${m[1]}-shadow${m[2] ?? ""}`;
}

/** Sends the mirrors of `mirrors` that draw this request; returns at once. `body`: the whole
 * request body (or undefined for none). */
export function mirrorRequest(
  mirrors: readonly RouteMirror[],
  ctx: HttpRequestContext,
  body: Uint8Array | undefined,
  acquire: (route: RouteChoice) => Promise<Upstream>,
  random: () => number = Math.random,
): void {
  for (const m of mirrors) {
    if (!(m.perMillion > 0 && random() * 1_000_000 < m.perMillion)) continue;
    const headers: [string, string][] = [["host", shadowAuthority(ctx.authority)]];
    for (const [k, v] of ctx.requestHeaders.entries()) {
      if (k !== "host" && k !== "content-length" && !HOP_BY_HOP.has(k)) headers.push([k, v]);
    }
    if (body?.length || ctx.method === "POST" || ctx.method === "PUT") {
      headers.push(["content-length", String(body?.length ?? 0)]);
    }
    headers.push(["connection", "close"]);
    const head = serializeHead(`${ctx.method} ${ctx.path} HTTP/1.1`, headers);
    send(m.route, head, body, acquire).then(
      (ok) => mirrored.inc({ result: ok ? "sent" : "failed" }),
      () => mirrored.inc({ result: "failed" }),
    );
  }
}

async function send(
  route: RouteChoice,
  head: Uint8Array,
  body: Uint8Array | undefined,
  acquire: (route: RouteChoice) => Promise<Upstream>,
): Promise<boolean> {
  const up = await acquire(route);
  const timer = setTimeout(() => up.stream.destroy(), MIRROR_TIMEOUT_MS);
  try {
    up.stream.write(head);
    if (body?.length) up.stream.write(body);
    return (await readUpstreamHead(up)) !== null;
  } finally {
    clearTimeout(timer);
    up.stream.destroy(); // the answer is not wanted
  }
}
