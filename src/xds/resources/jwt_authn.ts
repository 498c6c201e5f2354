/**
 * Envoy's `envoy.extensions.filters.http.jwt_authn.v3.JwtAuthentication` in istiod's shape for a
 * RequestAuthentication (pilot/pkg/security/authn: one provider `origins-<i>` per jwtRule,
 * `payload_in_metadata` = `payload`, a token optional — `requires_any{provider, allow_missing}` per
 * rule — and `bypass_cors_preflight`), written by the control plane and read back by a node into
 * the jwt_authn filter's `{jwtRules}` (Istio's field names). Hand-written on wire.ts (no codec
 * regeneration). A config the node cannot run as written is refused (NACK), never loosened.
 */
import type { JwtRule } from "../../istio/mod.ts";
import { Reader, WireError, Writer, wt } from "../wire.ts";

export const JWT_AUTHN_TYPE_NAME = "envoy.extensions.filters.http.jwt_authn.v3.JwtAuthentication";
export const JWT_AUTHN_TYPE_URL = `type.googleapis.com/${JWT_AUTHN_TYPE_NAME}`;

/** The claims istiod always lists in normalize_payload_in_metadata (authn buildSpaceDelimitedClaims
 * without RequestAuthentication `spaceDelimitedClaims`, which weft refuses); the authz plugin
 * reads them split on spaces (src/filters/component/host_bridge.ts). */
const SPACE_DELIMITED = ["permission", "scope"] as const;

const LEN = 2;
const VARINT = 0;

function durationMs(w: Writer, field: number, ms: number): void {
  w.tag(field, LEN).fork().tag(1, VARINT).int64(Math.floor(ms / 1000));
  const nanos = Math.round((ms % 1000) * 1e6);
  if (nanos) w.tag(2, VARINT).int32(nanos);
  w.join();
}

function provider(w: Writer, r: JwtRule): void {
  w.tag(1, LEN).string(r.issuer);
  for (const a of r.audiences) w.tag(2, LEN).string(a);
  if (r.jwks !== undefined) {
    w.tag(4, LEN).fork().tag(3, LEN).string(r.jwks).join(); // local_jwks.inline_string
  } else {
    w.tag(3, LEN).fork(); // remote_jwks
    w.tag(1, LEN).fork().tag(1, LEN).string(r.jwksUri ?? ""); // http_uri.uri
    w.tag(2, LEN).string(r.jwksUri ?? ""); // http_uri.cluster (Envoy requires one; unused)
    durationMs(w, 3, r.timeoutMs);
    w.join();
    durationMs(w, 2, 600_000); // cache_duration: Envoy's default
    w.join();
  }
  if (r.forwardOriginalToken) w.tag(5, VARINT).bool(true);
  for (const h of r.fromHeaders) {
    w.tag(6, LEN).fork().tag(1, LEN).string(h.name);
    if (h.prefix) w.tag(2, LEN).string(h.prefix);
    w.join();
  }
  for (const p of r.fromParams) w.tag(7, LEN).string(p);
  if (r.outputPayloadToHeader) w.tag(8, LEN).string(r.outputPayloadToHeader);
  // payload_in_metadata: istiod's key (filters.EnvoyJwtFilterPayload), the first path segment of
  // the RBAC JWT claim matchers (build_rbac.ts).
  w.tag(9, LEN).string("payload");
  // normalize_payload_in_metadata: istiod's default space-delimited claims (sorted).
  w.tag(18, LEN).fork();
  for (const c of SPACE_DELIMITED) w.tag(1, LEN).string(c);
  w.join();
  for (const c of r.fromCookies) w.tag(13, LEN).string(c);
  for (const c of r.outputClaimToHeaders) {
    w.tag(15, LEN).fork().tag(1, LEN).string(c.header).tag(2, LEN).string(c.claim).join();
  }
}

const providerName = (w: Writer, name: string) => w.tag(1, LEN).string(name);
const allowMissing = (w: Writer) => w.tag(6, LEN).fork().join();
/** `requires_any{provider, allow_missing}` as one JwtRequirement's body. */
function optional(w: Writer, name: string): void {
  w.tag(3, LEN).fork(); // requires_any
  w.tag(1, LEN).fork();
  providerName(w, name);
  w.join();
  w.tag(1, LEN).fork();
  allowMissing(w);
  w.join();
  w.join();
}

