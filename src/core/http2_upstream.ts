/**
 * HTTP/2 to the upstream (h2c, e.g. gRPC services) on weft's own HTTP/2: one multiplexed session
 * per route, dialled through the proxy's `dialUpstream`, so h2 downstream streams keep HTTP/2 end
 * to end, including trailers (grpc-status), with the same body phases as every other path. Used
 * when HttpProxyOptions.upstreamProtocol is "h2".
 */
import type { Duplex } from "node:stream";
import type { HttpRequestContext, LocalResponse, RouteChoice } from "./filter_api.ts";
import type { FilterChain } from "./filter_chain.ts";
import { HeaderList } from "./header_map.ts";
import { ErrorCode, H2ProtocolError, H2Session, type H2Stream } from "./h2/mod.ts";
import { h2HasBody, h2Reader, h2Sink } from "./body_source.ts";
import { requestChunkCall, sendBody } from "./body_stream.ts";
import { answer, HOP_BY_HOP as HOP, type RequestPlan, respondLocal } from "./http2_phases.ts";
import type { RoutePolicy } from "./route_policy.ts";
import { routeTimedOut, UPSTREAM_TIMEOUT } from "./route_exchange.ts";

const HOP_BY_HOP = new Set([...HOP, "host"]);

export class H2UpstreamPool {
  private readonly sessions = new Map<string, Promise<H2Session>>();

  constructor(private readonly dial: (route?: RouteChoice) => Promise<Duplex>) {}

  session(route: RouteChoice | undefined): Promise<H2Session> {
    const key = route ? `${route.service}|${route.subset ?? ""}` : "";
    const s = this.sessions.get(key);
    if (s) {
      return s.then((x) => {
        if (x.usable) return x;
        if (this.sessions.get(key) === s) this.sessions.delete(key);
        return this.session(route);
      });
    }
    const made = this.dial(route).then((sock) => {
      const session = new H2Session(sock, "client", {
        streamWindowBytes: 256 * 1024,
        connectionWindowBytes: 1 << 20,
        maxFrameBytes: 16384,
      });
      const drop = (): void => {
        if (this.sessions.get(key) === made) this.sessions.delete(key);
      };
      session.onGoaway(drop);
      session.closed.then(drop);
      return session;
    });
    made.catch(() => {
      if (this.sessions.get(key) === made) this.sessions.delete(key);
    });
    this.sessions.set(key, made);
    return made;
  }

  close(): void {
    for (const s of this.sessions.values()) s.then((x) => x.destroy(), () => {});
    this.sessions.clear();
  }
}

const CONNECT_FAILURE: LocalResponse = {
  status: 503,
  headers: [],
  body: "upstream connect error",
  details: "upstream_connect_failure",
};

const upstreamReset: LocalResponse = {
  status: 503,
  headers: [],
  body: "upstream reset",
  details: "upstream_reset_before_response_started",
};

/** Forwards one h2 downstream stream over an HTTP/2 upstream session: the request body goes on
 * as `plan` says while the response is awaited (gRPC streams both ways at once), then the
 * response phase (http2_phases.ts `answer`). With a route `policy` its timeout runs from the end
 * of the request (Envoy's RouteAction.timeout: from the downstream end-of-stream until the
 * response is complete): expiring before the response head resets the upstream stream (CANCEL)
 * and answers 504, after it resets both streams. Returns the status sent downstream. */
export async function forwardH2(
  pool: H2UpstreamPool,
  stream: H2Stream,
  ctx: HttpRequestContext,
  route: RouteChoice | undefined,
  chain: FilterChain,
  plan: RequestPlan,
  maxBufferedBodyBytes: number,
  policy?: RoutePolicy,
): Promise<number> {
  let session: H2Session;
  try {
    session = await pool.session(route);
  } catch {
    respondLocal(stream, CONNECT_FAILURE);
    return 503;
  }
  const h: [string, string][] = [
    [":method", ctx.method],
    [":scheme", ctx.scheme],
    [":authority", ctx.authority],
    [":path", ctx.path],
  ];
  for (const [k, v] of ctx.requestHeaders.entries()) if (!HOP_BY_HOP.has(k)) h.push([k, v]);
  let up: H2Stream;
  let response: Promise<{ status: number }>;
  try {
    ({ stream: up, response } = session.request(h, plan.empty));
  } catch {
    respondLocal(stream, upstreamReset);
    return 503;
  }
  // The route timeout: armed once the request is complete, disarmed when the response is.
  let timer: ReturnType<typeof setTimeout> | undefined;
  let expired = false;
  let late: (e: Error) => void = () => {};
  const lateP = new Promise<never>((_, reject) => (late = reject));
  lateP.catch(() => {});
  const arm = (): void => {
    if (policy?.timeoutMs === undefined || timer !== undefined || expired) return;
    timer = setTimeout(() => {
      expired = true;
      routeTimedOut();
      up.destroy(); // RST_STREAM CANCEL
      // A reset, never a clean END_STREAM on a cut response.
      if (stream.headersSent) {
        stream.destroy(new H2ProtocolError(ErrorCode.CANCEL, "route timeout"));
      }
      late(new Error("route timeout"));
    }, policy.timeoutMs);
  };
  // A streaming request filter may answer locally mid-body: the upstream stream is then reset
  // and the local reply answers the downstream (or, after the response started, resets it).
  let local: LocalResponse | undefined;
  if (plan.empty) arm();
  else {
    const { src, buffered, streamers, onTrailers } = plan;
    sendBody(h2Sink(up), src, buffered, streamers, requestChunkCall(ctx), ctx, onTrailers).then(
      (l) => {
        if (!l) return arm();
        local = l;
        up.destroy();
        if (stream.headersSent) stream.destroy();
      },
      () => up.destroy(),
    );
  }
  const gone = new Promise<never>((_, reject) =>
    stream.once("close", () => reject(new Error("downstream closed")))
  );
  gone.catch(() => {});
  try {
    let status: number;
    try {
      response.catch(() => {}); // answered by the race below, or moot once the downstream left
      ({ status } = await Promise.race([response, gone, lateP]));
    } catch {
      up.destroy();
      const r = local ?? (expired ? UPSTREAM_TIMEOUT : upstreamReset);
      stream.resume();
      respondLocal(stream, r);
      return r.status;
    }
    const resHeaders = new HeaderList();
    for (const [k, v] of up.headerList) if (!k.startsWith(":")) resHeaders.add(k, v);
    try {
      return await Promise.race([
        answer(stream, ctx, chain, maxBufferedBodyBytes, {
          status,
          headers: resHeaders,
          src: h2HasBody(up) ? h2Reader(up) : undefined,
          declaredLength: Number(resHeaders.get("content-length") ?? 0) || 0,
          drop: () => up.destroy(),
        }),
        lateP,
      ]);
    } catch (e) {
      up.destroy();
      if (!expired) throw e;
      // Out of time while the response was being answered: before its head went out, the 504
      // answers; after it, the stream is reset (the timer did).
      if (stream.headersSent) return status;
      stream.resume();
      respondLocal(stream, UPSTREAM_TIMEOUT);
      return UPSTREAM_TIMEOUT.status;
    }
  } finally {
    clearTimeout(timer);
    expired = true; // no timer is armed after the exchange
  }
}
