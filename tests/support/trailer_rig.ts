/**
 * A raw TCP upstream that records every byte it receives and answers each request (content-length
 * or chunked) with a chunked response carrying trailers, behind weft's HttpProxy on a real TCP
 * listener; and helpers to read chunked trailer sections.
 */
import net from "node:net";
import type { Buffer } from "node:buffer";
import { FilterChain, type HttpFilter, HttpProxy } from "../../src/core/mod.ts";
import { TEST_PEER } from "./filter_context.ts";

export const RESPONSE =
  "HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\ntrailer: x-checksum\r\n\r\n" +
  "2\r\nok\r\n0\r\nx-checksum: abc\r\ncontent-length: 99\r\nX-Extra:  v w \r\n\r\n";

/** Index just past a complete chunked message in `s` (head + body + trailers), or -1. */
export function chunkedEnd(s: string): number {
  const head = s.indexOf("\r\n\r\n");
  if (head < 0) return -1;
  const last = s.indexOf("0\r\n", head + 4) === head + 4 ? head + 2 : s.indexOf("\r\n0\r\n", head);
  if (last < 0) return -1;
  const end = s.indexOf("\r\n\r\n", last + 2);
  return end < 0 ? -1 : end + 4;
}

/** End of a chunked or Content-Length request in `s`, or -1. */
function requestEnd(s: string): number {
  const head = s.indexOf("\r\n\r\n");
  const cl = /\r\ncontent-length: *(\d+)\r\n/i.exec(s.slice(0, head + 2));
  if (head < 0 || !cl) return chunkedEnd(s);
  const end = head + 4 + Number(cl[1]);
  return s.length >= end ? end : -1;
}

async function listen(s: net.Server): Promise<number> {
  await new Promise<void>((r) => s.listen(0, "127.0.0.1", r));
  return (s.address() as net.AddressInfo).port;
}

export async function startRig(filters: HttpFilter[] = []) {
  let received = "";
  const socks = new Set<net.Socket>();
  const upstream = net.createServer((s) => {
    socks.add(s);
    s.on("close", () => socks.delete(s));
    s.on("error", () => {});
    let buf = "";
    s.on("data", (c: Buffer) => {
      buf += c.toString("latin1");
      received += c.toString("latin1");
      const end = requestEnd(buf);
      if (end >= 0) {
        buf = buf.slice(end);
        s.write(RESPONSE);
      }
    });
  });
  const upPort = await listen(upstream);
  const proxy = new HttpProxy({
    chain: () => new FilterChain(filters),
    direction: "inbound",
    dialUpstream: () =>
      new Promise((ok, fail) => {
        const s = net.connect(upPort, "127.0.0.1");
        s.once("connect", () => ok(s));
        s.once("error", fail);
      }),
  });
  const front = net.createServer((s) => {
    socks.add(s);
    s.on("close", () => socks.delete(s));
    s.on("error", () => {});
    proxy.handle(s, TEST_PEER).catch(() => {});
  });
  const port = await listen(front);
  return {
    port,
    received: () => received,
    close: async () => {
      proxy.close();
      for (const s of socks) s.destroy();
      await new Promise((r) => front.close(r));
      await new Promise((r) => upstream.close(r));
    },
  };
}

export function trailerSection(msg: string): string {
  const head = msg.indexOf("\r\n\r\n");
  const last = msg.indexOf("\r\n0\r\n", head);
  return msg.slice(last + 5, chunkedEnd(msg));
}

export function trailerMap(msg: string): Map<string, string> {
  const lines = trailerSection(msg).split("\r\n").filter((l) => l !== "");
  return new Map(lines.map((l) => {
    const c = l.indexOf(":");
    return [l.slice(0, c).toLowerCase(), l.slice(c + 1).trim()];
  }));
}

/** Sends `req`, reads one chunked response (or until close / 3 s). */
export async function exchange(port: number, req: string): Promise<string> {
  const s = net.connect(port, "127.0.0.1");
  s.on("error", () => {});
  let text = "";
  let timer: ReturnType<typeof setTimeout> | undefined;
  await new Promise<void>((done) => {
    timer = setTimeout(done, 3000);
    s.on("data", (c: Buffer) => {
      text += c.toString("latin1");
      if (chunkedEnd(text) >= 0) done();
    });
    s.on("close", () => done());
    s.write(req);
  });
  clearTimeout(timer);
  s.destroy();
  return text;
}
