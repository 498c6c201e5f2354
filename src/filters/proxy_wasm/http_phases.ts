/**
 * The HTTP stream phases on one VM: request headers (+ buffered body), response headers
 * (+ buffered body), and the end of the stream (on_done → on_log → on_delete). A callback
 * returning anything but CONTINUE pauses the phase: the outcome becomes a Promise settled by
 * `proxy_continue_stream`, `proxy_send_local_response`, `proxy_close_stream`, or the VM's death.
 * Body callbacks still run while headers are paused, as in Envoy. A buffered body with trailers
 * to come is shown with end_of_stream false (the trailers callback ends the message).
 */
import type {
  FilterOutcome,
  HeaderMap,
  HttpRequestContext,
  HttpResponseContext,
  TrailersOutcome,
} from "../../core/mod.ts";
import { failResponse } from "../../core/mod.ts";
import { requestHeaderCount } from "./env_headers.ts";
import type { Callback, ProxyWasmVm, StreamState } from "./vm.ts";

const CONTINUE: FilterOutcome = Object.freeze({ action: "continue" });

function failedOf(vm: ProxyWasmVm): FilterOutcome {
  const d = vm.dead!;
  return { action: "failed", kind: d.kind, message: d.message };
}

function requestEndsWithHeaders(req: HttpRequestContext): boolean {
  if (req.requestBody !== undefined) {
    return req.requestBody.length === 0 && !req.requestTrailersFollow;
  }
  if (req.bodyFollows !== undefined) return !req.bodyFollows;
  const h = req.requestHeaders;
  const len = h.get("content-length");
  return !h.has("transfer-encoding") && (len === undefined || len === "0");
}

/** Run the headers callback and the body callback of one direction, then decide. */
function runPhase(
  vm: ProxyWasmVm,
  s: StreamState,
  which: "request" | "response",
  headersCount: number,
  body: Uint8Array | undefined,
  eos: boolean,
  trailersFollow: boolean,
): FilterOutcome | Promise<FilterOutcome> {
  const isReq = which === "request";
  const onHeaders = vm.export(isReq ? "proxy_on_request_headers" : "proxy_on_response_headers");
  const onBody = vm.export(isReq ? "proxy_on_request_body" : "proxy_on_response_body");
  let paused = false;
  s.calloutError = undefined;
  if (onHeaders) {
    const cb: Callback = isReq ? "request_headers" : "response_headers";
    const r = vm.invoke(cb, s, onHeaders, s.id, headersCount, eos ? 1 : 0);
    if (vm.dead) return failedOf(vm);
    paused = r !== 0;
  }
  if (s.local) return { action: "respond", response: s.local };
  if (onBody && body !== undefined && body.length > 0) {
    const cb: Callback = isReq ? "request_body" : "response_body";
    const r = vm.invoke(cb, s, onBody, s.id, body.length, trailersFollow ? 0 : 1);
    if (vm.dead) return failedOf(vm);
    if (s.local) return { action: "respond", response: s.local };
    // With trailers to come a stop only buffers (the whole body is here already): it goes on
    // before the trailers, as Envoy's StopIterationAndBuffer without end of stream.
    if (!trailersFollow) paused ||= r !== 0;
  }
  if (!paused) return CONTINUE;
  // Paused on a callout that was refused (unknown cluster) or already failed: nothing will
  // resume it, so fail now rather than hold the request until the pause timeout.
  if (s.calloutError !== undefined && s.calloutsInFlight === 0) {
    return { action: "failed", kind: "callout", message: s.calloutError };
  }
  return untilResumed(vm, s, which);
}

/** A paused stream's outcome: settled by `proxy_continue_stream`, a local response, a close, the
 * VM's death, or the pause timeout. */
