/**
 * The request phase of an HTTP/1.1 request in the L7 proxy: the head parsed strictly
 * (http1_codec.ts; exactly one Host for HTTP/1.1, the body framing with a Content-Length
 * normalised, keep-alive), the `HttpRequestContext` the filters see, the body buffered for body
 * filters (Envoy's limit: 413), the request chain (a local reply discards the body), then the
 * proxy's `forward` (http_proxy.ts) with what the chain chose.
 */
import { Buffer } from "node:buffer";
import type { Duplex } from "node:stream";
import type {
  Direction,
  HttpRequestContext,
  LocalResponse,
  PeerInfo,
  RouteChoice,
} from "./filter_api.ts";
import type { FilterChain, RequestVerdict } from "./filter_chain.ts";
import {
  bad,
  type ByteReader,
  checkRequestLine,
  copyBody,
  type Framing,
  framingFrom,
  parseHeadList,
  type Trailer,
} from "./http1_codec.ts";
import { bufferBody, REQUEST_TOO_LARGE, wantsRequestBody } from "./body_buffer.ts";
import { replyLocal } from "./http_io.ts";
import { hasLowerCase, normalizePath, splitAbsoluteForm } from "./path_normalize.ts";
import type { ConnState, ResponseDeps } from "./http1_response.ts";
import {
  connectionTokens,
  plainConnection,
  stripRequestHop,
  type UpgradeKind,
} from "./http1_hop.ts";
import type { HeaderList } from "./header_map.ts";

/** What the request phase needs from its proxy. */
export interface RequestDeps extends ResponseDeps {
  readonly direction: Direction;
  chain(): FilterChain;
  /** The upstream exchange; it ends the request (the chain's onDone) when it settles. */
  forward(
    down: Duplex,
    reader: ByteReader,
    ctx: HttpRequestContext,
    framing: Framing,
    route: RouteChoice | undefined,
    keepAlive: boolean,
    chain: FilterChain,
    state: ConnState,
    trailers: Trailer[],
  ): Promise<boolean>;
}

const UPGRADE_FAILED: LocalResponse = Object.freeze({
  status: 403,
  headers: [],
  body: "",
  details: "upgrade_failed",
});

let requestSeq = 0;

/** A request id for requests that bring none (x-request-id). */
export function nextRequestId(): string {
  return `weft-${++requestSeq}`;
}

/** An HTTP/1.1 request's context. Its generated request id and its filter state are made when
 * first read: most requests bring no x-request-id and meet no filter that reads either (a
 * number-to-string and a Map per request were a measurable share of the request phase). */
class Http1Context implements HttpRequestContext {
  readonly scheme = "http";
  readonly protocol = "HTTP/1.1";
  requestBody: Uint8Array | undefined = undefined;
  declare requestTrailersFollow?: boolean;
  declare localReply?: LocalResponse;
  private id: string | undefined;
  private state: Map<string, unknown> | undefined;

  constructor(
    readonly direction: Direction,
    readonly method: string,
    readonly path: string,
    readonly authority: string,
    readonly requestHeaders: HeaderList,
    readonly peer: PeerInfo,
    id: string | undefined,
    readonly bodyFollows: boolean,
  ) {
    this.id = id;
  }

  get requestId(): string {
    return this.id ??= nextRequestId();
  }

  get filterState(): Map<string, unknown> {
    return this.state ??= new Map();
  }
}

