/**
 * gRPC over HTTP/2 through @grpc/grpc-js (works on Deno 2.9.6's node:http2; also what
 * @grpc/grpc-js-xds runs on), with protobuf-es doing (de)serialisation. Method paths follow
 * the protos: the transport version is in the method name (xds.md §1).
 */
import type * as grpc from "@grpc/grpc-js";
import * as grpcRuntime from "@grpc/grpc-js";
import { type DescMessage, fromBinary, type MessageShape, toBinary } from "@bufbuild/protobuf";
import { Buffer } from "node:buffer";
import { WeftError } from "../core/mod.ts";
import {
  DeltaDiscoveryRequestSchema,
  DeltaDiscoveryResponseSchema,
  DiscoveryRequestSchema,
  DiscoveryResponseSchema,
  IstioCertificateRequestSchema,
  IstioCertificateResponseSchema,
} from "./proto.ts";

export const ADS_SOTW_PATH =
  "/envoy.service.discovery.v3.AggregatedDiscoveryService/StreamAggregatedResources";
export const ADS_DELTA_PATH =
  "/envoy.service.discovery.v3.AggregatedDiscoveryService/DeltaAggregatedResources";
export const CA_PATH = "/istio.v1.auth.IstioCertificateService/CreateCertificate";

/** xDS snapshots for big meshes exceed gRPC's 4 MiB default. */
export const CHANNEL_OPTIONS: grpc.ChannelOptions = {
  "grpc.max_receive_message_length": 256 * 1024 * 1024,
  "grpc.max_send_message_length": 256 * 1024 * 1024,
};

export function ser<D extends DescMessage>(schema: D): (m: MessageShape<D>) => Buffer {
  return (m) => {
    const b = toBinary(schema, m);
    return Buffer.from(b.buffer, b.byteOffset, b.byteLength);
  };
}

export function des<D extends DescMessage>(schema: D): (b: Buffer) => MessageShape<D> {
  return (b) => fromBinary(schema, new Uint8Array(b.buffer, b.byteOffset, b.byteLength));
}

function method<I extends DescMessage, O extends DescMessage>(
  path: string,
  input: I,
  output: O,
  streaming: boolean,
): grpc.MethodDefinition<MessageShape<I>, MessageShape<O>> {
  return {
    path,
    requestStream: streaming,
    responseStream: streaming,
    requestSerialize: ser(input),
    requestDeserialize: des(input),
    responseSerialize: ser(output),
    responseDeserialize: des(output),
  };
}

export const ADS_SERVICE = {
  StreamAggregatedResources: method(
    ADS_SOTW_PATH,
    DiscoveryRequestSchema,
    DiscoveryResponseSchema,
    true,
  ),
  DeltaAggregatedResources: method(
    ADS_DELTA_PATH,
    DeltaDiscoveryRequestSchema,
    DeltaDiscoveryResponseSchema,
    true,
  ),
} as const;

export const CA_SERVICE = {
  CreateCertificate: method(
    CA_PATH,
    IstioCertificateRequestSchema,
    IstioCertificateResponseSchema,
    false,
  ),
} as const;

/** Deno's node:tls refuses an IP as SNI servername, which grpc-js sends by default; identity is
 * checked by SPIFFE id instead (clientCredentials), so any fixed name will do. */
export const TLS_CHANNEL_OPTIONS: grpc.ChannelOptions = {
  "grpc.ssl_target_name_override": "weft-control-plane",
};

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

/** Client credentials: TLS 1.3 with our identity; the server must present `serverIdentity`
 * (mesh certificates carry no DNS names, so hostname checks are replaced by this). */
export function clientCredentials(
  tls: XdsTlsMaterial | undefined,
  serverIdentity: string | undefined,
): grpc.ChannelCredentials {
  if (!tls) return grpcRuntime.credentials.createInsecure();
  const own = tls.keyPem !== undefined && tls.certChainPem !== undefined;
  return grpcRuntime.credentials.createSsl(
    Buffer.from(tls.rootsPem),
    own ? Buffer.from(tls.keyPem!) : null,
    own ? Buffer.from(tls.certChainPem!) : null,
    {
      checkServerIdentity: (_host, cert) => {
        const id = peerIdentity(cert.subjectaltname);
        if (serverIdentity === undefined || id === serverIdentity) return undefined;
        return new Error(`control plane identity ${id ?? "(none)"} is not ${serverIdentity}`);
      },
    },
  );
}

/** Server credentials: TLS with the control plane's certificate; `clientCerts` (mTLS) requires
 * client certificates chained to the roots, otherwise callers authenticate by node token. */
export function serverCredentials(
  tls: XdsTlsMaterial | undefined,
  clientCerts = true,
): grpc.ServerCredentials {
  if (!tls) return grpcRuntime.ServerCredentials.createInsecure();
  if (tls.keyPem === undefined || tls.certChainPem === undefined) {
    throw new WeftError("control_plane_tls", "Cannot serve TLS: no certificate and key");
  }
  return grpcRuntime.ServerCredentials.createSsl(
    Buffer.from(tls.rootsPem),
    [{ private_key: Buffer.from(tls.keyPem), cert_chain: Buffer.from(tls.certChainPem) }],
    clientCerts,
  );
}
