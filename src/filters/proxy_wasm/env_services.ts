/**
 * Host services: metrics (in core's Prometheus registry, so /stats/prometheus shows them), shared
 * data with CAS and shared queues (process-wide, scoped by vm_id, surviving VM restarts and hot
 * reloads as in Envoy), tick timers, and `proxy_http_call` to a configured cluster.
 */
import { metrics } from "../../core/mod.ts";
import type { Counter, Gauge, Histogram } from "../../core/mod.ts";
import { decodePairs, MetricType, Status } from "./abi.ts";
import { OutOfBounds } from "./guest_memory.ts";
import { refuseCall, resolveCluster, startHttpCall } from "./http_call.ts";
import {
  grpcClusterName,
  resolveGrpcCluster,
  startGrpcCall,
  startGrpcStream,
} from "./grpc_call.ts";
import type { ProxyWasmVm } from "./vm.ts";

export interface HttpCallResult {
  readonly status: number;
  readonly headers: [string, string][];
  readonly body: Uint8Array;
}

type HostFn = (...a: number[]) => number;
type Metric =
  | { kind: 0; family: Counter; labels: Record<string, string> }
  | { kind: 1; family: Gauge; labels: Record<string, string> }
  | { kind: 2; family: Histogram; labels: Record<string, string> };

/** Envoy's default histogram buckets (values are usually milliseconds). */
const ENVOY_BUCKETS = [0.5, 1, 5, 10, 25, 50, 100, 250, 500, 1000, 2500, 5000, 10000, 30000, 60000];
const HELP = "proxy-wasm plugin metric";

interface Shared {
  value: Uint8Array;
  cas: number;
}
const sharedData = new Map<string, Map<string, Shared>>();
interface Queue {
  readonly id: number;
  readonly items: Uint8Array[];
  owner: ProxyWasmVm | undefined;
}
const queuesByName = new Map<string, Queue>();
const queuesById = new Map<number, Queue>();
let nextQueueId = 1;

/** Envoy renders wasm metrics (its `wasmcustom` namespace) under their own sanitised name. */
export function metricName(raw: string): string {
  const s = raw.replace(/[^a-zA-Z0-9_:]/g, "_");
  return /^[a-zA-Z_:]/.test(s) ? s : `_${s}`;
}

/** Istio's stats filter encodes labels in the stat name (`k=.=v;.;k2=.=v2;.;istio_requests_total`)
 * and Istio's Envoy bootstrap extracts them as tags; weft does the same extraction. */
export function taggedMetric(raw: string): { name: string; labels: Record<string, string> } {
  if (!raw.includes("=.=")) return { name: metricName(raw), labels: {} };
  const parts = raw.split(";.;");
  const labels: Record<string, string> = {};
  for (const p of parts.slice(0, -1)) {
    const i = p.indexOf("=.=");
    if (i > 0) labels[metricName(p.slice(0, i))] = p.slice(i + 3);
  }
  // Istio 1.5 names end in `_istio_requests_total` (its stat prefix is prepended by Envoy).
  return { name: metricName(parts[parts.length - 1]!.replace(/^_+/, "")), labels };
}

function guard(fn: () => number): number {
  try {
    return fn();
  } catch (e) {
    if (e instanceof OutOfBounds) return Status.INVALID_MEMORY_ACCESS;
    throw e;
  }
}

