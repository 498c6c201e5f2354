import assert from "node:assert/strict";
import { X509Certificate as NodeX509 } from "node:crypto";
import { metrics, type TlsMaterial, WeftError } from "../core/mod.ts";
import { CertificateAuthority, type LeafIssuer } from "./ca.ts";
import { WorkloadIdentityManager } from "./identity_manager.ts";
import { tlsMetrics } from "./tls_metrics.ts";

const TD = "cluster.local";
const WEB = `spiffe://${TD}/ns/default/sa/web`;
const DB = `spiffe://${TD}/ns/data/sa/db`;

Deno.test("material: issued on first use, single-flight per identity, cached", async () => {
  const ca = await CertificateAuthority.generate();
  const ids = new WorkloadIdentityManager({ ca, trustDomain: TD });
  try {
    const issuedBefore = tlsMetrics.issued.get();
    const first = ids.material(WEB);
    assert.deepEqual(ids.certificates().map((c) => [c.identity, c.state]), [[WEB, "Initializing"]]);
    const all = await Promise.all([first, ...Array.from({ length: 9 }, () => ids.material(WEB))]);
    assert.equal(new Set(all.map((m) => m.serial)).size, 1);
    assert.equal(tlsMetrics.issued.get() - issuedBefore, 1);
    assert.equal((await ids.material(WEB)).serial, all[0]!.serial);
    const db = await ids.material(DB);
    assert.notEqual(db.serial, all[0]!.serial);
    assert.equal(tlsMetrics.issued.get() - issuedBefore, 2);
    assert.equal(new NodeX509(db.certChainPem).subjectAltName, `URI:${DB}`);

    const rows = ids.certificates();
    assert.deepEqual(rows.map((c) => [c.identity, c.state]), [[WEB, "Available"], [
      DB,
      "Available",
    ]]);
    const text = JSON.stringify(rows);
    assert.ok(!text.includes("PRIVATE KEY"), "summary must never carry a key");
    assert.equal(rows[0]!.serial, all[0]!.serial);
    assert.equal(rows[0]!.notAfter, all[0]!.notAfter.toISOString());
    // ztunnel's config_dump shape: certChain / rootCerts entries with PEM, serial and validity.
    assert.deepEqual(rows[0]!.certChain.map((c) => [c.serialNumber, c.expirationTime]), [[
      all[0]!.serial,
      all[0]!.notAfter.toISOString(),
    ]]);
    assert.equal(rows[0]!.certChain[0]!.validFrom, rows[0]!.notBefore);
    assert.match(rows[0]!.certChain[0]!.pem, /BEGIN CERTIFICATE/);
    assert.match(rows[0]!.rootCerts[0]!.pem, /BEGIN CERTIFICATE/);
    assert.equal(
      tlsMetrics.expiry.get({ identity: WEB }),
      Math.floor(all[0]!.notAfter.getTime() / 1000),
    );
    assert.match(
      metrics.render(),
      /weft_certificate_expiry_seconds\{identity="spiffe:\/\/cluster\.local\/ns\/default\/sa\/web"\} \d+/,
    );
  } finally {
    await ids.close();
  }
});

Deno.test("material: bad or foreign identities fail clearly; closed manager refuses", async () => {
  const ca = await CertificateAuthority.generate();
  const ids = new WorkloadIdentityManager({ ca, trustDomain: TD });
  await assert.rejects(
    ids.material("spiffe://cluster.local/web"),
    (e: unknown) => e instanceof WeftError && e.code === "spiffe_id_invalid",
  );
  await assert.rejects(
    ids.material("spiffe://other.local/ns/a/sa/b"),
    (e: unknown) => e instanceof WeftError && e.code === "identity_foreign_trust_domain",
  );
  await ids.close();
  await assert.rejects(
    ids.material(WEB),
    (e: unknown) => e instanceof WeftError && e.code === "identity_closed",
  );
  assert.throws(
    () => new WorkloadIdentityManager({ ca, trustDomain: TD, rotateAtFraction: 1 }),
    /rotateAtFraction/,
  );
});

Deno.test("rotation: a 2 s certificate is re-issued at the configured fraction, listeners told", async () => {
  const ca = await CertificateAuthority.generate();
  const ids = new WorkloadIdentityManager({
    ca,
    trustDomain: TD,
    ttlMs: 2000,
    rotateAtFraction: 0.25,
  });
  try {
    const rotationsBefore = tlsMetrics.rotations.get();
    const requestedAt = Date.now();
    const first = await ids.material(WEB);
    const rotated: [string, TlsMaterial, number][] = [];
    const next = new Promise<TlsMaterial>((resolve) => {
      const off = ids.onRotate((id, m) => {
        rotated.push([id, m, Date.now()]);
        if (rotated.length === 2) {
          off();
          resolve(m);
        }
      });
    });
    const second = await next;
    // X.509 times have 1 s resolution, so notAfter (not the requested TTL) sets the schedule:
    // rotation at issuedAt + 0.25 * (notAfter - issuedAt), and issuedAt >= requestedAt.
    const earliest = 0.75 * requestedAt + 0.25 * first.notAfter.getTime();
    assert.ok(rotated[0]![2] >= earliest - 5, `rotated too early: ${rotated[0]![2] - earliest} ms`);
    assert.ok(rotated[0]![2] < first.notAfter.getTime(), "rotated only after expiry");
    assert.ok(rotated[1]![2] < rotated[0]![1].notAfter.getTime(), "rotated only after expiry");
    assert.deepEqual(rotated.map(([id]) => id), [WEB, WEB]);
    assert.notEqual(rotated[0]![1].serial, first.serial);
    assert.notEqual(second.serial, rotated[0]![1].serial);
    assert.equal((await ids.material(WEB)).serial, second.serial);
    assert.ok(tlsMetrics.rotations.get() - rotationsBefore >= 2);
    assert.equal(ids.certificates()[0]!.serial, second.serial);
  } finally {
    await ids.close(); // clears the pending rotation timer (sanitizers check)
  }
});

