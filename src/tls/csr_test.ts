import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { createPrivateKey, X509Certificate as NodeX509 } from "node:crypto";
import { WeftError } from "../core/mod.ts";
import { CertificateAuthority } from "./ca.ts";
import { createCsr, leafFromChain } from "./csr.ts";
import { pemBlock } from "./_ca_der.ts";
import { children, readTlv } from "./_der.ts";
import { EC_P256, x509 } from "./_x509.ts";

const ID = "spiffe://cluster.local/ns/default/sa/web";

function code(c: string): (e: unknown) => boolean {
  return (e) => e instanceof WeftError && e.code === c && e.message.startsWith("Cannot ");
}

function sanOf(
  csr: x509.Pkcs10CertificateRequest,
): x509.SubjectAlternativeNameExtension | undefined {
  const ext = csr.getExtension("2.5.29.17");
  return ext ? new x509.SubjectAlternativeNameExtension(ext.rawData) : undefined;
}

/** The certificationRequestInfo and signatureAlgorithm of a CSR (all but the signature, which
 * ECDSA randomises). */
function unsignedParts(der: Uint8Array): Uint8Array[] {
  const [info, alg] = children(der, readTlv(der, 0, der.length));
  return [der.slice(info!.pos, info!.end), der.slice(alg!.pos, alg!.end)];
}

Deno.test("createCsr: the bytes @peculiar/x509's generator wrote for the same key (empty subject, SPIFFE URI as the one critical SAN in an extensionRequest), and it parses and verifies there", async () => {
  const { csrPem, keyPem } = await createCsr(ID);
  const parsed = new x509.Pkcs10CertificateRequest(csrPem);
  assert.ok(await parsed.verify(), "x509 verifies the self-signature");
  assert.equal(parsed.subject, "");
  assert.equal(parsed.signatureAlgorithm.name, "ECDSA");
  assert.deepEqual((parsed.signatureAlgorithm as EcdsaParams).hash, { name: "SHA-256" });
  const san = sanOf(parsed);
  assert.equal(san?.critical, true);
  assert.deepEqual(san?.names.items.map((n) => [n.type, n.value]), [["url", ID]]);
  assert.equal(parsed.extensions.length, 1);
  // The key is P-256 and its private half is the returned PKCS#8.
  assert.match(keyPem, /^-----BEGIN PRIVATE KEY-----\n/);
  const key = createPrivateKey(keyPem);
  assert.equal(key.asymmetricKeyDetails?.namedCurve, "prime256v1");
  // What x509's generator (the previous writer) makes for this key, byte for byte but the
  // signature value.
  const privateKey = await crypto.subtle.importKey(
    "pkcs8",
    pemBlock(keyPem, "PRIVATE KEY")!,
    EC_P256,
    true,
    ["sign"],
  );
  const publicKey = await crypto.subtle.importKey(
    "spki",
    parsed.publicKey.rawData,
    EC_P256,
    true,
    ["verify"],
  );
  const theirs = await x509.Pkcs10CertificateRequestGenerator.create({
    keys: { privateKey, publicKey },
    signingAlgorithm: EC_P256,
    extensions: [new x509.SubjectAlternativeNameExtension([{ type: "url", value: ID }], true)],
  });
  assert.deepEqual(
    unsignedParts(pemBlock(csrPem, "CERTIFICATE REQUEST")!),
    unsignedParts(new Uint8Array(theirs.rawData)),
  );
});

const HAS_OPENSSL = spawnSync("sh", ["-c", "command -v openssl"]).status === 0;

Deno.test({
  name: "createCsr: openssl req -verify accepts it and reads the URI SAN" +
    (HAS_OPENSSL ? "" : " (skipped: openssl is not installed)"),
  ignore: !HAS_OPENSSL,
}, async () => {
  const { csrPem } = await createCsr(ID);
  const r = spawnSync("openssl", ["req", "-noout", "-verify", "-text"], {
    input: csrPem,
    encoding: "utf8",
  });
  assert.equal(r.status, 0, r.stderr);
  assert.match(r.stdout + r.stderr, /verify OK/i);
  assert.match(r.stdout, new RegExp(`URI:${ID.replaceAll("/", "\\/")}`));
  assert.match(r.stdout, /ecdsa-with-SHA256/);
  assert.match(r.stdout, /NIST CURVE: P-256|prime256v1/);
});

