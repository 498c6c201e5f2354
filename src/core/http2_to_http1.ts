/**
 * An h2c downstream stream to an HTTP/1.1 upstream from the proxy's keep-alive pool: the request
 * head and body as the plan says (http2_phases.ts; a raw copy by content-length passes exactly
 * that many bytes, so nothing can be smuggled onto the keep-alive connection), under the route's
 * timeout and retries when it has a policy (route_exchange.ts; a body is held for a retry only
 * when its length is known and within the limit, others are sent once), then the response phase
 * (`answer`) onto the stream. The upstream connection is reused only when nothing about its
 * framing is in doubt.
 */
import { applyResponseHeaders, type RouteHeaders } from "./route_headers.ts";
import type { Buffer } from "node:buffer";
import { noHeadReply, restSent, sendOrHead, type Sent, sentWhole } from "./http1_duplex.ts";
import type { HttpRequestContext, LocalResponse, RouteChoice } from "./filter_api.ts";
import type { FilterChain } from "./filter_chain.ts";
import { HeaderList } from "./header_map.ts";
import { bad, framingOf, parseHead, serializeHead, type Trailer } from "./http1_codec.ts";
import type { Upstream } from "./http1_upstream.ts";
import { exactLength, h1Reader, h1Sink, writeH2 } from "./body_source.ts";
import { bufferFrom } from "./body_buffer.ts";
import { requestChunkCall, sendBody } from "./body_stream.ts";
import { answer, cutStream, HOP_BY_HOP, type RequestPlan, respondLocal } from "./http2_phases.ts";
import type { RoutePolicy } from "./route_policy.ts";
import { exchange, guardResponse } from "./route_exchange.ts";
import type { H2Stream } from "./h2/mod.ts";

/** What this path needs from the proxy (a subset of http2_downstream.ts's H2Backend). */
export interface H1Backend {
  acquire(route: RouteChoice | undefined, tried?: Set<string>): Promise<Upstream>;
  release(up: Upstream): void;
  readonly maxBufferedBodyBytes: number;
  routePolicy?(ctx: HttpRequestContext): RoutePolicy | undefined;
  readonly maxReplayBytes?: number;
}

/** The request's content-length (checked at the stream's start: one non-negative integer). */
function declared(ctx: HttpRequestContext): number {
  return Number(ctx.requestHeaders.get("content-length"));
}

const CONNECT_FAILURE: LocalResponse = {
  status: 503,
  headers: [],
  body: "upstream connect error",
  details: "upstream_connect_failure",
};

/** Forwards the stream; returns the status sent downstream. */
export async function forwardH1(
  b: H1Backend,
  stream: H2Stream,
  ctx: HttpRequestContext,
  route: RouteChoice | undefined,
  chain: FilterChain,
  first: RequestPlan,
  policy: RoutePolicy | undefined = b.routePolicy?.(ctx),
): Promise<number> {
  const plan = policy?.retries ? await holdForReplay(b, ctx, first) : first;
  const out = ctx.requestHeaders.entries().filter(([k]) => !HOP_BY_HOP.has(k));
  if (!ctx.requestHeaders.has("host")) out.unshift(["host", ctx.authority]);
  if (plan.chunked) out.push(["transfer-encoding", "chunked"]);
  const head = serializeHead(`${ctx.method} ${ctx.path} HTTP/1.1`, out);
  const send = async (up: Upstream): Promise<LocalResponse | undefined> => {
    up.stream.write(head);
    const raw = h1Sink(up.stream, plan.chunked, writeH2);
    const sink = plan.src && !plan.chunked ? exactLength(raw, declared(ctx)) : raw;
    const { src, buffered, streamers, onTrailers } = plan;
    return await sendBody(sink, src, buffered, streamers, requestChunkCall(ctx), ctx, onTrailers);
  };
  if (policy) {
    const r = await exchange(policy, {
      acquire: (tried) => b.acquire(route, tried).then((up) => claimFor(stream, up)),
      send,
      replayable: plan.buffered !== undefined || plan.empty,
    });
    if (r.kind === "local") {
      stream.resume();
      respondLocal(stream, r.response);
      return r.response.status;
    }
    const disarm = guardResponse(r.leftMs, () => {
      r.up.stream.destroy();
      cutStream(stream, "route timeout");
    });
    try {
      return await respondAlongside(
        b,
        stream,
        ctx,
        chain,
        r.up,
        r.head,
        r.sending,
        policy.headers,
        route,
      );
    } finally {
      disarm();
    }
  }
  for (let attempt = 0;; attempt++) {
    const up = await b.acquire(route).then((u) => claimFor(stream, u), () => undefined);
    if (!up) {
      respondLocal(stream, CONNECT_FAILURE);
      return 503;
    }
    // The response head is read while the body still goes out (http1_duplex.ts).
    const r = await sendOrHead(send(up), up);
    let resHead: Buffer | null;
    let sending: Promise<Sent> | undefined;
    if (r.kind === "head") {
      resHead = r.head;
      sending = r.sending;
    } else {
      if (r.sent.err !== undefined) {
        up.stream.destroy(); // a request cut short leaves the upstream in doubt
        throw r.sent.err;
      }
      const local = r.sent.local;
      if (local) {
        up.stream.destroy();
        stream.resume();
        respondLocal(stream, local);
        return local.status;
      }
      resHead = await r.head;
    }
    // A reused keep-alive connection the upstream had closed: a request without a body goes
    // once more on a fresh one (as the HTTP/1.1 downstream path does).
    if (!resHead && up.reused && !up.protocolError && plan.empty && attempt === 0) {
      up.stream.destroy();
      continue;
    }
    return await respondAlongside(
      b,
      stream,
      ctx,
      chain,
      up,
      resHead,
      sending,
      undefined,
      route,
    );
  }
}

