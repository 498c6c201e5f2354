/**
 * Linux socket addresses as bytes, for the raw socket calls of in-pod capture (netns.ts) and the
 * conntrack lookup (conntrack.ts): `sockaddr_in` (16 bytes) and `sockaddr_in6` (28 bytes, RFC
 * 3493 layout: family, port, flowinfo, address, scope id), ports and addresses in network order,
 * the family in host order (x86-64 and arm64: little-endian). IPv6 text is RFC 5952's form (as
 * the runtimes print a socket's address), so it matches workload addresses written that way.
 */
import { parseIp } from "./ip.ts";

export const AF_INET = 2;
export const AF_INET6 = 10;
export const SOCKADDR_IN_BYTES = 16;
export const SOCKADDR_IN6_BYTES = 28;

/** The address family of an IP literal (brackets allowed); a v4-mapped IPv6 address is IPv4. */
export function ipFamily(host: string): 4 | 6 | undefined {
  return parseIp(host)?.v;
}

/** `sockaddr_in` / `sockaddr_in6` for an IP literal and port; undefined when not an IP. */
export function encodeSockaddr(host: string, port: number): Uint8Array | undefined {
  const ip = parseIp(host);
  if (!ip) return undefined;
  const sa = new Uint8Array(ip.v === 4 ? SOCKADDR_IN_BYTES : SOCKADDR_IN6_BYTES);
  sa[0] = ip.v === 4 ? AF_INET : AF_INET6;
  sa[2] = port >> 8;
  sa[3] = port & 255;
  sa.set(ip.bytes, ip.v === 4 ? 4 : 8);
  return sa;
}

/** The address and port of a `sockaddr_in` / `sockaddr_in6`; undefined for another family. */
export function decodeSockaddr(sa: Uint8Array): { host: string; port: number } | undefined {
  const family = sa[0]! | (sa[1]! << 8);
  const port = (sa[2]! << 8) | sa[3]!;
  if (family === AF_INET && sa.length >= SOCKADDR_IN_BYTES) {
    return { host: ipText(sa.subarray(4, 8)), port };
  }
  if (family === AF_INET6 && sa.length >= SOCKADDR_IN6_BYTES) {
    return { host: ipText(sa.subarray(8, 24)), port };
  }
  return undefined;
}

/** An IPv4 (4 bytes) or IPv6 (16 bytes) address as text; v4-mapped IPv6 as its IPv4 address. */
export function ipText(b: Uint8Array): string {
  if (b.length === 4) return `${b[0]}.${b[1]}.${b[2]}.${b[3]}`;
  if (b.subarray(0, 10).every((x) => x === 0) && b[10] === 0xff && b[11] === 0xff) {
    return ipText(b.subarray(12, 16));
  }
  const groups = Array.from({ length: 8 }, (_, i) => (b[i * 2]! << 8) | b[i * 2 + 1]!);
  // RFC 5952 §4.2: the longest run of two or more zero groups (the first on a tie) becomes "::".
  let best = -1;
  let bestLen = 1;
  for (let i = 0; i < 8;) {
    let j = i;
    while (j < 8 && groups[j] === 0) j++;
    if (j - i > bestLen) [best, bestLen] = [i, j - i];
    i = j === i ? i + 1 : j;
  }
  const hex = (gs: number[]): string => gs.map((g) => g.toString(16)).join(":");
  if (best < 0) return hex(groups);
  return `${hex(groups.slice(0, best))}::${hex(groups.slice(best + bestLen))}`;
}
