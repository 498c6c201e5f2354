/**
 * `envoy.filters.http.ext_authz` (ExtAuthz, read field by field: envoy/extensions/filters/http/
 * ext_authz/v3/ext_authz.proto numbers) → weft's ext_authz filter, and the pairing with the
 * shadow RBAC gate istiod puts right before it (shadow_rules_stat_prefix `istio_ext_authz_`):
 * the gate's rules decide which requests are checked, as Envoy's filter_enabled_metadata does on
 * the RBAC filter's shadow result. An ext_authz without such a gate checks every request.
 * What weft cannot honour (a Google gRPC target, a regex or contains header matcher, a cluster
 * that is not `outbound|<port>||<host>`) is a WeftError: the resource is NACKed.
 */
import type { FilterRef } from "../../core/mod.ts";
import { WeftError } from "../../core/mod.ts";
import { Reader } from "../wire.ts";

export const EXT_AUTHZ_TYPE_URL =
  "type.googleapis.com/envoy.extensions.filters.http.ext_authz.v3.ExtAuthz";
/** src/filters EXT_AUTHZ_XDS_TYPE (mirrored: src/xds may not import src/filters). */
export const EXT_AUTHZ_XDS_TYPE = "weft.ext_authz.xds";
const GATE_PREFIX = "istio_ext_authz_";
const DEPTH = 16;

function bad(why: string): never {
  throw new WeftError("xds_bad_filter", `Cannot use ext_authz: ${why}`);
}

/** Runs `on` for each field of the message in [r.pos, end); unknown fields are skipped. */
function fields(r: Reader, end: number, on: (field: number, wire: number) => boolean): void {
  while (r.pos < end) {
    const t = r.tag();
    if (!on(t >>> 3, t & 7)) r.skip(t, end, DEPTH);
  }
  r.done(end);
}

function sub(r: Reader, end: number, on: (field: number, wire: number, e: number) => boolean) {
  const e = r.delimited(end);
  fields(r, e, (f, w) => on(f, w, e));
}

function durationMs(r: Reader, end: number): number {
  let s = 0;
  let ns = 0;
  sub(r, end, (f, w) => {
    if (f === 1 && w === 0) s = Number(r.int64());
    else if (f === 2 && w === 0) ns = r.int32();
    else return false;
    return true;
  });
  return Math.max(0, Math.round(s * 1000 + ns / 1e6));
}

/** ListStringMatcher → Istio's header patterns (`x`, `x*`, `*x`), lower-case. */
function patterns(r: Reader, end: number): string[] {
  const out: string[] = [];
  sub(r, end, (f, w, e) => {
    if (f !== 1 || w !== 2) return false;
    let p: string | undefined;
    sub(r, e, (mf, mw, me) => {
      if (mw !== 2 && mf !== 6) return false;
      if (mf === 1) p = r.string(me, true);
      else if (mf === 2) p = `${r.string(me, true)}*`;
      else if (mf === 3) p = `*${r.string(me, true)}`;
      else if (mf === 6) r.bool();
      else bad("header matchers must be exact, prefix or suffix");
      return true;
    });
    if (p === undefined || p === "*") bad("an empty header matcher");
    out.push(p.toLowerCase());
    return true;
  });
  return out;
}

/** `outbound|<port>|<subset>|<host>` → host and port. */
function clusterTarget(cluster: string): { host: string; port: number } {
  const m = /^outbound\|(\d+)\|[^|]*\|(.+)$/.exec(cluster);
  const port = Number(m?.[1]);
  if (!m || !(port >= 1 && port <= 65535)) {
    bad(`cluster "${cluster}" is not outbound|<port>||<host>`);
  }
  return { host: m[2]!.toLowerCase(), port };
}