export function parseRequest(
  raw: Buffer,
  peer: PeerInfo,
  direction: Direction,
): {
  ctx: HttpRequestContext;
  framing: Framing;
  keepAlive: boolean;
  upgrade: UpgradeKind;
  /** HTTP/1.1 with `Connection: close`. */
  closing: boolean;
  /** HTTP/1.1 with `Expect: 100-continue` and a body: the proxy answers the 100 itself. */
  expectContinue: boolean;
} {
  const { line, headers } = parseHeadList(raw);
  checkRequestLine(line, raw);
  const [method, rawTarget, version] = line;
  // Istio refuses a method not in upper case (400): `get` must not slip past `methods: [GET]`.
  if (hasLowerCase(method)) throw bad("method not in upper case");
  const absolute = splitAbsoluteForm(rawTarget);
  // RFC 9110 §4.2.4: userinfo in an http(s) URI is refused (`http://good@evil/`).
  if (absolute?.authority.includes("@")) throw bad("userinfo in the request target");
  const target = normalizePath(absolute ? absolute.path : rawTarget, method);
  if (target === undefined) throw bad("a request path with %00, or not a path");
  // One pass for the fields the proxy itself reads (first value, or all for framing).
  let hosts = 0;
  let host: string | undefined;
  let connection: string | undefined;
  let requestId: string | undefined;
  let te: string[] | undefined;
  let cl: string[] | undefined;
  let expect: string | undefined;
  let hop = false; // a hop-by-hop field to strip (rare: the common request pays nothing)
  const pairs = headers.fields().pairs;
  for (let i = 0; i < pairs.length; i++) {
    const f = pairs[i]!;
    switch (f[0]) {
      case "host":
        hosts++;
        host ??= f[1];
        break;
      case "transfer-encoding":
        (te ??= []).push(f[1]);
        break;
      case "content-length":
        (cl ??= []).push(f[1]);
        break;
      case "connection":
        if (connection === undefined) connection = f[1];
        else hop = true;
        break;
      case "keep-alive":
      case "proxy-connection":
      case "te":
      case "upgrade":
        hop = true;
        break;
      case "x-request-id":
        requestId ??= f[1];
        break;
      case "expect":
        expect ??= f[1];
    }
  }
  if (hosts > 1 || (version === "HTTP/1.1" && hosts !== 1)) {
    throw bad("HTTP/1.1 requires exactly one Host header");
  }
  if (absolute) {
    // RFC 9112 §3.2.2: the target's authority replaces Host.
    host = absolute.authority;
    headers.set("host", host);
  }
  const framing = framingFrom(te, cl, false);
  if (framing.kind === "length") headers.set("content-length", String(framing.length));
  // `Connection: close` closes the downstream after the response; it is not sent upstream.
  // A lone `connection: keep-alive` or `close` (what clients send when they send one) is
  // handled without splitting it into tokens.
  const plain = connection !== undefined && !hop && plainConnection(connection);
  if (connection !== undefined && !plain) hop = true;
  const keepAlive = version === "HTTP/1.1" &&
    (connection === undefined ||
      (plain ? connection.length !== 5 : !connectionTokens(headers).includes("close")));
  // Envoy's default (proxy_100_continue off): the proxy says 100 Continue itself and the field
  // does not go upstream. Forwarded, it would wait on the proxy, which sends the head upstream
  // with the first body bytes: a client waits its expect timeout (curl: 1 s) on every upload.
  const expectContinue = expect !== undefined && version === "HTTP/1.1" &&
    framing.kind !== "none" && expect.trim().toLowerCase() === "100-continue";
  if (expectContinue) headers.remove("expect");
  let upgrade: UpgradeKind;
  if (hop) upgrade = stripRequestHop(headers, version === "HTTP/1.1");
  else if (plain) headers.remove("connection");
  const ctx = new Http1Context(
    direction,
    method,
    target,
    host ?? "",
    headers,
    peer,
    requestId,
    framing.kind !== "none",
  );
  return {
    ctx,
    framing,
    keepAlive,
    upgrade,
    closing: !keepAlive && version === "HTTP/1.1",
    expectContinue,
  };
}

const CONTINUE = Buffer.from("HTTP/1.1 100 Continue\r\n\r\n");

/** Serves one request whose head is `raw`; returns whether the connection stays open. The
 * common request — no body filter, a chain that answers synchronously and forwards — goes
 * straight to the upstream exchange with no async frame of its own; `forward` then owns the
 * request's end (it calls the chain's onDone). Every other path is requestSlow. */
