import assert from "node:assert/strict";
import { decodeSockaddr, encodeSockaddr, ipFamily, ipText } from "./sockaddr.ts";

Deno.test("sockaddr: IPv4 and IPv6 round trips, RFC 5952 text", () => {
  const v4 = encodeSockaddr("10.1.2.3", 8080)!;
  assert.equal(v4.length, 16);
  assert.deepEqual([...v4.subarray(0, 8)], [2, 0, 0x1f, 0x90, 10, 1, 2, 3]);
  assert.deepEqual(decodeSockaddr(v4), { host: "10.1.2.3", port: 8080 });
  const v6 = encodeSockaddr("[fd00:250::2]", 443)!;
  assert.equal(v6.length, 28);
  assert.deepEqual([...v6.subarray(0, 4)], [10, 0, 1, 0xbb]);
  assert.deepEqual(decodeSockaddr(v6), { host: "fd00:250::2", port: 443 });
  // A v4-mapped address is IPv4 (a dual-stack socket's view of an IPv4 peer).
  assert.equal(encodeSockaddr("::ffff:10.0.0.1", 1)!.length, 16);
  assert.equal(ipFamily("::ffff:10.0.0.1"), 4);
  assert.equal(ipFamily("fd00::1"), 6);
  assert.equal(ipFamily("nope"), undefined);
  assert.equal(encodeSockaddr("web.default", 80), undefined);
  assert.equal(decodeSockaddr(new Uint8Array(16)), undefined, "AF_UNSPEC");
});

Deno.test("ipText: the longest zero run compressed, the first on a tie, one zero group kept", () => {
  const v6 = (s: string): Uint8Array => encodeSockaddr(s, 0)!.subarray(8, 24);
  assert.equal(ipText(v6("0:0:0:0:0:0:0:1")), "::1");
  assert.equal(ipText(v6("0:0:0:0:0:0:0:0")), "::");
  assert.equal(ipText(v6("2001:db8:0:1:1:1:1:1")), "2001:db8:0:1:1:1:1:1");
  assert.equal(ipText(v6("2001:0:0:1:0:0:0:1")), "2001:0:0:1::1");
  assert.equal(ipText(v6("2001:db8:0:0:1:0:0:1")), "2001:db8::1:0:0:1");
  assert.equal(ipText(v6("FD00:0250:0:0:0:0:0:AB")), "fd00:250::ab");
  assert.equal(ipText(v6("1:0:0:0:0:0:0:0")), "1::");
});
