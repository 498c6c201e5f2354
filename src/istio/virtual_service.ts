/**
 * networking.istio.io VirtualService: http routes (match, weighted destinations, redirect,
 * directResponse, mirror(s), fault with `percentage` or the deprecated `percent`, timeout,
 * retries, `rewrite` (uri, authority), `headers` on routes and destinations (headers.ts)) and
 * simple tcp routes, `delegate` (one level; merged by delegate.ts: a VirtualService without hosts
 * is a delegate), `corsPolicy` (cors.ts). Fields weft has no mechanism for (uriRegexRewrite, ...)
 * are rejected with their path.
 */
import { type Checker, INT32_MAX, isObj, type Raw } from "./check.ts";
import { GRPC_CODES } from "./grpc_status.ts";
import { meta } from "./meta.ts";
import { parseHeaders } from "./headers.ts";
import { parseCorsPolicy } from "./cors.ts";
import { regexProblem, RETRY_CONDITIONS } from "../core/mod.ts";
import type {
  HttpFault,
  HttpHeaders,
  HttpMatch,
  HttpMirror,
  HttpRedirect,
  HttpRetry,
  HttpRoute,
  IstioStringMatch,
  RouteDestination,
  TcpRoute,
  VirtualService,
} from "./types.ts";

export function parseVirtualService(c: Checker, doc: Raw): VirtualService {
  const m = meta(c, doc.metadata);
  const spec = c.obj("spec", doc.spec, ["hosts", "gateways", "http", "tcp", "tls", "exportTo"]);
  const hosts = c.strList("spec.hosts", spec.hosts);
  // No hosts: a delegate VirtualService (istio/api validation: no gateways, tcp or tls there).
  const isDelegate = hosts.length === 0;
  const gateways = c.strList("spec.gateways", spec.gateways);
  if (isDelegate && gateways.length) {
    c.problems.add("spec.gateways", "a delegate VirtualService (no hosts) cannot set gateways");
  }
  if (isDelegate && c.list("spec.tcp", spec.tcp).length) {
    c.problems.add("spec.tcp", "a delegate VirtualService (no hosts) cannot have tcp routes");
  }
  if (gateways.some((g) => g !== "mesh")) {
    c.problems.add("spec.gateways", 'weft has no gateways: only "mesh" is supported');
  }
  const exportTo = c.strList("spec.exportTo", spec.exportTo);
  c.unsupported("spec", spec, ["tls"], "TLS routes are not supported by weft");
  const http = c.list("spec.http", spec.http).map((r, i) =>
    parseHttpRoute(c, `spec.http[${i}]`, r, true)
  );
  http.forEach((r, i) => {
    if (isDelegate && r.delegate) {
      c.problems.add(`spec.http[${i}].delegate`, "only one level of delegation (as Istio)");
    }
  });
  const tcp = c.list("spec.tcp", spec.tcp).map((r, i) => tcpRoute(c, `spec.tcp[${i}]`, r));
  if (http.length === 0 && tcp.length === 0) c.problems.add("spec", "needs http or tcp routes");
  return {
    kind: "VirtualService",
    meta: m,
    hosts,
    ...(exportTo.length ? { exportTo } : {}),
    http,
    tcp,
  };
}

