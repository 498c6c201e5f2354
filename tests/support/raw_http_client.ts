/**
 * One raw keep-alive HTTP/1.1 client connection for tests that must see the bytes of each
 * response: write a request as given, read one whole response (content-length or chunked).
 */
import assert from "node:assert/strict";
import net from "node:net";
import { Buffer } from "node:buffer";

export interface RawResponse {
  status: number;
  /** Status line and fields, without the blank line. */
  head: string;
  body: string;
}

export interface RawClient {
  roundTrip(req: string): Promise<RawResponse>;
  close(): void;
}

export async function rawClient(port: number, host = "127.0.0.1"): Promise<RawClient> {
  const s = net.connect(port, host);
  await new Promise<void>((ok, fail) => {
    s.once("connect", ok);
    s.once("error", fail);
  });
  let buf = Buffer.alloc(0);
  let wake: (() => void) | undefined;
  let ended = false;
  s.on("data", (c: Buffer) => {
    buf = Buffer.concat([buf, c]);
    wake?.();
  });
  s.on("close", () => {
    ended = true;
    wake?.();
  });
  /** One complete response off the front of `buf`, if there. */
  const takeResponse = (): RawResponse | undefined => {
    const end = buf.indexOf("\r\n\r\n");
    if (end < 0) return undefined;
    const head = buf.subarray(0, end).toString("latin1");
    let at = end + 4;
    let body = "";
    if (/\r\ntransfer-encoding: *chunked/i.test(head)) {
      for (;;) {
        const nl = buf.indexOf("\r\n", at);
        if (nl < 0) return undefined;
        const size = parseInt(buf.subarray(at, nl).toString("latin1"), 16);
        if (buf.length < nl + 2 + size + 2) return undefined;
        body += buf.subarray(nl + 2, nl + 2 + size).toString();
        at = nl + 2 + size + 2;
        if (size === 0) break;
      }
    } else {
      const len = Number(/\r\ncontent-length: *(\d+)/i.exec(head)?.[1] ?? "0");
      if (buf.length < at + len) return undefined;
      body = buf.subarray(at, at + len).toString();
      at += len;
    }
    buf = buf.subarray(at);
    return { status: Number(head.slice(9, 12)), head, body };
  };
  return {
    async roundTrip(req) {
      s.write(req);
      for (;;) {
        const res = takeResponse();
        if (res) return res;
        assert.ok(!ended, "connection closed before a full response");
        await new Promise<void>((r) => (wake = r));
      }
    },
    close: () => s.destroy(),
  };
}
