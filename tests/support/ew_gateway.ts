// deno-lint-ignore-file no-console
/**
 * A test peer in the role of Istio's east-west gateway (an Envoy there): a real mTLS (TLS 1.3,
 * ALPN h2) + HTTP/2 server (node:http2, not weft's code) that terminates the outer CONNECT of
 * double HBONE, routes it by its `<service hostname>:<port>` authority to a destination node's
 * HBONE address and relays the inner bytes as plain TCP without reading them (hbone.md §9).
 *
 * Run as its own process (`startEwGateway`); it prints one JSON line per event on stdout:
 * `{"ready":true}`, then per CONNECT `{"connect":authority,"peer":<client SPIFFE id>,
 * "x-forwarded-network":...}` and per finished tunnel `{"tunnel":authority,"bytes":n,"head":hex
 * of the first bytes it relayed toward the destination,"sawMarker":<the test's plaintext marker
 * seen in them>}`.
 */
import * as http2 from "node:http2";
import * as net from "node:net";
import type { TLSSocket } from "node:tls";

export interface EwGatewayConfig {
  /** Addresses to listen on (each on `port`). */
  readonly addresses: readonly string[];
  readonly port: number;
  readonly certPem: string;
  readonly keyPem: string;
  readonly rootsPem: string;
  /** Authority (`host:port`) → the destination's HBONE `ip:port`. */
  readonly routes: Readonly<Record<string, string>>;
  /** Plaintext the relayed bytes must not contain (the inner tunnel is TLS). */
  readonly marker: string;
}

function emit(o: Record<string, unknown>): void {
  console.log(JSON.stringify(o));
}

function relay(cfg: EwGatewayConfig, stream: http2.ServerHttp2Stream, authority: string): void {
  const to = cfg.routes[authority];
  const at = to?.lastIndexOf(":") ?? -1;
  if (!to || at < 0) {
    stream.respond({ ":status": 503 }, { endStream: true });
    return;
  }
  const up = net.connect({ host: to.slice(0, at), port: Number(to.slice(at + 1)) });
  const marker = new TextEncoder().encode(cfg.marker);
  let seen: Uint8Array = new Uint8Array(0);
  let bytes = 0;
  let sawMarker = false;
  stream.on("data", (d: Uint8Array) => {
    bytes += d.length;
    if (seen.length < 64 * 1024) seen = concat(seen, d);
    if (!sawMarker) sawMarker = contains(seen, marker);
  });
  const done = (): void => {
    emit({ tunnel: authority, bytes, head: hex(seen.subarray(0, 8)), sawMarker });
  };
  up.once("connect", () => {
    stream.respond({ ":status": 200 });
    stream.pipe(up);
    up.pipe(stream);
  });
  up.once("error", () => {
    if (!stream.headersSent) stream.respond({ ":status": 503 }, { endStream: true });
    else stream.close(http2.constants.NGHTTP2_CONNECT_ERROR);
  });
  stream.once("error", () => up.destroy());
  stream.once("close", () => {
    up.destroy();
    done();
  });
}

function concat(a: Uint8Array, b: Uint8Array): Uint8Array {
  const out = new Uint8Array(a.length + b.length);
  out.set(a);
  out.set(b, a.length);
  return out;
}

function contains(hay: Uint8Array, needle: Uint8Array): boolean {
  outer: for (let i = 0; i + needle.length <= hay.length; i++) {
    for (let j = 0; j < needle.length; j++) if (hay[i + j] !== needle[j]) continue outer;
    return true;
  }
  return false;
}

function hex(b: Uint8Array): string {
  return [...b].map((x) => x.toString(16).padStart(2, "0")).join("");
}

function serve(cfg: EwGatewayConfig, host: string): Promise<void> {
  const server = http2.createSecureServer({
    cert: cfg.certPem,
    key: cfg.keyPem,
    ca: cfg.rootsPem,
    requestCert: true,
    rejectUnauthorized: true,
    minVersion: "TLSv1.3",
    ALPNProtocols: ["h2"],
  });
  server.on("stream", (stream: http2.ServerHttp2Stream, headers: http2.IncomingHttpHeaders) => {
    stream.on("error", () => {});
    const authority = String(headers[":authority"] ?? "");
    const sock = stream.session?.socket as TLSSocket | undefined;
    const peer = sock?.getPeerCertificate?.(false)?.subjectaltname ?? "";
    emit({
      connect: authority,
      peer: peer.replace(/^URI:/, ""),
      "x-forwarded-network": headers["x-forwarded-network"] ?? null,
    });
    if (headers[":method"] !== "CONNECT") {
      stream.respond({ ":status": 400 }, { endStream: true });
      return;
    }
    relay(cfg, stream, authority);
  });
  server.on("sessionError", () => {});
  return new Promise((resolve, reject) => {
    server.once("error", reject);
    server.listen(cfg.port, host, () => resolve());
  });
}

export interface EwGateway {
  /** Every JSON line printed so far. */
  readonly lines: Record<string, unknown>[];
  /** Resolves with the first line matching `pred` (seen or future). */
  waitFor(
    pred: (l: Record<string, unknown>) => boolean,
    ms?: number,
  ): Promise<Record<string, unknown>>;
  close(): Promise<void>;
}

/** Start the gateway as its own Deno process and wait until it listens. */
export async function startEwGateway(cfg: EwGatewayConfig): Promise<EwGateway> {
  const child = new Deno.Command(Deno.execPath(), {
    args: ["run", "-A", new URL(import.meta.url).pathname, JSON.stringify(cfg)],
    stdout: "piped",
    stderr: "inherit",
    stdin: "null",
  }).spawn();
  const lines: Record<string, unknown>[] = [];
  const waiters: { pred: (l: Record<string, unknown>) => boolean; resolve: () => void }[] = [];
  const reading = (async () => {
    let buf = "";
    for await (const chunk of child.stdout.pipeThrough(new TextDecoderStream())) {
      buf += chunk;
      let nl;
      while ((nl = buf.indexOf("\n")) >= 0) {
        const line = buf.slice(0, nl);
        buf = buf.slice(nl + 1);
        try {
          lines.push(JSON.parse(line));
        } catch {
          continue;
        }
        for (const w of [...waiters]) {
          if (lines.some(w.pred)) {
            waiters.splice(waiters.indexOf(w), 1);
            w.resolve();
          }
        }
      }
    }
  })();
  const waitFor = (pred: (l: Record<string, unknown>) => boolean, ms = 10_000) => {
    const seen = lines.find(pred);
    if (seen) return Promise.resolve(seen);
    return new Promise<Record<string, unknown>>((resolve, reject) => {
      const timer = setTimeout(() => {
        waiters.splice(waiters.indexOf(w), 1);
        reject(new Error(`gateway: no matching line in ${ms} ms; lines: ${JSON.stringify(lines)}`));
      }, ms);
      const w = {
        pred,
        resolve: () => {
          clearTimeout(timer);
          resolve(lines.find(pred)!);
        },
      };
      waiters.push(w);
    });
  };
  const close = async () => {
    try {
      child.kill("SIGTERM");
    } catch { /* already gone */ }
    await child.status;
    await reading;
  };
  try {
    await waitFor((l) => l.ready === true);
  } catch (e) {
    await close();
    throw e;
  }
  return { lines, waitFor, close };
}

if (import.meta.main) {
  const cfg = JSON.parse(Deno.args[0]!) as EwGatewayConfig;
  await Promise.all(cfg.addresses.map((a) => serve(cfg, a)));
  Deno.addSignalListener("SIGTERM", () => Deno.exit(0));
  emit({ ready: true });
}
