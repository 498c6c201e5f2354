/**
 * gateway.networking.k8s.io HTTPRoute bound to a Service (GAMMA, GEP-1426; l7-semantics §4.4) →
 * the same route model as a VirtualService: per parent Service, one VirtualService whose `http`
 * routes are every (HTTPRoute, rule, match) of the routes bound to it, in Gateway API precedence
 * order (exact path, then the longest prefix, then regular expressions; then a method; then more
 * header matches; then more query matches; then the oldest route, its `namespace/name`, the rule
 * and the match order), so the first match wins as in a VirtualService and a request no rule
 * matches gets 404. backendRefs weights are relative (default 1, 0 = none); a rule without a
 * backend that can take traffic answers 500; filters RequestRedirect, RequestMirror, URLRewrite
 * (hostname, full path or prefix) and RequestHeaderModifier/ResponseHeaderModifier (on the rule
 * and on a backendRef) are supported; `timeouts.request` is the route timeout (`0s` = none);
 * `retry` and `timeouts.backendRequest` convert as istiod's (pilot/pkg/config/kube/gateway
 * conversion.go): retry = connection errors + `codes`, attempts default 2, `backoff`; the
 * backend request timeout is the per-try timeout with a `retry`, else the route timeout. Gateway
 * `CORS` converts as istiod's createCorsFilter (cors.ts). Gateway
 * parents, ExtensionRef filters and `sessionPersistence` are refused with their path. A backendRef to an unknown Service is accepted (the control plane warns) and the
 * share that would go to it answers 500 at request time (`clusterNotFoundStatus`).
 */
import { type Checker, INT32_MAX, type Raw } from "./check.ts";
import { meta } from "./meta.ts";
import { ops as headerOps } from "./headers.ts";
import { corsFilterOf } from "./cors.ts";
import { regexProblem, type RouteCors } from "../core/mod.ts";
import type {
  HttpHeaders,
  HttpMatch,
  HttpMirror,
  HttpRedirect,
  HttpRetry,
  HttpRoute,
  IstioStringMatch,
  ObjectMeta,
  RouteDestination,
  VirtualService,
} from "./types.ts";

export interface GatewayHttpRoute {
  readonly kind: "HTTPRoute";
  readonly meta: ObjectMeta;
  /** RFC 3339 `metadata.creationTimestamp`, for precedence ("" when unset: file order). */
  readonly created: string;
  /** Parent Services (GAMMA). */
  readonly parents: readonly { namespace: string; name: string; port: number | undefined }[];
  readonly rules: readonly GatewayRule[];
}

interface GatewayRule {
  readonly matches: readonly { match: HttpMatch; path: PathMatch }[];
  readonly route: readonly RouteDestination[];
  readonly redirect: HttpRedirect | undefined;
  readonly rewrite: { uri?: string; authority?: string } | undefined;
  /** The rewrite's uri replaces the matched PathPrefix (ReplacePrefixMatch). */
  readonly prefixMatch: boolean;
  readonly mirrors: readonly HttpMirror[];
  readonly timeoutMs: number | undefined;
  readonly retries: HttpRetry | undefined;
  readonly headers: HttpHeaders | undefined;
  readonly cors: RouteCors | undefined;
}

type PathMatch = { type: "Exact" | "PathPrefix" | "RegularExpression"; value: string };

const escape = (s: string): string => s.replace(/[.*+?^${}()|[\]\\]/g, "\\$&");

function pathMatch(c: Checker, path: string, v: unknown): PathMatch {
  const o = c.obj(path, v, ["type", "value"]);
  const type = c.oneOf<PathMatch["type"]>(
    `${path}.type`,
    o.type,
    ["Exact", "PathPrefix", "RegularExpression"],
    "PathPrefix",
  );
  const value = c.str(`${path}.value`, o.value, "/");
  if (type !== "RegularExpression" && !value.startsWith("/")) {
    c.problems.add(`${path}.value`, 'must start with "/"');
  }
  if (type === "RegularExpression") checkRegex(c, `${path}.value`, value);
  return { type, value };
}

