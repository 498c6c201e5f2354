/**
 * The upstream exchange of an HTTP/1.1 request in the L7 proxy, after the request chain: the
 * request head with the filters' changes and its body as the chain asks (http1_request_send.ts:
 * buffered with its trailers, streamed through filters and re-framed, or copied as framed once
 * validated), full duplex while a body is still going out (http1_duplex.ts), under the
 * route's timeout and retries when it has a policy (route_exchange.ts: a body is held for replay
 * only when its length is known and within the buffer limit), else one try with one fresh retry
 * of a reused keep-alive connection the upstream had closed; then the response phase
 * (http1_response.ts through `respond`). Any framing doubt destroys the upstream connection.
 */
import type { Duplex } from "node:stream";
import { Buffer } from "node:buffer";
import type { HttpFilter, HttpRequestContext, LocalResponse, RouteChoice } from "./filter_api.ts";
import type { FilterChain } from "./filter_chain.ts";
import { type ByteReader, type Framing, headBytes, type Trailer } from "./http1_codec.ts";
import { claim, type Upstream } from "./http1_upstream.ts";
import { replyLocal, UPSTREAM_GONE } from "./http_io.ts";
import { type Outgoing, receivedRequestHead, sendRequest } from "./http1_request_send.ts";
import {
  noHeadReply,
  readUpstreamHead,
  restSent,
  sendOrHead,
  type Sent,
  sentWhole,
  UPSTREAM_RESET,
} from "./http1_duplex.ts";
import { setBufferedLength } from "./body_buffer.ts";
import { requestStreamers, setStreamedFraming } from "./body_stream.ts";
import { requestTrailers, TrailersReply, type TrailersStep } from "./trailers.ts";
import type { RoutePolicy } from "./route_policy.ts";
import {
  bufferForReplay,
  exchange,
  guardResponse,
  type Resume,
  retriable,
  statusOf,
} from "./route_exchange.ts";
import { dialedHost } from "./endpoints.ts";
import { beforeUpstream, rewriteRequest } from "./route_fault.ts";
import { applyRequestHeaders } from "./route_headers.ts";
import { withCors } from "./route_cors.ts";
import { latchCors } from "./router_reply.ts";
import { mirrorRequest } from "./route_mirror.ts";
import type { ConnState } from "./http1_response.ts";
import { errorCode, errorMessage } from "./errors.ts";
import { logger } from "./log.ts";

const log = logger("http_proxy");

/** What the upstream exchange needs from its proxy. */
export interface ForwardDeps {
  readonly maxBody: number;
  draining(): boolean;
  count(status: number, ctx: HttpRequestContext): void;
  acquire(route: RouteChoice | undefined, tried?: Set<string>): Promise<Upstream>;
  /** A kept connection usable now, if any (saves a Promise per request). */
  idle?(route: RouteChoice | undefined): Upstream | undefined;
  routePolicy?(ctx: HttpRequestContext): RoutePolicy | undefined;
  /** A chosen route with no service or subset behind it → its local answer (http_proxy.ts). */
  routeReply?(route: RouteChoice, status?: number): LocalResponse | undefined;
  respond(
    down: Duplex,
    up: Upstream,
    resRaw: Buffer,
    ctx: HttpRequestContext,
    keepAlive: boolean,
    chain: FilterChain,
    state: ConnState,
  ): boolean | Promise<boolean>;
}

/** No trailers hook is looked up for a request without a body. */
const NO_TRAILERS = (t: Trailer[]): TrailersStep => t;

/** The upstream exchange of one request; resolves to whether the downstream stays open. The
 * common case (no route policy, a kept connection, a request that goes out in one write, a
 * response handled synchronously by respondH1) builds no closure and awaits only the response
 * head. */
