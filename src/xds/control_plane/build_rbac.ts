/**
 * AuthorizationPolicies → Envoy `envoy.extensions.filters.http.rbac.v3.RBAC` filters, in the shape
 * istiod's authz builder gives a sidecar or waypoint inbound (pilot/pkg/security/authz): one RBAC
 * filter per action (AUDIT as LOG, then DENY, then ALLOW: DENY is decided before ALLOW, AUDIT only
 * logs), policies named `ns[<ns>]-policy[<name>]-rule[<i>]`, each rule's `to` entries as OR'd
 * permissions and `from` entries as OR'd principals, inside an entry fields AND, values OR, `not*`
 * fields as `not_rule`/`not_id`; `when` conditions are ANDed into every entry of their side.
 * dryRun policies go to `shadow_rules`. The node side (src/filters/first_party/rbac_config.ts)
 * turns this back into the authz plugin's config before it ACKs.
 */
import type {
  AuthorizationPolicy,
  PolicyCondition,
  PolicyOperation,
  PolicyRule,
  PolicySource,
} from "../../core/mod.ts";

type Json = Record<string, unknown>;

/** Envoy's jwt_authn filter name: the dynamic metadata namespace of the verified payload. */
const JWT_AUTHN_FILTER = "envoy.filters.http.jwt_authn";

const URI_TEMPLATE_TYPE_URL =
  "type.googleapis.com/envoy.extensions.path.match.uri_template.v3.UriTemplateMatchConfig";

/** Istio form (exact, `abc*`, `*abc`, `*`) → envoy.type.matcher.v3.StringMatcher. */
function strMatch(v: string, ignoreCase = false): Json {
  const ic = ignoreCase ? { ignoreCase: true } : {};
  if (v === "*") return { safeRegex: { regex: ".+" } };
  if (v.endsWith("*")) return { prefix: v.slice(0, -1), ...ic };
  if (v.startsWith("*")) return { suffix: v.slice(1), ...ic };
  return { exact: v, ...ic };
}

const quote = (s: string): string => s.replace(/[.*+?^${}()|[\]\\]/g, "\\$&");

const or = (key: "orRules" | "orIds", list: Json[]): Json =>
  list.length === 1 ? list[0]! : { [key]: key === "orRules" ? { rules: list } : { ids: list } };

function cidr(v: string): Json {
  const [ip, len] = v.split("/");
  const max = (ip ?? "").includes(":") ? 128 : 32;
  return { addressPrefix: ip, prefixLen: len === undefined ? max : Number(len) };
}

/** A HeaderMatcher as istiod writes `:method` and `:authority` matches: presence for `*`,
 * hosts case-insensitively. */
function header(name: string, v: string, host = false): Json {
  if (v === "*") return { name, presentMatch: true };
  if (host) return { name, stringMatch: strMatch(v, true) };
  if (v.endsWith("*")) return { name, prefixMatch: v.slice(0, -1) };
  if (v.startsWith("*")) return { name, suffixMatch: v.slice(1) };
  return { name, exactMatch: v };
}

/** One Operation field → permission leaves. */
function opLeaves(field: string, values: readonly string[]): Json[] {
  switch (field) {
    case "methods":
      return values.map((m) => ({ header: header(":method", m) }));
    case "hosts":
      return values.map((h) => ({ header: header(":authority", h, true) }));
    case "paths":
      return values.map((p) =>
        // istiod: a path with `{*}`/`{**}` is Envoy's URI template matcher (`*`, `**`).
        /\{\*\*?\}/.test(p)
          ? {
            uriTemplate: {
              name: "uri-template",
              typedConfig: {
                "@type": URI_TEMPLATE_TYPE_URL,
                pathTemplate: p.replaceAll("{**}", "**").replaceAll("{*}", "*"),
              },
            },
          }
          : { urlPath: { path: strMatch(p) } }
      );
    default:
      return values.map((p) => ({ destinationPort: Number(p) }));
  }
}

function principalName(m: Json): Json {
  return { authenticated: { principalName: m } };
}

