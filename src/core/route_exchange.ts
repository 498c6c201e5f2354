/**
 * One HTTP/1.1 request's tries against the upstream under its route's policy (route_policy.ts),
 * with Envoy's router semantics:
 *  - `timeout` covers the whole exchange from the moment the request was sent, retries
 *    included; expiring before a response head answers 504 `upstream request timeout`, after it
 *    the response is cut (the caller arms `guardResponse`).
 *  - `perTryTimeout` bounds each try until its response head; an expired try counts as "no
 *    response" (retried under 5xx, gateway-error and reset).
 *  - retries only for the conditions named in `retryOn` (Envoy's x-envoy-retry-on meanings):
 *    5xx = any 5xx or no response (reset, connect failure, per-try timeout); gateway-error =
 *    502/503/504 or no response; reset = no response; connect-failure; refused-stream (an HTTP/2
 *    reset: never on an HTTP/1.1 upstream); retriable-4xx = 409; a status code = that status.
 *  - a request is tried again only if its body can be sent again (`replayable`: no body, or one
 *    held in memory); the caller streams other bodies once, with the timeout only.
 *  - between tries Envoy's back-off: fully jittered, doubling from 25 ms (or the route's base),
 *    at most ten times the base.
 */
import type { Buffer } from "node:buffer";
import { bufferBody } from "./body_buffer.ts";
import type { LocalResponse } from "./filter_api.ts";
import type { ByteReader, Framing, Trailer } from "./http1_codec.ts";
import type { Upstream } from "./http1_upstream.ts";
import { noHeadReply, readUpstreamHead, sendOrHead, type Sent } from "./http1_duplex.ts";
import { metrics } from "./metrics.ts";
import { dialedHost } from "./endpoints.ts";
import type { RetryPolicy, RoutePolicy } from "./route_policy.ts";

const retriesTotal = metrics.counter(
  "weft_http_upstream_retries_total",
  "Upstream request retries by the route's retry policy, by what was retried.",
  ["reason"],
);
const timeoutsTotal = metrics.counter(
  "weft_http_upstream_timeouts_total",
  "Upstream requests that ran out of their route timeout (504) or a per-try timeout.",
  ["kind"],
);

export interface ExchangeSteps {
  /** `tried`: the endpoints earlier tries used, with previous_hosts (the dialler avoids them and
   * adds its pick). */
  acquire(tried: Set<string> | undefined): Promise<Upstream>;
  /** Writes the request on `up`; a local response ends the exchange (a streaming filter). A
   * Promise while the body is still going out: the response head is read meanwhile
   * (http1_duplex.ts). */
  send(up: Upstream): LocalResponse | undefined | Promise<LocalResponse | undefined>;
  /** The request can be sent again. */
  readonly replayable: boolean;
}

export type ExchangeResult =
  | {
    readonly kind: "response";
    readonly up: Upstream;
    readonly head: Buffer;
    /** What is left of the route timeout (undefined: none). */
    readonly leftMs: number | undefined;
    /** The request body still going out (the response came first): settles when it is sent
     * whole or cut. */
    readonly sending: Promise<Sent> | undefined;
  }
  | { readonly kind: "local"; readonly response: LocalResponse; readonly keepAlive: boolean };

export const UPSTREAM_TIMEOUT: LocalResponse = Object.freeze({
  status: 504,
  headers: [],
  body: "upstream request timeout",
  details: "upstream_response_timeout",
});
const CONNECT_FAILURE: LocalResponse = Object.freeze({
  status: 503,
  headers: [],
  body: "upstream connect error",
  details: "upstream_connect_failure",
});

/** Why a try got no response; "refused-stream" comes from HTTP/2 upstreams only (RST_STREAM
 * REFUSED_STREAM, or a GOAWAY whose last_stream_id is below the stream: RFC 9113 §8.7). */
export type Failure = "connect-failure" | "reset" | "refused-stream" | "per-try-timeout";

/** Envoy's gRPC retry conditions (x-envoy-retry-grpc-on) and the grpc-status each names. */
export const GRPC_RETRY_CONDITIONS: Readonly<Record<string, number>> = {
  "cancelled": 1,
  "deadline-exceeded": 4,
  "resource-exhausted": 8,
  "internal": 13,
  "unavailable": 14,
};

/** The gRPC condition of `retryOn` that allows another try after a headers-only response with
 * this grpc-status, or undefined. */
export function grpcRetriable(retryOn: readonly string[], grpcStatus: number): string | undefined {
  return retryOn.find((c) => GRPC_RETRY_CONDITIONS[c] === grpcStatus);
}

/** The statuses a `retryOn` list retries, worked out once per list (lists are frozen config). */
const statusSets = new WeakMap<readonly string[], (status: number) => boolean>();

