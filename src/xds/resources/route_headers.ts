/**
 * RDS header operations (Route and WeightedCluster.ClusterWeight `request_headers_to_add`,
 * `request_headers_to_remove`, `response_headers_to_add`, `response_headers_to_remove`) → the
 * data path's (src/core/route_headers.ts). weft makes OVERWRITE_IF_EXISTS_OR_ADD (and the
 * deprecated `append: false`) and APPEND_IF_EXISTS_OR_ADD (the default, `append: true`); the other
 * append actions, `%`-formatted values (Envoy substitutes command operators weft does not have)
 * and pseudo-headers or `host` (Envoy refuses them too) are NACKed. Empty values are dropped
 * unless `keep_empty_value`, as Envoy.
 */
import type { HeaderOps } from "../../core/mod.ts";
import type { HeaderValueOption } from "../gen/envoy/config/core/v3/base_pb.ts";
import { invalid } from "./resource_type.ts";

/** HeaderValueOption.HeaderAppendAction values (the generated enum module would pull the
 * protobuf-es descriptors into a node: tests/lazy_imports_test.ts). */
const APPEND_IF_EXISTS_OR_ADD = 0;
const OVERWRITE_IF_EXISTS_OR_ADD = 2;
const ACTION_NAMES = [
  "APPEND_IF_EXISTS_OR_ADD",
  "ADD_IF_ABSENT",
  "OVERWRITE_IF_EXISTS_OR_ADD",
  "OVERWRITE_IF_EXISTS",
];

const TOKEN = /^[!#$%&'*+\-.^_`|~0-9a-z]+$/;
const decoder = new TextDecoder();

function nameOf(raw: string, what: string, field: string): string {
  const n = raw.toLowerCase();
  if (n.startsWith(":") || n === "host") {
    throw invalid(
      what,
      `${field}: ${JSON.stringify(raw)}: pseudo-headers and host cannot be changed`,
    );
  }
  if (!TOKEN.test(n)) throw invalid(what, `${field}: ${JSON.stringify(raw)} is not a header name`);
  return n;
}

/** One level's operations; undefined when it has none. */
export function headerOpsOf(
  toAdd: readonly HeaderValueOption[],
  toRemove: readonly string[],
  what: string,
  field: string,
): HeaderOps | undefined {
  if (toAdd.length === 0 && toRemove.length === 0) return undefined;
  const set: [string, string][] = [];
  const add: [string, string][] = [];
  for (const o of toAdd) {
    const h = o.header;
    if (!h) throw invalid(what, `${field}_to_add: an entry without a header`);
    const name = nameOf(h.key, what, `${field}_to_add`);
    const value = h.value || decoder.decode(h.rawValue);
    if (/[\r\n\0]/.test(value)) throw invalid(what, `${field}_to_add ${name}: CR, LF or NUL`);
    if (value.replaceAll("%%", "").includes("%")) {
      throw invalid(what, `${field}_to_add ${name}: %-formatted values are not supported`);
    }
    if (value === "" && !o.keepEmptyValue) continue;
    const overwrite = o.append !== undefined
      ? !o.append
      : o.appendAction === OVERWRITE_IF_EXISTS_OR_ADD
      ? true
      : o.appendAction === APPEND_IF_EXISTS_OR_ADD
      ? false
      : undefined;
    if (overwrite === undefined) {
      throw invalid(
        what,
        `${field}_to_add ${name}: append_action ${ACTION_NAMES[o.appendAction] ?? o.appendAction}`,
      );
    }
    (overwrite ? set : add).push([name, value.replaceAll("%%", "%")]);
  }
  const remove = toRemove.map((n) => nameOf(n, what, `${field}_to_remove`));
  if (!set.length && !add.length && !remove.length) return undefined;
  return Object.freeze({
    ...(remove.length ? { remove } : {}),
    ...(set.length ? { set } : {}),
    ...(add.length ? { add } : {}),
  });
}

/** A weighted cluster's operations (and host_rewrite_literal), by cluster name. */
export interface ClusterHeaderOps {
  readonly cluster: string;
  readonly request?: HeaderOps;
  readonly response?: HeaderOps;
  readonly authority?: string;
}

/** A route's operations and its weighted clusters'. */
export interface RuleHeaders {
  readonly request?: HeaderOps;
  readonly response?: HeaderOps;
  readonly clusters?: readonly ClusterHeaderOps[];
}

interface HeaderFields {
  readonly requestHeadersToAdd: readonly HeaderValueOption[];
  readonly requestHeadersToRemove: readonly string[];
  readonly responseHeadersToAdd: readonly HeaderValueOption[];
  readonly responseHeadersToRemove: readonly string[];
}

function levelOf(o: HeaderFields, what: string) {
  const request = headerOpsOf(
    o.requestHeadersToAdd,
    o.requestHeadersToRemove,
    what,
    "request_headers",
  );
  const response = headerOpsOf(
    o.responseHeadersToAdd,
    o.responseHeadersToRemove,
    what,
    "response_headers",
  );
  return { ...(request ? { request } : {}), ...(response ? { response } : {}) };
}

/** The Route's operations and those of its weighted clusters (`clusters`: name, fields and
 * host rewrite); undefined when there are none. */
export function ruleHeadersOf(
  route: HeaderFields,
  clusters: readonly (HeaderFields & { name: string; authority?: string | undefined })[],
  what: string,
): RuleHeaders | undefined {
  const own = levelOf(route, what);
  const cs: ClusterHeaderOps[] = [];
  for (const c of clusters) {
    const l = levelOf(c, what);
    if (!l.request && !l.response && c.authority === undefined) continue;
    cs.push(Object.freeze({
      cluster: c.name,
      ...l,
      ...(c.authority !== undefined ? { authority: c.authority } : {}),
    }));
  }
  if (!own.request && !own.response && cs.length === 0) return undefined;
  return Object.freeze({ ...own, ...(cs.length ? { clusters: cs } : {}) });
}
