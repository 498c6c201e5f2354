/**
 * The host side of `weft:filter/host@0.1.0`, independent of how the guest is bound (direct
 * canonical ABI or jco bindings). One bridge per guest instance; `begin` points it at the request
 * a hook runs for. Calls are synchronous, so an instance never sees two requests at once.
 */
import type { HeaderMap, HttpRequestContext, HttpResponseContext } from "../../core/mod.ts";
import { logger, type LogLevel } from "../../core/mod.ts";
import { filterMetrics } from "../filter_metrics.ts";

const guestLog = logger("filter.guest");
const LEVELS: readonly LogLevel[] = ["trace", "debug", "info", "warn", "error"];
const STATE_PREFIX = "filter_state.";

type PropertyGetter = (
  req: HttpRequestContext,
  res: HttpResponseContext | undefined,
) => string | undefined;

/** The properties of wasm/filter.wit (besides filter.name and filter_state.*). */
const PROPERTIES: ReadonlyMap<string, PropertyGetter> = new Map<string, PropertyGetter>([
  ["request.path", (r) => r.path],
  ["request.url_path", (r) => {
    const q = r.path.indexOf("?");
    return q < 0 ? r.path : r.path.slice(0, q);
  }],
  ["request.method", (r) => r.method],
  ["request.host", (r) => r.authority],
  ["request.scheme", (r) => r.scheme],
  ["request.protocol", (r) => r.protocol],
  ["request.id", (r) => r.requestId],
  ["source.address", (r) => r.peer.sourceAddress],
  ["source.port", (r) => String(r.peer.sourcePort)],
  ["source.principal", (r) => r.peer.sourcePrincipal],
  ["source.namespace", (r) => r.peer.sourceNamespace],
  ["destination.address", (r) => r.peer.destinationAddress],
  ["destination.port", (r) => String(r.peer.destinationPort)],
  ["destination.service", (r) => r.peer.destinationService],
  ["destination.workload", (r) => r.peer.destinationWorkload],
  ["destination.namespace", (r) => r.peer.destinationNamespace],
  ["destination.principal", (r) => r.peer.destinationPrincipal],
  ["connection.mtls", (r) => r.peer.mtls ? "true" : "false"],
  ["direction", (r) => r.direction],
  ["response.code", (_r, res) => res ? String(res.status) : undefined],
  // The JWT the host's jwt_authn filter verified (never a header: a client cannot forge it).
  ["request.auth.principal", (r) => r.requestAuth?.principal],
  ["request.auth.audiences", (r) => r.requestAuth && listText(r.requestAuth.audiences)],
  ["request.auth.presenter", (r) => r.requestAuth?.presenter],
]);

const CLAIMS_PREFIX = "request.auth.claims[";

/** A list attribute: its strings separated by NUL (a NUL cannot be in an HTTP field anyway). */
function listText(l: readonly unknown[]): string | undefined {
  const strs = l.filter((x): x is string => typeof x === "string");
  return strs.length > 0 ? strs.join("\0") : undefined;
}

/** Top-level claims istiod always has Envoy's jwt_authn split on spaces before authorization
 * reads them (`normalize_payload_in_metadata.space_delimited_claims`, pilot/pkg/security/authn
 * buildSpaceDelimitedClaims; RequestAuthentication's own `spaceDelimitedClaims` is refused). */
const SPACE_DELIMITED = new Set(["permission", "scope"]);

/** `request.auth.claims[a][b]`: a string claim, or a list claim's strings (Istio matches string
 * and list-of-string claims; other types never match). A space-delimited claim's words are a list,
 * as Envoy's AuthenticatorImpl::setPayloadMetadata makes them (empty words skipped; no word at
 * all leaves the string). */
function claimOf(req: HttpRequestContext, name: string): string | undefined {
  const auth = req.requestAuth;
  if (!auth) return undefined;
  let v: unknown = auth.claims;
  let depth = 0;
  let first = "";
  for (const m of name.slice(CLAIMS_PREFIX.length - 1).matchAll(/\[([^\]]+)\]/g)) {
    if (typeof v !== "object" || v === null || Array.isArray(v)) return undefined;
    if (depth++ === 0) first = m[1]!;
    v = Object.hasOwn(v, m[1]!) ? (v as Record<string, unknown>)[m[1]!] : undefined;
  }
  if (typeof v === "string") {
    if (depth !== 1 || !SPACE_DELIMITED.has(first)) return v;
    const words = v.split(" ").filter((w) => w !== "");
    return words.length > 0 ? words.join("\0") : v;
  }
  return Array.isArray(v) ? listText(v) : undefined;
}

/** 0 = request headers, 1 = response headers, 2/3 = request/response trailers (0.3.0; the WIT
 * enum order). */
export type WhichMap = 0 | 1 | 2 | 3;

