/**
 * Istio VirtualService http routes (+ DestinationRule subsets) → the JSON config of the
 * first-party `traffic-split` plugin (plugins/traffic-split). The plugin answers a route choice
 * {service, subset}; the host applies the subset's labels (snapshot `Subset`) to pick endpoints.
 * Per-proxy selectors (sourceLabels, sourceNamespace, gateways, port) and non-routing fields
 * (timeout, retries, mirror, rewrite, redirect, headers) are not the plugin's job: routes using
 * redirect/directResponse/delegate are rejected, the rest is ignored here.
 */
import type { Subset } from "../../core/mod.ts";
import { checkKeys, isRecord, type Problems, problemsError } from "./convert_util.ts";

export type SplitStringMatch = { exact: string } | { prefix: string } | { regex: string };

export interface SplitMatch {
  readonly uri?: SplitStringMatch;
  readonly method?: SplitStringMatch;
  readonly authority?: SplitStringMatch;
  readonly scheme?: SplitStringMatch;
  readonly ignoreUriCase?: boolean;
  /** `{}` = presence. */
  readonly headers?: Readonly<Record<string, SplitStringMatch | Record<string, never>>>;
  readonly withoutHeaders?: Readonly<Record<string, SplitStringMatch | Record<string, never>>>;
  readonly queryParams?: Readonly<Record<string, SplitStringMatch>>;
}

export interface SplitDestination {
  readonly service: string;
  readonly subset?: string;
  readonly weight: number;
}

export interface SplitRoute {
  readonly name: string;
  readonly match?: readonly SplitMatch[];
  readonly route: readonly SplitDestination[];
  readonly hashHeader?: string;
}

export interface SplitPluginConfig {
  readonly routes: readonly SplitRoute[];
  readonly noMatch?: "continue" | "notFound";
  /** Counter bumps batched in the guest before a host call (default 32; 1 = exact). */
  readonly counterBatch?: number;
}

export interface SplitOptions {
  readonly clusterDomain?: string;
  /** weft extension: sticky choice by the hash of this request header, for every route. */
  readonly hashHeader?: string;
  /** 404 when no route matches (Envoy/Istio behaviour) instead of the host's default route. */
  readonly noMatch?: "continue" | "notFound";
}

const MATCH_KEYS = [
  "name",
  "uri",
  "scheme",
  "method",
  "authority",
  "headers",
  "withoutHeaders",
  "queryParams",
  "ignoreUriCase",
  "port",
  "sourceLabels",
  "sourceNamespace",
  "gateways",
  "statPrefix",
];
const IGNORED_ROUTE_KEYS = [
  "name",
  "match",
  "route",
  "timeout",
  "retries",
  "fault",
  "mirror",
  "mirrors",
  "mirrorPercentage",
  "mirrorPercent",
  "mirror_percent",
  "corsPolicy",
  "headers",
  "rewrite",
];

/** Short host names resolve in the VirtualService's namespace (S8). */
export function serviceFqdn(
  host: string,
  namespace: string,
  clusterDomain = "cluster.local",
): string {
  if (host.includes(".")) {
    const parts = host.split(".");
    return parts.length === 2 ? `${host}.svc.${clusterDomain}` : host;
  }
  return `${host}.${namespace}.svc.${clusterDomain}`;
}

export function splitConfigFromVirtualService(
  vs: unknown,
  opts: SplitOptions = {},
): SplitPluginConfig {
  const problems: Problems = [];
  if (!isRecord(vs)) throw problemsError("VirtualService", ["(root): must be an object"]);
  const meta = isRecord(vs.metadata) ? vs.metadata : {};
  const ns = typeof meta.namespace === "string" ? meta.namespace : "default";
  const spec = isRecord(vs.spec) ? vs.spec : {};
  const http = Array.isArray(spec.http) ? spec.http : [];
  const routes = http.map((r, i) => routeFrom(r, `spec.http[${i}]`, ns, opts, problems));
  if (problems.length > 0) {
    throw problemsError(`VirtualService ${ns}/${String(meta.name)}`, problems);
  }
  return Object.freeze({ routes, noMatch: opts.noMatch ?? "continue" });
}

