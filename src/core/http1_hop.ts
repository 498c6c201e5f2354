/**
 * Hop-by-hop fields of HTTP/1.1 messages in the L7 proxy (RFC 9110 §7.6.1: a proxy removes
 * `Connection`, the fields it names, and the hop-by-hop fields HOP_BY_HOP lists before
 * forwarding), with Envoy's exceptions: `te` goes on reduced to `trailers` (Envoy's
 * sanitizeTEHeader), and a WebSocket upgrade keeps `connection: upgrade` and `upgrade` (Envoy's
 * HTTP connection manager with `upgrade_configs: websocket`, as Istio configures it). Framing
 * fields and `host` are never removed because Connection names them: the proxy already framed the
 * body by them, and dropping them would desync the next hop.
 * Only heads that carry such a field come here (the parsers flag them in their one pass).
 */
import type { HeaderList } from "./header_map.ts";
import { HOP_BY_HOP } from "./http2_phases.ts";

/** What an HTTP/1.1 request asks of the proxy about upgrading (RFC 9110 §7.8). */
export type UpgradeKind = "websocket" | "rejected" | undefined;

/** Fields a Connection token never removes (the framing already read by them). */
const NEVER_NAMED: ReadonlySet<string> = new Set([
  "host",
  "content-length",
  "transfer-encoding",
]);

/** The lower-case tokens of every `connection` field. */
export function connectionTokens(h: HeaderList): string[] {
  const out: string[] = [];
  for (const v of h.getAll("connection")) {
    for (const t of v.split(",")) {
      const s = t.trim().toLowerCase();
      if (s) out.push(s);
    }
  }
  return out;
}

/** Removes the fields `tokens` name and the HOP_BY_HOP fields (not transfer-encoding: framing is
 * the codec's), except `keep` (the upgrade fields of an upgrade). */
function removeHop(h: HeaderList, tokens: readonly string[], keep: boolean): void {
  for (const t of tokens) {
    if (!NEVER_NAMED.has(t) && t !== "te" && !(keep && t === "upgrade")) h.remove(t);
  }
  for (const n of HOP_BY_HOP) {
    if (n !== "transfer-encoding" && !(keep && (n === "upgrade" || n === "connection"))) {
      h.remove(n);
    }
  }
}

/**
 * Strips the hop-by-hop fields of a request head that has one (HTTP/1.1 or 1.0); returns the
 * upgrade it asks for. An upgrade is `connection` naming `upgrade` plus an `upgrade` field on
 * HTTP/1.1 (RFC 9110 §7.8: ignored on HTTP/1.0). `websocket` goes on with `connection: upgrade`;
 * `h2c` is stripped with its `http2-settings` and served as an ordinary request (Envoy's
 * HTTP/1 codec does the same: it does not take h2c upgrades); any other type is `rejected`:
 * Envoy answers an upgrade it has no upgrade_configs entry for with a local 403 whose details
 * are `upgrade_failed`, and closes the connection after it (ConnectionManagerImpl::ActiveStream::
 * decodeHeaders in source/common/http/conn_manager_impl.cc, when createFilterChain reports the
 * upgrade rejected: saw_connection_close_, against smuggling through the upgrade's payload).
 */
export function stripRequestHop(h: HeaderList, http11: boolean): UpgradeKind {
  const tokens = connectionTokens(h);
  const type = http11 && tokens.includes("upgrade") ? h.get("upgrade") : undefined;
  let kind: UpgradeKind;
  if (type !== undefined) {
    const t = type.trim().toLowerCase();
    if (t === "websocket") kind = "websocket";
    else if (t === "h2c") h.remove("http2-settings");
    else kind = "rejected";
  }
  removeHop(h, tokens, kind === "websocket");
  if (kind === "websocket" && h.get("connection")?.trim().toLowerCase() !== "upgrade") {
    h.set("connection", "upgrade"); // the other tokens named fields now gone
  }
  const te = h.getAll("te");
  if (te.length) {
    // Envoy forwards `te` only as `trailers` (what gRPC needs end to end).
    const trailers = te.some((v) =>
      v.split(",").some((x) => x.trim().toLowerCase() === "trailers")
    );
    if (trailers) h.set("te", "trailers");
    else h.remove("te");
  }
  return kind;
}

/** Response fields `headBytes` leaves out (no allocation for the common head). */
export const RESPONSE_HOP: ReadonlySet<string> = new Set(
  [...HOP_BY_HOP].filter((n) => n !== "transfer-encoding"),
);
/** The same for a 101 to a WebSocket upgrade: `connection` and `upgrade` go on. */
export const UPGRADE_RESPONSE_HOP: ReadonlySet<string> = new Set(
  [...RESPONSE_HOP].filter((n) => n !== "connection" && n !== "upgrade"),
);

/** A `connection` value that is one common token naming no field to remove: `keep-alive` or
 * `close` (`close` is the only one of 5 characters; callers rely on it). Compared as sent, to
 * spare a lower-cased copy per message; other spellings take the token path. */
export function plainConnection(v: string): boolean {
  return v === "keep-alive" || v === "close" || v === "Keep-Alive" || v === "Close";
}

/** Removes the fields a response's Connection names (the rare case: `plainConnection` false);
 * framing fields stay (the proxy reads and re-states them). */
export function stripResponseNamed(h: HeaderList): void {
  for (const t of connectionTokens(h)) {
    if (!NEVER_NAMED.has(t) && !RESPONSE_HOP.has(t)) h.remove(t);
  }
}
