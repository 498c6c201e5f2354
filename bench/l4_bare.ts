/**
 * The floor under weft's numbers: a bare node:http2 CONNECT forwarder pair over mTLS, with none
 * of weft's logic (no routing, authz, pool, metrics, access log): node A takes TCP on the VIP and
 * opens one CONNECT stream per connection; node B answers 200 and pipes to the target. Usage:
 *   deno run -A bench/l4_bare.ts <dir> a|b   (same addresses and certs as bench/l4_node.ts)
 */
import * as http2 from "node:http2";
import * as net from "node:net";
import { readFileSync } from "node:fs";
import process from "node:process";
import { IP, PORT } from "./l4_peers.ts";

const [dir, side] = process.argv.slice(2) as [string, "a" | "b"];
const read = (f: string): string => readFileSync(`${dir}/${f}`, "utf8");
const settings = { initialWindowSize: 1 << 20 };

if (side === "b") {
  const server = http2.createSecureServer({
    cert: read("server.pem"),
    key: read("server.key"),
    ca: read("ca.pem"),
    requestCert: true,
    rejectUnauthorized: true,
    settings,
  });
  server.on("stream", (stream: http2.ServerHttp2Stream, headers) => {
    const [host, port] = String(headers[":authority"]).split(":");
    const up = net.connect({ host, port: Number(port), allowHalfOpen: true }, () => {
      stream.respond({ ":status": 200 });
      stream.pipe(up);
      up.pipe(stream);
    });
    up.on("error", () => stream.destroy());
    stream.on("error", () => up.destroy());
  });
  server.listen(15008, IP.server, () => process.stdout.write('{"msg":"ready"}\n'));
} else {
  const session = http2.connect(`https://${IP.server}:15008`, {
    cert: read("client.pem"),
    key: read("client.key"),
    ca: read("ca.pem"),
    checkServerIdentity: () => undefined,
    settings,
  } as http2.SecureClientSessionOptions);
  const targets: Record<number, number> = { [PORT.iperf]: PORT.iperf, 80: PORT.http };
  let pending = Object.keys(targets).length;
  for (const [vipPort, target] of Object.entries(targets)) {
    net.createServer({ allowHalfOpen: true }, (sock) => {
      const stream = session.request({
        ":method": "CONNECT",
        ":authority": `${IP.server}:${target}`,
      });
      stream.on("response", () => {
        sock.pipe(stream);
        stream.pipe(sock);
      });
      stream.on("error", () => sock.destroy());
      sock.on("error", () => stream.destroy());
    }).listen(Number(vipPort), IP.vip, () => {
      if (--pending === 0) process.stdout.write('{"msg":"ready"}\n');
    });
  }
}
process.on("SIGTERM", () => process.exit(0));
