/**
 * Request path normalisation as Istio's default (MeshConfig `pathNormalization: BASE`, Envoy
 * `normalize_path`), applied once when a request is parsed so that authorization policies and the
 * upstream see the same path (https://istio.io/latest/docs/reference/config/security/normalization/):
 * percent-encoded unreserved characters decoded once (`%41` → `A`; `%2F`/`%5C` kept), `\` → `/`,
 * `.`/`..` segments resolved (RFC 3986 §5.2.4), the query left as sent, `%00` refused (400).
 * Also splits an HTTP/1.1 absolute-form target (RFC 9112 §3.2.2) into authority and path, as
 * Envoy does, so `GET http://h/admin` cannot dodge a path rule.
 */

/** The normalised target, or undefined when the request must be refused with 400: `%00`, or a
 * target that is neither a path nor `*` (authority-form belongs to CONNECT, handled before). */
export function normalizePath(target: string, method = "GET"): string | undefined {
  if (target.charCodeAt(0) !== 0x2f) {
    return target === "*" || method === "CONNECT" ? target : undefined;
  }
  const end = pathEnd(target);
  // Fast path: nothing to decode, no backslash, no dot segment (the common request).
  if (end < 0) return target;
  const path = target.slice(0, end);
  const decoded = decodeUnreserved(path);
  if (decoded === undefined) return undefined;
  return removeDotSegments(decoded.replaceAll("\\", "/")) + target.slice(end);
}

/** One scan of the path part of `target` (up to `?` or `#`): -1 when it has nothing to
 * normalise (no `%`, no backslash, no `.` or `..` segment: the common request, no string made), else
 * where the path ends. */
export function pathEnd(target: string): number {
  const n = target.length;
  let work = false;
  for (let i = 0; i < n; i++) {
    const c = target.charCodeAt(i);
    if (c === 0x3f || c === 0x23) return work ? i : -1; // ? or #
    if (c === 0x25 || c === 0x5c) work = true; // % or backslash
    else if (c === 0x2e && target.charCodeAt(i - 1) === 0x2f) { // "/." ...
      let j = i + 1;
      if (target.charCodeAt(j) === 0x2e) j++; // "/.."
      const after = target.charCodeAt(j); // NaN past the end
      if (j === n || after === 0x2f || after === 0x3f || after === 0x23) work = true;
    }
  }
  return work ? n : -1;
}

/** Percent-decodes ALPHA / DIGIT / "-" / "." / "_" / "~" once; undefined on `%00`. */
function decodeUnreserved(path: string): string | undefined {
  let out = "";
  let from = 0;
  for (let i = path.indexOf("%"); i >= 0 && i + 2 < path.length; i = path.indexOf("%", i + 1)) {
    const hex = path.slice(i + 1, i + 3);
    if (!/^[0-9a-fA-F]{2}$/.test(hex)) continue;
    const byte = parseInt(hex, 16);
    if (byte === 0) return undefined;
    const ch = String.fromCharCode(byte);
    if (!/[A-Za-z0-9\-._~]/.test(ch)) continue;
    out += path.slice(from, i) + ch;
    from = i + 3;
    i += 2;
  }
  return out + path.slice(from);
}

/** RFC 3986 §5.2.4 on an absolute path. */
function removeDotSegments(path: string): string {
  const segs = path.split("/"); // leading "" for the root
  const out: string[] = [];
  for (let i = 1; i < segs.length; i++) {
    const s = segs[i]!;
    const last = i === segs.length - 1;
    if (s === ".") {
      if (last) out.push("");
    } else if (s === "..") {
      out.pop();
      if (last) out.push("");
    } else out.push(s);
  }
  return "/" + out.join("/");
}

/** An absolute-form request target (`http://host[:port]/path?q`) split as Envoy does; undefined
 * for any other target. The path is "/" when the URL has none. */
export function splitAbsoluteForm(
  target: string,
): { authority: string; path: string } | undefined {
  // An origin-form target (the common request) starts with "/": no regex run.
  const c = target.charCodeAt(0);
  if (c !== 0x68 && c !== 0x48) return undefined; // h or H
  const m = /^https?:\/\/([^/?#]*)(.*)$/i.exec(target);
  if (!m) return undefined;
  const rest = m[2]!;
  return { authority: m[1]!, path: rest.startsWith("/") ? rest : `/${rest}` };
}

/** A letter a-z in `s`: Istio refuses a method in lower case (a short token: one scan, no
 * regex call per request). */
export function hasLowerCase(s: string): boolean {
  for (let i = 0; i < s.length; i++) {
    const c = s.charCodeAt(i);
    if (c >= 0x61 && c <= 0x7a) return true;
  }
  return false;
}