/** One Source field → principal leaves. */
function srcLeaves(field: string, values: readonly string[]): Json[] {
  switch (field) {
    case "principals":
      return values.map((v) =>
        principalName(
          v === "*"
            ? { safeRegex: { regex: ".+" } }
            : v.startsWith("*")
            ? { safeRegex: { regex: `spiffe://.*${quote(v.slice(1))}` } }
            : strMatch(`spiffe://${v}`),
        )
      );
    case "namespaces":
      return values.map((v) =>
        principalName({
          safeRegex: { regex: `.*/ns/${v.split("*").map(quote).join(".*")}/.*` },
        })
      );
    case "serviceAccounts":
      return values.map((v) => {
        const [ns, sa] = v.split("/");
        return principalName({
          safeRegex: {
            regex: `spiffe://.+/ns/${quote(ns ?? "")}/(.+/|)sa/${quote(sa ?? "")}(/.+)?`,
          },
        });
      });
    case "ipBlocks":
      return values.map((v) => ({ directRemoteIp: cidr(v) }));
    case "remoteIpBlocks":
      return values.map((v) => ({ remoteIp: cidr(v) }));
    default: // requestPrincipals: Istio reads JWT claims from `istio_authn` dynamic metadata.
      return values.map((v) => ({
        metadata: {
          filter: "istio_authn",
          path: [{ key: "request.auth.principal" }],
          value: { stringMatch: strMatch(v) },
        },
      }));
  }
}

const OP_FIELDS = ["hosts", "ports", "methods", "paths"] as const;
const SRC_FIELDS = [
  "principals",
  "namespaces",
  "serviceAccounts",
  "ipBlocks",
  "remoteIpBlocks",
  "requestPrincipals",
] as const;

const neg = (f: string): string => `not${f[0]!.toUpperCase()}${f.slice(1)}`;

function operationRules(o: PolicyOperation): Json[] {
  const out: Json[] = [];
  const r = o as Record<string, readonly string[] | undefined>;
  for (const f of OP_FIELDS) {
    if (r[f]?.length) out.push(or("orRules", opLeaves(f, r[f]!)));
    const n = r[neg(f)];
    if (n?.length) out.push({ notRule: or("orRules", opLeaves(f, n)) });
  }
  return out;
}

function sourceIds(s: PolicySource): Json[] {
  const out: Json[] = [];
  const r = s as Record<string, readonly string[] | undefined>;
  for (const f of SRC_FIELDS) {
    if (r[f]?.length) out.push(or("orIds", srcLeaves(f, r[f]!)));
    const n = r[neg(f)];
    if (n?.length) out.push({ notId: or("orIds", srcLeaves(f, n)) });
  }
  return out;
}

/** A `when` key → (side, leaves of its values). Unknown keys become a leaf the node refuses,
 * so the policy is NACKed rather than enforced without its condition. */
function conditionLeaves(key: string, values: readonly string[]): ["perm" | "id", Json[]] {
  const h = /^request\.headers\[(.+)\]$/.exec(key);
  if (h) return ["id", values.map((v) => ({ header: header(h[1]!.toLowerCase(), v) }))];
  switch (key) {
    case "source.ip":
      return ["id", srcLeaves("ipBlocks", values)];
    case "remote.ip":
      return ["id", srcLeaves("remoteIpBlocks", values)];
    case "source.namespace":
      return ["id", srcLeaves("namespaces", values)];
    case "source.principal":
      return ["id", srcLeaves("principals", values)];
    case "source.serviceAccount":
      return ["id", srcLeaves("serviceAccounts", values)];
    case "request.auth.principal":
      return ["id", srcLeaves("requestPrincipals", values)];
    case "destination.ip":
      return ["perm", values.map((v) => ({ destinationIp: cidr(v) }))];
    case "destination.port":
      return ["perm", opLeaves("ports", values)];
    case "connection.sni":
      return ["perm", values.map((v) => ({ requestedServerName: strMatch(v) }))];
    default:
      return ["id", values.map(() => ({ metadata: { filter: key } }))];
  }
}

/** The claim path of a JWT `when` key (`request.auth.audiences` is the `aud` claim and
 * `request.auth.presenter` the `azp` claim, as istiod's generators read them), or undefined. */
function jwtClaimPath(key: string): string[] | undefined {
  if (key === "request.auth.audiences") return ["aud"];
  if (key === "request.auth.presenter") return ["azp"];
  const m = /^request\.auth\.claims((?:\[[^[\]]+\])+)$/.exec(key);
  return m ? [...m[1]!.matchAll(/\[([^[\]]+)\]/g)].map((x) => x[1]!) : undefined;
}

/** istiod's JWT claim matcher (authz model MetadataListValueMatcherForJWTClaims, extended form):
 * Envoy's jwt_authn payload metadata (`payload_in_metadata: payload`) at the claim path, matching
 * a string claim, or any element of a list claim, against the OR of the values. One leaf for all
 * values, as istiod's extended generators build it. */
