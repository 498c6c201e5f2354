/**
 * Core host functions: logging, buffers (VM/plugin configuration, bodies, callout bodies),
 * properties, time, effective context and `proxy_done`. Access windows follow the spec:
 * VM_CONFIGURATION only in on_vm_start, PLUGIN_CONFIGURATION only in on_configure, callout
 * results only in on_http_call_response.
 */
import type { LogLevel as WeftLevel } from "../../core/mod.ts";
import { BufferType, LogLevel, Status } from "./abi.ts";
import { OutOfBounds } from "./guest_memory.ts";
import {
  getProperty,
  type PropertyValue,
  requestProperties,
  splitPath,
  UNSERIALIZABLE,
} from "./properties.ts";
import type { ProxyWasmVm, StreamState } from "./vm.ts";

type HostFn = (...a: number[]) => number;

const LEVELS: readonly WeftLevel[] = ["trace", "debug", "info", "warn", "error", "error"];

function guard(fn: () => number): number {
  try {
    return fn();
  } catch (e) {
    if (e instanceof OutOfBounds) return Status.INVALID_MEMORY_ACCESS;
    throw e;
  }
}

/** A buffer type the ABI does not define: BAD_ARGUMENT, as cpp-host answers (a defined type
 * outside its window is NOT_FOUND). */
const unknownBuffer = (type: number): boolean => type >>> 0 > BufferType.FOREIGN_FUNCTION_ARGUMENTS;

/** The buffer readable now, or undefined (NOT_FOUND) outside its window. */
function bufferOf(vm: ProxyWasmVm, type: number): Uint8Array | undefined {
  const s = vm.effective;
  switch (type) {
    case BufferType.VM_CONFIGURATION:
      return vm.callback === "vm_start" ? vm.settings.vmConfig : undefined;
    case BufferType.PLUGIN_CONFIGURATION:
      return vm.callback === "configure" ? vm.settings.pluginConfig : undefined;
    case BufferType.HTTP_REQUEST_BODY:
      return s?.requestHeld ?? s?.req.requestBody;
    case BufferType.HTTP_RESPONSE_BODY:
      return s?.responseHeld ?? s?.res?.responseBody;
    case BufferType.HTTP_CALL_RESPONSE_BODY:
      return vm.httpCallResult?.body;
    case BufferType.GRPC_CALL_MESSAGE:
      return vm.grpc?.message;
  }
  return undefined;
}

/** `proxy_set_buffer_bytes` semantics: start=0,size=0 prepends; start ≥ len appends; otherwise
 * replaces `size` bytes at `start`. */
function splice(old: Uint8Array, start: number, size: number, data: Uint8Array): Uint8Array {
  if (start === 0 && size === 0) return concat(data, old);
  if (start >= old.length) return concat(old, data);
  const end = Math.min(old.length, start + size);
  const out = new Uint8Array(old.length - (end - start) + data.length);
  out.set(old.subarray(0, start), 0);
  out.set(data, start);
  out.set(old.subarray(end), start + data.length);
  return out;
}

function concat(a: Uint8Array, b: Uint8Array): Uint8Array {
  const out = new Uint8Array(a.length + b.length);
  out.set(a, 0);
  out.set(b, a.length);
  return out;
}

function propertyScope(vm: ProxyWasmVm, s: StreamState | undefined) {
  const st = vm.settings;
  return {
    pluginName: st.name,
    rootId: st.rootId,
    vmId: st.vmId,
    nodeId: st.nodeId,
    nodeCluster: st.nodeCluster,
    nodeMetadata: st.nodeMetadata,
    req: s?.req,
    res: s?.res,
    startMs: s?.startMs,
    written: s
      ? s.req.filterState.get("proxy_wasm.properties") as
        | ReadonlyMap<string, Uint8Array>
        | undefined
      : vm.root.written,
  };
}

/** The key a set property is stored under: its segments joined by 0x00 (a trailing 0x00, as
 * the C++ SDK sends, dropped); a path without 0x00 is one segment. */
function writtenKey(raw: string): string {
  return raw.endsWith("\0") ? raw.slice(0, -1) : raw;
}

