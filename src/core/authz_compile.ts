/**
 * AuthorizationPolicies compiled once per snapshot for the L4 check (authz.ts): string patterns
 * classified, CIDRs parsed, HTTP-only rules of ALLOW policies dropped, ids built, so a connection
 * only compares. The semantics are those of the direct evaluation they replace (l7-semantics.md
 * A8, A20–A24; src/core/authz_equiv_test.ts checks the two agree).
 */
import type {
  AuthorizationPolicy,
  PolicyCondition,
  PolicyOperation,
  PolicyRule,
  PolicySource,
} from "./snapshot.ts";
import { parseIp } from "./ip.ts";
import type { Ip, L4Peer } from "./authz_peer.ts";

const EXACT = 0, PREFIX = 1, SUFFIX = 2, PRESENT = 3;
/** Istio string match, classified once: exact, `abc*` prefix, `*abc` suffix, `*` presence. */
interface Pattern {
  readonly kind: number;
  readonly text: string;
}

function pattern(p: string): Pattern {
  if (p === "*") return { kind: PRESENT, text: "" };
  if (p.endsWith("*")) return { kind: PREFIX, text: p.slice(0, -1) };
  if (p.startsWith("*")) return { kind: SUFFIX, text: p.slice(1) };
  return { kind: EXACT, text: p };
}

function anyPattern(ps: readonly Pattern[], value: string | undefined): boolean {
  if (value === undefined) return false;
  for (const p of ps) {
    switch (p.kind) {
      case EXACT:
        if (value === p.text) return true;
        break;
      case PREFIX:
        if (value.startsWith(p.text)) return true;
        break;
      case SUFFIX:
        if (value.endsWith(p.text)) return true;
        break;
      default:
        if (value.length > 0) return true;
    }
  }
  return false;
}

/** A CIDR (or bare address) parsed once; `bits` < 0 when it can match nothing. */
interface Cidr {
  readonly v: number;
  readonly bytes: ArrayLike<number>;
  readonly bits: number;
}

function cidr(text: string): Cidr {
  const [addr, lenText] = text.split("/") as [string, string | undefined];
  const net = parseIp(addr);
  if (!net) return { v: 0, bytes: new Uint8Array(0), bits: -1 };
  const max = net.bytes.length * 8;
  const bits = lenText === undefined ? max : Number(lenText);
  const ok = Number.isInteger(bits) && bits >= 0 && bits <= max;
  return { v: net.v, bytes: net.bytes, bits: ok ? bits : -1 };
}

function inCidr(ip: Ip | undefined, c: Cidr): boolean {
  if (!ip || c.bits < 0 || ip.v !== c.v) return false;
  const whole = c.bits >> 3;
  for (let i = 0; i < whole; i++) if (ip.bytes[i] !== c.bytes[i]) return false;
  const rest = c.bits & 7;
  if (rest === 0) return true;
  const mask = (0xff00 >> rest) & 0xff;
  return (ip.bytes[whole]! & mask) === (c.bytes[whole]! & mask);
}

function anyCidr(cs: readonly Cidr[], ip: Ip | undefined): boolean {
  for (const c of cs) if (inCidr(ip, c)) return true;
  return false;
}

/** One positive/negative pair of a field; undefined when the list is absent or empty. */
type Pair<T> = { readonly pos: readonly T[] | undefined; readonly neg: readonly T[] | undefined };

function pair<A, T>(
  pos: readonly A[] | undefined,
  neg: readonly A[] | undefined,
  f: (a: A) => T,
): Pair<T> | undefined {
  const p = pos && pos.length > 0 ? pos.map(f) : undefined;
  const n = neg && neg.length > 0 ? neg.map(f) : undefined;
  return p || n ? { pos: p, neg: n } : undefined;
}

const same = (s: string): string => s;

function okPatterns(f: Pair<Pattern> | undefined, value: string | undefined): boolean {
  if (!f) return true;
  if (f.pos && !anyPattern(f.pos, value)) return false;
  return !(f.neg && anyPattern(f.neg, value));
}

