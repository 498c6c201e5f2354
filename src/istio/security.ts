/**
 * security.istio.io: AuthorizationPolicy and PeerAuthentication. The policy keeps Istio's field
 * names (core's AuthorizationPolicy type) so core's L4 evaluation, the xDS Authorization builder
 * and the L7 authz filter all read the same object.
 */
import type { AuthorizationPolicy, PolicyCondition, PolicyRule } from "../core/mod.ts";
import { isValidCidr } from "../core/mod.ts";
import { type Checker, isObj, type Raw } from "./check.ts";
import { meta, policyTarget, workloadSelector } from "./meta.ts";
import type { MtlsMode, NamedPolicy, PeerAuthentication } from "./types.ts";

const SOURCE = [
  "principals",
  "notPrincipals",
  "requestPrincipals",
  "notRequestPrincipals",
  "namespaces",
  "notNamespaces",
  "serviceAccounts",
  "notServiceAccounts",
  "ipBlocks",
  "notIpBlocks",
  "remoteIpBlocks",
  "notRemoteIpBlocks",
] as const;
const OPERATION = [
  "hosts",
  "notHosts",
  "ports",
  "notPorts",
  "methods",
  "notMethods",
  "paths",
  "notPaths",
] as const;
/** Istio's documented `when` keys (authorization conditions page). */
const WHEN_KEYS = [
  /^request\.headers\[[^\]]+\]$/,
  /^source\.(ip|namespace|principal|serviceAccount)$/,
  /^remote\.ip$/,
  /^destination\.(ip|port)$/,
  /^connection\.sni$/,
  /^request\.auth\.(principal|audiences|presenter)$/,
  /^request\.auth\.claims(\[[^\]]+\])+$/,
  /^experimental\.envoy\.filters\..+$/,
];

export function parseAuthorizationPolicy(c: Checker, doc: Raw): NamedPolicy {
  const m = meta(c, doc.metadata);
  const spec = c.obj("spec", doc.spec, [
    "selector",
    "targetRef",
    "targetRefs",
    "action",
    "provider",
    "rules",
  ]);
  const { selector, refs } = policyTarget(c, spec);
  const action = c.oneOf("spec.action", spec.action, ["ALLOW", "DENY", "AUDIT", "CUSTOM"], "ALLOW");
  // istiod's validation: a provider goes with CUSTOM and only with it. Whether the name is a
  // MeshConfig extensionProviders entry is decided per workload later (as istiod does).
  const prov = c.obj("spec.provider", spec.provider, ["name"]);
  const provider = prov.name === undefined ? undefined : c.str("spec.provider.name", prov.name);
  if (action === "CUSTOM" && !provider) {
    c.problems.add("spec.provider.name", "is required with action CUSTOM (as in Istio)");
  }
  if (action !== "CUSTOM" && spec.provider !== undefined) {
    c.problems.add("spec.provider", "is only allowed with action CUSTOM (as in Istio)");
  }
  // istiod reads the annotation with Go's strconv.ParseBool (anything else: enforced).
  const dryRun = ["1", "t", "T", "true", "TRUE", "True"].includes(
    m.annotations["istio.io/dry-run"] ?? "",
  );
  if (dryRun && (action === "AUDIT" || action === "CUSTOM")) {
    c.problems.add("metadata.annotations", "istio.io/dry-run applies to ALLOW and DENY only");
  }
  const rawRules = c.list("spec.rules", spec.rules);
  if (rawRules.length > 512) c.problems.add("spec.rules", "must have at most 512 entries");
  const rules = rawRules.map((r, i) => rule(c, `spec.rules[${i}]`, r, m.namespace));
  const policy: AuthorizationPolicy = {
    name: m.name,
    namespace: m.namespace,
    selector,
    action,
    ...(action === "CUSTOM" && provider ? { provider } : {}),
    dryRun,
    rules,
    ...(refs.length > 0 ? { targetServices: refs.map((r) => r.name) } : {}),
  };
  return { kind: "AuthorizationPolicy", meta: m, policy };
}

