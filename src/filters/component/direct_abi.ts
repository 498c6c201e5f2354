/**
 * A canonical-ABI adapter for exactly the `weft:filter/http-filter` worlds 0.1.0, 0.2.0 (bodies)
 * and 0.3.0 (trailers), driving the
 * guest's main core module without jco's generated bindings (which add several µs of task
 * bookkeeping per call; see wasm/README.md). Used when the main module imports nothing but the
 * host interface (and the sandbox check), as every C SDK guest does. Layouts: wasm/sdk/c.
 */
import type { BodyDecision, FilterDecision } from "../../core/mod.ts";
import {
  BadOutput,
  BODY_MODES,
  type BodyModes,
  continueDecision,
  delayDecision,
  type Guest,
  HANDLER_EXPORT,
  HANDLER_EXPORT_V2,
  HANDLER_EXPORT_V3,
  HOST_IMPORT,
  HOST_IMPORT_V2,
  HOST_IMPORT_V3,
  NO_BODIES,
  respondDecision,
  routeDecision,
  type TrailersDecision,
  type WorldVersion,
} from "./guest.ts";
import type { HostBridge, WhichMap } from "./host_bridge.ts";
import { GuestMemory, type Realloc } from "./guest_memory.ts";
import { RespondMemo, RouteMemo } from "./respond_memo.ts";
import { SANDBOX_CHECK_NAME, SANDBOX_IMPORT_MODULE } from "../sandbox/instrument.ts";

/** The world version a core module was built for (by its handler exports). */
function versionOf(exports: ReadonlySet<string>): WorldVersion {
  if (exports.has(`${HANDLER_EXPORT_V3}#configure`)) return "0.3.0";
  return exports.has(`${HANDLER_EXPORT_V2}#configure`) ? "0.2.0" : "0.1.0";
}

const NAMES: Record<WorldVersion, { host: string; handler: string }> = {
  "0.1.0": { host: HOST_IMPORT, handler: HANDLER_EXPORT },
  "0.2.0": { host: HOST_IMPORT_V2, handler: HANDLER_EXPORT_V2 },
  "0.3.0": { host: HOST_IMPORT_V3, handler: HANDLER_EXPORT_V3 },
};

/** True when `module` can be driven directly (imports only the host interface and sandbox). */
export function isDirectEligible(module: WebAssembly.Module): boolean {
  const imports = WebAssembly.Module.imports(module);
  const exports = new Set(WebAssembly.Module.exports(module).map((e) => e.name));
  const version = versionOf(exports);
  const { host, handler } = NAMES[version];
  const hooks = ["configure", "on-request-headers", "on-response-headers"];
  if (version !== "0.1.0") hooks.push("on-request-body", "on-response-body");
  if (version === "0.3.0") hooks.push("on-request-trailers", "on-response-trailers");
  return imports.every((i) => i.module === host || i.module === SANDBOX_IMPORT_MODULE) &&
    exports.has("memory") && exports.has("cabi_realloc") &&
    hooks.every((h) => exports.has(`${handler}#${h}`));
}

