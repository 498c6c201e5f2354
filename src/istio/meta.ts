/** Kubernetes object envelope: apiVersion, kind, metadata; shared by every kind's parser. */
import { type Checker, isObj, type Raw } from "./check.ts";
import type { ObjectMeta } from "./types.ts";

export const DNS_NAME = /^[a-z0-9]([-a-z0-9.]*[a-z0-9])?$/;

/** Metadata fields Kubernetes sets itself; accepted and ignored (a `kubectl get -o yaml` dump
 * must load). */
const SERVER_META = [
  "uid",
  "resourceVersion",
  "generation",
  "creationTimestamp",
  "deletionTimestamp",
  "deletionGracePeriodSeconds",
  "managedFields",
  "ownerReferences",
  "finalizers",
  "generateName",
  "selfLink",
];

export function meta(c: Checker, v: unknown, defaultNs = "default"): ObjectMeta {
  const o = c.obj("metadata", v, ["name", "namespace", "labels", "annotations", ...SERVER_META]);
  if (!isObj(v)) c.problems.add("metadata", "is required (name, namespace)");
  return {
    name: c.str("metadata.name", o.name, undefined, DNS_NAME, "a DNS-1123 name"),
    namespace: c.str("metadata.namespace", o.namespace, defaultNs, DNS_NAME, "a namespace name"),
    labels: c.labels("metadata.labels", o.labels),
    annotations: c.labels("metadata.annotations", o.annotations),
  };
}

/** `selector: {matchLabels: {...}}` (Istio's WorkloadSelector), undefined when absent. */
export function workloadSelector(
  c: Checker,
  path: string,
  v: unknown,
): Record<string, string> | undefined {
  if (v === undefined || v === null) return undefined;
  if (isObj(v) && !("matchLabels" in v) && Object.values(v).every((x) => typeof x === "string")) {
    c.problems.add(path, "must be {matchLabels: {...}} (Istio's WorkloadSelector)");
    return undefined;
  }
  const o = c.obj(path, v, ["matchLabels"]);
  return c.labels(`${path}.matchLabels`, o.matchLabels);
}

/** `targetRef` / `targetRefs` (Gateway API PolicyTargetReference). */
export function targetRefs(c: Checker, spec: Raw): { kind: string; name: string }[] {
  const refs = [
    ...(spec.targetRef === undefined ? [] : [["spec.targetRef", spec.targetRef] as const]),
    ...c.list("spec.targetRefs", spec.targetRefs).map((r, i) =>
      [`spec.targetRefs[${i}]`, r] as const
    ),
  ];
  return refs.map(([p, r]) => {
    const o = c.obj(p, r, ["group", "kind", "name", "namespace"]);
    return {
      kind: c.oneOf(`${p}.kind`, o.kind, ["Service", "ServiceEntry", "Gateway"], "Service"),
      name: c.str(`${p}.name`, o.name),
    };
  });
}

/** A policy's `selector` or `targetRefs` (≤ 16, not both; no Gateway: weft runs none), as
 * istio/api validates them for AuthorizationPolicy, RequestAuthentication and WasmPlugin. */
export function policyTarget(
  c: Checker,
  spec: Raw,
): { selector: Record<string, string> | undefined; refs: { kind: string; name: string }[] } {
  const selector = workloadSelector(c, "spec.selector", spec.selector);
  const refs = targetRefs(c, spec);
  if (refs.length > 0 && selector !== undefined) {
    c.problems.add("spec.targetRefs", "is mutually exclusive with spec.selector (as in Istio)");
  }
  if (refs.length > 16) c.problems.add("spec.targetRefs", "must have at most 16 entries");
  refs.forEach((r, i) => {
    if (r.kind === "Gateway") {
      c.problems.add(
        `spec.targetRefs[${i}].kind`,
        "Gateway is not supported: weft runs no gateway (attach to a Service)",
      );
    }
  });
  return { selector, refs };
}
