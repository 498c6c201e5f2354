/** The control plane's serving certificate rotates: after the first one has expired, a new
 * connection still verifies (chain, validity, SPIFFE id) and an xDS client gets its config. */
import assert from "node:assert/strict";
import { mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import tls from "node:tls";
import { CertificateAuthority } from "../../tls/mod.ts";
import { BASE, meshYaml } from "../_test_fixtures.ts";
import { XdsClient } from "../client.ts";
import { peerIdentity } from "../grpc_transport.ts";
import { ServingCertificate, startControlPlane } from "./mod.ts";

const CP_ID = "spiffe://cluster.local/ns/istio-system/sa/weft-control-plane";
const AGENT_ID = "spiffe://cluster.local/ns/istio-system/sa/weft-node";

/** Full verification of the served chain against the mesh root; the serial it presented. */
function servedSerial(address: string, ca: CertificateAuthority, client: tls.SecureContextOptions) {
  const i = address.lastIndexOf(":");
  return new Promise<string>((resolve, reject) => {
    const s = tls.connect({
      host: address.slice(0, i),
      port: Number(address.slice(i + 1)),
      ca: ca.rootPem,
      ...client,
      ALPNProtocols: ["h2"],
      // The SPIFFE id is a URI SAN, not a host name: checked below instead.
      checkServerIdentity: () => undefined,
    }, () => {
      const cert = s.getPeerCertificate();
      s.destroy();
      if (peerIdentity(cert.subjectaltname) !== CP_ID) reject(new Error("wrong identity"));
      else resolve(cert.serialNumber);
    });
    s.on("error", reject);
  });
}

Deno.test("control plane serving certificate: re-issued at half-life, new connections verify after the first expired", async () => {
  const dir = await mkdtemp(join(tmpdir(), "weft-cp-cert-"));
  const path = join(dir, "mesh.yaml");
  await writeFile(path, meshYaml(10));
  const ca = await CertificateAuthority.generate();
  const cert = await ServingCertificate.start({
    ca,
    trustDomain: "cluster.local",
    identity: CP_ID,
    ttlMs: 2_000,
  });
  const first = cert.material;
  const cp = await startControlPlane({ configPath: path, address: "127.0.0.1:0", ca, tls: cert });
  const agent = await ca.issueLeaf(AGENT_ID);
  const clientCert = { cert: agent.chainPem, key: agent.keyPem };
  let client: XdsClient | undefined;
  try {
    const s1 = await servedSerial(cp.address, ca, clientCert);
    assert.equal(s1.toLowerCase(), first.serial.replace(/:/g, "").toLowerCase());
    // Past the first certificate's notAfter (rotation was due at half of it).
    const wait = first.notAfter.getTime() - Date.now() + 300;
    await new Promise((r) => setTimeout(r, Math.max(0, wait)));
    assert.notEqual(cert.material.serial, first.serial, "rotated");
    assert.ok(cert.material.notAfter.getTime() > Date.now(), "the new one is valid now");
    const s2 = await servedSerial(cp.address, ca, clientCert);
    assert.notEqual(s2, s1, "a new connection is served the new certificate");
    client = new XdsClient({
      server: cp.address,
      nodeId: "node-a",
      base: BASE,
      tls: { rootsPem: ca.rootPem, certChainPem: agent.chainPem, keyPem: agent.keyPem },
      serverIdentity: CP_ID,
    });
    client.start();
    const snap = await client.ready();
    assert.ok(snap.services.length > 0, "an xDS client verifies the rotated certificate");
  } finally {
    await client?.close();
    await cp.close();
    await cert.close();
    await rm(dir, { recursive: true });
  }
});
