/**
 * Raw-socket HTTP/1.1 peers for hop-by-hop and WebSocket tests through the L7 proxy: an upstream
 * that records every request head it receives and answers by path (a WebSocket echo server after
 * an RFC 6455 handshake on /ws), and a client that sends a head as written and reads responses
 * and WebSocket frames byte by byte. Frames are built by hand (RFC 6455 §5.2).
 */
import net from "node:net";
import { Buffer } from "node:buffer";
import { createHash } from "node:crypto";

const WS_GUID = "258EAFA5-E914-47DA-95CA-C5AB0DC85B11";

export function wsAccept(key: string): string {
  return createHash("sha1").update(key + WS_GUID).digest("base64");
}

/** One frame; client frames are masked (RFC 6455 §5.3). */
export function wsFrame(opcode: number, payload: Buffer, masked: boolean): Buffer {
  const len = payload.length;
  const ext = len < 126 ? 0 : len < 65536 ? 2 : 8;
  const head = Buffer.alloc(2 + ext + (masked ? 4 : 0));
  head[0] = 0x80 | opcode;
  head[1] = (masked ? 0x80 : 0) | (ext === 0 ? len : ext === 2 ? 126 : 127);
  if (ext === 2) head.writeUInt16BE(len, 2);
  if (ext === 8) head.writeBigUInt64BE(BigInt(len), 2);
  if (!masked) return Buffer.concat([head, payload]);
  const mask = Buffer.from([0x12, 0x34, 0x56, 0x78]);
  mask.copy(head, 2 + ext);
  const body = Buffer.from(payload.map((b, i) => b ^ mask[i % 4]!));
  return Buffer.concat([head, body]);
}

/** A frame off the front of `buf`, unmasked: [opcode, payload, bytes used], or undefined. */
export function wsParse(buf: Buffer): [number, Buffer, number] | undefined {
  if (buf.length < 2) return undefined;
  let len = buf[1]! & 0x7f;
  let at = 2;
  if (len === 126) {
    if (buf.length < 4) return undefined;
    len = buf.readUInt16BE(2);
    at = 4;
  } else if (len === 127) {
    if (buf.length < 10) return undefined;
    len = Number(buf.readBigUInt64BE(2));
    at = 10;
  }
  const masked = (buf[1]! & 0x80) !== 0;
  const mask = masked ? buf.subarray(at, at + 4) : undefined;
  if (masked) at += 4;
  if (buf.length < at + len) return undefined;
  const payload = Buffer.from(buf.subarray(at, at + len));
  if (mask) { for (let i = 0; i < payload.length; i++) payload[i]! ^= mask[i % 4]!; }
  return [buf[0]! & 0x0f, payload, at + len];
}

/** Buffered reads on a socket. */
export class RawConn {
  buf: Buffer = Buffer.alloc(0);
  ended = false;
  private wake: (() => void) | undefined;

  constructor(readonly sock: net.Socket) {
    sock.on("data", (c: Buffer) => {
      this.buf = Buffer.concat([this.buf, c]);
      this.notify();
    });
    sock.on("end", () => {
      this.ended = true;
      this.notify();
    });
    sock.on("close", () => {
      this.ended = true;
      this.notify();
    });
    sock.on("error", () => {});
  }

  private notify(): void {
    const w = this.wake;
    this.wake = undefined;
    w?.();
  }

  /** Waits until `take` finds something in the buffer; undefined when the socket ended first.
   * Fails after `timeoutMs` (a proxy that stalls fails the test instead of hanging it). */
  async until<T>(take: () => T | undefined, timeoutMs = 10_000): Promise<T | undefined> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const v = take();
      if (v !== undefined) return v;
      if (this.ended) return undefined;
      const left = deadline - Date.now();
      if (left <= 0) throw new Error(`nothing expected arrived within ${timeoutMs} ms`);
      let timer: ReturnType<typeof setTimeout> | undefined;
      await new Promise<void>((r) => {
        this.wake = r;
        timer = setTimeout(r, left);
      });
      clearTimeout(timer);
    }
  }

  /** A head (through CRLFCRLF), as latin1 text. */
  head(): Promise<string | undefined> {
    return this.until(() => {
      const end = this.buf.indexOf("\r\n\r\n");
      if (end < 0) return undefined;
      const h = this.buf.subarray(0, end + 4).toString("latin1");
      this.buf = this.buf.subarray(end + 4);
      return h;
    });
  }

  bytes(n: number): Promise<Buffer | undefined> {
    return this.until(() => {
      if (this.buf.length < n) return undefined;
      const b = this.buf.subarray(0, n);
      this.buf = this.buf.subarray(n);
      return b;
    });
  }

  frame(): Promise<[number, Buffer] | undefined> {
    return this.until(() => {
      const f = wsParse(this.buf);
      if (!f) return undefined;
      this.buf = this.buf.subarray(f[2]);
      return [f[0], f[1]] as [number, Buffer];
    });
  }

  /** A response with a content-length body (or none): [head, body]. */
  async response(): Promise<[string, string] | undefined> {
    const h = await this.head();
    if (h === undefined) return undefined;
    const len = Number(/\r\ncontent-length: *(\d+)/i.exec(h)?.[1] ?? "0");
    const b = await this.bytes(len);
    return [h, b?.toString() ?? ""];
  }
}

