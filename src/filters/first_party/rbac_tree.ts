/** Envoy RBAC Permission / Principal trees (proto3 JSON) → a conjunction of single-attribute
 * groups, the only shape an Istio rule can hold: inside one source/operation fields AND, values
 * OR, `not*` fields negate an OR (A15). Istio compiles exactly this shape (`andRules` of `orRules`
 * and `notRule{orRules}`), so its output round-trips; deeper nesting is a problem with its path. */
import {
  cidrForm,
  fail,
  fields,
  headerForm,
  oneof,
  RbacProblem,
  str,
  stringForm,
  unquoteRegex,
} from "./rbac_strings.ts";
import { isRecord } from "./convert_util.ts";

/** op = an Operation field, src = a Source field, when = a rule-level condition key. */
export interface Group {
  readonly kind: "op" | "src" | "when";
  readonly field: string;
  /** NOT(OR values) when true. */
  readonly neg: boolean;
  readonly values: readonly string[];
}

interface TreeKeys {
  readonly and: string;
  readonly or: string;
  readonly list: string;
  readonly not: string;
  readonly leaf: (kind: string, v: unknown, path: string) => Group;
}

const ANY = "any";

/** One Permission/Principal → AND of groups (empty = matches everything). */
function conj(node: unknown, path: string, t: TreeKeys): Group[] {
  const [kind, v] = oneof(node, path);
  if (kind === "any") {
    if (v !== true) fail(`${path}.any`, "must be true");
    return [];
  }
  if (kind === t.and) {
    const out: Group[] = [];
    children(v, `${path}.${t.and}`, t).forEach(([c, p]) => out.push(...conj(c, p, t)));
    return merge(out, path);
  }
  const g = group(node, path, t);
  return g === ANY ? [] : [g];
}

function children(v: unknown, path: string, t: TreeKeys): [unknown, string][] {
  const list = fields(v, [t.list], path).get(t.list);
  if (!Array.isArray(list) || list.length === 0) {
    fail(`${path}.${t.list}`, "must be a non-empty list");
  }
  return list.map((c, i) => [c, `${path}.${t.list}[${i}]`]);
}

/** A node that must reduce to one group: an OR over one attribute, a NOT of one, or a leaf. */
function group(node: unknown, path: string, t: TreeKeys): Group | typeof ANY {
  const [kind, v] = oneof(node, path);
  if (kind === "any") {
    if (v !== true) fail(`${path}.any`, "must be true");
    return ANY;
  }
  if (kind === t.or || kind === t.and) {
    const gs = children(v, `${path}.${kind}`, t).map(([c, p]) => group(c, p, t));
    if (gs.length === 1) return gs[0] as Group | typeof ANY;
    if (kind === t.or && gs.includes(ANY)) return ANY;
    if (kind === t.and) fail(`${path}.${kind}`, "nested AND inside OR/NOT is not expressible");
    const first = gs[0] as Group;
    const same = (gs as Group[]).every((g) =>
      !g.neg && g.kind === first.kind && g.field === first.field
    );
    if (!same) {
      fail(`${path}.${kind}`, "an OR must range over one attribute (not expressible otherwise)");
    }
    return { ...first, values: (gs as Group[]).flatMap((g) => g.values) };
  }
  if (kind === t.not) {
    const g = group(v, `${path}.${t.not}`, t);
    if (g === ANY) fail(`${path}.${t.not}`, "NOT any (match nothing) is not expressible");
    return { ...g, neg: !g.neg };
  }
  return t.leaf(kind, v, `${path}.${kind}`);
}

/** AND of groups on one attribute: negatives union (NOT a AND NOT b = NOT(a OR b)); two
 * different positive OR-lists on one Istio field have no spelling. */
function merge(gs: readonly Group[], path: string): Group[] {
  const out: Group[] = [];
  for (const g of gs) {
    if (g.kind === "when") {
      out.push(g);
      continue;
    }
    const i = out.findIndex((o) => o.kind === g.kind && o.field === g.field && o.neg === g.neg);
    const prev = out[i];
    if (prev === undefined) out.push(g);
    else if (g.neg) out[i] = { ...prev, values: [...prev.values, ...g.values] };
    else if (JSON.stringify([...prev.values].sort()) !== JSON.stringify([...g.values].sort())) {
      fail(path, `ANDs two different ${g.field} lists (not expressible)`);
    }
  }
  return out;
}

