/**
 * The node agent's own HTTP listeners — admin (15000), metrics (15020: `/stats/prometheus`,
 * `/metrics`) and readiness (15021: `/healthz/ready`, `/healthz/live`) — answered on node:net by a
 * small HTTP/1.1 server instead of the runtime's (Bun.serve / Deno.serve). A kubelet probes one
 * and Prometheus scrapes another on every node for the node's whole life, and the admin listener
 * mostly sits idle: on Bun, merely listening with Bun.serve and answering through it maps that
 * server's code and buffers in every node (−0.4 to −0.9 MB idle RSS, docs/MEASUREMENTS.md), while
 * node:net is the data path's own socket layer. The admin routes stay a hono app: `fetchHandler`
 * hands it a `Request` built from the head and writes its `Response` back.
 *
 * It reads request heads only (a request announcing a body is answered and its connection
 * closed; no admin route reads one), bounded in size and time, one request at a time per
 * connection (pipelined requests are answered in order); a malformed head is 400, an oversized
 * one 431.
 */
import * as net from "node:net";
import { Buffer } from "node:buffer";
import type { HttpServerHandle } from "../core/mod.ts";
import { checkRequestLine, metrics, parseHead, splitHostPort, STATUS_TEXT } from "../core/mod.ts";
import type { AdminSource } from "./admin.ts";

/** A probe's head is a few hundred bytes; kubelet sends ~150, curl ~100. */
const MAX_HEAD = 8 * 1024;
/** An idle or trickling connection is closed after this (a probe takes milliseconds). */
const IDLE_MS = 10_000;
const END = Buffer.from("\r\n\r\n");

/** A request head as read: method, request target, and its fields in order. */
export interface RequestHead {
  readonly method: string;
  readonly target: string;
  readonly headers: [string, string][];
  /** Whether the connection may carry another request after this one's answer. */
  readonly keepAlive: boolean;
}

export interface Answer {
  readonly status: number;
  readonly body: string | Uint8Array;
  /** Default `text/plain; charset=UTF-8`. */
  readonly contentType?: string;
  /** Other response fields (framing fields here are ignored: the server sets its own). */
  readonly headers?: readonly [string, string][];
}

export type Handler = (req: RequestHead) => Answer | Promise<Answer>;

/** The answer for a GET or HEAD of a path (without its query), or undefined for 404. */
export type Routes = (path: string) => Answer | undefined;

const BAD: Answer = { status: 400, body: "Bad Request\n" };
const NOT_FOUND: Answer = { status: 404, body: "404 Not Found" };
const TOO_LARGE: Answer = { status: 431, body: "" };
const NOT_IMPLEMENTED: Answer = { status: 501, body: "Not Implemented\n" };
/** `raw` (a request head with its final CRLF CRLF) read as a request by the data path's strict
 * head parser (src/core/http1_codec.ts), or undefined when it is malformed. */
export function parseRequestHead(raw: Buffer): RequestHead | undefined {
  let head;
  try {
    head = parseHead(raw);
    checkRequestLine(head.line, raw);
  } catch {
    return undefined;
  }
  const [method, target, version] = head.line;
  let keepAlive = version === "HTTP/1.1";
  let hasBody = false;
  for (const [name, value] of head.headers) {
    const lower = name.toLowerCase();
    const v = value.toLowerCase();
    if (lower === "connection") {
      if (v.includes("close")) keepAlive = false;
      else if (v.includes("keep-alive")) keepAlive = true;
    } else if (lower === "transfer-encoding" || (lower === "content-length" && v !== "0")) {
      hasBody = true;
    }
  }
  // The body is not read: the connection cannot be reused after it.
  return { method, target, headers: head.headers, keepAlive: keepAlive && !hasBody };
}

/** GET and HEAD of fixed paths; other methods and paths 404. */
export function routesHandler(routes: Routes): Handler {
  return (req) => {
    if (req.method !== "GET" && req.method !== "HEAD") return NOT_FOUND;
    return routes(req.target.split("?", 1)[0]!) ?? NOT_FOUND;
  };
}

/** 15021: liveness (the process answers) and readiness (AdminSource.readiness). */
export function readinessRoutes(src: Pick<AdminSource, "readiness">): Routes {
  return (path) => {
    if (path === "/healthz/live") return { status: 200, body: "live\n" };
    if (path !== "/healthz/ready") return undefined;
    const r = src.readiness();
    return r.ready
      ? { status: 200, body: "ready\n" }
      : { status: 503, body: `not ready: ${r.waitingFor.join(", ")}\n` };
  };
}

const PROMETHEUS_TEXT = "text/plain; version=0.0.4; charset=utf-8";

/** 15020: the Prometheus text exposition of every metric. */
export function metricsRoutes(): Routes {
  return (path) =>
    path === "/stats/prometheus" || path === "/metrics"
      ? { status: 200, body: metrics.render(), contentType: PROMETHEUS_TEXT }
      : undefined;
}

/** A fetch-style app (hono's `app.fetch`) behind this server: the request target must be a path
 * (origin form); a head the Fetch API refuses (a forbidden method, a field value it rejects) is
 * 400. `fetch` must not reject (admin.ts guardedFetch). */
