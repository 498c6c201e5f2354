/**
 * JSON Web Key Sets for the jwt_authn filter: parsed once into node:crypto KeyObjects (sync
 * verification, no WebCrypto), inline or fetched from a jwksUri with a timeout, cached and
 * refreshed (Envoy's remote_jwks default cache_duration, 10 min). A set that cannot be fetched is
 * replaced by istiod's fake JWKS (pilot/pkg/model/jwks_resolver.go CreateFakeJwks: one RSA key,
 * kid "abc", that verifies nothing), so every token fails with 401, as in Istio.
 */
import { Buffer } from "node:buffer";
import { createPublicKey, createSecretKey, type KeyObject } from "node:crypto";
import { logger } from "../../core/mod.ts";

const log = logger("jwt");

export interface Jwk {
  readonly kty: string;
  readonly kid: string | undefined;
  readonly alg: string | undefined;
  readonly crv: string | undefined;
  /** undefined: a key that verifies nothing (istiod's fake key). */
  readonly key: KeyObject | undefined;
}

export type Jwks = readonly Jwk[];

/** Envoy's JWKS errors (jwt_verify_lib status.cc): a set that parses to no usable key. */
export function parseJwks(text: string): { keys: Jwks } | { error: string } {
  let v: unknown;
  try {
    v = JSON.parse(text);
  } catch {
    return { error: "Jwks is an invalid JSON" };
  }
  if (typeof v !== "object" || v === null || !("keys" in v)) {
    return { error: "Jwks does not have [keys] field" };
  }
  const raw = (v as { keys: unknown }).keys;
  if (!Array.isArray(raw)) return { error: "[keys] in Jwks is not an array" };
  const keys: Jwk[] = [];
  for (const k of raw) {
    const jwk = keyOf(k);
    if (jwk) keys.push(jwk);
  }
  return keys.length > 0 ? { keys } : { error: "Jwks doesn't have any valid public key" };
}

const str = (o: Record<string, unknown>, k: string): string | undefined =>
  typeof o[k] === "string" ? o[k] as string : undefined;

function keyOf(k: unknown): Jwk | undefined {
  if (typeof k !== "object" || k === null) return undefined;
  const o = k as Record<string, unknown>;
  const kty = str(o, "kty");
  if (kty === undefined) return undefined;
  try {
    let key: KeyObject;
    if (kty === "oct") {
      // jwks.cc extractJwkFromJwkOct: `k` must be base64url and decode to a non-empty key
      // (Buffer would decode "" or "!!" to an empty key, which any token can be MACed with).
      const secret = str(o, "k");
      if (secret === undefined || !/^[A-Za-z0-9_-]+={0,2}$/.test(secret)) return undefined;
      const bytes = Buffer.from(secret, "base64url");
      if (bytes.length === 0) return undefined;
      key = createSecretKey(bytes);
    } else if (kty === "RSA" || kty === "EC" || kty === "OKP") {
      // Only the public members: a private JWK in a JWKS must not become a signing key here.
      const pub: Record<string, string> = { kty };
      for (const f of ["n", "e", "crv", "x", "y"]) {
        const val = str(o, f);
        if (val !== undefined) pub[f] = val;
      }
      key = createPublicKey({ key: pub, format: "jwk" });
    } else {
      return undefined;
    }
    return { kty, kid: str(o, "kid"), alg: str(o, "alg"), crv: str(o, "crv"), key };
  } catch {
    return undefined; // Envoy skips a key it cannot parse; the set fails only if none is left
  }
}

/** istiod's stand-in for a JWKS it could not fetch: every token then fails. */
export const FAKE_JWKS: Jwks = Object.freeze([
  Object.freeze({ kty: "RSA", kid: "abc", alg: undefined, crv: undefined, key: undefined }),
]);

/** Envoy's remote_jwks default cache_duration. */
export const JWKS_REFRESH_MS = 600_000;
/** A failed fetch is retried this often (the fake set serves meanwhile). */
export const JWKS_RETRY_MS = 30_000;
const MAX_JWKS_BYTES = 1 << 20;

