/**
 * Ceiling for a custom HTTP/2 CONNECT framer on this runtime: a node:tls mTLS forwarder pair that
 * adds a 9-byte frame header per chunk (like HTTP/2 DATA frames) and strips it on the far side,
 * with backpressure both ways, but no HPACK, streams or flow-control windows. Usage:
 *   deno run -A bench/l4_tls_pair.ts <dir> a|b   (same addresses and certs as bench/l4_node.ts)
 * Node A forwards VIP:5201 only (one tunnel per TCP connection, no multiplexing); a third and
 * fourth argument pick another port pair (`... a 80 8080`: the latency rows' nginx).
 */
import * as net from "node:net";
import * as tls from "node:tls";
import { readFileSync } from "node:fs";
import process from "node:process";
import type { Duplex } from "node:stream";
import { IP, PORT } from "./l4_peers.ts";

const [dir, side, vipPort, upPort] = process.argv.slice(2) as [string, "a" | "b", string?, string?];
const read = (f: string): string => readFileSync(`${dir}/${f}`, "utf8");

/** src → dst, prefixing each chunk with a 9-byte DATA-like header. */
function frameInto(src: Duplex, dst: Duplex): void {
  src.on("data", (c: Uint8Array) => {
    const h = new Uint8Array(9);
    h[0] = c.length >> 16;
    h[1] = (c.length >> 8) & 0xff;
    h[2] = c.length & 0xff;
    dst.write(h);
    if (!dst.write(c)) {
      src.pause();
      dst.once("drain", () => src.resume());
    }
  });
  src.on("end", () => dst.end());
}

/** src → dst, removing the 9-byte headers (handles headers split across reads). */
function unframeInto(src: Duplex, dst: Duplex): void {
  let need = 0;
  let hdr = new Uint8Array(0);
  src.on("data", (c: Uint8Array) => {
    let o = 0;
    while (o < c.length) {
      if (need === 0) {
        const take = Math.min(9 - hdr.length, c.length - o);
        const n = new Uint8Array(hdr.length + take);
        n.set(hdr);
        n.set(c.subarray(o, o + take), hdr.length);
        hdr = n;
        o += take;
        if (hdr.length === 9) {
          need = (hdr[0]! << 16) | (hdr[1]! << 8) | hdr[2]!;
          hdr = new Uint8Array(0);
        }
        continue;
      }
      const take = Math.min(need, c.length - o);
      need -= take;
      if (!dst.write(c.subarray(o, o + take))) {
        src.pause();
        dst.once("drain", () => src.resume());
      }
      o += take;
    }
  });
  src.on("end", () => dst.end());
}

const mtls = { ca: read("ca.pem"), minVersion: "TLSv1.3" as const };
if (side === "b") {
  tls.createServer({
    ...mtls,
    cert: read("server.pem"),
    key: read("server.key"),
    requestCert: true,
    rejectUnauthorized: true,
  }, (t) => {
    t.setNoDelay(true);
    const port = Number(upPort ?? PORT.iperf);
    const up = net.connect({ host: IP.server, port, allowHalfOpen: true, noDelay: true });
    unframeInto(t, up);
    frameInto(up, t);
    up.on("error", () => t.destroy());
    t.on("error", () => up.destroy());
  }).listen(15008, IP.server, () => process.stdout.write('{"msg":"ready"}\n'));
} else {
  net.createServer({ allowHalfOpen: true, noDelay: true }, (sock) => {
    const t = tls.connect({
      ...mtls,
      host: IP.server,
      port: 15008,
      cert: read("client.pem"),
      key: read("client.key"),
      checkServerIdentity: () => undefined,
    });
    t.setNoDelay(true);
    frameInto(sock, t);
    unframeInto(t, sock);
    sock.on("error", () => t.destroy());
    t.on("error", () => sock.destroy());
  }).listen(Number(vipPort ?? PORT.iperf), IP.vip, () => process.stdout.write('{"msg":"ready"}\n'));
}
process.on("SIGTERM", () => process.exit(0));