export function field(head: string, name: string): string | undefined {
  const m = new RegExp(`\\r\\n${name}: *([^\\r]*)`, "i").exec(head);
  return m?.[1];
}

export async function connect(port: number, host = "127.0.0.1"): Promise<RawConn> {
  const s = net.connect(port, host);
  await new Promise<void>((ok, fail) => {
    s.once("connect", ok);
    s.once("error", fail);
  });
  return new RawConn(s);
}

export interface RawUpstream {
  readonly port: number;
  /** Every request head received, in order. */
  readonly heads: string[];
  close(): Promise<void>;
}

/**
 * The upstream: records each request head; answers
 *  - /ws with an upgrade: 101 + Sec-WebSocket-Accept, then echoes frames (a close frame is
 *    answered and the connection ended; its FIN ends it too);
 *  - /ws without one: 200 "no upgrade";
 *  - /sneaky-101: 101 whatever the request asked;
 *  - anything else: 200 "ok" with hop-by-hop fields of its own (Connection naming x-hop-res).
 * A request body (content-length) is read and reported in x-body-bytes.
 */
export async function rawUpstream(host = "127.0.0.1", port = 0): Promise<RawUpstream> {
  const heads: string[] = [];
  const socks = new Set<net.Socket>();
  const server = net.createServer((s) => {
    socks.add(s);
    s.on("close", () => socks.delete(s));
    serveConn(new RawConn(s), heads).catch(() => s.destroy());
  });
  await new Promise<void>((r) => server.listen(port, host, r));
  return {
    port: (server.address() as net.AddressInfo).port,
    heads,
    close: async () => {
      for (const s of socks) s.destroy();
      await new Promise((r) => server.close(r));
    },
  };
}

async function serveConn(c: RawConn, heads: string[]): Promise<void> {
  for (;;) {
    const h = await c.head();
    if (h === undefined) return;
    heads.push(h);
    const len = Number(field(h, "content-length") ?? "0");
    const body = len ? await c.bytes(len) : Buffer.alloc(0);
    const path = h.split(" ")[1];
    const key = field(h, "sec-websocket-key");
    if (path === "/sneaky-101" || (path?.startsWith("/ws") && field(h, "upgrade"))) {
      c.sock.write(
        "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n" +
          `Sec-WebSocket-Accept: ${wsAccept(key ?? "")}\r\nKeep-Alive: timeout=5\r\n\r\n`,
      );
      await echoFrames(c);
      return;
    }
    const text = path?.startsWith("/ws") ? "no upgrade" : "ok";
    c.sock.write(
      `HTTP/1.1 200 OK\r\nContent-Length: ${text.length}\r\nX-Body-Bytes: ${body?.length}\r\n` +
        "Connection: keep-alive, X-Hop-Res\r\nX-Hop-Res: secret\r\nKeep-Alive: timeout=5\r\n" +
        `Proxy-Connection: keep-alive\r\nX-End-To-End: kept\r\n\r\n${text}`,
    );
  }
}

async function echoFrames(c: RawConn): Promise<void> {
  for (;;) {
    const f = await c.frame();
    if (!f) {
      c.sock.end(); // the client's FIN (through the proxy's half-close): ours follows
      return;
    }
    const [op, payload] = f;
    c.sock.write(wsFrame(op, op === 1 ? Buffer.from(`echo:${payload}`) : payload, false));
    if (op === 8) {
      c.sock.end();
      return;
    }
  }
}
