/**
 * HBONE client side: dial an mTLS HTTP/2 connection presenting the source workload's identity and
 * verifying the destination's (TLS 1.3, ALPN h2, no SNI), and open CONNECT streams on it with
 * ztunnel's headers (hbone.md §3–6). Only a 200 is success.
 */
import * as http2 from "node:http2";
import * as tls from "node:tls";
import type { TLSSocket } from "node:tls";
import type { IdentityProvider } from "./transport.ts";
import type { Duplex } from "node:stream";
import { errorMessage, WeftError } from "./errors.ts";
import { l4Metrics } from "./l4_telemetry.ts";
import { splitHostPort } from "./ip.ts";
import { runtimeName } from "./runtime.ts";

/** Receive windows and frame size. ztunnel uses 4 MiB / 16 MiB / 1 MiB (hbone.md §5); these are
 * local receive limits, not interop requirements, and on Deno's node:http2 the smaller values
 * measured lower peak RSS under a bulk transfer (bench/l4.ts: ~145 MB vs ~385 MB). */
export const H2_STREAM_WINDOW = 1024 * 1024;
export const H2_CONN_WINDOW = 4 * 1024 * 1024;
export const H2_MAX_FRAME = 16 * 1024;

/** Raise the connection-level receive window (stream 0 WINDOW_UPDATE). Skipped on Bun 1.x: there
 * setLocalWindowSize stalls the connection after the first window (bench/l4.ts --bun measured
 * 0 Gbit/s with it), and Bun's default window already gives it its best measured throughput. */
export function raiseConnectionWindow(session: http2.Http2Session): void {
  if (runtimeName === "bun") return;
  try {
    session.setLocalWindowSize(H2_CONN_WINDOW);
  } catch {
    // Not supported by this runtime: stream windows still apply.
  }
}

export interface DialTarget {
  readonly srcIdentity: string;
  /** Local address to dial from (the source workload's IP, as ztunnel spoofs it); undefined =
   * any. */
  readonly srcIp: string | undefined;
  readonly dstIdentity: string;
  /** ip:port of the peer's HBONE listener. */
  readonly hboneAddr: string;
  /** In-pod mode: makes the TCP connection from inside the source pod (its IP, weft's mark);
   * undefined = node:tls dials from `srcIp`. */
  readonly connect?:
    | ((host: string, port: number, timeoutMs: number) => Promise<Duplex>)
    | undefined;
}