/** How often a fetched set is refreshed, and a failed fetch retried. */
export interface JwksTiming {
  readonly refreshMs: number;
  readonly retryMs: number;
}
const DEFAULT_TIMING: JwksTiming = { refreshMs: JWKS_REFRESH_MS, retryMs: JWKS_RETRY_MS };

/** The current key set of one jwtRule: inline, or fetched and kept fresh. */
export class JwksSource {
  private current: Jwks;
  private timer: ReturnType<typeof setTimeout> | undefined;
  private closed = false;

  private constructor(
    readonly uri: string | undefined,
    private readonly timeoutMs: number,
    initial: Jwks,
    private readonly timing: JwksTiming = DEFAULT_TIMING,
  ) {
    this.current = initial;
  }

  static inline(keys: Jwks): JwksSource {
    return new JwksSource(undefined, 0, keys);
  }

  /** Fetches once (bounded by `timeoutMs`) before resolving; never rejects. */
  static async remote(
    uri: string,
    timeoutMs: number,
    timing: JwksTiming = DEFAULT_TIMING,
  ): Promise<JwksSource> {
    const s = new JwksSource(uri, timeoutMs, FAKE_JWKS, timing);
    await s.refresh();
    return s;
  }

  get keys(): Jwks {
    return this.current;
  }

  close(): void {
    this.closed = true;
    if (this.timer !== undefined) clearTimeout(this.timer);
    this.timer = undefined;
  }

  private async refresh(): Promise<void> {
    let ok = false;
    try {
      const keys = await fetchJwks(this.uri!, this.timeoutMs);
      this.current = keys;
      ok = true;
    } catch (e) {
      // Istio: a JWKS that cannot be fetched is never "no check": the last good set keeps
      // serving, and without one the fake set rejects every token.
      log.warn("jwks fetch failed", { uri: this.uri, error: String((e as Error)?.message ?? e) });
    }
    if (this.closed) return;
    this.timer = setTimeout(() => {
      this.refresh().catch(() => {}); // refresh never rejects; the handler is for the rule
    }, ok ? this.timing.refreshMs : this.timing.retryMs);
    unref(this.timer);
  }
}

async function fetchJwks(uri: string, timeoutMs: number): Promise<Jwks> {
  const res = await fetch(uri, { signal: AbortSignal.timeout(timeoutMs), redirect: "follow" });
  if (!res.ok) {
    await res.body?.cancel();
    throw new Error(`HTTP ${res.status}`);
  }
  const text = await boundedText(res, MAX_JWKS_BYTES);
  const parsed = parseJwks(text);
  if ("error" in parsed) throw new Error(parsed.error);
  return parsed.keys;
}

/** The body as text, read no further than `maxBytes` (a huge answer is cut off and fails, never
 * buffered whole). */
async function boundedText(res: Response, maxBytes: number): Promise<string> {
  const declared = Number(res.headers.get("content-length") ?? "0");
  if (declared > maxBytes || !res.body) {
    await res.body?.cancel();
    if (declared > maxBytes) throw new Error("JWKS larger than 1 MiB");
    return "";
  }
  const reader = res.body.getReader();
  const parts: Uint8Array[] = [];
  let size = 0;
  for (;;) {
    const { done, value } = await reader.read();
    if (done) break;
    size += value.byteLength;
    if (size > maxBytes) {
      await reader.cancel();
      throw new Error("JWKS larger than 1 MiB");
    }
    parts.push(value);
  }
  return Buffer.concat(parts).toString("utf8");
}

/** A refresh timer never keeps the process alive (Node/Bun: unref; Deno: Deno.unrefTimer). */
function unref(t: ReturnType<typeof setTimeout>): void {
  (t as { unref?: () => void }).unref?.();
  const d = (globalThis as { Deno?: { unrefTimer(id: number): void } }).Deno;
  if (d && typeof t === "number") d.unrefTimer(t);
}
