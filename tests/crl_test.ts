/**
 * Certificate revocation lists on real nodes (CRL_PATH, hbone.md §4, §11), on Deno and on Bun:
 * a revoked client is refused at the handshake and counted, a good one tunnels, a CRL from an
 * unknown CA changes nothing; a CRL rewrite closes the live tunnel of the peer it revokes within
 * the watcher's reaction time (inbound on the server's side, then outbound on the client's
 * side: `response_flags="CERT_REVOKED"`), while another tunnel stays up; a revoked server is
 * refused by the client.
 */
import * as tls from "node:tls";
import * as http2 from "node:http2";
import { rename, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { assert, assertEquals } from "./support/assert.ts";
import { closed, type Mesh, metricSum, roundTrip, scrape, startMesh } from "./support/mesh.ts";
import { bunPath, type WeftProc } from "./support/weft_proc.ts";
import { createTestPki, type PemFiles } from "./support/test_ca.ts";
import { CertificateAuthority } from "../src/tls/mod.ts";
import { caSigner, crlPem, type CrlSigner, makeCrl, serialOf } from "./support/test_crl.ts";

const BUN = bunPath();
const ID = "spiffe://cluster.local/ns/default/sa/";

interface Tunnel {
  readonly stream: http2.ClientHttp2Stream;
  readonly session: http2.ClientHttp2Session;
  /** Resolves with how the CONNECT ended: a status, or an error/close before any response. */
  readonly opened: Promise<string>;
}

/** A CONNECT tunnel to `authority` over mTLS HTTP/2 straight to node B's HBONE listener. */
function tunnel(host: string, creds: PemFiles, ca: string, authority: string): Tunnel {
  const sock = tls.connect({
    host,
    port: 15008,
    ALPNProtocols: ["h2"],
    cert: creds.certPem,
    key: creds.keyPem,
    ca,
    checkServerIdentity: () => undefined,
  });
  sock.on("error", () => {});
  const session = http2.connect(`https://${host}:15008`, { createConnection: () => sock });
  session.on("error", () => {});
  const stream = session.request({ ":method": "CONNECT", ":authority": authority });
  stream.on("error", () => {});
  const opened = new Promise<string>((resolve) => {
    const timer = setTimeout(() => done("timeout"), 5000);
    const done = (what: string): void => {
      clearTimeout(timer);
      resolve(what);
    };
    stream.on("response", (h) => done(`status:${h[":status"]}`));
    stream.on("close", () => done("closed"));
    session.on("close", () => done("closed"));
  });
  return { stream, session, opened };
}

function echoThrough(t: Tunnel, text: string): Promise<string> {
  return new Promise((resolve, reject) => {
    let got = "";
    const timer = setTimeout(() => reject(new Error(`no echo of ${text}`)), 5000);
    const onData = (c: Uint8Array) => {
      got += new TextDecoder().decode(c);
      if (got.length >= text.length) {
        clearTimeout(timer);
        t.stream.off("data", onData);
        resolve(got);
      }
    };
    t.stream.on("data", onData);
    t.stream.write(text);
  });
}

function endTunnel(t: Tunnel): void {
  t.stream.destroy();
  t.session.destroy();
}

async function poll(proc: WeftProc, ok: (text: string) => boolean, what: string): Promise<string> {
  let text = "";
  for (let i = 0; i < 50; i++) {
    text = await scrape(proc);
    if (ok(text)) return text;
    await new Promise((r) => setTimeout(r, 100));
  }
  throw new Error(
    `${what}\n${text.split("\n").filter((l) => /crl|revoked|CERT_/.test(l)).join("\n")}`,
  );
}

/** Write the CRL file as a Kubernetes volume update does: beside it, then renamed over it. */
async function replaceCrl(path: string, pem: string): Promise<void> {
  await writeFile(path + ".new", pem);
  await rename(path + ".new", path);
}

async function serialOfNode(node: WeftProc, identity: string): Promise<string> {
  const dump = await (await fetch(`http://${node.ready.admin}/config_dump`)).json() as {
    certificates: { identity: string; certChainPem?: string }[];
  };
  const c = dump.certificates.find((x) => x.identity === identity);
  assert(c?.certChainPem, `no certificate for ${identity}`);
  return await serialOf(c.certChainPem);
}

async function refusedAndAccepted(runtime?: string): Promise<void> {
  const pki = await createTestPki();
  const revoked = await pki.good(ID + "revoked");
  const good = await pki.good(ID + "good");
  const unknown = await CertificateAuthority.generate({ name: "unknown crl issuer" });
  // The unknown CA's CRL (another issuer name) first: never consulted, so it cannot revoke.
  const crlPath = join(pki.dir, "crl.pem");
  await writeFile(
    crlPath,
    crlPem(await makeCrl(await caSigner(unknown), [await serialOf(good.certPem)])) +
      pki.rootsPem + // a non-CRL PEM item in the file is skipped
      crlPem(await makeCrl(await caSigner(pki.ca), [await serialOf(revoked.certPem)])),
  );
  const m = await startMesh({ pki, env: { CRL_PATH: crlPath }, ...(runtime ? { runtime } : {}) });
  try {
    const authority = `${m.echoIp}:${m.echo.port}`;
    const bad = tunnel(m.echoIp, revoked, pki.rootsPem, authority);
    assertEquals(await bad.opened, "closed", "a revoked client gets no HTTP/2 session");
    endTunnel(bad);
    await poll(
      m.b!,
      (t) =>
        metricSum(t, "weft_tls_rejections_total", 'reason="revoked"', 'side="server"') === 1 &&
        metricSum(t, "istio_crl_policy_rejections_total", 'reporter="destination"') === 1,
      "node B must count one revoked client",
    );
    const ok = tunnel(m.echoIp, good, pki.rootsPem, authority);
    assertEquals(await ok.opened, "status:200");
    assertEquals(await echoThrough(ok, "not revoked"), "not revoked");
    endTunnel(ok);
    // Node A's own client (sleep) is not listed either: the mesh path works.
    const s = await m.dial();
    const data = new TextEncoder().encode("through the mesh");
    assertEquals(await roundTrip(s, data), data);
    s.destroy();
  } finally {
    await m.stop();
  }
}

Deno.test("crl: a revoked client is refused at the handshake and counted; others pass; an unknown CA's CRL is not consulted", () =>
  refusedAndAccepted());

Deno.test({
  name: "crl (Bun): the same on nodes running on Bun",
  ignore: BUN === undefined,
  fn: () => refusedAndAccepted(BUN),
});

async function liveRevocation(runtime?: string): Promise<void> {
  const pki = await createTestPki();
  const other = await pki.good(ID + "other");
  const crlPath = join(pki.dir, "crl.pem");
  await writeFile(crlPath, ""); // empty: no revocations yet
  const m: Mesh = await startMesh({
    pki,
    env: { CRL_PATH: crlPath },
    ...(runtime ? { runtime } : {}),
  });
  try {
    const signer: CrlSigner = await caSigner(pki.ca);
    const authority = `${m.echoIp}:${m.echo.port}`;
    // T1: the mesh path (sleep on node A → echo on node B); T2: a direct client of node B.
    const t1 = await m.dial();
    const d1 = new TextEncoder().encode("tunnel one");
    assertEquals(await roundTrip(t1, d1), d1);
    const t2 = tunnel(m.echoIp, other, pki.rootsPem, authority);
    assertEquals(await t2.opened, "status:200");
    assertEquals(await echoThrough(t2, "tunnel two"), "tunnel two");

    // Revoke T2's client: node B closes that inbound connection; T1 stays up.
    const otherSerial = await serialOf(other.certPem);
    let t0 = performance.now();
    const t2Closed = new Promise<number>((r) =>
      t2.session.once("close", () => r(performance.now()))
    );
    await replaceCrl(crlPath, crlPem(await makeCrl(signer, [otherSerial], { crlNumber: 2 })));
    const inboundMs = (await t2Closed) - t0;
    assertEquals(await roundTrip(t1, d1), d1, "the other tunnel stays up");
    await poll(
      m.b!,
      (t) =>
        metricSum(t, "istio_crl_policy_rejections_total", 'reporter="destination"') === 1 &&
        metricSum(
            t,
            "istio_tcp_connections_closed_total",
            'reporter="destination"',
            'response_flags="CERT_REVOKED"',
          ) === 1,
      "node B must close the revoked inbound tunnel with CERT_REVOKED",
    );

    // Revoke node B's own certificate: node A closes its pooled connection (T1) as a client.
    const echoSerial = await serialOfNode(m.b!, ID + "echo");
    t0 = performance.now();
    await replaceCrl(
      crlPath,
      crlPem(await makeCrl(signer, [otherSerial, echoSerial], { crlNumber: 3 })),
    );
    await closed(t1, 5000);
    const outboundMs = performance.now() - t0;
    await poll(
      m.a,
      (t) =>
        metricSum(t, "istio_crl_policy_rejections_total", 'reporter="source"') === 1 &&
        metricSum(
            t,
            "istio_tcp_connections_closed_total",
            'reporter="source"',
            'response_flags="CERT_REVOKED"',
          ) === 1,
      "node A must close the tunnel to the revoked server with CERT_REVOKED",
    );
    // A new connection to the revoked server is refused by node A's handshake check.
    const t3 = await m.dial();
    t3.write("refused");
    await closed(t3, 5000);
    await poll(
      m.a,
      (t) => metricSum(t, "weft_tls_rejections_total", 'reason="revoked"', 'side="client"') >= 1,
      "node A must refuse the revoked server",
    );
    // deno-lint-ignore no-console -- the reaction time is reported, not asserted
    console.log(
      `crl reaction (${runtime ? "bun" : "deno"}): inbound close ${inboundMs.toFixed(0)} ms, ` +
        `outbound close ${outboundMs.toFixed(0)} ms after the rename`,
    );
    endTunnel(t2);
  } finally {
    await m.stop();
  }
}

Deno.test("crl: a rewrite closes the revoked peer's live tunnels (inbound, then outbound) with CERT_REVOKED; another tunnel stays", () =>
  liveRevocation());

Deno.test({
  name: "crl (Bun): live revocation on nodes running on Bun",
  ignore: BUN === undefined,
  fn: () => liveRevocation(BUN),
});