/** Dial and verify one HBONE connection; rejects with a WeftError on any failure. */
export async function dialHbone(
  identity: IdentityProvider,
  target: DialTarget,
  connectTimeoutMs: number,
): Promise<http2.ClientHttp2Session> {
  const hp = splitHostPort(target.hboneAddr);
  if (!hp) {
    throw new WeftError("hbone_bad_address", `Cannot dial HBONE: bad address ${target.hboneAddr}`);
  }
  const m = await identity.material(target.srcIdentity);
  const pre = target.connect
    ? await target.connect(hp.host, hp.port, connectTimeoutMs).catch((e) => {
      throw new WeftError(
        "hbone_connect_failed",
        `Cannot dial HBONE: ${target.hboneAddr}: ${errorMessage(e)}`,
        { cause: e },
      );
    })
    : undefined;
  const url = hp.host.includes(":")
    ? `https://[${hp.host}]:${hp.port}`
    : `https://${hp.host}:${hp.port}`;
  const tlsOptions: tls.ConnectionOptions = {
    host: hp.host,
    port: hp.port,
    ...(pre ? { socket: pre } : target.srcIp ? { localAddress: target.srcIp } : {}),
    cert: m.certChainPem,
    key: m.keyPem,
    ca: m.rootsPem,
    ALPNProtocols: ["h2"],
    minVersion: "TLSv1.3",
    // No SNI for IP hosts; the server identity is checked against the expected SPIFFE id below,
    // not against the IP (the default checkServerIdentity would demand an IP SAN).
    checkServerIdentity: () => undefined,
  };
  const session = http2.connect(url, {
    createConnection: () => {
      const s = tls.connect(tlsOptions);
      s.setNoDelay(true);
      return s;
    },
    settings: {
      initialWindowSize: H2_STREAM_WINDOW,
      maxFrameSize: H2_MAX_FRAME,
      maxHeaderListSize: 16 * 1024,
      enablePush: false,
    },
  });
  try {
    await new Promise<void>((resolve, reject) => {
      const timer = setTimeout(
        () =>
          reject(
            new WeftError(
              "hbone_connect_timeout",
              `Cannot dial HBONE: ${target.hboneAddr} timed out`,
            ),
          ),
        connectTimeoutMs,
      );
      session.once("connect", () => {
        clearTimeout(timer);
        resolve();
      });
      session.once("error", (e) => {
        clearTimeout(timer);
        reject(
          new WeftError(
            "hbone_connect_failed",
            `Cannot dial HBONE: ${target.hboneAddr}: ${e.message}`,
            {
              cause: e,
            },
          ),
        );
      });
    });
    const peer = (session.socket as TLSSocket).getPeerCertificate(false);
    const raw = peer && "raw" in peer ? peer.raw : undefined;
    if (!raw) {
      throw new WeftError("hbone_no_peer_cert", "Cannot dial HBONE: server sent no certificate");
    }
    const verdict = identity.verifyServer(new Uint8Array(raw), [target.dstIdentity]);
    if (!verdict.ok) {
      identity.recordRejection?.("client", verdict.reason);
      throw new WeftError(
        "hbone_identity_mismatch",
        `Cannot dial HBONE: server ${target.hboneAddr} is not ${target.dstIdentity}: ${verdict.message}`,
      );
    }
    raiseConnectionWindow(session);
    return session;
  } catch (e) {
    session.destroy();
    throw e;
  }
}

export interface ConnectRequest {
  /** Destination workload ip:port (IPv6 bracketed). */
  readonly authority: string;
  /** The original client ip:port. */
  readonly clientAddr: string;
  readonly serviceHost: string | undefined;
  readonly baggage: string | undefined;
}

function randomHex(bytes: number): string {
  const b = crypto.getRandomValues(new Uint8Array(bytes));
  let s = "";
  for (const x of b) s += x.toString(16).padStart(2, "0");
  return s;
}

export function connectHeaders(req: ConnectRequest): http2.OutgoingHttpHeaders {
  const h: http2.OutgoingHttpHeaders = {
    ":method": "CONNECT",
    ":authority": req.authority,
    forwarded: `for="${req.clientAddr}"` + (req.serviceHost ? `;host=${req.serviceHost}` : ""),
    traceparent: `00-${randomHex(16)}-${randomHex(8)}-00`,
  };
  if (req.baggage) h.baggage = req.baggage;
  return h;
}

/** Open a CONNECT stream and wait for the response; resolves only on 200. */
export function openConnect(
  session: http2.ClientHttp2Session,
  req: ConnectRequest,
  timeoutMs: number,
): Promise<http2.ClientHttp2Stream> {
  const stream = session.request(connectHeaders(req), { endStream: false });
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => {
      stream.destroy();
      reject(
        new WeftError(
          "hbone_response_timeout",
          `Cannot open HBONE stream: no response in ${timeoutMs} ms`,
        ),
      );
    }, timeoutMs);
    const onError = (e: Error): void => {
      clearTimeout(timer);
      reject(
        new WeftError("hbone_stream_failed", `Cannot open HBONE stream: ${e.message}`, {
          cause: e,
        }),
      );
    };
    stream.once("error", onError);
    const onClose = (): void => onError(new Error(`stream closed (rst ${stream.rstCode})`));
    stream.once("close", onClose);
    stream.once("response", (headers) => {
      clearTimeout(timer);
      stream.off("error", onError);
      stream.off("close", onClose);
      const status = Number(headers[":status"]);
      l4Metrics.hboneResponses.inc({ side: "client", code: String(status) });
      if (status === 200) return resolve(stream);
      stream.destroy();
      reject(
        new WeftError(`hbone_${status}`, `Cannot open HBONE stream: server answered ${status}`),
      );
    });
  });
}
