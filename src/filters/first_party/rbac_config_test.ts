/** Envoy RBAC (the shapes istio/istio `pilot/pkg/security/authz/model` compiles, A19) → authz
 * plugin config. Cases follow l7-semantics.md §1.3–1.4 (A-items) and §2 (R-items). */
import assert from "node:assert/strict";
import { authzConfigFromEnvoyRbac } from "./rbac_config.ts";

// Istio's builders: a rule's fields AND (`andRules`/`andIds`), each field's values OR, `not*`
// fields negate an OR.
const and = (...rules: unknown[]) => ({ andRules: { rules } });
const or = (...rules: unknown[]) => ({ orRules: { rules } });
const not = (r: unknown) => ({ notRule: r });
const andIds = (...ids: unknown[]) => ({ andIds: { ids } });
const orIds = (...ids: unknown[]) => ({ orIds: { ids } });
const notId = (r: unknown) => ({ notId: r });
const any = { any: true };
const exact = (v: string) => ({ exact: v });
const regex = (r: string) => ({ safeRegex: { regex: r } });
const peer = (m: unknown) => ({ authenticated: { principalName: m } });
const method = (v: string) => ({ header: { name: ":method", stringMatch: exact(v) } });
const urlPath = (m: unknown) => ({ urlPath: { path: m } });
const header = (name: string, m: Record<string, unknown>) => ({ header: { name, ...m } });
const cidr = (a: string, n: number) => ({ addressPrefix: a, prefixLen: n });

function one(permissions: unknown[], principals: unknown[], name = "p"): unknown {
  const cfg = authzConfigFromEnvoyRbac({
    rules: { policies: { [name]: { permissions, principals } } },
  });
  assert.equal(cfg.policies.length, 1);
  return cfg.policies[0]?.rules.at(-1);
}

