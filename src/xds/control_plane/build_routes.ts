/** Mesh services → per-port HTTP pieces: RouteConfiguration (VirtualService http routes as
 * weighted clusters), the HTTPFault filter and WasmPlugin ECDS configs. */
import { create, type MessageInitShape } from "@bufbuild/protobuf";
import {
  RouteAction_ClusterNotFoundResponseCode,
  RouteSchema,
} from "../gen/envoy/config/route/v3/route_components_pb.ts";
import {
  type Any,
  anyPack,
  AnySchema,
  DurationSchema,
  StringValueSchema,
} from "@bufbuild/protobuf/wkt";
import {
  HTTPFaultSchema,
  type RouteConfiguration,
  RouteConfigurationSchema,
  TypedExtensionConfigSchema,
  WasmSchema,
} from "../proto.ts";
import { COMPONENT_RUNTIME } from "../resources/http_filters.ts";
import type { HttpFault, HttpMatch, HttpRetry, IstioStringMatch } from "../../istio/mod.ts";
import { effectiveRetry } from "../../istio/mod.ts";
import { DEFAULT_RETRY_POLICY, type HeaderOps } from "../../core/mod.ts";
import { HeaderValueOption_HeaderAppendAction as HeaderAppendAction } from "../gen/envoy/config/core/v3/base_pb.ts";
import type { MeshPlugin, MeshRoute, MeshService } from "./mesh.ts";
import { corsPolicyAny } from "./build_cors.ts";
import { CORS_FILTER_NAME } from "../resources/route_cors.ts";

export function clusterName(s: MeshService, port: number, subset = ""): string {
  return `outbound|${port}|${subset}|${s.hostname}`;
}

export function listenerName(s: MeshService, port: number): string {
  return `${s.hostname}:${port}`;
}

const ALL: MeshRoute = {
  match: [],
  route: [{ host: "", subset: undefined, port: undefined, weight: 1 }],
  fault: undefined,
  timeoutMs: undefined,
  retries: undefined,
};

type StringMatcher = { matchPattern: { case: "exact" | "prefix"; value: string } } | {
  matchPattern: { case: "safeRegex"; value: { regex: string } };
};

function stringMatcher(m: IstioStringMatch): StringMatcher {
  if (m.exact !== undefined) return { matchPattern: { case: "exact", value: m.exact } };
  if (m.prefix !== undefined) return { matchPattern: { case: "prefix", value: m.prefix } };
  return { matchPattern: { case: "safeRegex", value: { regex: m.regex ?? ".*" } } };
}

function headerMatchers(m: HttpMatch) {
  const one = (name: string, h: IstioStringMatch, invert: boolean) => ({
    name,
    invertMatch: invert,
    headerMatchSpecifier: Object.keys(h).length === 0
      ? { case: "presentMatch" as const, value: true }
      : { case: "stringMatch" as const, value: stringMatcher(h) },
  });
  return [
    ...(m.method ? [one(":method", m.method, false)] : []),
    ...(m.authority ? [one(":authority", m.authority, false)] : []),
    ...(m.scheme ? [one(":scheme", m.scheme, false)] : []),
    ...Object.entries(m.headers).map(([n, h]) => one(n, h, false)),
    ...Object.entries(m.withoutHeaders).map(([n, h]) => one(n, h, true)),
  ];
}

function routeMatch(m: HttpMatch | undefined) {
  const uri = m?.uri;
  return {
    pathSpecifier: uri?.exact !== undefined
      ? { case: "path" as const, value: uri.exact }
      : uri?.regex !== undefined
      ? { case: "safeRegex" as const, value: { regex: uri.regex } }
      : { case: "prefix" as const, value: uri?.prefix ?? "/" },
    ...(m?.ignoreUriCase ? { caseSensitive: false } : {}),
    headers: m ? headerMatchers(m) : [],
    queryParameters: Object.entries(m?.queryParams ?? {}).map(([name, q]) => ({
      name,
      queryParameterMatchSpecifier: Object.keys(q).length === 0
        ? { case: "presentMatch" as const, value: true }
        : { case: "stringMatch" as const, value: stringMatcher(q) },
    })),
  };
}

/** VirtualService http routes → one Envoy route per match (Istio's expansion), routes whose
 * `match.port` names another port left out, faults in typed_per_filter_config. */
