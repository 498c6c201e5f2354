/**
 * Calls to one ext_authz provider (MeshConfig envoyExtAuthzHttp / envoyExtAuthzGrpc) and what
 * they answer, as Envoy's ext_authz clients decide it: `ok` (with the headers the upstream and
 * the client get), `denied` (the reply the client gets), or `error` (the call failed, timed out,
 * answered 5xx or garbage). Bounded: one deadline per check (the provider's timeout), answers
 * capped in size; nothing an authorizer sends escapes as an exception.
 *  - HTTP (Envoy's raw HTTP client): the request's method, pathPrefix + path, Host, Authorization
 *    and the headers `includeRequestHeadersInCheck` names, `includeAdditionalHeadersInCheck`,
 *    Content-Length 0 (or the body's length with `includeRequestBodyInCheck`). 200 allows; the
 *    answer's headers `headersToUpstreamOnAllow` names go upstream (and
 *    `x-envoy-auth-headers-to-remove` lists request headers to drop); any other status but a 5xx
 *    denies with the authorizer's status, body and headers (`headersToDownstreamOnDeny`, or all
 *    but Host when that list is empty); a 5xx is an error.
 *  - gRPC: `envoy.service.auth.v3.Authorization/Check` on weft's gRPC client (check_proto.ts).
 */
import type { Duplex } from "node:stream";
import { connect } from "node:net";
import { isIP } from "node:net";
import { GrpcChannel, httpExchange } from "../../core/mod.ts";
import type { HttpRequestContext, ServiceDial } from "../../core/mod.ts";
import type { ExtAuthzProvider } from "../../istio/mod.ts";
import {
  type CheckResult,
  decodeCheckResponse,
  encodeCheckRequest,
  type HeaderOption,
} from "./check_proto.ts";

export type Verdict =
  | {
    readonly kind: "ok";
    /** Set on the upstream request (overwriting), or added when `append`. */
    readonly upstream: readonly HeaderOption[];
    readonly removeUpstream: readonly string[];
    /** Added to the client's response. */
    readonly downstream: readonly (readonly [string, string])[];
  }
  | {
    readonly kind: "denied";
    readonly status: number;
    readonly headers: readonly (readonly [string, string])[];
    readonly body: Uint8Array | string;
  }
  | { readonly kind: "error"; readonly why: string; readonly timeout: boolean };

const MAX_ANSWER_BYTES = 1 << 20;
const CHECK_PATH = "/envoy.service.auth.v3.Authorization/Check";
/** Framing and hop-by-hop fields never copied from an authorizer's answer, nor set or removed on
 * the request or response by it (HTTP or gRPC): weft frames each hop itself, and a pooled
 * upstream connection must not be desynchronised by what one check answered. */
export const HOP: ReadonlySet<string> = new Set([
  "content-length",
  "transfer-encoding",
  "connection",
  "keep-alive",
  "upgrade",
  "te",
  "trailer",
  "proxy-connection",
]);

/** Istio's header patterns: exact, `x-*` prefix, `*-id` suffix; names lower-case. */
export function headerMatcher(patterns: readonly string[]): (name: string) => boolean {
  const exact = new Set(patterns.filter((p) => !p.startsWith("*") && !p.endsWith("*")));
  const prefix = patterns.filter((p) => p.endsWith("*")).map((p) => p.slice(0, -1));
  const suffix = patterns.filter((p) => p.startsWith("*")).map((p) => p.slice(1));
  return (n) =>
    exact.has(n) || prefix.some((p) => n.startsWith(p)) || suffix.some((s) => n.endsWith(s));
}

function serviceHost(p: ExtAuthzProvider): string {
  const slash = p.service.indexOf("/");
  return slash < 0 ? p.service : p.service.slice(slash + 1);
}

/** TCP to an IP literal (an authorizer on loopback), else the mesh dialer to the service. */
function dialer(
  p: ExtAuthzProvider,
  dialService: ServiceDial | undefined,
): (local: string | undefined) => Promise<Duplex> {
  const host = serviceHost(p);
  if (isIP(host) !== 0) {
    return () =>
      new Promise((resolve, reject) => {
        const s = connect({ host, port: p.port });
        s.once("error", reject);
        s.once("connect", () => {
          s.off("error", reject);
          resolve(s);
        });
      });
  }
  return (local) =>
    dialService
      ? dialService(host, p.port, local)
      : Promise.reject(new Error("no mesh dialer wired"));
}

