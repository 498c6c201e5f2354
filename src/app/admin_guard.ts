/**
 * Safety of the admin port against browsers: CSRF and DNS rebinding. A page on another origin can
 * make a browser send a simple form POST to 127.0.0.1:15000 (no custom headers, no preflight),
 * and a rebinding domain can make it read /config_dump under a foreign Host. So:
 * - every request's Host must name the bound address (an IP literal or `localhost` with the bound
 *   port; for a specific bound IP that IP or, on loopback, localhost) — else 421;
 * - a non-GET/HEAD request must carry `x-weft-admin: 1` (a custom header forces a CORS preflight
 *   that weft never answers, so a foreign page cannot send it) and, when an Origin is present, it
 *   must be the admin address itself — else 403.
 * Binding admin or metrics off loopback needs `listeners.allowNonLoopback: true` (validation).
 */
import { logger, metrics, parseIp, splitHostPort } from "../core/mod.ts";

/** The header a state-changing admin request must carry (value "1"). */
export const ADMIN_HEADER = "x-weft-admin";

const log = logger("admin");
const refused = metrics.counter(
  "weft_admin_requests_refused_total",
  "Admin requests refused by the CSRF / DNS-rebinding guard, by reason",
  ["reason"],
);

export interface BoundAddress {
  host: string;
  port: number;
}

function isLoopback(host: string): boolean {
  const ip = parseIp(host);
  if (!ip) return host === "localhost";
  return ip.v === 4 ? ip.bytes[0] === 127 : ip.bytes.every((b, i) => b === (i === 15 ? 1 : 0));
}

function isWildcard(host: string): boolean {
  return host === "0.0.0.0" || host === "::" || host === "[::]";
}

/** Whether `hostHeader` (Host or an Origin's authority) names the admin server at `bound`. */
export function hostMatches(hostHeader: string, bound: BoundAddress): boolean {
  const hp = splitHostPort(hostHeader.toLowerCase());
  if (!hp || hp.port !== bound.port) return false;
  if (hp.host !== "localhost" && !parseIp(hp.host)) return false; // names only via rebinding
  if (isWildcard(bound.host)) return true;
  if (hp.host === bound.host) return true;
  return hp.host === "localhost" && isLoopback(bound.host);
}

/** Why `req` must be refused, as [status, reason], or undefined when it may proceed. */
export function adminRefusal(
  req: Request,
  bound: BoundAddress | undefined,
): [403 | 421, string] | undefined {
  if (!bound) return [421, "not_bound"];
  const host = req.headers.get("host") ?? "";
  if (!hostMatches(host, bound)) return [421, "host"];
  if (req.method === "GET" || req.method === "HEAD") return undefined;
  if (req.headers.get(ADMIN_HEADER) !== "1") return [403, "missing_header"];
  const origin = req.headers.get("origin");
  if (origin !== null) {
    const m = /^https?:\/\/([^/]+)$/.exec(origin.toLowerCase());
    if (!m || !hostMatches(m[1]!, bound)) return [403, "origin"];
  }
  return undefined;
}

/** The path of a request URL; Bun hands a relative URL when the Host header is empty. */
function pathOf(url: string): string {
  try {
    return new URL(url, "http://admin.invalid").pathname;
  } catch {
    return url.slice(0, 200);
  }
}

/** Count and log one refusal, and build its response. */
export function refuseAdmin(req: Request, status: 403 | 421, reason: string): Response {
  refused.inc({ reason });
  log.warn("admin request refused", {
    reason,
    method: req.method,
    path: pathOf(req.url),
    host: req.headers.get("host") ?? "",
    origin: req.headers.get("origin") ?? "",
  });
  const text = status === 421
    ? "Cannot serve: the Host header does not name this admin address\n"
    : `Cannot ${req.method}: admin changes need the ${ADMIN_HEADER}: 1 header and no foreign Origin\n`;
  return new Response(text, { status, headers: { "content-type": "text/plain" } });
}

/** What anyone who reaches a listener bound off loopback can do. */
const EXPOSURE = {
  admin: "anyone who reaches it can read the config and stop the node",
  metrics: "anyone who reaches it can read the node's traffic figures",
  // SOCKS5 has no authentication: a client is taken for the workload at its source address.
  socks5: "anyone who reaches it can send traffic into the mesh as a local workload",
} as const;

/** Validation: admin, metrics and SOCKS5 stay on loopback unless explicitly allowed (warns
 * loudly). */
export function offLoopback(
  listeners: { admin: string; metrics: string; socks5?: string },
): { path: string; address: string; risk: string }[] {
  const out: { path: string; address: string; risk: string }[] = [];
  for (const name of ["admin", "metrics", "socks5"] as const) {
    const a = listeners[name];
    if (!a) continue; // SOCKS5 off
    const hp = splitHostPort(a);
    if (hp && !isLoopback(hp.host)) {
      out.push({ path: `listeners.${name}`, address: a, risk: EXPOSURE[name] });
    }
  }
  return out;
}
