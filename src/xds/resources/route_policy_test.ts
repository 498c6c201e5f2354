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
    },
  } as unknown as RouteAction;
  assert.deepEqual(rulePolicyOf(action, "route r")?.retries, {
    attempts: 2,
    perTryTimeoutMs: undefined,
    retryOn: ["connect-failure", "refused-stream", "unavailable", "cancelled", "503"],
  });
});
