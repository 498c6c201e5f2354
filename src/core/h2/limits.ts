/**
 * Abuse limits of one HTTP/2 session, the ones ztunnel (hyper/h2) and Envoy apply: streams the
 * peer resets count against a budget per time window (CVE-2023-44487 "rapid reset"), and so do
 * SETTINGS and PING frames (CVE-2019-9512/9515 floods); a header block may span a bounded number of
 * CONTINUATION frames and bytes (CVE-2024-27316). Over budget → GOAWAY ENHANCE_YOUR_CALM.
 */
import { ErrorCode, H2ProtocolError } from "./frames.ts";

export interface H2Limits {
  /** Streams the peer resets (or we refuse) per window before the session is closed. */
  readonly maxPeerResets: number;
  /** Non-ACK PING frames per window. */
  readonly maxPings: number;
  /** Non-ACK SETTINGS frames per window. */
  readonly maxSettings: number;
  readonly windowMs: number;
  /** HEADERS + CONTINUATION frames in one header block. */
  readonly maxHeaderFrames: number;
  /** Control frames we owe the peer (PING/SETTINGS ACK, RST_STREAM) while it does not read:
   * queued socket bytes above this close the session (Envoy's max_outbound_control_frames). */
  readonly maxQueuedBytes: number;
}

export const DEFAULT_LIMITS: H2Limits = Object.freeze({
  maxPeerResets: 200,
  maxPings: 100,
  maxSettings: 100,
  windowMs: 10_000,
  maxHeaderFrames: 32,
  maxQueuedBytes: 4 << 20,
});

export type FloodKind = "reset" | "ping" | "settings";

/** Fixed-window counters; `count` throws the connection error once a budget is exceeded. */
export class FloodGuard {
  readonly limits: H2Limits;
  #start = 0;
  #resets = 0;
  #pings = 0;
  #settings = 0;

  constructor(limits: Partial<H2Limits> | undefined) {
    this.limits = { ...DEFAULT_LIMITS, ...limits };
  }

  count(kind: FloodKind): void {
    const now = performance.now();
    if (now - this.#start > this.limits.windowMs) {
      this.#start = now;
      this.#resets = this.#pings = this.#settings = 0;
    }
    let over = false;
    if (kind === "reset") over = ++this.#resets > this.limits.maxPeerResets;
    else if (kind === "ping") over = ++this.#pings > this.limits.maxPings;
    else over = ++this.#settings > this.limits.maxSettings;
    if (over) {
      throw new H2ProtocolError(ErrorCode.ENHANCE_YOUR_CALM, `${kind} flood`);
    }
  }
}