export function instantiateDirect(module: WebAssembly.Module, bridge: HostBridge): Guest {
  const version = versionOf(new Set(WebAssembly.Module.exports(module).map((e) => e.name)));
  const v2 = version !== "0.1.0"; // body phases (0.2.0 and 0.3.0)
  const v3 = version === "0.3.0";
  const HANDLER = NAMES[version].handler;
  // Bound after instantiation (the imports below close over it before the instance exists).
  // deno-lint-ignore prefer-const
  let m: GuestMemory | undefined;
  const which = (w: number): WhichMap => {
    if (w === 0 || w === 1 || (v3 && (w === 2 || w === 3))) return w;
    throw new BadOutput(`invalid header-map ${w}`);
  };
  const host: Record<string, (...args: never[]) => unknown> = {
    "get-header": (w: number, np: number, nl: number, ret: number) =>
      m!.writeOption(ret, bridge.getHeader(which(w), m!.headerName(np, nl), true)),
    "set-header": (w: number, np: number, nl: number, vp: number, vl: number) =>
      bridge.setHeader(which(w), m!.headerName(np, nl), m!.str(vp, vl), true),
    "add-header": (w: number, np: number, nl: number, vp: number, vl: number) =>
      bridge.addHeader(which(w), m!.headerName(np, nl), m!.str(vp, vl), true),
    "remove-header": (w: number, np: number, nl: number) =>
      bridge.removeHeader(which(w), m!.headerName(np, nl), true),
    "get-headers": (w: number, ret: number) => {
      const p = m!.lower(bridge.getHeaders(which(w)));
      const dv = m!.dataView();
      dv.setUint32(ret, p, true);
      dv.setUint32(ret + 4, m!.lastLen, true);
    },
    "get-property": (np: number, nl: number, ret: number) => {
      // The getter, resolved once per name, rides on the name's cache entry.
      const e = m!.nameEntry(np, nl);
      m!.writeOption(ret, (e.property ??= bridge.property(e.s))());
    },
    "set-state": (kp: number, kl: number, vp: number, vl: number) =>
      bridge.setState(m!.name(kp, kl), m!.str(vp, vl)),
    "log": (level: number, mp: number, ml: number) => bridge.log(level, m!.str(mp, ml)),
    "counter-add": (np: number, nl: number, delta: bigint) => {
      // The bound counter (label key built once) rides on the name's cache entry.
      const e = m!.nameEntry(np, nl);
      (e.counter ??= bridge.counter(e.s))(Number(delta));
    },
    "now-ns": () => bridge.nowNs(),
    "monotonic-ns": () => bridge.monotonicNs(),
    "random-u64": () => bridge.randomU64(),
  };
  const instance = new WebAssembly.Instance(module, {
    [NAMES[version].host]: host as WebAssembly.ModuleImports,
    [SANDBOX_IMPORT_MODULE]: { [SANDBOX_CHECK_NAME]: bridge.check },
  });
  const ex = instance.exports;
  m = new GuestMemory(ex.memory as WebAssembly.Memory, ex.cabi_realloc as Realloc);
  const mem = m;
  const str = (ptr: number, len: number): string => mem.str(ptr, len);
  const configureFn = ex[`${HANDLER}#configure`] as (p: number, l: number) => number;
  const onReq = ex[`${HANDLER}#on-request-headers`] as () => number;
  const onRes = ex[`${HANDLER}#on-response-headers`] as () => number;
  const postReq = ex[`cabi_post_${HANDLER}#on-request-headers`] as
    | ((ret: number) => void)
    | undefined;
  const postRes = ex[`cabi_post_${HANDLER}#on-response-headers`] as
    | ((ret: number) => void)
    | undefined;
  // Post-return functions take the export's return pointer (canonical ABI).
  const postCfg = ex[`cabi_post_${HANDLER}#configure`] as
    | ((ret: number) => void)
    | undefined;

  const memo = new RespondMemo();
  const routes = new RouteMemo();
  /** local-response payload @4 (action.respond and body-action.respond share it). */
  const liftRespond = (ret: number): FilterDecision => {
    const dv = mem.dataView();
    const status = dv.getUint16(ret + 4, true);
    const hp = dv.getUint32(ret + 8, true);
    const hn = dv.getUint32(ret + 12, true);
    if (hn > 1024) throw new BadOutput(`local response with ${hn} headers`);
    const again = memo.find(mem.u8, dv, ret);
    if (again !== undefined) return again;
    const headers: [string, string][] = [];
    for (let i = 0; i < hn; i++) {
      const e = hp + i * 16;
      headers.push([
        str(dv.getUint32(e, true), dv.getUint32(e + 4, true)),
        str(dv.getUint32(e + 8, true), dv.getUint32(e + 12, true)),
      ]);
    }
    const bp = dv.getUint32(ret + 16, true);
    const bl = dv.getUint32(ret + 20, true);
    const body = new Uint8Array(mem.memory.buffer, bp, bl).slice();
    const details = str(dv.getUint32(ret + 24, true), dv.getUint32(ret + 28, true));
    const d = respondDecision(status, headers, body, details);
    return d.action === "respond" ? memo.remember(d) : d;
  };

  const liftAction = (ret: number): FilterDecision => {
    const dv = mem.dataView();
    const tag = dv.getUint8(ret);
    switch (tag) {
      case 0:
        return continueDecision();
      case 1:
        return liftRespond(ret);
      case 2:
        return delayDecision(dv.getUint32(ret + 4, true));
      case 3: {
        const again = routes.find(mem.u8, dv, ret);
        if (again !== undefined) return again;
        const service = str(dv.getUint32(ret + 4, true), dv.getUint32(ret + 8, true));
        const subset = dv.getUint8(ret + 12) === 1
          ? str(dv.getUint32(ret + 16, true), dv.getUint32(ret + 20, true))
          : undefined;
        const d = routeDecision(service, subset);
        return d.action === "continue" ? routes.remember(d) : d;
      }
      default:
        throw new BadOutput(`invalid action discriminant ${tag}`);
    }
  };

  const bodyHook = (name: string) => {
    const fn = ex[`${HANDLER}#${name}`] as
      | ((p: number, l: number, e: number) => number)
      | undefined;
    const post = ex[`cabi_post_${HANDLER}#${name}`] as ((ret: number) => void) | undefined;
    if (!fn) return undefined;
    return (body: Uint8Array, eos: boolean): BodyDecision => {
      const ptr = mem.lowerBytes(body);
      const ret = fn(ptr, body.length, eos ? 1 : 0);
      const d = liftBodyAction(ret);
      post?.(ret);
      return d;
    };
  };
  // body-action: tag u8 @0; replace: list (ptr,len) @4/@8; respond: local-response @4 (as action).
  const liftBodyAction = (ret: number): BodyDecision => {
    const dv = mem.dataView();
    const tag = dv.getUint8(ret);
    if (tag === 0) return { action: "continue" };
    if (tag === 1) {
      const p = dv.getUint32(ret + 4, true);
      const l = dv.getUint32(ret + 8, true);
      return { action: "replace", body: new Uint8Array(mem.memory.buffer, p, l).slice() };
    }
    if (tag === 2) {
      const d = liftRespond(ret); // same payload layout as action.respond
      if (d.action !== "respond") throw new BadOutput("invalid body-action respond");
      return d;
    }
    throw new BadOutput(`invalid body-action discriminant ${tag}`);
  };
  // trailers-action: tag u8 @0; respond: local-response @4 (as action.respond).
  const trailersHook = (name: string) => {
    const fn = ex[`${HANDLER}#${name}`] as (() => number) | undefined;
    const post = ex[`cabi_post_${HANDLER}#${name}`] as ((ret: number) => void) | undefined;
    if (!fn) return undefined;
    return (): TrailersDecision => {
      const ret = fn();
      const tag = mem.dataView().getUint8(ret);
      let d: TrailersDecision;
      if (tag === 0) d = { action: "continue" };
      else if (tag === 1) d = liftRespond(ret) as TrailersDecision;
      else throw new BadOutput(`invalid trailers-action discriminant ${tag}`);
      post?.(ret);
      return d;
    };
  };
  const onReqTrailers = v3 ? trailersHook("on-request-trailers") : undefined;
  const onResTrailers = v3 ? trailersHook("on-response-trailers") : undefined;
  let bodyModes: BodyModes = NO_BODIES;
  const mode = (b: number) => {
    const m = BODY_MODES[b];
    if (m === undefined) throw new BadOutput(`invalid body-mode ${b}`);
    return m;
  };
  const onReqBody = v2 ? bodyHook("on-request-body") : undefined;
  const onResBody = v2 ? bodyHook("on-response-body") : undefined;

  return {
    configure(config: Uint8Array): string | undefined {
      const ptr = mem.lowerBytes(config);
      const ret = configureFn(ptr, config.length);
      const dv = mem.dataView();
      const ok = dv.getUint8(ret) === 0;
      // 0.2.0: result<body-modes, string>: ok payload = two enum bytes @4/@5.
      if (ok && v2) {
        bodyModes = { request: mode(dv.getUint8(ret + 4)), response: mode(dv.getUint8(ret + 5)) };
      }
      const err = ok
        ? undefined
        : str(dv.getUint32(ret + 4, true), dv.getUint32(ret + 8, true)) || "configure failed";
      postCfg?.(ret);
      return err;
    },
    get bodyModes(): BodyModes {
      return bodyModes;
    },
    ...(onReqBody ? { onRequestBody: onReqBody } : {}),
    ...(onResBody ? { onResponseBody: onResBody } : {}),
    ...(onReqTrailers ? { onRequestTrailers: onReqTrailers } : {}),
    ...(onResTrailers ? { onResponseTrailers: onResTrailers } : {}),
    onRequestHeaders(): FilterDecision {
      const ret = onReq();
      const d = liftAction(ret);
      postReq?.(ret);
      return d;
    },
    onResponseHeaders(): FilterDecision {
      const ret = onRes();
      const d = liftAction(ret);
      postRes?.(ret);
      return d;
    },
    memoryBytes: () => mem.memory.buffer.byteLength,
  };
}
