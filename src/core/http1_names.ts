/** Common HTTP field names as interned lower-case constants, for the HTTP/1.1 head parser
 * (http1_codec.ts). */

/** Common field names, lower case, by length: a name that is one of them (in any case) is
 * taken as the constant, with no string made or lower-cased for it (a substring's toLowerCase is
 * the costliest step of parsing a head on JSC). */
const KNOWN_NAMES: string[][] = [];
for (
  const n of [
    "accept",
    "accept-encoding",
    "accept-language",
    "authorization",
    "cache-control",
    "connection",
    "content-encoding",
    "content-length",
    "content-type",
    "cookie",
    "date",
    "etag",
    "expires",
    "host",
    "keep-alive",
    "last-modified",
    "location",
    "server",
    "set-cookie",
    "te",
    "traceparent",
    "trailer",
    "transfer-encoding",
    "upgrade",
    "user-agent",
    "vary",
    "via",
    "x-forwarded-for",
    "x-forwarded-proto",
    "x-request-id",
  ]
) (KNOWN_NAMES[n.length] ??= []).push(n);

/** The lower-case constant for the token `s[from, to)` when it is a known name, else
 * undefined. */
export function knownName(s: string, from: number, to: number): string | undefined {
  const list = KNOWN_NAMES[to - from];
  if (list === undefined) return undefined;
  for (let k = 0; k < list.length; k++) {
    const cand = list[k]!;
    let i = 0;
    for (; i < cand.length; i++) {
      let c = s.charCodeAt(from + i);
      if (c >= 0x41 && c <= 0x5a) c |= 0x20;
      if (c !== cand.charCodeAt(i)) break;
    }
    if (i === cand.length) return cand;
  }
  return undefined;
}