function rule(c: Checker, path: string, v: unknown, namespace: string): PolicyRule {
  const o = c.obj(path, v, ["from", "to", "when"]);
  const out: {
    from?: NonNullable<PolicyRule["from"]>;
    to?: NonNullable<PolicyRule["to"]>;
    when?: PolicyCondition[];
  } = {};
  if (o.from !== undefined) {
    const from = c.list(`${path}.from`, o.from);
    if (from.length > 512) c.problems.add(`${path}.from`, "must have at most 512 entries");
    out.from = from.map((f, i) => {
      const p = `${path}.from[${i}]`;
      const fo = c.obj(p, f, ["source"]);
      const source = fields(c, `${p}.source`, fo.source, SOURCE, sourceCheck);
      const sa = source.serviceAccounts
        ? "serviceAccounts"
        : source.notServiceAccounts
        ? "notServiceAccounts"
        : undefined;
      if (
        sa && (source.principals || source.notPrincipals || source.namespaces ||
          source.notNamespaces)
      ) {
        c.problems.add(`${p}.source.${sa}`, "cannot be set with principals or namespaces (Istio)");
      }
      return { source: withSaNamespace(source, namespace) };
    });
  }
  if (o.to !== undefined) {
    out.to = c.list(`${path}.to`, o.to).map((t, i) => {
      const p = `${path}.to[${i}]`;
      const to = c.obj(p, t, ["operation"]);
      return { operation: fields(c, `${p}.operation`, to.operation, OPERATION, operationCheck) };
    });
  }
  if (o.when !== undefined) {
    out.when = c.list(`${path}.when`, o.when).map((w, i) => {
      const p = `${path}.when[${i}]`;
      const wo = c.obj(p, w, ["key", "values", "notValues"]);
      const key = c.str(`${p}.key`, wo.key);
      if (key && !WHEN_KEYS.some((re) => re.test(key))) {
        c.problems.add(`${p}.key`, `unknown condition key "${key}"`);
      } else if (key === "connection.sni" || key.startsWith("experimental.")) {
        // Never silently unenforced: weft's filter host offers no SNI nor Envoy filter metadata,
        // so such a DENY would never match (the xDS path refuses them too).
        c.problems.add(`${p}.key`, `"${key}" is not enforceable by weft`);
      }
      const cond: { key: string; values?: string[]; notValues?: string[] } = { key };
      if (wo.values !== undefined) cond.values = c.strList(`${p}.values`, wo.values);
      if (wo.notValues !== undefined) cond.notValues = c.strList(`${p}.notValues`, wo.notValues);
      if (!cond.values && !cond.notValues) c.problems.add(p, "needs values or notValues");
      return cond;
    });
  }
  return out;
}

function fields<K extends string>(
  c: Checker,
  path: string,
  v: unknown,
  keys: readonly K[],
  check: (c: Checker, path: string, key: K, value: string) => void,
): Partial<Record<K, string[]>> {
  const o = c.obj(path, v, keys);
  const out: Partial<Record<K, string[]>> = {};
  for (const k of keys) {
    if (o[k] === undefined) continue;
    const list = c.list(`${path}.${k}`, o[k]).map((x, j) => {
      // YAML `ports: [8080]` is a number; Istio's schema takes it as the string "8080".
      const s = typeof x === "number" && Number.isInteger(x)
        ? String(x)
        : c.str(`${path}.${k}[${j}]`, x);
      if (s) check(c, `${path}.${k}[${j}]`, k, s);
      return s;
    });
    if (list.length === 0) c.problems.add(`${path}.${k}`, "must not be empty");
    if (/serviceaccounts$/i.test(k) && list.length > 16) {
      c.problems.add(`${path}.${k}`, "must have at most 16 entries");
    }
    out[k] = list;
  }
  if (Object.keys(out).length === 0) c.problems.add(path, "needs at least one field");
  return out;
}

