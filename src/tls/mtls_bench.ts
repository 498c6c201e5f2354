/**
 * `deno task bench:tls`: cost of issuing one workload certificate, of the per-handshake SAN
 * check, and of a full mTLS handshake (TCP connect + TLS 1.3 + both certificate checks + first
 * byte) on loopback with node:tls.
 */
import tls from "node:tls";
import type { AddressInfo } from "node:net";
import { CertificateAuthority } from "./ca.ts";
import { WorkloadIdentityManager } from "./identity_manager.ts";
import { clientTlsOptions, serverTlsOptions } from "./mtls.ts";
import { x509 } from "./_x509.ts";

const TD = "cluster.local";
const WEB = `spiffe://${TD}/ns/default/sa/web`;
const SRV = `spiffe://${TD}/ns/default/sa/echo`;
const ca = await CertificateAuthority.generate();
const ids = new WorkloadIdentityManager({ ca, trustDomain: TD });
const serverMat = await ids.material(SRV);
const clientOpts = clientTlsOptions(await ids.material(WEB), (der) => ids.verifyServer(der, [SRV]));
const leafDer = new Uint8Array(x509.PemConverter.decodeFirst(serverMat.certChainPem));

const srv = tls.createServer(serverTlsOptions(serverMat), (sock) => {
  const raw = sock.getPeerCertificate(true)?.raw;
  if (raw && ids.verifyClient(new Uint8Array(raw)).ok) sock.end("x");
  else sock.destroy();
});
await new Promise<void>((r) => srv.listen(0, "127.0.0.1", r));
srv.unref();
const { port } = srv.address() as AddressInfo;

Deno.bench("issue one leaf (P-256 keygen, sign, PKCS#8 export)", async () => {
  await ca.issueLeaf(WEB);
});

Deno.bench("verifyClient on a leaf (DER parse + SAN checks)", () => {
  if (!ids.verifyClient(leafDer).ok) throw new Error("refused");
});

Deno.bench("full mTLS handshake on loopback, to first byte", async () => {
  await new Promise<void>((resolve, reject) => {
    const c = tls.connect({ host: "127.0.0.1", port, ...clientOpts });
    c.once("data", () => {
      c.destroy();
      resolve();
    });
    c.once("error", reject);
  });
});
