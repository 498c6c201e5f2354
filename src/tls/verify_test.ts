import assert from "node:assert/strict";
import type { TlsRejectReason } from "../core/mod.ts";
import { BAD_CERT_CASES, type BadCertCase, createTestPki } from "../../tests/support/test_ca.ts";
import { x509 } from "./_x509.ts";
import {
  classifyTlsError,
  isPeerAlert,
  PeerIdentityError,
  verifyClientLeaf,
  verifyServerLeaf,
} from "./verify.ts";

const TD = "cluster.local";
const WEB = `spiffe://${TD}/ns/default/sa/web`;

function der(pem: string): Uint8Array {
  return new Uint8Array(x509.PemConverter.decodeFirst(pem));
}

/** What the SAN checks alone say (chain cases carry a valid SAN: the TLS layer refuses them). */
const SAN_VERDICT: Record<BadCertCase, TlsRejectReason | "ok"> = {
  other_ca: "ok",
  expired: "ok",
  not_yet_valid: "ok",
  other_trust_domain: "trust_domain_mismatch",
  non_spiffe_uri: "bad_san",
  two_uri_sans: "bad_san",
  dns_only: "bad_san",
};

Deno.test("verifyClientLeaf / verifyServerLeaf over the bad-certificate matrix", async () => {
  const pki = await createTestPki({ trustDomain: TD });
  try {
    const good = await pki.good(WEB);
    assert.deepEqual(verifyClientLeaf(der(good.certPem), TD), { ok: true, identity: WEB });
    assert.deepEqual(verifyServerLeaf(der(good.certPem), TD, ["x", WEB]), {
      ok: true,
      identity: WEB,
    });
    const wrong = verifyServerLeaf(der(good.certPem), TD, [`spiffe://${TD}/ns/default/sa/db`]);
    assert.equal(wrong.ok ? "ok" : wrong.reason, "identity_mismatch");
    for (const c of BAD_CERT_CASES) {
      const leaf = der(pki.bad[c].certPem);
      const v = verifyClientLeaf(leaf, TD);
      assert.equal(v.ok ? "ok" : v.reason, SAN_VERDICT[c], c);
      const s = verifyServerLeaf(leaf, TD, [pki.badIdentity]);
      assert.equal(s.ok ? "ok" : s.reason, SAN_VERDICT[c], c);
      if (!v.ok) assert.ok(v.message.length > 0);
    }
    const junk = verifyClientLeaf(new Uint8Array([1, 2, 3]), TD);
    assert.equal(junk.ok ? "ok" : junk.reason, "bad_san");
  } finally {
    await pki.dispose();
  }
});

Deno.test("classifyTlsError maps Deno and Node/OpenSSL codes, alerts and our own errors", () => {
  const cases: [unknown, unknown, TlsRejectReason][] = [
    [{ code: "ERR_SSL_PEER_DID_NOT_RETURN_A_CERTIFICATE" }, undefined, "no_client_cert"],
    [{ code: "ERR_SSL_TLSV13_ALERT_CERTIFICATE_REQUIRED" }, undefined, "no_client_cert"],
    [
      { code: "ECONNRESET" },
      { authorizationError: "UNABLE_TO_VERIFY_LEAF_SIGNATURE" },
      "untrusted_chain",
    ],
    [{ code: "ECONNRESET" }, { authorizationError: { code: "CERT_HAS_EXPIRED" } }, "expired"],
    [{ code: "ECONNRESET" }, undefined, "handshake_failed"],
    [{ code: "UNABLE_TO_GET_ISSUER_CERT_LOCALLY" }, undefined, "untrusted_chain"],
    [{ code: "CERT_HAS_EXPIRED" }, undefined, "expired"],
    [{ code: "CERT_NOT_YET_VALID" }, undefined, "not_yet_valid"],
    [{ code: "ERR_SSL_SSLV3_ALERT_CERTIFICATE_EXPIRED" }, undefined, "expired"],
    [{ code: "ERR_SSL_TLSV1_ALERT_UNKNOWN_CA" }, undefined, "untrusted_chain"],
    [new PeerIdentityError("identity_mismatch", "x"), undefined, "identity_mismatch"],
    [new PeerIdentityError("bad_san", "x"), undefined, "bad_san"],
    [{ reason: "not-a-reason", code: "EPIPE" }, undefined, "handshake_failed"],
    [new Error("received fatal alert: CertificateRequired"), undefined, "no_client_cert"],
    [undefined, undefined, "handshake_failed"],
    ["string error", undefined, "handshake_failed"],
  ];
  for (const [err, sock, want] of cases) {
    assert.equal(classifyTlsError(err, sock), want, JSON.stringify(err));
  }
});

Deno.test("isPeerAlert: alerts are the peer's verdict, local verification codes are ours", () => {
  assert.equal(isPeerAlert({ code: "ERR_SSL_TLSV1_ALERT_UNKNOWN_CA" }), true);
  assert.equal(isPeerAlert({ code: "ERR_SSL_TLSV13_ALERT_CERTIFICATE_REQUIRED" }), true);
  assert.equal(isPeerAlert({ code: "ERR_SSL_PEER_DID_NOT_RETURN_A_CERTIFICATE" }), false);
  assert.equal(isPeerAlert({ code: "UNABLE_TO_VERIFY_LEAF_SIGNATURE" }), false);
  assert.equal(isPeerAlert(new PeerIdentityError("bad_san", "x")), false);
  assert.equal(isPeerAlert(undefined), false);
});
