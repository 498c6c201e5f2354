/**
 * A canonical-ABI adapter for exactly the `weft:filter/http-filter@0.1.0` world, driving the
 * guest's main core module without jco's generated bindings (which add several µs of task
 * bookkeeping per call; see wasm/README.md). Used when the main module imports nothing but the
 * host interface (and the sandbox check), as every C SDK guest does. Layouts: wasm/sdk/c.
 */
import type { FilterDecision } from "../../core/mod.ts";
import {
  BadOutput,
  continueDecision,
  delayDecision,
  type Guest,
  HANDLER_EXPORT,
  HOST_IMPORT,
  respondDecision,
  routeDecision,
} from "./guest.ts";
import type { HostBridge, WhichMap } from "./host_bridge.ts";
import { SANDBOX_CHECK_NAME, SANDBOX_IMPORT_MODULE } from "../sandbox/instrument.ts";

const dec = new TextDecoder("utf-8", { fatal: false });
const enc = new TextEncoder();

type Realloc = (old: number, oldSize: number, align: number, size: number) => number;

/** True when `module` can be driven directly (imports only the host interface and sandbox). */
export function isDirectEligible(module: WebAssembly.Module): boolean {
  const imports = WebAssembly.Module.imports(module);
  const exports = new Set(WebAssembly.Module.exports(module).map((e) => e.name));
  return imports.every((i) => i.module === HOST_IMPORT || i.module === SANDBOX_IMPORT_MODULE) &&
    exports.has("memory") && exports.has("cabi_realloc") &&
    exports.has(`${HANDLER_EXPORT}#configure`) &&
    exports.has(`${HANDLER_EXPORT}#on-request-headers`) &&
    exports.has(`${HANDLER_EXPORT}#on-response-headers`);
}

