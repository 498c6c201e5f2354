/** Envoy string/header/CIDR matchers (proto3 JSON) → the authz plugin's Istio-form strings
 * (`abc` exact, `abc*` prefix, `*abc` suffix, `*` non-empty), or a path-qualified problem when
 * no exact Istio form exists. Used by rbac_config.ts. */
import { isRecord } from "./convert_util.ts";

/** One conversion problem; rbac_config.ts collects them into a `config_invalid` WeftError. */
export class RbacProblem extends Error {}

export function fail(path: string, reason: string): never {
  throw new RbacProblem(`${path || "(root)"}: ${reason}`);
}

export const at = (path: string, key: string): string => (path ? `${path}.${key}` : key);

const camel = (k: string): string => k.replace(/_([a-z])/g, (_, c: string) => c.toUpperCase());

/** The fields of a proto3 JSON object (camelCase or the original snake_case names), checked
 * against the fields weft understands; anything else is a problem, never silently ignored. */
export function fields(
  v: unknown,
  allowed: readonly string[],
  path: string,
): Map<string, unknown> {
  if (!isRecord(v)) fail(path, "must be an object");
  const out = new Map<string, unknown>();
  for (const [k, val] of Object.entries(v)) {
    const c = camel(k);
    if (!allowed.includes(c)) {
      fail(at(path, k), "unsupported field (not expressible in weft authz)");
    }
    if (val !== null && val !== undefined) out.set(c, val);
  }
  return out;
}

/** The single set member of a proto oneof-shaped object (`{header: {...}}`). */
export function oneof(v: unknown, path: string): [string, unknown] {
  if (!isRecord(v)) fail(path, "must be an object");
  const entries = Object.entries(v).filter(([, x]) => x !== null && x !== undefined);
  const first = entries[0];
  if (entries.length !== 1 || first === undefined) fail(path, "must set exactly one rule");
  return [camel(first[0]), first[1]];
}

export function str(v: unknown, path: string): string {
  if (typeof v !== "string") fail(path, "must be a string");
  return v;
}

function nonEmpty(v: unknown, path: string): string {
  const s = str(v, path);
  if (s === "") fail(path, "must not be empty");
  return s;
}

/** Exact/prefix/suffix literals in Istio form; a literal whose `*` would be read as a wildcard
 * has no Istio spelling. */
export function exactForm(v: string, path: string): string {
  if (v.startsWith("*") || v.endsWith("*")) {
    fail(path, `exact value ${JSON.stringify(v)} starts or ends with '*' (not expressible)`);
  }
  return v;
}
export const prefixForm = (v: string): string => `${v}*`;
export function suffixForm(v: string, path: string): string {
  if (v.endsWith("*")) fail(path, `suffix ${JSON.stringify(v)} ends with '*' (not expressible)`);
  return `*${v}`;
}

/** Go regexp.QuoteMeta inverse: the literal, or undefined when `re` has an unescaped meta. */
export function unquoteRegex(re: string): string | undefined {
  let out = "";
  for (let i = 0; i < re.length; i++) {
    const c = re[i] as string;
    if (c === "\\") {
      const n = re[i + 1];
      if (n === undefined || /[A-Za-z0-9]/.test(n)) return undefined;
      out += n;
      i++;
    } else if ("\\.+*?()|[]{}^$".includes(c)) return undefined;
    else out += c;
  }
  return out;
}

/** A literal with a `.*` wildcard at one end → Istio form (exact/prefix/suffix). */
function wildcardRegex(re: string, path: string): string | undefined {
  if (re === ".+") return "*";
  if (re.startsWith(".*")) {
    const lit = unquoteRegex(re.slice(2));
    return lit ? suffixForm(lit, path) : undefined;
  }
  if (re.endsWith(".*") && !re.endsWith("\\.*")) {
    const lit = unquoteRegex(re.slice(0, -2));
    return lit ? prefixForm(lit) : undefined;
  }
  const lit = unquoteRegex(re);
  return lit !== undefined ? exactForm(lit, path) : undefined;
}

const STRING_KEYS = ["exact", "prefix", "suffix", "contains", "safeRegex", "ignoreCase"];

export interface StringOptions {
  /** hosts: the plugin compares case-insensitively, so the matcher must too. */
  readonly caseInsensitive?: boolean;
}

