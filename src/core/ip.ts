/** IP helpers shared by authorization and address parsing (IPv4 and IPv6, no DNS). */
import { isIPv4, isIPv6 } from "node:net";

export function parseIp(ip: string): { v: 4 | 6; bytes: Uint8Array } | undefined {
  if (isIPv4(ip)) return { v: 4, bytes: Uint8Array.from(ip.split(".").map(Number)) };
  const bare = ip.startsWith("[") && ip.endsWith("]") ? ip.slice(1, -1) : ip;
  if (!isIPv6(bare)) return undefined;
  const mapped = /^::ffff:(\d+\.\d+\.\d+\.\d+)$/i.exec(bare);
  if (mapped) return parseIp(mapped[1]!);
  const [head, tail] = bare.split("::") as [string, string | undefined];
  const h = head ? head.split(":") : [];
  const t = tail !== undefined && tail !== "" ? tail.split(":") : [];
  const groups = tail === undefined ? h : [...h, ...Array(8 - h.length - t.length).fill("0"), ...t];
  const bytes = new Uint8Array(16);
  groups.forEach((g, i) => {
    const n = parseInt(g, 16);
    bytes[i * 2] = n >> 8;
    bytes[i * 2 + 1] = n & 0xff;
  });
  return { v: 6, bytes };
}

/** `cidr` may be a bare address (exact match) or addr/len. */
export function ipInCidr(ip: string, cidr: string): boolean {
  const [addr, lenText] = cidr.split("/") as [string, string | undefined];
  const a = parseIp(ip);
  const net = parseIp(addr);
  if (!a || !net || a.v !== net.v) return false;
  const bits = lenText === undefined ? a.bytes.length * 8 : Number(lenText);
  if (!Number.isInteger(bits) || bits < 0 || bits > a.bytes.length * 8) return false;
  for (let i = 0; i < bits; i++) {
    const byte = i >> 3;
    const mask = 0x80 >> (i & 7);
    if ((a.bytes[byte]! & mask) !== (net.bytes[byte]! & mask)) return false;
  }
  return true;
}

export function isValidCidr(cidr: string): boolean {
  const [addr, lenText] = cidr.split("/") as [string, string | undefined];
  const net = parseIp(addr);
  if (!net) return false;
  if (lenText === undefined) return true;
  const n = Number(lenText);
  return /^\d+$/.test(lenText) && n >= 0 && n <= net.bytes.length * 8;
}

/** "ip:port" / "[v6]:port" → parts; undefined when malformed. */
export function splitHostPort(addr: string): { host: string; port: number } | undefined {
  const m = /^\[([^\]]+)\]:(\d+)$/.exec(addr) ?? /^([^:\[\]]+):(\d+)$/.exec(addr);
  if (!m) return undefined;
  const port = Number(m[2]);
  if (!Number.isInteger(port) || port < 0 || port > 65535) return undefined;
  return { host: m[1]!, port };
}

export function joinHostPort(host: string, port: number): string {
  return host.includes(":") ? `[${host}]:${port}` : `${host}:${port}`;
}