export function fetchHandler(fetch: (req: Request) => Promise<Response>): Handler {
  return async (h) => {
    if (!h.target.startsWith("/")) return BAD;
    let req: Request;
    try {
      req = new Request(new URL(h.target, "http://weft.invalid"), {
        method: h.method,
        headers: h.headers,
      });
    } catch {
      return BAD;
    }
    // The app must see the method as sent (the admin guard lets GET through): the Fetch API
    // upper-cases six methods (`get` is not GET, RFC 9110 §9.1) and Bun's Request makes an unknown
    // one GET (found by bench/fuzz.ts: `BREW /config_dump` was served). Any other method is 501.
    if (req.method !== h.method) return NOT_IMPLEMENTED;
    const res = await fetch(req);
    const headers: [string, string][] = [];
    res.headers.forEach((v, k) => headers.push([k, v]));
    return { status: res.status, body: new Uint8Array(await res.arrayBuffer()), headers };
  };
}

const FRAMING = new Set([
  "content-length",
  "transfer-encoding",
  "connection",
  "date",
  "keep-alive",
]);

function responseBytes(a: Answer, head: boolean, keepAlive: boolean): Buffer {
  const body = typeof a.body === "string"
    ? Buffer.from(a.body)
    : Buffer.from(a.body.buffer, a.body.byteOffset, a.body.byteLength);
  let fields = "";
  let type = a.contentType ?? "text/plain; charset=UTF-8";
  for (const [k, v] of a.headers ?? []) {
    const lower = k.toLowerCase();
    if (lower === "content-type") type = v;
    else if (!FRAMING.has(lower)) fields += `${k}: ${v}\r\n`;
  }
  return Buffer.concat([
    Buffer.from(
      `HTTP/1.1 ${a.status} ${STATUS_TEXT[a.status] ?? "Unknown"}\r\ncontent-type: ${type}\r\n` +
        fields +
        `content-length: ${body.length}\r\nconnection: ${keepAlive ? "keep-alive" : "close"}\r\n` +
        `date: ${new Date().toUTCString()}\r\n\r\n`,
      "latin1",
    ),
    head ? Buffer.alloc(0) : body,
  ]);
}

/** The server's connections, and whether it is closing (answers then end their connection). */
interface Conns {
  readonly all: Set<net.Socket>;
  /** Connections with a request being answered. */
  readonly active: Set<net.Socket>;
  closing: boolean;
}

function serveConnection(sock: net.Socket, handle: Handler, conns: Conns): void {
  let buf: Buffer = Buffer.alloc(0);
  let busy = false;
  let done = false;
  const finish = (bytes: Buffer): void => {
    done = true;
    sock.end(bytes);
  };
  sock.setTimeout(IDLE_MS, () => sock.destroy());
  sock.on("error", () => sock.destroy());
  sock.on("close", () => {
    done = true;
  });
  // One request at a time: the next head is read once this one's answer is written.
  const pump = async (): Promise<void> => {
    busy = true;
    conns.active.add(sock);
    try {
      while (!done) {
        const end = buf.indexOf(END);
        if (end < 0 ? buf.length > MAX_HEAD : end > MAX_HEAD) {
          return finish(responseBytes(TOO_LARGE, false, false));
        }
        if (end < 0) return;
        // A leading empty line before a request line is allowed (RFC 9112 §2.2).
        let start = 0;
        while (buf[start] === 0x0d && buf[start + 1] === 0x0a) start += 2;
        const req = parseRequestHead(buf.subarray(start, end + END.length));
        buf = buf.subarray(end + END.length);
        if (!req) return finish(responseBytes(BAD, false, false));
        const a = await handle(req);
        if (done) return;
        // A request answered 400 leaves the connection in doubt: it ends.
        const keepAlive = req.keepAlive && !conns.closing && a.status !== 400;
        const bytes = responseBytes(a, req.method === "HEAD", keepAlive);
        if (!keepAlive) return finish(bytes);
        sock.write(bytes);
      }
    } finally {
      busy = false;
      conns.active.delete(sock);
    }
  };
  sock.on("data", (chunk: Buffer) => {
    if (done) return;
    buf = buf.length ? Buffer.concat([buf, chunk]) : chunk;
    if (!busy) pump().catch(() => sock.destroy());
  });
}

/** Listen on `address` (host:port) and answer with `handle`; resolves once bound. */
export function servePlainHttp(address: string, handle: Handler): Promise<HttpServerHandle> {
  const hp = splitHostPort(address);
  if (!hp) return Promise.reject(new Error(`Cannot serve: bad address "${address}"`));
  const { host, port } = hp;
  return new Promise((resolve, reject) => {
    const conns: Conns = { all: new Set(), active: new Set(), closing: false };
    const server = net.createServer((sock) => {
      conns.all.add(sock);
      sock.once("close", () => conns.all.delete(sock));
      serveConnection(sock, handle, conns);
    });
    server.once("error", reject);
    server.listen({ host, port }, () => {
      server.off("error", reject);
      server.on("error", () => {});
      const a = server.address() as net.AddressInfo;
      resolve({
        hostname: a.address,
        port: a.port,
        // Graceful first: an answer being made or written (POST /quitquitquit's) still reaches
        // its client, then its connection ends; idle connections close now, any left after a
        // second are cut.
        close: () =>
          new Promise<void>((closed) => {
            conns.closing = true;
            const force = setTimeout(() => {
              for (const s of conns.all) s.destroy();
            }, 1000);
            for (const s of conns.all) {
              if (!conns.active.has(s) && s.writableLength === 0) s.destroy();
            }
            server.close(() => {
              clearTimeout(force);
              closed();
            });
          }),
      });
    });
  });
}
