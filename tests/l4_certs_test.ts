/**
 * The bad-certificate matrix against a real node: every case is refused at the TLS layer and
 * counted by reason, and nothing reaches the workload. Also: a server presenting an identity other
 * than the expected destination is refused by the client side.
 */
import * as tls from "node:tls";
import * as http2 from "node:http2";
import { assert, assertEquals } from "./support/assert.ts";
import { closed, metricSum, scrape, startMesh } from "./support/mesh.ts";
import { BAD_CERT_CASES, type BadCertCase } from "./support/test_ca.ts";

/** The reason node B counts per case (its HBONE server checks chains itself). */
const REASONS: Record<BadCertCase | "no_client_cert", string[]> = {
  no_client_cert: ["no_client_cert"],
  other_ca: ["untrusted_chain"],
  other_trust_domain: ["trust_domain_mismatch"],
  expired: ["expired"],
  not_yet_valid: ["not_yet_valid"],
  non_spiffe_uri: ["bad_san"],
  two_uri_sans: ["bad_san"],
  dns_only: ["bad_san"],
};

/** Try a full HBONE CONNECT with the given client credentials; resolve with what happened. */
function tryConnect(
  host: string,
  opts: { cert?: string; key?: string; ca: string },
): Promise<string> {
  return new Promise((resolve) => {
    const sock = tls.connect({
      host,
      port: 15008,
      ALPNProtocols: ["h2"],
      ...opts,
      rejectUnauthorized: false,
      checkServerIdentity: () => undefined,
    });
    const timer = setTimeout(() => {
      sock.destroy();
      resolve("timeout");
    }, 5000);
    const finish = (what: string) => {
      clearTimeout(timer);
      sock.destroy();
      resolve(what);
    };
    sock.on("error", (e) => finish(`error:${e.message}`));
    sock.on("close", () => finish("closed"));
    sock.on("secureConnect", () => {
      const session = http2.connect(`https://${host}:15008`, { createConnection: () => sock });
      session.on("error", (e) => finish(`h2error:${e.message}`));
      const req = session.request({ ":method": "CONNECT", ":authority": `${host}:1` });
      req.on("response", (h) => {
        session.destroy();
        finish(`status:${h[":status"]}`);
      });
      req.on("error", (e) => {
        session.destroy();
        finish(`stream:${e.message}`);
      });
      req.end();
    });
  });
}

Deno.test("certs: every bad client certificate is refused and counted by reason; nothing forwarded", async () => {
  const m = await startMesh();
  try {
    const cases: (BadCertCase | "no_client_cert")[] = ["no_client_cert", ...BAD_CERT_CASES];
    for (const c of cases) {
      const before = await scrape(m.b!);
      const creds = c === "no_client_cert"
        ? {}
        : { cert: m.pki.bad[c].certPem, key: m.pki.bad[c].keyPem };
      const result = await tryConnect(m.echoIp, { ...creds, ca: m.pki.rootsPem });
      assert(
        !result.startsWith("status:"),
        `${c}: got an HTTP response (${result}); the handshake must fail`,
      );
      let after = "";
      const delta = (reason: string) =>
        metricSum(after, "weft_tls_rejections_total", `reason="${reason}"`, 'side="server"') -
        metricSum(before, "weft_tls_rejections_total", `reason="${reason}"`, 'side="server"');
      // The server counts the refusal when its side of the handshake ends: poll briefly.
      for (let i = 0; i < 30; i++) {
        after = await scrape(m.b!);
        if (REASONS[c].some((r) => delta(r) === 1)) break;
        await new Promise((r) => setTimeout(r, 100));
      }
      assert(
        REASONS[c].some((r) => delta(r) === 1),
        `${c}: expected one rejection with reason ${REASONS[c].join("|")}\n${
          after.split("\n").filter((l) => l.includes("tls_rejections")).join("\n")
        }`,
      );
    }
    assertEquals(m.echo.accepted(), 0, "no bad peer may reach the workload");
  } finally {
    await m.stop();
  }
});

Deno.test("certs: a server presenting another identity than the destination's is refused by the client", async () => {
  const m = await startMesh({ startB: false });
  const impostor = await m.pki.good("spiffe://cluster.local/ns/default/sa/impostor");
  const server = http2.createSecureServer({
    cert: impostor.certPem,
    key: impostor.keyPem,
    ca: m.pki.rootsPem,
    requestCert: true,
    rejectUnauthorized: true,
    ALPNProtocols: ["h2"],
  });
  let streams = 0;
  server.on("stream", (s: http2.ServerHttp2Stream) => {
    streams++;
    s.respond({ ":status": 200 });
  });
  server.on("tlsClientError", () => {});
  await new Promise<void>((r) => server.listen(15008, m.echoIp, () => r()));
  try {
    const s = await m.dial();
    s.write("secret");
    await closed(s);
    assertEquals(streams, 0, "no CONNECT may be sent to the impostor");
    const text = await scrape(m.a);
    assert(
      metricSum(text, "weft_tls_rejections_total", 'reason="identity_mismatch"', 'side="client"') >=
        1,
      text.split("\n").filter((l) => l.includes("tls_rej")).join("\n"),
    );
  } finally {
    await new Promise<void>((r) => server.close(() => r()));
    await m.stop();
  }
});
