/**
 * The allowed/denied matrix for authz, one case per checklist item of
 * /work/shared/reference/l7-semantics.md §1 (A-items). Each request names the expected verdict
 * and, for denials, the effective policy id reported in the response details.
 */
import type { RequestSpec } from "../_common/plugin_harness.ts";
import type { RequestAuth } from "../../src/core/mod.ts";

export interface AuthzCase {
  readonly id: string;
  readonly title: string;
  /** Istio AuthorizationPolicy YAML, several documents allowed. */
  readonly policies: string;
  readonly requests: readonly (readonly [RequestSpec, "allow" | "deny", string?])[];
}

const SLEEP = "spiffe://cluster.local/ns/foo/sa/sleep";
const ADMIN = "spiffe://cluster.local/ns/admin/sa/root";
const PROD = "spiffe://cluster.local/ns/prod-eu/sa/api";

export const AUTHZ_CASES: readonly AuthzCase[] = [
  {
    id: "A3",
    title: "no policy at all allows",
    policies: "",
    requests: [[{}, "allow"], [{ method: "DELETE", path: "/x" }, "allow"]],
  },
  {
    id: "A3b",
    title: "only DENY policies: non-matching requests are allowed",
    policies: `
metadata: {name: deny-delete, namespace: default}
spec: {action: DENY, rules: [{to: [{operation: {methods: ["DELETE"]}}]}]}`,
    requests: [
      [{ method: "GET" }, "allow"],
      [{ method: "DELETE" }, "deny", "ns[default]-policy[deny-delete]-rule[0]"],
    ],
  },
  {
    id: "A2",
    title: "DENY wins over a matching ALLOW",
    policies: `
metadata: {name: allow-all, namespace: default}
spec: {rules: [{}]}
---
metadata: {name: deny-admin, namespace: default}
spec:
  action: DENY
  rules: [{to: [{operation: {paths: ["/admin*"]}}]}]`,
    requests: [
      [{ path: "/admin/users" }, "deny", "ns[default]-policy[deny-admin]-rule[0]"],
      [{ path: "/public" }, "allow"],
    ],
  },
  {
    id: "A4/A5",
    title: "ALLOW policies exist: a match allows, no match denies with [none]",
    policies: `
metadata: {name: allow-get, namespace: default}
spec: {action: ALLOW, rules: [{to: [{operation: {methods: ["GET", "HEAD"]}}]}]}`,
    requests: [
      [{ method: "GET" }, "allow"],
      [{ method: "HEAD" }, "allow"],
      [{ method: "POST" }, "deny", "none"],
    ],
  },
  {
    id: "A12",
    title: "spec: {} (ALLOW without rules) denies everything",
    policies: `
metadata: {name: allow-nothing, namespace: default}
spec: {}`,
    requests: [[{}, "deny", "none"], [{ principal: ADMIN }, "deny", "none"]],
  },
  {
    id: "A13",
    title: "rules: [{}] allows everything",
    policies: `
metadata: {name: allow-all, namespace: default}
spec: {rules: [{}]}`,
    requests: [[{}, "allow"], [{ method: "DELETE", path: "/x" }, "allow"]],
  },
  {
    id: "A13b",
    title: "DENY with rules: [{}] denies everything",
    policies: `
metadata: {name: deny-all, namespace: default}
spec: {action: DENY, rules: [{}]}`,
    requests: [[{}, "deny", "ns[default]-policy[deny-all]-rule[0]"]],
  },
  {
    id: "A14",
    title: "a rule needs a from AND a to AND every when",
    policies: `
metadata: {name: p, namespace: default}
spec:
  rules:
  - from: [{source: {principals: ["cluster.local/ns/foo/sa/sleep"]}}]
    to: [{operation: {methods: ["GET"]}}]
    when: [{key: "request.headers[x-token]", values: ["secret"]}]`,
    requests: [
      [{ principal: SLEEP, method: "GET", headers: { "x-token": "secret" } }, "allow"],
      [{ principal: SLEEP, method: "GET" }, "deny", "none"],
      [{ principal: SLEEP, method: "POST", headers: { "x-token": "secret" } }, "deny", "none"],
      [{ principal: ADMIN, method: "GET", headers: { "x-token": "secret" } }, "deny", "none"],
    ],
  },
  {
    id: "A15",
    title: "fields AND, values OR, not-fields AND-ed, rules OR, from/to entries OR",
    policies: `
metadata: {name: p, namespace: default}
spec:
  rules:
  - to:
    - operation: {methods: ["GET", "PUT"], paths: ["/api/*"], notPaths: ["/api/private*"]}
  - from: [{source: {namespaces: ["admin"]}}, {source: {ipBlocks: ["192.168.0.0/16"]}}]`,
    requests: [
      [{ method: "PUT", path: "/api/x" }, "allow"],
      [{ method: "GET", path: "/api/private/x" }, "deny", "none"],
      [{ method: "POST", path: "/api/x" }, "deny", "none"],
      [{ method: "POST", path: "/other", principal: ADMIN }, "allow"],
      [{ method: "POST", path: "/other", sourceAddress: "192.168.3.4" }, "allow"],
      [{ method: "POST", path: "/other", sourceAddress: "10.1.1.1" }, "deny", "none"],
    ],
  },
  {
    id: "A16",
    title: "string matching: exact, prefix abc*, suffix *abc, presence *",
    policies: `
metadata: {name: p, namespace: default}
spec:
  rules:
  - to: [{operation: {paths: ["/exact"]}}]
  - to: [{operation: {paths: ["/pre/*"]}}]
  - to: [{operation: {paths: ["*.png"]}}]
  - when: [{key: "request.headers[x-any]", values: ["*"]}]`,
    requests: [
      [{ path: "/exact" }, "allow"],
      [{ path: "/exact/more" }, "deny", "none"],
      [{ path: "/EXACT" }, "deny", "none"],
      [{ path: "/pre/a/b" }, "allow"],
      [{ path: "/pre" }, "deny", "none"],
      [{ path: "/img/logo.png" }, "allow"],
      [{ path: "/img/logo.png?size=2" }, "allow"],
      [{ path: "/img/logo.jpg" }, "deny", "none"],
      [{ path: "/z", headers: { "x-any": "v" } }, "allow"],
      [{ path: "/z", headers: { "x-any": "" } }, "deny", "none"],
    ],
  },
  {
    id: "A16-template",
    title: "paths with {*} / {**} are Envoy URI templates (one segment / the rest)",
    policies: `
metadata: {name: p, namespace: default}
spec:
  rules:
  - to: [{operation: {paths: ["/users/{*}/orders", "/files/{**}", "/docs/{*}.pdf"]}}]`,
    requests: [
      [{ path: "/users/42/orders" }, "allow"],
      [{ path: "/users/42/orders?x=1" }, "allow"],
      [{ path: "/users//orders" }, "deny", "none"],
      [{ path: "/users/4/2/orders" }, "deny", "none"],
      [{ path: "/files/a/b/c.txt" }, "allow"],
      [{ path: "/files/" }, "allow"],
      [{ path: "/files" }, "deny", "none"],
      [{ path: "/docs/a.pdf" }, "allow"],
      [{ path: "/docs/a/b.pdf" }, "deny", "none"],
      [{ path: "/docs/.pdf" }, "deny", "none"],
    ],
  },
  {
    id: "A16-template-deny",
    title: "a DENY on a URI template with notPaths",
    policies: `
metadata: {name: d, namespace: default}
spec: {action: DENY, rules: [{to: [{operation: {notPaths: ["/api/{*}/health"]}}]}]}`,
    requests: [
      [{ path: "/api/v1/health" }, "allow"],
      [{ path: "/api/v1/admin" }, "deny", "ns[default]-policy[d]-rule[0]"],
    ],
  },
  {
    id: "A17",
    // An exact host is the exact authority: "example.com" does not match "example.com:8080"
    // (Istio security best practices, "Writing host match policies": add "example.com:*").
    title: "hosts match case-insensitively, the authority as sent (port included)",
    policies: `
metadata: {name: p, namespace: default}
spec: {rules: [{to: [{operation: {hosts: ["Example.COM", "*.svc.cluster.local", "api.io:*"]}}]}]}`,
    requests: [
      [{ authority: "example.com" }, "allow"],
      [{ authority: "EXAMPLE.com:8080" }, "deny", "none"],
      [{ authority: "reviews.default.SVC.cluster.local" }, "allow"],
      [{ authority: "reviews.default.svc.cluster.local:80" }, "deny", "none"],
      [{ authority: "API.io:443" }, "allow"],
      [{ authority: "other.com" }, "deny", "none"],
    ],
  },
  {
    id: "A17-notHosts",
    title: "notHosts in a DENY: a port on the authority does not make it the listed host",
    policies: `
metadata: {name: p, namespace: default}
spec: {action: DENY, rules: [{to: [{operation: {notHosts: ["good.com"]}}]}]}`,
    requests: [
      [{ authority: "GOOD.com" }, "allow"],
      [{ authority: "good.com:80" }, "deny", "ns[default]-policy[p]-rule[0]"],
    ],
  },
  {
    id: "A18-ports",
    title: "ports and notPorts use the connection's destination port",
    policies: `
metadata: {name: p, namespace: default}
spec: {rules: [{to: [{operation: {ports: ["8080", "9090"], notPorts: ["9090"]}}]}]}`,
    requests: [
      [{ destinationPort: 8080 }, "allow"],
      [{ destinationPort: 9090 }, "deny", "none"],
      [{ destinationPort: 80 }, "deny", "none"],
    ],
  },
  {
    id: "A18-when",
    title: "when: source.principal, source.namespace, destination.port, notValues",
    policies: `
metadata: {name: p, namespace: default}
spec:
  rules:
  - when:
    - {key: source.principal, values: ["cluster.local/ns/prod*"]}
    - {key: source.namespace, notValues: ["prod-us"]}
    - {key: destination.port, values: ["8080"]}
    - {key: "request.headers[User-Agent]", notValues: ["curl/*"]}`,
    requests: [
      [{ principal: PROD, destinationPort: 8080, headers: { "user-agent": "grpc-go" } }, "allow"],
      [
        { principal: PROD, destinationPort: 8080, headers: { "user-agent": "curl/8.0" } },
        "deny",
        "none",
      ],
      [{ principal: PROD, destinationPort: 8081 }, "deny", "none"],
      [
        { principal: "spiffe://cluster.local/ns/prod-us/sa/api", destinationPort: 8080 },
        "deny",
        "none",
      ],
      [{ principal: SLEEP, destinationPort: 8080 }, "deny", "none"],
      [{ destinationPort: 8080 }, "deny", "none"],
    ],
  },
  {
    id: "A18-ip",
    title: "when: source.ip and destination.ip take CIDRs (IPv4 and IPv6)",
    policies: `
metadata: {name: p, namespace: default}
spec:
  rules:
  - when: [{key: source.ip, values: ["10.0.0.0/8", "fd00::/8"]}, {key: destination.ip, notValues: ["10.0.1.9"]}]`,
    requests: [
      [{ sourceAddress: "10.20.30.40" }, "allow"],
      [{ sourceAddress: "fd12::1" }, "allow"],
      [{ sourceAddress: "11.0.0.1" }, "deny", "none"],
      [{ sourceAddress: "10.0.0.1", destinationAddress: "10.0.1.9" }, "deny", "none"],
    ],
  },
  {
    id: "A24",
    title: "plaintext has no identity: principals never match, notPrincipals [*] DENY blocks it",
    policies: `
metadata: {name: require-mtls, namespace: istio-system}
spec: {action: DENY, rules: [{from: [{source: {notPrincipals: ["*"]}}]}]}
---
metadata: {name: allow-foo, namespace: default}
spec: {rules: [{from: [{source: {namespaces: ["foo"]}}]}, {from: [{source: {principals: ["*"]}}], to: [{operation: {methods: ["GET"]}}]}]}`,
    requests: [
      [{}, "deny", "ns[istio-system]-policy[require-mtls]-rule[0]"],
      [{ principal: SLEEP, method: "POST" }, "allow"],
      [{ principal: ADMIN, method: "GET" }, "allow"],
      [{ principal: ADMIN, method: "POST" }, "deny", "none"],
    ],
  },
  {
    id: "A15-not",
    title: "notPrincipals / notNamespaces / notIpBlocks in an ALLOW rule",
    policies: `
metadata: {name: p, namespace: default}
spec:
  rules:
  - from: [{source: {notNamespaces: ["foo"], notPrincipals: ["*/sa/root"], notIpBlocks: ["10.9.0.0/16"]}}]`,
    requests: [
      [{ principal: PROD }, "allow"],
      [{ principal: SLEEP }, "deny", "none"],
      [{ principal: ADMIN }, "deny", "none"],
      [{ principal: PROD, sourceAddress: "10.9.1.1" }, "deny", "none"],
      [{}, "allow"],
    ],
  },
  {
    id: "A19",
    title: "principals match the id without spiffe://, namespaces the identity's /ns/ segment",
    policies: `
metadata: {name: p, namespace: default}
spec: {rules: [{from: [{source: {principals: ["cluster.local/ns/foo/sa/sleep"]}}, {source: {namespaces: ["prod-*"]}}]}]}`,
    requests: [
      [{ principal: SLEEP }, "allow"],
      [{ principal: PROD }, "allow"],
      [{ principal: "spiffe://cluster.local/ns/foo/sa/other" }, "deny", "none"],
    ],
  },
  {
    id: "A35",
    title: "a dry-run ALLOW is not an ALLOW policy: everything stays allowed",
    policies: `
metadata: {name: dry, namespace: default, annotations: {istio.io/dry-run: "true"}}
spec: {rules: [{to: [{operation: {methods: ["GET"]}}]}]}
---
metadata: {name: dry-deny, namespace: default, annotations: {istio.io/dry-run: "true"}}
spec: {action: DENY, rules: [{}]}`,
    requests: [[{ method: "POST" }, "allow"], [{ method: "GET" }, "allow"]],
  },
  {
    id: "A6",
    title: "AUDIT policies alone never deny",
    policies: `
metadata: {name: audit-all, namespace: default}
spec: {action: AUDIT, rules: [{}]}`,
    requests: [[{}, "allow"]],
  },
  {
    id: "R2",
    title: "the effective policy id is the first match in name order",
    policies: `
metadata: {name: z-deny, namespace: default}
spec: {action: DENY, rules: [{to: [{operation: {methods: ["DELETE"]}}]}]}
---
metadata: {name: a-deny, namespace: default}
spec: {action: DENY, rules: [{to: [{operation: {paths: ["/nope"]}}]}, {to: [{operation: {methods: ["DELETE"]}}]}]}`,
    requests: [[{ method: "DELETE" }, "deny", "ns[default]-policy[a-deny]-rule[1]"]],
  },
  {
    id: "A18-jwt",
    title: "without a verified JWT, requestPrincipals/request.auth.* are absent",
    policies: `
metadata: {name: p, namespace: default}
spec:
  rules:
  - from: [{source: {requestPrincipals: ["*"]}}]
  - when: [{key: "request.auth.claims[groups]", notValues: ["admin"]}]
    to: [{operation: {methods: ["GET"]}}]`,
    requests: [
      [{ method: "GET" }, "allow"],
      [{ method: "POST" }, "deny", "none"],
      // A client header named like the attribute is no JWT.
      [{ method: "POST", headers: { "request.auth.principal": "x/y" } }, "deny", "none"],
    ],
  },
  {
    id: "A18-jwt-principal",
    title: "requestPrincipals match <iss>/<sub> of the verified JWT (exact, *, iss/*, not*)",
    policies: `
metadata: {name: p, namespace: default}
spec:
  rules:
  - from: [{source: {requestPrincipals: ["https://issuer.example/*"], notRequestPrincipals: ["*/banned"]}}]
    to: [{operation: {methods: ["GET"]}}]
  - from: [{source: {requestPrincipals: ["other/alice"]}}]`,
    requests: [
      [{ requestAuth: jwt("https://issuer.example", "bob") }, "allow"],
      [{ requestAuth: jwt("https://issuer.example", "banned") }, "deny", "none"],
      [{ method: "POST", requestAuth: jwt("https://issuer.example", "bob") }, "deny", "none"],
      [{ method: "POST", requestAuth: jwt("other", "alice") }, "allow"],
      [{ requestAuth: jwt("other", "bob") }, "deny", "none"],
      [{}, "deny", "none"],
    ],
  },
  {
    id: "A18-jwt-when",
    title: "request.auth.principal/audiences/presenter/claims[..] (string, list, nested) match",
    policies: `
metadata: {name: p, namespace: default}
spec:
  rules:
  - when:
    - {key: request.auth.principal, values: ["iss/*"]}
    - {key: request.auth.audiences, values: ["api"]}
    - {key: request.auth.presenter, values: ["web*"]}
    - {key: "request.auth.claims[groups]", values: ["admin"]}
    - {key: "request.auth.claims[realm][role]", values: ["*ops"]}
    - {key: "request.auth.claims[tier]", notValues: ["free"]}`,
    requests: [
      [{ requestAuth: jwt("iss", "a") }, "allow"],
      [{ requestAuth: jwt("iss", "a", { groups: ["dev"] }) }, "deny", "none"],
      [{ requestAuth: jwt("iss", "a", { groups: "admin" }) }, "allow"],
      [{ requestAuth: jwt("iss", "a", { realm: { role: "dev" } }) }, "deny", "none"],
      [{ requestAuth: jwt("iss", "a", { tier: "free" }) }, "deny", "none"],
      [{ requestAuth: jwt("iss", "a", { tier: ["gold", "free"] }) }, "deny", "none"],
      [{ requestAuth: { ...jwt("iss", "a"), audiences: ["web", "other"] } }, "deny", "none"],
      [{ requestAuth: { ...jwt("iss", "a"), presenter: undefined } }, "deny", "none"],
      [{ requestAuth: jwt("other", "a") }, "deny", "none"],
    ],
  },
];

/** A verified JWT as the jwt_authn filter hands it on: groups [x, admin], realm.role secops. */
function jwt(iss: string, sub: string, claims: Record<string, unknown> = {}): RequestAuth {
  const all = { iss, sub, groups: ["x", "admin"], realm: { role: "secops" }, ...claims };
  return {
    principal: `${iss}/${sub}`,
    audiences: ["other", "api"],
    presenter: "webapp",
    claims: all,
  };
}