function jwtClaimLeaf(claims: readonly string[], values: readonly string[]): Json {
  const each = values.map((v) => ({ stringMatch: strMatch(v) }));
  const value = each.length === 1 ? each[0]! : { orMatch: { valueMatchers: each } };
  return {
    metadata: {
      filter: JWT_AUTHN_FILTER,
      path: ["payload", ...claims].map((key) => ({ key })),
      value: { orMatch: { valueMatchers: [{ listMatch: { oneOf: value } }, value] } },
    },
  };
}

function conditions(when: readonly PolicyCondition[]): { perm: Json[]; id: Json[] } {
  const perm: Json[] = [];
  const id: Json[] = [];
  for (const c of when) {
    const claims = jwtClaimPath(c.key);
    for (const [vals, negate] of [[c.values, false], [c.notValues, true]] as const) {
      if (!vals?.length) continue;
      const [side, leaves] = claims
        ? ["id" as const, [jwtClaimLeaf(claims, vals)]]
        : conditionLeaves(c.key, vals);
      const node = or(side === "perm" ? "orRules" : "orIds", leaves);
      const wrapped = negate ? (side === "perm" ? { notRule: node } : { notId: node }) : node;
      (side === "perm" ? perm : id).push(wrapped);
    }
  }
  return { perm, id };
}

const andRules = (rules: Json[]): Json =>
  rules.length === 0 ? { any: true } : rules.length === 1 ? rules[0]! : { andRules: { rules } };
const andIds = (ids: Json[]): Json =>
  ids.length === 0 ? { any: true } : ids.length === 1 ? ids[0]! : { andIds: { ids } };

function policyOf(rule: PolicyRule): Json {
  const c = conditions(rule.when ?? []);
  const tos = rule.to?.length ? rule.to.map((t) => operationRules(t.operation)) : [[]];
  const froms = rule.from?.length ? rule.from.map((f) => sourceIds(f.source)) : [[]];
  return {
    permissions: tos.map((rs) => andRules([...rs, ...c.perm])),
    principals: froms.map((ids) => andIds([...ids, ...c.id])),
  };
}

/** Does any rule of the policy need the request (HTTP-only fields or conditions)? */
export function isHttpPolicy(p: AuthorizationPolicy): boolean {
  const r = (x: object, fs: readonly string[]) =>
    fs.some((f) => ((x as Record<string, unknown[] | undefined>)[f]?.length ?? 0) > 0);
  return p.rules.some((rule) =>
    (rule.when ?? []).length > 0 ||
    (rule.to ?? []).some((t) =>
      r(t.operation, ["hosts", "notHosts", "methods", "notMethods", "paths", "notPaths"])
    ) ||
    (rule.from ?? []).some((f) =>
      r(f.source, [
        "remoteIpBlocks",
        "notRemoteIpBlocks",
        "requestPrincipals",
        "notRequestPrincipals",
      ])
    )
  );
}

const ACTION = { AUDIT: "LOG", DENY: "DENY", ALLOW: "ALLOW" } as const;

/** The RBAC filter configs (proto3 JSON) for one workload's policies, in evaluation order. */
export function rbacFilters(
  policies: readonly AuthorizationPolicy[],
): { action: string; config: Json }[] {
  const out: { action: string; config: Json }[] = [];
  for (const action of ["AUDIT", "DENY", "ALLOW"] as const) {
    const of = policies.filter((p) => p.action === action);
    if (of.length === 0) continue;
    const live: Json = {};
    const shadow: Json = {};
    for (const p of [...of].sort((a, b) => idOf(a) < idOf(b) ? -1 : 1)) {
      p.rules.forEach((rule, i) => {
        (p.dryRun ? shadow : live)[`${idOf(p)}-rule[${i}]`] = policyOf(rule);
      });
    }
    const hasLive = of.some((p) => !p.dryRun);
    const hasShadow = of.some((p) => p.dryRun);
    // An ALLOW engine with policies that have no rules matches nothing: it denies (Istio).
    if (action !== "ALLOW" && Object.keys(live).length === 0 && !hasShadow) continue;
    out.push({
      action,
      config: {
        ...(hasLive ? { rules: { action: ACTION[action], policies: live } } : {}),
        ...(hasShadow ? { shadowRules: { action: ACTION[action], policies: shadow } } : {}),
      },
    });
  }
  return out;
}

const idOf = (p: AuthorizationPolicy): string => `ns[${p.namespace}]-policy[${p.name}]`;
