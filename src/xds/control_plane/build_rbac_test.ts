/** JWT `when` keys in istiod's current RBAC encoding (pilot/pkg/security/authz/model generator.go:
 * requestAudiencesGenerator, requestPresenterGenerator, requestClaimGenerator through
 * MetadataListValueMatcherForJWTClaims with the extended JWT form), and the node's reading of
 * that encoding back into the authz plugin's conditions. */
import assert from "node:assert/strict";
import { createRegistry, fromJson, type JsonValue, toJson } from "@bufbuild/protobuf";
import { RBACSchema, UriTemplateMatchConfigSchema } from "../proto.ts";
import type { AuthorizationPolicy, PolicyCondition } from "../../core/mod.ts";
import { authzConfigFromEnvoyRbac } from "../../filters/first_party/mod.ts";
import { rbacFilters } from "./build_rbac.ts";

const TYPES = { registry: createRegistry(UriTemplateMatchConfigSchema) };

const policy = (when: PolicyCondition[], action = "ALLOW"): AuthorizationPolicy =>
  ({ name: "p", namespace: "ns", action, dryRun: false, rules: [{ when }] }) as never;

/** The one principal of the policy's one rule. */
function principal(when: PolicyCondition[]): unknown {
  const cfg = rbacFilters([policy(when)])[0]!.config as {
    rules: { policies: Record<string, { principals: unknown[] }> };
  };
  return cfg.rules.policies["ns[ns]-policy[p]-rule[0]"]!.principals[0];
}

const meta = (path: string[], value: unknown) => ({
  metadata: {
    filter: "envoy.filters.http.jwt_authn",
    path: ["payload", ...path].map((key) => ({ key })),
    value: { orMatch: { valueMatchers: [{ listMatch: { oneOf: value } }, value] } },
  },
});

Deno.test("build_rbac: JWT when keys as istiod's jwt_authn payload list-or-string matchers", () => {
  assert.deepEqual(
    principal([{ key: "request.auth.audiences", values: ["web"] }]),
    meta(["aud"], { stringMatch: { exact: "web" } }),
  );
  assert.deepEqual(
    principal([{ key: "request.auth.presenter", values: ["app*", "*-cli"] }]),
    meta(["azp"], {
      orMatch: {
        valueMatchers: [{ stringMatch: { prefix: "app" } }, { stringMatch: { suffix: "-cli" } }],
      },
    }),
  );
  assert.deepEqual(
    principal([{ key: "request.auth.claims[groups]", values: ["*"] }]),
    meta(["groups"], { stringMatch: { safeRegex: { regex: ".+" } } }),
  );
  // Nested claims, notValues as one NOT of the whole matcher, ANDed with the other condition.
  assert.deepEqual(
    principal([
      { key: "request.auth.claims[org][team]", notValues: ["red", "blue"] },
      { key: "request.headers[X-A]", values: ["1"] },
    ]),
    {
      andIds: {
        ids: [
          {
            notId: meta(["org", "team"], {
              orMatch: {
                valueMatchers: [{ stringMatch: { exact: "red" } }, {
                  stringMatch: { exact: "blue" },
                }],
              },
            }),
          },
          { header: { name: "x-a", exactMatch: "1" } },
        ],
      },
    },
  );
});

Deno.test("build_rbac: JWT claim matchers are valid proto3 JSON and read back as claims conditions", () => {
  const when: PolicyCondition[] = [
    { key: "request.auth.audiences", values: ["web", "api"] },
    { key: "request.auth.presenter", values: ["app"] },
    { key: "request.auth.claims[org][team]", values: ["red"], notValues: ["blue*"] },
  ];
  for (const action of ["ALLOW", "DENY"]) {
    const [f] = rbacFilters([policy(when, action)]);
    // What goes on the wire: protobuf-es accepts it and writes it back unchanged.
    const wire = toJson(RBACSchema, fromJson(RBACSchema, f!.config as JsonValue, TYPES), TYPES);
    const policies = (c: unknown) => (c as { rules: { policies: unknown } }).rules.policies;
    assert.deepEqual(policies(wire), policies(f!.config));
    assert.deepEqual(authzConfigFromEnvoyRbac(wire).policies, [{
      name: "ns[ns]-policy[p]",
      action,
      dryRun: false,
      rules: [{
        from: [{ source: {} }],
        when: [
          { key: "request.auth.claims[aud]", values: ["web", "api"] },
          { key: "request.auth.claims[azp]", values: ["app"] },
          { key: "request.auth.claims[org][team]", values: ["red"] },
          { key: "request.auth.claims[org][team]", notValues: ["blue*"] },
        ],
      }],
    }]);
  }
});

Deno.test("rbac config: JWT payload matchers other than istiod's list-or-string shape are refused", () => {
  const rbac = (m: unknown) => ({
    rules: { policies: { "p-rule[0]": { permissions: [{ any: true }], principals: [m] } } },
  });
  const s = { stringMatch: { exact: "a" } };
  const bad: [unknown, RegExp][] = [
    [{ metadata: { ...meta(["g"], s).metadata, value: s } }, /orMatch\[listMatch/],
    [{
      metadata: { ...meta(["g"], s).metadata, value: { listMatch: { oneOf: s } } },
    }, /orMatch\[listMatch/],
    [{ metadata: { ...meta(["g"], s).metadata, path: [{ key: "iss" }] } }, /\[payload, <claim>/],
    [meta(["a[b"], s), /free of \[ and \]/],
    [{
      metadata: {
        ...meta(["g"], s).metadata,
        value: {
          orMatch: {
            valueMatchers: [{ listMatch: { oneOf: s } }, { stringMatch: { exact: "b" } }],
          },
        },
      },
    }, /same values/],
    [meta(["g"], { stringMatch: { contains: "a" } }), /substring/],
    [{ metadata: { ...meta(["g"], s).metadata, filter: "other" } }, /metadata is expressible/],
  ];
  for (const [m, re] of bad) assert.throws(() => authzConfigFromEnvoyRbac(rbac(m)), re);
});
