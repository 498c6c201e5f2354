/** One request over an h2c (prior knowledge) node:http2 session: body in DATA pieces, optional
 * request trailers; collects the response head, body and trailers. */
import http2 from "node:http2";

export interface H2Reply {
  status: number;
  headers: http2.IncomingHttpHeaders;
  body: string;
  trailers: http2.IncomingHttpHeaders;
}

export function h2Call(
  session: http2.ClientHttp2Session,
  path: string,
  opts: {
    method?: string;
    headers?: Record<string, string>;
    body?: string[];
    trailers?: Record<string, string>;
  } = {},
): Promise<H2Reply> {
  return new Promise((resolve, reject) => {
    const req = session.request(
      { ":path": path, ":method": opts.method ?? "POST", ...opts.headers },
      opts.trailers ? { waitForTrailers: true } : {},
    );
    if (opts.trailers) req.on("wantTrailers", () => req.sendTrailers(opts.trailers!));
    let head: http2.IncomingHttpHeaders = {};
    let trailers: http2.IncomingHttpHeaders = {};
    let body = "";
    req.on("response", (h) => (head = h));
    req.on("trailers", (t) => (trailers = t));
    req.setEncoding("utf8");
    req.on("data", (c: string) => (body += c));
    req.on(
      "end",
      () => resolve({ status: Number(head[":status"]), headers: head, body, trailers }),
    );
    req.on("error", reject);
    // A reset without an error event (RST_STREAM CANCEL/NO_ERROR before the end): settle anyway.
    req.on("close", () => reject(new Error(`stream closed, rstCode ${req.rstCode}`)));
    for (const piece of opts.body ?? []) req.write(piece);
    req.end();
  });
}

export function closeSession(s: http2.ClientHttp2Session): Promise<void> {
  return new Promise((r) => s.close(() => r()));
}
