/**
 * Istio VirtualService `headers` (route level and per destination): `request` and `response`,
 * each `{set, add, remove}` → the data path's header operations (src/core/route_headers.ts).
 * As istiod, a request `set`/`add` of `host` or `:authority` becomes the authority rewrite
 * (Envoy's host_rewrite_literal), since Envoy refuses to change pseudo-headers and `host` through
 * header operations; every other `:`-prefixed name, a removal of `host`, and a response `host`
 * (istiod drops it silently) are refused with their path. An empty value is dropped, as Envoy
 * drops it without `keep_empty_value` (which istiod does not set). Gateway API's
 * RequestHeaderModifier/ResponseHeaderModifier (`set`/`add` as lists of `{name, value}`) take the
 * same path, as istiod converts them (pilot/pkg/config/kube/gateway `createHeadersFilter`).
 */
import { type Checker, isObj, type Raw } from "./check.ts";
import type { HeaderOps } from "../core/mod.ts";
import type { HttpHeaders } from "./types.ts";

/** RFC 9110 token. */
const TOKEN = /^[!#$%&'*+\-.^_`|~0-9a-z]+$/;
const AUTHORITY = new Set(["host", ":authority"]);

function pairs(
  c: Checker,
  path: string,
  v: unknown,
  request: boolean,
  authority: (v: string) => void,
): [string, string][] {
  if (v === undefined || v === null) return [];
  // Gateway API HTTPHeaderFilter: a list of {name, value} (istiod turns it into this mapping).
  const entries: [string, unknown, string][] = Array.isArray(v)
    ? v.map((x, i) => {
      const o = c.obj(`${path}[${i}]`, x, ["name", "value"]);
      return [c.str(`${path}[${i}].name`, o.name), o.value, `${path}[${i}].value`];
    })
    : isObj(v)
    ? Object.entries(v).map(([k, raw]) => [k, raw, `${path}.${k}`])
    : [];
  if (!Array.isArray(v) && !isObj(v)) {
    c.problems.add(path, "must be a mapping of header name to value");
    return [];
  }
  const out: [string, string][] = [];
  for (const [k, raw, p] of entries) {
    const value = c.str(p, raw);
    if (/[\r\n\0]/.test(value)) c.problems.add(p, "a header value cannot hold CR, LF or NUL");
    if (value.replaceAll("%%", "").includes("%")) {
      // Envoy reads %…% as a command operator (%DOWNSTREAM_REMOTE_ADDRESS%, …); `%%` is a `%`.
      c.problems.add(p, "Envoy's %-formatted values are not supported by weft (write %% for %)");
    }
    const name = k.toLowerCase();
    if (request && AUTHORITY.has(name)) authority(value.replaceAll("%%", "%"));
    else if (name.startsWith(":") || name === "host") {
      c.problems.add(p, "pseudo-headers and host cannot be changed by header operations");
    } else if (!TOKEN.test(name)) c.problems.add(p, "not a valid header name");
    // Envoy drops an empty value (istiod does not set keep_empty_value); `%%` is a `%`.
    else if (value !== "") out.push([name, value.replaceAll("%%", "%")]);
  }
  return out;
}

export function ops(
  c: Checker,
  path: string,
  v: unknown,
  request: boolean,
  authority: (v: string) => void,
): HeaderOps | undefined {
  if (v === undefined || v === null) return undefined;
  const o: Raw = c.obj(path, v, ["set", "add", "remove"]);
  const set = pairs(c, `${path}.set`, o.set, request, authority);
  const add = pairs(c, `${path}.add`, o.add, request, authority);
  const remove = c.strList(`${path}.remove`, o.remove).map((n, i) => {
    const name = n.toLowerCase();
    if (name.startsWith(":") || name === "host") {
      c.problems.add(`${path}.remove[${i}]`, "pseudo-headers and host cannot be removed");
    } else if (!TOKEN.test(name)) c.problems.add(`${path}.remove[${i}]`, "not a valid header name");
    return name;
  });
  if (!set.length && !add.length && !remove.length) return undefined;
  return Object.freeze({
    ...(remove.length ? { remove } : {}),
    ...(set.length ? { set } : {}),
    ...(add.length ? { add } : {}),
  });
}

/** `headers` at `path` (absent → undefined); the request's `host`/`:authority` as `authority`. */
export function parseHeaders(c: Checker, path: string, v: unknown): HttpHeaders | undefined {
  if (v === undefined || v === null) return undefined;
  const o = c.obj(path, v, ["request", "response"]);
  let authority: string | undefined;
  const request = ops(c, `${path}.request`, o.request, true, (a) => (authority = a));
  const response = ops(c, `${path}.response`, o.response, false, () => {});
  if (!request && !response && authority === undefined) return undefined;
  return Object.freeze({
    ...(request ? { request } : {}),
    ...(response ? { response } : {}),
    ...(authority !== undefined ? { authority } : {}),
  });
}