/** Envoy matches a RegularExpression with RE2: what RE2 refuses is refused with its path. */
function checkRegex(c: Checker, path: string, value: string): void {
  const why = regexProblem(value);
  if (why) c.problems.add(path, `invalid regular expression: ${why}`);
}

/** PathPrefix matches whole path elements ("/foo" takes /foo and /foo/bar, not /foobar). */
function uriOf(p: PathMatch): IstioStringMatch | undefined {
  if (p.type === "Exact") return { exact: p.value };
  if (p.type === "RegularExpression") return { regex: p.value };
  const prefix = p.value.replace(/\/+$/, "");
  return prefix === "" ? { prefix: "/" } : { regex: `${escape(prefix)}(/.*)?` };
}

function namedMatches(
  c: Checker,
  path: string,
  v: unknown,
  lower: boolean,
): Record<string, IstioStringMatch> {
  const out: Record<string, IstioStringMatch> = {};
  c.list(path, v).forEach((x, i) => {
    const p = `${path}[${i}]`;
    const o = c.obj(p, x, ["type", "name", "value"]);
    const type = c.oneOf(`${p}.type`, o.type, ["Exact", "RegularExpression"], "Exact");
    const name = c.str(`${p}.name`, o.name);
    const value = c.str(`${p}.value`, o.value);
    if (type === "RegularExpression") checkRegex(c, `${p}.value`, value);
    out[lower ? name.toLowerCase() : name] = type === "Exact" ? { exact: value } : { regex: value };
  });
  return out;
}

function ruleMatch(c: Checker, path: string, v: unknown, port: number | undefined) {
  const o = c.obj(path, v, ["path", "headers", "queryParams", "method"]);
  const p = o.path === undefined
    ? { type: "PathPrefix" as const, value: "/" }
    : pathMatch(c, `${path}.path`, o.path);
  const match: HttpMatch = {
    name: undefined,
    uri: uriOf(p),
    method: o.method === undefined ? undefined : { exact: c.str(`${path}.method`, o.method) },
    authority: undefined,
    scheme: undefined,
    headers: namedMatches(c, `${path}.headers`, o.headers, true),
    withoutHeaders: {},
    queryParams: namedMatches(c, `${path}.queryParams`, o.queryParams, false),
    port,
    sourceLabels: undefined,
    sourceNamespace: undefined,
    ignoreUriCase: false,
  };
  return { match, path: p };
}

function backendRef(c: Checker, path: string, v: unknown, ns: string, extra: string[] = []) {
  const o = c.obj(path, v, ["group", "kind", "name", "namespace", "port", "weight", ...extra]);
  if ((o.group ?? "") !== "" || (o.kind ?? "Service") !== "Service") {
    c.problems.add(path, "only Service backends are supported");
  }
  const name = c.str(`${path}.name`, o.name);
  const namespace = c.optStr(`${path}.namespace`, o.namespace) ?? ns;
  return {
    o,
    destination: {
      host: `${name}.${namespace}.svc.cluster.local`,
      subset: undefined,
      port: o.port === undefined ? undefined : c.int(`${path}.port`, o.port, undefined, 1, 65535),
    },
  };
}

/** RequestHeaderModifier / ResponseHeaderModifier as a VirtualService's `headers` (istiod's
 * createHeadersFilter: the lists become the mapping; a request `host` is the authority rewrite). */
function headerFilter(
  c: Checker,
  p: string,
  o: Raw,
  type: string,
  into: HeaderDraft,
): boolean {
  if (type === "RequestHeaderModifier") {
    if (into.seenRequest) {
      c.problems.add(`${p}.type`, "at most one RequestHeaderModifier (Gateway API)");
    }
    into.seenRequest = true;
    const r = headerOps(
      c,
      `${p}.requestHeaderModifier`,
      o.requestHeaderModifier ?? {},
      true,
      (a) => {
        into.authority = a;
      },
    );
    if (r) into.request = r;
    return true;
  }
  if (type === "ResponseHeaderModifier") {
    if (into.seenResponse) {
      c.problems.add(`${p}.type`, "at most one ResponseHeaderModifier (Gateway API)");
    }
    into.seenResponse = true;
    const r = headerOps(
      c,
      `${p}.responseHeaderModifier`,
      o.responseHeaderModifier ?? {},
      false,
      () => {},
    );
    if (r) into.response = r;
    return true;
  }
  return false;
}