function okExact(f: Pair<string> | undefined, value: string): boolean {
  if (!f) return true;
  if (f.pos && !f.pos.includes(value)) return false;
  return !(f.neg && f.neg.includes(value));
}

function okCidrs(f: Pair<Cidr>, ip: Ip | undefined): boolean {
  if (f.pos && !anyCidr(f.pos, ip)) return false;
  return !(f.neg && anyCidr(f.neg, ip));
}

interface CompiledSource {
  readonly principals: Pair<Pattern> | undefined;
  readonly namespaces: Pair<Pattern> | undefined;
  readonly serviceAccounts: Pair<string> | undefined;
  readonly ipBlocks: Pair<Cidr> | undefined;
}

function source(s: PolicySource): CompiledSource {
  return {
    principals: pair(s.principals, s.notPrincipals, pattern),
    namespaces: pair(s.namespaces, s.notNamespaces, pattern),
    serviceAccounts: pair(s.serviceAccounts, s.notServiceAccounts, same),
    ipBlocks: pair(s.ipBlocks, s.notIpBlocks, cidr),
  };
}

function sourceMatches(s: CompiledSource, peer: L4Peer): boolean {
  return okPatterns(s.principals, peer.principal) &&
    (!s.namespaces || okPatterns(s.namespaces, peer.namespace)) &&
    (!s.serviceAccounts || okExact(s.serviceAccounts, peer.serviceAccount)) &&
    (!s.ipBlocks || okCidrs(s.ipBlocks, peer.source));
}

const SOURCE_PRINCIPAL = 0, SOURCE_NAMESPACE = 1, SOURCE_IP = 2, DESTINATION_IP = 3;
const DESTINATION_PORT = 4, SOURCE_SERVICE_ACCOUNT = 5;
/** The `when` keys L4 evaluates; any other needs HTTP. */
const L4_KEYS: ReadonlyMap<string, number> = new Map([
  ["source.principal", SOURCE_PRINCIPAL],
  ["source.namespace", SOURCE_NAMESPACE],
  ["source.ip", SOURCE_IP],
  ["destination.ip", DESTINATION_IP],
  ["destination.port", DESTINATION_PORT],
  ["source.serviceAccount", SOURCE_SERVICE_ACCOUNT],
]);

interface CompiledCondition {
  readonly key: number;
  readonly patterns: Pair<Pattern> | undefined;
  readonly exact: Pair<string> | undefined;
  readonly cidrs: Pair<Cidr> | undefined;
}

/** An L4 key's condition, or undefined when it always holds (no values, no notValues). */
function condition(c: PolicyCondition, key: number): CompiledCondition | undefined {
  const ip = key === SOURCE_IP || key === DESTINATION_IP;
  const sa = key === SOURCE_SERVICE_ACCOUNT;
  const out = {
    key,
    patterns: ip || sa ? undefined : pair(c.values, c.notValues, pattern),
    exact: sa ? pair(c.values, c.notValues, same) : undefined,
    cidrs: ip ? pair(c.values, c.notValues, cidr) : undefined,
  };
  return out.patterns || out.exact || out.cidrs ? out : undefined;
}

function conditionMatches(c: CompiledCondition, peer: L4Peer): boolean {
  switch (c.key) {
    case SOURCE_PRINCIPAL:
      return okPatterns(c.patterns, peer.principal);
    case SOURCE_NAMESPACE:
      return okPatterns(c.patterns, peer.namespace);
    case SOURCE_IP:
      return okCidrs(c.cidrs!, peer.source);
    case DESTINATION_IP:
      return okCidrs(c.cidrs!, peer.destination);
    case DESTINATION_PORT:
      return okPatterns(c.patterns, peer.port);
    default:
      return okExact(c.exact, peer.serviceAccount);
  }
}

const some = (...fs: (readonly unknown[] | undefined)[]): boolean =>
  fs.some((f) => f !== undefined && f.length > 0);

