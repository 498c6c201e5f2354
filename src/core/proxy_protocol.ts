/**
 * PROXY protocol v2 header (haproxy.org proxy-protocol.txt §2.2), as ztunnel writes it to a
 * workload with `application_tunnel.protocol = PROXY` (hbone.md §8): command PROXY over TCP,
 * original source → tunnel target, and TLV 0xD0 carrying the peer's SPIFFE id.
 */
import { parseIp } from "./ip.ts";

const SIGNATURE = [0x0d, 0x0a, 0x0d, 0x0a, 0x00, 0x0d, 0x0a, 0x51, 0x55, 0x49, 0x54, 0x0a];
/** ztunnel's TLV type for the source identity (workload.proto `ApplicationTunnel`). */
export const PP2_TYPE_PEER_IDENTITY = 0xd0;

/** The header, or undefined when the two addresses are not both IPv4 or both IPv6. */
export function proxyV2Header(
  src: { ip: string; port: number },
  dst: { ip: string; port: number },
  identity: string | undefined,
): Uint8Array | undefined {
  const s = parseIp(src.ip.replace(/^::ffff:/, ""));
  const d = parseIp(dst.ip.replace(/^::ffff:/, ""));
  if (!s || !d || s.v !== d.v) return undefined;
  const id = identity ? new TextEncoder().encode(identity) : new Uint8Array(0);
  const tlv = id.length ? 3 + id.length : 0;
  const addrLen = (s.v === 4 ? 12 : 36) + tlv;
  const out = new Uint8Array(16 + addrLen);
  out.set(SIGNATURE);
  out[12] = 0x21; // version 2, command PROXY
  out[13] = s.v === 4 ? 0x11 : 0x21; // TCP over IPv4 / IPv6
  const v = new DataView(out.buffer);
  v.setUint16(14, addrLen);
  let o = 16;
  out.set(s.bytes, o);
  o += s.bytes.length;
  out.set(d.bytes, o);
  o += d.bytes.length;
  v.setUint16(o, src.port);
  v.setUint16(o + 2, dst.port);
  o += 4;
  if (tlv) {
    out[o] = PP2_TYPE_PEER_IDENTITY;
    v.setUint16(o + 1, id.length);
    out.set(id, o + 3);
  }
  return out;
}