/** istiod's JwtAuthentication for `rules` (non-empty), as bytes. */
export function encodeJwtAuthn(rules: readonly JwtRule[]): Uint8Array {
  const w = new Writer();
  const names = rules.map((_, i) => `origins-${i}`);
  rules.forEach((r, i) => {
    w.tag(1, LEN).fork().tag(1, LEN).string(names[i]!).tag(2, LEN).fork();
    provider(w, r);
    w.join().join();
  });
  w.tag(2, LEN).fork(); // rules[0]
  w.tag(1, LEN).fork().tag(1, LEN).string("/").join(); // match.prefix
  w.tag(2, LEN).fork(); // requires
  if (names.length === 1) optional(w, names[0]!);
  else {
    // istiod: any provider alone, or every token optional-but-valid (AND of the optionals).
    w.tag(3, LEN).fork();
    for (const n of names) {
      w.tag(1, LEN).fork();
      providerName(w, n);
      w.join();
    }
    w.tag(1, LEN).fork().tag(4, LEN).fork(); // requires_all
    for (const n of names) {
      w.tag(1, LEN).fork();
      optional(w, n);
      w.join();
    }
    w.join().join();
    w.join();
  }
  w.join().join();
  w.tag(4, VARINT).bool(true); // bypass_cors_preflight
  return w.finish();
}

class Unsupported extends Error {}

function fail(path: string, why: string): never {
  throw new Unsupported(`${path}: ${why}`);
}

function durationOf(r: Reader, end: number): number {
  let s = 0;
  let n = 0;
  while (r.pos < end) {
    const t = r.tag();
    if (t >>> 3 === 1) (wt(t, VARINT), s = Number(r.int32()));
    else if (t >>> 3 === 2) (wt(t, VARINT), n = r.int32());
    else r.skip(t, end, 8);
  }
  r.done(end);
  return s * 1000 + n / 1e6;
}

/** Fields of a message as [field number, reader positioned at its value, end]. */
function* fields(r: Reader, end: number): Generator<[number, number]> {
  while (r.pos < end) {
    const t = r.tag();
    yield [t >>> 3, t];
  }
  r.done(end);
}

function decodeProvider(r: Reader, end: number, p: string): Record<string, unknown> {
  const out: Record<string, unknown> = {
    audiences: [],
    fromHeaders: [],
    fromParams: [],
    fromCookies: [],
    outputClaimToHeaders: [],
    forwardOriginalToken: false,
  };
  const list = (k: string) => out[k] as unknown[];
  for (const [f, t] of fields(r, end)) {
    const e = (t & 7) === LEN ? r.delimited(end) : 0;
    const str = () => decode(r, e);
    switch (f) {
      case 1:
        wt(t, LEN), out.issuer = str();
        break;
      case 2:
        wt(t, LEN), list("audiences").push(str());
        break;
      case 3: { // remote_jwks
        wt(t, LEN);
        for (const [g, tg] of fields(r, e)) {
          const ge = r.delimited(e);
          if (g === 1) {
            wt(tg, LEN);
            for (const [h, th] of fields(r, ge)) {
              const he = r.delimited(ge);
              if (h === 1) wt(th, LEN), out.jwksUri = decode(r, he);
              else if (h === 3) wt(th, LEN), out.timeout = `${durationOf(r, he)}ms`;
              else r.pos = he; // cluster: a node fetches the URI itself
            }
          } else r.pos = ge; // cache_duration, async_fetch, retry_policy: weft's own refresh
        }
        break;
      }
      case 4: { // local_jwks
        wt(t, LEN);
        for (const [g, tg] of fields(r, e)) {
          const ge = r.delimited(e);
          if (g === 2 || g === 3) wt(tg, LEN), out.jwks = decode(r, ge);
          else fail(`${p}.local_jwks`, "only an inline JWKS is supported (no file or env)");
        }
        break;
      }
      case 5:
        wt(t, VARINT), out.forwardOriginalToken = r.bool();
        break;
      case 6: {
        wt(t, LEN);
        const h: Record<string, string> = { prefix: "" };
        for (const [g, tg] of fields(r, e)) {
          const ge = r.delimited(e);
          wt(tg, LEN);
          if (g === 1) h.name = decode(r, ge);
          else if (g === 2) h.prefix = decode(r, ge);
          else r.pos = ge;
        }
        list("fromHeaders").push(h);
        break;
      }
      case 7:
        wt(t, LEN), list("fromParams").push(str());
        break;
      case 8:
        wt(t, LEN), out.outputPayloadToHeader = str();
        break;
      case 13:
        wt(t, LEN), list("fromCookies").push(str());
        break;
      case 15: {
        wt(t, LEN);
        const c: Record<string, string> = {};
        for (const [g, tg] of fields(r, e)) {
          const ge = r.delimited(e);
          wt(tg, LEN);
          if (g === 1) c.header = decode(r, ge);
          else if (g === 2) c.claim = decode(r, ge);
          else r.pos = ge;
        }
        list("outputClaimToHeaders").push(c);
        break;
      }
      case 10: { // clock_skew_seconds: weft verifies with Envoy's default, 60 s
        wt(t, VARINT);
        const v = r.uint32();
        if (v !== 0 && v !== 60) fail(`${p}.clock_skew_seconds`, "only 60 (the default)");
        break;
      }
      case 18: { // normalize_payload_in_metadata: weft splits istiod's default set, no other
        wt(t, LEN);
        const got: string[] = [];
        for (const [g, tg] of fields(r, e)) {
          const ge = r.delimited(e);
          if (g === 1) wt(tg, LEN), got.push(decode(r, ge));
          else r.pos = ge;
        }
        if ([...new Set(got)].sort().join() !== SPACE_DELIMITED.join()) {
          fail(
            `${p}.normalize_payload_in_metadata.space_delimited_claims`,
            `only istiod's default [${SPACE_DELIMITED.join(", ")}] is supported`,
          );
        }
        break;
      }
      case 9: // payload_in_metadata: the authz plugin reads the verified token anyway
      case 12: // jwt_cache_config
      case 14: // header_in_metadata
      case 16: // failed_status_in_metadata
      case 17: // clear_route_cache
        if (e) r.pos = e;
        else r.skip(t, end, 8);
        break;
      default:
        fail(`${p} field ${f}`, "not supported by weft's jwt_authn");
    }
  }
  return out;
}

