/**
 * MeshConfig `extensionProviders` (envoyExtAuthzHttp, envoyExtAuthzGrpc): the external
 * authorizers an AuthorizationPolicy with `action: CUSTOM` delegates to, validated as istiod does
 * (pilot/pkg/security/authz/builder/extauthz.go, pkg/config/validation) and defaulted as istiod
 * builds Envoy's ext_authz filter (timeout 600 s). Other provider kinds (tracing, access logs)
 * serve Istio's Telemetry API, which weft does not read: each is named in a warning and skipped,
 * as istiod's authorization builder skips them.
 */
import { isIP } from "node:net";
import { logger } from "../core/mod.ts";
import { type Checker, INT32_MAX, isObj, type Raw } from "./check.ts";
import type { ExtAuthzProvider } from "./types.ts";

const log = logger("config");

const HTTP_FIELDS = [
  "service",
  "port",
  "timeout",
  "pathPrefix",
  "failOpen",
  "clearRouteCache",
  "statusOnError",
  "includeHeadersInCheck",
  "includeRequestHeadersInCheck",
  "includeAdditionalHeadersInCheck",
  "includeRequestBodyInCheck",
  "headersToUpstreamOnAllow",
  "headersToDownstreamOnDeny",
  "headersToDownstreamOnAllow",
] as const;
const GRPC_FIELDS = [
  "service",
  "port",
  "timeout",
  "failOpen",
  "clearRouteCache",
  "statusOnError",
  "includeRequestBodyInCheck",
] as const;
/** istiod's default when `timeout` is unset (extauthz.go timeoutOrDefault). */
export const EXT_AUTHZ_DEFAULT_TIMEOUT_MS = 600_000;
const HOST = /^(\*\.)?[a-z0-9]([-a-z0-9.]*[a-z0-9])?$/i;

/** `extensionProviders` → the ext_authz providers; warnings (logged once per parse) name the
 * providers of other kinds, which weft skips. */
export function parseExtensionProviders(c: Checker, path: string, v: unknown): ExtAuthzProvider[] {
  const out: ExtAuthzProvider[] = [];
  const names = new Set<string>();
  c.list(path, v).forEach((raw, i) => {
    const p = `${path}[${i}]`;
    if (!isObj(raw)) {
      c.problems.add(p, "must be a mapping");
      return;
    }
    const name = c.str(`${p}.name`, raw.name, "");
    if (name === "") c.problems.add(`${p}.name`, "must not be empty (istiod)");
    else if (names.has(name)) c.problems.add(`${p}.name`, `"${name}" is defined twice (istiod)`);
    names.add(name);
    const kinds = Object.keys(raw).filter((k) => k !== "name");
    if (kinds.length !== 1) {
      c.problems.add(p, `needs exactly one provider kind besides name, got ${kinds.length}`);
      return;
    }
    const kind = kinds[0]!;
    if (kind === "envoyExtAuthzHttp") {
      out.push(provider(c, `${p}.${kind}`, name, "http", raw[kind]));
    } else if (kind === "envoyExtAuthzGrpc") {
      out.push(provider(c, `${p}.${kind}`, name, "grpc", raw[kind]));
    } else {
      log.warn("config warning", {
        path: `${p}.${kind}`,
        warning: "this extension provider kind is not supported by weft: ignored",
      });
    }
  });
  return out;
}

function headerPatterns(c: Checker, path: string, v: unknown): string[] {
  return c.strList(path, v).map((h, i) => {
    // istiod: a lone "*" is refused ("change it to either prefix or suffix match").
    if (h === "*") c.problems.add(`${path}[${i}]`, 'a single wildcard ("*") is not supported');
    return h.toLowerCase();
  });
}

