/**
 * Envoy `envoy.extensions.filters.http.rbac.v3.RBAC` (proto3 JSON, as xDS delivers it for
 * `weft.authz`) → the JSON config of the first-party `authz` plugin (plugins/authz), with exact
 * semantics (l7-semantics.md §2) or a `config_invalid` WeftError naming every path that has no
 * exact Istio-shaped spelling, so the xDS update is NACKed instead of mis-enforcing.
 *  - `rules.action` ALLOW / DENY → policies of that action, LOG → AUDIT (R1); `shadowRules`
 *    ALLOW / DENY → dry-run policies (R7; a shadow LOG changes nothing and is dropped).
 *  - `rules` absent → no policies: the plugin allows everything (R6); present, ALLOW, no
 *    policies → one ALLOW policy without rules: it matches nothing, so everything is denied.
 *  - Each policy (name order, R2) → one plugin policy with one rule: permissions → `to[]`,
 *    principals → `from[]` (both OR, R3), header / destination.ip checks → `when`.
 *    Istio's names `<id>-rule[<i>]` keep their id: the plugin names rule i `<name>-rule[i]`, so
 *    the policy is `<id>` with i never-matching rules in front of the converted one.
 */
import type { PolicyCondition, PolicyRule } from "../../core/mod.ts";
import type { AuthzPluginConfig, AuthzPluginPolicy } from "./authz_config.ts";
import { isRecord, type Problems, problemsError } from "./convert_util.ts";
import { at, fail, fields, RbacProblem } from "./rbac_strings.ts";
import { type Group, permissionEntries, principalEntries } from "./rbac_tree.ts";

const ROOT_KEYS = [
  "rules",
  "rulesStatPrefix",
  "shadowRules",
  "shadowRulesStatPrefix",
  "trackPerRuleStats",
];
/** auditLoggingOptions only configures access-log emission; it does not change decisions. */
const RULES_KEYS = ["action", "policies", "auditLoggingOptions"];
const ACTIONS = ["ALLOW", "DENY", "LOG"] as const;
/** Padding for rule indices: `methods: ["*"]` and `notMethods: ["*"]` cannot both hold. */
const NEVER: PolicyRule = { to: [{ operation: { methods: ["*"], notMethods: ["*"] } }] };
const MAX_RULE_INDEX = 1000;

export function authzConfigFromEnvoyRbac(rbacJson: unknown): AuthzPluginConfig {
  const problems: Problems = [];
  const policies: AuthzPluginPolicy[] = [];
  if (rbacJson !== undefined && rbacJson !== null) {
    try {
      const top = fields(rbacJson, ROOT_KEYS, "");
      if (top.has("rules")) policies.push(...fromRules(top.get("rules"), "rules", false, problems));
      if (top.has("shadowRules")) {
        policies.push(...fromRules(top.get("shadowRules"), "shadowRules", true, problems));
      }
    } catch (e) {
      if (!(e instanceof RbacProblem)) throw e;
      problems.push(e.message);
    }
  }
  if (problems.length > 0) throw problemsError("Envoy RBAC config", problems);
  return Object.freeze({ policies });
}

function actionOf(v: unknown, path: string): typeof ACTIONS[number] {
  const a = v === undefined ? "ALLOW" : typeof v === "number" ? ACTIONS[v] : v;
  if (a !== "ALLOW" && a !== "DENY" && a !== "LOG") fail(path, "must be ALLOW, DENY or LOG");
  return a;
}

