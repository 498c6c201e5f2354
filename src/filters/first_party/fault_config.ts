/**
 * Istio VirtualService `fault` blocks and Envoy `HTTPFault` (proto JSON) → the JSON config of
 * the first-party `fault` plugin (plugins/fault).
 *
 * weft:filter 0.1.0's `delay` action always continues afterwards, so "delay, then abort" needs
 * two chained instances: `faultStages` splits a config with both into a delay stage followed by
 * an abort stage (each drawn independently, as Envoy does).
 */
import { Checker, type HttpFault, parseDurationMs, parseFault, Problems } from "../../istio/mod.ts";
import { checkKeys, isRecord, problemsError } from "./convert_util.ts";

export type Denominator = "HUNDRED" | "TEN_THOUSAND" | "MILLION";

export interface FractionalPercent {
  readonly numerator: number;
  /** Default HUNDRED. */
  readonly denominator?: Denominator;
}

export interface FaultHeaderMatch {
  readonly name: string;
  readonly exact?: string;
  readonly prefix?: string;
  readonly regex?: string;
  readonly present?: boolean;
  readonly invertMatch?: boolean;
}

export interface FaultPluginConfig {
  readonly delay?: { fixedDelayMs?: number; headerDelay?: boolean; percentage?: FractionalPercent };
  readonly abort?: {
    httpStatus?: number;
    grpcStatus?: number;
    headerAbort?: boolean;
    percentage?: FractionalPercent;
  };
  readonly maxActiveFaults?: number;
  readonly headers?: readonly FaultHeaderMatch[];
  readonly stage?: "all" | "delay" | "abort";
  /** Counter bumps batched in the guest before a host call (default 32; 1 = exact). */
  readonly counterBatch?: number;
}

export { GRPC_CODES } from "../../istio/mod.ts";

/** Protobuf Duration text ("5s", "0.250s") and Istio's YAML forms ("100ms", "1m", "1h"). */
export function durationMs(v: unknown): number | undefined {
  return typeof v === "string" ? parseDurationMs(v.trim()) : undefined;
}

/** Istio percent 0–100 → per million (F15). */
function perMillion(percent: number): FractionalPercent {
  return { numerator: Math.round(percent * 10_000), denominator: "MILLION" };
}

/** An Istio HTTPRoute `fault` block (parsed by src/istio: `percentage` or the deprecated
 * `percent`, gRPC status names, durations) → plugin config. */
export function faultConfigFromIstio(fault: unknown): FaultPluginConfig {
  const problems = new Problems();
  const f = parseFault(new Checker(problems), "fault", fault);
  if (!problems.ok) throw problemsError("fault", problems.list);
  return faultConfigFromHttpFault(f);
}

/** A parsed Istio fault → plugin config. */
export function faultConfigFromHttpFault(f: HttpFault): FaultPluginConfig {
  const out: { -readonly [K in keyof FaultPluginConfig]: FaultPluginConfig[K] } = {};
  if (f.delay) {
    out.delay = { fixedDelayMs: f.delay.fixedDelayMs, percentage: perMillion(f.delay.percent) };
  }
  if (f.abort) {
    const p = { percentage: perMillion(f.abort.percent) };
    out.abort = f.abort.grpcStatus !== undefined
      ? { grpcStatus: f.abort.grpcStatus, ...p }
      : { httpStatus: f.abort.httpStatus, ...p };
  }
  return Object.freeze(out);
}

function envoyPercent(v: unknown, path: string, problems: string[]): FractionalPercent | undefined {
  if (!isRecord(v)) return undefined; // F1: unset → numerator 0 → never fires
  const n = v.numerator ?? 0;
  const d = v.denominator ?? "HUNDRED";
  if (typeof n !== "number" || !Number.isInteger(n) || n < 0) {
    problems.push(`${path}.numerator: must be an integer >= 0`);
  }
  if (d !== "HUNDRED" && d !== "TEN_THOUSAND" && d !== "MILLION") {
    problems.push(`${path}.denominator: unknown`);
  }
  return { numerator: Number(n), denominator: d as Denominator };
}

/** Envoy `envoy.extensions.filters.http.fault.v3.HTTPFault` in proto-JSON form → plugin config
 * (for the xDS translator). upstream_cluster, downstream_nodes and response_rate_limit are not
 * supported and rejected. */
export function faultConfigFromEnvoy(httpFault: unknown): FaultPluginConfig {
  const problems: string[] = [];
  const f = isRecord(httpFault) ? httpFault : {};
  checkKeys(f, ["delay", "abort", "maxActiveFaults", "headers"], "HTTPFault", problems);
  const out: { -readonly [K in keyof FaultPluginConfig]: FaultPluginConfig[K] } = {};
  if (isRecord(f.delay)) {
    const d = f.delay, pct = envoyPercent(d.percentage, "delay.percentage", problems);
    const p = pct ? { percentage: pct } : {};
    if (d.headerDelay !== undefined) out.delay = { headerDelay: true, ...p };
    else {
      const ms = durationMs(d.fixedDelay);
      if (ms === undefined || ms < 1) problems.push("delay.fixedDelay: required duration > 0");
      out.delay = { fixedDelayMs: ms ?? 1, ...p };
    }
  }
  if (isRecord(f.abort)) {
    const a = f.abort, pct = envoyPercent(a.percentage, "abort.percentage", problems);
    const p = pct ? { percentage: pct } : {};
    if (a.headerAbort !== undefined) out.abort = { headerAbort: true, ...p };
    else if (typeof a.httpStatus === "number") out.abort = { httpStatus: a.httpStatus, ...p };
    else if (typeof a.grpcStatus === "number") out.abort = { grpcStatus: a.grpcStatus, ...p };
    else problems.push("abort: needs httpStatus, grpcStatus or headerAbort");
  }
  if (f.maxActiveFaults !== undefined) out.maxActiveFaults = Number(f.maxActiveFaults);
  if (Array.isArray(f.headers)) {
    out.headers = f.headers.map((h, i): FaultHeaderMatch => {
      const hh = isRecord(h) ? h : {};
      const sm = isRecord(hh.stringMatch) ? hh.stringMatch : {};
      const base = {
        name: String(hh.name),
        ...(hh.invertMatch === true ? { invertMatch: true } : {}),
      };
      if (typeof hh.exactMatch === "string") return { ...base, exact: hh.exactMatch };
      if (typeof sm.exact === "string") return { ...base, exact: sm.exact };
      if (typeof sm.prefix === "string") return { ...base, prefix: sm.prefix };
      if (isRecord(sm.safeRegex) && typeof sm.safeRegex.regex === "string") {
        return { ...base, regex: sm.safeRegex.regex };
      }
      if (isRecord(hh.safeRegexMatch) && typeof hh.safeRegexMatch.regex === "string") {
        return { ...base, regex: hh.safeRegexMatch.regex };
      }
      if (hh.presentMatch === true) return { ...base, present: true };
      problems.push(`headers[${i}]: unsupported match`);
      return base;
    });
  }
  if (problems.length > 0) throw problemsError("HTTPFault", problems);
  return Object.freeze(out);
}

/** One config with both delay and abort → [delay stage, abort stage] for two chained filters;
 * otherwise the config unchanged. */
export function faultStages(cfg: FaultPluginConfig): FaultPluginConfig[] {
  if (!cfg.delay || !cfg.abort) return [cfg];
  const { abort: _a, ...delayOnly } = cfg;
  const { delay: _d, ...abortOnly } = cfg;
  return [{ ...delayOnly, stage: "delay" }, { ...abortOnly, stage: "abort" }];
}
