/**
 * The bad-certificate matrix against a real node: every case is refused at the TLS layer and
 * counted by reason, and nothing reaches the workload. Also: a server presenting an identity other
 * than the expected destination is refused by the client side.
 */
import * as tls from "node:tls";
import * as http2 from "node:http2";
import { assert, assertEquals } from "./support/assert.ts";
import { connect, type Socket } from "node:net";
import { closed, metricSum, roundTrip, scrape, startMesh } from "./support/mesh.ts";
import { bunPath } from "./support/weft_proc.ts";
import { BAD_CERT_CASES, type BadCertCase } from "./support/test_ca.ts";

/** The reason node B (a weft process on Deno) counts per case. Chain, validity and a missing
 * certificate are refused inside the TLS handshake by node:tls; Deno's node:tls reports other-CA,
 * expired and not-yet-valid all as UNABLE_TO_VERIFY_LEAF_SIGNATURE, so they count as
 * untrusted_chain there (Bun keeps CERT_HAS_EXPIRED / CERT_NOT_YET_VALID apart). The SAN checks
 * run on 'secureConnection' before HTTP/2, each with its own reason. */
const REASONS: Record<BadCertCase | "no_client_cert", string[]> = {
  no_client_cert: ["no_client_cert"],
  other_ca: ["untrusted_chain"],
  other_trust_domain: ["trust_domain_mismatch"],
  expired: ["untrusted_chain"],
  not_yet_valid: ["untrusted_chain"],
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
    let settings = false;
    const finish = (what: string) => {
      clearTimeout(timer);
      sock.destroy();
      resolve(settings ? `settings,${what}` : what);
    };
    sock.on("error", (e) => finish(`error:${e.message}`));
    sock.on("close", () => finish("closed"));
    sock.on("secureConnect", () => {
      const session = http2.connect(`https://${host}:15008`, { createConnection: () => sock });
      // A refused peer must never get an HTTP/2 session: no SETTINGS from the server.
      session.on("remoteSettings", () => (settings = true));
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

/** Bun's node:tls keeps the chain verdicts apart. */
const BUN_REASONS: typeof REASONS = {
  ...REASONS,
  expired: ["expired"],
  not_yet_valid: ["not_yet_valid"],
};

const BUN = bunPath();

Deno.test("certs: every bad client certificate is refused and counted by reason; nothing forwarded", async () => {
  // WEFT_BIN runs the shipped binary, which is Bun-compiled: Bun's verdicts apply.
  await badCertMatrix(Deno.env.get("WEFT_BIN") ? BUN_REASONS : REASONS);
});

Deno.test({
  name: "certs (Bun): the same matrix against a weft node on Bun",
  ignore: BUN === undefined,
  fn: () => badCertMatrix(BUN_REASONS, BUN),
});

async function badCertMatrix(reasons: typeof REASONS, runtime?: string): Promise<void> {
  const m = await startMesh(runtime ? { runtime } : {});
  try {
    const cases: (BadCertCase | "no_client_cert")[] = ["no_client_cert", ...BAD_CERT_CASES];
    for (const c of cases) {
      const before = await scrape(m.b!);
      const creds = c === "no_client_cert"
        ? {}
        : { cert: m.pki.bad[c].certPem, key: m.pki.bad[c].keyPem };
      const result = await tryConnect(m.echoIp, { ...creds, ca: m.pki.rootsPem });
      assert(
        !result.startsWith("status:") && !result.startsWith("settings"),
        `${c}: got HTTP/2 SETTINGS or a response (${result}); the peer must be refused first`,
      );
      let after = "";
      const delta = (reason: string) =>
        metricSum(after, "weft_tls_rejections_total", `reason="${reason}"`, 'side="server"') -
        metricSum(before, "weft_tls_rejections_total", `reason="${reason}"`, 'side="server"');
      // The server counts the refusal when its side of the handshake ends: poll briefly.
      for (let i = 0; i < 30; i++) {
        after = await scrape(m.b!);
        if (reasons[c].some((r) => delta(r) === 1)) break;
        await new Promise((r) => setTimeout(r, 100));
      }
      assert(
        reasons[c].some((r) => delta(r) === 1),
        `${c}: expected one rejection with reason ${reasons[c].join("|")}\n${
          after.split("\n").filter((l) => l.includes("tls_rejections")).join("\n")
        }`,
      );
    }
    assertEquals(m.echo.accepted(), 0, "no bad peer may reach the workload");
  } finally {
    await m.stop();
  }
}

Deno.test("certs: pre-TLS connections are capped per listener and closed at the handshake timeout", async () => {
  const m = await startMesh({
    timeouts: { tlsHandshake: "1s" },
    limits: { maxPendingHandshakes: 4 },
  });
  try {
    const socks = await Promise.all(
      Array.from({ length: 7 }, () =>
        new Promise<Socket>((resolve, reject) => {
          const s = connect({ host: m.echoIp, port: 15008 });
          s.once("connect", () => resolve(s));
          s.once("error", reject);
        })),
    );
    const t0 = performance.now();
    await Promise.all(socks.map((s) => closed(s, 5000)));
    assert(performance.now() - t0 < 4000, "idle pre-TLS connections must close at the timeout");
    let text = "";
    for (let i = 0; i < 30; i++) {
      text = await scrape(m.b!);
      if (metricSum(text, "weft_l4_refused_total", 'reason="tls_handshake_timeout"') >= 4) break;
      await new Promise((r) => setTimeout(r, 100));
    }
    assertEquals(metricSum(text, "weft_l4_refused_total", 'reason="hbone_pending_limit"'), 3);
    assertEquals(metricSum(text, "weft_l4_refused_total", 'reason="tls_handshake_timeout"'), 4);
    assertEquals(metricSum(text, "weft_hbone_pending_handshakes"), 0);
    // A real client still gets through.
    const s = await m.dial();
    const data = new TextEncoder().encode("after the flood");
    assertEquals(await roundTrip(s, data), data);
    s.destroy();
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