interface HeaderDraft {
  seenRequest?: boolean;
  seenResponse?: boolean;
  request?: HttpHeaders["request"] | undefined;
  response?: HttpHeaders["response"] | undefined;
  authority?: string | undefined;
}

function headersOf(h: HeaderDraft): HttpHeaders | undefined {
  if (!h.request && !h.response && h.authority === undefined) return undefined;
  return Object.freeze({
    ...(h.request ? { request: h.request } : {}),
    ...(h.response ? { response: h.response } : {}),
    ...(h.authority !== undefined ? { authority: h.authority } : {}),
  });
}

/** A backendRef's own filters: only the header modifiers (istiod refuses others). */
function backendFilters(c: Checker, path: string, v: unknown): HttpHeaders | undefined {
  const h: HeaderDraft = {};
  c.list(path, v).forEach((x, i) => {
    const p = `${path}[${i}]`;
    const o = c.obj(p, x, ["type", "requestHeaderModifier", "responseHeaderModifier", ...OTHERS]);
    const type = c.str(`${p}.type`, o.type);
    if (!headerFilter(c, p, o, type, h)) {
      c.problems.add(`${p}.type`, `${type} is not supported on a backendRef (istiod: unsupported)`);
    }
  });
  return headersOf(h);
}
const OTHERS = ["requestRedirect", "requestMirror", "urlRewrite", "extensionRef", "cors"];

