/**
 * One HTTP/1.1 request, on its own connection (no agent), from a client workload's address to a
 * service VIP captured by a weft node, as the route tests send it: the reply's status, headers,
 * body (UTF-8) and the elapsed time.
 */
import { type IncomingHttpHeaders, request } from "node:http";
import { Buffer } from "node:buffer";

export interface VipReply {
  status: number;
  headers: IncomingHttpHeaders;
  body: string;
  ms: number;
}

export interface VipCallOptions {
  /** GET, or POST when there is a body. */
  method?: string;
  headers?: Record<string, string>;
  /** Sent with its content-length; bytes go in 64 KiB writes, as a client uploading a file. */
  body?: string | Uint8Array;
  port?: number;
}

export function callVip(
  host: string,
  path: string,
  from: string,
  opts: VipCallOptions = {},
): Promise<VipReply> {
  const { body, port = 80 } = opts;
  const length = body === undefined ? {} : {
    "content-length": String(typeof body === "string" ? Buffer.byteLength(body) : body.length),
  };
  return new Promise((resolve, reject) => {
    const t0 = performance.now();
    const req = request(
      {
        host,
        port,
        path,
        method: opts.method ?? (body === undefined ? "GET" : "POST"),
        headers: { ...opts.headers, ...length },
        localAddress: from,
        agent: false,
      },
      (res) => {
        let text = "";
        res.setEncoding("utf8");
        res.on("data", (c: string) => text += c);
        res.on("end", () =>
          resolve({
            status: res.statusCode ?? 0,
            headers: res.headers,
            body: text,
            ms: performance.now() - t0,
          }));
      },
    );
    req.on("error", reject);
    if (typeof body === "string") req.write(body);
    else if (body) {
      for (let i = 0; i < body.length; i += 65536) req.write(body.subarray(i, i + 65536));
    }
    req.end();
  });
}
