/**
 * Real node:tls mTLS handshakes on 127.0.0.1:0 with the option builders and the provider's
 * checks, for the good case and every bad certificate, on both sides. The expected reasons are
 * what the runtime can report: Deno 2.9.6 folds a locally refused expired / not-yet-valid
 * certificate into the same code as an unknown issuer (see verify.ts).
 */
import assert from "node:assert/strict";
import tls from "node:tls";
import type { AddressInfo } from "node:net";
import { runtimeName, type TlsMaterial, type TlsRejectReason } from "../core/mod.ts";
import {
  BAD_CERT_CASES,
  type BadCertCase,
  createTestPki,
  type TestPki,
} from "../../tests/support/test_ca.ts";
import { WorkloadIdentityManager } from "./identity_manager.ts";
import { clientTlsOptions, serverTlsOptions } from "./mtls.ts";
import { tlsMetrics } from "./tls_metrics.ts";
import { isPeerAlert } from "./verify.ts";

const TD = "cluster.local";
const WEB = `spiffe://${TD}/ns/default/sa/web`;
const SRV = `spiffe://${TD}/ns/default/sa/echo`;
const deno = runtimeName === "deno";

/** The server checks chains itself (exact reasons on every runtime). */
const EXPECTED: Record<BadCertCase, TlsRejectReason> = {
  other_ca: "untrusted_chain",
  expired: "expired",
  not_yet_valid: "not_yet_valid",
  other_trust_domain: "trust_domain_mismatch",
  non_spiffe_uri: "bad_san",
  two_uri_sans: "bad_san",
  dns_only: "bad_san",
};
/** The client relies on node:tls for the chain: Deno folds expiry into one code. */
const EXPECTED_CLIENT: Record<BadCertCase, TlsRejectReason> = {
  other_ca: "untrusted_chain",
  expired: deno ? "untrusted_chain" : "expired",
  not_yet_valid: deno ? "untrusted_chain" : "not_yet_valid",
  other_trust_domain: "trust_domain_mismatch",
  non_spiffe_uri: "bad_san",
  two_uri_sans: "bad_san",
  dns_only: "bad_san",
};

interface Outcome {
  /** "ok <peer identity>" or the reason the server refused. */
  server: string;
  /** "ok <alpn> <protocol>" once application data arrived, else the reason, or "closed". */
  client: string;
}

function mat(p: { certPem: string; keyPem: string }, rootsPem: string): TlsMaterial {
  return { certChainPem: p.certPem, keyPem: p.keyPem, rootsPem, serial: "-", notAfter: new Date() };
}

async function handshake(
  ids: WorkloadIdentityManager,
  server: TlsMaterial,
  client: TlsMaterial | undefined,
  rootsPem: string,
  expected: readonly string[],
): Promise<Outcome> {
  const out: Outcome = { server: "pending", client: "closed" };
  const refuse = (local: "server" | "client", err: unknown, sock?: unknown): string => {
    const reason = ids.classifyTlsError(err, sock);
    if (!isPeerAlert(err)) ids.recordRejection(local, reason);
    return reason;
  };
  const srv = tls.createServer(serverTlsOptions(server));
  let serverDone!: () => void;
  const serverSettled = new Promise<void>((r) => serverDone = r);
  srv.on("secureConnection", (sock: tls.TLSSocket) => {
    const raw = sock.getPeerCertificate(true)?.raw;
    const v = raw
      ? ids.verifyClient(new Uint8Array(raw))
      : { ok: false as const, reason: "no_client_cert" as const, message: "no certificate" };
    if (v.ok) {
      out.server = `ok ${v.identity}`;
      sock.end("hello");
    } else {
      ids.recordRejection("server", v.reason);
      out.server = v.reason;
      sock.destroy();
    }
    serverDone();
  });
  srv.on("tlsClientError", (err: Error, sock: tls.TLSSocket) => {
    out.server = refuse("server", err, sock);
    serverDone();
  });
  await new Promise<void>((r) => srv.listen(0, "127.0.0.1", r));
  const { port } = srv.address() as AddressInfo;
  const opts = client ? clientTlsOptions(client, (der) => ids.verifyServer(der, expected)) : {
    ...clientTlsOptions(
      mat({ certPem: "", keyPem: "" }, rootsPem),
      (der) => ids.verifyServer(der, expected),
    ),
    cert: undefined,
    key: undefined,
  };
  await new Promise<void>((resolve) => {
    const c = tls.connect({ host: "127.0.0.1", port, ...opts });
    c.on("data", () => out.client = `ok ${c.alpnProtocol} ${c.getProtocol()}`);
    c.on("error", (err) => out.client = refuse("client", err));
    c.on("close", () => resolve());
  });
  let timer: ReturnType<typeof setTimeout> | undefined;
  await Promise.race([
    serverSettled,
    new Promise<void>((r) => timer = setTimeout(r, 5000)),
  ]);
  clearTimeout(timer);
  await new Promise<void>((r) => srv.close(() => r()));
  return out;
}

