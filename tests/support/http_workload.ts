/** An HTTP/1.1 workload for L7 tests: answers JSON {version, method, path, headers, body}. */
import { createServer, type Server } from "node:http";
import { Buffer } from "node:buffer";

export interface HttpWorkload {
  readonly host: string;
  readonly port: number;
  hits(): number;
  close(): Promise<void>;
}

export function startHttpWorkload(
  host: string,
  port: number,
  version: string,
): Promise<HttpWorkload> {
  let hits = 0;
  const server: Server = createServer((req, res) => {
    hits++;
    const chunks: Buffer[] = [];
    req.on("data", (c: Buffer) => chunks.push(c));
    req.on("end", () => {
      res.setHeader("content-type", "application/json");
      const body = Buffer.concat(chunks).toString();
      res.end(
        JSON.stringify({ version, method: req.method, path: req.url, headers: req.headers, body }),
      );
    });
  });
  return new Promise((resolve, reject) => {
    server.once("error", reject);
    server.listen(port, host, () =>
      resolve({
        host,
        port,
        hits: () => hits,
        close: () =>
          new Promise<void>((r) => {
            server.closeAllConnections();
            server.close(() => r());
          }),
      }));
  });
}
