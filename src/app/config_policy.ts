/** AuthorizationPolicy (Istio security/v1beta1 shape) → validated core policy. */
import type { AuthorizationPolicy, PolicyCondition, PolicyRule } from "../core/mod.ts";
import { isValidCidr } from "../core/mod.ts";
import { Checker, isObj } from "./check.ts";

const SOURCE = [
  "principals",
  "notPrincipals",
  "namespaces",
  "notNamespaces",
  "ipBlocks",
  "notIpBlocks",
];
const OPERATION = [
  "hosts",
  "notHosts",
  "ports",
  "notPorts",
  "methods",
  "notMethods",
  "paths",
  "notPaths",
];
/** Istio's documented `when` keys (conditions page); unknown keys are an error (A18). */
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

export function checkPolicy(c: Checker, path: string, v: unknown): AuthorizationPolicy {
  const o = c.obj(path, v, [
    "name",
    "namespace",
    "selector",
    "action",
    "rules",
    "dryRun",
    "metadata",
    "spec",
  ]);
  // Accept both a flat form and Kubernetes' {metadata, spec} form.
  const meta = isObj(o.metadata)
    ? c.obj(`${path}.metadata`, o.metadata, ["name", "namespace", "annotations"])
    : {};
  const spec = isObj(o.spec) ? c.obj(`${path}.spec`, o.spec, ["selector", "action", "rules"]) : o;
  const sp = isObj(o.spec) ? `${path}.spec` : path;
  const annotations = isObj(meta.annotations) ? meta.annotations : {};
  const name = c.str(`${path}.name`, o.name ?? meta.name);
  const namespace = c.str(`${path}.namespace`, o.namespace ?? meta.namespace, "default");
  let selector: Record<string, string> | undefined;
  if (spec.selector !== undefined) {
    const s = c.obj(`${sp}.selector`, spec.selector, ["matchLabels"]);
    selector = c.labels(`${sp}.selector.matchLabels`, s.matchLabels);
  }
  const action = c.oneOf(
    `${sp}.action`,
    spec.action,
    ["ALLOW", "DENY", "AUDIT", "CUSTOM"],
    "ALLOW",
  );
  if (action === "CUSTOM") {
    c.problems.add(`${sp}.action`, "CUSTOM (external authorization) is not supported by weft");
  }
  const dryRun = c.bool(`${path}.dryRun`, o.dryRun, annotations["istio.io/dry-run"] === "true");
  const rules = c.list(`${sp}.rules`, spec.rules).map((r, i) =>
    checkRule(c, `${sp}.rules[${i}]`, r)
  );
  return {
    name,
    namespace,
    selector,
    action: action === "CUSTOM" ? "DENY" : action,
    dryRun,
    rules,
  };
}

function checkRule(c: Checker, path: string, v: unknown): PolicyRule {
  const o = c.obj(path, v, ["from", "to", "when"]);
  const rule: {
    from?: NonNullable<PolicyRule["from"]>;
    to?: NonNullable<PolicyRule["to"]>;
    when?: PolicyCondition[];
  } = {};
  if (o.from !== undefined) {
    rule.from = c.list(`${path}.from`, o.from).map((f, i) => {
      const p = `${path}.from[${i}]`;
      const fo = c.obj(p, f, ["source"]);
      const s = c.obj(`${p}.source`, fo.source, SOURCE);
      const source: Record<string, string[]> = {};
      for (const k of SOURCE) {
        if (s[k] === undefined) continue;
        source[k] = c.strList(`${p}.source.${k}`, s[k]);
        if (k.toLowerCase().includes("ipblocks")) {
          source[k].forEach((x, j) => {
            if (!isValidCidr(x)) {
              c.problems.add(`${p}.source.${k}[${j}]`, `must be an IP or CIDR, got "${x}"`);
            }
          });
        }
      }
      return { source };
    });
  }
  if (o.to !== undefined) {
    rule.to = c.list(`${path}.to`, o.to).map((t, i) => {
      const p = `${path}.to[${i}]`;
      const to = c.obj(p, t, ["operation"]);
      const op = c.obj(`${p}.operation`, to.operation, OPERATION);
      const operation: Record<string, string[]> = {};
      for (const k of OPERATION) {
        if (op[k] === undefined) continue;
        operation[k] = c.list(`${p}.operation.${k}`, op[k]).map((x, j) =>
          typeof x === "number" ? String(x) : c.str(`${p}.operation.${k}[${j}]`, x)
        );
        if (k === "ports" || k === "notPorts") {
          operation[k].forEach((x, j) => {
            const n = Number(x);
            if (!/^\d+$/.test(x) || n < 1 || n > 65535) {
              c.problems.add(`${p}.operation.${k}[${j}]`, `must be a port 1-65535, got "${x}"`);
            }
          });
        }
      }
      return { operation };
    });
  }
  if (o.when !== undefined) {
    rule.when = c.list(`${path}.when`, o.when).map((w, i) => {
      const p = `${path}.when[${i}]`;
      const wo = c.obj(p, w, ["key", "values", "notValues"]);
      const key = c.str(`${p}.key`, wo.key);
      if (key && !WHEN_KEYS.some((re) => re.test(key))) {
        c.problems.add(`${p}.key`, `unknown condition key "${key}"`);
      }
      const cond: { key: string; values?: string[]; notValues?: string[] } = { key };
      if (wo.values !== undefined) cond.values = c.strList(`${p}.values`, wo.values);
      if (wo.notValues !== undefined) cond.notValues = c.strList(`${p}.notValues`, wo.notValues);
      if (!cond.values && !cond.notValues) c.problems.add(p, "needs values or notValues");
      return cond;
    });
  }
  return rule;
}