export class Authorizer {
  readonly matchRequest: (name: string) => boolean;
  private readonly toUpstream: (name: string) => boolean;
  private readonly onDeny: ((name: string) => boolean) | undefined;
  private readonly onAllow: (name: string) => boolean;
  private readonly dial: (local: string | undefined) => Promise<Duplex>;
  private readonly channels = new Map<string, GrpcChannel>();

  constructor(readonly provider: ExtAuthzProvider, dialService: ServiceDial | undefined) {
    this.matchRequest = headerMatcher(provider.includeRequestHeadersInCheck);
    this.toUpstream = headerMatcher(provider.headersToUpstreamOnAllow);
    this.onDeny = provider.headersToDownstreamOnDeny.length
      ? headerMatcher([
        ...provider.headersToDownstreamOnDeny,
        "content-length",
        "www-authenticate",
        "location",
      ])
      : undefined;
    this.onAllow = headerMatcher(provider.headersToDownstreamOnAllow);
    this.dial = dialer(provider, dialService);
  }

  /** One check of `ctx` (its buffered body when the provider includes it); never rejects. */
  check(ctx: HttpRequestContext, body: Uint8Array | undefined): Promise<Verdict> {
    const local = ctx.peer.destinationAddress;
    let timer: ReturnType<typeof setTimeout> | undefined;
    const ac = new AbortController();
    const deadline = new Promise<Verdict>((resolve) => {
      timer = setTimeout(() => {
        ac.abort();
        resolve({ kind: "error", why: "timed out", timeout: true });
      }, this.provider.timeoutMs);
    });
    const call = this.provider.kind === "http"
      ? this.checkHttp(ctx, body, local, ac.signal)
      : this.checkGrpc(ctx, body, local, ac.signal);
    const safe = call.catch((e): Verdict => ({
      kind: "error",
      why: e instanceof Error ? e.message : String(e),
      timeout: false,
    }));
    return Promise.race([safe, deadline]).finally(() => clearTimeout(timer));
  }

  private async checkHttp(
    ctx: HttpRequestContext,
    body: Uint8Array | undefined,
    local: string,
    signal: AbortSignal,
  ): Promise<Verdict> {
    const p = this.provider;
    const headers: [string, string][] = [["host", ctx.authority]];
    for (const [k, v] of ctx.requestHeaders.entries()) {
      if (k === "host" || k === "content-length" || k.startsWith(":")) continue;
      if (k === "authorization" || this.matchRequest(k)) headers.push([k, v]);
    }
    for (const [k, v] of Object.entries(p.includeAdditionalHeadersInCheck)) {
      for (let i = headers.length - 1; i >= 0; i--) if (headers[i]![0] === k) headers.splice(i, 1);
      headers.push([k, v]);
    }
    const stream = await this.dial(local);
    const abort = () => stream.destroy(new Error("check aborted"));
    if (signal.aborted) abort();
    signal.addEventListener("abort", abort, { once: true });
    let res;
    try {
      res = await httpExchange(stream, {
        method: ctx.method,
        path: p.pathPrefix + ctx.path,
        headers,
        body: body ?? new Uint8Array(0),
        alwaysLength: true, // Envoy sends Content-Length: 0 with an empty check
      }, MAX_ANSWER_BYTES);
    } finally {
      signal.removeEventListener("abort", abort);
    }
    if (res.status >= 500) {
      return { kind: "error", why: `authorizer answered ${res.status}`, timeout: false };
    }
    if (res.status === 200) {
      const remove = res.headers.filter(([k]) => k === "x-envoy-auth-headers-to-remove")
        .flatMap(([, v]) => v.split(",").map((x) => x.trim().toLowerCase()).filter(Boolean));
      const rest = res.headers.filter(([k]) =>
        k !== "x-envoy-auth-headers-to-remove" && !HOP.has(k)
      );
      return {
        kind: "ok",
        upstream: rest.filter(([k]) => this.toUpstream(k)).map(([key, value]) => ({
          key,
          value,
          append: false,
        })),
        removeUpstream: remove,
        downstream: rest.filter(([k]) => this.onAllow(k)),
      };
    }
    const keep = this.onDeny;
    return {
      kind: "denied",
      status: res.status,
      headers: res.headers.filter(([k]) =>
        !HOP.has(k) && k !== "x-envoy-auth-headers-to-remove" && (keep ? keep(k) : k !== "host")
      ),
      body: res.body,
    };
  }

