/**
 * The control plane's gRPC server side through @grpc/grpc-js (on the runtime's node:http2; also
 * what @grpc/grpc-js-xds, the interop client, runs on), with protobuf-es doing (de)serialisation.
 * Node agents do not load this: their clients run on weft's own HTTP/2 (src/xds/grpc_transport.ts).
 */
import type * as grpc from "@grpc/grpc-js";
import * as grpcRuntime from "@grpc/grpc-js";
import { type DescMessage, fromBinary, type MessageShape, toBinary } from "@bufbuild/protobuf";
import { Buffer } from "node:buffer";
import { WeftError } from "../../core/mod.ts";
import {
  ADS_DELTA_PATH,
  ADS_SOTW_PATH,
  CA_PATH,
  MAX_MESSAGE_BYTES,
  type XdsTlsMaterial,
} from "../grpc_transport.ts";
import {
  DeltaDiscoveryRequestSchema,
  DeltaDiscoveryResponseSchema,
  DiscoveryRequestSchema,
  DiscoveryResponseSchema,
  IstioCertificateRequestSchema,
  IstioCertificateResponseSchema,
} from "../proto.ts";

/** xDS snapshots for big meshes exceed gRPC's 4 MiB default. */
export const CHANNEL_OPTIONS: grpc.ChannelOptions = {
  "grpc.max_receive_message_length": MAX_MESSAGE_BYTES,
  "grpc.max_send_message_length": MAX_MESSAGE_BYTES,
};

function ser<D extends DescMessage>(schema: D): (m: MessageShape<D>) => Buffer {
  return (m) => {
    const b = toBinary(schema, m);
    return Buffer.from(b.buffer, b.byteOffset, b.byteLength);
  };
}

function des<D extends DescMessage>(schema: D): (b: Buffer) => MessageShape<D> {
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

type StreamListener = (
  stream: { destroyed: boolean; on(e: "error", f: () => void): void },
  ...rest: unknown[]
) => void;

/** grpc-js answers an unknown method or a bad content-type with `stream.respond` as soon as the
 * runtime announces a stream; Deno's node:http2 can announce one already destroyed (the peer's
 * connection error arrived in the same packet: a SETTINGS frame on a stream after a HEADERS),
 * and respond then throws ERR_HTTP2_INVALID_STREAM out of the 'stream' event (found by
 * bench/fuzz.ts --target xds). A destroyed stream can carry nothing: skip it before grpc-js
 * sees it. Reaches grpc-js's `http2Servers` (1.14); without it nothing changes. Call after bind. */
export function skipDestroyedStreams(server: grpc.Server): void {
  const inner = (server as unknown as { http2Servers?: Map<unknown, unknown> }).http2Servers;
  for (const h2 of inner?.keys() ?? []) {
    const emitter = h2 as {
      listeners(e: "stream"): StreamListener[];
      removeAllListeners(e: "stream"): void;
      on(e: "stream", f: StreamListener): void;
    };
    if (typeof emitter.listeners !== "function") continue;
    const originals = emitter.listeners("stream");
    emitter.removeAllListeners("stream");
    emitter.on("stream", function (this: unknown, stream, ...rest) {
      if (stream.destroyed) {
        stream.on("error", () => {});
        return;
      }
      for (const f of originals) f.call(this, stream, ...rest);
    });
  }
}