export function serveRequest(
  p: RequestDeps,
  down: Duplex,
  reader: ByteReader,
  raw: Buffer,
  peer: PeerInfo,
  state: ConnState,
): boolean | Promise<boolean> {
  const parsed = parseRequest(raw, peer, p.direction);
  const { ctx } = parsed;
  // An upgrade request not answered by a tunnel closes the connection after its response, as
  // Envoy does (its HTTP connection manager sets saw_connection_close_ on a rejected upgrade):
  // bytes the client sent after the head for the new protocol must never be read as requests.
  const keepAlive = parsed.keepAlive && parsed.upgrade === undefined;
  const reqFraming = parsed.framing;
  if (parsed.expectContinue) down.write(CONTINUE);
  state.upgrade = parsed.upgrade === "websocket";
  state.closing = parsed.closing;
  if (parsed.upgrade === "rejected") return rejectUpgrade(p, down, reader, ctx, reqFraming, state);
  const chain = p.chain();
  if (reqFraming.kind !== "none" && wantsRequestBody(chain)) {
    return requestSlow(p, down, reader, ctx, reqFraming, keepAlive, chain, state, undefined);
  }
  let v: RequestVerdict | Promise<RequestVerdict>;
  try {
    v = chain.onRequest(ctx);
  } catch (e) {
    chain.onDone(ctx); // never expected (the chain turns throws into traps): still end the request
    throw e;
  }
  if (v instanceof Promise || v.kind === "respond") {
    return requestSlow(p, down, reader, ctx, reqFraming, keepAlive, chain, state, v);
  }
  return p.forward(down, reader, ctx, reqFraming, v.route, keepAlive, chain, state, NO_TRAILERS);
}

/** No trailers were read with the request head (forward only reads this list; a body buffered
 * for replay gets its own list). */
const NO_TRAILERS = Object.freeze([]) as unknown as Trailer[];

/** An upgrade type weft has no upgrade config for: Envoy's local 403 `upgrade_failed`, before
 * any filter, and the connection closes (http1_hop.ts). */
async function rejectUpgrade(
  p: RequestDeps,
  down: Duplex,
  reader: ByteReader,
  ctx: HttpRequestContext,
  reqFraming: Framing,
  state: ConnState,
): Promise<boolean> {
  await copyBody(reader, reqFraming, () => true);
  return replyLocal(p, down, ctx, state, UPGRADE_FAILED, false);
}

/** The request phase when it must wait (a body buffered for body filters, a filter that
 * suspends) or answers locally; `verdict`: the chain's answer when it already ran. */
async function requestSlow(
  p: RequestDeps,
  down: Duplex,
  reader: ByteReader,
  ctx: HttpRequestContext,
  reqFraming: Framing,
  keepAlive: boolean,
  chain: FilterChain,
  state: ConnState,
  verdict: RequestVerdict | Promise<RequestVerdict> | undefined,
): Promise<boolean> {
  const reqTrailers: Trailer[] = [];
  let forwarded = false;
  try {
    if (verdict === undefined) {
      // A body filter sees the whole body with the request phase (body_buffer.ts).
      const body = await bufferBody(reader, reqFraming, p.maxBody, reqTrailers);
      if (!body) {
        return replyLocal(p, down, ctx, state, REQUEST_TOO_LARGE, false);
      }
      ctx.requestBody = body;
      if (reqTrailers.length) ctx.requestTrailersFollow = true;
      reqFraming = { kind: "none" };
      verdict = chain.onRequest(ctx);
    }
    const v = verdict instanceof Promise ? await verdict : verdict;
    if (v.kind === "respond") {
      await copyBody(reader, reqFraming, () => true); // discard the request body
      return replyLocal(p, down, ctx, state, v.response, keepAlive && !p.draining());
    }
    forwarded = true; // forward ends the request (onDone) itself
    return await p.forward(
      down,
      reader,
      ctx,
      reqFraming,
      v.route,
      keepAlive,
      chain,
      state,
      reqTrailers,
    );
  } finally {
    if (!forwarded) chain.onDone(ctx);
  }
}
