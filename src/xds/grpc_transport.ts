/**
 * The node's gRPC to its control plane (ADS, CA) on weft's own HTTP/2 client (src/core
 * `GrpcChannel`), not node:http2: Deno's node:http2 (nghttp2) could abort the whole node agent
 * when the control plane sent GOAWAY or closed while streams were open. Plaintext is h2c with
 * prior knowledge (loopback only); TLS verifies the control plane against the mesh roots
 * (`xds.rootCertFile` or the local CA) and its SPIFFE id, negotiates ALPN h2, and may present the
 * node's certificate (mTLS). Method paths follow the protos: the transport version is in the
 * method name (xds.md §1).
 */
import { isIP } from "node:net";
import { checkServerIdentity, type ConnectionOptions, type PeerCertificate } from "node:tls";
import { dialGrpc, GrpcChannel } from "../core/mod.ts";

export const ADS_SOTW_PATH =
  "/envoy.service.discovery.v3.AggregatedDiscoveryService/StreamAggregatedResources";
export const ADS_DELTA_PATH =
  "/envoy.service.discovery.v3.AggregatedDiscoveryService/DeltaAggregatedResources";
export const CA_PATH = "/istio.v1.auth.IstioCertificateService/CreateCertificate";

/** xDS snapshots for big meshes exceed gRPC's 4 MiB default. */
export const MAX_MESSAGE_BYTES = 256 * 1024 * 1024;

/** PING keepalive on the control-plane connection: a control plane that vanished without a FIN
 * (host gone, partition) fails the ADS stream within about two intervals, and the node
 * reconnects (gRPC clients' usual 30 s keepalive time). */
export const KEEPALIVE = Object.freeze({ intervalMs: 30_000, timeoutMs: 45_000 });

/** SNI when the control plane is addressed by IP (Deno's node:tls refuses an IP as servername);
 * the control plane's certificate is checked by SPIFFE id instead. */
const IP_SERVERNAME = "weft-control-plane";

/** PEM material for TLS between node and control plane (from src/tls). Without a certificate
 * chain and key the client verifies the server only and authenticates by its node token
 * (istiod's shape: server TLS, a bearer credential). */
export interface XdsTlsMaterial {
  readonly rootsPem: string;
  readonly certChainPem?: string;
  readonly keyPem?: string;
}

/** The URI SAN (SPIFFE id) of a peer certificate, as node:tls reports it. */
export function peerIdentity(subjectaltname: string | undefined): string | undefined {
  return subjectaltname?.split(", ").find((n) => n.startsWith("URI:"))?.slice(4);
}

/** "host:port" or "[v6]:port" → parts. */
export function splitAddress(address: string): { host: string; port: number } {
  const at = address.lastIndexOf(":");
  const host = address.slice(0, at).replace(/^\[(.*)\]$/, "$1");
  return { host, port: Number(address.slice(at + 1)) };
}

/** node:tls client options: the mesh roots, our certificate when we have one, and the server's
 * SPIFFE id (mesh certificates carry no DNS names) or, without one, the usual host name check. */
export function controlPlaneTls(
  tls: XdsTlsMaterial,
  host: string,
  serverIdentity: string | undefined,
): ConnectionOptions {
  const own = tls.keyPem !== undefined && tls.certChainPem !== undefined;
  return {
    ca: tls.rootsPem,
    ...(own ? { cert: tls.certChainPem, key: tls.keyPem } : {}),
    servername: isIP(host) ? IP_SERVERNAME : host,
    checkServerIdentity: (_name: string, cert: PeerCertificate) => {
      if (serverIdentity === undefined) return checkServerIdentity(host, cert);
      const id = peerIdentity(cert.subjectaltname);
      if (id === serverIdentity) return undefined;
      return new Error(`control plane identity ${id ?? "(none)"} is not ${serverIdentity}`);
    },
  };
}

/** One connection (dialled on demand, again after it is lost) to the control plane. */
export function controlPlaneChannel(
  address: string,
  tls: XdsTlsMaterial | undefined,
  serverIdentity: string | undefined,
): GrpcChannel {
  const { host, port } = splitAddress(address);
  const tlsOpts = tls ? controlPlaneTls(tls, host, serverIdentity) : undefined;
  return new GrpcChannel({
    connect: () => dialGrpc({ host, port, ...(tlsOpts ? { tls: tlsOpts } : {}) }),
    authority: address,
    scheme: tls ? "https" : "http",
    keepalive: KEEPALIVE,
  });
}

/** `authorization: Bearer <token>` when there is a token. */
export function bearer(token: string | undefined): [string, string][] {
  return token ? [["authorization", `Bearer ${token}`]] : [];
}