Deno.test("createCsr: refuses a malformed SPIFFE id before making a key", async () => {
  await assert.rejects(() => createCsr("https://example.com/x"), code("spiffe_id_invalid"));
});

Deno.test("createCsr: a long identity takes multi-byte DER lengths and still parses", async () => {
  const long = `spiffe://cluster.local/ns/default/sa/${"a".repeat(300)}`;
  const { csrPem } = await createCsr(long);
  const parsed = new x509.Pkcs10CertificateRequest(csrPem);
  assert.ok(await parsed.verify());
  const san = sanOf(parsed);
  assert.equal(san?.names.items[0]?.value, long);
});

Deno.test("the control plane's CA signs it and leafFromChain takes the answer: identity, key, serial and validity as node:crypto reads them", async () => {
  const ca = await CertificateAuthority.generate();
  const { csrPem, keyPem } = await createCsr(ID);
  const chain = await ca.signCsr(csrPem, { identity: ID, ttlMs: 3600_000 });
  const issuedAt = new Date();
  const leaf = await leafFromChain(ID, keyPem, chain, issuedAt);
  const cert = new NodeX509(leaf.certPem);
  assert.equal(leaf.identity, ID);
  assert.equal(leaf.keyPem, keyPem);
  assert.ok(cert.checkPrivateKey(createPrivateKey(keyPem)));
  assert.equal(leaf.serial, cert.serialNumber.toLowerCase());
  assert.equal(leaf.notBefore.getTime(), new Date(cert.validFrom).getTime());
  assert.equal(leaf.notAfter.getTime(), new Date(cert.validTo).getTime());
  assert.equal(leaf.rootsPem, ca.rootPem);
  assert.equal(leaf.chainPem, leaf.certPem);
  assert.equal(leaf.issuedAt, issuedAt);
});

Deno.test("leafFromChain: refuses a chain that names another identity, is for another key, does not chain to its root, is short or is not PEM", async () => {
  const ca = await CertificateAuthority.generate();
  const other = await CertificateAuthority.generate();
  const { csrPem, keyPem } = await createCsr(ID);
  const csr = new x509.Pkcs10CertificateRequest(csrPem);
  const leafFor = async (
    by: CertificateAuthority,
    uri: string,
    publicKey: x509.PublicKey = csr.publicKey,
  ) => {
    const c = await by.sign({
      publicKey,
      sans: [{ type: "url", value: uri }],
      notBefore: new Date(Date.now() - 60_000),
      notAfter: new Date(Date.now() + 3600_000),
    });
    return c.toString("pem");
  };
  const bad = code("ca_bad_response");
  await assert.rejects(
    async () => leafFromChain(ID, keyPem, [await leafFor(ca, `${ID}x`), ca.rootPem], new Date()),
    (e) => bad(e) && /names \["spiffe:.*x"\], not/.test((e as Error).message),
  );
  const stranger = await createCsr(ID);
  const strangerKey = new x509.Pkcs10CertificateRequest(stranger.csrPem).publicKey;
  await assert.rejects(
    async () =>
      leafFromChain(ID, keyPem, [await leafFor(ca, ID, strangerKey), ca.rootPem], new Date()),
    (e) => bad(e) && /not for the key of the request/.test((e as Error).message),
  );
  await assert.rejects(
    async () => leafFromChain(ID, keyPem, [await leafFor(ca, ID), other.rootPem], new Date()),
    (e) => bad(e) && /does not chain to the returned root/.test((e as Error).message),
  );
  await assert.rejects(() => leafFromChain(ID, keyPem, [ca.rootPem], new Date()), bad);
  await assert.rejects(
    () => leafFromChain(ID, keyPem, ["not a certificate", ca.rootPem], new Date()),
    bad,
  );
  // The good leaf passes, so the refusals above are for their one defect.
  const ok = await leafFromChain(ID, keyPem, [await leafFor(ca, ID), ca.rootPem], new Date());
  assert.equal(ok.identity, ID);
});
