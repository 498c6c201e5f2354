/**
 * SPIFFE ids as ztunnel accepts them (src/identity/manager.rs `Identity::from_str`): the text
 * after `spiffe://` split on "/" must give exactly five segments, the second literally `ns` and
 * the fourth literally `sa`. weft is one step stricter: no segment may be empty (ztunnel would
 * take `spiffe:///ns//sa/` and fail later).
 */
import { WeftError } from "../core/mod.ts";

export const SPIFFE_PREFIX = "spiffe://";

export interface SpiffeId {
  readonly trustDomain: string;
  readonly namespace: string;
  readonly serviceAccount: string;
}

/** Parse, or undefined when `s` is not of the ztunnel shape. */
export function tryParseSpiffeId(s: string): SpiffeId | undefined {
  if (!s.startsWith(SPIFFE_PREFIX)) return undefined;
  const parts = s.slice(SPIFFE_PREFIX.length).split("/");
  if (parts.length !== 5 || parts[1] !== "ns" || parts[3] !== "sa") return undefined;
  const [trustDomain, , namespace, , serviceAccount] = parts as [
    string,
    string,
    string,
    string,
    string,
  ];
  if (!trustDomain || !namespace || !serviceAccount) return undefined;
  return { trustDomain, namespace, serviceAccount };
}

export function parseSpiffeId(s: string): SpiffeId {
  const id = tryParseSpiffeId(s);
  if (!id) {
    throw new WeftError(
      "spiffe_id_invalid",
      `Cannot parse SPIFFE id: ${
        JSON.stringify(s)
      } is not spiffe://<trust-domain>/ns/<namespace>/sa/<service-account>`,
      { hint: "five non-empty segments after spiffe://, the 2nd `ns` and the 4th `sa`" },
    );
  }
  return id;
}

export function formatSpiffeId(id: SpiffeId): string {
  for (const [k, v] of Object.entries(id)) {
    if (!v || v.includes("/")) {
      throw new WeftError(
        "spiffe_id_invalid",
        `Cannot format SPIFFE id: ${k} ${JSON.stringify(v)} must be non-empty and contain no "/"`,
      );
    }
  }
  return `${SPIFFE_PREFIX}${id.trustDomain}/ns/${id.namespace}/sa/${id.serviceAccount}`;
}

/** Istio authorization principal: the id without `spiffe://`. */
export function principalOf(id: string): string {
  return id.startsWith(SPIFFE_PREFIX) ? id.slice(SPIFFE_PREFIX.length) : id;
}