export function routeConfig(s: MeshService, port: number): RouteConfiguration {
  const rules = s.http.length ? s.http : [ALL];
  const domains = [
    s.hostname,
    `${s.hostname}:${port}`,
    ...s.vips,
    ...s.vips.map((v) => `${v}:${port}`),
  ];
  const cluster = (d: MeshRoute["route"][number]): string =>
    `outbound|${d.port ?? port}|${d.subset ?? ""}|${d.host || s.hostname}`;
  const routes: MessageInitShape<typeof RouteSchema>[] = rules.flatMap((r) => {
    const matches = r.match.length ? r.match : [undefined];
    return matches.filter((m) => m?.port === undefined || m.port === port).map((m) => ({
      typedPerFilterConfig: {
        ...(r.fault ? { "envoy.filters.http.fault": faultAny(r.fault) } : {}),
        ...(r.cors ? { [CORS_FILTER_NAME]: corsPolicyAny(r.cors) } : {}),
      } as Record<string, Any>,
      match: routeMatch(m),
      ...headerFields(r.headers),
      action: ownAction(r, port) ?? {
        case: "route" as const,
        value: {
          ...routePolicy(r, s.defaultRetry),
          ...rewriteAction(r, m),
          // Gateway API: an invalid backend's share answers 500 (Envoy's response to a route
          // naming a cluster it does not have; 503 by default).
          ...(r.clusterNotFoundStatus === 500
            ? {
              clusterNotFoundResponseCode:
                RouteAction_ClusterNotFoundResponseCode.INTERNAL_SERVER_ERROR,
            }
            : {}),
          // Istio's mirror(s): request_mirror_policies, the percentage per million.
          requestMirrorPolicies: (r.mirrors ?? []).map((mr) => ({
            cluster: `outbound|${mr.port ?? port}|${mr.subset ?? ""}|${mr.host}`,
            runtimeFraction: { defaultValue: percent(mr.percent) },
          })),
          // A destination with its own headers needs a ClusterWeight to carry them.
          clusterSpecifier: r.route.length === 1 && !r.route[0]!.headers
            ? { case: "cluster" as const, value: cluster(r.route[0]!) }
            : {
              case: "weightedClusters" as const,
              value: {
                clusters: r.route.map((d) => ({
                  name: cluster(d),
                  weight: d.weight,
                  ...headerFields(d.headers),
                  ...(d.headers?.authority !== undefined
                    ? {
                      hostRewriteSpecifier: {
                        case: "hostRewriteLiteral" as const,
                        value: d.headers.authority,
                      },
                    }
                    : {}),
                })),
              },
            },
        },
      },
    }));
  });
  return create(RouteConfigurationSchema, {
    name: listenerName(s, port),
    virtualHosts: [{ name: listenerName(s, port), domains, routes }],
  });
}

const escapeRe = (s: string): string => s.replace(/[.*+?^${}()|[\]\\]/g, "\\$&");

/** Istio `rewrite` → RouteAction: `uri` as prefix_rewrite on a prefix match (Envoy swaps the
 * matched prefix), else as regex_rewrite of `^<prefix>` (Gateway API ReplacePrefixMatch) or of the
 * whole path; `authority` as host_rewrite_literal. */
function rewriteAction(r: MeshRoute, m: HttpMatch | undefined) {
  // istiod: a request `set`/`add` of host/:authority in `headers` is the host rewrite too.
  const authority = r.rewrite?.authority ?? r.headers?.authority;
  const rw = r.rewrite ?? (authority !== undefined ? { authority } : undefined);
  if (!rw) return {};
  const uri = rw.uri;
  const prefix = rw.prefix ?? m?.uri?.prefix;
  return {
    ...(uri === undefined
      ? {}
      : rw.prefix === undefined && m?.uri?.prefix !== undefined
      ? { prefixRewrite: uri }
      : {
        regexRewrite: {
          pattern: { regex: prefix !== undefined ? `^${escapeRe(prefix)}` : "^.*$" },
          substitution: uri,
        },
      }),
    ...(authority !== undefined
      ? { hostRewriteSpecifier: { case: "hostRewriteLiteral" as const, value: authority } }
      : {}),
  };
}

/** Istio's redirect codes → Envoy's RedirectResponseCode (istiod's translateRedirect; others are
 * refused by validation here). */
const REDIRECT_CODES: Record<number, number> = { 301: 0, 302: 1, 303: 2, 307: 3, 308: 4 };

/** A route that answers itself: Istio `redirect` → RouteAction redirect, `directResponse` →
 * direct_response (istiod's translation); undefined for a routed one. */
