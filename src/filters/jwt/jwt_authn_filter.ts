/**
 * The host-native jwt_authn filter (Envoy's envoy.filters.http.jwt_authn as istiod configures it
 * for a RequestAuthentication): tokens from the rules' locations (default `Authorization: Bearer`
 * and `access_token`), each verified against the first rule whose issuer it names; no token →
 * the request goes on unauthenticated (Istio's allow_missing: only an AuthorizationPolicy can
 * require one); any invalid token → 401 with Envoy's status string. A verified token becomes
 * `ctx.requestAuth` for the authz plugin (request.auth.*, requestPrincipals). Runs in the AUTHN
 * phase after AUTHN WasmPlugins, before AUTHZ ones and RBAC (istio/istio listener filter order).
 */
import { Buffer } from "node:buffer";
import type {
  FailPolicy,
  FilterOutcome,
  HttpFilter,
  HttpRequestContext,
  LocalResponse,
  RequestAuth,
} from "../../core/mod.ts";
import { metrics } from "../../core/mod.ts";
import type { JwtRule } from "../../istio/mod.ts";
import { FAKE_JWKS, type Jwks, JwksSource, parseJwks } from "./jwks.ts";
import {
  audiencesAllowed,
  type ParsedJwt,
  parseJwt,
  sanitizeAudience,
  signatureProblem,
  timeProblem,
} from "./jwt_verify.ts";

const jwtTotal = metrics.counter(
  "weft_jwt_authn_total",
  "Requests seen by the jwt_authn filter (RequestAuthentication), by result.",
  ["result"],
);

/** Envoy status string → metric result. */
const RESULT: Readonly<Record<string, string>> = {
  "Jwt is expired": "expired",
  "Jwt not yet valid": "not_yet_valid",
  "Jwt issuer is not configured": "unknown_issuer",
  "Audiences in Jwt are not allowed": "audience_not_allowed",
  "Jwt verification fails": "bad_signature",
  "Jwks doesn't have key to match kid or alg from Jwt": "no_matching_key",
};

type Location =
  | { readonly kind: "header"; readonly name: string; readonly prefix: string }
  | { readonly kind: "param"; readonly name: string }
  | { readonly kind: "cookie"; readonly name: string };

interface Rule {
  readonly issuer: string;
  readonly audiences: ReadonlySet<string>;
  readonly source: JwksSource;
  readonly locations: ReadonlySet<string>;
  readonly forward: boolean;
  readonly payloadHeader: string | undefined;
  readonly claimHeaders: JwtRule["outputClaimToHeaders"];
}

const DEFAULT_LOCATIONS: readonly Location[] = [
  { kind: "header", name: "authorization", prefix: "Bearer " },
  { kind: "param", name: "access_token" },
];

const keyOf = (l: Location): string =>
  l.kind === "header" ? `h:${l.name}:${l.prefix}` : `${l.kind[0]}:${l.name}`;

function locationsOf(r: JwtRule): Location[] {
  const out: Location[] = [
    ...r.fromHeaders.map((h) => ({ kind: "header" as const, name: h.name, prefix: h.prefix })),
    ...r.fromParams.map((name) => ({ kind: "param" as const, name })),
    ...r.fromCookies.map((name) => ({ kind: "cookie" as const, name })),
  ];
  return out.length > 0 ? out : [...DEFAULT_LOCATIONS];
}

export class JwtAuthnFilter implements HttpFilter {
  readonly wantsRequestBody = false;
  readonly wantsResponseBody = false;
  /** Every location of every rule, once. */
  private readonly locations: readonly Location[];
  /** Headers only this filter may write: what a client sends in them is dropped first. */
  private readonly outputHeaders: readonly string[];

  private constructor(
    readonly name: string,
    readonly failPolicy: FailPolicy,
    private readonly rules: readonly Rule[],
    jwtRules: readonly JwtRule[],
  ) {
    const byKey = new Map<string, Location>();
    for (const r of jwtRules) for (const l of locationsOf(r)) byKey.set(keyOf(l), l);
    this.locations = [...byKey.values()];
    this.outputHeaders = [
      ...new Set(jwtRules.flatMap((r) => [
        ...(r.outputPayloadToHeader ? [r.outputPayloadToHeader] : []),
        ...r.outputClaimToHeaders.map((c) => c.header),
      ])),
    ];
  }

