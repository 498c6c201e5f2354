/**
 * Streamed bodies as Envoy runs them (proxy-wasm `bodies: "streamed"`): `proxy_on_request_body` /
 * `proxy_on_response_body` are called for each chunk as it arrives with (context id,
 * body_buffer_length, end_of_stream). The buffer the guest sees (get/set_buffer_bytes) is what it
 * held so far plus this chunk. CONTINUE sends that buffer on (as the guest left it);
 * StopIterationAndBuffer (and the other stop codes) keep it, and the next call sees the
 * accumulated bytes; over the buffer limit the request is answered 413 and a response (whose head
 * already left) is reset, as Envoy's buffer overflow. At end of stream a stop waits for
 * `proxy_continue_stream` (or a local reply, or the pause timeout) as a paused headers phase does.
 * When trailers follow, no call has end_of_stream true (Envoy's decodeData/encodeData); the held
 * buffer goes on before the trailers (`releaseHeld`), as Envoy continues a filter's buffered
 * data when its trailers callback continues.
 * See Envoy source/extensions/common/wasm/context.cc (onRequestBody, onResponseBody) and the
 * proxy-wasm ABI spec (proxy_on_request_body).
 */
import type { BodyOutcome, FilterOutcome } from "../../core/mod.ts";
import { REQUEST_TOO_LARGE, RESPONSE_TOO_LARGE } from "../../core/mod.ts";
import { untilResumed } from "./http_phases.ts";
import type { ProxyWasmVm, StreamState } from "./vm.ts";

const EMPTY = new Uint8Array(0);
const HELD: BodyOutcome = Object.freeze({ action: "replace", body: EMPTY });

/** Envoy's local replies on buffer overflow, the data path's own (body_buffer.ts). */
const TOO_LARGE = { request: REQUEST_TOO_LARGE, response: RESPONSE_TOO_LARGE } as const;

function concat(a: Uint8Array, b: Uint8Array): Uint8Array {
  if (a.length === 0) return b;
  if (b.length === 0) return a;
  const out = new Uint8Array(a.length + b.length);
  out.set(a, 0);
  out.set(b, a.length);
  return out;
}

function held(s: StreamState, which: "request" | "response"): Uint8Array | undefined {
  return which === "request" ? s.requestHeld : s.responseHeld;
}

function setHeld(s: StreamState, which: "request" | "response", b: Uint8Array | undefined): void {
  if (which === "request") s.requestHeld = b;
  else s.responseHeld = b;
}

function failedOf(vm: ProxyWasmVm): BodyOutcome {
  const d = vm.dead!;
  return { action: "failed", kind: d.kind, message: d.message };
}

function bodyOf(o: FilterOutcome, bytes: Uint8Array): BodyOutcome {
  if (o.action === "respond" || o.action === "failed") return o;
  return { action: "replace", body: bytes };
}

/** One chunk of a streamed body through the guest. */
export function bodyChunkPhase(
  s: StreamState,
  which: "request" | "response",
  chunk: Uint8Array,
  eos: boolean,
): BodyOutcome | Promise<BodyOutcome> {
  const vm: ProxyWasmVm = s.vm;
  if (vm.dead) return failedOf(vm);
  if (s.local || !vm.streams.has(s.id)) return { action: "continue" };
  const isReq = which === "request";
  const fn = vm.export(isReq ? "proxy_on_request_body" : "proxy_on_response_body");
  if (!fn) return { action: "continue" };
  const buf = concat(held(s, which) ?? EMPTY, chunk);
  // Envoy calls the body callback with data, and once more at the end (possibly empty).
  if (buf.length === 0 && !eos) return { action: "continue" };
  setHeld(s, which, buf);
  const r = vm.invoke(
    isReq ? "request_body" : "response_body",
    s,
    fn,
    s.id,
    buf.length,
    eos ? 1 : 0,
  );
  if (vm.dead) {
    setHeld(s, which, undefined);
    return failedOf(vm);
  }
  if (s.local) {
    setHeld(s, which, undefined);
    return { action: "respond", response: s.local };
  }
  const now = held(s, which) ?? EMPTY;
  if (r === 0) {
    setHeld(s, which, undefined);
    return { action: "replace", body: now };
  }
  if (now.length > vm.settings.maxBufferedBodyBytes) {
    setHeld(s, which, undefined);
    return { action: "respond", response: TOO_LARGE[which] };
  }
  if (!eos) return HELD;
  // Stopped at the end of the body: wait for the guest to continue (e.g. after a callout).
  return untilResumed(vm, s, which).then((o) => {
    const out = held(s, which) ?? EMPTY;
    setHeld(s, which, undefined);
    return bodyOf(o, out);
  });
}

/** Trailers follow the body: the bytes the guest held (StopIterationAndBuffer) go on as it left
 * them, without another body call. */
export function releaseHeld(s: StreamState, which: "request" | "response"): BodyOutcome {
  const vm: ProxyWasmVm = s.vm;
  const b = held(s, which);
  setHeld(s, which, undefined);
  if (vm.dead) return failedOf(vm);
  if (s.local) return { action: "respond", response: s.local };
  return b && b.length ? { action: "replace", body: b } : { action: "continue" };
}