function filters(c: Checker, path: string, v: unknown, ns: string) {
  const headers: HeaderDraft = {};
  let redirect: HttpRedirect | undefined;
  let rewrite: { uri?: string; authority?: string } | undefined;
  let prefixMatch = false;
  let cors: RouteCors | undefined;
  const mirrors: HttpMirror[] = [];
  c.list(path, v).forEach((x, i) => {
    const p = `${path}[${i}]`;
    const o = c.obj(p, x, [
      "type",
      "requestRedirect",
      "requestMirror",
      "urlRewrite",
      "requestHeaderModifier",
      "responseHeaderModifier",
      "extensionRef",
      "cors",
    ]);
    const type = c.str(`${p}.type`, o.type);
    if (headerFilter(c, p, o, type, headers)) {
      // handled
    } else if (type === "RequestRedirect") {
      const r = c.obj(`${p}.requestRedirect`, o.requestRedirect, [
        "scheme",
        "hostname",
        "path",
        "port",
        "statusCode",
      ]);
      let uri: string | undefined;
      if (r.path !== undefined) {
        const rp = c.obj(`${p}.requestRedirect.path`, r.path, ["type", "replaceFullPath"]);
        if (rp.type !== "ReplaceFullPath") {
          c.problems.add(`${p}.requestRedirect.path.type`, "only ReplaceFullPath is supported");
        }
        uri = c.str(`${p}.requestRedirect.path.replaceFullPath`, rp.replaceFullPath);
      }
      const code = c.int(`${p}.requestRedirect.statusCode`, r.statusCode, 302, 301, 302);
      redirect = {
        uri,
        authority: c.optStr(`${p}.requestRedirect.hostname`, r.hostname),
        scheme: c.optStr(`${p}.requestRedirect.scheme`, r.scheme),
        port: r.port === undefined
          ? undefined
          : c.int(`${p}.requestRedirect.port`, r.port, undefined, 1, 65535),
        derivePort: undefined,
        redirectCode: code,
      };
    } else if (type === "RequestMirror") {
      const m = c.obj(`${p}.requestMirror`, o.requestMirror, ["backendRef", "percent", "fraction"]);
      const b = backendRef(c, `${p}.requestMirror.backendRef`, m.backendRef, ns);
      let percent = 100; // neither percent nor fraction: every request (S21)
      if (m.percent !== undefined) {
        percent = c.int(`${p}.requestMirror.percent`, m.percent, 100, 0, 100);
      } else if (m.fraction !== undefined) {
        const f = c.obj(`${p}.requestMirror.fraction`, m.fraction, ["numerator", "denominator"]);
        const num = c.int(
          `${p}.requestMirror.fraction.numerator`,
          f.numerator,
          undefined,
          0,
          INT32_MAX,
        );
        const den = c.int(
          `${p}.requestMirror.fraction.denominator`,
          f.denominator,
          100,
          1,
          INT32_MAX,
        );
        percent = Math.min(100, (100 * num) / den);
      }
      mirrors.push({ destination: b.destination, percent });
    } else if (type === "URLRewrite") {
      const r = c.obj(`${p}.urlRewrite`, o.urlRewrite, ["hostname", "path"]);
      let uri: string | undefined;
      if (r.path !== undefined) {
        const rp = c.obj(`${p}.urlRewrite.path`, r.path, [
          "type",
          "replaceFullPath",
          "replacePrefixMatch",
        ]);
        prefixMatch = rp.type === "ReplacePrefixMatch";
        if (!prefixMatch && rp.type !== "ReplaceFullPath") {
          c.problems.add(
            `${p}.urlRewrite.path.type`,
            "must be ReplaceFullPath or ReplacePrefixMatch",
          );
        }
        uri = c.str(
          `${p}.urlRewrite.path.${prefixMatch ? "replacePrefixMatch" : "replaceFullPath"}`,
          prefixMatch ? rp.replacePrefixMatch : rp.replaceFullPath,
        );
      }
      const authority = c.optStr(`${p}.urlRewrite.hostname`, r.hostname);
      rewrite = {
        ...(uri !== undefined ? { uri } : {}),
        ...(authority !== undefined ? { authority } : {}),
      };
    } else if (type === "CORS") {
      if (cors) c.problems.add(`${p}.type`, "at most one CORS filter (Gateway API)");
      cors = corsFilterOf(c, `${p}.cors`, o.cors);
    } else {
      c.problems.add(`${p}.type`, `${type} is not supported by weft`);
    }
  });
  if (rewrite && redirect) c.problems.add(path, "URLRewrite and RequestRedirect are exclusive");
  return { redirect, mirrors, rewrite, prefixMatch, headers: headersOf(headers), cors };
}

/** Gateway API `retry` (GEP-1731) as istiod converts it: connection errors always retried plus
 * the listed status `codes` (400–599), `attempts` default 2 (0 = none), `backoff` the base. */
function retryOf(c: Checker, path: string, v: unknown): HttpRetry | undefined {
  if (v === undefined || v === null) return undefined;
  const o = c.obj(path, v, ["codes", "attempts", "backoff"]);
  const codes = c.list(`${path}.codes`, o.codes).map((x, i) =>
    c.int(`${path}.codes[${i}]`, x, undefined, 400, 599)
  );
  const attempts = c.int(`${path}.attempts`, o.attempts, 2, 0, INT32_MAX);
  const backoff = o.backoff === undefined ? undefined : c.duration(`${path}.backoff`, o.backoff, 0);
  return {
    attempts,
    perTryTimeoutMs: undefined,
    // istiod: "connect-failure,refused-stream,unavailable,cancelled" + the codes; none at 0.
    retryOn: attempts === 0
      ? []
      : ["connect-failure", "refused-stream", "unavailable", "cancelled", ...codes.map(String)],
    backoffMs: backoff !== undefined && backoff > 0 ? backoff : undefined,
    ignorePreviousHosts: undefined,
  };
}