  /** Builds the rules, fetching each jwksUri once (bounded by its timeout; never rejects). */
  static async create(
    name: string,
    failPolicy: FailPolicy,
    jwtRules: readonly JwtRule[],
  ): Promise<JwtAuthnFilter> {
    const rules = await Promise.all(jwtRules.map(async (r): Promise<Rule> => {
      let source: JwksSource;
      if (r.jwks !== undefined) {
        const parsed = parseJwks(r.jwks);
        source = JwksSource.inline("keys" in parsed ? parsed.keys : FAKE_JWKS);
      } else {
        source = await JwksSource.remote(r.jwksUri!, r.timeoutMs);
      }
      return {
        issuer: r.issuer,
        audiences: new Set(r.audiences.map(sanitizeAudience)),
        source,
        locations: new Set(locationsOf(r).map(keyOf)),
        forward: r.forwardOriginalToken,
        payloadHeader: r.outputPayloadToHeader,
        claimHeaders: r.outputClaimToHeaders,
      };
    }));
    return new JwtAuthnFilter(name, failPolicy, rules, jwtRules);
  }

  onRequest(ctx: HttpRequestContext): FilterOutcome {
    const h = ctx.requestHeaders;
    for (const o of this.outputHeaders) h.remove(o);
    // Istio sets bypass_cors_preflight: a CORS preflight carries no credentials.
    if (ctx.method === "OPTIONS" && h.has("origin") && h.has("access-control-request-method")) {
      return CONTINUE;
    }
    const found = this.extract(ctx);
    if (found.length === 0) {
      jwtTotal.inc({ result: "missing" });
      return CONTINUE;
    }
    const nowS = Math.floor(Date.now() / 1000);
    const good: [Rule, ParsedJwt, Location][] = [];
    const parsed = new Map<string, ParsedJwt>();
    // Envoy: every token a request carries must verify, or a bad one could ride along a good one.
    // Each location is its own token (the same token in two places is verified once but removed
    // from both when the rule does not forward it).
    for (const [loc, token] of found) {
      let jwt: ParsedJwt | string | undefined = parsed.get(token);
      if (jwt === undefined) {
        jwt = parseJwt(token);
        if (typeof jwt === "string") return this.deny(ctx, jwt);
        parsed.set(token, jwt);
      }
      const iss = jwt.iss;
      const rule = this.rules.find((r) => r.issuer === iss && r.locations.has(keyOf(loc)));
      if (!rule) return this.deny(ctx, "Jwt issuer is not configured");
      const why = timeProblem(jwt, nowS) ??
        (audiencesAllowed(jwt, rule.audiences) ? undefined : "Audiences in Jwt are not allowed") ??
        signatureProblem(jwt, rule.source.keys);
      if (why) return this.deny(ctx, why);
      good.push([rule, jwt, loc]);
    }
    for (const [rule, jwt, loc] of good) {
      if (!rule.forward) removeToken(ctx, loc);
      if (rule.payloadHeader) h.set(rule.payloadHeader, jwt.payloadB64);
      for (const c of rule.claimHeaders) {
        const v = claimText(jwt.payload, c.claim);
        if (v !== undefined) h.set(c.header, v);
      }
    }
    ctx.requestAuth = authOf(good[0]![1]);
    jwtTotal.inc({ result: "verified" });
    return CONTINUE;
  }

  onResponse(): FilterOutcome {
    return CONTINUE;
  }

  onDone(): void {}

  close(): void {
    for (const r of this.rules) r.source.close();
  }

  /** The rules' key sets (for tests and /config_dump). */
  keys(): readonly Jwks[] {
    return this.rules.map((r) => r.source.keys);
  }

  private extract(ctx: HttpRequestContext): [Location, string][] {
    const out: [Location, string][] = [];
    let query: URLSearchParams | undefined;
    let cookies: Map<string, string> | undefined;
    for (const loc of this.locations) {
      if (loc.kind === "header") {
        for (const v of ctx.requestHeaders.getAll(loc.name)) {
          const t = fromHeader(v, loc.prefix);
          if (t) out.push([loc, t]);
        }
      } else if (loc.kind === "param") {
        const q = ctx.path.indexOf("?");
        if (q < 0) continue;
        query ??= safeParams(ctx.path.slice(q + 1));
        for (const t of query.getAll(loc.name)) if (t) out.push([loc, t]);
      } else {
        cookies ??= cookieMap(ctx.requestHeaders.getAll("cookie"));
        const t = cookies.get(loc.name);
        if (t) out.push([loc, t]);
      }
    }
    return out;
  }