export function parseHttpRoute(
  c: Checker,
  path: string,
  v: unknown,
  allowDelegate = false,
): HttpRoute {
  const o = c.obj(path, v, [
    "delegate",
    "name",
    "match",
    "route",
    "fault",
    "timeout",
    "retries",
    "redirect",
    "directResponse",
    "mirror",
    "mirrors",
    "mirrorPercentage",
    "mirrorPercent",
    "rewrite",
    "headers",
    "corsPolicy",
  ]);
  const retries = o.retries === undefined
    ? undefined
    : parseHttpRetry(c, `${path}.retries`, o.retries);
  const route = destinations(c, `${path}.route`, o.route);
  const redirect = o.redirect === undefined
    ? undefined
    : parseRedirect(c, `${path}.redirect`, o.redirect);
  const directResponse = o.directResponse === undefined
    ? undefined
    : parseDirectResponse(c, `${path}.directResponse`, o.directResponse);
  const delegate = delegateOf(c, path, o, allowDelegate);
  if (delegate && (route.length > 0 || redirect)) {
    c.problems.add(`${path}.delegate`, "cannot be set with route or redirect (as Istio)");
  }
  const alternatives = [route.length > 0, redirect, directResponse].filter((x) => x).length;
  if (alternatives === 0 && !delegate) {
    c.problems.add(`${path}.route`, "needs at least one destination");
  }
  if (alternatives > 1) {
    c.problems.add(path, "set one of route, redirect, directResponse (as Istio)");
  }
  // Istio: `0s` (or unset) = no timeout.
  const timeout = o.timeout === undefined ? 0 : c.duration(`${path}.timeout`, o.timeout, 0);
  const timeoutMs = timeout > 0 ? timeout : undefined;
  return {
    name: c.optStr(`${path}.name`, o.name),
    match: c.list(`${path}.match`, o.match).map((x, i) => httpMatch(c, `${path}.match[${i}]`, x)),
    route,
    fault: o.fault === undefined ? undefined : parseFault(c, `${path}.fault`, o.fault),
    timeoutMs,
    retries,
    ...(redirect ? { redirect } : {}),
    ...(directResponse ? { directResponse } : {}),
    ...mirrorsOf(c, path, o),
    ...rewriteOf(c, path, o),
    ...headersOf(c, path, o),
    ...(o.corsPolicy !== undefined
      ? { cors: parseCorsPolicy(c, `${path}.corsPolicy`, o.corsPolicy, corsOrigin) }
      : {}),
    ...(delegate ? { delegate } : {}),
  };
}

function delegateOf(
  c: Checker,
  path: string,
  o: Raw,
  allowed: boolean,
): HttpRoute["delegate"] {
  if (o.delegate === undefined) return undefined;
  if (!allowed) {
    c.problems.add(`${path}.delegate`, "only a VirtualService document can delegate");
    return undefined;
  }
  const d = c.obj(`${path}.delegate`, o.delegate, ["name", "namespace"]);
  return {
    name: c.str(`${path}.delegate.name`, d.name),
    namespace: c.optStr(`${path}.delegate.namespace`, d.namespace),
  };
}

function headersOf(c: Checker, path: string, o: Raw): { headers?: HttpHeaders } {
  // With redirect or directResponse, the response operations apply to weft's own reply, as
  // Envoy's router finalizes a direct response with the route's headers (route_fault.ts).
  const headers = parseHeaders(c, `${path}.headers`, o.headers);
  return headers ? { headers } : {};
}

/** Istio HTTPRewrite: `uri` (replaces the matched prefix, or the path), `authority`;
 * `uriRegexRewrite` is refused. It cannot go with `redirect`. */
function rewriteOf(
  c: Checker,
  path: string,
  o: Raw,
): { rewrite?: { uri?: string; authority?: string } } {
  if (o.rewrite === undefined) return {};
  const p = `${path}.rewrite`;
  const r = c.obj(p, o.rewrite, ["uri", "authority", "uriRegexRewrite"]);
  c.unsupported(p, r, ["uriRegexRewrite"]);
  if (o.redirect !== undefined) {
    c.problems.add(p, "rewrite cannot be used with redirect (as Istio)");
  }
  const uri = c.optStr(`${p}.uri`, r.uri);
  const authority = c.optStr(`${p}.authority`, r.authority);
  return {
    rewrite: {
      ...(uri !== undefined ? { uri } : {}),
      ...(authority !== undefined ? { authority } : {}),
    },
  };
}

/** `mirror` (+ `mirrorPercentage` {value} or the deprecated int `mirrorPercent`; absent = 100 %)
 * or `mirrors` [{destination, percentage}], as Istio (one or the other). */
