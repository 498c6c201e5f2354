/**
 * Istio `Authorization` (ztunnel's L4 policy) → weft AuthorizationPolicy. Rules OR; clauses in
 * a rule AND; matches in a clause OR (hbone.md §14). A clause of source-only matches becomes
 * `from`, of destination-only matches `to`; shapes weft cannot express exactly are rejected.
 */
import type { Any } from "@bufbuild/protobuf/wkt";
import type {
  AuthorizationPolicy,
  PolicyOperation,
  PolicyRule,
  PolicySource,
} from "../../core/mod.ts";
import type * as istioSecurity from "../gen/istio/security/authorization_pb.ts";
import {
  decodeIstioAuthorization,
  IstioAction,
  IstioScope,
  TYPE_NAMES,
  unpackAs,
} from "../node_proto.ts";
import { AUTHORIZATION } from "../type_urls.ts";
import { ipToString, policyLabel } from "./address.ts";
import { type Decoded, invalid, type ResourceType } from "./resource_type.ts";

type SM = istioSecurity.StringMatch;
type Match = istioSecurity.Match;

function sm(m: SM): string {
  switch (m.matchType.case) {
    case "exact":
      return m.matchType.value;
    case "prefix":
      return `${m.matchType.value}*`;
    case "suffix":
      return `*${m.matchType.value}`;
    default:
      return "*";
  }
}

function cidr(a: istioSecurity.Address): string {
  return `${ipToString(a.address)}/${a.length}`;
}

function source(m: Match): PolicySource {
  const principals = [
    ...m.principals.map(sm),
    ...m.serviceAccounts.map((s) => `*/ns/${s.namespace}/sa/${s.serviceAccount}`),
  ];
  const notPrincipals = [
    ...m.notPrincipals.map(sm),
    ...m.notServiceAccounts.map((s) => `*/ns/${s.namespace}/sa/${s.serviceAccount}`),
  ];
  const out: Record<string, string[]> = {
    principals,
    notPrincipals,
    namespaces: m.namespaces.map(sm),
    notNamespaces: m.notNamespaces.map(sm),
    ipBlocks: m.sourceIps.map(cidr),
    notIpBlocks: m.notSourceIps.map(cidr),
  };
  return Object.fromEntries(Object.entries(out).filter(([, v]) => v.length)) as PolicySource;
}

function operation(m: Match): PolicyOperation {
  const out: Record<string, string[]> = {
    ports: m.destinationPorts.map(String),
    notPorts: m.notDestinationPorts.map(String),
  };
  return Object.fromEntries(Object.entries(out).filter(([, v]) => v.length)) as PolicyOperation;
}

const hasSource = (m: Match): boolean =>
  m.namespaces.length + m.notNamespaces.length + m.principals.length + m.notPrincipals.length +
      m.sourceIps.length + m.notSourceIps.length + m.serviceAccounts.length +
      m.notServiceAccounts.length > 0;
const hasDest = (m: Match): boolean => m.destinationPorts.length + m.notDestinationPorts.length > 0;

function ruleOf(r: istioSecurity.Rule, what: string): PolicyRule {
  const rule: { from?: { source: PolicySource }[]; to?: { operation: PolicyOperation }[] } = {};
  for (const c of r.clauses) {
    if (c.matches.some((m) => m.destinationIps.length + m.notDestinationIps.length > 0)) {
      throw invalid(what, "destination_ips matches are not supported");
    }
    const src = c.matches.every((m) => !hasDest(m));
    const dst = c.matches.every((m) => !hasSource(m));
    if (src && !rule.from) rule.from = c.matches.map((m) => ({ source: source(m) }));
    else if (dst && !rule.to) rule.to = c.matches.map((m) => ({ operation: operation(m) }));
    else throw invalid(what, "clause mixes source and destination matches");
  }
  return rule;
}

export const authorizationType: ResourceType<AuthorizationPolicy> = {
  typeUrl: AUTHORIZATION,
  decode(any: Any): Decoded<AuthorizationPolicy> {
    const a = unpackAs(any, TYPE_NAMES.authorization, decodeIstioAuthorization);
    if (!a.name || !a.namespace) throw invalid("authorization", "name and namespace are required");
    const key = `${a.namespace}/${a.name}`;
    const what = `authorization ${key}`;
    const selector = a.scope === IstioScope.WORKLOAD_SELECTOR
      ? Object.freeze({ [policyLabel(key)]: "true" })
      : undefined;
    return {
      name: key,
      value: Object.freeze({
        name: a.name,
        // GLOBAL scope lives in the root namespace; the translator rewrites it.
        namespace: a.scope === IstioScope.GLOBAL ? "" : a.namespace,
        selector,
        action: a.action === IstioAction.DENY ? "DENY" : "ALLOW",
        dryRun: a.dryRun,
        rules: a.rules.map((r) => ruleOf(r, what)),
      }),
    };
  },
  deps: () => [],
};
