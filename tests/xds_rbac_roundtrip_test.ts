/**
 * The control plane's AuthorizationPolicy → Envoy RBAC (istiod's shape) and the node's Envoy
 * RBAC → authz plugin config (src/filters/first_party/rbac_config.ts) compose to the policies
 * weft.yaml nodes run: same fields, same actions, Istio's policy ids and evaluation order.
 */
import assert from "node:assert/strict";
import { envoyRbacFilters } from "../src/xds/control_plane/mod.ts";
import { authzConfigFromEnvoyRbac } from "../src/filters/first_party/mod.ts";
import type { AuthorizationPolicy } from "../src/core/mod.ts";

const policy = (p: Partial<AuthorizationPolicy>): AuthorizationPolicy =>
  ({ name: "p", namespace: "default", action: "ALLOW", dryRun: false, rules: [], ...p }) as never;

const roundTrip = (ps: AuthorizationPolicy[]) =>
  envoyRbacFilters(ps).map((f) => [f.action, authzConfigFromEnvoyRbac(f.config).policies]);

Deno.test("RBAC round trip: HTTP operations, sources, conditions keep their meaning", () => {
  const out = roundTrip([
    policy({
      name: "get",
      rules: [{
        from: [{ source: { principals: ["cluster.local/ns/default/sa/sleep", "*/sa/x"] } }],
        to: [{
          operation: {
            methods: ["GET", "HEAD"],
            paths: ["/productpage", "/static/*"],
            hosts: ["*.example.com"],
            notPorts: ["9090"],
          },
        }],
      }],
    }),
    policy({
      name: "deny-hdr",
      action: "DENY",
      rules: [{
        from: [{ source: { namespaces: ["legacy*"], remoteIpBlocks: ["10.0.0.0/8"] } }],
        when: [{ key: "request.headers[X-Block]", values: ["yes"] }],
      }],
    }),
    policy({ name: "audit", action: "AUDIT", rules: [{ to: [{ operation: { paths: ["/a"] } }] }] }),
    policy({ name: "shadow", action: "DENY", dryRun: true, rules: [{}] }),
  ]);
  assert.deepEqual(out, [
    ["AUDIT", [{
      name: "ns[default]-policy[audit]",
      action: "AUDIT",
      dryRun: false,
      rules: [{ to: [{ operation: { paths: ["/a"] } }] }],
    }]],
    ["DENY", [
      {
        name: "ns[default]-policy[deny-hdr]",
        action: "DENY",
        dryRun: false,
        rules: [{
          from: [{ source: { namespaces: ["legacy*"], remoteIpBlocks: ["10.0.0.0/8"] } }],
          when: [{ key: "request.headers[x-block]", values: ["yes"] }],
        }],
      },
      { name: "ns[default]-policy[shadow]", action: "DENY", dryRun: true, rules: [{}] },
    ]],
    ["ALLOW", [{
      name: "ns[default]-policy[get]",
      action: "ALLOW",
      dryRun: false,
      rules: [{
        from: [{ source: { principals: ["cluster.local/ns/default/sa/sleep", "*/sa/x"] } }],
        to: [{
          operation: {
            hosts: ["*.example.com"],
            notPorts: ["9090"],
            methods: ["GET", "HEAD"],
            paths: ["/productpage", "/static/*"],
          },
        }],
      }],
    }]],
  ]);
});

Deno.test("RBAC round trip: an ALLOW policy without rules denies everything (Istio)", () => {
  assert.deepEqual(roundTrip([policy({ name: "nothing" })]), [["ALLOW", [{
    name: "rbac-allow-nothing",
    action: "ALLOW",
    dryRun: false,
    rules: [],
  }]]]);
  assert.deepEqual(roundTrip([policy({ name: "nothing", action: "DENY" })]), []);
});

Deno.test("RBAC round trip: a condition the node cannot enforce is refused, not dropped", () => {
  const [f] = envoyRbacFilters([policy({
    action: "DENY",
    rules: [{ when: [{ key: "connection.sni", values: ["x.example"] }] }],
  })]);
  assert.throws(() => authzConfigFromEnvoyRbac(f!.config), /requestedServerName/);
});

Deno.test("RBAC round trip: a STRICT PeerAuthentication's DENY (no identity) and port-level modes", () => {
  const out = roundTrip([policy({
    name: "istio_converted_peer_authentication_0",
    namespace: "istio-system",
    action: "DENY",
    rules: [{
      from: [{ source: { notPrincipals: ["*"] } }],
      to: [{ operation: { notPorts: ["8081"] } }],
    }],
  })]);
  assert.deepEqual(out, [["DENY", [{
    name: "ns[istio-system]-policy[istio_converted_peer_authentication_0]",
    action: "DENY",
    dryRun: false,
    rules: [{
      from: [{ source: { notPrincipals: ["*"] } }],
      to: [{ operation: { notPorts: ["8081"] } }],
    }],
  }]]]);
});

Deno.test("RBAC round trip: `{*}`/`{**}` paths travel as Envoy URI templates (istiod's uri_template)", () => {
  const paths = ["/api/{*}/items", "/files/{**}", "/exact"];
  const [f] = envoyRbacFilters([policy({
    action: "DENY",
    rules: [{ to: [{ operation: { paths, notPaths: ["/files/{*}/public"] } }] }],
  })]);
  const text = JSON.stringify(f!.config);
  assert.match(text, /"pathTemplate":"\/api\/\*\/items"/);
  assert.match(text, /"pathTemplate":"\/files\/\*\*"/);
  assert.match(text, /"urlPath":\{"path":\{"exact":"\/exact"\}\}/);
  assert.deepEqual(authzConfigFromEnvoyRbac(f!.config).policies[0]!.rules, [{
    to: [{ operation: { paths, notPaths: ["/files/{*}/public"] } }],
  }]);
});

Deno.test("RBAC round trip: requestPrincipals (and request.auth.principal) keep their values", () => {
  const out = roundTrip([policy({
    name: "jwt",
    rules: [{
      from: [{
        source: { requestPrincipals: ["https://a/*", "*"], notRequestPrincipals: ["*/banned"] },
      }],
      when: [{ key: "request.auth.principal", values: ["https://a/alice"] }],
    }],
  })]);
  assert.deepEqual(out, [["ALLOW", [{
    name: "ns[default]-policy[jwt]",
    action: "ALLOW",
    dryRun: false,
    rules: [{
      from: [{ source: {} }], // the plugin's empty source matches every peer
      when: [
        { key: "request.auth.principal", values: ["https://a/*", "*"] },
        { key: "request.auth.principal", notValues: ["*/banned"] },
        { key: "request.auth.principal", values: ["https://a/alice"] },
      ],
    }],
  }]]]);
});
