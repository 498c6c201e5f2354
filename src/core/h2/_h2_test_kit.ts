/**
 * Test and bench helpers for src/core/h2: real node:tls mTLS listeners (ALPN h2, client certs
 * required) from the test CA, node:http2 peers on the same material, and a byte-exact echo check.
 */
import { Buffer } from "node:buffer";
import * as http2 from "node:http2";
import * as tls from "node:tls";
import type { AddressInfo } from "node:net";
import type { Duplex } from "node:stream";
import { createTestCa } from "../test_identity.ts";
import type { TlsMaterial } from "../transport.ts";

export interface Pki {
  server: TlsMaterial;
  client: TlsMaterial;
}

export async function makePki(): Promise<Pki> {
  const ca = await createTestCa("h2-test-ca");
  return {
    server: await ca.issue("spiffe://cluster.local/ns/default/sa/server"),
    client: await ca.issue("spiffe://cluster.local/ns/default/sa/client"),
  };
}

const serverOpts = (m: TlsMaterial): tls.TlsOptions => ({
  cert: m.certChainPem,
  key: m.keyPem,
  ca: m.rootsPem,
  requestCert: true,
  rejectUnauthorized: true,
  minVersion: "TLSv1.3",
  ALPNProtocols: ["h2"],
});

export const clientOpts = (m: TlsMaterial): tls.ConnectionOptions => ({
  cert: m.certChainPem,
  key: m.keyPem,
  ca: m.rootsPem,
  minVersion: "TLSv1.3",
  ALPNProtocols: ["h2"],
  checkServerIdentity: () => undefined, // SPIFFE URI SAN only; identity is checked by src/tls
});

export interface Listener<T> {
  port: number;
  server: T;
  close(): Promise<void>;
}

/** An mTLS listener on 127.0.0.1:0 calling `onSocket` for each authorized connection. */
export async function mtlsListen(
  pki: Pki,
  onSocket: (s: tls.TLSSocket) => void,
): Promise<Listener<tls.Server>> {
  const socks = new Set<tls.TLSSocket>();
  const server = tls.createServer(serverOpts(pki.server), (s) => {
    socks.add(s);
    s.on("close", () => socks.delete(s));
    s.on("error", () => {});
    onSocket(s);
  });
  await new Promise<void>((r) => server.listen(0, "127.0.0.1", r));
  return {
    port: (server.address() as AddressInfo).port,
    server,
    close: () => {
      for (const s of socks) s.destroy();
      return new Promise((r) => server.close(() => r()));
    },
  };
}

export function mtlsConnect(pki: Pki, port: number): Promise<tls.TLSSocket> {
  return new Promise((resolve, reject) => {
    const s = tls.connect({ ...clientOpts(pki.client), host: "127.0.0.1", port }, () => resolve(s));
    s.once("error", reject);
  });
}

/** node:http2 secure server with the same mTLS material, answering CONNECT via `onStream`. */
export async function nodeH2Listen(
  pki: Pki,
  onStream: (s: http2.ServerHttp2Stream, h: http2.IncomingHttpHeaders) => void,
): Promise<Listener<http2.Http2SecureServer> & { sessions: Set<http2.ServerHttp2Session> }> {
  const sessions = new Set<http2.ServerHttp2Session>();
  const server = http2.createSecureServer(serverOpts(pki.server));
  server.on("session", (s) => {
    sessions.add(s);
    s.on("close", () => sessions.delete(s));
    s.on("error", () => {});
  });
  server.on("stream", onStream);
  await new Promise<void>((r) => server.listen(0, "127.0.0.1", r));
  return {
    port: (server.address() as AddressInfo).port,
    server,
    sessions,
    close: () => {
      for (const s of sessions) s.destroy();
      return new Promise((r) => server.close(() => r()));
    },
  };
}

export function nodeH2Connect(pki: Pki, port: number): Promise<http2.ClientHttp2Session> {
  return new Promise((resolve, reject) => {
    const s = http2.connect(`https://127.0.0.1:${port}`, clientOpts(pki.client));
    s.once("connect", () => resolve(s));
    s.once("error", reject);
  });
}

export function pattern(n: number, seed = 1): Uint8Array {
  const b = new Uint8Array(n);
  let x = seed;
  for (let i = 0; i < n; i++) {
    x = (x * 1103515245 + 12345) >>> 0;
    b[i] = x >>> 24;
  }
  return b;
}

/** Read everything until 'end'. */
export function collect(s: Duplex): Promise<Uint8Array> {
  return new Promise((resolve, reject) => {
    const parts: Uint8Array[] = [];
    s.on("data", (c: Uint8Array) => parts.push(c));
    s.once("end", () => resolve(new Uint8Array(Buffer.concat(parts))));
    s.once("error", reject);
  });
}

/** Write `data` in 64 KiB chunks honouring backpressure, then end. */
export async function writeAll(s: Duplex, data: Uint8Array): Promise<void> {
  for (let o = 0; o < data.length; o += 65536) {
    if (!s.write(data.subarray(o, o + 65536))) {
      await new Promise<void>((r, j) => {
        const done = (err?: Error): void => {
          s.off("drain", done);
          s.off("error", done);
          if (err) j(err);
          else r();
        };
        s.on("drain", done);
        s.on("error", done);
      });
    }
  }
  s.end();
}

/** Send `data` through an echoing tunnel and return what came back. */
export async function echoThrough(s: Duplex, data: Uint8Array): Promise<Uint8Array> {
  const got = collect(s);
  await writeAll(s, data);
  return got;
}

/** Echo server side: pipe the stream into itself (half-close follows the client's END_STREAM). */
export function echo(s: Duplex): void {
  s.on("error", () => {});
  s.pipe(s);
}
