/** AuthorizationPolicy validation as a new user or an attacker writes it: every invalid value is
 * refused with its path (never thrown, never silently widened), valid Istio forms accepted. */
import assert from "node:assert/strict";
import { loadIstioDocuments } from "./mod.ts";

const doc = (spec: string, annotations = "") =>
  `apiVersion: security.istio.io/v1
kind: AuthorizationPolicy
metadata: {name: p, namespace: default${annotations ? `, annotations: {${annotations}}` : ""}}
spec: ${spec}`;

function problems(text: string): readonly string[] {
  return loadIstioDocuments([{ file: "p.yaml", text }]).problems;
}

Deno.test("AuthorizationPolicy: invalid values are refused with their path", () => {
  const bad: [string, RegExp, string?][] = [
    ["{action: allow}", /spec\.action: must be one of ALLOW, DENY, AUDIT, CUSTOM/],
    [
      "{rules: [{to: [{operation: {path: ['/x']}}]}]}",
      /spec\.rules\[0\]\.to\[0\]\.operation\.path: unknown field/,
    ],
    ["{rules: [{form: [{source: {namespaces: [a]}}]}]}", /spec\.rules\[0\]\.form: unknown field/],
    ["{rules: [{to: [{operation: {ports: ['0']}}]}]}", /operation\.ports\[0\]: must be a port/],
    ["{rules: [{to: [{operation: {ports: ['80a']}}]}]}", /operation\.ports\[0\]: must be a port/],
    [
      "{rules: [{from: [{source: {ipBlocks: ['10.0.0.0/33']}}]}]}",
      /source\.ipBlocks\[0\]: must be an IP or CIDR/,
    ],
    [
      "{rules: [{from: [{source: {notIpBlocks: ['::1/129']}}]}]}",
      /source\.notIpBlocks\[0\]: must be an IP or CIDR/,
    ],
    [
      "{rules: [{from: [{source: {remoteIpBlocks: ['1.2.3']}}]}]}",
      /source\.remoteIpBlocks\[0\]: must be an IP or CIDR/,
    ],
    [
      "{rules: [{from: [{source: {}}]}]}",
      /spec\.rules\[0\]\.from\[0\]\.source: needs at least one field/,
    ],
    ["{rules: [{from: [{}]}]}", /spec\.rules\[0\]\.from\[0\]\.source: needs at least one field/],
    ["{rules: [{to: [{operation: {methods: []}}]}]}", /operation\.methods: must not be empty/],
    [
      "{rules: [{when: [{key: request.headers, values: [x]}]}]}",
      /when\[0\]\.key: unknown condition key/,
    ],
    ["{rules: [{when: [{key: source.ip}]}]}", /when\[0\]: needs values or notValues/],
    [
      "{rules: [{when: [{key: request.method, values: [GET]}]}]}",
      /when\[0\]\.key: unknown condition key/,
    ],
    [
      "{rules: [{to: [{operation: {paths: ['/a/{**}/{*}']}}]}]}",
      /paths\[0\]: \{\*\*\} must be the last operator/,
    ],
    [
      "{rules: [{to: [{operation: {notPaths: ['/a', '/a/{*}*']}}]}]}",
      /notPaths\[1\]: a URI template may use only/,
    ],
    ["{action: CUSTOM, rules: [{}]}", /spec\.provider\.name: is required with action CUSTOM/],
    ["{rules: {}}", /spec\.rules: must be a list/],
    [
      "{action: DENY, rules: [{when: [{key: connection.sni, values: [evil]}]}]}",
      /when\[0\]\.key: "connection\.sni" is not enforceable by weft/,
    ],
    [
      "{rules: [{from: [{source: {serviceAccounts: [ns/sa], namespaces: [ns]}}]}]}",
      /source\.serviceAccounts: cannot be set with principals or namespaces/,
    ],
    [
      "{rules: [{from: [{source: {serviceAccounts: ['ns/*']}}]}]}",
      /source\.serviceAccounts\[0\]: must be "namespace\/serviceaccount"/,
    ],
    [
      `{rules: [{from: [{source: {notServiceAccounts: [${
        Array.from({ length: 17 }, (_, i) => `s${i}`).join(",")
      }]}}]}]}`,
      /source\.notServiceAccounts: must have at most 16 entries/,
    ],
    [
      "{selector: {matchLabels: {app: a}}, targetRefs: [{kind: Service, name: a}], rules: [{}]}",
      /spec\.targetRefs: is mutually exclusive with spec\.selector/,
    ],
    [
      "{targetRefs: [{kind: Gateway, group: gateway.networking.k8s.io, name: g}], rules: [{}]}",
      /spec\.targetRefs\[0\]\.kind: Gateway is not supported/,
    ],
    [
      `{targetRefs: [${
        Array.from({ length: 17 }, (_, i) => `{kind: Service, name: s${i}}`).join(",")
      }]}`,
      /spec\.targetRefs: must have at most 16/,
    ],
    [
      "{action: AUDIT, rules: [{}]}",
      /istio\.io\/dry-run applies to ALLOW and DENY only/,
      "istio.io/dry-run: 'true'",
    ],
  ];
  for (const [spec, want, ann] of bad) {
    const got = problems(doc(spec, ann));
    assert.ok(got.some((p) => want.test(p)), `${spec}\n${got.join("\n")}`);
    assert.ok(
      got.every((p) => p.startsWith("p.yaml#0 AuthorizationPolicy default/p: ")),
      got.join("\n"),
    );
  }
});

