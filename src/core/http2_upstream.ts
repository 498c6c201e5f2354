/**
 * HTTP/2 to the upstream (h2c, e.g. gRPC services) on weft's own HTTP/2: one multiplexed session
 * per route, dialled through the proxy's `dialUpstream`, so h2 downstream streams keep HTTP/2 end
 * to end, including trailers (grpc-status), with the same body phases as every other path. Used
 * when HttpProxyOptions.upstreamProtocol is "h2".
 */
import { applyResponseHeaders } from "./route_headers.ts";
import { Buffer } from "node:buffer";
import type { Duplex } from "node:stream";
import type { HttpRequestContext, LocalResponse, RouteChoice } from "./filter_api.ts";
import type { FilterChain } from "./filter_chain.ts";
import { HeaderList } from "./header_map.ts";
import { H2Session, type H2Stream } from "./h2/mod.ts";
import { type BodyReader, h2HasBody, h2Reader, h2Sink } from "./body_source.ts";
import { requestChunkCall, sendBody } from "./body_stream.ts";
import {
  answer,
  cutStream,
  HOP_BY_HOP as HOP,
  type RequestPlan,
  respondLocal,
} from "./http2_phases.ts";
import type { RetryPolicy, RoutePolicy } from "./route_policy.ts";
import {
  backoff,
  countRetry,
  countTimeout,
  type Failure,
  grpcRetriable,
  retriable,
  UPSTREAM_TIMEOUT,
} from "./route_exchange.ts";

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
 * response phase (http2_phases.ts `answer`). With a route `policy`, Envoy's router semantics
 * (route_exchange.ts decides what is retried and the back-off):
 *  - the route timeout runs from the end of the request (RouteAction.timeout: from the
 *    downstream end-of-stream until the response is complete), every try included: expiring
 *    before the response head resets the upstream stream (CANCEL) and answers 504, after it
 *    resets both streams;
 *  - retries (a body held in memory only: `holdForReplay`) after a reset, a refused stream
 *    (RST_STREAM REFUSED_STREAM or a GOAWAY below it), a failed connect, a per-try timeout
 *    (bounding each try until its response head, as on the HTTP/1.1 path), a status `retryOn`
 *    names, or a headers-only (trailers-only) gRPC response whose grpc-status a gRPC condition
 *    names (unavailable, cancelled, deadline-exceeded, resource-exhausted, internal).
 * Returns the status sent downstream. */
