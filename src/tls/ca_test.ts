import assert from "node:assert/strict";
import { createPrivateKey, X509Certificate as NodeX509 } from "node:crypto";
import { WeftError } from "../core/mod.ts";
import { CertificateAuthority, CLOCK_SKEW_MS } from "./ca.ts";
import { EC_P256, x509 } from "./_x509.ts";

const ID = "spiffe://cluster.local/ns/default/sa/web";

function code(c: string): (e: unknown) => boolean {
  return (e) => e instanceof WeftError && e.code === c && e.message.startsWith("Cannot ");
}

Deno.test("issueLeaf: Istio-shaped leaf, checked with node:crypto's independent X.509 parser", async () => {
  const ca = await CertificateAuthority.generate();
  const now = Date.now();
  const leaf = await ca.issueLeaf(ID, { ttlMs: 3600_000, nowMs: now });
  const cert = new NodeX509(leaf.certPem);
  const root = new NodeX509(ca.rootPem);
  assert.equal(cert.subjectAltName, `URI:${ID}`);
  assert.equal(cert.subject ?? "", "");
  assert.equal(cert.ca, false);
  assert.ok(cert.checkIssued(root));
  assert.ok(cert.verify(root.publicKey));
  assert.equal(root.ca, true);
  assert.equal(new Date(cert.validFrom).getTime(), Math.floor((now - CLOCK_SKEW_MS) / 1000) * 1000);
  assert.equal(new Date(cert.validTo).getTime(), Math.ceil((now + 3600_000) / 1000) * 1000);
  assert.ok(cert.checkPrivateKey(createPrivateKey(leaf.keyPem)));
  assert.match(leaf.keyPem, /^-----BEGIN PRIVATE KEY-----\n/);
  assert.equal(cert.publicKey.asymmetricKeyType, "ec");
  assert.equal(cert.publicKey.asymmetricKeyDetails?.namedCurve, "prime256v1");
  // Key usage bits and EKU: node:crypto's `keyUsage` means EKU on Node but key usage on Deno.
  const parsed = new x509.X509Certificate(leaf.certPem);
  const eku = parsed.getExtension(x509.ExtendedKeyUsageExtension);
  assert.deepEqual([...(eku?.usages ?? [])].sort(), ["1.3.6.1.5.5.7.3.1", "1.3.6.1.5.5.7.3.2"]);
  const ku = parsed.getExtension(x509.KeyUsagesExtension);
  assert.equal(ku?.usages, x509.KeyUsageFlags.digitalSignature);
  assert.equal(ku?.critical, true);
  assert.equal(leaf.serial, cert.serialNumber.toLowerCase());
  assert.equal(leaf.serial.length, 32);
  assert.equal(leaf.chainPem, leaf.certPem);
  assert.equal(leaf.rootsPem, ca.rootPem);
});

