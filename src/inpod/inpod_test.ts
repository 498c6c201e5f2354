import assert from "node:assert/strict";
import { podRoutes, podRules } from "./nft_rules.ts";
import { parseRequest } from "./zds.ts";
import { runCni } from "./cni.ts";

Deno.test("podRules: TCP only, 15008 and marked packets excluded, node addresses skipped", () => {
  const r = podRules({
    outboundPort: 15001,
    inboundPort: 15006,
    hbonePort: 15008,
    nodeAddresses: ["10.1.1.1", "fd00:1::1", "not-an-ip", "10.0.0.0/8"],
  });
  assert.match(r, /meta l4proto tcp redirect to :15001/);
  assert.match(r, /meta l4proto tcp redirect to :15006/);
  assert.equal(r.match(/tcp dport 15008 accept/g)?.length, 2);
  assert.equal(r.match(/meta mark \{ 0x539, 0x53a \} accept/g)?.length, 2);
  assert.match(r, /ip daddr \{ 10\.1\.1\.1 \} accept/);
  assert.match(r, /ip6 daddr \{ fd00:1::1 \} accept/);
  assert.doesNotMatch(r, /not-an-ip|10\.0\.0\.0|udp/);
  // One inet table for both families; idempotent: the table (and an older agent's IPv4-only
  // one) is created, dropped and recreated in one transaction.
  assert.match(
    r,
    /^table ip weft_inpod \{\}\ndelete table ip weft_inpod\ntable inet weft_inpod \{\}\ndelete table inet weft_inpod\ntable inet weft_inpod \{\n/,
  );
});

Deno.test("podRoutes: one batch per family", () => {
  assert.equal(
    podRoutes("add"),
    "rule add fwmark 0x53a lookup 133\nroute add local 0.0.0.0/0 dev lo table 133\n",
  );
  assert.equal(
    podRoutes("del", 6),
    "rule del fwmark 0x53a lookup 133\nroute del local ::/0 dev lo table 133\n",
  );
});

Deno.test("ZDS requests: strict shapes", () => {
  assert.deepEqual(parseRequest('{"hello":{"version":"V1"}}'), { hello: { version: "V1" } });
  assert.equal(parseRequest('{"hello":{"version":"V2"}}'), "hello.version: must be V1");
  assert.equal(parseRequest("nope"), "not JSON");
  assert.equal(
    parseRequest('{"add":{"uid":"u","netns":"/n"}}'),
    "add.ips: a non-empty list of addresses",
  );
  assert.equal(parseRequest('{"add":{"uid":"u","ips":["1.2.3.4"]}}'), "add.netns: required");
  assert.equal(parseRequest('{"del":{}}'), "del.uid: required");
  assert.equal(parseRequest('{"del":{"uid":"a"},"add":{}}').toString().startsWith("exactly"), true);
  assert.deepEqual(parseRequest('{"snapshotSent":{}}'), { snapshotSent: {} });
});

Deno.test("weft cni: VERSION, errors as the CNI spec's error object", async () => {
  const v = await runCni({ CNI_COMMAND: "VERSION" }, "");
  assert.equal(v.code, 0);
  assert.ok(JSON.parse(v.stdout).supportedVersions.includes("1.0.0"));
  const bad = await runCni({ CNI_COMMAND: "ADD", CNI_CONTAINERID: "c" }, "{not json");
  assert.equal(bad.code, 1);
  assert.equal(JSON.parse(bad.stdout).code, 6);
  const ver = await runCni({ CNI_COMMAND: "ADD", CNI_CONTAINERID: "c" }, '{"cniVersion":"9.9.9"}');
  assert.equal(JSON.parse(ver.stdout).code, 1);
  const noId = await runCni({ CNI_COMMAND: "ADD" }, '{"cniVersion":"1.0.0"}');
  assert.equal(JSON.parse(noId.stdout).code, 4);
  const sock = `/tmp/weft-cni-test-${crypto.randomUUID()}.sock`;
  const conf = JSON.stringify({ cniVersion: "1.0.0", zdsSocket: sock, prevResult: { ips: [] } });
  const noPrev = await runCni({ CNI_COMMAND: "ADD", CNI_CONTAINERID: "c", CNI_NETNS: "/x" }, conf);
  assert.match(JSON.parse(noPrev.stdout).msg, /no prevResult/);
  const ok = JSON.stringify({
    cniVersion: "1.0.0",
    zdsSocket: sock,
    prevResult: { ips: [{ address: "10.0.0.2/32" }] },
  });
  const down = await runCni({ CNI_COMMAND: "ADD", CNI_CONTAINERID: "c", CNI_NETNS: "/x" }, ok);
  assert.equal(JSON.parse(down.stdout).code, 11, "agent unreachable: try again later");
  const del = await runCni({ CNI_COMMAND: "DEL", CNI_CONTAINERID: "c" }, conf);
  assert.deepEqual(del, { stdout: "", code: 0 }, "DEL tolerates a missing agent");
});