Deno.test("AuthorizationPolicy: Istio's valid forms load", () => {
  const ok = [
    "{}",
    "{rules: [{}]}",
    "{action: DENY, rules: [{from: [{source: {notPrincipals: ['*']}}]}]}",
    "{rules: [{to: [{operation: {ports: [8080], hosts: ['*.example.com', 'api.io:*']}}]}]}",
    "{rules: [{from: [{source: {ipBlocks: ['2001:db8::/32', 10.0.0.1]}}]}]}",
    "{rules: [{when: [{key: 'request.auth.claims[groups][admin]', values: [x]}]}]}",
    "{targetRefs: [{kind: Service, group: '', name: echo}], rules: [{}]}",
    "{rules: [{to: [{operation: {paths: ['/u/{*}/orders', '/files/{**}', '/{*}/{*}.pdf', '/x{y}']}}]}]}",
    "{targetRef: {kind: Service, group: '', name: echo}, rules: [{}]}",
  ];
  for (const spec of ok) assert.deepEqual(problems(doc(spec)), [], spec);
  for (const [value, dry] of [["true", true], ["True", true], ["1", true], ["false", false]]) {
    const d = loadIstioDocuments([{
      file: "p.yaml",
      text: doc("{action: DENY, rules: [{}]}", `istio.io/dry-run: '${value}'`),
    }]);
    assert.equal(d.resources.authorizationPolicies[0]!.policy.dryRun, dry, String(value));
  }
  const r = loadIstioDocuments([{
    file: "p.yaml",
    text: doc("{targetRefs: [{kind: Service, group: '', name: echo}], rules: [{}]}"),
  }]);
  assert.deepEqual(r.resources.authorizationPolicies[0]!.policy.targetServices, ["echo"]);
  // `<serviceaccount>` alone: the policy's namespace (istio/api Source.service_accounts).
  const sa = loadIstioDocuments([{
    file: "p.yaml",
    text: doc("{rules: [{from: [{source: {serviceAccounts: [sleep, other/api]}}]}]}"),
  }]);
  assert.deepEqual(sa.problems, []);
  assert.deepEqual(
    sa.resources.authorizationPolicies[0]!.policy.rules[0]!.from![0]!.source.serviceAccounts,
    ["default/sleep", "other/api"],
  );
});
