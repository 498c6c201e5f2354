import assert from "node:assert/strict";
import { authorizationPolicyFromIstio, authzConfigFromPolicies } from "./authz_config.ts";

Deno.test("authorizationPolicyFromIstio: defaults, dry-run annotation, selector", () => {
  const p = authorizationPolicyFromIstio({
    metadata: { name: "p", namespace: "ns", annotations: { "istio.io/dry-run": "true" } },
    spec: {
      selector: { matchLabels: { app: "x" } },
      rules: [{ to: [{ operation: { ports: [8080] } }] }],
    },
  });
  assert.equal(p.action, "ALLOW");
  assert.equal(p.dryRun, true);
  assert.deepEqual(p.selector, { app: "x" });
  assert.deepEqual(p.rules, [{ to: [{ operation: { ports: ["8080"] } }] }]);
  assert.deepEqual(authorizationPolicyFromIstio({ metadata: { name: "e" }, spec: {} }).rules, []);
});

Deno.test("authorizationPolicyFromIstio: every problem with its path", () => {
  assert.throws(
    () =>
      authorizationPolicyFromIstio({
        metadata: {},
        spec: {
          action: "CUSTOM",
          rules: [{ from: [{ source: { principal: ["x"] } }], when: [{ key: "source.ip" }] }],
        },
      }),
    (e: Error & { code?: string }) => {
      assert.equal(e.code, "config_invalid");
      assert.match(e.message, /metadata\.name: is required/);
      assert.match(e.message, /spec\.provider\.name: is required with action CUSTOM/);
      assert.match(e.message, /spec\.rules\[0\]\.from\[0\]\.source\.principal: unknown field/);
      assert.match(e.message, /spec\.rules\[0\]\.when\[0\]: needs values or notValues/);
      return true;
    },
  );
});

Deno.test("authzConfigFromPolicies: ids and name order", () => {
  const mk = (name: string, namespace: string) =>
    authorizationPolicyFromIstio({ metadata: { name, namespace }, spec: { rules: [{}] } });
  const cfg = authzConfigFromPolicies([mk("b", "x"), mk("a", "y"), mk("a", "x")]);
  assert.deepEqual(cfg.policies.map((p) => p.name), [
    "ns[x]-policy[a]",
    "ns[x]-policy[b]",
    "ns[y]-policy[a]",
  ]);
});
