// deno-lint-ignore-file no-console no-explicit-any
/**
 * Bun only: node:tls against Bun's native TLS sockets (`Bun.listen`/`Bun.connect` with `tls`) for
 * HBONE's transport, client and server in two processes, mutual certificates, ALPN h2, the client
 * SPIFFE SAN read on the server. Prints one JSON line per transport:
 *   pingpong: 64-byte messages echoed one at a time (round trip µs p50/p99, like one request);
 *   bulk: one stream client → server for `MiB` (Gbit/s, like the 1-stream iperf3 row).
 * Usage: bun bench/l4_bun_tls.ts <cert dir from bench/l4_peers.ts makeCerts> [MiB=1024] [n=20000]
 * (ONLY=node or ONLY=native: one transport, e.g. to count collections with BUN_JSC_logGC=1).
 */
import * as tls from "node:tls";
import { readFileSync } from "node:fs";
import { spawn } from "node:child_process";
import process from "node:process";

const B = (globalThis as any).Bun;
const [dir, mibArg, nArg, role, impl, portArg] = process.argv.slice(2) as string[];
const read = (f: string): string => readFileSync(`${dir}/${f}`, "utf8");
const HOST = "127.79.0.50";
const MSG = 64;
const MIB = Number(mibArg ?? 1024);
const N = Number(nArg ?? 20000);
/** Bun.listen/connect take ALPN in wire format (length-prefixed names). */
const ALPN_H2 = "\x02h2";

/** Server: echo until the client sends "B", then count bytes and answer one byte per MIB total. */
function serverNode(): Promise<number> {
  return new Promise((resolve) => {
    const srv = tls.createServer({
      cert: read("server.pem"),
      key: read("server.key"),
      ca: read("ca.pem"),
      requestCert: true,
      rejectUnauthorized: false,
      minVersion: "TLSv1.3",
      ALPNProtocols: ["h2"],
    }, (s) => {
      s.setNoDelay(true);
      const san = s.getPeerCertificate().subjectaltname;
      if (!san?.includes("spiffe://")) s.destroy();
      let bulk = 0;
      s.on("data", (c: Uint8Array) => {
        if (bulk === 0 && c[0] !== 66) return void s.write(c);
        bulk += c.length;
        if (bulk >= MIB << 20) s.write("k");
      });
      s.on("error", () => {});
    });
    srv.listen(0, HOST, () => resolve((srv.address() as any).port));
  });
}

function serverNative(): number {
  const srv = B.listen({
    hostname: HOST,
    port: 0,
    tls: {
      cert: read("server.pem"),
      key: read("server.key"),
      ca: read("ca.pem"),
      requestCert: true,
      rejectUnauthorized: false,
      ALPNProtocols: ALPN_H2,
    },
    socket: {
      open(s: any) {
        s.data = { bulk: 0 };
      },
      handshake(s: any) {
        const san = s.getPeerCertificate()?.subjectaltname;
        if (!san?.includes("spiffe://") || s.alpnProtocol !== "h2") s.end();
      },
      data(s: any, c: Uint8Array) {
        if (s.data.bulk === 0 && c[0] !== 66) return void s.write(c);
        s.data.bulk += c.length;
        if (s.data.bulk >= MIB << 20) s.write("k");
      },
      error() {},
    },
  });
  return srv.port;
}

interface Conn {
  write(b: Uint8Array): boolean;
  onData(fn: (c: Uint8Array) => void): void;
  onDrain(fn: () => void): void;
  close(): void;
}

function clientNode(port: number): Promise<Conn> {
  return new Promise((resolve, reject) => {
    const s = tls.connect({
      host: HOST,
      port,
      cert: read("client.pem"),
      key: read("client.key"),
      ca: read("ca.pem"),
      minVersion: "TLSv1.3",
      ALPNProtocols: ["h2"],
      checkServerIdentity: () => undefined,
    }, () => {
      s.setNoDelay(true);
      resolve({
        write: (b) => s.write(b),
        onData: (fn) => void s.on("data", fn),
        onDrain: (fn) => void s.on("drain", fn),
        close: () => s.destroy(),
      });
    });
    s.on("error", reject);
  });
}