export function untilResumed(
  vm: ProxyWasmVm,
  s: StreamState,
  which: "request" | "response",
): Promise<FilterOutcome> {
  s.pausedOn = which;
  // A guest that never continues must not hold the request (and the connection) forever.
  const limitMs = vm.settings.pauseTimeoutMs;
  return new Promise<FilterOutcome>((resolve) => {
    const timer = setTimeout(() =>
      vm.resume(s, {
        action: "failed",
        kind: "timeout",
        message: `paused ${which} not resumed within ${limitMs} ms`,
      }), limitMs);
    s.resume = (o) => {
      clearTimeout(timer);
      resolve(o);
    };
  });
}

export function requestPhase(
  vm: ProxyWasmVm,
  req: HttpRequestContext,
): { stream: StreamState | undefined; outcome: FilterOutcome | Promise<FilterOutcome> } {
  const s = vm.newStream(req);
  if (!s) return { stream: undefined, outcome: failedOf(vm) };
  const eos = requestEndsWithHeaders(req);
  return {
    stream: s,
    outcome: runPhase(
      vm,
      s,
      "request",
      requestHeaderCount(s),
      req.requestBody,
      eos,
      req.requestTrailersFollow === true,
    ),
  };
}

export function responsePhase(
  s: StreamState,
  res: HttpResponseContext,
): FilterOutcome | Promise<FilterOutcome> {
  const vm = s.vm;
  if (vm.dead) return failedOf(vm);
  if (s.local) return CONTINUE; // our own local reply passing back through
  s.res = res;
  const trailers = res.responseTrailersFollow === true;
  const eos = res.responseBody !== undefined
    ? res.responseBody.length === 0 && !trailers
    : res.bodyFollows === false;
  const count = res.responseHeaders.size + 1;
  return runPhase(vm, s, "response", count, res.responseBody, eos, trailers);
}

/** `proxy_on_request_trailers` / `proxy_on_response_trailers` (context id, trailer count) with
 * the trailer map writable during the call (readable while it is paused). As Envoy's
 * decodeTrailers/encodeTrailers: a PAUSE holds the trailers (and the end of the message) until
 * `proxy_continue_stream`, a local response answers the request (the data path resets a response
 * that already started); a pause that fails (timeout, VM death) follows the fail policy. */
export function trailersPhase(
  s: StreamState,
  which: "request" | "response",
  trailers: HeaderMap,
): TrailersOutcome | Promise<TrailersOutcome> {
  const vm = s.vm;
  if (vm.dead || !vm.streams.has(s.id) || s.local) return;
  const isReq = which === "request";
  const fn = vm.export(isReq ? "proxy_on_request_trailers" : "proxy_on_response_trailers");
  if (!fn) return;
  const show = (m: HeaderMap | undefined): void => {
    if (isReq) s.requestTrailers = m;
    else s.responseTrailers = m;
  };
  show(trailers);
  let r: unknown;
  try {
    r = vm.invoke(isReq ? "request_trailers" : "response_trailers", s, fn, s.id, trailers.size, 0);
  } catch (e) {
    show(undefined);
    throw e;
  }
  if (vm.dead || r === 0 || s.local) {
    show(undefined);
    return s.local && !vm.dead ? { action: "respond", response: s.local } : undefined;
  }
  return untilResumed(vm, s, which).then((o) => {
    show(undefined);
    if (o.action === "respond") return o;
    if (o.action === "failed" && vm.settings.failPolicy !== "FAIL_OPEN") {
      return { action: "respond", response: failResponse(s.req) };
    }
    return undefined;
  });
}

/** End of stream: a paused phase is abandoned; on_done false defers on_log/on_delete until
 * the guest calls proxy_done. */
export function donePhase(s: StreamState): void {
  const vm = s.vm;
  if (vm.dead || !vm.streams.has(s.id)) return;
  vm.resume(s, { action: "failed", kind: "unavailable", message: "stream ended while paused" });
  const onDone = vm.export("proxy_on_done");
  const r = onDone ? vm.invoke("done", s, onDone, s.id, 0, 0) : 1;
  if (vm.dead) return;
  if (r === 0) {
    s.awaitingDone = true;
    return;
  }
  vm.finishStream(s);
}
