import assert from "node:assert/strict";
import * as http2 from "node:http2";
import * as tls from "node:tls";
import { closed, denyAll, dial, roundTrip, startMesh } from "./_l4_test_kit.ts";
import { dialHbone } from "./hbone_client.ts";
import type { TestIdentityProvider } from "./test_identity.ts";
import { metrics } from "./metrics.ts";

const CLIENT = "spiffe://cluster.local/ns/default/sa/client";
const SERVER = "spiffe://cluster.local/ns/default/sa/server";

function status(s: http2.ClientHttp2Session, headers: http2.OutgoingHttpHeaders): Promise<number> {
  return new Promise((resolve, reject) => {
    const req = s.request(headers, { endStream: false });
    req.on("response", (h) => {
      resolve(Number(h[":status"]));
      req.destroy();
    });
    req.on("error", reject);
    req.on("close", () => reject(new Error("stream closed without a response")));
  });
}

/** A node:http2 client (it can send non-CONNECT requests) with the client identity's mTLS. */
async function session(
  ids: TestIdentityProvider,
  serverIp: string,
): Promise<http2.ClientHttp2Session> {
  const m = await ids.material(CLIENT);
  const s = http2.connect(`https://${serverIp}:15008`, {
    createConnection: () =>
      tls.connect({
        host: serverIp,
        port: 15008,
        cert: m.certChainPem,
        key: m.keyPem,
        ca: m.rootsPem,
        ALPNProtocols: ["h2"],
        checkServerIdentity: () => undefined,
      }),
  });
  s.on("error", () => {});
  await new Promise((r) => s.once("connect", r));
  return s;
}

Deno.test("HBONE server: 400 for bad method/authority/unknown workload, 401 deny, 503 upstream down", async () => {
  const m = await startMesh(21);
  const s = await session(m.ids, m.serverIp);
  try {
    const auth = `${m.serverIp}:${m.echo.port}`;
    assert.equal(await status(s, { ":method": "GET", ":path": "/", ":authority": auth }), 400);
    assert.equal(await status(s, { ":method": "CONNECT", ":authority": "no-port" }), 400);
    assert.equal(await status(s, { ":method": "CONNECT", ":authority": "127.77.21.99:80" }), 400);
    assert.equal(await status(s, { ":method": "CONNECT", ":authority": auth }), 200);
    // Nothing listens on port 1 of the workload: the upstream connect fails.
    assert.equal(await status(s, { ":method": "CONNECT", ":authority": `${m.serverIp}:1` }), 503);
    await m.b.update(m.snapB({ version: "2", policies: [denyAll()] }));
    assert.equal(await status(s, { ":method": "CONNECT", ":authority": auth }), 401);
    assert.ok(
      metrics.counter("weft_hbone_responses_total", "", ["side", "code"]).get({
        side: "server",
        code: "401",
      }) >= 1,
    );
  } finally {
    s.destroy();
    await m.close();
  }
});

Deno.test("HBONE server: wrong server identity is rejected by the client; no client cert is refused", async () => {
  const m = await startMesh(22);
  try {
    await assert.rejects(
      dialHbone(m.ids, {
        srcIdentity: CLIENT,
        srcIp: undefined,
        dstIdentity: "spiffe://cluster.local/ns/default/sa/other",
        hboneAddr: `${m.serverIp}:15008`,
      }, 2000),
      /is not spiffe/,
    );
    const mat = await m.ids.material(CLIENT);
    const s = http2.connect(`https://${m.serverIp}:15008`, {
      createConnection: () =>
        tls.connect({
          host: m.serverIp,
          port: 15008,
          ca: mat.rootsPem,
          ALPNProtocols: ["h2"],
          checkServerIdentity: () => undefined,
        }),
    });
    s.on("error", () => {});
    const outcome = await status(s, {
      ":method": "CONNECT",
      ":authority": `${m.serverIp}:${m.echo.port}`,
    })
      .then((code) => `status ${code}`, () => "refused");
    s.destroy();
    assert.equal(outcome, "refused");
  } finally {
    await m.close();
  }
});

Deno.test("policy update closes a live inbound connection that is now denied", async () => {
  const m = await startMesh(23);
  try {
    const s = await dial(m.vip, 80, m.clientIp);
    s.write("ping");
    await new Promise((r) => s.once("data", r));
    const done = closed(s);
    await m.b.update(m.snapB({ version: "2", policies: [denyAll()] }));
    await done;
    assert.equal(m.b.stats().connections.inbound, 0);
    // New connections are denied by the server (401) and closed at the client.
    const s2 = await dial(m.vip, 80, m.clientIp);
    s2.write("x");
    let got = 0;
    s2.on("data", (c: Uint8Array) => got += c.length);
    await closed(s2);
    assert.equal(got, 0);
  } finally {
    await m.close();
  }
});

Deno.test("certificate rotation: new handshakes see the new cert, live sessions keep working", async () => {
  const m = await startMesh(24);
  try {
    const s = await dial(m.vip, 80, m.clientIp);
    s.write("a");
    await new Promise((r) => s.once("data", r));
    const before = (await m.ids.material(SERVER)).serial;
    const rotated = await m.ids.rotate(SERVER);
    assert.notEqual(rotated.serial, before);
    const mat = await m.ids.material(CLIENT);
    const peerSerial = await new Promise<string>((resolve, reject) => {
      const t = tls.connect({
        host: m.serverIp,
        port: 15008,
        cert: mat.certChainPem,
        key: mat.keyPem,
        ca: mat.rootsPem,
        ALPNProtocols: ["h2"],
        checkServerIdentity: () => undefined,
      }, () => {
        resolve(t.getPeerCertificate().serialNumber);
        t.destroy();
      });
      t.on("error", reject);
    });
    assert.equal(peerSerial.replace(/^0+/, "").toLowerCase(), rotated.serial.replace(/^0+/, ""));
    const got = await roundTrip(s, new TextEncoder().encode("bc"));
    assert.equal(new TextDecoder().decode(got), "bc");
  } finally {
    await m.close();
  }
});