/** `<serviceaccount>` alone names one in the policy's namespace (istio/api). */
function withSaNamespace(
  s: Partial<Record<(typeof SOURCE)[number], string[]>>,
  namespace: string,
): Partial<Record<(typeof SOURCE)[number], string[]>> {
  const full = (l: string[] | undefined) =>
    l?.map((v) => v.includes("/") ? v : `${namespace}/${v}`);
  if (!s.serviceAccounts && !s.notServiceAccounts) return s;
  const out = { ...s };
  if (s.serviceAccounts) out.serviceAccounts = full(s.serviceAccounts)!;
  if (s.notServiceAccounts) out.notServiceAccounts = full(s.notServiceAccounts)!;
  return out;
}

function sourceCheck(c: Checker, path: string, key: string, v: string): void {
  if (/ipblocks$/i.test(key) && !isValidCidr(v)) {
    c.problems.add(path, `must be an IP or CIDR, got "${v}"`);
  }
  if (
    /serviceaccounts$/i.test(key) && (!/^([a-z0-9.-]+\/)?[a-z0-9.-]+$/.test(v) || v.length > 320)
  ) {
    c.problems.add(path, `must be "namespace/serviceaccount" or "serviceaccount", got "${v}"`);
  }
}

/** Istio: a path holding `{*}` or `{**}` is an Envoy URI template; then only those operators,
 * `{**}` last, no bare `*` (plugins/authz matches it). */
function templateProblem(v: string): string | undefined {
  if (!/\{\*\*?\}/.test(v)) return undefined;
  const ops = v.match(/\{\*\*?\}/g) ?? [];
  if (ops.slice(0, -1).includes("{**}")) return "{**} must be the last operator of a URI template";
  if (/[*{}]/.test(v.replace(/\{\*\*?\}/g, ""))) return "a URI template may use only {*} and {**}";
  return undefined;
}

function operationCheck(c: Checker, path: string, key: string, v: string): void {
  if (key === "paths" || key === "notPaths") {
    const why = templateProblem(v);
    if (why) c.problems.add(path, `${why}, got "${v}"`);
  }
  if (key === "ports" || key === "notPorts") {
    const n = Number(v);
    if (!/^\d+$/.test(v) || n < 1 || n > 65535) {
      c.problems.add(path, `must be a port 1-65535, got "${v}"`);
    }
  }
}

const MODES: readonly MtlsMode[] = ["UNSET", "DISABLE", "PERMISSIVE", "STRICT"];

export function parsePeerAuthentication(c: Checker, doc: Raw): PeerAuthentication {
  const m = meta(c, doc.metadata);
  const spec = c.obj("spec", doc.spec, ["selector", "mtls", "portLevelMtls"]);
  const mtls = c.obj("spec.mtls", spec.mtls, ["mode"]);
  const ports: Record<number, MtlsMode> = {};
  const pl = c.obj(
    "spec.portLevelMtls",
    spec.portLevelMtls,
    Object.keys(isObj(spec.portLevelMtls) ? spec.portLevelMtls : {}),
  );
  const selector = workloadSelector(c, "spec.selector", spec.selector);
  for (const [k, v] of Object.entries(pl)) {
    const port = Number(k);
    if (!/^\d+$/.test(k) || port < 1 || port > 65535) {
      c.problems.add(`spec.portLevelMtls.${k}`, "must be a port 1-65535");
      continue;
    }
    const o = c.obj(`spec.portLevelMtls.${k}`, v, ["mode"]);
    ports[port] = c.oneOf(`spec.portLevelMtls.${k}.mode`, o.mode, MODES, "UNSET");
  }
  if (Object.keys(ports).length > 0 && !selector) {
    // Istio: port-level settings need a workload selector (the ports are the workload's).
    c.problems.add("spec.portLevelMtls", "needs spec.selector (as in Istio)");
  }
  return {
    kind: "PeerAuthentication",
    meta: m,
    selector,
    mode: c.oneOf("spec.mtls.mode", mtls.mode, MODES, "UNSET"),
    portLevelMtls: ports,
  };
}
