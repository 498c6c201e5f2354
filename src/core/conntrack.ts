/**
 * The original destination of a redirected TCP connection from conntrack over netlink
 * (NETLINK_NETFILTER, ctnetlink), for runtimes whose sockets expose no descriptor to ask
 * SO_ORIGINAL_DST on (Deno). Linux keeps both directions of a connection in one entry: weft
 * knows the reply direction (from the pod-side address it accepted on to the client), so an
 * IPCTNL_MSG_CT_GET by CTA_TUPLE_REPLY returns the entry, whose CTA_TUPLE_ORIG destination is
 * the address the client dialled. Message layout: linux/netlink.h, linux/netfilter/nfnetlink.h,
 * nfnetlink_conntrack.h. Pure encoding and decoding here; the socket calls live in netns.ts.
 */
import { AF_INET, AF_INET6 } from "./sockaddr.ts";
import { ipText } from "./sockaddr.ts";
import { parseIp } from "./ip.ts";

export const NETLINK_NETFILTER = 12;
const NFNL_SUBSYS_CTNETLINK = 1;
const IPCTNL_MSG_CT_NEW = 0;
const IPCTNL_MSG_CT_GET = 1;
const NLM_F_REQUEST = 1;
const NLMSG_ERROR = 2;
const NLA_F_NESTED = 0x8000;
const NLA_TYPE_MASK = 0x3fff;
const CTA_TUPLE_ORIG = 1;
const CTA_TUPLE_REPLY = 2;
const CTA_TUPLE_IP = 1;
const CTA_TUPLE_PROTO = 2;
const CTA_IP_V4_SRC = 1;
const CTA_IP_V4_DST = 2;
const CTA_IP_V6_SRC = 3;
const CTA_IP_V6_DST = 4;
const CTA_PROTO_NUM = 1;
const CTA_PROTO_SRC_PORT = 2;
const CTA_PROTO_DST_PORT = 3;
const IPPROTO_TCP = 6;
const NLMSG_HDR = 16;
const NFGENMSG = 4;

export interface Endpoint {
  readonly host: string;
  readonly port: number;
}

function attr(type: number, payload: Uint8Array): Uint8Array {
  const len = 4 + payload.length;
  const out = new Uint8Array((len + 3) & ~3);
  const dv = new DataView(out.buffer);
  dv.setUint16(0, len, true);
  dv.setUint16(2, type, true);
  out.set(payload, 4);
  return out;
}

function concat(parts: Uint8Array[]): Uint8Array {
  const out = new Uint8Array(parts.reduce((n, p) => n + p.length, 0));
  let at = 0;
  for (const p of parts) {
    out.set(p, at);
    at += p.length;
  }
  return out;
}

const nested = (type: number, parts: Uint8Array[]): Uint8Array =>
  attr(type | NLA_F_NESTED, concat(parts));
const be16 = (n: number): Uint8Array => Uint8Array.of(n >> 8, n & 255);

/**
 * IPCTNL_MSG_CT_GET for the TCP connection whose reply direction runs `src` → `dst` (for a
 * redirected connection: src = the local address and port weft accepted on, dst = the client).
 * Undefined when the addresses are not IPs of one family.
 */
export function conntrackGetByReply(
  src: Endpoint,
  dst: Endpoint,
  seq: number,
): Uint8Array | undefined {
  const s = parseIp(src.host);
  const d = parseIp(dst.host);
  if (!s || !d || s.v !== d.v) return undefined;
  const v4 = s.v === 4;
  const tuple = nested(CTA_TUPLE_REPLY, [
    nested(CTA_TUPLE_IP, [
      attr(v4 ? CTA_IP_V4_SRC : CTA_IP_V6_SRC, s.bytes),
      attr(v4 ? CTA_IP_V4_DST : CTA_IP_V6_DST, d.bytes),
    ]),
    nested(CTA_TUPLE_PROTO, [
      attr(CTA_PROTO_NUM, Uint8Array.of(IPPROTO_TCP)),
      attr(CTA_PROTO_SRC_PORT, be16(src.port)),
      attr(CTA_PROTO_DST_PORT, be16(dst.port)),
    ]),
  ]);
  const msg = new Uint8Array(NLMSG_HDR + NFGENMSG + tuple.length);
  const dv = new DataView(msg.buffer);
  dv.setUint32(0, msg.length, true);
  dv.setUint16(4, (NFNL_SUBSYS_CTNETLINK << 8) | IPCTNL_MSG_CT_GET, true);
  dv.setUint16(6, NLM_F_REQUEST, true);
  dv.setUint32(8, seq >>> 0, true);
  msg[NLMSG_HDR] = v4 ? AF_INET : AF_INET6; // nfgenmsg: family, version 0, res_id 0
  msg.set(tuple, NLMSG_HDR + NFGENMSG);
  return msg;
}

/** The attributes of one nesting level: type (flags masked off) → payload. */
function attrs(b: Uint8Array): Map<number, Uint8Array> {
  const out = new Map<number, Uint8Array>();
  const dv = new DataView(b.buffer, b.byteOffset, b.byteLength);
  for (let at = 0; at + 4 <= b.length;) {
    const len = dv.getUint16(at, true);
    if (len < 4 || at + len > b.length) break;
    const type = dv.getUint16(at + 2, true) & NLA_TYPE_MASK;
    if (!out.has(type)) out.set(type, b.subarray(at + 4, at + len));
    at += (len + 3) & ~3;
  }
  return out;
}

/** The answer to conntrackGetByReply: the original direction's destination, the kernel's
 * errno (ENOENT: no such connection), or "malformed". Checks the sequence number. */
export function parseConntrackReply(
  b: Uint8Array,
  seq: number,
): { readonly dst: Endpoint } | { readonly errno: number } | "malformed" {
  if (b.length < NLMSG_HDR) return "malformed";
  const dv = new DataView(b.buffer, b.byteOffset, b.byteLength);
  const len = dv.getUint32(0, true);
  const type = dv.getUint16(4, true);
  if (len > b.length || len < NLMSG_HDR || dv.getUint32(8, true) !== seq >>> 0) {
    return "malformed";
  }
  if (type === NLMSG_ERROR) {
    return len >= NLMSG_HDR + 4 ? { errno: -dv.getInt32(NLMSG_HDR, true) } : "malformed";
  }
  if (type !== ((NFNL_SUBSYS_CTNETLINK << 8) | IPCTNL_MSG_CT_NEW)) return "malformed";
  const orig = attrs(b.subarray(NLMSG_HDR + NFGENMSG, len)).get(CTA_TUPLE_ORIG);
  const ip = orig && attrs(orig).get(CTA_TUPLE_IP);
  const proto = orig && attrs(orig).get(CTA_TUPLE_PROTO);
  if (!ip || !proto) return "malformed";
  const ips = attrs(ip);
  const addr = ips.get(CTA_IP_V4_DST) ?? ips.get(CTA_IP_V6_DST);
  const port = attrs(proto).get(CTA_PROTO_DST_PORT);
  if (!addr || (addr.length !== 4 && addr.length !== 16) || port?.length !== 2) {
    return "malformed";
  }
  return { dst: { host: ipText(addr), port: (port[0]! << 8) | port[1]! } };
}