function metricFunctions(vm: ProxyWasmVm): Record<string, HostFn> {
  const m = vm.mem;
  const defined: Metric[] = [];
  const byId = (id: number): Metric | undefined => defined[id - 1];
  return {
    proxy_define_metric: (type, p, l, idPtr) =>
      guard(() => {
        const { name, labels } = taggedMetric(m.readString(p, l));
        const keys = Object.keys(labels);
        let metric: Metric;
        try {
          if (type === MetricType.COUNTER) {
            metric = { kind: 0, family: metrics.counter(name, HELP, keys), labels };
          } else if (type === MetricType.GAUGE) {
            metric = { kind: 1, family: metrics.gauge(name, HELP, keys), labels };
          } else if (type === MetricType.HISTOGRAM) {
            metric = {
              kind: 2,
              family: metrics.histogram(name, HELP, keys, ENVOY_BUCKETS),
              labels,
            };
          } else return Status.BAD_ARGUMENT;
        } catch {
          return Status.BAD_ARGUMENT; // the name is taken by a metric of another kind
        }
        defined.push(metric);
        m.setU32(idPtr, defined.length);
        return Status.OK;
      }),
    proxy_increment_metric: (id, delta) => {
      const x = byId(id);
      if (!x) return Status.NOT_FOUND;
      const d = Number(delta);
      if (x.kind === 0) {
        if (d < 0) return Status.BAD_ARGUMENT;
        x.family.inc(x.labels, d);
      } else if (x.kind === 1) x.family.add(x.labels, d);
      else return Status.BAD_ARGUMENT;
      return Status.OK;
    },
    proxy_record_metric: (id, value) => {
      const x = byId(id);
      if (!x) return Status.NOT_FOUND;
      const v = Number(BigInt.asUintN(64, BigInt(value)));
      if (x.kind === 0) {
        const cur = x.family.get(x.labels);
        if (v < cur) return Status.BAD_ARGUMENT;
        x.family.inc(x.labels, v - cur);
      } else if (x.kind === 1) x.family.set(x.labels, v);
      else x.family.observe(x.labels, v);
      return Status.OK;
    },
    proxy_get_metric: (id, ptr) =>
      guard(() => {
        const x = byId(id);
        if (!x) return Status.NOT_FOUND;
        if (x.kind === 2) return Status.BAD_ARGUMENT;
        m.setU64(ptr, BigInt(Math.max(0, Math.trunc(x.family.get(x.labels)))));
        return Status.OK;
      }),
  };
}

function sharedFunctions(vm: ProxyWasmVm): Record<string, HostFn> {
  const m = vm.mem;
  const vmId = vm.settings.vmId;
  let data = sharedData.get(vmId);
  if (!data) sharedData.set(vmId, data = new Map());
  const store = data;
  return {
    proxy_get_shared_data: (kp, kl, retPtr, retLen, casPtr) =>
      guard(() => {
        const e = store.get(m.readString(kp, kl));
        if (!e) return Status.NOT_FOUND;
        m.setU32(casPtr, e.cas);
        return m.give(e.value, retPtr, retLen);
      }),
    proxy_set_shared_data: (kp, kl, vp, vl, cas) =>
      guard(() => {
        const key = m.readString(kp, kl);
        const e = store.get(key);
        if (cas !== 0 && (!e || e.cas !== cas >>> 0)) return Status.CAS_MISMATCH;
        store.set(key, { value: m.read(vp, vl), cas: ((e?.cas ?? 0) + 1) >>> 0 || 1 });
        return Status.OK;
      }),
    proxy_register_shared_queue: (np, nl, idPtr) =>
      guard(() => {
        const key = `${vmId}\0${m.readString(np, nl)}`;
        let q = queuesByName.get(key);
        if (!q) {
          q = { id: nextQueueId++, items: [], owner: vm };
          queuesByName.set(key, q);
          queuesById.set(q.id, q);
        }
        q.owner = vm;
        m.setU32(idPtr, q.id);
        return Status.OK;
      }),
    proxy_resolve_shared_queue: (vp, vl, np, nl, idPtr) =>
      guard(() => {
        const q = queuesByName.get(`${m.readString(vp, vl)}\0${m.readString(np, nl)}`);
        if (!q) return Status.NOT_FOUND;
        m.setU32(idPtr, q.id);
        return Status.OK;
      }),
    proxy_enqueue_shared_queue: (id, p, l) =>
      guard(() => {
        const q = queuesById.get(id);
        if (!q) return Status.NOT_FOUND;
        q.items.push(m.read(p, l));
        const owner = q.owner;
        if (owner && !owner.dead) {
          queueMicrotask(() => owner.callRoot("proxy_on_queue_ready", q.id));
        }
        return Status.OK;
      }),
    proxy_dequeue_shared_queue: (id, retPtr, retLen) =>
      guard(() => {
        const q = queuesById.get(id);
        if (!q) return Status.NOT_FOUND;
        const item = q.items.shift();
        if (!item) return Status.EMPTY;
        return m.give(item, retPtr, retLen);
      }),
  };
}

