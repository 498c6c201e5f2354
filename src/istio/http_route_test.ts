/** Gateway API HTTPRoute → the VirtualService route model, as istiod converts it
 * (pilot/pkg/config/kube/gateway conversion.go): header modifiers on the rule and on a backendRef,
 * `retry` and `timeouts.backendRequest`; invalid shapes refused with their path. */
import assert from "node:assert/strict";
import { Checker, Problems, routePolicies } from "./mod.ts";
import { gatewayVirtualServices, parseGatewayHttpRoute } from "./http_route.ts";

function convert(rule: Record<string, unknown>) {
  const problems = new Problems();
  const route = parseGatewayHttpRoute(new Checker(problems), {
    metadata: { name: "r", namespace: "default" },
    spec: { parentRefs: [{ group: "", kind: "Service", name: "echo" }], rules: [rule] },
  });
  const [vs] = gatewayVirtualServices([route]);
  return { http: vs!.http, problems: problems.list };
}

Deno.test("HTTPRoute: Request/ResponseHeaderModifier on the rule and a backendRef become headers", () => {
  const { http, problems } = convert({
    filters: [
      {
        type: "RequestHeaderModifier",
        requestHeaderModifier: {
          set: [{ name: "X-A", value: "1" }, { name: "Host", value: "h.example" }],
          add: [{ name: "x-b", value: "2" }],
          remove: ["X-C"],
        },
      },
      {
        type: "ResponseHeaderModifier",
        responseHeaderModifier: { set: [{ name: "x-r", value: "r" }] },
      },
    ],
    backendRefs: [{
      name: "echo",
      port: 80,
      filters: [{
        type: "ResponseHeaderModifier",
        responseHeaderModifier: { add: [{ name: "x-backend", value: "echo" }] },
      }],
    }],
  });
  assert.deepEqual(problems, []);
  const [p] = routePolicies(http)!;
  assert.deepEqual(p!.rewrite, { authority: "h.example" }, "host → the authority rewrite");
  assert.deepEqual(p!.headers?.request, {
    remove: ["x-c"],
    set: [["x-a", "1"]],
    add: [["x-b", "2"]],
  });
  assert.deepEqual(p!.headers?.response, { set: [["x-r", "r"]] });
  assert.deepEqual(p!.headers?.destinations?.[0]?.response, { add: [["x-backend", "echo"]] });
});

Deno.test("HTTPRoute: retry and timeouts.backendRequest as istiod converts them", () => {
  const withRetry = convert({
    retry: { codes: [503, 429], attempts: 3, backoff: "100ms" },
    timeouts: { request: "10s", backendRequest: "2s" },
    backendRefs: [{ name: "echo", port: 80 }],
  });
  assert.deepEqual(withRetry.problems, []);
  assert.equal(withRetry.http[0]!.timeoutMs, 10_000);
  assert.deepEqual(withRetry.http[0]!.retries, {
    attempts: 3,
    perTryTimeoutMs: 2000,
    retryOn: ["connect-failure", "refused-stream", "unavailable", "cancelled", "503", "429"],
    backoffMs: 100,
    ignorePreviousHosts: undefined,
  });
  // No retry: the backend request timeout bounds the route; attempts default 2; 0 = none.
  const noRetry = convert({
    timeouts: { backendRequest: "500ms" },
    backendRefs: [{ name: "echo", port: 80 }],
  });
  assert.equal(noRetry.http[0]!.timeoutMs, 500);
  assert.equal(noRetry.http[0]!.retries, undefined, "Istio's default retry policy applies");
  assert.equal(
    convert({ retry: {}, backendRefs: [{ name: "echo" }] }).http[0]!.retries?.attempts,
    2,
  );
  assert.deepEqual(
    convert({ retry: { attempts: 0 }, backendRefs: [{ name: "echo" }] }).http[0]!.retries?.retryOn,
    [],
  );
});

Deno.test("HTTPRoute: bad filters, codes and timeouts are refused with their path", () => {
  const { problems } = convert({
    filters: [
      {
        type: "RequestHeaderModifier",
        requestHeaderModifier: { set: [{ name: ":path", value: "/x" }] },
      },
      {
        type: "RequestHeaderModifier",
        requestHeaderModifier: { add: [{ name: "x", value: "a\nb" }] },
      },
      { type: "ExtensionRef", extensionRef: { group: "x", kind: "y", name: "z" } },
    ],
    retry: { codes: [200] },
    timeouts: { request: "1s", backendRequest: "2s" },
    backendRefs: [{ name: "echo", filters: [{ type: "RequestRedirect", requestRedirect: {} }] }],
  });
  const at = (p: string) => problems.some((x) => x.includes(p));
  for (
    const p of [
      "spec.rules[0].filters[0].requestHeaderModifier.set[0].value",
      "spec.rules[0].filters[1].type",
      "spec.rules[0].filters[1].requestHeaderModifier.add[0].value",
      "spec.rules[0].filters[2].type",
      "spec.rules[0].retry.codes[0]",
      "spec.rules[0].timeouts.backendRequest",
      "spec.rules[0].backendRefs[0].filters[0].type",
    ]
  ) assert(at(p), `${p}: ${problems.join("\n")}`);
});