export function parseGatewayHttpRoute(c: Checker, doc: Raw): GatewayHttpRoute {
  const m = meta(c, doc.metadata);
  const created = typeof (doc.metadata as Raw | undefined)?.creationTimestamp === "string"
    ? String((doc.metadata as Raw).creationTimestamp)
    : "";
  const spec = c.obj("spec", doc.spec, ["parentRefs", "hostnames", "rules"]);
  c.strList("spec.hostnames", spec.hostnames); // GAMMA: the Service is the host
  const parents = c.list("spec.parentRefs", spec.parentRefs).map((p, i) => {
    const path = `spec.parentRefs[${i}]`;
    const o = c.obj(path, p, ["group", "kind", "name", "namespace", "port", "sectionName"]);
    if ((o.group ?? "") !== "" && o.group !== "core" || o.kind !== "Service") {
      c.problems.add(path, "weft has no gateways: only a Service parent (GAMMA) is supported");
    }
    return {
      namespace: c.optStr(`${path}.namespace`, o.namespace) ?? m.namespace,
      name: c.str(`${path}.name`, o.name),
      port: o.port === undefined ? undefined : c.int(`${path}.port`, o.port, undefined, 1, 65535),
    };
  });
  if (parents.length === 0) c.problems.add("spec.parentRefs", "needs a Service parent (GAMMA)");
  const rules = c.list("spec.rules", spec.rules ?? [{}]).map((r, i) => {
    const path = `spec.rules[${i}]`;
    const o = c.obj(path, r, [
      "name",
      "matches",
      "filters",
      "backendRefs",
      "timeouts",
      "retry",
      "sessionPersistence",
    ]);
    c.unsupported(path, o, ["sessionPersistence"]);
    const port = parents.length === 1 ? parents[0]!.port : undefined;
    const rawMatches = o.matches === undefined ? [{}] : c.list(`${path}.matches`, o.matches);
    const matches = rawMatches.map((x, j) => ruleMatch(c, `${path}.matches[${j}]`, x, port));
    const f = filters(c, `${path}.filters`, o.filters, m.namespace);
    const route = c.list(`${path}.backendRefs`, o.backendRefs).map((b, j) => {
      const p = `${path}.backendRefs[${j}]`;
      const { o: bo, destination } = backendRef(c, p, b, m.namespace, ["filters"]);
      const headers = backendFilters(c, `${p}.filters`, bo.filters);
      return {
        destination,
        weight: c.int(`${p}.weight`, bo.weight, 1, 0, 1_000_000),
        ...(headers ? { headers } : {}),
      };
    }).filter((d) => d.weight > 0);
    const t = c.obj(`${path}.timeouts`, o.timeouts, ["request", "backendRequest"]);
    const request = t.request === undefined
      ? 0
      : c.duration(`${path}.timeouts.request`, t.request, 0);
    const backend = t.backendRequest === undefined
      ? 0
      : c.duration(`${path}.timeouts.backendRequest`, t.backendRequest, 0);
    if (request > 0 && backend > request) {
      // Gateway API's validation: "backendRequest timeout cannot be longer than request timeout".
      c.problems.add(`${path}.timeouts.backendRequest`, "cannot be longer than timeouts.request");
    }
    let retries = retryOf(c, `${path}.retry`, o.retry);
    let timeout = request;
    // istiod: the backend request timeout is the per-try timeout when a retry is set, else the
    // route's timeout.
    if (backend > 0) {
      if (retries) retries = { ...retries, perTryTimeoutMs: backend };
      else timeout = backend;
    }
    return {
      matches,
      route,
      redirect: f.redirect,
      rewrite: f.rewrite,
      prefixMatch: f.prefixMatch,
      mirrors: f.mirrors,
      timeoutMs: timeout > 0 ? timeout : undefined,
      retries,
      headers: f.headers,
      cors: f.cors,
    };
  });
  return { kind: "HTTPRoute", meta: m, created, parents, rules };
}

/** A rule's URLRewrite for one of its matches: ReplacePrefixMatch replaces that match's prefix
 * (whole path elements; a trailing "/" of the replacement is not doubled). */