/** The ExtAuthz bytes → the provider in src/istio's ExtAuthzProvider shape. */
export function extAuthzProviderOf(name: string, bytes: Uint8Array): Record<string, unknown> {
  const r = new Reader(bytes);
  let kind: "http" | "grpc" | undefined;
  let cluster = "";
  let timeoutMs = 200; // Envoy's default for a gRPC service without one
  let pathPrefix = "";
  let failOpen = false;
  let statusOnError: number | undefined;
  let body: Record<string, unknown> | undefined;
  const headers: Record<string, string[]> = {};
  const additional: Record<string, string> = {};
  fields(r, bytes.length, (f, w) => {
    if (f === 1 && w === 2) {
      kind = "grpc";
      sub(r, bytes.length, (gf, gw, ge) => {
        if (gf === 1 && gw === 2) {
          sub(r, ge, (ef, ew, ee) => {
            if (ef === 1 && ew === 2) cluster = r.string(ee, true);
            else return false;
            return true;
          });
        } else if (gf === 2) bad("only envoy_grpc targets are supported");
        else if (gf === 3 && gw === 2) timeoutMs = durationMs(r, ge);
        else return false;
        return true;
      });
    } else if (f === 3 && w === 2) {
      kind = "http";
      sub(r, bytes.length, (hf, hw, he) => {
        if (hw !== 2) return false;
        if (hf === 1) {
          sub(r, he, (uf, uw, ue) => {
            if (uf === 2 && uw === 2) cluster = r.string(ue, true);
            else if (uf === 3 && uw === 2) timeoutMs = durationMs(r, ue);
            else return false;
            return true;
          });
        } else if (hf === 2) pathPrefix = r.string(he, true);
        else if (hf === 7) {
          sub(r, he, (af, aw, ae) => {
            if (af === 1 && aw === 2) headers.request = patterns(r, ae);
            else if (af === 2 && aw === 2) {
              let k = "";
              let v = "";
              sub(r, ae, (vf, vw, ve) => {
                if (vf === 1 && vw === 2) k = r.string(ve, true);
                else if (vf === 2 && vw === 2) v = r.string(ve, true);
                else return false;
                return true;
              });
              if (!/^[!#$%&'*+\-.^_`|~0-9a-z]+$/i.test(k) || /[\0\r\n]/.test(v)) {
                bad(`headers_to_add holds an invalid header`);
              }
              additional[k.toLowerCase()] = v;
            } else return false;
            return true;
          });
        } else if (hf === 8) {
          sub(r, he, (af, aw, ae) => {
            if (aw !== 2) return false;
            if (af === 1) headers.upstream = patterns(r, ae);
            else if (af === 2) headers.deny = patterns(r, ae);
            else if (af === 4) headers.allow = patterns(r, ae);
            else if (af === 3) bad("allowed_upstream_headers_to_append is not supported");
            else return false;
            return true;
          });
        } else return false;
        return true;
      });
    } else if (f === 2 && w === 0) failOpen = r.bool();
    else if (f === 5 && w === 2) {
      const b = { maxRequestBytes: 0, allowPartialMessage: false, packAsBytes: false };
      sub(r, bytes.length, (bf, bw) => {
        if (bw !== 0) return false;
        if (bf === 1) b.maxRequestBytes = r.uint32();
        else if (bf === 2) b.allowPartialMessage = r.bool();
        else if (bf === 3) b.packAsBytes = r.bool();
        else return false;
        return true;
      });
      body = b;
    } else if (f === 7 && w === 2) {
      sub(r, bytes.length, (sf, sw) => {
        if (sf === 1 && sw === 0) statusOnError = r.int32();
        else return false;
        return true;
      });
      if (!(statusOnError! >= 100 && statusOnError! <= 599)) bad("status_on_error out of range");
    } else return false;
    return true;
  });
  if (!kind) bad("needs grpc_service or http_service");
  const { host, port } = clusterTarget(cluster);
  return {
    name,
    kind,
    service: host,
    port,
    timeoutMs,
    failOpen,
    statusOnError,
    pathPrefix,
    includeRequestHeadersInCheck: headers.request ?? [],
    includeAdditionalHeadersInCheck: additional,
    includeRequestBodyInCheck: body,
    headersToUpstreamOnAllow: headers.upstream ?? [],
    headersToDownstreamOnDeny: headers.deny ?? [],
    headersToDownstreamOnAllow: headers.allow ?? [],
  };
}

export function extAuthzRef(name: string, bytes: Uint8Array): FilterRef {
  return {
    name,
    type: EXT_AUTHZ_XDS_TYPE,
    url: undefined,
    sha256: undefined,
    config: { provider: extAuthzProviderOf(name, bytes) },
    failPolicy: "FAIL_CLOSE",
    phase: "AUTHN",
    priority: 0,
  };
}

const MATCH_ALL = {
  rules: {
    action: "DENY",
    policies: {
      "istio-ext-authz-all": { permissions: [{ any: true }], principals: [{ any: true }] },
    },
  },
};

/** Folds each shadow-RBAC gate (an authz ref whose config has only shadow rules under the
 * `istio_ext_authz_` prefix) into the ext_authz ref that follows it: its shadow rules become the
 * rules that pick the checked requests. */
export function pairExtAuthz<E extends { kind: string; ref?: FilterRef }>(
  chain: E[],
  authzType: string,
): E[] {
  const out: E[] = [];
  let gate: Record<string, unknown> | undefined;
  for (const e of chain) {
    const ref = e.ref;
    const cfg = ref?.config as Record<string, unknown> | undefined;
    if (
      ref?.type === authzType && cfg?.shadowRulesStatPrefix === GATE_PREFIX &&
      cfg.rules === undefined && cfg.shadowRules !== undefined
    ) {
      gate = cfg;
      continue;
    }
    if (ref?.type === EXT_AUTHZ_XDS_TYPE) {
      const rbac = gate ? { rules: gate.shadowRules } : MATCH_ALL;
      out.push({ ...e, ref: { ...ref, config: { ...(ref.config as object), rbac } } });
    } else out.push(e); // a gate without its ext_authz only counts (shadow): dropped
    gate = undefined;
  }
  return out;
}
