/** gRPC status codes (grpc/doc/statuscodes.md), the status a call ends with, and its Error. */

export const GrpcCode = Object.freeze({
  OK: 0,
  CANCELLED: 1,
  UNKNOWN: 2,
  INVALID_ARGUMENT: 3,
  DEADLINE_EXCEEDED: 4,
  PERMISSION_DENIED: 7,
  RESOURCE_EXHAUSTED: 8,
  UNIMPLEMENTED: 12,
  INTERNAL: 13,
  UNAVAILABLE: 14,
  UNAUTHENTICATED: 16,
});

/** HTTP status of a response without grpc-status → gRPC code (gRPC's
 * http-grpc-status-mapping.md; Envoy's Grpc::Utility::httpToGrpcStatus). */
export function httpToGrpc(status: number): number {
  if (status === 400) return GrpcCode.INTERNAL;
  if (status === 401) return GrpcCode.UNAUTHENTICATED;
  if (status === 403) return GrpcCode.PERMISSION_DENIED;
  if (status === 404) return GrpcCode.UNIMPLEMENTED;
  if (status === 429 || status === 502 || status === 503 || status === 504) {
    return GrpcCode.UNAVAILABLE;
  }
  return GrpcCode.UNKNOWN;
}

const CODE_NAMES = [
  "OK",
  "CANCELLED",
  "UNKNOWN",
  "INVALID_ARGUMENT",
  "DEADLINE_EXCEEDED",
  "NOT_FOUND",
  "ALREADY_EXISTS",
  "PERMISSION_DENIED",
  "RESOURCE_EXHAUSTED",
  "FAILED_PRECONDITION",
  "ABORTED",
  "OUT_OF_RANGE",
  "UNIMPLEMENTED",
  "INTERNAL",
  "UNAVAILABLE",
  "DATA_LOSS",
  "UNAUTHENTICATED",
];

/** "UNAVAILABLE" for 14 (a metric label); "CODE_<n>" for codes gRPC does not define. */
export function grpcCodeName(code: number): string {
  return CODE_NAMES[code] ?? `CODE_${code}`;
}

export interface GrpcStatus {
  readonly code: number;
  readonly message: string;
  /** Trailing metadata (no pseudo-headers); empty when the client ended the call itself. */
  readonly trailers: readonly [string, string][];
}

/** A failed call as an Error (unary helpers reject with it). */
export class GrpcError extends Error {
  constructor(readonly status: GrpcStatus) {
    super(`${grpcCodeName(status.code)}: ${status.message}`);
    this.name = "GrpcError";
  }
  get code(): number {
    return this.status.code;
  }
}
