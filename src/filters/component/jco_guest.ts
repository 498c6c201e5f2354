/**
 * The general path: a component driven through jco's generated bindings (any component, e.g.
 * JS guests with WASI imports). Core modules come precompiled and sandbox-instrumented from the
 * loader; this file only adapts jco's JS-level values to the host bridge and back.
 */
import type { BodyDecision, BodyMode, FilterDecision } from "../../core/mod.ts";
import {
  BadOutput,
  BODY_MODES,
  type BodyModes,
  continueDecision,
  delayDecision,
  type Guest,
  NO_BODIES,
  respondDecision,
  routeDecision,
  type TrailersDecision,
} from "./guest.ts";
import type { HostBridge, WhichMap } from "./host_bridge.ts";
import { SANDBOX_CHECK_NAME, SANDBOX_IMPORT_MODULE } from "../sandbox/instrument.ts";

/** The `instantiate` export of jco's output in `instantiation: "async"` mode. */
export type JcoInstantiate = (
  getCoreModule: (name: string) => WebAssembly.Module,
  imports: Record<string, unknown>,
  instantiateCore: (m: WebAssembly.Module, i: WebAssembly.Imports) => Promise<WebAssembly.Instance>,
) => Promise<Record<string, unknown>>;

interface JcoHandler {
  configure(config: Uint8Array): unknown;
  onRequestHeaders(): unknown;
  onResponseHeaders(): unknown;
  onRequestBody?(body: Uint8Array, endOfStream: boolean): unknown;
  onResponseBody?(body: Uint8Array, endOfStream: boolean): unknown;
  onRequestTrailers?(): unknown;
  onResponseTrailers?(): unknown;
}

function liftTrailersAction(v: unknown): TrailersDecision {
  const a = v as { tag?: string };
  if (a?.tag === "continue") return { action: "continue" };
  if (a?.tag === "respond") {
    const d = liftAction(a);
    if (d.action === "respond") return d;
  }
  throw new BadOutput(`invalid trailers-action ${JSON.stringify(a?.tag)}`);
}

function liftBodyAction(v: unknown): BodyDecision {
  const a = v as { tag?: string; val?: unknown };
  if (a?.tag === "continue") return { action: "continue" };
  if (a?.tag === "replace") {
    return { action: "replace", body: Uint8Array.from(a.val as Uint8Array) };
  }
  if (a?.tag === "respond") {
    const d = liftAction(a);
    if (d.action === "respond") return d;
  }
  throw new BadOutput(`invalid body-action ${JSON.stringify(a?.tag)}`);
}

function liftModes(v: unknown): BodyModes {
  const m = v as { request?: unknown; response?: unknown } | undefined;
  const one = (x: unknown): BodyMode => {
    if (BODY_MODES.includes(x as BodyMode)) return x as BodyMode;
    throw new BadOutput(`invalid body-mode ${JSON.stringify(x)}`);
  };
  return { request: one(m?.request), response: one(m?.response) };
}

const LEVELS = ["trace", "debug", "info", "warn", "error"];

function which(m: unknown): WhichMap {
  if (m === "request-headers") return 0;
  if (m === "response-headers") return 1;
  if (m === "request-trailers") return 2;
  if (m === "response-trailers") return 3;
  throw new BadOutput(`invalid header-map ${String(m)}`);
}

function hostImports(bridge: HostBridge): Record<string, unknown> {
  return {
    getHeader: (m: string, n: string) => bridge.getHeader(which(m), n),
    setHeader: (m: string, n: string, v: string) => bridge.setHeader(which(m), n, v),
    addHeader: (m: string, n: string, v: string) => bridge.addHeader(which(m), n, v),
    removeHeader: (m: string, n: string) => bridge.removeHeader(which(m), n),
    getHeaders: (m: string) => new TextEncoder().encode(bridge.getHeaders(which(m))),
    getProperty: (n: string) => bridge.getProperty(n),
    setState: (k: string, v: string) => bridge.setState(k, v),
    log: (level: string, msg: string) => bridge.log(Math.max(0, LEVELS.indexOf(level)), msg),
    counterAdd: (n: string, d: bigint) => bridge.counterAdd(n, d),
    nowNs: () => bridge.nowNs(),
    monotonicNs: () => bridge.monotonicNs(),
    randomU64: () => bridge.randomU64(),
  };
}

function liftAction(v: unknown): FilterDecision {
  const a = v as { tag?: string; val?: unknown };
  switch (a?.tag) {
    case "continue":
      return continueDecision();
    case "respond": {
      const r = a.val as {
        status: number;
        headers: [string, string][];
        body: Uint8Array;
        details: string;
      };
      return respondDecision(r.status, r.headers, Uint8Array.from(r.body), r.details);
    }
    case "delay":
      return delayDecision(a.val as number);
    case "route": {
      const r = a.val as { service: string; subset?: string };
      return routeDecision(r.service, r.subset);
    }
  }
  throw new BadOutput(`invalid action ${JSON.stringify(a?.tag)}`);
}

export async function instantiateJco(
  instantiate: JcoInstantiate,
  modules: ReadonlyMap<string, WebAssembly.Module>,
  extraImports: Record<string, unknown>,
  bridge: HostBridge,
): Promise<Guest> {
  let mainMemory: WebAssembly.Memory | undefined;
  const sandbox = { [SANDBOX_CHECK_NAME]: bridge.check };
  const exports = await instantiate(
    (name) => {
      const m = modules.get(name);
      if (!m) throw new Error(`jco asked for unknown core module ${name}`);
      return m;
    },
    { ...extraImports, "weft:filter/host": hostImports(bridge) },
    (m, imports) => {
      const inst = new WebAssembly.Instance(m, { ...imports, [SANDBOX_IMPORT_MODULE]: sandbox });
      const mem = inst.exports.memory;
      if (!mainMemory && mem instanceof WebAssembly.Memory) mainMemory = mem;
      return Promise.resolve(inst);
    },
  );
  const handler = (exports.handler ?? exports["weft:filter/handler@0.3.0"] ??
    exports["weft:filter/handler@0.2.0"] ??
    exports["weft:filter/handler@0.1.0"]) as
      | JcoHandler
      | undefined;
  const v2 = typeof handler?.onRequestBody === "function";
  let bodyModes: BodyModes = NO_BODIES;
  if (!handler) throw new BadOutput("component does not export weft:filter/handler@0.1.0");
  return {
    configure(config: Uint8Array): string | undefined {
      try {
        const r = handler.configure(config);
        if (v2) bodyModes = liftModes(r);
        return undefined;
      } catch (e) {
        const payload = (e as { payload?: unknown }).payload;
        if (typeof payload === "string") return payload || "configure failed";
        throw e;
      }
    },
    get bodyModes(): BodyModes {
      return bodyModes;
    },
    ...(v2
      ? {
        onRequestBody: (b: Uint8Array, eos: boolean) =>
          liftBodyAction(handler.onRequestBody!(b, eos)),
        onResponseBody: (b: Uint8Array, eos: boolean) =>
          liftBodyAction(handler.onResponseBody!(b, eos)),
      }
      : {}),
    ...(typeof handler.onRequestTrailers === "function"
      ? {
        onRequestTrailers: () => liftTrailersAction(handler.onRequestTrailers!()),
        onResponseTrailers: () => liftTrailersAction(handler.onResponseTrailers!()),
      }
      : {}),
    onRequestHeaders: () => liftAction(handler.onRequestHeaders()),
    onResponseHeaders: () => liftAction(handler.onResponseHeaders()),
    memoryBytes: () => mainMemory?.buffer.byteLength ?? 0,
  };
}
