/**
 * gRPC over HTTP/2 through @grpc/grpc-js (works on Deno 2.9.6's node:http2; also what
 * @grpc/grpc-js-xds runs on), with protobuf-es doing (de)serialisation. Method paths follow
 * the protos: the transport version is in the method name (xds.md §1).
 */
import type * as grpc from "@grpc/grpc-js";
import { type DescMessage, fromBinary, type MessageShape, toBinary } from "@bufbuild/protobuf";
import { Buffer } from "node:buffer";
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