export async function forwardRequest(
  p: ForwardDeps,
  down: Duplex,
  reader: ByteReader,
  ctx: HttpRequestContext,
  reqFraming: Framing,
  route: RouteChoice | undefined,
  keepAlive: boolean,
  chain: FilterChain,
  state: ConnState,
  reqTrailers: Trailer[],
): Promise<boolean> {
  // This exchange ends the request: the chain's onDone runs when it settles, however it does.
  try {
    const buffered = ctx.requestBody;
    // A buffered body keeps its trailers by going on chunked (one chunk + trailer section).
    const onReqTrailers = buffered !== undefined || reqFraming.kind !== "none"
      ? requestTrailers(chain, ctx)
      : NO_TRAILERS;
    let bufTrailers: Trailer[] = NONE;
    try {
      if (buffered) bufTrailers = await onReqTrailers(reqTrailers);
    } catch (e) {
      if (!(e instanceof TrailersReply)) throw e;
      return replyLocal(p, down, ctx, state, e.response, false); // the rest of the request is not read
    }
    if (buffered) setBufferedLength(ctx.requestHeaders, buffered.length, bufTrailers.length > 0);
    // Filters that stream the body may change its length: re-frame it chunked (body_stream.ts).
    const streamers = reqFraming.kind !== "none" ? requestStreamers(chain) : NO_STREAMERS;
    if (streamers.length) setStreamedFraming(ctx.requestHeaders, true);
    // An upgrade goes once, without the route's retries or timeout: the timeout guard spans the
    // whole response here, and after a 101 that is a tunnel living as long as its peers keep it.
    let policy = state.upgrade ? undefined : p.routePolicy?.(ctx);
    // CORS reads the request as it came, before the route's rewrite and header operations.
    if (policy?.cors) latchCors(ctx, (policy = withCors(policy, ctx)).headers?.after);
    if (policy?.rewrite) rewriteRequest(policy, ctx);
    const rh = policy?.headers;
    if (rh) applyRequestHeaders(rh, route, ctx);
    // A plain property store: the response of this request, not a previous one's, gets ops.
    state.routeHeaders = rh ? [rh, route] : undefined;
    const reqHead = receivedRequestHead(ctx) ??
      headBytes(`${ctx.method} ${ctx.path} HTTP/1.1`, ctx.requestHeaders);
    const o: Outgoing = { reader, ctx, reqFraming, reqHead, bufTrailers, streamers, onReqTrailers };
    if (policy?.fault || policy?.reply) {
      // The route's fault and own reply, before the upstream and its timeout (route_fault.ts).
      const f = beforeUpstream(policy, ctx);
      const abort = f instanceof Promise ? await f : f;
      if (abort) {
        // A request body not yet read stays on the connection: close after answering.
        const whole = reqFraming.kind === "none" || buffered !== undefined;
        return replyLocal(p, down, ctx, state, abort, keepAlive && !p.draining() && whole);
      }
    }
    const missing = route && p.routeReply?.(route, policy?.clusterNotFoundStatus);
    if (missing) {
      // Envoy's router answers a missing cluster itself (503 NC), without retries.
      const whole = reqFraming.kind === "none" || buffered !== undefined;
      return replyLocal(p, down, ctx, state, missing, keepAlive && !p.draining() && whole);
    }
    if (policy?.mirrors && (reqFraming.kind === "none" || buffered !== undefined)) {
      mirrorRequest(policy.mirrors, ctx, buffered, (r) => p.acquire(r));
    }
    // Retries alone (Istio's default on every route) keep the fast path for a request whose body
    // is already in memory or absent: its first try is made here as without a policy, and only
    // a failure the policy retries hands the rest to the exchange (route_exchange.ts `Resume`).
    // A timeout, a per-try timeout or a body still to be read take the exchange from the start.
    if (
      policy &&
      (policy.timeoutMs !== undefined || policy.retries?.perTryTimeoutMs !== undefined ||
        (reqFraming.kind !== "none" && buffered === undefined))
    ) {
      return await forwardWithPolicy(
        p,
        down,
        o,
        policy,
        route,
        keepAlive,
        chain,
        state,
        reqTrailers,
      );
    }
    const retry = policy?.retries;
    let up: Upstream;
    let resRaw: Buffer | null = null;
    let sending: Promise<Sent> | undefined;
    for (let attempt = 0;; attempt++) {
      let tried: Set<string> | undefined;
      try {
        up = claim(
          state,
          down,
          p.idle?.(route) ??
            await p.acquire(route, retry?.previousHosts ? (tried = new Set()) : undefined),
        );
      } catch (e) {
        log.debug("upstream connect failed", { err: errorMessage(e) });
        if (retry && retry.attempts > 0 && retriable(retry.retryOn, "connect-failure")) {
          const host: string | undefined = tried?.values().next().value;
          const resume = { reason: "connect-failure", host };
          return await forwardWithPolicy(
            p,
            down,
            o,
            policy!,
            route,
            keepAlive,
            chain,
            state,
            reqTrailers,
            resume,
          );
        }
        return replyLocal(p, down, ctx, state, {
          status: 503,
          headers: [],
          body: "upstream connect error",
          details: "upstream_connect_failure",
          // An unsent request body is still unread on the connection: close after answering.
        }, keepAlive && !p.draining() && (reqFraming.kind === "none" || buffered !== undefined));
      }
      const u = up;
      let sent: ReturnType<typeof sendRequest>;
      try {
        sent = sendRequest(o, u, buffered);
      } catch (e) {
        u.stream.destroy(); // a request cut short leaves the upstream in doubt: never reuse it
        return sendFailed(p, down, ctx, state, e);
      }
      if (sent instanceof Promise) {
        // The body is still going out: the response head is read meanwhile (http1_duplex.ts).
        const r = await sendOrHead(sent, u);
        if (r.kind === "head") {
          resRaw = r.head;
          sending = r.sending;
          break;
        }
        if (!sentWhole(r.sent)) {
          u.stream.destroy();
          const local = r.sent.local;
          return local
            ? replyLocal(p, down, ctx, state, local, false)
            : sendFailed(p, down, ctx, state, r.sent.err);
        }
        resRaw = await r.head;
      } else if (sent) {
        u.stream.destroy();
        return replyLocal(p, down, ctx, state, sent, false);
      } else {
        resRaw = await readUpstreamHead(u);
      }
      // A reused keep-alive connection may have been closed by the upstream: retry once, fresh.
      if (
        resRaw || !u.reused || u.protocolError || reqFraming.kind !== "none" || buffered ||
        attempt > 0
      ) break;
      u.stream.destroy();
    }
    if (retry && !sending && retry.attempts > 0) {
      // The first try's answer (or none) may be one the policy retries.
      const why = retryReason(retry.retryOn, resRaw);
      if (why !== undefined) {
        up.stream.destroy(); // the answer is not wanted: closing beats draining it
        const resume = { reason: why, host: dialedHost.get(up.stream) };
        return await forwardWithPolicy(
          p,
          down,
          o,
          policy!,
          route,
          keepAlive,
          chain,
          state,
          reqTrailers,
          resume,
        );
      }
    }
    if (!resRaw) {
      up.stream.destroy();
      // With the request still going out, the rest of its body is left unread: close after.
      return replyLocal(
        p,
        down,
        ctx,
        state,
        noHeadReply(up),
        !sending && keepAlive && !p.draining(),
      );
    }
    if (sending) up.hold = sending.then(sentWhole);
    let keep: boolean;
    try {
      // Synchronous in the common case (http1_response.ts): no extra microtask turn then.
      const done = p.respond(down, up, resRaw, ctx, keepAlive, chain, state);
      keep = done instanceof Promise ? await done : done;
    } catch (e) {
      up.stream.destroy(); // any framing doubt: this upstream connection is never reused
      throw e;
    }
    // The response is out; the downstream reads its next request only after this one's end.
    if (sending && !(await restSent(sending, up))) return false;
    return keep;
  } finally {
    chain.onDone(ctx);
  }
}

