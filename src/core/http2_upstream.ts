/**
 * HTTP/2 to the upstream (h2c, e.g. gRPC services) on weft's own HTTP/2: one multiplexed session
 * per route, dialled through the proxy's `dialUpstream`, so h2 downstream streams keep HTTP/2 end
 * to end, including trailers (grpc-status). Used when HttpProxyOptions.upstreamProtocol is "h2".
 */
import type { Duplex } from "node:stream";
import type { HttpRequestContext, LocalResponse, RouteChoice } from "./filter_api.ts";
import type { FilterChain } from "./filter_chain.ts";
import { HeaderList } from "./header_map.ts";
import { H2Session, type H2Stream } from "./h2/mod.ts";

const HOP_BY_HOP = new Set([
  "connection",
  "keep-alive",
  "transfer-encoding",
  "upgrade",
  "proxy-connection",
  "host",
]);

export class H2UpstreamPool {
  private readonly sessions = new Map<string, Promise<H2Session>>();

  constructor(private readonly dial: (route?: RouteChoice) => Promise<Duplex>) {}

  session(route: RouteChoice | undefined): Promise<H2Session> {
    const key = route ? `${route.service}|${route.subset ?? ""}` : "";
    const s = this.sessions.get(key);
    if (s) {
      return s.then((x) => {
        if (x.usable) return x;
        if (this.sessions.get(key) === s) this.sessions.delete(key);
        return this.session(route);
      });
    }
    const made = this.dial(route).then((sock) => {
      const session = new H2Session(sock, "client", {
        streamWindowBytes: 256 * 1024,
        connectionWindowBytes: 1 << 20,
        maxFrameBytes: 16384,
      });
      const drop = (): void => {
        if (this.sessions.get(key) === made) this.sessions.delete(key);
      };
      session.onGoaway(drop);
      session.closed.then(drop);
      return session;
    });
    made.catch(() => {
      if (this.sessions.get(key) === made) this.sessions.delete(key);
    });
    this.sessions.set(key, made);
    return made;
  }

  close(): void {
    for (const s of this.sessions.values()) s.then((x) => x.destroy(), () => {});
    this.sessions.clear();
  }
}

const upstreamReset: LocalResponse = {
  status: 503,
  headers: [],
  body: "upstream reset",
  details: "upstream_reset_before_response_started",
};

/** Outcome for the caller's accounting: the status sent downstream. */
export async function forwardH2(
  pool: H2UpstreamPool,
  stream: H2Stream,
  ctx: HttpRequestContext,
  route: RouteChoice | undefined,
  chain: FilterChain,
  respondLocal: (r: LocalResponse) => void,
): Promise<number> {
  let session: H2Session;
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
  const h: [string, string][] = [
    [":method", ctx.method],
    [":scheme", ctx.scheme],
    [":authority", ctx.authority],
    [":path", ctx.path],
  ];
  for (const [k, v] of ctx.requestHeaders.entries()) if (!HOP_BY_HOP.has(k)) h.push([k, v]);
  const requestEnded = stream.readableEnded || (stream.remoteEnded && stream.readableLength === 0);
  let up: H2Stream;
  let response: Promise<{ status: number }>;
  try {
    ({ stream: up, response } = session.request(h, requestEnded));
  } catch {
    respondLocal(upstreamReset);
    return 503;
  }
  // The request body streams at once (gRPC servers answer after it; flow control applies).
  if (!requestEnded) stream.pipe(up);
  const gone = new Promise<never>((_, reject) =>
    stream.once("close", () => reject(new Error("downstream closed")))
  );
  gone.catch(() => {});
  let status: number;
  try {
    response.catch(() => {}); // answered by the race below, or moot once the downstream left
    ({ status } = await Promise.race([response, gone]));
  } catch {
    up.destroy();
    respondLocal(upstreamReset);
    return 503;
  }
  const resHeaders = new HeaderList();
  for (const [k, v] of up.headerList) if (!k.startsWith(":")) resHeaders.add(k, v);
  const resCtx = { status, responseHeaders: resHeaders, responseBody: undefined };
  const rv = await chain.onResponse(ctx, resCtx);
  if (rv.kind === "respond") {
    up.destroy();
    respondLocal(rv.response);
    return rv.response.status;
  }
  const out = resCtx.responseHeaders.entries().filter(([k]) => !HOP_BY_HOP.has(k));
  const noBody = up.remoteEnded && up.readableLength === 0 && !up.trailers;
  stream.respond(resCtx.status, out, noBody);
  if (noBody) return resCtx.status;
  up.pipe(stream, { end: false });
  await new Promise<void>((resolve) => {
    up.once("end", () => {
      if (up.trailers) stream.outTrailers = up.trailers.filter(([k]) => !k.startsWith(":"));
      stream.end();
      resolve();
    });
    up.once("close", () => {
      if (!up.readableEnded) stream.destroy();
      resolve();
    });
    stream.once("close", () => {
      up.destroy();
      resolve();
    });
  });
  return resCtx.status;
}