async function setup(): Promise<{ pki: TestPki; ids: WorkloadIdentityManager }> {
  const pki = await createTestPki({ trustDomain: TD });
  return { pki, ids: new WorkloadIdentityManager({ ca: pki.ca, trustDomain: TD }) };
}

Deno.test("mTLS good case: TLS 1.3, ALPN h2, both identities verified", async () => {
  const { pki, ids } = await setup();
  try {
    const out = await handshake(
      ids,
      await ids.material(SRV),
      await ids.material(WEB),
      pki.rootsPem,
      [SRV],
    );
    assert.deepEqual(out, { server: `ok ${WEB}`, client: "ok h2 TLSv1.3" });
  } finally {
    await ids.close();
    await pki.dispose();
  }
});

Deno.test("mTLS: the server refuses each bad client certificate with its reason", async () => {
  const { pki, ids } = await setup();
  try {
    const server = await ids.material(SRV);
    const none = await handshake(ids, server, undefined, pki.rootsPem, [SRV]);
    assert.equal(none.server, "no_client_cert");
    assert.ok(!none.client.startsWith("ok"), `client got data: ${none.client}`);
    for (const c of BAD_CERT_CASES) {
      const before = tlsMetrics.rejections.get({ reason: EXPECTED[c], side: "server" });
      const out = await handshake(ids, server, mat(pki.bad[c], pki.rootsPem), pki.rootsPem, [SRV]);
      assert.equal(out.server, EXPECTED[c], c);
      assert.ok(!out.client.startsWith("ok"), `${c}: client got data: ${out.client}`);
      assert.equal(
        tlsMetrics.rejections.get({ reason: EXPECTED[c], side: "server" }),
        before + 1,
        c,
      );
    }
  } finally {
    await ids.close();
    await pki.dispose();
  }
});

Deno.test("mTLS: the client refuses each bad server certificate with its reason", async () => {
  const { pki, ids } = await setup();
  try {
    const client = await ids.material(WEB);
    for (const c of BAD_CERT_CASES) {
      const before = tlsMetrics.rejections.get({ reason: EXPECTED_CLIENT[c], side: "client" });
      const out = await handshake(ids, mat(pki.bad[c], pki.rootsPem), client, pki.rootsPem, [
        pki.badIdentity,
      ]);
      assert.equal(out.client, EXPECTED_CLIENT[c], c);
      assert.equal(
        tlsMetrics.rejections.get({ reason: EXPECTED_CLIENT[c], side: "client" }),
        before + 1,
        c,
      );
    }
    // A valid mesh certificate of the wrong workload.
    const other = await ids.material(SRV);
    const out = await handshake(ids, other, client, pki.rootsPem, [
      `spiffe://${TD}/ns/default/sa/db`,
    ]);
    assert.equal(out.client, "identity_mismatch");
  } finally {
    await ids.close();
    await pki.dispose();
  }
});

Deno.test("rotation reaches new handshakes through onRotate + setSecureContext", async () => {
  const { pki, ids } = await setup();
  const fast = new WorkloadIdentityManager({
    ca: pki.ca,
    trustDomain: TD,
    ttlMs: 2000,
    rotateAtFraction: 0.25,
  });
  try {
    const srv = tls.createServer(await fast.serverOptions(SRV), (s) => s.end("x"));
    const rotated = new Promise<TlsMaterial>((resolve) =>
      fast.onRotate((id, m) => {
        if (id !== SRV) return;
        srv.setSecureContext(serverTlsOptions(m));
        resolve(m);
      })
    );
    await new Promise<void>((r) => srv.listen(0, "127.0.0.1", r));
    const { port } = srv.address() as AddressInfo;
    const client = await ids.clientOptions(WEB, [SRV]);
    const peerSerial = () =>
      new Promise<string>((resolve, reject) => {
        const c = tls.connect({ host: "127.0.0.1", port, ...client });
        c.once("secureConnect", () => {
          const serial = c.getPeerCertificate().serialNumber.toLowerCase();
          c.on("data", () => {});
          c.once("close", () => resolve(serial));
        });
        c.once("error", reject);
      });
    const before = await peerSerial();
    assert.equal(before, (await fast.material(SRV)).serial);
    const next = await rotated;
    assert.equal(await peerSerial(), next.serial);
    assert.notEqual(next.serial, before);
    await new Promise<void>((r) => srv.close(() => r()));
  } finally {
    await fast.close();
    await ids.close();
    await pki.dispose();
  }
});
