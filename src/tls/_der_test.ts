import assert from "node:assert/strict";
import { BAD_CERT_CASES, createTestPki } from "../../tests/support/test_ca.ts";
import { sansFromCertDer } from "./_der.ts";
import { x509 } from "./_x509.ts";

function reference(der: Uint8Array): { uris: string[]; dns: string[] } {
  const cert = new x509.X509Certificate(der as Uint8Array<ArrayBuffer>);
  const items = cert.getExtension(x509.SubjectAlternativeNameExtension)?.names.items ?? [];
  return {
    uris: items.filter((n) => n.type === "url").map((n) => n.value),
    dns: items.filter((n) => n.type === "dns").map((n) => n.value),
  };
}

Deno.test("sansFromCertDer agrees with @peculiar/x509 on every test certificate", async () => {
  const pki = await createTestPki();
  try {
    const pems = [
      (await pki.good("spiffe://cluster.local/ns/default/sa/web")).certPem,
      pki.rootsPem, // no SAN at all
      ...BAD_CERT_CASES.map((c) => pki.bad[c].certPem),
    ];
    for (const pem of pems) {
      const der = new Uint8Array(x509.PemConverter.decodeFirst(pem));
      assert.deepEqual(sansFromCertDer(der), reference(der));
    }
  } finally {
    await pki.dispose();
  }
});

Deno.test("sansFromCertDer throws a plain Error on every truncation and on junk, never hangs", async () => {
  const pki = await createTestPki();
  try {
    const der = new Uint8Array(x509.PemConverter.decodeFirst(pki.bad.two_uri_sans.certPem));
    for (let n = 0; n < der.length; n++) {
      assert.throws(() => sansFromCertDer(der.subarray(0, n)), Error, `prefix ${n}`);
    }
    const flipped = der.slice();
    for (let i = 0; i < flipped.length; i += 7) {
      flipped[i] = flipped[i]! ^ 0xff;
      try {
        sansFromCertDer(flipped); // may or may not parse: it must only return or throw
      } catch (e) {
        assert.ok(e instanceof Error);
      }
      flipped[i] = der[i]!;
    }
    assert.throws(() => sansFromCertDer(new Uint8Array([0x30, 0x84, 0xff, 0xff, 0xff, 0xff])));
  } finally {
    await pki.dispose();
  }
});
