/** Envoy RBAC as Istio compiles it → authzConfigFromEnvoyRbac → the real authz plugin (built
 * from plugins/authz/src, loaded by the filter host) → allow/deny per request. Istio emits one
 * RBAC filter per action (A31), so DENY and ALLOW are two filters run in order. */
import assert from "node:assert/strict";
import type { FilterOutcome, HttpFilter } from "../../core/mod.ts";
import {
  decide,
  loadPlugin,
  prepare,
  request,
  type RequestSpec,
} from "../../../plugins/_common/plugin_harness.ts";
import { AUTHZ_SOURCES } from "../../../plugins/authz/build.ts";
import { authzConfigFromEnvoyRbac } from "./rbac_config.ts";
import { createRegistry, fromJson, toBinary } from "@bufbuild/protobuf";
import { RBACSchema, UriTemplateMatchConfigSchema } from "../../xds/proto.ts";
import { decodeRBAC, toJsonRBAC } from "../../xds/gen/node_codec.ts";

await prepare("authz", AUTHZ_SOURCES);

const any = { any: true };
const method = (v: string) => ({ header: { name: ":method", stringMatch: { exact: v } } });
const nsRegex = (ns: string) => ({
  authenticated: { principalName: { safeRegex: { regex: `.*/ns/${ns}/.*` } } },
});

// metadata {name: deny-admin}: DENY from notPrincipals ["*"] to POST /admin* (rule 1 of 2).
const DENY = {
  rules: {
    action: "DENY",
    policies: {
      "ns[default]-policy[deny-admin]-rule[1]": {
        permissions: [{
          andRules: {
            rules: [
              { orRules: { rules: [{ urlPath: { path: { prefix: "/admin" } } }] } },
              { orRules: { rules: [method("POST")] } },
            ],
          },
        }],
        principals: [{
          andIds: {
            ids: [{
              notId: {
                orIds: {
                  ids: [{ authenticated: { principalName: { safeRegex: { regex: ".+" } } } }],
                },
              },
            }],
          },
        }],
      },
    },
  },
};

// ALLOW from namespaces [frontend] to GET|HEAD /api/* on port 8080 when x-tenant = t1.
const ALLOW = {
  rules: {
    policies: {
      "ns[default]-policy[frontend-reads]-rule[0]": {
        permissions: [{
          andRules: {
            rules: [
              { orRules: { rules: [method("GET"), method("HEAD")] } },
              { orRules: { rules: [{ urlPath: { path: { prefix: "/api/" } } }] } },
              { orRules: { rules: [{ destinationPort: 8080 }] } },
            ],
          },
        }],
        principals: [{
          andIds: {
            ids: [
              { orIds: { ids: [nsRegex("frontend")] } },
              { orIds: { ids: [{ header: { name: "x-tenant", stringMatch: { exact: "t1" } } }] } },
            ],
          },
        }],
      },
    },
  },
  shadowRules: {
    action: "DENY",
    policies: {
      "ns[default]-policy[dry]-rule[0]": { permissions: [method("HEAD")], principals: [any] },
    },
  },
  shadowRulesStatPrefix: "istio_dry_run_deny_",
};

function load(rbac: unknown): Promise<HttpFilter> {
  return loadPlugin("authz", AUTHZ_SOURCES, authzConfigFromEnvoyRbac(rbac));
}

/** Runs the chain; "allow" or the denial's response details. */
async function run(chain: HttpFilter[], spec: RequestSpec): Promise<string> {
  const req = request(spec);
  for (const f of chain) {
    const out: FilterOutcome = await decide(f, req);
    if (out.action === "respond") {
      assert.equal(out.response.status, 403);
      return out.response.details ?? "?";
    }
    assert.equal(out.action, "continue");
  }
  return "allow";
}

const FRONTEND = "spiffe://cluster.local/ns/frontend/sa/web";
const T1 = { "x-tenant": "t1" };
const denied = (id: string) => `rbac_access_denied_matched_policy[${id}]`;

Deno.test("Envoy RBAC (Istio-compiled DENY + ALLOW filters) enforced by the authz plugin", async () => {
  const chain = [await load(DENY), await load(ALLOW)];
  const cases: [RequestSpec, string][] = [
    [{ method: "POST", path: "/admin/x" }, denied("ns[default]-policy[deny-admin]-rule[1]")],
    [{ method: "POST", path: "/admin/x", principal: FRONTEND }, denied("none")],
    [{ path: "/api/a", principal: FRONTEND, headers: T1 }, "allow"],
    [{ method: "HEAD", path: "/api/a?q=1", principal: FRONTEND, headers: T1 }, "allow"],
    [{ path: "/api/a", principal: FRONTEND }, denied("none")],
    [
      { path: "/api/a", principal: "spiffe://cluster.local/ns/other/sa/web", headers: T1 },
      denied("none"),
    ],
    [{ path: "/api/a", headers: T1 }, denied("none")],
    [{ method: "PUT", path: "/api/a", principal: FRONTEND, headers: T1 }, denied("none")],
    [{ path: "/api/a", principal: FRONTEND, headers: T1, destinationPort: 9090 }, denied("none")],
    [{ path: "/other", principal: FRONTEND, headers: T1 }, denied("none")],
  ];
  for (const [spec, want] of cases) {
    assert.equal(await run(chain, spec), want, JSON.stringify(spec));
  }
});

