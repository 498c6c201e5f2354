/**
 * VirtualService delegation (l7-semantics S12: `delegate`, one level), as istiod merges it
 * (pilot/pkg/model/virtualservice.go `MergeHTTPRoutes`, virtualservice_controller.go): a root
 * VirtualService (with `hosts`) whose http route names a delegate (`{name, namespace}`, the
 * namespace defaulting to the root's) is expanded into the delegate VirtualService's routes (one
 * without `hosts`), each delegate match ANDed with a root match it does not conflict with; the
 * root route's rewrite, directResponse, timeout, retries, fault, mirrors and headers apply where
 * the delegate route sets none; names join as `root-delegate`. A delegate that does not exist, or
 * a delegate route whose matches all conflict with the root's, or a delegate not exported to the
 * root's namespace (`exportTo`), drops that route with a warning (istiod logs and skips it).
 * Delegate VirtualServices themselves configure nothing.
 */
import { hostFqdn } from "./select.ts";
import type { HttpMatch, HttpRoute, IstioStringMatch, VirtualService } from "./types.ts";

/** istiod's stringMatchConflict: the leaf must be a subset of the root (exact within exact,
 * exact or prefix within a prefix); a regex on either side conflicts with any other kind. */
function stringConflict(root: IstioStringMatch | undefined, leaf: IstioStringMatch | undefined) {
  if (!root || !leaf) return false;
  if (root.regex && (leaf.regex || leaf.prefix || leaf.exact)) return true;
  if (leaf.regex && (root.regex || root.prefix || root.exact)) return true;
  if (root.exact) return leaf.prefix ? true : leaf.exact !== root.exact;
  if (root.prefix) {
    if (leaf.prefix) return !leaf.prefix.startsWith(root.prefix);
    if (leaf.exact) return !leaf.exact.startsWith(root.prefix);
  }
  return true;
}

function hasConflict(root: HttpMatch, leaf: HttpMatch): boolean {
  if (
    stringConflict(root.uri, leaf.uri) || stringConflict(root.scheme, leaf.scheme) ||
    stringConflict(root.method, leaf.method) || stringConflict(root.authority, leaf.authority)
  ) return true;
  for (const [k, v] of Object.entries(leaf.headers)) {
    if (stringConflict(root.headers[k], v)) return true;
  }
  for (const [k, v] of Object.entries(leaf.withoutHeaders)) {
    if (stringConflict(root.withoutHeaders[k], v)) return true;
  }
  for (const [k, v] of Object.entries(leaf.queryParams)) {
    if (stringConflict(root.queryParams[k], v)) return true;
  }
  if (root.ignoreUriCase !== leaf.ignoreUriCase) return true;
  if (root.port !== undefined && leaf.port !== undefined && root.port !== leaf.port) return true;
  if (root.sourceNamespace !== undefined && leaf.sourceNamespace !== root.sourceNamespace) {
    return true;
  }
  for (const [k, v] of Object.entries(leaf.sourceLabels ?? {})) {
    const r = root.sourceLabels?.[k];
    if (r !== undefined && r !== v) return true;
  }
  return false;
}

const joinName = (root: string | undefined, leaf: string | undefined) =>
  leaf === undefined ? root : root === undefined ? leaf : `${root}-${leaf}`;

function mergeMatch(root: HttpMatch, leaf: HttpMatch): HttpMatch {
  const labels = root.sourceLabels || leaf.sourceLabels
    ? { ...root.sourceLabels, ...leaf.sourceLabels }
    : undefined;
  return {
    name: joinName(root.name, leaf.name),
    uri: leaf.uri ?? root.uri,
    method: leaf.method ?? root.method,
    authority: leaf.authority ?? root.authority,
    scheme: leaf.scheme ?? root.scheme,
    headers: { ...root.headers, ...leaf.headers },
    withoutHeaders: { ...root.withoutHeaders, ...leaf.withoutHeaders },
    queryParams: { ...root.queryParams, ...leaf.queryParams },
    port: leaf.port ?? root.port,
    sourceLabels: labels,
    sourceNamespace: leaf.sourceNamespace ?? root.sourceNamespace,
    ignoreUriCase: leaf.ignoreUriCase,
  };
}

/** Each delegate match needs a root match it does not conflict with (all such pairs merge);
 * undefined = conflict. */