/** The last list looked up: every request of a route (and every route on Istio's default policy)
 * passes the same frozen list, so the common response costs one comparison, not a WeakMap read. */
let lastList: readonly string[] | undefined;
let lastTest: (status: number) => boolean = () => false;

function statusTest(retryOn: readonly string[]): (status: number) => boolean {
  if (retryOn === lastList) return lastTest;
  let t = statusSets.get(retryOn);
  if (!t) {
    const any5xx = retryOn.includes("5xx");
    const gateway = retryOn.includes("gateway-error");
    const conflict = retryOn.includes("retriable-4xx");
    const codes = new Set(retryOn.filter((c) => /^\d{3}$/.test(c)).map(Number));
    t = (v) =>
      (any5xx && v >= 500) || (gateway && (v === 502 || v === 503 || v === 504)) ||
      (conflict && v === 409) || codes.has(v);
    statusSets.set(retryOn, t);
  }
  lastList = retryOn;
  lastTest = t;
  return t;
}

/** Whether `retryOn` allows another try after this failure or response status. */
export function retriable(retryOn: readonly string[], what: Failure | number): boolean {
  if (typeof what === "number") return statusTest(retryOn)(what);
  for (const c of retryOn) {
    if (c === "5xx" || c === "gateway-error") return true;
    if (c === "reset" && what !== "connect-failure") return true;
    if (c === "connect-failure" && what === "connect-failure") return true;
    if (c === "refused-stream" && what === "refused-stream") return true;
  }
  return false;
}

/** Envoy's retry back-off: fully jittered exponential from the base (default 25 ms), capped at
 * ten times the base. */
export function backoffMs(retry: number, baseMs = 25, random = Math.random): number {
  return random() * Math.min(10 * baseMs, baseMs * 2 ** retry);
}

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

export function statusOf(head: Buffer): number {
  // "HTTP/1.1 503 ..." — upstreamHead() checks the head strictly afterwards (a malformed one
  // reads as some number here and is refused there). Digits read in place: no string made.
  const a = head[9]! - 48, b = head[10]! - 48, c = head[11]! - 48;
  return (a >>> 0) > 9 || (b >>> 0) > 9 || (c >>> 0) > 9 ? NaN : a * 100 + b * 10 + c;
}

/** The response head (`read`, already begun, or read now), or "late" when `ms` passes first (the
 * connection is destroyed). */
async function headWithin(
  up: Upstream,
  ms: number | undefined,
  read: Promise<Buffer | null> | undefined,
): Promise<Buffer | null | "late"> {
  const reading = read ?? readUpstreamHead(up);
  if (ms === undefined) return await reading;
  let late = false;
  const timer = setTimeout(() => {
    late = true;
    up.stream.destroy();
  }, Math.max(0, ms));
  try {
    const head = await reading;
    return late ? "late" : head;
  } finally {
    clearTimeout(timer);
  }
}

/** A first try made elsewhere (http1_forward.ts's fast path) that failed in a way the policy
 * retries: the exchange goes on from the second try. */
export interface Resume {
  /** What was retried (the retries counter's label). */
  readonly reason: string;
  /** The first try's endpoint, when known. */
  readonly host: string | undefined;
}