const op = (field: string, values: string[], neg = false): Group => ({
  kind: "op",
  field,
  neg,
  values,
});
const src = (field: string, values: string[], neg = false): Group => ({
  kind: "src",
  field,
  neg,
  values,
});
const when = (field: string, values: string[], neg = false): Group => ({
  kind: "when",
  field,
  neg,
  values,
});

function port(v: unknown, path: string): string {
  if (typeof v !== "number" || !Number.isInteger(v) || v < 1 || v > 65535) {
    fail(path, "must be a port 1-65535");
  }
  return String(v);
}

const MAX_RANGE_PORTS = 1024;

const URI_TEMPLATE_TYPE =
  "type.googleapis.com/envoy.extensions.path.match.uri_template.v3.UriTemplateMatchConfig";

/** istiod writes an AuthorizationPolicy path holding `{*}`/`{**}` as Envoy's URI template
 * matcher (`*` one segment, `**` the rest; istio/istio authz model `PathTemplateMatcher`). Back to
 * Istio's form for the plugin: `*` and `{var}`/`{var=*}` → `{*}`, `**` and `{var=**}` → `{**}`
 * (the last operator, as the plugin and Istio's validation require; literal segments may follow
 * it, istiod's own "/{**}/path/template"); literal segments stay. */
function uriTemplatePath(v: unknown, path: string): string {
  const f = fields(v, ["name", "typedConfig"], path);
  const tc = fields(f.get("typedConfig"), ["@type", "pathTemplate"], `${path}.typedConfig`);
  if (tc.get("@type") !== URI_TEMPLATE_TYPE) {
    fail(`${path}.typedConfig`, `must be ${URI_TEMPLATE_TYPE.slice(20)}`);
  }
  const tpl = tc.get("pathTemplate");
  const where = `${path}.typedConfig.pathTemplate`;
  if (typeof tpl !== "string" || !tpl.startsWith("/")) {
    fail(where, "must be a path starting with /");
  }
  const segs = (tpl as string).split("/").slice(1);
  let glob = false;
  const out = segs.map((s) => {
    const op = /^\{[A-Za-z][A-Za-z0-9_]*(=(\*\*?))?\}$/.exec(s);
    const kind = s === "*" || s === "**" ? s : op ? (op[2] ?? "*") : undefined;
    // Envoy and Istio: no operator after `**`; literal segments may follow it ("/{**}/edit").
    if (kind !== undefined && glob) fail(where, "** must be the last operator");
    if (kind === "**") glob = true;
    if (kind !== undefined) return kind === "**" ? "{**}" : "{*}";
    if (/[*{}=]/.test(s)) fail(where, `segment "${s}" is not expressible in weft authz`);
    return s;
  });
  return "/" + out.join("/");
}

function permissionLeaf(kind: string, v: unknown, path: string): Group {
  switch (kind) {
    case "header": {
      const raw = isRecord(v) && typeof v.name === "string" ? v.name.toLowerCase() : "";
      const host = raw === ":authority" || raw === "host";
      const h = headerForm(v, path, { caseInsensitive: host });
      if (h.name === ":method") return op("methods", [h.value], h.invert);
      if (host) return op("hosts", [h.value], h.invert);
      if (h.name.startsWith(":")) {
        fail(`${path}.name`, `${h.name} is not expressible (use urlPath for paths)`);
      }
      return when(`request.headers[${h.name}]`, [h.value], h.invert);
    }
    case "urlPath": {
      const f = fields(v, ["path"], path);
      return op("paths", [stringForm(f.get("path"), `${path}.path`)]);
    }
    case "uriTemplate":
      return op("paths", [uriTemplatePath(v, path)]);
    case "destinationPort":
      return op("ports", [port(v, path)]);
    case "destinationPortRange": {
      const f = fields(v, ["start", "end"], path);
      const start = Number(f.get("start") ?? 0), end = Number(f.get("end") ?? 0);
      if (!(start >= 1 && end > start && end <= 65536 && end - start <= MAX_RANGE_PORTS)) {
        fail(
          path,
          `must be a range [start, end) within 1-65535 of at most ${MAX_RANGE_PORTS} ports`,
        );
      }
      return op("ports", Array.from({ length: end - start }, (_, i) => String(start + i)));
    }
    case "destinationIp":
      return when("destination.ip", [cidrForm(v, path)]);
    case "requestedServerName":
      // Expressible (`connection.sni`), but the 0.1.0 host offers no SNI to filters: the plugin
      // would never match it, silently weakening a DENY. Refuse instead.
      return fail(path, "the weft filter host does not expose the SNI yet (not enforceable)");
    default:
      return fail(path, "permission kind not expressible in weft authz");
  }
}