function timerAndCallFunctions(vm: ProxyWasmVm): Record<string, HostFn> {
  const m = vm.mem;
  let tick: { id: ReturnType<typeof setInterval>; stop: () => void } | undefined;
  let nextCallId = 1;
  /** The upstream, service, method and metadata of proxy_grpc_call / proxy_grpc_stream, or the
   * status to return: BAD_ARGUMENT, or PARSE_FAILURE for an upstream Envoy cannot resolve. */
  const grpcCallArgs = (
    up: number,
    ul: number,
    sp: number,
    sl: number,
    mp: number,
    ml: number,
    hp: number,
    hl: number,
  ) => {
    const raw = m.read(up, ul);
    const metadata = hl === 0 ? [] : decodePairs(m.read(hp, hl));
    const service = m.readString(sp, sl);
    const method = m.readString(mp, ml);
    if (!metadata || !service || !method) return Status.BAD_ARGUMENT;
    const cluster = grpcClusterName(raw);
    const target = resolveGrpcCluster(vm, raw);
    if (typeof target === "string") {
      refuseCall(vm, cluster, target);
      return Status.PARSE_FAILURE;
    }
    return { cluster, target, path: `/${service}/${method}`, metadata };
  };
  return {
    proxy_set_tick_period_milliseconds: (ms) => {
      if (tick) {
        tick.stop();
        vm.cleanups.delete(tick.stop);
        tick = undefined;
      }
      if (ms > 0) {
        const id = setInterval(() => vm.callRoot("proxy_on_tick"), ms >>> 0);
        const stop = () => clearInterval(id);
        tick = { id, stop };
        vm.cleanups.add(stop);
      }
      return Status.OK;
    },
    proxy_http_call: (up, ul, hp, hl, bp, bl, _tp, _tl, timeoutMs, idPtr) =>
      guard(() => {
        const cluster = m.readString(up, ul);
        const headers = decodePairs(m.read(hp, hl));
        if (!headers) return Status.BAD_ARGUMENT;
        const has = (k: string) => headers.some(([n]) => n === k);
        if (!has(":method") || !has(":path") || !has(":authority")) {
          refuseCall(vm, cluster, "headers lack :method, :path or :authority");
          return Status.BAD_ARGUMENT;
        }
        const target = resolveCluster(vm, cluster);
        if (typeof target === "string") {
          refuseCall(vm, cluster, target);
          return Status.BAD_ARGUMENT;
        }
        const id = nextCallId++;
        m.setU32(idPtr, id);
        startHttpCall(vm, id, cluster, target, headers, m.read(bp, bl), timeoutMs >>> 0);
        return Status.OK;
      }),
    proxy_grpc_call: (up, ul, sp, sl, mp, ml, hp, hl, bp, bl, timeoutMs, idPtr) =>
      guard(() => {
        const c = grpcCallArgs(up, ul, sp, sl, mp, ml, hp, hl);
        if (typeof c === "number") return c;
        const id = nextCallId++;
        m.setU32(idPtr, id);
        const { cluster, target, path, metadata } = c;
        startGrpcCall(vm, id, cluster, target, path, metadata, m.read(bp, bl), timeoutMs >>> 0);
        return Status.OK;
      }),
    proxy_grpc_stream: (up, ul, sp, sl, mp, ml, hp, hl, idPtr) =>
      guard(() => {
        const c = grpcCallArgs(up, ul, sp, sl, mp, ml, hp, hl);
        if (typeof c === "number") return c;
        const id = nextCallId++;
        m.setU32(idPtr, id);
        startGrpcStream(vm, id, c.cluster, c.target, c.path, c.metadata);
        return Status.OK;
      }),
    proxy_grpc_send: (id, mp, ml, end) =>
      guard(() => {
        const x = vm.grpcCalls.get(id);
        if (!x) return Status.NOT_FOUND;
        return x.send(m.read(mp, ml), end !== 0) ? Status.OK : Status.BAD_ARGUMENT;
      }),
    proxy_grpc_cancel: (id) => {
      const x = vm.grpcCalls.get(id);
      if (!x) return Status.NOT_FOUND;
      x.cancel();
      return Status.OK;
    },
    proxy_grpc_close: (id) => {
      const x = vm.grpcCalls.get(id);
      if (!x) return Status.NOT_FOUND;
      x.close();
      return Status.OK;
    },
  };
}

export function serviceFunctions(vm: ProxyWasmVm): Record<string, HostFn> {
  return { ...metricFunctions(vm), ...sharedFunctions(vm), ...timerAndCallFunctions(vm) };
}