Deno.test("Envoy RBAC R6/R7 through the plugin: absent rules, empty ALLOW, shadow-only", async () => {
  const spec = { path: "/x", principal: FRONTEND };
  assert.equal(await run([await load({})], spec), "allow");
  assert.equal(await run([await load({ rules: {} })], spec), denied("none"));
  assert.equal(await run([await load({ rules: { action: "DENY" } })], spec), "allow");
  const shadow = await load({
    shadowRules: { policies: {} },
    shadowRulesStatPrefix: "istio_dry_run_allow_",
  });
  const req = request(spec);
  const out = await decide(shadow, req);
  assert.equal(out.action, "continue");
  assert.equal(req.filterState.get("istio_dry_run_allow_shadow_engine_result"), "denied");
  // The dry-run DENY in ALLOW's shadow rules matches HEAD only and never enforces.
  const allow = await load(ALLOW);
  const head = request({ method: "HEAD", path: "/api/a", principal: FRONTEND, headers: T1 });
  assert.equal((await decide(allow, head)).action, "continue");
  assert.equal(head.filterState.get("istio_dry_run_deny_shadow_engine_result"), "denied");
  assert.equal(
    head.filterState.get("istio_dry_run_deny_shadow_effective_policy_id"),
    "ns[default]-policy[dry]-rule[0]",
  );
});

Deno.test("Envoy RBAC serviceAccounts regex, source IPs and case-insensitive hosts through the plugin", async () => {
  const sa = { safeRegex: { regex: "spiffe://.+/ns/default/(.+/|)sa/sleep(/.+)?" } };
  const filter = await load({
    rules: {
      policies: {
        "ns[default]-policy[p]-rule[0]": {
          permissions: [{
            header: {
              name: ":authority",
              stringMatch: { suffix: ".example.com", ignoreCase: true },
            },
          }],
          principals: [
            { andIds: { ids: [{ orIds: { ids: [{ authenticated: { principalName: sa } }] } }] } },
            { directRemoteIp: { addressPrefix: "192.168.0.0", prefixLen: 16 } },
          ],
        },
      },
    },
  });
  const host = "API.Example.COM";
  const cases: [RequestSpec, string][] = [
    [{ authority: host, principal: "spiffe://cluster.local/ns/default/sa/sleep" }, "allow"],
    [{ authority: host, principal: "spiffe://cluster.local/ns/default/sa/sleepy" }, denied("none")],
    [{ authority: host, sourceAddress: "192.168.3.4" }, "allow"],
    [{ authority: host, sourceAddress: "10.0.0.9" }, denied("none")],
    [{ authority: "example.org", sourceAddress: "192.168.3.4" }, denied("none")],
  ];
  for (const [spec, want] of cases) {
    assert.equal(await run([filter], spec), want, JSON.stringify(spec));
  }
});

Deno.test("Envoy RBAC uri_template (istiod's `{*}`/`{**}` paths) through the node's codec and the plugin", async () => {
  // As istiod writes `paths: ["/api/{*}/items", "/files/{**}"]` (a DENY) — Envoy's URI template
  // matcher inside the permission; the node decodes the bytes with its own codec, writes the
  // proto3 JSON and converts it for the plugin.
  const template = (t: string) => ({
    uriTemplate: {
      name: "uri-template",
      typedConfig: {
        "@type":
          "type.googleapis.com/envoy.extensions.path.match.uri_template.v3.UriTemplateMatchConfig",
        pathTemplate: t,
      },
    },
  });
  const rbac = {
    rules: {
      action: "DENY",
      policies: {
        "ns[default]-policy[tpl]-rule[0]": {
          permissions: [{
            andRules: {
              rules: [{
                orRules: {
                  rules: [
                    template("/api/*/items"),
                    template("/files/**"),
                    template("/**/admin/edit"), // istiod's "/{**}/admin/edit": literals after **
                  ],
                },
              }],
            },
          }],
          principals: [any],
        },
      },
    },
  };
  const bytes = toBinary(
    RBACSchema,
    fromJson(RBACSchema, rbac, { registry: createRegistry(UriTemplateMatchConfigSchema) }),
  );
  const json = toJsonRBAC(decodeRBAC(bytes));
  const chain = [await load(json)];
  const deny = denied("ns[default]-policy[tpl]-rule[0]");
  const cases: [string, string][] = [
    ["/api/v1/items", deny],
    ["/api/v1/v2/items", "allow"],
    ["/api/items", "allow"],
    ["/files/a/b/c", deny],
    ["/files", "allow"],
    ["/other", "allow"],
    ["/x/y/admin/edit", deny],
    ["/x/admin/edit", deny],
    ["/x/admin/edit/more", "allow"],
  ];
  for (const [path, want] of cases) assert.equal(await run(chain, { path }), want, path);
  // Named variables are the same operators; a partial segment is not expressible (a problem).
  assert.equal(
    JSON.stringify(authzConfigFromEnvoyRbac({
      rules: {
        action: "DENY",
        policies: { p: { permissions: [template("/a/{id}/b/{rest=**}")], principals: [any] } },
      },
    })).includes("/a/{*}/b/{**}"),
    true,
  );
  for (const t of ["/a/x*", "/**/a/*", "/**/**"]) {
    assert.throws(() =>
      authzConfigFromEnvoyRbac({
        rules: {
          action: "DENY",
          policies: { p: { permissions: [template(t)], principals: [any] } },
        },
      }), t);
  }
});
