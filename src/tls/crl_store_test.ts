/**
 * CRL loading and checking with CRLs signed in the test (@peculiar/x509): the file forms ztunnel
 * reads, webpki's CRL profile, the chain rules (leaf and intermediate, issuer match, signature,
 * cRLSign, nextUpdate ignored) and the store's reload of tracked connections.
 */
import assert from "node:assert/strict";
import { Buffer } from "node:buffer";
import { mkdtemp, rename, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { CertificateAuthority } from "./ca.ts";
import { crlDersOf, parseCrlDer } from "./_crl_der.ts";
import { CrlStore } from "./crl_store.ts";
import { metrics, type RevocationAdmission } from "../core/mod.ts";
import {
  caSigner,
  chainPki,
  crlPem,
  idp,
  makeCrl,
  serialOf,
} from "../../tests/support/test_crl.ts";

const ID = "spiffe://cluster.local/ns/default/sa/";

async function meshLeaf(ca: CertificateAuthority, sa: string) {
  const leaf = await ca.issueLeaf(ID + sa, { ttlMs: 3600_000 });
  const der = new Uint8Array(
    Buffer.from(leaf.certPem.replace(/-----[A-Z ]+-----|\s+/g, ""), "base64"),
  );
  return { der, serial: await serialOf(leaf.certPem), chain: [der, ca.root.der] };
}

function count(name: string, label: string): number {
  let n = 0;
  for (const l of metrics.render().split("\n")) {
    if (l.startsWith(name + "{") && l.includes(label)) n += Number(l.split(" ").pop());
  }
  return n;
}

async function withStore(
  roots: string,
  content: string | Uint8Array | undefined,
  fn: (s: CrlStore, path: string, dir: string) => Promise<void>,
): Promise<void> {
  const dir = await mkdtemp(join(tmpdir(), "weft-crl-"));
  const path = join(dir, "crl.pem");
  if (content !== undefined) await writeFile(path, content);
  const s = await CrlStore.open({ path, roots: () => roots, pollMs: 200, debounceMs: 50 });
  try {
    await fn(s, path, dir);
  } finally {
    s.close();
    await rm(dir, { recursive: true, force: true });
  }
}

/** Replace the file as Kubernetes and editors do: write beside it, rename over it. */
async function replace(path: string, content: string | Uint8Array): Promise<void> {
  await writeFile(path + ".tmp", content);
  await rename(path + ".tmp", path);
}

function refused(a: RevocationAdmission): string | undefined {
  return a.ok ? undefined : a.reason;
}

Deno.test("crl file forms: empty, PEM without CRLs, several CRL blocks among other items, DER", async () => {
  const ca = await CertificateAuthority.generate({ name: "crl forms" });
  const der = await makeCrl(await caSigner(ca), ["0badcafe"]);
  assert.deepEqual(crlDersOf(new Uint8Array()), []);
  assert.deepEqual(crlDersOf(new TextEncoder().encode(ca.rootPem)), []);
  const pem = ca.rootPem + crlPem(der) + ca.rootPem + crlPem(der);
  assert.equal(crlDersOf(new TextEncoder().encode(pem)).length, 2);
  assert.deepEqual(crlDersOf(der), [der]);
  const parsed = parseCrlDer(der);
  assert.ok(parsed.revoked.has("0badcafe"));
  assert.equal(parsed.crlNumberHex, "01");
});

Deno.test("crl profile: webpki's refusals (no cRLNumber, delta, not a CRL, truncated)", async () => {
  const ca = await CertificateAuthority.generate({ name: "crl profile" });
  const signer = await caSigner(ca);
  assert.throws(() => parseCrlDer(new TextEncoder().encode("not a valid CRL")));
  assert.throws(
    () => parseCrlDer(new Uint8Array()),
    /truncated/,
  );
  const noNumber = await makeCrl(signer, [], { omitCrlNumber: true });
  assert.throws(() => parseCrlDer(noNumber), /cRLNumber/);
  const delta = await makeCrl(signer, [], { delta: true });
  assert.throws(() => parseCrlDer(delta), /delta/);
  const good = await makeCrl(signer, []);
  assert.throws(() => parseCrlDer(good.subarray(0, good.length - 3)));
});

Deno.test("crl store: a revoked mesh leaf is refused and counted; others pass; nextUpdate is not enforced", async () => {
  const ca = await CertificateAuthority.generate({ name: "crl mesh" });
  const bad = await meshLeaf(ca, "bad");
  const good = await meshLeaf(ca, "good");
  const stale = await makeCrl(await caSigner(ca), [bad.serial], {
    nextUpdate: new Date(Date.now() - 3600_000),
  });
  await withStore(ca.rootPem, crlPem(stale), (s) => {
    const before = count("istio_crl_policy_rejections_total", 'reporter="destination"');
    assert.equal(refused(s.admit(bad.chain, "destination")), "revoked");
    assert.equal(refused(s.admit(good.chain, "destination")), undefined);
    assert.equal(
      count("istio_crl_policy_rejections_total", 'reporter="destination"') - before,
      1,
    );
    return Promise.resolve();
  });
});

Deno.test("crl store: a CRL from an unknown CA is never consulted; a forged one in the root's name fails the check", async () => {
  const ca = await CertificateAuthority.generate({ name: "crl mesh root" });
  const other = await CertificateAuthority.generate({ name: "crl unknown root" });
  const leaf = await meshLeaf(ca, "web");
  const foreign = await makeCrl(await caSigner(other), [leaf.serial]);
  await withStore(ca.rootPem, crlPem(foreign), (s) => {
    assert.equal(refused(s.admit(leaf.chain, "source")), undefined);
    return Promise.resolve();
  });
  const forged = await makeCrl(await caSigner(other, ca.root.subject), [leaf.serial]);
  await withStore(ca.rootPem, crlPem(forged), (s) => {
    assert.equal(refused(s.admit(leaf.chain, "source")), "crl_invalid");
    return Promise.resolve();
  });
});

Deno.test("crl store: intermediates — a revoked intermediate refuses its leaves; its own CRL revokes a leaf; cRLSign is required", async () => {
  const pki = await chainPki();
  const a = await pki.leaf(ID + "a", "0a01");
  const b = await pki.leaf(ID + "b", "0a02");
  const byRoot = await makeCrl(pki.root, [pki.intermediateSerial]);
  await withStore(pki.rootPem, crlPem(byRoot), (s) => {
    assert.equal(refused(s.admit(a.chain, "source")), "revoked");
    assert.equal(refused(s.admit(b.chain, "source")), "revoked");
    return Promise.resolve();
  });
  const byMid = await makeCrl(pki.intermediate, [a.serial]);
  // Two CRLs in one file: the root's (revoking nothing) and the intermediate's.
  const both = crlPem(await makeCrl(pki.root, ["77"])) + crlPem(byMid);
  await withStore(pki.rootPem, both, (s) => {
    assert.equal(refused(s.admit(a.chain, "source")), "revoked");
    assert.equal(refused(s.admit(b.chain, "source")), undefined);
    return Promise.resolve();
  });
  const noSign = await chainPki({ noCrlSign: true });
  const c = await noSign.leaf(ID + "c", "0c01");
  await withStore(noSign.rootPem, crlPem(await makeCrl(noSign.root, ["99"])), (s) => {
    assert.equal(refused(s.admit(c.chain, "source")), "crl_invalid");
    return Promise.resolve();
  });
});

Deno.test("crl store: a reload revokes a tracked connection once, leaves the others, keeps the last good set on a bad file", async () => {
  const ca = await CertificateAuthority.generate({ name: "crl reload" });
  const signer = await caSigner(ca);
  const a = await meshLeaf(ca, "a");
  const b = await meshLeaf(ca, "b");
  await withStore(ca.rootPem, "", async (s, path) => {
    const closed: string[] = [];
    const admA = s.admit(a.chain, "destination");
    const admB = s.admit(b.chain, "source");
    assert.ok(admA.ok && admB.ok);
    admA.track(() => closed.push("a"));
    const untrackB = admB.track(() => closed.push("b"));
    const before = count("istio_crl_policy_rejections_total", 'reporter="destination"');
    await replace(path, crlPem(await makeCrl(signer, [a.serial], { crlNumber: 2 })));
    const t0 = Date.now();
    while (closed.length === 0 && Date.now() - t0 < 3000) {
      await new Promise((r) => setTimeout(r, 20));
    }
    assert.deepEqual(closed, ["a"], "the watcher reloads and closes only the revoked peer");
    assert.equal(
      count("istio_crl_policy_rejections_total", 'reporter="destination"') - before,
      1,
    );
    // A bad rewrite is refused; the last good CRL keeps refusing a.
    await writeFile(path, "-----BEGIN X509 CRL-----\nAAAA\n-----END X509 CRL-----\n");
    assert.equal(await s.reload(), "invalid");
    assert.equal(refused(s.admit(a.chain, "destination")), "revoked");
    untrackB();
    await replace(path, crlPem(await makeCrl(signer, [b.serial], { crlNumber: 3 })));
    assert.equal(await s.reload(), "success");
    assert.deepEqual(closed, ["a"], "an untracked connection is not called back");
  });
});

Deno.test("crl store: a missing file is a warning and is enforced once it appears; an unparsable one stops the start", async () => {
  const ca = await CertificateAuthority.generate({ name: "crl missing" });
  const a = await meshLeaf(ca, "a");
  await withStore(ca.rootPem, undefined, async (s, path) => {
    assert.equal(refused(s.admit(a.chain, "source")), undefined);
    await writeFile(path, crlPem(await makeCrl(await caSigner(ca), [a.serial])));
    const t0 = Date.now();
    while (refused(s.admit(a.chain, "source")) === undefined && Date.now() - t0 < 3000) {
      await new Promise((r) => setTimeout(r, 20));
    }
    assert.equal(refused(s.admit(a.chain, "source")), "revoked");
  });
  const dir = await mkdtemp(join(tmpdir(), "weft-crl-"));
  try {
    await writeFile(join(dir, "crl.der"), "not a valid CRL");
    await assert.rejects(
      CrlStore.open({ path: join(dir, "crl.der"), roots: () => ca.rootPem }),
      (e: Error & { code?: string }) => e.code === "crl_invalid",
    );
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
});

Deno.test("crl store: a chain that cannot be read is admitted untracked and counted", async () => {
  const ca = await CertificateAuthority.generate({ name: "crl untracked" });
  await withStore(ca.rootPem, "", (s) => {
    const before = count("istio_crl_untracked_connections_total", 'reporter="source"');
    assert.equal(refused(s.admit([new Uint8Array([0x30, 0x00])], "source")), undefined);
    assert.equal(count("istio_crl_untracked_connections_total", 'reporter="source"') - before, 1);
    return Promise.resolve();
  });
});

Deno.test("crl store: a Kubernetes volume update (the ..data symlink swapped) is picked up", async () => {
  const ca = await CertificateAuthority.generate({ name: "crl volume" });
  const a = await meshLeaf(ca, "a");
  const dir = await mkdtemp(join(tmpdir(), "weft-crl-vol-"));
  try {
    // kubelet's layout: crl.pem → ..data/crl.pem, ..data → ..<timestamp>/ (swapped by rename).
    await Deno.mkdir(join(dir, "..v1"));
    await writeFile(join(dir, "..v1", "crl.pem"), "");
    await Deno.symlink("..v1", join(dir, "..data"));
    await Deno.symlink(join("..data", "crl.pem"), join(dir, "crl.pem"));
    const s = await CrlStore.open({
      path: join(dir, "crl.pem"),
      roots: () => ca.rootPem,
      pollMs: 5000, // the directory watch, not the poll, must see it
      debounceMs: 50,
    });
    try {
      const adm = s.admit(a.chain, "destination");
      assert.ok(adm.ok);
      let closed = false;
      adm.track(() => closed = true);
      await Deno.mkdir(join(dir, "..v2"));
      await writeFile(
        join(dir, "..v2", "crl.pem"),
        crlPem(await makeCrl(await caSigner(ca), [a.serial])),
      );
      await Deno.symlink("..v2", join(dir, "..data_tmp"));
      await rename(join(dir, "..data_tmp"), join(dir, "..data"));
      const t0 = Date.now();
      while (!closed && Date.now() - t0 < 3000) await new Promise((r) => setTimeout(r, 20));
      assert.ok(closed, "the tracked connection must be closed after the swap");
    } finally {
      s.close();
    }
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
});

Deno.test("crl store: an issuingDistributionPoint scopes the CRL (webpki): CA-only skips leaves, user-only applies; indirect is refused", async () => {
  const pki = await chainPki();
  const a = await pki.leaf(ID + "a", "0a11");
  const uri = "http://crl.example/mesh.crl";
  const caOnly = await makeCrl(pki.intermediate, [a.serial], {
    idp: idp(uri, { onlyCaCerts: true }),
  });
  await withStore(pki.rootPem, crlPem(caOnly), (s) => {
    assert.equal(refused(s.admit(a.chain, "source")), undefined, "not authoritative for a leaf");
    return Promise.resolve();
  });
  const userOnly = await makeCrl(pki.intermediate, [a.serial], {
    idp: idp(uri, { onlyUserCerts: true }),
  });
  await withStore(pki.rootPem, crlPem(userOnly), (s) => {
    assert.equal(refused(s.admit(a.chain, "source")), "revoked");
    return Promise.resolve();
  });
  // The intermediate itself is not a user certificate: a user-only CRL of the root skips it.
  const rootUserOnly = await makeCrl(pki.root, [pki.intermediateSerial], {
    idp: idp(uri, { onlyUserCerts: true }),
  });
  await withStore(pki.rootPem, crlPem(rootUserOnly), (s) => {
    assert.equal(refused(s.admit(a.chain, "source")), undefined);
    return Promise.resolve();
  });
  const indirect = await makeCrl(pki.root, [], { idp: idp(uri, { indirect: true }) });
  assert.throws(() => parseCrlDer(indirect), /indirect/);
});

Deno.test("crl store: a file rewritten in place keeps the last good CRLs while it is written (truncated, cut short); an empty file that stays empty clears them", async () => {
  const ca = await CertificateAuthority.generate({ name: "crl partial" });
  const signer = await caSigner(ca);
  const a = await meshLeaf(ca, "a");
  const b = await meshLeaf(ca, "b");
  const dir = await mkdtemp(join(tmpdir(), "weft-crl-partial-"));
  const path = join(dir, "crl.pem");
  const first = crlPem(await makeCrl(signer, [a.serial]));
  await writeFile(path, first);
  const s = await CrlStore.open({
    path,
    roots: () => ca.rootPem,
    pollMs: 60_000, // reloads are driven here, not by the watcher
    debounceMs: 60_000,
    settleMs: 300,
  });
  try {
    assert.equal(refused(s.admit(a.chain, "source")), "revoked");
    // `cat new > crl.pem`: truncated first, then written (here in two pieces).
    const next = crlPem(await makeCrl(signer, [a.serial, b.serial], { crlNumber: 2 })) +
      ca.rootPem;
    await writeFile(path, "");
    const during = s.reload();
    await new Promise((r) => setTimeout(r, 50));
    assert.equal(refused(s.admit(a.chain, "source")), "revoked", "truncated: not open");
    await writeFile(path, next.slice(0, next.length - ca.rootPem.length - 40));
    assert.equal(await during, "unchanged", "the empty read changed before it settled");
    assert.equal(await s.reload(), "invalid", "a PEM cut short is no CRL file");
    assert.equal(refused(s.admit(a.chain, "source")), "revoked");
    assert.equal(refused(s.admit(b.chain, "source")), undefined);
    await writeFile(path, next);
    assert.equal(await s.reload(), "success");
    assert.equal(refused(s.admit(b.chain, "source")), "revoked");
    // An empty file on purpose (ztunnel: no revocations) is taken once it stays so.
    await writeFile(path, "");
    assert.equal(await s.reload(), "success");
    assert.equal(refused(s.admit(a.chain, "source")), undefined);
  } finally {
    s.close();
    await rm(dir, { recursive: true, force: true });
  }
});

Deno.test("crl file forms: a PEM whose last CRL block is cut short is refused, not read as fewer CRLs", async () => {
  const ca = await CertificateAuthority.generate({ name: "crl cut" });
  const der = await makeCrl(await caSigner(ca), ["0badcafe"]);
  const pem = crlPem(der) + crlPem(der);
  const enc = new TextEncoder();
  for (const cut of [pem.length - 1 - "-----END X509 CRL-----".length, pem.length - 8, 30]) {
    assert.throws(() => crlDersOf(enc.encode(pem.slice(0, cut))), /cut short/, String(cut));
  }
  assert.equal(crlDersOf(enc.encode(pem.trimEnd())).length, 2);
  // Other PEM items (a root) around CRLs are still skipped.
  assert.equal(crlDersOf(enc.encode(ca.rootPem + pem)).length, 2);
});