/** `up` serves `stream`'s request: destroyed if the stream closes first (the client's
 * RST_STREAM, its session gone), as Envoy resets the upstream request; otherwise it would wait
 * for an answer nobody reads. The pool's release ends the claim (Upstream.owner). */
function claimFor(stream: H2Stream, up: Upstream): Upstream {
  up.owner = stream;
  stream.once("close", () => {
    if (up.owner === stream) up.stream.destroy();
  });
  return up;
}

/** respondFrom while the request may still be going out (`sending`): the connection is pooled
 * only once it went out whole (Upstream.hold), and a request cut after the response started
 * resets the stream. With no response the rest of the request is not waited for. */
async function respondAlongside(
  b: H1Backend,
  stream: H2Stream,
  ctx: HttpRequestContext,
  chain: FilterChain,
  up: Upstream,
  head: Buffer | null,
  sending: Promise<Sent> | undefined,
  rh: RouteHeaders | undefined,
  route: RouteChoice | undefined,
): Promise<number> {
  if (!sending) return await respondFrom(b, stream, ctx, chain, up, head, rh, route);
  up.hold = sending.then(sentWhole);
  const status = await respondFrom(b, stream, ctx, chain, up, head, rh, route);
  if (head && !(await restSent(sending, up))) stream.destroy();
  return status;
}

/** A pass-through body of known length within the replay limit, read whole so a retry can send
 * it again (the content-length must hold, or the stream is reset). */
async function holdForReplay(
  b: H1Backend,
  ctx: HttpRequestContext,
  plan: RequestPlan,
): Promise<RequestPlan> {
  if (!plan.src || plan.streamers.length || plan.chunked) return plan;
  const n = declared(ctx);
  if (!(n <= (b.maxReplayBytes ?? 1 << 20))) return plan;
  const trailers: Trailer[] = [];
  const body = await bufferFrom(plan.src, n, trailers);
  if (!body || body.length !== n) throw bad(`body disagrees with its content-length ${n}`);
  const buffered = { body, trailers: await plan.onTrailers(trailers) };
  return { ...plan, src: undefined, buffered };
}

/** The upstream's response (first head already read) onto the downstream stream. */
async function respondFrom(
  b: H1Backend,
  stream: H2Stream,
  ctx: HttpRequestContext,
  chain: FilterChain,
  up: Upstream,
  first: Buffer | null,
  rh: RouteHeaders | undefined,
  route: RouteChoice | undefined,
): Promise<number> {
  let keep = false;
  try {
    let raw = first;
    let res = raw && parseHead(raw);
    while (res && res.line[1].startsWith("1")) { // interim responses are not forwarded
      raw = await up.reader.readHead();
      res = raw && parseHead(raw);
    }
    if (!res) {
      const reply = noHeadReply(up);
      respondLocal(stream, reply);
      return reply.status;
    }
    const status = Number(res.line[1]);
    const resHeaders = new HeaderList(res.headers);
    const noBody = ctx.method === "HEAD" || status === 204 || status === 304;
    const framing = noBody
      ? { kind: "none" as const }
      : framingOf((n) => resHeaders.getAll(n), true);
    if (rh) applyResponseHeaders(rh, route, resHeaders);
    const sent = await answer(stream, ctx, chain, b.maxBufferedBodyBytes, {
      status,
      headers: resHeaders,
      src: framing.kind === "none" ? undefined : h1Reader(up.reader, framing),
      declaredLength: framing.kind === "length" ? framing.length : 0,
      drop: () => up.stream.destroy(),
    });
    keep = !up.stream.destroyed && framing.kind !== "close" &&
      resHeaders.get("connection")?.toLowerCase() !== "close";
    return sent;
  } finally {
    if (keep) b.release(up);
    else up.stream.destroy(); // any doubt about its framing: never reused
  }
}