/** The peer principal (`authenticated.principalName`, or the filter state Istio's waypoints
 * use) → principals / namespaces / serviceAccounts, matched by the plugin without `spiffe://`. */
function peerGroup(m: unknown, path: string): Group {
  const f = fields(m, ["exact", "prefix", "suffix", "contains", "safeRegex", "ignoreCase"], path);
  const exact = f.get("exact"), prefix = f.get("prefix");
  if (typeof exact === "string" || typeof prefix === "string") {
    const s = (exact ?? prefix) as string;
    if (!s.startsWith("spiffe://")) fail(path, "non-SPIFFE principal names are not expressible");
    const rest = s.slice("spiffe://".length);
    if (typeof prefix === "string") return src("principals", [rest === "" ? "*" : `${rest}*`]);
  }
  const re = f.get("safeRegex");
  if (re !== undefined) {
    const r = str(
      fields(re, ["regex", "googleRe2"], `${path}.safeRegex`).get("regex"),
      `${path}.safeRegex.regex`,
    );
    const ns = /^\.\*\/ns\/(.+)\/\.\*$/.exec(r)?.[1];
    const nsLit = ns === undefined ? undefined : unquoteRegex(ns.replaceAll(".*", "\u0000"));
    if (nsLit !== undefined && !nsLit.includes("/")) {
      return src("namespaces", [nsLit.replaceAll("\u0000", "*")]);
    }
    const sa = /^spiffe:\/\/\.\+\/ns\/([^/]+)\/\(\.\+\/\|\)sa\/([^/]+)\(\/\.\+\)\?$/.exec(r);
    const saNs = sa && unquoteRegex(sa[1] as string), saName = sa && unquoteRegex(sa[2] as string);
    if (saNs && saName) return src("serviceAccounts", [`${saNs}/${saName}`]);
    if (r === ".+" || r === ".*") return src("principals", ["*"]);
    if (r.startsWith("spiffe://.*")) {
      const lit = unquoteRegex(r.slice("spiffe://.*".length));
      if (lit) return src("principals", [stringForm({ suffix: lit }, path)]);
    }
    fail(
      `${path}.safeRegex.regex`,
      `${JSON.stringify(r)} is not a principal regex Istio generates (not expressible)`,
    );
  }
  const v = stringForm(m, path);
  if (v.startsWith("*") && v.includes("://")) {
    fail(path, "suffix spans the spiffe:// scheme (not expressible)");
  }
  return src("principals", [v.startsWith("spiffe://") ? v.slice(9) : v]);
}

const JWT_AUTHN_FILTER = "envoy.filters.http.jwt_authn";

/** The value matchers of istiod's JWT claim matcher: one stringMatch, or an OR of them. */
function claimValues(v: unknown, path: string): string[] {
  const [kind, m] = oneof(v, path);
  if (kind === "stringMatch") return [stringForm(m, `${path}.stringMatch`)];
  if (kind !== "orMatch") fail(path, "must be a stringMatch or an orMatch of them");
  const list = fields(m, ["valueMatchers"], `${path}.orMatch`).get("valueMatchers");
  if (!Array.isArray(list) || list.length < 2) {
    fail(`${path}.orMatch.valueMatchers`, "must list at least two matchers");
  }
  return (list as unknown[]).map((x, i) => {
    const at = `${path}.orMatch.valueMatchers[${i}]`;
    return stringForm(fields(x, ["stringMatch"], at).get("stringMatch"), `${at}.stringMatch`);
  });
}

/** istiod's JWT claim matcher (authz model MetadataListValueMatcherForJWTClaims): jwt_authn's
 * payload metadata at `[payload, c1, .., cn]`, value `orMatch[listMatch{oneOf: V}, V]` — a
 * string claim or any element of a list claim matches V. That is exactly the plugin's
 * `request.auth.claims[c1]..[cn]` (audiences and presenter are istiod's `aud`/`azp` claims).
 * Other shapes (a list-only or string-only match, another metadata key) are refused. */