function mirrorsOf(c: Checker, path: string, o: Raw): { mirrors?: HttpMirror[] } {
  const dest = (p: string, v: unknown): HttpMirror["destination"] => {
    const d = c.obj(p, v, ["host", "subset", "port"]);
    const port = c.obj(`${p}.port`, d.port, ["number"]);
    return {
      host: c.str(`${p}.host`, d.host),
      subset: c.optStr(`${p}.subset`, d.subset),
      port: port.number === undefined
        ? undefined
        : c.int(`${p}.port.number`, port.number, undefined, 1, 65535),
    };
  };
  const pct = (p: string, v: unknown): number => {
    const x = c.obj(p, v, ["value"]);
    return c.num(`${p}.value`, x.value, 100, 0, 100);
  };
  if (o.mirror !== undefined && o.mirrors !== undefined) {
    c.problems.add(path, "set mirror or mirrors, not both");
  }
  if (o.mirror !== undefined) {
    if (o.mirrorPercentage !== undefined && o.mirrorPercent !== undefined) {
      c.problems.add(`${path}.mirrorPercent`, "set mirrorPercentage or mirrorPercent");
    }
    const percent = o.mirrorPercentage !== undefined
      ? pct(`${path}.mirrorPercentage`, o.mirrorPercentage)
      : o.mirrorPercent !== undefined
      ? c.int(`${path}.mirrorPercent`, o.mirrorPercent, 100, 0, 100)
      : 100;
    return { mirrors: [{ destination: dest(`${path}.mirror`, o.mirror), percent }] };
  }
  if (o.mirrorPercentage !== undefined || o.mirrorPercent !== undefined) {
    c.problems.add(path, "mirrorPercentage needs mirror");
  }
  if (o.mirrors === undefined) return {};
  const list = c.list(`${path}.mirrors`, o.mirrors).map((m, i) => {
    const p = `${path}.mirrors[${i}]`;
    const mo = c.obj(p, m, ["destination", "percentage"]);
    return {
      destination: dest(`${p}.destination`, mo.destination),
      percent: mo.percentage === undefined ? 100 : pct(`${p}.percentage`, mo.percentage),
    };
  });
  return { mirrors: list };
}

/** Istio HTTPRedirect: `uri`, `authority`, `scheme`, `port` or `derivePort`, `redirectCode`
 * (default 301). */
function parseRedirect(c: Checker, path: string, v: unknown): HttpRedirect {
  const o = c.obj(path, v, ["uri", "authority", "scheme", "port", "derivePort", "redirectCode"]);
  if (o.port !== undefined && o.derivePort !== undefined) {
    c.problems.add(path, "set port or derivePort, not both");
  }
  return {
    uri: c.optStr(`${path}.uri`, o.uri),
    authority: c.optStr(`${path}.authority`, o.authority),
    scheme: c.optStr(`${path}.scheme`, o.scheme),
    port: o.port === undefined ? undefined : c.int(`${path}.port`, o.port, undefined, 1, 65535),
    derivePort: o.derivePort === undefined
      ? undefined
      : c.oneOf<"FROM_PROTOCOL_DEFAULT" | "FROM_REQUEST_PORT">(`${path}.derivePort`, o.derivePort, [
        "FROM_PROTOCOL_DEFAULT",
        "FROM_REQUEST_PORT",
      ], "FROM_PROTOCOL_DEFAULT"),
    redirectCode: c.int(`${path}.redirectCode`, o.redirectCode, 301, 300, 399),
  };
}

/** Istio HTTPDirectResponse: `status` and `body` ({string} or {bytes}, base64). */
function parseDirectResponse(
  c: Checker,
  path: string,
  v: unknown,
): { status: number; body: string } {
  const o = c.obj(path, v, ["status", "body"]);
  const status = c.int(`${path}.status`, o.status, undefined, 200, 599);
  const b = c.obj(`${path}.body`, o.body, ["string", "bytes"]);
  if (b.string !== undefined && b.bytes !== undefined) {
    c.problems.add(`${path}.body`, "set string or bytes, not both");
  }
  let body = b.string === undefined ? "" : c.str(`${path}.body.string`, b.string);
  if (b.bytes !== undefined) {
    try {
      body = atob(c.str(`${path}.body.bytes`, b.bytes));
    } catch {
      c.problems.add(`${path}.body.bytes`, "must be base64");
    }
  }
  return { status, body };
}