const CASES: [string, unknown[], unknown[], unknown][] = [
  [
    "A19 principals: exact, prefix, suffix (regex), presence (.+); spiffe:// stripped",
    [and(any)],
    [andIds(orIds(
      peer(exact("spiffe://cluster.local/ns/default/sa/sleep")),
      peer({ prefix: "spiffe://cluster.local/ns/web/" }),
      peer(regex("spiffe://.*/sa/bookinfo\\-productpage")),
      peer(regex(".+")),
    ))],
    {
      from: [{
        source: {
          principals: [
            "cluster.local/ns/default/sa/sleep",
            "cluster.local/ns/web/*",
            "*/sa/bookinfo-productpage",
            "*",
          ],
        },
      }],
    },
  ],
  [
    "A19 namespaces: .*/ns/<ns>/.* (with * → .*) and notNamespaces",
    [and(any)],
    [andIds(
      orIds(peer(regex(".*/ns/foo/.*")), peer(regex(".*/ns/team-.*/.*"))),
      notId(orIds(peer(regex(".*/ns/kube-system/.*")))),
    )],
    { from: [{ source: { namespaces: ["foo", "team-*"], notNamespaces: ["kube-system"] } }] },
  ],
  [
    "A19 serviceAccounts regex → ns/sa; authenticated without name = any mTLS peer",
    [and(any)],
    [
      andIds(orIds(peer(regex("spiffe://.+/ns/default/(.+/|)sa/sleep\\.v1(/.+)?")))),
      andIds({ authenticated: {} }),
    ],
    {
      from: [{ source: { serviceAccounts: ["default/sleep.v1"] } }, {
        source: { principals: ["*"] },
      }],
    },
  ],
  [
    "A15 operation: ports, methods, paths (exact/prefix/suffix/.+) and their not* twins",
    [
      and(
        or(method("GET"), method("HEAD")),
        or(urlPath(exact("/x")), urlPath({ prefix: "/api/" }), urlPath({ suffix: ".css" })),
        or({ destinationPort: 8080 }),
        not(or(method("DELETE"))),
        not(or(urlPath(regex(".+")))),
      ),
      and(not(or({ destinationPort: 9090 }, { destinationPort: 9091 }))),
    ],
    [andIds(any)],
    {
      to: [
        {
          operation: {
            methods: ["GET", "HEAD"],
            paths: ["/x", "/api/*", "*.css"],
            ports: ["8080"],
            notMethods: ["DELETE"],
            notPaths: ["*"],
          },
        },
        { operation: { notPorts: ["9090", "9091"] } },
      ],
    },
  ],
  [
    "A17 hosts: Istio's case-insensitive matchers and (?i) regexes",
    [and(or(
      header(":authority", { stringMatch: { exact: "a.com", ignoreCase: true } }),
      header(":authority", { stringMatch: { suffix: ".b.com", ignoreCase: true } }),
      header("Host", { safeRegexMatch: { regex: "(?i)c\\.com.*" } }),
      header(":authority", { presentMatch: true }),
    ))],
    [any],
    { to: [{ operation: { hosts: ["a.com", "*.b.com", "c.com*", "*"] } }] },
  ],
  [
    "A18 when request.headers (copied into each from by Istio) → one rule-level condition",
    [and(any)],
    [
      andIds(
        orIds(peer(exact("spiffe://td/ns/a/sa/x"))),
        orIds(header("X-Tenant", { stringMatch: exact("t1") })),
        notId(orIds(header("x-debug", { presentMatch: true }))),
      ),
      andIds(
        orIds(peer(regex(".*/ns/b/.*"))),
        orIds(header("X-Tenant", { stringMatch: exact("t1") })),
        notId(orIds(header("x-debug", { presentMatch: true }))),
      ),
    ],
    {
      from: [{ source: { principals: ["td/ns/a/sa/x"] } }, { source: { namespaces: ["b"] } }],
      when: [
        { key: "request.headers[x-tenant]", values: ["t1"] },
        { key: "request.headers[x-debug]", notValues: ["*"] },
      ],
    },
  ],
  [
    "A18 IPs, destination.ip, JWT principals; destination.port when → ports",
    [and(
      or({ destinationIp: cidr("10.1.0.0", 16) }),
      or({ destinationPort: 443 }),
    )],
    [andIds(
      orIds({ directRemoteIp: cidr("10.0.0.0", 8) }, { directRemoteIp: cidr("::1", 128) }),
      notId(orIds({ remoteIp: cidr("192.168.0.0", 16) })),
      notId(
        orIds({
          metadata: {
            filter: "istio_authn",
            path: [{ key: "request.auth.principal" }],
            value: { stringMatch: { safeRegex: { regex: ".+" } } },
          },
        }),
      ),
    )],
    {
      from: [{
        source: {
          ipBlocks: ["10.0.0.0/8", "::1/128"],
          notRemoteIpBlocks: ["192.168.0.0/16"],
        },
      }],
      to: [{ operation: { ports: ["443"] } }],
      when: [
        { key: "destination.ip", values: ["10.1.0.0/16"] },
        { key: "request.auth.principal", notValues: ["*"] },
      ],
    },
  ],
  [
    "R3 a top-level OR over several attributes splits into several to/from entries",
    [or(method("GET"), or(and(urlPath(exact("/a")), method("PUT")), { destinationPort: 81 }))],
    [orIds(peer(exact("spiffe://td/ns/a/sa/x")), { remoteIp: cidr("10.0.0.0", 8) })],
    {
      from: [{ source: { principals: ["td/ns/a/sa/x"] } }, {
        source: { remoteIpBlocks: ["10.0.0.0/8"] },
      }],
      to: [
        { operation: { methods: ["GET"] } },
        { operation: { paths: ["/a"], methods: ["PUT"] } },
        {
          operation: { ports: ["81"] },
        },
      ],
    },
  ],
  [
    "A13/R3 any permission and principal → the empty rule (matches everything)",
    [and(any), any],
    [orIds(any, peer(exact("spiffe://x")))],
    {},
  ],
];