function fromRules(
  raw: unknown,
  path: string,
  dryRun: boolean,
  problems: Problems,
): AuthzPluginPolicy[] {
  const f = fields(raw, RULES_KEYS, path);
  const rbacAction = actionOf(f.get("action"), `${path}.action`);
  // A shadow LOG engine enforces nothing and the plugin has no dry-run AUDIT: nothing to run.
  if (dryRun && rbacAction === "LOG") return [];
  const action = rbacAction === "LOG" ? "AUDIT" : rbacAction;
  const map = f.get("policies") ?? {};
  if (!isRecord(map)) fail(`${path}.policies`, "must be a map of name → policy");
  const names = Object.keys(map).sort();
  if (names.length === 0) {
    // R6: an ALLOW engine without policies matches nothing, so it denies every request.
    return action === "ALLOW"
      ? [{
        name: dryRun ? "rbac-shadow-allow-nothing" : "rbac-allow-nothing",
        action,
        dryRun,
        rules: [],
      }]
      : [];
  }
  const out: AuthzPluginPolicy[] = [];
  for (const name of names) {
    try {
      if (name === "") fail(`${path}.policies`, "policy names must not be empty");
      const { base, index } = splitName(name);
      const rule = ruleFrom(map[name], `${path}.policies[${JSON.stringify(name)}]`);
      out.push({ name: base, action, dryRun, rules: [...Array(index).fill(NEVER), rule] });
    } catch (e) {
      if (!(e instanceof RbacProblem)) throw e;
      problems.push(e.message);
    }
  }
  return out;
}

function splitName(name: string): { base: string; index: number } {
  const m = /^(.+)-rule\[(\d+)\]$/.exec(name);
  const index = Number(m?.[2] ?? NaN);
  if (!m || !(index <= MAX_RULE_INDEX)) return { base: name, index: 0 };
  return { base: m[1] as string, index };
}

function list(v: unknown, path: string): unknown[] {
  if (!Array.isArray(v) || v.length === 0) fail(path, "must be a non-empty list");
  return v;
}

/** One Envoy Policy → one Istio-shaped rule (R3: ≥1 permission AND ≥1 principal). */
function ruleFrom(raw: unknown, path: string): PolicyRule {
  const f = fields(raw, ["permissions", "principals"], path);
  const perms = list(f.get("permissions"), at(path, "permissions"))
    .flatMap((p, i) => permissionEntries(p, `${path}.permissions[${i}]`));
  const ids = list(f.get("principals"), at(path, "principals"))
    .flatMap((p, i) => principalEntries(p, `${path}.principals[${i}]`));
  const to = side(perms, `${path}.permissions`);
  const from = side(ids, `${path}.principals`);
  const when = dedupe([...to.when, ...from.when].map(condition));
  return {
    ...(from.entries ? { from: from.entries.map((source) => ({ source })) } : {}),
    ...(to.entries ? { to: to.entries.map((operation) => ({ operation })) } : {}),
    ...(when.length > 0 ? { when } : {}),
  } as PolicyRule;
}

interface Side {
  /** undefined = some entry is unconstrained, so the OR always holds. */
  readonly entries: Record<string, string[]>[] | undefined;
  readonly when: readonly Group[];
}

/** An OR list → Source/Operation entries. The plugin ANDs `when` over the whole rule, so a
 * condition must be common to every entry (Istio copies a rule's `when` into each one). */
function side(list: readonly Group[][], path: string): Side {
  if (list.some((gs) => gs.length === 0)) return { entries: undefined, when: [] };
  const whens = list.map((gs) => gs.filter((g) => g.kind === "when"));
  const key = (gs: readonly Group[]): string => JSON.stringify(gs.map(canon).sort());
  const first = key(whens[0] ?? []);
  whens.forEach((w, i) => {
    if (key(w) !== first) {
      fail(
        `${path}[${i}]`,
        "header/destination.ip conditions differ between the entries of this OR list " +
          "(not expressible: weft authz ANDs conditions over the whole rule)",
      );
    }
  });
  const entries = list.map((gs) => {
    const e: Record<string, string[]> = {};
    for (const g of gs) {
      if (g.kind === "when") continue;
      const k = g.neg ? `not${g.field[0]?.toUpperCase()}${g.field.slice(1)}` : g.field;
      e[k] = [...new Set([...(e[k] ?? []), ...g.values])];
    }
    return e;
  });
  return { entries, when: whens[0] ?? [] };
}

const canon = (g: Group): string => JSON.stringify([g.field, g.neg, [...g.values].sort()]);

function condition(g: Group): PolicyCondition {
  const values = [...new Set(g.values)];
  return g.neg ? { key: g.field, notValues: values } : { key: g.field, values };
}

function dedupe(cs: PolicyCondition[]): PolicyCondition[] {
  const seen = new Set<string>();
  return cs.filter((c) => {
    const k = JSON.stringify(c);
    return seen.has(k) ? false : (seen.add(k), true);
  });
}