function routeFrom(
  raw: unknown,
  path: string,
  ns: string,
  opts: SplitOptions,
  problems: Problems,
): SplitRoute {
  const r = isRecord(raw) ? raw : {};
  for (const k of ["redirect", "directResponse", "delegate"]) {
    if (r[k] !== undefined) problems.push(`${path}.${k}: not supported by traffic-split`);
  }
  checkKeys(r, [...IGNORED_ROUTE_KEYS, "redirect", "directResponse", "delegate"], path, problems);
  const dests = Array.isArray(r.route) ? r.route : [];
  if (dests.length === 0) problems.push(`${path}.route: needs at least one destination`);
  const route = dests.map((d, i): SplitDestination => {
    const p = `${path}.route[${i}]`;
    const dd = isRecord(d) ? d : {};
    const dest = isRecord(dd.destination) ? dd.destination : {};
    if (typeof dest.host !== "string" || dest.host === "") {
      problems.push(`${p}.destination.host: required`);
    }
    const w = dd.weight ?? (dests.length === 1 ? 100 : 0);
    if (typeof w !== "number" || !Number.isInteger(w) || w < 0) {
      problems.push(`${p}.weight: must be an integer >= 0`);
    }
    const subset = typeof dest.subset === "string" && dest.subset !== "" ? dest.subset : undefined;
    return {
      service: serviceFqdn(String(dest.host), ns, opts.clusterDomain),
      ...(subset ? { subset } : {}),
      weight: Number(w),
    };
  });
  if (dests.length > 1 && route.reduce((s, d) => s + d.weight, 0) === 0) {
    problems.push(`${path}.route: the sum of weights must be > 0`);
  }
  const match = Array.isArray(r.match)
    ? r.match.map((m, i) => matchFrom(m, `${path}.match[${i}]`, problems))
    : undefined;
  return {
    name: typeof r.name === "string" && r.name !== "" ? r.name : path.replace("spec.", ""),
    ...(match ? { match } : {}),
    route,
    ...(opts.hashHeader ? { hashHeader: opts.hashHeader.toLowerCase() } : {}),
  };
}

function stringMatch(
  v: unknown,
  path: string,
  problems: Problems,
  allowPresence = false,
): SplitStringMatch | Record<string, never> | undefined {
  if (v === undefined) return undefined;
  if (!isRecord(v)) {
    problems.push(`${path}: must be {exact|prefix|regex}`);
    return undefined;
  }
  const keys = Object.keys(v);
  if (keys.length === 0 && allowPresence) return {};
  const k = keys[0];
  if (
    keys.length !== 1 || (k !== "exact" && k !== "prefix" && k !== "regex") ||
    typeof v[k] !== "string"
  ) {
    problems.push(`${path}: exactly one of exact, prefix, regex`);
    return undefined;
  }
  return { [k]: v[k] } as SplitStringMatch;
}

function matchFrom(raw: unknown, path: string, problems: Problems): SplitMatch {
  const m = isRecord(raw) ? raw : {};
  checkKeys(m, MATCH_KEYS, path, problems);
  const out: Record<string, unknown> = {};
  for (const k of ["uri", "method", "authority", "scheme"]) {
    const s = stringMatch(m[k], `${path}.${k}`, problems);
    if (s) out[k] = s;
  }
  if (m.ignoreUriCase === true) out.ignoreUriCase = true;
  for (const k of ["headers", "withoutHeaders", "queryParams"]) {
    if (m[k] === undefined) continue;
    if (!isRecord(m[k])) {
      problems.push(`${path}.${k}: must be a map`);
      continue;
    }
    const map: Record<string, unknown> = {};
    for (const [name, v] of Object.entries(m[k])) {
      const s = stringMatch(v, `${path}.${k}.${name}`, problems, k !== "queryParams");
      if (s) map[k === "queryParams" ? name : name.toLowerCase()] = s;
    }
    out[k] = map;
  }
  return out as SplitMatch;
}

/** DestinationRule subsets → snapshot `Subset`s (labels the host applies to endpoints). */
export function subsetsFromDestinationRule(dr: unknown): Subset[] {
  const spec = isRecord(dr) && isRecord(dr.spec) ? dr.spec : {};
  const subsets = Array.isArray(spec.subsets) ? spec.subsets : [];
  const problems: Problems = [];
  const out = subsets.map((s, i): Subset => {
    const ss = isRecord(s) ? s : {};
    if (typeof ss.name !== "string" || ss.name === "") {
      problems.push(`spec.subsets[${i}].name: required`);
    }
    const labels = isRecord(ss.labels)
      ? Object.fromEntries(Object.entries(ss.labels).map(([k, v]) => [k, String(v)]))
      : {};
    return Object.freeze({ name: String(ss.name), labels: Object.freeze(labels) });
  });
  if (problems.length > 0) throw problemsError("DestinationRule", problems);
  return out;
}
