/**
 * security.istio.io RequestAuthentication: which JWTs a workload accepts (istio/api
 * security/v1/request_authentication.proto, jwt.proto). Validated as istiod does, every problem
 * with its path; the filter host's jwt_authn filter (src/filters/jwt) takes the parsed rules.
 */
import { type Checker, isObj, type Raw } from "./check.ts";
import { meta, policyTarget } from "./meta.ts";
import { labelsMatch } from "./select.ts";
import type { JwtRule, RequestAuthentication } from "./types.ts";

const RULE_KEYS = [
  "issuer",
  "audiences",
  "jwksUri",
  "jwks",
  "fromHeaders",
  "fromParams",
  "fromCookies",
  "outputPayloadToHeader",
  "forwardOriginalToken",
  "outputClaimToHeaders",
  "timeout",
] as const;

/** istio/api: the JWKS fetch timeout when `timeout` is unset. */
export const DEFAULT_JWKS_TIMEOUT_MS = 5_000;
/** An HTTP field name (RFC 9110 token). */
const HEADER_NAME = /^[!#$%&'*+.^_`|~0-9A-Za-z-]+$/;
/** istio/api: a claim name, nested claims separated by ".". */
const CLAIM = /^[-_A-Za-z0-9.:/]+$/;

export function parseRequestAuthentication(c: Checker, doc: Raw): RequestAuthentication {
  const m = meta(c, doc.metadata);
  const spec = c.obj("spec", doc.spec, ["selector", "targetRef", "targetRefs", "jwtRules"]);
  const { selector, refs } = policyTarget(c, spec);
  const jwtRules = parseJwtRules(c, "spec.jwtRules", spec.jwtRules);
  return {
    kind: "RequestAuthentication",
    meta: m,
    selector,
    targetServices: refs.map((r) => r.name),
    jwtRules,
  };
}

export function parseJwtRules(c: Checker, path: string, v: unknown): JwtRule[] {
  const raw = c.list(path, v);
  if (raw.length > 4096) c.problems.add(path, "must have at most 4096 entries");
  return raw.map((r, i) => jwtRule(c, `${path}[${i}]`, r));
}

function jwtRule(c: Checker, p: string, v: unknown): JwtRule {
  if (!isObj(v)) c.problems.add(p, "must be a mapping");
  const o = c.obj(p, v, RULE_KEYS);
  const issuer = c.str(`${p}.issuer`, o.issuer);
  if (o.issuer !== undefined && issuer === "") c.problems.add(`${p}.issuer`, "must not be empty");
  const audiences = c.strList(`${p}.audiences`, o.audiences);
  audiences.forEach((a, j) => {
    if (a === "") c.problems.add(`${p}.audiences[${j}]`, "must not be empty");
  });
  const jwksUri = c.optStr(`${p}.jwksUri`, o.jwksUri);
  if (jwksUri !== undefined && !validHttpUrl(jwksUri)) {
    c.problems.add(`${p}.jwksUri`, `must be an http or https URL, got ${JSON.stringify(jwksUri)}`);
  }
  const jwks = c.optStr(`${p}.jwks`, o.jwks);
  if (jwks !== undefined) {
    const why = jwksProblem(jwks);
    if (why) c.problems.add(`${p}.jwks`, why);
  }
  if (jwks === undefined && jwksUri === undefined && o.issuer !== undefined) {
    c.problems.add(
      p,
      "needs jwks or jwksUri (weft does not discover keys through the issuer's " +
        "/.well-known/openid-configuration)",
    );
  }
  const fromHeaders = c.list(`${p}.fromHeaders`, o.fromHeaders).map((h, j) => {
    const hp = `${p}.fromHeaders[${j}]`;
    const ho = c.obj(hp, h, ["name", "prefix"]);
    const name = c.str(`${hp}.name`, ho.name, undefined, HEADER_NAME, "an HTTP header name");
    return { name: name.toLowerCase(), prefix: c.str(`${hp}.prefix`, ho.prefix, "") };
  });
  const fromParams = c.strList(`${p}.fromParams`, o.fromParams);
  fromParams.forEach((x, j) => {
    if (x === "") c.problems.add(`${p}.fromParams[${j}]`, "must not be empty");
  });
  const fromCookies = c.strList(`${p}.fromCookies`, o.fromCookies);
  fromCookies.forEach((x, j) => {
    if (!HEADER_NAME.test(x)) c.problems.add(`${p}.fromCookies[${j}]`, "must be a cookie name");
  });
  const outputPayloadToHeader = c.optStr(`${p}.outputPayloadToHeader`, o.outputPayloadToHeader);
  if (outputPayloadToHeader !== undefined && !HEADER_NAME.test(outputPayloadToHeader)) {
    c.problems.add(`${p}.outputPayloadToHeader`, "must be an HTTP header name");
  }
  const outputClaimToHeaders = c.list(`${p}.outputClaimToHeaders`, o.outputClaimToHeaders).map(
    (h, j) => {
      const hp = `${p}.outputClaimToHeaders[${j}]`;
      const ho = c.obj(hp, h, ["header", "claim"]);
      const header = c.str(`${hp}.header`, ho.header, undefined, HEADER_NAME, "a header name");
      const claim = c.str(`${hp}.claim`, ho.claim, undefined, CLAIM, "a claim name");
      return { header: header.toLowerCase(), claim };
    },
  );
  const timeoutMs = c.duration(`${p}.timeout`, o.timeout, DEFAULT_JWKS_TIMEOUT_MS);
  if (o.timeout !== undefined && timeoutMs <= 0) {
    c.problems.add(`${p}.timeout`, "must be greater than 0");
  }
  return {
    issuer,
    audiences,
    jwks,
    jwksUri,
    fromHeaders,
    fromParams,
    fromCookies,
    forwardOriginalToken: c.bool(`${p}.forwardOriginalToken`, o.forwardOriginalToken, false),
    outputPayloadToHeader: outputPayloadToHeader?.toLowerCase(),
    outputClaimToHeaders,
    timeoutMs,
  };
}

function validHttpUrl(s: string): boolean {
  try {
    const u = new URL(s);
    return (u.protocol === "http:" || u.protocol === "https:") && u.hostname !== "";
  } catch {
    return false;
  }
}

/** What Envoy would refuse in an inline JWKS (istiod passes it through; Envoy NACKs). */
export function jwksProblem(text: string): string | undefined {
  let v: unknown;
  try {
    v = JSON.parse(text);
  } catch {
    return "must be a JSON Web Key Set (Jwks is an invalid JSON)";
  }
  if (!isObj(v) || !("keys" in v)) return "must be a JSON Web Key Set with a keys list";
  if (!Array.isArray(v.keys)) return "keys must be a list";
  if (v.keys.length === 0) return "keys must not be empty";
  for (const [i, k] of v.keys.entries()) {
    if (!isObj(k) || typeof k.kty !== "string") return `keys[${i}]: needs a kty`;
  }
  return undefined;
}

/** A parsed rule back in Istio's shape (the jwt_authn filter's ref config, parsed again there). */
export function jwtRuleToIstio(r: JwtRule): Raw {
  return {
    issuer: r.issuer,
    audiences: r.audiences,
    ...(r.jwks !== undefined ? { jwks: r.jwks } : {}),
    ...(r.jwksUri !== undefined ? { jwksUri: r.jwksUri } : {}),
    fromHeaders: r.fromHeaders,
    fromParams: r.fromParams,
    fromCookies: r.fromCookies,
    forwardOriginalToken: r.forwardOriginalToken,
    ...(r.outputPayloadToHeader !== undefined
      ? { outputPayloadToHeader: r.outputPayloadToHeader }
      : {}),
    outputClaimToHeaders: r.outputClaimToHeaders,
    timeout: `${r.timeoutMs}ms`,
  };
}

/** The RequestAuthentications that apply to a service's workloads, in istiod's scope: the root
 * namespace's apply everywhere, a namespace's to its workloads (narrowed by `selector`),
 * `targetRefs` to the named Service of their namespace; ordered root first, then namespace-wide,
 * then selected, then targeted (their jwtRules are merged in that order). */
export function requestAuthnsFor(
  all: readonly RequestAuthentication[],
  svc: { readonly name: string; readonly namespace: string },
  workloads: readonly {
    readonly namespace: string;
    readonly labels: Readonly<Record<string, string>>;
  }[],
  rootNamespace: string,
): RequestAuthentication[] {
  const rank = (ra: RequestAuthentication): number => {
    if (ra.targetServices.length > 0) {
      return ra.meta.namespace === svc.namespace && ra.targetServices.includes(svc.name) ? 3 : -1;
    }
    const applies = workloads.some((w) =>
      (ra.meta.namespace === rootNamespace || ra.meta.namespace === w.namespace) &&
      (ra.selector === undefined || labelsMatch(w.labels, ra.selector))
    );
    if (!applies) return -1;
    return ra.meta.namespace === rootNamespace ? 0 : ra.selector === undefined ? 1 : 2;
  };
  return all.map((ra) => [rank(ra), ra] as const).filter(([r]) => r >= 0)
    .sort((a, b) => a[0] - b[0]).map(([, ra]) => ra);
}