export async function exchange(
  policy: RoutePolicy,
  steps: ExchangeSteps,
  resume?: Resume,
): Promise<ExchangeResult> {
  const retry: RetryPolicy | undefined = steps.replayable ? policy.retries : undefined;
  const tries = 1 + (retry?.attempts ?? 0);
  let deadline: number | undefined;
  const left = (): number | undefined =>
    deadline === undefined ? undefined : deadline - performance.now();
  const tried = retry?.previousHosts ? new Set<string>() : undefined;
  let staleRetried = false;
  let n = 0;
  if (resume) {
    // The caller's fast path has no route timeout: the back-off always runs.
    if (resume.host !== undefined) tried?.add(resume.host);
    await backoff(0, retry?.backoffBaseMs, left);
    retriesTotal.inc({ reason: resume.reason });
    n = 1;
  }
  for (; n < tries; n++) {
    const last = n === tries - 1;
    let up: Upstream;
    try {
      up = await steps.acquire(tried);
      if (tried && up.reused) {
        const h = dialedHost.get(up.stream);
        if (h !== undefined) tried.add(h);
      }
    } catch {
      if (!last && retriable(retry!.retryOn, "connect-failure")) {
        if (!(await backoff(n, retry?.backoffBaseMs, left))) return timedOut();
        retriesTotal.inc({ reason: "connect-failure" });
        continue;
      }
      // A body never sent is still unread on the client connection: close it after answering.
      return { kind: "local", response: CONNECT_FAILURE, keepAlive: steps.replayable };
    }
    let read: Promise<Buffer | null> | undefined;
    let sending: Promise<Sent> | undefined;
    try {
      const sent = steps.send(up);
      if (sent instanceof Promise) {
        const r = await sendOrHead(sent, up);
        if (r.kind === "head") {
          read = Promise.resolve(r.head);
          sending = r.sending;
        } else {
          if (r.sent.err !== undefined) throw r.sent.err;
          if (r.sent.local) {
            up.stream.destroy();
            return { kind: "local", response: r.sent.local, keepAlive: false };
          }
          read = r.head;
        }
      } else if (sent) {
        up.stream.destroy();
        return { kind: "local", response: sent, keepAlive: false };
      }
    } catch (e) {
      up.stream.destroy(); // a request cut short leaves the upstream in doubt: never reuse it
      throw e;
    }
    if (policy.timeoutMs !== undefined) deadline ??= performance.now() + policy.timeoutMs;
    const overall = left();
    const perTry = retry?.perTryTimeoutMs;
    const wait = perTry === undefined ? overall : Math.min(perTry, overall ?? Infinity);
    const head = await headWithin(up, wait, read);
    if (head !== null && head !== "late") {
      const status = statusOf(head);
      if (last || !retriable(retry!.retryOn, status)) {
        return { kind: "response", up, head, leftMs: left(), sending };
      }
      up.stream.destroy(); // the answer is not wanted: closing beats draining it
      if (!(await backoff(n, retry?.backoffBaseMs, left))) return timedOut();
      retriesTotal.inc({ reason: String(status) });
      continue;
    }
    up.stream.destroy();
    if (sending) {
      // The rest of a streamed request body is left unread (no retry can send it again): the
      // downstream closes after the answer.
      if (head === "late") timeoutsTotal.inc({ kind: "route" });
      return {
        kind: "local",
        response: head === "late" ? UPSTREAM_TIMEOUT : noHeadReply(up),
        keepAlive: false,
      };
    }
    if (head === "late" && overall !== undefined && left()! <= 0) return timedOut();
    if (head === "late") timeoutsTotal.inc({ kind: "per_try" });
    const failure: Failure = head === "late" ? "per-try-timeout" : "reset";
    // A reused keep-alive connection may have been closed by the upstream: one fresh try more.
    if (
      failure === "reset" && up.reused && !up.protocolError && steps.replayable && !staleRetried
    ) {
      staleRetried = true;
      n--;
      continue;
    }
    if (last || !retriable(retry!.retryOn, failure)) {
      return failure === "per-try-timeout"
        ? timedOut()
        : { kind: "local", response: noHeadReply(up), keepAlive: true };
    }
    if (!(await backoff(n, retry?.backoffBaseMs, left))) return timedOut();
    retriesTotal.inc({ reason: failure });
  }
  throw new Error("unreachable: every try returns or continues");
}

/** Counts a route or per-try timeout (the HTTP/2 upstream path's own timers,
 * http2_upstream.ts). */
export function countTimeout(kind: "route" | "per_try"): void {
  timeoutsTotal.inc({ kind });
}

/** Counts a retry by what was retried (the HTTP/2 upstream path). */
export function countRetry(reason: string): void {
  retriesTotal.inc({ reason });
}

function timedOut(): ExchangeResult {
  timeoutsTotal.inc({ kind: "route" });
  return { kind: "local", response: UPSTREAM_TIMEOUT, keepAlive: true };
}

/** Waits before the next try; false when the route timeout would pass first. */
export async function backoff(
  n: number,
  baseMs: number | undefined,
  left: () => number | undefined,
): Promise<boolean> {
  const ms = backoffMs(n, baseMs);
  const l = left();
  if (l !== undefined && l <= ms) return false;
  await sleep(ms);
  return true;
}

/** A request body of known length within `maxBytes`, read whole so a retry can send it again;
 * undefined for any other (it streams once, never retried). */
export async function bufferForReplay(
  reader: ByteReader,
  framing: Framing,
  maxBytes: number,
  trailers: Trailer[],
): Promise<Uint8Array | undefined> {
  if (framing.kind !== "length" || framing.length > maxBytes) return undefined;
  return (await bufferBody(reader, framing, maxBytes, trailers)) ?? undefined;
}

/** After the response head: the rest of the response must come within the route timeout, or
 * the exchange is cut (Envoy resets the stream). Returns the disarm function. */
export function guardResponse(
  deadlineMs: number | undefined,
  cut: () => void,
): () => void {
  if (deadlineMs === undefined) return () => {};
  const timer = setTimeout(() => {
    timeoutsTotal.inc({ kind: "route" });
    cut();
  }, Math.max(0, deadlineMs));
  return () => clearTimeout(timer);
}