export async function forwardH2(
  pool: H2UpstreamPool,
  stream: H2Stream,
  ctx: HttpRequestContext,
  route: RouteChoice | undefined,
  chain: FilterChain,
  first: RequestPlan,
  maxBufferedBodyBytes: number,
  policy?: RoutePolicy,
  maxReplayBytes = 1 << 20,
): Promise<number> {
  // The mesh's default retries hold only a body that declares its length: a gRPC stream (no
  // content-length) is sent as it comes, so a bidirectional call is never held back by a policy
  // nobody wrote; a route's own retries hold any body up to the limit (Envoy keeps a copy while
  // it streams; weft holds it first).
  const hold = policy?.retries !== undefined &&
    (!policy.defaultRetries || declaredWithin(ctx, maxReplayBytes));
  const plan = hold ? await holdForReplay(stream, first, maxReplayBytes) : first;
  const replayable = plan.empty || plan.buffered !== undefined;
  const retry = replayable ? policy?.retries : undefined;
  const tries = 1 + (retry?.attempts ?? 0);
  const h: [string, string][] = [
    [":method", ctx.method],
    [":scheme", ctx.scheme],
    [":authority", ctx.authority],
    [":path", ctx.path],
  ];
  for (const [k, v] of ctx.requestHeaders.entries()) if (!HOP_BY_HOP.has(k)) h.push([k, v]);
  let up: H2Stream | undefined; // the current try's upstream stream
  // The route timeout: armed once the request is complete, disarmed when the response is.
  let timer: ReturnType<typeof setTimeout> | undefined;
  let deadline: number | undefined;
  let expired = false;
  let late: (e: Error) => void = () => {};
  const lateP = new Promise<never>((_, reject) => (late = reject));
  lateP.catch(() => {});
  const arm = (): void => {
    if (policy?.timeoutMs === undefined || timer !== undefined || expired) return;
    deadline = performance.now() + policy.timeoutMs;
    timer = setTimeout(() => {
      expired = true;
      countTimeout("route");
      up?.destroy(); // RST_STREAM CANCEL
      if (stream.headersSent) cutStream(stream, "route timeout");
      late(new Error("route timeout"));
    }, policy.timeoutMs);
  };
  const left = (): number | undefined =>
    deadline === undefined ? undefined : deadline - performance.now();
  if (replayable) arm();
  let downGone = false;
  const gone = new Promise<never>((_, reject) =>
    stream.once("close", () => {
      downGone = true;
      reject(new Error("downstream closed"));
    })
  );
  gone.catch(() => {});
  const reply = (r: LocalResponse): number => {
    stream.resume();
    respondLocal(stream, r);
    return r.status;
  };
  try {
    for (let n = 0;; n++) {
      const last = n >= tries - 1;
      let failure: Failure | undefined;
      let status = 0;
      let session: H2Session | undefined;
      try {
        session = await pool.session(route);
      } catch {
        failure = "connect-failure";
      }
      // A streaming request filter may answer locally mid-body: the upstream stream is then
      // reset and the local reply answers the downstream (or, after the response started,
      // resets it).
      let local: LocalResponse | undefined;
      let response: Promise<{ status: number }> | undefined;
      if (session) {
        try {
          ({ stream: up, response } = session.request(h, plan.empty));
        } catch {
          failure = "refused-stream"; // the session is draining (GOAWAY): never sent
        }
      }
      const cur = up;
      if (expired) {
        cur?.destroy();
        return reply(UPSTREAM_TIMEOUT);
      }
      if (cur && response) {
        if (!plan.empty) {
          const { src, buffered, streamers, onTrailers } = plan;
          sendBody(h2Sink(cur), src, buffered, streamers, requestChunkCall(ctx), ctx, onTrailers)
            .then(
              (l) => {
                if (!l) return arm();
                local = l;
                cur.destroy();
                if (stream.headersSent) cutStream(stream, "a request filter answered");
              },
              () => cur.destroy(),
            );
        }
        const perTry = retry?.perTryTimeoutMs;
        let tryLate = false;
        const tryTimer = perTry === undefined ? undefined : setTimeout(() => {
          tryLate = true;
          cur.destroy();
        }, perTry);
        try {
          response.catch(() => {}); // answered by the race below, or moot once the downstream left
          ({ status } = await Promise.race([response, gone, lateP]));
        } catch (e) {
          cur.destroy();
          if (local) return reply(local);
          if (expired) return reply(UPSTREAM_TIMEOUT);
          if (downGone) return upstreamReset.status;
          failure = tryLate
            ? "per-try-timeout"
            : (e as { code?: string }).code === "h2_stream_refused"
            ? "refused-stream"
            : "reset";
        } finally {
          clearTimeout(tryTimer);
        }
      }
      if (failure !== undefined) {
        if (failure === "per-try-timeout") countTimeout("per_try");
        if (last || !retriable(retry!.retryOn, failure)) {
          return reply(
            failure === "connect-failure"
              ? CONNECT_FAILURE
              : failure === "per-try-timeout"
              ? UPSTREAM_TIMEOUT
              : upstreamReset,
          );
        }
        if (!(await backoff(n, retry?.backoffBaseMs, left))) return routeTimeout(reply);
        countRetry(failure);
        continue;
      }
      const resUp = cur!;
      if (!last) {
        const why = retriable(retry!.retryOn, status) ? String(status) : grpcFailure(resUp, retry!);
        if (why !== undefined) {
          resUp.destroy(); // the answer is not wanted
          if (!(await backoff(n, retry?.backoffBaseMs, left))) return routeTimeout(reply);
          countRetry(why);
          continue;
        }
      }
      return await respond(resUp, status);
    }
  } finally {
    clearTimeout(timer);
    expired = true; // no timer is armed after the exchange
  }

  async function respond(resUp: H2Stream, status: number): Promise<number> {
    const resHeaders = new HeaderList();
    for (const [k, v] of resUp.headerList) if (!k.startsWith(":")) resHeaders.add(k, v);
    if (policy?.headers) applyResponseHeaders(policy.headers, route, resHeaders);
    try {
      return await Promise.race([
        answer(stream, ctx, chain, maxBufferedBodyBytes, {
          status,
          headers: resHeaders,
          src: h2HasBody(resUp) ? h2Reader(resUp) : undefined,
          declaredLength: Number(resHeaders.get("content-length") ?? 0) || 0,
          drop: () => resUp.destroy(),
        }),
        lateP,
      ]);
    } catch (e) {
      resUp.destroy();
      if (!expired) throw e;
      // Out of time while the response was being answered: before its head went out, the 504
      // answers; after it, the stream is reset (the timer did).
      if (stream.headersSent) return status;
      return reply(UPSTREAM_TIMEOUT);
    }
  }
}

function routeTimeout(reply: (r: LocalResponse) => number): number {
  countTimeout("route");
  return reply(UPSTREAM_TIMEOUT);
}

/** The gRPC retry condition a headers-only (trailers-only) response's grpc-status meets. */
function grpcFailure(up: H2Stream, retry: RetryPolicy): string | undefined {
  if (h2HasBody(up)) return undefined;
  const v = up.headerList.find(([k]) => k === "grpc-status")?.[1];
  return v !== undefined && /^\d+$/.test(v) ? grpcRetriable(retry.retryOn, Number(v)) : undefined;
}

class OverLimit extends Error {}

function declaredWithin(ctx: HttpRequestContext, maxBytes: number): boolean {
  const v = ctx.requestHeaders.get("content-length");
  return v !== undefined && v !== null && /^\d+$/.test(v) && Number(v) <= maxBytes;
}

/** A body streamed without filters, read into memory up to `maxBytes` so a retry can send it
 * again (Envoy buffers a request for retries up to its limit); a longer one goes on once, what
 * was read first. */
async function holdForReplay(
  stream: H2Stream,
  plan: RequestPlan,
  maxBytes: number,
): Promise<RequestPlan> {
  if (!plan.src || plan.streamers.length) return plan;
  const parts: Buffer[] = [];
  let size = 0;
  try {
    const t = await plan.src((b) => {
      parts.push(b);
      size += b.length;
      if (size > maxBytes) {
        stream.pause(); // the rest waits for the reader below
        throw new OverLimit();
      }
      return true;
    });
    const buffered = { body: Buffer.concat(parts), trailers: await plan.onTrailers(t) };
    return { ...plan, src: undefined, buffered };
  } catch (e) {
    if (!(e instanceof OverLimit)) throw e;
  }
  const rest = h2Reader(stream);
  const src: BodyReader = async (onChunk) => {
    for (const p of parts) {
      const r = onChunk(p);
      if (r instanceof Promise) await r;
    }
    const t = rest(onChunk);
    stream.resume();
    return await t;
  };
  return { ...plan, src };
}