function decode(r: Reader, end: number): string {
  let s: string;
  try {
    s = new TextDecoder("utf-8", { fatal: true }).decode(r.buf.subarray(r.pos, end));
  } catch {
    throw new WireError(`invalid UTF-8 in a string at byte ${r.pos}`);
  }
  r.pos = end;
  return s;
}

/** A requirement tree's provider names; whether a missing token passes somewhere in it. */
function requirement(r: Reader, end: number, depth: number, seen: { missingOk: boolean }): void {
  if (depth > 16) fail("rules", "requirements nested too deeply");
  for (const [f, t] of fields(r, end)) {
    wt(t, LEN);
    const e = r.delimited(end);
    if (f === 1) r.pos = e; // provider_name
    else if (f === 3 || f === 4) {
      for (const [g, tg] of fields(r, e)) {
        wt(tg, LEN);
        const ge = r.delimited(e);
        if (g === 1) requirement(r, ge, depth + 1, seen);
        else r.pos = ge;
      }
    } else if (f === 6) {
      seen.missingOk = true;
      r.pos = e;
    } else {
      fail("rules", "only istiod's requirements (providers, requires_any/all, allow_missing)");
    }
  }
}

/** A node's reading of the bytes: `{jwtRules}` for the jwt_authn filter, or a refusal. */
export function decodeJwtAuthn(bytes: Uint8Array): { jwtRules: Record<string, unknown>[] } {
  const r = new Reader(bytes);
  const providers = new Map<string, Record<string, unknown>>();
  let rules = 0;
  let missingOk = false;
  try {
    for (const [f, t] of fields(r, r.len)) {
      const e = (t & 7) === LEN ? r.delimited(r.len) : 0;
      if (f === 1) {
        let key = "";
        let value: Record<string, unknown> | undefined;
        for (const [g, tg] of fields(r, e)) {
          wt(tg, LEN);
          const ge = r.delimited(e);
          if (g === 1) key = decode(r, ge);
          else if (g === 2) value = decodeProvider(r, ge, `providers[${key || "?"}]`);
          else r.pos = ge;
        }
        providers.set(key, value ?? {});
      } else if (f === 2) {
        rules++;
        for (const [g, tg] of fields(r, e)) {
          wt(tg, LEN);
          const ge = r.delimited(e);
          if (g === 1) {
            // match: prefix "/" only (every request, as istiod).
            for (const [h, th] of fields(r, ge)) {
              wt(th, LEN);
              const he = r.delimited(ge);
              if (h !== 1 || decode(r, he) !== "/") fail("rules[].match", 'only prefix "/"');
            }
          } else if (g === 2) {
            const seen = { missingOk: false };
            requirement(r, ge, 0, seen);
            missingOk = seen.missingOk;
          } else fail("rules[]", "requirement_name is not supported");
        }
      } else if (f === 4) {
        wt(t, VARINT);
        if (!r.bool()) fail("bypass_cors_preflight", "weft always lets a CORS preflight through");
      } else if (f === 6) {
        wt(t, VARINT);
        if (r.bool()) fail("strip_failure_response", "not supported");
      } else fail(`field ${f}`, "not supported by weft's jwt_authn");
    }
  } catch (e) {
    if (e instanceof Unsupported) throw new WireError(`jwt_authn ${e.message}`);
    throw e;
  }
  if (rules !== 1 || !missingOk) {
    throw new WireError(
      "jwt_authn: only istiod's requirement (one rule for every path, a missing token allowed) " +
        "is supported; AuthorizationPolicy decides whether a token is required",
    );
  }
  const order = (k: string) => Number(/-(\d+)$/.exec(k)?.[1] ?? NaN);
  const keys = [...providers.keys()].sort((a, b) =>
    (order(a) - order(b)) || (a < b ? -1 : a > b ? 1 : 0)
  );
  return { jwtRules: keys.map((k) => providers.get(k)!) };
}
