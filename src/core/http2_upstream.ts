/**
 * HTTP/2 to the upstream (h2c, e.g. gRPC services): one multiplexed session per route, dialled
 * through the proxy's `dialUpstream`, so h2 downstream streams keep HTTP/2 end to end, including
 * trailers (grpc-status). Used when HttpProxyOptions.upstreamProtocol is "h2".
 */
import http2 from "node:http2";
import type { Duplex } from "node:stream";
import type { HttpRequestContext, LocalResponse, RouteChoice } from "./filter_api.ts";
import type { FilterChain } from "./filter_chain.ts";
import { HeaderList } from "./header_map.ts";

const HOP_BY_HOP = new Set([
  "connection",
  "keep-alive",
  "transfer-encoding",
  "upgrade",
  "proxy-connection",
  "host",
]);

export class H2UpstreamPool {
  private readonly sessions = new Map<string, Promise<http2.ClientHttp2Session>>();

  constructor(private readonly dial: (route?: RouteChoice) => Promise<Duplex>) {}

  session(route: RouteChoice | undefined): Promise<http2.ClientHttp2Session> {
    const key = route ? `${route.service}|${route.subset ?? ""}` : "";
    let s = this.sessions.get(key);
    if (!s) {
      s = this.dial(route).then((sock) => {
        const session = http2.connect("http://upstream", { createConnection: () => sock });
        const drop = (): void => {
          this.sessions.delete(key);
        };
        session.on("close", drop);
        session.on("goaway", drop);
        session.on("error", drop);
        return session;
      });
      s.catch(() => this.sessions.delete(key));
      this.sessions.set(key, s);
    }
    return s;
  }

  close(): void {
    for (const s of this.sessions.values()) s.then((x) => x.destroy(), () => {});
    this.sessions.clear();
  }
}

/** Outcome for the caller's accounting: the status sent downstream. */
export async function forwardH2(
  pool: H2UpstreamPool,
  stream: http2.ServerHttp2Stream,
  ctx: HttpRequestContext,
  route: RouteChoice | undefined,
  chain: FilterChain,
  respondLocal: (r: LocalResponse) => void,
): Promise<number> {
  let session: http2.ClientHttp2Session;
  try {
    session = await pool.session(route);
  } catch {
    respondLocal({
      status: 503,
      headers: [],
      body: "upstream connect error",
      details: "upstream_connect_failure",
    });
    return 503;
  }
  const h: http2.OutgoingHttpHeaders = {
    ":method": ctx.method,
    ":path": ctx.path,
    ":authority": ctx.authority,
    ":scheme": ctx.scheme,
  };
  for (const [k, v] of ctx.requestHeaders.entries()) {
    if (HOP_BY_HOP.has(k)) continue;
    const prev = h[k];
    h[k] = prev === undefined ? v : Array.isArray(prev) ? [...prev, v] : [String(prev), v];
  }
  const up = session.request(h);
  // Listen before any await: small responses deliver their trailers in the same read.
  let trailers: http2.IncomingHttpHeaders = {};
  up.on("trailers", (t) => (trailers = t));
  stream.pipe(up);
  const response = await new Promise<http2.IncomingHttpHeaders | undefined>((resolve) => {
    up.once("response", resolve);
    up.once("error", () => resolve(undefined));
    up.once("close", () => resolve(undefined));
  });
  if (!response) {
    respondLocal({
      status: 503,
      headers: [],
      body: "upstream reset",
      details: "upstream_reset_before_response_started",
    });
    return 503;
  }
  const status = Number(response[":status"] ?? 502);
  const resHeaders = new HeaderList();
  for (const [k, v] of Object.entries(response)) {
    if (k.startsWith(":") || v === undefined) continue;
    for (const one of Array.isArray(v) ? v : [v]) resHeaders.add(k, String(one));
  }
  const resCtx = { status, responseHeaders: resHeaders, responseBody: undefined };
  const rv = await chain.onResponse(ctx, resCtx);
  if (rv.kind === "respond") {
    up.close(http2.constants.NGHTTP2_CANCEL);
    respondLocal(rv.response);
    return rv.response.status;
  }
  const out: http2.OutgoingHttpHeaders = { ":status": resCtx.status };
  for (const [k, v] of resCtx.responseHeaders.entries()) {
    if (HOP_BY_HOP.has(k)) continue;
    const prev = out[k];
    out[k] = prev === undefined ? v : Array.isArray(prev) ? [...prev, v] : [String(prev), v];
  }
  stream.respond(out, { waitForTrailers: true });
  stream.on("wantTrailers", () => {
    const t: http2.OutgoingHttpHeaders = {};
    for (const [k, v] of Object.entries(trailers)) {
      if (!k.startsWith(":") && v !== undefined) t[k] = v;
    }
    stream.sendTrailers(t);
  });
  up.pipe(stream);
  await new Promise<void>((r) => {
    stream.once("close", () => r());
    up.once("error", () => {
      if (!stream.destroyed) stream.close(http2.constants.NGHTTP2_INTERNAL_ERROR);
      r();
    });
  });
  return resCtx.status;
}
