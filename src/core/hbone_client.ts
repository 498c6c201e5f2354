/**
 * HBONE client side: dial an mTLS HTTP/2 connection presenting the source workload's identity and
 * verifying the destination's (TLS 1.3, ALPN h2, no SNI), and open CONNECT streams on it with
 * ztunnel's headers (hbone.md §3–6). Only a 200 is success.
 */
import * as tls from "node:tls";
import type { Duplex } from "node:stream";
import type { IdentityProvider } from "./transport.ts";
import { errorMessage, WeftError } from "./errors.ts";
import { l4Metrics } from "./l4_telemetry.ts";
import { splitHostPort } from "./ip.ts";
import { certRevokedError, hboneClientTls, negotiatedSuite, peerChainDer } from "./hbone_tls.ts";
import { TCP_KEEPALIVE_MS } from "./l4_conn.ts";
import { H2Session, type H2SessionOptions, type Headers, NO_HEADERS } from "./h2/mod.ts";

/** PING keepalive of HBONE sessions (hbone.md §10): every 10 s, fail after 20 s. */
export const PING_INTERVAL_MS = 10_000;
export const PING_TIMEOUT_MS = 20_000;

/**
 * HTTP/2 settings of both HBONE roles. ztunnel uses 4 MiB stream / 16 MiB connection windows and
 * 1 MiB frames (hbone.md §5); these are local receive limits, not interop requirements. The
 * connection window is returned only as consumers read, so it bounds what one session holds;
 * the stream window bounds one tunnel.
 */
export const H2_OPTIONS: H2SessionOptions = Object.freeze({
  streamWindowBytes: 1 << 20,
  connectionWindowBytes: 4 << 20,
  maxFrameBytes: 1 << 20,
  maxHeaderListBytes: 16 * 1024,
  keepalive: { intervalMs: PING_INTERVAL_MS, timeoutMs: PING_TIMEOUT_MS },
});

export interface DialTarget {
  readonly srcIdentity: string;
  /** Local address to dial from (the source workload's IP, as ztunnel spoofs it); undefined =
   * any. */
  readonly srcIp: string | undefined;
  readonly dstIdentity: string;
  /** Further identities the server may present: the service's `subject_alt_names` when the
   * target was reached through a service (ztunnel's `upstream_sans`, hbone.md §4). */
  readonly dstSans?: readonly string[] | undefined;
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
): Promise<H2Session> {
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
  const sock = tls.connect({
    host: hp.host,
    port: hp.port,
    ...(pre ? { socket: pre } : target.srcIp ? { localAddress: target.srcIp } : {}),
    // No SNI for IP hosts; the server identity is checked against the expected SPIFFE id below.
    ...hboneClientTls(m),
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
      sock.once("secureConnect", () => {
        clearTimeout(timer);
        sock.off("error", onError);
        resolve();
      });
      const onError = (e: Error): void => {
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
      };
      sock.once("error", onError);
    });
    sock.setNoDelay(true);
    if (!pre) sock.setKeepAlive(true, TCP_KEEPALIVE_MS); // an in-pod socket: its dialer's choice
    const suite = negotiatedSuite(sock);
    if (suite) {
      identity.recordRejection?.("client", "handshake_failed");
      throw new WeftError(
        "hbone_cipher_refused",
        `Cannot dial HBONE: ${target.hboneAddr} chose cipher suite ${suite} (AES-GCM only)`,
      );
    }
    const raw = sock.getPeerCertificate(false)?.raw;
    if (!raw) {
      throw new WeftError("hbone_no_peer_cert", "Cannot dial HBONE: server sent no certificate");
    }
    const expected = target.dstSans?.length
      ? [target.dstIdentity, ...target.dstSans]
      : [target.dstIdentity];
    const verdict = identity.verifyServer(new Uint8Array(raw), expected);
    if (!verdict.ok) {
      identity.recordRejection?.("client", verdict.reason);
      throw new WeftError(
        "hbone_identity_mismatch",
        `Cannot dial HBONE: server ${target.hboneAddr} is not ${
          expected.join(" or ")
        }: ${verdict.message}`,
      );
    }
    // CRLs (hbone.md §4): the server's whole chain, leaf and intermediates.
    const adm = identity.revocation?.admit(peerChainDer(sock), "source");
    if (adm && !adm.ok) {
      identity.recordRejection?.("client", adm.reason);
      throw new WeftError(
        adm.reason === "revoked" ? "hbone_peer_revoked" : "hbone_crl_invalid",
        `Cannot dial HBONE: server ${target.hboneAddr}: ${adm.message}`,
      );
    }
    const session = new H2Session(sock, "client", H2_OPTIONS);
    if (adm) {
      // Revoked later by a CRL update: every tunnel on it is reset at once (as ztunnel).
      const untrack = adm.track(() => session.destroy(certRevokedError("outbound")));
      session.closed.then(untrack);
    }
    return session;
  } catch (e) {
    sock.destroy();
    throw e;
  }
}

export interface ConnectRequest {
  /** Destination workload ip:port (IPv6 bracketed), or `<service hostname>:<service port>`
   * through a network gateway. */
  readonly authority: string;
  /** The original client ip:port. */
  readonly clientAddr: string;
  readonly serviceHost: string | undefined;
  readonly baggage: string | undefined;
  /** The inner CONNECT of double HBONE only: the origin network (`x-forwarded-network`). */
  readonly network?: string | undefined;
}

function randomHex(bytes: number): string {
  const b = crypto.getRandomValues(new Uint8Array(bytes));
  let s = "";
  for (const x of b) s += x.toString(16).padStart(2, "0");
  return s;
}

export function connectHeaders(req: ConnectRequest): Headers {
  const h: Headers = {
    ":authority": req.authority,
    forwarded: `for="${req.clientAddr}"` + (req.serviceHost ? `;host=${req.serviceHost}` : ""),
    traceparent: `00-${randomHex(16)}-${randomHex(8)}-00`,
  };
  if (req.baggage) h.baggage = req.baggage;
  if (req.network !== undefined) h["x-forwarded-network"] = req.network;
  return h;
}

/** Open a CONNECT stream and wait for the response; resolves only on 200. */
export function openConnect(
  session: H2Session,
  req: ConnectRequest,
  timeoutMs: number,
): Promise<Duplex> {
  let timer: ReturnType<typeof setTimeout> | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => {
      reject(
        new WeftError(
          "hbone_response_timeout",
          `Cannot open HBONE stream: no response in ${timeoutMs} ms`,
        ),
      );
    }, timeoutMs);
  });
  const opening = session.openConnect(connectHeaders(req));
  return Promise.race([opening, timeout]).then(({ status, stream }) => {
    clearTimeout(timer);
    l4Metrics.hboneResponses.inc({ side: "client", code: String(status) });
    if (status === 200) {
      stream.headerList = NO_HEADERS; // a tunnel keeps no response head
      return stream;
    }
    stream.destroy();
    throw new WeftError(`hbone_${status}`, `Cannot open HBONE stream: server answered ${status}`);
  }, (e: unknown) => {
    clearTimeout(timer);
    // A late answer after the timeout: drop the stream (resets it on the peer).
    opening.then(({ stream }) => stream.destroy(), () => {});
    if (e instanceof WeftError && e.code === "hbone_response_timeout") throw e;
    throw new WeftError(
      "hbone_stream_failed",
      `Cannot open HBONE stream: ${(e as Error).message}`,
      {
        cause: e,
      },
    );
  });
}
