/**
 * SOCKS5 server handshake (RFC 1928): no-auth method only, CONNECT only, IPv4/IPv6/domain
 * addresses. The reply is sent by the caller once the upstream is connected (or failed), so the
 * client sees a refusal as a SOCKS error code, not as a silently closed tunnel.
 */
import type { Socket } from "node:net";
import { WeftError } from "./errors.ts";

export const SocksReply = {
  succeeded: 0x00,
  generalFailure: 0x01,
  notAllowed: 0x02,
  networkUnreachable: 0x03,
  hostUnreachable: 0x04,
  connectionRefused: 0x05,
  ttlExpired: 0x06,
  commandNotSupported: 0x07,
  addressTypeNotSupported: 0x08,
} as const;

export interface SocksRequest {
  readonly host: string;
  readonly port: number;
  readonly addressType: "ipv4" | "ipv6" | "domain";
  /** Send the reply; any code but 0 also closes the socket. */
  reply(code: number): void;
}

const MAX_HANDSHAKE_BYTES = 600;

function ipv6Text(b: Uint8Array): string {
  const g: string[] = [];
  for (let i = 0; i < 16; i += 2) g.push(((b[i]! << 8) | b[i + 1]!).toString(16));
  return g.join(":");
}

type Parse = { need: number } | { error: number; msg: string } | {
  done: number;
  req: Omit<SocksRequest, "reply">;
};

/** Parse greeting + request from the start of `b`; returns how many bytes were consumed. */
export function parseSocks(b: Uint8Array): Parse & { greetingLen?: number } {
  if (b.length < 2) return { need: 2 };
  if (b[0] !== 5) return { error: -1, msg: `bad version ${b[0]}` };
  const nMethods = b[1]!;
  const g = 2 + nMethods;
  if (b.length < g) return { need: g };
  if (!b.subarray(2, g).includes(0)) return { error: -2, msg: "client offers no no-auth method" };
  if (b.length < g + 5) return { need: g + 5, greetingLen: g };
  const r = g;
  if (b[r] !== 5) return { error: SocksReply.generalFailure, msg: "bad request version" };
  if (b[r + 1] !== 1) return { error: SocksReply.commandNotSupported, msg: `command ${b[r + 1]}` };
  const atyp = b[r + 3];
  let host: string;
  let end: number;
  let addressType: "ipv4" | "ipv6" | "domain";
  if (atyp === 1) {
    end = r + 4 + 4;
    if (b.length < end + 2) return { need: end + 2, greetingLen: g };
    host = Array.from(b.subarray(r + 4, end)).join(".");
    addressType = "ipv4";
  } else if (atyp === 4) {
    end = r + 4 + 16;
    if (b.length < end + 2) return { need: end + 2, greetingLen: g };
    host = ipv6Text(b.subarray(r + 4, end));
    addressType = "ipv6";
  } else if (atyp === 3) {
    const len = b[r + 4]!;
    end = r + 5 + len;
    if (b.length < end + 2) return { need: end + 2, greetingLen: g };
    host = new TextDecoder().decode(b.subarray(r + 5, end));
    addressType = "domain";
  } else {
    return { error: SocksReply.addressTypeNotSupported, msg: `address type ${atyp}` };
  }
  const port = (b[end]! << 8) | b[end + 1]!;
  return { done: end + 2, req: { host, port, addressType }, greetingLen: g };
}

const ignore = (): void => {};

function replyBytes(code: number): Uint8Array {
  return Uint8Array.of(5, code, 0, 1, 0, 0, 0, 0, 0, 0);
}

/** Run the handshake on a fresh socket; leaves the socket paused with any extra bytes unshifted. */
export function socksHandshake(sock: Socket, timeoutMs: number): Promise<SocksRequest> {
  return new Promise((resolve, reject) => {
    let buf = new Uint8Array(0);
    let greeted = false;
    const timer = setTimeout(() => fail(new Error("handshake timed out")), timeoutMs);
    const fail = (e: Error, code?: number): void => {
      cleanup();
      if (code !== undefined && code >= 0 && !sock.destroyed) {
        if (!greeted) sock.write(Uint8Array.of(5, 0));
        sock.end(replyBytes(code));
      } else if (code === -2 && !sock.destroyed) sock.end(Uint8Array.of(5, 0xff));
      else sock.destroy();
      reject(new WeftError("socks5_handshake", `Cannot accept SOCKS5 connection: ${e.message}`));
    };
    const cleanup = (): void => {
      clearTimeout(timer);
      sock.off("data", onData);
      sock.off("error", onErr);
      sock.off("end", onEnd);
      // The socket keeps a listener after the handshake: a write already made (the greeting's
      // answer, a refusal) to a peer that reset fails later, when the socket may be destroyed
      // and no owner took it (reply() on a destroyed socket does nothing), and its
      // EPIPE/ECONNRESET must not reach the process as an unhandled 'error' event (found by
      // bench/fuzz.ts). An owner's own 'error' listener still gets every error.
      sock.on("error", ignore);
    };
    const onErr = (e: Error): void => fail(e);
    const onEnd = (): void => fail(new Error("client closed during handshake"));
    const onData = (chunk: Uint8Array): void => {
      const next = new Uint8Array(buf.length + chunk.length);
      next.set(buf);
      next.set(chunk, buf.length);
      buf = next;
      const p = parseSocks(buf);
      if (p.greetingLen !== undefined && !greeted) {
        greeted = true;
        sock.write(Uint8Array.of(5, 0));
      }
      if ("need" in p) {
        if (p.need > MAX_HANDSHAKE_BYTES) {
          fail(new Error("handshake too large"), SocksReply.generalFailure);
        }
        return;
      }
      if ("error" in p) return fail(new Error(p.msg), p.error);
      cleanup();
      sock.pause();
      if (buf.length > p.done) sock.unshift(buf.subarray(p.done));
      resolve({
        ...p.req,
        reply(code: number): void {
          if (sock.destroyed) return;
          if (code === 0) sock.write(replyBytes(0));
          else sock.end(replyBytes(code));
        },
      });
    };
    sock.on("data", onData);
    sock.on("error", onErr);
    sock.on("end", onEnd);
  });
}
