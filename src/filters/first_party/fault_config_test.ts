import assert from "node:assert/strict";
import {
  durationMs,
  faultConfigFromEnvoy,
  faultConfigFromIstio,
  faultStages,
} from "./fault_config.ts";

Deno.test("durationMs: protobuf and Istio duration forms", () => {
  assert.equal(durationMs("5s"), 5000);
  assert.equal(durationMs("0.250s"), 250);
  assert.equal(durationMs("100ms"), 100);
  assert.equal(durationMs("2m"), 120_000);
  assert.equal(durationMs("5"), undefined);
});

Deno.test("faultConfigFromIstio: percentages per million, deprecated percent, gRPC names", () => {
  assert.deepEqual(
    faultConfigFromIstio({
      delay: { fixedDelay: "7s", percentage: { value: 0.1 } },
      abort: { grpcStatus: "UNAVAILABLE", percent: 25 },
    }),
    {
      delay: { fixedDelayMs: 7000, percentage: { numerator: 1000, denominator: "MILLION" } },
      abort: { grpcStatus: 14, percentage: { numerator: 250_000, denominator: "MILLION" } },
    },
  );
  assert.deepEqual(faultConfigFromIstio({ abort: { httpStatus: 503 } }), {
    // Percentage omitted: no request is faulted (l7-semantics F13).
    abort: { httpStatus: 503, percentage: { numerator: 0, denominator: "MILLION" } },
  });
});

Deno.test("faultConfigFromEnvoy and faultStages", () => {
  const cfg = faultConfigFromEnvoy({
    delay: { headerDelay: {}, percentage: { numerator: 50 } },
    abort: { httpStatus: 500, percentage: { numerator: 1, denominator: "TEN_THOUSAND" } },
    maxActiveFaults: 3,
    headers: [{ name: "x", presentMatch: true }],
  });
  assert.deepEqual(cfg.delay, {
    headerDelay: true,
    percentage: { numerator: 50, denominator: "HUNDRED" },
  });
  const [d, a] = faultStages(cfg);
  assert.equal(d!.stage, "delay");
  assert.equal(d!.abort, undefined);
  assert.equal(a!.stage, "abort");
  assert.equal(a!.delay, undefined);
  assert.equal(a!.maxActiveFaults, 3);
  assert.equal(faultStages({ abort: { httpStatus: 500 } }).length, 1);
  assert.throws(
    () => faultConfigFromEnvoy({ responseRateLimit: {} }),
    /HTTPFault\.responseRateLimit: unknown field/,
  );
});
