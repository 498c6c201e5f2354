/**
 * Istio AuthorizationPolicy → the JSON config of the first-party `authz` plugin
 * (plugins/authz). Called by the bootstrap YAML loader and by the xDS translator.
 * CUSTOM (ext_authz) is out of scope: such policies are rejected.
 */
import type { AuthorizationPolicy, PolicyRule } from "../../core/mod.ts";
import {
  checkKeys,
  isRecord,
  listOfStrings,
  type Problems,
  problemsError,
} from "./convert_util.ts";

export interface AuthzPluginPolicy {
  /** `ns[<namespace>]-policy[<name>]`; the plugin appends `-rule[<i>]`. */
  readonly name: string;
  readonly action: "ALLOW" | "DENY" | "AUDIT";
  readonly dryRun: boolean;
  readonly rules: readonly PolicyRule[];
}

export interface AuthzPluginConfig {
  readonly policies: readonly AuthzPluginPolicy[];
  /** Counter bumps batched in the guest before a host call (default 32; 1 = exact). */
  readonly counterBatch?: number;
}

/** Policies already scoped to one workload (see core `policiesFor`). Sorted by id, Envoy's
 * order for the effective policy id; the decision itself does not depend on the order. */
export function authzConfigFromPolicies(
  policies: readonly AuthorizationPolicy[],
): AuthzPluginConfig {
  const out = policies.map((p): AuthzPluginPolicy => ({
    name: `ns[${p.namespace}]-policy[${p.name}]`,
    action: p.action,
    dryRun: p.dryRun,
    rules: p.rules,
  }));
  out.sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
  return Object.freeze({ policies: out });
}

const SOURCE_FIELDS = [
  "principals",
  "notPrincipals",
  "namespaces",
  "notNamespaces",
  "ipBlocks",
  "notIpBlocks",
  "remoteIpBlocks",
  "notRemoteIpBlocks",
  "serviceAccounts",
  "notServiceAccounts",
  "requestPrincipals",
  "notRequestPrincipals",
];
const OPERATION_FIELDS = [
  "hosts",
  "notHosts",
  "ports",
  "notPorts",
  "methods",
  "notMethods",
  "paths",
  "notPaths",
];

/** An Istio `AuthorizationPolicy` document (apiVersion/kind/metadata/spec) → snapshot form. */
export function authorizationPolicyFromIstio(doc: unknown): AuthorizationPolicy {
  const problems: Problems = [];
  if (!isRecord(doc)) throw problemsError("AuthorizationPolicy", ["(root): must be an object"]);
  const meta = isRecord(doc.metadata) ? doc.metadata : {};
  const name = typeof meta.name === "string" ? meta.name : "";
  if (name === "") problems.push("metadata.name: required");
  const namespace = typeof meta.namespace === "string" ? meta.namespace : "default";
  const ann = isRecord(meta.annotations) ? meta.annotations : {};
  const dryRun = ann["istio.io/dry-run"] === "true";
  const spec = isRecord(doc.spec) ? doc.spec : {};
  checkKeys(
    spec,
    ["selector", "targetRef", "targetRefs", "action", "provider", "rules"],
    "spec",
    problems,
  );
  const action = spec.action ?? "ALLOW";
  if (action === "CUSTOM") {
    problems.push("spec.action: CUSTOM (external authorization) is out of scope for weft");
  } else if (action !== "ALLOW" && action !== "DENY" && action !== "AUDIT") {
    problems.push("spec.action: must be ALLOW, DENY or AUDIT");
  }
  if (dryRun && action === "AUDIT") {
    problems.push("metadata.annotations: dry-run applies to ALLOW and DENY only");
  }
  let selector: Record<string, string> | undefined;
  if (isRecord(spec.selector)) {
    const ml = spec.selector.matchLabels;
    selector = isRecord(ml)
      ? Object.fromEntries(Object.entries(ml).map(([k, v]) => [k, String(v)]))
      : {};
  }
  const rules: PolicyRule[] = [];
  const rawRules = spec.rules ?? [];
  if (!Array.isArray(rawRules)) problems.push("spec.rules: must be a list");
  else rawRules.forEach((r, i) => rules.push(ruleFrom(r, `spec.rules[${i}]`, problems)));
  if (problems.length > 0) {
    throw problemsError(`AuthorizationPolicy ${namespace}/${name}`, problems);
  }
  return Object.freeze({
    name,
    namespace,
    selector,
    action: action as AuthorizationPolicy["action"],
    dryRun,
    rules,
  });
}

function ruleFrom(raw: unknown, path: string, problems: Problems): PolicyRule {
  if (raw === null || raw === undefined) return {};
  if (!isRecord(raw)) {
    problems.push(`${path}: must be an object`);
    return {};
  }
  checkKeys(raw, ["from", "to", "when"], path, problems);
  const rule: { from?: unknown[]; to?: unknown[]; when?: unknown[] } = {};
  if (raw.from !== undefined) {
    rule.from = listOf(raw.from, `${path}.from`, problems, (e, p) => ({
      source: fields(isRecord(e) ? e.source : undefined, SOURCE_FIELDS, `${p}.source`, problems),
    }));
  }
  if (raw.to !== undefined) {
    rule.to = listOf(raw.to, `${path}.to`, problems, (e, p) => ({
      operation: fields(
        isRecord(e) ? e.operation : undefined,
        OPERATION_FIELDS,
        `${p}.operation`,
        problems,
      ),
    }));
  }
  if (raw.when !== undefined) {
    rule.when = listOf(raw.when, `${path}.when`, problems, (e, p) => {
      const c = isRecord(e) ? e : {};
      checkKeys(c, ["key", "values", "notValues"], p, problems);
      if (typeof c.key !== "string" || c.key === "") problems.push(`${p}.key: required`);
      const values = listOfStrings(c.values, `${p}.values`, problems);
      const notValues = listOfStrings(c.notValues, `${p}.notValues`, problems);
      if (!values && !notValues) problems.push(`${p}: needs values or notValues`);
      return {
        key: String(c.key),
        ...(values ? { values } : {}),
        ...(notValues ? { notValues } : {}),
      };
    });
  }
  return rule as PolicyRule;
}

function listOf<T>(
  raw: unknown,
  path: string,
  problems: Problems,
  each: (e: unknown, p: string) => T,
): T[] {
  if (!Array.isArray(raw)) {
    problems.push(`${path}: must be a list`);
    return [];
  }
  return raw.map((e, i) => each(e, `${path}[${i}]`));
}

function fields(
  raw: unknown,
  allowed: readonly string[],
  path: string,
  problems: Problems,
): Record<string, string[]> {
  if (!isRecord(raw)) {
    problems.push(`${path}: must be an object`);
    return {};
  }
  checkKeys(raw, allowed, path, problems);
  const out: Record<string, string[]> = {};
  for (const k of allowed) {
    const v = listOfStrings(raw[k], `${path}.${k}`, problems);
    if (v) out[k] = v;
  }
  return out;
}
