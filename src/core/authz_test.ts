import { assert, assertEquals } from "../../tests/support/assert.ts";
import { authorizeL4, stringMatch } from "./authz.ts";
import type { AuthorizationPolicy, Snapshot, Workload } from "./snapshot.ts";

const echo: Workload = {
  name: "echo",
  namespace: "default",
  serviceAccount: "echo",
  identity: "spiffe://cluster.local/ns/default/sa/echo",
  address: "127.0.1.3",
  ports: [8080],
  labels: { app: "echo" },
  mtlsMode: "PERMISSIVE",
};

function snap(policies: AuthorizationPolicy[]): Snapshot {
  return {
    version: "t",
    node: { name: "b", hbonePort: 15008, trustDomain: "cluster.local", network: "" },
    rootNamespace: "istio-system",
    workloads: [echo],
    services: [],
    policies,
    outboundTrafficPolicy: "ALLOW_ANY",
    timeouts: { connectMs: 1000, idleMs: 0, drainMs: 1000 },
    limits: { maxConnections: 100, poolMaxStreamsPerConnection: 100, poolIdleMs: 1000 },
  };
}

function pol(
  p: Partial<AuthorizationPolicy> & Pick<AuthorizationPolicy, "action">,
): AuthorizationPolicy {
  return { name: "p", namespace: "default", selector: undefined, dryRun: false, rules: [], ...p };
}

const sleep = "spiffe://cluster.local/ns/default/sa/sleep";
const other = "spiffe://cluster.local/ns/other/sa/client";
const attrs = (principal: string | undefined, port = 8080, ip = "127.0.1.2") => ({
  sourcePrincipal: principal,
  sourceIp: ip,
  destinationIp: echo.address,
  destinationPort: port,
});

Deno.test("string match forms: exact, prefix, suffix, presence", () => {
  assert(stringMatch("abc", "abc"));
  assert(!stringMatch("abc", "abcd"));
  assert(stringMatch("ab*", "abcd"));
  assert(stringMatch("*cd", "abcd"));
  assert(stringMatch("*", "x"));
  assert(!stringMatch("*", ""));
  assert(!stringMatch("*", undefined));
});