  private deny(ctx: HttpRequestContext, status: string): FilterOutcome {
    jwtTotal.inc({ result: RESULT[status] ?? "malformed" });
    const q = ctx.path.indexOf("?");
    const uri = `${ctx.scheme}://${ctx.authority}${q < 0 ? ctx.path : ctx.path.slice(0, q)}`;
    const grpc = (ctx.requestHeaders.get("content-type") ?? "").startsWith("application/grpc");
    const response: LocalResponse = {
      status: 401,
      headers: [["www-authenticate", `Bearer realm="${uri}", error="invalid_token"`]],
      body: status,
      details: `jwt_authn_access_denied{${status.replace(/\s/g, "_")}}`,
      ...(grpc ? { grpcStatus: 16 } : {}), // UNAUTHENTICATED
    };
    return { action: "respond", response };
  }
}

const CONTINUE: FilterOutcome = Object.freeze({ action: "continue" });

/** Envoy's extractor (extractor.cc extractJWT): the prefix is found anywhere in the value, the
 * token starts at the first JWT character (base64url or ".") after it and runs to the end of the
 * value, so whatever follows a token in the same header is part of it and fails with it ("Bearer
 * <good>, Bearer <forged>" is no way to ride an unverified token past the filter); with no JWT
 * character after the prefix the whole value is the token, as Envoy keeps it. No prefix: the
 * whole value. */
function fromHeader(value: string, prefix: string): string | undefined {
  if (!prefix) return value || undefined;
  const at = value.indexOf(prefix);
  if (at < 0) return undefined;
  let start = at + prefix.length;
  while (start < value.length && !/[A-Za-z0-9_.-]/.test(value[start]!)) start++;
  return start < value.length ? value.slice(start) : value;
}

function safeParams(q: string): URLSearchParams {
  try {
    return new URLSearchParams(q);
  } catch {
    return new URLSearchParams();
  }
}

function cookieMap(values: readonly string[]): Map<string, string> {
  const m = new Map<string, string>();
  for (const v of values) {
    for (const part of v.split(";")) {
      const eq = part.indexOf("=");
      if (eq < 0) continue;
      const k = part.slice(0, eq).trim();
      if (!m.has(k)) m.set(k, part.slice(eq + 1).trim());
    }
  }
  return m;
}

/** Envoy's JwtLocation::removeJwt for `forward: false`: a header location drops the header, a
 * query parameter location drops every value of that parameter from :path (the other parameters
 * stay as sent), a cookie location keeps the cookie (Envoy does not remove it either). */
function removeToken(ctx: HttpRequestContext, loc: Location): void {
  if (loc.kind === "header") ctx.requestHeaders.remove(loc.name);
  else if (loc.kind === "param") {
    const q = ctx.path.indexOf("?");
    if (q < 0) return;
    const kept = ctx.path.slice(q + 1).split("&").filter((kv) => {
      const eq = kv.indexOf("=");
      return paramName(eq < 0 ? kv : kv.slice(0, eq)) !== loc.name;
    });
    // The data path's request context: :path is written here as the route rewrite does.
    (ctx as { path: string }).path = ctx.path.slice(0, q) +
      (kept.length ? `?${kept.join("&")}` : "");
  }
}

/** A query parameter's name as URLSearchParams decodes it ("+" is a space). */
function paramName(raw: string): string {
  try {
    return decodeURIComponent(raw.replace(/\+/g, " "));
  } catch {
    return raw;
  }
}

/** A claim (nested by ".") as a header value: strings as they are, numbers and booleans as text
 * (Envoy's claim_to_headers takes no other types). Header values on weft's data path are byte
 * strings (one char per byte, as received): a claim goes out as its UTF-8 bytes, as in Envoy, and
 * a character past U+00FF can never be cut down to a byte such as CR or LF. */
function claimText(payload: Readonly<Record<string, unknown>>, claim: string): string | undefined {
  let v: unknown = payload;
  for (const k of claim.split(".")) {
    if (typeof v !== "object" || v === null || Array.isArray(v)) return undefined;
    v = (v as Record<string, unknown>)[k];
  }
  if (typeof v === "string") return Buffer.from(v, "utf8").toString("latin1");
  if (typeof v === "number" || typeof v === "boolean") return String(v);
  return undefined;
}

function authOf(jwt: ParsedJwt): RequestAuth {
  const azp = jwt.payload.azp;
  return {
    principal: jwt.iss !== undefined && jwt.sub !== undefined ? `${jwt.iss}/${jwt.sub}` : undefined,
    audiences: jwt.audiences,
    presenter: typeof azp === "string" ? azp : undefined,
    claims: jwt.payload,
  };
}