/** Thrown by the sandbox check when a call overruns its budget. */
export class CallTimeout extends Error {
  constructor(readonly budgetMs: number) {
    super(`filter call exceeded its ${budgetMs} ms budget`);
  }
}

export class HostBridge {
  private req: HttpRequestContext | undefined;
  private res: HttpResponseContext | undefined;
  /** The trailers a trailers hook is shown (set for that call only). */
  trailers: HeaderMap | undefined;
  deadline = Infinity;
  budgetMs = 50;

  constructor(readonly filterName: string, private readonly fuel: number) {}

  /** `startMs`: performance.now() at call start; 0 = start the clock lazily at the first fuel
   * check (saves a clock read per call; the budget then starts at most one fuel period late,
   * i.e. after ~20k guest loop iterations/calls, microseconds). */
  begin(
    req: HttpRequestContext | undefined,
    res: HttpResponseContext | undefined,
    budgetMs: number,
    startMs: number = performance.now(),
  ): void {
    this.req = req;
    this.res = res;
    this.budgetMs = budgetMs;
    this.deadline = startMs === 0 ? 0 : startMs + budgetMs;
  }

  end(): void {
    this.req = undefined;
    this.res = undefined;
    this.trailers = undefined;
    this.deadline = Infinity;
  }

  /** The sandbox's `weft:sandbox.check`: trap past the deadline, else refill the fuel. */
  readonly check = (): number => {
    const now = performance.now();
    if (this.deadline === 0) this.deadline = now + this.budgetMs;
    else if (now > this.deadline) throw new CallTimeout(this.budgetMs);
    return this.fuel;
  };

  private map(which: WhichMap): HeaderMap | undefined {
    if (which === 0) return this.req?.requestHeaders;
    if (which === 1) return this.res?.responseHeaders;
    // Each trailer map only in its own direction's hook (`res` is set for response hooks).
    return (which === 3) === (this.res !== undefined) ? this.trailers : undefined;
  }

  // `lowered`: the caller already lower-cased `name` (the direct binding caches that per name).
  getHeader(which: WhichMap, name: string, lowered = false): string | undefined {
    return this.map(which)?.get(lowered ? name : name.toLowerCase());
  }
  setHeader(which: WhichMap, name: string, value: string, lowered = false): void {
    this.map(which)?.set(lowered ? name : name.toLowerCase(), value);
  }
  addHeader(which: WhichMap, name: string, value: string, lowered = false): void {
    this.map(which)?.add(lowered ? name : name.toLowerCase(), value);
  }
  removeHeader(which: WhichMap, name: string, lowered = false): void {
    this.map(which)?.remove(lowered ? name : name.toLowerCase());
  }
  /** "name\0value\0" repeated. */
  getHeaders(which: WhichMap): string {
    const m = this.map(which);
    if (!m) return "";
    let out = "";
    for (const [k, v] of m.entries()) out += `${k}\0${v}\0`;
    return out;
  }

  getProperty(name: string): string | undefined {
    if (name === "filter.name") return this.filterName;
    const req = this.req;
    if (!req) return undefined;
    // One Map lookup (the name's hash is cached on the string) instead of a 20-way string switch.
    const get = PROPERTIES.get(name);
    if (get !== undefined) return get(req, this.res);
    if (name.startsWith(CLAIMS_PREFIX)) return claimOf(req, name);
    if (name.startsWith(STATE_PREFIX)) {
      const v = req.filterState.get(name.slice(STATE_PREFIX.length));
      return typeof v === "string" ? v : undefined;
    }
    return undefined;
  }

  /** `getProperty(name)` for one fixed name, resolved once (callers cache it per name). */
  property(name: string): () => string | undefined {
    if (name === "filter.name") return () => this.filterName;
    const get = PROPERTIES.get(name);
    if (get === undefined) return () => this.getProperty(name);
    return () => this.req === undefined ? undefined : get(this.req, this.res);
  }

  setState(key: string, value: string): void {
    this.req?.filterState.set(key, value);
  }

  log(level: number, message: string): void {
    const l = LEVELS[level] ?? "info";
    if (guestLog.enabled(l)) {
      guestLog.log(l, "filter log", {
        filter: this.filterName,
        message,
        requestId: this.req?.requestId,
      });
    }
  }

  counterAdd(name: string, delta: bigint): void {
    filterMetrics.guestCounter.inc({ filter: this.filterName, name }, Number(delta));
  }
  /** counter-add for one name, label key built once (callers cache it per name). */
  counter(name: string): (by: number) => void {
    return filterMetrics.guestCounter.bind({ filter: this.filterName, name });
  }

  nowNs(): bigint {
    return BigInt(Date.now()) * 1_000_000n;
  }
  monotonicNs(): bigint {
    return BigInt(Math.round((performance.timeOrigin + performance.now()) * 1e6));
  }
  randomU64(): bigint {
    const a = new BigUint64Array(1);
    crypto.getRandomValues(a);
    return a[0]!;
  }
}