export function coreFunctions(vm: ProxyWasmVm): Record<string, HostFn> {
  const m = vm.mem;
  const log = vm.log;
  const fields = (msg: string) => ({
    plugin: vm.settings.name,
    generation: vm.generation,
    context: vm.effective?.id ?? vm.rootId,
    message: msg,
  });
  const getBuffer = (type: number, start: number, max: number, retPtr: number, retLen: number) =>
    guard(() => {
      if (unknownBuffer(type)) return Status.BAD_ARGUMENT;
      const b = bufferOf(vm, type);
      if (!b) return Status.NOT_FOUND;
      start >>>= 0;
      if (start > b.length) return Status.BAD_ARGUMENT;
      const end = Math.min(b.length, start + (max >>> 0));
      return m.give(b.subarray(start, end), retPtr, retLen);
    });
  return {
    proxy_log: (level, p, l) =>
      guard(() => {
        const lv = LEVELS[level];
        if (lv === undefined) return Status.BAD_ARGUMENT;
        if (log.enabled(lv)) log.log(lv, "proxy-wasm plugin log", fields(m.readString(p, l)));
        return Status.OK;
      }),
    proxy_get_log_level: (ptr) =>
      guard(() => {
        let level: number = LogLevel.CRITICAL;
        for (let i = 0; i < 5; i++) {
          if (log.enabled(LEVELS[i]!)) {
            level = i;
            break;
          }
        }
        m.setU32(ptr, level);
        return Status.OK;
      }),
    proxy_get_buffer_bytes: getBuffer,
    proxy_get_buffer_status: (type, sizePtr, flagsPtr) =>
      guard(() => {
        if (unknownBuffer(type)) return Status.BAD_ARGUMENT;
        const b = bufferOf(vm, type);
        if (!b) return Status.NOT_FOUND;
        m.setU32(sizePtr, b.length);
        m.setU32(flagsPtr, 0);
        return Status.OK;
      }),
    proxy_set_buffer_bytes: (type, start, size, p, l) =>
      guard(() => {
        if (unknownBuffer(type)) return Status.BAD_ARGUMENT;
        const s = vm.effective;
        const data = m.read(p, l);
        if (type === BufferType.HTTP_REQUEST_BODY && s?.requestHeld) {
          s.requestHeld = splice(s.requestHeld, start >>> 0, size >>> 0, data);
        } else if (type === BufferType.HTTP_RESPONSE_BODY && s?.responseHeld) {
          s.responseHeld = splice(s.responseHeld, start >>> 0, size >>> 0, data);
        } else if (type === BufferType.HTTP_REQUEST_BODY && s?.req.requestBody) {
          s.req.requestBody = splice(s.req.requestBody, start >>> 0, size >>> 0, data);
        } else if (type === BufferType.HTTP_RESPONSE_BODY && s?.res?.responseBody) {
          s.res.responseBody = splice(s.res.responseBody, start >>> 0, size >>> 0, data);
        } else return Status.NOT_FOUND;
        return Status.OK;
      }),
    // 0.1.0: the configuration of the callback in progress.
    proxy_get_configuration: (retPtr, retLen) =>
      getBuffer(
        vm.callback === "vm_start" ? BufferType.VM_CONFIGURATION : BufferType.PLUGIN_CONFIGURATION,
        0,
        0xffffffff,
        retPtr,
        retLen,
      ),
    proxy_get_property: (p, l, retPtr, retLen) =>
      guard(() => {
        const raw = m.readString(p, l);
        // Values a filter set are found under the exact key it used (a filter-state key like
        // "envoy.wasm.metadata_exchange.downstream" is one segment, whatever its dots).
        const scope = propertyScope(vm, vm.effective);
        const segs = splitPath(raw);
        let v: PropertyValue = scope.written?.get(writtenKey(raw));
        if (v === undefined && segs[0] === "filter_state" && segs.length > 1) {
          // filter_state.<key>: what a filter of this request set under <key> (Envoy ≥ 1.15
          // stores proxy_set_property values as "wasm.<path>"; accept both spellings).
          const k = segs.slice(1).join("\0");
          v = scope.written?.get(k) ?? scope.written?.get(k.replace(/^wasm\./, ""));
        }
        v ??= getProperty(segs, scope);
        if (v === undefined) return Status.NOT_FOUND;
        if (v === UNSERIALIZABLE) return Status.SERIALIZATION_FAILURE;
        return m.give(v, retPtr, retLen);
      }),
    proxy_set_property: (p, l, vp, vl) =>
      guard(() => {
        const path = writtenKey(m.readString(p, l));
        const s = vm.effective;
        const map = s ? requestProperties(s.req) : vm.root.written;
        map.set(path, m.read(vp, vl));
        return Status.OK;
      }),
    proxy_get_current_time_nanoseconds: (ptr) =>
      guard(() => {
        m.setU64(ptr, BigInt(Date.now()) * 1_000_000n);
        return Status.OK;
      }),
    proxy_set_effective_context: (id) => {
      if (id === vm.rootId) vm.effective = undefined;
      else {
        const s = vm.streams.get(id);
        if (!s) return Status.BAD_ARGUMENT;
        vm.effective = s;
      }
      return Status.OK;
    },
    proxy_done: () => {
      const s = vm.effective;
      if (!s || !s.awaitingDone) return Status.NOT_FOUND;
      // At once, so that a second proxy_done before the stream finishes is NOT_FOUND and
      // on_log/on_delete run once.
      s.awaitingDone = false;
      queueMicrotask(() => vm.finishStream(s));
      return Status.OK;
    },
    proxy_get_status: (codePtr, msgPtr, msgLen) =>
      guard(() => {
        const g = vm.grpc;
        if (g?.status !== undefined) {
          m.setU32(codePtr, g.status);
          return m.give(new TextEncoder().encode(g.statusMessage ?? ""), msgPtr, msgLen);
        }
        const r = vm.httpCallResult;
        if (!r) return Status.NOT_FOUND;
        m.setU32(codePtr, r.status);
        return m.give(new Uint8Array(0), msgPtr, msgLen);
      }),
  };
}