/** Envoy retry_on conditions weft's L7 proxy implements (src/core/route_policy.ts; the gRPC ones
 * act on HTTP/2 upstreams), and `retriable-status-codes`, which Istio accepts beside the status
 * codes it enables (those codes are listed in retryOn themselves, so the name adds nothing). */
const RETRY_ON: readonly string[] = [...RETRY_CONDITIONS, "retriable-status-codes"];

/** Istio HTTPRetry, as written: `attempts: 0` (or unset) turns retries off, an unset `retryOn`
 * takes Istio's default conditions (route_policy.ts `effectiveRetry`). For VirtualService
 * `retries` and MeshConfig `defaultHttpRetryPolicy`. */
export function parseHttpRetry(c: Checker, path: string, v: unknown): HttpRetry {
  const r = c.obj(path, v, [
    "attempts",
    "perTryTimeout",
    "retryOn",
    "retryRemoteLocalities",
    "retryIgnorePreviousHosts",
    "backoff",
  ]);
  const attempts = c.int(`${path}.attempts`, r.attempts, 0, 0, 100);
  const perTry = r.perTryTimeout === undefined
    ? undefined
    : c.duration(`${path}.perTryTimeout`, r.perTryTimeout, 0);
  if (perTry !== undefined && perTry < 1) {
    c.problems.add(`${path}.perTryTimeout`, "must be at least 1ms");
  }
  const backoff = r.backoff === undefined ? undefined : c.duration(`${path}.backoff`, r.backoff, 0);
  if (backoff !== undefined && backoff < 1) {
    c.problems.add(`${path}.backoff`, "must be at least 1ms");
  }
  // Locality-aware retries need localities weft does not have.
  if (r.retryRemoteLocalities !== undefined) {
    c.bool(`${path}.retryRemoteLocalities`, r.retryRemoteLocalities, false);
  }
  const ignorePrevious = r.retryIgnorePreviousHosts === undefined
    ? undefined
    : c.bool(`${path}.retryIgnorePreviousHosts`, r.retryIgnorePreviousHosts, true);
  const written = r.retryOn === undefined
    ? undefined
    : c.str(`${path}.retryOn`, r.retryOn).split(",").map((x) => x.trim()).filter((x) => x);
  for (const x of written ?? []) {
    const code = /^\d{3}$/.test(x) ? Number(x) : undefined;
    if (RETRY_ON.includes(x) || (code !== undefined && code >= 100 && code <= 599)) continue;
    c.problems.add(
      `${path}.retryOn`,
      `"${x}" is not supported by weft (use ${RETRY_ON.join(", ")} or HTTP status codes)`,
    );
  }
  if (
    attempts === 0 &&
    (perTry !== undefined || written !== undefined || r.retryRemoteLocalities !== undefined)
  ) {
    // istio/istio pkg/config/validation ValidateHTTPRetry says the same.
    c.problems.add(path, "http retry policy configured when attempts are set to 0 (disabled)");
  }
  return {
    attempts,
    perTryTimeoutMs: perTry,
    // Istio: an empty retryOn is the same as none (the default conditions).
    retryOn: written?.length ? written : undefined,
    backoffMs: backoff,
    ignorePreviousHosts: ignorePrevious,
  };
}

