/** IstioCertificateService/CreateCertificate over real gRPC: a mesh workload's CSR is signed
 * by src/tls's CA (chain leaf first, root last); an identity outside the mesh is refused. */
import assert from "node:assert/strict";
import "reflect-metadata";
import * as x509 from "@peculiar/x509";
import * as grpc from "@grpc/grpc-js";
import { create } from "@bufbuild/protobuf";
import { mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { CertificateAuthority, createCsr } from "../../tls/mod.ts";
import { meshYaml } from "../_test_fixtures.ts";
import { CA_SERVICE, CHANNEL_OPTIONS } from "../grpc_transport.ts";
import { IstioCertificateRequestSchema } from "../proto.ts";
import { startControlPlane } from "./mod.ts";

async function csr(uri: string): Promise<string> {
  return (await createCsr(uri)).csrPem;
}

Deno.test("control plane CA: CreateCertificate signs mesh workloads only", async () => {
  const dir = await mkdtemp(join(tmpdir(), "weft-ca-"));
  const path = join(dir, "mesh.yaml");
  await writeFile(path, meshYaml(10));
  const ca = await CertificateAuthority.generate();
  const cp = await startControlPlane({ configPath: path, address: "127.0.0.1:0", ca });
  const client = new grpc.Client(cp.address, grpc.credentials.createInsecure(), CHANNEL_OPTIONS);
  const m = CA_SERVICE.CreateCertificate;
  const ask = (pem: string) =>
    new Promise<{ err: grpc.ServiceError | null; chain: string[] }>((resolve) =>
      client.makeUnaryRequest(
        m.path,
        m.requestSerialize,
        m.responseDeserialize,
        create(IstioCertificateRequestSchema, { csr: pem, validityDuration: 3600n }),
        (err, res) => resolve({ err, chain: res?.certChain ?? [] }),
      )
    );
  try {
    const id = "spiffe://cluster.local/ns/default/sa/echo";
    const ok = await ask(await csr(id));
    assert.equal(ok.err, null);
    assert.equal(ok.chain.length, 2);
    assert.equal(ok.chain[1], ca.rootPem);
    const leaf = new x509.X509Certificate(ok.chain[0]!);
    assert.deepEqual(
      leaf.getExtension(x509.SubjectAlternativeNameExtension)?.names.items.map((n) => n.value),
      [id],
    );
    assert.ok(await leaf.verify({ publicKey: ca.cert.publicKey }));
    const denied = await ask(await csr("spiffe://cluster.local/ns/other/sa/intruder"));
    assert.equal(denied.err?.code, grpc.status.PERMISSION_DENIED);
  } finally {
    client.close();
    await cp.close();
    await rm(dir, { recursive: true });
  }
});