function clientNative(port: number): Promise<Conn> {
  let dataFn = (_c: Uint8Array): void => {};
  let drainFn = (): void => {};
  let queued: Uint8Array | null = null; // what the kernel did not take yet
  return new Promise((resolve, reject) => {
    B.connect({
      hostname: HOST,
      port,
      tls: {
        cert: read("client.pem"),
        key: read("client.key"),
        ca: read("ca.pem"),
        // The chain verdict arrives in handshake() (the default check also demands an IP SAN).
        rejectUnauthorized: false,
        ALPNProtocols: ALPN_H2,
      },
      socket: {
        handshake(s: any, ok: boolean, err: Error | null) {
          if (!ok && (err as any)?.code !== "ERR_TLS_CERT_ALTNAME_INVALID") return reject(err);
          s.setNoDelay?.(true);
          resolve({
            write: (b) => {
              if (queued) return false;
              const n = s.write(b);
              if (n < b.length) queued = b.subarray(Math.max(n, 0));
              return queued === null;
            },
            onData: (fn) => dataFn = fn,
            onDrain: (fn) => drainFn = fn,
            close: () => s.end(),
          });
        },
        data(_s: any, c: Uint8Array) {
          dataFn(c);
        },
        drain(s: any) {
          if (queued) {
            const n = s.write(queued);
            queued = n < queued.length ? queued.subarray(Math.max(n, 0)) : null;
          }
          if (!queued) drainFn();
        },
        error(_s: any, e: Error) {
          reject(e);
        },
      },
    });
  });
}

async function pingpong(c: Conn): Promise<{ p50: number; p99: number }> {
  const msg = new Uint8Array(MSG).fill(97);
  const times: number[] = [];
  let got = 0;
  let done: () => void = () => {};
  c.onData((d) => {
    got += d.length;
    if (got >= MSG) {
      got -= MSG;
      done();
    }
  });
  for (let i = 0; i < N + 1000; i++) {
    const t0 = performance.now();
    await new Promise<void>((r) => {
      done = r;
      c.write(msg);
    });
    if (i >= 1000) times.push((performance.now() - t0) * 1000);
  }
  times.sort((a, b) => a - b);
  return { p50: times[N >> 1]!, p99: times[Math.floor(N * 0.99)]! };
}

async function bulk(c: Conn): Promise<number> {
  const chunk = new Uint8Array(64 << 10).fill(66);
  const total = MIB << 20;
  const t0 = performance.now();
  const acked = new Promise<void>((r) => c.onData(() => r()));
  let sent = 0;
  await new Promise<void>((r) => {
    const pump = (): void => {
      while (sent < total) {
        sent += chunk.length;
        if (!c.write(chunk)) return;
      }
      r();
    };
    c.onDrain(pump);
    pump();
  });
  await acked;
  return (total * 8) / ((performance.now() - t0) / 1000) / 1e9;
}

if (role === "server") {
  const port = impl === "native" ? serverNative() : await serverNode();
  console.log(`port ${port}`);
} else {
  for (const which of (process.env.ONLY ?? "node,native").split(",")) {
    const child = spawn(process.execPath, [
      process.argv[1]!,
      dir!,
      String(MIB),
      String(N),
      "server",
      which,
    ], { stdio: ["ignore", "pipe", "inherit"] });
    const port = await new Promise<number>((r) =>
      child.stdout!.on("data", (d: Uint8Array) => {
        const m = /port (\d+)/.exec(String(d));
        if (m) r(Number(m[1]));
      })
    );
    const dial = which === "native" ? clientNative : clientNode;
    const a = await dial(port);
    const pp = await pingpong(a);
    a.close();
    const b = await dial(port);
    const gbps = await bulk(b);
    b.close();
    child.kill();
    console.log(JSON.stringify({
      transport: which,
      rttP50us: Math.round(pp.p50),
      rttP99us: Math.round(pp.p99),
      bulkGbps: Number(gbps.toFixed(2)),
    }));
  }
  void portArg;
}
