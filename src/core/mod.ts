/**
 * weft's data path: listeners, connection lifecycle, L4 copy, HBONE, pools, drain, the
 * filter-chain runner and the filter API (types only), errors, log, metrics; the gRPC client on
 * weft's own HTTP/2 that the control path and filters call out with (bytes, no protobuf).
 * May import: nothing else in src/ (no tls, filters, xds, protobuf or wasm types).
 */
export * from "./errors.ts";
export * from "./log.ts";
export * from "./metrics.ts";
export * from "./runtime.ts";
export { STATUS_TEXT } from "./status_text.ts";
export { checkRequestLine, parseHead } from "./http1_codec.ts";
export { installProcessGuard, reportUnhandled, UNHANDLED_ERROR_MSG } from "./process_guard.ts";
export type * from "./snapshot.ts";
export { sourceVariantApplies, spiffeId } from "./snapshot.ts";
export type * from "./filter_api.ts";
export type * from "./route_policy.ts";
export type * from "./route_headers.ts";
export type * from "./route_cors.ts";
export {
  DEFAULT_RETRY_POLICY,
  defaultRoute,
  ownPolicy,
  RETRY_CONDITIONS,
  routePolicyFor,
} from "./route_policy.ts";
export { compileFullRegex, regexProblem } from "./re2_match.ts";
export type * from "./transport.ts";
export { hboneClientTls, hboneContext, hboneServerTls } from "./hbone_tls.ts";
export * from "./ip.ts";
export { authorizeL4, policiesFor, stringMatch } from "./authz.ts";
export type { AuthzDecision, L4Attributes } from "./authz.ts";
export { NodeProxy } from "./proxy.ts";
export type { NodeProxyOptions, NodeProxyStats } from "./proxy.ts";
export { HeaderList } from "./header_map.ts";
export { failResponse, FilterChain, orderFilterRefs } from "./filter_chain.ts";
export type { RequestVerdict, ResponseVerdict } from "./filter_chain.ts";
export { HttpProxy } from "./http_proxy.ts";
export { connectNative, listenNative, NativeSocket, nativeSockets } from "./native_socket.ts";
export type { NativeListener } from "./native_socket.ts";
export { H2Session, H2Stream } from "./h2/mod.ts";
export { dialGrpc, GrpcChannel } from "./grpc_channel.ts";
export type { GrpcChannelOptions, GrpcTarget } from "./grpc_channel.ts";
export { GrpcCall, grpcFrame } from "./grpc_call.ts";
export type { GrpcCallHandlers, GrpcCallOptions } from "./grpc_call.ts";
export { GrpcCode, grpcCodeName, GrpcError, httpToGrpc } from "./grpc_status.ts";
export type { GrpcStatus } from "./grpc_status.ts";
export { httpExchange } from "./http1_client.ts";
export type { ExchangeRequest, ExchangeResponse } from "./http1_client.ts";
export type { ServiceDial } from "./service_dialer.ts";
export {
  DEFAULT_MAX_BUFFERED_BODY_BYTES,
  REQUEST_TOO_LARGE,
  RESPONSE_TOO_LARGE,
} from "./body_buffer.ts";
export { writeLocal } from "./http_io.ts";
export type { HttpProxyOptions } from "./http_proxy.ts";
export { checkFilterConfig, registerFilterConfigCheck } from "./filter_checks.ts";
export type { FilterConfigCheck } from "./filter_checks.ts";
export type { PodEnrollment, PodView } from "./pod_capture.ts";
export { INBOUND_CAPTURE_PORT, OUTBOUND_CAPTURE_PORT } from "./pod_capture.ts";
export { netnsUnsupportedReason } from "./netns.ts";