Deno.test("material after expiry (clock jumped) re-issues and notifies like a rotation", async () => {
  const ca = await CertificateAuthority.generate();
  let clock = Date.now();
  const ids = new WorkloadIdentityManager({
    ca,
    trustDomain: TD,
    ttlMs: 3600_000,
    now: () => clock,
  });
  try {
    const first = await ids.material(WEB);
    const seen: string[] = [];
    ids.onRotate((_id, m) => seen.push(m.serial));
    clock += 2 * 3600_000;
    const again = await ids.material(WEB);
    assert.notEqual(again.serial, first.serial);
    assert.deepEqual(seen, [again.serial]);
    assert.ok(again.notAfter.getTime() > clock);
  } finally {
    await ids.close();
  }
});

Deno.test("close() while an issuance is in flight waits for it and leaves no timer", async () => {
  const ca = await CertificateAuthority.generate();
  const ids = new WorkloadIdentityManager({ ca, trustDomain: TD, ttlMs: 2000 });
  const p = ids.material(WEB);
  await ids.close();
  await p; // resolved, but no rotation timer was scheduled after close
});

Deno.test("serverOptions / clientOptions / recordRejection", async () => {
  const ca = await CertificateAuthority.generate();
  const ids = new WorkloadIdentityManager({ ca, trustDomain: TD });
  try {
    const s = await ids.serverOptions(WEB);
    assert.equal(s.requestCert, true);
    assert.equal(s.rejectUnauthorized, false); // verifyClient checks the chain itself
    assert.equal(s.minVersion, "TLSv1.3");
    assert.deepEqual(s.ALPNProtocols, ["h2"]);
    assert.equal(s.ca, ca.rootPem);
    const c = await ids.clientOptions(WEB, [DB]);
    assert.equal(c.servername, undefined);
    assert.equal(typeof c.checkServerIdentity, "function");
    const before = tlsMetrics.rejections.get({ reason: "bad_san", side: "server" });
    ids.recordRejection("server", "bad_san");
    assert.equal(tlsMetrics.rejections.get({ reason: "bad_san", side: "server" }), before + 1);
  } finally {
    await ids.close();
  }
});

Deno.test("rotation failure: the old certificate keeps serving, retries back off, then recovers", async () => {
  const real = await CertificateAuthority.generate();
  let failNext = 0;
  let attempts = 0;
  const servedMeanwhile: Promise<TlsMaterial>[] = [];
  // A fault injector around the real CA (the seam a remote CA client would also use).
  const flaky: LeafIssuer = {
    rootPem: real.rootPem,
    issueLeaf(identity, opts) {
      attempts++;
      if (failNext > 0) {
        failNext--;
        servedMeanwhile.push(ids.material(identity));
        return Promise.reject(new Error("CA unreachable"));
      }
      return real.issueLeaf(identity, opts);
    },
  };
  const ids = new WorkloadIdentityManager({
    ca: flaky,
    trustDomain: TD,
    ttlMs: 2000,
    rotateAtFraction: 0.25,
    retryInitialMs: 50,
  });
  try {
    const first = await ids.material(WEB);
    failNext = 2;
    const rotated = new Promise<TlsMaterial>((resolve) => ids.onRotate((_id, m) => resolve(m)));
    const next = await rotated; // after two failed attempts (~50 ms, ~100 ms back-off)
    assert.equal(attempts, 4);
    const served = await Promise.all(servedMeanwhile);
    assert.deepEqual(served.map((m) => m.serial), [first.serial, first.serial]);
    assert.notEqual(next.serial, first.serial);
    assert.equal(ids.certificates()[0]!.lastError, undefined);
    assert.equal(ids.certificates()[0]!.state, "Available");
  } finally {
    await ids.close();
  }
});

Deno.test("first issuance failure: Unavailable with the error, the next call retries", async () => {
  const real = await CertificateAuthority.generate();
  let fail = true;
  const flaky: LeafIssuer = {
    rootPem: real.rootPem,
    issueLeaf: (identity, opts) =>
      fail ? Promise.reject(new Error("CA unreachable")) : real.issueLeaf(identity, opts),
  };
  const ids = new WorkloadIdentityManager({ ca: flaky, trustDomain: TD });
  try {
    await assert.rejects(
      ids.material(WEB),
      (e: unknown) =>
        e instanceof WeftError && e.code === "cert_issue_failed" &&
        /CA unreachable/.test(e.message),
    );
    const row = ids.certificates()[0]!;
    assert.equal(row.state, "Unavailable");
    assert.match(row.lastError ?? "", /CA unreachable/);
    fail = false;
    assert.ok((await ids.material(WEB)).serial);
    assert.equal(ids.certificates()[0]!.state, "Available");
  } finally {
    await ids.close();
  }
});