function jwtClaimGroup(keys: unknown[], value: unknown, invert: boolean, path: string): Group {
  const claims = keys.slice(1);
  if (
    keys[0] !== "payload" || claims.length === 0 ||
    !claims.every((k) => typeof k === "string" && /^[^[\]]+$/.test(k))
  ) {
    fail(`${path}.path`, "must be [payload, <claim>, ...] with claim names free of [ and ]");
  }
  const vp = `${path}.value.orMatch.valueMatchers`;
  const [kind, or] = oneof(value, `${path}.value`);
  const both = kind === "orMatch" ? fields(or, ["valueMatchers"], `${path}.value.orMatch`) : null;
  const pair = both?.get("valueMatchers");
  if (!Array.isArray(pair) || pair.length !== 2) {
    fail(`${path}.value`, "must be istiod's orMatch[listMatch{oneOf: V}, V] claim matcher");
  }
  const list = fields(pair[0], ["listMatch"], `${vp}[0]`).get("listMatch");
  const oneOf = fields(list, ["oneOf"], `${vp}[0].listMatch`).get("oneOf");
  const inList = claimValues(oneOf, `${vp}[0].listMatch.oneOf`);
  const plain = claimValues(pair[1], `${vp}[1]`);
  if (JSON.stringify(inList) !== JSON.stringify(plain)) {
    fail(vp, "the list and string matchers must match the same values");
  }
  return when(`request.auth.claims${claims.map((c) => `[${c}]`).join("")}`, plain, invert);
}

function principalLeaf(kind: string, v: unknown, path: string): Group {
  switch (kind) {
    case "authenticated": {
      const name = fields(v, ["principalName"], path).get("principalName");
      return name === undefined
        ? src("principals", ["*"])
        : peerGroup(name, `${path}.principalName`);
    }
    case "filterState": {
      const f = fields(v, ["key", "stringMatch"], path);
      if (f.get("key") !== "io.istio.peer_principal" || !f.has("stringMatch")) {
        fail(path, "only the io.istio.peer_principal string match is expressible");
      }
      return peerGroup(f.get("stringMatch"), `${path}.stringMatch`);
    }
    case "directRemoteIp":
    case "sourceIp":
      return src("ipBlocks", [cidrForm(v, path)]);
    case "remoteIp":
      return src("remoteIpBlocks", [cidrForm(v, path)]);
    case "header": {
      const h = headerForm(v, path);
      if (h.name.startsWith(":")) {
        fail(`${path}.name`, `${h.name} in a principal is not expressible`);
      }
      return when(`request.headers[${h.name}]`, [h.value], h.invert);
    }
    case "metadata": {
      // Istio's requestPrincipals / request.auth.principal read `istio_authn` metadata: the
      // `<iss>/<sub>` of the JWT the node's jwt_authn filter verified (RequestAuthentication).
      const f = fields(v, ["filter", "path", "value", "invert"], path);
      const keys = Array.isArray(f.get("path"))
        ? (f.get("path") as unknown[]).map((k) => (k as { key?: unknown })?.key)
        : [];
      if (f.get("filter") === JWT_AUTHN_FILTER) {
        return jwtClaimGroup(keys, f.get("value"), f.get("invert") === true, path);
      }
      if (f.get("filter") !== "istio_authn") {
        fail(path, `only istio_authn and ${JWT_AUTHN_FILTER} (JWT) metadata is expressible`);
      }
      if (keys.length !== 1 || keys[0] !== "request.auth.principal") {
        fail(`${path}.path`, "only [request.auth.principal] is expressible");
      }
      const value = fields(f.get("value"), ["stringMatch"], `${path}.value`).get("stringMatch");
      // As a `when` condition (the plugin reads both forms the same way): several of them AND,
      // where two requestPrincipals lists could not.
      return when(
        "request.auth.principal",
        [stringForm(value, `${path}.value.stringMatch`)],
        f.get("invert") === true,
      );
    }
    default:
      return fail(path, "principal kind not expressible in weft authz");
  }
}

const PERMISSION: TreeKeys = {
  and: "andRules",
  or: "orRules",
  list: "rules",
  not: "notRule",
  leaf: permissionLeaf,
};
const PRINCIPAL: TreeKeys = {
  and: "andIds",
  or: "orIds",
  list: "ids",
  not: "notId",
  leaf: principalLeaf,
};

/** One entry of a policy's `permissions` / `principals` list → OR of conjunctions. The list
 * itself ORs, so a top-level OR over several attributes splits into several entries. */
function entries(node: unknown, path: string, t: TreeKeys): Group[][] {
  try {
    return [conj(node, path, t)];
  } catch (e) {
    const [kind, v] = oneof(node, path);
    if (!(e instanceof RbacProblem) || kind !== t.or) throw e;
    return children(v, `${path}.${t.or}`, t).flatMap(([c, p]) => entries(c, p, t));
  }
}

export const permissionEntries = (p: unknown, path: string): Group[][] =>
  entries(p, path, PERMISSION);
export const principalEntries = (p: unknown, path: string): Group[][] =>
  entries(p, path, PRINCIPAL);