/** Sending the request failed before any response: a trailer hook's reply, the upstream gone
 * (503, Envoy's reset before the response started), or the downstream's own error (rethrown:
 * the connection's handler answers or closes). The downstream closes after. */
function sendFailed(
  p: ForwardDeps,
  down: Duplex,
  ctx: HttpRequestContext,
  state: ConnState,
  e: unknown,
): boolean {
  if (e instanceof TrailersReply) return replyLocal(p, down, ctx, state, e.response, false);
  if (errorCode(e) === UPSTREAM_GONE) return replyLocal(p, down, ctx, state, UPSTREAM_RESET, false);
  throw e;
}

const NONE: Trailer[] = [];

/** Why the first try's answer (a head, or none) is retried under `retryOn`, or undefined. */
function retryReason(retryOn: readonly string[], head: Buffer | null): string | undefined {
  if (!head) return retriable(retryOn, "reset") ? "reset" : undefined;
  const status = statusOf(head);
  return retriable(retryOn, status) ? String(status) : undefined;
}
const NO_STREAMERS: HttpFilter[] = [];

/** The route's timeout and retries (route_exchange.ts); a body is held for replay only when its
 * length is known and within the buffer limit, others are sent once. */
async function forwardWithPolicy(
  p: ForwardDeps,
  down: Duplex,
  o: Outgoing,
  policy: RoutePolicy,
  route: RouteChoice | undefined,
  keepAlive: boolean,
  chain: FilterChain,
  state: ConnState,
  reqTrailers: Trailer[],
  resume?: Resume,
): Promise<boolean> {
  const ctx = o.ctx;
  const replay = ctx.requestBody ??
    (policy.retries && !o.streamers.length
      ? await bufferForReplay(o.reader, o.reqFraming, p.maxBody, [...reqTrailers])
      : undefined);
  if (policy.mirrors && !resume && ctx.requestBody === undefined && replay !== undefined) {
    mirrorRequest(policy.mirrors, ctx, replay, (r) => p.acquire(r)); // held here for a retry
  }
  let r: Awaited<ReturnType<typeof exchange>>;
  try {
    r = await exchange(policy, {
      acquire: (tried) => p.acquire(route, tried).then((u) => claim(state, down, u)),
      send: (u) => sendRequest(o, u, replay),
      replayable: replay !== undefined || o.reqFraming.kind === "none",
    }, resume);
  } catch (e) {
    return sendFailed(p, down, ctx, state, e); // a trailer hook answered, the upstream went
  }
  if (r.kind === "local") {
    return replyLocal(p, down, ctx, state, r.response, r.keepAlive && keepAlive && !p.draining());
  }
  const disarm = guardResponse(r.leftMs, () => {
    r.up.stream.destroy();
    down.destroy();
  });
  const sending = r.sending;
  if (sending) r.up.hold = sending.then(sentWhole);
  let keep: boolean;
  try {
    const done = p.respond(down, r.up, r.head, ctx, keepAlive, chain, state);
    keep = done instanceof Promise ? await done : done;
  } catch (e) {
    r.up.stream.destroy();
    throw e;
  } finally {
    disarm();
  }
  // As in forwardRequest: the next request is read only after this one's end.
  if (sending && !(await restSent(sending, r.up))) return false;
  return keep;
}