function rewriteFor(rule: GatewayRule, p: PathMatch) {
  const rw = rule.rewrite!;
  if (!rule.prefixMatch || rw.uri === undefined) return rw;
  const prefix = p.type === "PathPrefix" ? p.value.replace(/\/+$/, "") : undefined;
  if (prefix === undefined) return rw;
  return { ...rw, uri: rw.uri === "/" && prefix !== "" ? "" : rw.uri, prefix };
}

/** The key a (route, rule, match) sorts by: Gateway API's precedence, most specific first. */
function precedence(p: PathMatch, m: HttpMatch): number[] {
  const kind = p.type === "Exact" ? 0 : p.type === "PathPrefix" ? 1 : 2;
  const len = p.type === "PathPrefix" ? -p.value.replace(/\/+$/, "").length : 0;
  return [
    kind,
    len,
    m.method ? 0 : 1,
    -Object.keys(m.headers).length,
    -Object.keys(m.queryParams).length,
  ];
}

/** HTTPRoutes → one VirtualService per parent Service, its routes in precedence order. */
export function gatewayVirtualServices(routes: readonly GatewayHttpRoute[]): VirtualService[] {
  type Entry = { key: (number | string)[]; route: HttpRoute };
  const byParent = new Map<string, { ns: string; name: string; entries: Entry[] }>();
  const order = [...routes].map((r, i) => ({ r, i })).sort((a, b) =>
    // Oldest first (file order when unset), then namespace/name.
    (a.r.created || "\uffff").localeCompare(b.r.created || "\uffff") || a.i - b.i
  );
  order.forEach(({ r }, age) => {
    for (const parent of r.parents) {
      const k = `${parent.namespace}/${parent.name}`;
      const group = byParent.get(k) ?? { ns: parent.namespace, name: parent.name, entries: [] };
      byParent.set(k, group);
      r.rules.forEach((rule, ri) => {
        rule.matches.forEach(({ match, path }, mi) => {
          const answers500 = rule.route.length === 0 && !rule.redirect;
          group.entries.push({
            key: [...precedence(path, match), age, `${r.meta.namespace}/${r.meta.name}`, ri, mi],
            route: {
              name: `${r.meta.namespace}.${r.meta.name}.${ri}.${mi}`,
              match: [{ ...match, port: parent.port ?? match.port }],
              route: rule.redirect ? [] : rule.route,
              fault: undefined,
              timeoutMs: rule.timeoutMs,
              retries: rule.retries,
              ...(rule.headers ? { headers: rule.headers } : {}),
              ...(rule.cors ? { cors: rule.cors } : {}),
              ...(rule.redirect ? { redirect: rule.redirect } : {}),
              // No backend can take the traffic (none, or all weight 0): 500 (S19).
              ...(answers500 ? { directResponse: { status: 500, body: "" } } : {}),
              // A backendRef to a Service that does not exist: its share gets 500 (S19).
              ...(rule.route.length && !rule.redirect
                ? { clusterNotFoundStatus: 500 as const }
                : {}),
              ...(rule.mirrors.length ? { mirrors: rule.mirrors } : {}),
              ...(rule.rewrite ? { rewrite: rewriteFor(rule, path) } : {}),
            },
          });
        });
      });
    }
  });
  const cmp = (a: Entry, b: Entry): number => {
    for (let i = 0; i < a.key.length; i++) {
      const x = a.key[i]!, y = b.key[i]!;
      if (x === y) continue;
      return typeof x === "number" ? x - (y as number) : String(x).localeCompare(String(y));
    }
    return 0;
  };
  return [...byParent.values()].map((g) => ({
    kind: "VirtualService" as const,
    meta: { name: `httproute.${g.name}`, namespace: g.ns, labels: {}, annotations: {} },
    hosts: [`${g.name}.${g.ns}.svc.cluster.local`],
    http: g.entries.sort(cmp).map((e) => e.route),
    tcp: [],
  }));
}