function destinations(c: Checker, path: string, v: unknown): RouteDestination[] {
  const list = c.list(path, v);
  const out = list.map((r, i) => {
    const p = `${path}[${i}]`;
    const o = c.obj(p, r, ["destination", "weight", "headers"]);
    const d = c.obj(`${p}.destination`, o.destination, ["host", "subset", "port"]);
    if (o.destination === undefined) c.problems.add(`${p}.destination`, "is required");
    const port = c.obj(`${p}.destination.port`, d.port, ["number"]);
    const headers = parseHeaders(c, `${p}.headers`, o.headers);
    return {
      destination: {
        host: c.str(`${p}.destination.host`, d.host),
        subset: c.optStr(`${p}.destination.subset`, d.subset),
        port: port.number === undefined
          ? undefined
          : c.int(`${p}.destination.port.number`, port.number, undefined, 1, 65535),
      },
      // Istio: a single destination gets all traffic; several share by weight (0 when unset).
      weight: c.int(`${p}.weight`, o.weight, list.length === 1 ? 100 : 0, 0, INT32_MAX),
      ...(headers ? { headers } : {}),
    };
  });
  if (out.length > 1 && out.reduce((a, d) => a + d.weight, 0) <= 0) {
    c.problems.add(path, "weights sum to 0");
  }
  return out;
}

const STRING_MATCH = ["exact", "prefix", "regex"] as const;

function stringMatch(c: Checker, path: string, v: unknown, presence: boolean): IstioStringMatch {
  const o = c.obj(path, v, STRING_MATCH);
  const keys = Object.keys(o);
  if (keys.length > 1) c.problems.add(path, "set exactly one of exact, prefix, regex");
  if (keys.length === 0 && !presence) c.problems.add(path, "set one of exact, prefix, regex");
  const out: { exact?: string; prefix?: string; regex?: string } = {};
  for (const k of STRING_MATCH) {
    if (o[k] === undefined) continue;
    const s = c.str(`${path}.${k}`, o[k]);
    if (k === "regex") {
      // istio/api validates with Go's regexp (RE2): no backreferences nor lookaround.
      const why = regexProblem(s);
      if (why) {
        c.problems.add(`${path}.regex`, `invalid regular expression ${JSON.stringify(s)}: ${why}`);
      }
    }
    out[k] = s;
  }
  return out;
}

const corsOrigin = (c: Checker, path: string, v: unknown): IstioStringMatch =>
  stringMatch(c, path, v, false);

/** Header names are case-insensitive (lower-cased here); query parameter names are not. */
function matchMap(
  c: Checker,
  path: string,
  v: unknown,
  lower = true,
): Record<string, IstioStringMatch> {
  const o = c.obj(path, v, Object.keys(isObj(v) ? v : {}));
  const out: Record<string, IstioStringMatch> = {};
  for (const [k, x] of Object.entries(o)) {
    out[lower ? k.toLowerCase() : k] = stringMatch(c, `${path}.${k}`, x, true);
  }
  return out;
}

function httpMatch(c: Checker, path: string, v: unknown): HttpMatch {
  const o = c.obj(path, v, [
    "name",
    "uri",
    "scheme",
    "method",
    "authority",
    "headers",
    "withoutHeaders",
    "queryParams",
    "port",
    "sourceLabels",
    "sourceNamespace",
    "ignoreUriCase",
    "gateways",
    "statPrefix",
  ]);
  // sourceLabels: weft.yaml nodes compile a chain variant per source (src/app/first_party_refs.ts);
  // the control plane's route tables are shared by every node: it drops them as istiod's waypoint
  // routes do (mesh.ts sourceFree).
  c.unsupported(path, o, ["sourceNamespace", "gateways"]);
  const sm = (k: string): IstioStringMatch | undefined =>
    o[k] === undefined ? undefined : stringMatch(c, `${path}.${k}`, o[k], false);
  return {
    name: c.optStr(`${path}.name`, o.name),
    uri: sm("uri"),
    method: sm("method"),
    authority: sm("authority"),
    scheme: sm("scheme"),
    headers: matchMap(c, `${path}.headers`, o.headers),
    withoutHeaders: matchMap(c, `${path}.withoutHeaders`, o.withoutHeaders),
    queryParams: matchMap(c, `${path}.queryParams`, o.queryParams, false),
    port: o.port === undefined ? undefined : c.int(`${path}.port`, o.port, undefined, 1, 65535),
    sourceLabels: o.sourceLabels === undefined
      ? undefined
      : c.labels(`${path}.sourceLabels`, o.sourceLabels),
    sourceNamespace: c.optStr(`${path}.sourceNamespace`, o.sourceNamespace),
    ignoreUriCase: c.bool(`${path}.ignoreUriCase`, o.ignoreUriCase, false),
  };
}

