/**
 * The ext_authz filter (Envoy's envoy.filters.http.ext_authz behind Istio's CUSTOM shadow RBAC),
 * native to the filter host: first in the inbound chain (W12), it runs the gate (the CUSTOM
 * rules, config.ts) and, for a request the rules match, asks the provider (authorizer.ts):
 *  - ok: the authorizer's allowed headers are set on the upstream request, the request goes on
 *    to DENY/ALLOW authorization like any other (A7), and the headers meant for the client are
 *    added to the response;
 *  - denied: the authorizer's status, headers and body go to the client (details
 *    `ext_authz_denied`; gRPC requests get the status mapped to grpc-status);
 *  - error (unreachable, timeout, 5xx, garbage): `statusOnError` (default 403, details
 *    `ext_authz_error`), or the request goes on when the provider is `failOpen`.
 * Results are counted in `weft_ext_authz_total{filter, result}` with Envoy's ext_authz stat
 * names (ok, denied, error, failure_mode_allowed; disabled: the gate did not match), and
 * `bad_provider` for a workload whose CUSTOM policies name no usable provider (all denied).
 */
import type {
  FailPolicy,
  FilterOutcome,
  HttpFilter,
  HttpRequestContext,
  HttpResponseContext,
  LocalResponse,
} from "../../core/mod.ts";
import { httpToGrpc, logger, metrics } from "../../core/mod.ts";
import { type Authorizer, HOP, type Verdict } from "./authorizer.ts";
import type { ExtAuthzFilterConfig } from "./config.ts";

const log = logger("ext_authz");
const results = metrics.counter(
  "weft_ext_authz_total",
  "External authorization (AuthorizationPolicy CUSTOM) checks by result: ok, denied, error, " +
    "failure_mode_allowed, disabled (no CUSTOM rule matched), bad_provider.",
  ["filter", "result"],
);
const CONTINUE: FilterOutcome = Object.freeze({ action: "continue" });
/** filterState key of the headers the client gets on allow. */
const ON_ALLOW = "ext_authz.downstream";

const isGrpc = (ctx: HttpRequestContext): boolean =>
  (ctx.requestHeaders.get("content-type") ?? "").startsWith("application/grpc");

function reply(
  ctx: HttpRequestContext,
  status: number,
  headers: readonly (readonly [string, string])[],
  body: string | Uint8Array,
  details: string,
): FilterOutcome {
  const response: LocalResponse = isGrpc(ctx)
    ? { status, headers, body, details, grpcStatus: httpToGrpc(status) }
    : { status, headers, body, details };
  return { action: "respond", response };
}

export class ExtAuthzFilter implements HttpFilter {
  readonly failPolicy: FailPolicy = "FAIL_CLOSE";
  readonly wantsRequestBody: boolean;
  readonly wantsResponseBody = false;
  private warned = false;

  constructor(
    readonly name: string,
    private readonly cfg: ExtAuthzFilterConfig,
    private readonly gate: HttpFilter | undefined,
    private readonly authorizer: Authorizer | undefined,
  ) {
    this.wantsRequestBody = cfg.provider?.includeRequestBodyInCheck !== undefined;
    if (cfg.error) {
      log.warn("ext_authz provider unusable: every request is denied", {
        filter: name,
        error: cfg.error,
      });
    }
  }

  onRequest(ctx: HttpRequestContext): FilterOutcome | Promise<FilterOutcome> {
    if (!this.gate || !this.authorizer) {
      results.inc({ filter: this.name, result: "bad_provider" });
      return reply(
        ctx,
        403,
        [],
        "RBAC: access denied",
        "rbac_access_denied_matched_policy[default-deny-all-due-to-bad-CUSTOM-action]",
      );
    }
    const g = this.gate.onRequest(ctx);
    return g instanceof Promise ? g.then((o) => this.gated(ctx, o)) : this.gated(ctx, g);
  }

  private gated(ctx: HttpRequestContext, g: FilterOutcome): FilterOutcome | Promise<FilterOutcome> {
    if (g.action === "failed") return g;
    if (g.action !== "respond") {
      results.inc({ filter: this.name, result: "disabled" });
      return CONTINUE;
    }
    const b = this.cfg.provider!.includeRequestBodyInCheck;
    let body: Uint8Array | undefined;
    if (b && ctx.requestBody && ctx.requestBody.length > 0) {
      body = ctx.requestBody;
      if (body.length > b.maxRequestBytes) {
        if (!b.allowPartialMessage) {
          return reply(ctx, 413, [], "Payload Too Large", "ext_authz_request_too_large");
        }
        body = body.subarray(0, b.maxRequestBytes);
      }
    }
    return this.authorizer!.check(ctx, body).then((v) => this.apply(ctx, v));
  }

  private apply(ctx: HttpRequestContext, v: Verdict): FilterOutcome {
    if (v.kind === "ok") {
      results.inc({ filter: this.name, result: "ok" });
      const h = ctx.requestHeaders;
      // Envoy: no pseudo-header nor Host is removed; weft also keeps framing and hop-by-hop
      // fields out of the authorizer's reach (its HTTP answers never carry them; a gRPC one may).
      for (const k of v.removeUpstream) {
        if (!k.startsWith(":") && k !== "host" && !HOP.has(k)) h.remove(k);
      }
      for (const x of v.upstream) {
        if (x.key === "" || x.key.startsWith(":") || HOP.has(x.key)) continue;
        if (x.append) h.add(x.key, x.value);
        else h.set(x.key, x.value);
      }
      const down = v.downstream.filter(([k]) => !HOP.has(k));
      if (down.length > 0) ctx.filterState.set(ON_ALLOW, down);
      return CONTINUE;
    }
    if (v.kind === "denied") {
      results.inc({ filter: this.name, result: "denied" });
      return reply(ctx, v.status, v.headers, v.body, "ext_authz_denied");
    }
    const p = this.cfg.provider!;
    if (!this.warned) {
      this.warned = true; // once per generation: a down authorizer must not flood the log
      log.warn("ext_authz check failed", { filter: this.name, error: v.why, failOpen: p.failOpen });
    }
    results.inc({ filter: this.name, result: "error" });
    if (p.failOpen) {
      results.inc({ filter: this.name, result: "failure_mode_allowed" });
      return CONTINUE;
    }
    return reply(ctx, p.statusOnError ?? 403, [], "", "ext_authz_error");
  }

  onResponse(ctx: HttpRequestContext, res: HttpResponseContext): FilterOutcome {
    const add = ctx.filterState.get(ON_ALLOW) as readonly (readonly [string, string])[] | undefined;
    if (add) { for (const [k, v] of add) res.responseHeaders.add(k, v); }
    return CONTINUE;
  }

  onDone(ctx: HttpRequestContext): void {
    this.gate?.onDone(ctx);
  }

  close(): void {
    this.gate?.close?.();
    this.authorizer?.close();
  }
}