export function instantiateDirect(module: WebAssembly.Module, bridge: HostBridge): Guest {
  // Bound after instantiation (the imports below close over them before the instance exists).
  // deno-lint-ignore prefer-const
  let memory: WebAssembly.Memory | undefined;
  // deno-lint-ignore prefer-const
  let realloc: Realloc | undefined;
  const mem = (): WebAssembly.Memory => memory!;
  // Short ASCII strings (header names, property names) decode faster by hand than through
  // TextDecoder's per-call setup; anything else goes to TextDecoder.
  const str = (ptr: number, len: number): string => {
    if (len === 0) return "";
    const u8 = new Uint8Array(mem().buffer, ptr, len);
    if (len > 48) return dec.decode(u8);
    let s = "";
    for (let i = 0; i < len; i++) {
      const c = u8[i]!;
      if (c >= 0x80) return dec.decode(u8);
      s += String.fromCharCode(c);
    }
    return s;
  };
  /** Lowers a string into guest memory; returns [ptr, len]. */
  const lower = (s: string): [number, number] => {
    if (s.length <= 48) {
      const ptr = realloc!(0, 0, 1, s.length);
      const u8 = new Uint8Array(mem().buffer, ptr, s.length);
      let i = 0;
      for (; i < s.length; i++) {
        const c = s.charCodeAt(i);
        if (c >= 0x80) break;
        u8[i] = c;
      }
      if (i === s.length) return [ptr, s.length];
    }
    const max = s.length * 3;
    const ptr = realloc!(0, 0, 1, max);
    const { written } = enc.encodeInto(s, new Uint8Array(mem().buffer, ptr, max));
    return [ptr, written];
  };
  const writeOption = (ret: number, v: string | undefined): void => {
    if (v === undefined) {
      new DataView(mem().buffer).setUint8(ret, 0);
      return;
    }
    const [p, l] = lower(v);
    const dv = new DataView(mem().buffer);
    dv.setUint8(ret, 1);
    dv.setUint32(ret + 4, p, true);
    dv.setUint32(ret + 8, l, true);
  };
  const which = (w: number): WhichMap => {
    if (w !== 0 && w !== 1) throw new BadOutput(`invalid header-map ${w}`);
    return w;
  };
  const host: Record<string, (...args: never[]) => unknown> = {
    "get-header": (w: number, np: number, nl: number, ret: number) =>
      writeOption(ret, bridge.getHeader(which(w), str(np, nl))),
    "set-header": (w: number, np: number, nl: number, vp: number, vl: number) =>
      bridge.setHeader(which(w), str(np, nl), str(vp, vl)),
    "add-header": (w: number, np: number, nl: number, vp: number, vl: number) =>
      bridge.addHeader(which(w), str(np, nl), str(vp, vl)),
    "remove-header": (w: number, np: number, nl: number) =>
      bridge.removeHeader(which(w), str(np, nl)),
    "get-headers": (w: number, ret: number) => {
      const [p, l] = lower(bridge.getHeaders(which(w)));
      const dv = new DataView(mem().buffer);
      dv.setUint32(ret, p, true);
      dv.setUint32(ret + 4, l, true);
    },
    "get-property": (np: number, nl: number, ret: number) =>
      writeOption(ret, bridge.getProperty(str(np, nl))),
    "set-state": (kp: number, kl: number, vp: number, vl: number) =>
      bridge.setState(str(kp, kl), str(vp, vl)),
    "log": (level: number, mp: number, ml: number) => bridge.log(level, str(mp, ml)),
    "counter-add": (np: number, nl: number, delta: bigint) => bridge.counterAdd(str(np, nl), delta),
    "now-ns": () => bridge.nowNs(),
    "monotonic-ns": () => bridge.monotonicNs(),
    "random-u64": () => bridge.randomU64(),
  };
  const instance = new WebAssembly.Instance(module, {
    [HOST_IMPORT]: host as WebAssembly.ModuleImports,
    [SANDBOX_IMPORT_MODULE]: { [SANDBOX_CHECK_NAME]: bridge.check },
  });
  const ex = instance.exports;
  memory = ex.memory as WebAssembly.Memory;
  realloc = ex.cabi_realloc as Realloc;
  const configureFn = ex[`${HANDLER_EXPORT}#configure`] as (p: number, l: number) => number;
  const onReq = ex[`${HANDLER_EXPORT}#on-request-headers`] as () => number;
  const onRes = ex[`${HANDLER_EXPORT}#on-response-headers`] as () => number;
  const postReq = ex[`cabi_post_${HANDLER_EXPORT}#on-request-headers`] as
    | ((ret: number) => void)
    | undefined;
  const postRes = ex[`cabi_post_${HANDLER_EXPORT}#on-response-headers`] as
    | ((ret: number) => void)
    | undefined;
  // Post-return functions take the export's return pointer (canonical ABI).
  const postCfg = ex[`cabi_post_${HANDLER_EXPORT}#configure`] as
    | ((ret: number) => void)
    | undefined;

  const liftAction = (ret: number): FilterDecision => {
    const dv = new DataView(mem().buffer);
    const tag = dv.getUint8(ret);
    switch (tag) {
      case 0:
        return continueDecision();
      case 1: {
        const status = dv.getUint16(ret + 4, true);
        const hp = dv.getUint32(ret + 8, true);
        const hn = dv.getUint32(ret + 12, true);
        if (hn > 1024) throw new BadOutput(`local response with ${hn} headers`);
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
        const body = new Uint8Array(mem().buffer, bp, bl).slice();
        const details = str(dv.getUint32(ret + 24, true), dv.getUint32(ret + 28, true));
        return respondDecision(status, headers, body, details);
      }
      case 2:
        return delayDecision(dv.getUint32(ret + 4, true));
      case 3: {
        const service = str(dv.getUint32(ret + 4, true), dv.getUint32(ret + 8, true));
        const subset = dv.getUint8(ret + 12) === 1
          ? str(dv.getUint32(ret + 16, true), dv.getUint32(ret + 20, true))
          : undefined;
        return routeDecision(service, subset);
      }
      default:
        throw new BadOutput(`invalid action discriminant ${tag}`);
    }
  };

  return {
    configure(config: Uint8Array): string | undefined {
      const ptr = realloc!(0, 0, 1, config.length);
      new Uint8Array(mem().buffer, ptr, config.length).set(config);
      const ret = configureFn(ptr, config.length);
      const dv = new DataView(mem().buffer);
      const err = dv.getUint8(ret) === 0
        ? undefined
        : str(dv.getUint32(ret + 4, true), dv.getUint32(ret + 8, true)) || "configure failed";
      postCfg?.(ret);
      return err;
    },
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
    memoryBytes: () => mem().buffer.byteLength,
  };
}
