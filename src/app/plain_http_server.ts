/**
 * The readiness (15021: `/healthz/ready`, `/healthz/live`) and metrics (15020:
 * `/stats/prometheus`, `/metrics`) listeners, answered on node:net by a small HTTP/1.1 responder
 * instead of the runtime's HTTP server. A kubelet probes the one and Prometheus scrapes the other
 * on every node for the node's whole life: on Bun, answering them through Bun.serve maps that
 * server's code and buffers in every node (−0.3 to −0.8 MB idle RSS over xDS without it,
 * docs/MEASUREMENTS.md), while node:net is the data path's own socket layer. The admin listener
 * (localhost, used by hand) stays on hono.
 *
 * It reads request heads only (a request announcing a body is answered and its connection
 * closed), bounded in size and time, answers GET and HEAD of its fixed paths, 404 other paths and
 * methods, 400 a malformed head, 431 an oversized one.
 */
import * as net from "node:net";
import { Buffer } from "node:buffer";
import type { HttpServerHandle } from "../core/mod.ts";
import { metrics, splitHostPort } from "../core/mod.ts";
import type { AdminSource } from "./admin.ts";

/** A probe's head is a few hundred bytes; kubelet sends ~150. */
const MAX_HEAD = 8 * 1024;
/** An idle or trickling connection is closed after this (a probe takes milliseconds). */
const IDLE_MS = 10_000;
const END = Buffer.from("\r\n\r\n");

export interface Answer {
  readonly status: number;
  readonly reason: string;
  readonly body: string;
  /** Default `text/plain; charset=UTF-8`. */
  readonly contentType?: string;
}

/** The answer for a path (without its query), or undefined for 404. */
export type Routes = (path: string) => Answer | undefined;

const BAD: Answer = { status: 400, reason: "Bad Request", body: "Bad Request\n" };
const NOT_FOUND: Answer = { status: 404, reason: "Not Found", body: "404 Not Found" };

/** What `head` (the request head without its final CRLF CRLF) gets, and whether the connection may
 * stay open after. */