/** envoy.type.matcher.v3.StringMatcher → Istio form. */
export function stringForm(m: unknown, path: string, opts: StringOptions = {}): string {
  const f = fields(m, STRING_KEYS, path);
  const ic = f.get("ignoreCase") === true;
  if (opts.caseInsensitive && !ic && !f.has("safeRegex")) {
    fail(
      path,
      "host matchers must set ignoreCase: true (weft authz compares hosts case-insensitively)",
    );
  }
  if (!opts.caseInsensitive && ic) {
    fail(`${path}.ignoreCase`, "case-insensitive matching is not expressible for this attribute");
  }
  const kinds = [...f.keys()].filter((k) => k !== "ignoreCase");
  if (kinds.length !== 1) fail(path, "must set exactly one of exact, prefix, suffix, safeRegex");
  const kind = kinds[0] as string;
  const v = f.get(kind);
  switch (kind) {
    case "exact":
      return exactForm(str(v, `${path}.exact`), `${path}.exact`);
    case "prefix":
      return prefixForm(nonEmpty(v, `${path}.prefix`));
    case "suffix":
      return suffixForm(nonEmpty(v, `${path}.suffix`), `${path}.suffix`);
    case "safeRegex":
      return regexForm(v, `${path}.safeRegex`, opts);
    default:
      return fail(`${path}.${kind}`, "substring matching has no Istio form (not expressible)");
  }
}

function regexForm(v: unknown, path: string, opts: StringOptions): string {
  let re = str(fields(v, ["regex", "googleRe2"], path).get("regex"), `${path}.regex`);
  if (opts.caseInsensitive) {
    // Istio's HostMatcherWithRegex: `(?i)` + QuoteMeta(host) with `.*` for the wildcard end.
    if (!re.startsWith("(?i)")) fail(path, "host regexes must start with (?i)");
    re = re.slice(4);
  }
  const out = wildcardRegex(re, path);
  if (out === undefined) {
    fail(path, `regex ${JSON.stringify(re)} is not a shape Istio generates (not expressible)`);
  }
  return out;
}

const HEADER_KEYS = [
  "name",
  "exactMatch",
  "safeRegexMatch",
  "presentMatch",
  "prefixMatch",
  "suffixMatch",
  "containsMatch",
  "stringMatch",
  "invertMatch",
  "treatMissingHeaderAsEmpty",
];

export interface HeaderForm {
  readonly name: string;
  readonly value: string;
  readonly invert: boolean;
}

/** envoy.config.route.v3.HeaderMatcher → (lower-case name, Istio form, inverted?). */
export function headerForm(m: unknown, path: string, opts: StringOptions = {}): HeaderForm {
  const f = fields(m, HEADER_KEYS, path);
  const name = nonEmpty(f.get("name"), `${path}.name`).toLowerCase();
  const invert = f.get("invertMatch") === true;
  if (f.get("treatMissingHeaderAsEmpty") === true) {
    fail(`${path}.treatMissingHeaderAsEmpty`, "not expressible in weft authz");
  }
  const kinds = [...f.keys()].filter((k) =>
    k !== "name" && k !== "invertMatch" &&
    k !== "treatMissingHeaderAsEmpty"
  );
  if (kinds.length !== 1) fail(path, "must set exactly one match specifier");
  const kind = kinds[0] as string;
  const v = f.get(kind);
  const at = `${path}.${kind}`;
  let value: string;
  switch (kind) {
    case "presentMatch":
      if (v !== true || invert) {
        fail(at, "only presentMatch: true without invertMatch is expressible");
      }
      value = "*"; // Istio's "*" (the plugin requires a non-empty value)
      break;
    case "exactMatch":
      if (opts.caseInsensitive) {
        fail(at, "host matchers must be case-insensitive (stringMatch.ignoreCase)");
      }
      value = exactForm(str(v, at), at);
      break;
    case "prefixMatch":
      if (opts.caseInsensitive) {
        fail(at, "host matchers must be case-insensitive (stringMatch.ignoreCase)");
      }
      value = prefixForm(nonEmpty(v, at));
      break;
    case "suffixMatch":
      if (opts.caseInsensitive) {
        fail(at, "host matchers must be case-insensitive (stringMatch.ignoreCase)");
      }
      value = suffixForm(nonEmpty(v, at), at);
      break;
    case "stringMatch":
      value = stringForm(v, at, opts);
      break;
    case "safeRegexMatch":
      value = regexForm(v, at, opts);
      break;
    default:
      fail(
        at,
        "not expressible in weft authz (exact, prefix, suffix, present or Istio regexes only)",
      );
  }
  return { name, value, invert };
}

/** envoy.config.core.v3.CidrRange → "addr/len" (prefixLen unset = 0, as in Envoy). */
export function cidrForm(v: unknown, path: string): string {
  const f = fields(v, ["addressPrefix", "prefixLen"], path);
  const addr = nonEmpty(f.get("addressPrefix"), `${path}.addressPrefix`);
  const len = f.get("prefixLen") ?? 0;
  const max = addr.includes(":") ? 128 : 32;
  if (typeof len !== "number" || !Number.isInteger(len) || len < 0 || len > max) {
    fail(`${path}.prefixLen`, `must be an integer 0-${max}`);
  }
  return `${addr}/${len}`;
}
