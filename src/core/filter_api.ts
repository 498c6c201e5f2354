/**
 * The L7 filter API (types only): what the HTTP data path hands a filter and what a filter may
 * answer. Component filters (WIT), proxy-wasm filters and any future kind implement `HttpFilter`;
 * the data path never sees wasm. Filters return decisions; they never throw across this boundary
 * (a trap becomes a `failed` outcome that the filter's fail policy turns into 503 or a skip).
 */
import type { FailPolicy, FilterRef } from "./snapshot.ts";

/** Lower-case header names, ordered, multi-valued. */
export interface HeaderMap {
  get(name: string): string | undefined;
  getAll(name: string): string[];
  set(name: string, value: string): void;
  add(name: string, value: string): void;
  remove(name: string): void;
  has(name: string): boolean;
  entries(): [string, string][];
  readonly size: number;
}

/** What the host knows about the connection, by Istio/Envoy attribute names. */
export interface PeerInfo {
  /** Verified peer SPIFFE id (spiffe://...), undefined for plaintext. */
  readonly sourcePrincipal: string | undefined;
  readonly sourceNamespace: string | undefined;
  readonly sourceAddress: string;
  readonly sourcePort: number;
  readonly destinationAddress: string;
  readonly destinationPort: number;
  /** Service FQDN when the request targets a service. */
  readonly destinationService: string | undefined;
  readonly destinationWorkload: string | undefined;
  readonly destinationNamespace: string | undefined;
  readonly destinationPrincipal: string | undefined;
  /** mTLS-verified connection (HBONE). */
  readonly mtls: boolean;
  /** The node's own workload this request is served for (inbound: the destination; outbound:
   * the source): what a sidecar's node metadata describes. */
  readonly localWorkload?: LocalWorkloadInfo | undefined;
}

export interface LocalWorkloadInfo {
  readonly name: string;
  readonly namespace: string;
  readonly serviceAccount: string;
  readonly address: string;
  readonly labels: Readonly<Record<string, string>>;
}

export type Direction = "inbound" | "outbound";

/** The JWT the host's jwt_authn filter verified (Envoy's jwt_authn payload metadata, which Istio's
 * `request.auth.*` attributes read). Only that filter sets it: no request header and no guest
 * call writes it, so a client cannot forge it and it never reaches the upstream. */
export interface RequestAuth {
  /** `<iss>/<sub>`; undefined without both. */
  readonly principal: string | undefined;
  readonly audiences: readonly string[];
  /** `azp`. */
  readonly presenter: string | undefined;
  readonly claims: Readonly<Record<string, unknown>>;
}

export interface HttpRequestContext {
  readonly direction: Direction;
  readonly method: string;
  /** :path, including the query. */
  readonly path: string;
  readonly authority: string;
  readonly scheme: string;
  readonly protocol: "HTTP/1.1" | "HTTP/2";
  readonly requestHeaders: HeaderMap;
  readonly peer: PeerInfo;
  readonly requestId: string;
  /** Per-request state shared by the filters of one chain across phases. */
  readonly filterState: Map<string, unknown>;
  /** Set by the jwt_authn filter when a JWT verified (RequestAuthentication). */
  requestAuth?: RequestAuth;
  /** Buffered request body, only for filters that opted into bodies. */
  requestBody: Uint8Array | undefined;
  /** Trailers follow the buffered request body: its body hook then has end_of_stream false and
   * the trailers hook ends the message (Envoy's decodeData then decodeTrailers). */
  requestTrailersFollow?: boolean;
  /** Whether a body (or trailers) follows the request head, when the data path knows it (an h2
   * request carries no framing header to tell): proxy-wasm's end_of_stream on the headers. */
  readonly bodyFollows?: boolean;
  /** The local reply a filter answered this request with (set by the chain), so filters the
   * request never reached can still log it, as Envoy runs every filter's access log. */
  localReply?: LocalResponse;
}

export interface HttpResponseContext {
  status: number;
  readonly responseHeaders: HeaderMap;
  responseBody: Uint8Array | undefined;
  /** Trailers follow the buffered response body (as `requestTrailersFollow`). */
  responseTrailersFollow?: boolean;
  /** Whether a body (or trailers) follows the response head, when the data path knows it. */
  readonly bodyFollows?: boolean;
}

/** Choose the upstream for this request: a service and optionally a subset of its endpoints. */
export interface RouteChoice {
  readonly service: string;
  readonly subset: string | undefined;
}

export interface LocalResponse {
  readonly status: number;
  readonly headers: readonly (readonly [string, string])[];
  readonly body: string | Uint8Array;
  /** Envoy-style response details, e.g. "rbac_access_denied_matched_policy[none]". */
  readonly details: string;
  /** Set for gRPC requests: the local reply becomes HTTP 200 with this grpc-status. */
  readonly grpcStatus?: number;
}

