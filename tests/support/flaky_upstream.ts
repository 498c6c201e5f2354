/**
 * An HTTP upstream that fails on request, for the retry and timeout tests: /slow?ms=N answers
 * after N ms; other paths fail `x-fail` times per `x-key` (status `x-status`, 503 unless given,
 * a reset for `reset`, no answer for `stall`), then answer 200 with the try number, the body's
 * length and its SHA-256; `tries` counts the tries per key.
 */
import { createServer, type Server } from "node:http";
import { createHash } from "node:crypto";
import { Buffer } from "node:buffer";

export function startFlakyUpstream(
  host: string,
  port: number,
): Promise<{ tries: Map<string, number>; close(): Promise<void> }> {
  const tries = new Map<string, number>();
  const server: Server = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on("data", (c: Buffer) => chunks.push(c));
    req.on("end", () => {
      const url = new URL(req.url ?? "/", "http://x");
      if (url.pathname === "/slow") {
        const t = setTimeout(() => res.end("slow done"), Number(url.searchParams.get("ms")));
        res.on("close", () => clearTimeout(t));
        return;
      }
      const key = String(req.headers["x-key"] ?? "");
      const n = (tries.get(key) ?? 0) + 1;
      tries.set(key, n);
      const fail = Number(req.headers["x-fail"] ?? 0);
      if (n <= fail) {
        const status = String(req.headers["x-status"] ?? "503");
        if (status === "reset") return void req.socket.destroy();
        if (status === "stall") return; // never answers (per-try timeout)
        res.statusCode = Number(status);
        return void res.end(`failed try ${n}`);
      }
      const body = Buffer.concat(chunks);
      res.end(JSON.stringify({
        try: n,
        bytes: body.length,
        sha: createHash("sha256").update(body).digest("hex"),
      }));
    });
  });
  return new Promise((resolve, reject) => {
    server.once("error", reject);
    server.listen(port, host, () =>
      resolve({
        tries,
        close: () =>
          new Promise<void>((r) => {
            server.closeAllConnections();
            server.close(() => r());
          }),
      }));
  });
}