Deno.test("issueLeaf: random serials, openssl accepts the leaf for TLS client and server", async () => {
  const ca = await CertificateAuthority.generate();
  const a = await ca.issueLeaf(ID);
  const b = await ca.issueLeaf(ID);
  assert.notEqual(a.serial, b.serial);
  const dir = await Deno.makeTempDir({ prefix: "weft-ca-" });
  try {
    await Deno.writeTextFile(`${dir}/ca.pem`, ca.rootPem);
    await Deno.writeTextFile(`${dir}/leaf.pem`, a.certPem);
    for (const purpose of ["sslserver", "sslclient"]) {
      const out = await new Deno.Command("openssl", {
        args: ["verify", "-CAfile", `${dir}/ca.pem`, "-purpose", purpose, `${dir}/leaf.pem`],
        stdout: "piped",
        stderr: "piped",
      }).output();
      const text = new TextDecoder().decode(out.stdout) + new TextDecoder().decode(out.stderr);
      assert.equal(out.code, 0, text);
      assert.match(text, /leaf\.pem: OK/);
    }
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("issueLeaf refuses non-SPIFFE identities and sub-second TTLs", async () => {
  const ca = await CertificateAuthority.generate();
  await assert.rejects(ca.issueLeaf("spiffe://cluster.local/web"), code("spiffe_id_invalid"));
  await assert.rejects(ca.issueLeaf(ID, { ttlMs: 10 }), code("ttl_invalid"));
});

async function makeCsr(uris: string[]): Promise<{ pem: string; keys: CryptoKeyPair }> {
  const keys = await crypto.subtle.generateKey(EC_P256, true, ["sign", "verify"]);
  const csr = await x509.Pkcs10CertificateRequestGenerator.create({
    keys,
    signingAlgorithm: EC_P256,
    extensions: [
      new x509.SubjectAlternativeNameExtension(
        uris.map((value) => ({ type: "url" as const, value })),
      ),
    ],
  });
  return { pem: csr.toString("pem"), keys };
}

Deno.test("signCsr: Istio CreateCertificate shape, SAN must equal the caller's identity", async () => {
  const ca = await CertificateAuthority.generate();
  const { pem, keys } = await makeCsr([ID]);
  const chain = await ca.signCsr(pem, { identity: ID, ttlMs: 60_000 });
  assert.equal(chain.length, 2);
  assert.equal(chain[1], ca.rootPem);
  const leaf = new x509.X509Certificate(chain[0]!);
  const names = leaf.getExtension(x509.SubjectAlternativeNameExtension)?.names.items;
  assert.deepEqual(names?.map((n) => [n.type, n.value]), [["url", ID]]);
  const spki = new Uint8Array(await crypto.subtle.exportKey("spki", keys.publicKey));
  assert.deepEqual(new Uint8Array(leaf.publicKey.rawData), spki);
  assert.ok(await leaf.verify({ publicKey: (await ca.x509Cert()).publicKey, signatureOnly: true }));

  const other = "spiffe://cluster.local/ns/default/sa/admin";
  await assert.rejects(ca.signCsr(pem, { identity: other }), code("csr_identity_mismatch"));
  const two = await makeCsr([ID, other]);
  await assert.rejects(ca.signCsr(two.pem, { identity: ID }), code("csr_identity_mismatch"));
  await assert.rejects(ca.signCsr("not a csr", { identity: ID }), code("csr_invalid"));
  // A CSR whose signature does not cover its content (last signature byte flipped).
  const der = new Uint8Array(x509.PemConverter.decodeFirst(pem));
  der[der.length - 1]! ^= 0x01;
  const tampered = x509.PemConverter.encode(der.buffer, "CERTIFICATE REQUEST");
  await assert.rejects(ca.signCsr(tampered, { identity: ID }), code("csr_invalid"));
});

Deno.test("fromPem: round-trips a CA and refuses wrong keys, non-CAs, expired roots, SEC1 keys", async () => {
  const ca = await CertificateAuthority.generate();
  const keyPem = await ca.exportKeyPem();
  const loaded = await CertificateAuthority.fromPem(ca.rootPem, keyPem);
  const leaf = await loaded.issueLeaf(ID);
  assert.ok(new NodeX509(leaf.certPem).verify(new NodeX509(ca.rootPem).publicKey));

  const other = await CertificateAuthority.generate();
  await assert.rejects(
    CertificateAuthority.fromPem(ca.rootPem, await other.exportKeyPem()),
    code("ca_key_mismatch"),
  );
  await assert.rejects(CertificateAuthority.fromPem(leaf.certPem, leaf.keyPem), code("ca_not_ca"));
  const old = await CertificateAuthority.generate({
    nowMs: Date.now() - 3 * 86400_000,
    ttlMs: 86400_000,
  });
  await assert.rejects(
    CertificateAuthority.fromPem(old.rootPem, await old.exportKeyPem()),
    code("ca_expired"),
  );
  const future = await CertificateAuthority.generate({
    notBefore: new Date(Date.now() + 86400_000),
  });
  await assert.rejects(
    CertificateAuthority.fromPem(future.rootPem, await future.exportKeyPem()),
    code("ca_not_yet_valid"),
  );
  const sec1 = keyPem.replaceAll("PRIVATE KEY", "EC PRIVATE KEY");
  await assert.rejects(CertificateAuthority.fromPem(ca.rootPem, sec1), (e: unknown) => {
    assert.ok(e instanceof WeftError && e.code === "ca_key_invalid");
    assert.match(e.hint ?? "", /openssl pkcs8 -topk8/);
    return true;
  });
  await assert.rejects(CertificateAuthority.fromPem("garbage", keyPem), code("ca_cert_invalid"));
});

Deno.test("issueLeaf from operator CAs (P-384, RSA, no subjectKeyIdentifier): openssl verifies the leaves", async () => {
  const dir = await Deno.makeTempDir({ prefix: "weft-ca-kinds-" });
  const sh = async (args: string[]): Promise<string> => {
    const out = await new Deno.Command("openssl", {
      args,
      cwd: dir,
      stdout: "piped",
      stderr: "piped",
    })
      .output();
    const text = new TextDecoder().decode(out.stdout) + new TextDecoder().decode(out.stderr);
    assert.equal(out.code, 0, `openssl ${args.join(" ")}: ${text}`);
    return text;
  };
  try {
    const kinds: [string, string[], string[]][] = [
      ["p384", ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-384"], []],
      ["rsa", ["-newkey", "rsa:2048"], []],
      ["noski", ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256"], [
        "-addext",
        "subjectKeyIdentifier=none",
      ]],
    ];
    for (const [name, key, extra] of kinds) {
      await sh([
        "req",
        "-x509",
        ...key,
        "-nodes",
        "-keyout",
        `${name}.key`,
        "-out",
        `${name}.pem`,
        "-days",
        "2",
        "-subj",
        `/O=weft test/CN=${name} root`,
        "-addext",
        "basicConstraints=critical,CA:true",
        "-addext",
        "keyUsage=critical,keyCertSign,cRLSign",
        ...extra,
      ]);
      const ca = await CertificateAuthority.fromPem(
        await Deno.readTextFile(`${dir}/${name}.pem`),
        await Deno.readTextFile(`${dir}/${name}.key`),
      );
      const leaf = await ca.issueLeaf(ID);
      await Deno.writeTextFile(`${dir}/${name}-leaf.pem`, leaf.certPem);
      const text = await sh([
        "verify",
        "-CAfile",
        `${name}.pem`,
        "-purpose",
        "sslclient",
        `${name}-leaf.pem`,
      ]);
      assert.match(text, /OK/, name);
      const cert = new NodeX509(leaf.certPem);
      assert.equal(cert.subjectAltName, `URI:${ID}`, name);
      assert.equal(cert.issuer, new NodeX509(ca.rootPem).subject, name);
      // The DER path and @peculiar/x509 agree on the authority key identifier.
      const viaX509 = await ca.sign({
        publicKey: await x509.PublicKey.create(
          new Uint8Array(cert.publicKey.export({ type: "spki", format: "der" })),
        ),
        sans: [{ type: "url", value: ID }],
        notBefore: leaf.notBefore,
        notAfter: leaf.notAfter,
      });
      const aki = (c: x509.X509Certificate): string | undefined =>
        c.getExtension(x509.AuthorityKeyIdentifierExtension)?.keyId;
      assert.equal(aki(new x509.X509Certificate(leaf.certPem)), aki(viaX509), name);
    }
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});