export type FilterDecision =
  | { readonly action: "continue"; readonly route?: RouteChoice }
  | { readonly action: "respond"; readonly response: LocalResponse }
  | { readonly action: "delay"; readonly delayMs: number; readonly then: FilterDecision };

export type FilterFailureKind =
  | "trap"
  | "timeout"
  | "memory"
  | "bad_output"
  | "unavailable"
  | "callout";

/** How a filter takes a body: not at all, whole (buffered by the data path up to its limit), or
 * chunk by chunk as it streams (`onRequestBodyChunk` / `onResponseBodyChunk`). */
export type BodyMode = "none" | "buffered" | "streamed";

/** What a body hook answers: pass on, pass these bytes instead, or answer locally. */
export type BodyDecision =
  | { readonly action: "continue" }
  | { readonly action: "replace"; readonly body: Uint8Array }
  | { readonly action: "respond"; readonly response: LocalResponse };

export type BodyOutcome =
  | BodyDecision
  | { readonly action: "failed"; readonly kind: FilterFailureKind; readonly message: string };

/** What a trailers hook answers: nothing (go on with the trailers as changed) or a local reply. */
export type TrailersOutcome = void | {
  readonly action: "respond";
  readonly response: LocalResponse;
};

export type FilterOutcome =
  | FilterDecision
  | { readonly action: "failed"; readonly kind: FilterFailureKind; readonly message: string };

/** One configured generation of a filter. Cheap per-request calls; config parsed once. */
export interface HttpFilter {
  readonly name: string;
  readonly failPolicy: FailPolicy;
  /** Does the filter want the buffered request body before onRequestHeaders continues? */
  readonly wantsRequestBody: boolean;
  readonly wantsResponseBody: boolean;
  onRequest(ctx: HttpRequestContext): FilterOutcome | Promise<FilterOutcome>;
  onResponse(
    ctx: HttpRequestContext,
    res: HttpResponseContext,
  ): FilterOutcome | Promise<FilterOutcome>;
  /** Streamed bodies (optional): the data path calls these per chunk, in chain order for the
   * request and reverse order for the response, when they are true. A filter may hold bytes
   * (answer `replace` with fewer, even none) and release them later; a Promise holds the body
   * until it settles (proxy-wasm: a stop at end of stream until `proxy_continue_stream`). */
  readonly streamsRequestBody?: boolean;
  readonly streamsResponseBody?: boolean;
  onRequestBodyChunk?(
    ctx: HttpRequestContext,
    chunk: Uint8Array,
    endOfStream: boolean,
  ): BodyOutcome | Promise<BodyOutcome>;
  onResponseBodyChunk?(
    ctx: HttpRequestContext,
    res: HttpResponseContext,
    chunk: Uint8Array,
    endOfStream: boolean,
  ): BodyOutcome | Promise<BodyOutcome>;
  /** Streamed bodies followed by trailers: every chunk had end-of-stream false (Envoy's
   * decodeData/encodeData never end the stream when trailers follow) and, before the trailers
   * hooks run, the data path takes the bytes this filter still holds; they go on through the
   * filters after it, as Envoy passes a filter's buffered data on when its trailers continue.
   * A streaming filter without these hooks gets a last empty chunk with end-of-stream true
   * instead (it could not tell the end of the body otherwise). */
  onRequestBodyBeforeTrailers?(ctx: HttpRequestContext): BodyOutcome | Promise<BodyOutcome>;
  onResponseBodyBeforeTrailers?(
    ctx: HttpRequestContext,
    res: HttpResponseContext,
  ): BodyOutcome | Promise<BodyOutcome>;
  /** Trailers (optional): called once a message's non-empty trailers were read (after the body),
   * in chain order for the request and reverse order for the response; the filter may change
   * `trailers`. They go on where the outgoing framing carries them (trailers.ts). A filter may
   * hold them (a Promise: proxy-wasm paused until `proxy_continue_stream`) or answer locally:
   * the request is answered (the upstream abandoned); a response, already started, is reset. */
  onRequestTrailers?(
    ctx: HttpRequestContext,
    trailers: HeaderMap,
  ): TrailersOutcome | Promise<TrailersOutcome>;
  onResponseTrailers?(
    ctx: HttpRequestContext,
    res: HttpResponseContext,
    trailers: HeaderMap,
  ): TrailersOutcome | Promise<TrailersOutcome>;
  /** Called once per request after the response completed or the stream was reset. */
  onDone(ctx: HttpRequestContext): void;
  /** Optional: release this generation's resources (timers, VMs) after it was swapped out and
   * its in-flight requests finished. proxy-wasm filters stop their tick timers here. */
  close?(): void;
}

/** Turns a configured FilterRef into a live filter; implemented by src/filters, wired by app. */
export interface FilterResolver {
  resolve(ref: FilterRef): HttpFilter;
}