function ownAction(r: MeshRoute, port: number) {
  if (r.directResponse) {
    return {
      case: "directResponse" as const,
      value: {
        status: r.directResponse.status,
        ...(r.directResponse.body
          ? { body: { specifier: { case: "inlineString" as const, value: r.directResponse.body } } }
          : {}),
      },
    };
  }
  const d = r.redirect;
  if (!d) return undefined;
  const p = d.port ?? (d.derivePort === "FROM_REQUEST_PORT" ? port : undefined);
  return {
    case: "redirect" as const,
    value: {
      responseCode: REDIRECT_CODES[d.redirectCode] ?? 0,
      ...(d.uri !== undefined
        ? { pathRewriteSpecifier: { case: "pathRedirect" as const, value: d.uri } }
        : {}),
      ...(d.authority !== undefined ? { hostRedirect: d.authority } : {}),
      ...(p !== undefined ? { portRedirect: p } : {}),
      ...(d.scheme !== undefined
        ? { schemeRewriteSpecifier: { case: "schemeRedirect" as const, value: d.scheme } }
        : {}),
    },
  };
}

/** Envoy's previous_hosts retry host predicate as istiod names it (an empty config message). */
const PREVIOUS_HOSTS = {
  name: "envoy.retry_host_predicates.previous_hosts",
  configType: {
    case: "typedConfig" as const,
    value: create(AnySchema, {
      typeUrl:
        "type.googleapis.com/envoy.extensions.retry.host.previous_hosts.v3.PreviousHostsPredicate",
      value: new Uint8Array(),
    }),
  },
};

/** Istio's route `timeout` (istiod sends 0s, disabled, when unset: Envoy's own default is 15 s)
 * and the retries that apply (the route's, else MeshConfig `defaultHttpRetryPolicy`, else
 * Istio's default: istio/mod.ts `effectiveRetry`) as Envoy's RouteAction fields, on every route
 * as istiod's ConvertPolicy emits them: status codes in retryOn become retriable-status-codes,
 * the default conditions keep `retriable-status-codes` with no codes (Istio ≥ 1.24), the
 * previous_hosts predicate with host selection up to 5 attempts. */
function routePolicy(r: MeshRoute, meshDefault: HttpRetry | undefined) {
  const retries = effectiveRetry(r.retries, meshDefault);
  const codes = retries?.retryOn.filter((c) => /^\d{3}$/.test(c)).map(Number) ?? [];
  const named = retries?.retryOn.filter((c) => !/^\d{3}$/.test(c)) ?? [];
  // istiod adds `retriable-status-codes` when codes are listed, and its default names it bare.
  const bare = retries?.retryOn === DEFAULT_RETRY_POLICY.retryOn;
  const on = codes.length || bare
    ? [...named.filter((c) => c !== "retriable-status-codes"), "retriable-status-codes"]
    : named;
  return {
    timeout: durationOf(r.timeoutMs ?? 0),
    ...(retries
      ? {
        retryPolicy: {
          retryOn: on.join(","),
          numRetries: retries.attempts,
          retriableStatusCodes: codes,
          hostSelectionRetryMaxAttempts: 5n,
          retryHostPredicate: retries.previousHosts ? [PREVIOUS_HOSTS] : [],
          ...(retries.perTryTimeoutMs !== undefined
            ? { perTryTimeout: durationOf(retries.perTryTimeoutMs) }
            : {}),
          ...(retries.backoffBaseMs !== undefined
            ? {
              retryBackOff: {
                baseInterval: durationOf(retries.backoffBaseMs),
                maxInterval: durationOf(retries.backoffBaseMs * 10),
              },
            }
            : {}),
        },
      }
      : {}),
  };
}

/** Percent 0–100 → Envoy FractionalPercent per million. */
function percent(value: number): { numerator: number; denominator: number } {
  return { numerator: Math.round(value * 10_000), denominator: 2 }; // MILLION
}

function durationOf(ms: number): { seconds: bigint; nanos: number } {
  const whole = Math.floor(ms);
  return {
    seconds: BigInt(Math.floor(whole / 1000)),
    nanos: Math.round((ms - Math.floor(ms / 1000) * 1000) * 1e6),
  };
}

/** Any route with a fault → an empty HTTPFault for the listener (routes carry the real one). */
export function faultFilter(s: MeshService): Any | undefined {
  return s.http.some((r) => r.fault)
    ? anyPack(HTTPFaultSchema, create(HTTPFaultSchema))
    : undefined;
}