/** Whether any part of the rule needs HTTP. Istio drops such a rule whole from an ALLOW policy
 * on TCP (istio/istio authz builder: a rule whose generation fails is skipped; ztunnel's
 * conversion does the same), even when another `from` or `to` entry of it is plain L4. */
function needsHttp(rule: PolicyRule): boolean {
  return (rule.from ?? []).some(({ source: s }) =>
    some(s.remoteIpBlocks, s.notRemoteIpBlocks, s.requestPrincipals, s.notRequestPrincipals)
  ) ||
    (rule.to ?? []).some(({ operation: o }) =>
      some(o.hosts, o.notHosts, o.methods, o.notMethods, o.paths, o.notPaths)
    ) ||
    (rule.when ?? []).some((c) => !L4_KEYS.has(c.key));
}

interface CompiledRule {
  /** The decision's policy id, `ns[..]-policy[..]-rule[i]`. */
  readonly id: string;
  /** The dry-run verdict when this rule decides: `allow:<id>` / `deny:<id>`. */
  readonly verdict: string;
  readonly from: readonly CompiledSource[] | undefined;
  /** `ports`/`notPorts` of each `to` entry (the other operation fields are HTTP-only). */
  readonly to: readonly (Pair<string> | undefined)[] | undefined;
  readonly when: readonly CompiledCondition[];
}

export interface CompiledPolicy {
  readonly policy: AuthorizationPolicy;
  /** Rules that can match at L4, in order. An ALLOW policy's rules that need HTTP are left out
   * (they never match at L4); in the others the HTTP-only fields match (DENY is wider). */
  readonly rules: readonly CompiledRule[];
  /** The dry-run verdict when no rule matches: `allow:none` / `deny:none`. */
  readonly none: string;
}

function rule(p: AuthorizationPolicy, r: PolicyRule, i: number, verb: string): CompiledRule {
  const id = `ns[${p.namespace}]-policy[${p.name}]-rule[${i}]`;
  const when: CompiledCondition[] = [];
  for (const c of r.when ?? []) {
    const key = L4_KEYS.get(c.key);
    const cc = key === undefined ? undefined : condition(c, key);
    if (cc) when.push(cc);
  }
  return {
    id,
    verdict: `${verb}:${id}`,
    from: r.from && r.from.length > 0 ? r.from.map((f) => source(f.source)) : undefined,
    to: r.to && r.to.length > 0
      ? r.to.map(({ operation: o }: { operation: PolicyOperation }) =>
        pair(o.ports, o.notPorts, same)
      )
      : undefined,
    when,
  };
}

const compiled = new WeakMap<AuthorizationPolicy, CompiledPolicy>();

/** `p` compiled, once per policy object (snapshots are immutable). */
export function compilePolicy(p: AuthorizationPolicy): CompiledPolicy {
  let c = compiled.get(p);
  if (c) return c;
  const narrow = p.action === "ALLOW";
  const verb = p.action === "DENY" ? "deny" : "allow";
  const rules: CompiledRule[] = [];
  p.rules.forEach((r, i) => {
    if (!(narrow && needsHttp(r))) rules.push(rule(p, r, i, verb));
  });
  compiled.set(p, c = { policy: p, rules, none: `${verb}:none` });
  return c;
}

function ruleMatches(r: CompiledRule, peer: L4Peer): boolean {
  if (r.from) {
    let any = false;
    for (const s of r.from) {
      if (sourceMatches(s, peer)) {
        any = true;
        break;
      }
    }
    if (!any) return false;
  }
  if (r.to) {
    let any = false;
    for (const ports of r.to) {
      if (!ports || okExact(ports, peer.port)) {
        any = true;
        break;
      }
    }
    if (!any) return false;
  }
  for (const c of r.when) if (!conditionMatches(c, peer)) return false;
  return true;
}

/** The first rule of `p` matching the connection, or undefined. */
export function matchingRule(p: CompiledPolicy, peer: L4Peer): CompiledRule | undefined {
  for (const r of p.rules) if (ruleMatches(r, peer)) return r;
  return undefined;
}
