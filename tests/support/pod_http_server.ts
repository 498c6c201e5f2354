// deno-lint-ignore-file no-console
/**
 * An unmodified HTTP server for pod namespaces (node:http, runs on Bun or Deno): answers every
 * request with `<name> saw <peer ip>` so tests see which source address reached the app.
 * A UDP echo on the same port number shows that datagrams (DNS) are not captured.
 * Usage: pod_http_server.ts <name> <ip> <port>; prints "listening" once both are bound.
 */
import { createServer } from "node:http";
import { createSocket } from "node:dgram";
import process from "node:process";

const [name, host, port] = process.argv.slice(2);
const server = createServer((req, res) => {
  const body = `${name} saw ${req.socket.remoteAddress}\n`;
  res.writeHead(200, { "content-type": "text/plain", "content-length": Buffer.byteLength(body) });
  res.end(body);
});
server.keepAliveTimeout = 30_000;
const udp = createSocket(host?.includes(":") ? "udp6" : "udp4");
udp.on("message", (msg, from) => udp.send(msg, from.port, from.address));
udp.bind(
  Number(port),
  host,
  () => server.listen(Number(port), host, () => console.log("listening")),
);
process.on("SIGTERM", () => process.exit(0));