  private channel(local: string): GrpcChannel {
    let c = this.channels.get(local);
    if (!c) {
      const host = serviceHost(this.provider);
      c = new GrpcChannel({
        connect: () => this.dial(local),
        authority: `${host}:${this.provider.port}`,
        scheme: "http",
        session: {
          streamWindowBytes: 1 << 20,
          connectionWindowBytes: 4 << 20,
          maxFrameBytes: 16384,
        },
      });
      this.channels.set(local, c);
    }
    return c;
  }

  private async checkGrpc(
    ctx: HttpRequestContext,
    body: Uint8Array | undefined,
    local: string,
    signal: AbortSignal,
  ): Promise<Verdict> {
    const headers = new Map<string, string>([
      [":authority", ctx.authority],
      [":method", ctx.method],
      [":path", ctx.path],
      [":scheme", ctx.scheme],
    ]);
    for (const [k, v] of ctx.requestHeaders.entries()) {
      const had = headers.get(k);
      headers.set(k, had === undefined ? v : `${had},${v}`);
    }
    const cl = ctx.requestHeaders.get("content-length");
    const msg = encodeCheckRequest({
      source: {
        address: ctx.peer.sourceAddress,
        port: ctx.peer.sourcePort,
        principal: ctx.peer.sourcePrincipal ?? "",
      },
      destination: {
        address: ctx.peer.destinationAddress,
        port: ctx.peer.destinationPort,
        principal: ctx.peer.destinationPrincipal ?? "",
      },
      timeMs: Date.now(),
      http: {
        id: ctx.requestId,
        method: ctx.method,
        headers: [...headers],
        path: ctx.path,
        host: ctx.authority,
        scheme: ctx.scheme,
        protocol: ctx.protocol,
        size: body ? body.length : cl !== undefined && /^\d+$/.test(cl) ? Number(cl) : -1,
        body,
        packAsBytes: this.provider.includeRequestBodyInCheck?.packAsBytes ?? false,
      },
    });
    const ch = this.channel(local);
    const reply = await new Promise<Uint8Array>((resolve, reject) => {
      let answer: Uint8Array | undefined;
      const call = ch.call({
        path: CHECK_PATH,
        deadlineMs: this.provider.timeoutMs,
        maxMessageBytes: MAX_ANSWER_BYTES,
      }, {
        onMessage: (m) => {
          if (answer === undefined) answer = m;
          else call.cancel("a unary call got a second response message");
        },
        onClose: (st) => {
          signal.removeEventListener("abort", cancel);
          if (st.code !== 0) reject(new Error(`grpc status ${st.code}: ${st.message}`));
          else if (answer === undefined) reject(new Error("no CheckResponse"));
          else resolve(answer);
        },
      });
      const cancel = () => call.cancel("check timed out");
      signal.addEventListener("abort", cancel, { once: true });
      call.send(msg);
      call.end();
    });
    return verdictOf(decodeCheckResponse(reply));
  }

  close(): void {
    for (const c of this.channels.values()) c.close();
    this.channels.clear();
  }
}

function verdictOf(r: CheckResult): Verdict {
  if (r.ok) {
    return {
      kind: "ok",
      upstream: r.headers,
      removeUpstream: r.headersToRemove,
      downstream: r.responseHeadersToAdd.map((h) => [h.key, h.value] as const),
    };
  }
  return {
    kind: "denied",
    status: r.httpStatus || 403,
    headers: r.headers.filter((h) => !HOP.has(h.key)).map((h) => [h.key, h.value] as const),
    body: r.body,
  };
}