export function answerHead(
  head: string,
  routes: Routes,
): { answer: Answer; head: boolean; keepAlive: boolean } {
  const lines = head.split("\r\n");
  const parts = lines[0]!.split(" ");
  const [method, target, version] = parts;
  if (
    parts.length !== 3 || !method || !target || !/^HTTP\/1\.[01]$/.test(version!) ||
    !/^[!#$%&'*+.^_`|~0-9A-Za-z-]+$/.test(method)
  ) {
    return { answer: BAD, head: false, keepAlive: false };
  }
  let keepAlive = version === "HTTP/1.1";
  let hasBody = false;
  for (let i = 1; i < lines.length; i++) {
    const l = lines[i]!;
    const colon = l.indexOf(":");
    // An obsolete line fold, a line without a name or with a bare CR/LF: not a request to answer.
    if (colon <= 0 || l[0] === " " || l[0] === "\t" || /[\r\n]/.test(l)) {
      return { answer: BAD, head: false, keepAlive: false };
    }
    const name = l.slice(0, colon).toLowerCase();
    const value = l.slice(colon + 1).trim().toLowerCase();
    if (name === "connection") {
      if (value.includes("close")) keepAlive = false;
      else if (value.includes("keep-alive")) keepAlive = true;
    } else if (name === "transfer-encoding" || (name === "content-length" && value !== "0")) {
      hasBody = true;
    }
  }
  if (hasBody) keepAlive = false; // the body is not read: the connection cannot be reused
  const path = target.split("?", 1)[0];
  const isHead = method === "HEAD";
  if (method !== "GET" && !isHead) return { answer: NOT_FOUND, head: false, keepAlive };
  return { answer: routes(path!) ?? NOT_FOUND, head: isHead, keepAlive };
}

/** 15021: liveness (the process answers) and readiness (AdminSource.readiness). */
export function readinessRoutes(src: Pick<AdminSource, "readiness">): Routes {
  return (path) => {
    if (path === "/healthz/live") return { status: 200, reason: "OK", body: "live\n" };
    if (path !== "/healthz/ready") return undefined;
    const r = src.readiness();
    return r.ready ? { status: 200, reason: "OK", body: "ready\n" } : {
      status: 503,
      reason: "Service Unavailable",
      body: `not ready: ${r.waitingFor.join(", ")}\n`,
    };
  };
}

const PROMETHEUS_TEXT = "text/plain; version=0.0.4; charset=utf-8";

/** 15020: the Prometheus text exposition of every metric. */
export function metricsRoutes(): Routes {
  return (path) =>
    path === "/stats/prometheus" || path === "/metrics"
      ? { status: 200, reason: "OK", body: metrics.render(), contentType: PROMETHEUS_TEXT }
      : undefined;
}

function responseBytes(a: Answer, head: boolean, keepAlive: boolean): Buffer {
  const body = Buffer.from(a.body);
  return Buffer.concat([
    Buffer.from(
      `HTTP/1.1 ${a.status} ${a.reason}\r\n` +
        `content-type: ${a.contentType ?? "text/plain; charset=UTF-8"}\r\n` +
        `content-length: ${body.length}\r\nconnection: ${keepAlive ? "keep-alive" : "close"}\r\n` +
        `date: ${new Date().toUTCString()}\r\n\r\n`,
    ),
    head ? Buffer.alloc(0) : body,
  ]);
}

function serveConnection(sock: net.Socket, routes: Routes): void {
  let buf: Buffer = Buffer.alloc(0);
  sock.setTimeout(IDLE_MS, () => sock.destroy());
  sock.on("error", () => sock.destroy());
  sock.on("data", (chunk: Buffer) => {
    buf = buf.length ? Buffer.concat([buf, chunk]) : chunk;
    for (;;) {
      const end = buf.indexOf(END);
      if (end < 0) {
        if (buf.length > MAX_HEAD) {
          sock.end(responseBytes(
            { status: 431, reason: "Request Header Fields Too Large", body: "" },
            false,
            false,
          ));
          sock.removeAllListeners("data");
        }
        return;
      }
      if (end > MAX_HEAD) {
        sock.end(responseBytes(
          { status: 431, reason: "Request Header Fields Too Large", body: "" },
          false,
          false,
        ));
        sock.removeAllListeners("data");
        return;
      }
      // A leading empty line before a request line is allowed (RFC 9112 §2.2).
      let start = 0;
      while (buf[start] === 0x0d && buf[start + 1] === 0x0a) start += 2;
      const head = buf.subarray(start, end).toString("latin1");
      buf = buf.subarray(end + END.length);
      const r = answerHead(head, routes);
      const bytes = responseBytes(r.answer, r.head, r.keepAlive);
      if (!r.keepAlive) {
        sock.end(bytes);
        sock.removeAllListeners("data");
        return;
      }
      sock.write(bytes);
    }
  });
}

/** Listen on `address` (host:port) and answer `routes`; resolves once bound. */
export function servePlainHttp(address: string, routes: Routes): Promise<HttpServerHandle> {
  const hp = splitHostPort(address);
  if (!hp) return Promise.reject(new Error(`Cannot serve: bad address "${address}"`));
  const { host, port } = hp;
  return new Promise((resolve, reject) => {
    const server = net.createServer((sock) => serveConnection(sock, routes));
    const conns = new Set<net.Socket>();
    server.on("connection", (s: net.Socket) => {
      conns.add(s);
      s.once("close", () => conns.delete(s));
    });
    server.once("error", reject);
    server.listen({ host, port }, () => {
      server.off("error", reject);
      server.on("error", () => {});
      const a = server.address() as net.AddressInfo;
      resolve({
        hostname: a.address,
        port: a.port,
        close: () =>
          new Promise<void>((done) => {
            for (const s of conns) s.destroy();
            server.close(() => done());
          }),
      });
    });
  });
}