for (const [title, permissions, principals, want] of CASES) {
  Deno.test(`authzConfigFromEnvoyRbac: ${title}`, () => {
    assert.deepEqual(one(permissions, principals), want);
  });
}

const rbac = (rules: unknown, shadowRules?: unknown) => ({
  rules,
  ...(shadowRules ? { shadowRules, shadowRulesStatPrefix: "istio_dry_run_allow_" } : {}),
});
const pol = { permissions: [any], principals: [any] };

Deno.test("authzConfigFromEnvoyRbac R1/R6/R7: actions, absent rules, empty ALLOW, shadow rules", () => {
  assert.deepEqual(authzConfigFromEnvoyRbac({}), { policies: [] });
  assert.deepEqual(authzConfigFromEnvoyRbac(undefined), { policies: [] });
  assert.deepEqual(authzConfigFromEnvoyRbac(rbac({ action: "ALLOW" })).policies, [
    { name: "rbac-allow-nothing", action: "ALLOW", dryRun: false, rules: [] },
  ]);
  assert.deepEqual(authzConfigFromEnvoyRbac(rbac({ action: "DENY" })).policies, []);
  const cfg = authzConfigFromEnvoyRbac({
    rules: { action: "LOG", policies: { b: pol, a: pol } },
    shadowRules: { action: "DENY", policies: { d: pol } },
  });
  assert.deepEqual(cfg.policies.map((p) => [p.name, p.action, p.dryRun]), [
    ["a", "AUDIT", false],
    ["b", "AUDIT", false],
    ["d", "DENY", true],
  ]);
  const shadowOnly = authzConfigFromEnvoyRbac(rbac(undefined, { policies: {} }));
  assert.deepEqual(shadowOnly.policies, [
    { name: "rbac-shadow-allow-nothing", action: "ALLOW", dryRun: true, rules: [] },
  ]);
  assert.deepEqual(
    authzConfigFromEnvoyRbac(rbac(undefined, { action: "LOG", policies: { a: pol } })).policies,
    [],
  );
  // Numeric enums and snake_case field names (any proto3 JSON printer) are read too.
  const snake = authzConfigFromEnvoyRbac({
    rules: {
      action: 1,
      policies: {
        x: { permissions: [{ url_path: { path: { exact: "/a" } } }], principals: [any] },
      },
    },
  });
  assert.deepEqual(snake.policies, [
    {
      name: "x",
      action: "DENY",
      dryRun: false,
      rules: [{ to: [{ operation: { paths: ["/a"] } }] }],
    },
  ]);
});

Deno.test("authzConfigFromEnvoyRbac A30/R2: Istio ids keep their rule index, name order kept", () => {
  const cfg = authzConfigFromEnvoyRbac(rbac({
    action: "DENY",
    policies: {
      "ns[default]-policy[p]-rule[2]": pol,
      "ns[default]-policy[p]-rule[0]": pol,
      "custom": pol,
    },
  }));
  assert.deepEqual(cfg.policies.map((p) => [p.name, p.rules.length]), [
    ["custom", 1],
    ["ns[default]-policy[p]", 1],
    ["ns[default]-policy[p]", 3],
  ]);
  const pad = cfg.policies[2]?.rules[0];
  assert.deepEqual(pad, { to: [{ operation: { methods: ["*"], notMethods: ["*"] } }] });
});

