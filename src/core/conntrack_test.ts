import assert from "node:assert/strict";
import { conntrackGetByReply, parseConntrackReply } from "./conntrack.ts";

/** A netlink attribute (little-endian header, 4-byte aligned). */
function attr(type: number, payload: number[]): number[] {
  const len = 4 + payload.length;
  const pad = Array((4 - (len % 4)) % 4).fill(0);
  return [len & 255, len >> 8, type & 255, type >> 8, ...payload, ...pad];
}

/** The kernel's IPCTNL_MSG_CT_NEW answer carrying an original tuple. */
function answer(seq: number, ip: number[], ipType: number, port: number): Uint8Array {
  const tuple = attr(1 | 0x8000, [
    ...attr(1 | 0x8000, [...attr(ipType - 1, ip.map(() => 9)), ...attr(ipType, ip)]),
    ...attr(2 | 0x8000, [
      ...attr(1, [6]),
      ...attr(2, [0x30, 0x39]),
      ...attr(3, [port >> 8, port & 255]),
    ]),
  ]);
  const body = [2, 0, 0, 0, ...tuple, ...attr(3, [0, 0, 0, 1])]; // nfgenmsg, then CTA_STATUS
  const len = 16 + body.length;
  const hdr = [len & 255, len >> 8, 0, 0, 0x00, 0x01, 0, 0, seq & 255, seq >> 8, 0, 0, 0, 0, 0, 0];
  return Uint8Array.from([...hdr, ...body]);
}

Deno.test("conntrack: CT_GET by the reply tuple, IPv4 and IPv6", () => {
  const q = conntrackGetByReply(
    { host: "::ffff:127.0.0.1", port: 15001 },
    { host: "10.1.2.3", port: 40000 },
    7,
  )!;
  const dv = new DataView(q.buffer);
  assert.equal(dv.getUint32(0, true), q.length);
  assert.equal(dv.getUint16(4, true), 0x0101, "NFNL_SUBSYS_CTNETLINK << 8 | IPCTNL_MSG_CT_GET");
  assert.equal(dv.getUint16(6, true), 1, "NLM_F_REQUEST");
  assert.equal(dv.getUint32(8, true), 7);
  assert.equal(q[16], 2, "nfgenmsg family AF_INET (the v4-mapped local address is IPv4)");
  assert.equal(dv.getUint16(22, true), 2 | 0x8000, "CTA_TUPLE_REPLY, nested");
  assert.equal(dv.getUint16(20, true), q.length - 20, "the tuple is the whole payload");
  const hex = Array.from(q, (b) => b.toString(16).padStart(2, "0")).join("");
  // Nested CTA_TUPLE_IP (0x8001): CTA_IP_V4_SRC 127.0.0.1, CTA_IP_V4_DST 10.1.2.3.
  assert.ok(hex.includes("14000180" + "08000100" + "7f000001" + "08000200" + "0a010203"));
  assert.ok(hex.includes("06000200" + "3a99"), "CTA_PROTO_SRC_PORT 15001");
  assert.ok(hex.includes("06000300" + "9c40"), "CTA_PROTO_DST_PORT 40000");
  const q6 = conntrackGetByReply({ host: "::1", port: 15001 }, { host: "fd00::2", port: 1 }, 8)!;
  assert.equal(q6[16], 10, "AF_INET6");
  assert.ok(
    Array.from(q6, (b) => b.toString(16).padStart(2, "0")).join("").includes(
      "14000300" + "0".repeat(31) + "1",
    ),
    "CTA_IP_V6_SRC ::1",
  );
  assert.equal(
    conntrackGetByReply({ host: "::1", port: 1 }, { host: "10.0.0.1", port: 1 }, 1),
    undefined,
  );
  assert.equal(
    conntrackGetByReply({ host: "x", port: 1 }, { host: "10.0.0.1", port: 1 }, 1),
    undefined,
  );
});

Deno.test("conntrack: the original destination, kernel errors and malformed answers", () => {
  assert.deepEqual(parseConntrackReply(answer(5, [10, 0, 0, 9], 2, 8080), 5), {
    dst: { host: "10.0.0.9", port: 8080 },
  });
  const v6 = [0xfd, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0x0a];
  assert.deepEqual(parseConntrackReply(answer(6, v6, 4, 443), 6), {
    dst: { host: "fd00::a", port: 443 },
  });
  assert.equal(parseConntrackReply(answer(5, [10, 0, 0, 9], 2, 80), 6), "malformed", "other seq");
  const err = Uint8Array.from([
    20,
    0,
    0,
    0,
    2,
    0,
    0,
    0,
    9,
    0,
    0,
    0,
    0,
    0,
    0,
    0,
    0xfe,
    0xff,
    0xff,
    0xff,
  ]);
  assert.deepEqual(parseConntrackReply(err, 9), { errno: 2 }, "ENOENT: no such connection");
  assert.equal(parseConntrackReply(new Uint8Array(8), 0), "malformed");
  const cut = answer(5, [10, 0, 0, 9], 2, 8080);
  assert.equal(parseConntrackReply(cut.subarray(0, 30), 5), "malformed", "truncated");
  const bogus = answer(5, [10, 0, 0, 9], 2, 8080);
  bogus[22] = 0xff; // an attribute length past the end
  assert.equal(parseConntrackReply(bogus, 5), "malformed");
});
