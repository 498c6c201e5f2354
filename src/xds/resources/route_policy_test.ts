import assert from "node:assert/strict";
import type { RouteAction } from "../gen/envoy/config/route/v3/route_components_pb.ts";
import { rulePolicyOf } from "./route_policy.ts";

Deno.test("xds route policy: istiod's default retry_on keeps its gRPC conditions, drops unknown ones", () => {
  const action = {
    retryPolicy: {
      retryOn: "connect-failure,refused-stream,unavailable,cancelled,retriable-status-codes," +
        "envoy-ratelimited",
      retriableStatusCodes: [503],
      numRetries: 2,
      retryHostPredicate: [],
    },
  } as unknown as RouteAction;
  assert.deepEqual(rulePolicyOf(action, "route r")?.retries, {
    attempts: 2,
    perTryTimeoutMs: undefined,
    retryOn: ["connect-failure", "refused-stream", "unavailable", "cancelled", "503"],
  });
});

Deno.test("xds route policy: istiod's default (no VirtualService retries) is marked default, with previous_hosts", () => {
  const action = {
    timeout: { seconds: 0n, nanos: 0 }, // istiod's: no timeout
    retryPolicy: {
      retryOn: "connect-failure,refused-stream,unavailable,cancelled,retriable-status-codes",
      retriableStatusCodes: [],
      numRetries: 2,
      retryHostPredicate: [{ name: "envoy.retry_host_predicates.previous_hosts" }],
    },
  } as unknown as RouteAction;
  assert.deepEqual(rulePolicyOf(action, "route r"), {
    timeoutMs: undefined,
    retries: {
      attempts: 2,
      perTryTimeoutMs: undefined,
      retryOn: ["connect-failure", "refused-stream", "unavailable", "cancelled"],
      previousHosts: true,
    },
    defaultRetries: true,
  });
  // Another policy is the route's own: it sends the port through the L7 proxy.
  const own = {
    retryPolicy: {
      retryOn: "5xx",
      retriableStatusCodes: [],
      numRetries: 2,
      retryHostPredicate: [],
    },
  } as unknown as RouteAction;
  assert.equal(rulePolicyOf(own, "route r")?.defaultRetries, undefined);
});

Deno.test("xds route policy: an absent RouteAction timeout is Envoy's 15 s; 0s (istiod's) is none", () => {
  const at = (timeout?: { seconds: bigint; nanos: number }) =>
    rulePolicyOf({ ...(timeout ? { timeout } : {}) } as unknown as RouteAction, "r")?.timeoutMs;
  assert.equal(at(), 15_000);
  assert.equal(at({ seconds: 0n, nanos: 0 }), undefined);
  assert.equal(at({ seconds: 2n, nanos: 500_000_000 }), 2_500);
});
