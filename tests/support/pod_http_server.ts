// deno-lint-ignore-file no-console
/**
 * An unmodified HTTP server for pod namespaces (node:http, runs on Bun or Deno): answers every
 * request with `<name> saw <peer ip>` so tests see which source address reached the app.
 * Usage: pod_http_server.ts <name> <ip> <port>; prints "listening" once bound.
 */
import { createServer } from "node:http";
import process from "node:process";

const [name, host, port] = process.argv.slice(2);
const server = createServer((req, res) => {
  const body = `${name} saw ${req.socket.remoteAddress}\n`;
  res.writeHead(200, { "content-type": "text/plain", "content-length": Buffer.byteLength(body) });
  res.end(body);
});
server.keepAliveTimeout = 30_000;
server.listen(Number(port), host, () => console.log("listening"));
process.on("SIGTERM", () => process.exit(0));