function mergeMatches(
  root: readonly HttpMatch[],
  leaf: readonly HttpMatch[],
): HttpMatch[] | undefined {
  if (root.length === 0) return [...leaf];
  if (leaf.length === 0) return [...root];
  const out: HttpMatch[] = [];
  for (const l of leaf) {
    const fit = root.filter((r) => !hasConflict(r, l));
    if (fit.length === 0) return undefined;
    for (const r of fit) out.push(mergeMatch(r, l));
  }
  return out;
}

/** The delegate's destination hosts resolved in its own namespace (istiod resolves the delegate's
 * short names where it lives), so the merged route means the same under the root. */
function inNamespace(r: HttpRoute, ns: string): HttpRoute {
  return {
    ...r,
    route: r.route.map((d) => ({
      ...d,
      destination: { ...d.destination, host: hostFqdn(d.destination.host, ns) },
    })),
    ...(r.mirrors
      ? {
        mirrors: r.mirrors.map((m) => ({
          ...m,
          destination: { ...m.destination, host: hostFqdn(m.destination.host, ns) },
        })),
      }
      : {}),
  };
}

function mergeRoute(root: HttpRoute, leaf: HttpRoute): HttpRoute | undefined {
  const match = mergeMatches(root.match, leaf.match);
  if (!match) return undefined;
  const pick = <K extends "rewrite" | "directResponse" | "mirrors" | "headers" | "cors">(k: K) =>
    leaf[k] !== undefined ? { [k]: leaf[k] } : root[k] !== undefined ? { [k]: root[k] } : {};
  return {
    ...leaf,
    name: joinName(root.name, leaf.name),
    match,
    fault: leaf.fault ?? root.fault,
    timeoutMs: leaf.timeoutMs ?? root.timeoutMs,
    retries: leaf.retries ?? root.retries,
    ...pick("rewrite"),
    ...pick("directResponse"),
    ...pick("mirrors"),
    ...pick("headers"),
    ...pick("cors"),
  };
}

/** istiod (virtualservice_controller.go): a delegate is used only by roots in namespaces it is
 * exported to — "." its own, "*" all, "~" none; without exportTo, the mesh default (all). */
function exportedTo(d: VirtualService, ns: string): boolean {
  const e = d.exportTo;
  if (!e || e.length === 0) return true;
  return e.some((x) => x === "*" || x === ns || (x === "." && d.meta.namespace === ns));
}

/** Root VirtualServices with their delegations expanded; delegate ones (no hosts) left out. */
export function mergeDelegates(
  virtualServices: readonly VirtualService[],
  warnings: string[],
): VirtualService[] {
  const delegates = new Map<string, VirtualService>();
  for (const vs of virtualServices) {
    if (vs.hosts.length === 0) delegates.set(`${vs.meta.namespace}/${vs.meta.name}`, vs);
  }
  const out: VirtualService[] = [];
  for (const vs of virtualServices) {
    if (vs.hosts.length === 0) continue;
    if (!vs.http.some((r) => r.delegate)) {
      out.push(vs);
      continue;
    }
    const where = `VirtualService ${vs.meta.namespace}/${vs.meta.name}`;
    const http: HttpRoute[] = [];
    vs.http.forEach((r, i) => {
      if (!r.delegate) return http.push(r);
      const key = `${r.delegate.namespace ?? vs.meta.namespace}/${r.delegate.name}`;
      const d = delegates.get(key);
      if (!d) {
        warnings.push(
          `${where}: spec.http[${i}].delegate: VirtualService ${key} not found; the route is ignored`,
        );
        return;
      }
      if (!exportedTo(d, vs.meta.namespace)) {
        warnings.push(
          `${where}: spec.http[${i}].delegate: VirtualService ${key} is not exported to namespace ${vs.meta.namespace}; the route is ignored`,
        );
        return;
      }
      d.http.forEach((leaf, j) => {
        const merged = mergeRoute(r, inNamespace(leaf, d.meta.namespace));
        if (merged) http.push(merged);
        else {
          warnings.push(
            `${where}: spec.http[${i}].delegate: route ${j} of VirtualService ${key} conflicts with the root's match; it is ignored`,
          );
        }
      });
    });
    out.push({ ...vs, http });
  }
  return out;
}