const BAD: [string, unknown, RegExp][] = [
  [
    "contains",
    { permissions: [urlPath({ contains: "adm" })], principals: [any] },
    /rules\.policies\["p"\]\.permissions\[0\]\.urlPath\.path\.contains: substring matching/,
  ],
  [
    "arbitrary regex",
    { permissions: [any], principals: [peer(regex("spiffe://td/ns/(a|b)/.*"))] },
    /principals\[0\]\.authenticated\.principalName\.safeRegex\.regex: .* not a principal regex/,
  ],
  [
    "AND inside OR inside AND",
    {
      permissions: [and(or(and(method("GET"), urlPath(exact("/a"))), method("POST")))],
      principals: [any],
    },
    /permissions\[0\]\.andRules\.rules\[0\]\.orRules\.rules\[0\]\.andRules: nested AND/,
  ],
  [
    "OR across attributes",
    { permissions: [and(or(method("GET"), urlPath(exact("/a"))))], principals: [any] },
    /permissions\[0\]\.andRules\.rules\[0\]\.orRules: an OR must range over one attribute/,
  ],
  [
    "conditions that differ between OR entries",
    {
      permissions: [any],
      principals: [
        andIds(header("x", { exactMatch: "1" })),
        andIds(peer(exact("spiffe://a"))),
      ],
    },
    /principals\[1\]: header\/destination\.ip conditions differ/,
  ],
  [
    "CEL condition",
    { ...pol, condition: { constExpr: {} } },
    /\["p"\]\.condition: unsupported field/,
  ],
  ["NOT any", { permissions: [not(any)], principals: [any] }, /notRule: NOT any/],
  [
    "port 0",
    { permissions: [{ destinationPort: 0 }], principals: [any] },
    /destinationPort: must be a port/,
  ],
  [
    "case-sensitive host",
    { permissions: [header(":authority", { exactMatch: "a.com" })], principals: [any] },
    /header\.exactMatch: host matchers must be case-insensitive/,
  ],
  [
    "ignoreCase path",
    { permissions: [urlPath({ exact: "/a", ignoreCase: true })], principals: [any] },
    /urlPath\.path\.ignoreCase: case-insensitive matching is not expressible/,
  ],
  [
    "empty principals",
    { permissions: [any], principals: [] },
    /\["p"\]\.principals: must be a non-empty list/,
  ],
  [
    "non-SPIFFE principal",
    { permissions: [any], principals: [peer(exact("CN=foo"))] },
    /principalName: non-SPIFFE/,
  ],
  [
    "exact value with a wildcard star",
    { permissions: [method("GE*")], principals: [any] },
    /stringMatch\.exact: exact value "GE\*" starts or ends with '\*'/,
  ],
  [
    "SNI (the host does not expose it)",
    { permissions: [{ requestedServerName: exact("a") }], principals: [any] },
    /permissions\[0\]\.requestedServerName: the weft filter host does not expose the SNI/,
  ],
  [
    "other metadata",
    { permissions: [any], principals: [{ metadata: { filter: "envoy.lb" } }] },
    /principals\[0\]\.metadata: only istio_authn/,
  ],
];

for (const [title, policy, want] of BAD) {
  Deno.test(`authzConfigFromEnvoyRbac rejects with its path: ${title}`, () => {
    assert.throws(
      () => authzConfigFromEnvoyRbac(rbac({ policies: { p: policy } })),
      (e: Error & { code?: string }) => {
        assert.equal(e.code, "config_invalid");
        assert.match(e.message, /^Cannot convert Envoy RBAC config: /);
        assert.match(e.message, want);
        return true;
      },
    );
  });
}

Deno.test("authzConfigFromEnvoyRbac reports every bad policy and unknown top-level fields", () => {
  assert.throws(
    () =>
      authzConfigFromEnvoyRbac({
        rules: {
          policies: {
            a: { permissions: [urlPath({ contains: "x" })], principals: [any] },
            b: pol,
            c: { permissions: [any], principals: [{ urlPath: { path: exact("/") } }] },
          },
        },
      }),
    /policies\["a"\].*; rules\.policies\["c"\]\.principals\[0\]\.urlPath: principal kind not expressible/,
  );
  assert.throws(
    () => authzConfigFromEnvoyRbac({ matcher: {} }),
    /Cannot convert Envoy RBAC config: matcher: unsupported field/,
  );
  assert.throws(() => authzConfigFromEnvoyRbac("x"), /\(root\): must be an object/);
  assert.throws(
    () => authzConfigFromEnvoyRbac({ rules: { action: "CUSTOM" } }),
    /rules\.action: must be ALLOW, DENY or LOG/,
  );
});