function faultAny(f: HttpFault): Any {
  const fault = create(HTTPFaultSchema, {
    abort: f.abort
      ? {
        errorType: f.abort.grpcStatus !== undefined
          ? { case: "grpcStatus", value: f.abort.grpcStatus }
          : { case: "httpStatus", value: f.abort.httpStatus },
        percentage: percent(f.abort.percent),
      }
      : undefined,
    delay: f.delay
      ? {
        faultDelaySecifier: {
          case: "fixedDelay",
          value: create(DurationSchema, durationOf(f.delay.fixedDelayMs)),
        },
        percentage: percent(f.delay.percent),
      }
      : undefined,
  });
  return anyPack(HTTPFaultSchema, fault);
}

export function pluginResourceName(s: MeshService, p: MeshPlugin): string {
  return `extensions.istio.io/wasmplugin/${s.namespace}.${p.name}`;
}

const PHASES = ["AUTHN", "AUTHZ", "STATS", "UNSPECIFIED"];

/** WasmPlugin order: phase, then higher priority first, then name (l7-semantics W7/W8). */
export function orderedPlugins(s: MeshService): MeshPlugin[] {
  return [...s.plugins].sort((a, b) =>
    PHASES.indexOf(a.phase) - PHASES.indexOf(b.phase) || b.priority - a.priority ||
    a.name.localeCompare(b.name)
  );
}

/** Istio's ECDS shape for a WasmPlugin (xds.md §14). */
export function pluginExtension(s: MeshService, p: MeshPlugin): Any {
  const wasm = create(WasmSchema, {
    config: {
      // Istio's shape: the plugin as `<namespace>.<name>`, WasmPlugin `pluginName` as root_id.
      name: `${s.namespace}.${p.name}`,
      rootId: p.pluginName,
      failOpen: p.failStrategy === "FAIL_OPEN",
      configuration: anyPack(
        StringValueSchema,
        create(StringValueSchema, {
          value: JSON.stringify(p.pluginConfig),
        }),
      ),
      vm: {
        case: "vmConfig",
        value: {
          runtime: p.type === "component" ? COMPONENT_RUNTIME : "envoy.wasm.runtime.v8",
          // vmConfig.env as istiod sends it: HOST entries by name, INLINE ones with values.
          environmentVariables: {
            hostEnvKeys: Object.entries(p.env).filter(([, v]) => v.startsWith("$HOST:"))
              .map(([k]) => k),
            keyValues: Object.fromEntries(
              Object.entries(p.env).filter(([, v]) => !v.startsWith("$HOST:")),
            ),
          },
          code: {
            specifier: {
              case: "remote",
              value: {
                httpUri: { uri: p.url, httpUpstreamType: { case: "cluster", value: "_" } },
                sha256: p.sha256 ?? "",
              },
            },
          },
        },
      },
    },
  });
  return anyPack(
    TypedExtensionConfigSchema,
    create(TypedExtensionConfigSchema, {
      name: pluginResourceName(s, p),
      typedConfig: anyPack(WasmSchema, wasm),
    }),
  );
}

/** Istio `headers` → Envoy's `*_headers_to_add` / `*_headers_to_remove` (Route or ClusterWeight),
 * as istiod: `set` as OVERWRITE_IF_EXISTS_OR_ADD, then `add` as APPEND_IF_EXISTS_OR_ADD; a `%`
 * is escaped (`%%`) since the values are literal. */
function headerFields(h: MeshRoute["headers"]) {
  const toAdd = (o: HeaderOps | undefined) => [
    ...(o?.set ?? []).map(([key, value]) => ({
      header: { key, value: value.replaceAll("%", "%%") },
      appendAction: HeaderAppendAction.OVERWRITE_IF_EXISTS_OR_ADD,
    })),
    ...(o?.add ?? []).map(([key, value]) => ({
      header: { key, value: value.replaceAll("%", "%%") },
      appendAction: HeaderAppendAction.APPEND_IF_EXISTS_OR_ADD,
    })),
  ];
  if (!h) return {};
  return {
    requestHeadersToAdd: toAdd(h.request),
    requestHeadersToRemove: [...(h.request?.remove ?? [])],
    responseHeadersToAdd: toAdd(h.response),
    responseHeadersToRemove: [...(h.response?.remove ?? [])],
  };
}