function provider(
  c: Checker,
  path: string,
  name: string,
  kind: "http" | "grpc",
  v: unknown,
): ExtAuthzProvider {
  const o: Raw = c.obj(path, v, kind === "http" ? HTTP_FIELDS : GRPC_FIELDS);
  const service = c.str(`${path}.service`, o.service);
  if (service !== "" && isIP(service) === 0) {
    const host = service.includes("/") ? service.slice(service.indexOf("/") + 1) : service;
    if (!HOST.test(host) || service.split("/").length > 2) {
      c.problems.add(
        `${path}.service`,
        `must be a hostname, namespace/hostname or an IP address, got "${service}"`,
      );
    }
  }
  const port = c.int(`${path}.port`, o.port, undefined, 1, 65535);
  let statusOnError: number | undefined;
  if (o.statusOnError !== undefined) {
    const s = typeof o.statusOnError === "number" ? String(o.statusOnError) : o.statusOnError;
    statusOnError = typeof s === "string" && /^[1-5]\d\d$/.test(s) ? Number(s) : undefined;
    if (statusOnError === undefined) {
      c.problems.add(`${path}.statusOnError`, 'must be an HTTP status code such as "503"');
    }
  }
  const pathPrefix = c.str(`${path}.pathPrefix`, o.pathPrefix, "");
  if (pathPrefix !== "" && (!pathPrefix.startsWith("/") || /[\s?#]/.test(pathPrefix))) {
    c.problems.add(`${path}.pathPrefix`, `must begin with "/" and hold a path only`);
  }
  const requestHeaders = headerPatterns(
    c,
    `${path}.includeRequestHeadersInCheck`,
    o.includeRequestHeadersInCheck,
  );
  // istiod: the deprecated includeHeadersInCheck applies only when the new field is unset.
  const deprecated = headerPatterns(c, `${path}.includeHeadersInCheck`, o.includeHeadersInCheck);
  const additional = c.labels(
    `${path}.includeAdditionalHeadersInCheck`,
    o.includeAdditionalHeadersInCheck,
  );
  const b = o.includeRequestBodyInCheck === undefined ? undefined : c.obj(
    `${path}.includeRequestBodyInCheck`,
    o.includeRequestBodyInCheck,
    ["maxRequestBytes", "allowPartialMessage", "packAsBytes"],
  );
  // A cleared route cache re-picks the route after the check; weft's inbound chain has one route
  // (the local workload), so clearRouteCache changes nothing and is accepted as such.
  c.bool(`${path}.clearRouteCache`, o.clearRouteCache, false);
  return {
    name,
    kind,
    service: service.toLowerCase(),
    port,
    timeoutMs: c.duration(`${path}.timeout`, o.timeout, EXT_AUTHZ_DEFAULT_TIMEOUT_MS),
    failOpen: c.bool(`${path}.failOpen`, o.failOpen, false),
    statusOnError,
    pathPrefix,
    includeRequestHeadersInCheck: requestHeaders.length ? requestHeaders : deprecated,
    includeAdditionalHeadersInCheck: Object.fromEntries(
      Object.entries(additional).map(([k, val]) => [k.toLowerCase(), val]),
    ),
    includeRequestBodyInCheck: b && {
      maxRequestBytes: c.int(
        `${path}.includeRequestBodyInCheck.maxRequestBytes`,
        b.maxRequestBytes,
        0,
        0,
        INT32_MAX,
      ),
      allowPartialMessage: c.bool(
        `${path}.includeRequestBodyInCheck.allowPartialMessage`,
        b.allowPartialMessage,
        false,
      ),
      packAsBytes: c.bool(`${path}.includeRequestBodyInCheck.packAsBytes`, b.packAsBytes, false),
    },
    headersToUpstreamOnAllow: headerPatterns(
      c,
      `${path}.headersToUpstreamOnAllow`,
      o.headersToUpstreamOnAllow,
    ),
    headersToDownstreamOnDeny: headerPatterns(
      c,
      `${path}.headersToDownstreamOnDeny`,
      o.headersToDownstreamOnDeny,
    ),
    headersToDownstreamOnAllow: headerPatterns(
      c,
      `${path}.headersToDownstreamOnAllow`,
      o.headersToDownstreamOnAllow,
    ),
  };
}

/** Which provider the CUSTOM policies of one workload use, as istiod's getExtAuthz decides:
 * none named, several different ones, an unknown one → why not (istiod then logs it and denies
 * every request of the workload with `default-deny-all-due-to-bad-CUSTOM-action`). */
export function providerFor(
  providers: readonly ExtAuthzProvider[],
  names: readonly string[],
): ExtAuthzProvider | string {
  const distinct = [...new Set(names)];
  if (distinct.length === 0) return "no provider specified in authorization policy";
  if (distinct.length > 1) {
    return `only 1 provider can be used per workload, found multiple providers: ${
      distinct.join(", ")
    }`;
  }
  const p = providers.find((x) => x.name === distinct[0]);
  if (p) return p;
  return `available providers are [${providers.map((x) => x.name).join(", ")}] but found "${
    distinct[0]
  }"`;
}