/** `percentage: {value}` (double 0–100) or the deprecated integer `percent`; neither = 0: no
 * request is faulted (Istio's behaviour, istio/api#2522). */
function percentOf(c: Checker, path: string, o: Raw): number {
  if (o.percentage !== undefined) {
    const p = c.obj(`${path}.percentage`, o.percentage, ["value"]);
    if (o.percent !== undefined) c.problems.add(`${path}.percent`, "set percentage or percent");
    return c.num(`${path}.percentage.value`, p.value, 0, 0, 100);
  }
  if (o.percent !== undefined) return c.int(`${path}.percent`, o.percent, 0, 0, 100);
  return 0;
}

export function parseFault(c: Checker, path: string, v: unknown): HttpFault {
  const o = c.obj(path, v, ["delay", "abort"]);
  let delay: HttpFault["delay"];
  let abort: HttpFault["abort"];
  if (o.delay !== undefined) {
    const p = `${path}.delay`;
    const d = c.obj(p, o.delay, ["fixedDelay", "exponentialDelay", "percentage", "percent"]);
    c.unsupported(p, d, ["exponentialDelay"], "not supported (as in Istio)");
    const ms = c.duration(`${p}.fixedDelay`, d.fixedDelay, 0);
    if (d.fixedDelay === undefined) c.problems.add(`${p}.fixedDelay`, "is required");
    else if (ms < 1) c.problems.add(`${p}.fixedDelay`, "must be at least 1ms");
    delay = { fixedDelayMs: ms, percent: percentOf(c, p, d) };
  }
  if (o.abort !== undefined) {
    const p = `${path}.abort`;
    const a = c.obj(p, o.abort, [
      "httpStatus",
      "grpcStatus",
      "http2Error",
      "percentage",
      "percent",
    ]);
    c.unsupported(p, a, ["http2Error"]);
    const percent = percentOf(c, p, a);
    if ((a.httpStatus === undefined) === (a.grpcStatus === undefined)) {
      c.problems.add(p, "set exactly one of httpStatus, grpcStatus");
    }
    if (a.grpcStatus !== undefined) {
      // Istio spells gRPC codes as names ("UNAVAILABLE"); the numeric form is accepted too.
      const code = typeof a.grpcStatus === "number"
        ? a.grpcStatus
        : GRPC_CODES[String(a.grpcStatus)];
      if (code === undefined || !Number.isInteger(code) || code < 0 || code > 16) {
        c.problems.add(
          `${p}.grpcStatus`,
          `must be a gRPC status name such as "UNAVAILABLE", got ${JSON.stringify(a.grpcStatus)}`,
        );
      }
      abort = { httpStatus: undefined, grpcStatus: code ?? 2, percent };
    } else {
      abort = {
        httpStatus: c.int(`${p}.httpStatus`, a.httpStatus, 503, 200, 599),
        grpcStatus: undefined,
        percent,
      };
    }
  }
  if (!delay && !abort) c.problems.add(path, "needs delay or abort");
  return { delay, abort };
}

function tcpRoute(c: Checker, path: string, v: unknown): TcpRoute {
  const o = c.obj(path, v, ["match", "route"]);
  const match = c.list(`${path}.match`, o.match).map((x, i) => {
    const p = `${path}.match[${i}]`;
    const mo = c.obj(p, x, [
      "port",
      "destinationSubnets",
      "sourceLabels",
      "sourceNamespace",
      "gateways",
    ]);
    c.unsupported(p, mo, ["destinationSubnets", "sourceLabels", "sourceNamespace"]);
    return {
      port: mo.port === undefined ? undefined : c.int(`${p}.port`, mo.port, undefined, 1, 65535),
    };
  });
  const route = destinations(c, `${path}.route`, o.route);
  if (route.length === 0) c.problems.add(`${path}.route`, "needs at least one destination");
  return { match, route };
}
