/** Request/response contexts for filter tests (what the HTTP data path builds per request). */
import type { HttpRequestContext, HttpResponseContext, PeerInfo } from "../../src/core/mod.ts";
import { HeaderList } from "../../src/core/mod.ts";

export const TEST_PEER: PeerInfo = {
  sourcePrincipal: "spiffe://cluster.local/ns/default/sa/client",
  sourceNamespace: "default",
  sourceAddress: "127.0.0.1",
  sourcePort: 40000,
  destinationAddress: "127.0.0.2",
  destinationPort: 8080,
  destinationService: "echo.default.svc.cluster.local",
  destinationWorkload: "echo",
  destinationNamespace: "default",
  destinationPrincipal: "spiffe://cluster.local/ns/default/sa/echo",
  mtls: true,
};

let seq = 0;

export function requestContext(
  path = "/",
  headers: [string, string][] = [],
  method = "GET",
): HttpRequestContext {
  return {
    direction: "inbound",
    method,
    path,
    authority: "echo.default.svc.cluster.local",
    scheme: "http",
    protocol: "HTTP/1.1",
    requestHeaders: new HeaderList(headers),
    peer: TEST_PEER,
    requestId: `req-${++seq}`,
    filterState: new Map(),
    requestBody: undefined,
  };
}

export function responseContext(
  status = 200,
  headers: [string, string][] = [],
): HttpResponseContext {
  return { status, responseHeaders: new HeaderList(headers), responseBody: undefined };
}