const table: [string, AuthorizationPolicy[], ReturnType<typeof attrs>, boolean][] = [
  ["no policy allows", [], attrs(sleep), true],
  ["spec {} (ALLOW, no rules) denies all", [pol({ action: "ALLOW" })], attrs(sleep), false],
  ["rules [{}] allows all", [pol({ action: "ALLOW", rules: [{}] })], attrs(sleep), true],
  [
    "ALLOW principal match",
    [
      pol({
        action: "ALLOW",
        rules: [{ from: [{ source: { principals: ["cluster.local/ns/default/sa/sleep"] } }] }],
      }),
    ],
    attrs(sleep),
    true,
  ],
  [
    "ALLOW principal miss denies",
    [
      pol({
        action: "ALLOW",
        rules: [{ from: [{ source: { principals: ["cluster.local/ns/default/sa/sleep"] } }] }],
      }),
    ],
    attrs(other),
    false,
  ],
  [
    "DENY wins over ALLOW",
    [
      pol({ action: "ALLOW", rules: [{}] }),
      pol({
        name: "d",
        action: "DENY",
        rules: [{ from: [{ source: { namespaces: ["default"] } }] }],
      }),
    ],
    attrs(sleep),
    false,
  ],
  [
    "notNamespaces",
    [
      pol({ action: "DENY", rules: [{ from: [{ source: { notNamespaces: ["default"] } }] }] }),
    ],
    attrs(other),
    false,
  ],
  [
    "plaintext never matches principals; notPrincipals * in DENY blocks plaintext",
    [
      pol({ action: "DENY", rules: [{ from: [{ source: { notPrincipals: ["*"] } }] }] }),
    ],
    attrs(undefined),
    false,
  ],
  [
    "notPrincipals * in DENY lets mTLS through",
    [
      pol({ action: "DENY", rules: [{ from: [{ source: { notPrincipals: ["*"] } }] }] }),
    ],
    attrs(sleep),
    true,
  ],
  [
    "ports: rule on 9090 does not allow 8080",
    [
      pol({ action: "ALLOW", rules: [{ to: [{ operation: { ports: ["9090"] } }] }] }),
    ],
    attrs(sleep),
    false,
  ],
  [
    "ipBlocks CIDR",
    [
      pol({ action: "ALLOW", rules: [{ from: [{ source: { ipBlocks: ["127.0.1.0/24"] } }] }] }),
    ],
    attrs(sleep),
    true,
  ],
  [
    "HTTP-only field narrows ALLOW at L4",
    [
      pol({ action: "ALLOW", rules: [{ to: [{ operation: { methods: ["GET"] } }] }] }),
    ],
    attrs(sleep),
    false,
  ],
  [
    "ALLOW rule with an HTTP-only from entry is dropped whole at L4 (Istio skips the rule)",
    [
      pol({
        action: "ALLOW",
        rules: [{
          from: [{ source: { requestPrincipals: ["*"] } }, { source: { namespaces: ["default"] } }],
        }],
      }),
    ],
    attrs(sleep),
    false,
  ],
  [
    "ALLOW rule with an HTTP-only to entry is dropped whole at L4",
    [
      pol({
        action: "ALLOW",
        rules: [{ to: [{ operation: { methods: ["GET"] } }, { operation: { ports: ["8080"] } }] }],
      }),
    ],
    attrs(sleep),
    false,
  ],
  [
    "ALLOW: the dropped rule leaves the policy's other rules",
    [
      pol({
        action: "ALLOW",
        rules: [{ to: [{ operation: { paths: ["/x"] } }] }, {
          to: [{ operation: { ports: ["8080"] } }],
        }],
      }),
    ],
    attrs(sleep),
    true,
  ],
  [
    "a policy attached by targetRefs is not enforced at L4 (ztunnel never gets it)",
    [pol({ action: "DENY", rules: [{}], targetServices: ["echo"] })],
    attrs(sleep),
    true,
  ],
  [
    "when source.serviceAccount at L4",
    [
      pol({
        action: "ALLOW",
        rules: [{ when: [{ key: "source.serviceAccount", values: ["default/sleep"] }] }],
      }),
    ],
    attrs(sleep),
    true,
  ],
  [
    "HTTP-only field widens DENY at L4",
    [
      pol({
        action: "DENY",
        rules: [{ to: [{ operation: { methods: ["POST"], ports: ["8080"] } }] }],
      }),
    ],
    attrs(sleep),
    false,
  ],
  [
    "dry-run ALLOW is not an ALLOW policy",
    [
      pol({
        action: "ALLOW",
        dryRun: true,
        rules: [{ from: [{ source: { principals: ["nobody"] } }] }],
      }),
    ],
    attrs(sleep),
    true,
  ],
  [
    "dry-run DENY never denies",
    [pol({ action: "DENY", dryRun: true, rules: [{}] })],
    attrs(sleep),
    true,
  ],
  ["AUDIT never changes the decision", [pol({ action: "AUDIT", rules: [{}] })], attrs(sleep), true],
  [
    "selector not matching the workload does not apply",
    [
      pol({ action: "ALLOW", selector: { app: "other" } }),
    ],
    attrs(sleep),
    true,
  ],
  [
    "root namespace policy applies mesh-wide",
    [
      pol({ action: "DENY", namespace: "istio-system", rules: [{}] }),
    ],
    attrs(sleep),
    false,
  ],
  [
    "other namespace policy does not apply",
    [
      pol({ action: "DENY", namespace: "other", rules: [{}] }),
    ],
    attrs(sleep),
    true,
  ],
  [
    "when source.namespace",
    [
      pol({ action: "ALLOW", rules: [{ when: [{ key: "source.namespace", values: ["other"] }] }] }),
    ],
    attrs(other),
    true,
  ],
  [
    "when destination.port notValues",
    [
      pol({
        action: "ALLOW",
        rules: [{ when: [{ key: "destination.port", notValues: ["8080"] }] }],
      }),
    ],
    attrs(sleep),
    false,
  ],
];

for (const [name, policies, a, allowed] of table) {
  Deno.test(`L4 authz: ${name}`, () => {
    assertEquals(authorizeL4(snap(policies), echo, a).allowed, allowed);
  });
}

Deno.test("L4 authz: reports the deciding policy id", () => {
  const d = authorizeL4(
    snap([pol({ name: "deny-all", action: "DENY", rules: [{}] })]),
    echo,
    attrs(sleep),
  );
  assertEquals(d.policy, "ns[default]-policy[deny-all]-rule[0]");
});

Deno.test("L4 authz: targetRefs on a TCP service applies to connections to that service's port only", () => {
  const db = {
    name: "db",
    namespace: "default",
    hostname: "db.default.svc.cluster.local",
    vips: [],
    subsets: [],
    inboundFilters: [],
    outboundFilters: [],
    ports: [{ port: 5432, targetPort: 8080, protocol: "TCP", name: "tcp" }],
    endpoints: [{ workload: "echo", namespace: "default", address: echo.address }],
  };
  const s = {
    ...snap([pol({ action: "DENY", rules: [{}], targetServices: ["db"] })]),
    services: [db],
  } as unknown as Snapshot;
  assertEquals(authorizeL4(s, echo, attrs(sleep, 8080)).allowed, false, "the db port");
  assertEquals(authorizeL4(s, echo, attrs(sleep, 9090)).allowed, true, "another port");
  const other = {
    ...snap([pol({ action: "DENY", rules: [{}], targetServices: ["other"] })]),
    services: [db],
  } as unknown as Snapshot;
  assertEquals(authorizeL4(other, echo, attrs(sleep, 8080)).allowed, true, "another service");
});
